"""Posterior predictive checks: the response's distribution (ArviZ's ``plot_ppc``) and
a statistic of each group against its predictive distribution.

The examples use ``post``, the sleepstudy posterior of the examples of
:class:`~bayeslmm.results.posterior.PosteriorResult`.

Examples
--------
>>> ax = ppc_groups(post, "Subject", stat="sd", random_seed=1)
>>> ax.get_xlabel()
'sd of Reaction per Subject'
"""

from __future__ import annotations

from collections.abc import Callable

import arviz as az
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..errors import BayesLMMError
from .ranef import term_of

__all__ = ["ppc", "ppc_groups", "ppc_groups_table"]

_STATS: dict[str, Callable] = {"mean": np.mean, "sd": lambda v, axis: np.std(v, axis=axis,
                                                                            ddof=1),
                               "min": np.min, "max": np.max, "median": np.median}


def ppc(result, *, num_pp_samples: int = 100, random_seed: int | None = None, ax=None):
    """Posterior predictive check of the response (ArviZ's ``plot_ppc``), axis named after it.

    Examples
    --------
    >>> ax = ppc(post, num_pp_samples=20, random_seed=1)  # post: see the module docstring
    >>> [t.get_text() for t in ax.get_legend().get_texts()], ax.get_xlabel()
    (['Posterior predictive', 'Observed', 'Posterior predictive mean'], 'Reaction')
    """
    idata = result.idata
    if "posterior_predictive" not in idata.groups():
        idata = result.posterior_predictive(random_seed=random_seed)
    ax = az.plot_ppc(idata, num_pp_samples=num_pp_samples, ax=ax, random_seed=random_seed)
    ax = np.ravel(ax)[0]
    ax.set_xlabel(result._design.response)
    return ax


def ppc_groups_table(result, group: str, *, stat: str | Callable = "mean",
                     num_pp_samples: int = 500, random_seed: int | None = None,
                     prob: float = 0.9) -> pd.DataFrame:
    """Per level: the observed statistic, its predictive interval and its p-value.

    The p-value is the share of replicated statistics below the observed one (the
    posterior predictive p-value).

    ``stat``: ``"mean"``, ``"sd"``, ``"min"``, ``"max"``, ``"median"`` or a function
    ``f(values, axis)``. Replicated data are new responses of the same groups
    (``predict(kind="response")``), ``num_pp_samples`` draws of them.

    Examples
    --------
    >>> tab = ppc_groups_table(post, "Subject", random_seed=1)  # post: see the module doc
    >>> tab.columns.tolist(), len(tab)
    (['n', 'observed', 'lower', 'upper', 'p_value'], 18)
    """
    t = term_of(result, group)
    f = _STATS.get(stat) if isinstance(stat, str) else stat
    if f is None:
        raise BayesLMMError(f"stat must be one of {sorted(_STATS)} or a function "
                            f"f(values, axis); got {stat!r}.")
    yrep = result.predict(kind="response", random_seed=random_seed).values
    yrep = yrep.reshape(-1, yrep.shape[-1])
    rng = np.random.default_rng(random_seed)
    if len(yrep) > num_pp_samples:
        yrep = yrep[rng.choice(len(yrep), num_pp_samples, replace=False)]
    y = result._design.y
    rows = []
    for k in range(t.n_levels):
        idx = t.codes == k
        rep = np.asarray(f(yrep[:, idx], axis=1))
        obs = float(f(y[idx][None, :], axis=1)[0])
        lo, hi = np.quantile(rep, [(1 - prob) / 2, (1 + prob) / 2])
        rows.append([int(idx.sum()), obs, lo, hi, float(np.mean(rep < obs))])
    return pd.DataFrame(rows, index=pd.Index(t.levels, name=group),
                        columns=["n", "observed", "lower", "upper", "p_value"])


def ppc_groups(result, group: str, *, stat: str | Callable = "mean",
               num_pp_samples: int = 500, random_seed: int | None = None,
               prob: float = 0.9, ax=None):
    """A statistic of each group against its posterior predictive distribution.

    One row per level (sorted by the observed value): the replicated statistic's
    ``prob`` interval (a line) and its observed value (a dot, red where it falls
    outside). See :func:`ppc_groups_table` for the numbers.

    Examples
    --------
    >>> ax = ppc_groups(post, "Subject", random_seed=1)  # post: see the module docstring
    >>> ax.get_xlabel(), len(ax.get_yticklabels())
    ('mean of Reaction per Subject', 18)
    """
    tab = ppc_groups_table(result, group, stat=stat, num_pp_samples=num_pp_samples,
                           random_seed=random_seed, prob=prob).sort_values("observed")
    ax = ax or plt.subplots(figsize=(5, max(3, 0.2 * len(tab))))[1]
    ypos = np.arange(len(tab))
    out = (tab["observed"] < tab["lower"]) | (tab["observed"] > tab["upper"])
    ax.hlines(ypos, tab["lower"], tab["upper"], color="C0", lw=2, alpha=0.6,
              label=f"predicted ({int(prob * 100)}% interval)")
    ax.plot(tab["observed"][~out], ypos[~out], "o", color="k", ms=4, label="observed")
    if out.any():
        ax.plot(tab["observed"][out], ypos[out], "o", color="C3", ms=5,
                label="observed, outside")
    ax.set_yticks(ypos, tab.index, fontsize=7 if len(tab) > 30 else 9)
    name = stat if isinstance(stat, str) else getattr(stat, "__name__", "statistic")
    ax.set_xlabel(f"{name} of {result._design.response} per {group}")
    ax.set_title(f"Posterior predictive check by {group}: {int(out.sum())} of {len(tab)} "
                 "outside", fontsize=10)
    ax.legend(fontsize=8)
    ax.figure.tight_layout()
    return ax
