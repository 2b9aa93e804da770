"""The statistics of :mod:`bayeslmm.residual.sufficient` built from rows as exact Gram
matrices (:class:`~bayeslmm.linalg.residual_stats.RowBlock`): the same numbers, bit for
bit, whether the rows come at once (in memory) or chunk by chunk
(:mod:`bayeslmm.residual.series`), so that both fits follow the same search.

A product of two sets of rows u, v (a Markov pair's rows, CompSymm's sums of two
strata) is ``uᵀv + vᵀu = ½(G₊ − G₋)`` with G± the Gram matrices of u ± v: both exact
sums that chunks add up, kept apart (a :class:`tuple`) until all rows are in, then
:func:`finished`. Statistics are keyed ``(kind, value, stratum a, stratum b)`` by the
strata's values (VarIdent's level values, or 0).

Examples
--------
>>> import bayeslmm as blm
>>> from bayeslmm.formula.design import build_design
>>> d = build_design("distance ~ age + (1 | Subject)", blm.datasets.load("Orthodont"))
>>> later = np.flatnonzero(np.arange(108) % 4 > 0)     # each row after the first of 4
>>> stats, counts = pair_terms(d, later, later - 1, np.ones(81), np.zeros(81, int),
...                            np.zeros(81, int))
>>> sorted(finished(stats)), counts
([(1, 1.0, 0, 0), (2, 1.0, 0, 0)], {1.0: 81})
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..linalg.crossprod import CrossProducts
from ..linalg.residual_stats import RowBlock, polar

__all__ = ["strata_grams", "pair_terms", "group_terms", "finished", "add_terms"]


def _py(x):
    """A stratum's value as a plain Python object (keys print and pickle alike)."""
    return x.item() if isinstance(x, np.generic) else x


def strata_grams(source, rows: np.ndarray, strata: np.ndarray, kind: int) -> dict:
    """The Gram matrix of the rows of each stratum (kind 0 or 3).

    >>> import bayeslmm as blm
    >>> from bayeslmm.formula.design import build_design
    >>> d = build_design("Yield ~ 1 + (1 | Batch)", blm.datasets.load("Dyestuff"))
    >>> list(strata_grams(d, np.arange(30), np.zeros(30, int), 0))
    [(0, 1.0, 0, 0)]
    """
    return {(kind, 1.0, _py(s), _py(s)): RowBlock.of(source, rows[strata == s]).gram()
            for s in pd.unique(strata)}


def pair_terms(source, cur, prev, gap, sa, sb) -> tuple[dict, dict]:
    """Markov statistics of the pairs ``prev → cur`` (row indices of ``source``; their
    gap keys and strata): kind 1, the pairs' rows' squares per gap and stratum; kind 2,
    their products per gap and pair of strata (pieces). Also the pairs per gap.

    >>> import bayeslmm as blm
    >>> from bayeslmm.formula.design import build_design
    >>> d = build_design("Yield ~ 1 + (1 | Batch)", blm.datasets.load("Dyestuff"))
    >>> out, cnt = pair_terms(d, np.array([1, 3]), np.array([0, 2]), np.array([1.0, 2.0]),
    ...                       np.array(["a", "a"]), np.array(["a", "b"]))
    >>> sorted(out)  # doctest: +NORMALIZE_WHITESPACE
    [(1, 1.0, 'a', 'a'), (1, 2.0, 'a', 'a'), (1, 2.0, 'b', 'b'),
     (2, 1.0, 'a', 'a'), (2, 2.0, 'a', 'b')]
    >>> cnt
    {1.0: 1, 2.0: 1}
    """
    out: dict = {}
    cnt: dict = {}
    if not len(cur):
        return out, cnt
    labels, inv = np.unique(np.concatenate([sa, sb]), return_inverse=True)
    labels = [_py(v) for v in labels]
    ia, ib = inv[:len(sa)], inv[len(sa):]
    lo, hi = np.minimum(ia, ib), np.maximum(ia, ib)
    for d in np.unique(gap):
        at = gap == d
        cnt[float(d)] = int(at.sum())
        for a in np.unique(np.concatenate([ia[at], ib[at]])):
            rows = np.concatenate([cur[at & (ia == a)], prev[at & (ib == a)]])
            out[(1, float(d), labels[a], labels[a])] = RowBlock.of(source, rows).gram()
        for a, b in sorted(set(zip(lo[at].tolist(), hi[at].tolist(), strict=True))):
            sel = at & (lo == a) & (hi == b)
            u, v = RowBlock.of(source, cur[sel]), RowBlock.of(source, prev[sel])
            out[(2, float(d), labels[a], labels[b])] = (u.combined(v, 1.0).gram(),
                                                         u.combined(v, -1.0).gram())
    return out, cnt


def group_terms(sums: RowBlock, group: np.ndarray, strata: np.ndarray,
                size: np.ndarray) -> tuple[dict, dict, int]:
    """CompSymm's statistics of the groups' sums (kind 4, finished), from one exact sum
    per (group, stratum) present: ``group`` and ``strata`` their codes (strata 0..S-1),
    ``size`` their rows. Also the groups per size, and the largest group's rows.

    >>> import bayeslmm as blm
    >>> from bayeslmm.formula.design import build_design
    >>> d = build_design("Yield ~ 1 + (1 | Batch)", blm.datasets.load("Dyestuff"))
    >>> sums = RowBlock.of(d, np.arange(30)).sums(d.terms[0].codes, 6)   # the batches'
    >>> out, per, largest = group_terms(sums, np.arange(6), np.zeros(6, int), np.full(6, 5))
    >>> list(out), per, largest
    ([(4, 5.0, 0, 0)], {5.0: 6}, 5)
    """
    g, _ = pd.factorize(group)
    G = int(g.max()) + 1
    total = np.bincount(g, weights=size, minlength=G).astype(np.int64)
    head = np.unique(g, return_index=True)[1]
    out: dict = {}
    sizes, per = np.unique(total, return_counts=True)
    for s in sizes:
        groups = np.flatnonzero(total == s)
        at = np.full(G, -1)
        at[groups] = np.arange(len(groups))
        codes = [t.codes[head[groups]] for t in sums.terms]
        inside = at[g] >= 0
        blocks = {}
        for a in np.unique(strata[inside]):
            sel = np.flatnonzero(inside & (strata == a))
            blocks[int(a)] = RowBlock.of(sums, sel).scatter(at[g[sel]], len(groups), codes)
        for a in blocks:
            for b in (k for k in blocks if k >= a):
                u, v = blocks[a], blocks[b]
                out[(4, float(s), a, b)] = u.gram() if a == b else \
                    polar(u.combined(v, 1.0).gram(), u.combined(v, -1.0).gram())
    return out, dict(zip(sizes.astype(float).tolist(), per.tolist(), strict=True)), \
        int(total.max())


def add_terms(a: dict, b: dict) -> dict:
    """Two chunks' statistics added key by key (pieces piece by piece), exactly.

    >>> import bayeslmm as blm
    >>> from bayeslmm.formula.design import build_design
    >>> d = build_design("Yield ~ 1 + (1 | Batch)", blm.datasets.load("Dyestuff"))
    >>> a = strata_grams(d, np.arange(30), np.zeros(30, int), 0)
    >>> add_terms(a, a)[(0, 1.0, 0, 0)].n
    60
    """
    out = dict(a)
    for k, v in b.items():
        if k not in out:
            out[k] = v
        elif isinstance(v, tuple):
            out[k] = (out[k][0] + v[0], out[k][1] + v[1])
        else:
            out[k] = out[k] + v
    return out


def finished(stats: dict) -> dict[tuple, CrossProducts]:
    """The statistics with each product's pieces combined (``½(G₊ − G₋)``).

    >>> import bayeslmm as blm
    >>> from bayeslmm.formula.design import build_design
    >>> d = build_design("Yield ~ 1 + (1 | Batch)", blm.datasets.load("Dyestuff"))
    >>> g = RowBlock.of(d, np.arange(2)).gram()
    >>> float(finished({"k": (g, g)})["k"].yy)
    0.0
    """
    return {k: polar(*v) if isinstance(v, tuple) else v for k, v in stats.items()}
