"""NUTS draws of a high-dimensional LMM (a wide random matrix or a known covariance):
(β, σ_b, σ) and h², the random effects integrated out.

Examples
--------
``kpost``: the model of the :class:`~bayeslmm.results.kernel_map.KernelMapResult`
examples sampled by NUTS (see :class:`KernelPosteriorResult`).

>>> kpost.h2_draws.shape  # kpost: see KernelPosteriorResult
(2, 500)
"""

from __future__ import annotations

from typing import Any

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from ..formula.kernel_design import KernelDesign
from .base import PosteriorBase, jsonable
from .kernel_base import KernelResultBase

__all__ = ["KernelPosteriorResult"]


class KernelPosteriorResult(KernelResultBase, PosteriorBase):
    """NUTS draws of (β, σ_b, σ) and h²; the effects are integrated out.

    Examples
    --------
    The examples of this class use ``kpost``, the model of the examples of
    :class:`KernelMapResult` sampled once for them all:

        kpost = blm.LMM("y ~ 1", df, random_matrices={"snps": W}).fit(
            draws=500, tune=500, chains=2, random_seed=1)

    >>> kpost.info["parameterization"], kpost.summary().index.tolist()
    ('rotated marginal', ['beta[Intercept]', 'sd_snps', 'sigma', 'h2'])
    """

    _FILE_KIND = "kernel-posterior"

    def __init__(self, idata: az.InferenceData, kd: KernelDesign, priors: dict[str, str],
                 info: dict[str, Any] | None = None) -> None:
        self._idata, self._priors, self._info = idata, dict(priors), dict(info or {})
        self._summary = None
        self._set_design(kd)

    def _flat(self, name: str) -> np.ndarray:
        v = self._idata.posterior[name].values
        return v.reshape(v.shape[0] * v.shape[1], *v.shape[2:])

    def _param_draws(self):
        return (self._flat("beta"), self._flat(f"sd_{self._kd.name}"), self._flat("sigma"))

    @property
    def fixef(self) -> pd.Series:
        """Posterior means of the fixed effects.

        Examples
        --------
        >>> abs(kpost.fixef - kmap.fixef) < 0.05  # kpost, kmap: see the class examples
        Intercept    True
        Name: fixef, dtype: bool
        """
        return pd.Series(self._flat("beta").mean(axis=0), index=self._kd.fixed.fixef_names,
                         name="fixef")

    @property
    def sigma(self) -> float:
        """Posterior mean of σ.

        Examples
        --------
        >>> abs(kpost.sigma - kmap.sigma) < 0.1  # kpost, kmap: see the class examples
        True
        """
        return float(self._flat("sigma").mean())

    @property
    def sd(self) -> float:
        """Posterior mean of σ_b.

        Examples
        --------
        >>> abs(kpost.sd - kmap.sd) < 0.02  # kpost, kmap: see the class examples
        True
        """
        return float(self._flat(f"sd_{self._kd.name}").mean())

    @property
    def h2(self) -> float:
        """Posterior mean of h².

        Examples
        --------
        >>> 0 < kpost.h2 < 1  # kpost: see KernelPosteriorResult
        True
        """
        return float(self._flat("h2").mean())

    @property
    def h2_draws(self) -> xr.DataArray:
        """Draws of h².

        Examples
        --------
        >>> kpost.h2_draws.dims, float(kpost.h2_draws.min()) >= 0  # kpost: see the class
        (('chain', 'draw'), True)
        """
        return self._idata.posterior["h2"]

    @property
    def varcorr(self) -> pd.DataFrame:
        """lme4's layout at the posterior means of the sds.

        Examples
        --------
        >>> kpost.varcorr[["grp", "var1"]]  # kpost: see KernelPosteriorResult
                grp    var1
        0      snps  effect
        1  Residual     NaN
        """
        return self._varcorr(self.sd, self.sigma)

    def _summarize(self, hdi_prob: float) -> pd.DataFrame:
        return az.summary(self._idata, var_names=["beta", f"sd_{self._kd.name}", "sigma", "h2"],
                          hdi_prob=hdi_prob, round_to="none")

    def predict(self, new_data: pd.DataFrame | None = None, *, new_X: Any = None,
                include_random: bool = True) -> xr.DataArray:
        """Draws of ``X_f β + E[g | y, θ]`` (dims ``chain, draw, obs``).

        Each draw is the BLUP at that draw's (β, σ_b, σ): their mean is the posterior
        mean of the genetic value; their spread is the uncertainty in θ (for the joint
        uncertainty of g itself, use :meth:`draw_effects`). Arguments as in
        :meth:`KernelMapResult.predict`.

        Examples
        --------
        >>> new_W = np.random.default_rng(1).normal(size=(2, 100))
        >>> kpost.predict(new_X=new_W).shape  # kpost: see KernelPosteriorResult
        (2, 500, 2)
        """
        out, index = self._predict_draws(new_data, new_X, include_random)
        post = self._idata.posterior
        vals = out.T.reshape(post.sizes["chain"], post.sizes["draw"], -1)
        return xr.DataArray(vals, dims=("chain", "draw", "obs"),
                            coords={"chain": post.chain, "draw": post.draw,
                                    "obs": np.asarray(index)}, name="mu")

    def draw_effects(self, draws: int = 100, *, random_seed: int | None = None
                     ) -> xr.DataArray:
        """Exact draws of ω (or b) given y, one per posterior draw (evenly thinned).

        Returns
        -------
        DataArray, dims ``(sample, <name>_effect)``

        Examples
        --------
        >>> kpost.draw_effects(200, random_seed=1).shape  # kpost: see KernelPosteriorResult
        (200, 100)
        """
        total = len(self._flat("sigma"))
        idx = np.linspace(0, total - 1, min(int(draws), total)).round().astype(int)
        return self._effect_draws(idx, random_seed)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary.

        Examples
        --------
        >>> d = kpost.to_dict()  # kpost: see KernelPosteriorResult
        >>> d["kind"], list(d["summary"])
        ('posterior', ['beta[Intercept]', 'sd_snps', 'sigma', 'h2'])
        """
        return jsonable({**self._draws_dict(), **self._kernel_dict()})

    def __str__(self) -> str:
        from .display_kernel import format_kernel_posterior

        return format_kernel_posterior(self)
