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
(['chol_Subject_z'], ('Subject_term', 'Subject_term_bis'))
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from ..formula.design import Design, ReTerm
from ..residual.bind import ResidualDesign
from ..residual.structures import VarExp, VarPower
from .priors import Prior, ResolvedPriors
from .sd_corr import SdCorrPacked
from .structure_priors import structure_variables

__all__ = ["coords_of", "fixed_effects", "term_scale", "residual_params", "residual_sigma",
           "STANDARDISED", "unit_scale"]


#: location-scale families whose coefficients are sampled standardised: family → (the
#: location's name and default, the scale's name and default, other parameters)
STANDARDISED = {"Normal": ("mu", 0.0, "sigma", 1.0, ()),
                "StudentT": ("mu", 0.0, "sigma", 1.0, ("nu",)),
                "Cauchy": ("alpha", 0.0, "beta", 1.0, ())}


def fixed_effects(prior: Prior):
    """``beta`` (dims ``fixef``) with its prior, sampled standardised where the prior is
    a location-scale family: ``beta_z`` has the standard family and ``beta = location +
    scale · beta_z`` is a Deterministic. The data-scaled default priors then make the
    sampler's scales those of the data: NUTS behaves the same whatever the units of the
    response and the predictors (with ``y`` in millions or millionths).

    >>> import pymc as pm
    >>> with pm.Model(coords={"fixef": ["a", "b"]}) as model:
    ...     beta = fixed_effects(Prior("Normal", mu=1.0, sigma=[2.0, 3.0]))
    >>> [v.name for v in model.free_RVs], [v.name for v in model.deterministics]
    (['beta_z'], ['beta'])
    """
    spec = STANDARDISED.get(prior.name)
    if spec is None or not set(prior.params) <= {spec[0], spec[2], *spec[4]}:
        return prior.rv("beta", dims="fixef")
    loc_name, loc0, scale_name, scale0, shapes = spec
    standard = Prior(prior.name, **{loc_name: 0.0, scale_name: 1.0,
                                    **{k: prior.params[k] for k in shapes}})
    z = standard.rv("beta_z", dims="fixef")
    return pm.Deterministic("beta", prior.params.get(loc_name, loc0)
                            + prior.params.get(scale_name, scale0) * z, dims="fixef")


#: scale families of standard deviations: family → its scale parameter
SCALES = {"HalfNormal": "sigma", "HalfStudentT": "sigma", "HalfCauchy": "beta",
          "Exponential": "scale"}


def unit_scale(prior: Prior):
    """``(standard prior, scales)`` of a scale-family prior on standard deviations (the
    family with scale 1, and the scales), or None for another family or parameters.

    >>> unit_scale(Prior("HalfNormal", sigma=[2.0, 3.0]))
    (Prior('HalfNormal', sigma=1), array([2., 3.]))
    >>> standard, scale = unit_scale(Prior("Exponential", lam=0.5))
    >>> standard, float(scale)
    (Prior('Exponential', lam=1), 2.0)
    """
    name = SCALES.get(prior.name)
    params = dict(prior.params)
    if name is None:
        return None
    if prior.name == "Exponential":
        if set(params) == {"lam"}:
            lam = params["lam"]
            return Prior("Exponential", lam=1.0), (1.0 / lam if isinstance(
                lam, pt.TensorVariable) else 1.0 / np.asarray(lam, dtype=float))
        if set(params) != {"scale"}:
            return None
        return Prior("Exponential", lam=1.0), _as_array(params["scale"])
    shapes = set(params) - {name}
    if shapes - {"nu"} or (prior.name == "HalfStudentT") != ("nu" in shapes):
        return None
    scale = params.pop(name, 1.0)
    return Prior(prior.name, **params, **{name: 1.0}), _as_array(scale)


def _as_array(v):
    return v if isinstance(v, pt.TensorVariable) else np.asarray(v, dtype=float)


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
        # sampled at unit scale (Ψ = diag(c) L_z L_zᵀ diag(c) with c the sd prior's
        # scales): the packed off-diagonals are otherwise in the response's units, which
        # NUTS's initial step and the unit starting point do not suit
        unit = unit_scale(sub)
        if unit is not None:
            sub, scale = unit
            name += "_z"
        chol, c, s = pm.LKJCholeskyCov(
            name, n=len(block), eta=priors.eta[g], sd_dist=sub.dist(shape=len(block)),
            compute_corr=True, store_in_trace=False,
            # NUTS moves in log sds and atanh partial correlations: no funnel where an
            # sd nears 0 (the same prior and posterior; bayeslmm.pymc.sd_corr)
            default_transform=SdCorrPacked(len(block)),
        )
        if unit is not None:
            scale = pt.broadcast_to(pt.as_tensor(scale, dtype="float64"), (len(block),))
            chol, s = scale[:, None] * chol, scale * s
        L = pt.set_subtensor(L[np.ix_(idx, idx)], chol)
        sds = pt.set_subtensor(sds[idx], s)
        corr = pt.set_subtensor(corr[np.ix_(idx, idx)], c)
    sd = pm.Deterministic(f"sd_{g}", sds, dims=f"{g}_term")
    corr = pm.Deterministic(f"corr_{g}", corr, dims=(f"{g}_term", f"{g}_term_bis"))
    return L, sd, corr


def residual_params(rd: ResidualDesign, priors: ResolvedPriors) -> dict:
    """The residual parameters as PyMC variables, named as nlme names them."""
    out = structure_variables(rd, priors.residual)
    for name in rd.param_names:
        if name in out:
            continue
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
