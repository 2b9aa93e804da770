"""Time exact ML/REML fits (``fit_map``) on every reference model next to R's timing.

Usage: ``python benchmarks/bench_map.py [--repeats N] [--skip-slow] [--residual-only]``

For each models/*.toml: the median wall time of ``build_design`` (+ binding the residual
structure) + ``fit_map`` (and of ``fit_map`` alone) over N repeats after one warm-up, R's
median time from the reference JSON (``timing.median_elapsed_s``: lme4 1.1.31's ``lmer``,
or nlme 3.1.162's ``lme``/``gls`` for residual structures; R 4.2.2; the shared references
were timed on a different machine, models/nlme_extra on this one), and
ΔlogLik = ours − R's (positive: a higher likelihood than R found).
"""

from __future__ import annotations

import argparse
import statistics
import time
import tomllib
import warnings
from pathlib import Path

import bayeslmm as blm
from bayeslmm.formula.design import build_design
from bayeslmm.mle.fit import fit_map
from bayeslmm.residual.bind import bind
from bayeslmm.residual.structures import parse_residual

MODELS = Path(__file__).resolve().parents[1] / "models"


def bench(spec: dict, repeats: int) -> tuple[float, float, object]:
    data = blm.datasets.load(spec["dataset"])
    total, fit_only, fit = [], [], None
    for _ in range(repeats + 1):  # the first run warms caches and is dropped
        t0 = time.perf_counter()
        design = build_design(spec["formula"], data)
        rd = bind(parse_residual(spec["residual"]), design) if spec.get("residual") else None
        t1 = time.perf_counter()
        fit = fit_map(design, spec["method"], residual=rd)
        t2 = time.perf_counter()
        total.append(t2 - t0)
        fit_only.append(t2 - t1)
    return statistics.median(total[1:]), statistics.median(fit_only[1:]), fit


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--skip-slow", action="store_true", help="leave out InstEval")
    ap.add_argument("--residual-only", action="store_true",
                    help="only the models with a residual structure (nlme)")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    rows = []
    for path in sorted(MODELS.glob("*.toml")):
        spec = tomllib.loads(path.read_text())
        if (spec.get("slow") and args.skip_slow) or (args.residual_only
                                                     and not spec.get("residual")):
            continue
        reps = 2 if spec.get("slow") else args.repeats
        total, fit_only, fit = bench(spec, reps)
        r_s = spec["source"]["r_median_s"]
        engine = spec["source"]["engine"].split()[0].replace("::", " ")
        dll = fit.loglik - spec["reference"]["loglik"]
        rows.append((spec["name"], fit.nobs, total * 1e3, fit_only * 1e3, r_s * 1e3,
                     total / r_s, fit.optimizer["nfev"], dll, engine))
    head = ("model", "nobs", "total ms", "fit ms", "R ms", "ratio", "nfev", "ΔlogLik", "R")
    print(f"{head[0]:32s} {head[1]:>6s} {head[2]:>9s} {head[3]:>9s} {head[4]:>9s} "
          f"{head[5]:>6s} {head[6]:>5s} {head[7]:>10s} {head[8]}")
    for r in rows:
        print(f"{r[0]:32s} {r[1]:6d} {r[2]:9.1f} {r[3]:9.1f} {r[4]:9.1f} {r[5]:6.2f} "
              f"{r[6]:5d} {r[7]:10.1e} {r[8]}")


if __name__ == "__main__":
    main()
