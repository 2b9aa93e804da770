"""ML and REML with a residual structure ``ε ~ N(0, σ²Λ)``: nlme's ``lme`` and ``gls``.

For residual parameters p (unconstrained u, :func:`~bayeslmm.residual.algebra.to_params`),
whitening y, X and Z by ``L⁻¹`` (``Λ = LLᵀ``) leaves a model with iid residuals, so

    −2ℓ(θ, p) = lme4's criterion at θ on the whitened design + log|Λ(p)|

for ML and REML alike (:func:`~bayeslmm.residual.algebra.whiten_design`). β and σ stay
profiled out; (θ, u) are searched jointly by L-BFGS-B (:func:`bayeslmm.mle.lmer.search`):
the θ part of the gradient is analytic, the u part central differences, each an O(n)
whitening plus a cross-product build, or, for AR1, CAR1 with few distinct gaps,
CompSymm and VarIdent, a combination of statistics computed once
(:mod:`bayeslmm.residual.sufficient`; the rows again where a correlation is within
1e-4 of ±1, where the combination loses digits). A second start with a strong correlation guards
against the ridge between a random intercept and a within-group correlation.

Variance functions of the fitted values (``VarPower()``, ``VarExp()``) are estimated as
nlme does: the covariate is held at the current fitted values ``Xβ̂ + Zb̂`` during a
search, then recomputed from its estimates, until the parameters and the fitted values
change by less than ``FIXED_POINT_TOL`` (relative) between rounds; the likelihood
reported is the one at the last covariate.

Examples
--------
>>> import bayeslmm as blm
>>> m = blm.LMM("distance ~ age + Sex + (1 | Subject)", blm.datasets.load("Orthodont"),
...             residual=blm.AR1(group="Subject"))
>>> fit = fit_lme(m.design, m.residual, "ML")
>>> round(fit.loglik, 3), round(fit.residual_params["Phi"], 4)   # nlme: -217.395, 0.0438
(-217.395, 0.0438)
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from dataclasses import replace

import numpy as np

from ..errors import BayesLMMError, FitError
from ..linalg.crossprod import CrossProducts
from ..linalg.fixed_sigma import make_pls
from ..linalg.pls import PLS
from ..linalg.theta import ThetaLayout
from ..residual.algebra import (
    initial_unconstrained,
    log_sd_weights,
    logdet_lambda,
    nlme_params,
    to_params,
    whiten_design,
)
from ..residual.bind import ResidualDesign
from ..residual.closed_forms import mean_log_sd
from ..residual.sufficient import statistics
from ..results.map import MapResult
from .assemble import assemble, warn_fit
from .engine import MapEngine
from .lme_search import strong_start, u_bounds, warn_edge
from .lmer import fit_lmer
from .search import SINGULAR_TOL, one_blas_thread, search

__all__ = ["ResidualCriterion", "fit_lme", "FIXED_POINT_TOL"]

#: Relative change of the parameters (nlme's ``tolerance``) and of the fitted values
#: between rounds that ends the fitted-value iteration.
FIXED_POINT_TOL = 1e-6
_MAX_ROUNDS = 100
_H = 1e-5  # central-difference step in u


class ResidualCriterion:
    """−2 × (REML) log-likelihood as a function of ``x = (θ, u)``.

    Parameters
    ----------
    design : Design
    rd : ResidualDesign
    reml : bool
    fitted : ndarray, optional
        The covariate of a variance function of the fitted values (data order).
    sigma : float, optional
        σ fixed at a known value (:mod:`~bayeslmm.linalg.fixed_sigma`); None: profiled.

    Examples
    --------
    >>> import bayeslmm as blm
    >>> m = blm.LMM("distance ~ age + Sex", blm.datasets.load("Orthodont"),
    ...             residual=blm.CompSymm(group="Subject"))
    >>> c = ResidualCriterion(m.design, m.residual, reml=False)
    >>> round(c.value(c.start()), 3)   # Rho = 0: the ordinary least-squares deviance
    480.684
    """

    def __init__(self, design, rd: ResidualDesign, reml: bool,
                 fitted: np.ndarray | None = None, sigma: float | None = None):
        self.design, self.rd, self.reml, self.fitted = design, rd, reml, fitted
        self.sigma = sigma
        self.layout = ThetaLayout.from_terms(design.terms)
        self.n_theta = self.layout.size
        self.n_u = len(initial_unconstrained(rd))
        self._cache: OrderedDict[bytes, tuple[PLS | None, float]] = OrderedDict()
        # raises FitError for correlation groups that cross random-effect levels
        whiten_design(rd, design, self.params(initial_unconstrained(rd)))
        # AR1, CAR1 (few gaps), CompSymm, VarIdent: no pass over the rows per evaluation
        self.stats = statistics(design, rd)

    def start(self) -> np.ndarray:
        """lme4's θ start (Λ = I, in the covariates' units) and iid residuals."""
        return np.concatenate([self.layout.start(), initial_unconstrained(self.rd)]) \
            / self.scale

    @property
    def scale(self) -> np.ndarray:
        """The search's units (:meth:`bayeslmm.linalg.theta.ThetaLayout.scales`; 1 for u)."""
        return np.concatenate([self.layout.scales(self.design.terms), np.ones(self.n_u)])

    def params(self, u) -> dict:
        """Residual parameters at u (with the fitted-value covariate if any)."""
        p = to_params(self.rd, u)
        if self.fitted is not None:
            p["fitted"] = self.fitted
        return p

    def centred(self, u) -> tuple[dict, float]:
        """Parameters whose variance function is divided by its geometric mean, and
        the log of that mean (0 without a variance function).

        The profiled criterion does not change (σ absorbs a constant factor), but θ
        (relative to σ) then no longer trades off against ``power`` along a ridge:
        with ``VarPower()`` on fitted values near 25, σ alone moves by 25^Δpower.
        """
        p = self.params(u)
        logd = log_sd_weights(self.rd, p)
        if logd is None:
            return p, 0.0
        # VarIdent with statistics: from their rows per level (as out of core, bit for bit)
        m = float(np.mean(logd)) if self.stats is None else mean_log_sd(self.stats.strata_rows, p)
        p["log_sd"] = (logd - m)[self.rd.inverse]
        return p, m

    def sigma_at(self, m: float) -> float | None:
        """A fixed σ on the centred scale (σ·e^m: the variance function is divided by
        e^m), or None."""
        return None if self.sigma is None else self.sigma * float(np.exp(m))

    def at(self, u) -> tuple[PLS | None, float]:
        """:meth:`products_at`, remembered for the last few u (the search asks again)."""
        u = np.asarray(u, dtype=float)
        key = u.tobytes()
        hit = self._cache.get(key)
        if hit is None:
            hit = self._cache[key] = self.products_at(u)
            if len(self._cache) > 2 * self.n_u + 3:
                self._cache.popitem(last=False)
        return hit

    def products_at(self, u: np.ndarray) -> tuple[PLS | None, float]:
        """The PLS of the whitened design and log|Λ| at u (None, inf if not defined)."""
        try:
            with np.errstate(all="ignore"):
                p, m = self.centred(u)
                if self.stats is not None and self.stats.conditioned(p):
                    ld = self.stats.logdet(p, m)
                    cp = self.stats.cross_products(p, m)
                else:
                    ld = float(logdet_lambda(self.rd, p))
                    cp = CrossProducts.from_design(whiten_design(self.rd, self.design, p))
                pls = make_pls(cp, self.layout, self.sigma_at(m))
        except (BayesLMMError, ValueError, np.linalg.LinAlgError):  # outside the domain
            pls, ld = None, np.inf
        if not np.isfinite(ld):
            pls, ld = None, np.inf
        return pls, ld

    def value(self, x) -> float:
        """The criterion at ``x``."""
        x = np.asarray(x, dtype=float)
        pls, ld = self.at(x[self.n_theta:])
        if pls is None:
            return np.inf
        with np.errstate(all="ignore"):
            return float(pls.objective(x[:self.n_theta], self.reml) + ld)

    def value_and_grad(self, x) -> tuple[float, np.ndarray]:
        """The criterion and its gradient (analytic in θ, central differences in u)."""
        x = np.asarray(x, dtype=float)
        k = self.n_theta
        pls, ld = self.at(x[k:])
        grad = np.zeros(len(x))
        if pls is None:
            return np.inf, grad
        with np.errstate(all="ignore"):
            f, grad[:k] = pls.objective_and_gradient(x[:k], self.reml)
        f = float(f + ld)
        if not np.isfinite(f):
            return np.inf, grad
        for i in range(k, len(x)):
            h = _H * max(1.0, abs(x[i]))
            up, dn = x.copy(), x.copy()
            up[i] += h
            dn[i] -= h
            fu, fd = self.value(up), self.value(dn)
            if np.isfinite(fu) and np.isfinite(fd):
                grad[i] = (fu - fd) / (2 * h)
            elif np.isfinite(fu):
                grad[i] = (fu - f) / h
            elif np.isfinite(fd):
                grad[i] = (f - fd) / h
        return f, grad


def _fitted(design, sol) -> np.ndarray:
    out = design.X @ sol.beta
    for t, b in zip(design.terms, sol.b, strict=True):
        out = out + np.einsum("iq,iq->i", t.Z, b[t.codes])
    return out


def _iid_fitted(design, method: str) -> np.ndarray:
    """Fitted values of the iid-residual fit: the first covariate of VarPower()/VarExp()."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit_lmer(design, method).predict().to_numpy()


def fit_lme(design, rd: ResidualDesign, method: str, *, maxiter: int | None = None,
            criterion: type | None = None, sigma: float | None = None) -> MapResult:
    """ML or REML fit with a residual structure (nlme's ``lme``, or ``gls`` without random effects).

    Parameters
    ----------
    design : Design
    rd : ResidualDesign
        The structure bound to the design's rows.
    method : {"ML", "REML"}
    maxiter : int, optional
    criterion : type, optional
        The criterion's class (default :class:`ResidualCriterion`, on the rows; out of
        core :class:`~bayeslmm.mle.strata_fit.StrataCriterion`).
    sigma : float, optional
        σ fixed at this value (nlme's ``lmeControl(sigma = ...)``); None: estimated.

    Returns
    -------
    MapResult
        With ``residual_params`` named as nlme names them and nlme's σ. For ML, ``se``
        is nlme's summary's, from σ̂² N/(N − p) (XᵀV̂₀⁻¹X)⁻¹ (p fixed effects; lme4 has
        no N/(N − p)); ``vcov`` is nlme's ``vcov()``: with that factor for ``gls``
        (no random effects), without it for ``lme``.

    Raises
    ------
    FitError
        Correlation groups that cross random-effect levels, or a criterion that cannot
        be evaluated at the start.
    """
    reml = method == "REML"
    fitted = _iid_fitted(design, method) if rd.fitted_covariate else None
    make = criterion or ResidualCriterion
    crit = make(design, rd, reml, fitted, sigma)
    x = crit.start()
    if not np.isfinite(crit.value(x)):
        raise FitError("The likelihood cannot be evaluated at the starting values (iid "
                       "residuals, Λ = I): check for a response that the fixed effects fit "
                       "exactly.")
    bounds = [(lo if np.isfinite(lo) else None, None) for lo in crit.layout.lower]
    bounds += u_bounds(rd)
    is_diag = np.concatenate([crit.layout.is_diag, np.zeros(crit.n_u, dtype=bool)])
    extra = strong_start(crit, x)
    nfev, rounds = 0, 0
    with one_blas_thread(crit.n_theta + len(design.fixef_names) + 1):
        while True:
            x_new, converged, msg, n = search(crit.value, crit.value_and_grad, x, bounds,
                                              is_diag, maxiter, extra, scale=crit.scale)
            nfev, rounds, extra = nfev + n, rounds + 1, ()
            pls, ld = crit.at(x_new[crit.n_theta:])
            sol = pls.solution(x_new[:crit.n_theta], reml)
            if fitted is None:
                break
            change = np.abs(x_new - x) / np.maximum(np.abs(x_new), 1e-3)
            x = x_new
            new = _fitted(design, sol)
            moved = np.max(np.abs(new - fitted)) / np.max(np.abs(new))
            if rounds > 1 and np.max(change, initial=0.0) <= FIXED_POINT_TOL \
                    and moved <= FIXED_POINT_TOL:
                break
            if rounds >= _MAX_ROUNDS:
                converged = False
                msg = f"{msg}; fitted-value iteration did not settle in {rounds} rounds"
                break
            fitted = new
            crit = make(design, rd, reml, fitted, sigma)
    if fitted is not None:
        msg = f"{msg} (fitted-value covariate: {rounds} rounds)"
    return lme_result(design, rd, crit, x_new, method, converged, nfev, msg)


def lme_result(design, rd: ResidualDesign, crit: ResidualCriterion, x: np.ndarray,
               method: str, converged: bool, nfev: int, msg: str, *,
               warn: bool = True) -> MapResult:
    """The :class:`MapResult` at ``x = (θ, u)`` of ``crit`` (θ on the scale of its
    centred variance function): what :func:`fit_lme` returns at its end point, and what
    restoring a saved fit rebuilds without searching again."""
    reml = method == "REML"
    theta, u = x[:crit.n_theta], x[crit.n_theta:]
    pls, ld = crit.at(u)
    if pls is None:
        raise FitError("The residual parameters of this fit are outside their domain.")
    sol = pls.solution(theta, reml)
    psi = np.concatenate([theta, [sol.sigma], u])
    p = crit.params(u)
    _, m = crit.centred(u)
    # back to nlme's scale (variance function 1 at its reference): σ·e^-m, θ·e^m
    sol = replace(sol, sigma=sol.sigma * np.exp(-m) if crit.sigma is None else crit.sigma)
    theta_nlme = theta * np.exp(m)
    singular = bool(np.any((theta * crit.scale[:crit.n_theta])[crit.layout.is_diag]
                           < SINGULAR_TOL))
    if warn:
        warn_fit(method, converged, singular, msg)
        warn_edge(rd, u, p)
    logd = log_sd_weights(rd, p) if design.in_memory else None  # out of core: no rows
    delta = np.exp(logd[rd.inverse]) if logd is not None else 1.0  # no n-vector of ones
    se = None
    if not reml and crit.sigma is None:  # (a known σ needs no N/(N − p))
        # nlme's summary (adjustSigma) reports ML standard errors with σ̂² N/(N − p); gls's
        # vcov() has that factor too, lme's vcov() has not
        n, k = design.nobs, len(design.fixef_names)
        if design.terms:
            se = np.sqrt(np.diag(sol.vcov) * n / (n - k))
        else:
            sol = replace(sol, vcov=sol.vcov * n / (n - k))
    named = nlme_params(rd, {k: p[k] for k in rd.param_names})
    residual = {"logdet": ld, "n_params": crit.n_u, "structure": rd.structure,
                "params": named, "scale": sol.sigma * delta, "u": u, "se": se,
                "covariate": crit.fitted, "sigma_fixed": crit.sigma is not None}
    engine = MapEngine(design, method, theta_nlme, sol.sigma, sol.beta,
                       fitter=lambda d, meth: fit_lme(d, rd, meth, criterion=type(crit),
                                                      sigma=crit.sigma),
                       residual=rd, residual_params=p, criterion=_psi_criterion(crit, psi),
                       sigma_fixed=crit.sigma is not None)
    return assemble(design, method, pls, theta_nlme, sol, converged, singular, nfev, msg,
                    residual=residual, engine=engine)


def _psi_criterion(crit: ResidualCriterion, psi: np.ndarray) -> tuple:
    """ψ = (θ, σ, u) on the centred scale → the deviance with σ explicit, and vcov(β̂)
    (what Satterthwaite's df differentiate); with ψ at the estimate."""
    k = crit.n_theta
    if crit.sigma is not None:  # σ fixed: ψ = (θ, u), the PLS's criterion has σ in it

        def fixed_dev(x: np.ndarray) -> float:
            pls, ld = crit.at(x[k:])
            return np.inf if pls is None else pls.objective(x[:k], crit.reml) + ld

        def fixed_vcov(x: np.ndarray) -> np.ndarray:
            pls, _ = crit.at(x[k:])
            return pls.sigma ** 2 * pls.beta_cov(x[:k])

        return fixed_dev, fixed_vcov, np.delete(psi, k)

    def deviance(x: np.ndarray) -> float:
        pls, ld = crit.at(x[k + 1:])
        return np.inf if pls is None else pls.deviance(x[:k], x[k], crit.reml) + ld

    def vcov(x: np.ndarray) -> np.ndarray:
        pls, _ = crit.at(x[k + 1:])
        return x[k] ** 2 * pls.beta_cov(x[:k])

    return deviance, vcov, psi
