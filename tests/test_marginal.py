"""The cross-product engine (pls, pls_gradient) against the dense oracle, and the
PyTensor marginal log-density against the NumPy one."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg as sla

from bayeslmm.formula.design import build_design
from bayeslmm.linalg.pls import PLS
from bayeslmm.linalg.theta import ThetaLayout
from tests.oracle import dense_psi, dense_z, gls, profiled_criterion
from tests.test_likelihood import FORMULAS, random_data

FORMULAS = {**FORMULAS, "crossed q=2 + q=2": "y ~ x + (x | g) + (z | k)",
            "three factors": "y ~ f + (1 | g) + (1 | k) + (x || h)"}


def _theta(d, seed=0):
    lay = ThetaLayout.from_terms(d.terms)
    rng = np.random.default_rng(seed)
    return np.where(lay.is_diag, rng.uniform(0.3, 1.5, lay.size), rng.uniform(-0.5, 0.5, lay.size))


def _dense_solution(d, theta, reml):
    lay = ThetaLayout.from_terms(d.terms)
    Z = dense_z(d.terms)
    lam = sla.block_diag(*[np.kron(np.eye(t.n_levels), lk)
                           for t, lk in zip(d.terms, lay.lambdas(theta), strict=True)])
    n, p = d.X.shape
    V0 = Z @ dense_psi(d.terms, lay.psis(theta, 1.0)) @ Z.T + np.eye(n)
    beta, xvx_inv = gls(d.y, d.X, V0)
    r = d.y - d.X @ beta
    s2 = r @ np.linalg.solve(V0, r) / (n - p if reml else n)
    b = lam @ lam.T @ Z.T @ np.linalg.solve(V0, r)
    P = lam.T @ Z.T @ Z @ lam + np.eye(Z.shape[1])
    b_var = s2 * np.diag(lam @ np.linalg.solve(P, lam.T))
    return beta, np.sqrt(s2), s2 * xvx_inv, b, np.sqrt(b_var)


@pytest.mark.parametrize("reml", [False, True], ids=["ML", "REML"])
@pytest.mark.parametrize("formula", FORMULAS.values(), ids=FORMULAS.keys())
def test_engine_matches_dense(formula, reml):
    d = build_design(formula, random_data(5, n=80))
    theta = _theta(d)
    pls = PLS.from_design(d)
    assert pls.objective(theta, reml) == pytest.approx(profiled_criterion(d, theta, reml),
                                                       rel=1e-11)
    sol = pls.solution(theta, reml)
    beta, sigma, vcov, b, b_sd = _dense_solution(d, theta, reml)
    np.testing.assert_allclose(sol.beta, beta, rtol=1e-9, atol=1e-11)
    assert sol.sigma == pytest.approx(sigma, rel=1e-10)
    np.testing.assert_allclose(sol.vcov, vcov, rtol=1e-9, atol=1e-13)
    np.testing.assert_allclose(np.concatenate([x.ravel() for x in sol.b]), b, atol=1e-9)
    np.testing.assert_allclose(np.concatenate([x.ravel() for x in sol.b_sd]), b_sd, atol=1e-9)


@pytest.mark.parametrize("reml", [False, True], ids=["ML", "REML"])
@pytest.mark.parametrize("formula", FORMULAS.values(), ids=FORMULAS.keys())
def test_gradient_matches_central_differences(formula, reml):
    d = build_design(formula, random_data(6, n=80))
    theta = _theta(d, seed=1)
    pls = PLS.from_design(d)
    val, g = pls.objective_and_gradient(theta, reml)
    assert val == pytest.approx(pls.objective(theta, reml))
    h = 1e-5
    fd = [(pls.objective(theta + h * e, reml) - pls.objective(theta - h * e, reml)) / (2 * h)
          for e in np.eye(len(theta))]
    np.testing.assert_allclose(g, fd, rtol=1e-5, atol=1e-5)


def test_gradient_on_the_boundary_uses_differences():
    d = build_design("y ~ x + (1 | g) + (1 | k)", random_data(8, n=80))
    pls = PLS.from_design(d)
    theta = np.array([0.0, 0.8])
    val, g = pls.objective_and_gradient(theta)
    fd = (pls.objective(theta + [1e-6, 0]) - val) / 1e-6
    assert np.isfinite(g).all()
    assert g[0] == pytest.approx(fd, rel=1e-3, abs=1e-4)


PT_FORMULAS = {"q=1": "y ~ x + (1 | g)", "q=2": "y ~ x + (x | g)",
               "q=3": "y ~ f + (x + z | g)", "crossed": "y ~ x + (x | g) + (1 | k)",
               "nested": "y ~ x + (1 | g/h)"}


@pytest.mark.parametrize("formula", PT_FORMULAS.values(), ids=PT_FORMULAS.keys())
def test_pytensor_logp_and_gradient_match_numpy(formula):
    pytensor = pytest.importorskip("pytensor")
    pt = pytest.importorskip("pytensor.tensor")
    from bayeslmm.linalg.crossprod import CrossProducts
    from bayeslmm.pymc.marginal import loglik_expression
    from tests.oracle import marginal_loglik

    d = build_design(formula, random_data(9, n=70))
    rng = np.random.default_rng(2)
    beta_v = rng.normal(size=d.X.shape[1])
    sigma_v = 0.8
    chol_v = []
    for t in d.terms:
        A = np.tril(rng.normal(size=(t.q, t.q))) + 1.5 * np.eye(t.q)
        chol_v.append(A)
    beta, sigma = pt.vector("beta"), pt.scalar("sigma")
    chol = [pt.matrix(f"L{k}") for k in range(len(d.terms))]
    cp = CrossProducts.from_design(d)
    logp = loglik_expression(cp.marginal_arrays(), float(cp.n), beta, sigma,
                             [chol[k] for k in cp.order], cp.q, cp.m)
    inputs = [beta, sigma, *chol]
    f = pytensor.function(inputs, [logp, *pytensor.grad(logp, inputs)], mode="FAST_COMPILE")
    out = f(beta_v, sigma_v, *chol_v)

    Z = dense_z(d.terms)

    def oracle(b, s, Ls):
        return marginal_loglik(d.y, d.X, Z, dense_psi(d.terms, [L @ L.T for L in Ls]), b, s)

    assert out[0] == pytest.approx(oracle(beta_v, sigma_v, chol_v), rel=1e-12)
    h = 1e-6
    fd_beta = [(oracle(beta_v + h * e, sigma_v, chol_v) - oracle(beta_v - h * e, sigma_v, chol_v))
               / (2 * h) for e in np.eye(len(beta_v))]
    np.testing.assert_allclose(out[1], fd_beta, rtol=1e-6, atol=1e-6)
    fd_sigma = (oracle(beta_v, sigma_v + h, chol_v) - oracle(beta_v, sigma_v - h, chol_v)) / (2 * h)
    assert out[2] == pytest.approx(fd_sigma, rel=1e-6)
    for k, L in enumerate(chol_v):
        i, j = L.shape[0] - 1, 0
        E = np.zeros_like(L)
        E[i, j] = h
        up = [c + E if m == k else c for m, c in enumerate(chol_v)]
        dn = [c - E if m == k else c for m, c in enumerate(chol_v)]
        fd = (oracle(beta_v, sigma_v, up) - oracle(beta_v, sigma_v, dn)) / (2 * h)
        assert out[3 + k][i, j] == pytest.approx(fd, rel=1e-5, abs=1e-7)
