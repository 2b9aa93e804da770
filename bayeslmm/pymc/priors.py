"""Prior distributions: data-scaled defaults and user overrides.

Defaults are weakly informative and scaled to the data, in the spirit of rstanarm's
autoscaling. With ``s_y`` the sd of the response and ``s_x`` the sd of a predictor
column (1 for constant or two-valued columns, which are not rescaled, as in rstanarm):

==========================  ===================================================
``beta[x]``                 ``Normal(0, 2.5 s_y / s_x)``
``beta[Intercept]``         ``Normal(mean(y), s_0)`` with
                            ``s_0² = (2.5 s_y)² + Σ_x (2.5 s_y / s_x · mean(x))²``,
                            the prior implied on the raw-scale intercept by a
                            ``Normal(mean(y), 2.5 s_y)`` prior on the intercept of
                            centred predictors
``sd_<group>[z]``           ``HalfNormal(2.5 s_y / s_z)`` (z a column of the term)
``corr_<group>``            ``LKJ(eta=2)`` through ``pm.LKJCholeskyCov``: mildly
                            favours small correlations
``sigma``                   ``Exponential(1 / s_y)``
``Phi`` (AR1; CAR1)         ``Uniform(-1, 1)``; ``Uniform(0, 1)``: flat, as nlme's
                            range
``Rho`` (CompSymm)          ``Uniform(-1/(m - 1), 1)``, m the largest group: flat
                            over the values where Λ is positive definite
``power`` (VarPower)        ``Normal(0, c)``, ``c = 1 / s_v`` clipped to [1, 2],
                            s_v the sd of ``log|v|`` (of ``log|y|`` for
                            ``"fitted"``): powers beyond ±4 are implausible
``expon`` (VarExp)          ``Normal(0, 1 / s_v)``, s_v the sd of v (of y for
                            ``"fitted"``), the same reading
``varident_ratio``          ``LogNormal(0, 1)`` per non-reference level: the
                            log sd ratio ~ Normal(0, 1)
``cor_symm`` (CorSymm)      LKJ(η = ``eta_cor_symm`` = 1): flat over correlation
                            matrices
``arma_pacf`` (CorARMA)     ``Uniform(-1, 1)`` per partial autocorrelation
``range``, ``nugget``       ``LogNormal(log d̃, 1)`` (d̃ the median distance
                            within groups); ``Uniform(0, 1)``
``const`` (VarConstPower)   ``LogNormal(0, 2)``; VarComb's parts as above, named
                            ``A.power``, ``B.varident_ratio`` …
==========================  ===================================================

The last rows are :mod:`bayeslmm.pymc.structure_priors`' (which says more).

σ is nlme's: the residual sd where the variance function is 1. With VarPower or
VarExp the ``sigma`` prior applies instead to ``sigma_ref``, the residual sd at a
typical covariate value (see :mod:`bayeslmm.pymc.conditional`).

Override any of them with ``priors={name: Prior(...)}``, where name is ``"beta"``
(every coefficient), ``"beta[Days]"``, ``"sigma"``, ``"sd_Subject"``,
``"sd_Subject[Days]"``, ``"eta_Subject"`` (a number) or a residual parameter
(``"Phi"``, ``"Rho"``, ``"power"``, ``"expon"``, ``"varident_ratio"``; priors of
``Phi`` and ``Rho`` must stay inside their ranges: a ``Uniform``, ``TruncatedNormal``
with bounds there, or a ``Beta``). All coefficients of ``beta``
share one family; so do all sds of one grouping factor.

Examples
--------
>>> p = Prior("HalfNormal", sigma=10)
>>> p
Prior('HalfNormal', sigma=10)
>>> p.dist(shape=2).owner is not None
True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pymc as pm

from ..errors import BayesLMMError, suggest
from ..formula.design import Design
from ..residual.bind import ResidualDesign
from ..residual.structures import AR1, CAR1, CompSymm
from .prior import POSITIVE_FAMILIES, Prior
from .structure_priors import check_structure_prior, structure_names, structure_priors

__all__ = ["Prior", "default_priors", "default_residual_priors", "resolve_priors",
           "ResolvedPriors", "priors_as_data", "prior_as_data", "POSITIVE_FAMILIES"]

def _scale(col) -> float:
    """rstanarm's rule: two-valued (or constant) columns are not rescaled (``col``: the
    column's :class:`~bayeslmm.linalg.moments.Moments`)."""
    return 1.0 if col.two_valued else col.sd()


@dataclass(frozen=True)
class ResolvedPriors:
    """Priors of every parameter of a design, after defaults and overrides."""

    beta: Prior
    sigma: Prior
    sd: dict[str, Prior]
    eta: dict[str, float]
    #: residual-structure parameters by their PyMC names (``Phi``, ``Rho`` ...)
    residual: dict[str, Prior] = field(default_factory=dict)

    def describe(self) -> dict[str, str]:
        """Human-readable table: parameter → prior."""
        out = {"beta": repr(self.beta), "sigma": repr(self.sigma)}
        out.update({f"sd_{g}": repr(p) for g, p in self.sd.items()})
        out.update({f"eta_{g}": repr(e) for g, e in self.eta.items()})
        out.update({k: repr(p) for k, p in self.residual.items()})
        return out


def prior_as_data(prior: Prior, label: str) -> Prior:
    """``prior`` with its real-valued parameters as ``pm.Data`` named
    ``prior_<label>_<param>`` (inside a model context).

    Examples
    --------
    >>> with pm.Model() as model:
    ...     p = prior_as_data(Prior("HalfNormal", sigma=2.0), "sigma")
    >>> [v.name for v in model.data_vars]
    ['prior_sigma_sigma']
    """
    params = {k: (pm.Data(f"prior_{label}_{k}", np.asarray(v, dtype="float64"))
                  if np.issubdtype(np.asarray(v).dtype, np.floating) else v)
              for k, v in prior.params.items()}
    return Prior(prior.name, **params)


def priors_as_data(priors: ResolvedPriors) -> ResolvedPriors:
    """The same priors with their data-scaled numbers as ``pm.Data`` containers.

    A model built from them has a graph that depends on the data only through its
    data containers, so one compiled model (and PyTensor's on-disk cache of its
    machine code) serves every dataset of the same structure. Call it inside the
    model context.
    """
    return replace(priors, beta=prior_as_data(priors.beta, "beta"),
                   sigma=prior_as_data(priors.sigma, "sigma"),
                   sd={g: prior_as_data(p, f"sd_{g}") for g, p in priors.sd.items()})


def _bounds(rd: ResidualDesign) -> tuple[float, float]:
    """Range of the correlation parameter."""
    c = rd.correlation
    if isinstance(c, AR1):
        return -1.0, 1.0
    if isinstance(c, CAR1):
        return 0.0, 1.0
    assert isinstance(c, CompSymm)
    return -1.0 / (rd.max_group_size - 1), 1.0


def default_residual_priors(design: Design, rd: ResidualDesign) -> dict[str, Prior]:
    """Defaults for the residual parameters (see module doc)."""
    out = structure_priors(design, rd)
    for name in rd.param_names:
        if name in out or f"eta_{name}" in out:  # CorSymm's LKJ: eta_cor_symm
            continue
        if name in ("Phi", "Rho"):
            lo, hi = _bounds(rd)
            out[name] = Prior("Uniform", lower=lo, upper=hi)
        elif name == "varident_ratio":
            out[name] = Prior("LogNormal", mu=0.0, sigma=1.0)
        else:
            v = rd.covariate if rd.covariate is not None else design.y
            if name == "power":
                v = np.log(np.abs(v[v != 0]))
            s = float(np.std(v, ddof=1)) if len(v) > 1 else 0.0
            scale = float(np.clip(1 / s, 1, 2)) if name == "power" and s > 0 else 1 / s
            out[name] = Prior("Normal", mu=0.0, sigma=scale if s > 0 else 1.0)
    return out


def _check_residual_prior(key: str, prior: Prior, rd: ResidualDesign) -> None:
    if key in structure_names(rd):
        check_structure_prior(key, prior, rd)
        return
    if key == "varident_ratio" and prior.name not in POSITIVE_FAMILIES:
        raise BayesLMMError(f"Prior for {key!r} must be on positive values (e.g. "
                            f"LogNormal), got {prior.name}.")
    if key not in ("Phi", "Rho"):
        return
    lo, hi = _bounds(rd)
    p = prior.params
    inside = (prior.name == "Beta" and lo <= 0) or (
        prior.name in ("Uniform", "TruncatedNormal")
        and float(p.get("lower", -np.inf)) >= lo and float(p.get("upper", np.inf)) <= hi)
    if not inside:
        raise BayesLMMError(f"Prior for {key!r} must keep it within ({lo:.4g}, {hi:.4g}): "
                            f"use Uniform or TruncatedNormal with lower/upper there, or Beta; "
                            f"got {prior!r}.")


def default_priors(design: Design) -> dict[str, Prior | float]:
    """Data-scaled default priors, per coefficient, as a flat dict (see module doc)."""
    mom = design.moments()  # from the rows, or added up over chunks (out of core)
    sy = mom["y"].sd() if mom["y"].n > 1 else 1.0
    sy = sy if sy > 0 else 1.0
    out: dict[str, Prior | float] = {}
    slopes = {}
    for j, name in enumerate(design.fixef_names):
        if name != "Intercept":
            s = 2.5 * sy / _scale(mom["X"][j])
            slopes[name] = (s, mom["X"][j].mean)
            out[f"beta[{name}]"] = Prior("Normal", mu=0.0, sigma=s)
    if "Intercept" in design.fixef_names:
        var = (2.5 * sy) ** 2 + sum((s * m) ** 2 for s, m in slopes.values())
        out["beta[Intercept]"] = Prior("Normal", mu=mom["y"].mean, sigma=float(np.sqrt(var)))
    out["sigma"] = Prior("Exponential", lam=1.0 / sy)
    for t in design.terms:
        for k, z in enumerate(t.term_names):
            out[f"sd_{t.group}[{z}]"] = Prior("HalfNormal",
                                              sigma=2.5 * sy / _scale(mom["Z"][t.group][k]))
        out[f"eta_{t.group}"] = 2.0
    return out


def _element(prior: Prior, k: int, n: int, label: str) -> Prior:
    """The prior of element ``k`` of an ``n``-vector prior (array parameters indexed)."""
    params = {}
    for key, v in prior.params.items():
        if np.ndim(v) == 0:
            params[key] = v
        elif np.shape(v) == (n,):
            params[key] = np.asarray(v, dtype=float)[k]
        else:
            raise BayesLMMError(f"Parameter {key!r} of the prior {label!r} has shape "
                                f"{np.shape(v)}; give a scalar or one value per element ({n}).")
    return Prior(prior.name, **params)


def _merge_vector(label: str, names: list[str], per: dict[str, Prior]) -> Prior:
    """Stack per-coefficient priors of one family into one vector prior."""
    families = {per[n].name for n in names}
    if len(families) > 1:
        raise BayesLMMError(
            f"All priors of {label!r} must share one distribution family, got "
            f"{sorted(families)}; set {label!r} itself to change the family."
        )
    keys = list(dict.fromkeys(k for n in names for k in per[n].params))  # stable order
    params = {}
    for k in keys:
        vals = []
        for n in names:
            if k not in per[n].params:
                raise BayesLMMError(f"Prior of {label}[{n}] lacks parameter {k!r}.")
            vals.append(np.asarray(per[n].params[k], dtype=float))
        params[k] = np.array(vals) if len(names) > 1 else vals[0].reshape(1)
    return Prior(families.pop(), **params)


def resolve_priors(design: Design, priors: Mapping[str, Any] | None = None,
                   residual: ResidualDesign | None = None) -> ResolvedPriors:
    """Apply user overrides to the defaults.

    Parameters
    ----------
    design : Design
    priors : mapping, optional
        ``{"beta": Prior, "beta[name]": Prior, "sigma": Prior, "sd_<group>": Prior,
        "sd_<group>[term]": Prior, "eta_<group>": float}`` and the residual
        parameters by name.
    residual : ResidualDesign, optional
        The residual structure, whose parameters then get priors.

    Returns
    -------
    ResolvedPriors
    """
    flat = default_priors(design)
    priors = dict(priors or {})
    groups = [t.group for t in design.terms]
    res = default_residual_priors(design, residual) if residual is not None else {}
    valid = ["beta", "sigma"] + list(flat) + [f"sd_{g}" for g in groups] + list(res)
    for key, val in priors.items():
        if key not in valid:
            raise BayesLMMError(f"Unknown prior {key!r}.{suggest(key, valid)} Valid names: "
                                f"{valid}.")
        if key.startswith("eta_"):
            if not np.isscalar(val) or not float(val) > 0:
                raise BayesLMMError(f"{key} must be a positive number (LKJ eta), got {val!r}.")
            continue
        if not isinstance(val, Prior):
            raise BayesLMMError(f"Prior for {key!r} must be a bayeslmm.Prior, got {val!r}.")
        if (key == "sigma" or key.startswith("sd_")) and val.name not in POSITIVE_FAMILIES:
            raise BayesLMMError(f"Prior for {key!r} must be on positive values "
                                f"(e.g. HalfNormal), got {val.name}.")
        if key in res:
            _check_residual_prior(key, val, residual)
    res.update({k: priors[k] for k in res if k in priors})
    # whole-vector overrides first, then per-coefficient ones on top
    names = design.fixef_names
    per_beta = {n: (_element(priors["beta"], k, len(names), "beta") if "beta" in priors
                    else flat[f"beta[{n}]"]) for k, n in enumerate(names)}
    per_beta.update({n: priors[f"beta[{n}]"] for n in design.fixef_names
                     if f"beta[{n}]" in priors})
    sd, eta = {}, {}
    for t in design.terms:
        key = f"sd_{t.group}"
        per = {z: (_element(priors[key], k, t.q, key) if key in priors
                   else flat[f"{key}[{z}]"]) for k, z in enumerate(t.term_names)}
        per.update({z: priors[f"sd_{t.group}[{z}]"] for z in t.term_names
                    if f"sd_{t.group}[{z}]" in priors})
        sd[t.group] = _merge_vector(f"sd_{t.group}", t.term_names, per)
        eta[t.group] = float(priors.get(f"eta_{t.group}", flat[f"eta_{t.group}"]))
    beta = (_merge_vector("beta", design.fixef_names, per_beta) if design.fixef_names
            else Prior("Normal", mu=0.0, sigma=1.0))
    return ResolvedPriors(beta=beta, sigma=priors.get("sigma", flat["sigma"]), sd=sd, eta=eta,
                          residual=res)
