"""The marginal model's b draws on demand: arrays whose blocks are drawn when read.

Every b draw is exact given its draw of (β, Ψ, σ) and a noise stream, so the draws need
not be kept: a block of draws is drawn again, with the same stream, whenever it is read
(:class:`~bayeslmm.sampling.ranef_draws.RanefBlocks`), and lazy and stored draws are the
very same numbers. 4 × 1000 draws of 10⁵ levels × 2 terms are 6.4 GB in memory; lazily,
nothing until read, and a selection (``isel(draw=...)``, a chain) draws only the blocks
it needs. The arrays are xarray's lazily indexed backend arrays (as a netCDF file
opened without loading), not dask arrays: ArviZ and xarray take them as NumPy arrays
(``az.summary`` reads them whole).

``b_draws="auto"`` (:func:`lazy_wanted`) keeps the draws in memory up to
:data:`B_DRAWS_AUTO_LIMIT` values and lazy above it.

Examples
--------
>>> import bayeslmm as blm
>>> m = blm.LMM("Reaction ~ Days + (Days | Subject)", blm.datasets.load("sleepstudy"))
>>> lazy = m.fit(draws=50, tune=50, chains=2, random_seed=1, progressbar=False,
...              b_draws="lazy")
>>> stored = m.fit(draws=50, tune=50, chains=2, random_seed=1, progressbar=False)
>>> b = lazy.idata.posterior["b_Subject"]
>>> b.variable._in_memory, bool((b == stored.idata.posterior["b_Subject"]).all())
(False, True)
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from xarray.backends import BackendArray
from xarray.core import indexing

from ..errors import BayesLMMError
from .ranef_draws import RanefBlocks

__all__ = ["B_DRAWS_AUTO_LIMIT", "B_DRAWS", "lazy_wanted", "lazy_random_effects"]

#: above this many values (10⁸: 800 MB of float64) ``b_draws="auto"`` draws b lazily
B_DRAWS_AUTO_LIMIT = 100_000_000
B_DRAWS = ("auto", "memory", "lazy")


def lazy_wanted(b_draws: str, size: int) -> bool:
    """Whether ``b_draws`` (``"auto"``, ``"memory"`` or ``"lazy"``) makes ``size`` b
    values lazy: ``"auto"`` above :data:`B_DRAWS_AUTO_LIMIT`.

    Examples
    --------
    >>> lazy_wanted("memory", 10**12), lazy_wanted("auto", 10**9), lazy_wanted("auto", 10**6)
    (False, True, False)
    """
    if b_draws not in B_DRAWS:
        raise BayesLMMError(f"b_draws={b_draws!r} is not one of {B_DRAWS}: 'memory' keeps "
                            "every b draw in memory, 'lazy' draws them when read, "
                            "'auto' chooses by their size.")
    return b_draws == "lazy" or (b_draws == "auto" and size > B_DRAWS_AUTO_LIMIT)


class _TermDraws(BackendArray):
    """One factor's draws (chain, draw, level, term) as a backend array of ``plan``."""

    def __init__(self, plan: RanefBlocks, pos: int, m: int, q: int) -> None:
        self.plan, self.pos, self.m, self.q = plan, pos, m, q
        self.shape = (plan.nc, plan.nd, m, q)
        self.dtype = np.dtype(float)

    def __getitem__(self, key):
        return indexing.explicit_indexing_adapter(key, self.shape,
                                                  indexing.IndexingSupport.BASIC, self._raw)

    def _raw(self, key: tuple) -> np.ndarray:  # ints and slices (basic indexing)
        ck, dk, lk, tk = key
        chains = np.atleast_1d(np.arange(self.plan.nc)[ck])
        draws = np.atleast_1d(np.arange(self.plan.nd)[dk])
        out = np.empty((len(chains), len(draws), self.m, self.q))
        width, cols = self.plan.width, slice(self.pos, self.pos + self.m * self.q)
        for i, c in enumerate(chains):
            for j in np.unique(draws // width):  # only the blocks the key touches
                lo, hi = j * width, min((j + 1) * width, self.plan.nd)
                flat = self.plan.block(int(c), int(lo), int(hi))[:, cols]
                sel = (draws >= lo) & (draws < hi)
                out[i, sel] = flat.reshape(hi - lo, self.m, self.q)[draws[sel] - lo]
        out = out[:, :, lk, tk]
        return out[tuple(0 if isinstance(k, int | np.integer) else slice(None)
                         for k in (ck, dk))]


def lazy_random_effects(plan: RanefBlocks, post: xr.Dataset) -> dict[str, xr.DataArray]:
    """``b_<group>`` as lazily indexed DataArrays (dims ``chain, draw, group, term``):
    reading a selection draws the blocks of ``plan`` that it touches. Their encoding's
    ``preferred_chunks`` gives the block width along ``draw``."""
    out, pos = {}, 0
    for t in plan.terms:
        data = indexing.LazilyIndexedArray(_TermDraws(plan, pos, t.n_levels, t.q))
        pos += t.n_levels * t.q
        dims = ("chain", "draw", t.group, f"{t.group}_term")
        var = xr.Variable(dims, data,
                          encoding={"preferred_chunks": {"draw": plan.width}})
        out[f"b_{t.group}"] = xr.DataArray(
            var, coords={"chain": post.chain, "draw": post.draw, t.group: t.levels,
                         f"{t.group}_term": t.term_names})
    return out
