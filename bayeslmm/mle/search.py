"""The bounded search behind every ML/REML fit: L-BFGS-B with an analytic gradient,
re-searched off the boundary for singular end points, checked for stationarity as lme4
checks it (``check.conv.grad``) and polished by Powell where that check fails.

Examples
--------
>>> import numpy as np
>>> f = lambda x: float((x[0] - 2.0) ** 2 + x[1] ** 2)
>>> fg = lambda x: (f(x), np.array([2 * (x[0] - 2.0), 2 * x[1]]))
>>> x, ok, msg, nfev = search(f, fg, np.array([1.0, 1.0]), [(0.0, None), (None, None)],
...                           np.array([True, False]), None)
>>> np.round(x, 6).tolist(), ok
([2.0, 0.0], True)
"""

from __future__ import annotations

from contextlib import nullcontext
from functools import lru_cache

import numpy as np
from scipy.optimize import minimize

__all__ = ["search", "one_blas_thread", "SINGULAR_TOL"]

#: A diagonal θ below this is a variance at 0 or a correlation at ±1 (lme4's isSingular).
SINGULAR_TOL = 1e-4
_GRAD_TOL = 2e-3
_SMALL = 2000  # dense block size below which BLAS threads cost more than they bring


@lru_cache(maxsize=1)
def _blas_controller():
    try:  # threadpoolctl comes with PyMC; without it, nothing is limited
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover
        return None
    return ThreadpoolController()


def one_blas_thread(size: int):
    """Single-threaded BLAS for small problems: thread wake-ups dominate tiny calls."""
    ctl = _blas_controller() if size <= _SMALL else None
    return ctl.limit(limits=1, user_api="blas") if ctl is not None else nullcontext()



def _projected_gradient(fg, theta: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """Gradient with the components that push against a bound (θ at 0, ∂ > 0) zeroed."""
    g = np.asarray(fg(theta)[1], dtype=float).copy()
    g[(theta <= lower) & (g > 0)] = 0.0
    return g


def _stationary(fg, theta: np.ndarray, grad: np.ndarray, lower: np.ndarray) -> bool:
    """lme4's gradient check: max |g| < 2e-3, or else the Hessian-scaled gradient
    (chol(H)⁻¹ g, free coordinates, H by differences of the analytic gradient) is."""
    if np.max(np.abs(grad), initial=0.0) < _GRAD_TOL:
        return True
    free = np.flatnonzero(grad != 0.0)
    H = np.empty((len(free), len(free)))
    for col, i in enumerate(free):
        h = 1e-5 * max(1.0, abs(theta[i]))
        up = theta.copy()
        up[i] += h
        H[:, col] = (np.asarray(fg(up)[1])[free] - np.asarray(fg(theta)[1])[free]) / h
    try:
        c = np.linalg.cholesky(0.5 * (H + H.T))
    except np.linalg.LinAlgError:
        return False
    return bool(np.max(np.abs(np.linalg.solve(c, grad[free]))) < _GRAD_TOL)



def search(f, fg, x0: np.ndarray, bounds: list, is_diag: np.ndarray, maxiter: int | None,
           extra_starts: tuple = (), scale: np.ndarray | None = None
           ) -> tuple[np.ndarray, bool, str, int]:
    """Bounded L-BFGS-B from ``x0`` (and ``extra_starts``: the best end point wins),
    re-searched off the boundary for singular end points, checked for stationarity as
    lme4 does and polished by Powell where that check fails.

    ``f`` is the criterion, ``fg`` criterion and gradient; ``is_diag`` flags the
    coordinates that are diagonal θ entries (a 0 there is a singular fit). With
    ``scale`` the search runs in ``x · scale`` (bounds at 0 or ±∞ are unchanged):
    the units of the predictors then change nothing (see
    :meth:`bayeslmm.linalg.theta.ThetaLayout.scales`). Returns the end point, whether it
    is stationary, a message and the number of evaluations.
    """
    if len(x0) == 0:  # e.g. gls with a variance function without parameters (VarFixed)
        return np.asarray(x0, dtype=float), True, "no parameters to search", 1
    if scale is not None:
        s = np.asarray(scale, dtype=float)
        best, ok, msg, nfev = search(
            lambda x: f(x / s), lambda x: _scaled(fg(x / s), s), np.asarray(x0) * s,
            bounds, is_diag, maxiter, tuple(np.asarray(e) * s for e in extra_starts))
        return best / s, ok, msg, nfev
    lower = np.array([-np.inf if b[0] is None else b[0] for b in bounds])
    it = maxiter if maxiter is not None else 1000
    opts = {"maxiter": it, "ftol": 1e-12, "gtol": 1e-6, "maxfun": 20 * it}
    best, fbest, nfev, msg = None, np.inf, 0, ""
    for st in (x0, *extra_starts):
        res = minimize(fg, st, method="L-BFGS-B", bounds=bounds, jac=True, options=opts)
        nfev += res.nfev
        if best is None or res.fun < fbest:
            best, fbest, msg = _clean(res.x), float(res.fun), str(res.message)
    if maxiter is None and np.any(best[is_diag] < SINGULAR_TOL):
        best, n_extra, msg = _off_boundary(f, fg, is_diag, best, msg, bounds, opts, x0)
        nfev += n_extra
    grad = _projected_gradient(fg, best, lower)
    converged = _stationary(fg, best, grad, lower)
    if not converged and maxiter is None:
        # derivative-free polish where L-BFGS-B's line search stalled
        pol = minimize(f, best, method="Powell", bounds=bounds,
                       options={"xtol": 1e-8, "ftol": 1e-13, "maxfev": 200 * (len(best) + 1)})
        nfev += pol.nfev
        if pol.fun < f(best):
            best, msg = _clean(pol.x), f"{msg}; Powell polish: {pol.message}"
            grad = _projected_gradient(fg, best, lower)
            converged = _stationary(fg, best, grad, lower)
    if not converged:
        msg = f"{msg}; max |projected gradient| = {np.max(np.abs(grad)):.3g}"
    return best, converged, msg, nfev


def _scaled(value_and_grad, s):
    value, grad = value_and_grad
    return value, np.asarray(grad) / s


def _off_boundary(f, fg, is_diag, best, msg, bounds, opts, theta0):
    """Make sure a singular end point is not an artefact of the search.

    A diagonal θ at 0 is a stationary point of the criterion (it is even in each column
    of Λ), and L-BFGS-B's first, unit-length step can land on that bound far from an
    interior optimum. So a singular fit is re-searched from other starts (Λ = I/2, 2I)
    and from probes that move each zero θ inside; the best end point wins.
    """
    nfev = 0
    fbest = f(best)
    starts = [0.5 * theta0, 2.0 * theta0]
    for _ in range(3):
        for st in starts:
            res = minimize(fg, st, method="L-BFGS-B", bounds=bounds, jac=True, options=opts)
            nfev += res.nfev
            if res.fun < fbest - 1e-10 * max(1.0, abs(fbest)):
                best, fbest = _clean(res.x), float(res.fun)
                msg = f"{res.message} (restarted off the boundary)"
        zero = np.flatnonzero(is_diag & (best < SINGULAR_TOL))
        probes = [np.where(np.arange(len(best)) == i, d, best) for i in zero for d in (0.05, 0.5)]
        vals = [f(pr) for pr in probes]
        nfev += len(probes)
        if not probes or min(vals) >= fbest - 1e-10 * max(1.0, abs(fbest)):
            break
        starts = [probes[int(np.argmin(vals))]]
    return best, nfev, msg


def _clean(theta: np.ndarray) -> np.ndarray:
    """Put values within rounding of 0 at exactly 0 (a variance on its bound)."""
    return np.where(np.abs(theta) < 1e-10, 0.0, theta)
