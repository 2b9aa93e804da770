"""Time exact ML/REML fits (``fit_map``) on every reference model next to lme4's timing.

Usage: ``python benchmarks/bench_map.py [--repeats N] [--skip-slow]``

For each models/*.toml without a residual structure: the median wall time of
``build_design`` + ``fit_map`` (and of ``fit_map`` alone) over N repeats after one
warm-up, lme4's median ``lmer`` time from the reference JSON (``timing.median_elapsed_s``,
R 4.2.2, lme4 1.1.31; a different machine), and |ΔlogLik| against lme4.
"""

from __future__ import annotations

import argparse
import statistics
import time
import tomllib
import warnings
from pathlib import Path

import bayeslmm as blm
from bayeslmm.design import build_design
from bayeslmm.optimize import fit_map

MODELS = Path(__file__).resolve().parents[1] / "models"


def bench(spec: dict, repeats: int) -> tuple[float, float, object]:
    data = blm.datasets.load(spec["dataset"])
    total, fit_only, fit = [], [], None
    for _ in range(repeats + 1):  # the first run warms caches and is dropped
        t0 = time.perf_counter()
        design = build_design(spec["formula"], data)
        t1 = time.perf_counter()
        fit = fit_map(design, spec["method"])
        t2 = time.perf_counter()
        total.append(t2 - t0)
        fit_only.append(t2 - t1)
    return statistics.median(total[1:]), statistics.median(fit_only[1:]), fit


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--skip-slow", action="store_true", help="leave out InstEval")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    rows = []
    for path in sorted(MODELS.glob("*.toml")):
        spec = tomllib.loads(path.read_text())
        if spec.get("requires") or (spec.get("slow") and args.skip_slow):
            continue
        reps = 2 if spec.get("slow") else args.repeats
        total, fit_only, fit = bench(spec, reps)
        lme4 = spec["source"]["lme4_median_s"]
        dll = abs(fit.loglik - spec["reference"]["loglik"])
        rows.append((spec["name"], fit.nobs, total * 1e3, fit_only * 1e3, lme4 * 1e3,
                     total / lme4, fit.optimizer["nfev"], dll))
    head = ("model", "nobs", "total ms", "fit ms", "lme4 ms", "ratio", "nfev", "|ΔlogLik|")
    print(f"{head[0]:26s} {head[1]:>6s} {head[2]:>9s} {head[3]:>9s} {head[4]:>9s} "
          f"{head[5]:>6s} {head[6]:>5s} {head[7]:>10s}")
    for r in rows:
        print(f"{r[0]:26s} {r[1]:6d} {r[2]:9.1f} {r[3]:9.1f} {r[4]:9.1f} {r[5]:6.2f} "
              f"{r[6]:5d} {r[7]:10.1e}")


if __name__ == "__main__":
    main()
