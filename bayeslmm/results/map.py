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

from .base import MapBase, SavableResult, jsonable, lme4_name
from .effects import EffectsMixin
from .inference import MapInference
from .map_rows import MapRows
from .r2 import R2Mixin

__all__ = ["MapResult", "lme4_name"]


class MapResult(MapRows, MapInference, MapBase, SavableResult, EffectsMixin, R2Mixin):
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
                 "se": None, "design": None, "covariate": None, "engine": None,
                 "sigma_fixed": False}
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
    def sigma_fixed(self) -> bool:
        """Whether σ was fixed at a known value (``LMM(..., sigma=...)``), not estimated.

        Examples
        --------
        >>> mapfit.sigma_fixed  # mapfit: see MapResult
        False
        """
        return bool(self._sigma_fixed)

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
        """nlme's N for the BIC of a REML fit with a residual structure or σ fixed (an
        nlme model): nobs − p."""
        n = self.nobs
        nlme = self._residual_structure is not None or self._sigma_fixed
        if nlme and self.method == "REML":
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
