"""Design → PyMC model with explicit, non-centred random effects (the conditional model).

Variables (names are part of the public contract):

- ``beta`` (dims ``fixef``): fixed effects;
- ``sigma``: residual sd;
- per grouping factor ``g``: ``sd_g`` (dims ``g_term``), ``corr_g`` (dims
  ``g_term, g_term_bis``) when the term has a correlated block, ``z_g`` the standard
  normal innovations and ``b_g`` (dims ``g, g_term``) the random effects;
  a correlated block of columns draws its Cholesky factor from ``pm.LKJCholeskyCov``
  (stored as ``chol_g`` or ``chol_g_<k>`` when a factor has several blocks);
- ``y`` (dims ``obs``) the observed response;
- with a residual structure (:mod:`bayeslmm.residual.structures`), its parameters under their nlme
  names: ``Phi`` (AR1, CAR1), ``Rho`` (CompSymm), ``power`` (VarPower), ``expon``
  (VarExp), ``varident_ratio`` (VarIdent; dims ``varident_level``, the levels after the
  reference). With a correlation, ``y`` is a ``pm.CustomDist`` whose log-density is
  :func:`~bayeslmm.residual.algebra.residual_logp` (per row: the density of the row given
  the earlier rows of its group, so the terms sum to the joint density) and whose
  draws (predictive checks) come from :func:`~bayeslmm.residual.algebra.unwhiten`;
  a variance function alone keeps ``pm.Normal`` with per-row sds ``σ δ_i``. With
  VarPower/VarExp the free variable is ``sigma_ref`` (the sd at a typical covariate
  value, see :func:`_residual_sigma`) and ``sigma`` (nlme's σ) a deterministic.

Examples
--------
>>> import bayeslmm as blm
>>> from bayeslmm.formula.design import build_design
>>> from bayeslmm.pymc.priors import resolve_priors
>>> d = build_design("Reaction ~ Days + (Days | Subject)", blm.datasets.load("sleepstudy"))
>>> m = build_conditional(d, resolve_priors(d))
>>> sorted(v.name for v in m.free_RVs)
['beta_z', 'chol_Subject_z', 'sigma', 'z_Subject']
>>> m.named_vars_to_dims["b_Subject"]
('Subject', 'Subject_term')
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from ..formula.design import Design
from ..residual.algebra import log_sd_weights, residual_logp, unwhiten
from ..residual.bind import ResidualDesign
from ..residual.structures import VarIdent
from .priors import ResolvedPriors
from .structure_priors import structure_coords
from .terms import coords_of, fixed_effects, residual_params, residual_sigma, term_scale

__all__ = ["build_conditional"]


def _structured_y(design: Design, rd: ResidualDesign, priors: ResolvedPriors, mu):
    """Residual parameters, sigma and the likelihood of y with residuals ``N(0, σ²Λ)``."""
    params = residual_params(rd, priors)
    sigma = residual_sigma(design, rd, priors, params)
    log_sd = None
    if rd.variance is not None:
        log_sd = log_sd_weights(rd, {**params, "fitted": mu})[rd.inverse]
    if rd.correlation is None:
        return pm.Normal("y", mu=mu, sigma=sigma * pt.exp(log_sd), observed=design.y,
                         dims="obs")
    corr = rd.correlation_param_names
    extra = [log_sd] if log_sd is not None else []

    def unpack(rest) -> dict:
        out = dict(zip(corr, rest[len(rest) - len(corr):], strict=True))
        if len(rest) > len(corr):
            out["log_sd"] = rest[0]
        return out

    def logp(value, mu, sigma, *rest):
        return residual_logp(rd, value - mu, sigma, unpack(rest), pointwise=True)

    def random(mu, sigma, *rest, rng=None, size=None):
        shape = tuple(size) if size is not None else np.broadcast(mu, rest[0]).shape
        z = rng.standard_normal(size=shape).reshape(-1, rd.n).T
        x = unwhiten(rd, z, {k: np.asarray(v) for k, v in unpack(rest).items()})
        return mu + sigma * x.T.reshape(shape)

    return pm.CustomDist("y", mu, sigma, *extra, *[params[k] for k in corr], logp=logp,
                         random=random, observed=design.y, dims="obs")


def build_conditional(design: Design, priors: ResolvedPriors,
                      residual: ResidualDesign | None = None) -> pm.Model:
    """Build the conditional PyMC model (random effects sampled explicitly).

    Parameters
    ----------
    design : Design
    priors : ResolvedPriors
    residual : ResidualDesign, optional
        A residual structure bound to the design's rows
        (:func:`bayeslmm.residual.bind.bind`); None for iid residuals.

    Returns
    -------
    pymc.Model
        Inspect it with ``pm.model_to_graphviz(model)``, extend it inside ``with model:``.
    """
    coords = {**coords_of(design), **structure_coords(residual)}
    if residual is not None and isinstance(residual.variance, VarIdent):
        coords["varident_level"] = list(residual.by_levels[1:])
    with pm.Model(coords=coords) as model:
        X = pm.Data("X", design.X, dims=("obs", "fixef"))
        beta = fixed_effects(priors.beta)
        mu = pt.dot(X, beta)
        for t in design.terms:
            g = t.group
            L, _, _ = term_scale(t, priors)
            z = pm.Normal(f"z_{g}", 0.0, 1.0, dims=(g, f"{g}_term"))
            b = pm.Deterministic(f"b_{g}", pt.dot(z, L.T), dims=(g, f"{g}_term"))
            Z = pm.Data(f"Z_{g}", t.Z, dims=("obs", f"{g}_term"))
            codes = pm.Data(f"codes_{g}", t.codes, dims="obs")
            mu = mu + pt.sum(Z * b[codes], axis=1)
        if residual is None:
            sigma = priors.sigma.rv("sigma")
            if design.weights is not None:  # lme4's prior weights: sd σ/√w
                sigma = sigma / pt.sqrt(pm.Data("weights", design.weights, dims="obs"))
            pm.Normal("y", mu=mu, sigma=sigma, observed=design.y, dims="obs")
        else:
            _structured_y(design, residual, priors, mu)
    return model
