"""AR1, CAR1 (few distinct gaps) and CompSymm, alone or with ``VarIdent``, on data in
chunks: each chunk's statistics of :mod:`bayeslmm.residual.sufficient` and the ends of
its series, joined in order so that a series split over chunks is exact.

A chunk (a partition of a dask DataFrame, in order) gives a :class:`SeriesPart`: the
statistics of its own rows and of the consecutive pairs inside it, and for each series
(correlation group) what a neighbour needs:

- Markov (AR1, CAR1): the series' first and last rows in the chunk (and their times).
  Adding two parts in data order (``left + right``) adds the statistics of the pair
  (left's last row, right's first row) of every series in both: the one pair that
  neither chunk saw. With a time column, the rows within a chunk may come in any order
  (sorted by time as in memory) and across chunks a series' times must increase
  (checked at each join); without one the order is the data's, as in memory.
- CompSymm: the sums of each series' rows per ``VarIdent`` stratum; the group sums'
  statistics are formed at the end (:meth:`SeriesPart.finish`), when every series is
  complete. The order of the rows does not matter.

The parts add up in a tree that keeps the chunks' order (:func:`bayeslmm.dask.frame.tree_sum`);
each series' ends are kept to the root (a few rows per series: of the size of the random
effects' cross-products when the series are the levels of a grouping factor).

Examples
--------
>>> import bayeslmm as blm
>>> from bayeslmm.formula.design import build_design
>>> from bayeslmm.residual.sufficient import residual_stats
>>> df = blm.datasets.load("Orthodont")
>>> d = build_design("distance ~ age + (1 | Subject)", df)
>>> ar1 = blm.AR1(group="Subject")
>>> from bayeslmm.formula.chunk import ChunkPlan, summarise_chunk
>>> from bayeslmm.formula.frozen import FrozenDesign
>>> plan = ChunkPlan.of("distance ~ age + (1 | Subject)", df.dtypes)
>>> frozen = FrozenDesign.of(plan, summarise_chunk(plan, df))  # the levels of all rows
>>> halves = [frozen.evaluate(df.iloc[:50]), frozen.evaluate(df.iloc[50:])]  # M13 split
>>> total = chunk_series(ar1, None, halves[0]) + chunk_series(ar1, None, halves[1])
>>> stats, largest = total.finish([0])
>>> whole = residual_stats(d, blm.residual.bind.bind(ar1, d))
>>> bool(np.allclose(stats.cross_products({"Phi": 0.4}).Arr,
...                  whole.cross_products({"Phi": 0.4}).Arr)), largest
(True, 4)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import BayesLMMError, DataError, FitError
from ..linalg.residual_stats import RowBlock
from .algebra import crossing_factors
from .bind import bind
from .stat_terms import add_terms, pair_terms, strata_grams
from .structures import AR1, CAR1, CompSymm, Residual
from .sufficient import MAX_GAPS, ResidualStats

__all__ = ["SeriesPart", "chunk_series", "gap_keys", "series_family"]


def series_family(residual: Residual | None) -> str | None:
    """``"markov"`` or ``"compsymm"`` for a structure whose statistics work on data in
    chunks (AR1, CAR1, CompSymm, alone or with VarIdent); else None.

    >>> import bayeslmm as blm
    >>> series_family(blm.residual.Residual(correlation=blm.CAR1(time="t", group="g")))
    'markov'
    >>> series_family(blm.residual.Residual(variance=blm.VarIdent(by="Sex"))) is None
    True
    """
    from .structures import VarIdent

    if residual is None or (residual.variance is not None
                            and not isinstance(residual.variance, VarIdent)):
        return None
    c = residual.correlation
    if isinstance(c, (AR1, CAR1)):
        return "markov"
    return "compsymm" if isinstance(c, CompSymm) else None


def gap_keys(lag: np.ndarray) -> np.ndarray:
    """Gaps as :mod:`~bayeslmm.residual.sufficient` keys them: integers as they are,
    the others rounded to 12 significant digits (element by element, so chunks agree).

    >>> gap_keys(np.array([1.0, 0.1 + 0.2])).tolist()
    [1.0, 0.3]
    """
    lag = np.asarray(lag, dtype=float)
    whole = lag == np.round(lag)
    if whole.all():
        return lag
    with np.errstate(divide="ignore"):
        scale = 10.0 ** (11 - np.floor(np.log10(np.where(whole, 1.0, lag))))
    return np.where(whole, lag, np.round(lag * scale) / scale)


def _too_many_gaps(what: str, n: int) -> BayesLMMError:
    return BayesLMMError(
        f"The gaps between consecutive times of {what} take {n} distinct values (more than "
        f"{MAX_GAPS}): its likelihood then needs a pass over the rows at every evaluation, "
        "and the rows of a dask DataFrame are out of core. Round the times (e.g. to whole "
        "days, or to visits), use AR1 on the visit order, or fit a sample of the rows in "
        "memory (ddf.sample(frac=...).compute()).")


def _merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = out[k] + v if k in out else v
    return out


@dataclass(frozen=True)
class SeriesPart:
    """The statistics of a chunk (or of consecutive chunks) and its series' ends.

    Attributes
    ----------
    family : {"markov", "compsymm"}
    what : str
        The structure (for messages); ``time``: its time column (None: data order).
    stats : dict
        ``(kind, value, stratum, stratum) → CrossProducts`` (strata by their values).
    counts : dict
        Markov: pairs per gap.
    strata_rows : dict
        Rows per stratum value.
    n : int
    keys : ndarray (object)
        Markov: each series' label; CompSymm: each (series, stratum)'s series.
    strata : ndarray (object)
        CompSymm: each sum's stratum. Markov: the strata of the first rows.
    size : ndarray of int
        Rows of each series (CompSymm: of each sum).
    first, last : RowBlock
        Markov: each series' first and last rows (CompSymm: ``first`` holds the sums).
    t_first, t_last, s_last : ndarray
        Markov: their times, and the strata of the last rows.

    Examples
    --------
    >>> import bayeslmm as blm
    >>> from bayeslmm.formula.design import build_design
    >>> d = build_design("distance ~ age", blm.datasets.load("Orthodont"))
    >>> part = chunk_series(blm.AR1(group="Subject"), None, d)
    >>> part.n, len(part.keys), part.counts
    (108, 27, {1.0: 81})
    """

    family: str
    what: str
    time: str | None
    stats: dict
    counts: dict
    strata_rows: dict
    n: int
    keys: np.ndarray
    strata: np.ndarray
    size: np.ndarray
    first: RowBlock | None
    last: RowBlock | None = None
    t_first: np.ndarray | None = None
    t_last: np.ndarray | None = None
    s_last: np.ndarray | None = None

    def __add__(self, other: SeriesPart) -> SeriesPart:
        """``self`` followed by ``other`` (the chunks' order).

        >>> import bayeslmm as blm
        >>> from bayeslmm.formula.design import build_design
        >>> d = build_design("distance ~ age", blm.datasets.load("Orthodont"))
        >>> one = chunk_series(blm.AR1(group="Subject"), None, d)
        >>> (one + one).counts   # the same series twice: joined, 27 more pairs
        {1.0: 189}
        """
        if other.n == 0:
            return self
        if self.n == 0:
            return other
        stats = add_terms(self.stats, other.stats)
        counts = _merge(self.counts, other.counts)
        rows = _merge(self.strata_rows, other.strata_rows)
        n = self.n + other.n
        if self.family == "compsymm":
            return _sums(self, [self, other], stats, counts, rows, n)
        more, cnt, ends = _join(self, other)
        stats = add_terms(stats, more)
        counts = _merge(counts, cnt)
        if len(counts) > MAX_GAPS:
            raise _too_many_gaps(self.what, len(counts))
        return SeriesPart(self.family, self.what, self.time, stats, counts, rows, n, **ends)

    def finish(self, levels: list, keep: np.ndarray | None = None) -> tuple[ResidualStats, int]:
        """The :class:`~bayeslmm.residual.sufficient.ResidualStats` of all rows (strata
        coded by ``levels``, nlme's order; [X y] times ``keep`` where fixed effects were
        dropped) and the largest series' rows
        (:func:`~bayeslmm.residual.series_finish.finish_part`).

        >>> import bayeslmm as blm
        >>> from bayeslmm.formula.design import build_design
        >>> d = build_design("distance ~ age", blm.datasets.load("Orthodont"))
        >>> chunk_series(blm.CompSymm(group="Subject"), None, d).finish([0])[1]
        4
        """
        from .series_finish import finish_part

        return finish_part(self, levels, keep)


def _sums(like: SeriesPart, parts: list[SeriesPart], stats, counts, rows, n) -> SeriesPart:
    """CompSymm: the (series, stratum) sums of ``parts`` added key by key."""
    keys = np.concatenate([p.keys for p in parts])
    strata = np.concatenate([p.strata for p in parts])
    size = np.concatenate([p.size for p in parts])
    block = RowBlock.concat([p.first for p in parts])
    code, _ = pd.factorize(pd.MultiIndex.from_arrays([keys, strata]))
    first = np.unique(code, return_index=True)[1]
    _check_nested(like.what, keys, block, np.arange(len(keys)))
    return SeriesPart(like.family, like.what, like.time, stats, counts, rows, n,
                      keys[first], strata[first], np.bincount(code, weights=size).astype(
                          np.int64), block.sums(code, len(first), first))


def _check_nested(what: str, keys: np.ndarray, block: RowBlock, rows: np.ndarray) -> None:
    """A series within one level of every grouping factor (nlme's requirement)."""
    g, _ = pd.factorize(keys)
    head = np.unique(g, return_index=True)[1]
    bad = [t.group for t in block.terms if np.any(t.codes[rows] != t.codes[rows][head[g]])]
    if bad:
        raise _crossing(what, bad)


def _crossing(what: str, bad: list) -> FitError:
    return FitError(f"The correlation groups of {what} are not nested within the levels "
                    f"of grouping factor(s) {bad}; use a correlation group inside each "
                    "random-effect level (as nlme requires).")


def _join(left: SeriesPart, right: SeriesPart) -> tuple[dict, dict, dict]:
    """Markov: the pairs across the boundary, and the joined series' ends."""
    where = pd.Index(right.keys).get_indexer(left.keys)
    both = where >= 0
    li, rj = np.flatnonzero(both), where[both]
    if len(li) and left.time is not None:
        t0, t1 = left.t_last[li], right.t_first[rj]
        bad = t1 <= t0
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            dup = t1[k] == t0[k]
            raise DataError(
                f"Column {left.time!r} of {left.what}: series {left.keys[li[k]]!r} has "
                + (f"time {t0[k]:g} twice (in two partitions); each time may appear once "
                   "per group." if dup else
                   f"time {t1[k]:g} in a partition after time {t0[k]:g} in an earlier one. "
                   "Out of core, the rows of each series must come in time order over the "
                   "partitions (within a partition any order): sort the data by time (e.g. "
                   f"ddf.sort_values({left.time!r}), or sort the pandas data by group and "
                   "time before dd.from_pandas(..., sort=False))."))
    more: dict = {}
    cnt: dict = {}
    if len(li):
        lag = right.t_first[rj] - left.t_last[li] if left.time is not None \
            else np.ones(len(li))
        block = RowBlock.concat([RowBlock.of(right.first, rj), RowBlock.of(left.last, li)])
        k = len(li)
        _check_nested(left.what, np.concatenate([left.keys[li]] * 2), block, np.arange(2 * k))
        more, cnt = pair_terms(block, np.arange(k), np.arange(k, 2 * k), gap_keys(lag),
                               right.strata[rj], left.s_last[li])
    nl = len(left.keys)
    only = np.flatnonzero(~np.isin(np.arange(len(right.keys)), rj))
    take_first = np.concatenate([np.arange(nl), nl + only])
    take_last = np.concatenate([np.where(both, nl + where, np.arange(nl)), nl + only])
    size = np.concatenate([left.size, right.size[only]])
    size[li] += right.size[rj]

    def cat(a, b, idx):
        return np.concatenate([a, b])[idx]

    firsts = RowBlock.of(RowBlock.concat([left.first, right.first]), take_first)
    lasts = RowBlock.of(RowBlock.concat([left.last, right.last]), take_last)
    ends = {"keys": cat(left.keys, right.keys, take_first),
            "strata": cat(left.strata, right.strata, take_first), "size": size,
            "first": firsts, "last": lasts,
            "t_first": cat(left.t_first, right.t_first, take_first),
            "t_last": cat(left.t_last, right.t_last, take_last),
            "s_last": cat(left.s_last, right.s_last, take_last)}
    return more, cnt, ends


def chunk_series(residual, by: str | None, design) -> SeriesPart:
    """The :class:`SeriesPart` of one chunk's design (rows in memory): ``residual`` a
    correlation (or a :class:`~bayeslmm.residual.structures.Residual` with VarIdent),
    ``by`` VarIdent's column (None without).

    Raises
    ------
    DataError
        As :func:`~bayeslmm.residual.bind.bind` for the chunk's rows (duplicated or
        non-integer times).
    BayesLMMError
        Too many distinct gaps (CAR1 with continuous times).

    Examples
    --------
    >>> import bayeslmm as blm
    >>> from bayeslmm.formula.design import build_design
    >>> d = build_design("distance ~ age", blm.datasets.load("Orthodont"))
    >>> part = chunk_series(blm.CAR1(time="age", group="Subject"), None, d)
    >>> part.counts, part.t_first[:2].tolist(), part.t_last[:2].tolist()
    ({2.0: 81}, [8.0, 8.0], [14.0, 14.0])
    """
    corr = residual.correlation if isinstance(residual, Residual) else residual
    family = "compsymm" if isinstance(corr, CompSymm) else "markov"
    what = repr(corr)
    time = None if family == "compsymm" else corr.time
    n = len(design.y)
    none = np.zeros(0, dtype=object)
    if n == 0:
        return SeriesPart(family, what, time, {}, {}, {}, 0, none, none,
                          np.zeros(0, np.int64), None)
    rd = bind(corr, design, fitting=False)
    if crossing_factors(rd, design):
        raise _crossing(what, crossing_factors(rd, design))
    order, pos = rd.order, rd.position
    sk = (design.data[by].to_numpy(dtype=object)[order] if by is not None
          else np.zeros(n, dtype=object))
    kind0 = 3 if family == "compsymm" else 0
    stats = strata_grams(design, order, sk, kind0)
    rows = {k[2]: int(cp.n) for k, cp in stats.items()}
    labels = np.array(rd.group_levels, dtype=object)
    if family == "compsymm":
        keys = labels[rd.group_codes]
        part = SeriesPart(family, what, None, {}, {}, {}, 0, keys, sk, np.ones(n, np.int64),
                          RowBlock.of(design, order))
        return _sums(part, [part], stats, {}, rows, n)
    later = np.flatnonzero(pos > 0)
    gap = gap_keys(rd.lag[later])
    if len(np.unique(gap)) > MAX_GAPS:
        raise _too_many_gaps(what, len(np.unique(gap)))
    more, cnt = pair_terms(design, order[later], order[later - 1], gap, sk[later],
                           sk[later - 1])
    firsts = np.flatnonzero(pos == 0)
    lasts = np.r_[firsts[1:] - 1, n - 1]
    return SeriesPart(family, what, time, {**stats, **more}, cnt, rows, n,
                      labels[rd.group_codes[firsts]], sk[firsts], lasts - firsts + 1,
                      RowBlock.of(design, order[firsts]), RowBlock.of(design, order[lasts]),
                      rd.time[firsts], rd.time[lasts], sk[lasts])

