"""The end of :mod:`bayeslmm.residual.series`: the parts of all chunks, added in order,
→ :class:`~bayeslmm.residual.sufficient.ResidualStats` (strata coded in nlme's order,
CompSymm's group sums formed now that every series is complete), with the checks that
need all rows (single-row series only, too many statistics).

Examples
--------
>>> import bayeslmm as blm
>>> from bayeslmm.formula.design import build_design
>>> from bayeslmm.residual.series import chunk_series
>>> df = blm.datasets.load("Orthodont")
>>> parts = [chunk_series(blm.CompSymm(group="Subject"), None,
...                       build_design("distance ~ age", df.iloc[s]))
...          for s in (slice(0, 55), slice(55, None))]
>>> stats, largest = finish_part(parts[0] + parts[1], [0])
>>> stats.values.tolist(), stats.counts.tolist(), largest
([4.0], [27.0], 4)
"""

from __future__ import annotations

import numpy as np

from ..errors import BayesLMMError, DataError
from .stat_terms import finished, group_terms
from .sufficient import MAX_STATS, ResidualStats

__all__ = ["finish_part"]


def finish_part(part, levels: list, keep: np.ndarray | None = None) -> tuple[ResidualStats, int]:
    """The statistics of all rows from the sum of every chunk's part (see the module doc).

    ``levels``: the strata's values in nlme's order (``[0]`` without VarIdent); ``keep``:
    the columns of [X y] kept (fixed effects dropped as linearly dependent).

    Raises
    ------
    DataError
        Every series has a single row (the correlation is not identifiable).
    BayesLMMError
        More statistics than :data:`~bayeslmm.residual.sufficient.MAX_STATS`.

    Examples
    --------
    >>> import bayeslmm as blm
    >>> from bayeslmm.formula.design import build_design
    >>> from bayeslmm.residual.series import chunk_series
    >>> d = build_design("distance ~ age", blm.datasets.load("Orthodont"))
    >>> part = chunk_series(blm.AR1(group="Subject"), "Sex", d)    # VarIdent's strata
    >>> stats, _ = finish_part(part, ["Male", "Female"])
    >>> stats.n_strata, stats.strata_rows.tolist()
    (2, [64.0, 44.0])
    """
    index = {v: i for i, v in enumerate(levels)}
    S = len(levels)
    stats = {}
    for (kind, value, sa, sb), cp in finished(part.stats).items():
        a, b = sorted((index[sa], index[sb]))
        stats[(kind, value, a, b)] = cp
    if part.family == "compsymm":
        sidx = np.array([index[s] for s in part.strata], dtype=np.int64)
        more, counts, largest = group_terms(part.first, part.keys, sidx, part.size)
        stats.update(more)
        single = largest == 1
    else:
        counts, largest = dict(part.counts), int(part.size.max())
        single = not counts
    if single:
        raise DataError(f"Every group of {part.what} has a single row, so its correlation "
                        "parameter is not identifiable; check the group column.")
    if len(stats) > MAX_STATS:
        raise BayesLMMError(
            f"{part.what} needs {len(stats)} statistics here (at most {MAX_STATS}): out of "
            "core its likelihood would need a pass over the rows at every evaluation. Use "
            "fewer VarIdent levels or group sizes, or fit a sample of the rows in memory "
            "(ddf.sample(frac=...).compute()).")
    keys = sorted(stats)
    parts = [stats[k] for k in keys]
    if keep is not None:
        M = np.eye(parts[0].p + 1)[:, keep]
        parts = [cp.transform_xy(M) for cp in parts]
    arr = list(zip(*keys, strict=True))
    vals = sorted(counts)
    rows = np.array([part.strata_rows.get(v, 0) for v in levels], dtype=float)
    stats_out = ResidualStats(
        part.family, np.array(arr[0], dtype=np.int64), np.array(arr[1], dtype=float),
        np.array(arr[2], dtype=np.int64), np.array(arr[3], dtype=np.int64), tuple(parts),
        int(part.n), S, rows, np.array(vals, dtype=float),
        np.array([counts[v] for v in vals], dtype=float))
    return stats_out, largest
