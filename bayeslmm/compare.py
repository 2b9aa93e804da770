"""Model comparison by PSIS-LOO or WAIC (through ArviZ).

The pointwise log-likelihood is per observation, conditional on the drawn random
effects, for iid residuals (LOO then estimates the predictive accuracy for new
observations of the same groups), and per correlation group for residuals
correlated within groups (LOO leaves out a whole group). Models compared must be
fitted to the same rows, and have the same kind of pointwise terms.

Examples
--------
>>> import bayeslmm as blm
>>> df = blm.datasets.load("sleepstudy")
>>> kw = dict(draws=200, tune=300, chains=2, random_seed=1, progressbar=False)
>>> fits = {"intercepts": blm.LMM("Reaction ~ Days + (1 | Subject)", df).fit(**kw),
...         "slopes": blm.LMM("Reaction ~ Days + (Days | Subject)", df).fit(**kw)}
>>> table = blm.compare(fits)  # doctest: +SKIP
>>> table.index[0]  # doctest: +SKIP
'slopes'
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
