"""Structured residuals at the cost of iid ones: the likelihood from statistics
computed once.

For AR1, CAR1 with few distinct gaps, CompSymm and VarIdent (alone or VarIdent with
one of those correlations), ``Λ⁻¹`` is a short sum ``Σ_k c_k A_k`` of fixed sparse
matrices with coefficients that are closed-form functions of the parameters, and
``log|Λ|`` is closed form too. So ``[Z X y]ᵀ Λ⁻¹ [Z X y] = Σ_k c_k S_k`` with
``S_k = [Z X y]ᵀ A_k [Z X y]`` computed once (exact Gram matrices of derived rows,
:mod:`bayeslmm.residual.stat_terms`), and every
likelihood evaluation afterwards costs what an iid one costs, whatever the number of
rows. With ``w_a = 1/δ_a`` the inverse sd ratio of stratum a (VarIdent; 1 without):

- Markov (AR1, CAR1): with ``r = Phi^d`` for a gap d between consecutive rows,
  ``xᵀΛ⁻¹x = Σ_i w²x_i² + Σ_pairs [r²(w²x_k² + w²x_{k-1}²) − 2r w w' x_k x_{k-1}]/(1 − r²)``:
  one statistic per stratum (kind 0, ``c = w_a²``), and per distinct gap a sum of the
  pairs' squares (kind 1, ``c = w_a² r²/(1 − r²)``) and of their products (kind 2,
  ``c = −w_a w_b r/(1 − r²)``); ``log|Λ| = Σ_pairs log(1 − r²) + 2 Σ_i log δ_i``.
- CompSymm: ``C⁻¹ = [I − ρ/(1 + (n−1)ρ) 11ᵀ]/(1 − ρ)`` for a group of n rows: the
  rows' squares (kind 3, ``c = w_a²/(1 − ρ)``) and, per distinct group size n, the
  groups' sums (kind 4, ``c = −w_a w_b ρ/((1 + (n−1)ρ)(1 − ρ))``);
  ``log|C| = Σ_groups (n−1) log(1 − ρ) + log(1 + (n−1)ρ)``.
- VarIdent alone: the squares of each stratum (kind 0).

Gaps are told apart to 12 significant digits (integer gaps exactly). Structures whose
Λ depends on the rows through a covariate (VarPower, VarExp, VarConstPower, VarFixed,
VarComb; CAR1 with many distinct gaps; the dense correlations CorSymm, CorARMA and the
spatial ones) keep the row-wise path of :mod:`bayeslmm.residual.algebra`:
:func:`sufficient_reason` says why.

The statistics add over chunks of whole correlation groups (:meth:`ResidualStats.__add__`);
on data in chunks whose series are split, :mod:`bayeslmm.residual.series` joins them.

Examples
--------
>>> import numpy as np, bayeslmm as blm
>>> from bayeslmm.residual.algebra import logdet_lambda, whiten_design
>>> from bayeslmm.linalg.crossprod import CrossProducts
>>> m = blm.LMM("distance ~ age + Sex + (1 | Subject)", blm.datasets.load("Orthodont"),
...             residual=blm.AR1(group="Subject"))
>>> stats = residual_stats(m.design, m.residual)
>>> stats.kind, stats.value
(array([0, 1, 2]), array([1., 1., 1.]))
>>> p = {"Phi": 0.3}
>>> row_wise = CrossProducts.from_design(whiten_design(m.residual, m.design, p))
>>> bool(np.allclose(stats.cross_products(p).Arr, row_wise.Arr))
True
>>> bool(np.isclose(stats.logdet(p), logdet_lambda(m.residual, p)))
True
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..linalg.crossprod import CrossProducts
from ..linalg.residual_stats import RowBlock, add_cross_products, combine_cross_products
from .bind import ResidualDesign
from .closed_forms import coefficients, stats_logdet
from .stat_terms import finished, group_terms, pair_terms, strata_grams
from .structures import AR1, CAR1, CompSymm, VarIdent

__all__ = ["ResidualStats", "residual_stats", "statistics", "strata_stats",
           "sufficient_reason", "MAX_GAPS", "MAX_STATS"]

#: CAR1 (and AR1 with a time column) uses statistics when its gaps take at most this
#: many distinct values (integer days, visits); more keep the row-wise path.
MAX_GAPS = 32
#: At most this many statistics (strata pairs × gaps): beyond, the rows are cheaper.
MAX_STATS = 256

_KINDS = {"none": 0, "markov": 0, "compsymm": 3}


def _family(rd: ResidualDesign) -> str:
    c = rd.correlation
    if isinstance(c, (AR1, CAR1)):
        return "markov"
    return "compsymm" if isinstance(c, CompSymm) else "none"


def _gap_keys(lag: np.ndarray) -> np.ndarray:
    """Gaps (positive) rounded to 12 significant digits (integers as they are): equal
    keys share a statistic, in every chunk alike."""
    if not len(lag) or np.all(lag == np.round(lag)):
        return lag
    scale = 10.0 ** (11 - np.floor(np.log10(lag)))
    return np.round(lag * scale) / scale


_MEMO: dict[tuple, tuple] = {}


def _memo(name: str, objects: tuple, make):
    """``make()`` once per live ``objects`` (frozen designs, bound structures)."""
    key = (name, *map(id, objects))
    hit = _MEMO.get(key)
    if hit is not None and all(r() is o for r, o in zip(hit[0], objects, strict=True)):
        return hit[1]
    value = make()
    _MEMO[key] = (tuple(weakref.ref(o) for o in objects), value)
    for o in objects:
        weakref.finalize(o, _MEMO.pop, key, None)
    return value


def _strata(rd: ResidualDesign, levels: list[str] | None = None) -> tuple[np.ndarray, int]:
    """VarIdent's stratum of each sorted row, coded by ``levels`` (default its own)."""
    if not isinstance(rd.variance, VarIdent):
        return np.zeros(rd.n, dtype=np.int64), 1
    if levels is None:
        return np.asarray(rd.by_codes, dtype=np.int64), len(rd.by_levels)
    missing = sorted(set(rd.by_levels) - set(levels))
    if missing:
        raise ValueError(f"Levels {missing} of {rd.variance!r} are not among {levels}.")
    remap = np.array([levels.index(v) for v in rd.by_levels], dtype=np.int64)
    return remap[rd.by_codes], len(levels)


def sufficient_reason(rd: ResidualDesign) -> str | None:
    """Why ``rd``'s likelihood needs its rows at every evaluation (None: it does not).

    Examples
    --------
    >>> import pandas as pd, bayeslmm as blm
    >>> from bayeslmm.residual.bind import bind
    >>> df = pd.DataFrame({"g": list("aabb"), "t": [0.0, 0.5, 0.0, 0.7], "v": [1., 2, 3, 4]})
    >>> sufficient_reason(bind(blm.CAR1(time="t", group="g"), df)) is None
    True
    >>> print(sufficient_reason(bind(blm.VarPower(covariate="v"), df)))
    VarPower(covariate='v') depends on a covariate of each row
    """
    return _memo("reason", (rd,), lambda: _reason(rd))


def _reason(rd: ResidualDesign) -> str | None:
    v, c = rd.variance, rd.correlation
    if rd.varfuncs is not None or (v is not None and not isinstance(v, VarIdent)):
        return f"{v!r} depends on a covariate of each row"
    if c is not None and not isinstance(c, (AR1, CAR1, CompSymm)):
        return f"{c!r} has no closed-form precision"
    _, S = _strata(rd)
    n_stats = S
    if isinstance(c, (AR1, CAR1)):
        gaps = np.unique(_gap_keys(rd.lag[rd.position > 0]))
        if len(gaps) > MAX_GAPS:
            return (f"the gaps of {c!r} take {len(gaps)} distinct values (statistics up to "
                    f"{MAX_GAPS})")
        n_stats += len(gaps) * (S + S * (S + 1) // 2)
    elif isinstance(c, CompSymm):
        n_stats += len(np.unique(np.bincount(rd.group_codes))) * S * (S + 1) // 2
    if n_stats > MAX_STATS:
        return f"it needs {n_stats} statistics (at most {MAX_STATS})"
    return None


@dataclass(frozen=True)
class ResidualStats:
    """The statistics ``S_k`` of a residual structure and what their coefficients and
    ``log|Λ|`` need (see the module doc).

    Attributes
    ----------
    family : {"none", "markov", "compsymm"}
    kind, value, a, b : ndarray (K,)
        Per statistic: its kind (0–4), gap or group size (1 where unused), strata.
    parts : tuple of CrossProducts
        ``S_k`` (of derived rows; ``parts[k].n`` counts them).
    n : int
        Rows.
    n_strata : int
    strata_rows : ndarray (n_strata,)
        Rows per stratum.
    values, counts : ndarray
        Markov: each distinct gap and its number of pairs; CompSymm: each group size and
        its number of groups.
    """

    family: str
    kind: np.ndarray
    value: np.ndarray
    a: np.ndarray
    b: np.ndarray
    parts: tuple[CrossProducts, ...]
    n: int
    n_strata: int
    strata_rows: np.ndarray
    values: np.ndarray
    counts: np.ndarray

    @property
    def keys(self) -> list[tuple]:
        """``(kind, value, a, b)`` of each statistic."""
        return list(zip(self.kind.tolist(), self.value.tolist(), self.a.tolist(),
                        self.b.tolist(), strict=True))

    def __add__(self, other: ResidualStats) -> ResidualStats:
        """The statistics of two chunks of whole correlation groups together.

        >>> import bayeslmm as blm
        >>> m = blm.LMM("distance ~ age + (1 | Subject)", blm.datasets.load("Orthodont"),
        ...             residual=blm.CompSymm(group="Subject"))
        >>> s = residual_stats(m.design, m.residual)
        >>> (s + s).n, (s + s).counts.tolist()
        (216, [54.0])
        """
        if (self.family, self.n_strata) != (other.family, other.n_strata):
            raise ValueError("Statistics of different residual structures cannot be added.")
        parts = dict(zip(self.keys, self.parts, strict=True))
        for key, cp in zip(other.keys, other.parts, strict=True):
            parts[key] = add_cross_products(parts[key], cp) if key in parts else cp
        counts = dict(zip(self.values.tolist(), self.counts.tolist(), strict=True))
        for v, c in zip(other.values.tolist(), other.counts.tolist(), strict=True):
            counts[v] = counts.get(v, 0) + c
        keys = sorted(parts)
        vals = sorted(counts)
        return ResidualStats(self.family, *_key_arrays(keys),
                             tuple(parts[k] for k in keys), self.n + other.n, self.n_strata,
                             self.strata_rows + other.strata_rows, np.array(vals, dtype=float),
                             np.array([counts[v] for v in vals], dtype=float))

    def coefficients(self, params: Mapping[str, Any], log_shift: float = 0.0) -> np.ndarray:
        """``c_k`` at ``params`` (NumPy; :func:`coefficients` for PyTensor)."""
        return coefficients(self.family, self.kind, self.value, self.a, self.b, params,
                            log_shift)

    def logdet(self, params: Mapping[str, Any], log_shift: float = 0.0) -> float:
        """``log|Λ|`` at ``params``."""
        return float(stats_logdet(self.family, self.values, self.counts, self.strata_rows,
                                  params, log_shift))

    def conditioned(self, params: Mapping[str, Any], tol: float = 1e-4) -> bool:
        """Whether the combination keeps its digits at ``params``: the coefficients
        grow like 1/(1 − r²) (Markov) or 1/(1 − ρ), and the statistics' sum cancels by
        as much, so a correlation within ``tol`` of its limit is better whitened row
        by row.

        >>> s = ResidualStats("markov", *[np.zeros(0)] * 4, (), 0, 1, np.ones(1),
        ...                   np.array([1.0, 3.0]), np.ones(2))
        >>> s.conditioned({"Phi": 0.99}), s.conditioned({"Phi": 0.99999})
        (True, False)
        """
        if self.family == "markov":
            r2 = float(params["Phi"]) ** (2.0 * self.values)
            return bool(np.all(1.0 - r2 >= tol))
        if self.family == "compsymm":
            rho = float(params["Rho"])
            return bool(1.0 - rho >= tol and np.all(1.0 + (self.values - 1.0) * rho >= tol))
        return True

    def cross_products(self, params: Mapping[str, Any],
                       log_shift: float = 0.0) -> CrossProducts:
        """``[Z X y]ᵀΛ⁻¹[Z X y]`` at ``params``, blocked as the PLS reads it
        (``log_shift`` m: the variance function divided by e^m)."""
        return combine_cross_products(self.parts, self.coefficients(params, log_shift),
                                      self.n)

    def marginal_stacks(self) -> dict[str, np.ndarray]:
        """Each statistic's :meth:`~bayeslmm.linalg.crossprod.CrossProducts.marginal_arrays`,
        stacked on a first axis of length K."""
        arrays = [cp.marginal_arrays() for cp in self.parts]
        return {k: np.stack([a[k] for a in arrays]) for k in arrays[0]}


def _key_arrays(keys: list[tuple]) -> tuple[np.ndarray, ...]:
    arr = list(zip(*keys, strict=True)) if keys else [[], [], [], []]
    return (np.array(arr[0], dtype=np.int64), np.array(arr[1], dtype=float),
            np.array(arr[2], dtype=np.int64), np.array(arr[3], dtype=np.int64))


def _markov(design, rd: ResidualDesign, strata: np.ndarray, S: int) -> tuple[dict, dict]:
    pos = np.flatnonzero(rd.position > 0)         # sorted positions with a predecessor
    out, counts = pair_terms(design, rd.order[pos], rd.order[pos - 1],
                             _gap_keys(rd.lag[pos]), strata[pos], strata[pos - 1])
    return finished(out), counts


def _compsymm(design, rd: ResidualDesign, strata: np.ndarray, S: int) -> tuple[dict, dict]:
    key = rd.group_codes * S + strata  # sorted rows: one exact sum per (group, stratum)
    code, uniq = pd.factorize(key)
    sums = RowBlock.of(design, rd.order).sums(code, len(uniq))
    out, counts, _ = group_terms(sums, uniq // S, uniq % S, np.bincount(code))
    return out, counts


def residual_stats(design, rd: ResidualDesign,
                   by_levels: list[str] | None = None) -> ResidualStats:
    """The statistics of ``rd`` bound to ``design``'s rows (or to a chunk of whole
    correlation groups: chunks' statistics add up).

    ``by_levels``: VarIdent's levels of all the data, reference first, for a chunk
    bound on its own (``bind(..., fitting=False)``), which may lack some levels.

    Raises
    ------
    ValueError
        A structure without statistics (:func:`sufficient_reason`).
    """
    why = sufficient_reason(rd)
    if why:
        raise ValueError(f"No sufficient statistics: {why}.")
    family = _family(rd)
    strata, S = _strata(rd, by_levels)
    kind0 = _KINDS[family]
    parts: dict[tuple, CrossProducts] = {}
    parts.update(strata_grams(design, rd.order, strata, kind0))  # exact: as chunks add
    counts: dict = {}
    if family == "markov":
        more, counts = _markov(design, rd, strata, S)
        parts.update(more)
    elif family == "compsymm":
        more, counts = _compsymm(design, rd, strata, S)
        parts.update(more)
    keys = sorted(parts)
    vals = sorted(counts)
    return ResidualStats(family, *_key_arrays(keys), tuple(parts[k] for k in keys), rd.n, S,
                         np.bincount(strata, minlength=S).astype(float),
                         np.array(vals, dtype=float),
                         np.array([counts[v] for v in vals], dtype=float))


def statistics(design, rd: ResidualDesign | None) -> ResidualStats | None:
    """:func:`residual_stats` of ``rd`` bound to ``design``, computed once while both
    live; None for iid residuals or a structure bound to its rows.

    >>> import bayeslmm as blm
    >>> m = blm.LMM("distance ~ age + (1 | Subject)", blm.datasets.load("Orthodont"),
    ...             residual=blm.CompSymm(group="Subject"))
    >>> statistics(m.design, m.residual) is statistics(m.design, m.residual)
    True
    """
    if rd is None or sufficient_reason(rd) is not None:
        return None
    return _memo("stats", (design, rd), lambda: residual_stats(design, rd) if design.in_memory
                 else design.series or strata_stats(design.strata))  # out of core: sums


def strata_stats(strata) -> ResidualStats:
    """VarIdent's statistics from each level's cross-products (an out-of-core design's).

    >>> import dask.dataframe as dd
    >>> m = blm.LMM("distance ~ age + (1 | Subject)", dd.from_pandas(blm.datasets.load(
    ...     "Orthodont"), npartitions=2), residual=blm.VarIdent(by="Sex"))
    >>> strata_stats(m.design.strata).strata_rows.tolist()
    [64.0, 44.0]
    """
    n, z = np.array(strata.counts, dtype=float), np.zeros(0)
    return ResidualStats("none", *_key_arrays([(0, 1.0, k, k) for k in range(len(n))]),
                         tuple(strata.parts), int(n.sum()), len(n), n, z, z)
