"""Structured residuals on sufficient statistics (issue 20): per-gradient cost, Orthodont
NUTS end to end (first fit ever, warm), and a 100k-row AR(1) model sampled.

1. **Per gradient** (``y ~ x + (x | g)``, 2,000 groups, 10k and 100k rows; iid
   residuals first, as the yardstick): the log-density and gradient nutpie runs (the
   precompiled direct kernel), the PyMC model's compiled gradient (PyTensor's C backend,
   what PyMC's sampler runs) and, for AR(1), the former row-wise path (the data whitened
   inside the graph). Milliseconds per evaluation, the best of 5 batches (the machine
   is shared), wall and CPU (``time.process_time``, all threads of the process).
2. **Orthodont** ``distance ~ age + Sex + (1 | Subject)`` with AR1 and CAR1(age), NUTS
   4 chains × 1000 draws after 1000 tuning steps, each in a new process: *first ever*
   with empty PyTensor, numba and bayeslmm caches; a second fit in that process; a
   *warm* new process. Times are the model's build plus ``fit`` (imports apart), wall
   and CPU (``time.process_time`` of the process; ``cpu_children_s``: the whole child
   process with the compilers it ran, from ``getrusage``). The iid model is measured
   beside them, in the same run, as the yardstick of the machine.
3. **100k rows AR(1)** (2,000 groups × 50 times, Phi = 0.6), NUTS 4 × 1000, and the
   same data with iid residuals as the yardstick (``gradients``: those after tuning).

    python benchmarks/bench_residual.py            # all
    python benchmarks/bench_residual.py --skip 3   # without the 100k NUTS run
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

STRUCTURES = {
    "AR1": "AR1(group='g', time='t')",
    "CAR1 (integer gaps)": "CAR1(time='day', group='g')",
    "CompSymm": "CompSymm(group='g')",
    "VarIdent (3 levels)": "VarIdent(by='site')",
}


def simulate(n: int, groups: int, phi: float = 0.6, seed: int = 0) -> pd.DataFrame:
    """y = 1 + 0.5 x + b0 + b1 x + e, e AR(1) within groups (Phi per time step); visit
    days with gaps of 1–3; a three-level site per group."""
    rng = np.random.default_rng(seed)
    per = n // groups
    g = np.repeat(np.arange(groups), per)
    t = np.tile(np.arange(per), groups)
    day = np.cumsum(rng.integers(1, 4, size=(groups, per)), axis=1).ravel()
    x = rng.normal(size=len(g))
    b = rng.multivariate_normal([0, 0], [[1.0, 0.15], [0.15, 0.25]], size=groups)
    e = np.empty((groups, per))
    e[:, 0] = rng.normal(size=groups)
    for k in range(1, per):
        e[:, k] = phi * e[:, k - 1] + np.sqrt(1 - phi**2) * rng.normal(size=groups)
    y = 1 + 0.5 * x + b[g, 0] + b[g, 1] * x + e.ravel()
    site = np.array(["a", "b", "c"])[np.arange(groups) % 3][g]
    return pd.DataFrame({"y": y, "x": x, "g": pd.Categorical([f"g{k}" for k in g]),
                         "t": t, "day": day, "site": site})


def _cpu_ms(f, x, repeats: int) -> tuple[float, float]:
    """Milliseconds per call, wall and CPU: the best of 5 batches each (other work on a
    shared machine only ever adds time)."""
    f(x)
    wall = cpu = np.inf
    for _ in range(5):
        t, c = time.perf_counter(), time.process_time()
        for _ in range(repeats):
            f(x)
        wall = min(wall, (time.perf_counter() - t) / repeats * 1e3)
        cpu = min(cpu, (time.process_time() - c) / repeats * 1e3)
    return wall, cpu


def gradients() -> pd.DataFrame:
    import bayeslmm as blm
    from bayeslmm.pymc.direct import DirectModel
    from bayeslmm.pymc.marginal import _build_whitened  # the former path, for comparison
    from bayeslmm.residual.sufficient import residual_stats

    rows = []
    for n in (10_000, 100_000):
        df = simulate(n, 2000)
        m = blm.LMM("y ~ x + (x | g)", df)  # iid residuals: the yardstick
        model = m.build("marginal")
        direct = DirectModel.of(model, m.design, m._priors, m._cross_products)
        x0 = np.concatenate([np.ravel(v) for v in model.initial_point().values()])
        f = model.logp_dlogp_function(ravel_inputs=True)
        f.set_extra_values({})
        dw, dc = _cpu_ms(direct.logp_grad, x0, 100)
        pw, pc = _cpu_ms(f, x0, 100)
        rows.append({"rows": n, "structure": "iid (yardstick)", "statistics": 1,
                     "direct_ms": dw, "direct_cpu_ms": dc, "pytensor_c_ms": pw,
                     "pytensor_c_cpu_ms": pc})
        print(rows[-1], flush=True)
        for name, text in STRUCTURES.items():
            m = blm.LMM("y ~ x + (x | g)", df, residual=blm.residual.parse_residual(text))
            t = time.perf_counter()
            stats = residual_stats(m.design, m.residual)
            stats_s = time.perf_counter() - t
            model = m.build("marginal")
            direct = DirectModel.of(model, m.design, m._priors, None, residual=m.residual,
                                    stats=stats)
            x0 = np.concatenate([np.ravel(v) for v in model.initial_point().values()])
            t = time.perf_counter()
            f = model.logp_dlogp_function(ravel_inputs=True)
            f.set_extra_values({})
            compile_s = time.perf_counter() - t
            dw, dc = _cpu_ms(direct.logp_grad, x0, 100)
            pw, pc = _cpu_ms(f, x0, 100)
            row = {"rows": n, "structure": name, "statistics": len(stats.parts),
                   "stats_s": stats_s, "direct_ms": dw, "direct_cpu_ms": dc,
                   "pytensor_c_ms": pw, "pytensor_c_cpu_ms": pc, "compile_s": compile_s}
            if name == "AR1":
                old = _build_whitened(m.design, m._priors, m.residual)
                g = old.logp_dlogp_function(ravel_inputs=True)
                g.set_extra_values({})
                row["row_wise_ms (before)"], row["row_wise_cpu_ms"] = _cpu_ms(g, x0, 4)
            rows.append(row)
            print(row, flush=True)
    return pd.DataFrame(rows)


CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import bayeslmm as blm
t1 = time.perf_counter()
df = blm.datasets.load("Orthodont")
out = []
for k in range(int(sys.argv[2])):
    t, c = time.perf_counter(), time.process_time()
    text = sys.argv[1]
    m = blm.LMM("distance ~ age + Sex + (1 | Subject)", df,
                residual=None if text == "iid" else blm.residual.parse_residual(text))
    post = m.fit(draws=1000, tune=1000, chains=4, random_seed=k + 1, progressbar=False)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    d = post.diagnostics
    out.append({"import_s": t1 - t0, "total_s": wall, "cpu_s": cpu,
                "sampling_s": post.idata.posterior.attrs["sampling_time"],
                "backend": post.idata.posterior.attrs.get("nutpie_backend"),
                "divergences": d["divergences"], "min_ess_bulk": d["min_ess_bulk"],
                "max_rhat": d["max_rhat"],
                "Phi": float(post.idata.posterior["Phi"].mean()) if "Phi" in post.idata.posterior
                else None})
print("RESULT " + json.dumps(out))
"""


def _child(args: list[str], env: dict) -> list[dict]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    res = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True,
                         env=env, timeout=1800, cwd=tempfile.gettempdir())
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    for line in res.stdout.splitlines():
        if line.startswith("RESULT "):
            return [{**r, "cpu_children_s": cpu if k == 0 else None}
                    for k, r in enumerate(json.loads(line[7:]))]
    raise RuntimeError(res.stderr[-3000:])


def orthodont() -> pd.DataFrame:
    rows = []
    for text in ("iid", "AR1(group=Subject)", "CAR1(time=age, group=Subject)"):
        with tempfile.TemporaryDirectory() as tmp:
            env = {**os.environ, "PYTHONPATH": str(ROOT),
                   "PYTENSOR_FLAGS": f"base_compiledir={tmp}/pytensor",
                   "NUMBA_CACHE_DIR": f"{tmp}/numba", "BAYESLMM_CACHE_DIR": f"{tmp}/bayeslmm"}
            cold = _child([text, "2"], env)
            warm = _child([text, "1"], env)
        for label, r in (("first ever (empty caches)", cold[0]),
                         ("same process, 2nd", cold[1]), ("warm new process", warm[0])):
            rows.append({"residual": text, "fit": label, **r})
            print(rows[-1], flush=True)
    return pd.DataFrame(rows)


def big_nuts() -> pd.DataFrame:
    import bayeslmm as blm

    df = simulate(100_000, 2000)
    rows = []
    for label, residual in (("AR1", blm.AR1(group="g", time="t")), ("iid (yardstick)", None)):
        t, c = time.perf_counter(), time.process_time()
        m = blm.LMM("y ~ x + (x | g)", df, residual=residual)
        post = m.fit(draws=1000, tune=1000, chains=4, random_seed=1, progressbar=False)
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        d, pos = post.diagnostics, post.idata.posterior
        rows.append({"residual": label, "rows": len(df), "groups": 2000, "total_s": wall,
                     "cpu_s": cpu,
                     "sampling_s": pos.attrs["sampling_time"],
                     "backend": pos.attrs.get("nutpie_backend"),
                     "gradients": int(post.idata.sample_stats.n_steps.sum()),
                     "divergences": d["divergences"], "min_ess_bulk": d["min_ess_bulk"],
                     "max_rhat": d["max_rhat"],
                     "Phi (true 0.6)": float(pos["Phi"].mean()) if "Phi" in pos else None})
        print(rows[-1], flush=True)
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip", type=int, nargs="*", default=[], help="parts to skip (1, 2, 3)")
    args = ap.parse_args()
    fmt = {"float_format": lambda v: f"{v:.3g}", "index": False}
    parts = [(1, "Per gradient, y ~ x + (x | g), 2,000 groups (ms, best of 5 batches)", gradients),
             (2, "Orthodont distance ~ age + Sex + (1 | Subject), NUTS 4 x 1000 (seconds)",
              orthodont),
             (3, "100k rows AR(1), y ~ x + (x | g), NUTS 4 x 1000", big_nuts)]
    tables = []
    for k, title, fn in parts:
        if k not in args.skip:
            tables.append((title, fn()))
    print(f"\n{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end")
    for title, table in tables:
        print(f"\n{title}\n{table.to_string(**fmt)}")


if __name__ == "__main__":
    main()
