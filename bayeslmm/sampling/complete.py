"""After NUTS: the InferenceData a posterior result holds.

The marginal model's draws get every ``b_<group>`` drawn exactly from its Gaussian
conditional (:mod:`bayeslmm.sampling.ranef_draws`) and ``observed_data``, so they have
the same groups, variables and coords as the conditional model's; then the pointwise
log-likelihood (when small enough, or asked for) and the priors on the draws
(``log_prior`` and ``prior``, for sensitivity and prior-vs-posterior plots).

Examples
--------
``post``: the sleepstudy posterior of the examples of :class:`~bayeslmm.PosteriorResult`.

>>> sorted(post.idata.groups())  # doctest: +NORMALIZE_WHITESPACE
['log_likelihood', 'log_prior', 'observed_data', 'posterior', 'prior', 'sample_stats']
"""

from __future__ import annotations

import arviz as az
import numpy as np
import xarray as xr

from ..formula.weights import weighted
from ..linalg.crossprod import CrossProducts
from ..pymc.prior_draws import with_prior_groups
from ..results.loglik import with_log_likelihood
from .nuts import LOGLIK_AUTO_LIMIT

__all__ = ["complete_marginal", "complete"]


def complete_marginal(idata: az.InferenceData, design, random_seed=None,
                      residual=None, cross_products=None) -> az.InferenceData:
    """Draw every ``b_<group>`` for each draw of the marginal model's hyper-parameters
    and add ``observed_data`` (for rows in memory)."""
    from .ranef_draws import draw_random_effects  # numba: imported when first needed

    post = idata.posterior
    if design.terms:
        cp = cross_products
        if cp is None and residual is None:  # prior weights: rows scaled by √w
            cp = CrossProducts.from_design(weighted(design))
        seed = np.random.SeedSequence(random_seed).spawn(1)[0]
        draws = draw_random_effects(design, cp, post, seed, residual=residual)
        for name, da in draws.items():
            post[name] = da
    if design.in_memory:  # out of core, the rows stay where they are
        obs = xr.Dataset({"y": xr.DataArray(design.y, dims="obs",
                                             coords={"obs": np.arange(design.nobs)})})
        idata.add_groups(observed_data=obs)
    return idata


def complete(idata: az.InferenceData, design, priors, residual, *, marginal: bool,
             cross_products=None, random_seed=None,
             log_likelihood: bool | None = None) -> az.InferenceData:
    """What a fit adds to NUTS's draws (see the module doc); ``log_likelihood=None``
    stores it below :data:`LOGLIK_AUTO_LIMIT` values."""
    # sampled standardised (β, unit-scale Cholesky factors): the draws are β's, sd's, corr's
    internal = [v for v in idata.posterior.data_vars
                if v == "beta_z" or (v.startswith("chol_") and v.endswith("_z"))]
    idata.posterior = idata.posterior.drop_vars(internal)
    if marginal:
        idata = complete_marginal(idata, design, random_seed, residual, cross_products)
    size = idata.posterior.sizes["chain"] * idata.posterior.sizes["draw"] * design.nobs
    want = log_likelihood or (log_likelihood is None and size <= LOGLIK_AUTO_LIMIT)
    # (already there: grouped per correlation group); out of core there are no rows
    if (want or "log_likelihood" in idata.groups()) and design.in_memory:
        idata = with_log_likelihood(idata, design, residual)
    return with_prior_groups(idata, design, priors, residual, random_seed=random_seed)
