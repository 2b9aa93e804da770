"""Sampling efficiency of the kb07-like maximal model (issue 15): one NUTS run of
``LMM.fit`` with nutpie's options changed, reported per parameter.

Leapfrog steps are counted from nutpie's sample stats (warm-up included), CPU
seconds beside wall seconds (the machine is shared). One run per process:

    python benchmarks/bench_kb07_sampling.py --chains 2 --draws 500 --tune 500
    python benchmarks/bench_kb07_sampling.py --low-rank --target-accept 0.9
    python benchmarks/bench_kb07_sampling.py --nutpie '{"mass_matrix_gamma": 1e-5}'
    python benchmarks/bench_kb07_sampling.py --design Orthodont --seed 2

Results of runs are kept in ``benchmarks/results/crossed_fits_run1.txt``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--design", default="kb07 maximal",
                    help="a design of bench_crossed.py, or sleepstudy, Orthodont")
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--tune", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--target-accept", type=float, default=None)
    ap.add_argument("--parameterization", default="auto")
    ap.add_argument("--sampler", default="auto")
    ap.add_argument("--low-rank", action="store_true", default=None,
                    help="force nutpie's low-rank mass matrix on")
    ap.add_argument("--diag", action="store_true",
                    help="force nutpie's diagonal mass matrix")
    ap.add_argument("--nutpie", default="{}", help="extra nutpie.sample settings (JSON)")
    ap.add_argument("--worst", type=int, default=8)
    args = ap.parse_args()

    import nutpie
    from bench_crossed import designs

    import bayeslmm as blm

    extra = json.loads(args.nutpie)
    seen = {}
    plain = nutpie.sample

    def sample(compiled, **kw):
        if args.low_rank:
            kw["low_rank_modified_mass_matrix"] = True
        if args.diag:
            kw["low_rank_modified_mass_matrix"] = False
        kw.update(extra, save_warmup=True)
        seen["low_rank"] = kw.get("low_rank_modified_mass_matrix", False)
        seen["target_accept"] = kw.get("target_accept")
        idata = plain(compiled, **kw)
        seen["steps"] = int(idata.warmup_sample_stats["n_steps"].sum()
                            + idata.sample_stats["n_steps"].sum())
        seen["draw_steps"] = float(idata.sample_stats["n_steps"].mean())
        seen["step_size"] = float(idata.sample_stats["step_size"].mean())
        del idata.warmup_posterior, idata.warmup_sample_stats
        return idata

    nutpie.sample = sample
    more = {"sleepstudy": ("Reaction ~ Days + (Days | Subject)", "sleepstudy"),
            "Orthodont": ("distance ~ age + (age | Subject)", "Orthodont")}
    if args.design in more:
        formula, data = more[args.design][0], blm.datasets.load(more[args.design][1])
    else:
        formula, data = designs()[args.design]
    t0, c0 = time.perf_counter(), time.process_time()
    fit = blm.LMM(formula, data).fit(draws=args.draws, tune=args.tune, chains=args.chains,
                                     random_seed=args.seed, target_accept=args.target_accept,
                                     parameterization=args.parameterization,
                                     sampler=args.sampler,
                                     progressbar=False, log_likelihood=False)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    d = fit.diagnostics
    s = fit.summary()
    out = {"design": args.design, "parameterization": fit.info["parameterization"],
           "chains": args.chains, "draws": args.draws,
           "tune": args.tune, "seed": args.seed, **seen, "nutpie": extra,
           "total_s": round(wall, 1), "cpu_s": round(cpu, 1),
           "steps_per_iteration": round(seen["steps"] / args.chains
                                        / (args.draws + args.tune), 1),
           "divergences": d["divergences"], "min_ess_bulk": round(d["min_ess_bulk"], 1),
           "min_ess_tail": round(d["min_ess_tail"], 1), "max_rhat": round(d["max_rhat"], 4)}
    print(json.dumps(out), flush=True)
    worst = s.sort_values("ess_bulk").head(args.worst)
    print(worst[["mean", "sd", "ess_bulk", "ess_tail", "r_hat"]].to_string(
        float_format=lambda v: f"{v:.3g}"))
    print("ESS per 1000 CPU s:", round(1000 * d["min_ess_bulk"] / cpu, 1),
          "| gradients per min-ESS draw:", round(seen["steps"] / d["min_ess_bulk"], 1))


if __name__ == "__main__":
    main()
