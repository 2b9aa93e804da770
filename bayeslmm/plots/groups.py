"""Per-group fitted lines, lme4's ``xyplot`` lattice: one small panel per level of a
grouping factor with its data, the group's fitted line and band, and the population
line.

Each panel's line runs over that group's observed range of ``x``; the other predictors
take the group's own values (a factor its first value in the group, a numeric one its
mean in the group). The group's line includes its random effects (a posterior: mean
and equal-tailed ``prob`` interval of ``Xβ + Zb``; an ML/REML fit: the fitted value
and ± z·se, with lme4's conditional variances), the population line is ``Xβ`` alone.
With many levels the panels come a page at a time (``page=``), or for chosen
``levels=``, or a random ``sample=`` of them.

Examples
--------
``mapfit``: the sleepstudy REML fit of :class:`~bayeslmm.MapResult`.

>>> axes = group_fits(mapfit, "Days")
>>> axes.shape, axes[0].get_title()
((18,), '308')
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats

from ..errors import BayesLMMError
from ..results.effects import is_factor
from ..results.group_loglik import check_group

__all__ = ["group_fits", "group_grid"]


def group_grid(result, x: str, group: str, levels: Sequence[str], n: int = 20) -> pd.DataFrame:
    """Rows over each level's range of ``x``, other predictors at the level's own values.

    Examples
    --------
    >>> group_grid(mapfit, "Days", "Subject", ["308"], n=3)  # mapfit: see MapResult
       Days Subject level
    0   0.0     308   308
    1   4.5     308   308
    2   9.0     308   308
    """
    d = result._design
    data = d.data
    labels = data[group].astype(str).to_numpy()
    parts = []
    for lev in levels:
        rows = data[labels == str(lev)]
        part = pd.DataFrame({x: np.linspace(rows[x].min(), rows[x].max(), n)})
        for c in d.predictors:
            if c != x:
                part[c] = rows[c].iloc[0] if is_factor(rows[c]) else rows[c].mean()
        part["level"] = str(lev)
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def _bands(result, grid: pd.DataFrame, prob: float) -> tuple[np.ndarray, ...]:
    """Group line, its band, and the population line on ``grid``."""
    new = grid.drop(columns="level")
    if hasattr(result, "idata"):
        draws = result.predict(new).values.reshape(-1, len(new))
        lo, hi = np.quantile(draws, [(1 - prob) / 2, (1 + prob) / 2], axis=0)
        pop = result.predict(new, include_random=False).values.reshape(-1, len(new))
        return draws.mean(axis=0), lo, hi, pop.mean(axis=0)
    fit = result.predict(new, se_fit=True)
    z = stats.norm.ppf((1 + prob) / 2)
    pop = result.predict(new, include_random=False).to_numpy()
    return (fit["fit"].to_numpy(), (fit["fit"] - z * fit["se"]).to_numpy(),
            (fit["fit"] + z * fit["se"]).to_numpy(), pop)


def group_fits(result, x: str, *, group: str | None = None,
               levels: Sequence[str] | None = None, page: int = 0, per_page: int = 24,
               sample: int | None = None, random_seed: int | None = None,
               prob: float = 0.95, ncols: int = 6):
    """One panel per group: its data, its fitted line with band, and the population line.

    Parameters
    ----------
    result : PosteriorResult or MapResult
    x : str
        A numeric predictor (the x axis of every panel).
    group : str, optional
        The grouping factor (default: the model's only one).
    levels : sequence of str, optional
        The levels to draw; else ``per_page`` of them, page ``page`` (from 0) in the
        factor's level order, or a random ``sample`` of that many.
    prob : float
        Probability of each group's band.
    ncols : int
        Panels per row.

    Returns
    -------
    ndarray of Axes
        One per panel drawn (the figure is ``axes[0].figure``).

    Examples
    --------
    >>> axes = group_fits(mapfit, "Days", per_page=6, page=1)  # mapfit: see MapResult
    >>> len(axes), axes[0].figure.get_suptitle()
    (6, 'Reaction by Days for each Subject (page 2 of 3)')
    """
    d = result._design
    group = check_group(d, group)
    if x not in d.data or is_factor(d.data[x]):
        raise BayesLMMError(f"x must be a numeric predictor of {d.spec.formula!r}; got {x!r}.")
    all_levels = list(d.term(group).levels)
    pages = max(1, math.ceil(len(all_levels) / per_page))
    note = ""
    if levels is None and sample is not None:
        rng = np.random.default_rng(random_seed)
        idx = np.sort(rng.choice(len(all_levels), min(sample, len(all_levels)), replace=False))
        levels = [all_levels[i] for i in idx]
        note = f" ({len(levels)} of {len(all_levels)}, sampled)"
    elif levels is None:
        if not 0 <= page < pages:
            raise BayesLMMError(f"page must be in 0..{pages - 1} ({len(all_levels)} levels, "
                                f"{per_page} a page); got {page}.")
        levels = all_levels[page * per_page:(page + 1) * per_page]
        note = f" (page {page + 1} of {pages})" if pages > 1 else ""
    unknown = [lev for lev in levels if str(lev) not in all_levels]
    if unknown:
        raise BayesLMMError(f"Unknown level(s) {unknown} of {group!r}.")
    grid = group_grid(result, x, group, levels)
    mean, lo, hi, pop = _bands(result, grid, prob)
    nc = min(ncols, len(levels))
    nr = math.ceil(len(levels) / nc)
    fig, axes = plt.subplots(nr, nc, figsize=(1.9 * nc + 0.6, 1.7 * nr + 0.7), sharex=True,
                             sharey=True, squeeze=False)
    labels = d.data[group].astype(str).to_numpy()
    for k, ax in enumerate(axes.ravel()):
        if k >= len(levels):
            ax.set_visible(False)
            continue
        lev = str(levels[k])
        g = (grid["level"] == lev).to_numpy()
        ax.fill_between(grid[x][g], lo[g], hi[g], color="C0", alpha=0.25, lw=0)
        ax.plot(grid[x][g], pop[g], color="grey", ls="--", lw=1)
        ax.plot(grid[x][g], mean[g], color="C0", lw=1.5)
        rows = labels == lev
        ax.plot(d.data[x].to_numpy()[rows], d.y[rows], "o", color="k", ms=2.5)
        ax.set_title(lev, fontsize=8, pad=2)
        ax.tick_params(labelsize=7)
    fig.supxlabel(x, fontsize=9)
    fig.supylabel(d.response, fontsize=9)
    fig.suptitle(f"{d.response} by {x} for each {group}{note}", fontsize=10)
    fig.tight_layout()
    return axes.ravel()[:len(levels)]
