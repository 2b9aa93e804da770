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
import numbers
import os
import signal
import sys
import threading
import time
import warnings

import arviz as az
import numpy as np
import pymc as pm

from ..errors import BayesLMMError, quiet_libraries, user_stacklevel
from .compiled import COMPILED

__all__ = ["available_samplers", "choose_sampler", "default_target_accept", "sample",
           "check_options", "interrupted", "run_info", "LOGLIK_AUTO_LIMIT", "FEW_LEVELS"]

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


#: A grouping factor with fewer levels leaves its sd's posterior reaching towards 0.
FEW_LEVELS = 10


def default_target_accept(design, parameterization: str) -> float:
    """NUTS's target acceptance rate when the user gives none: 0.9 for the conditional
    model (funnels) and for a marginal model with a grouping factor of fewer than
    :data:`FEW_LEVELS` levels, whose sd's posterior reaches towards 0 where its
    curvature changes fast (Penicillin's 6 samples at 0.8: 1–3 divergences per 4 × 1000
    in 5–7 of 8 seeds; at 0.9 none in 8); 0.8 otherwise.

    >>> import bayeslmm as blm
    >>> pen = blm.LMM("diameter ~ 1 + (1 | plate) + (1 | sample)", blm.datasets.load("Penicillin"))
    >>> sleep = blm.LMM("Reaction ~ Days + (Days | Subject)", blm.datasets.load("sleepstudy"))
    >>> [default_target_accept(m.design, "marginal") for m in (pen, sleep)]
    [0.9, 0.8]
    """
    few = any(t.n_levels < FEW_LEVELS for t in design.terms)
    return 0.9 if parameterization != "marginal" or few else 0.8


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
            f"`pip install \"bayeslmm[jax]\"` (or `pip install {sampler}`), or use sampler='pymc'."
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


def _count(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        what = "a positive" if minimum else "a non-negative"
        raise BayesLMMError(f"{name} must be {what} integer, got {value!r}.")
    return int(value)


def check_options(*, draws, tune, chains, target_accept, random_seed) -> dict:
    """The sampling options as plain ints and floats, or a BayesLMMError naming the bad one.

    >>> check_options(draws=np.int64(20), tune=0, chains=1, target_accept=0.9,
    ...               random_seed=None)["draws"]
    20
    """
    out = {"draws": _count("draws", draws, 1), "tune": _count("tune", tune, 0),
           "chains": _count("chains", chains, 1)}
    if isinstance(target_accept, bool) or not isinstance(target_accept, numbers.Real) \
            or not 0 < target_accept < 1:
        raise BayesLMMError(f"target_accept must be a number in (0, 1), got {target_accept!r}.")
    out["target_accept"] = float(target_accept)
    if random_seed is not None:
        random_seed = _count("random_seed", random_seed, 0)
    out["random_seed"] = random_seed
    return out


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
    direct=None,
) -> az.InferenceData:
    """Sample ``model`` with NUTS and return InferenceData.

    ``log_likelihood=None`` adds the pointwise log-likelihood group when it is small
    (see :data:`LOGLIK_AUTO_LIMIT`); True always, False never. With nutpie, a
    ``cacheable`` model (one whose graph depends on the data only through its
    ``pm.Data``) is compiled once per structure and reused with new data;
    ``cost_hint`` (roughly the work of one gradient) picks its backend.
    ``low_rank_mass`` lets nutpie adapt a diagonal-plus-low-rank mass matrix (for
    posteriors with strongly correlated parameters; PyMC's sampler ignores it).
    ``direct`` (a :class:`~bayeslmm.pymc.direct.DirectModel` of ``model``) lets nutpie
    evaluate the model with precompiled code instead of compiling its graph.
    Interrupted sampling (Ctrl-C) stops every chain and returns the draws made so far,
    marked (see :func:`run_info`); interrupted before any draw after tuning, it raises
    KeyboardInterrupt.
    """
    opts = check_options(draws=draws, tune=tune, chains=chains,
                         target_accept=target_accept, random_seed=random_seed)
    nuts = choose_sampler(sampler)
    with quiet_libraries():
        if nuts == "nutpie":
            idata = _nutpie(model, cacheable, draws=opts["draws"], tune=opts["tune"],
                            chains=opts["chains"], cores=cores, seed=opts["random_seed"],
                            progressbar=progressbar, target_accept=opts["target_accept"],
                            cost_hint=cost_hint, low_rank_mass=low_rank_mass,
                            direct=direct)
        else:
            idata = _pymc(model, nuts, draws=opts["draws"], tune=opts["tune"],
                          chains=opts["chains"], cores=cores, seed=opts["random_seed"],
                          progressbar=progressbar, target_accept=opts["target_accept"])
        want = log_likelihood
        if want is None:
            want = opts["draws"] * opts["chains"] * nobs <= LOGLIK_AUTO_LIMIT
        if want and model.observed_RVs:
            with model:
                pm.compute_log_likelihood(idata, progressbar=False)
    return idata


def interrupted(idata: az.InferenceData, draws: int, chains: int) -> str | None:
    """Why ``idata`` holds fewer draws than asked for (sampling stopped by Ctrl-C), or None.

    >>> import xarray as xr
    >>> post = xr.Dataset({"x": (("chain", "draw"), np.zeros((2, 5)))})
    >>> interrupted(az.InferenceData(posterior=post), draws=100, chains=2)
    'sampling was interrupted: 2 chains x 5 draws of the 2 x 100 asked for'
    """
    post = idata.posterior
    got_chains, got_draws = post.sizes["chain"], post.sizes["draw"]
    if got_chains >= chains and got_draws >= draws:
        return None
    return (f"sampling was interrupted: {got_chains} chains x {got_draws} draws of the "
            f"{chains} x {draws} asked for")


def run_info(idata: az.InferenceData, **asked) -> dict:
    """How a fit ran (sampler, parameterization, seed, tuning steps) with the chains and
    draws it actually holds; an interrupted run (Ctrl-C) is marked (``"interrupted"``,
    which the result's warnings and printed form repeat) and warned about here.

    >>> import xarray as xr
    >>> post = xr.Dataset({"x": (("chain", "draw"), np.zeros((1, 5)))})
    >>> run_info(az.InferenceData(posterior=post), draws=5, chains=1, tune=5)["draws"]
    5
    """
    info = dict(asked)
    why = interrupted(idata, int(asked["draws"]), int(asked["chains"]))
    info["chains"] = int(idata.posterior.sizes["chain"])
    info["draws"] = int(idata.posterior.sizes["draw"])
    if why:
        info["interrupted"] = why
        warnings.warn(f"{why.capitalize()}: the result holds only these draws (as its "
                      "summary says); fit again for all of them.", UserWarning,
                      stacklevel=user_stacklevel())
    return info


class _Interrupt:
    """Ctrl-C stops every chain, not only the running one: PyMC's sequential sampler
    stops the chain it is in and starts the next, so once interrupted each later chain
    is stopped at its first step (through ``pm.sample``'s callback)."""

    def __init__(self) -> None:
        self.hit = False

    def callback(self, trace, draw) -> None:
        if self.hit:
            raise KeyboardInterrupt

    def handler(self, signum, frame) -> None:
        self.hit = True
        signal.default_int_handler(signum, frame)


@contextlib.contextmanager
def _interruptible():
    state = _Interrupt()
    if threading.current_thread() is not threading.main_thread():
        yield state
        return
    previous = signal.signal(signal.SIGINT, state.handler)
    try:
        yield state
    finally:
        signal.signal(signal.SIGINT, previous)


def _complete_draws(idata: az.InferenceData) -> az.InferenceData:
    """Only the draws every kept chain made: an interrupted nutpie run pads the draws it
    did not make with NaN (a chain not started is dropped, the others are cut to the
    shortest)."""
    stats = idata.sample_stats
    var = next((v for v in ("energy", "logp", "lp") if v in stats), None)
    if var is None:
        return idata
    made = (~np.isnan(stats[var].values)).cumprod(axis=1).sum(axis=1)
    keep = np.flatnonzero(made > 0)
    if not len(keep):  # stopped before any draw after tuning: nothing to return
        raise KeyboardInterrupt
    n = int(made[keep].min())
    if len(keep) == len(made) and n == stats.sizes["draw"]:
        return idata
    groups = {}
    for g in idata.groups():
        ds = idata[g]
        if "chain" in ds.dims and "draw" in ds.dims:
            ds = ds.isel(chain=keep, draw=slice(0, n))
        groups[g] = ds
    return az.InferenceData(**groups)


def _pymc(model, nuts, *, draws, tune, chains, cores, seed, progressbar,
          target_accept) -> az.InferenceData:
    """PyMC's own NUTS, or numpyro through ``pm.sample``."""
    # PyMC's default counts half the CPUs (it assumes hyper-threads)
    cores = cores or min(chains, os.cpu_count() or 1)
    # forking a process that runs JAX's threads can deadlock (JAX warns): start the
    # chains' processes from a clean server instead
    ctx = "forkserver" if cores > 1 and "jax" in sys.modules else None
    extra = {"mp_ctx": ctx}
    if nuts == "numpyro":
        from ..pymc.marginal import register_jax_ops

        register_jax_ops()
    with model, _quiet(not progressbar), _interruptible() as stop:
        if nuts == "pymc":
            extra["callback"] = stop.callback
        try:
            return pm.sample(
                draws=draws, tune=tune, chains=chains, cores=cores, random_seed=seed,
                nuts_sampler=nuts, target_accept=target_accept, progressbar=progressbar,
                compute_convergence_checks=False, **extra,
            )
        except ValueError:
            if stop.hit:  # stopped before any draw after tuning: nothing to return
                raise KeyboardInterrupt from None
            raise


def _compiled(model, backend: str, cacheable: bool):
    """The nutpie model of ``model``'s graph: from this process's cache (its data swapped
    in) or compiled (and kept, when the graph depends on the data only through pm.Data)."""
    from . import nutpie_backend as nb

    key = nb.memory_key(model, backend) if cacheable else None
    compiled = COMPILED.get(key) if key is not None else None
    if compiled is not None:
        return compiled.with_data(**nb.model_data(model))
    compiled = nb.compile_model(model, backend, key=key[0] if key else None)
    if key is not None:
        COMPILED.put(key, compiled)
    return compiled


def _nutpie(model, cacheable, *, draws, tune, chains, cores, seed, progressbar,
            target_accept, cost_hint, low_rank_mass=False, direct=None) -> az.InferenceData:
    """nutpie directly (not through pm.sample), so that its compiled model is cached.

    A ``direct`` model runs precompiled numba kernels that release the GIL, its chains in
    parallel threads. Otherwise the model runs on PyTensor's numba backend with its
    chains in one thread, compiled once per structure
    (:mod:`bayeslmm.sampling.nutpie_backend`); with JAX installed, a model whose
    gradient is costly runs on JAX with chains in parallel.
    """
    import nutpie

    from . import nutpie_backend as nb

    backend = nb.pick_backend(cost_hint, cacheable)
    if direct is not None:  # precompiled, and its chains run in parallel threads
        backend, compiled = "direct", nb.compile_direct(model, direct)
    else:
        compiled = _compiled(model, backend, cacheable)
    if seed is None:
        seed = int(np.random.default_rng().integers(2**31))
    if cores is None:  # the direct kernels release the GIL: its chains run in threads
        cores = 1 if backend == "numba" else min(chains, os.cpu_count() or 1)
    start = time.perf_counter()
    idata = nutpie.sample(compiled, draws=draws, tune=tune, chains=chains,
                          cores=cores, seed=int(seed), progress_bar=progressbar,
                          target_accept=target_accept, save_warmup=False,
                          low_rank_modified_mass_matrix=low_rank_mass)
    idata = _complete_draws(idata)
    # nutpie also stores the unconstrained values (sigma_log__ ...); PyMC does not
    post = idata.posterior
    post = post.drop_vars([v for v in post.data_vars if str(v).endswith("__")])
    used = {d for v in post.data_vars.values() for d in v.dims}
    idata.posterior = post.drop_dims([d for d in post.dims if d not in used])
    idata.posterior.attrs.update(sampling_time=time.perf_counter() - start,
                                 nutpie_backend=backend)
    return idata
