"""An ML/REML solution at θ → :class:`~bayeslmm.results.map.MapResult`, and the
warnings every fit gives (lme4's convergence and singularity messages).

Shared by lme4-style fits (:mod:`bayeslmm.mle.lmer`), nlme-style ones
(:mod:`bayeslmm.mle.lme`) and the restoration of a saved fit (:mod:`bayeslmm.mle.restore`).

Examples
--------
>>> import bayeslmm as blm
>>> from bayeslmm.formula.design import build_design
>>> from bayeslmm.linalg.pls import PLS
>>> d = build_design("Yield ~ 1 + (1 | Batch)", blm.datasets.load("Dyestuff"))
>>> pls = PLS.from_design(d)
>>> sol = pls.solution([0.7526], reml=False)
>>> fit = assemble(d, "ML", pls, np.array([0.7526]), sol, True, False, 0, "given")
>>> round(fit.loglik, 3), round(fit.sigma, 2)
(-163.664, 49.51)
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ..errors import user_stacklevel
from ..linalg.fixed_sigma import FixedSigmaPLS
from ..results.map import MapResult
from ..results.varcorr import varcorr_frame

__all__ = ["assemble", "warn_fit"]

def warn_fit(method: str, converged: bool, singular: bool, msg: str) -> None:
    if not converged:
        warnings.warn(f"Model failed to converge ({method}): {msg}. The estimates may not be "
                      "the optimum; simplify the random effects or rescale covariates.",
                      UserWarning, stacklevel=user_stacklevel())
    if singular:
        warnings.warn("boundary (singular) fit: a random-effect variance is estimated at 0 or "
                      "a correlation at ±1 (see MapResult.singular); consider simplifying the "
                      "random effects.", UserWarning, stacklevel=user_stacklevel())


def assemble(design, method, pls, theta, sol, converged, singular, nfev, msg,
            residual: dict | None = None, engine=None) -> MapResult:
    """The MapResult at θ; ``design`` is the unwhitened one (for the fitted values),
    ``pls``/``sol`` may be of a whitened design. ``residual`` (residual-structure fits):
    ``logdet`` (log|Λ|, added to the criterion), ``n_params``, ``structure``,
    ``params`` (nlme-named), ``scale`` (σ·δ per row, for the scaled residuals), ``u``
    and ``covariate`` (the fitted values a variance function was evaluated at).
    ``engine``: the :class:`~bayeslmm.mle.engine.MapEngine` the result keeps."""
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
    fitted = residuals = None  # out of core: per row only on request (predict, lazily)
    if design.in_memory:
        fitted = design.X @ sol.beta
        for t, b in zip(terms, sol.b, strict=True):
            fitted = fitted + np.einsum("iq,iq->i", t.Z, b[t.codes])
        residuals = pd.Series(design.y - fitted, index=design.rows, name="residual")
        fitted = pd.Series(fitted, index=design.rows, name="fitted")
    res = residual or {}
    loglik = -0.5 * (sol.criterion + res.get("logdet", 0.0))
    fixed = isinstance(pls, FixedSigmaPLS)  # σ known: not a parameter
    df = len(names) + pls.layout.size + (0 if fixed else 1) + res.get("n_params", 0)
    extra = {}
    if residual is not None:
        extra = {"residual_structure": res["structure"], "residual_params": res["params"]}
        if residuals is not None:  # rows in memory
            extra["scaled_residuals"] = pd.Series(residuals.to_numpy() / res["scale"],
                                                  index=design.rows, name="scaled")
        if res.get("se") is not None:
            extra["se"] = pd.Series(res["se"], index=names, name="se")
        if res.get("covariate") is not None:
            extra["covariate"] = np.asarray(res["covariate"], dtype=float)
    return MapResult(
        formula=design.spec.formula, method=method,
        fixef=pd.Series(sol.beta, index=names, name="estimate"),
        vcov=pd.DataFrame(sol.vcov, index=names, columns=names),
        ranef=ranef, ranef_sd=ranef_sd, varcorr=varcorr, sigma=sol.sigma,
        nobs=design.nobs, ngroups=design.ngroups, loglik=loglik, df=df,
        converged=converged, singular=singular,
        theta=pd.Series(theta, index=pls.layout.names, name="theta"),
        fitted=fitted, residuals=residuals,
        optimizer={"method": "L-BFGS-B", "nfev": int(nfev), "message": msg,
                   **({"u": [float(v) for v in res["u"]]} if "u" in res else {})},
        blocks={t.group: t.blocks for t in terms}, design=design, engine=engine,
        sigma_fixed=fixed, **extra,
    )
