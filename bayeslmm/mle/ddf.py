"""Satterthwaite's denominator degrees of freedom for tests of fixed effects, as lmerTest
computes them.

With ψ the variance parameters (lme4's θ and σ; for a residual structure also its
parameters), A = 2 H⁻¹ the asymptotic covariance of ψ̂ (H the Hessian of the ML or
REML deviance in ψ, a Moore–Penrose inverse over its eigenvalues above 1e-8) and
J_i = ∂vcov(β̂)/∂ψ_i, a contrast l has

    var = lᵀ V l,   g_i = lᵀ J_i l,   df = 2 var² / (gᵀ A g).

H and J are taken by Richardson extrapolation (:mod:`bayeslmm.linalg.derivatives`), as
lmerTest takes them with numDeriv. A test of several rows L is lmerTest's ``contestMD``:
the rows are rotated to the eigenvectors of L V Lᵀ, each gives a t statistic with its own
df ν_m, and the F statistic's df is 2E/(E − q), E = Σ ν_m/(ν_m − 2) (or the common ν when
all are equal, 2 when any ν_m ≤ 2).

Examples
--------
>>> import bayeslmm as blm
>>> from bayeslmm.formula.design import build_design
>>> from bayeslmm.linalg.pls import PLS
>>> d = build_design("Reaction ~ Days + (Days | Subject)", blm.datasets.load("sleepstudy"))
>>> fit = blm.LMM("Reaction ~ Days + (Days | Subject)", blm.datasets.load("sleepstudy")).fit_map()
>>> pls = PLS.from_design(d)
>>> x0 = np.append(fit.theta.to_numpy(), fit.sigma)
>>> sat = Satterthwaite(lambda x: pls.deviance(x[:-1], x[-1], reml=True),
...                     lambda x: x[-1] ** 2 * pls.beta_cov(x[:-1]), x0)
>>> round(sat.t_test(np.array([0.0, 1.0]))[1], 4)   # lmerTest: 16.99998
17.0
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np

from ..errors import user_stacklevel
from ..linalg.derivatives import hessian, jacobian

__all__ = ["Satterthwaite", "f_ddf"]


def f_ddf(nu: np.ndarray, tol: float = 1e-8) -> float:
    """lmerTest's ``get_Fstat_ddf``: the df of a mean of q squared t statistics.

    >>> f_ddf(np.array([10.0])), f_ddf(np.array([10.0, 10.0]))
    (10.0, 10.0)
    >>> round(f_ddf(np.array([5.0, 20.0])), 4)
    7.1429
    """
    nu = np.asarray(nu, dtype=float)
    if len(nu) == 1:
        return float(nu[0])
    if np.all(np.abs(np.diff(nu)) < tol):
        return float(np.mean(nu))
    if np.any(nu <= 2):
        return 2.0
    e = float(np.sum(nu / (nu - 2)))
    return 2 * e / (e - len(nu))


class Satterthwaite:
    """lmerTest's pieces of a fit (see the module docstring).

    Parameters
    ----------
    deviance : callable
        ψ → the ML or REML deviance (σ not profiled out).
    vcov : callable
        ψ → vcov(β̂) at ψ.
    x0 : ndarray
        ψ at the estimate.
    tol : float
        Eigenvalues of H below this are treated as 0 (lmerTest's ``tol``).

    Attributes
    ----------
    vcov : ndarray (p, p)
    vcov_varpar : ndarray
        A = 2 H⁺ (lmerTest's ``vcov_varpar``).
    jac : ndarray (k, p, p)
        ∂vcov/∂ψ_i.
    """

    def __init__(self, deviance: Callable, vcov: Callable, x0: np.ndarray,
                 tol: float = 1e-8):
        x0 = np.asarray(x0, dtype=float)
        H = hessian(deviance, x0)
        evals, evecs = np.linalg.eigh(0.5 * (H + H.T))
        neg, zero = evals < -tol, np.abs(evals) <= tol
        if neg.any():
            warnings.warn(f"Satterthwaite: the Hessian of the deviance has {int(neg.sum())} "
                          f"negative eigenvalue(s) ({', '.join(f'{v:.1e}' for v in evals[neg])}):"
                          " the fit may not be at the optimum.", UserWarning,
                          stacklevel=user_stacklevel())
        if zero.any():
            warnings.warn(f"Satterthwaite: the Hessian of the deviance has {int(zero.sum())} "
                          "eigenvalue(s) close to zero (a boundary fit?): those directions are "
                          "left out of the variance parameters' covariance (lmerTest does the "
                          "same).", UserWarning, stacklevel=user_stacklevel())
        pos = evals > tol
        self.vcov_varpar = 2.0 * (evecs[:, pos] / evals[pos]) @ evecs[:, pos].T
        self.vcov = np.asarray(vcov(x0), dtype=float)
        p = self.vcov.shape[0]
        J = jacobian(lambda x: np.asarray(vcov(x), dtype=float).ravel(), x0)
        self.jac = np.stack([J[:, i].reshape(p, p) for i in range(len(x0))])

    def t_test(self, L: np.ndarray) -> tuple[float, float]:
        """Variance of lᵀβ̂ and its Satterthwaite df (lmerTest's ``contest1D``)."""
        L = np.asarray(L, dtype=float)
        var = float(L @ self.vcov @ L)
        g = np.einsum("i,kij,j->k", L, self.jac, L)
        return var, float(2 * var**2 / (g @ self.vcov_varpar @ g))

    def f_test(self, L: np.ndarray, beta: np.ndarray, rhs: np.ndarray | None = None,
               eps: float = float(np.sqrt(np.finfo(float).eps))) -> tuple[float, int, float]:
        """F statistic, numerator and denominator df of H₀: Lβ = rhs (``contestMD``)."""
        L = np.atleast_2d(np.asarray(L, dtype=float))
        beta = np.asarray(beta, dtype=float)
        if rhs is not None and np.any(rhs != 0):
            beta = beta - np.linalg.pinv(L) @ rhs
        if L.shape[0] == 1:
            var, df = self.t_test(L[0])
            return float((L[0] @ beta) ** 2 / var), 1, df
        d, P = np.linalg.eigh(L @ self.vcov @ L.T)
        d, P = d[::-1], P[:, ::-1]          # decreasing, as R's eigen()
        pos = d > max(eps * d[0], 0.0)
        q = int(pos.sum())
        PtL = (P.T @ L)[:q]
        if q == 1:
            var, df = self.t_test(PtL[0])
            return float((PtL[0] @ beta) ** 2 / var), 1, df
        t2 = (PtL @ beta) ** 2 / d[:q]
        nu = np.empty(q)
        for m in range(q):
            g = np.einsum("i,kij,j->k", PtL[m], self.jac, PtL[m])
            nu[m] = 2 * d[m] ** 2 / (g @ self.vcov_varpar @ g)
        return float(np.sum(t2) / q), q, f_ddf(nu)
