"""Kenward–Roger with lme4's prior weights against a dense transcription of pbkrtest's
formulas (``vcovAdj_internal``, ``Lb_ddf``, pbkrtest 0.5.2).

The covariance of y is Σ = Σ_r γ_r G_r with the residual's G_σ² = diag(1/w): bayeslmm's
Kenward–Roger is that of the rows scaled by √w, which the formulas do not change (every
term is invariant under y → Ty, X → TX, G_r → TG_rTᵀ). pbkrtest builds G_σ² = I whatever
the weights (``.get_SigmaG``): the same transcription with I reproduces its numbers
(models/make_kr_weights.R), which are not Kenward–Roger's for the weighted model.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest
from oracle import dense_z

import bayeslmm as blm

REF = tomllib.loads((Path(__file__).resolve().parents[1] / "models" / "inference" /
                     "kr_weights_pbkrtest.toml").read_text())


def dense_kr(X, Gs, gammas, Phi):
    """pbkrtest's vcovAdj_internal (Φ_A, P, W) and Lb_ddf of each unit contrast."""
    Sigma = sum(g * G for g, G in zip(gammas, Gs, strict=True))
    Si = np.linalg.inv(Sigma)
    m = len(Gs)
    H = [G @ Si for G in Gs]
    O = [h @ X for h in H]
    P = [-(o.T @ Si @ X) for o in O]
    Q = [[O[r].T @ Si @ O[s] for s in range(m)] for r in range(m)]
    IE2 = np.array([[np.trace(H[r] @ H[s]) - 2 * np.sum(Phi * Q[r][s])
                     + np.trace(Phi @ P[r] @ Phi @ P[s]) for s in range(m)] for r in range(m)])
    W = 2 * np.linalg.inv(IE2)
    U = sum(W[r, s] * (Q[r][s] - P[r] @ Phi @ P[s]) for r in range(m) for s in range(m))
    PhiA = Phi + 2 * Phi @ U @ Phi
    ddf = []
    for k in range(X.shape[1]):
        L = np.zeros((1, X.shape[1]))
        L[0, k] = 1.0
        Theta = L.T @ np.linalg.solve(L @ Phi @ L.T, L)
        u = [Theta @ Phi @ Pr @ Phi for Pr in P]
        A1 = sum(W[i, j] * np.trace(u[i]) * np.trace(u[j]) for i in range(m) for j in range(m))
        A2 = sum(W[i, j] * np.sum(u[i] * u[j].T) for i in range(m) for j in range(m))
        q = 1
        B = (A1 + 6 * A2) / (2 * q)
        g = ((q + 1) * A1 - (q + 4) * A2) / ((q + 2) * A2)
        den = 3 * q + 2 * (1 - g)
        c1, c2, c3 = g / den, (q - g) / den, (q + 2 - g) / den
        rho = ((1 - A2 / q) / (1 - c2 * B)) ** 2 * (1 + c1 * B) / (q * (1 - c3 * B))
        ddf.append(4 + (q + 2) / (q * rho - 1))
    return PhiA, np.array(ddf)


@pytest.fixture(scope="module")
def weighted_fit():
    m = blm.LMM(REF["formula"], blm.datasets.load(REF["dataset"]), weights=REF["weights"])
    return m, m.fit_map("REML")


def _pieces(m, fit):
    d = m.design
    Z = dense_z(d.terms)
    tau2 = float(fit.varcorr.vcov.iloc[0])
    return d.X, [Z @ Z.T], [tau2, fit.sigma ** 2], fit.vcov.to_numpy()


def test_kenward_roger_with_weights_equals_the_dense_formulas(weighted_fit):
    """Σ with the residual part σ² diag(1/w): bayeslmm's df and adjusted se."""
    m, fit = weighted_fit
    X, G, gammas, Phi = _pieces(m, fit)
    PhiA, ddf = dense_kr(X, G + [np.diag(1.0 / m.design.weights)], gammas, Phi)
    got = fit.summary(ddf="Kenward-Roger")
    np.testing.assert_allclose(got["df"], ddf, rtol=1e-6)
    np.testing.assert_allclose(got["se"], np.sqrt(np.diag(PhiA)), rtol=1e-8)
    # the design's own df: 80 within subjects (age), 25 between them (Sex)
    assert got.loc["age", "df"] == pytest.approx(80.0, rel=1e-6)
    assert got.loc["Sex[Female]", "df"] == pytest.approx(25.0, rel=1e-6)


def test_pbkrtest_ignores_the_weights(weighted_fit):
    """The same formulas with Σ's residual part σ² I give pbkrtest's numbers for this fit:
    what it computes is not the weighted model's Kenward–Roger (df 866 and 8969)."""
    m, fit = weighted_fit
    X, G, gammas, Phi = _pieces(m, fit)
    PhiA, ddf = dense_kr(X, G + [np.eye(len(X))], gammas, Phi)
    names = list(fit.fixef.index)
    np.testing.assert_allclose(ddf, [REF["df"][n] for n in names], rtol=1e-4)
    np.testing.assert_allclose(np.sqrt(np.diag(PhiA)), [REF["se_adjusted"][n] for n in names],
                               rtol=1e-5)
    assert np.all(np.abs(fit.summary(ddf="Kenward-Roger")["df"].to_numpy() - ddf) > 100)
