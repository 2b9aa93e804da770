"""Structured residuals with several grouping factors (issue 20 on issue 15's designs):
per log-density + gradient on the residual structure's statistics, by the blocked
engine, at 10k and 100k rows of the same groups (flat in rows?).

- **crossed**: kb07-like ``rt ~ spkr + prec + load + (1 + prec | subj) + (1 + prec | item)``,
  56 subjects × 32 items fully crossed, a series of trials in every subject × item cell
  with AR(1) errors within it (``AR1(group='cell', time='t')``); 6 or 56 trials a cell.
- **nested**: ``y ~ x + (1 | klass) + (1 | school)``, 2,000 classes in 100 schools,
  AR(1) and CompSymm within classes.

Columns: the direct kernel (what nutpie runs), PyTensor's compiled log-density and
gradient (C backend, what PyMC's sampler runs) and, for the crossed design, the former
dense path (all Q random effects in one dense system, a step of O(Q³); it stopped at
400 random effects). Milliseconds per evaluation, the best of 5 batches (the machine
is shared), wall and CPU (``time.process_time``).

Then (``--nuts``) the crossed design with AR(1) sampled, NUTS 4 chains × 1000 draws
(1000 tuning) with the default sampler (nutpie on the direct kernel), at 10k and 100k
rows: wall and CPU seconds of ``fit`` (compilation included, warm numba cache),
divergences, the smallest bulk ESS, and Phi (true 0.5).

    python benchmarks/bench_blocked_residual.py          # per gradient
    python benchmarks/bench_blocked_residual.py --nuts   # and NUTS
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

KB07_Q2 = "rt ~ spkr + prec + load + (1 + prec | subj) + (1 + prec | item)"
NESTED = "y ~ x + (1 | klass) + (1 | school)"


def crossed(trials: int, phi: float = 0.5, seed: int = 0) -> pd.DataFrame:
    """56 subjects × 32 items, ``trials`` rows per cell with AR(1) errors within it."""
    rng = np.random.default_rng(seed)
    s, i, t = np.meshgrid(np.arange(56), np.arange(32), np.arange(trials), indexing="ij")
    s, i, t = s.ravel(), i.ravel(), t.ravel()
    n = len(s)
    spkr, prec, load = (rng.choice([-0.5, 0.5], n) for _ in range(3))
    e = np.empty((56 * 32, trials))
    e[:, 0] = rng.normal(size=56 * 32)
    for k in range(1, trials):
        e[:, k] = phi * e[:, k - 1] + np.sqrt(1 - phi**2) * rng.normal(size=56 * 32)
    rt = (2000 + 100 * spkr + 300 * prec + 80 * load + rng.normal(0, 300, 56)[s]
          + rng.normal(0, 200, 32)[i] + 150 * prec * rng.normal(0, 1, 32)[i]
          + 500 * e.ravel())
    return pd.DataFrame({"rt": rt, "spkr": spkr, "prec": prec, "load": load,
                         "subj": [f"S{k}" for k in s], "item": [f"I{k}" for k in i],
                         "cell": s * 32 + i, "t": t})


def nested(n: int, classes: int = 2000, schools: int = 100, seed: int = 0) -> pd.DataFrame:
    """Students in classes in schools, a time order within each class."""
    rng = np.random.default_rng(seed)
    klass = np.repeat(np.arange(classes), n // classes)
    school = klass % schools
    y = (1 + 0.5 * (x := rng.normal(size=len(klass))) + rng.normal(0, 0.5, schools)[school]
         + rng.normal(0, 0.3, classes)[klass] + rng.normal(size=len(klass)))
    return pd.DataFrame({"y": y, "x": x, "school": school, "klass": klass,
                         "t": np.tile(np.arange(n // classes), classes)})


def _ms(f, x, repeats: int) -> tuple[float, float]:
    """Milliseconds per call, wall and CPU: the best of 5 batches each."""
    f(x)
    wall = cpu = np.inf
    for _ in range(5):
        t, c = time.perf_counter(), time.process_time()
        for _ in range(repeats):
            f(x)
        wall = min(wall, (time.perf_counter() - t) / repeats * 1e3)
        cpu = min(cpu, (time.process_time() - c) / repeats * 1e3)
    return wall, cpu


def _dense(direct, stats):
    """The former path: the statistics as dense Q × Q stacks, one dense system."""
    from bayeslmm.linalg.direct_residual import direct_residual_dense

    first = stats.parts[0]
    st = stats.marginal_stacks()
    data = (np.array(first.order, np.int64), st["zz"], st["z_xy"], st["xy_xy"],
            float(stats.n), np.array(first.m, np.int64))
    return lambda x: direct_residual_dense(x, *direct.spec, *data, *direct.residual)


def main() -> None:
    import bayeslmm as blm
    from bayeslmm.pymc.direct import DirectModel
    from bayeslmm.pymc.parameterization import choose_parameterization
    from bayeslmm.residual.sufficient import residual_stats

    cases = [("crossed AR1", KB07_Q2, crossed(t), "AR1(group='cell', time='t')")
             for t in (6, 56)]
    for n in (10_000, 100_000):
        df = nested(n)
        cases += [("nested AR1", NESTED, df, "AR1(group='klass', time='t')"),
                  ("nested CompSymm", NESTED, df, "CompSymm(group='klass')")]
    rows = []
    for name, formula, df, text in cases:
        m = blm.LMM(formula, df, residual=blm.residual.parse_residual(text))
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
        dw, dc = _ms(direct.logp_grad, x0, 50)
        pw, pc = _ms(f, x0, 50)
        row = {"design": name, "rows": len(df), "random_effects": sum(
            t.n_levels * t.q for t in m.design.terms), "statistics": len(stats.parts),
            "auto": choose_parameterization(m.design, m.residual, "auto"),
            "direct_ms": dw, "direct_cpu_ms": dc, "pytensor_c_ms": pw, "pytensor_c_cpu_ms": pc,
            "stats_s": stats_s, "compile_s": compile_s}
        if name.startswith("crossed"):
            row["former_dense_ms"], row["former_dense_cpu_ms"] = _ms(_dense(direct, stats),
                                                                     x0, 5)
        rows.append(row)
        print(row, flush=True)
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.3g}"))


def nuts() -> None:
    import arviz as az

    import bayeslmm as blm

    rows = []
    for trials in (6, 56):
        df = crossed(trials)
        m = blm.LMM(KB07_Q2, df, residual=blm.AR1(group="cell", time="t"))
        t, c = time.perf_counter(), time.process_time()
        post = m.fit(draws=1000, tune=1000, chains=4, random_seed=1, progressbar=False)
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        idata = post.idata
        ess = az.ess(idata.posterior[[v for v in idata.posterior.data_vars
                                      if not v.startswith("b_")]], method="bulk")
        rows.append({"rows": len(df), "wall_s": wall, "cpu_s": cpu,
                     "backend": idata.posterior.attrs.get("nutpie_backend"),
                     "divergences": int(idata.sample_stats.diverging.sum()),
                     "min_ess_bulk": float(min(ess[v].min() for v in ess.data_vars)),
                     "Phi": float(idata.posterior["Phi"].mean()),
                     "Phi_sd": float(idata.posterior["Phi"].std())})
        print(rows[-1], flush=True)
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.3g}"))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--nuts", action="store_true")
    args = parser.parse_args()
    main()
    if args.nuts:
        nuts()
