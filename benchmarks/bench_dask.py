"""Data larger than memory and many models, on dask: times and peak memory.

Usage::

    python benchmarks/bench_dask.py rows  [--rows 1e8] [--groups 1e5] [--dir DIR]
                                          [--memory-rows 1e7] [--draws 1000] [--chains 4]
                                          [--b-draws auto|memory|lazy]
    python benchmarks/bench_dask.py many  [--models 1000] [--rows-per-model 2000]
    python benchmarks/bench_dask.py grm   [--n 5000] [--p 200000] [--chunk 8192] [--dir DIR]
    python benchmarks/bench_dask.py gradient [--draws 100]    (NUTS cost on 1e5 groups)
    python benchmarks/bench_dask.py ar1   [--rows 1e6] [--groups 1e4] [--memory-rows 1e6]
                                          [--draws 0] [--dir DIR]

``rows``: ``y ~ x + (x | g)`` with ``--groups`` groups, written once as a partitioned
Parquet dataset (files of 10⁶ rows) under ``--dir``. Out of core: ``LMM(formula,
dd.read_parquet(dir))`` (two passes over the files: levels, then cross-products, on
dask's threads), ``fit_map()`` (REML), then ``fit()`` (NUTS, ``--chains`` × ``--draws``
after as many tuning steps, the random effects drawn exactly afterwards: ``--b-draws``,
as ``fit``'s ``b_draws``; then ``ranef``, which reads every b draw). In memory:
the same on the first ``--memory-rows`` rows read by pandas. Each path runs in its own
process, which reports its peak resident memory.

``ar1``: ``y ~ x + (1 | g)`` with AR(1) errors (Phi 0.6) over the integer times ``t``
of each of ``--groups`` series (rows / groups each), written once as Parquet files of
10⁶ rows in series order (file boundaries split series), fitted with
``residual=AR1(time="t", group="g")``: out of core (the partitions' statistics, series
joined at the boundaries) and in memory, as ``rows`` does.

``gradient``: NUTS's cost on ``--groups`` groups' cross-products (the first file of the
``rows`` data): CPU time of 100 gradients, and a one-chain nutpie run of ``--draws``.

``many``: ``fit_many`` of ``--models`` responses of a ``(1 | batch)`` design with
``--rows-per-model`` rows, REML, on a 2-worker ``LocalCluster`` (its start included).

``grm``: 0/1/2 genotypes (int8) written once, chunk by chunk, as a zarr array in column
chunks of ``--chunk`` under ``--dir``, then, in a process of its own, ``blm.dask.grm`` of
``da.from_zarr(...)`` (standardized): memory is the n × n GRM plus a block or two,
whatever p. (A NumPy memmap of a ``.npy`` file works too, but its mapped pages count in
the process's resident memory, which then measures the file, not the GRM.)

Each stage prints a JSON line; ``benchmarks/results/dask_*.txt`` hold runs.
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
import warnings

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FORMULA = "y ~ x + (x | g)"


def _peak_mb() -> float:
    """Peak resident memory of this process and its finished children, MB."""
    me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(me, kids) / 1024


class Clock:
    """Wall time and CPU time (this process and its reaped children: the cluster's
    workers) since the last ``lap``: the machine is shared, so CPU seconds say what a
    stage cost when the wall clock is stretched by others' jobs."""

    def __init__(self):
        self._mark = self._now()

    @staticmethod
    def _now():
        t = os.times()
        return time.perf_counter(), t.user + t.system, t.children_user + t.children_system

    def lap(self, out: dict, name: str) -> None:
        now = self._now()
        out[f"{name}_s"] = round(now[0] - self._mark[0], 3)
        out[f"{name}_cpu_s"] = round(now[1] - self._mark[1] + now[2] - self._mark[2], 3)
        self._mark = now


def write_rows(path: str, rows: int, groups: int, per_file: int = 1_000_000, seed: int = 1):
    """y = 1 + 0.5x + b₀ + b₁x + e, b ~ N(0, diag(0.8², 0.3²)), written in files."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    os.makedirs(path, exist_ok=True)
    rng = np.random.default_rng(seed)
    b0, b1 = rng.normal(0, 0.8, groups), rng.normal(0, 0.3, groups)
    for k, start in enumerate(range(0, rows, per_file)):
        m = min(per_file, rows - start)
        g = rng.integers(0, groups, m).astype(np.int32)
        x = rng.normal(size=m)
        y = 1.0 + 0.5 * x + b0[g] + b1[g] * x + rng.normal(size=m)
        pq.write_table(pa.table({"y": y, "x": x, "g": g}), f"{path}/part-{k:05d}.parquet")


def write_series(path: str, rows: int, groups: int, per_file: int = 1_000_000,
                 seed: int = 2, phi: float = 0.6):
    """Series of rows/groups consecutive times each, AR(1) errors, in series order."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    os.makedirs(path, exist_ok=True)
    rng = np.random.default_rng(seed)
    L = rows // groups
    b = rng.normal(0, 0.8, groups)
    g = np.repeat(np.arange(groups, dtype=np.int32), L)
    t = np.tile(np.arange(L, dtype=np.int32), groups)
    e = rng.normal(size=(groups, L))
    for k in range(1, L):
        e[:, k] = phi * e[:, k - 1] + np.sqrt(1 - phi * phi) * e[:, k]
    x = rng.normal(size=groups * L)
    y = 1.0 + 0.5 * x + b[g] + e.ravel()
    for k, start in enumerate(range(0, groups * L, per_file)):
        sl = slice(start, start + per_file)
        pq.write_table(pa.table({"y": y[sl], "x": x[sl], "g": g[sl], "t": t[sl]}),
                       f"{path}/part-{k:05d}.parquet")


def run_rows(args) -> dict:
    import pandas as pd

    import bayeslmm as blm

    out = {"path": args.path, "rows": int(args.rows)}
    files = sorted(os.listdir(args.dir))[: -(-int(args.rows) // 1_000_000)]
    clock = Clock()
    if args.path == "dask":
        import dask.dataframe as dd

        data = dd.read_parquet([os.path.join(args.dir, f) for f in files])
    else:
        data = pd.concat([pd.read_parquet(os.path.join(args.dir, f)) for f in files],
                         ignore_index=True).iloc[: int(args.rows)]
        clock.lap(out, "read")
    if args.series:
        m = blm.LMM("y ~ x + (1 | g)", data, residual=blm.AR1(time="t", group="g"))
    else:
        m = blm.LMM(FORMULA, data)
    clock.lap(out, "model")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = m.fit_map()
    clock.lap(out, "fit_map")
    out["nobs"], out["groups"] = m.nobs, m.ngroups["g"]
    out["fixef"] = est.fixef.round(5).tolist()
    out["loglik"] = est.loglik
    if args.series:
        out["Phi"] = round(est.residual_params["Phi"], 6)
    out["peak_mb_after_map"] = _peak_mb()
    if args.draws:
        if args.backend != "auto":  # nutpie's backend forced (auto: JAX for costly models)
            import bayeslmm.sampling.nutpie_backend as nb

            nb.pick_backend = lambda cost_hint, cacheable=True: args.backend
        post = m.fit(draws=args.draws, tune=args.draws, chains=args.chains, random_seed=1,
                     progressbar=False, cores=args.cores, b_draws=args.b_draws)
        clock.lap(out, "fit")
        out["peak_mb_after_fit"] = _peak_mb()
        out["nutpie_backend"] = post.idata.posterior.attrs.get("nutpie_backend")
        out["divergences"] = int(post.divergences)
        out["post_fixef"] = post.fixef.round(4).tolist()
        d = post.diagnostics
        out["min_ess_bulk"], out["max_rhat"] = d["min_ess_bulk"], d["max_rhat"]
        b = post.idata.posterior["b_g"]
        out["b_draws"], out["b_values"] = args.b_draws, int(b.size)
        out["b_in_memory"] = bool(b.variable._in_memory)
        out["post_ranef_sd"] = float(post.ranef["g"]["x"].std())  # reads every b draw
        clock.lap(out, "ranef")
    out["peak_mb"] = _peak_mb()
    return out


def run_many(args) -> dict:
    import pandas as pd
    from distributed import Client, LocalCluster

    import bayeslmm as blm

    rng = np.random.default_rng(2)
    n, k = args.rows_per_model, args.models
    batch = np.repeat(np.arange(20), n // 20)
    x = rng.normal(size=n)
    ys = (1 + 0.5 * x[:, None] + rng.normal(0, 0.7, (20, k))[batch]
          + rng.normal(size=(n, k)))
    df = pd.concat([pd.DataFrame({"batch": batch, "x": x}),
                    pd.DataFrame(ys, columns=[f"y{j}" for j in range(k)])], axis=1)
    out = {"models": k, "rows_per_model": n}
    clock = Clock()
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as lc, \
            Client(lc) as client:
        clock.lap(out, "cluster_start")
        res = blm.fit_many("~ x + (1 | batch)", df, responses=[f"y{j}" for j in range(k)],
                           client=client)
        clock.lap(out, "fit_many")
    clock.lap(out, "cluster_close")  # the workers' CPU is counted once they are reaped
    out.update(failed=int(res["error"].notna().sum()),
               mean_beta_x=float(res["beta[x]"].mean()), peak_mb_driver=_peak_mb())
    return out


def write_genotypes(path: str, n: int, p: int, chunk: int, seed: int = 3) -> None:
    """0/1/2 genotypes (int8) as a zarr array in column chunks of ``chunk``, written
    chunk by chunk (memory: one chunk)."""
    import zarr

    rng = np.random.default_rng(seed)
    z = zarr.create_array(path, shape=(n, p), chunks=(n, chunk), dtype="int8")
    for j in range(0, p, chunk):
        w = min(chunk, p - j)
        freq = rng.uniform(0.05, 0.5, w)
        z[:, j:j + w] = rng.binomial(2, freq, size=(n, w)).astype(np.int8)


def run_grm(args) -> dict:
    """In a process of its own (its peak memory is the GRM's alone)."""
    import dask.array as da

    import bayeslmm as blm

    path = os.path.join(args.dir, f"genotypes_{args.n}_{args.p}_{args.chunk}.zarr")
    out = {"n": args.n, "p": args.p, "chunk": args.chunk}
    base_mb = _peak_mb()
    clock = Clock()
    X = da.from_zarr(path)  # read chunk by chunk: anonymous memory, no mapped file
    K = blm.dask.grm(X, standardize=True)
    clock.lap(out, "grm")
    out.update(peak_mb=_peak_mb(), peak_mb_after_imports=base_mb, K_mb=K.nbytes / 2**20,
               block_f32_mb=args.n * args.chunk * 4 / 2**20,
               genotypes_mb=args.n * args.p / 2**20, diag_mean=float(np.diag(K).mean()))
    return out


def run_gradient(args) -> dict:
    """NUTS's cost on the cross-products of ``--groups`` groups (the same for any number
    of rows): one log-density gradient (CPU ms), then a short nutpie run (one chain,
    ``--draws`` tuning steps and draws) for the leapfrog steps per draw."""
    import pandas as pd

    import bayeslmm as blm
    import bayeslmm.sampling.nutpie_backend as nb
    from bayeslmm.pymc.direct import DirectModel

    data = os.path.join(args.dir, f"rows_{int(args.rows)}_{int(args.groups)}")
    m = blm.LMM(FORMULA, pd.read_parquet(os.path.join(data, "part-00000.parquet")))
    dm = DirectModel.of(m.marginal_model, m.design, m._priors, m._cross_products)
    x = np.random.default_rng(1).normal(0, 0.1, dm.ndim)
    dm.logp_grad(x)
    out = {"groups": m.ngroups["g"]}
    clock = Clock()
    for _ in range(100):
        dm.logp_grad(x)
    clock.lap(out, "gradients_x100")
    nb.pick_backend = lambda cost_hint, cacheable=True: "numba"  # JAX: see the notes
    post = m.fit(draws=args.draws, tune=args.draws, chains=1, random_seed=1,
                 progressbar=False)
    clock.lap(out, "nuts_1_chain")
    out.update(draws=args.draws, mean_steps=float(post.idata.sample_stats["n_steps"].mean()),
               divergences=int(post.divergences))
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("stage", choices=["rows", "ar1", "many", "grm", "gradient", "_rows",
                                      "_grm"])
    ap.add_argument("--series", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--rows", type=float, default=1e8)
    ap.add_argument("--groups", type=float, default=1e5)
    ap.add_argument("--memory-rows", type=float, default=1e7)
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--cores", type=int, default=None)
    ap.add_argument("--backend", default="auto", choices=["auto", "numba", "jax"])
    ap.add_argument("--b-draws", default="auto", choices=["auto", "memory", "lazy"])
    ap.add_argument("--models", type=int, default=1000)
    ap.add_argument("--rows-per-model", type=int, default=2000)
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--p", type=int, default=200_000)
    ap.add_argument("--chunk", type=int, default=8192)
    ap.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "bayeslmm_bench"))
    ap.add_argument("--path", default="dask")
    args = ap.parse_args(argv)
    sys.path.insert(0, ROOT)
    if args.stage == "_rows":
        print(json.dumps(run_rows(args)), flush=True)
        return
    if args.stage in ("rows", "ar1"):
        series = args.stage == "ar1"
        data = os.path.join(args.dir, f"{'series' if series else 'rows'}_{int(args.rows)}_"
                            f"{int(args.groups)}")
        if not os.path.exists(data):
            t = time.perf_counter()
            (write_series if series else write_rows)(data, int(args.rows), int(args.groups))
            print(json.dumps({"written_s": time.perf_counter() - t, "dir": data}), flush=True)
        for path, rows in (("dask", args.rows), ("pandas", args.memory_rows)):
            if rows <= 0:
                continue
            cmd = [sys.executable, __file__, "_rows", "--path", path, "--rows", str(rows),
                   "--dir", data, "--draws", str(args.draws), "--chains", str(args.chains),
                   "--backend", args.backend, "--b-draws", args.b_draws]
            cmd += ["--cores", str(args.cores)] if args.cores else []
            cmd += ["--series"] if series else []
            subprocess.run(cmd, check=True, env={**os.environ, "PYTHONPATH": ROOT})
        return
    if args.stage == "grm":
        path = os.path.join(args.dir, f"genotypes_{args.n}_{args.p}_{args.chunk}.zarr")
        if not os.path.exists(path):
            t = time.perf_counter()
            write_genotypes(path, args.n, args.p, args.chunk)
            print(json.dumps({"written_s": time.perf_counter() - t, "path": path}), flush=True)
        cmd = [sys.executable, __file__, "_grm", "--n", str(args.n), "--p", str(args.p),
               "--chunk", str(args.chunk), "--dir", args.dir]
        subprocess.run(cmd, check=True, env={**os.environ, "PYTHONPATH": ROOT})
        return
    run = {"many": run_many, "gradient": run_gradient}.get(args.stage, run_grm)
    out = run(args)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
