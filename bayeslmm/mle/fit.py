"""``fit_map``: ML or REML for any formula model, lme4's fit (iid residuals) or nlme's
(a residual structure).

Examples
--------
>>> import bayeslmm as blm
>>> from bayeslmm.formula.design import build_design
>>> d = build_design("Yield ~ 1 + (1 | Batch)", blm.datasets.load("Dyestuff"))
>>> fit = fit_map(d, method="ML")
>>> round(float(fit.varcorr.sdcor[0]), 3), round(fit.sigma, 3), round(fit.loglik, 3)
(37.26, 49.51, -163.664)
"""

from __future__ import annotations

import math
from numbers import Real

from ..errors import BayesLMMError, FitError
from ..results.map import MapResult
from .lme import fit_lme
from .lmer import check_method, fit_lmer
from .strata_fit import fit_strata

__all__ = ["fit_map", "check_sigma"]


def check_sigma(sigma) -> float | None:
    """A known residual sd: None, or a positive finite number (else a BayesLMMError
    naming the value).

    >>> check_sigma(1), check_sigma(None)
    (1.0, None)
    """
    if sigma is None:
        return None
    if isinstance(sigma, bool) or not isinstance(sigma, Real) \
            or not math.isfinite(sigma) or sigma <= 0:
        raise BayesLMMError(f"sigma must be a positive finite number, the known residual "
                            f"standard deviation (got {sigma!r}); sigma=None estimates it.")
    return float(sigma)


def fit_map(design, method: str = "REML", *, residual=None,
            maxiter: int | None = None, sigma: float | None = None) -> MapResult:
    """Maximum-likelihood or REML estimates, as lme4's ``lmer`` or, with a residual
    structure, nlme's ``lme`` (``gls`` without random effects).

    Parameters
    ----------
    design : Design
        From :func:`bayeslmm.formula.design.build_design`.
    method : {"REML", "ML"}
    residual : ResidualDesign, optional
        A residual structure bound to the design's rows (:func:`bayeslmm.residual.bind`).
    maxiter : int, optional
        Iteration limit of the optimiser (default: effectively none).
    sigma : float, optional
        The residual sd fixed at this known value (nlme's ``lmeControl(sigma = ...)``;
        with ``VarFixed``, the meta-analysis model): not estimated, not a parameter.
        None: estimated.

    Returns
    -------
    MapResult

    Examples
    --------
    >>> import bayeslmm as blm
    >>> m = blm.LMM("distance ~ age + Sex + (1 | Subject)", blm.datasets.load("Orthodont"),
    ...             residual=blm.AR1(group="Subject"))
    >>> round(fit_map(m.design, "ML", residual=m.residual).loglik, 3)  # nlme: -217.395
    -217.395
    """
    m = check_method(design, method)
    sigma = check_sigma(sigma)
    if residual is not None and design.weights is not None:
        raise FitError("Prior weights (weights=) and a residual structure cannot be combined "
                       "(lme4 has weights, nlme residual structures); give the known "
                       "variances 1/w as blm.VarFixed(covariate=...), with other variance "
                       "functions in blm.VarComb(...).")
    if residual is None:
        return fit_lmer(design, m, maxiter=maxiter, sigma=sigma)
    if not design.in_memory:  # out of core: on the statistics summed over the partitions
        return fit_strata(design, residual, m, maxiter=maxiter, sigma=sigma)
    return fit_lme(design, residual, m, maxiter=maxiter, sigma=sigma)
