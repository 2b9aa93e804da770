"""NUTS speed and efficiency: bayeslmm (marginal and conditional, each sampler) vs bambi.

Every configuration runs in a fresh subprocess (so compilation is counted as a user
meets it, and peak memory is that run's own), one after the other. Prints a table:
wall time split into build+compile and sampling, divergences, min bulk and tail ESS
over the hyper-parameters and fixed effects, ESS per second of wall time, peak memory.

    python benchmarks/bench_sampling.py                       # sleepstudy, radon, 10k
    python benchmarks/bench_sampling.py --sizes 10k 100k 1m   # simulated data sizes
    python benchmarks/bench_sampling.py --no-bambi --datasets sleepstudy

bambi 0.17.2 pins formulae < 0.7, so it runs from its own virtual environment,
``benchmarks/.bambi-venv``, made on first use. bambi has no correlated random effects:
it is compared on ``(Days || Subject)`` and on ``(Days | Subject)`` (which it reads as
uncorrelated terms).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
VENV = HERE / ".bambi-venv"
SIZES = {"10k": (10_000, 200), "100k": (100_000, 2_000), "1m": (1_000_000, 20_000)}


def simulate(n: int, groups: int, seed: int = 0) -> pd.DataFrame:
    """Correlated random intercept and slope: y = 1 + 0.5 x + b0 + b1 x + e."""
    rng = np.random.default_rng(seed)
    g = rng.integers(0, groups, n)
    x = rng.normal(size=n)
    cov = np.array([[1.0, 0.3 * 0.5], [0.3 * 0.5, 0.25]])
    b = rng.multivariate_normal([0, 0], cov, size=groups)
    y = 1 + 0.5 * x + b[g, 0] + b[g, 1] * x + rng.normal(scale=1.0, size=n)
    return pd.DataFrame({"y": y, "x": x, "g": pd.Categorical([f"g{k}" for k in g])})


def cases(datasets: list[str], sizes: list[str], tmp: Path) -> list[dict]:
    import bayeslmm as blm

    out = []
    for name in datasets:
        df = blm.datasets.load(name)
        path = tmp / f"{name}.csv"
        df.to_csv(path, index=False)
        if name == "sleepstudy":
            for f in ("Reaction ~ Days + (Days | Subject)", "Reaction ~ Days + (Days || Subject)"):
                out.append({"data": name, "csv": str(path), "formula": f,
                            "categorical": ["Subject"], "rows": len(df)})
        elif name == "radon":
            out.append({"data": name, "csv": str(path), "categorical": ["county"],
                        "formula": "log_radon ~ floor + (1 | county)", "rows": len(df)})
    for size in sizes:
        n, m = SIZES[size]
        path = tmp / f"sim_{size}.csv"
        simulate(n, m).to_csv(path, index=False)
        out.append({"data": f"sim {size} ({m} groups)", "csv": str(path), "rows": n,
                    "formula": "y ~ x + (x | g)", "categorical": ["g"]})
    return out


def run_bayeslmm(spec: dict) -> dict:
    """Child process: one bayeslmm fit, timings from the user's point of view."""
    import resource

    import bayeslmm as blm

    df = pd.read_csv(spec["csv"])
    for col in spec["categorical"]:
        df[col] = pd.Categorical(df[col].astype(str))
    t0 = time.perf_counter()
    model = blm.LMM(spec["formula"], df)
    fit = model.fit(draws=spec["draws"], tune=spec["tune"], chains=spec["chains"],
                    random_seed=spec["seed"], sampler=spec["sampler"],
                    parameterization=spec["parameterization"], progressbar=False,
                    log_likelihood=False)
    total = time.perf_counter() - t0
    sampling = float(fit.idata.posterior.attrs.get("sampling_time", np.nan))
    d = fit.diagnostics
    out = {"tool": f"bayeslmm {spec['parameterization']} ({spec['sampler']})",
           "compile_s": total - sampling, "sample_s": sampling, "total_s": total,
           "divergences": d["divergences"], "min_ess_bulk": d["min_ess_bulk"],
           "min_ess_tail": d["min_ess_tail"], "max_rhat": d["max_rhat"],
           "peak_mem_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    grad = fit.info.get("grad_time_ms")
    if grad is not None:
        out["grad_ms"] = grad
    return out


def ensure_bambi() -> Path:
    py = VENV / "bin" / "python"
    if not py.exists():
        print(f"creating {VENV} with bambi 0.17.2 (first use only) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "bambi==0.17.2",
                        "matplotlib<3.11"], check=True)
    return py


def child(cmd: list[str], timeout: float) -> dict:
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {timeout:.0f} s"}
    for line in res.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    return {"error": (res.stderr.strip().splitlines() or ["no output"])[-1][:80]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="*", default=["sleepstudy", "radon"])
    ap.add_argument("--sizes", nargs="*", default=["10k"], choices=list(SIZES))
    ap.add_argument("--samplers", nargs="*", default=None)
    ap.add_argument("--parameterizations", nargs="*", default=["marginal", "conditional"])
    ap.add_argument("--no-bambi", action="store_true")
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--tune", type=int, default=1000)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print("RESULT " + json.dumps(run_bayeslmm(json.loads(args.child))))
        return
    from bayeslmm.sampling.nuts import available_samplers

    samplers = args.samplers or available_samplers()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for case in cases(args.datasets, args.sizes, Path(tmp)):
            base = {"draws": args.draws, "tune": args.tune, "chains": args.chains, "seed": 1}
            runs = []
            for par in args.parameterizations:
                if par == "conditional" and case["rows"] > 10_000:
                    continue  # many minutes per fit: the point of the marginal model
                for s in samplers:
                    spec = {**case, **base, "sampler": s, "parameterization": par}
                    runs.append([sys.executable, __file__, "--child", json.dumps(spec)])
            if not args.no_bambi and case["rows"] <= 100_000:
                spec = {**case, **base, "cores": min(args.chains, os.cpu_count() or 1)}
                runs.append([str(ensure_bambi()), str(HERE / "bambi_runner.py"),
                             json.dumps(spec)])
            for cmd in runs:
                r = child(cmd, args.timeout)
                r.update(data=case["data"], formula=case["formula"])
                if "min_ess_bulk" in r:
                    r["ess_bulk_per_s"] = r["min_ess_bulk"] / r["total_s"]
                rows.append(r)
                print(json.dumps(r), flush=True)
    table = pd.DataFrame(rows)
    cols = ["data", "formula", "tool", "compile_s", "sample_s", "total_s", "divergences",
            "min_ess_bulk", "min_ess_tail", "ess_bulk_per_s", "max_rhat", "peak_mem_mb",
            "grad_ms", "error"]
    table = table[[c for c in cols if c in table.columns]]
    print()
    print(f"{args.chains} chains x {args.draws} draws ({args.tune} tuning), "
          f"{os.cpu_count()} cores")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3g}"))


if __name__ == "__main__":
    main()
