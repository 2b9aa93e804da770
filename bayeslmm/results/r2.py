"""R² of a mixed model: Nakagawa & Schielzeth's marginal and conditional R², and the
Bayesian R² of Gelman, Goodrich, Gabry & Vehtari (2019).

Nakagawa & Schielzeth (2013, random slopes as Johnson 2014), as R's
``performance::r2_nakagawa`` computes them for an lme4 fit:

- ``var_fixed`` = the sample variance (n − 1) of the fixed part ``Xβ`` over the rows;
- ``var_random`` = Σ over grouping factors of the mean over rows of ``zᵢᵀ Ψ zᵢ``
  (``zᵢ`` the row's random-effect columns): the random intercept's variance plus the
  slopes' variance at the observed covariate values;
- ``var_residual`` = σ² (nlme's σ, where a variance function is 1);
- marginal R² = var_fixed / total, conditional R² = (var_fixed + var_random) / total.

For an ML/REML fit they are computed at the estimates; for a posterior, per draw (a
posterior of each R²).

Bayesian R² (Gelman et al. 2019, their recommended model-based form) per draw ``s``:
``var(μ_s) / (var(μ_s) + σ_s²)`` with ``μ_s = Xβ_s + Zb_s`` the draw's fitted means over
the training rows (``Xβ_s`` alone with ``include_random=False``). With a residual
structure the residual variance is the draw's residuals' ``var(y − μ_s)`` (the
residual-based form, as brms's ``bayes_R2``).

Examples
--------
``mapfit``: the sleepstudy REML fit of :class:`~bayeslmm.MapResult`; R's
``performance::r2_nakagawa`` gives 0.2787 and 0.7992 (``models/r2/r2_nakagawa.toml``).

>>> mapfit.r2_nakagawa()[["marginal", "conditional"]].round(4)
marginal       0.2787
conditional    0.7992
Name: r2_nakagawa, dtype: float64
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from .predict import posterior_draws, psi_factor, training_rows
from .varcorr import psi_from_varcorr

__all__ = ["nakagawa", "bayes_r2", "R2Mixin", "BayesR2Mixin"]

_NAMES = ["marginal", "conditional", "var_fixed", "var_random", "var_residual"]


def nakagawa(design, beta: np.ndarray, psis: dict[str, np.ndarray],
             sigma2: np.ndarray) -> np.ndarray:
    """The five numbers of :data:`_NAMES`, along the last axis, for one or many draws.

    ``beta`` has shape (..., p), each Ψ (..., q, q), ``sigma2`` (...).

    Examples
    --------
    >>> import bayeslmm as blm
    >>> d = blm.LMM("Yield ~ 1 + (1 | Batch)", blm.datasets.load("Dyestuff")).design
    >>> vals = nakagawa(d, np.array([1527.5]), {"Batch": np.array([[1764.0]])}, np.array(2451.0))
    >>> vals.round(4).tolist()  # marginal, conditional, var_fixed, var_random, var_residual
    [0.0, 0.4185, 0.0, 1764.0, 2451.0]
    """
    fixed = np.einsum("np,...p->...n", design.X, beta)
    var_fixed = fixed.var(axis=-1, ddof=1) if design.nobs > 1 else np.zeros(fixed.shape[:-1])
    var_random = np.zeros_like(var_fixed)
    for t in design.terms:
        # mean over rows of zᵢᵀ Ψ zᵢ = tr(Ψ · ZᵀZ) / n
        ztz = t.Z.T @ t.Z / design.nobs
        var_random = var_random + np.einsum("...ij,ji->...", psis[t.group], ztz)
    total = var_fixed + var_random + sigma2
    return np.stack([var_fixed / total, (var_fixed + var_random) / total, var_fixed,
                     var_random, sigma2 * np.ones_like(total)], axis=-1)


def _psi_draws(post: xr.Dataset, term) -> np.ndarray:
    L = psi_factor(post, term.group, term.q)
    return L @ np.swapaxes(L, -1, -2)


def bayes_r2(design, post: xr.Dataset, residual=None, *,
             include_random: bool = True) -> xr.DataArray:
    """Bayesian R² per draw, dims ``(chain, draw)`` (see the module doc).

    Examples
    --------
    >>> r2 = bayes_r2(post._design, post.idata.posterior)  # post: see PosteriorResult
    >>> r2.dims, 0.7 < float(r2.mean()) < 0.9
    (('chain', 'draw'), True)
    """
    mu = posterior_draws(design, post, training_rows(design),
                         include_random=include_random).values
    var_fit = mu.var(axis=-1, ddof=1)
    if residual is None:
        var_res = post["sigma"].values ** 2
    else:
        var_res = (design.y - mu).var(axis=-1, ddof=1)
    return xr.DataArray(var_fit / (var_fit + var_res), dims=("chain", "draw"),
                        coords={"chain": post.chain, "draw": post.draw}, name="bayes_r2")


class R2Mixin:
    """``r2_nakagawa``, for the results of formula models."""

    __slots__ = ()

    def r2_nakagawa(self) -> pd.Series | xr.Dataset:
        """Marginal and conditional R² of Nakagawa & Schielzeth, as R's ``performance``.

        Returns
        -------
        Series (ML/REML fit) or Dataset (posterior: one value per draw, dims
        ``chain, draw``)
            ``marginal``, ``conditional``, and the variances they are made of:
            ``var_fixed``, ``var_random``, ``var_residual``.

        Examples
        --------
        >>> round(float(mapfit.r2_nakagawa()["var_random"]), 1)  # mapfit: see MapResult
        1698.1
        """
        d = self._design
        if not hasattr(self, "idata"):
            psis = {t.group: psi_from_varcorr(self.varcorr, t.group, t.term_names)
                    for t in d.terms}
            vals = nakagawa(d, self.fixef.to_numpy(), psis, np.array(self.sigma ** 2))
            return pd.Series(vals, index=_NAMES, name="r2_nakagawa")
        post = self.idata.posterior
        psis = {t.group: _psi_draws(post, t) for t in d.terms}
        vals = nakagawa(d, post["beta"].values, psis, post["sigma"].values ** 2)
        return xr.Dataset({k: (("chain", "draw"), vals[..., i]) for i, k in enumerate(_NAMES)},
                          coords={"chain": post.chain, "draw": post.draw})


class BayesR2Mixin:
    """``bayes_r2``, for posterior results of formula models."""

    __slots__ = ()

    def bayes_r2(self, *, include_random: bool = True) -> xr.DataArray:
        """Bayesian R² per draw (Gelman, Goodrich, Gabry & Vehtari 2019).

        ``var(μ_s) / (var(μ_s) + σ_s²)`` for each draw ``s``, μ_s the fitted means of the
        training rows (random effects included unless ``include_random=False``); see
        :mod:`bayeslmm.results.r2`.

        Examples
        --------
        >>> r2 = post.bayes_r2()  # post: see PosteriorResult
        >>> r2.dims, bool(r2.mean() > post.bayes_r2(include_random=False).mean())
        (('chain', 'draw'), True)
        """
        return bayes_r2(self._design, self.idata.posterior, self._residual,
                        include_random=include_random)
