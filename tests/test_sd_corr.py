"""The sd / partial-correlation coordinates of a covariance Cholesky factor
(bayeslmm.pymc.sd_corr, bayeslmm.linalg.sd_corr_transform): a bijection whose
log-Jacobian and chain rule equal finite differences, the PyTensor and numba forms
agree, and a model sampled in them has PyMC's LKJCholeskyCov density unchanged."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pymc as pm
import pytest

import bayeslmm as blm
from bayeslmm.linalg.sd_corr_transform import chol_to_sd_corr, sd_corr_back, sd_corr_to_chol
from bayeslmm.pymc.sd_corr import SdCorrPacked


def _chol(y, q):
    L = np.zeros((q, q))
    lj, glj = sd_corr_to_chol(np.ascontiguousarray(y), q, L)
    return L, lj, glj


def _jacobian(y, q, h=1e-6):
    rows, cols = np.tril_indices(q)
    m = len(y)
    J = np.zeros((m, m))
    for k in range(m):
        e = np.zeros(m)
        e[k] = h
        J[:, k] = (_chol(y + e, q)[0][rows, cols] - _chol(y - e, q)[0][rows, cols]) / (2 * h)
    return J


@pytest.mark.parametrize("q", [1, 2, 3, 5])
def test_bijection_jacobian_and_chain_rule_equal_finite_differences(q):
    rng = np.random.default_rng(q)
    m = q * (q + 1) // 2
    rows, cols = np.tril_indices(q)
    for _ in range(3):
        y = rng.normal(scale=1.5, size=m)
        L, lj, glj = _chol(y, q)
        # a Cholesky factor of a covariance whose row norms are the sds exp(y[i, i])
        assert np.all(np.diag(L) > 0) and np.allclose(np.triu(L, 1), 0)
        np.testing.assert_allclose(np.sqrt(np.diag(L @ L.T)), np.exp(y[(rows == cols)]),
                                   rtol=1e-12)
        np.testing.assert_allclose(chol_to_sd_corr(L), y, rtol=1e-9, atol=1e-9)
        J = _jacobian(y, q)
        assert lj == pytest.approx(np.linalg.slogdet(J)[1], abs=1e-7)
        gfd = np.array([(_chol(y + 1e-6 * e, q)[1] - _chol(y - 1e-6 * e, q)[1]) / 2e-6
                        for e in np.eye(m)])
        np.testing.assert_allclose(glj, gfd, atol=1e-6)
        gL = np.tril(rng.normal(size=(q, q)))
        grad = np.zeros(m + 2)  # at an offset, added to what is there
        grad[1:m + 1] = 1.0
        sd_corr_back(y, q, L, gL, grad, 1)
        np.testing.assert_allclose(grad[1:m + 1] - 1.0, J.T @ gL[rows, cols], atol=1e-7)
        assert grad[0] == 0.0 and grad[-1] == 0.0


def test_pytensor_transform_equals_the_numba_kernels():
    q = 4
    y = np.random.default_rng(0).normal(scale=2.0, size=q * (q + 1) // 2)
    L, lj, _ = _chol(y, q)
    t = SdCorrPacked(q)
    np.testing.assert_allclose(t.backward(y).eval(), L[np.tril_indices(q)], rtol=1e-12)
    assert float(t.log_jac_det(y).eval()) == pytest.approx(lj, rel=1e-12)
    np.testing.assert_allclose(t.forward(L[np.tril_indices(q)]).eval(), y, rtol=1e-9)


def test_far_tails_stay_positive_definite():
    # partial correlations of ±(1 − 1e-43): tanh rounds to ±1, but 1 − z² is taken as
    # sech², so the diagonal stays positive (a finite density, a finite gradient)
    y = np.array([0.0, 50.0, 0.0, -50.0, 1.0, 0.0])
    L, lj, glj = _chol(y, 3)
    assert np.all(np.diag(L) > 0) and np.isfinite(lj) and np.all(np.isfinite(glj))
    assert L[1, 1] == pytest.approx(2.0 / np.cosh(50.0), rel=1e-12)
    t = SdCorrPacked(3)
    np.testing.assert_allclose(t.backward(y).eval(), L[np.tril_indices(3)], rtol=1e-12)


def _data(seed=0):
    rng = np.random.default_rng(seed)
    s = np.repeat(np.arange(15), 8)
    x, w = rng.normal(size=120), rng.normal(size=120)
    y = 1 + 0.5 * x + rng.normal(size=15)[s] + rng.normal(size=120)
    return pd.DataFrame({"y": y, "x": x, "w": w, "g": pd.Categorical(s)})


@pytest.mark.parametrize("par", ["marginal", "conditional"])
def test_model_keeps_pymcs_density_of_the_factor(par):
    """The same prior (so posterior): at the same Cholesky factor, the model's density
    without Jacobians equals the one of the model PyMC's default transform makes."""
    m = blm.LMM("y ~ x + (1 + x + w | g)", _data())
    model = m.build(par)
    chol = model["chol_g_z"]
    assert model.rvs_to_transforms[chol].name == "sd-corr"
    default = pm.Model(coords=model.coords)
    with default:  # LKJCholeskyCov alone with PyMC's own transform, same prior
        pm.LKJCholeskyCov("c", n=3, eta=2.0, sd_dist=pm.HalfNormal.dist(2.5, shape=3),
                          compute_corr=False)
    ours = pm.Model()
    with ours:
        pm.LKJCholeskyCov("c", n=3, eta=2.0, sd_dist=pm.HalfNormal.dist(2.5, shape=3),
                          compute_corr=False, default_transform=SdCorrPacked(3))
    lp_default = default.compile_logp(jacobian=False)
    lp_ours = ours.compile_logp(jacobian=False)
    lj_ours = ours.compile_logp(jacobian=True)
    rng = np.random.default_rng(1)
    for _ in range(3):
        y = rng.normal(size=6)
        L = _chol(y, 3)[0]
        packed = L[np.tril_indices(3)]
        x = packed.copy()
        x[[0, 2, 5]] = np.log(x[[0, 2, 5]])  # PyMC's cholesky-cov-packed values
        same = lp_default({"c_cholesky-cov-packed__": x})
        assert lp_ours({"c_sd-corr__": y}) == pytest.approx(same, rel=1e-12)
        assert lj_ours({"c_sd-corr__": y}) == pytest.approx(same + _chol(y, 3)[1],
                                                            rel=1e-12)
