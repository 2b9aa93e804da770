"""Plots of fitted models (matplotlib; ArviZ where it already does the job).

=========================  ==============================================================
:func:`effects`            conditional effects: the population-level prediction over one
                           or two predictors, with its band and the data
:func:`group_fits`         one panel per group: data, the group's line, the population line
:func:`caterpillar`        a grouping factor's random effects with their intervals
:func:`shrinkage`          no pooling → partial pooling, per level
:func:`forest`             the fixed effects
:func:`ppc`                posterior predictive check of the response
:func:`ppc_groups`         a statistic per group against its predictive distribution
:func:`prior_posterior`    each variance component's prior and posterior, with its
                           power-scaling sensitivity
=========================  ==============================================================

Each returns the matplotlib ``Axes`` it drew on (an array of them for the panel plots).
The examples use ``post``, the sleepstudy posterior of the examples of
:class:`~bayeslmm.PosteriorResult`, and ``mapfit``, its REML fit
(:class:`~bayeslmm.MapResult`).

Examples
--------
>>> import matplotlib
>>> matplotlib.use("Agg")
>>> ax = caterpillar(post, "Subject")
>>> ax.get_title(), len(ax.get_yticklabels())
('Random effects by Subject', 18)
"""

from .checks import ppc, ppc_groups, ppc_groups_table
from .effects import effects
from .groups import group_fits
from .priors import prior_posterior
from .ranef import caterpillar, forest, shrinkage, shrinkage_table

__all__ = ["effects", "group_fits", "caterpillar", "shrinkage", "shrinkage_table", "forest",
           "ppc", "ppc_groups", "ppc_groups_table", "prior_posterior"]
