"""A design's data in chunks, first pass: what the whole data fix before any chunk's
matrices can be built (the plan), and what one pass over the chunks collects (a
:class:`FrameSummary` per chunk; summaries add up).

A design evaluated chunk by chunk must equal the design of all rows: every chunk needs
the levels of every factor over all rows (in R's order), the moments of stateful
transforms (``center(x)``, ``scale(x)``: mean and sd over all rows), and the rows
dropped for missing values. :class:`ChunkPlan` reads from the formula and the columns'
types which columns those are; :func:`summarise_chunk` collects them from one chunk of
rows (pandas). :mod:`bayeslmm.formula.frozen` then fixes them in a design that
evaluates any chunk. Nothing here knows about dask: any source of DataFrame chunks
works.

Examples
--------
>>> import bayeslmm as blm
>>> df = blm.datasets.load("sleepstudy")
>>> plan = ChunkPlan.of(parse_formula("Reaction ~ scale(Days) + (1 | Subject)"), df.dtypes)
>>> plan.factors, plan.transforms
(('Subject',), ('scale(Days)',))
>>> total = summarise_chunk(plan, df[:90]) + summarise_chunk(plan, df[90:])
>>> total.n_rows, len(total.uniques["Subject"]), total.transforms["scale(Days)"].mean
(180, 18, 4.5)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import FormulaError
from ..linalg.moments import Moments
from .design import NAMESPACE, columns_used
from .spec import ModelSpec, parse_formula
from .transforms import argument, stateful_calls

__all__ = ["ChunkPlan", "FrameSummary", "summarise_chunk", "complete_rows"]

_FACTOR_CALL = re.compile(r"\b[CTS]\(\s*([A-Za-z_]\w*)\s*[,)]")


@dataclass(frozen=True)
class ChunkPlan:
    """Which columns a formula reads and what must be known of them over all rows.

    Attributes
    ----------
    spec : ModelSpec
    used, predictors : tuple of str
        Columns read (response, predictors, residual structure's); predictors alone.
    factors : tuple of str
        Columns whose levels are collected: grouping columns, text and categorical
        columns, numeric columns in ``C()``/``T()``/``S()``.
    categories : dict
        Categorical columns with a known category order → that order.
    transforms : tuple of str
        Stateful transforms (formulae's text), whose argument's moments are collected.
    extra_columns : tuple of str
    ordered : frozenset of str
        The predictors that are ordered categoricals (R's ``contr.poly``).
    """

    spec: ModelSpec
    used: tuple[str, ...]
    predictors: tuple[str, ...]
    factors: tuple[str, ...]
    categories: dict[str, tuple] = field(default_factory=dict)
    transforms: tuple[str, ...] = ()
    extra_columns: tuple[str, ...] = ()
    ordered: frozenset = frozenset()

    @classmethod
    def of(cls, spec: ModelSpec | str, dtypes: pd.Series,
           extra_columns: tuple[str, ...] = ()) -> ChunkPlan:
        """The plan of ``spec`` on columns of types ``dtypes`` (a DataFrame's ``dtypes``)."""
        if isinstance(spec, str):
            spec = parse_formula(spec)
        _, used, predictors = columns_used(spec, list(dtypes.index), extra_columns)
        groups = {c for b in spec.bars for c in b.group_columns}
        exprs = [spec.fixed] + [b.expr for b in spec.bars]
        wrapped = {m for e in exprs for m in _FACTOR_CALL.findall(e)}
        factors, categories = [], {}
        for c in used:
            dt = dtypes[c]
            if isinstance(dt, pd.CategoricalDtype):
                factors.append(c)
                if dt.categories is not None and getattr(dt, "known", True):
                    categories[c] = tuple(dt.categories)
            elif c in groups or c in wrapped or not (pd.api.types.is_numeric_dtype(dt)
                                                     or pd.api.types.is_bool_dtype(dt)):
                if c != spec.response:
                    factors.append(c)
        if stateful_calls((spec.response,)):
            raise FormulaError(f"A stateful transform of the response ({spec.response}) is "
                               "not supported on data in chunks; transform the column first.")
        transforms = tuple(stateful_calls(tuple(exprs)))
        ordered = frozenset(c for c in predictors if isinstance(dtypes[c], pd.CategoricalDtype)
                            and dtypes[c].ordered)
        return cls(spec, tuple(used), tuple(predictors), tuple(factors), categories,
                   transforms, tuple(extra_columns), ordered)


@dataclass(frozen=True)
class FrameSummary:
    """What one chunk tells about the whole data (adds up over chunks).

    Attributes
    ----------
    n_rows, n_complete : int
        Rows read, and rows without a missing value in the columns used.
    na_columns : tuple of str
        Columns with a missing value.
    uniques : dict
        Factor column → its distinct values in the complete rows.
    combos : dict
        Grouping factor of several columns (``"a:b"``) → the distinct combinations.
    transforms : dict
        Stateful call → :class:`~bayeslmm.linalg.moments.Moments` of its argument.
    sample : DataFrame
        The first complete rows (a few), of the first chunk that has some.
    """

    n_rows: int
    n_complete: int
    na_columns: tuple[str, ...]
    uniques: dict[str, np.ndarray]
    combos: dict[str, pd.DataFrame]
    transforms: dict[str, Moments]
    sample: pd.DataFrame

    def __add__(self, other: FrameSummary) -> FrameSummary:
        if not isinstance(other, FrameSummary):
            return NotImplemented
        return FrameSummary(
            self.n_rows + other.n_rows, self.n_complete + other.n_complete,
            tuple(dict.fromkeys(self.na_columns + other.na_columns)),
            {c: pd.unique(np.concatenate([np.asarray(v, dtype=object),
                                          np.asarray(other.uniques[c], dtype=object)]))
             for c, v in self.uniques.items()},
            {g: pd.concat([v, other.combos[g]]).drop_duplicates(ignore_index=True)
             for g, v in self.combos.items()},
            {k: v + other.transforms[k] for k, v in self.transforms.items()},
            self.sample if len(self.sample) else other.sample)


def complete_rows(plan: ChunkPlan, frame: pd.DataFrame) -> np.ndarray:
    """Boolean mask of the rows with no missing value in the columns used."""
    used = list(plan.used)
    return frame[used].notna().all(axis=1).to_numpy() if used else np.ones(len(frame), bool)


def summarise_chunk(plan: ChunkPlan, frame: pd.DataFrame, sample_rows: int = 16) -> FrameSummary:
    """The :class:`FrameSummary` of one chunk of rows."""
    mask = complete_rows(plan, frame)
    na = tuple(c for c in plan.used if frame[c].isna().any()) if not mask.all() else ()
    clean = frame.loc[mask, list(plan.used)]
    uniques = {}
    for c in plan.factors:
        s = clean[c]
        if isinstance(s.dtype, pd.CategoricalDtype):
            s = s.cat.remove_unused_categories()
            uniques[c] = np.asarray(s.cat.categories, dtype=object)
        else:
            uniques[c] = np.asarray(pd.unique(s.to_numpy()), dtype=object)
    combos = {b.group: clean[list(b.group_columns)].astype(object).drop_duplicates(
                  ignore_index=True)
              for b in plan.spec.bars if len(b.group_columns) > 1}
    calls = stateful_calls(tuple([plan.spec.fixed] + [b.expr for b in plan.spec.bars]))
    transforms = {t: Moments.of(argument(calls[t], clean, NAMESPACE)) for t in plan.transforms}
    return FrameSummary(len(frame), int(mask.sum()), na, uniques, combos, transforms,
                        clean.head(sample_rows))
