"""The priors evaluated on draws: the log prior density of each posterior draw (the
``log_prior`` group, for power-scaling sensitivity) and draws from the priors (the
``prior`` group, for prior-versus-posterior plots).

Both cover the model's parameters as the user states their priors: ``beta``, each
``sd_<group>``, each ``corr_<group>`` (LKJ(η) on the correlation matrix:
``(η − 1) log det Ω``, up to a constant, which power-scaling does not see), ``sigma``
(``sigma_ref`` where VarPower/VarExp sample it) and the residual parameters. The
log-densities come from PyMC's own ``logp`` of each prior, so any PyMC family works.

Examples
--------
>>> import bayeslmm as blm
>>> m = blm.LMM("Yield ~ 1 + (1 | Batch)", blm.datasets.load("Dyestuff"))
>>> prior = prior_draws(m.design, m._priors, None, draws=200, random_seed=1)
>>> sorted(prior.data_vars), prior["sd_Batch"].shape
(['beta', 'sd_Batch', 'sigma'], (1, 200, 1))
"""

from __future__ import annotations

import arviz as az
import numpy as np
import pymc as pm
import xarray as xr

from .priors import Prior, ResolvedPriors
from .structure_priors import structure_log_prior, structure_prior_draws

__all__ = ["log_prior", "prior_draws", "with_prior_groups"]

_CD = ("chain", "draw")


def _logp(prior: Prior, values: np.ndarray, vector: bool) -> np.ndarray:
    """Log density of each draw (summed over a vector parameter's elements)."""
    lp = pm.logp(prior.dist(shape=values.shape), values).eval()
    return lp.sum(axis=-1) if vector else lp


def _lkj_logp(corr: np.ndarray, blocks, eta: float) -> np.ndarray:
    out = np.zeros(corr.shape[:-2])
    for b in blocks:
        if len(b) > 1:
            out += (eta - 1.0) * np.linalg.slogdet(corr[..., list(b)][..., list(b), :])[1]
    return out


def log_prior(design, priors: ResolvedPriors, residual, post: xr.Dataset) -> xr.Dataset:
    """Per-draw log prior density of each parameter (one variable each, dims chain, draw).

    Examples
    --------
    >>> m = blm.LMM("Reaction ~ Days + (Days | Subject)", blm.datasets.load("sleepstudy"))
    >>> draws = prior_draws(m.design, m._priors, None, draws=5, random_seed=1)
    >>> lp = log_prior(m.design, m._priors, None, draws)
    >>> sorted(lp.data_vars), lp["sd_Subject"].shape
    (['beta', 'corr_Subject', 'sd_Subject', 'sigma'], (1, 5))
    """
    out = {"beta": _logp(priors.beta, post["beta"].values, True)}
    for t in design.terms:
        g = t.group
        out[f"sd_{g}"] = _logp(priors.sd[g], post[f"sd_{g}"].values, True)
        if f"corr_{g}" in post and any(len(b) > 1 for b in t.blocks):
            out[f"corr_{g}"] = _lkj_logp(post[f"corr_{g}"].values, t.blocks, priors.eta[g])
    name = "sigma_ref" if "sigma_ref" in post else "sigma"
    out[name] = _logp(priors.sigma, post[name].values, False)
    for k, p in priors.residual.items():
        vals = post[k].values
        lp = structure_log_prior(k, p, vals, residual)
        out[k] = lp if lp is not None else _logp(p, vals, vals.ndim > 2)
    coords = {"chain": post.chain, "draw": post.draw}
    return xr.Dataset({k: (_CD, v) for k, v in out.items()}, coords=coords)


def _draw(prior: Prior, shape: tuple, rng) -> np.ndarray:
    return np.asarray(pm.draw(prior.dist(shape=shape), random_seed=rng))


def prior_draws(design, priors: ResolvedPriors, residual, *, draws: int = 1000,
                random_seed=None) -> xr.Dataset:
    """Draws from the priors of the parameters, dims ``(chain=1, draw, ...)``, named and
    laid out as the posterior's."""
    rng = np.random.default_rng(random_seed)
    p = len(design.fixef_names)
    data = {"beta": (_CD + ("fixef",), _draw(priors.beta, (1, draws, p), rng))}
    coords = {"chain": [0], "draw": np.arange(draws), "fixef": list(design.fixef_names)}
    for t in design.terms:
        g, q = t.group, t.q
        coords[f"{g}_term"] = coords[f"{g}_term_bis"] = list(t.term_names)
        data[f"sd_{g}"] = (_CD + (f"{g}_term",), _draw(priors.sd[g], (1, draws, q), rng))
        if any(len(b) > 1 for b in t.blocks):
            corr = np.broadcast_to(np.eye(q), (1, draws, q, q)).copy()
            for b in t.blocks:
                if len(b) > 1:
                    lkj = pm.LKJCorr.dist(n=len(b), eta=priors.eta[g], return_matrix=True)
                    corr[0][:, np.array(b)[:, None], np.array(b)] = pm.draw(
                        lkj, draws=draws, random_seed=rng)
            data[f"corr_{g}"] = (_CD + (f"{g}_term", f"{g}_term_bis"), corr)
    data["sigma"] = (_CD, _draw(priors.sigma, (1, draws), rng))
    for k, pr in priors.residual.items():
        vector = structure_prior_draws(k, pr, residual, draws, rng)
        if vector is not None:  # CorSymm, CorARMA, VarComb's VarIdent parts
            dims, values, extra = vector
            coords.update(extra)
            data[k] = (_CD + dims, values)
        elif k == "varident_ratio":
            levels = list(residual.by_levels[1:])
            coords["varident_level"] = levels
            data[k] = (_CD + ("varident_level",), _draw(pr, (1, draws, len(levels)), rng))
        else:
            data[k] = (_CD, _draw(pr, (1, draws), rng))
    return xr.Dataset(data, coords=coords)


def with_prior_groups(idata: az.InferenceData, design, priors: ResolvedPriors, residual,
                      *, draws: int = 1000, random_seed=None) -> az.InferenceData:
    """``idata`` with the ``log_prior`` and ``prior`` groups added (a new InferenceData).

    Examples
    --------
    >>> m = blm.LMM("Yield ~ 1 + (1 | Batch)", blm.datasets.load("Dyestuff"))
    >>> fake = prior_draws(m.design, m._priors, None, draws=20, random_seed=2)
    >>> idata = with_prior_groups(az.InferenceData(posterior=fake), m.design, m._priors,
    ...                           None, draws=50, random_seed=1)
    >>> idata.log_prior["sd_Batch"].shape, idata.prior["sigma"].shape
    ((1, 20), (1, 50))
    """
    groups = {g: idata[g] for g in idata.groups()}
    groups["log_prior"] = log_prior(design, priors, residual, idata.posterior)
    groups["prior"] = prior_draws(design, priors, residual, draws=draws,
                                  random_seed=random_seed)
    return az.InferenceData(**groups)
