"""Time per log-density + gradient evaluation of the marginal and conditional models,
by number of rows and groups (PyTensor C backend, the model PyMC's sampler runs).

    python benchmarks/bench_gradient.py

The marginal model's cost depends on the number of groups, not of rows; the
conditional one's grows with the rows. Residual AR(1) (whitening, O(n)) is shown too.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_sampling import simulate  # noqa: E402

import bayeslmm as blm  # noqa: E402


def per_grad_ms(model, repeats: int) -> tuple[float, float]:
    t0 = time.perf_counter()
    f = model.logp_dlogp_function(ravel_inputs=True)
    f.set_extra_values({})
    compile_s = time.perf_counter() - t0
    x = np.concatenate([np.ravel(v) for v in model.initial_point().values()])
    f(x)
    t0 = time.perf_counter()
    for _ in range(repeats):
        f(x)
    return (time.perf_counter() - t0) / repeats * 1e3, compile_s


def main() -> None:
    rows = []
    for n, groups in ((10_000, 200), (100_000, 200), (1_000_000, 200), (100_000, 2_000),
                      (1_000_000, 20_000)):
        df = simulate(n, groups)
        m = blm.LMM("y ~ x + (x | g)", df)
        ms, c = per_grad_ms(m.marginal_model, 200)
        rows.append({"rows": n, "groups": groups, "model": "marginal", "grad_ms": ms,
                     "compile_s": c})
        if n <= 100_000:
            ms, c = per_grad_ms(m.pymc_model, 20)
            rows.append({"rows": n, "groups": groups, "model": "conditional",
                         "grad_ms": ms, "compile_s": c})
        if n <= 100_000:
            df["t"] = df.groupby("g", observed=True).cumcount()
            ar = blm.LMM("y ~ x + (x | g)", df, residual=blm.AR1(group="g", time="t"))
            ms, c = per_grad_ms(ar.marginal_model, 20)
            rows.append({"rows": n, "groups": groups, "model": "marginal + AR(1)",
                         "grad_ms": ms, "compile_s": c})
        print(rows[-1], flush=True)
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.3g}"))


if __name__ == "__main__":
    main()
