"""What an ML/REML fit gives per row: fitted values, residuals and predictions, from
the rows in memory or, for a fit of data in chunks (a dask DataFrame) or for new data
in chunks, as lazy dask objects computed partition by partition
(:mod:`bayeslmm.dask.lazy`).

Examples
--------
>>> import bayeslmm as blm
>>> fit = blm.LMM("Reaction ~ Days + (Days | Subject)", blm.datasets.load("sleepstudy")).fit_map()
>>> fit.out_of_core, round(float(fit.residuals.abs().max()), 2)
(False, 132.55)
"""

from __future__ import annotations

import pandas as pd

from ..dask.frame import is_dask_frame
from ..errors import BayesLMMError
from .varcorr import psi_from_varcorr

__all__ = ["MapRows"]


class MapRows:
    """Values per row of a :class:`~bayeslmm.results.map.MapResult` (which see for the
    examples' ``mapfit``)."""

    __slots__ = ()

    @property
    def out_of_core(self) -> bool:
        """True for a fit of data out of core (a dask DataFrame).

        Values per row (``residuals``, ``predict()``) are then lazy dask objects.

        Examples
        --------
        >>> mapfit.out_of_core  # mapfit: see MapResult
        False
        """
        return self._fitted is None and self._design is not None

    @property
    def residuals(self) -> pd.Series:
        """y − fitted values (random effects included).

        A lazy dask Series for a fit of a dask DataFrame.

        Examples
        --------
        >>> mapfit.residuals.head(3).round(2)  # mapfit: see MapResult
        0    -4.10
        1   -14.63
        2   -42.20
        Name: residual, dtype: float64
        """
        if self._residuals is None:
            return self._lazy_residuals()
        return self._residuals.copy()

    def _lazy_residuals(self):
        from ..dask.lazy import map_rows
        from .predict import residual_frame

        d = self._design
        ranef = {g: df.to_numpy() for g, df in self._ranef.items()}
        return map_rows(d, None, residual_frame, (self._fixef.to_numpy(), ranef),
                        pd.Series([], dtype=float, name="residual"), typed=False)

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
        if self._scaled_residuals is None and self.out_of_core \
                and getattr(self._residual_structure.variance, "by", None):
            return self._lazy_scaled()  # VarIdent out of core: σ δ of each row's level
        if self._scaled_residuals is None:
            return (self.residuals / self.sigma).rename("scaled")
        return self._scaled_residuals.copy()

    def _lazy_scaled(self):
        from ..dask.lazy import map_rows

        ranef = {g: df.to_numpy() for g, df in self._ranef.items()}
        sds = {k: self.sigma * v for k, v in self._residual_params.items()}
        return map_rows(self._design, None, _scaled_frame,
                        (self._fixef.to_numpy(), ranef, self._residual_structure.variance.by,
                         sds), pd.Series([], dtype=float, name="scaled"), typed=False)

    def predict(self, new_data: pd.DataFrame | None = None, *, include_random: bool = True,
                new_levels: str = "population", se_fit: bool = False):
        """Predicted means at the estimates, like lme4's ``predict(fit, newdata)``.

        Parameters
        ----------
        new_data : DataFrame or dask DataFrame, optional
            Rows to predict; default the training rows (the fitted values Xβ̂ + Zb̂).
            Dask data (and the rows of a fit of dask data) give a lazy dask object.
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
        lazy = is_dask_frame(new_data) or (new_data is None and self._fitted is None)
        if new_data is None and include_random and not se_fit and not lazy:
            return self._fitted.rename("fit")
        from .predict import predict_frame

        d = self._design
        if d is None:
            raise BayesLMMError("This result holds no design; refit to predict new data.")
        psi = {t.group: psi_from_varcorr(self._varcorr, t.group, t.term_names)
               for t in d.terms}
        args = (self._fixef.to_numpy(), self._vcov.to_numpy(),
                {g: df.to_numpy() for g, df in self._ranef.items()},
                {g: df.to_numpy() for g, df in self._ranef_sd.items()}, psi,
                include_random, new_levels, se_fit)
        if lazy:  # data in chunks (or an out-of-core fit's own rows): a dask object
            from ..dask.lazy import map_rows

            meta = (pd.DataFrame({"fit": [], "se": []}) if se_fit
                    else pd.Series([], dtype=float, name="fit"))
            return map_rows(d, new_data, predict_frame, args, meta)
        return predict_frame(new_data, d, *args)


def _scaled_frame(part, design, fixef, ranef, by: str, sds: dict) -> pd.Series:
    """One chunk's residuals over σ δ of each row's ``VarIdent`` level."""
    from .predict import residual_frame

    res = residual_frame(part, design, fixef, ranef)
    sd = part.loc[res.index, by].astype(str).map(sds).to_numpy(dtype=float)
    return (res / sd).rename("scaled")
