"""Exact ML and REML fits with iid residuals (lme4's ``lmer``): the profiled criterion
optimised over θ.

β and σ are profiled out (:mod:`bayeslmm.linalg.pls`), so only the relative covariance
parameters θ are searched: L-BFGS-B with the analytic gradient
(:mod:`bayeslmm.linalg.pls_gradient`) under lme4's bounds (diagonal entries of Λ ≥ 0),
started at lme4's Λ = I (:func:`bayeslmm.mle.search.search`). Pure NumPy/SciPy: no
PyTensor compilation.

Convergence: when the projected gradient of the criterion at the end point is not small
(lme4's ``check.conv.grad`` test: max |g| or, failing that, max |chol(H)⁻¹g| above 2e-3
on the deviance scale), a ``UserWarning`` is emitted and the result has
``converged=False``; a criterion that cannot be evaluated even at the start raises
:class:`~bayeslmm.errors.FitError`.

Examples
--------
>>> import bayeslmm as blm
>>> from bayeslmm.formula.design import build_design
>>> fit = fit_lmer(build_design("Reaction ~ Days + (Days | Subject)",
...                             blm.datasets.load("sleepstudy")), method="REML")
>>> round(fit.loglik, 2), round(fit.sigma, 3), fit.converged, fit.singular
(-871.81, 25.592, True, False)
"""

from __future__ import annotations

import numpy as np

from ..errors import FitError
from ..formula.weights import log_weight_term, weighted
from ..linalg.crossprod import CrossProducts
from ..linalg.fixed_sigma import make_pls
from ..linalg.pls import PLS
from ..linalg.theta import ThetaLayout
from ..results.map import MapResult
from .assemble import assemble, warn_fit
from .engine import MapEngine
from .search import SINGULAR_TOL, one_blas_thread, search

__all__ = ["fit_lmer", "check_method", "METHODS", "weights_part"]

#: Valid values of ``method``.
METHODS = ("ML", "REML")


def check_method(design, method) -> str:
    """``"ML"`` or ``"REML"`` (any case), checked against the design; else a FitError.

    >>> check_method(type("D", (), {"nobs": 10, "fixef_names": ["Intercept"]})(), "reml")
    'REML'
    """
    m = str(method).upper() if isinstance(method, str) else method
    if m not in METHODS:
        raise FitError(f"method must be one of {list(METHODS)} (got {method!r}).")
    p = len(design.fixef_names)
    if m == "REML" and design.nobs <= p:
        raise FitError(f"REML needs more observations ({design.nobs}) than fixed effects "
                       f"({p}).")
    return m


def weights_part(design, sol) -> dict | None:
    """What :func:`~bayeslmm.mle.assemble.assemble` needs of lme4's prior weights: the
    PLS is of the rows scaled by √w, so the log-likelihood gains ½ Σ log w (``logdet``
    −Σ log w) and the scaled residuals are lme4's Pearson ones, √w (y − fitted) / σ."""
    if design.weights is None:
        return None
    return {"logdet": -2.0 * log_weight_term(design), "n_params": 0, "structure": None,
            "params": {}, "scale": sol.sigma / np.sqrt(design.weights)}


def _optimise(pls: PLS, reml: bool, maxiter: int | None, scale: np.ndarray):
    lay = pls.layout
    f = lambda th: pls.objective(th, reml)  # noqa: E731
    theta0 = lay.start() / scale  # lme4's Λ = I, in the units of the covariates
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
    return search(f, fg, theta0, bounds, lay.is_diag, maxiter, scale=scale)


def fit_lmer(design, method: str = "REML", *, maxiter: int | None = None,
             sigma: float | None = None) -> MapResult:
    """Maximum-likelihood or REML estimates of a Gaussian LMM with iid residuals, as
    lme4's ``lmer``.

    Parameters
    ----------
    design : Design
        From :func:`bayeslmm.formula.design.build_design`.
    method : {"REML", "ML"}
        REML integrates β out with a flat prior (lme4's default); ML maximises the
        likelihood.
    maxiter : int, optional
        Iteration limit of the optimiser (default: effectively none).
    sigma : float, optional
        σ fixed at this value (:mod:`~bayeslmm.linalg.fixed_sigma`); None: estimated.

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
    >>> from bayeslmm.formula.design import build_design
    >>> d = build_design("Yield ~ 1 + (1 | Batch)", blm.datasets.load("Dyestuff"))
    >>> fit = fit_lmer(d, method="ML")
    >>> round(float(fit.varcorr.sdcor[0]), 3), round(fit.sigma, 3), round(fit.loglik, 3)
    (37.26, 49.51, -163.664)
    """
    m = check_method(design, method)
    reml = m == "REML"
    w = weighted(design)  # lme4's prior weights: rows scaled by √w
    pls = make_pls(CrossProducts.from_design(w), ThetaLayout.from_terms(w.terms), sigma)
    with one_blas_thread(pls.cp.Arr.shape[0]):
        scale = pls.layout.scales(design.terms)
        theta, converged, msg, nfev = _optimise(pls, reml, maxiter, scale)
        sol = pls.solution(theta, reml)
    singular = bool(np.any((theta * scale)[pls.layout.is_diag] < SINGULAR_TOL))
    warn_fit(m, converged, singular, msg)
    engine = MapEngine(design, m, theta, sol.sigma, sol.beta, sigma_fixed=sigma is not None,
                       fitter=lambda d, meth: fit_lmer(d, meth, sigma=sigma))
    return assemble(design, m, pls, theta, sol, converged, singular, nfev, msg,
                    residual=weights_part(design, sol), engine=engine)
