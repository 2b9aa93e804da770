"""Parametric bootstrap replicates of a statistic of an ML/REML fit
(``MapResult.bootstrap``), with boot's intervals, as lme4's ``bootMer`` and
``confint(<bootMer>)`` give them.

Percentile intervals are boot's (``norm.inter``): the order statistics at (R + 1)α,
interpolated on the normal-quantile scale between neighbours; ``basic`` reflects them
about the estimate, ``norm`` is estimate − bias ± z·sd.

Examples
--------
>>> t = np.arange(1.0, 100.0)
>>> percentile_interval(t, 0.9)                  # (R + 1)·0.05 = 5: the 5th and 95th
(5.0, 95.0)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm

from ..errors import BayesLMMError
from .profile import percent_labels

__all__ = ["BootstrapResult", "percentile_interval"]


def percentile_interval(t, level: float) -> tuple[float, float]:
    """boot's percentile interval (``norm.inter`` at (1 ∓ level)/2) of replicates t."""
    t = np.sort(np.asarray(t, dtype=float)[np.isfinite(t)])
    R = len(t)
    if R == 0:
        return float("nan"), float("nan")
    out = []
    for a in ((1 - level) / 2, (1 + level) / 2):
        rk = (R + 1) * a
        k = int(np.trunc(rk))
        if k == rk and 0 < k <= R:
            out.append(t[k - 1])
        elif k <= 0:
            out.append(t[0])
        elif k >= R:
            out.append(t[R - 1])
        else:
            z, z1, z2 = norm.ppf(a), norm.ppf(k / (R + 1)), norm.ppf((k + 1) / (R + 1))
            out.append(t[k - 1] + (z - z1) / (z2 - z1) * (t[k] - t[k - 1]))
    return float(out[0]), float(out[1])


class BootstrapResult:
    """Replicates of a statistic refitted to responses simulated from a fit.

    Made by :meth:`MapResult.bootstrap <bayeslmm.MapResult.bootstrap>`; immutable.

    Parameters
    ----------
    replicates : DataFrame
        One row per replicate (NaN where its refit failed), one column per value.
    original : Series
        The statistic of the fit itself (lme4's ``t0``).
    info : dict
        ``random_seed``, ``failed`` (refits that raised) and ``warnings`` (message →
        count over the refits).

    Examples
    --------
    >>> import bayeslmm as blm
    >>> fit = blm.LMM("Yield ~ 1 + (1 | Batch)", blm.datasets.load("Dyestuff")).fit_map()
    >>> boot = fit.bootstrap(40, random_seed=1, cores=1, progressbar=False)
    >>> boot.replicates.shape, boot.info["failed"]
    ((40, 3), 0)
    """

    __slots__ = ("_replicates", "_original", "_info")

    def __init__(self, replicates: pd.DataFrame, original: pd.Series, info: dict[str, Any]):
        object.__setattr__(self, "_replicates", replicates.copy())
        object.__setattr__(self, "_original", original.copy())
        object.__setattr__(self, "_info", dict(info))

    def __setattr__(self, name, value):
        raise AttributeError("BootstrapResult is immutable.")

    @property
    def replicates(self) -> pd.DataFrame:
        """The statistic of each refit (lme4's ``$t``).

        Examples
        --------
        >>> boot.replicates.columns.tolist()  # boot: see BootstrapResult
        ['sd_Batch[Intercept]', 'sigma', 'Intercept']
        """
        return self._replicates.copy()

    @property
    def original(self) -> pd.Series:
        """The statistic of the fit (lme4's ``$t0``).

        Examples
        --------
        >>> boot.original.round(2).tolist()  # boot: see BootstrapResult
        [42.0, 49.51, 1527.5]
        """
        return self._original.copy()

    @property
    def info(self) -> dict[str, Any]:
        """Seed, number of failed refits and the refits' warnings with their counts.

        Examples
        --------
        >>> sorted(boot.info)  # boot: see BootstrapResult
        ['failed', 'n', 'random_seed', 'warnings']
        """
        return dict(self._info)

    def summary(self) -> pd.DataFrame:
        """Original value, bias and standard error of each value (``print(bootMer)``).

        Examples
        --------
        >>> boot.summary().columns.tolist()  # boot: see BootstrapResult
        ['original', 'bias', 'se']
        """
        t = self._replicates
        return pd.DataFrame({"original": self._original, "bias": t.mean() - self._original,
                             "se": t.std(ddof=1)})

    def confint(self, level: float = 0.95, type: str = "perc") -> pd.DataFrame:
        """Bootstrap intervals, as boot's ``boot.ci`` (lme4's ``confint(<bootMer>)``).

        ``type``: ``"perc"`` (percentile, lme4's default), ``"basic"`` or ``"norm"``.

        Examples
        --------
        >>> ci = boot.confint()  # boot: see BootstrapResult
        >>> ci.columns.tolist(), bool((ci["2.5 %"] < boot.original).all())
        (['2.5 %', '97.5 %'], True)
        """
        if not 0 < level < 1:
            raise BayesLMMError(f"level must be between 0 and 1, got {level!r}.")
        if type not in ("perc", "basic", "norm"):
            raise BayesLMMError(f"type must be 'perc', 'basic' or 'norm', got {type!r}.")
        rows = {}
        for col in self._replicates.columns:
            t = self._replicates[col].to_numpy()
            t0 = float(self._original[col])
            if type == "norm":
                t = t[np.isfinite(t)]
                bias, half = t.mean() - t0, np.std(t, ddof=1) * norm.ppf((1 + level) / 2)
                rows[col] = (t0 - bias - half, t0 - bias + half)
            else:
                lo, hi = percentile_interval(t, level)
                rows[col] = (lo, hi) if type == "perc" else (2 * t0 - hi, 2 * t0 - lo)
        return pd.DataFrame.from_dict(rows, orient="index", columns=percent_labels(level))

    def __repr__(self) -> str:
        i = self._info
        return (f"BootstrapResult({len(self._replicates)} replicates of "
                f"{self._replicates.shape[1]} values, seed {i.get('random_seed')!r}, "
                f"{i.get('failed', 0)} failed)")
