"""Design → PyMC model with the random effects integrated out (the marginal model).

Same parameters and priors as the conditional model (``beta``, ``sigma``, ``sd_<g>``,
``corr_<g>``, ``chol_<g>``), so both target the same posterior of the
hyper-parameters; the likelihood is the exact marginal ``N(y | Xβ, ZΨ̃Zᵀ + σ²I)``
computed from cross-products (:mod:`bayeslmm.marginal`): its cost per gradient does
not depend on the number of rows. The random effects are drawn afterwards from their
exact Gaussian conditional (:mod:`bayeslmm.ranef_draws`).

The cross-products are ``pm.Data`` containers, so a compiled model can be reused on
new data of the same shape (``pm.set_data``).

Examples
--------
>>> import bayeslmm as blm
>>> from bayeslmm.design import build_design
>>> from bayeslmm.priors import resolve_priors
>>> d = build_design("Reaction ~ Days + (Days | Subject)", blm.datasets.load("sleepstudy"))
>>> m = build_marginal(d, resolve_priors(d))
>>> sorted(v.name for v in m.free_RVs)
['beta', 'chol_Subject', 'sigma']
"""

from __future__ import annotations

from dataclasses import replace

import pymc as pm

from .conditional import _term_scale, coords_of
from .design import Design
from .marginal import MarginalStats, marginal_logp
from .priors import ResolvedPriors

__all__ = ["build_marginal", "stats_data", "MAX_DENSE_RE"]

#: Above this many random effects in a model with several grouping factors, the dense
#: (Σq·levels)² factorisation per gradient costs more than sampling b explicitly.
MAX_DENSE_RE = 400

_FIELDS = ("ZtZ", "ZtX", "Zty", "XtX", "Xty", "yty")


def stats_data(stats: MarginalStats) -> dict:
    """The data arrays of the marginal model, by their ``pm.Data`` names."""
    return {f"stat_{f}": getattr(stats, f) for f in _FIELDS}


def build_marginal(design: Design, priors: ResolvedPriors) -> pm.Model:
    """Build the marginal PyMC model (random effects integrated out).

    Returns
    -------
    pymc.Model
        Free variables: ``beta``, ``sigma`` and the covariance parameters; the
        log-likelihood is a ``pm.Potential`` named ``marginal_loglik``.
    """
    stats = MarginalStats.from_design(design)
    coords = coords_of(design)
    coords.pop("obs")
    with pm.Model(coords=coords) as model:
        shared = {f: pm.Data(f"stat_{f}", getattr(stats, f)) for f in _FIELDS}
        beta = priors.beta.rv("beta", dims="fixef")
        chols = [_term_scale(t, priors)[0] for t in design.terms]
        sigma = priors.sigma.rv("sigma")
        pm.Potential("marginal_loglik",
                     marginal_logp(replace(stats, **shared), beta, sigma, chols))
    return model
