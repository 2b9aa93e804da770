"""The cross-product engine (pls, pls_gradient) against the dense oracle, and the
PyTensor marginal log-density against the NumPy one."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg as sla
from test_likelihood import FORMULAS, random_data  # tests/ is on sys.path (rootdir import)

from bayeslmm.design import build_design
from bayeslmm.likelihood import dense_psi, dense_z, gls, profiled_criterion
from bayeslmm.pls import PLS
from bayeslmm.theta import ThetaLayout

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
