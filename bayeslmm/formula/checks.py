"""What the data must be for a model to mean anything: checked before anything is fitted.

A design whose numbers cannot give an honest fit is refused with a
:class:`~bayeslmm.errors.DataError` that names the column, term or level and says what to
do: duplicated column names, non-finite predictors, a constant response, a response that
is constant within every level of a grouping factor (the residual variance is then 0 and
the likelihood unbounded). A two-valued response is fitted, with a warning.

Examples
--------
>>> import numpy as np, pandas as pd
>>> check_columns(pd.DataFrame([[1, 2]], columns=["a", "a"]))
Traceback (most recent call last):
    ...
bayeslmm.errors.DataError: The data have duplicated column names ['a']: ...
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ..errors import DataError, user_stacklevel

__all__ = ["check_columns", "check_finite", "check_response"]


def _rows(labels, mask: np.ndarray, limit: int = 5) -> str:
    idx = [labels[i] for i in np.flatnonzero(mask)]
    more = f" and {len(idx) - limit} more" if len(idx) > limit else ""
    return ", ".join(map(repr, idx[:limit])) + more


def check_columns(data: pd.DataFrame) -> None:
    """Refuse duplicated column names (a formula could not say which one it means)."""
    dup = data.columns[data.columns.duplicated()].unique().tolist()
    if dup:
        raise DataError(f"The data have duplicated column names {dup}: rename them (e.g. "
                        "data.columns = [...]) so that each name means one column.")


def check_finite(M: np.ndarray, names: list[str], rows, where: str) -> None:
    """Refuse inf or NaN in a model matrix (e.g. from ``np.log(0)`` or an inf in the data),
    naming the column and the rows."""
    bad = ~np.isfinite(M)
    if bad.any():
        j = int(np.flatnonzero(bad.any(axis=0))[0])
        raise DataError(f"Column {names[j]!r} of the {where} has non-finite values (inf or "
                        f"NaN) in rows {_rows(list(rows), bad[:, j])}: fix or drop those rows "
                        "(a transform such as np.log of 0 gives -inf).")


def check_response(y: np.ndarray, name: str, terms, rows, known_sigma: bool = False) -> None:
    """Refuse a constant response and one constant within every level of a grouping
    factor whose term has an intercept (unless σ is known); warn about a two-valued
    response."""
    values = np.unique(y)
    if len(values) == 1:
        raise DataError(f"The response {name!r} is constant (every value is {values[0]!r}): "
                        "there is nothing to model.")
    for t in terms:
        if "Intercept" not in t.term_names or known_sigma:
            continue
        lo = np.full(t.n_levels, np.inf)
        hi = np.full(t.n_levels, -np.inf)
        np.minimum.at(lo, t.codes, y)
        np.maximum.at(hi, t.codes, y)
        if np.all(hi - lo <= 1e-12 * max(1.0, float(np.max(np.abs(y))))):
            raise DataError(
                f"The response {name!r} is constant within every level of {t.group!r}: the "
                f"random intercepts fit it exactly, so the residual variance is 0 and the "
                "likelihood has no maximum. Model the group means without (1 | "
                f"{t.group}), or check the response column.")
    if len(values) == 2:
        warnings.warn(f"The response {name!r} takes two values only ({values[0]!r}, "
                      f"{values[1]!r}): a Gaussian mixed model treats them as numbers (a "
                      "linear probability model). For a binary outcome a logistic mixed "
                      "model (e.g. lme4's glmer, bambi) is the usual choice.",
                      UserWarning, stacklevel=user_stacklevel())
