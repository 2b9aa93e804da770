"""Exact ML and REML (GREML) of the rotated genomic LMM by a one-dimensional search.

At a given ``h² = σ_b² scale / (σ_b² scale + σ²)`` the fixed effects and the total
variance have closed forms, so the criterion is profiled to one dimension (FaST-LMM's
method); each evaluation is O(n k) in the tridiagonal or diagonal basis of
:class:`~bayeslmm.linalg.rotation.Rotation`.

Examples
--------
>>> import numpy as np
>>> from bayeslmm.linalg.rotation import rotate_matrix
>>> rng = np.random.default_rng(0)
>>> W, Xf = rng.normal(size=(30, 50)), np.column_stack([np.ones(30), rng.normal(size=30)])
>>> y = Xf @ [1.0, 0.5] + W @ rng.normal(scale=0.2, size=50) + rng.normal(size=30)
>>> fit = greml(rotate_matrix(W, y, Xf), "REML")
>>> 0 <= fit.h2 <= 1, fit.beta.shape
(True, (2,))
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import brentq, minimize_scalar

from ..errors import BayesLMMError
from ..linalg.rotation import Rotation
from ..results.kernel_map import GremlFit

__all__ = ["profiled_deviance", "greml", "greml_at"]

#: χ²₁ 95% quantile, for the profile-likelihood interval of h²
_CHI2_95 = 3.841458820694124


def profiled_deviance(rot: Rotation, h2: float, reml: bool = True):
    """−2 log-likelihood (ML) or REML criterion at h², β and the total variance profiled.

    Returns
    -------
    deviance : float
    beta : ndarray (k,)
        GLS estimate at h².
    tau : float
        Profiled total variance ``σ_b² · scale + σ²``.
    A : ndarray (k, k)
        ``X_fᵀ V₀⁻¹ X_f``; ``tau · A⁻¹`` is the covariance of β̂.
    """
    n, k = rot.n, rot.k
    logdet, A, b, quad = rot.gls(h2)
    if not np.isfinite(logdet):
        return np.inf, np.full(k, np.nan), np.nan, np.full((k, k), np.nan)
    beta = np.linalg.solve(A, b) if k else np.zeros(0)
    m = n - k if reml else n
    tau = quad(beta) / m
    dev = m * (1.0 + np.log(2.0 * np.pi * tau)) + logdet
    if reml and k:
        dev += np.linalg.slogdet(A)[1]
    return float(dev), beta, tau, A


def greml(rot: Rotation, method: str = "REML", grid: int = 51) -> GremlFit:
    """ML or REML estimates by a one-dimensional search over h² (FaST-LMM's method).

    β and the total variance τ have closed forms at each h², so the criterion is
    profiled to one dimension; a grid locates the optimum (the criterion can be
    multimodal) and bounded Brent refines it.

    Parameters
    ----------
    rot : Rotation
    method : {"REML", "ML"}
    grid : int
        Grid points on [0, 1] before refining.

    Returns
    -------
    GremlFit
        With the standard error of h² from the curvature of the profiled criterion
        (NaN at a boundary) and its 95% profile-likelihood interval.
    """
    if method not in ("ML", "REML"):
        raise BayesLMMError(f"method must be 'ML' or 'REML', got {method!r}.")
    reml = method == "REML"
    if rot.n - rot.k <= 0:
        raise BayesLMMError(f"{rot.n} observations for {rot.k} fixed effects: nothing "
                            "is left to estimate the variances.")
    hi = 1.0 - 1e-9 if rot.n_c else 1.0
    calls = [0]

    def dev(h: float) -> float:
        calls[0] += 1
        return profiled_deviance(rot, h, reml)[0]

    hs = np.linspace(0.0, hi, grid)
    devs = np.array([dev(h) for h in hs])
    j = int(np.argmin(devs))
    lo_b, hi_b = hs[max(j - 1, 0)], hs[min(j + 1, grid - 1)]
    opt = minimize_scalar(dev, bounds=(lo_b, hi_b), method="bounded",
                          options={"xatol": 1e-10})
    h = float(opt.x) if opt.fun <= devs[j] else float(hs[j])
    return greml_at(rot, method, h, converged=opt.success or j in (0, grid - 1),
                    evaluations=calls[0])


def greml_at(rot: Rotation, method: str, h2: float, *, converged: bool = True,
             evaluations: int = 0) -> GremlFit:
    """The estimates at a given h² (the end point of :func:`greml`, or a saved fit's):
    β and the variances in closed form, the se of h² and its profile interval.

    Examples
    --------
    >>> import numpy as np
    >>> from bayeslmm.linalg.rotation import rotate_matrix
    >>> rng = np.random.default_rng(0)
    >>> W, Xf = rng.normal(size=(30, 50)), np.ones((30, 1))
    >>> rot = rotate_matrix(W, Xf[:, 0] + W @ rng.normal(scale=0.2, size=50), Xf)
    >>> fit = greml(rot, "ML")
    >>> bool(np.isclose(greml_at(rot, "ML", fit.h2).loglik, fit.loglik))
    True
    """
    reml = method == "REML"
    hi = 1.0 - 1e-9 if rot.n_c else 1.0
    dev = lambda h: profiled_deviance(rot, h, reml)[0]  # noqa: E731
    h = float(h2)
    dmin, beta, tau, A = profiled_deviance(rot, h, reml)
    se = _curvature_se(dev, h, hi)
    interval = (_root(dev, dmin, h, 0.0), _root(dev, dmin, h, hi))
    return GremlFit(
        method=method, h2=h, beta=beta, vcov=tau * np.linalg.inv(A) if rot.k else A,
        sd=float(np.sqrt(h * tau / rot.scale)), sigma=float(np.sqrt((1.0 - h) * tau)),
        loglik=-0.5 * dmin, h2_se=se, h2_interval=interval,
        converged=bool(np.isfinite(dmin)) and bool(converged), evaluations=evaluations)


def _curvature_se(dev, h: float, hi: float) -> float:
    """sd of h² from the second derivative of the deviance (2 × observed information)."""
    e = 1e-4
    if h - e <= 0.0 or h + e >= hi:
        return float("nan")
    d2 = (dev(h + e) - 2.0 * dev(h) + dev(h - e)) / e**2
    return float(np.sqrt(2.0 / d2)) if d2 > 0 else float("nan")


def _root(dev, dmin: float, h: float, end: float) -> float:
    """Where the deviance has risen by χ²₁(0.95) between h and ``end`` (else ``end``)."""
    f = lambda x: dev(x) - dmin - _CHI2_95  # noqa: E731
    if h == end or f(end) <= 0.0:
        return float(end)
    return float(brentq(f, min(h, end), max(h, end), xtol=1e-8))
