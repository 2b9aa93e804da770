"""Model comparison by PSIS-LOO or WAIC (through ArviZ).

The pointwise log-likelihood is per observation, conditional on the drawn random
effects, for iid residuals (LOO then estimates the predictive accuracy for new
observations of the same groups), and per correlation group for residuals
correlated within groups (LOO leaves out a whole group). Models compared must be
fitted to the same rows, and have the same kind of pointwise terms.

Examples
--------
``post`` and ``post_int`` are sleepstudy fits with random slopes, ``(Days | Subject)``,
and with random intercepts only, ``(1 | Subject)`` (2 chains × 500 draws each; see the
examples of :class:`~bayeslmm.results.posterior.PosteriorResult`). The slopes predict better:

>>> table = compare({"intercepts": post_int, "slopes": post})
>>> table.index.tolist(), bool(table.loc["intercepts", "elpd_diff"] > 0)
(['slopes', 'intercepts'], True)
"""

from __future__ import annotations

from collections.abc import Mapping

import arviz as az
import numpy as np
import pandas as pd

from .errors import BayesLMMError

__all__ = ["compare"]


def compare(results: Mapping, *, ic: str = "loo", scale: str = "log") -> pd.DataFrame:
    """Rank posterior results by expected log predictive density.

    Parameters
    ----------
    results : mapping of name → PosteriorResult
        At least two fits to the same observations.
    ic : {"loo", "waic"}
    scale : {"log", "negative_log", "deviance"}

    Returns
    -------
    DataFrame
        ArviZ's comparison table (``elpd_loo``, ``p_loo``, ``elpd_diff``, ``weight``,
        ``se``, ``dse``, ``warning``), best model first.

    Examples
    --------
    >>> table = compare({"slopes": post, "intercepts": post_int}, ic="waic")  # see above
    >>> table.columns[:4].tolist()
    ['rank', 'elpd_waic', 'p_waic', 'elpd_diff']
    """
    if len(results) < 2:
        raise BayesLMMError("compare() needs at least two fitted models, as a dict name → fit.")
    if ic not in ("loo", "waic"):
        raise BayesLMMError(f"ic must be 'loo' or 'waic', got {ic!r}.")
    ys = {name: r._design.y for name, r in results.items()}
    first = next(iter(ys.values()))
    for name, y in ys.items():
        if len(y) != len(first) or not np.array_equal(y, first):
            raise BayesLMMError(
                f"Model {name!r} was fitted to different observations ({len(y)} rows) than "
                f"the first ({len(first)} rows); LOO needs the same rows in every model."
            )
    idatas = {name: r.log_likelihood() for name, r in results.items()}
    dims = {name: idata.log_likelihood["y"].dims[-1] for name, idata in idatas.items()}
    if len(set(dims.values())) > 1:
        raise BayesLMMError(
            f"The models have different pointwise terms ({dims}): models with correlated "
            "residuals are scored per correlation group, the others per observation. "
            "Compare models of one kind, or fit them all with the same correlation.")
    return az.compare(idatas, ic=ic, scale=scale)
