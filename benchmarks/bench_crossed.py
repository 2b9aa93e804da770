"""Crossed and nested designs: the blocked marginal engine against the dense marginal
path and against bambi 0.17.2, in the same run.

1. Per log-density + gradient (CPU ms, median of repeats): blocked vs dense, on a
   kb07-like crossed design (56 subjects × 32 items, q = 2 and q = 4 on both factors,
   and the same design replicated to 10× the rows), InstEval
   ``y ~ service + (1 | s) + (1 | d) + (1 | dept)`` and a three-level nested design
   (100,000 rows, 10,000 classes in 500 schools).
2. NUTS, 4 chains × 1000 draws (1000 tuning), each fit in a fresh process (compilation
   counted as a user meets it): bayeslmm's default against bambi on the same data.

    python benchmarks/bench_crossed.py --gradients          # part 1 only (a minute)
    python benchmarks/bench_crossed.py --fits kb07 nested   # part 2, chosen designs
    python benchmarks/bench_crossed.py --fits insteval --timeout 1800

Results of a run are kept in ``benchmarks/results/crossed_*.txt``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

KB07_MAX = ("rt ~ spkr + prec + load + (1 + spkr + prec + load | subj) "
            "+ (1 + spkr + prec + load | item)")
# bambi 0.17 has no correlated group-specific effects (bambinos/bambi#702): it fits
# KB07_MAX as this model, which bayeslmm writes with ||
KB07_ZEROCORR = KB07_MAX.replace("| subj", "|| subj").replace("| item", "|| item")
KB07_Q2 = "rt ~ spkr + prec + load + (1 + prec | subj) + (1 + prec | item)"
INSTEVAL = "y ~ service + (1 | s) + (1 | d) + (1 | dept)"
NESTED = "y ~ x + (1 | school) + (1 | school:klass)"


def kb07(reps: int = 1, seed: int = 0) -> pd.DataFrame:
    """kb07-like: 56 subjects × 32 items fully crossed, three ±½ predictors, random
    intercepts and slopes (``reps`` copies of every cell)."""
    rng = np.random.default_rng(seed)
    s, i = np.meshgrid(np.arange(56), np.arange(32), indexing="ij")
    s, i = np.tile(s.ravel(), reps), np.tile(i.ravel(), reps)
    n = len(s)
    spkr, prec, load = (rng.choice([-0.5, 0.5], n) for _ in range(3))
    rt = (2000 + 100 * spkr + 300 * prec + 80 * load + rng.normal(0, 300, 56)[s]
          + rng.normal(0, 200, 32)[i] + 150 * prec * rng.normal(0, 1, 32)[i]
          + rng.normal(0, 500, n))
    return pd.DataFrame({"rt": rt, "spkr": spkr, "prec": prec, "load": load,
                         "subj": [f"S{k}" for k in s], "item": [f"I{k}" for k in i]})


def nested(n: int = 100_000, classes: int = 10_000, schools: int = 500,
           seed: int = 0) -> pd.DataFrame:
    """Students in classes in schools: y = 1 + 0.5 x + school + class + e."""
    rng = np.random.default_rng(seed)
    klass = rng.integers(0, classes, n)
    school = klass % schools
    y = (1 + 0.5 * (x := rng.normal(size=n)) + rng.normal(0, 0.5, schools)[school]
         + rng.normal(0, 0.3, classes)[klass] + rng.normal(size=n))
    return pd.DataFrame({"y": y, "x": x, "school": [f"s{k}" for k in school],
                         "klass": [f"c{k}" for k in klass]})


def designs() -> dict:
    import bayeslmm as blm

    return {"kb07 q=2": (KB07_Q2, kb07()), "kb07 maximal": (KB07_MAX, kb07()),
            "kb07 maximal x10 rows": (KB07_MAX, kb07(10)),
            "kb07 maximal zerocorr": (KB07_ZEROCORR, kb07()),
            "InstEval": (INSTEVAL, blm.datasets.load("InstEval")),
            "nested 100k": (NESTED, nested())}


def _cpu_ms(f, repeats: int) -> float:
    return _cpu_ms_batches(f, repeats)[1]


def _cpu_ms_batches(f, calls: int, batches: int = 20) -> tuple[float, float]:
    """(min, median) CPU ms per call over ``batches`` batches of ``calls / batches``
    calls (the machine is shared: the min is the least disturbed)."""
    f()
    per = max(1, calls // batches)
    times = []
    for _ in range(max(1, calls // per)):
        t = time.process_time()
        for _ in range(per):
            f()
        times.append((time.process_time() - t) / per)
    return float(np.min(times) * 1e3), float(np.median(times) * 1e3)


def gradients() -> pd.DataFrame:
    from bayeslmm.formula.design import build_design
    from bayeslmm.linalg.blocked_kernel import blocked_logp_grad
    from bayeslmm.linalg.blocked_layout import blocked_arrays
    from bayeslmm.linalg.crossprod import CrossProducts
    from bayeslmm.linalg.marginal_kernel import dense_logp_grad

    rows = []
    for name, (formula, data) in designs().items():
        d = build_design(formula, data)
        cp = CrossProducts.from_design(d)
        lay = blocked_arrays(cp)
        qmax = max(cp.q)
        Ls = np.stack([np.eye(qmax) * 0.5 * float(np.std(d.y)) for _ in cp.q])
        beta, sigma = np.zeros(d.X.shape[1]), float(np.std(d.y))
        Q = sum(q * m for q, m in zip(cp.q, cp.m, strict=True))
        fastest, blocked = _cpu_ms_batches(
            lambda: blocked_logp_grad(lay, beta, sigma, Ls, cp.q),  # noqa: B023
            5 if Q > 3000 else 400)
        dense = np.nan
        if Q <= 1500:
            a = cp.marginal_arrays()
            dense = _cpu_ms(lambda a=a, cp=cp, beta=beta, sigma=sigma, Ls=Ls: dense_logp_grad(
                a["zz"], a["z_xy"], a["xy_xy"], float(cp.n), beta, sigma, Ls,
                np.array(cp.q), np.array(cp.m), False), 5)
        kind = "crossed" if lay["full"] else "nested" if lay["blockdiag"] else "pattern"
        rows.append({"design": name, "rows": cp.n, "random effects": Q,
                     "rest (dense part)": Q - cp.q[0] * cp.m[0], "kernel": kind,
                     "blocked ms": blocked, "blocked min ms": fastest, "dense ms": dense})
    return pd.DataFrame(rows)


def _floor() -> str:
    """LAPACK's dpotrf + dpotri of InstEval's dense part alone (the floor of one exact
    gradient there)."""
    import scipy.linalg as sla

    A = np.random.default_rng(0).normal(size=(1142, 1200))
    S = A @ A.T
    ms = _cpu_ms(lambda: sla.lapack.dpotri(sla.lapack.dpotrf(S, lower=1)[0], lower=1), 5)
    return f"LAPACK dpotrf + dpotri of a 1142 × 1142 matrix: {ms:.1f} ms"


def run_fit(spec: dict) -> dict:
    """Child process: bayeslmm's default fit of one design."""
    import resource

    import bayeslmm as blm

    t0 = time.perf_counter()
    formula, data = designs()[spec["design"]]
    fit = blm.LMM(formula, data).fit(draws=1000, tune=1000, chains=4, random_seed=1,
                                     progressbar=False, log_likelihood=False)
    total = time.perf_counter() - t0
    d = fit.diagnostics
    return {"tool": f"bayeslmm ({fit.info.get('sampler')}, {fit.info.get('parameterization')})",
            "total_s": total, "cpu_s": time.process_time(),
            "divergences": d["divergences"],
            "min_ess_bulk": d["min_ess_bulk"], "max_rhat": d["max_rhat"],
            "peak_mem_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def fits(names: list[str], timeout: float, bambi: bool) -> pd.DataFrame:
    from bench_sampling import child, ensure_bambi

    keys = {"kb07": "kb07 maximal", "insteval": "InstEval", "nested": "nested 100k"}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for short in names:
            name = keys[short]
            formula, data = designs()[name]
            ours = [name] + (["kb07 maximal zerocorr"] if short == "kb07" else [])
            for own in ours:
                r = child([sys.executable, __file__, "--child", json.dumps({"design": own})],
                          timeout)
                rows.append({"design": own, **r})
                print(json.dumps(rows[-1]), flush=True)
            if bambi:
                path = Path(tmp) / "data.csv"
                data.to_csv(path, index=False)
                cats = [c for c in data.columns if data[c].dtype == object
                        or isinstance(data[c].dtype, pd.CategoricalDtype)]
                spec = {"csv": str(path), "formula": formula, "categorical": cats,
                        "draws": 1000, "tune": 1000, "chains": 4, "seed": 1,
                        "cores": min(4, os.cpu_count() or 1)}
                r = child([str(ensure_bambi()), str(HERE / "bambi_runner.py"),
                           json.dumps(spec)], timeout)
                rows.append({"design": name, **r})
                print(json.dumps(rows[-1]), flush=True)
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gradients", action="store_true")
    ap.add_argument("--fits", nargs="*", default=[], choices=["kb07", "insteval", "nested"])
    ap.add_argument("--no-bambi", action="store_true")
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print("RESULT " + json.dumps(run_fit(json.loads(args.child))))
        return
    fmt = {"float_format": lambda v: f"{v:.3g}", "index": False}
    print(f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}")
    if args.gradients:
        print("\nPer log-density + gradient, CPU ms (median and min of batches)")
        print(gradients().to_string(**fmt))
        print(_floor())
    if args.fits:
        print("\nNUTS 4 chains x 1000 draws (1000 tuning), fresh process per fit")
        print(fits(args.fits, args.timeout, not args.no_bambi).to_string(**fmt))


if __name__ == "__main__":
    main()
