"""Conditional effects: the population-level prediction ``Xβ`` over a grid of one or two
predictors, the other predictors held at reference values.

Reference values (:func:`reference_grid`): a numeric predictor at its mean in the
training rows, a factor (and a grouping factor) at its reference level, the first of
its levels (R's baseline); ``at=`` sets any of them. The grid of a numeric focal
predictor is ``n`` evenly spaced values over its observed range; of a factor, its
levels. A numeric ``by`` predictor takes its mean and the mean ± one sd (as R's
ggeffects does).

For a posterior the estimate is the posterior mean of ``xᵀβ`` and the interval its
equal-tailed ``prob`` interval (as brms's ``conditional_effects``); for an ML/REML fit
the estimate is ``xᵀβ̂`` and the band ``xᵀβ̂ ± z·se`` with ``se² = xᵀ vcov x`` (a Wald
confidence band, as ``predict(..., re.form = NA)`` with its standard errors).

Examples
--------
``mapfit``: the sleepstudy REML fit of the examples of :class:`~bayeslmm.MapResult`.

>>> tab = mapfit.effects_table("Days", n=3)
>>> tab.round(2)
   Days  estimate     se   lower   upper
0   0.0    251.41   6.82  238.03  264.78
1   4.5    298.51   9.05  280.77  316.25
2   9.0    345.61  14.63  316.94  374.28
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import BayesLMMError, suggest
from ..formula.newdata import evaluate_new_data

__all__ = ["reference_grid", "effects_table", "EffectsMixin", "is_factor"]


def is_factor(col: pd.Series) -> bool:
    """Whether a data column is a factor (categorical, string or boolean).

    >>> is_factor(pd.Series(["a", "b"])), is_factor(pd.Series([1.5, 2.0]))
    (True, False)
    """
    return (isinstance(col.dtype, pd.CategoricalDtype) or col.dtype == object
            or pd.api.types.is_bool_dtype(col) or pd.api.types.is_string_dtype(col))


def _reference_value(col: pd.Series) -> Any:
    if isinstance(col.dtype, pd.CategoricalDtype):
        return col.cat.categories[0]
    if is_factor(col):
        return sorted(col.unique())[0]
    return float(col.mean())


def _values(col: pd.Series, n: int, role: str) -> list:
    if isinstance(col.dtype, pd.CategoricalDtype):
        return list(col.cat.categories)
    if is_factor(col):
        return sorted(col.unique())
    if role == "by":
        m, s = float(col.mean()), float(col.std())
        return [m - s, m, m + s]
    return list(np.linspace(float(col.min()), float(col.max()), n))


def reference_grid(design, focal: Sequence[str], *, n: int = 50,
                   at: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Rows over the focal predictors' grid, every other predictor at its reference value.

    ``focal`` holds one or two column names (the second is the ``by`` predictor).

    Examples
    --------
    >>> import bayeslmm as blm
    >>> m = blm.LMM("distance ~ age * Sex + (1 | Subject)", blm.datasets.load("Orthodont"))
    >>> reference_grid(m.design, ["Sex"])
          Sex   age Subject
    0    Male  11.0     M16
    1  Female  11.0     M16
    """
    data, at = design.data, dict(at or {})
    cols = [c for c in design.predictors if c != design.response]
    for name in [*focal, *at]:
        if name not in cols:
            raise BayesLMMError(f"{name!r} is not a predictor of {design.spec.formula!r}."
                                f"{suggest(name, cols)} Predictors: {cols}.")
    grouping = {c for t in design.terms for c in t.group.split(":")}
    if set(focal) & grouping:
        raise BayesLMMError(f"{sorted(set(focal) & grouping)} is a grouping factor: the "
                            "population-level prediction does not depend on it (plot each "
                            "group's fitted line with blm.plots.group_fits).")
    if len(focal) not in (1, 2) or len(set(focal)) != len(focal):
        raise BayesLMMError(f"Give one predictor, and optionally a different 'by' one; got "
                            f"{list(focal)}.")
    axes = [_values(data[c], n, "x" if k == 0 else "by") for k, c in enumerate(focal)]
    mesh = np.meshgrid(*[np.arange(len(a)) for a in axes], indexing="xy")  # x fastest
    grid = pd.DataFrame({c: [axes[k][i] for i in mesh[k].ravel()]
                         for k, c in enumerate(focal)})
    for c in cols:
        if c not in focal:
            grid[c] = at.get(c, _reference_value(data[c]))
    return grid


def _check_prob(prob: float) -> None:
    if not 0 < prob < 1:
        raise BayesLMMError(f"prob must be in (0, 1), got {prob!r}.")


def effects_table(result, focal: Sequence[str], *, prob: float = 0.95, n: int = 50,
                  at: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """The conditional-effects table of a formula-model result (see the module doc).

    Examples
    --------
    >>> effects_table(mapfit, ["Days"], n=2).columns.tolist()  # mapfit: see MapResult
    ['Days', 'estimate', 'se', 'lower', 'upper']
    """
    _check_prob(prob)
    design = result._design
    if design is None:
        raise BayesLMMError("This result holds no design; refit to compute effects.")
    grid = reference_grid(design, list(focal), n=n, at=at)
    X = evaluate_new_data(design, grid).X
    out = grid[list(focal)].copy()
    if hasattr(result, "idata"):
        beta = result.idata.posterior["beta"].values.reshape(-1, X.shape[1])
        draws = beta @ X.T
        lo, hi = np.quantile(draws, [(1 - prob) / 2, (1 + prob) / 2], axis=0)
        out["estimate"], out["lower"], out["upper"] = draws.mean(axis=0), lo, hi
        return out
    fit = X @ result.fixef.to_numpy()
    se = np.sqrt(np.einsum("np,pq,nq->n", X, result.vcov.to_numpy(), X))
    z = stats.norm.ppf((1 + prob) / 2)
    out["estimate"], out["se"] = fit, se
    out["lower"], out["upper"] = fit - z * se, fit + z * se
    return out


class EffectsMixin:
    """``effects_table``, for the results of formula models."""

    __slots__ = ()

    def effects_table(self, x: str, by: str | None = None, *, prob: float = 0.95,
                      n: int = 50, at: Mapping[str, Any] | None = None) -> pd.DataFrame:
        """Conditional effects: the population-level prediction over a grid of ``x`` (and ``by``).

        Other predictors are held at reference values: numeric ones at their mean,
        factors (grouping factors too) at their reference level; ``at={"col": value}``
        sets them. The random effects are not included (``Xβ``: a typical group).

        Parameters
        ----------
        x : str
            The predictor on the grid: ``n`` values over its range, or a factor's levels.
        by : str, optional
            A second predictor: a factor's levels, or a numeric one's mean and mean ± sd.
        prob : float
            Probability of the interval: equal-tailed posterior interval of ``xᵀβ``, or
            for an ML/REML fit the Wald confidence band ``xᵀβ̂ ± z·se``.
        n : int
            Grid size of a numeric ``x``.
        at : mapping, optional
            Values for predictors that are not on the grid.

        Returns
        -------
        DataFrame
            The grid's columns, ``estimate``, (``se`` for ML/REML,) ``lower``, ``upper``.

        Examples
        --------
        >>> tab = mapfit.effects_table("Days", n=2)  # mapfit: see MapResult
        >>> tab[["Days", "estimate"]].round(2)
           Days  estimate
        0   0.0    251.41
        1   9.0    345.61
        """
        focal = [x] if by is None else [x, by]
        return effects_table(self, focal, prob=prob, n=n, at=at)
