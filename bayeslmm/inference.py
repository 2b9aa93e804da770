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
from collections import OrderedDict

import arviz as az
import pymc as pm

from .errors import BayesLMMError

__all__ = ["available_samplers", "choose_sampler", "sample", "complete_marginal",
           "LOGLIK_AUTO_LIMIT"]

#: ``log_likelihood=None`` stores the pointwise log-likelihood only below this many
#: values (draws × chains × rows), 200 MB of float64.
LOGLIK_AUTO_LIMIT = 25_000_000

_SAMPLERS = ("pymc", "nutpie", "numpyro")
_MODULE = {"pymc": "pymc", "nutpie": "nutpie", "numpyro": "numpyro"}


#: compiled nutpie models by structure, reused on new data of the same shape
_COMPILED: OrderedDict = OrderedDict()
_CACHE_SIZE = 8


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def available_samplers() -> list[str]:
    """Samplers importable here, PyMC's own first."""
    return [s for s in _SAMPLERS if _installed(_MODULE[s])]


def choose_sampler(sampler: str) -> str:
    """Validate ``sampler``. ``"auto"``: nutpie when it and JAX are installed (its JAX
    backend compiles in seconds and its Rust NUTS has the lowest overhead per step),
    else PyMC's own NUTS."""
    if sampler == "auto":
        return "nutpie" if _installed("nutpie") and _installed("jax") else "pymc"
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
    cache_key: tuple | None = None,
    data: dict | None = None,
) -> az.InferenceData:
    """Sample ``model`` with NUTS and return InferenceData.

    ``log_likelihood=None`` adds the pointwise log-likelihood group when it is small
    (see :data:`LOGLIK_AUTO_LIMIT`); True always, False never. With nutpie, a model
    compiled under ``cache_key`` is reused with ``data`` (its ``pm.Data`` values).
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
        idata = _nutpie(model, cache_key, data, draws=draws, tune=tune, chains=chains,
                        cores=cores, seed=random_seed, progressbar=progressbar,
                        target_accept=target_accept)
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


def _nutpie(model, cache_key, data, *, draws, tune, chains, cores, seed, progressbar,
            target_accept) -> az.InferenceData:
    """nutpie directly (not through pm.sample), so that its compiled model is cached."""
    import nutpie

    compiled = _COMPILED.get(cache_key) if cache_key is not None else None
    if compiled is None:
        backend = {"backend": "jax", "gradient_backend": "jax"} if _installed("jax") else {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # an unfrozen model keeps pm.Data as inputs, so with_data() can swap them
            compiled = nutpie.compile_pymc_model(model, freeze_model=cache_key is None,
                                                 **backend)
        if cache_key is not None:
            _COMPILED[cache_key] = compiled
            while len(_COMPILED) > _CACHE_SIZE:
                _COMPILED.popitem(last=False)
    elif data:
        compiled = compiled.with_data(**data)
    if seed is None:
        import numpy as np

        seed = int(np.random.default_rng().integers(2**31))
    start = time.perf_counter()
    idata = nutpie.sample(compiled, draws=draws, tune=tune, chains=chains,
                          cores=cores or chains, seed=int(seed), progress_bar=progressbar,
                          target_accept=target_accept, save_warmup=False)
    idata.posterior.attrs["sampling_time"] = time.perf_counter() - start
    return idata


def complete_marginal(idata: az.InferenceData, design, random_seed=None,
                      residual=None, stats=None) -> az.InferenceData:
    """After NUTS on the marginal model: draw every ``b_<group>`` exactly from its
    Gaussian conditional and add ``observed_data``, so the InferenceData has the same
    groups, variables and coords as the conditional model's."""
    import numpy as np
    import xarray as xr

    from .marginal import MarginalStats
    from .ranef_draws import draw_random_effects

    post = idata.posterior
    if design.terms:
        stats = stats if stats is not None else MarginalStats.from_design(design)
        seed = np.random.SeedSequence(random_seed).spawn(1)[0]
        draws = draw_random_effects(design, stats, post, seed, residual=residual)
        for name, da in draws.items():
            post[name] = da
    obs = xr.Dataset({"y": xr.DataArray(design.y, dims="obs",
                                         coords={"obs": np.arange(design.nobs)})})
    idata.add_groups(observed_data=obs)
    return idata
