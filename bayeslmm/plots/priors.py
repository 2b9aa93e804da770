"""Prior against posterior for each variance component, with its power-scaling
sensitivity (:mod:`bayeslmm.results.sensitivity`).

One panel per standard deviation (each ``sd_<group>[term]`` and ``sigma``): the prior's
density (from the ``prior`` draws stored at fit time) and the posterior's. Where the
posterior is sensitive to the prior (≥ 0.05) but not to the likelihood (< 0.05), the
panel says that the data say little about the component: its posterior is mostly its
prior (typical of a group-level sd with few groups).

Examples
--------
``post``: the sleepstudy posterior of :class:`~bayeslmm.PosteriorResult`.

>>> axes = prior_posterior(post)
>>> [ax.get_title() for ax in axes]
['sd_Subject[Intercept]', 'sd_Subject[Days]', 'sigma']
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
from scipy import stats

from ..errors import BayesLMMError
from ..results.sensitivity import THRESHOLD

__all__ = ["prior_posterior", "variance_components"]


def variance_components(idata) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, prior draws, posterior draws) of each standard deviation.

    Examples
    --------
    >>> [name for name, _, _ in variance_components(post.idata)]  # post: see above
    ['sd_Subject[Intercept]', 'sd_Subject[Days]', 'sigma']
    """
    if "prior" not in idata.groups():
        raise BayesLMMError("This posterior holds no prior draws (it was made by an older "
                            "bayeslmm, or not by LMM.fit): refit to compare prior and "
                            "posterior.")
    out = []
    names = sorted((n for n in idata.posterior.data_vars
                    if (n.startswith("sd_") or n == "sigma") and n in idata.prior),
                   key=lambda n: n == "sigma")  # the groups' sds first, σ last
    for name in names:
        da = idata.posterior[name]
        prior = idata.prior[name]
        if da.ndim == 2:
            out.append((name, prior.values.ravel(), da.values.ravel()))
            continue
        dim = da.dims[-1]
        for term in da[dim].values:
            out.append((f"{name}[{term}]", prior.sel({dim: term}).values.ravel(),
                        da.sel({dim: term}).values.ravel()))
    return out


def _density(ax, draws: np.ndarray, xs: np.ndarray, **style) -> None:
    draws = draws[np.isfinite(draws)]
    kde = stats.gaussian_kde(np.concatenate([draws, -draws]))  # reflected at 0
    ax.plot(xs, 2 * kde(xs), **style)


def prior_posterior(result, *, ncols: int = 3):
    """Each variance component's prior and posterior densities, with its sensitivity.

    Each panel's title is the parameter; its text gives the power-scaling
    sensitivities to the prior and to the likelihood, and says when the data say
    little about the component (prior-sensitive, likelihood-insensitive).

    Returns
    -------
    ndarray of Axes

    Examples
    --------
    >>> axes = prior_posterior(post)  # post: see the module docstring
    >>> [line.get_label() for line in axes[0].get_lines()]
    ['prior', 'posterior']
    """
    comps = variance_components(result.idata)
    sens = result.sensitivity()
    nc = min(ncols, len(comps))
    nr = math.ceil(len(comps) / nc)
    fig, axes = plt.subplots(nr, nc, figsize=(3.4 * nc, 2.6 * nr), squeeze=False)
    for ax, (name, prior, post) in zip(axes.ravel(), comps, strict=False):
        hi = max(np.quantile(post, 0.999) * 1.3, np.quantile(prior, 0.9))
        xs = np.linspace(0, hi, 300)
        _density(ax, prior, xs, color="grey", ls="--", label="prior")
        _density(ax, post, xs, color="C0", lw=2, label="posterior")
        ax.set_title(name, fontsize=9)
        ax.set_yticks([])
        ax.tick_params(labelsize=7)
        text = "sensitivity: prior {:.3f}, likelihood {:.3f}".format(
            *sens.loc[name, ["prior", "likelihood"]]) if name in sens.index else ""
        if name in sens.index and (sens.loc[name, "prior"] >= THRESHOLD
                                   > sens.loc[name, "likelihood"]):
            text += "\nthe data say little about it:\nits posterior is mostly its prior"
        ax.text(0.98, 0.97, text, transform=ax.transAxes, ha="right", va="top", fontsize=6.5,
                color="C3" if "little" in text else "k")
    for ax in axes.ravel()[len(comps):]:
        ax.set_visible(False)
    axes.ravel()[0].legend(fontsize=7, loc="center right")
    fig.suptitle("Prior (dashed) and posterior of each standard deviation", fontsize=10)
    fig.tight_layout()
    return axes.ravel()[:len(comps)]
