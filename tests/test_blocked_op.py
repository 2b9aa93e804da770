"""The blocked marginal Op on every backend a sampler meets (PyTensor's Python/C
``perform``, its numba backend for nutpie, JAX for numpyro) against the kernel itself,
value and gradient; numpyro on a crossed model against nutpie's direct path."""

from __future__ import annotations

import importlib.util

import numpy as np
import pandas as pd
import pytensor
import pytensor.tensor as pt
import pytest

import bayeslmm as blm
from bayeslmm.formula.design import build_design
from bayeslmm.linalg.blocked_kernel import blocked_logp_grad
from bayeslmm.linalg.blocked_layout import VALUE_NAMES, blocked_arrays
from bayeslmm.linalg.crossprod import CrossProducts
from bayeslmm.pymc.blocked_op import blocked_logp

HAS_JAX = importlib.util.find_spec("jax") is not None
MODES = ["FAST_RUN", "NUMBA"] + (["JAX"] if HAS_JAX else [])


@pytest.mark.parametrize("mode", MODES)
def test_op_equals_the_kernel_on_every_backend(mode):
    if mode == "JAX":
        from bayeslmm.pymc.marginal import register_jax_ops

        register_jax_ops()
    d = build_design("y ~ x + (x | s) + (1 | i)", _crossed())
    cp = CrossProducts.from_design(d)
    lay = blocked_arrays(cp)
    rng = np.random.default_rng(2)
    b0, s0 = rng.normal(size=2), 0.9
    L0 = np.zeros((2, 2, 2))
    L0[0] = [[0.8, 0.0], [0.3, 0.5]]
    L0[1, 0, 0] = 1.2
    want = blocked_logp_grad(lay, b0, s0, L0, cp.q)
    beta, sigma, L = pt.vector("beta"), pt.scalar("sigma"), pt.tensor3("L")
    lp = blocked_logp(lay, beta, sigma, L, qs=cp.q)
    f = pytensor.function([beta, sigma, L], [lp, *pytensor.grad(lp, [beta, sigma, L])],
                          mode=mode)
    v, gb, gs, gL = f(b0, s0, L0)
    assert float(v) == pytest.approx(want[0], rel=1e-12)
    np.testing.assert_allclose(gb, want[1], rtol=1e-10)
    assert float(gs) == pytest.approx(want[2], rel=1e-10)
    np.testing.assert_allclose(gL, want[3], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("partial", [False, True])
def test_op_gradient_in_its_data_on_every_backend(mode, partial):
    """The layout's values as expressions (c times the data, as a residual structure's
    statistics are): the Op's data gradients carry d log p / dc, equal to central
    differences of the kernel, fully crossed (``a21d`` read) or not (``a21``)."""
    if mode == "JAX":
        from bayeslmm.pymc.marginal import register_jax_ops

        register_jax_ops()
    df = _crossed()
    if partial:
        df = df[(df["s"].astype(int) + df["i"].astype(int)) % 3 != 0]
    d = build_design("y ~ x + (x | s) + (1 | i)", df)
    cp = CrossProducts.from_design(d)
    lay = blocked_arrays(cp)
    assert bool(lay["full"]) is not partial
    b0, s0 = np.array([0.3, -0.2]), 0.9
    L0 = np.zeros((2, 2, 2))
    L0[0] = [[0.8, 0.0], [0.3, 0.5]]
    L0[1, 0, 0] = 1.2
    c = pt.scalar("c")
    arrays = {**lay, **{k: c * lay[k] for k in VALUE_NAMES}}
    lp = blocked_logp(arrays, b0, s0, L0, qs=cp.q)
    f = pytensor.function([c], [lp, pytensor.grad(lp, c)], mode=mode)
    h = 1e-6
    num = (blocked_logp_grad({**lay, **{k: (1.0 + h) * lay[k] for k in VALUE_NAMES}}, b0, s0,
                             L0, cp.q)[0]
           - blocked_logp_grad({**lay, **{k: (1.0 - h) * lay[k] for k in VALUE_NAMES}}, b0,
                               s0, L0, cp.q)[0]) / (2 * h)
    v, g = f(1.0)
    assert float(v) == pytest.approx(blocked_logp_grad(lay, b0, s0, L0, cp.q)[0], rel=1e-12)
    assert float(g) == pytest.approx(num, rel=1e-6)


def _crossed() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    s, i = np.meshgrid(np.arange(8), np.arange(5), indexing="ij")
    s, i = s.ravel(), i.ravel()
    x = rng.normal(size=s.size)
    y = 1 + 0.5 * x + rng.normal(size=8)[s] + rng.normal(size=5)[i] + rng.normal(size=s.size)
    return pd.DataFrame({"y": y, "x": x, "s": s.astype(str), "i": i.astype(str)})


@pytest.mark.slow
@pytest.mark.skipif(not importlib.util.find_spec("numpyro"), reason="numpyro not installed")
def test_numpyro_on_a_crossed_model_agrees_with_nutpie():
    """Penicillin (plates × samples, crossed): numpyro samples the marginal model through
    the Op's JAX host callback; its posterior means agree with nutpie's direct path."""
    m = blm.LMM("diameter ~ 1 + (1 | plate) + (1 | sample)", blm.datasets.load("Penicillin"))
    kw = dict(draws=1000, tune=1000, chains=2, random_seed=4, progressbar=False,
              parameterization="marginal")
    a = m.fit(sampler="numpyro", **kw)
    b = m.fit(sampler="nutpie", **kw)
    # a rare divergence (sample's sd rests on 6 levels: its posterior reaches near 0);
    # the test is the agreement of the posteriors
    assert a.diagnostics["divergences"] <= 10 and b.diagnostics["divergences"] <= 10
    for name in ("sigma", "beta", "sd_plate"):
        xa, xb = a.idata.posterior[name], b.idata.posterior[name]
        # Monte Carlo error of the difference of two means (ESS well above 300 each)
        se = float(np.sqrt(xa.var() / 300 + xb.var() / 300))
        assert abs(float(xa.mean()) - float(xb.mean())) < 4 * se, name
