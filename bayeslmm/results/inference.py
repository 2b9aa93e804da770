"""What lme4 users do after an ML/REML fit, as methods of
:class:`~bayeslmm.results.map.MapResult`: profiles and intervals, the parametric
bootstrap, simulated responses and refits, and tests of fixed effects with
Satterthwaite's or Kenward–Roger's denominator degrees of freedom.

The numbers come from the fit's engine (:class:`bayeslmm.mle.engine.MapEngine`, handed
to the result when it was made); this module lays them out.

=======================================  ===============================================
lme4 / lmerTest / pbkrtest               bayeslmm
=======================================  ===============================================
``profile(fit)``                         ``est.profile()``
``confint(fit)``                         ``est.confint()`` (``method="profile"``)
``confint(fit, method = "Wald")``        ``est.confint(method="wald")``
``confint(fit, method = "boot")``        ``est.confint(method="boot")``
``bootMer(fit, FUN, nsim)``              ``est.bootstrap(nsim, statistic=FUN)``
``simulate(fit, nsim)``                  ``est.simulate(nsim)``
``refit(fit, newresp)``, ``refitML``     ``est.refit(newresp)``, ``est.refit(method="ML")``
``summary(lmerTest::lmer(...))``         ``est.summary(ddf="Satterthwaite")``
``summary(fit, ddf = "Kenward-Roger")``  ``est.summary(ddf="Kenward-Roger")``
``contest(fit, L)``                      ``est.contrast(L)``
=======================================  ===============================================

Examples
--------
>>> import bayeslmm as blm
>>> fit = blm.LMM("Yield ~ 1 + (1 | Batch)", blm.datasets.load("Dyestuff")).fit_map()
>>> fit.confint(method="wald").round(2)
                       2.5 %   97.5 %
sd_Batch[Intercept]      NaN      NaN
sigma                    NaN      NaN
Intercept            1489.51  1565.49
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm
from scipy.stats import t as t_dist

from ..errors import BayesLMMError
from .bootstrap import BootstrapResult
from .profile import Profile, percent_labels

__all__ = ["MapInference"]

_DDF = {"satterthwaite": "Satterthwaite", "kenward-roger": "Kenward-Roger",
        "kr": "Kenward-Roger"}


class MapInference:
    """The methods of this module, mixed into ``MapResult`` (which sets ``_engine``)."""

    __slots__ = ()
    _engine: Any

    def _fit_engine(self):
        if self._engine is None:
            raise BayesLMMError("This result holds no fit to refit, profile or test; make it "
                                "with LMM.fit_map (or load a saved fit).")
        return self._engine

    def _names(self, lme4: bool) -> dict[str, str]:
        eng = self._fit_engine()
        return dict(zip(eng.parameter_names(), eng.parameter_names(lme4=lme4), strict=True))

    def _parm(self, parm) -> list[str] | None:
        """bayeslmm's names of ``parm`` (names in either naming, or lme4's "theta_" or
        "beta_")."""
        if parm is None:
            return None
        eng = self._fit_engine()
        ours, theirs = eng.parameter_names(), eng.parameter_names(lme4=True)
        nvp = eng.varpar.size
        out = []
        for p in [parm] if isinstance(parm, str) else list(parm):
            if p == "theta_":
                out += ours[:nvp]
            elif p == "beta_":
                out += ours[nvp:]
            elif p in ours:
                out.append(p)
            elif p in theirs:
                out.append(ours[theirs.index(p)])
            else:
                raise BayesLMMError(f"No parameter {p!r}; the parameters are {ours} "
                                    f"(lme4: {theirs}).")
        return list(dict.fromkeys(out))

    def profile(self, which: Sequence[str] | None = None, *, alphamax: float = 0.01,
                maxpts: int = 100, delta_cutoff: float = 0.125) -> Profile:
        """The likelihood profile of every parameter, as lme4's ``profile(fit)``.

        Of the ML deviance (a REML fit is refitted by ML first, as lme4 does), in
        steps of ζ of ``cutoff × delta_cutoff`` up to |ζ| = √χ²(1 − alphamax; number of
        parameters), or a bound, or ``maxpts`` points (:mod:`bayeslmm.mle.profile`).

        Parameters
        ----------
        which : list of str, optional
            Parameters to profile (bayeslmm's or lme4's names, or ``"theta_"`` /
            ``"beta_"``); default all.
        alphamax, maxpts, delta_cutoff
            lme4's arguments of the same names.

        Returns
        -------
        Profile

        Examples
        --------
        >>> prof = mapfit.profile()  # mapfit: see MapResult
        >>> prof.confint().round(2)  # lme4's confint(fit)
                                        2.5 %  97.5 %
        sd_Subject[Intercept]           14.38   37.72
        corr_Subject[Intercept, Days]   -0.48    0.68
        sd_Subject[Days]                 3.80    8.75
        sigma                           22.90   28.86
        Intercept                      237.68  265.13
        Days                             7.36   13.58
        """
        eng = self._fit_engine()
        settings = _Settings(alphamax, maxpts, delta_cutoff)
        table = eng.profile(self._parm(which), settings)
        lower, upper = eng.bounds()
        names = eng.parameter_names()
        return Profile(table, pd.Series(lower, index=names), pd.Series(upper, index=names),
                       self._names(lme4=True))

    def confint(self, parm: Sequence[str] | None = None, *, method: str = "profile",
                level: float = 0.95, nsim: int = 500, boot_type: str = "perc",
                random_seed: int | None = None, cores: int | None = None,
                progressbar: bool = True, lme4_names: bool = False) -> pd.DataFrame:
        """Confidence intervals of the sd, correlations, σ and fixed effects (lme4's confint).

        Parameters
        ----------
        parm : list of str, optional
            Parameters (bayeslmm's or lme4's names, ``"theta_"``, ``"beta_"``).
        method : {"profile", "wald", "boot"}
            Profile likelihood (:meth:`profile`); Wald (fixed effects only, β̂ ± z·se,
            NaN for the others, as lme4); parametric bootstrap percentiles
            (:meth:`bootstrap` with ``nsim`` refits, ``boot_type`` "perc", "basic" or
            "norm").
        level : float
        random_seed, cores, progressbar
            Of the bootstrap.
        lme4_names : bool
            Rows named as lme4 names them (``.sig01``, ``.sigma``, ``(Intercept)``).

        Returns
        -------
        DataFrame
            Columns ``"2.5 %"`` and ``"97.5 %"`` (for level 0.95).

        Examples
        --------
        >>> mapfit.confint(["Days", ".sigma"], lme4_names=True).round(3)  # mapfit: MapResult
                 2.5 %  97.5 %
        .sigma  22.898  28.858
        Days     7.359  13.576
        """
        m = str(method).lower()
        names = self._parm(parm)
        if m == "profile":
            out = self.profile(names).confint(level)
        elif m == "wald":
            eng = self._fit_engine()
            z = norm.ppf([(1 - level) / 2, (1 + level) / 2])
            out = pd.DataFrame(np.nan, index=eng.parameter_names(),
                               columns=percent_labels(level))
            fe, se = self.fixef, self.se
            out.loc[fe.index] = np.column_stack([fe + z[0] * se, fe + z[1] * se])
        elif m == "boot":
            out = self.bootstrap(nsim, random_seed=random_seed, cores=cores,
                                 progressbar=progressbar).confint(level, boot_type)
        else:
            raise BayesLMMError(f"method must be 'profile', 'wald' or 'boot', got {method!r}.")
        if names is not None:
            out = out.loc[[n for n in out.index if n in names]]
        return out.rename(index=self._names(lme4=True)) if lme4_names else out

    def bootstrap(self, n: int = 500, *, statistic: Callable | None = None,
                  random_seed: int | None = None, cores: int | None = None,
                  progressbar: bool = True) -> BootstrapResult:
        """Parametric bootstrap of a statistic of the fit, as lme4's ``bootMer``.

        ``n`` responses are simulated from the fit, the model is refitted to each (same
        method) and ``statistic`` of each refit collected.

        Parameters
        ----------
        n : int
            Number of refits.
        statistic : callable, optional
            ``statistic(refit)`` → a number, an array, or a Series/dict (its keys name
            the columns). Default: the sd/cor/σ and fixed effects (lme4's ``confint``).
        random_seed : int, optional
            The same seed gives the same replicates, whatever ``cores``.
        cores : int, optional
            Worker processes (default: all cores; 1 runs in this process).
        progressbar : bool

        Returns
        -------
        BootstrapResult

        Examples
        --------
        >>> b = mapfit.bootstrap(8, statistic=lambda f: f.sigma, random_seed=1,  # mapfit:
        ...                      cores=1, progressbar=False)                    # MapResult
        >>> b.replicates.shape, round(float(b.original.iloc[0]), 3)
        ((8, 1), 25.592)
        """
        eng = self._fit_engine()
        if int(n) < 1:
            raise BayesLMMError(f"n must be a positive number of refits, got {n!r}.")
        if statistic is None:
            t0 = pd.Series(eng.parameters(), index=eng.parameter_names())
            flat = None
        else:
            t0 = _as_series(statistic(self))
            names = list(t0.index)

            def flat(fit):
                return _as_series(statistic(fit)).reindex(names).to_numpy(dtype=float)
        values, msgs, failed = eng.bootstrap(int(n), flat, random_seed, cores=cores,
                                             progressbar=progressbar)
        reps = pd.DataFrame(values if values.shape[1] else np.full((int(n), len(t0)), np.nan),
                            columns=t0.index)
        return BootstrapResult(reps, t0, {"n": int(n), "random_seed": random_seed,
                                          "failed": failed, "warnings": dict(msgs)})

    def simulate(self, nsim: int = 1, *, random_seed: int | None = None) -> pd.DataFrame:
        """Responses simulated from the fit, as lme4's ``simulate(fit, nsim, seed)``.

        Random effects drawn anew (lme4's default ``re.form = NA``), then the residuals
        (with the residual structure, if any). Column i is what :meth:`bootstrap` with
        the same seed refits as replicate i.

        Examples
        --------
        >>> mapfit.simulate(2, random_seed=1).shape  # mapfit: see MapResult
        (180, 2)
        """
        y = self._fit_engine().simulate(int(nsim), random_seed)
        return pd.DataFrame(y, index=self._design.rows,
                            columns=[f"sim_{i + 1}" for i in range(y.shape[1])])

    def refit(self, newresp: Sequence[float] | None = None, *, method: str | None = None):
        """The model refitted to a new response or by another method (lme4's refit, refitML).

        Parameters
        ----------
        newresp : array or Series, optional
            One value per row used (a Series is aligned on the rows' labels).
        method : {"ML", "REML"}, optional
            Default: this fit's.

        Examples
        --------
        >>> round(mapfit.refit(method="ML").loglik, 2)  # mapfit: see MapResult
        -875.97
        """
        y = None
        if newresp is not None:
            if isinstance(newresp, pd.Series):
                newresp = newresp.reindex(self._design.rows)
            y = np.asarray(newresp, dtype=float).ravel()
            if len(y) != self.nobs or not np.all(np.isfinite(y)):
                raise BayesLMMError(f"newresp must hold {self.nobs} finite values, one per "
                                    "row used by the fit.")
        return self._fit_engine().refit(y, method)

    def summary(self, ddf: str | None = None) -> pd.DataFrame:
        """Fixed effects: estimate, standard error, t (and with ``ddf``: df and p).

        Parameters
        ----------
        ddf : {None, "Satterthwaite", "Kenward-Roger"}
            lmerTest's denominator degrees of freedom. Kenward–Roger (REML fits, iid
            residuals) uses pbkrtest's adjusted covariance for the standard errors, as
            lmerTest does. With a residual structure, Satterthwaite's df are taken over
            its parameters too (no R package defines them there; nlme reports
            containment df).

        Examples
        --------
        lmerTest's df: 16.9997 and 16.99998.

        >>> mapfit.summary(ddf="Satterthwaite").round(3)  # mapfit: see MapResult
                   estimate     se    df       t    p
        Intercept   251.405  6.825  17.0  36.838  0.0
        Days         10.467  1.546  17.0   6.771  0.0
        """
        if ddf is None:
            return super().summary()
        kind = _ddf(ddf)
        eng = self._fit_engine()
        fe = self.fixef
        p = len(fe)
        if kind == "Satterthwaite":
            sat = eng.satterthwaite()
            var, df = np.array([sat.t_test(e) for e in np.eye(p)]).reshape(p, 2).T
        else:
            kr = eng.kenward_roger()
            var = np.diag(kr.vcov_adj)
            df = np.array([kr.ddf_1d(e) for e in np.eye(p)])
        se = np.sqrt(var)
        t = fe.to_numpy() / se
        return pd.DataFrame({"estimate": fe, "se": se, "df": df, "t": t,
                             "p": 2 * t_dist.sf(np.abs(t), df)}, index=fe.index)

    def contrast(self, L, *, ddf: str = "Satterthwaite", rhs=0.0) -> pd.DataFrame:
        """F test of H₀: Lβ = rhs with Satterthwaite's or Kenward–Roger's df.

        As lmerTest's ``contest(fit, L)`` (pbkrtest's ``KRmodcomp`` for Kenward–Roger).

        Parameters
        ----------
        L : array (q × p or p), DataFrame or dict
            Contrast rows over the fixed effects (a DataFrame's columns, a dict's keys
            name them; unnamed ones are 0).
        ddf : {"Satterthwaite", "Kenward-Roger"}
        rhs : float or array

        Returns
        -------
        DataFrame
            One row: ``F``, ``ndf``, ``ddf``, ``p`` (for one row F = t²; Kenward–Roger's
            F is pbkrtest's scaled one).

        Examples
        --------
        >>> mapfit.contrast({"Intercept": 1, "Days": 5}).round(3)  # mapfit: MapResult
                         F  ndf   ddf    p
        contrast  1004.997    1  17.0  0.0
        """
        fe = self.fixef
        L = _contrast_matrix(L, list(fe.index))
        rhs_v = np.broadcast_to(np.asarray(rhs, dtype=float), (L.shape[0],)).copy()
        kind = _ddf(ddf)
        if kind == "Satterthwaite":
            F, q, d = self._fit_engine().satterthwaite().f_test(L, fe.to_numpy(), rhs_v)
        else:
            r = self._fit_engine().kenward_roger().f_test(L, fe.to_numpy(), rhs_v)
            F, q, d = r["F"], r["ndf"], r["ddf"]
        from scipy.stats import f as f_dist

        return pd.DataFrame({"F": [F], "ndf": [q], "ddf": [d], "p": [f_dist.sf(F, q, d)]},
                            index=["contrast"])


class _Settings:
    """lme4's profile arguments, as :class:`~bayeslmm.mle.profile.ProfileSettings` reads them."""

    def __init__(self, alphamax: float, maxpts: int, delta_cutoff: float):
        self.alphamax, self.maxpts, self.delta_cutoff = alphamax, int(maxpts), delta_cutoff
        self.maxmult, self.devtol = 10.0, 1e-9


def _ddf(ddf) -> str:
    kind = _DDF.get(str(ddf).lower())
    if kind is None:
        raise BayesLMMError(f"ddf must be 'Satterthwaite' or 'Kenward-Roger', got {ddf!r}.")
    return kind


def _as_series(v) -> pd.Series:
    if isinstance(v, pd.Series):
        return v.astype(float)
    if isinstance(v, Mapping):
        return pd.Series({str(k): float(x) for k, x in v.items()})
    a = np.atleast_1d(np.asarray(v, dtype=float)).ravel()
    return pd.Series(a, index=["statistic"] if len(a) == 1 else
                     [f"t{i + 1}" for i in range(len(a))])


def _contrast_matrix(L, names: list[str]) -> np.ndarray:
    if isinstance(L, Mapping):
        L = pd.DataFrame([L])
    if isinstance(L, pd.Series):
        L = L.to_frame().T
    if isinstance(L, pd.DataFrame):
        unknown = [c for c in L.columns if c not in names]
        if unknown:
            raise BayesLMMError(f"Contrast names {unknown} are not fixed effects {names}.")
        L = L.reindex(columns=names, fill_value=0.0).to_numpy(dtype=float)
    L = np.atleast_2d(np.asarray(L, dtype=float))
    if L.shape[1] != len(names) or not np.all(np.isfinite(L)):
        raise BayesLMMError(f"A contrast needs {len(names)} finite coefficients per row "
                            f"(one per fixed effect {names}); got shape {L.shape}.")
    return L
