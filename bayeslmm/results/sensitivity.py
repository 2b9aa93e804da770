"""Power-scaling sensitivity (Kallioinen, Paananen, Bürkner & Vehtari 2023), through
ArviZ's ``psens``.

The prior (or the likelihood) is raised to a power α near 1 and the posterior
reweighted by Pareto-smoothed importance sampling, without refitting; the diagnostic
is how fast each parameter's posterior moves (a cumulative Jensen-Shannon distance
per unit log α). Their rule of thumb, used here: a value of 0.05 or more is
"sensitive". Prior-sensitive and likelihood-sensitive: a possible **prior-data
conflict**; prior-sensitive but not likelihood-sensitive: the data say little about
the parameter and **the prior dominates** (typical of a variance component with few
groups).

The prior is the one the user states: ``beta``, each ``sd_<group>``, ``corr_<group>``
(LKJ), ``sigma`` and the residual parameters, evaluated on every draw at fit time
(the ``log_prior`` group of ``idata``). The likelihood is the marginal one (random
effects integrated out, summed over the levels of the first grouping factor) where
the model allows it (iid residuals, no crossed factors), else the observation-level
one given the drawn random effects.

Examples
--------
``post``: the sleepstudy posterior of :class:`~bayeslmm.PosteriorResult`.

>>> tab = post.sensitivity()
>>> tab.columns.tolist()
['prior', 'likelihood', 'diagnosis']
>>> bool((tab.loc["sd_Subject[Days]", "likelihood"] > 0.05))
True
"""

from __future__ import annotations

import warnings

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from ..errors import BayesLMMError

__all__ = ["SensitivityMixin", "THRESHOLD", "diagnose", "flatten"]

#: Kallioinen et al.'s threshold of the power-scaling diagnostic.
THRESHOLD = 0.05


def diagnose(prior: float, likelihood: float) -> str:
    """Kallioinen et al.'s reading of the two diagnostics (as R's priorsense).

    >>> diagnose(0.1, 0.2), diagnose(0.1, 0.01), diagnose(0.01, 0.2)
    ('prior-data conflict', 'prior dominates (weak likelihood)', '-')
    """
    if prior >= THRESHOLD and likelihood >= THRESHOLD:
        return "prior-data conflict"
    if prior >= THRESHOLD:
        return "prior dominates (weak likelihood)"
    return "-"


def flatten(ds: xr.Dataset) -> pd.Series:
    """One value per parameter element, named as ArviZ's summary names them.

    >>> flatten(xr.Dataset({"a": ("k", [1.0, 2.0]), "b": 3.0}, coords={"k": ["x", "y"]}))
    a[x]    1.0
    a[y]    2.0
    b       3.0
    dtype: float64
    """
    out = {}
    for name, da in ds.data_vars.items():
        if not da.dims:
            out[name] = float(da)
            continue
        for idx in np.ndindex(da.shape):
            label = ", ".join(str(da[d].values[i]) for d, i in zip(da.dims, idx, strict=True))
            out[f"{name}[{label}]"] = float(da.values[idx])
    return pd.Series(out, dtype=float)


class SensitivityMixin:
    """``sensitivity``, for posterior results of formula models."""

    __slots__ = ()

    def _sensitivity_data(self) -> az.InferenceData:
        """Parameters, ``log_prior`` and the likelihood terms psens reads."""
        if "log_prior" not in self.idata.groups():
            raise BayesLMMError("This posterior holds no log_prior group (it was made by "
                                "an older bayeslmm, or not by LMM.fit): refit to check "
                                "prior sensitivity.")
        d = self._design
        level = "observation"
        if self._residual is None and d.terms:
            try:
                ll = self.log_likelihood(level="group", group=d.terms[0].group)
                level = "group"
            except BayesLMMError:  # crossed factors: observation level instead
                pass
        if level == "observation":
            ll = self.log_likelihood()
        return az.InferenceData(posterior=self._params(), log_prior=self.idata.log_prior,
                                log_likelihood=ll.log_likelihood)

    def sensitivity(self, *, delta: float = 0.01) -> pd.DataFrame:
        """Power-scaling sensitivity of each parameter to its prior and to the likelihood.

        Returns
        -------
        DataFrame
            One row per parameter (``summary()``'s names): ``prior`` and ``likelihood``
            diagnostics (0.05 or more: sensitive) and the ``diagnosis``: ``"prior-data
            conflict"``, ``"prior dominates (weak likelihood)"`` (the data say little
            about it: its posterior repeats its prior) or ``"-"``.
            See :mod:`bayeslmm.results.sensitivity`.

        Examples
        --------
        >>> tab = post.sensitivity()  # post: see PosteriorResult
        >>> tab.loc["sigma", "diagnosis"]
        '-'
        """
        data = self._sensitivity_data()
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*Pareto.*")
            prior = flatten(az.psens(data, component="prior", delta=delta))
            lik = flatten(az.psens(data, component="likelihood", delta=delta))
        tab = pd.DataFrame({"prior": prior, "likelihood": lik})
        tab["diagnosis"] = [diagnose(p, q) for p, q in zip(tab["prior"], tab["likelihood"],
                                                           strict=True)]
        return tab
