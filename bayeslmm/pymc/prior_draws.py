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

__all__ = ["log_prior", "prior_draws", "with_prior_groups", "lkj_corr_draws"]

_CD = ("chain", "draw")


def _numpy_logp(name: str, x: np.ndarray, par: dict) -> np.ndarray | None:
    """PyMC's log-density of its common families in NumPy (no graph to compile)."""
    from scipy import special

    def student(nu, mu, s):
        z = (x - mu) / s
        return (special.gammaln(0.5 * (nu + 1)) - special.gammaln(0.5 * nu)
                - 0.5 * np.log(nu * np.pi) - np.log(s) - 0.5 * (nu + 1) * np.log1p(z * z / nu))

    if name == "Normal":
        z = (x - par["mu"]) / par["sigma"]
        return -0.5 * z * z - np.log(par["sigma"]) - 0.5 * np.log(2 * np.pi)
    if name == "HalfNormal":
        z = x / par["sigma"]
        return np.log(2) - 0.5 * np.log(2 * np.pi) - np.log(par["sigma"]) - 0.5 * z * z
    if name == "Exponential":
        return np.log(par["lam"]) - par["lam"] * x
    if name == "StudentT":
        return student(par["nu"], par["mu"], par["sigma"])
    if name == "HalfStudentT":
        return np.log(2) + student(par["nu"], 0.0, par["sigma"])
    if name == "HalfCauchy":
        return np.log(2 / np.pi) - np.log(par["beta"]) - np.log1p((x / par["beta"]) ** 2)
    if name == "Cauchy":
        z = (x - par["alpha"]) / par["beta"]
        return -np.log(np.pi) - np.log(par["beta"]) - np.log1p(z * z)
    if name == "Uniform":  # the correlations' default priors
        lo, hi = par.get("lower", 0.0), par.get("upper", 1.0)
        return np.where((x >= lo) & (x <= hi), -np.log(hi - lo), -np.inf)
    if name == "LogNormal":  # the variance ratios' default priors
        mu, s = par.get("mu", 0.0), par.get("sigma", 1.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = (np.log(x) - mu) / s
            lp = -0.5 * z * z - np.log(s) - 0.5 * np.log(2 * np.pi) - np.log(x)
        return np.where(x > 0, lp, -np.inf)
    return None


def _numpy_draw(name: str, par: dict, shape: tuple, rng) -> np.ndarray | None:
    """Draws of the same families with NumPy's generator."""
    p = {k: np.asarray(v, dtype=float) for k, v in par.items()}
    if name == "Normal":
        return p["mu"] + p["sigma"] * rng.standard_normal(shape)
    if name == "HalfNormal":
        return p["sigma"] * np.abs(rng.standard_normal(shape))
    if name == "Exponential":
        return rng.exponential(size=shape) / p["lam"]
    if name in ("StudentT", "HalfStudentT"):
        t = rng.standard_t(p["nu"], size=shape) * p["sigma"]
        return p["mu"] + t if name == "StudentT" else np.abs(t)
    if name in ("HalfCauchy", "Cauchy"):
        c = rng.standard_cauchy(shape)
        return p["beta"] * np.abs(c) if name == "HalfCauchy" else p["alpha"] + p["beta"] * c
    if name == "Uniform":
        lo, hi = p.get("lower", 0.0), p.get("upper", 1.0)
        return lo + (hi - lo) * rng.random(shape)
    if name == "LogNormal":
        return np.exp(p.get("mu", 0.0) + p.get("sigma", 1.0) * rng.standard_normal(shape))
    return None


def _params(prior: Prior) -> dict:
    return {k: np.asarray(v, dtype=float) for k, v in prior.params.items()}


def _logp(prior: Prior, values: np.ndarray, vector: bool) -> np.ndarray:
    """Log density of each draw (summed over a vector parameter's elements)."""
    lp = _numpy_logp(prior.name, values, _params(prior)) if set(prior.params) <= \
        {"mu", "sigma", "lam", "nu", "beta", "alpha", "lower", "upper"} else None
    if lp is None:  # any other PyMC family: its own logp
        lp = pm.logp(prior.dist(shape=values.shape), values).eval()
    return lp.sum(axis=-1) if vector else lp


def lkj_corr_draws(n: int, eta: float, draws: int, rng) -> np.ndarray:
    """Draws of an n × n correlation matrix from LKJ(η), by the onion method
    (Lewandowski, Kurowicka & Joe 2009).

    >>> r = lkj_corr_draws(3, 2.0, 4000, np.random.default_rng(0))
    >>> r.shape, bool(np.allclose(r[:, [0, 1, 2], [0, 1, 2]], 1.0))
    ((4000, 3, 3), True)
    """
    out = np.empty((draws, n, n))
    for d in range(draws):
        b = eta + (n - 2) / 2
        r12 = 2.0 * rng.beta(b, b) - 1.0
        R = np.array([[1.0, r12], [r12, 1.0]])
        for k in range(2, n):
            b -= 0.5
            y = rng.beta(k / 2, b)
            u = rng.standard_normal(k)
            w = np.sqrt(y) * u / np.linalg.norm(u)
            z = np.linalg.cholesky(R) @ w
            R = np.block([[R, z[:, None]], [z[None, :], np.ones((1, 1))]])
        out[d] = R[:n, :n]
    return out


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
        lkj = structure_log_prior(k, p, post, residual)  # CorSymm's LKJ(η)
        if lkj is not None:
            out[lkj[0]] = lkj[1]
            continue
        vals = post[k].values
        out[k] = _logp(p, vals, vals.ndim > 2)
    coords = {"chain": post.chain, "draw": post.draw}
    return xr.Dataset({k: (_CD, v) for k, v in out.items()}, coords=coords)


def _draw(prior: Prior, shape: tuple, rng) -> np.ndarray:
    out = _numpy_draw(prior.name, prior.params, shape, rng)
    if out is None:
        out = pm.draw(prior.dist(shape=shape), random_seed=rng)
    return np.asarray(out)


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
                    corr[0][:, np.array(b)[:, None], np.array(b)] = lkj_corr_draws(
                        len(b), priors.eta[g], draws, rng)
            data[f"corr_{g}"] = (_CD + (f"{g}_term", f"{g}_term_bis"), corr)
    data["sigma"] = (_CD, _draw(priors.sigma, (1, draws), rng))
    for k, pr in priors.residual.items():
        vector = structure_prior_draws(k, pr, residual, draws, rng)
        if vector is not None:  # CorSymm, CorARMA, VarComb's VarIdent parts
            name, dims, values, extra = vector
            coords.update(extra)
            data[name] = (_CD + dims, values)
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
