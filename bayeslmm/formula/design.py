"""ModelSpec + DataFrame → :class:`Design`: response, fixed-effects matrix and one
:class:`ReTerm` per grouping factor, all as plain NumPy arrays.

Bars on the same grouping factor are amalgamated into one term (as MixedModels.jl
does): ``(1 | g) + (0 + x | g)`` and ``(x || g)`` give one term ``g`` with two columns
and a diagonal covariance, ``(x | g)`` one with a full 2×2 covariance. Each term
records its correlated ``blocks`` of columns.

Examples
--------
>>> import bayeslmm as blm
>>> d = build_design(parse_formula("Reaction ~ Days + (Days | Subject)"),
...                  blm.datasets.load("sleepstudy"))
>>> d.X.shape, d.fixef_names, d.terms[0].term_names, d.terms[0].n_levels
((180, 2), ['Intercept', 'Days'], ['Intercept', 'Days'], 18)
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from formulae import design_matrices

from ..errors import DataError, FormulaError, user_stacklevel
from ..linalg.moments import Moments
from . import contrasts
from .checks import check_columns, check_finite, check_response
from .columns import NAMESPACE, columns_used
from .spec import ModelSpec, parse_formula
from .transforms import exact_transforms
from .weights import check_weights, weights_series

__all__ = ["ReTerm", "Design", "build_design", "factor_codes", "level_label", "NAMESPACE",
           "columns_used", "formula_matrices", "merge_bars", "check_terms", "normalise_factors"]


@dataclass(frozen=True)
class ReTerm:
    """The random effects of one grouping factor.

    Attributes
    ----------
    group : str
        Grouping factor name (``"Subject"``, ``"batch:cask"`` for an interaction).
    codes : ndarray of int, shape (n,)
        Level index of each row.
    levels : list of str
        Level labels, in R's order (categorical order, else sorted).
    Z : ndarray, shape (n, q)
        Random-effect model matrix of the term, one column per coefficient.
    term_names : list of str
        Column names of ``Z`` in formulae's naming (``"Intercept"``, ``"Days"``).
    blocks : tuple of tuple of int
        Column indices whose effects are correlated; singletons are independent.
    """

    group: str
    codes: np.ndarray
    levels: list[str]
    Z: np.ndarray
    term_names: list[str]
    blocks: tuple[tuple[int, ...], ...]

    @property
    def q(self) -> int:
        """Number of random coefficients per level."""
        return self.Z.shape[1]

    @property
    def n_levels(self) -> int:
        """Number of levels of the grouping factor."""
        return len(self.levels)

    @property
    def rms(self) -> np.ndarray:
        """Root mean square of each column of ``Z`` (exact sums, as out of core)."""
        return np.array([Moments.of(c).rms for c in self.Z.T])


@dataclass(frozen=True)
class Design:
    """Everything numeric a model needs, plus what is needed to evaluate new data.

    Attributes
    ----------
    spec : ModelSpec
    y : ndarray, shape (n,)
    X : ndarray, shape (n, p)
    fixef_names : list of str
    terms : list of ReTerm
    data : DataFrame
        The rows used (missing values dropped), categoricals normalised.
    rows : Index
        Index labels of the rows used, in the user's data.
    response : str
    dropped_fixef : list of str
        Columns of X dropped as linearly dependent (as lme4 does).
    weights, weights_column : ndarray, str or None
        lme4's prior weights (residual variance σ²/w) and their column.
    ordered : frozenset of str
        The user's ordered factors (R's ``contr.poly``); ``data`` holds every factor
        as ordered (formulae keeps the order of those).
    """

    spec: ModelSpec
    y: np.ndarray
    X: np.ndarray
    fixef_names: list[str]
    terms: list[ReTerm]
    data: pd.DataFrame
    rows: pd.Index
    response: str
    dropped_fixef: list[str] = field(default_factory=list)
    n_dropped_rows: int = 0
    #: the data columns that predictions need (the columns used, less the response's)
    predictors: list[str] = field(default_factory=list)
    #: formulae's fitted matrices ("fixed", and per group one per bar), which evaluate
    #: new data with the training data's levels and stateful transforms (``scale``).
    evaluators: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    weights: np.ndarray | None = None
    weights_column: str | None = None
    ordered: frozenset = frozenset()

    @property
    def nobs(self) -> int:
        """Number of observations used."""
        return len(self.y)

    @property
    def ngroups(self) -> dict[str, int]:
        """Number of levels per grouping factor."""
        return {t.group: t.n_levels for t in self.terms}

    @property
    def column_dtypes(self) -> pd.Series:
        """The types of the columns used (factors with their levels)."""
        return self.data.dtypes

    @property
    def in_memory(self) -> bool:
        """True: the rows are here (an out-of-core design has only their cross-products)."""
        return True

    def moments(self) -> dict[str, Any]:
        """Moments of ``y``, of each column of ``X`` and of each ``Z`` column per factor
        (what the data-scaled priors read): ``{"y": m, "X": [...], "Z": {group: [...]}}``.

        >>> import bayeslmm as blm
        >>> d = build_design("Reaction ~ Days + (Days | Subject)",
        ...                  blm.datasets.load("sleepstudy"))
        >>> mom = d.moments()
        >>> mom["y"].n, round(mom["X"][1].mean, 2), mom["Z"]["Subject"][0].two_valued
        (180, 4.5, True)
        """
        return {"y": Moments.of(self.y), "X": [Moments.of(c) for c in self.X.T],
                "Z": {t.group: [Moments.of(c) for c in t.Z.T] for t in self.terms}}

    def term(self, group: str) -> ReTerm:
        """The term of a grouping factor, by name."""
        for t in self.terms:
            if t.group == group:
                return t
        raise KeyError(f"No grouping factor {group!r}; have {[t.group for t in self.terms]}.")


def normalise_factors(data: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    """Make categoricals ordered (formulae then keeps their order) and drop unused levels."""
    data = data.copy()
    for c in cols:
        s = data[c]
        if isinstance(s.dtype, pd.CategoricalDtype):
            s = s.cat.remove_unused_categories()
            data[c] = s.cat.as_ordered()
        elif s.dtype == bool:
            data[c] = s.astype(float)
    return data


def level_label(v: Any) -> str:
    """The label of a level as a string (a float that is an integer prints as one).

    >>> level_label(3.0), level_label("a"), level_label(2.5)
    ('3', 'a', '2.5')
    """
    if isinstance(v, float | np.floating) and float(v).is_integer():
        v = int(v)
    return str(v)


def factor_codes(data: pd.DataFrame, cols: tuple[str, ...]) -> tuple[np.ndarray, list[str]]:
    """Integer codes and level labels of a (possibly interacted) grouping factor.

    >>> factor_codes(pd.DataFrame({"a": ["x", "y", "x"], "b": [1, 1, 2]}), ("a", "b"))
    (array([0, 2, 1]), ['x:1', 'x:2', 'y:1'])
    """
    parts = []
    for c in cols:
        s = data[c]
        cat = s if isinstance(s.dtype, pd.CategoricalDtype) else pd.Categorical(s)
        cat = pd.Categorical(cat).remove_unused_categories()
        parts.append((np.asarray(cat.codes), [str(v) for v in cat.categories]))
    if len(parts) == 1:
        return parts[0][0].astype(np.int64), parts[0][1]
    combo = np.zeros(len(data), dtype=np.int64)
    for codes, labels in parts:
        combo = combo * len(labels) + codes
    uniq, codes = np.unique(combo, return_inverse=True)
    labels = []
    for u in uniq:
        pieces = []
        for _, lab in reversed(parts):
            u, r = divmod(int(u), len(lab))
            pieces.append(lab[r])
        labels.append(":".join(reversed(pieces)))
    return codes.astype(np.int64), labels


def formula_matrices(expr: str, data: pd.DataFrame, where: str,
                     ordered: set[str] = frozenset()):
    """formulae's matrices of ``expr``, ordered factors coded as R codes them."""
    lhs, tilde, rhs = expr.rpartition("~")
    rhs, lists = contrasts.list_literals(contrasts.rewrite_ordered(rhs, set(ordered)))
    try:
        return design_matrices(lhs + tilde + rhs, data, na_action="error",
                               extra_namespace={**NAMESPACE, **contrasts.ENCODINGS, **lists})
    except Exception as exc:  # formulae raises many kinds; name the term for the user
        raise FormulaError(f"Cannot evaluate {where} {expr!r}: {exc}") from exc


def _drop_dependent(X: np.ndarray, names: list[str]) -> tuple[np.ndarray, list[str], list[str]]:
    """Drop linearly dependent columns, keeping the earliest ones (lme4's behaviour)."""
    if X.shape[1] == 0:
        return X, names, []
    keep: list[int] = []
    for j in range(X.shape[1]):
        cand = keep + [j]
        if np.linalg.matrix_rank(X[:, cand], tol=None) == len(cand):
            keep.append(j)
    dropped = [n for j, n in enumerate(names) if j not in keep]
    if dropped:
        warnings.warn(
            f"Fixed-effect model matrix is rank deficient, so dropping {len(dropped)} "
            f"column(s): {dropped}.",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
    return X[:, keep], [names[j] for j in keep], dropped


def merge_bars(spec: ModelSpec, data: pd.DataFrame, evaluators: dict,
               ordered: set[str] = frozenset()) -> list[ReTerm]:
    """One :class:`ReTerm` per grouping factor (its bars merged); fills ``evaluators``."""
    terms = []
    for group in spec.groups:
        bars = [b for b in spec.bars if b.group == group]
        codes, levels = factor_codes(data, bars[0].group_columns)
        cols, names, blocks = [], [], []
        evaluators[group] = []
        for bar in bars:
            dm = formula_matrices(bar.expr, data, f"random-effect term {bar}", ordered)
            evaluators[group].append(dm.common)
            block_names = [contrasts.r_name(n) for n in dm.common.as_dataframe().columns]
            if not block_names:
                raise FormulaError(f"Random-effect term {bar} has no columns.")
            for nm in block_names:
                if nm in names:
                    raise FormulaError(
                        f"Term {nm!r} appears twice for grouping factor {group!r} "
                        f"(in {bar}); list each random coefficient once per factor."
                    )
            idx = tuple(range(len(names), len(names) + len(block_names)))
            blocks += [idx] if bar.correlated else [(i,) for i in idx]
            names += block_names
            cols.append(np.asarray(dm.common.design_matrix, dtype=float))
        Z = np.column_stack(cols)
        terms.append(ReTerm(group, codes, levels, Z, names, tuple(blocks)))
    return terms


def check_terms(terms, n: int, known_sigma: bool = False) -> None:
    """Every factor has ≥ 2 levels and fewer random effects than observations (unless
    σ is known: then one random effect per observation is the meta-analysis model)."""
    for t in terms:
        if t.n_levels < 2:
            raise DataError(
                f"Grouping factor {t.group!r} has a single level ({t.levels[0]!r}) in the data "
                "used; a random effect needs at least 2 levels. Drop the term or use the "
                "column as a fixed effect."
            )
        if t.n_levels * t.q >= n and not known_sigma:
            raise DataError(
                f"Grouping factor {t.group!r} has {t.n_levels} levels × {t.q} coefficient(s) "
                f"= {t.n_levels * t.q} random effects for {n} observations: its variance is "
                "not identifiable from the residual variance. Remove the term or use a "
                "coarser grouping factor (or, with known residual variances, fix sigma: "
                "LMM(..., sigma=1.0))."
            )


def build_design(spec: ModelSpec | str, data: pd.DataFrame, *, na_action: str = "drop",
                 extra_columns: list[str] | tuple[str, ...] = (), weights: Any = None,
                 known_sigma: bool = False) -> Design:
    """Evaluate a :class:`ModelSpec` on data.

    Parameters
    ----------
    spec : ModelSpec or str
        Parsed formula (a string is parsed first).
    data : DataFrame
    na_action : {"drop", "raise"}
        Rows with missing values in the columns used are dropped with a warning that
        says how many, or raise a :class:`DataError`.
    weights : str or array, optional
        lme4's prior weights: a column or one value per row (see
        :mod:`bayeslmm.formula.weights`).
    known_sigma : bool
        σ will be fixed at a known value: a factor may have one level per observation.

    Returns
    -------
    Design
    """
    if isinstance(spec, str):
        spec = parse_formula(spec)
    if not isinstance(data, pd.DataFrame):
        raise DataError(f"data must be a pandas DataFrame, got {type(data).__name__}.")
    check_columns(data)
    if na_action not in ("drop", "raise"):
        raise DataError(f"na_action must be 'drop' or 'raise', got {na_action!r}.")
    response_cols, used, predictors = columns_used(spec, data.columns, extra_columns)
    if spec.response in data.columns and not pd.api.types.is_numeric_dtype(data[spec.response]):
        raise DataError(
            f"The response {spec.response!r} is not numeric (dtype {data[spec.response].dtype}); "
            "a Gaussian mixed model needs a numeric response. Convert it, e.g. with "
            "pd.to_numeric."
        )
    if len(data) == 0:
        raise DataError("The data have no rows.")
    w_all, w_col = weights_series(weights, data)
    complete = data[used].notna().all(axis=1).to_numpy() if used else np.ones(len(data), bool)
    complete = complete & (w_all.notna().to_numpy() if w_all is not None else True)
    n_drop = int((~complete).sum())
    if n_drop:
        bad = [c for c in used if data[c].isna().any()] + (
            [w_col or "weights"] if w_all is not None and w_all.isna().any() else [])
        if na_action == "raise":
            raise DataError(
                f"{n_drop} row(s) have missing values in column(s) {bad}. Drop or impute "
                "them, or pass na_action='drop'."
            )
        warnings.warn(
            f"Dropped {n_drop} of {len(data)} rows with missing values in column(s) {bad}.",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
    ordered = contrasts.ordered_columns(data, predictors)  # before _normalise_factors
    clean = normalise_factors(data.loc[complete], used)
    if len(clean) == 0:
        raise DataError("No rows left after dropping rows with missing values.")
    dm = formula_matrices(f"{spec.response} ~ {spec.fixed}", clean, "formula", ordered)
    y = np.asarray(dm.response.design_matrix, dtype=float).reshape(-1)
    if dm.response.design_matrix.ndim > 1 and dm.response.design_matrix.shape[1] != 1:
        raise DataError(f"The response {spec.response!r} must be one numeric column.")
    if not np.all(np.isfinite(y)):
        raise DataError(f"The response {spec.response!r} has non-finite values.")
    X = np.asarray(dm.common.design_matrix, dtype=float) if dm.common is not None else np.zeros(
        (len(y), 0)
    )
    names = [] if dm.common is None else [contrasts.r_name(n)
                                           for n in dm.common.as_dataframe().columns]
    evaluators = {"fixed": dm.common}
    terms = merge_bars(spec, clean, evaluators, ordered)
    X, terms = exact_transforms(spec, clean, evaluators, X, terms, NAMESPACE)
    check_finite(X, names, clean.index, "fixed effects")
    X, names, dropped = _drop_dependent(X, names)
    for t in terms:
        check_finite(t.Z, t.term_names, clean.index, f"random-effect term of {t.group!r}")
    check_terms(terms, len(y), known_sigma)
    check_response(y, spec.response, terms, clean.index, known_sigma)
    return Design(
        spec=spec, y=y, X=X, fixef_names=names, terms=terms, data=clean,
        rows=clean.index, response=spec.response, dropped_fixef=dropped,
        n_dropped_rows=n_drop, predictors=predictors, evaluators=evaluators,
        weights=check_weights(w_all[complete]) if w_all is not None else None,
        weights_column=w_col, ordered=frozenset(ordered),
    )
