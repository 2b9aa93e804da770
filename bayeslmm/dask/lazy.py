"""Values per row on data in chunks, lazily: predictions and residuals become dask
objects built partition by partition (``map_partitions``), computed when asked.

A result calls these with a function of one pandas partition; what that function
needs (the design's evaluators, the estimates or the posterior draws) enters the graph
once, as one delayed object, not once per partition. On the training rows of an
out-of-core fit (``rows=None``), each partition's complete rows are taken as the fit
took them (missing values dropped, factors typed with every level).

Examples
--------
>>> import dask.dataframe as dd, pandas as pd, bayeslmm as blm
>>> ddf = dd.from_pandas(blm.datasets.load("sleepstudy"), npartitions=3)
>>> est = blm.LMM("Reaction ~ Days + (Days | Subject)", ddf).fit_map()
>>> pred = est.predict()                      # the training rows: a lazy dask Series
>>> type(pred).__module__.split(".")[0], round(float(pred.compute().iloc[0]), 2)
('dask', 253.66)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from ..errors import BayesLMMError
from .frame import require_dask

__all__ = ["map_rows", "map_draws", "training_frame"]


def training_frame(design):
    """The dask DataFrame an out-of-core design was read from (a BayesLMMError when the
    design has none, e.g. after loading)."""
    src = getattr(design, "source", None)
    if src is None:
        raise BayesLMMError("This fit holds no data in chunks to compute values per row: "
                            "pass the dask DataFrame (e.g. predict(ddf)).")
    return src


def _light(design):
    """The design without its source frame (what a partition's function needs)."""
    import dataclasses

    if dataclasses.is_dataclass(design) and getattr(design, "source", None) is not None:
        return dataclasses.replace(design, source=None)
    return design


def _on_partition(part: pd.DataFrame, fn: Callable, design, args: tuple, training: bool):
    if training:
        part = design.frozen.typed(part)
    return fn(part, design, *args)


def map_rows(design, ddf, fn: Callable, args: tuple, meta: Any, typed: bool = True):
    """``fn(partition, design, *args)`` on each partition of ``ddf`` (None: the training
    rows of an out-of-core design, complete and typed unless ``typed=False``), as one
    lazy dask Series or DataFrame with ``meta``."""
    dask = require_dask()
    training = ddf is None and typed
    frame = training_frame(design) if ddf is None else ddf
    shared = dask.delayed((_light(design), tuple(args)), traverse=False)
    return frame.map_partitions(lambda part, s: _on_partition(part, fn, s[0], s[1], training),
                                shared, meta=meta)


def map_draws(design, ddf, fn: Callable, args: tuple, shape: tuple[int, int],
              random_seed=None, draw_step: int | None = None):
    """``fn(partition, design, *args, rng)`` → array ``shape + (rows,)`` on each
    partition, as one lazy dask array (``chain, draw, obs``); partition ``i`` draws
    from stream ``i`` of ``random_seed``. Partition sizes: the fit's own for its
    training rows, else counted first (one light pass).

    ``draw_step``: ``args[0]`` is the posterior (a Dataset with ``chain`` and ``draw``)
    and each task gets one chain's ``draw_step`` draws of it (stream ``(i, c, w)``): a
    task reads only its draws (lazy b draws are drawn a block at a time), and holds
    ``draw_step × rows`` values, not all draws'."""
    dask = require_dask()
    import dask.array as da

    training = ddf is None
    frame = training_frame(design) if training else ddf
    if training:
        sizes = list(design.chunk_rows)
    else:
        sizes = [int(s) for s in frame.map_partitions(len).compute()]
    shared = dask.delayed((_light(design), tuple(args)), traverse=False)
    seeds = np.random.SeedSequence(random_seed).spawn(len(sizes))

    def one(part, s, seed, window=None):
        if training:
            part = s[0].frozen.typed(part)
        rest = s[1] if window is None else (s[1][0].isel(chain=[window[0]],
                                                         draw=slice(*window[1:])),
                                            *s[1][1:])
        return fn(part, s[0], *rest, np.random.default_rng(seed))

    parts = frame.to_delayed()
    if draw_step is None:
        blocks = [da.from_delayed(dask.delayed(one)(p, shared, seed), shape=(*shape, n),
                                  dtype=float)
                  for p, seed, n in zip(parts, seeds, sizes, strict=True)]
        return da.concatenate(blocks, axis=2) if blocks else da.zeros((*shape, 0))
    if not sizes:
        return da.zeros((*shape, 0))
    windows = [(lo, min(lo + draw_step, shape[1])) for lo in range(0, shape[1], draw_step)]
    grid = [[[da.from_delayed(
        dask.delayed(one)(p, shared,
                          np.random.SeedSequence(seed.entropy,
                                                 spawn_key=(*seed.spawn_key, c, w)),
                          (c, lo, hi)), shape=(1, hi - lo, n), dtype=float)
        for p, seed, n in zip(parts, seeds, sizes, strict=True)]
        for w, (lo, hi) in enumerate(windows)] for c in range(shape[0])]
    return da.block(grid)
