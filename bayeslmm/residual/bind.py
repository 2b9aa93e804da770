"""A residual structure bound to the rows of a design: :func:`bind` →
:class:`ResidualDesign` (plain arrays), with the data checks.

Examples
--------
>>> import bayeslmm as blm
>>> from bayeslmm.formula.design import build_design
>>> df = blm.datasets.load("Orthodont")
>>> rd = bind(blm.AR1(group="Subject"), build_design("distance ~ age + (1 | Subject)", df))
>>> rd.n, rd.n_groups, rd.max_group_size, rd.param_names
(108, 27, 4, ['Phi'])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..errors import BayesLMMError, DataError, suggest
from ..formula.design import Design, factor_codes
from . import dense_corr, varfuncs
from .structures import AR1, CompSymm, Residual, VarExp, VarIdent, VarPower, as_residual

__all__ = ["ResidualDesign", "bind"]


@dataclass(frozen=True)
class ResidualDesign:
    """A residual structure bound to the rows of a design: plain arrays.

    Rows are handled internally in *sorted order* (by correlation group, then time or
    data order); ``order[k]`` is the data row at sorted position k, ``inverse`` maps
    back. Arrays below are in sorted order.

    Attributes
    ----------
    structure : Residual
    n : int
    order, inverse : ndarray of int
    group_codes : ndarray of int
        Correlation group of each row (all 0 without a correlation).
    group_levels : list of str
    start : ndarray of int
        Sorted position of the first row of each row's group.
    position : ndarray of int
        Position of the row within its group (0 for the first).
    lag : ndarray of float
        AR1/CAR1: time since the previous row of the group (1 for first rows).
    time : ndarray of float
        AR1/CAR1: the time of each row (positions for AR1 without ``time``).
    covariate : ndarray of float or None
        VarPower/VarExp with a column covariate.
    by_codes : ndarray of int or None
        VarIdent: level of each row, 0 the reference.
    by_levels : list of str
        VarIdent: all levels, the reference first.
    dense : DenseCorr or None
        The dense correlations (:mod:`~bayeslmm.residual.dense_corr`): per-group arrays.
    varfuncs : tuple of BoundVar or None
        VarConstPower, VarFixed, VarComb (:mod:`~bayeslmm.residual.varfuncs`): the parts.
    max_size : int or None
        Rows of the largest correlation group where the rows are out of core (no arrays).
    """

    structure: Residual
    n: int
    order: np.ndarray
    inverse: np.ndarray
    group_codes: np.ndarray
    group_levels: list[str]
    start: np.ndarray
    position: np.ndarray
    lag: np.ndarray
    time: np.ndarray
    covariate: np.ndarray | None = None
    by_codes: np.ndarray | None = None
    by_levels: list[str] | None = None
    dense: dense_corr.DenseCorr | None = None
    varfuncs: tuple[varfuncs.BoundVar, ...] | None = None
    max_size: int | None = None

    @property
    def variance(self):
        """The variance function, or None."""
        return self.structure.variance

    @property
    def correlation(self):
        """The correlation structure, or None."""
        return self.structure.correlation

    @property
    def n_groups(self) -> int:
        """Number of correlation groups."""
        return len(self.group_levels)

    @property
    def max_group_size(self) -> int:
        """Rows in the largest correlation group."""
        if self.max_size is not None:
            return self.max_size
        return int(self.position.max()) + 1 if self.n else 0

    @property
    def fitted_covariate(self) -> bool:
        """True when the variance function reads the fitted values."""
        if self.varfuncs is not None:
            return varfuncs.fitted_parts(self.varfuncs)
        return self.covariate is None and isinstance(self.variance, (VarPower, VarExp))

    @property
    def correlation_param_names(self) -> list[str]:
        """The correlation's parameter names (the first of :attr:`param_names`)."""
        c = self.correlation
        if dense_corr.is_dense(c):
            return dense_corr.param_names(c)
        return [] if c is None else ["Rho" if isinstance(c, CompSymm) else "Phi"]

    @property
    def param_names(self) -> list[str]:
        """Parameter names: the PyMC variables and the keys of ``params`` dicts."""
        names = self.correlation_param_names
        v = self.variance
        if self.varfuncs is not None:
            names += varfuncs.param_names(self.varfuncs)
        elif v is not None:
            names.append({VarIdent: "varident_ratio", VarPower: "power",
                          VarExp: "expon"}[type(v)])
        return names


def _rows(labels: Sequence, mask: np.ndarray, limit: int = 8) -> str:
    idx = [labels[i] for i in np.flatnonzero(mask)]
    more = f" and {len(idx) - limit} more" if len(idx) > limit else ""
    return ", ".join(map(repr, idx[:limit])) + more


def _column(data: pd.DataFrame, col: str, what: str) -> pd.Series:
    if col not in data.columns:
        raise DataError(f"Unknown column {col!r} in {what}.{suggest(col, data.columns)} "
                        f"The data have columns {list(map(str, data.columns))}.")
    return data[col]


def _numeric(data: pd.DataFrame, col: str, what: str, labels: Sequence) -> np.ndarray:
    s = _column(data, col, what)
    if not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
        raise DataError(f"Column {col!r} of {what} must be numeric, got dtype {s.dtype}.")
    v = s.to_numpy(dtype=float)
    bad = ~np.isfinite(v)
    if bad.any():
        raise DataError(f"Column {col!r} of {what} has non-finite values in rows "
                        f"{_rows(labels, bad)}.")
    return v


def _groups(data: pd.DataFrame, group: str | None, what: str) -> tuple[np.ndarray, list[str]]:
    if group is None:
        return np.zeros(len(data), dtype=np.int64), ["(all)"]
    cols = tuple(group.split(":"))
    for c in cols:
        _column(data, c, what)
    return factor_codes(data, cols)


def _check_times(t: np.ndarray, codes: np.ndarray, col: str, what: str, labels) -> None:
    """Refuse duplicated times within a group (the correlation would be 1)."""
    frame = pd.DataFrame({"g": codes, "t": t})
    dup = frame.duplicated(keep=False).to_numpy()
    if dup.any():
        raise DataError(f"Column {col!r} of {what} has duplicated times within a group in rows "
                        f"{_rows(labels, dup)}; each time may appear once per group.")


def _correlation(c, data: pd.DataFrame, labels, fitting: bool = True) -> dict[str, Any]:
    what = repr(c)
    codes, levels = _groups(data, c.group, what)
    n = len(data)
    if isinstance(c, CompSymm) or c.time is None:
        t = np.arange(n, dtype=float)  # data order; made positions below
    else:
        t = _numeric(data, c.time, what, labels)
        if isinstance(c, AR1) and np.any(t != np.round(t)):
            bad = t != np.round(t)
            raise DataError(f"Column {c.time!r} of {what} must hold integer times (as nlme's "
                            f"corAR1), got non-integers in rows {_rows(labels, bad)}; use "
                            "CAR1 for continuous time.")
        _check_times(t, codes, c.time, what, labels)
    order = np.lexsort((np.arange(n), t, codes))
    sc, st = codes[order], t[order]
    first = np.r_[True, sc[1:] != sc[:-1]]
    start = np.maximum.accumulate(np.where(first, np.arange(n), 0))
    position = np.arange(n) - start
    if isinstance(c, CompSymm) or c.time is None:
        st = position.astype(float)
    lag = np.where(first, 1.0, st - np.r_[st[0], st[:-1]])
    if fitting and position.max() == 0:
        raise DataError(f"Every group of {what} has a single row, so its correlation "
                        "parameter is not identifiable; check the group column.")
    return {"order": order, "group_codes": sc, "group_levels": levels, "start": start,
            "position": position, "lag": lag, "time": st}


def _variance(v, data: pd.DataFrame, labels, fitting: bool = True) -> dict[str, Any]:
    what = repr(v)
    if isinstance(v, VarIdent):
        codes, levels = factor_codes(data, (_column(data, v.by, what).name,))
        if not fitting:
            return {"by_codes": codes, "by_levels": levels}
        if len(levels) < 2:
            raise DataError(f"Column {v.by!r} of {what} has a single level ({levels[0]!r}); "
                            "VarIdent needs at least two.")
        counts = np.bincount(codes, minlength=len(levels))
        for k in np.flatnonzero(counts == 1):
            raise DataError(f"Level {levels[k]!r} of column {v.by!r} in {what} has a single "
                            f"observation (row {_rows(labels, codes == k)}): its residual sd "
                            "cannot be estimated. Merge or drop that level.")
        return {"by_codes": codes, "by_levels": levels}
    if v.covariate == "fitted":
        return {}
    x = _numeric(data, v.covariate, what, labels)
    if isinstance(v, VarPower) and np.any(x == 0):
        raise DataError(f"Column {v.covariate!r} of {what} is 0 in rows "
                        f"{_rows(labels, x == 0)}: |v|^power is 0 or infinite there. Shift "
                        "the covariate or use VarExp.")
    if fitting and np.ptp(x) == 0:
        raise DataError(f"Column {v.covariate!r} of {what} is constant, so its parameter is "
                        "confounded with sigma.")
    return {"covariate": x}


def bind(residual: Any, data: Design | pd.DataFrame, *, fitting: bool = True) -> ResidualDesign:
    """Check a residual structure against the rows used and return its arrays.

    Parameters
    ----------
    residual : Residual or one structure
    data : Design or DataFrame
        A Design (its ``data``: the rows used, missing values already dropped) or the
        rows themselves.
    fitting : bool
        False for rows to predict: skips the checks that only matter for estimating
        the parameters (single levels, single-row groups, constant covariates).

    Returns
    -------
    ResidualDesign

    Raises
    ------
    DataError
        Unknown or non-numeric columns; duplicated times within a group (AR1, CAR1);
        non-integer AR1 times; a VarPower covariate equal to 0; a constant covariate;
        a VarIdent level with one row; groups of one row only.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"g": list("aabbb"), "t": [2, 1, 1, 3, 2]})
    >>> rd = bind(AR1(group="g", time="t"), df)
    >>> rd.order, rd.position, rd.lag
    (array([1, 0, 2, 4, 3]), array([0, 1, 0, 1, 2]), array([1., 1., 1., 1., 1.]))
    """
    r = as_residual(residual)
    if r is None:
        raise BayesLMMError("bind() needs a residual structure, got None.")
    if getattr(data, "weights", None) is not None:
        raise BayesLMMError("Prior weights (weights=) and a residual structure cannot be "
                            "combined (lme4 has weights, nlme residual structures): give the "
                            "known variances 1/w as blm.VarFixed(covariate=...), with other "
                            "variance functions in blm.VarComb(...).")
    frame = data.data if isinstance(data, Design) else data
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"bind() takes a Design or a DataFrame, got {type(data).__name__}.")
    n = len(frame)
    labels = list(frame.index)
    ident = np.arange(n)
    parts: dict[str, Any] = {
        "order": ident, "group_codes": np.zeros(n, dtype=np.int64), "group_levels": ["(all)"],
        "start": np.zeros(n, dtype=np.int64), "position": ident, "lag": np.ones(n),
        "time": ident.astype(float),
    }
    if r.correlation is not None:
        parts.update(_correlation(r.correlation, frame, labels, fitting))
    order = parts["order"]
    if dense_corr.is_dense(r.correlation):
        parts["dense"] = dense_corr.bind_dense(r.correlation, frame, order,
                                               parts["group_codes"], parts["position"],
                                               labels, fitting)
    if varfuncs.is_varfunc(r.variance):
        parts["varfuncs"] = varfuncs.bind_varfuncs(r.variance, frame, labels, order, fitting)
    elif r.variance is not None:
        for k, v in _variance(r.variance, frame, labels, fitting).items():
            parts[k] = v[order] if isinstance(v, np.ndarray) else v
    return ResidualDesign(structure=r, n=n, inverse=np.argsort(order), **parts)
