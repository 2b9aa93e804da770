"""Time what lme4 users do after a fit, next to R: profile intervals, Satterthwaite and
Kenward–Roger tables, and the parametric bootstrap's throughput.

Usage: ``python benchmarks/bench_inference.py [--repeats N] [--refits N]``

- ``confint()`` (the profile, of a fresh fit each time: nothing cached) on every case of
  models/inference that records a profile; R's time for ``confint(fit)`` on sleepstudy
  (median of 5, lme4 1.1.31, R 4.2.2, this machine) from its JSON;
- ``summary(ddf=...)`` on sleepstudy (first call: the Hessian and Jacobian, or pbkrtest's
  matrices, are computed then cached);
- refits per second of ``bootstrap(n)`` on sleepstudy: the default statistic (the
  parameters, no result assembled per refit) and a user statistic (a full result per
  refit), on one worker and on all cores; lme4's ``bootMer`` (via ``confint(fit,
  method = "boot", nsim = 1000)``) from models/inference/bootstrap.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import warnings
from pathlib import Path

import bayeslmm as blm

INFERENCE = Path(__file__).resolve().parents[1] / "models" / "inference"


def _fit(ref: dict) -> blm.MapResult:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return blm.LMM(ref["formula"], blm.datasets.load(ref["dataset"])).fit_map(ref["method"])


def _median(f, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--refits", type=int, default=200)
    args = ap.parse_args()

    print("confint() by profile (s, median; a new fit each run, the fit's time excluded)")
    print(f"{'case':28s} {'bayeslmm':>9s} {'R':>7s}")
    for path in sorted(INFERENCE.glob("*_reml.json")):
        ref = json.loads(path.read_text())
        if "profile" not in ref:
            continue
        fits = [_fit(ref) for _ in range(args.repeats)]
        it = iter(fits)
        t = _median(lambda it=it: next(it).confint(), args.repeats)
        r = ref.get("timing", {}).get("median_elapsed_s")
        print(f"{ref['case']:28s} {t:9.2f} {'' if r is None else f'{r:7.2f}'}")

    sleep = json.loads((INFERENCE / "sleepstudy_rslope_reml.json").read_text())
    for ddf in ("Satterthwaite", "Kenward-Roger"):
        fits = [_fit(sleep) for _ in range(args.repeats)]
        it = iter(fits)
        t = _median(lambda it=it, ddf=ddf: next(it).summary(ddf=ddf), args.repeats)
        print(f"summary(ddf={ddf!r}) on sleepstudy: {1000 * t:.1f} ms")

    fit = _fit(sleep)
    n = args.refits
    print(f"\nbootstrap on sleepstudy, {n} refits (refits per second); {os.cpu_count()} cores")
    for label, stat in (("parameters (default)", None),
                        ("user statistic (full refit)", lambda f: f.fixef)):
        for cores in (1, None):
            t0 = time.perf_counter()
            fit.bootstrap(n, statistic=stat, random_seed=1, cores=cores, progressbar=False)
            el = time.perf_counter() - t0
            print(f"  {label:28s} cores={cores or 'all':>3}: {n / el:6.1f}")
    r = json.loads((INFERENCE / "bootstrap.json").read_text())
    print(f"  lme4 bootMer (1 core, R):            {r['refits_per_s']:6.1f}")


if __name__ == "__main__":
    main()
