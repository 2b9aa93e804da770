"""Conditional effects: the population-level prediction over one predictor (and a
second, ``by``), with its interval, the data optionally overlaid.

The numbers are ``result.effects_table(x, by)`` (:mod:`bayeslmm.results.effects`:
other predictors at reference values, numeric ones at their mean and factors at their
reference level); a posterior gives its mean and equal-tailed interval, an ML/REML fit
its estimate and Wald confidence band.

Examples
--------
``mapfit``: the sleepstudy REML fit of :class:`~bayeslmm.MapResult`.

>>> ax = effects(mapfit, "Days")
>>> ax.get_xlabel(), ax.get_ylabel()
('Days', 'Reaction')
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from ..results.effects import is_factor

__all__ = ["effects"]


def effects(result, x: str, by: str | None = None, *, prob: float = 0.95, n: int = 50,
            at: Mapping[str, Any] | None = None, data: bool = True, ax=None):
    """Plot the conditional effect of ``x`` (one line or set of points per ``by`` value).

    Parameters
    ----------
    result : PosteriorResult or MapResult
    x, by : str
        The predictor on the x axis, and optionally a second one (one curve per
        level, or at its mean and mean ± sd).
    prob : float
        Probability of the band (posterior interval, or Wald confidence band).
    n : int
        Grid size of a numeric ``x``.
    at : mapping, optional
        Values of the other predictors (default: reference values).
    data : bool
        Overlay the observations (coloured by ``by`` when it is a factor).
    ax : matplotlib Axes, optional

    Examples
    --------
    >>> import bayeslmm as blm
    >>> orth = blm.datasets.load("Orthodont")
    >>> fit = blm.LMM("distance ~ age * Sex + (age | Subject)", orth).fit_map()
    >>> ax = effects(fit, "age", by="Sex")
    >>> [t.get_text() for t in ax.get_legend().get_texts()]
    ['Male', 'Female']
    """
    tab = result.effects_table(x, by, prob=prob, n=n, at=at)
    d = result._design
    ax = ax or plt.subplots(figsize=(5.5, 4))[1]
    groups = [(None, tab)] if by is None else list(tab.groupby(by, sort=False, observed=True))
    factor_x = is_factor(d.data[x])
    for k, (label, part) in enumerate(groups):
        color = f"C{k}"
        name = None if label is None else (f"{label:.3g}" if isinstance(label, float)
                                           else str(label))
        if factor_x:
            pos = np.arange(len(part)) + (k - (len(groups) - 1) / 2) * 0.12
            ax.errorbar(pos, part["estimate"], yerr=[part["estimate"] - part["lower"],
                                                     part["upper"] - part["estimate"]],
                        fmt="o", color=color, capsize=3, label=name)
            ax.set_xticks(np.arange(len(part)), [str(v) for v in part[x]])
        else:
            ax.plot(part[x], part["estimate"], color=color, lw=2, label=name)
            ax.fill_between(part[x], part["lower"], part["upper"], color=color, alpha=0.25)
        if data and (by is None or is_factor(d.data[by])):
            mask = (np.ones(d.nobs, dtype=bool) if by is None
                     else (d.data[by].astype(str) == str(label)).to_numpy())
            xs = d.data[x].to_numpy()[mask]
            if factor_x:  # levels at their positions, jittered
                codes = {str(v): i for i, v in enumerate(part[x])}
                xs = np.array([codes[str(v)] for v in xs], dtype=float)
                xs = xs + np.random.default_rng(0).uniform(-0.15, 0.15, len(xs))
            ax.scatter(xs, d.y[mask], s=8, alpha=0.4, color=color)
    ax.set_xlabel(x)
    ax.set_ylabel(d.response)
    kind = "posterior mean" if hasattr(result, "idata") else "estimate"
    ax.set_title(f"Conditional effect of {x} ({kind}, {int(prob * 100)}% band)", fontsize=10)
    if by is not None:
        ax.legend(title=by, fontsize=8)
    ax.figure.tight_layout()
    return ax
