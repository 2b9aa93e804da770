"""Plots of the random effects (caterpillar, shrinkage) and of the fixed effects (forest).

Each takes a posterior result, returns the matplotlib ``Axes`` it drew on and accepts
``ax=``. The examples use ``post``, the sleepstudy posterior of the examples of
:class:`~bayeslmm.results.posterior.PosteriorResult`.

Examples
--------
>>> import matplotlib
>>> matplotlib.use("Agg")
>>> ax = caterpillar(post, "Subject")
>>> ax.get_title(), len(ax.get_yticklabels())
('Random effects by Subject', 18)
"""

from __future__ import annotations

import arviz as az
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..errors import BayesLMMError

__all__ = ["caterpillar", "shrinkage", "shrinkage_table", "forest", "term_of"]


def term_of(result, group: str):
    """The random-effect term of ``group``, or an error naming the model's factors.

    >>> term_of(mapfit, "Subject").term_names  # mapfit: see MapResult
    ['Intercept', 'Days']
    """
    try:
        return result._design.term(group)
    except KeyError:
        raise BayesLMMError(f"No grouping factor {group!r}; the model has "
                            f"{list(result.ngroups)}.") from None


def caterpillar(result, group: str, term: str | None = None, *, hdi_prob: float = 0.94,
                ax=None):
    """Random effects of one grouping factor, sorted, with their HDIs.

    Examples
    --------
    >>> ax = caterpillar(post, "Subject", "Days")  # post: see the module docstring
    >>> ax.get_xlabel()
    'b[Days] (94% HDI)'
    """
    t = term_of(result, group)
    term = term or t.term_names[0]
    if term not in t.term_names:
        raise BayesLMMError(f"No term {term!r} for {group!r}; have {t.term_names}.")
    b = result.idata.posterior[f"b_{group}"].sel({f"{group}_term": term})
    hdi = az.hdi(b, hdi_prob=hdi_prob)[f"b_{group}"].values
    mean = b.mean(("chain", "draw")).values
    order = np.argsort(mean)
    ax = ax or plt.subplots(figsize=(5, max(3, 0.18 * len(order))))[1]
    ypos = np.arange(len(order))
    ax.hlines(ypos, hdi[order, 0], hdi[order, 1], color="C0", lw=1.5)
    ax.plot(mean[order], ypos, "o", color="C0", ms=3)
    ax.axvline(0, color="grey", lw=0.8, ls="--")
    ax.set_yticks(ypos, [t.levels[i] for i in order], fontsize=7 if len(order) > 30 else 9)
    ax.set_xlabel(f"b[{term}] ({int(hdi_prob * 100)}% HDI)")
    ax.set_title(f"Random effects by {group}")
    ax.figure.tight_layout()
    return ax


def shrinkage_table(result, group: str) -> pd.DataFrame:
    """Per level: no-pooling, partial-pooling and complete-pooling coefficients.

    No pooling: least squares of the response on the term's columns within the level
    (after removing the other fixed and random effects at their posterior means).
    Partial pooling: posterior mean of ``β + b``. Complete pooling: ``β``.

    Examples
    --------
    >>> tab = shrinkage_table(post, "Subject")  # post: see the module docstring
    >>> tab.shape
    (18, 7)
    >>> tab.loc["308", ["n", "no_pooling[Intercept]", "no_pooling[Days]"]].round(2)
    n                         10.00
    no_pooling[Intercept]    244.19
    no_pooling[Days]          21.76
    Name: 308, dtype: float64
    """
    d = result._design
    t = term_of(result, group)
    fe = result.fixef
    re = result.ranef
    beta_term = np.array([fe.get(n, 0.0) for n in t.term_names])
    offset = d.X @ fe.to_numpy() - t.Z @ beta_term
    for other in d.terms:
        if other.group != group:
            offset = offset + np.einsum("nq,nq->n", other.Z, re[other.group].to_numpy()[
                other.codes])
    resid = d.y - offset
    rows = []
    for k in range(t.n_levels):
        idx = t.codes == k
        Zk = t.Z[idx]
        coef = np.full(t.q, np.nan)
        if idx.sum() >= t.q and np.linalg.matrix_rank(Zk) == t.q:
            coef = np.linalg.lstsq(Zk, resid[idx], rcond=None)[0]
        rows.append([int(idx.sum()), *coef, *(beta_term + re[group].to_numpy()[k]),
                     *beta_term])
    cols = (["n"] + [f"no_pooling[{n}]" for n in t.term_names]
            + [f"partial_pooling[{n}]" for n in t.term_names]
            + [f"complete_pooling[{n}]" for n in t.term_names])
    return pd.DataFrame(rows, index=t.levels, columns=cols)


def shrinkage(result, group: str, *, ax=None):
    """Shrinkage plot: each level's no-pooling estimate moves to its partial-pooling one.

    One coefficient: levels along the x axis (sorted by the no-pooling estimate), the
    complete-pooling value as a line. Two or more: the first two coefficients as a
    plane, an arrow per level.

    Examples
    --------
    >>> ax = shrinkage(post, "Subject")  # post: see the module docstring
    >>> ax.get_xlabel(), ax.get_ylabel()
    ('Intercept', 'Days')
    """
    t = term_of(result, group)
    tab = shrinkage_table(result, group)
    names = t.term_names
    if t.q == 1:
        tab = tab.sort_values(f"no_pooling[{names[0]}]")
        ax = ax or plt.subplots(figsize=(max(5, 0.12 * len(tab)), 4))[1]
        x = np.arange(len(tab))
        no, part = tab[f"no_pooling[{names[0]}]"], tab[f"partial_pooling[{names[0]}]"]
        ax.vlines(x, no, part, color="grey", lw=0.8)
        ax.plot(x, no, "o", mfc="white", color="C1", label="no pooling (per-group fit)")
        ax.plot(x, part, "o", color="C0", label="partial pooling (mixed model)")
        ax.axhline(tab[f"complete_pooling[{names[0]}]"].iloc[0], color="k", ls="--",
                   label="complete pooling")
        ax.set_xticks(x, tab.index, rotation=90, fontsize=6 if len(x) > 30 else 8)
        ax.set_ylabel(names[0])
    else:
        ax = ax or plt.subplots(figsize=(5.5, 5))[1]
        a, b = names[:2]
        for _, r in tab.iterrows():
            ax.annotate("", xy=(r[f"partial_pooling[{a}]"], r[f"partial_pooling[{b}]"]),
                        xytext=(r[f"no_pooling[{a}]"], r[f"no_pooling[{b}]"]),
                        arrowprops={"arrowstyle": "->", "color": "grey", "lw": 0.8})
        ax.plot(tab[f"no_pooling[{a}]"], tab[f"no_pooling[{b}]"], "o", mfc="white",
                color="C1", label="no pooling (per-group fit)")
        ax.plot(tab[f"partial_pooling[{a}]"], tab[f"partial_pooling[{b}]"], "o", color="C0",
                label="partial pooling (mixed model)")
        ax.plot(tab[f"complete_pooling[{a}]"].iloc[:1], tab[f"complete_pooling[{b}]"].iloc[:1],
                "k+", ms=14, mew=2, label="complete pooling")
        ax.set_xlabel(a)
        ax.set_ylabel(b)
    ax.set_title(f"Shrinkage by {group}")
    ax.legend(fontsize=8)
    ax.figure.tight_layout()
    return ax


def forest(result, *, hdi_prob: float = 0.94, ax=None):
    """Forest plot of the fixed effects (ArviZ).

    Examples
    --------
    >>> ax = forest(post, hdi_prob=0.9)  # post: see the module docstring
    >>> ax.get_title()
    '90.0% HDI'
    """
    axes = az.plot_forest(result.idata, var_names=["beta"], combined=True,
                          hdi_prob=hdi_prob, ax=ax)
    return np.ravel(axes)[0]
