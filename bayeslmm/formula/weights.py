"""lme4's prior weights: residual variance ``σ²/w_i``.

A weighted model ``y ~ N(Xβ + Zb, σ² W⁻¹)`` is the iid model of the rows scaled by
``√w`` (lme4's and MixedModels.jl's weighted PLS): ``√W y = √W Xβ + √W Zb + ε``, with
``log N(y | ·) = log N(√W y | ·) + ½ Σ log w_i``. :func:`weighted` makes that design;
every iid-residual likelihood then applies to it, plus :func:`log_weight_term`.

Examples
--------
>>> import bayeslmm as blm
>>> from bayeslmm.formula.design import build_design
>>> d = build_design("distance ~ age + (1 | Subject)", blm.datasets.load("Orthodont"),
...                  weights="age")
>>> d.weights[:3], weighted(d).y[:2].round(3)
(array([ 8., 10., 12.]), array([73.539, 79.057]))
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError, suggest

__all__ = ["weights_series", "check_weights", "weighted", "log_weight_term", "new_weights",
           "WEIGHTS_COLUMN"]

#: the column that holds weights given as an array (in saved results' data)
WEIGHTS_COLUMN = "(weights)"


def weights_series(weights: Any, data: pd.DataFrame) -> tuple[pd.Series | None, str | None]:
    """The weights as a Series aligned with ``data`` and the column they come from.

    ``weights`` is a column name, an array (one value per row of ``data``; a Series is
    matched by index label) or None.

    >>> df = pd.DataFrame({"w": [1.0, 2.0]})
    >>> weights_series("w", df)[1], weights_series([3, 4], df)[0].tolist()
    ('w', [3.0, 4.0])
    """
    if weights is None:
        return None, None
    if isinstance(weights, str):
        if weights not in data.columns:
            raise DataError(f"Unknown weights column {weights!r}.{suggest(weights, data.columns)} "
                            f"The data have columns {list(map(str, data.columns))}.")
        s = data[weights]
        if not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
            raise DataError(f"The weights column {weights!r} must be numeric, got dtype "
                            f"{s.dtype}.")
        return s.astype(float), weights
    if isinstance(weights, pd.Series):
        missing = data.index.difference(weights.index)
        if len(missing):
            raise DataError(f"weights= (a Series) has no value for row(s) "
                            f"{list(missing[:8])} of the data.")
        return weights.loc[data.index].astype(float), None
    w = np.asarray(weights, dtype=float)
    if w.shape != (len(data),):
        raise DataError(f"weights= must hold one value per row of the data ({len(data)}), got "
                        f"shape {w.shape}.")
    return pd.Series(w, index=data.index), None


def check_weights(w: pd.Series, what: str = "weights") -> np.ndarray:
    """Positive, finite weights as an array (else a DataError naming the rows).

    >>> check_weights(pd.Series([1.0, 0.5]))
    array([1. , 0.5])
    """
    v = w.to_numpy(dtype=float)
    bad = ~np.isfinite(v) | (v <= 0)
    if bad.any():
        rows = list(w.index[bad][:8])
        raise DataError(f"The {what} must be positive and finite; rows {rows} are not "
                        f"({v[bad][:8].tolist()}). Drop rows of weight 0: they carry no "
                        "information.")
    return v


def weighted(design):
    """The design with ``y``, ``X`` and each term's ``Z`` rows scaled by ``√w`` (the
    design itself without weights).

    >>> import bayeslmm as blm
    >>> from bayeslmm.formula.design import build_design
    >>> d = build_design("Yield ~ 1", blm.datasets.load("Dyestuff"))
    >>> weighted(d) is d
    True
    """
    if design.weights is None:
        return design
    s = np.sqrt(design.weights)
    terms = [replace(t, Z=t.Z * s[:, None]) for t in design.terms]
    return replace(design, y=design.y * s, X=design.X * s[:, None], terms=terms)


def log_weight_term(design) -> float:
    """``½ Σ log w_i``: the weighted log-likelihood minus that of :func:`weighted`'s rows
    (0 without weights).

    >>> import bayeslmm as blm
    >>> from bayeslmm.formula.design import build_design
    >>> log_weight_term(build_design("Yield ~ 1", blm.datasets.load("Dyestuff")))
    0.0
    """
    return 0.0 if design.weights is None else float(0.5 * np.sum(np.log(design.weights)))


def new_weights(design, new_data: pd.DataFrame | None, index: pd.Index,
                weights: Any = None) -> np.ndarray | None:
    """The prior weights of rows to predict (``index``: their labels in ``new_data``).

    ``weights`` (a column of ``new_data`` or one value per row) wins; else the training
    weights for the training rows, the model's weights column of ``new_data`` for new
    rows, and None for a model without weights. New rows of a weighted model without
    either are a DataError (their residual variance σ²/w is unknown).

    >>> import bayeslmm as blm
    >>> from bayeslmm.formula.design import build_design
    >>> d = build_design("distance ~ age", blm.datasets.load("Orthodont"), weights="age")
    >>> new = pd.DataFrame({"age": [9.0], "w": [2.0]})
    >>> new_weights(d, new, new.index, "w"), new_weights(d, new, new.index)
    (array([2.]), array([9.]))
    """
    if new_data is None and weights is None:
        return design.weights
    frame = new_data if new_data is not None else design.data
    if weights is None:
        if design.weights is None:
            return None
        if design.weights_column is None or design.weights_column not in frame.columns:
            raise DataError("The model has prior weights: give the new rows theirs with "
                            "weights= (a column of the new data or one value per row) to "
                            "draw new observations.")
        weights = design.weights_column
    w, _ = weights_series(weights, frame)
    return check_weights(w.loc[index], "prediction weights")
