"""An out-of-core design: what a model needs of rows that are not in memory.

The exact fits and the marginal model need only the cross-products
[Z X y]ᵀ[Z X y] (:class:`~bayeslmm.linalg.crossprod.CrossProducts`, which add up over
chunks of rows), the number of rows, the moments of the columns (for the data-scaled
priors) and the design's names and levels. :class:`SummaryDesign` holds exactly those,
and answers like a :class:`~bayeslmm.formula.design.Design` where it can
(``nobs``, ``terms``, ``fixef_names``, ``moments()``, ``evaluators`` for new data); its
rows (``y``, ``X``, ``data``, ``Z`` and ``codes`` of a term) raise a
:class:`~bayeslmm.errors.DataError` that says what to do instead. Built by
:mod:`bayeslmm.dask` from a dask DataFrame; ``source`` keeps that lazy frame (a graph,
no data) so that predictions on the training rows stay lazy.

Examples
--------
>>> import bayeslmm as blm
>>> from bayeslmm.formula.chunk import ChunkPlan, summarise_chunk
>>> from bayeslmm.formula.frozen import FrozenDesign
>>> from bayeslmm.linalg.crossprod import CrossProducts
>>> df = blm.datasets.load("sleepstudy")
>>> plan = ChunkPlan.of("Reaction ~ Days + (Days | Subject)", df.dtypes)
>>> frozen = FrozenDesign.of(plan, summarise_chunk(plan, df))
>>> parts = [frozen.evaluate(df[:100]), frozen.evaluate(df[100:])]
>>> d = SummaryDesign.of(frozen, CrossProducts.total(CrossProducts.from_design(p)
...                                                  for p in parts),
...                      combine_moments([p.moments() for p in parts]), chunk_rows=(100, 80))
>>> d.nobs, d.ngroups, d.in_memory
(180, {'Subject': 18}, False)
>>> d.X
Traceback (most recent call last):
...
bayeslmm.errors.DataError: The rows of this out-of-core design are not in memory (X): ...
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError, user_stacklevel
from ..linalg.crossprod import CrossProducts
from .design import check_terms
from .frozen import FrozenDesign
from .spec import ModelSpec

__all__ = ["SummaryDesign", "LevelTerm", "combine_moments", "dependent_columns",
           "OUT_OF_CORE"]

#: what the refusals of row-level operations say
OUT_OF_CORE = ("The rows of this out-of-core design are not in memory ({what}): estimates, "
               "random effects and predictions work from its cross-products; for values per "
               "row pass the dask DataFrame to predict(), or fit a sample in memory.")


def _rows(what: str):
    raise DataError(OUT_OF_CORE.format(what=what))


class LevelTerm:
    """A grouping factor's levels and columns, without its rows (see :class:`ReTerm`).

    Examples
    --------
    >>> t = LevelTerm("g", ["a", "b"], ["Intercept"], ((0,),))
    >>> t.q, t.n_levels
    (1, 2)
    """

    __slots__ = ("group", "levels", "term_names", "blocks", "rms")

    def __init__(self, group: str, levels: list[str], term_names: list[str],
                 blocks: tuple[tuple[int, ...], ...], rms=None):
        self.group, self.levels = group, list(levels)
        self.term_names, self.blocks = list(term_names), tuple(blocks)
        #: root mean square of each Z column (from the moments)
        self.rms = np.ones(len(self.term_names)) if rms is None else np.asarray(rms)

    @property
    def q(self) -> int:
        """Number of random coefficients per level."""
        return len(self.term_names)

    @property
    def n_levels(self) -> int:
        """Number of levels of the grouping factor."""
        return len(self.levels)

    @property
    def codes(self) -> np.ndarray:
        """Not in memory: raises a DataError."""
        return _rows(f"level codes of {self.group!r}")

    @property
    def Z(self) -> np.ndarray:
        """Not in memory: raises a DataError."""
        return _rows(f"Z of {self.group!r}")


def combine_moments(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Add up chunks' :meth:`~bayeslmm.formula.design.Design.moments`.

    >>> from bayeslmm.linalg.moments import Moments
    >>> m = {"y": Moments.of(np.ones(2)), "X": [], "Z": {}}
    >>> combine_moments([m, m])["y"].n
    4
    """
    out = parts[0]
    for p in parts[1:]:
        out = {"y": out["y"] + p["y"],
               "X": [a + b for a, b in zip(out["X"], p["X"], strict=True)],
               "Z": {g: [a + b for a, b in zip(v, p["Z"][g], strict=True)]
                     for g, v in out["Z"].items()}}
    return out


def dependent_columns(xtx: np.ndarray, tol: float = 1e-7) -> list[int]:
    """Columns of X linearly dependent on earlier ones, from XᵀX alone (greedy, as lme4
    keeps the earliest): column j goes when its residual norm after projecting on the
    columns kept is below ``tol`` times its norm.

    >>> X = np.column_stack([np.ones(4), [0, 1, 0, 1.0], [1, 0, 1, 0.0]])
    >>> dependent_columns(X.T @ X)
    [2]
    """
    keep: list[int] = []
    out = []
    for j in range(xtx.shape[0]):
        d = xtx[j, j]
        if keep:
            A, b = xtx[np.ix_(keep, keep)], xtx[keep, j]
            d = d - b @ np.linalg.solve(A, b)
        if xtx[j, j] <= 0 or d <= tol**2 * xtx[j, j]:
            out.append(j)
        else:
            keep.append(j)
    return out


def _check_response(name: str, y) -> None:
    """A constant response is an error, a two-valued one a warning (as in memory; a
    response constant within every level is not checked out of core)."""
    if y.values is not None and len(y.values) == 1:
        raise DataError(f"The response {name!r} is constant (every value is "
                        f"{y.values[0]!r}): there is nothing to model.")
    if y.values is not None:
        warnings.warn(f"The response {name!r} takes two values only {y.values}: a Gaussian "
                      "mixed model treats them as numbers (a linear probability model). For "
                      "a binary outcome a logistic mixed model is the usual choice.",
                      UserWarning, stacklevel=user_stacklevel())


@dataclass(frozen=True, eq=False)
class SummaryDesign:
    """A design known by its cross-products (see the module doc).

    Attributes
    ----------
    spec : ModelSpec
    fixef_names : list of str
    terms : list of LevelTerm
    cross_products : CrossProducts
        [Z X y]ᵀ[Z X y] of all rows (X without the columns dropped as dependent).
    n : int
    frozen : FrozenDesign
        Evaluates any chunk of rows (predictions on new data in chunks).
    moments_ : dict
        As :meth:`moments` returns.
    dropped_fixef : list of str
    n_dropped_rows : int
    chunk_rows : tuple of int
        Rows used of each chunk of ``source``.
    source : object
        The data in chunks (a dask DataFrame), or None.
    strata : StrataProducts or None
        The cross-products of each level of a ``VarIdent`` factor (nlme's order).
    series : object or None
        A correlation structure's statistics, summed over the chunks
        (:mod:`bayeslmm.residual.series`; the residual layer finishes them).
    """

    spec: ModelSpec
    fixef_names: list[str]
    terms: list[LevelTerm]
    cross_products: CrossProducts = field(repr=False)
    n: int
    frozen: FrozenDesign = field(repr=False)
    moments_: dict[str, Any] = field(repr=False)
    dropped_fixef: list[str] = field(default_factory=list)
    n_dropped_rows: int = 0
    chunk_rows: tuple[int, ...] = ()
    source: Any = field(default=None, repr=False)
    strata: Any = field(default=None, repr=False)
    series: Any = field(default=None, repr=False)
    #: no prior weights out of core (lme4's ``weights=``: the fits read ``weights``)
    weights: None = None
    weights_column: None = None

    @classmethod
    def of(cls, frozen: FrozenDesign, cp: CrossProducts, moments: dict[str, Any], *,
           chunk_rows: tuple[int, ...] = (), source: Any = None,
           na_action: str = "drop", strata: Any = None, series: Any = None) -> SummaryDesign:
        """The design of all rows from their summed cross-products and moments: drops
        fixed-effect columns that are linearly dependent (with lme4's warning), checks
        the random effects are identifiable and reports rows dropped for missing values."""
        n_drop = frozen.n_rows - frozen.n_complete
        if n_drop:
            if na_action == "raise":
                raise DataError(f"{n_drop} row(s) have missing values in column(s) "
                                f"{list(frozen.na_columns)}. Drop or impute them, or pass "
                                "na_action='drop'.")
            warnings.warn(f"Dropped {n_drop} of {frozen.n_rows} rows with missing values in "
                          f"column(s) {list(frozen.na_columns)}.", UserWarning,
                          stacklevel=user_stacklevel())
        _check_response(frozen.plan.spec.response, moments["y"])
        names = frozen.fixef_names
        p = len(names)
        drop = dependent_columns(cp.xy_xy[:p, :p]) if p else []
        if drop:
            dropped = [names[j] for j in drop]
            warnings.warn(f"Fixed-effect model matrix is rank deficient, so dropping "
                          f"{len(drop)} column(s): {dropped}.", UserWarning,
                          stacklevel=user_stacklevel())
            keep = [j for j in range(p + 1) if j not in drop]
            cp = cp.transform_xy(np.eye(p + 1)[:, keep])
            strata = strata.transform_xy(np.eye(p + 1)[:, keep]) if strata else None
            moments = {**moments, "X": [moments["X"][j] for j in keep[:-1]]}
        tmpl = frozen.template
        terms = [LevelTerm(t.group, frozen.groups[t.group].labels, t.term_names, t.blocks,
                           [m.rms for m in moments["Z"][t.group]]) for t in tmpl.terms]
        check_terms(terms, cp.n)
        return cls(frozen.plan.spec, [n for j, n in enumerate(names) if j not in drop], terms,
                   cp, cp.n, frozen, moments, [names[j] for j in drop], n_drop,
                   tuple(int(r) for r in chunk_rows), source, strata, series)

    # -- what a Design answers --------------------------------------------------------
    @property
    def in_memory(self) -> bool:
        """False: only the cross-products of the rows are here."""
        return False

    @property
    def nobs(self) -> int:
        """Number of observations used."""
        return self.n

    @property
    def ngroups(self) -> dict[str, int]:
        """Number of levels per grouping factor."""
        return {t.group: t.n_levels for t in self.terms}

    @property
    def ordered(self) -> frozenset:
        """The predictors that are ordered factors (R's ``contr.poly``)."""
        return self.frozen.plan.ordered

    @property
    def response(self) -> str:
        """The response's expression."""
        return self.spec.response

    @property
    def predictors(self) -> list[str]:
        """The data columns that predictions need."""
        return list(self.frozen.plan.predictors)

    @property
    def evaluators(self) -> dict[str, Any]:
        """formulae's matrices fitted to all rows (levels, transforms' state)."""
        return self.frozen.template.evaluators

    @property
    def column_dtypes(self) -> pd.Series:
        """The types of the columns used (factors with every level)."""
        return self.frozen.template.data.dtypes

    def moments(self) -> dict[str, Any]:
        """Moments of y and of the columns of X and Z, added up over the chunks."""
        return self.moments_

    def term(self, group: str) -> LevelTerm:
        """The term of a grouping factor, by name."""
        for t in self.terms:
            if t.group == group:
                return t
        raise KeyError(f"No grouping factor {group!r}; have {[t.group for t in self.terms]}.")

    # -- the rows: not here -----------------------------------------------------------
    @property
    def y(self) -> np.ndarray:
        """Not in memory: raises a DataError."""
        return _rows("y")

    @property
    def X(self) -> np.ndarray:
        """Not in memory: raises a DataError."""
        return _rows("X")

    @property
    def data(self) -> pd.DataFrame:
        """Not in memory: raises a DataError."""
        return _rows("data")

    @property
    def rows(self) -> pd.Index:
        """Not in memory: raises a DataError."""
        return _rows("rows")
