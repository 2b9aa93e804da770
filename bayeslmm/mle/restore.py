"""A saved ML/REML fit rebuilt at its stored parameters, without searching again.

As MixedModels.jl's ``restoreoptsum!``: the file keeps θ (and, with a residual
structure, the unconstrained residual parameters u and the covariate of a variance
function of the fitted values); loading rebuilds the design, evaluates the penalised
least-squares solution at those parameters and assembles the same result, after
checking that the stored log-likelihood is reproduced.

Examples
--------
>>> import bayeslmm as blm
>>> from bayeslmm.formula.design import build_design
>>> d = build_design("Reaction ~ Days + (Days | Subject)", blm.datasets.load("sleepstudy"))
>>> fit = blm.LMM("Reaction ~ Days + (Days | Subject)", blm.datasets.load("sleepstudy")).fit_map()
>>> back = restore_map(d, "REML", fit.theta.to_numpy(), loglik=fit.loglik)
>>> bool(back.fixef.equals(fit.fixef)), back.loglik == fit.loglik
(True, True)
"""

from __future__ import annotations

import numpy as np

from ..errors import FitError
from ..formula.weights import weighted
from ..linalg.crossprod import CrossProducts
from ..linalg.fixed_sigma import make_pls
from ..linalg.theta import ThetaLayout
from ..results.map import MapResult
from .assemble import assemble
from .engine import MapEngine
from .lme import ResidualCriterion, lme_result
from .lmer import fit_lmer, weights_part
from .search import SINGULAR_TOL

__all__ = ["restore_map"]

#: Tolerance on the log-likelihood recomputed at the stored parameters (relative).
LOGLIK_RTOL = 1e-8


def restore_map(design, method: str, theta, *, residual=None, u=None, covariate=None,
                loglik: float | None = None, converged: bool = True, nfev: int = 0,
                message: str = "restored", sigma: float | None = None) -> MapResult:
    """The :class:`MapResult` of ``design`` at θ (and ``u``), as the fit returned it.

    Parameters
    ----------
    design : Design
    method : {"ML", "REML"}
    theta : array
        lme4's θ (``MapResult.theta``; on nlme's scale for residual structures).
    residual : ResidualDesign, optional
    u : array, optional
        The unconstrained residual parameters (``MapResult.optimizer["u"]``).
    covariate : array, optional
        The fitted values a variance function of the fitted values was evaluated at.
    loglik : float, optional
        The stored log-likelihood; a :class:`FitError` if it is not reproduced.
    converged, nfev, message
        What the original search reported.
    sigma : float, optional
        σ fixed at this value (the fit's ``sigma_fixed``).

    Returns
    -------
    MapResult
    """
    theta = np.asarray(theta, dtype=float)
    reml = method == "REML"
    if residual is None:
        w = weighted(design)
        pls = make_pls(CrossProducts.from_design(w), ThetaLayout.from_terms(w.terms), sigma)
        sol = pls.solution(theta, reml)
        singular = bool(np.any(theta[pls.layout.is_diag] < SINGULAR_TOL))
        engine = MapEngine(design, method, theta, sol.sigma, sol.beta,
                           fitter=lambda d, meth: fit_lmer(d, meth, sigma=sigma),
                           sigma_fixed=sigma is not None)
        result = assemble(design, method, pls, theta, sol, converged, singular, nfev, message,
                          residual=weights_part(design, sol), engine=engine)
    else:
        crit = ResidualCriterion(design, residual, reml, covariate, sigma)
        u = np.asarray(u if u is not None else [], dtype=float)
        _, m = crit.centred(u)
        x = np.concatenate([theta * np.exp(-m), u])  # θ relative to the centred variance
        result = lme_result(design, residual, crit, x, method, converged, nfev, message,
                            warn=False)
    if loglik is not None and not np.isclose(result.loglik, loglik, rtol=LOGLIK_RTOL,
                                              atol=1e-8):
        raise FitError(f"The stored fit does not reproduce: log-likelihood {result.loglik!r} "
                       f"at the stored parameters, the file holds {loglik!r} (a file from "
                       "another bayeslmm version, or data changed?).")
    return result
