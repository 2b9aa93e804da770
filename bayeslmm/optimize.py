"""Exact ML and REML fits (lme4's numbers): optimise the profiled criterion over θ.

β and σ are profiled out (:mod:`bayeslmm.pls`), so only the relative covariance
parameters θ are searched: L-BFGS-B with the analytic gradient
(:mod:`bayeslmm.pls_gradient`) under lme4's bounds (diagonal entries of Λ ≥ 0), started
at lme4's Λ = I. Where the projected gradient at its end point is not small, a bounded
derivative-free search (Powell) polishes it. Pure NumPy/SciPy: no PyTensor compilation.

Convergence: when the projected gradient of the criterion at the end point is not small
(lme4's ``check.conv.grad`` test: max |g| or, failing that, max |chol(H)⁻¹g| above 2e-3
on the deviance scale), a ``UserWarning`` is emitted and the result has
``converged=False``; a criterion that cannot be
evaluated even at the start raises :class:`~bayeslmm.errors.FitError`.

Examples
--------
>>> import bayeslmm as blm
>>> from bayeslmm.design import build_design
>>> fit = fit_map(build_design("Reaction ~ Days + (Days | Subject)",
...                            blm.datasets.load("sleepstudy")), method="REML")
>>> round(fit.loglik, 2), round(fit.sigma, 3), fit.converged, fit.singular
(-871.81, 25.592, True, False)
"""

from __future__ import annotations

import warnings
from contextlib import nullcontext
from functools import lru_cache

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from .covariance import varcorr_frame
from .errors import FitError
from .map_result import MapResult
from .pls import PLS

__all__ = ["fit_map", "METHODS", "SINGULAR_TOL"]

#: Valid values of ``method``.
METHODS = ("ML", "REML")
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


def _one_blas_thread(size: int):
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


def _optimise(pls: PLS, reml: bool, maxiter: int | None):
    lay = pls.layout
    f = lambda th: pls.objective(th, reml)  # noqa: E731
    theta0 = lay.start()
    f0 = f(theta0)
    if not np.isfinite(f0):
        raise FitError(
            "The likelihood cannot be evaluated at the starting values (the penalised "
            "system is singular): check for a response that the fixed effects fit exactly."
        )
    if lay.size == 0:
        return theta0, True, "no covariance parameters", 0
    bounds = [(lo if np.isfinite(lo) else None, None) for lo in lay.lower]
    fg = lambda th: pls.objective_and_gradient(th, reml)  # noqa: E731
    return search(f, fg, theta0, bounds, lay.is_diag, maxiter)


def search(f, fg, x0: np.ndarray, bounds: list, is_diag: np.ndarray, maxiter: int | None,
           extra_starts: tuple = ()) -> tuple[np.ndarray, bool, str, int]:
    """Bounded L-BFGS-B from ``x0`` (and ``extra_starts``: the best end point wins),
    re-searched off the boundary for singular end points, checked for stationarity as
    lme4 does and polished by Powell where that check fails.

    ``f`` is the criterion, ``fg`` criterion and gradient; ``is_diag`` flags the
    coordinates that are diagonal θ entries (a 0 there is a singular fit). Returns the
    end point, whether it is stationary, a message and the number of evaluations.
    """
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


def fit_map(design, method: str = "REML", *, residual=None,
            maxiter: int | None = None) -> MapResult:
    """Maximum-likelihood or REML estimates of a Gaussian LMM, as lme4's ``lmer``
    (with a residual structure: as nlme's ``lme``, or ``gls`` without random effects).

    Parameters
    ----------
    design : Design
        From :func:`bayeslmm.design.build_design`.
    method : {"REML", "ML"}
        REML integrates β out with a flat prior (lme4's default); ML maximises the
        likelihood.
    residual : ResidualDesign, optional
        A residual structure bound to the design's rows
        (:func:`bayeslmm.residual_design.bind`); see :mod:`bayeslmm.optimize_residual`.
    maxiter : int, optional
        Iteration limit of the optimiser (default: effectively none).

    Returns
    -------
    MapResult

    Raises
    ------
    FitError
        For an unknown ``method`` or a likelihood that cannot be evaluated.

    Warns
    -----
    UserWarning
        ``boundary (singular) fit`` when a variance is 0 or a correlation ±1; a
        convergence warning when the optimiser stops short (``converged=False``).

    Examples
    --------
    >>> import bayeslmm as blm
    >>> from bayeslmm.design import build_design
    >>> d = build_design("Yield ~ 1 + (1 | Batch)", blm.datasets.load("Dyestuff"))
    >>> fit = fit_map(d, method="ML")
    >>> round(float(fit.varcorr.sdcor[0]), 3), round(fit.sigma, 3), round(fit.loglik, 3)
    (37.26, 49.51, -163.664)
    """
    m = str(method).upper() if isinstance(method, str) else method
    if m not in METHODS:
        raise FitError(f"method must be one of {list(METHODS)} (got {method!r}).")
    reml = m == "REML"
    if reml and design.nobs <= design.X.shape[1]:
        raise FitError(f"REML needs more observations ({design.nobs}) than fixed effects "
                       f"({design.X.shape[1]}).")
    if residual is not None:
        from .optimize_residual import fit_residual

        return fit_residual(design, residual, m, maxiter=maxiter)
    pls = PLS.from_design(design)
    with _one_blas_thread(pls.cp.Arr.shape[0]):
        theta, converged, msg, nfev = _optimise(pls, reml, maxiter)
        sol = pls.solution(theta, reml)
    lay = pls.layout
    singular = bool(np.any(theta[lay.is_diag] < SINGULAR_TOL))
    _warn(m, converged, singular, msg)
    return _result(design, m, pls, theta, sol, converged, singular, nfev, msg)


def _warn(method: str, converged: bool, singular: bool, msg: str) -> None:
    if not converged:
        warnings.warn(f"Model failed to converge ({method}): {msg}. The estimates may not be "
                      "the optimum; simplify the random effects or rescale covariates.",
                      UserWarning, stacklevel=3)
    if singular:
        warnings.warn("boundary (singular) fit: a random-effect variance is estimated at 0 or "
                      "a correlation at ±1 (see MapResult.singular); consider simplifying the "
                      "random effects.", UserWarning, stacklevel=3)


def _result(design, method, pls, theta, sol, converged, singular, nfev, msg,
            residual: dict | None = None) -> MapResult:
    """The MapResult at θ; ``design`` is the unwhitened one (for the fitted values),
    ``pls``/``sol`` may be of a whitened design. ``residual`` (residual-structure fits):
    ``logdet`` (log|Λ|, added to the criterion), ``n_params``, ``structure``,
    ``params`` (nlme-named), ``scale`` (σ·δ per row, for the scaled residuals), ``u``."""
    names = design.fixef_names
    psis = pls.layout.psis(theta, sol.sigma)
    terms = design.terms
    varcorr = varcorr_frame([(t.group, t.term_names, psi) for t, psi in zip(terms, psis,
                                                                            strict=True)],
                            sol.sigma, blocks=[t.blocks for t in terms])
    ranef = {t.group: pd.DataFrame(b, index=pd.Index(t.levels, name=t.group),
                                   columns=t.term_names)
             for t, b in zip(terms, sol.b, strict=True)}
    ranef_sd = {t.group: pd.DataFrame(s, index=pd.Index(t.levels, name=t.group),
                                      columns=t.term_names)
                for t, s in zip(terms, sol.b_sd, strict=True)}
    fitted = design.X @ sol.beta
    for t, b in zip(terms, sol.b, strict=True):
        fitted = fitted + np.einsum("iq,iq->i", t.Z, b[t.codes])
    res = residual or {}
    loglik = -0.5 * (sol.criterion + res.get("logdet", 0.0))
    df = design.X.shape[1] + pls.layout.size + 1 + res.get("n_params", 0)
    extra = {}
    if residual is not None:
        scaled = (design.y - fitted) / res["scale"]
        extra = {"residual_structure": res["structure"], "residual_params": res["params"],
                 "scaled_residuals": pd.Series(scaled, index=design.rows, name="scaled")}
        if res.get("se") is not None:
            extra["se"] = pd.Series(res["se"], index=names, name="se")
    return MapResult(
        formula=design.spec.formula, method=method,
        fixef=pd.Series(sol.beta, index=names, name="estimate"),
        vcov=pd.DataFrame(sol.vcov, index=names, columns=names),
        ranef=ranef, ranef_sd=ranef_sd, varcorr=varcorr, sigma=sol.sigma,
        nobs=design.nobs, ngroups=design.ngroups, loglik=loglik, df=df,
        converged=converged, singular=singular,
        theta=pd.Series(theta, index=pls.layout.names, name="theta"),
        fitted=pd.Series(fitted, index=design.rows, name="fitted"),
        residuals=pd.Series(design.y - fitted, index=design.rows, name="residual"),
        optimizer={"method": "L-BFGS-B", "nfev": int(nfev), "message": msg,
                   **({"u": [float(v) for v in res["u"]]} if "u" in res else {})},
        blocks={t.group: t.blocks for t in terms}, design=design, **extra,
    )
