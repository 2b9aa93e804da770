"""Posterior results made without NUTS, for the tests of what a result does with its
draws (predictions, tables, plots, saving): β, the sds and correlations, σ and the
residual parameters are drawn near the model's ML estimates, and every b is drawn
exactly given them by the marginal model's own completion. What NUTS itself gets right
is tested in the sampling tier (``-m slow``).

>>> import bayeslmm as blm
>>> m = blm.LMM("Reaction ~ Days + (Days | Subject)", blm.datasets.load("sleepstudy"))
>>> post = synthetic_posterior(m, chains=2, draws=50, seed=1)
>>> post.idata.posterior["b_Subject"].shape, post.info["sampler"]
((2, 50, 18, 2), 'none (synthetic draws near the ML estimates)')
"""

from __future__ import annotations

import warnings

import arviz as az
import numpy as np
import xarray as xr

from bayeslmm import KernelPosteriorResult, PosteriorResult
from bayeslmm.pymc.prior_draws import with_prior_groups
from bayeslmm.pymc.structure_priors import structure_coords
from bayeslmm.residual.algebra import to_params
from bayeslmm.results.loglik import with_log_likelihood
from bayeslmm.results.varcorr import cov_to_sd_corr, psi_from_varcorr
from bayeslmm.sampling.complete import complete_marginal

__all__ = ["synthetic_posterior", "synthetic_kernel_posterior"]


def _info(chains, draws, seed) -> dict:
    return {"sampler": "none (synthetic draws near the ML estimates)",
            "parameterization": "marginal", "draws": draws, "tune": 0, "chains": chains,
            "random_seed": seed}


def _around(value, scale, rng, shape):
    """Positive draws log-normally spread around ``value``."""
    value = np.maximum(np.asarray(value, dtype=float), 1e-6)
    return value * np.exp(scale * rng.standard_normal(shape + value.shape))


def _corr_draws(corr, blocks, rng, shape):
    """Correlation matrices spread around ``corr``: its Cholesky factor jittered within
    the correlated blocks, rows renormalised (so each draw is a correlation matrix)."""
    q = len(corr)
    corr = np.clip(corr, -0.95, 0.95)  # a singular fit's ±1 stays inside
    np.fill_diagonal(corr, 1.0)
    mask = np.zeros((q, q), dtype=bool)
    for b in blocks:
        mask[np.ix_(b, b)] = True
    mask &= np.tril(np.ones((q, q), dtype=bool))
    L = np.linalg.cholesky(corr) + 0.05 * rng.standard_normal(shape + (q, q)) * mask
    L /= np.linalg.norm(L, axis=-1, keepdims=True)
    return L @ np.swapaxes(L, -1, -2)


def synthetic_posterior(model, *, chains: int = 2, draws: int = 100,
                        seed: int = 0, b_draws: str = "auto") -> PosteriorResult:
    """A :class:`PosteriorResult` of ``model`` (iid residuals or a structure the marginal
    model takes) with draws near its ML estimates (b: ``b_draws``, as ``LMM.fit``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = model.fit_map("ML")
    rng = np.random.default_rng(seed)
    d, rd, shape = model.design, model.residual, (chains, draws)
    cd = ("chain", "draw")
    coords = {"chain": np.arange(chains), "draw": np.arange(draws),
              "fixef": list(d.fixef_names)}
    beta = rng.multivariate_normal(fit.fixef.to_numpy(), fit.vcov.to_numpy(), size=shape)
    data = {"beta": (cd + ("fixef",), beta)}
    for t in d.terms:
        g = t.group
        sd, corr = cov_to_sd_corr(psi_from_varcorr(fit.varcorr, g, t.term_names))
        coords.update({f"{g}_term": t.term_names, f"{g}_term_bis": t.term_names})
        data[f"sd_{g}"] = (cd + (f"{g}_term",), _around(sd, 0.1, rng, shape))
        if any(len(b) > 1 for b in t.blocks):
            data[f"corr_{g}"] = (cd + (f"{g}_term", f"{g}_term_bis"),
                                 _corr_draws(corr, t.blocks, rng, shape))
    data["sigma"] = (cd, _around(fit.sigma, 0.05, rng, shape))
    at_map = to_params(rd, fit.optimizer["u"]) if rd is not None else {}
    extra_coords = structure_coords(rd)
    for name in (rd.param_names if rd is not None else []):
        if name == "varident_ratio":
            coords["varident_level"] = list(rd.by_levels[1:])
            ratios = [fit.residual_params[lev] for lev in rd.by_levels[1:]]
            data[name] = (cd + ("varident_level",), _around(ratios, 0.05, rng, shape))
        elif name not in fit.residual_params:  # vectors (cor_symm, arma_pacf, A.…): at the MAP
            value = np.asarray(at_map[name], dtype=float)
            dims = tuple(k for k in extra_coords if np.ndim(value) and (
                k == name.replace("varident_ratio", "varident_level")
                or (name, k) in (("cor_symm", "cor_symm_pair"), ("arma_pacf", "arma_term"))))
            coords.update({k: extra_coords[k] for k in dims})
            data[name] = (cd + dims, np.broadcast_to(value, shape + value.shape).copy())
        else:
            value = fit.residual_params[name]
            data[name] = (cd, np.full(shape, value) + 0.01 * rng.standard_normal(shape))
    post = xr.Dataset(data, coords=coords)
    stats = xr.Dataset({"diverging": (cd, np.zeros(shape, dtype=bool))},
                       coords={"chain": post.chain, "draw": post.draw})
    idata = az.InferenceData(posterior=post, sample_stats=stats)
    idata = complete_marginal(idata, d, seed, rd, b_draws=b_draws)
    if d.in_memory:  # out of core there is no pointwise log-likelihood
        idata = with_log_likelihood(idata, d, rd)
    idata = with_prior_groups(idata, d, model._priors, rd, draws=200, random_seed=seed)
    return PosteriorResult(idata, d, model.priors, _info(chains, draws, seed), residual=rd)


def synthetic_kernel_posterior(model, *, chains: int = 2, draws: int = 100,
                               seed: int = 0) -> KernelPosteriorResult:
    """A :class:`KernelPosteriorResult` of a random-matrix or known-covariance model
    with draws near its ML estimates."""
    fit = model.fit_map("ML")
    rng = np.random.default_rng(seed)
    shape, cd, kd = (chains, draws), ("chain", "draw"), model.design
    beta = rng.multivariate_normal(fit.fixef.to_numpy(), fit.vcov.to_numpy(), size=shape)
    sd = _around(fit.sd, 0.1, rng, shape)
    sigma = _around(fit.sigma, 0.05, rng, shape)
    v_g = sd**2 * kd.rotation.scale
    post = xr.Dataset({"beta": (cd + ("fixef",), beta), f"sd_{kd.name}": (cd, sd),
                       "sigma": (cd, sigma), "h2": (cd, v_g / (v_g + sigma**2))},
                      coords={"chain": np.arange(chains), "draw": np.arange(draws),
                              "fixef": model.fixef_names})
    stats = xr.Dataset({"diverging": (cd, np.zeros(shape, dtype=bool))},
                       coords={"chain": post.chain, "draw": post.draw})
    return KernelPosteriorResult(az.InferenceData(posterior=post, sample_stats=stats), kd,
                                 model.priors, _info(chains, draws, seed))
