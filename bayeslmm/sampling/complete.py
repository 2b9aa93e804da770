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
from ..pymc.fixed_sigma import with_fixed_sigma
from ..pymc.prior_draws import with_prior_groups
from ..results.loglik import with_log_likelihood
from .nuts import LOGLIK_AUTO_LIMIT

__all__ = ["complete_marginal", "complete"]


def complete_marginal(idata: az.InferenceData, design, random_seed=None,
                      residual=None, cross_products=None,
                      b_draws: str = "auto") -> az.InferenceData:
    """Draw every ``b_<group>`` for each draw of the marginal model's hyper-parameters
    (in memory, or lazily: ``b_draws``, see :mod:`bayeslmm.sampling.lazy_ranef`) and add
    ``observed_data`` (for rows in memory)."""
    from .lazy_ranef import lazy_random_effects, lazy_wanted
    from .ranef_draws import RanefBlocks, draw_random_effects  # numba: when first needed

    post = idata.posterior
    if design.terms:
        cp = cross_products
        if cp is None and residual is None:  # prior weights: rows scaled by √w
            cp = CrossProducts.from_design(weighted(design))
        seed = np.random.SeedSequence(random_seed).spawn(1)[0]
        size = post.sizes["chain"] * post.sizes["draw"] * sum(t.n_levels * t.q
                                                               for t in design.terms)
        if lazy_wanted(b_draws, size):
            draws = lazy_random_effects(RanefBlocks(design, cp, post, seed,
                                                    residual=residual), post)
        else:
            draws = draw_random_effects(design, cp, post, seed, residual=residual)
        for name, da in draws.items():
            post[name] = da
    if design.in_memory:  # out of core, the rows stay where they are
        obs = xr.Dataset({"y": xr.DataArray(design.y, dims="obs",
                                             coords={"obs": np.arange(design.nobs)})})
        idata.add_groups(observed_data=obs)
    return idata


def complete(idata: az.InferenceData, design, priors, residual, *, marginal: bool,
             cross_products=None, random_seed=None, log_likelihood: bool | None = None,
             b_draws: str = "auto", sigma: float | None = None) -> az.InferenceData:
    """What a fit adds to NUTS's draws (see the module doc); ``log_likelihood=None``
    stores it below :data:`LOGLIK_AUTO_LIMIT` values; ``sigma``: σ fixed at this value
    (put back in the draws)."""
    if sigma is not None:
        idata.posterior = with_fixed_sigma(idata.posterior, sigma)
    # sampled standardised (β, unit-scale Cholesky factors): the draws are β's, sd's, corr's
    internal = [v for v in idata.posterior.data_vars
                if v == "beta_z" or (v.startswith("chol_") and v.endswith("_z"))]
    idata.posterior = idata.posterior.drop_vars(internal)
    if marginal:
        idata = complete_marginal(idata, design, random_seed, residual, cross_products,
                                  b_draws)
    size = idata.posterior.sizes["chain"] * idata.posterior.sizes["draw"] * design.nobs
    want = log_likelihood or (log_likelihood is None and size <= LOGLIK_AUTO_LIMIT)
    # (already there: grouped per correlation group); out of core there are no rows
    if (want or "log_likelihood" in idata.groups()) and design.in_memory:
        idata = with_log_likelihood(idata, design, residual)
    return with_prior_groups(idata, design, priors, residual, random_seed=random_seed)
