"""The pieces every PyMC builder shares: coordinates, each grouping factor's scale
(sds, LKJ correlations, Cholesky factor) and the residual parameters with σ.

The conditional (:mod:`bayeslmm.pymc.conditional`) and marginal
(:mod:`bayeslmm.pymc.marginal`) models are built from these, so both have the same
parameters, names and priors, and target the same posterior of the hyper-parameters.

Examples
--------
>>> import pymc as pm, bayeslmm as blm
>>> from bayeslmm.formula.design import build_design
>>> from bayeslmm.pymc.priors import resolve_priors
>>> d = build_design("Reaction ~ Days + (Days | Subject)", blm.datasets.load("sleepstudy"))
>>> with pm.Model(coords=coords_of(d)) as model:
...     L, sd, corr = term_scale(d.terms[0], resolve_priors(d))
>>> [v.name for v in model.free_RVs], model.named_vars_to_dims["corr_Subject"]
(['chol_Subject'], ('Subject_term', 'Subject_term_bis'))
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from ..formula.design import Design, ReTerm
from ..residual.bind import ResidualDesign
from ..residual.structures import VarExp, VarPower
from .priors import Prior, ResolvedPriors

__all__ = ["coords_of", "term_scale", "residual_params", "residual_sigma"]


def coords_of(design: Design, obs: bool = True) -> dict[str, list]:
    """Named coordinates shared by every model built from ``design`` (``obs=False``:
    without the rows', which a model of cross-products does not need)."""
    coords: dict[str, list] = {"fixef": list(design.fixef_names)}
    if obs:
        coords["obs"] = list(range(design.nobs))
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


def term_scale(t: ReTerm, priors: ResolvedPriors):
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


def residual_params(rd: ResidualDesign, priors: ResolvedPriors) -> dict:
    """The residual parameters as PyMC variables, named as nlme names them."""
    out = {}
    for name in rd.param_names:
        dims = "varident_level" if name == "varident_ratio" else None
        out[name] = priors.residual[name].rv(name, dims=dims)
    return out


def residual_sigma(design: Design, rd: ResidualDesign, priors: ResolvedPriors, params):
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
