"""NUTS on many groups of one factor: the cost of a gradient and of a 4 × 1000 run.

Usage::

    python benchmarks/bench_small_q.py gradient [--groups 1e3 1e4 1e5] [--rows-per-group 5]
    python benchmarks/bench_small_q.py nuts     [--groups 1e5] [--draws 1000] [--chains 4]
                                                [--formula "y ~ x + (x | g)"] [--low-rank]

The kernels see only per-group cross-products, so a synthetic in-memory design of
``--groups`` groups × a few rows stands for 10⁸ rows in the same groups (the cross-
products of ``bench_dask.py rows`` have the same shapes).

``gradient``: CPU time (``time.process_time``, best of 5 batches) of one log-density and
gradient on the direct nutpie path (:class:`bayeslmm.pymc.direct.DirectModel`), general
kernel (``marginal_kernel.one_factor_logp_grad``, "before") against the closed-form one
(``small_q_kernel``, "after"), for ``(1 | g)`` and ``(x | g)``; the bytes a gradient reads
(the levels' cross-products) and the time to merely read them (a compiled sum over the
same arrays: the memory floor), and the single-core read bandwidth from DRAM (a 1 GB
array).

``nuts``: ``LMM(formula, df).fit(draws, tune=draws, chains)`` in this process (the
chains in nutpie's threads, the b draws afterwards): wall and CPU seconds of NUTS and of
the exact b draws apart, gradients evaluated (tuning included, counted), leapfrog steps
per draw, step size, divergences, minimum bulk/tail ESS over β, sd, corr and σ, and peak
memory. Each stage prints a table and a JSON line; ``benchmarks/results/small_q_*.txt``
hold runs.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import sys
import time

import numba
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def frame(groups: int, per: int, seed: int = 1):
    """y = 1 + 0.5x + b₀ + b₁x + e, b ~ N(0, diag(0.8², 0.3²)), ``per`` rows a group."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(groups), per)
    x = rng.normal(size=g.size)
    b0, b1 = rng.normal(0, 0.8, groups), rng.normal(0, 0.3, groups)
    y = 1.0 + 0.5 * x + b0[g] + b1[g] * x + rng.normal(size=g.size)
    return pd.DataFrame({"y": y, "x": x, "g": g})


def _cpu_per_call(f, reps: int, batches: int = 5) -> float:
    best = np.inf
    for _ in range(batches):
        t = time.process_time()
        for _ in range(reps):
            f()
        best = min(best, (time.process_time() - t) / reps)
    return best


@numba.njit(cache=True, nogil=True, fastmath={"reassoc"})
def _read_all(a, b):  # pragma: no cover - compiled
    """Σ of every value of two arrays (flattened): their bytes read once (a vectorised
    sum, bound by the memory's bandwidth, not by the latency of additions)."""
    acc = 0.0
    for v in a.ravel():
        acc += v
    for v in b.ravel():
        acc += v
    return acc


def _dram_gb_s() -> float:
    big = np.ones(2**27)  # 1 GB, far beyond the caches
    empty = np.zeros(0)
    _read_all(big, empty)
    return big.nbytes / _cpu_per_call(lambda: _read_all(big, empty), 2, 3) / 1e9


def run_gradient(args) -> list[dict]:
    import bayeslmm as blm
    from bayeslmm.linalg.small_q_kernel import soa_arrays
    from bayeslmm.pymc.direct import DirectModel

    rows = []
    for groups in (int(g) for g in args.groups):
        df = frame(groups, args.rows_per_group)
        for formula in ("y ~ x + (1 | g)", "y ~ x + (x | g)"):
            m = blm.LMM(formula, df)
            fast = DirectModel.of(m.marginal_model, m.design, m._priors, m._cross_products)
            a = m._cross_products.marginal_arrays()
            slow_data = (np.ascontiguousarray(a["zz"]), np.ascontiguousarray(a["z_xy"]),
                         *fast.data[2:])
            slow = DirectModel(fast.spec, slow_data, False, fast.constant, fast.value_names,
                               fast.value_shapes, fast.names, fast.shapes, fast.groups)
            x = np.random.default_rng(1).normal(0, 0.1, fast.ndim)
            lp_fast, g_fast = fast.logp_grad(x)
            lp_slow, g_slow = slow.logp_grad(x)
            reps = max(5, 200_000 // groups)
            t_fast = _cpu_per_call(lambda f=fast, x=x: f.logp_grad(x), reps)
            t_slow = _cpu_per_call(lambda f=slow, x=x: f.logp_grad(x), max(3, reps // 10))
            zz_s, zx_s = soa_arrays(a["zz"], a["z_xy"])
            _read_all(zz_s, zx_s)
            t_read = _cpu_per_call(lambda z=zz_s, w=zx_s: _read_all(z, w), reps)
            q = a["zz"].shape[1]
            rows.append({
                "groups": groups, "q": q, "before_ms": t_slow * 1e3, "after_ms": t_fast * 1e3,
                "speedup": t_slow / t_fast, "after_ns_per_group": t_fast / groups * 1e9,
                "bytes_mb": (zz_s.nbytes + zx_s.nbytes) / 1e6, "read_ms": t_read * 1e3,
                "rel_diff_logp": abs(lp_fast - lp_slow) / abs(lp_slow),
                "max_rel_diff_grad": float(np.max(np.abs(g_fast - g_slow))
                                           / np.max(np.abs(g_slow)))})
    print("| groups | q | before ms | after ms | speed-up | ns/group | MB read | "
          "read-only ms | rel. diff logp / grad |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['groups']:,} | {r['q']} | {r['before_ms']:.3f} | {r['after_ms']:.3f} | "
              f"{r['speedup']:.1f} | {r['after_ns_per_group']:.1f} | {r['bytes_mb']:.2f} | "
              f"{r['read_ms']:.3f} | {r['rel_diff_logp']:.0e} / {r['max_rel_diff_grad']:.0e} |")
    bw = _dram_gb_s()
    print(f"single-core read bandwidth from DRAM (1 GB array): {bw:.1f} GB/s")
    for r in rows:
        r["dram_floor_ms"] = r["bytes_mb"] / 1e3 / bw * 1e3
    print(json.dumps({"dram_gb_s": bw, "rows": rows}), flush=True)
    return rows


def run_nuts(args) -> dict:
    import arviz as az

    import bayeslmm as blm
    from bayeslmm.pymc import direct as direct_mod
    from bayeslmm.sampling import complete as complete_mod

    groups = int(args.groups[0])
    df = frame(groups, args.rows_per_group)
    out = {"groups": groups, "formula": args.formula, "chains": args.chains,
           "draws": args.draws, "tune": args.draws}
    t0 = time.perf_counter()
    m = blm.LMM(args.formula, df)
    out["build_s"] = round(time.perf_counter() - t0, 2)
    # count the gradients (tuning included): nutpie calls logp_grad from its threads;
    # next() on itertools.count is atomic under the GIL
    counter = itertools.count()
    plain = direct_mod.DirectModel.logp_grad

    def counted(self, x):
        next(counter)
        return plain(self, x)

    direct_mod.DirectModel.logp_grad = counted
    stamps = {}
    original = complete_mod.complete_marginal

    def timed(*a, **k):  # NUTS ends where the b draws begin
        stamps["nuts_end"] = (time.perf_counter(), time.process_time())
        res = original(*a, **k)
        stamps["draws_end"] = (time.perf_counter(), time.process_time())
        return res

    complete_mod.complete_marginal = timed
    if args.low_rank:  # nutpie's diagonal-plus-low-rank mass matrix (not the default)
        from bayeslmm.sampling import nuts

        plain_nutpie = nuts._nutpie

        def low_rank(*a, **k):
            return plain_nutpie(*a, **{**k, "low_rank_mass": True})

        nuts._nutpie = low_rank
        out["low_rank_mass"] = True
    t1, c1 = time.perf_counter(), time.process_time()
    post = m.fit(draws=args.draws, tune=args.draws, chains=args.chains, random_seed=1,
                 progressbar=False, cores=args.cores)
    t2, c2 = time.perf_counter(), time.process_time()
    direct_mod.DirectModel.logp_grad = plain
    complete_mod.complete_marginal = original
    ne, de = stamps["nuts_end"], stamps["draws_end"]
    stats = post.idata.sample_stats
    names = [v for v in ("beta", "sd_g", "corr_g", "sigma") if v in post.idata.posterior]
    ess = az.ess(post.idata, var_names=names)
    tail = az.ess(post.idata, var_names=names, method="tail")

    def low(ds):  # off-diagonal correlations only (the diagonal is constant)
        vals = []
        for v in ds.data_vars.values():
            a = np.asarray(v.values, float).ravel()
            vals += list(a[np.isfinite(a)])
        return float(min(vals))

    out.update(
        fit_s=round(t2 - t1, 2), fit_cpu_s=round(c2 - c1, 2),
        nuts_s=round(ne[0] - t1, 2), nuts_cpu_s=round(ne[1] - c1, 2),
        b_draws_s=round(de[0] - ne[0], 2), b_draws_cpu_s=round(de[1] - ne[1], 2),
        rest_s=round(t2 - de[0], 2), gradients=next(counter),
        gradients_after_tuning=int(stats["n_steps"].sum()),
        backend=post.idata.posterior.attrs.get("nutpie_backend"),
        mean_steps=float(stats["n_steps"].mean()), max_depth=int(stats["depth"].max()),
        step_size=float(stats["step_size"].mean()), divergences=int(post.divergences),
        min_ess_bulk=low(ess), min_ess_tail=low(tail),
        fixef=post.fixef.round(4).tolist(),
        b_draws_gb=sum(post.idata.posterior[v].nbytes for v in post.idata.posterior.data_vars
                       if v.startswith("b_")) / 1e9,
        peak_gb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)
    out["cpu_s_per_gradient_ms"] = round(out["nuts_cpu_s"] / out["gradients"] * 1e3, 3)
    print("| stage | wall s | CPU s |")
    print("| --- | --- | --- |")
    for k in ("nuts", "b_draws"):
        print(f"| {k} | {out[k + '_s']} | {out[k + '_cpu_s']} |")
    print(f"gradients {out['gradients']:,} ({out['cpu_s_per_gradient_ms']} CPU-ms each, "
          f"NUTS overhead included), {out['mean_steps']:.1f} steps/draw, depth ≤ "
          f"{out['max_depth']}, {out['divergences']} divergences, min ESS bulk "
          f"{out['min_ess_bulk']:.0f} / tail {out['min_ess_tail']:.0f}, peak "
          f"{out['peak_gb']:.2f} GB")
    print(json.dumps(out), flush=True)
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("stage", choices=["gradient", "nuts"])
    ap.add_argument("--groups", type=float, nargs="+", default=None)
    ap.add_argument("--rows-per-group", type=int, default=5)
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--cores", type=int, default=None)
    ap.add_argument("--formula", default="y ~ x + (x | g)")
    ap.add_argument("--low-rank", action="store_true")
    args = ap.parse_args(argv)
    if args.groups is None:
        args.groups = [1e3, 1e4, 1e5] if args.stage == "gradient" else [1e5]
    {"gradient": run_gradient, "nuts": run_nuts}[args.stage](args)


if __name__ == "__main__":
    main()
