"""The PyMC model of a high-dimensional LMM in its rotated basis, its priors, and the
model object behind ``LMM(..., random_matrices=...)`` / ``LMM(..., covariances=...)``.

PyMC variables: ``beta`` (dims ``fixef``; under a Normal prior sampled as
``beta_whitened``, a fixed linear map of it that is uncorrelated a posteriori),
``sd_<name>`` (σ_b, the sd of one random coefficient), ``sigma`` (residual sd), ``h2``
(deterministic), and the observed ``y_rot`` = ``U₁ᵀy`` (dims ``rot``) with sd
``sqrt(σ_b² s + σ²)``; when K has rank
r < n the complement of the eigenvectors adds a ``complement`` potential (the residual
sum of squares there, from k+1 cross-products). Each gradient is O(n k).

Priors: ``beta`` and ``sigma`` as for every model (:mod:`bayeslmm.priors`:
``Exponential(1/s_y)`` for ``sigma``); ``sd_<name> ~ HalfNormal(s_y / sqrt(c))`` with
``c = tr(K)/n``, i.e. the sd of the genetic values ``σ_g = σ_b sqrt(c)`` is
``HalfNormal(s_y)``. Together they put a broad prior on
``h² = σ_g²/(σ_g² + σ²)``: its 5%, 25%, 50%, 75%, 95% quantiles are about 0.004,
0.11, 0.46, 0.87, 0.996 (the data, not the prior, decide where h² lies).
Override with ``priors={"sd_<name>": Prior(...)}`` (on σ_b's scale).

Examples
--------
>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> df = pd.DataFrame({"y": rng.normal(size=30), "x": rng.normal(size=30)})
>>> km = KernelModel("y ~ x", df, random_matrices={"snps": rng.normal(size=(30, 80))})
>>> model = km.pymc_model
>>> sorted(v.name for v in model.free_RVs + model.deterministics + model.observed_RVs)
['beta', 'beta_whitened', 'h2', 'sd_snps', 'sigma', 'y_rot']
>>> fit = km.fit_map("REML")
>>> 0.0 <= fit.h2 <= 1.0, list(fit.fixef.index)
(True, ['Intercept', 'x'])
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import arviz as az
import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt
import scipy.linalg as sla

from .errors import BayesLMMError
from .greml import greml
from .inference import choose_sampler, sample
from .kernel import Rotation
from .kernel_design import KernelDesign, build_kernel_design
from .kernel_result import KernelMapResult, KernelPosteriorResult
from .priors import _POSITIVE, Prior, ResolvedPriors, _as_data, resolve_priors

__all__ = ["KernelModel", "KernelPriors", "build_kernel_model", "whitening"]


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
    if not isinstance(sd, Prior) or sd.name not in _POSITIVE:
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
        beta = _as_data(prior, "beta").rv("beta", dims="fixef")
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
        sd = _as_data(priors.sd, f"sd_{kd.name}").rv(f"sd_{kd.name}")
        sigma = _as_data(priors.base.sigma, "sigma").rv("sigma")
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


class KernelModel:
    """A Gaussian LMM with one wide random-effect matrix or one known-covariance factor.

    Built by :class:`bayeslmm.LMM` when ``random_matrices`` or ``covariances`` is given;
    see :mod:`bayeslmm.kernel_design` for what may be combined.

    Parameters
    ----------
    formula : str
    data : DataFrame
    random_matrices, covariances : mapping, optional
        Exactly one, with one entry.
    priors : mapping, optional
        Overrides: ``"beta"``, ``"beta[name]"``, ``"sigma"``, ``"sd_<name>"``.
    residual : None
        Only iid residuals.
    na_action : {"drop", "raise"}
    """

    def __init__(self, formula: str, data: pd.DataFrame, *,
                 random_matrices: Mapping[str, Any] | None = None,
                 covariances: Mapping[str, Any] | None = None,
                 priors: Mapping[str, Any] | None = None, residual: Any = None,
                 na_action: str = "drop") -> None:
        if residual is not None:
            raise BayesLMMError("Residual structures cannot be combined with random_matrices "
                                "or covariances (the rotation needs iid residuals); use "
                                "residual=None.")
        self._kd = build_kernel_design(formula, data, random_matrices=random_matrices,
                                       covariances=covariances, na_action=na_action)
        self._priors = resolve_kernel_priors(self._kd, priors)
        self._model: pm.Model | None = None

    @property
    def design(self) -> KernelDesign:
        """The design: fixed part, matched rows, rotation."""
        return self._kd

    @property
    def resolved_priors(self) -> KernelPriors:
        """The priors in use."""
        return self._priors

    @property
    def ngroups(self) -> dict[str, int]:
        """Levels of the known-covariance factor with data (empty for a matrix)."""
        return self._kd.ngroups

    @property
    def pymc_model(self) -> pm.Model:
        """The rotated PyMC model, built on first access."""
        if self._model is None:
            self._model = build_kernel_model(self._kd, self._priors)
        return self._model

    def prior_predictive(self, draws: int = 500, *, random_seed: int | None = None):
        """Prior draws of the parameters and of ``y`` on the data's own rows.

        The model observes the rotated ``U₁ᵀy``; the response is drawn in the original
        basis instead, as ``y = X_f β + U₁ (sd·√s ⊙ z) + ε`` with z ~ N(0, I) and
        ε ~ N(0, σ² I), whose covariance is exactly ``sd² K + σ² I``.
        """
        import xarray as xr

        with self.pymc_model, warnings.catch_warnings():
            # only the parameters' prior draws are used: y is drawn below, exactly
            warnings.filterwarnings("ignore", message="The effect of Potentials")
            idata = pm.sample_prior_predictive(draws=draws, random_seed=random_seed)
        prior = idata.prior
        rot, fixed = self._kd.rotation, self._kd.fixed
        rng = np.random.default_rng(np.random.SeedSequence(random_seed).spawn(1)[0])
        sd = prior[f"sd_{self._kd.name}"].values.reshape(-1)
        sigma = prior["sigma"].values.reshape(-1)
        mu = np.zeros((len(sd), fixed.nobs))
        if rot.k:
            mu = prior["beta"].values.reshape(len(sd), -1) @ fixed.X.T
        g = (rot.U @ (np.sqrt(rot.s)[:, None] * rng.standard_normal((rot.rank, len(sd))))).T
        y = mu + sd[:, None] * g + sigma[:, None] * rng.standard_normal(mu.shape)
        obs = np.arange(fixed.nobs)
        pp = xr.Dataset({"y": (("chain", "draw", "obs"), y.reshape(1, len(sd), -1))},
                        coords={"chain": prior.chain, "draw": prior.draw, "obs": obs})
        return az.InferenceData(
            prior=prior, prior_predictive=pp,
            observed_data=xr.Dataset({"y": ("obs", fixed.y)}, coords={"obs": obs}))

    def fit(self, *, draws: int = 1000, tune: int = 1000, chains: int = 4,
            random_seed: int | None = None, sampler: str = "auto",
            parameterization: str = "auto", target_accept: float | None = None,
            cores: int | None = None, progressbar: bool = True,
            log_likelihood: bool | None = None) -> KernelPosteriorResult:
        """NUTS on (β, σ_b, σ) with the rotated likelihood: O(n) per gradient.

        ``parameterization`` must be ``"auto"`` or ``"marginal"`` (the effects are
        always integrated out; draw them with ``result.draw_effects()``). The
        pointwise log-likelihood is not stored (rotated values are not observations).
        ``target_accept`` defaults to 0.9; with nutpie the mass matrix is adapted
        diagonal plus low rank (σ_b and σ are strongly correlated a posteriori).
        """
        if parameterization not in ("auto", "marginal"):
            raise BayesLMMError(f"parameterization {parameterization!r} is not available "
                                "here: the random effects are always integrated out (use "
                                "'auto'; draw them with result.draw_effects()).")
        if log_likelihood:
            raise BayesLMMError("The pointwise log-likelihood is not available for models "
                                "with random_matrices or covariances.")
        idata = sample(self.pymc_model, draws=draws, tune=tune, chains=chains,
                       random_seed=random_seed, sampler=sampler,
                       # 0.8 left a few divergences with the low-rank mass matrix
                       # (n = 5,000: 3-6 of 4,000 draws; none at 0.9, for 25% more time)
                       target_accept=0.9 if target_accept is None else target_accept,
                       cores=cores, progressbar=progressbar, log_likelihood=False,
                       nobs=self._kd.nobs, cacheable=True, cost_hint=self._kd.nobs,
                       # σ_b and σ trade off strongly (their sum is well identified, h²
                       # less so): nutpie's low-rank mass matrix triples the ESS of h²
                       low_rank_mass=True)
        info = {"sampler": choose_sampler(sampler), "parameterization": "rotated marginal",
                "draws": draws, "tune": tune, "chains": chains, "random_seed": random_seed}
        return KernelPosteriorResult(idata, self._kd, self._priors.describe(), info=info)

    def fit_map(self, method: str = "REML") -> KernelMapResult:
        """ML or REML (GREML) estimates: a 1-D search over h², the rest in closed form."""
        return KernelMapResult(greml(self._kd.rotation, method), self._kd)
