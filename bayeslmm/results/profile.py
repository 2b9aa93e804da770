"""The likelihood profile of an ML/REML fit (``MapResult.profile()``): ζ against each
parameter, its intervals and its plot, as lme4's ``profile``, ``confint`` and ``xyplot``.

ζ(x) = sign(x − x̂)·√(D(x) − D̂), D the ML deviance minimised over the other parameters
(:mod:`bayeslmm.mle.profile`). The interval at level 1 − α is where ζ = ±z_{α/2}, read
off the inverse of the natural spline through the profiled points (lme4's
``backSpline(interpSpline(ζ ~ x))``); where ζ does not reach ±z within the profile the
end is the parameter's bound (0 for an sd, ±1 for a correlation; NaN for a fixed effect).

Examples
--------
>>> import bayeslmm as blm
>>> fit = blm.LMM("Yield ~ 1 + (1 | Batch)", blm.datasets.load("Dyestuff2")).fit_map()
>>> prof = fit.profile()
>>> prof.confint().round(4)                    # lme4: 0, 2.0840 | 2.8928, 4.8158 | ...
                      2.5 %  97.5 %
sd_Batch[Intercept]  0.0000  2.0840
sigma                2.8928  4.8158
Intercept            4.3121  7.0191
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy.interpolate import CubicSpline
from scipy.stats import norm

from ..errors import BayesLMMError, user_stacklevel
from ..linalg.spline import BackSpline

__all__ = ["Profile", "percent_labels"]


def percent_labels(level: float) -> list[str]:
    """R's column names of an interval at ``level``: ``["2.5 %", "97.5 %"]``.

    >>> percent_labels(0.9)
    ['5 %', '95 %']
    """
    a = (1 - level) / 2
    return [f"{100 * q:.3g} %" for q in (a, 1 - a)]


class Profile:
    """ζ against each parameter of an ML/REML fit (lme4's ``profile(fit)``).

    Made by :meth:`MapResult.profile <bayeslmm.MapResult.profile>`; immutable.

    Parameters
    ----------
    table : DataFrame
        ``.zeta``, every parameter, ``.par`` (the parameter profiled), one row a point.
    lower, upper : Series
        Bounds of the parameters (used where ζ does not reach the level).
    lme4_names : dict
        bayeslmm's name → lme4's (``.sig01``, ``.sigma``, ``(Intercept)``).

    Examples
    --------
    >>> import bayeslmm as blm
    >>> prof = blm.LMM("Yield ~ 1 + (1 | Batch)", blm.datasets.load("Dyestuff")).fit_map().profile()
    >>> prof.parameters, prof.lme4_names["sigma"]
    (['sd_Batch[Intercept]', 'sigma', 'Intercept'], '.sigma')
    """

    __slots__ = ("_table", "_lower", "_upper", "_lme4", "_back")

    def __init__(self, table: pd.DataFrame, lower: pd.Series, upper: pd.Series,
                 lme4_names: dict[str, str]):
        for k, v in {"_table": table.copy(), "_lower": lower.copy(), "_upper": upper.copy(),
                     "_lme4": dict(lme4_names), "_back": {}}.items():
            object.__setattr__(self, k, v)
        for par in self.parameters:
            pts = self._points(par)
            try:
                self._back[par] = BackSpline.from_profile(pts[par], pts[".zeta"])
            except ValueError as e:
                warnings.warn(f"non-monotonic profile for {par} ({e}): its interval falls "
                              "back to linear interpolation.", UserWarning,
                              stacklevel=user_stacklevel())
                self._back[par] = None

    def __setattr__(self, name, value):
        raise AttributeError("Profile is immutable.")

    def _points(self, par: str) -> pd.DataFrame:
        t = self._table
        return t.loc[t[".par"] == par, [par, ".zeta"]].sort_values(par)

    @property
    def table(self) -> pd.DataFrame:
        """The profile as lme4's ``as.data.frame(profile(fit))``.

        Columns ``.zeta``, every parameter at each point, ``.par`` (the one profiled).

        Examples
        --------
        >>> prof.table.columns.tolist()  # prof: see Profile
        ['.zeta', 'sd_Batch[Intercept]', 'sigma', 'Intercept', '.par']
        """
        return self._table.copy()

    @property
    def parameters(self) -> list[str]:
        """The parameters profiled, in lme4's order (sd/cor, σ, fixed effects).

        Examples
        --------
        >>> prof.parameters  # prof: see Profile
        ['sd_Batch[Intercept]', 'sigma', 'Intercept']
        """
        return list(dict.fromkeys(self._table[".par"]))

    @property
    def lme4_names(self) -> dict[str, str]:
        """bayeslmm's name → lme4's name of each parameter.

        Examples
        --------
        >>> prof.lme4_names  # prof: see Profile
        {'sd_Batch[Intercept]': '.sig01', 'sigma': '.sigma', 'Intercept': '(Intercept)'}
        """
        return dict(self._lme4)

    def zeta(self, parameter: str, values) -> np.ndarray:
        """ζ at given values of a parameter, from the spline through its profile.

        NaN outside the profiled range.

        Examples
        --------
        >>> np.round(prof.zeta("sigma", [49.51]), 3)  # prof: see Profile (ML σ̂ = 49.51)
        array([-0.])
        """
        self._check(parameter)
        pts = self._points(parameter)
        x = np.asarray(values, dtype=float)
        spl = CubicSpline(pts[parameter], pts[".zeta"], bc_type="natural")
        out = spl(x)
        out[(x < pts[parameter].iloc[0]) | (x > pts[parameter].iloc[-1])] = np.nan
        return out

    def _check(self, parameter: str) -> None:
        if parameter not in self._back:
            raise BayesLMMError(f"{parameter!r} was not profiled; profiled: {self.parameters}.")

    def confint(self, level: float = 0.95) -> pd.DataFrame:
        """Profile intervals, as lme4's ``confint(profile(fit), level = level)``.

        Examples
        --------
        >>> prof.confint(0.9).round(3)  # prof: see Profile (lme4: confint(pp, level = 0.9))
                                  5 %      95 %
        sd_Batch[Intercept]    16.771    72.873
        sigma                  39.732    64.069
        Intercept            1494.784  1560.216
        """
        if not 0 < level < 1:
            raise BayesLMMError(f"level must be between 0 and 1, got {level!r}.")
        z = norm.ppf([(1 - level) / 2, (1 + level) / 2])
        rows = {}
        for par in self.parameters:
            back = self._back[par]
            if back is not None:
                ends = back(z)
            else:
                pts = self._points(par).sort_values(".zeta")
                ends = np.interp(z, pts[".zeta"], pts[par], left=np.nan, right=np.nan)
            lo = ends[0] if np.isfinite(ends[0]) else self._lower.get(par, np.nan)
            hi = ends[1] if np.isfinite(ends[1]) else self._upper.get(par, np.nan)
            rows[par] = (lo, hi)
        out = pd.DataFrame.from_dict(rows, orient="index", columns=percent_labels(level))
        return out.replace([np.inf, -np.inf], np.nan)

    def plot(self, *, levels=(0.5, 0.8, 0.9, 0.95, 0.99), axes=None):
        """ζ against each parameter, one panel each, as lme4's ``xyplot(profile(fit))``.

        The curve is the spline through the profiled points; horizontal lines mark
        ζ = ±z at each level and vertical ones the interval ends there.

        Parameters
        ----------
        levels : sequence of float
            Interval levels marked on each panel.
        axes : sequence of matplotlib Axes, optional
            One per parameter (default: a new figure, a row of panels).

        Returns
        -------
        matplotlib Figure

        Examples
        --------
        >>> fig = prof.plot()  # prof: see Profile
        >>> [ax.get_xlabel() for ax in fig.axes]
        ['sd_Batch[Intercept]', 'sigma', 'Intercept']
        """
        import matplotlib.pyplot as plt

        pars = self.parameters
        if axes is None:
            fig, axes = plt.subplots(1, len(pars), figsize=(3.2 * len(pars), 3.2),
                                     sharey=True, squeeze=False)
            axes = axes[0]
        else:
            fig = axes[0].figure
        for ax, par in zip(axes, pars, strict=True):
            pts = self._points(par)
            grid = np.linspace(pts[par].iloc[0], pts[par].iloc[-1], 200)
            ax.plot(grid, self.zeta(par, grid), color="C0")
            ax.plot(pts[par], pts[".zeta"], "o", ms=2.5, color="C0")
            for lev in levels:
                lo, hi = self.confint(lev).loc[par]
                z = norm.ppf((1 + lev) / 2)
                for end, s in ((lo, -1), (hi, 1)):
                    if np.isfinite(end):
                        ax.plot([end, end], [0, s * z], color="grey", lw=0.6, ls=":")
                ax.axhline(z, color="grey", lw=0.4)
                ax.axhline(-z, color="grey", lw=0.4)
            ax.set_xlabel(par)
        axes[0].set_ylabel("ζ")
        fig.tight_layout()
        return fig

    def __repr__(self) -> str:
        return (f"Profile({len(self.parameters)} parameters, {len(self._table)} points; "
                f"confint() for the intervals, plot() for ζ)")
