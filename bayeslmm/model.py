"""The user-facing :class:`LMM`: a formula and data, ready to sample or to fit by ML/REML.

Examples
--------
>>> import bayeslmm as blm
>>> m = blm.LMM("Reaction ~ Days + (Days | Subject)", blm.datasets.load("sleepstudy"))
>>> m
LMM('Reaction ~ Days + (Days | Subject)', nobs=180, groups={'Subject': 18})
"""

from __future__ import annotations

from abc import ABCMeta
from collections.abc import Mapping
from typing import Any

import pandas as pd
import pymc as pm

from .dask.frame import refuse_pointwise
from .errors import quiet_libraries
from .formula.design import Design
from .formula.spec import ModelSpec, parse_formula
from .kernel_model import KernelModel
from .linalg.crossprod import CrossProducts
from .mle.fit import check_sigma, fit_map
from .pymc.conditional import build_conditional
from .pymc.direct import DirectModel
from .pymc.fixed_sigma import fix_sigma
from .pymc.graph import GraphMixin
from .pymc.marginal import build_marginal, design_cross_products
from .pymc.parameterization import cacheable, choose_parameterization, gradient_cost
from .pymc.priors import ResolvedPriors, resolve_priors
from .residual.bind import ResidualDesign
from .residual.strata import design_and_residual
from .residual.structures import as_residual
from .results.map import MapResult
from .results.posterior import PosteriorResult
from .results.prior_table import PriorTable, design_elements
from .sampling.complete import complete
from .sampling.lazy_ranef import lazy_wanted
from .sampling.nuts import choose_sampler, default_target_accept, run_info, sample

__all__ = ["LMM"]


class LMM(GraphMixin, metaclass=ABCMeta):  # noqa: B024 (ABC: KernelModel registers)
    """A Bayesian linear mixed model ``y = Xβ + Zb + ε``.

    Fitting does not change the model: every fit returns a new result. With
    ``random_matrices`` or ``covariances`` the model is a
    :class:`~bayeslmm.kernel_model.KernelModel` (the genomic LMM, fitted in a rotated
    basis), which has the same methods and is an ``LMM`` too (``isinstance`` holds).

    Parameters
    ----------
    formula : str
        lme4 syntax: ``"y ~ x + (x | g)"``, ``(x || g)``, ``(0 + x | g)``, ``(1 | a/b)``,
        ``(1 | a:b)``, crossed factors, and formulae's transforms (``np.log(x)``,
        ``scale(x)``, ``C(x)``, ``I(x ** 2)``).
    data : DataFrame or dask DataFrame
        Categoricals keep their level order (first = baseline); dask: out of core.
    residual : optional
        Residual structure ``ε ~ N(0, σ²Λ)`` as in nlme (:mod:`bayeslmm.residual`): a
        correlation, a variance function or both in ``blm.Residual``. None: iid.
    priors : mapping, optional
        Overrides of the data-scaled defaults (:mod:`bayeslmm.pymc.priors`), e.g.
        ``{"sigma": blm.Prior("HalfNormal", sigma=10), "eta_Subject": 4}``.
    na_action : {"drop", "raise"}
        Rows with missing values in the columns used are dropped (warned) or raise.
    random_matrices : mapping, optional
        ``{"snps": W}``: a wide random-effect matrix (a row per data row, a DataFrame's
        by index label), coefficients iid ``N(0, sd²)``: the genomic/ridge LMM.
    covariances : mapping, optional
        ``{"line": K}``: a known covariance of the levels of the single ``(1 | line)``
        term, ``b ~ N(0, sd² K)`` (kinship, phylogeny); fixed effects and iid residuals.
    weights : str or array, optional
        lme4's prior weights (variance σ²/w): a column or one value per row.
    sigma : float, optional
        σ fixed at this known value, neither estimated nor given a prior (nlme's
        ``lmeControl(sigma = ...)``; lme4 cannot): with ``residual=blm.VarFixed("vi")``
        and ``sigma=1.0`` the meta-analysis model, ``vi`` the known sampling variances.

    Examples
    --------
    >>> import bayeslmm as blm
    >>> m = blm.LMM("Reaction ~ Days + (Days | Subject)", blm.datasets.load("sleepstudy"))
    >>> m.fit_map().fixef.round(2)
    Intercept    251.41
    Days          10.47
    Name: fixef, dtype: float64
    """

    def __new__(cls, formula: str, data: pd.DataFrame, *,
                random_matrices: Mapping[str, Any] | None = None,
                covariances: Mapping[str, Any] | None = None, **options: Any):
        if cls is LMM and (random_matrices is not None or covariances is not None):
            return KernelModel(formula, data, random_matrices=random_matrices,
                               covariances=covariances, **options)
        return super().__new__(cls)

    def __init__(
        self,
        formula: str,
        data: pd.DataFrame,
        *,
        residual: Any = None,
        priors: Mapping[str, Any] | None = None,
        na_action: str = "drop",
        random_matrices: Mapping[str, Any] | None = None,
        covariances: Mapping[str, Any] | None = None, weights: Any = None,
        sigma: float | None = None,
    ) -> None:
        structure = as_residual(residual)
        self._spec: ModelSpec = parse_formula(formula)
        self._sigma = check_sigma(sigma)
        self._design, self._residual = design_and_residual(  # pandas, or dask (out of core)
            self._spec, data, structure, na_action=na_action, weights=weights,
            known_sigma=self._sigma is not None)
        self._priors: ResolvedPriors = resolve_priors(self._design, priors, self._residual)
        self._models: dict[str, pm.Model] = {}  # by parameterization: what fit samples
        self._cp: CrossProducts | None = None

    def __repr__(self) -> str:
        return f"LMM({self._spec.formula!r}, nobs={self.nobs}, groups={self.ngroups})"

    @property
    def formula(self) -> str:
        """The formula as given.

        Examples
        --------
        >>> blm.LMM("Yield ~ 1 + (1 | Batch)", blm.datasets.load("Dyestuff")).formula
        'Yield ~ 1 + (1 | Batch)'
        """
        return self._spec.formula

    @property
    def design(self) -> Design:
        """The numeric design (y, X, random-effect terms).

        Examples
        --------
        >>> m = blm.LMM("Reaction ~ Days + (Days | Subject)", blm.datasets.load("sleepstudy"))
        >>> m.design.X.shape, [(t.group, t.term_names) for t in m.design.terms]
        ((180, 2), [('Subject', ['Intercept', 'Days'])])
        """
        return self._design

    @property
    def residual(self) -> ResidualDesign | None:
        """The residual structure bound to the rows used (None for iid residuals).

        Examples
        --------
        >>> m = blm.LMM("distance ~ age + (1 | Subject)", blm.datasets.load("Orthodont"),
        ...             residual=blm.AR1(group="Subject"))
        >>> m.residual.structure.correlation, m.residual.n
        (AR1(group='Subject', time=None), 108)
        """
        return self._residual

    @property
    def nobs(self) -> int:
        """Number of observations used.

        Examples
        --------
        >>> blm.LMM("Yield ~ 1 + (1 | Batch)", blm.datasets.load("Dyestuff")).nobs
        30
        """
        return self._design.nobs

    @property
    def ngroups(self) -> dict[str, int]:
        """Levels per grouping factor.

        Examples
        --------
        >>> blm.LMM("Yield ~ 1 + (1 | Batch)", blm.datasets.load("Dyestuff")).ngroups
        {'Batch': 6}
        """
        return self._design.ngroups

    @property
    def fixef_names(self) -> list[str]:
        """Names of the fixed-effect coefficients (formulae naming).

        Examples
        --------
        >>> blm.LMM("distance ~ age * Sex", blm.datasets.load("Orthodont")).fixef_names
        ['Intercept', 'age', 'Sex[Female]', 'age:Sex[Female]']
        """
        return list(self._design.fixef_names)

    @property
    def priors(self) -> PriorTable:
        """The priors in use: a dict parameter → description, printed as a table.

        Examples
        --------
        >>> blm.LMM("Yield ~ 1 + (1 | Batch)", blm.datasets.load("Dyestuff")).priors["sigma"]
        "Prior('Exponential', lam=0.01587)"
        """
        return PriorTable(self._described(), design_elements(self._design))

    def _described(self) -> dict[str, str]:
        out = self._priors.describe()
        if self._sigma is not None:  # data, not a parameter
            out["sigma"] = f"fixed at {self._sigma!r} (no prior)"
        return out

    @property
    def pymc_model(self) -> pm.Model:
        """The PyMC model that :meth:`fit` samples by default (``build("auto")``).

        Extend it in a ``with m.pymc_model:`` block: ``fit()`` samples that very model.
        It is the marginal model (b integrated out, drawn after sampling) where that is
        exact and cheap; :meth:`build` gives either model.

        Examples
        --------
        >>> m = blm.LMM("Reaction ~ Days + (Days | Subject)", blm.datasets.load("sleepstudy"))
        >>> [v.name for v in m.pymc_model.free_RVs], m.pymc_model is m.build("marginal")
        (['beta_z', 'chol_Subject_z', 'sigma'], True)
        """
        return self.build("auto")

    def build(self, parameterization: str = "auto") -> pm.Model:
        """The PyMC model that ``fit(parameterization=...)`` samples, built once.

        Parameters
        ----------
        parameterization : {"auto", "marginal", "conditional"}
            ``"marginal"``: b integrated out exactly (drawn after sampling);
            ``"conditional"``: b sampled, non-centred; ``"auto"``: marginal where cheap.

        Returns
        -------
        pymc.Model
            The same object on every call: what you add to it is what ``fit`` samples.

        Examples
        --------
        >>> import pymc as pm
        >>> m = blm.LMM("Reaction ~ Days + (1 | Subject)", blm.datasets.load("sleepstudy"))
        >>> with m.build("conditional") as model:
        ...     ratio = pm.Deterministic("ratio", model["sd_Subject"][0] / model["sigma"])
        >>> [v.name for v in m.build("conditional").free_RVs]
        ['beta_z', 'sd_Subject', 'z_Subject', 'sigma']
        """
        par = choose_parameterization(self._design, self._residual, parameterization)
        if par not in self._models:
            d, pr, rd = self._design, self._priors, self._residual
            model = (build_marginal(d, pr, rd, None if rd is not None else self._cross_products)
                     if par == "marginal" else build_conditional(d, pr, rd))
            self._models[par] = model if self._sigma is None else fix_sigma(model, self._sigma)
        return self._models[par]

    @property
    def marginal_model(self) -> pm.Model:
        """The marginal PyMC model (random effects integrated out): ``build("marginal")``.

        Examples
        --------
        >>> m = blm.LMM("Reaction ~ Days + (Days | Subject)", blm.datasets.load("sleepstudy"))
        >>> [v.name for v in m.marginal_model.free_RVs]
        ['beta_z', 'chol_Subject_z', 'sigma']
        """
        return self.build("marginal")

    def fit(
        self,
        *,
        draws: int = 1000,
        tune: int = 1000,
        chains: int = 4,
        random_seed: int | None = None,
        sampler: str = "auto",
        parameterization: str = "auto",
        target_accept: float | None = None,
        cores: int | None = None,
        progressbar: bool = True,
        log_likelihood: bool | None = None,
        b_draws: str = "auto",
    ) -> PosteriorResult:
        """Sample the posterior of ``build(parameterization)`` (as you left it) with NUTS.

        Parameters
        ----------
        draws, tune, chains : int
            Posterior draws and tuning steps per chain, number of chains.
        random_seed : int, optional
        sampler : {"auto", "pymc", "nutpie", "numpyro"}
            ``"auto"``: nutpie for the marginal model, PyMC's NUTS for the conditional one.
        parameterization : {"auto", "marginal", "conditional"}
            See :meth:`build`.
        target_accept : float, optional
            NUTS's target acceptance rate; by default 0.8, or 0.9 for the conditional
            model and where a factor has few levels (``default_target_accept``).
        cores : int, optional
            Parallel chains (default: the number of cores).
        progressbar : bool
        log_likelihood : bool, optional
            Store the pointwise log-likelihood (per row, given b); None: when it is small.
        b_draws : {"auto", "memory", "lazy"}
            The marginal model's exact b draws kept in memory, or drawn again when read
            (dask arrays, the same numbers); ``"auto"``: lazy above 10⁸ values.

        Returns
        -------
        PosteriorResult

        Examples
        --------
        >>> m = blm.LMM("Reaction ~ Days + (Days | Subject)", blm.datasets.load("sleepstudy"))
        >>> post = m.fit(draws=100, tune=200, chains=2, random_seed=1, progressbar=False)
        >>> post.idata.posterior["beta"].shape, post.info["parameterization"]
        ((2, 100, 2), 'marginal')
        """
        par = choose_parameterization(self._design, self._residual, parameterization)
        marginal = par == "marginal"
        refuse_pointwise(self._design, log_likelihood)  # out of core: no rows to score
        lazy_wanted(b_draws, 0)  # a bad value fails before NUTS, not after
        if target_accept is None:
            target_accept = default_target_accept(self._design, par)
        sampler = choose_sampler(sampler, par)
        model = self.build(par)
        direct = (DirectModel.of(model, self._design, self._priors,
                                 None if self._residual else self._cross_products,
                                 residual=self._residual)
                  if marginal and sampler == "nutpie" and self._sigma is None else None)
        idata = sample(
            model, draws=draws, tune=tune, chains=chains,
            random_seed=random_seed, sampler=sampler, target_accept=target_accept,
            cores=cores, progressbar=progressbar,
            log_likelihood=False if marginal else log_likelihood, nobs=self.nobs,
            cacheable=cacheable(self._design, self._residual, par),
            cost_hint=gradient_cost(self._design, self._residual, par), direct=direct,
        )
        cp = self._cross_products if marginal and not self._residual else None
        idata = complete(idata, self._design, self._priors, self._residual,
                         marginal=marginal, cross_products=cp, random_seed=random_seed,
                         log_likelihood=log_likelihood, b_draws=b_draws, sigma=self._sigma)
        info = run_info(idata, sampler=sampler, parameterization=par, draws=draws, tune=tune,
                        chains=chains, random_seed=random_seed, sigma_fixed=self._sigma)
        return PosteriorResult(idata, self._design, self._described(), info=info,
                               residual=self._residual)

    @property
    def _cross_products(self) -> CrossProducts:
        """[Z X y]ᵀ[Z X y], computed once: the marginal model's, and b's draws'."""
        if self._cp is None:
            self._cp = design_cross_products(self._design)
        return self._cp

    def prior_predictive(self, draws: int = 500, *, random_seed: int | None = None):
        """Draw from the priors and the response they imply.

        Through the conditional model, whose ``y`` has the marginal model's prior.

        Returns
        -------
        arviz.InferenceData
            ``prior``, ``prior_predictive`` (``y``) and ``observed_data``: for
            ``az.plot_ppc(idata, group="prior")``.

        Examples
        --------
        >>> m = blm.LMM("Reaction ~ Days + (Days | Subject)", blm.datasets.load("sleepstudy"))
        >>> m.prior_predictive(50, random_seed=1).prior_predictive["y"].shape
        (1, 50, 180)
        """
        model = self.build("conditional")
        with model, quiet_libraries():
            return pm.sample_prior_predictive(draws=draws, random_seed=random_seed)

    def fit_map(self, method: str = "REML") -> MapResult:
        """Maximum likelihood (``"ML"``) or REML estimates, as lme4 and nlme compute them.

        With a residual structure (or σ fixed) the fit is nlme's (``lme``, or ``gls``
        without random effects): σ, ``residual_params``, standard errors and BIC as nlme
        reports them (see :func:`bayeslmm.mle.fit.fit_map`).

        Returns
        -------
        MapResult

        Examples
        --------
        >>> m = blm.LMM("Reaction ~ Days + (Days | Subject)", blm.datasets.load("sleepstudy"))
        >>> round(m.fit_map("ML").loglik, 2), round(m.fit_map("REML").loglik, 2)
        (-875.97, -871.81)
        """
        return fit_map(self._design, method, residual=self._residual, sigma=self._sigma)


# a KernelModel is an LMM for isinstance (it has the same methods; LMM(...) makes it)
LMM.register(KernelModel)
