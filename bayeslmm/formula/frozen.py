"""A design fixed over all rows, evaluated chunk by chunk.

:class:`FrozenDesign` fixes what the first pass over the data found
(:mod:`bayeslmm.formula.chunk`): the levels of every factor in R's order (a
categorical's own order, else sorted), the combinations of interacted grouping
columns, the moments of stateful transforms. formulae's matrices are fitted once on a
small template frame holding every level, and the transforms' state is set to the
moments over all rows; :meth:`FrozenDesign.evaluate` then gives any chunk its
:class:`~bayeslmm.formula.design.Design` with the columns and level codes of the whole
data's design, so that the chunks' cross-products add up to the whole data's.

Examples
--------
>>> import bayeslmm as blm
>>> from bayeslmm.formula.chunk import ChunkPlan, summarise_chunk
>>> df = blm.datasets.load("sleepstudy")
>>> plan = ChunkPlan.of("Reaction ~ scale(Days) + (1 | Subject)", df.dtypes)
>>> frozen = FrozenDesign.of(plan, summarise_chunk(plan, df))
>>> part = frozen.evaluate(df[170:])          # the last subject's ten rows
>>> part.X[:2].round(4).tolist(), part.terms[0].n_levels, part.terms[0].codes[:2].tolist()
([[1.0, -1.5667], [1.0, -1.2185]], 18, [17, 17])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError
from ..linalg.moments import Moments
from . import contrasts
from .checks import check_finite
from .chunk import ChunkPlan, FrameSummary, complete_rows
from .design import Design, ReTerm, formula_matrices, merge_bars
from .transforms import set_transforms

__all__ = ["FrozenDesign", "GroupLevels"]


def _sorted(values) -> list:
    try:
        return sorted(values)
    except TypeError:  # mixed types: by their text, as a last resort
        return sorted(values, key=str)


@dataclass(frozen=True)
class GroupLevels:
    """The levels of one grouping factor over all rows.

    ``labels`` are R's level labels; for an interaction of columns, ``keys`` are the
    sorted mixed-radix keys of the combinations present (the order of the labels).
    """

    columns: tuple[str, ...]
    labels: list[str]
    keys: np.ndarray | None = None


@dataclass(frozen=True)
class FrozenDesign:
    """A design's state over all rows, and the evaluation of a chunk (module doc).

    Attributes
    ----------
    plan : ChunkPlan
    levels : dict
        Factor column → its values in R's level order.
    groups : dict
        Grouping factor → :class:`GroupLevels`.
    transforms : dict
        Stateful call → :class:`~bayeslmm.linalg.moments.Moments` of its argument.
    template : Design
        formulae's fitted matrices (``evaluators``), the fixed-effect names (none
        dropped yet) and each factor's term names and blocks. Its rows are a template
        holding every level: never numbers of the model.
    n_rows, n_complete : int
    na_columns : tuple of str
    """

    plan: ChunkPlan
    levels: dict[str, list]
    groups: dict[str, GroupLevels]
    transforms: dict[str, Moments]
    template: Design = field(repr=False)
    n_rows: int = 0
    n_complete: int = 0
    na_columns: tuple[str, ...] = ()
    #: per factor column, an index of its levels (its hash table built once a process)
    lookup: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def of(cls, plan: ChunkPlan, summary: FrameSummary) -> FrozenDesign:
        """Fix the levels and transforms that ``summary`` (of all rows) found."""
        if summary.n_complete == 0:
            raise DataError("No rows left after dropping rows with missing values."
                            if summary.n_rows else "The data have no rows.")
        levels = {}
        for c, vals in summary.uniques.items():
            seen = set(vals)
            levels[c] = ([v for v in plan.categories[c] if v in seen] if c in plan.categories
                         else _sorted(vals))
        groups = {}
        for bar in plan.spec.bars:
            cols = bar.group_columns
            if len(cols) == 1:
                groups[bar.group] = GroupLevels(cols, [str(v) for v in levels[cols[0]]])
                continue
            combos = summary.combos[bar.group]
            keys = _keys([_codes(combos[c], levels[c]) for c in cols],
                         [len(levels[c]) for c in cols])
            keys = np.unique(keys)
            labels = []
            for k in keys:
                parts = []
                for c in reversed(cols):
                    k, r = divmod(int(k), len(levels[c]))
                    parts.append(str(levels[c][r]))
                labels.append(":".join(reversed(parts)))
            groups[bar.group] = GroupLevels(cols, labels, keys)
        template = _template(plan, levels, summary)
        set_transforms(template.evaluators, summary.transforms)
        return cls(plan, levels, groups, dict(summary.transforms), template, summary.n_rows,
                   summary.n_complete, summary.na_columns)

    @property
    def fixef_names(self) -> list[str]:
        """The fixed-effect columns (before any dropped as linearly dependent)."""
        return list(self.template.fixef_names)

    def typed(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The complete rows of ``frame`` (columns used), factors typed with every level."""
        clean = frame.loc[complete_rows(self.plan, frame), list(self.plan.used)]
        for c in self.plan.used:
            s = clean[c]
            if c in self.levels and not pd.api.types.is_numeric_dtype(s.dtype):
                cat = pd.Categorical(s, categories=self.levels[c], ordered=True)
                if len(cat) and (np.asarray(cat.codes) < 0).any():
                    bad = pd.unique(s[np.asarray(cat.codes) < 0].astype(object))[:5]
                    raise DataError(f"Column {c!r} has level(s) {list(bad)} that the first "
                                    "pass over the data did not see: the data changed "
                                    "between passes.")
                clean[c] = cat
            elif pd.api.types.is_bool_dtype(s.dtype):
                clean[c] = s.astype(float)
        return clean

    def evaluate(self, frame: pd.DataFrame) -> Design:
        """The design of one chunk of rows (its missing-value rows dropped)."""
        clean = self.typed(frame)
        t = self.template
        n = len(clean)
        if n == 0:
            y, X = np.zeros(0), np.zeros((0, len(t.fixef_names)))
        else:
            y = _response(self.plan, clean)
            ev = t.evaluators["fixed"]
            X = (np.asarray(ev.evaluate_new_data(clean).design_matrix, dtype=float)
                 if ev is not None else np.zeros((n, 0)))
            check_finite(X, t.fixef_names, clean.index, "fixed effects")
        terms = []
        for tt in t.terms:
            Z = (np.column_stack([np.asarray(ev.evaluate_new_data(clean).design_matrix,
                                             dtype=float) for ev in t.evaluators[tt.group]])
                 if n else np.zeros((0, tt.q)))
            check_finite(Z, tt.term_names, clean.index, f"random-effect term of {tt.group!r}")
            terms.append(ReTerm(tt.group, self.codes(tt.group, clean),
                                self.groups[tt.group].labels, Z, tt.term_names, tt.blocks))
        return Design(spec=self.plan.spec, y=y, X=X, fixef_names=list(t.fixef_names),
                      terms=terms, data=clean, rows=clean.index, response=t.response,
                      predictors=list(self.plan.predictors), evaluators=t.evaluators,
                      ordered=self.plan.ordered)

    def _codes(self, s: pd.Series, column: str) -> np.ndarray:
        if column not in self.lookup:
            self.lookup[column] = pd.Index(self.levels[column])
        return _codes(s, self.levels[column], self.lookup[column])

    def codes(self, group: str, clean: pd.DataFrame) -> np.ndarray:
        """Level codes of a grouping factor on typed complete rows."""
        g = self.groups[group]
        parts = [self._codes(clean[c], c) for c in g.columns]
        if g.keys is None:
            return parts[0]
        keys = _keys(parts, [len(self.levels[c]) for c in g.columns])
        return np.searchsorted(g.keys, keys).astype(np.int64)


def _codes(s: pd.Series, levels: list, index: pd.Index | None = None) -> np.ndarray:
    """Codes of values in ``levels`` (all present: the first pass saw them)."""
    if isinstance(s.dtype, pd.CategoricalDtype) and list(s.cat.categories) == list(levels):
        return np.asarray(s.cat.codes, dtype=np.int64)
    if index is not None and not isinstance(s.dtype, pd.CategoricalDtype):
        return np.asarray(index.get_indexer(s.to_numpy()), dtype=np.int64)
    return np.asarray(pd.Categorical(s, categories=levels).codes, dtype=np.int64)


def _keys(codes: list[np.ndarray], sizes: list[int]) -> np.ndarray:
    key = np.zeros(len(codes[0]), dtype=np.int64)
    for c, m in zip(codes, sizes, strict=True):
        key = key * m + c
    return key


def _response(plan: ChunkPlan, clean: pd.DataFrame) -> np.ndarray:
    r = plan.spec.response
    if r in clean.columns:
        y = clean[r].to_numpy(dtype=float)
    else:
        dm = formula_matrices(f"{r} ~ 1", clean, "the response")
        y = np.asarray(dm.response.design_matrix, dtype=float).reshape(-1)
    if not np.all(np.isfinite(y)):
        raise DataError(f"The response {r!r} has non-finite values.")
    return y


def _template(plan: ChunkPlan, levels: dict[str, list], summary: FrameSummary) -> Design:
    """formulae's matrices fitted on a frame holding every level (module doc)."""
    sample = summary.sample
    size = max([len(sample)] + [len(v) for v in levels.values()])
    rows = np.arange(size)
    frame: dict[str, Any] = {}
    for c in plan.used:
        if c in levels and not pd.api.types.is_numeric_dtype(sample[c].dtype):
            vals = levels[c]
            frame[c] = pd.Categorical([vals[i % len(vals)] for i in rows], categories=vals,
                                      ordered=True)
        elif c in levels:
            frame[c] = np.asarray(levels[c])[rows % len(levels[c])]
        else:
            col = sample[c].to_numpy()
            frame[c] = col[rows % len(col)].astype(float) if col.dtype == bool \
                else col[rows % len(col)]
    data = pd.DataFrame(frame)
    spec = plan.spec
    dm = formula_matrices(f"{spec.response} ~ {spec.fixed}", data, "formula", plan.ordered)
    names = [] if dm.common is None else [contrasts.r_name(n)
                                           for n in dm.common.as_dataframe().columns]
    evaluators = {"fixed": dm.common}
    terms = merge_bars(spec, data, evaluators, plan.ordered)
    return Design(spec=spec, y=np.zeros(size), X=np.zeros((size, len(names))),
                  fixef_names=names, terms=terms, data=data, rows=data.index,
                  response=spec.response, predictors=list(plan.predictors),
                  evaluators=evaluators, ordered=plan.ordered)
