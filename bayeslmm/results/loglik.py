"""Pointwise log-likelihood of posterior draws (for PSIS-LOO and WAIC).

Per observation, conditional on the drawn random effects, for iid residuals and
variance functions; per correlation group (dim ``residual_group``: the group's joint
density) where residuals are correlated within groups, so LOO leaves out one whole
group. The sequential per-row terms of a correlated structure (each row's density
given the earlier rows of its group) add up to each group's joint density.

Examples
--------
``post``: the sleepstudy posterior of the examples of :class:`~bayeslmm.PosteriorResult`.

>>> ll = pointwise_loglik(post._design, None, post.idata.posterior)
>>> ll.dims, bool(np.allclose(ll, post.log_likelihood().log_likelihood["y"]))
(('chain', 'draw', 'obs'), True)
"""

from __future__ import annotations

import arviz as az
import numpy as np
import xarray as xr

from ..residual.algebra import residual_logp
from ..residual.draws_logp import draws_logp
from ..residual.sufficient import sufficient_reason
from .predict import draw_params, posterior_draws, training_rows

__all__ = ["pointwise_loglik", "by_residual_group", "with_log_likelihood"]


def pointwise_loglik(design, residual, post: xr.Dataset) -> xr.DataArray:
    """Per-row log-densities, dims ``(chain, draw, obs)`` (sequential terms for
    correlated residuals)."""
    mu = posterior_draws(design, post, training_rows(design)).values
    if residual is None:  # prior weights: sd σ/√w
        sigma = post["sigma"].values[..., None] / np.sqrt(
            design.weights if design.weights is not None else 1.0)
        ll = (-0.5 * ((design.y - mu) / sigma) ** 2 - np.log(sigma)
              - 0.5 * np.log(2 * np.pi))
    elif sufficient_reason(residual) is None:  # closed forms: all draws at once
        C, D = mu.shape[:2]
        params = {k: post[k].values.reshape(C * D, *post[k].shape[2:])
                  for k in residual.param_names}
        ll = draws_logp(residual, (design.y - mu).reshape(C * D, -1),
                        post["sigma"].values.reshape(-1), params).reshape(mu.shape)
    else:
        ll = np.empty_like(mu)
        for c in range(mu.shape[0]):
            for d in range(mu.shape[1]):
                params = draw_params(residual, post, c, d, mu)
                ll[c, d] = residual_logp(residual, design.y - mu[c, d],
                                         float(post["sigma"].values[c, d]), params,
                                         pointwise=True)
    return xr.DataArray(ll, dims=("chain", "draw", "obs"),
                        coords={"chain": post.chain, "draw": post.draw,
                                "obs": np.arange(design.nobs)})


def by_residual_group(ll: xr.DataArray, residual) -> xr.DataArray:
    """Row terms summed per correlation group (dim ``residual_group``), where residuals
    are correlated within groups; ``ll`` as is otherwise."""
    if residual is None or residual.correlation is None or "obs" not in ll.dims:
        return ll
    codes = residual.group_codes[residual.inverse]
    onehot = np.zeros((len(codes), residual.n_groups))
    onehot[np.arange(len(codes)), codes] = 1.0
    name = "residual_group"
    return xr.DataArray(ll.values @ onehot, dims=("chain", "draw", name),
                        coords={"chain": ll.chain, "draw": ll.draw,
                                name: list(residual.group_levels)})


def with_log_likelihood(idata: az.InferenceData, design, residual) -> az.InferenceData:
    """A new InferenceData: ``idata``'s groups plus ``log_likelihood`` (``y``), computed
    unless ``idata`` has it, and laid out per correlation group where needed.
    ``idata`` itself is not changed."""
    groups = {g: idata[g] for g in idata.groups()}
    if "log_likelihood" in groups:
        ll = groups["log_likelihood"]["y"]
    else:
        ll = pointwise_loglik(design, residual, idata.posterior)
    groups["log_likelihood"] = xr.Dataset({"y": by_residual_group(ll, residual)})
    return az.InferenceData(**groups)
