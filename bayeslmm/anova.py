"""Likelihood-ratio tests between nested ML/REML fits, as lme4's ``anova(m0, m1, ...)``.

The models are sorted by their number of parameters; each row after the first is
tested against the row before: χ² = 2 Δ logLik on Δ npar degrees of freedom. REML
fits are refitted by ML first, as lme4 does (``refit=True``, with a warning saying so):
REML likelihoods of models with different fixed effects are not comparable. With
``refit=False`` a mixture of REML and ML fits gets lme4's warning, and REML fits with
different fixed effects are refused (lme4 compares them silently).

``bootstrap=n`` adds a parametric-bootstrap p-value per test (pbkrtest's ``PBmodcomp``):
the smaller model simulates n responses, both models are refitted to each by ML, and
p = (1 + #{LRT* > LRT}) / (1 + #{LRT* > 0}).

Examples
--------
>>> import bayeslmm as blm
>>> sleep = blm.datasets.load("sleepstudy")
>>> m0 = blm.LMM("Reaction ~ Days + (1 | Subject)", sleep).fit_map("ML")
>>> m1 = blm.LMM("Reaction ~ Days + (Days | Subject)", sleep).fit_map("ML")
>>> anova({"m0": m0, "m1": m1}).round(3)          # lme4: Chisq 42.139, p 7.07e-10
    npar       AIC       BIC   logLik  deviance   Chisq   Df  Pr(>Chisq)
m0     4  1802.079  1814.850 -897.039  1794.079     NaN  NaN         NaN
m1     6  1763.939  1783.097 -875.970  1751.939  42.139  2.0         0.0
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.stats import chi2

from .errors import BayesLMMError, DataError, FitError, user_stacklevel
from .results.map import MapResult

__all__ = ["anova"]


def _named(fits: tuple, names: Sequence[str] | None) -> dict[str, MapResult]:
    if len(fits) == 1 and isinstance(fits[0], Mapping):
        named = dict(fits[0])
    else:
        if names is not None and len(names) != len(fits):
            raise BayesLMMError(f"{len(names)} names for {len(fits)} models.")
        named = dict(zip(names or [f"MODEL{i + 1}" for i in range(len(fits))], fits,
                         strict=True))
    if len(named) < 2:
        raise BayesLMMError("anova() compares at least two fits: anova(m0, m1) or "
                            "anova({'m0': m0, 'm1': m1}).")
    for name, f in named.items():
        if not isinstance(f, MapResult):
            hint = (" (posterior results: use blm.compare)" if hasattr(f, "idata") else "")
            raise BayesLMMError(f"Model {name!r} is a {type(f).__name__}, not an ML/REML fit "
                                f"of LMM.fit_map{hint}.")
    return named


def _check_data(named: dict[str, MapResult]) -> None:
    first_name, first = next(iter(named.items()))
    y0 = first.predict() + first.residuals
    for name, f in named.items():
        if f.nobs != first.nobs:
            raise DataError(f"models were not all fitted to the same size of dataset: "
                            f"{first_name!r} has {first.nobs} rows, {name!r} {f.nobs}.")
        y = f.predict() + f.residuals
        if not (y.index.equals(y0.index) and np.allclose(y.to_numpy(), y0.to_numpy(),
                                                         rtol=1e-10, atol=1e-12)):
            raise DataError(f"all models must be fit to the same data: {name!r} and "
                            f"{first_name!r} have different rows or responses.")


def anova(*fits: MapResult | Mapping[str, MapResult], names: Sequence[str] | None = None,
          refit: bool = True, bootstrap: int = 0, random_seed: int | None = None,
          cores: int | None = None, progressbar: bool = True) -> pd.DataFrame:
    """Likelihood-ratio table of nested ML/REML fits, as lme4's ``anova(m0, m1, ...)``.

    Parameters
    ----------
    *fits : MapResult, or one dict name → MapResult
        At least two fits to the same rows.
    names : list of str, optional
        Row names for positional fits (default ``MODEL1``, ``MODEL2``, ... as lme4
        names them when it cannot read the call).
    refit : bool
        Refit REML fits by ML first (lme4's default).
    bootstrap : int
        Refits per test for a parametric-bootstrap p-value (column ``Pr(boot)``);
        0: none.
    random_seed, cores, progressbar
        Of the bootstrap (see :meth:`MapResult.bootstrap <bayeslmm.MapResult.bootstrap>`).

    Returns
    -------
    DataFrame
        lme4's columns ``npar, AIC, BIC, logLik, deviance, Chisq, Df, Pr(>Chisq)``
        (lme4 < 1.1-27 called npar ``Df`` and Df ``Chi Df``), rows sorted by npar;
        ``attrs["models"]`` holds each row's formula, ``attrs["refitted"]`` whether
        REML fits were refitted by ML.

    Raises
    ------
    DataError
        Fits to different rows or responses (lme4 refuses them too).
    FitError
        ``refit=False`` with REML fits of different fixed effects.

    Examples
    --------
    >>> o0 = blm.LMM("distance ~ age + (1 | Subject)", blm.datasets.load("Orthodont")).fit_map()
    >>> o1 = blm.LMM("distance ~ age + Sex + (1 | Subject)",
    ...              blm.datasets.load("Orthodont")).fit_map()
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as w:
    ...     warnings.simplefilter("always")
    ...     table = anova(o0, o1, names=["o0", "o1"])
    >>> str(w[0].message)
    'refitting model(s) with ML (instead of REML)'
    >>> table[["npar", "logLik", "Chisq", "Pr(>Chisq)"]].round(4)   # lme4: 8.5331, 0.0035
        npar    logLik   Chisq  Pr(>Chisq)
    o0     4 -221.6948     NaN         NaN
    o1     5 -217.4282  8.5331      0.0035
    """
    named = _named(fits, names)
    _check_data(named)
    reml = {n: f.method == "REML" for n, f in named.items()}
    refitted = False
    if refit:
        if any(reml.values()):
            warnings.warn("refitting model(s) with ML (instead of REML)", UserWarning,
                          stacklevel=user_stacklevel())
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the refits' own fit warnings
                named = {n: (f.refit(method="ML") if reml[n] else f) for n, f in named.items()}
            refitted = True
    else:
        if any(reml.values()) and not all(reml.values()):
            warnings.warn("some models fit with REML = TRUE, some not", UserWarning,
                          stacklevel=user_stacklevel())
        fixed = {tuple(f.fixef.index) for n, f in named.items() if reml[n]}
        if len(fixed) > 1:
            raise FitError("REML fits with different fixed effects cannot be compared by "
                           "their likelihoods; use refit=True (lme4's default) to refit "
                           "them by ML.")
    order = sorted(named, key=lambda n: named[n].df)
    mods = [named[n] for n in order]
    npar = np.array([m.df for m in mods])
    llk = np.array([m.loglik for m in mods])
    chisq = np.concatenate([[np.nan], 2 * np.maximum(0.0, np.diff(llk))])
    dfc = np.concatenate([[np.nan], np.diff(npar).astype(float)])
    with np.errstate(invalid="ignore"):
        p = np.where(dfc == 0, np.nan, chi2.sf(chisq, dfc))
    table = pd.DataFrame({"npar": npar, "AIC": [m.aic for m in mods],
                          "BIC": [m.bic for m in mods], "logLik": llk, "deviance": -2 * llk,
                          "Chisq": chisq, "Df": dfc, "Pr(>Chisq)": p}, index=order)
    if bootstrap:
        table["Pr(boot)"] = [np.nan] + [
            _boot_p(mods[k - 1], mods[k], chisq[k], int(bootstrap), random_seed, cores,
                    progressbar) for k in range(1, len(mods))]
    table.attrs["models"] = {n: named[n].formula for n in order}
    table.attrs["refitted"] = refitted
    return table


def _boot_p(small: MapResult, large: MapResult, lrt: float, n: int, random_seed,
            cores, progressbar) -> float:
    """pbkrtest's PBtest p-value: responses from the smaller fit, both refitted."""
    if small.method != "ML" or large.method != "ML":
        raise FitError("The bootstrap p-value compares ML fits: use refit=True.")

    def stat(f0: MapResult) -> float:
        y = (f0.predict() + f0.residuals).to_numpy()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return 2.0 * (large.refit(y).loglik - f0.loglik)

    ref = small.bootstrap(n, statistic=stat, random_seed=random_seed, cores=cores,
                          progressbar=progressbar).replicates.iloc[:, 0].to_numpy()
    pos = ref[np.isfinite(ref) & (ref > 0)]
    return float((1 + np.sum(pos > lrt)) / (1 + len(pos)))
