"""Priors and PyMC variables of the residual structures of issue 18: the dense
correlations (:mod:`bayeslmm.residual.correlations`) and the variance functions
VarConstPower, VarFixed, VarComb (:mod:`bayeslmm.residual.variances`).

Defaults, on each parameter's natural scale:

==============================  ======================================================
``cor_symm`` (CorSymm)          LKJ(η) with ``eta_cor_symm`` = η = 1 (a number, as
                                ``eta_<group>``): flat over the d × d correlation
                                matrices (dims ``cor_symm_pair``, labels
                                ``cor(1,2)`` …). Sampled as LKJ's canonical partial
                                correlations ``cor_symm_cpc``, independent
                                Beta(b, b) on (−1, 1) (Lewandowski et al. 2009):
                                every value is a positive-definite matrix, and the
                                graph runs on NUTS's JAX and numba backends
``arma_pacf`` (CorARMA)         ``Uniform(-1, 1)`` per partial autocorrelation (dims
                                ``arma_term``: ``ar1`` …, ``ma1`` …): exactly the
                                stationary and invertible ARMA models; ``arma_coef``
                                (``Phi1`` …, ``Theta1`` …) is a deterministic
``range`` (spatial)             ``LogNormal(log d̃, 1)``, d̃ the median distance between
                                rows of a group
``nugget`` (spatial)            ``Uniform(0, 1)``
``const`` (VarConstPower)       ``LogNormal(0, 2)``
``power``, ``expon``            as VarPower's and VarExp's (``Normal(0, c)`` from the
                                spread of the part's covariate)
``A.varident_ratio`` …          ``LogNormal(0, 1)`` per non-reference level (VarComb's
                                VarIdent parts; dims ``A.varident_level``)
==============================  ======================================================

Examples
--------
>>> import bayeslmm as blm
>>> from bayeslmm.formula.design import build_design
>>> from bayeslmm.residual.bind import bind
>>> d = build_design("distance ~ age", blm.datasets.load("Orthodont"))
>>> rd = bind(blm.CorARMA(p=1, q=1, group="Subject"), d)
>>> structure_priors(d, rd)
{'arma_pacf': Prior('Uniform', lower=-1, upper=1)}
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from ..errors import BayesLMMError
from ..formula.design import Design
from ..residual.bind import ResidualDesign
from ..residual.corr_math import cpc_correlations, lkj_cpc_shapes
from ..residual.correlations import CorARMA, CorSymm
from ..residual.dense_corr import arma_coefficients, symm_labels
from ..residual.structures import VarIdent
from .prior import POSITIVE_FAMILIES, Prior

__all__ = ["structure_priors", "check_structure_prior", "structure_coords",
           "structure_variables", "structure_names", "structure_prior_draws",
           "structure_log_prior"]


def structure_names(rd: ResidualDesign) -> list[str]:
    """The parameter names that this module handles (dense correlations' and the new
    variance functions')."""
    names = list(rd.correlation_param_names) if rd.dense is not None else []
    if rd.varfuncs is not None:
        names += [n for b in rd.varfuncs for n in b.names]
    return names


def _power_scale(v: np.ndarray, name: str) -> float:
    """VarPower's and VarExp's prior sd (as :mod:`bayeslmm.pymc.priors` gives them)."""
    if name.endswith("power"):
        v = np.log(np.abs(v[v != 0]))
    s = float(np.std(v, ddof=1)) if len(v) > 1 else 0.0
    if s <= 0:
        return 1.0
    return float(np.clip(1 / s, 1, 2)) if name.endswith("power") else 1 / s


def structure_priors(design: Design, rd: ResidualDesign) -> dict[str, Prior | float]:
    """Default priors of the parameters in :func:`structure_names` (module doc)."""
    out: dict[str, Prior] = {}
    c = rd.correlation
    if isinstance(c, CorSymm):
        out["eta_cor_symm"] = 1.0  # LKJ's η (a number, as eta_<group>)
    elif isinstance(c, CorARMA):
        out["arma_pacf"] = Prior("Uniform", lower=-1.0, upper=1.0)
    elif rd.dense is not None:
        dc = rd.dense
        d = dc.dist[dc.mask[:, :, None] & dc.mask[:, None, :]]
        d = d[d > 0]
        centre = float(np.median(d)) if d.size else 1.0
        out["range"] = Prior("LogNormal", mu=float(np.log(centre)), sigma=1.0)
        if c.nugget:
            out["nugget"] = Prior("Uniform", lower=0.0, upper=1.0)
    for b in rd.varfuncs or ():
        for name in b.names:
            if name.endswith("varident_ratio"):
                out[name] = Prior("LogNormal", mu=0.0, sigma=1.0)
            elif name.endswith("const"):
                out[name] = Prior("LogNormal", mu=0.0, sigma=2.0)
            else:
                v = b.covariate if b.covariate is not None else design.y
                out[name] = Prior("Normal", mu=0.0, sigma=_power_scale(v, name))
    return out


def check_structure_prior(key: str, prior: Prior, rd: ResidualDesign) -> None:
    """Refuse a user's prior that leaves the parameter's domain."""
    p = prior.params
    bounds = {"arma_pacf": (-1.0, 1.0), "nugget": (0.0, 1.0)}.get(key)
    if bounds is not None:
        lo, hi = bounds
        inside = prior.name in ("Uniform", "TruncatedNormal") and \
            float(p.get("lower", -np.inf)) >= lo and float(p.get("upper", np.inf)) <= hi
        if not (inside or (prior.name == "Beta" and lo == 0.0)):
            raise BayesLMMError(f"Prior for {key!r} must keep it within ({lo:g}, {hi:g}): "
                                "use Uniform or TruncatedNormal with lower/upper there"
                                f"{', or Beta' if lo == 0 else ''}; got {prior!r}.")
    positive = key == "range" or key.endswith(("varident_ratio", "const"))
    if positive and prior.name not in POSITIVE_FAMILIES:
        raise BayesLMMError(f"Prior for {key!r} must be on positive values (e.g. LogNormal), "
                            f"got {prior.name}.")


def structure_coords(rd: ResidualDesign | None) -> dict[str, list]:
    """The named dimensions of the structures' PyMC variables."""
    out: dict[str, list] = {}
    if rd is None:
        return out
    c = rd.correlation
    if isinstance(c, CorSymm):
        out["cor_symm_pair"] = symm_labels(rd.dense.dim)
    elif isinstance(c, CorARMA):
        out["arma_term"] = [f"ar{i + 1}" for i in range(c.p)] + \
            [f"ma{j + 1}" for j in range(c.q)]
        out["arma_coef_name"] = list(c.param_labels)
    for b in rd.varfuncs or ():
        if isinstance(b.structure, VarIdent):
            out[f"{b.prefix}varident_level"] = list(b.by_levels[1:])
    return out


def structure_variables(rd: ResidualDesign, priors: dict[str, Prior]) -> dict:
    """The PyMC variables of :func:`structure_names` (inside a model context)."""
    out = {}
    c = rd.correlation
    for name in structure_names(rd):
        prior = priors.get(name)
        if name == "cor_symm":
            d = rd.dense.dim
            shape = lkj_cpc_shapes(d, float(priors["eta_cor_symm"]))
            half = pm.Beta("cor_symm_cpc", alpha=shape, beta=shape, dims="cor_symm_pair")
            out[name] = pm.Deterministic(name, cpc_correlations(pt, 2.0 * half - 1.0, d),
                                         dims="cor_symm_pair")
        elif name == "arma_pacf":
            out[name] = prior.rv(name, dims="arma_term")
            phi, theta = arma_coefficients(c, out[name], pt)
            pm.Deterministic("arma_coef", pt.stack([*phi, *theta]), dims="arma_coef_name")
        elif name.endswith("varident_ratio"):
            out[name] = prior.rv(name, dims=name.replace("varident_ratio", "varident_level"))
        else:
            out[name] = prior.rv(name)
    return out


def _vector_dim(rd: ResidualDesign, name: str) -> str | None:
    if name == "cor_symm":
        return "cor_symm_pair"
    if name == "arma_pacf":
        return "arma_term"
    return name.replace("varident_ratio", "varident_level") if name.endswith(
        "varident_ratio") and name != "varident_ratio" else None


def structure_prior_draws(key: str, prior, rd: ResidualDesign, draws: int,
                          rng) -> tuple[str, tuple, np.ndarray, dict] | None:
    """Draws from the prior ``key`` of a vector parameter of these structures: the
    variable's name, its dims after ``(chain, draw)``, the values ``(1, draws, k)`` and
    its coords; None for a scalar.

    CorSymm's (key ``eta_cor_symm``) come from LKJ's partial correlations, as the model
    samples them.
    """
    name = "cor_symm" if key == "eta_cor_symm" else key
    dim = _vector_dim(rd, name)
    if dim is None:
        return None
    coords = {dim: structure_coords(rd)[dim]}
    k = len(coords[dim])
    if name == "cor_symm":
        shape = lkj_cpc_shapes(rd.dense.dim, float(prior))
        z = 2.0 * rng.beta(shape, shape, size=(draws, k)) - 1.0
        values = np.array([cpc_correlations(np, row, rd.dense.dim) for row in z])
    else:
        values = np.asarray(pm.draw(prior.dist(shape=(draws, k)), random_seed=rng))
    return name, (dim,), values[None], coords


def structure_log_prior(key: str, prior, post, rd: ResidualDesign) -> tuple | None:
    """``("cor_symm", per-draw log prior density)`` for the key ``eta_cor_symm`` (LKJ(η):
    ``(η − 1) log det Ω`` up to a constant, as for ``corr_<group>``); None for the others
    (their PyMC ``logp``)."""
    if key != "eta_cor_symm":
        return None
    values = post["cor_symm"].values
    d = rd.dense.dim
    full = np.broadcast_to(np.eye(d), values.shape[:-1] + (d, d)).copy()
    iu = np.triu_indices(d, 1)
    full[..., iu[0], iu[1]] = values
    full[..., iu[1], iu[0]] = values
    return "cor_symm", (float(prior) - 1.0) * np.linalg.slogdet(full)[1]
