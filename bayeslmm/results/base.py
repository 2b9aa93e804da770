"""What every result shares: its basic facts, lme4's names and a JSON-ready export.

:class:`ResultBase` is the base of the four results (:class:`~bayeslmm.PosteriorResult`,
:class:`~bayeslmm.MapResult`, :class:`~bayeslmm.KernelMapResult` and
:class:`~bayeslmm.KernelPosteriorResult`); :class:`MapBase` adds what an ML/REML fit has
(standard errors, the ``summary`` table, AIC and BIC), :class:`PosteriorBase` what NUTS
draws have (``idata``, the cached ArviZ ``summary``, sampling diagnostics and warnings);
:class:`SavableResult` gives ``save`` to the results of formula models (the kernel
results have their own).

The accessors are named and typed alike in every result: ``fixef`` is a Series named
``fixef`` (estimates or posterior means), ``varcorr`` has NaN where lme4 has ``NA``,
``ranef`` is indexed by the levels of its group (the index named after it), numbers
are Python floats.

Examples
--------
>>> lme4_name("age:Sex[Female]")
'age:SexFemale'
>>> jsonable({"a": np.float64(1.5), "b": [np.nan, np.inf], 1: np.arange(2)})
{'a': 1.5, 'b': [None, None], '1': [0, 1]}
"""

from __future__ import annotations

import math
import re
from typing import Any

import arviz as az
import numpy as np
import pandas as pd

from .codec import save
from .prior_table import PriorTable

__all__ = ["ResultBase", "MapBase", "PosteriorBase", "SavableResult", "HDI_PROB",
           "lme4_name", "jsonable", "records"]

#: Probability of the highest-density intervals of posterior summaries.
HDI_PROB = 0.94


def lme4_name(name: str) -> str:
    """lme4's name of a formulae fixed-effect column.

    ``Intercept`` → ``(Intercept)``; a level in brackets is appended to its factor's
    name in each part of an interaction (``age:Sex[Female]`` → ``age:SexFemale``).

    >>> [lme4_name(n) for n in ["Intercept", "Sex[Female]", "age:Sex[Female]", "x[.L]"]]
    ['(Intercept)', 'SexFemale', 'age:SexFemale', 'x.L']
    """
    if name == "Intercept":
        return "(Intercept)"
    return re.sub(r"\[([^\[\]]*)\]", r"\1", name)


def jsonable(v: Any) -> Any:
    """A value JSON can write: NumPy → Python, NaN, inf and NA → None, keys → str."""
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [jsonable(x) for x in v]
    if isinstance(v, np.ndarray):
        return jsonable(v.tolist())
    if isinstance(v, np.generic):
        v = v.item()
    if v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """DataFrame rows as JSON-ready dicts (NaN → None, NumPy scalars → Python)."""
    return jsonable(df.to_dict(orient="records"))


class ResultBase:
    """The accessors of every result: ``formula``, ``nobs``, ``ngroups``.

    Subclasses set ``_formula``, ``_nobs`` and ``_ngroups``, and give ``fixef``,
    ``sigma`` and ``varcorr`` (which ``to_dict`` exports).
    """

    __slots__ = ()
    _formula: str
    _nobs: int
    _ngroups: dict[str, int]
    #: ``"map"`` or ``"posterior"``: the ``kind`` entry of ``to_dict()``.
    _KIND: str

    @property
    def formula(self) -> str:
        """The model formula.

        Examples
        --------
        >>> mapfit.formula  # mapfit: see MapResult
        'Reaction ~ Days + (Days | Subject)'
        >>> kmap.formula  # kmap: see KernelMapResult
        'y ~ 1'
        """
        return str(self._formula)

    @property
    def nobs(self) -> int:
        """Number of observations.

        Examples
        --------
        >>> mapfit.nobs, kmap.nobs  # mapfit, kmap: see MapResult, KernelMapResult
        (180, 40)
        """
        return int(self._nobs)

    @property
    def ngroups(self) -> dict[str, int]:
        """Levels per grouping factor (with data, for a known covariance; none for a random matrix).

        Examples
        --------
        >>> mapfit.ngroups, kmap.ngroups  # mapfit, kmap: see MapResult, KernelMapResult
        ({'Subject': 18}, {})
        """
        return dict(self._ngroups)

    def _core_dict(self) -> dict[str, Any]:
        """The entries of ``to_dict()`` every result has."""
        fe = self.fixef
        return {"kind": self._KIND, "formula": self.formula, "nobs": self.nobs,
                "ngroups": self.ngroups, "fixef": {k: float(v) for k, v in fe.items()},
                "fixef_lme4": {lme4_name(k): float(v) for k, v in fe.items()},
                "varcorr": records(self.varcorr), "sigma": self.sigma}

    def __repr__(self) -> str:
        return self.__str__()


class MapBase(ResultBase):
    """What an ML/REML fit has: standard errors, the estimates table, AIC and BIC.

    Subclasses give ``vcov``, ``loglik``, ``df``, ``method``, ``converged`` and
    ``singular``.
    """

    __slots__ = ()
    _KIND = "map"

    @property
    def se(self) -> pd.Series:
        """Standard errors of β̂: √diag(vcov).

        Examples
        --------
        >>> kmap.se.round(4)  # kmap: see KernelMapResult
        Intercept    0.2291
        Name: se, dtype: float64
        """
        fe = self.fixef
        return pd.Series(np.sqrt(np.diag(self.vcov.to_numpy())), index=fe.index, name="se")

    def summary(self) -> pd.DataFrame:
        """Fixed effects: estimate, standard error and t value.

        Examples
        --------
        >>> mapfit.summary().round(2)  # mapfit: see MapResult
                   estimate    se      t
        Intercept    251.41  6.82  36.84
        Days          10.47  1.55   6.77
        """
        fe, se = self.fixef, self.se
        return pd.DataFrame({"estimate": fe, "se": se, "t": fe / se})

    def _bic_nobs(self) -> int:
        return self.nobs

    @property
    def aic(self) -> float:
        """AIC: −2 logLik + 2 df.

        Examples
        --------
        >>> round(mapfit.aic, 2), round(kmap.aic, 2)  # mapfit, kmap: see the classes
        (1755.63, 151.31)
        """
        return float(-2.0 * self.loglik + 2.0 * self.df)

    @property
    def bic(self) -> float:
        """BIC: −2 logLik + df log(N).

        N = nobs as lme4 (for REML too); with a residual structure or σ fixed, nlme's convention:
        N = nobs − p for REML (p fixed effects).

        Examples
        --------
        >>> round(mapfit.bic, 2), round(kmap.bic, 2)  # mapfit, kmap: see the classes
        (1774.79, 156.38)
        """
        return float(-2.0 * self.loglik + self.df * math.log(self._bic_nobs()))

    def _map_dict(self) -> dict[str, Any]:
        """The entries of ``to_dict()`` every ML/REML fit has."""
        return {**self._core_dict(), "method": self.method,
                "se": {k: float(v) for k, v in self.se.items()},
                "loglik": self.loglik, "aic": self.aic, "bic": self.bic, "df": self.df,
                "converged": self.converged, "singular": self.singular}


class PosteriorBase(ResultBase):
    """What NUTS draws have: ``idata``, the ArviZ summary, diagnostics and warnings.

    Subclasses set ``_idata``, ``_priors``, ``_info`` and ``_summary = None``, and give
    ``_summarize(hdi_prob)``: the ArviZ summary of their parameters.
    """

    __slots__ = ()
    _KIND = "posterior"
    _idata: az.InferenceData
    _priors: dict[str, str]
    _info: dict[str, Any]
    _summary: pd.DataFrame | None

    def _summarize(self, hdi_prob: float) -> pd.DataFrame:
        raise NotImplementedError

    @property
    def idata(self) -> az.InferenceData:
        """The ArviZ InferenceData (posterior, sample_stats, observed_data, ...).

        Examples
        --------
        >>> post.idata.posterior["b_Subject"].dims  # post: see PosteriorResult
        ('chain', 'draw', 'Subject', 'Subject_term')
        """
        return self._idata

    @property
    def info(self) -> dict[str, Any]:
        """How the fit was run (sampler, draws, chains, seed).

        Examples
        --------
        >>> {k: post.info[k] for k in ("draws", "tune", "chains")}  # post: see PosteriorResult
        {'draws': 500, 'tune': 500, 'chains': 2}
        """
        return dict(self._info)

    @property
    def priors(self) -> PriorTable:
        """The priors used: a dict parameter → description, printed as a table.

        Examples
        --------
        >>> post.priors["sd_Subject"]  # post: see PosteriorResult
        "Prior('HalfNormal', sigma=[140.8219,  48.8915])"
        >>> print(post.priors)  # doctest: +NORMALIZE_WHITESPACE
        parameter                prior
        beta[Intercept]          Normal(mu=298.5079, sigma=261.2202)
        beta[Days]               Normal(mu=0, sigma=48.8915)
        sigma                    Exponential(lam=0.01775)
        sd_Subject[Intercept]    HalfNormal(sigma=140.8219)
        sd_Subject[Days]         HalfNormal(sigma=48.8915)
        eta_Subject              LKJ(eta=2)
        """
        return PriorTable(self._priors, self._prior_elements())

    def _prior_elements(self) -> dict[str, list[str]]:
        """Names of the coefficients of vector priors (see :class:`PriorTable`)."""
        return {}

    def summary(self, hdi_prob: float = HDI_PROB) -> pd.DataFrame:
        """ArviZ summary of the parameters: mean, sd, HDI, MCSE, ESS, R-hat.

        Examples
        --------
        >>> post.summary(hdi_prob=0.9).index.tolist()  # doctest: +NORMALIZE_WHITESPACE
        ['beta[Intercept]', 'beta[Days]', 'sd_Subject[Intercept]', 'sd_Subject[Days]',
         'corr_Subject[Intercept, Days]', 'sigma']
        >>> kpost.summary().columns[:4].tolist()  # kpost: see KernelPosteriorResult
        ['mean', 'sd', 'hdi_3%', 'hdi_97%']
        """
        if hdi_prob != HDI_PROB:
            return self._summarize(hdi_prob)
        if self._summary is None:
            self._summary = self._summarize(HDI_PROB)
        return self._summary.copy()

    @property
    def divergences(self) -> int:
        """Number of divergent transitions after tuning.

        Examples
        --------
        >>> post.divergences  # post: see PosteriorResult
        0
        """
        stats = self._idata.sample_stats
        return int(stats["diverging"].sum()) if "diverging" in stats else 0

    @property
    def diagnostics(self) -> dict[str, Any]:
        """Divergences, max R-hat, min bulk and tail ESS, chains and draws.

        Examples
        --------
        >>> d = post.diagnostics  # post: see PosteriorResult
        >>> d["max_rhat"] < 1.01, d["min_ess_bulk"] > 300, d["draws"]
        (True, True, 500)
        """
        s = self.summary()
        post = self._idata.posterior
        return {
            "divergences": self.divergences,
            "max_rhat": (float(np.nanmax(s["r_hat"])) if s["r_hat"].notna().any()
                         else float("nan")),
            "min_ess_bulk": float(np.nanmin(s["ess_bulk"])),
            "min_ess_tail": float(np.nanmin(s["ess_tail"])),
            "chains": int(post.sizes["chain"]),
            "draws": int(post.sizes["draw"]),
        }

    @property
    def warnings(self) -> list[str]:
        """Sampling problems a user must see (divergences, R-hat > 1.01).

        Examples
        --------
        >>> post.warnings  # post: see PosteriorResult
        []
        """
        d = self.diagnostics
        out = [f"{self._info['interrupted']}: these results rest on fewer draws than asked "
               "for; fit again."] if self._info.get("interrupted") else []
        if d["divergences"]:
            out.append(f"{d['divergences']} divergent transitions after tuning: increase "
                       "target_accept (e.g. fit(target_accept=0.99)) or reparameterise; "
                       "do not trust the results as they are.")
        if d["chains"] > 1 and d["max_rhat"] > 1.01:
            out.append(f"max R-hat {d['max_rhat']:.3f} > 1.01: chains have not mixed; "
                       "sample longer (more tune and draws).")
        return out

    def _draws_dict(self) -> dict[str, Any]:
        """The entries of ``to_dict()`` every posterior has."""
        return {**self._core_dict(),
                "summary": {i: r.to_dict() for i, r in self.summary().iterrows()},
                "diagnostics": self.diagnostics, "priors": self.priors, "info": self.info}


class SavableResult:
    """``save``, for the results of formula models (PosteriorResult, MapResult).

    Subclasses set ``_FILE_KIND`` (the ``kind`` of the file, see
    :mod:`bayeslmm.results.codec`).
    """

    __slots__ = ()
    _FILE_KIND: str

    def save(self, path) -> None:
        """Save to netCDF: the model specification, its training data and any draws.

        ``bayeslmm.load(path)`` gives back a result that prints, summarises and predicts
        as this one (a posterior's draws as stored; an ML/REML fit rebuilt at its stored
        parameters). The file is written whole or not at all.

        Examples
        --------
        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "post.nc")
        >>> post.save(path)  # post: see PosteriorResult
        >>> blm.load(path).fixef.equals(post.fixef)
        True
        >>> mapfit.save(path)  # mapfit: see MapResult
        >>> blm.load(path).fixef.equals(mapfit.fixef)
        True
        """
        save(self, path)
