"""The parametric bootstrap of an ML/REML fit (lme4's ``simulate``, ``refit`` and
``bootMer``): responses drawn from the fitted model, the model refitted to each, a
statistic collected; the refits run in worker processes.

Reproducibility: replicate i draws from its own stream, ``SeedSequence(seed).spawn(n)[i]``
(random effects term by term, then the residuals), so the numbers do not depend on how
many workers run or in which order they finish.

Workers are forked processes (Linux: they inherit the fitted model, so the statistic
may be any function, a lambda included; macOS and Windows use threads instead), one BLAS
thread each, shut down before the call returns.

Examples
--------
>>> parallel_map(lambda i: i * i, 5, cores=2, progressbar=False)
[0, 1, 4, 9, 16]
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
import warnings
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from contextlib import nullcontext
from dataclasses import replace
from typing import Any

import numpy as np

from ..linalg.theta import ThetaLayout
from ..residual.algebra import unwhiten

__all__ = ["simulate_response", "refit_design", "parallel_map", "seeds", "run_replicates"]

_JOB: Callable[[int], Any] | None = None


def seeds(random_seed, n: int) -> list[np.random.SeedSequence]:
    """The n independent streams of a seed (``None``: fresh entropy).

    >>> [s.spawn_key for s in seeds(1, 2)]
    [(0,), (1,)]
    """
    return np.random.SeedSequence(random_seed).spawn(n)


def simulate_response(design, theta, sigma: float, beta, rng: np.random.Generator, *,
                      residual=None, residual_params: dict | None = None) -> np.ndarray:
    """One response drawn from the model at (β, θ, σ): Xβ + Zb + ε, b ~ N(0, σ²ΛΛᵀ) per
    level, ε ~ N(0, σ²/w) (w the prior weights, 1 without) or, with a residual structure,
    N(0, σ²Λ_ε) at its parameters."""
    y = design.X @ np.asarray(beta, dtype=float)
    for t, lam in zip(design.terms, ThetaLayout.from_terms(design.terms).lambdas(theta),
                      strict=True):
        b = sigma * rng.standard_normal((t.n_levels, t.q)) @ lam.T
        y = y + np.einsum("iq,iq->i", t.Z, b[t.codes])
    w = rng.standard_normal(design.nobs)
    if residual is None:  # prior weights: sd σ/√w
        return y + sigma * w / np.sqrt(design.weights if design.weights is not None else 1.0)
    return y + sigma * unwhiten(residual, w, residual_params)


def refit_design(design, y: np.ndarray):
    """The design with response y (also written into its data, where the response is a
    column, so that a refit saves and reloads)."""
    data = design.data
    if design.response in data.columns:
        data = data.copy()
        data[design.response] = y
    return replace(design, y=np.asarray(y, dtype=float), data=data)


def _one_thread():
    """One BLAS thread (small refits: thread wake-ups cost more than they bring)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        return nullcontext()
    return threadpool_limits(1)


def _init(job) -> None:
    global _JOB
    _JOB = job
    _one_thread()  # in a worker for good: the workers are the parallelism


def _chunk(idx: list[int]) -> list[tuple[int, Any]]:
    return [(i, _JOB(i)) for i in idx]


def _executor(cores: int, job) -> Executor:
    if sys.platform.startswith("linux"):
        return ProcessPoolExecutor(cores, mp_context=mp.get_context("fork"),
                                   initializer=_init, initargs=(job,))
    _init(job)
    return ThreadPoolExecutor(cores)


def parallel_map(job: Callable[[int], Any], n: int, *, cores: int | None = None,
                 progressbar: bool = True, desc: str = "refits") -> list:
    """``[job(i) for i in range(n)]`` on ``cores`` workers (default: all), with a
    progress bar; no worker outlives the call."""
    from tqdm.auto import tqdm

    cores = min(os.cpu_count() or 1, n) if cores is None else max(1, min(int(cores), n))
    out: list = [None] * n
    with tqdm(total=n, desc=desc, disable=not progressbar) as bar:
        if cores <= 1:
            with _one_thread():
                for i in range(n):
                    out[i] = job(i)
                    bar.update(1)
            return out
        chunks = [c.tolist() for c in np.array_split(np.arange(n), min(n, cores * 8))]
        ex = _executor(cores, job)
        try:
            futures = [ex.submit(_chunk, c) for c in chunks if len(c)]
            for fut in as_completed(futures):
                for i, value in fut.result():
                    out[i] = value
                bar.update(len(fut.result()))
        except BaseException:
            ex.shutdown(wait=True, cancel_futures=True)
            raise
        ex.shutdown(wait=True)
    return out


def run_replicates(one: Callable[[np.random.Generator], np.ndarray], n: int, random_seed, *,
                   cores: int | None, progressbar: bool) -> tuple[np.ndarray, Counter, int]:
    """Replicate i: ``one(Generator(stream i))`` → a vector, in parallel. Returns the
    (n × k) values (a failed refit: a row of NaN), the warnings of the refits with their
    counts, and the number of failures."""
    streams = seeds(random_seed, n)

    def job(i: int):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                value = np.asarray(one(np.random.default_rng(streams[i])), dtype=float).ravel()
                err = None
            except Exception as e:  # noqa: BLE001 (a failed refit is counted, as bootMer does)
                value, err = None, f"{type(e).__name__}: {e}"
        return value, [str(w.message) for w in caught], err

    results = parallel_map(job, n, cores=cores, progressbar=progressbar, desc="bootstrap")
    k = next((len(v) for v, _, _ in results if v is not None), 0)
    values = np.full((n, k), np.nan)
    msgs: Counter = Counter()
    failed = 0
    for i, (v, ws, err) in enumerate(results):
        msgs.update(ws)
        if err is not None or v is None or len(v) != k:
            failed += 1
            if err is not None:
                msgs.update([err])
            continue
        values[i] = v
    return values, msgs, failed
