"""New data → the matrices of a fitted design: X, and per grouping factor the Z block
and level codes (``-1`` for a level not seen in training).

Examples
--------
>>> import bayeslmm as blm
>>> from bayeslmm.formula.design import build_design
>>> d = build_design("Reaction ~ Days + (Days | Subject)", blm.datasets.load("sleepstudy"))
>>> new = pd.DataFrame({"Days": [0, 9], "Subject": ["308", "999"]})
>>> rows = evaluate_new_data(d, new)
>>> rows.X.tolist(), rows.terms[0].codes.tolist(), rows.terms[0].new_levels
([[1.0, 0.0], [1.0, 9.0]], [0, -1], ['999'])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import DataError
from .contrasts import r_name
from .design import Design, level_label

__all__ = ["NewTerm", "NewRows", "evaluate_new_data"]


@dataclass(frozen=True)
class NewTerm:
    """One grouping factor on new rows.

    ``codes`` index the training levels (-1 for an unseen level); ``new_codes``
    index ``new_levels`` for those rows (-1 elsewhere).
    """

    group: str
    codes: np.ndarray
    Z: np.ndarray
    new_levels: list[str]
    new_codes: np.ndarray


@dataclass(frozen=True)
class NewRows:
    """The design matrices of new rows, in the order of ``index``."""

    X: np.ndarray
    terms: list[NewTerm]
    index: pd.Index


def _prepare(design: Design, new: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Give new data the training columns' types; name missing columns and unseen levels."""
    missing = [c for c in columns if c not in new.columns]
    if missing:
        raise DataError(f"New data lack column(s) {missing} used by the model "
                        f"{design.spec.formula!r}.")
    out = new[columns].copy()
    nas = [c for c in columns if out[c].isna().any()]
    if nas:
        raise DataError(f"New data have missing values in column(s) {nas}; "
                        "predictions need complete rows: drop or impute them first.")
    dtypes = design.column_dtypes
    for c in columns:
        train = dtypes[c]
        if isinstance(train, pd.CategoricalDtype):
            # unseen levels stay as labels: grouping factors map them to -1, and
            # formulae names them for a fixed-effect factor
            lookup = {level_label(k): k for k in train.categories}
            vals = [lookup.get(level_label(v), level_label(v)) for v in out[c]]
            cats = list(train.categories) + sorted(
                {v for v in vals if v not in lookup.values()})
            out[c] = pd.Categorical(vals, categories=cats, ordered=True)
    return out


def evaluate_new_data(design: Design, new_data: pd.DataFrame) -> NewRows:
    """Evaluate the fixed and random-effect matrices of ``design`` on ``new_data``.

    Levels of a grouping factor not seen in training get code -1; an unseen level of
    a fixed-effect factor is an error naming it.
    """
    if not isinstance(new_data, pd.DataFrame):
        raise DataError(f"new_data must be a pandas DataFrame, got {type(new_data).__name__}.")
    frame = _prepare(design, new_data, design.predictors)
    X = _fixed(design, frame, new_data)
    terms = []
    for t in design.terms:
        Z = np.column_stack([_eval(ev, frame, f"random-effect term of {t.group!r}")
                             for ev in design.evaluators[t.group]]) if t.q else None
        cols = t.group.split(":")
        labels = [":".join(level_label(v) for v in row) for row in
                  zip(*(frame[c].astype(object).to_numpy() for c in cols), strict=True)]
        index = {lev: k for k, lev in enumerate(t.levels)}
        codes = np.array([index.get(lab, -1) for lab in labels], dtype=np.int64)
        unseen = list(dict.fromkeys(lab for lab, c in zip(labels, codes, strict=True) if c < 0))
        pos = {lev: k for k, lev in enumerate(unseen)}
        new_codes = np.array([pos.get(lab, -1) if c < 0 else -1
                              for lab, c in zip(labels, codes, strict=True)], dtype=np.int64)
        terms.append(NewTerm(t.group, codes, Z, unseen, new_codes))
    return NewRows(X=X, terms=terms, index=new_data.index)


def _padded(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` plus rows that give each categorical column every one of its levels.

    formulae's ``C(x, ...)`` refuses data that lack some of x's levels (its levels are
    checked against the values present); the rows added are dropped after evaluation.
    """
    extra = []
    for c in frame.columns:
        if isinstance(frame[c].dtype, pd.CategoricalDtype):
            absent = [v for v in frame[c].cat.categories if v not in set(frame[c])]
            if absent:
                rows = frame.iloc[[0] * len(absent)].copy()
                rows[c] = pd.Categorical(absent, categories=frame[c].cat.categories,
                                         ordered=frame[c].cat.ordered)
                extra.append(rows)
    return pd.concat([frame, *extra], ignore_index=True) if extra else frame


def _eval(evaluator, frame: pd.DataFrame, where: str) -> np.ndarray:
    try:
        out = evaluator.evaluate_new_data(_padded(frame)).design_matrix
        return np.asarray(out, dtype=float)[: len(frame)]
    except Exception as exc:  # formulae's messages name the column and levels
        raise DataError(f"Cannot evaluate the {where} on new data: {exc}") from exc


def _fixed(design: Design, frame: pd.DataFrame, new_data: pd.DataFrame) -> np.ndarray:
    ev = design.evaluators["fixed"]
    if ev is None:
        return np.zeros((len(new_data), 0))
    names = [r_name(n) for n in ev.as_dataframe().columns]
    full = _eval(ev, frame, "fixed effects")
    keep = [names.index(n) for n in design.fixef_names]
    return full[:, keep]
