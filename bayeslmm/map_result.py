"""The immutable result of an ML/REML fit (:func:`bayeslmm.optimize.fit_map`).

Examples
--------
>>> import bayeslmm as blm
>>> from bayeslmm.design import build_design
>>> from bayeslmm.optimize import fit_map
>>> fit = fit_map(build_design("Reaction ~ Days + (Days | Subject)",
...                            blm.datasets.load("sleepstudy")), method="ML")
>>> fit.summary().round(2)
           estimate    se      t
Intercept    251.41  6.63  37.91
Days          10.47  1.50   6.97
>>> {k: round(v, 4) for k, v in fit.to_dict()["fixef_lme4"].items()}
{'(Intercept)': 251.4051, 'Days': 10.4673}
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pandas as pd

from .covariance import psi_from_varcorr
from .errors import BayesLMMError

__all__ = ["MapResult", "lme4_name"]


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


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.ndarray):
        return _jsonable(v.tolist())
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if v is pd.NA or v is pd.NaT:
        return None
    return v


class MapResult:
    """Estimates of an ML or REML fit, with lme4's accessors.

    Built by :func:`bayeslmm.optimize.fit_map`; immutable (accessors return copies).
    """

    _FIELDS = ("formula", "method", "fixef", "vcov", "ranef", "ranef_sd", "varcorr", "sigma",
               "nobs", "ngroups", "loglik", "df", "converged", "singular", "theta", "fitted",
               "residuals", "optimizer", "blocks")
    #: Fields of residual-structure fits (nlme's ``lme``/``gls``), absent for iid ones.
    _OPTIONAL = {"residual_structure": None, "residual_params": None, "scaled_residuals": None,
                 "se": None, "design": None}
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
    def formula(self) -> str:
        """The model formula."""
        return self._formula

    @property
    def method(self) -> str:
        """``"ML"`` or ``"REML"``."""
        return self._method

    @property
    def fixef(self) -> pd.Series:
        """Fixed-effect estimates β̂ (formulae names)."""
        return self._fixef.copy()

    @property
    def vcov(self) -> pd.DataFrame:
        """Covariance of β̂: σ̂²(XᵀV̂⁻¹X)⁻¹, as lme4's ``vcov``."""
        return self._vcov.copy()

    @property
    def se(self) -> pd.Series:
        """Standard errors of β̂: √diag(vcov), except for nlme-style ML fits with random
        effects and a residual structure, where nlme's summary scales them by
        √(N/(N − p)) and its ``vcov`` does not."""
        if self._se is not None:
            return self._se.copy()
        return pd.Series(np.sqrt(np.diag(self._vcov.to_numpy())), index=self._fixef.index,
                         name="se")

    @property
    def ranef(self) -> dict[str, pd.DataFrame]:
        """Conditional modes of the random effects: group → levels × terms."""
        return {g: df.copy() for g, df in self._ranef.items()}

    @property
    def ranef_sd(self) -> dict[str, pd.DataFrame]:
        """Conditional sds of the random effects (lme4's ``condVar``), same layout."""
        return {g: df.copy() for g, df in self._ranef_sd.items()}

    @property
    def varcorr(self) -> pd.DataFrame:
        """Variance components laid out as lme4's ``as.data.frame(VarCorr(fit))``."""
        return self._varcorr.copy()

    @property
    def sigma(self) -> float:
        """Residual standard deviation σ̂."""
        return float(self._sigma)

    @property
    def residual(self):
        """The residual structure (a ``bayeslmm.Residual``), or None for iid residuals."""
        return self._residual_structure

    @property
    def residual_params(self) -> dict[str, float]:
        """Residual-structure parameters named as nlme names them (``Phi``, ``Rho``,
        ``power``, ``expon``, the varIdent sd ratio of each level with the reference
        level at 1); empty for iid residuals."""
        return dict(self._residual_params or {})

    @property
    def theta(self) -> pd.Series:
        """lme4's θ: entries of the relative Cholesky factors Λ_k (Ψ_k = σ²Λ_kΛ_kᵀ)."""
        return self._theta.copy()

    @property
    def nobs(self) -> int:
        """Number of observations."""
        return int(self._nobs)

    @property
    def ngroups(self) -> dict[str, int]:
        """Levels per grouping factor."""
        return dict(self._ngroups)

    @property
    def loglik(self) -> float:
        """Log-likelihood at the estimate (the REML log-likelihood for REML)."""
        return float(self._loglik)

    @property
    def df(self) -> int:
        """Number of parameters: fixed effects + covariance parameters + σ (+ the
        residual-structure parameters)."""
        return int(self._df)

    @property
    def aic(self) -> float:
        """−2 logLik + 2 df."""
        return -2.0 * self.loglik + 2.0 * self.df

    @property
    def bic(self) -> float:
        """−2 logLik + df log(N): N = nobs as lme4 (for REML too); with a residual
        structure, nlme's convention: N = nobs − p for REML (p fixed effects)."""
        n = self.nobs
        if self._residual_structure is not None and self.method == "REML":
            n -= len(self._fixef)
        return -2.0 * self.loglik + self.df * math.log(n)

    @property
    def converged(self) -> bool:
        """Whether the optimiser reached a stationary point."""
        return bool(self._converged)

    @property
    def singular(self) -> bool:
        """A variance at 0 or a correlation at ±1 (a diagonal θ below 1e-4)."""
        return bool(self._singular)

    @property
    def optimizer(self) -> dict[str, Any]:
        """What the optimiser did: method, number of evaluations, message."""
        return dict(self._optimizer)

    @property
    def blocks(self) -> dict[str, tuple]:
        """Per group, its correlated blocks of terms."""
        return dict(self._blocks)

    @property
    def residuals(self) -> pd.Series:
        """y − fitted values (random effects included)."""
        return self._residuals.copy()

    @property
    def scaled_residuals(self) -> pd.Series:
        """Residuals over their sd, ``(y − fitted) / (σ δ_i)`` (nlme's standardized
        within-group residuals; ``residuals / σ`` for iid residuals)."""
        if self._scaled_residuals is None:
            return (self._residuals / self.sigma).rename("scaled")
        return self._scaled_residuals.copy()

    # -- tables and output --------------------------------------------------------------
    def summary(self) -> pd.DataFrame:
        """Fixed effects: estimate, standard error and t value."""
        se = self.se
        return pd.DataFrame({"estimate": self._fixef, "se": se, "t": self._fixef / se})

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
            :func:`bayeslmm.predict.point_predictions` for what the se includes).

        Returns
        -------
        Series (or DataFrame with ``se_fit=True``), indexed like the rows predicted.
        """
        if new_data is None and include_random and not se_fit:
            return self._fitted.copy()
        from .newdata import evaluate_new_data
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

    def save(self, path) -> None:
        """Save to netCDF; ``bayeslmm.load(path)`` refits and gives the same result."""
        from .io import save

        save(self, path)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary of the estimates (``varcorr`` as row records)."""
        vc = self._varcorr.astype(object).where(self._varcorr.notna(), None)
        out = {
            "formula": self.formula, "method": self.method, "nobs": self.nobs,
            "ngroups": self.ngroups, "fixef": self._fixef.to_dict(), "se": self.se.to_dict(),
            "vcov": self._vcov.to_numpy().tolist(), "varcorr": vc.to_dict(orient="records"),
            "sigma": self.sigma, "residual_params": self.residual_params,
            "loglik": self.loglik, "aic": self.aic, "bic": self.bic, "df": self.df,
            "converged": self.converged, "singular": self.singular,
            "theta": self._theta.to_dict(),
            "ranef": {g: {"levels": list(map(str, df.index)),
                          **{c: {"mode": df[c].tolist(),
                                 "cond_sd": self._ranef_sd[g][c].tolist()}
                             for c in df.columns}}
                      for g, df in self._ranef.items()},
            "fixef_lme4": {lme4_name(k): v for k, v in self._fixef.items()},
            "residual": None if self.residual is None else repr(self.residual),
        }
        return _jsonable(out)

    def __str__(self) -> str:
        from .display_map import format_map

        return format_map(self)

    __repr__ = __str__
