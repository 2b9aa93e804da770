"""What an ML/REML result asks its fit for after the fit: refits (another response or
method), simulated responses, profiles, the pieces of Satterthwaite's and Kenward–Roger's
tests, the parametric bootstrap.

A :class:`MapEngine` is made with each fit (:mod:`bayeslmm.mle.lmer`,
:mod:`bayeslmm.mle.lme`, :mod:`bayeslmm.mle.restore`) and handed to its
:class:`~bayeslmm.results.map.MapResult`, which calls these methods and lays out their
plain-data answers (the results layer imports nothing from here). It knows the design,
the method, the estimates and how to refit the model (``fitter``); what it computes is
cached, as the result it belongs to never changes.

Examples
--------
>>> import bayeslmm as blm
>>> fit = blm.LMM("Yield ~ 1 + (1 | Batch)", blm.datasets.load("Dyestuff")).fit_map("ML")
>>> eng = fit._engine
>>> eng.parameter_names()[:2], np.round(eng.parameters(), 2).tolist()
(['sd_Batch[Intercept]', 'sigma'], [37.26, 49.51, 1527.5])
>>> eng.simulate(2, random_seed=1).shape
(30, 2)
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np
from scipy.optimize import minimize

from ..errors import FitError
from ..formula.weights import weighted
from ..linalg.pls import PLS
from ..results.base import lme4_name
from .bootstrap import refit_design, run_replicates, seeds, simulate_response
from .ddf import Satterthwaite
from .kenward_roger import KenwardRoger
from .profile import ProfileSettings, profile_table
from .search import one_blas_thread
from .varpar import VarPar

__all__ = ["MapEngine"]


class MapEngine:
    """The fit behind a :class:`~bayeslmm.results.map.MapResult` (see module docstring).

    Parameters
    ----------
    design : Design
    method : {"ML", "REML"}
    theta : ndarray
        lme4's θ (nlme's scale for residual structures).
    sigma : float
    beta : ndarray
    fitter : callable
        ``fitter(design, method)`` → MapResult: the same model refitted.
    residual : ResidualDesign, optional
    residual_params : dict, optional
        The structure's parameters at the estimate (what its draws need).
    criterion : callable, optional
        Residual structures: ψ = (θ, σ, u) → the deviance with σ explicit, and
        ``vcov(ψ)``; with ``psi`` the estimate on that scale (for Satterthwaite);
        with σ fixed, ψ = (θ, u).
    sigma_fixed : bool
        σ is a known constant (not estimated): not among the parameters tests use.
    """

    def __init__(self, design, method: str, theta, sigma: float, beta, *, fitter: Callable,
                 residual=None, residual_params: dict | None = None,
                 criterion: tuple | None = None, sigma_fixed: bool = False):
        self.design, self.method, self.sigma_fixed = design, method, sigma_fixed
        self.theta = np.asarray(theta, dtype=float)
        self.sigma, self.beta = float(sigma), np.asarray(beta, dtype=float)
        self.fitter, self.residual, self.residual_params = fitter, residual, residual_params
        self.criterion = criterion
        self.varpar = VarPar.from_design(design)
        self._cache: dict = {}

    # -- parameters ----------------------------------------------------------------------
    def parameter_names(self, lme4: bool = False) -> list[str]:
        """sd/cor (lme4's order), σ, then the fixed effects; bayeslmm's or lme4's names."""
        fx = list(self.design.fixef_names)
        if lme4:
            return self.varpar.lme4_names + [lme4_name(n) for n in fx]
        return self.varpar.names + fx

    def parameters(self) -> np.ndarray:
        """Their values at the estimate."""
        return np.concatenate([self.varpar.from_theta(self.theta, self.sigma), self.beta])

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds of the sd/cor/σ (fixed effects: ±∞)."""
        p = len(self.beta)
        return (np.concatenate([self.varpar.lower, np.full(p, -np.inf)]),
                np.concatenate([self.varpar.upper, np.full(p, np.inf)]))

    # -- refits and draws ----------------------------------------------------------------
    def refit(self, y: Sequence[float] | None = None, method: str | None = None):
        """The model refitted to response ``y`` (data row order) and/or by ``method``."""
        d = self.design if y is None else refit_design(self.design, np.asarray(y, float))
        return self.fitter(d, method or self.method)

    def ml_theta(self) -> np.ndarray:
        """θ of the ML fit (this fit's own for ML)."""
        if self.method == "ML":
            return self.theta
        if "ml" not in self._cache:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._cache["ml"] = self.fitter(self.design, "ML").theta.to_numpy()
        return self._cache["ml"]

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        """One response simulated from the fit."""
        return simulate_response(self.design, self.theta, self.sigma, self.beta, rng,
                                 residual=self.residual, residual_params=self.residual_params)

    def simulate(self, nsim: int, random_seed=None) -> np.ndarray:
        """``nsim`` responses (n × nsim), column i from stream i of the seed (as the
        bootstrap draws them)."""
        return np.column_stack([self.draw(np.random.default_rng(s))
                                for s in seeds(random_seed, nsim)])

    def bootstrap(self, n: int, statistic: Callable | None, random_seed, *,
                  cores: int | None, progressbar: bool):
        """Refit to ``n`` simulated responses; ``statistic(refit)`` of each (None: the
        parameters, without building the refits' results). Returns (values, warnings,
        failures) as :func:`~bayeslmm.mle.bootstrap.run_replicates`."""
        if statistic is None:
            if self.residual is not None or self.sigma_fixed:
                def one(rng):
                    fit = self.refit(self.draw(rng))
                    return np.concatenate([
                        self.varpar.from_theta(fit.theta.to_numpy(), fit.sigma),
                        fit.fixef.to_numpy()])
            else:
                def one(rng):
                    return self._fast_parameters(self.draw(rng))
        else:
            def one(rng):
                return np.asarray(statistic(self.refit(self.draw(rng))), dtype=float)
        return run_replicates(one, n, random_seed, cores=cores, progressbar=progressbar)

    def _fast_parameters(self, y: np.ndarray) -> np.ndarray:
        """The parameters refitted to y without assembling a result (iid residuals)."""
        d = refit_design(self.design, y)
        pls = PLS.from_design(weighted(d))
        reml = self.method == "REML"
        lay = pls.layout
        theta = self.theta
        if lay.size:
            bounds = [(lo if np.isfinite(lo) else None, None) for lo in lay.lower]
            res = minimize(lambda th: pls.objective_and_gradient(th, reml), lay.start(),
                           jac=True, method="L-BFGS-B", bounds=bounds,
                           options={"ftol": 1e-12, "gtol": 1e-6, "maxiter": 1000})
            theta = res.x
            zero = lay.is_diag & (theta < 1e-4)
            if zero.any():  # a boundary end point: let the full search decide
                theta = self.fitter(d, self.method).theta.to_numpy()
        sol = pls.solution(theta, reml)
        return np.concatenate([self.varpar.from_theta(theta, sol.sigma), sol.beta])

    # -- profiles and tests --------------------------------------------------------------
    def _sigma_estimated(self, what: str) -> None:
        if self.sigma_fixed:
            raise FitError(f"{what} is not defined with σ fixed (sigma=): use "
                           "summary(ddf='Satterthwaite') or confint(method='wald'/'boot').")

    def _lme4_only(self, what: str) -> None:
        if self.residual is not None:
            raise FitError(f"{what} is lme4's, for models with iid residuals; this fit has a "
                           "residual structure (nlme defines none). Use "
                           "confint(method='wald') or confint(method='boot').")

    def profile(self, which=None, settings: ProfileSettings | None = None):
        """lme4's profile (:func:`~bayeslmm.mle.profile.profile_table`)."""
        self._lme4_only("The likelihood profile")
        self._sigma_estimated("The likelihood profile (lme4's, over σ too)")
        st = settings or ProfileSettings()
        key = ("profile", None if which is None else tuple(which), st.alphamax, st.maxpts,
               st.delta_cutoff, st.maxmult, st.devtol)
        if key not in self._cache:
            # prior weights: the rows scaled by √w (the deviance moves by a constant)
            self._cache[key] = profile_table(weighted(self.design), self.ml_theta(),
                                             which=which, settings=st)
        return self._cache[key].copy()

    def satterthwaite(self) -> Satterthwaite:
        """lmerTest's pieces at this fit (computed once)."""
        if "sat" not in self._cache:
            if self.criterion is not None:
                dev, vcov, psi = self.criterion
                with one_blas_thread(len(psi) + len(self.beta) + 1):
                    self._cache["sat"] = Satterthwaite(dev, vcov, psi)
            else:
                reml = self.method == "REML"
                pls = PLS.from_design(weighted(self.design))
                with one_blas_thread(pls.cp.Arr.shape[0]):
                    s = self.sigma
                    self._cache["sat"] = Satterthwaite(  # σ known: over θ alone
                        lambda x: pls.deviance(x, s, reml=reml),
                        lambda x: s ** 2 * pls.beta_cov(x), self.theta) if self.sigma_fixed \
                        else Satterthwaite(lambda x: pls.deviance(x[:-1], x[-1], reml=reml),
                                           lambda x: x[-1] ** 2 * pls.beta_cov(x[:-1]),
                                           np.append(self.theta, self.sigma))
        return self._cache["sat"]

    def kenward_roger(self) -> KenwardRoger:
        """pbkrtest's pieces at this fit (REML, iid residuals; computed once)."""
        self._lme4_only("Kenward–Roger (pbkrtest)")
        self._sigma_estimated("Kenward–Roger (pbkrtest's, with σ² a covariance parameter)")
        if self.method != "REML":
            raise FitError("Kenward–Roger is defined for REML fits (lmerTest refuses ML fits, "
                           "pbkrtest refits them by REML): refit with method='REML'.")
        if "kr" not in self._cache:
            with one_blas_thread(sum(t.n_levels * t.q for t in self.design.terms)):
                # invariant under the scaling of the rows by √w (prior weights)
                self._cache["kr"] = KenwardRoger(weighted(self.design), self.theta, self.sigma)
        return self._cache["kr"]
