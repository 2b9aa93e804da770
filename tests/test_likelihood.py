"""The dense NumPy oracle against scipy.stats.multivariate_normal on random small designs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.linalg as sla
from scipy.stats import multivariate_normal

from bayeslmm.formula.design import build_design
from bayeslmm.linalg.theta import ThetaLayout
from tests.oracle import (
    dense_psi,
    dense_z,
    gls,
    marginal_loglik,
    profiled_criterion,
    reml_loglik,
)

FORMULAS = {
    "one factor q=1": "y ~ x + (1 | g)",
    "one factor q=2": "y ~ x + (x | g)",
    "one factor q=3": "y ~ x + (x + z | g)",
    "diagonal q=2": "y ~ x + (x || g)",
    "nested": "y ~ x + (1 | g/h)",
    "crossed": "y ~ x + (1 | g) + (x | k)",
    "crossed q=3 + q=1": "y ~ f + (x + z | g) + (1 | k)",
}


def random_data(seed: int, n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "y": rng.normal(size=n), "x": rng.normal(size=n), "z": rng.uniform(size=n),
        "f": pd.Categorical(rng.choice(["a", "b", "c"], n)),
        "g": pd.Categorical(rng.integers(0, 6, n).astype(str)),
        "h": pd.Categorical(rng.integers(0, 3, n).astype(str)),
        "k": pd.Categorical(rng.integers(0, 4, n).astype(str)),
    })


def random_psis(terms, rng):
    out = []
    for t in terms:
        A = rng.normal(size=(t.q, t.q))
        psi = A @ A.T + 0.3 * np.eye(t.q)
        mask = np.zeros((t.q, t.q), bool)
        for b in t.blocks:
            mask[np.ix_(b, b)] = True
        out.append(np.where(mask, psi, 0.0))
    return out


@pytest.mark.parametrize("formula", FORMULAS.values(), ids=FORMULAS.keys())
@pytest.mark.parametrize("seed", [1, 2])
def test_marginal_loglik_matches_scipy(formula, seed):
    d = build_design(formula, random_data(seed))
    rng = np.random.default_rng(seed + 100)
    psis = random_psis(d.terms, rng)
    Z, G = dense_z(d.terms), dense_psi(d.terms, psis)
    beta, sigma = rng.normal(size=d.X.shape[1]), 0.7
    V = Z @ G @ Z.T + sigma**2 * np.eye(d.nobs)
    want = multivariate_normal(d.X @ beta, V).logpdf(d.y)
    assert marginal_loglik(d.y, d.X, Z, G, beta, sigma) == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("formula", FORMULAS.values(), ids=FORMULAS.keys())
def test_reml_loglik_is_error_contrast_likelihood(formula):
    """ℓ_R = log N(Kᵀy | 0, KᵀVK) − ½ log|XᵀX| for K orthonormal with KᵀX = 0."""
    d = build_design(formula, random_data(7))
    rng = np.random.default_rng(3)
    psis = random_psis(d.terms, rng)
    Z, G = dense_z(d.terms), dense_psi(d.terms, psis)
    sigma = 1.3
    V = Z @ G @ Z.T + sigma**2 * np.eye(d.nobs)
    K = sla.null_space(d.X.T)
    want = (multivariate_normal(np.zeros(K.shape[1]), K.T @ V @ K).logpdf(K.T @ d.y)
            - 0.5 * np.linalg.slogdet(d.X.T @ d.X)[1])
    assert reml_loglik(d.y, d.X, Z, G, sigma) == pytest.approx(want, rel=1e-11)


@pytest.mark.parametrize("reml", [False, True])
@pytest.mark.parametrize("formula", FORMULAS.values(), ids=FORMULAS.keys())
def test_profiled_criterion_is_the_maximum_over_beta_sigma(formula, reml):
    """At θ the profiled criterion equals −2ℓ at (β̂, σ̂) and beats nearby (β, σ)."""
    d = build_design(formula, random_data(11))
    lay = ThetaLayout.from_terms(d.terms)
    theta = lay.start() * 0.8 + np.where(lay.is_diag, 0.0, 0.2)
    crit = profiled_criterion(d, theta, reml=reml)
    Z = dense_z(d.terms)
    n, p = d.X.shape

    def ll(beta, sigma):
        G = dense_psi(d.terms, lay.psis(theta, sigma))
        if reml:
            return reml_loglik(d.y, d.X, Z, G, sigma)
        return marginal_loglik(d.y, d.X, Z, G, beta, sigma)

    V0 = Z @ dense_psi(d.terms, lay.psis(theta, 1.0)) @ Z.T + np.eye(n)
    beta, _ = gls(d.y, d.X, V0)
    r = d.y - d.X @ beta
    s2 = r @ np.linalg.solve(V0, r) / (n - p if reml else n)
    assert -2 * ll(beta, np.sqrt(s2)) == pytest.approx(crit, rel=1e-11)
    for fac in (0.9, 1.1):
        assert -2 * ll(beta, fac * np.sqrt(s2)) > crit
    if not reml:
        assert -2 * ll(beta + 0.05, np.sqrt(s2)) > crit
