"""Design → PyMC model with the random effects integrated out (the marginal model).

Same parameters and priors as the conditional model (``beta``, ``sigma``, ``sd_<g>``,
``corr_<g>``, ``chol_<g>``), so both target the same posterior of the
hyper-parameters; the likelihood is the exact marginal ``N(y | Xβ, ZΨ̃Zᵀ + σ²I)``
computed from cross-products (:mod:`bayeslmm.marginal`): its cost per gradient does
not depend on the number of rows. The random effects are drawn afterwards from their
exact Gaussian conditional (:mod:`bayeslmm.ranef_draws`).

The cross-products, the number of rows and the data-scaled prior parameters are
``pm.Data`` containers: the graph depends on the data only through them, so one
compiled model serves every dataset with the same formula structure (the nutpie
backend caches it, in memory and on disk).

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

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from .conditional import _residual_params, _residual_sigma, _term_scale, coords_of
from .design import Design
from .errors import BayesLMMError
from .marginal import MarginalStats, marginal_logp
from .priors import ResolvedPriors, priors_as_data
from .residual import VarIdent
from .residual_design import ResidualDesign
from .residual_logp import _not_nested, logdet_lambda, whiten

__all__ = ["build_marginal", "marginal_supports", "MAX_DENSE_RE"]

#: Above this many random effects in a model with several grouping factors, the dense
#: (Σq·levels)² factorisation per gradient costs more than sampling b explicitly.
MAX_DENSE_RE = 400

_FIELDS = ("ZtZ", "ZtX", "Zty", "XtX", "Xty", "yty")


def marginal_supports(design: Design, residual: ResidualDesign | None) -> str | None:
    """Why the marginal model cannot take this residual structure, or None if it can."""
    if residual is None:
        return None
    if residual.fitted_covariate:
        return ("a variance function of the fitted values depends on the random effects; "
                "use parameterization='conditional'")
    if len(design.terms) > 1:
        return "residual structures with several grouping factors need the conditional model"
    if residual.correlation is not None and _not_nested(residual, design):
        return "the correlation groups are not nested within the random-effect levels"
    return None


def _whitened_stats(design: Design, rd: ResidualDesign, params) -> MarginalStats:
    """Cross-products of the whitened [y X Z] as PyTensor expressions: O(n) per
    evaluation, since whitening depends on the residual parameters."""
    p = design.X.shape[1]
    cols = [design.y[:, None], design.X] + [t.Z for t in design.terms]
    W = whiten(rd, np.column_stack(cols), params)
    y, X = W[:, 0], W[:, 1:1 + p]
    q, m = (), ()
    ZtZ = ZtX = Zty = np.zeros(0)
    if design.terms:
        t = design.terms[0]
        Z, codes = W[:, 1 + p:], t.codes
        q, m = (t.q,), (t.n_levels,)
        ZtZ = pt.inc_subtensor(pt.zeros((t.n_levels, t.q, t.q))[codes],
                               Z[:, :, None] * Z[:, None, :])
        ZtX = pt.inc_subtensor(pt.zeros((t.n_levels, t.q, p))[codes],
                               Z[:, :, None] * X[:, None, :])
        Zty = pt.inc_subtensor(pt.zeros((t.n_levels, t.q))[codes], Z * y[:, None])
    return MarginalStats(design.nobs, q, m, ZtZ, ZtX, Zty, pt.dot(X.T, X), pt.dot(X.T, y),
                         pt.sum(y**2))


def build_marginal(design: Design, priors: ResolvedPriors,
                   residual: ResidualDesign | None = None,
                   stats: MarginalStats | None = None) -> pm.Model:
    """Build the marginal PyMC model (random effects integrated out).

    With a residual structure the data are whitened by Λ^{-1/2} inside the model
    (``log N(y | Xβ, ZΨZᵀ + σ²Λ) = log N(L⁻¹y | L⁻¹Xβ, L⁻¹ZΨZᵀL⁻ᵀ + σ²I) − ½ log|Λ|``),
    which costs O(n) per gradient.

    ``stats`` passes cross-products already computed for ``design``.

    Returns
    -------
    pymc.Model
        Free variables: ``beta``, ``sigma``, the covariance and residual parameters;
        the log-likelihood is a ``pm.Potential`` named ``marginal_loglik``.
    """
    why = marginal_supports(design, residual)
    if why:
        raise BayesLMMError(f"The marginal model is not available here: {why}.")
    if residual is not None:
        return _build_whitened(design, priors, residual)
    stats = stats if stats is not None else MarginalStats.from_design(design)
    coords = coords_of(design)
    coords.pop("obs")
    with pm.Model(coords=coords) as model:
        shared = {f: pm.Data(f"stat_{f}", getattr(stats, f)) for f in _FIELDS}
        shared["n"] = pm.Data("stat_n", float(stats.n))
        priors = priors_as_data(priors)
        beta = priors.beta.rv("beta", dims="fixef")
        chols = [_term_scale(t, priors)[0] for t in design.terms]
        sigma = priors.sigma.rv("sigma")
        pm.Potential("marginal_loglik",
                     marginal_logp(replace(stats, **shared), beta, sigma, chols))
    return model


def _build_whitened(design: Design, priors: ResolvedPriors, rd: ResidualDesign) -> pm.Model:
    coords = coords_of(design)
    coords.pop("obs")
    if isinstance(rd.variance, VarIdent):
        coords["varident_level"] = list(rd.by_levels[1:])
    with pm.Model(coords=coords) as model:
        beta = priors.beta.rv("beta", dims="fixef")
        chols = [_term_scale(t, priors)[0] for t in design.terms]
        params = _residual_params(rd, priors)
        sigma = _residual_sigma(design, rd, priors, params)
        stats = _whitened_stats(design, rd, params)
        pm.Potential("marginal_loglik", marginal_logp(stats, beta, sigma, chols)
                     - 0.5 * logdet_lambda(rd, params))
    return model
