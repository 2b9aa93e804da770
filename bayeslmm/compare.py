"""Model comparison by PSIS-LOO or WAIC (through ArviZ), per observation or per group.

``level="observation"`` (the default): the pointwise log-likelihood is per
observation, conditional on the drawn random effects, for iid residuals (LOO then
estimates the predictive accuracy for new observations of the same groups), and per
correlation group for residuals correlated within groups (LOO leaves out a whole
group). ``level="group"``: per level of a grouping factor, its marginal
log-likelihood with the random effects integrated out exactly, so PSIS-LOO is
leave-one-group-out (Merkle, Furr & Rabe-Hesketh 2019): it estimates the predictive
accuracy for new groups. Models compared must
be fitted to the same rows, and have the same kind of pointwise terms; the table's
``level`` column says which was used.

Examples
--------
``post`` and ``post_int`` are sleepstudy fits with random slopes, ``(Days | Subject)``,
and with random intercepts only, ``(1 | Subject)`` (2 chains × 500 draws each; see the
examples of :class:`~bayeslmm.results.posterior.PosteriorResult`). The slopes predict better:

>>> table = compare({"intercepts": post_int, "slopes": post})
>>> table.index.tolist(), bool(table.loc["intercepts", "elpd_diff"] > 0)
(['slopes', 'intercepts'], True)

Leaving one subject out at a time:

>>> table = compare({"intercepts": post_int, "slopes": post}, level="group")
>>> table.index[0], table["level"].iloc[0]
('slopes', 'group (Subject)')
"""

from __future__ import annotations

from collections.abc import Mapping

import arviz as az
import numpy as np
import pandas as pd

from .dask.frame import POINTWISE_OUT_OF_CORE
from .errors import BayesLMMError
from .results.base import MapBase

__all__ = ["compare"]


def compare(results: Mapping, *, ic: str = "loo", scale: str = "log",
            level: str = "observation", group: str | None = None) -> pd.DataFrame:
    """Rank posterior results by expected log predictive density.

    Parameters
    ----------
    results : mapping of name → PosteriorResult
        At least two fits to the same observations.
    ic : {"loo", "waic"}
    scale : {"log", "negative_log", "deviance"}
    level : {"observation", "group"}
        Leave out one observation (given the groups' effects), or one level of
        ``group`` (its effects integrated out): predictions for new groups.
    group : str, optional
        The grouping factor for ``level="group"`` (default: the models' only one).

    Returns
    -------
    DataFrame
        ArviZ's comparison table (``elpd_loo``, ``p_loo``, ``elpd_diff``, ``weight``,
        ``se``, ``dse``, ``warning``), best model first, and ``level``: what was left
        out (``"observation"``, or ``"group (<factor>)"``).

    Examples
    --------
    >>> table = compare({"slopes": post, "intercepts": post_int}, ic="waic")  # see above
    >>> table.columns[:4].tolist()
    ['rank', 'elpd_waic', 'p_waic', 'elpd_diff']
    """
    if len(results) < 2:
        raise BayesLMMError("compare() needs at least two fitted models, as a dict name → fit.")
    if level not in ("observation", "group"):
        raise BayesLMMError(f"level must be 'observation' or 'group', got {level!r}.")
    if ic not in ("loo", "waic"):
        raise BayesLMMError(f"ic must be 'loo' or 'waic', got {ic!r}.")
    for name, r in results.items():
        if isinstance(r, MapBase):
            raise BayesLMMError(
                f"compare() ranks posterior fits by {ic.upper()}; {name!r} is an ML/REML fit. "
                "Compare ML/REML fits with blm.anova(...) (AIC, BIC and likelihood-ratio "
                "tests), or fit the models with .fit() to compare their posteriors.")
        if not callable(getattr(r, "log_likelihood", None)):
            raise BayesLMMError(f"compare() takes fitted results; {name!r} is a "
                                f"{type(r).__name__}. Pass what .fit() returns.")
        if not r._design.in_memory:
            raise BayesLMMError(f"compare(): model {name!r}: {POINTWISE_OUT_OF_CORE}")
    ys = {name: r._design.y for name, r in results.items()}
    first = next(iter(ys.values()))
    for name, y in ys.items():
        if len(y) != len(first) or not np.array_equal(y, first):
            raise BayesLMMError(
                f"Model {name!r} was fitted to different observations ({len(y)} rows) than "
                f"the first ({len(first)} rows); LOO needs the same rows in every model."
            )
    if level == "group" and group is None:
        group = _common_group(results)
    idatas = {name: r.log_likelihood(level=level, group=group) for name, r in results.items()}
    dims = {name: idata.log_likelihood["y"].dims[-1] for name, idata in idatas.items()}
    if len(set(dims.values())) > 1:
        raise BayesLMMError(
            f"The models have different pointwise terms ({dims}): models with correlated "
            "residuals are scored per correlation group, the others per observation. "
            "Compare models of one kind, or fit them all with the same correlation.")
    table = az.compare(idatas, ic=ic, scale=scale)
    table["level"] = "observation" if level == "observation" else f"group ({group})"
    return table


def _common_group(results: Mapping) -> str:
    """The one grouping factor every model has (for ``level="group"``)."""
    common = None
    for r in results.values():
        groups = set(r.ngroups)
        common = groups if common is None else common & groups
    if not common or len(common) > 1:
        raise BayesLMMError(f"level='group' leaves out the levels of one grouping factor "
                            f"that every model has; shared factors: {sorted(common or [])}. "
                            "Name one with group=...")
    return common.pop()
