"""The PyMC model of a high-dimensional LMM in its rotated basis, and its priors (the
model object is :class:`bayeslmm.kernel_model.KernelModel`).

PyMC variables: ``beta`` (dims ``fixef``; under a Normal prior sampled as
``beta_whitened``, a fixed linear map of it that is uncorrelated a posteriori),
``sd_<name>`` (σ_b, the sd of one random coefficient), ``sigma`` (residual sd), ``h2``
(deterministic), and the observed ``y_rot`` = ``U₁ᵀy`` (dims ``rot``) with sd
``sqrt(σ_b² s + σ²)``; when K has rank
r < n the complement of the eigenvectors adds a ``complement`` potential (the residual
sum of squares there, from k+1 cross-products). Each gradient is O(n k).

Priors: ``beta`` and ``sigma`` as for every model (:mod:`bayeslmm.pymc.priors`:
``Exponential(1/s_y)`` for ``sigma``); ``sd_<name> ~ HalfNormal(s_y / sqrt(c))`` with
``c = tr(K)/n``, i.e. the sd of the genetic values ``σ_g = σ_b sqrt(c)`` is
``HalfNormal(s_y)``. Together they put a broad prior on
``h² = σ_g²/(σ_g² + σ²)``: its 5%, 25%, 50%, 75%, 95% quantiles are about 0.004,
0.11, 0.46, 0.87, 0.996 (the data, not the prior, decide where h² lies).
Override with ``priors={"sd_<name>": Prior(...)}`` (on σ_b's scale).

Examples
--------
>>> import numpy as np, pandas as pd
>>> from bayeslmm.formula.kernel_design import build_kernel_design
>>> rng = np.random.default_rng(0)
>>> df = pd.DataFrame({"y": rng.normal(size=30), "x": rng.normal(size=30)})
>>> kd = build_kernel_design("y ~ x", df, random_matrices={"snps": rng.normal(size=(30, 80))})
>>> model = build_kernel_model(kd, resolve_kernel_priors(kd, None))
>>> sorted(v.name for v in model.free_RVs + model.deterministics + model.observed_RVs)
['beta', 'beta_whitened', 'h2', 'sd_snps', 'sigma', 'y_rot']
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import scipy.linalg as sla

from ..errors import BayesLMMError
from ..formula.kernel_design import KernelDesign
from ..linalg.rotation import Rotation
from ..mle.greml import greml
from .priors import POSITIVE_FAMILIES, Prior, ResolvedPriors, prior_as_data, resolve_priors

__all__ = ["KernelPriors", "resolve_kernel_priors", "build_kernel_model", "whitening"]


@dataclass(frozen=True)
class KernelPriors:
    """Priors of the fixed effects, residual sd and the random term's sd."""

    base: ResolvedPriors
    sd: Prior
    name: str

    def describe(self) -> dict[str, str]:
        """Human-readable table: parameter → prior."""
        return {"beta": repr(self.base.beta), "sigma": repr(self.base.sigma),
                f"sd_{self.name}": repr(self.sd)}


def resolve_kernel_priors(kd: KernelDesign,
                          priors: Mapping[str, Any] | None) -> KernelPriors:
    """Data-scaled defaults (module doc) with the user's overrides."""
    priors = dict(priors or {})
    key = f"sd_{kd.name}"
    y = kd.fixed.y
    sy = float(np.std(y, ddof=1)) if len(y) > 1 else 1.0
    sd = priors.pop(key, Prior("HalfNormal",
                               sigma=(sy or 1.0) / np.sqrt(kd.rotation.scale)))
    if not isinstance(sd, Prior) or sd.name not in POSITIVE_FAMILIES:
        raise BayesLMMError(f"Prior for {key!r} must be a bayeslmm.Prior on positive values "
                            f"(e.g. HalfNormal), got {sd!r}.")
    return KernelPriors(base=resolve_priors(kd.fixed, priors), sd=sd, name=kd.name)


def whitening(rot: Rotation) -> tuple[np.ndarray, np.ndarray]:
    """``(β̂, T)`` with ``β = β̂ + T θ`` making θ about N(0, I) a posteriori.

    ``T = L⁻ᵀ`` for ``L Lᵀ`` the precision of the GLS estimate at the REML estimates
    (one cheap GREML fit): sampling θ removes the posterior correlations of the fixed
    effects (an uncentred covariate and the intercept), which a diagonal mass matrix
    cannot, at no change to the model.
    """
    fit = greml(rot, "REML", grid=21)
    L = np.linalg.cholesky(np.linalg.inv(fit.vcov))
    return fit.beta, sla.solve_triangular(L.T, np.eye(rot.k), lower=False)


def _beta(rot: Rotation, prior: Prior):
    """``beta`` and the mean ``X̃β`` of the rotated data: whitened under a Normal prior.

    Every number taken from the data is a ``pm.Data`` container (see
    :func:`build_kernel_model`).
    """
    if prior.name != "Normal" or set(prior.params) - {"mu", "sigma"}:
        beta = prior_as_data(prior, "beta").rv("beta", dims="fixef")
        return beta, pt.dot(pm.Data("rot_Xt", rot.Xt, dims=("rot", "fixef")), beta)
    bhat, T = whitening(rot)
    Tinv = np.linalg.inv(T)
    mu = np.broadcast_to(np.asarray(prior.params.get("mu", 0.0), float), (rot.k,))
    sd = np.broadcast_to(np.asarray(prior.params.get("sigma", 1.0), float), (rot.k,))
    # θ = T⁻¹(β − β̂) ~ N(T⁻¹(μ − β̂), T⁻¹ diag(sd²) T⁻ᵀ): the same prior on β
    theta = pm.MvNormal("beta_whitened", mu=pm.Data("white_mu", Tinv @ (mu - bhat)),
                        cov=pm.Data("white_cov", Tinv @ np.diag(sd**2) @ Tinv.T),
                        dims="fixef")
    T_d = pm.Data("white_T", T)
    beta = pm.Deterministic("beta", pm.Data("white_bhat", bhat) + pt.dot(T_d, theta),
                            dims="fixef")
    return beta, (pm.Data("rot_Xt_bhat", rot.Xt @ bhat, dims="rot")
                  + pt.dot(pm.Data("rot_Xt_T", rot.Xt @ T, dims=("rot", "fixef")), theta))


def build_kernel_model(kd: KernelDesign, priors: KernelPriors) -> pm.Model:
    """The rotated PyMC model (module doc).

    The data enter only through ``pm.Data`` containers (eigenvalues, rotated data,
    whitening, data-scaled prior parameters), so one compiled model serves every
    dataset of the same shape: nutpie's compile cache reuses it.
    """
    rot = kd.rotation
    coords = {"fixef": list(kd.fixed.fixef_names), "rot": np.arange(rot.rank)}
    with pm.Model(coords=coords) as model:
        beta, mu = (_beta(rot, priors.base.beta) if rot.k  # own containers for beta
                    else (pt.zeros(0), pt.zeros(rot.rank)))
        sd = prior_as_data(priors.sd, f"sd_{kd.name}").rv(f"sd_{kd.name}")
        sigma = prior_as_data(priors.base.sigma, "sigma").rv("sigma")
        v_g = sd**2 * pm.Data("rot_scale", rot.scale)
        pm.Deterministic("h2", v_g / (v_g + sigma**2))
        s = pm.Data("rot_s", rot.s, dims="rot")
        pm.Normal("y_rot", mu=mu, sigma=pt.sqrt(sd**2 * s + sigma**2),
                  observed=pm.Data("rot_y", rot.yt, dims="rot"), dims="rot")
        if rot.n_c:
            v = pt.concatenate([-beta, pt.ones(1)])
            rss = pt.dot(v, pt.dot(pm.Data("rot_C", rot.C), v))
            n_c = pm.Data("rot_n_c", float(rot.n_c))
            pm.Potential("complement", -0.5 * (n_c * (np.log(2 * np.pi) + pt.log(sigma**2))
                                               + rss / sigma**2))
    return model
