"""Running NUTS on a built PyMC model: sampler choice, options, log-likelihood.

Examples
--------
>>> available_samplers()[0]
'pymc'
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import time
import warnings

import arviz as az
import numpy as np
import pymc as pm
import xarray as xr

from ..errors import BayesLMMError
from ..formula.weights import weighted
from ..linalg.crossprod import CrossProducts
from .compiled import COMPILED

__all__ = ["available_samplers", "choose_sampler", "sample", "complete_marginal",
           "LOGLIK_AUTO_LIMIT"]

#: ``log_likelihood=None`` stores the pointwise log-likelihood only below this many
#: values (draws × chains × rows), 200 MB of float64.
LOGLIK_AUTO_LIMIT = 25_000_000

_SAMPLERS = ("pymc", "nutpie", "numpyro")
_MODULE = {"pymc": "pymc", "nutpie": "nutpie", "numpyro": "numpyro"}


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def available_samplers() -> list[str]:
    """Samplers importable here, PyMC's own first."""
    return [s for s in _SAMPLERS if _installed(_MODULE[s])]


def choose_sampler(sampler: str, parameterization: str = "marginal") -> str:
    """Validate ``sampler``. ``"auto"``: nutpie when installed (its Rust NUTS has the
    lowest overhead per step, and its compiled models are cached here), else PyMC's
    own NUTS; PyMC's for the conditional parameterization, which takes many gradients
    per draw, each of which would pay JAX's dispatch under nutpie (sleepstudy: 57 s
    against 24 s)."""
    if sampler == "auto":
        if parameterization == "conditional":
            return "pymc"
        return "nutpie" if _installed("nutpie") else "pymc"
    if sampler not in _SAMPLERS:
        raise BayesLMMError(
            f"Unknown sampler {sampler!r}; choose one of 'auto', {', '.join(map(repr, _SAMPLERS))}."
        )
    if sampler not in available_samplers():
        raise BayesLMMError(
            f"Sampler {sampler!r} is not installed. Install it with "
            f"`pip install bayeslmm[fast]` (or `pip install {sampler}`), or use sampler='pymc'."
        )
    return sampler


@contextlib.contextmanager
def _quiet(on: bool):
    """Silence PyMC's informational log lines when the progress bar is off."""
    logger = logging.getLogger("pymc")
    level = logger.level
    if on:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def sample(
    model: pm.Model,
    *,
    draws: int,
    tune: int,
    chains: int,
    random_seed: int | None,
    sampler: str,
    target_accept: float,
    cores: int | None,
    progressbar: bool,
    log_likelihood: bool | None,
    nobs: int,
    cacheable: bool = False,
    cost_hint: int = 0,
    low_rank_mass: bool = False,
) -> az.InferenceData:
    """Sample ``model`` with NUTS and return InferenceData.

    ``log_likelihood=None`` adds the pointwise log-likelihood group when it is small
    (see :data:`LOGLIK_AUTO_LIMIT`); True always, False never. With nutpie, a
    ``cacheable`` model (one whose graph depends on the data only through its
    ``pm.Data``) is compiled once per structure and reused with new data;
    ``cost_hint`` (roughly the work of one gradient) picks its backend.
    ``low_rank_mass`` lets nutpie adapt a diagonal-plus-low-rank mass matrix (for
    posteriors with strongly correlated parameters; PyMC's sampler ignores it).
    """
    for name, val in (("draws", draws), ("chains", chains)):
        if not isinstance(val, int) or val < 1:
            raise BayesLMMError(f"{name} must be a positive integer, got {val!r}.")
    if not isinstance(tune, int) or tune < 0:
        raise BayesLMMError(f"tune must be a non-negative integer, got {tune!r}.")
    if not 0 < target_accept < 1:
        raise BayesLMMError(f"target_accept must be in (0, 1), got {target_accept!r}.")
    nuts = choose_sampler(sampler)
    if nuts == "nutpie":
        idata = _nutpie(model, cacheable, draws=draws, tune=tune, chains=chains,
                        cores=cores, seed=random_seed, progressbar=progressbar,
                        target_accept=target_accept, cost_hint=cost_hint,
                        low_rank_mass=low_rank_mass)
    else:
        idata = _pymc(model, nuts, draws=draws, tune=tune, chains=chains, cores=cores,
                      seed=random_seed, progressbar=progressbar, target_accept=target_accept)
    want = log_likelihood
    if want is None:
        want = draws * chains * nobs <= LOGLIK_AUTO_LIMIT
    if want and model.observed_RVs:
        with model:
            pm.compute_log_likelihood(idata, progressbar=False)
    return idata


def _pymc(model, nuts, *, draws, tune, chains, cores, seed, progressbar,
          target_accept) -> az.InferenceData:
    """PyMC's own NUTS, or numpyro through ``pm.sample``."""
    with model, warnings.catch_warnings(), _quiet(not progressbar):
        warnings.filterwarnings("ignore", message=".*The effect of Potentials.*")
        # PyMC's default counts half the CPUs (it assumes hyper-threads)
        cores = cores or min(chains, os.cpu_count() or 1)
        return pm.sample(
            draws=draws, tune=tune, chains=chains, cores=cores, random_seed=seed,
            nuts_sampler=nuts, target_accept=target_accept, progressbar=progressbar,
            compute_convergence_checks=False,
        )


def _nutpie(model, cacheable, *, draws, tune, chains, cores, seed, progressbar,
            target_accept, cost_hint, low_rank_mass=False) -> az.InferenceData:
    """nutpie directly (not through pm.sample), so that its compiled model is cached.

    A cheap model runs on PyTensor's numba backend with its chains in one thread; a
    costly one on JAX with chains in parallel (see :mod:`bayeslmm.sampling.nutpie_backend`).
    """
    import nutpie

    from . import nutpie_backend as nb

    backend = nb.pick_backend(cost_hint, cacheable)
    skey = nb.structure_key(model, backend) if cacheable else None
    if (backend == "numba" and skey and _installed("jax") and not nb.is_cached(skey)
            and not COMPILED.has_structure(skey)
            and nb.warm_in_background(model, skey)):
        backend, skey = "jax", nb.structure_key(model, "jax")  # numba next time
    key = nb.memory_key(model, backend, skey) if cacheable else None
    compiled = COMPILED.get(key) if key is not None else None
    if compiled is None:
        compiled = nb.compile_model(model, backend, key=key[0] if key else None)
        if key is not None:
            COMPILED.put(key, compiled)
    else:
        compiled = compiled.with_data(**nb.model_data(model))
    if seed is None:
        seed = int(np.random.default_rng().integers(2**31))
    if cores is None:
        cores = 1 if backend == "numba" else chains
    start = time.perf_counter()
    idata = nutpie.sample(compiled, draws=draws, tune=tune, chains=chains,
                          cores=cores, seed=int(seed), progress_bar=progressbar,
                          target_accept=target_accept, save_warmup=False,
                          low_rank_modified_mass_matrix=low_rank_mass)
    # nutpie also stores the unconstrained values (sigma_log__ ...); PyMC does not
    post = idata.posterior
    post = post.drop_vars([v for v in post.data_vars if str(v).endswith("__")])
    used = {d for v in post.data_vars.values() for d in v.dims}
    idata.posterior = post.drop_dims([d for d in post.dims if d not in used])
    idata.posterior.attrs.update(sampling_time=time.perf_counter() - start,
                                 nutpie_backend=backend)
    return idata


def complete_marginal(idata: az.InferenceData, design, random_seed=None,
                      residual=None, cross_products=None) -> az.InferenceData:
    """After NUTS on the marginal model: draw every ``b_<group>`` exactly from its
    Gaussian conditional and add ``observed_data``, so the InferenceData has the same
    groups, variables and coords as the conditional model's."""
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
    obs = xr.Dataset({"y": xr.DataArray(design.y, dims="obs",
                                         coords={"obs": np.arange(design.nobs)})})
    idata.add_groups(observed_data=obs)
    return idata
