"""GREML: the ML/REML result of a high-dimensional LMM (a wide random matrix or a
known covariance), the random effects integrated out exactly.

Examples
--------
>>> import numpy as np, pandas as pd, bayeslmm as blm
>>> rng = np.random.default_rng(0)
>>> W = rng.normal(size=(40, 100))
>>> df = pd.DataFrame({"y": W @ rng.normal(scale=0.1, size=100) + rng.normal(size=40)})
>>> fit = blm.LMM("y ~ 1", df, random_matrices={"snps": W}).fit_map()
>>> type(fit).__name__, fit.df
('KernelMapResult', 3)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..formula.kernel_design import KernelDesign
from .base import MapBase, jsonable
from .kernel_base import KernelResultBase

__all__ = ["KernelMapResult", "GremlFit"]


@dataclass(frozen=True)
class GremlFit:
    """The ML/REML estimates of a rotated model (:func:`bayeslmm.mle.greml.greml`)."""

    method: str
    h2: float
    beta: np.ndarray
    vcov: np.ndarray
    sd: float
    sigma: float
    loglik: float
    h2_se: float
    h2_interval: tuple[float, float]
    converged: bool
    evaluations: int


class KernelMapResult(KernelResultBase, MapBase):
    """ML/REML (GREML) estimates; the random effects are integrated out exactly.

    Examples
    --------
    The examples of this class and of :class:`KernelPosteriorResult` use this fit,
    ``kmap`` (40 rows, 100 markers):

    >>> import numpy as np, pandas as pd, bayeslmm as blm
    >>> rng = np.random.default_rng(0)
    >>> W = rng.normal(size=(40, 100))
    >>> df = pd.DataFrame({"y": W @ rng.normal(scale=0.1, size=100) + rng.normal(size=40)})
    >>> kmap = blm.LMM("y ~ 1", df, random_matrices={"snps": W}).fit_map()
    >>> kmap.method, round(kmap.h2, 3)
    ('REML', 0.324)
    """

    _FILE_KIND = "kernel-map"

    def __init__(self, fit: GremlFit, kd: KernelDesign) -> None:
        self._fit = fit
        self._set_design(kd)

    def _param_draws(self):
        return self._fit.beta[None, :], np.array([self._fit.sd]), np.array([self._fit.sigma])

    @property
    def method(self) -> str:
        """``"ML"`` or ``"REML"``.

        Examples
        --------
        >>> kmap.method  # kmap: see KernelMapResult
        'REML'
        """
        return self._fit.method

    @property
    def sigma(self) -> float:
        """Residual sd σ̂.

        Examples
        --------
        >>> round(kmap.sigma, 3)  # kmap: see KernelMapResult
        1.234
        """
        return float(self._fit.sigma)

    @property
    def sd(self) -> float:
        """σ̂_b: sd of one random coefficient.

        Examples
        --------
        >>> round(kmap.sd, 4)  # kmap: see KernelMapResult
        0.0857
        """
        return float(self._fit.sd)

    @property
    def h2(self) -> float:
        """ĥ² = σ̂_b² c / (σ̂_b² c + σ̂²), c = tr(K)/n.

        Examples
        --------
        >>> round(kmap.h2, 3)  # kmap: see KernelMapResult
        0.324
        """
        return float(self._fit.h2)

    @property
    def h2_se(self) -> float:
        """SE of ĥ² from the curvature of the profiled criterion.

        Examples
        --------
        >>> round(kmap.h2_se, 3)  # kmap: see KernelMapResult
        0.338
        """
        return float(self._fit.h2_se)

    @property
    def h2_interval(self) -> tuple[float, float]:
        """95% profile-likelihood interval of h².

        Examples
        --------
        >>> tuple(round(v, 3) for v in kmap.h2_interval)  # kmap: see KernelMapResult
        (0.0, 0.866)
        """
        return tuple(float(v) for v in self._fit.h2_interval)

    @property
    def loglik(self) -> float:
        """Log-likelihood (REML: the REML criterion's, as lme4's logLik).

        Examples
        --------
        >>> round(kmap.loglik, 3)  # kmap: see KernelMapResult
        -72.656
        """
        return float(self._fit.loglik)

    @property
    def converged(self) -> bool:
        """Optimiser success.

        Examples
        --------
        >>> kmap.converged  # kmap: see KernelMapResult
        True
        """
        return bool(self._fit.converged)

    @property
    def singular(self) -> bool:
        """True when σ̂_b is 0 (the boundary).

        Examples
        --------
        >>> kmap.singular  # kmap: see KernelMapResult
        False
        """
        return bool(self._fit.h2 < 1e-6)

    @property
    def fixef(self) -> pd.Series:
        """Fixed-effect estimates β̂.

        Examples
        --------
        >>> kmap.fixef.round(4)  # kmap: see KernelMapResult
        Intercept    0.1134
        Name: fixef, dtype: float64
        """
        return pd.Series(self._fit.beta, index=self._kd.fixed.fixef_names, name="fixef")

    @property
    def vcov(self) -> pd.DataFrame:
        """Covariance of β̂, ``σ̂²(X̃ᵀV̂₀⁻¹X̃)⁻¹`` as lme4's ``vcov``.

        Examples
        --------
        >>> kmap.vcov.round(4)  # kmap: see KernelMapResult
                   Intercept
        Intercept     0.0525
        """
        n = self._kd.fixed.fixef_names
        return pd.DataFrame(self._fit.vcov, index=n, columns=n)

    @property
    def df(self) -> int:
        """Number of parameters: fixed effects, σ_b and σ.

        Examples
        --------
        >>> kmap.df  # kmap: see KernelMapResult
        3
        """
        return len(self._fit.beta) + 2

    @property
    def varcorr(self) -> pd.DataFrame:
        """The random term's and the residual's variance and sd (lme4's layout).

        Examples
        --------
        >>> kmap.varcorr.round(4)  # kmap: see KernelMapResult
                grp    var1 var2    vcov   sdcor
        0      snps  effect  NaN  0.0073  0.0857
        1  Residual     NaN  NaN  1.5229  1.2341
        """
        return self._varcorr(self.sd, self.sigma)

    def predict(self, new_data: pd.DataFrame | None = None, *, new_X: Any = None,
                include_random: bool = True) -> pd.Series:
        """BLUP predictions ``X_f β̂ + E[g | y]`` at the estimates.

        Parameters
        ----------
        new_data : DataFrame, optional
            Rows with the formula's columns (and the grouping factor for a known
            covariance). Default: the training rows.
        new_X : array or DataFrame, optional
            Their rows of the random matrix (genomic prediction), same columns.
        include_random : bool
            False: the fixed part only.

        Examples
        --------
        Genomic prediction of rows from their markers (here the first two training rows,
        which give their fitted values):

        >>> new_W = kmap.design.W[:2]  # kmap: see KernelMapResult
        >>> kmap.predict(new_X=new_W).round(3)
        0   -0.421
        1   -0.044
        Name: fit, dtype: float64
        >>> np.allclose(kmap.predict(new_X=new_W), kmap.predict()[:2])
        True
        """
        out, index = self._predict_draws(new_data, new_X, include_random)
        return pd.Series(out[:, 0], index=index, name="fit")

    def draw_effects(self, draws: int = 100, *, random_seed: int | None = None
                     ) -> xr.DataArray:
        """Exact draws of ω (or b) from its Gaussian conditional given y, at θ̂.

        Returns
        -------
        DataArray, dims ``(sample, <name>_effect)``

        Examples
        --------
        >>> omega = kmap.draw_effects(200, random_seed=1)  # kmap: see KernelMapResult
        >>> omega.dims, omega.shape
        (('sample', 'snps_effect'), (200, 100))
        """
        return self._effect_draws(np.zeros(int(draws), dtype=int), random_seed)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary.

        Examples
        --------
        >>> d = kmap.to_dict()  # kmap: see KernelMapResult
        >>> d["kind"], d["random_term"]["n_effects"], d["h2_interval"][0]
        ('map', 100, 0.0)
        """
        return jsonable({**self._map_dict(), **self._kernel_dict(),
                         "h2_se": self.h2_se, "h2_interval": list(self.h2_interval)})

    def __str__(self) -> str:
        from .display_kernel import format_kernel_map

        return format_kernel_map(self)
