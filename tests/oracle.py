"""The Gaussian LMM likelihood written plainly on dense matrices: the test oracle.

It lives with the tests, not the package: the package computes the same numbers from
cross-products (:mod:`bayeslmm.linalg.pls`, :mod:`bayeslmm.linalg.marginal_kernel`), and the
tests check one against the other and this module against
``scipy.stats.multivariate_normal``.

y ~ N(Xβ, V), V = Z Ψ̃ Zᵀ + σ² I with Ψ̃ = blockdiag over factors of (I_levels ⊗ Ψ_k).
Nothing here is fast (V is n×n).

Examples
--------
>>> import numpy as np, bayeslmm as blm
>>> from bayeslmm.formula.design import build_design
>>> d = build_design("Yield ~ 1 + (1 | Batch)", blm.datasets.load("Dyestuff"))
>>> Z, G = dense_z(d.terms), dense_psi(d.terms, [np.array([[37.26**2]])])
>>> round(marginal_loglik(d.y, d.X, Z, G, np.array([1527.5]), 49.51), 4)
-163.6635
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.linalg as sla

from bayeslmm.linalg.theta import ThetaLayout
from bayeslmm.residual.algebra import log_sd_weights
from bayeslmm.residual.structures import AR1, CAR1, CompSymm

__all__ = [
    "dense_z", "dense_psi", "marginal_loglik", "reml_loglik", "gls", "profiled_criterion",
    "dense_lambda",
]

_LOG2PI = np.log(2.0 * np.pi)


def dense_z(terms: Sequence) -> np.ndarray:
    """Full random-effects matrix Z (n × Σ levels·q), effects ordered level-major per factor.

    Examples
    --------
    >>> import bayeslmm as blm
    >>> from bayeslmm.formula.design import build_design
    >>> d = build_design("Reaction ~ Days + (Days | Subject)", blm.datasets.load("sleepstudy"))
    >>> dense_z(d.terms).shape
    (180, 36)
    """
    blocks = []
    for t in terms:
        zk = np.zeros((len(t.codes), t.n_levels, t.q))
        zk[np.arange(len(t.codes)), t.codes, :] = t.Z
        blocks.append(zk.reshape(len(t.codes), -1))
    return np.hstack(blocks) if blocks else np.zeros((0, 0))


def dense_psi(terms: Sequence, psis: Sequence[np.ndarray]) -> np.ndarray:
    """Ψ̃ = blockdiag_k(I_{levels_k} ⊗ Ψ_k), matching :func:`dense_z`'s column order.

    >>> dense_psi([type("T", (), {"n_levels": 2})()], [np.eye(1) * 3.0]).tolist()
    [[3.0, 0.0], [0.0, 3.0]]
    """
    mats = [np.kron(np.eye(t.n_levels), np.atleast_2d(p)) for t, p in zip(terms, psis,
                                                                            strict=True)]
    return sla.block_diag(*mats) if mats else np.zeros((0, 0))


def _cov(Z: np.ndarray, G: np.ndarray, sigma: float, n: int) -> np.ndarray:
    V = sigma**2 * np.eye(n)
    if Z.size:
        V += Z @ G @ Z.T
    return V


def marginal_loglik(y: np.ndarray, X: np.ndarray, Z: np.ndarray, G: np.ndarray,
                    beta: np.ndarray, sigma: float) -> float:
    """log N(y | Xβ, Z G Zᵀ + σ² I), by a dense Cholesky of V."""
    n = len(y)
    cf = sla.cho_factor(_cov(Z, G, sigma, n), lower=True)
    r = y - X @ np.asarray(beta, dtype=float)
    logdet = 2.0 * np.sum(np.log(np.diag(cf[0])))
    return float(-0.5 * (n * _LOG2PI + logdet + r @ sla.cho_solve(cf, r)))


def gls(y: np.ndarray, X: np.ndarray, V: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Generalised least squares: β̂ = (XᵀV⁻¹X)⁻¹XᵀV⁻¹y and (XᵀV⁻¹X)⁻¹.

    >>> b, cov = gls(np.array([1.0, 3.0]), np.ones((2, 1)), np.eye(2))
    >>> b.tolist(), cov.tolist()
    ([2.0], [[0.5]])
    """
    cf = sla.cho_factor(V, lower=True)
    vix = sla.cho_solve(cf, X)
    xtvx = X.T @ vix
    cov = np.linalg.inv(xtvx)
    return cov @ (vix.T @ y), cov


def reml_loglik(y: np.ndarray, X: np.ndarray, Z: np.ndarray, G: np.ndarray,
                sigma: float) -> float:
    """REML log-likelihood (β integrated with a flat prior), lme4's convention.

    −2ℓ_R = (n−p) log 2π + log|V| + log|XᵀV⁻¹X| + (y−Xβ̂)ᵀV⁻¹(y−Xβ̂), β̂ the GLS
    estimate. It equals log N(Kᵀy | 0, KᵀVK) − ½ log|XᵀX| for K an orthonormal basis
    of the complement of X's columns.
    """
    n, p = X.shape
    V = _cov(Z, G, sigma, n)
    beta, cov = gls(y, X, V) if p else (np.zeros(0), np.zeros((0, 0)))
    r = y - X @ beta
    cf = sla.cho_factor(V, lower=True)
    logdet_v = 2.0 * np.sum(np.log(np.diag(cf[0])))
    logdet_xvx = -np.linalg.slogdet(cov)[1] if p else 0.0
    return float(-0.5 * ((n - p) * _LOG2PI + logdet_v + logdet_xvx + r @ sla.cho_solve(cf, r)))


def profiled_criterion(design, theta: Sequence[float], reml: bool = False) -> float:
    """lme4's deviance (ML) or REML criterion at θ, with β and σ profiled out (dense).

    At θ, V = σ² V₀ with V₀ = Z Λ̃Λ̃ᵀ Zᵀ + I; β̂ is the GLS estimate under V₀ and σ̂² its
    weighted residual sum of squares over n (ML) or n − p (REML).

    Examples
    --------
    >>> import bayeslmm as blm
    >>> from bayeslmm.formula.design import build_design
    >>> d = build_design("Reaction ~ Days + (Days | Subject)", blm.datasets.load("sleepstudy"))
    >>> round(profiled_criterion(d, [0.9667, 0.0152, 0.2309], reml=True), 3)
    1743.628
    """
    lay = ThetaLayout.from_terms(design.terms)
    Z = dense_z(design.terms)
    G = dense_psi(design.terms, lay.psis(theta, 1.0))
    y, X = design.y, design.X
    n, p = X.shape
    V0 = _cov(Z, G, 1.0, n)
    beta, cov = gls(y, X, V0) if p else (np.zeros(0), np.zeros((0, 0)))
    r = y - X @ beta
    cf = sla.cho_factor(V0, lower=True)
    rss = float(r @ sla.cho_solve(cf, r))
    logdet = 2.0 * np.sum(np.log(np.diag(cf[0])))
    if not reml:
        return float(logdet + n * (1.0 + np.log(2.0 * np.pi * rss / n)))
    logdet_xvx = -np.linalg.slogdet(cov)[1] if p else 0.0
    return float(logdet + logdet_xvx + (n - p) * (1.0 + np.log(2.0 * np.pi * rss / (n - p))))


def dense_lambda(rd, params) -> np.ndarray:
    """Dense ``Λ`` (n × n, data row order), built from the definitions.

    >>> import pandas as pd
    >>> from bayeslmm.residual.bind import bind
    >>> rd = bind(AR1(group="g"), pd.DataFrame({"g": list("aab")}))
    >>> dense_lambda(rd, {"Phi": 0.5}).tolist()
    [[1.0, 0.5, 0.0], [0.5, 1.0, 0.0], [0.0, 0.0, 1.0]]
    """
    n, c = rd.n, rd.correlation
    g = rd.group_codes[rd.inverse]
    same = g[:, None] == g[None, :]
    if isinstance(c, (AR1, CAR1)):
        t = rd.time[rd.inverse]
        C = np.where(same, params["Phi"] ** np.abs(np.subtract.outer(t, t)), 0.0)
    elif isinstance(c, CompSymm):
        C = np.where(same, params["Rho"], 0.0)
        np.fill_diagonal(C, 1.0)
    else:
        C = np.eye(n)
    logd = log_sd_weights(rd, params)
    d = np.exp(logd[rd.inverse]) if logd is not None else np.ones(n)
    return d[:, None] * C * d[None, :]
