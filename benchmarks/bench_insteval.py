"""InstEval ``y ~ service + (1 | s) + (1 | d) + (1 | dept)`` (73,421 rows, 4,114 random
effects) in a short run: how far bayeslmm and bambi 0.17.2 get, side by side.

A 4 × 1000 run of this model takes about an hour with the exact marginal gradient
(≈ 150 ms, of which LAPACK's Cholesky and inverse of the 1,142-wide dense part, ≈ 50 ms,
are the floor: ``bench_crossed.py --gradients``), so both tools run ``--chains`` ×
(``--tune`` + ``--draws``) iterations in a fresh process each (compilation counted) and
report wall and CPU seconds, leapfrog steps per iteration, the time per iteration, what
4 × (1000 + 1000) iterations would take at that rate on 2 cores, and the bulk ESS per
second of the variance parameters.

    python benchmarks/bench_insteval.py [--chains 1] [--tune 100] [--draws 100]

Results of a run are kept in ``benchmarks/results/insteval_run*.txt``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

FORMULA = "y ~ service + (1 | s) + (1 | d) + (1 | dept)"


def run_ours(spec: dict) -> dict:
    """Child process: bayeslmm's default fit (marginal model, nutpie)."""
    import resource

    import arviz as az

    import bayeslmm as blm

    t0, c0 = time.perf_counter(), time.process_time()
    m = blm.LMM(FORMULA, blm.datasets.load("InstEval"))
    post = m.fit(draws=spec["draws"], tune=spec["tune"], chains=spec["chains"],
                 random_seed=1, progressbar=False, log_likelihood=False)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    steps = post.idata.sample_stats["n_steps"].values
    ess = az.ess(post.idata, var_names=["sd_s", "sd_d", "sd_dept", "sigma"])
    return {"tool": f"bayeslmm ({post.info['sampler']}, {post.info['parameterization']})",
            "wall_s": wall, "cpu_s": cpu, "steps_per_draw": float(steps.mean()),
            "divergences": int(post.divergences),
            "min_ess_bulk_variances": float(min(v.min() for v in ess.data_vars.values())),
            "peak_mem_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chains", type=int, default=1)
    ap.add_argument("--tune", type=int, default=100)
    ap.add_argument("--draws", type=int, default=100)
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--no-bambi", action="store_true")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print("RESULT " + json.dumps(run_ours(json.loads(args.child))))
        return
    from bench_sampling import child, ensure_bambi

    import bayeslmm as blm

    spec = {"chains": args.chains, "tune": args.tune, "draws": args.draws}
    iters = args.chains * (args.tune + args.draws)
    print(f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}; {spec}")
    rows = [child([sys.executable, __file__, "--child", json.dumps(spec)], args.timeout)]
    if not args.no_bambi:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "data.csv"
            blm.datasets.load("InstEval").to_csv(path, index=False)
            bspec = {"csv": str(path), "formula": FORMULA, "seed": 1,
                     "categorical": ["s", "d", "dept", "service"], "cores": args.chains,
                     **spec}
            rows.append(child([str(ensure_bambi()), str(HERE / "bambi_runner.py"),
                               json.dumps(bspec)], args.timeout))
    for r in rows:
        if "cpu_s" in r or "total_s" in r:
            cpu = r.get("cpu_s", r.get("total_s"))
            # 4 × (1000 + 1000) iterations on 2 cores at this run's CPU cost an iteration
            r["projected_4x1000_s_on_2_cores"] = cpu / iters * 8000 / 2
        r.update(spec)
        print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
