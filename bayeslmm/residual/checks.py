"""Column look-ups and data checks of the residual structures of
:mod:`~bayeslmm.residual.dense_corr` and :mod:`~bayeslmm.residual.varfuncs`: every
error names the structure, the column and the rows.

Examples
--------
>>> import pandas as pd
>>> numeric(pd.DataFrame({"v": [1, 2]}), "v", "VarFixed('v')", [0, 1])
array([1., 2.])
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..errors import DataError, suggest

__all__ = ["rows_text", "column", "numeric", "integer_times"]


def rows_text(labels: Sequence, mask: np.ndarray, limit: int = 8) -> str:
    """The labels of the rows where ``mask`` holds, at most ``limit`` of them.

    >>> rows_text(["a", "b", "c"], np.array([True, False, True]))
    "'a', 'c'"
    """
    idx = [labels[i] for i in np.flatnonzero(mask)]
    more = f" and {len(idx) - limit} more" if len(idx) > limit else ""
    return ", ".join(map(repr, idx[:limit])) + more


def column(data: pd.DataFrame, col: str, what: str) -> pd.Series:
    """A column of the data, or a DataError naming the structure and the columns.

    >>> column(pd.DataFrame({"x": [1]}), "x", "CorExp").tolist()
    [1]
    """
    if col not in data.columns:
        raise DataError(f"Unknown column {col!r} in {what}.{suggest(col, data.columns)} "
                        f"The data have columns {list(map(str, data.columns))}.")
    return data[col]


def numeric(data: pd.DataFrame, col: str, what: str, labels: Sequence) -> np.ndarray:
    """A finite numeric column as floats (else a DataError naming the rows).

    >>> numeric(pd.DataFrame({"x": [0.5, 2]}), "x", "CorExp", [0, 1])
    array([0.5, 2. ])
    """
    s = column(data, col, what)
    if not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
        raise DataError(f"Column {col!r} of {what} must be numeric, got dtype {s.dtype}.")
    v = s.to_numpy(dtype=float)
    bad = ~np.isfinite(v)
    if bad.any():
        raise DataError(f"Column {col!r} of {what} has non-finite values in rows "
                        f"{rows_text(labels, bad)}.")
    return v


def integer_times(t: np.ndarray, col: str, what: str, labels: Sequence) -> np.ndarray:
    """Refuse non-integer times (the structure indexes positions or lags by them).

    >>> integer_times(np.array([1.0, 3.0]), "t", "CorARMA", [0, 1])
    array([1, 3])
    """
    bad = t != np.round(t)
    if bad.any():
        raise DataError(f"Column {col!r} of {what} must hold integer times, got "
                        f"non-integers in rows {rows_text(labels, bad)}.")
    return np.round(t).astype(np.int64)
