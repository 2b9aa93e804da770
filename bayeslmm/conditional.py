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
- with a residual structure (:mod:`bayeslmm.residual`), its parameters under their nlme
  names: ``Phi`` (AR1, CAR1), ``Rho`` (CompSymm), ``power`` (VarPower), ``expon``
  (VarExp), ``varident_ratio`` (VarIdent; dims ``varident_level``, the levels after the
  reference). With a correlation, ``y`` is a ``pm.CustomDist`` whose log-density is
  :func:`~bayeslmm.residual_logp.residual_logp` (per row: the density of the row given
  the earlier rows of its group, so the terms sum to the joint density) and whose
  draws (predictive checks) come from :func:`~bayeslmm.residual_logp.unwhiten`;
  a variance function alone keeps ``pm.Normal`` with per-row sds ``σ δ_i``. With
  VarPower/VarExp the free variable is ``sigma_ref`` (the sd at a typical covariate
  value, see :func:`_residual_sigma`) and ``sigma`` (nlme's σ) a deterministic.

Examples
--------
>>> import bayeslmm as blm
>>> from bayeslmm.design import build_design
>>> from bayeslmm.priors import resolve_priors
>>> d = build_design("Reaction ~ Days + (Days | Subject)", blm.datasets.load("sleepstudy"))
>>> m = build_conditional(d, resolve_priors(d))
>>> sorted(v.name for v in m.free_RVs)
['beta', 'chol_Subject', 'sigma', 'z_Subject']
>>> m.named_vars_to_dims["b_Subject"]
('Subject', 'Subject_term')
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from .design import Design, ReTerm
from .priors import Prior, ResolvedPriors
from .residual import VarExp, VarIdent, VarPower
from .residual_design import ResidualDesign
from .residual_logp import log_sd_weights, residual_logp, unwhiten

__all__ = ["build_conditional", "coords_of"]


def coords_of(design: Design) -> dict[str, list]:
    """Named coordinates shared by every model built from ``design``."""
    coords: dict[str, list] = {"fixef": list(design.fixef_names),
                               "obs": list(range(design.nobs))}
    for t in design.terms:
        coords[t.group] = list(t.levels)
        coords[f"{t.group}_term"] = list(t.term_names)
        coords[f"{t.group}_term_bis"] = list(t.term_names)
    return coords


def _sub(prior: Prior, idx: tuple[int, ...]) -> Prior:
    """The part of a vector prior that belongs to columns ``idx``."""
    def part(v):
        if isinstance(v, pt.TensorVariable):  # a pm.Data parameter
            return v[list(idx)] if v.ndim else v
        return np.asarray(v)[list(idx)] if np.ndim(v) else v

    return Prior(prior.name, **{k: part(v) for k, v in prior.params.items()})


def _term_scale(t: ReTerm, priors: ResolvedPriors):
    """Cholesky-type factor of Ψ for one term: a q×q lower-triangular tensor, plus sds."""
    g, q = t.group, t.q
    if all(len(b) == 1 for b in t.blocks):
        sd = priors.sd[g].rv(f"sd_{g}", dims=f"{g}_term")
        return pt.diag(sd), sd, None
    L = pt.zeros((q, q))
    sds = pt.zeros(q)
    corr = pt.eye(q)
    several = sum(len(b) > 1 for b in t.blocks) > 1
    for k, block in enumerate(t.blocks):
        idx = list(block)
        sub = _sub(priors.sd[g], block)
        if len(block) == 1:
            s = sub.rv(f"sd_{g}_{t.term_names[idx[0]]}", shape=1)
            L = pt.set_subtensor(L[idx[0], idx[0]], s[0])
            sds = pt.set_subtensor(sds[idx[0]], s[0])
            continue
        name = f"chol_{g}_{k}" if several else f"chol_{g}"
        chol, c, s = pm.LKJCholeskyCov(
            name, n=len(block), eta=priors.eta[g], sd_dist=sub.dist(shape=len(block)),
            compute_corr=True, store_in_trace=False,
        )
        L = pt.set_subtensor(L[np.ix_(idx, idx)], chol)
        sds = pt.set_subtensor(sds[idx], s)
        corr = pt.set_subtensor(corr[np.ix_(idx, idx)], c)
    sd = pm.Deterministic(f"sd_{g}", sds, dims=f"{g}_term")
    corr = pm.Deterministic(f"corr_{g}", corr, dims=(f"{g}_term", f"{g}_term_bis"))
    return L, sd, corr


def _residual_params(rd: ResidualDesign, priors: ResolvedPriors) -> dict:
    """The residual parameters as PyMC variables, named as nlme names them."""
    out = {}
    for name in rd.param_names:
        dims = "varident_level" if name == "varident_ratio" else None
        out[name] = priors.residual[name].rv(name, dims=dims)
    return out


def _residual_sigma(design: Design, rd: ResidualDesign, priors: ResolvedPriors, params):
    """``sigma``, nlme's: the sd where the variance function is 1.

    With VarPower/VarExp the sampled variable is ``sigma_ref``, the sd at a typical
    covariate value v_ref (geometric mean of |v|; mean of v), which the data pin down
    and the data-scaled prior fits; ``sigma`` is then a deterministic. Sampling nlme's
    σ directly leaves a long ridge between log σ and the power when |v| is far from 1.
    """
    v = rd.variance
    if not isinstance(v, (VarPower, VarExp)):
        return priors.sigma.rv("sigma")
    cov = rd.covariate if rd.covariate is not None else design.y
    if isinstance(v, VarPower):
        shift = params["power"] * float(np.mean(np.log(np.abs(cov[cov != 0]))))
    else:
        shift = params["expon"] * float(np.mean(cov))
    sigma_ref = priors.sigma.rv("sigma_ref")
    return pm.Deterministic("sigma", sigma_ref * pt.exp(-shift))


def _structured_y(design: Design, rd: ResidualDesign, priors: ResolvedPriors, mu):
    """Residual parameters, sigma and the likelihood of y with residuals ``N(0, σ²Λ)``."""
    params = _residual_params(rd, priors)
    sigma = _residual_sigma(design, rd, priors, params)
    log_sd = None
    if rd.variance is not None:
        log_sd = log_sd_weights(rd, {**params, "fitted": mu})[rd.inverse]
    if rd.correlation is None:
        return pm.Normal("y", mu=mu, sigma=sigma * pt.exp(log_sd), observed=design.y,
                         dims="obs")
    corr = rd.param_names[0]
    extra = [log_sd] if log_sd is not None else []

    def unpack(rest) -> dict:
        out = {corr: rest[-1]}
        if len(rest) == 2:
            out["log_sd"] = rest[0]
        return out

    def logp(value, mu, sigma, *rest):
        return residual_logp(rd, value - mu, sigma, unpack(rest), pointwise=True)

    def random(mu, sigma, *rest, rng=None, size=None):
        shape = tuple(size) if size is not None else np.broadcast(mu, rest[0]).shape
        z = rng.standard_normal(size=shape).reshape(-1, rd.n).T
        x = unwhiten(rd, z, {k: np.asarray(v) for k, v in unpack(rest).items()})
        return mu + sigma * x.T.reshape(shape)

    return pm.CustomDist("y", mu, sigma, *extra, params[corr], logp=logp, random=random,
                         observed=design.y, dims="obs")


def build_conditional(design: Design, priors: ResolvedPriors,
                      residual: ResidualDesign | None = None) -> pm.Model:
    """Build the conditional PyMC model (random effects sampled explicitly).

    Parameters
    ----------
    design : Design
    priors : ResolvedPriors
    residual : ResidualDesign, optional
        A residual structure bound to the design's rows
        (:func:`bayeslmm.residual_design.bind`); None for iid residuals.

    Returns
    -------
    pymc.Model
        Inspect it with ``pm.model_to_graphviz(model)``, extend it inside ``with model:``.
    """
    coords = coords_of(design)
    if residual is not None and isinstance(residual.variance, VarIdent):
        coords["varident_level"] = list(residual.by_levels[1:])
    with pm.Model(coords=coords) as model:
        X = pm.Data("X", design.X, dims=("obs", "fixef"))
        beta = priors.beta.rv("beta", dims="fixef")
        mu = pt.dot(X, beta)
        for t in design.terms:
            g = t.group
            L, _, _ = _term_scale(t, priors)
            z = pm.Normal(f"z_{g}", 0.0, 1.0, dims=(g, f"{g}_term"))
            b = pm.Deterministic(f"b_{g}", pt.dot(z, L.T), dims=(g, f"{g}_term"))
            Z = pm.Data(f"Z_{g}", t.Z, dims=("obs", f"{g}_term"))
            codes = pm.Data(f"codes_{g}", t.codes, dims="obs")
            mu = mu + pt.sum(Z * b[codes], axis=1)
        if residual is None:
            sigma = priors.sigma.rv("sigma")
            pm.Normal("y", mu=mu, sigma=sigma, observed=design.y, dims="obs")
        else:
            _structured_y(design, residual, priors, mu)
    return model
