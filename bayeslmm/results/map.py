"""The immutable result of an ML/REML fit (``LMM.fit_map``, :mod:`bayeslmm.mle`).

Examples
--------
>>> import bayeslmm as blm
>>> sleep = blm.datasets.load("sleepstudy")
>>> fit = blm.LMM("Reaction ~ Days + (Days | Subject)", sleep).fit_map("ML")
>>> fit.summary().round(2)
           estimate    se      t
Intercept    251.41  6.63  37.91
Days          10.47  1.50   6.97
>>> {k: round(v, 4) for k, v in fit.to_dict()["fixef_lme4"].items()}
{'(Intercept)': 251.4051, 'Days': 10.4673}
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..errors import BayesLMMError
from .base import MapBase, SavableResult, jsonable, lme4_name
from .effects import EffectsMixin
from .inference import MapInference
from .r2 import R2Mixin
from .varcorr import psi_from_varcorr

__all__ = ["MapResult", "lme4_name"]


class MapResult(MapInference, MapBase, SavableResult, EffectsMixin, R2Mixin):
    """Estimates of an ML or REML fit, with lme4's accessors.

    Built by ``LMM.fit_map`` (:func:`bayeslmm.mle.fit.fit_map`); immutable (accessors return
    copies).

    Examples
    --------
    The examples of this class share this fit, ``mapfit``:

    >>> import bayeslmm as blm
    >>> m = blm.LMM("Reaction ~ Days + (Days | Subject)", blm.datasets.load("sleepstudy"))
    >>> mapfit = m.fit_map()
    >>> mapfit.method, mapfit.converged, mapfit.singular
    ('REML', True, False)
    """

    _FILE_KIND = "map"
    _FIELDS = ("formula", "method", "fixef", "vcov", "ranef", "ranef_sd", "varcorr", "sigma",
               "nobs", "ngroups", "loglik", "df", "converged", "singular", "theta", "fitted",
               "residuals", "optimizer", "blocks")
    #: Fields of residual-structure fits (nlme's ``lme``/``gls``), absent for iid ones.
    _OPTIONAL = {"residual_structure": None, "residual_params": None, "scaled_residuals": None,
                 "se": None, "design": None, "covariate": None, "engine": None}
    __slots__ = tuple("_" + f for f in (*_FIELDS, *_OPTIONAL))

    def __init__(self, **fields: Any):
        missing = set(self._FIELDS) - set(fields)
        extra = set(fields) - set(self._FIELDS) - set(self._OPTIONAL)
        if missing or extra:
            raise TypeError(f"MapResult fields missing {sorted(missing)}, unknown {sorted(extra)}")
        for k, v in {**self._OPTIONAL, **fields}.items():
            object.__setattr__(self, "_" + k, v)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("MapResult is immutable; refit to get new estimates.")

    # -- estimates ----------------------------------------------------------------------
    @property
    def method(self) -> str:
        """``"ML"`` or ``"REML"``.

        Examples
        --------
        >>> mapfit.method  # mapfit: see MapResult
        'REML'
        """
        return self._method

    @property
    def fixef(self) -> pd.Series:
        """Fixed-effect estimates β̂ (formulae names).

        Examples
        --------
        >>> mapfit.fixef.round(2)  # mapfit: see MapResult
        Intercept    251.41
        Days          10.47
        Name: fixef, dtype: float64
        """
        return self._fixef.rename("fixef")

    @property
    def vcov(self) -> pd.DataFrame:
        """Covariance of β̂: σ̂²(XᵀV̂⁻¹X)⁻¹, as lme4's ``vcov``.

        Examples
        --------
        >>> mapfit.vcov.round(3)  # mapfit: see MapResult
                   Intercept   Days
        Intercept     46.575 -1.451
        Days          -1.451  2.389
        """
        return self._vcov.copy()

    @property
    def se(self) -> pd.Series:
        """Standard errors of β̂: √diag(vcov).

        Except for nlme-style ML fits with random effects and a residual structure,
        where nlme's summary scales them by √(N/(N − p)) and its ``vcov`` does not.

        Examples
        --------
        >>> mapfit.se.round(3)  # mapfit: see MapResult
        Intercept    6.825
        Days         1.546
        Name: se, dtype: float64
        """
        return super().se if self._se is None else self._se.copy()

    @property
    def ranef(self) -> dict[str, pd.DataFrame]:
        """Conditional modes of the random effects: group → levels × terms.

        Examples
        --------
        >>> mapfit.ranef["Subject"].loc["308"].round(2)  # mapfit: see MapResult
        Intercept    2.26
        Days         9.20
        Name: 308, dtype: float64
        """
        return {g: df.copy() for g, df in self._ranef.items()}

    @property
    def ranef_sd(self) -> dict[str, pd.DataFrame]:
        """Conditional sds of the random effects (lme4's ``condVar``), same layout.

        Examples
        --------
        >>> mapfit.ranef_sd["Subject"].loc["308"].round(2)  # mapfit: see MapResult
        Intercept    12.07
        Days          2.30
        Name: 308, dtype: float64
        """
        return {g: df.copy() for g, df in self._ranef_sd.items()}

    @property
    def varcorr(self) -> pd.DataFrame:
        """Variance components laid out as lme4's ``as.data.frame(VarCorr(fit))``.

        Examples
        --------
        >>> mapfit.varcorr.round(3)  # mapfit: see MapResult
                grp       var1  var2     vcov   sdcor
        0   Subject  Intercept   NaN  612.090  24.740
        1   Subject       Days   NaN   35.072   5.922
        2   Subject  Intercept  Days    9.604   0.066
        3  Residual        NaN   NaN  654.941  25.592
        """
        return self._varcorr.copy()

    @property
    def sigma(self) -> float:
        """Residual standard deviation σ̂.

        Examples
        --------
        >>> round(mapfit.sigma, 3)  # mapfit: see MapResult
        25.592
        """
        return float(self._sigma)

    @property
    def residual(self):
        """The residual structure (a ``bayeslmm.Residual``), or None for iid residuals.

        Examples
        --------
        >>> mapfit.residual is None  # mapfit: see MapResult
        True
        """
        return self._residual_structure

    @property
    def residual_params(self) -> dict[str, float]:
        """Residual-structure parameters named as nlme names them (empty for iid residuals).

        ``Phi``, ``Rho``, ``power``, ``expon``, or the varIdent sd ratio of each level
        (the reference level at 1).

        Examples
        --------
        >>> df = blm.datasets.load("Orthodont")
        >>> m = blm.LMM("distance ~ age + Sex", df, residual=blm.CompSymm(group="Subject"))
        >>> {k: round(v, 4) for k, v in m.fit_map().residual_params.items()}  # nlme: 0.6145
        {'Rho': 0.6145}
        """
        return dict(self._residual_params or {})

    @property
    def theta(self) -> pd.Series:
        """lme4's θ: entries of the relative Cholesky factors Λ_k (Ψ_k = σ²Λ_kΛ_kᵀ).

        Examples
        --------
        >>> mapfit.theta.round(4)  # mapfit: see MapResult
        Subject.Intercept         0.9667
        Subject.Days.Intercept    0.0152
        Subject.Days              0.2309
        Name: theta, dtype: float64
        """
        return self._theta.copy()

    @property
    def loglik(self) -> float:
        """Log-likelihood at the estimate (the REML log-likelihood for REML).

        Examples
        --------
        >>> round(mapfit.loglik, 3)  # mapfit: see MapResult
        -871.814
        """
        return float(self._loglik)

    @property
    def df(self) -> int:
        """Number of parameters: fixed effects, covariance parameters, σ, residual ones.

        Examples
        --------
        >>> mapfit.df  # mapfit: see MapResult
        6
        """
        return int(self._df)

    def _bic_nobs(self) -> int:
        """nlme's N for the BIC of a REML fit with a residual structure: nobs − p."""
        n = self.nobs
        if self._residual_structure is not None and self.method == "REML":
            n -= len(self._fixef)
        return n

    @property
    def converged(self) -> bool:
        """Whether the optimiser reached a stationary point.

        Examples
        --------
        >>> mapfit.converged  # mapfit: see MapResult
        True
        """
        return bool(self._converged)

    @property
    def singular(self) -> bool:
        """A variance at 0 or a correlation at ±1 (a diagonal θ below 1e-4).

        Examples
        --------
        >>> mapfit.singular  # mapfit: see MapResult
        False
        """
        return bool(self._singular)

    @property
    def optimizer(self) -> dict[str, Any]:
        """What the optimiser did: method, number of evaluations, message.

        Examples
        --------
        >>> sorted(mapfit.optimizer)  # mapfit: see MapResult
        ['message', 'method', 'nfev']
        """
        return dict(self._optimizer)

    @property
    def blocks(self) -> dict[str, tuple]:
        """Per group, its correlated blocks of terms.

        Examples
        --------
        >>> mapfit.blocks  # mapfit: see MapResult
        {'Subject': ((0, 1),)}
        """
        return dict(self._blocks)

    @property
    def residuals(self) -> pd.Series:
        """y − fitted values (random effects included).

        Examples
        --------
        >>> mapfit.residuals.head(3).round(2)  # mapfit: see MapResult
        0    -4.10
        1   -14.63
        2   -42.20
        Name: residual, dtype: float64
        """
        return self._residuals.copy()

    @property
    def scaled_residuals(self) -> pd.Series:
        """Residuals over their sd, ``(y − fitted) / (σ δ_i)``.

        nlme's standardized within-group residuals; ``residuals / σ`` for iid ones.

        Examples
        --------
        >>> mapfit.scaled_residuals.head(3).round(3)  # mapfit: see MapResult
        0   -0.160
        1   -0.571
        2   -1.649
        Name: scaled, dtype: float64
        """
        if self._scaled_residuals is None:
            return (self._residuals / self.sigma).rename("scaled")
        return self._scaled_residuals.copy()

    def predict(self, new_data: pd.DataFrame | None = None, *, include_random: bool = True,
                new_levels: str = "population", se_fit: bool = False):
        """Predicted means at the estimates, like lme4's ``predict(fit, newdata)``.

        Parameters
        ----------
        new_data : DataFrame, optional
            Rows to predict; default the training rows (the fitted values Xβ̂ + Zb̂).
        include_random : bool
            False gives population-level predictions Xβ̂ (lme4's ``re.form = NA``).
        new_levels : {"population", "sample", "error"}
            Unseen levels of a grouping factor: effects 0 (lme4's
            ``allow.new.levels = TRUE``); 0 for the mean but their variance Ψ added to
            the standard error; or an error naming them.
        se_fit : bool
            Return a DataFrame with ``fit`` and ``se`` (see
            :func:`bayeslmm.results.predict.point_predictions` for what the se includes).

        Returns
        -------
        Series (or DataFrame with ``se_fit=True``), indexed like the rows predicted.

        Examples
        --------
        >>> new = pd.DataFrame({"Days": [0, 5], "Subject": ["308", "a new subject"]})
        >>> mapfit.predict(new, se_fit=True).round(2)  # mapfit: see MapResult
              fit     se
        0  253.66  13.87
        1  303.74   9.58
        """
        if new_data is None and include_random and not se_fit:
            return self._fitted.rename("fit")
        from ..formula.newdata import evaluate_new_data
        from .predict import point_predictions, training_rows

        d = self._design
        if d is None:
            raise BayesLMMError("This result holds no design; refit to predict new data.")
        rows = training_rows(d) if new_data is None else evaluate_new_data(d, new_data)
        psi = {t.group: psi_from_varcorr(self._varcorr, t.group, t.term_names)
               for t in d.terms}
        fit, se = point_predictions(
            d, rows, self._fixef.to_numpy(), self._vcov.to_numpy(),
            {g: df.to_numpy() for g, df in self._ranef.items()},
            {g: df.to_numpy() for g, df in self._ranef_sd.items()}, psi,
            include_random=include_random, new_levels=new_levels)
        out = pd.Series(fit, index=rows.index, name="fit")
        return pd.DataFrame({"fit": fit, "se": se}, index=rows.index) if se_fit else out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary of the estimates (``varcorr`` as row records).

        Examples
        --------
        >>> d = mapfit.to_dict()  # mapfit: see MapResult
        >>> d["method"], d["fixef_lme4"]["(Intercept)"] == d["fixef"]["Intercept"]
        ('REML', True)
        """
        out = {
            **self._map_dict(), "vcov": self._vcov.to_numpy(),
            "residual_params": self.residual_params, "theta": self._theta.to_dict(),
            "ranef": {g: {"levels": list(map(str, df.index)),
                          **{c: {"mode": df[c].tolist(),
                                 "cond_sd": self._ranef_sd[g][c].tolist()}
                             for c in df.columns}}
                      for g, df in self._ranef.items()},
            "residual": None if self.residual is None else repr(self.residual),
        }
        return jsonable(out)

    def __str__(self) -> str:
        from .display_map import format_map

        return format_map(self)
