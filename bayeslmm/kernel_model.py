"""The model object of a high-dimensional LMM: ``LMM(..., random_matrices=...)`` or
``LMM(..., covariances=...)`` returns a :class:`KernelModel`.

The random effects (a wide matrix's coefficients, or a known-covariance factor's
levels) are integrated out in the eigenbasis of K: ML/REML by GREML
(:mod:`bayeslmm.mle.greml`), NUTS on the rotated PyMC model
(:mod:`bayeslmm.pymc.rotated`), each gradient O(n).

Examples
--------
>>> import numpy as np, pandas as pd, bayeslmm as blm
>>> rng = np.random.default_rng(0)
>>> df = pd.DataFrame({"y": rng.normal(size=30), "x": rng.normal(size=30)})
>>> km = blm.LMM("y ~ x", df, random_matrices={"snps": rng.normal(size=(30, 80))})
>>> type(km).__name__, isinstance(km, blm.LMM)
('KernelModel', True)
>>> fit = km.fit_map("REML")
>>> 0.0 <= fit.h2 <= 1.0, list(fit.fixef.index)
(True, ['Intercept', 'x'])
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import arviz as az
import numpy as np
import pandas as pd
import pymc as pm
import xarray as xr

from .errors import BayesLMMError, quiet_libraries
from .formula.kernel_design import KernelDesign, build_kernel_design
from .mle.greml import greml
from .pymc.graph import model_graph
from .pymc.rotated import KernelPriors, build_kernel_model, resolve_kernel_priors
from .results.kernel_map import KernelMapResult
from .results.kernel_posterior import KernelPosteriorResult
from .results.prior_table import PriorTable
from .sampling.nuts import choose_sampler, run_info, sample

__all__ = ["KernelModel"]


class KernelModel:
    """A Gaussian LMM with one wide random-effect matrix or one known-covariance factor.

    Built by :class:`bayeslmm.LMM` when ``random_matrices`` or ``covariances`` is given;
    see :mod:`bayeslmm.formula.kernel_design` for what may be combined.

    Examples
    --------
    The examples of this class use ``kmodel`` (40 rows, 100 markers):

    >>> rng = np.random.default_rng(0)
    >>> W = rng.normal(size=(40, 100))
    >>> df = pd.DataFrame({"y": W @ rng.normal(scale=0.1, size=100) + rng.normal(size=40)})
    >>> kmodel = blm.LMM("y ~ 1", df, random_matrices={"snps": W})
    >>> kmodel
    LMM('y ~ 1', nobs=40, matrix='snps', effects=100)

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
                 na_action: str = "drop", weights: Any = None, sigma: Any = None) -> None:
        if sigma is not None:
            raise BayesLMMError(f"sigma= (got {sigma!r}) cannot be combined with "
                                "random_matrices or covariances: the genomic LMM estimates σ.")
        if weights is not None:
            raise BayesLMMError("weights= cannot be combined with random_matrices or "
                                "covariances (the rotated model needs iid residuals).")
        if residual is not None:
            raise BayesLMMError("Residual structures cannot be combined with random_matrices "
                                "or covariances (the rotation needs iid residuals); use "
                                "residual=None.")
        self._kd = build_kernel_design(formula, data, random_matrices=random_matrices,
                                       covariances=covariances, na_action=na_action)
        self._priors = resolve_kernel_priors(self._kd, priors)
        self._model: pm.Model | None = None

    def __repr__(self) -> str:
        kd = self._kd
        return (f"LMM({kd.formula!r}, nobs={kd.nobs}, {kd.kind}={kd.name!r}, "
                f"effects={len(kd.effect_names)})")

    @property
    def formula(self) -> str:
        """The formula as given.

        Examples
        --------
        >>> kmodel.formula  # kmodel: see KernelModel
        'y ~ 1'
        """
        return self._kd.formula

    @property
    def design(self) -> KernelDesign:
        """The design: fixed part, matched rows, random matrix or covariance, rotation.

        Examples
        --------
        >>> kmodel.design.kind, kmodel.design.W.shape  # kmodel: see KernelModel
        ('matrix', (40, 100))
        """
        return self._kd

    @property
    def residual(self) -> None:
        """Always None: these models have iid residuals.

        Examples
        --------
        >>> kmodel.residual is None  # kmodel: see KernelModel
        True
        """
        return None

    @property
    def nobs(self) -> int:
        """Number of observations used.

        Examples
        --------
        >>> kmodel.nobs  # kmodel: see KernelModel
        40
        """
        return self._kd.nobs

    @property
    def ngroups(self) -> dict[str, int]:
        """Levels of the known-covariance factor with data (empty for a matrix).

        Examples
        --------
        >>> kmodel.ngroups  # kmodel: see KernelModel
        {}
        """
        return self._kd.ngroups

    @property
    def fixef_names(self) -> list[str]:
        """Names of the fixed-effect coefficients (formulae naming).

        Examples
        --------
        >>> kmodel.fixef_names  # kmodel: see KernelModel
        ['Intercept']
        """
        return list(self._kd.fixed.fixef_names)

    @property
    def priors(self) -> PriorTable:
        """The priors in use: a dict parameter → description, printed as a table.

        Examples
        --------
        >>> sorted(kmodel.priors)  # kmodel: see KernelModel
        ['beta', 'sd_snps', 'sigma']
        """
        return PriorTable(self._priors.describe())

    @property
    def resolved_priors(self) -> KernelPriors:
        """The priors in use, as objects (the defaults with the user's overrides).

        Examples
        --------
        >>> kmodel.resolved_priors.sd  # doctest: +ELLIPSIS
        Prior('HalfNormal', sigma=...)
        """
        return self._priors

    def build(self, parameterization: str = "auto") -> pm.Model:
        """The PyMC model that :meth:`fit` samples: the rotated model, built once.

        ``parameterization`` must be ``"auto"`` or ``"marginal"``: the effects are always
        integrated out. What you add to the model in a ``with`` block is sampled.

        Examples
        --------
        >>> kmodel.build() is kmodel.pymc_model  # kmodel: see KernelModel
        True
        """
        if parameterization not in ("auto", "marginal"):
            raise BayesLMMError(f"parameterization {parameterization!r} is not available "
                                "here: the random effects are always integrated out (use "
                                "'auto'; draw them with result.draw_effects()).")
        return self.pymc_model

    @property
    def pymc_model(self) -> pm.Model:
        """The rotated PyMC model (:mod:`bayeslmm.pymc.rotated`), built on first access.

        Examples
        --------
        >>> [v.name for v in kmodel.pymc_model.free_RVs]  # kmodel: see KernelModel
        ['beta_whitened', 'sd_snps', 'sigma']
        """
        if self._model is None:
            self._model = build_kernel_model(self._kd, self._priors)
        return self._model

    def graph(self):
        """The rotated PyMC model drawn as a graph (``pm.model_to_graphviz``; needs Graphviz).

        Examples
        --------
        >>> "sd_snps" in kmodel.graph().source  # kmodel: see KernelModel
        True
        """
        return model_graph(self.pymc_model)

    def prior_predictive(self, draws: int = 500, *, random_seed: int | None = None):
        """Prior draws of the parameters and of ``y`` on the data's own rows.

        The model observes the rotated ``U₁ᵀy``; the response is drawn in the original
        basis instead, as ``y = X_f β + U₁ (sd·√s ⊙ z) + ε`` with z ~ N(0, I) and
        ε ~ N(0, σ² I), whose covariance is exactly ``sd² K + σ² I``.

        Examples
        --------
        >>> kmodel.prior_predictive(20, random_seed=1).prior_predictive["y"].shape  # kmodel
        (1, 20, 40)
        """
        # only the parameters' prior draws are used: y is drawn below, exactly
        with self.pymc_model, quiet_libraries():
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

        Examples
        --------
        >>> kpost.info["parameterization"]  # kpost: kmodel.fit(draws=500, tune=500, chains=2)
        'rotated marginal'
        """
        model = self.build(parameterization)
        if log_likelihood:
            raise BayesLMMError("The pointwise log-likelihood is not available for models "
                                "with random_matrices or covariances.")
        idata = sample(model, draws=draws, tune=tune, chains=chains,
                       random_seed=random_seed, sampler=sampler,
                       # 0.8 left a few divergences with the low-rank mass matrix
                       # (n = 5,000: 3-6 of 4,000 draws; none at 0.9, for 25% more time)
                       target_accept=0.9 if target_accept is None else target_accept,
                       cores=cores, progressbar=progressbar, log_likelihood=False,
                       nobs=self._kd.nobs, cacheable=True, cost_hint=self._kd.nobs,
                       # σ_b and σ trade off strongly (their sum is well identified, h²
                       # less so): nutpie's low-rank mass matrix triples the ESS of h²
                       low_rank_mass=True)
        info = run_info(idata, sampler=choose_sampler(sampler),
                        parameterization="rotated marginal", draws=draws, tune=tune,
                        chains=chains, random_seed=random_seed)
        return KernelPosteriorResult(idata, self._kd, self._priors.describe(), info=info)

    def fit_map(self, method: str = "REML") -> KernelMapResult:
        """ML or REML (GREML) estimates: a 1-D search over h², the rest in closed form.

        Examples
        --------
        >>> round(kmodel.fit_map("ML").h2, 3)  # kmodel: see KernelModel
        0.335
        """
        return KernelMapResult(greml(self._kd.rotation, method), self._kd)

