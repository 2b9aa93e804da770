"""Results of a high-dimensional LMM (a wide random matrix or a known covariance).

GREML estimates (:class:`KernelMapResult`) and NUTS draws (:class:`KernelPosteriorResult`).

Both give ``fixef``, ``sigma``, ``sd`` (σ_b), ``varcorr``, ``h2``, ``ranef`` (BLUPs:
``E[ω | y]`` per column of the matrix, or ``E[b | y]`` per level of K, levels without
data included), ``summary()``, ``to_dict()``, ``predict()`` (genomic prediction: the
fixed part plus ``E[W_new ω | y]`` for new rows of the matrix, or ``E[b_level | y]``)
and ``draw_effects()`` (exact draws of ω or b given y; not stored by default, as p may
be large).

Examples
--------
>>> import numpy as np, pandas as pd, bayeslmm as blm
>>> rng = np.random.default_rng(0)
>>> W = rng.normal(size=(40, 100))
>>> df = pd.DataFrame({"y": W @ rng.normal(scale=0.1, size=100) + rng.normal(size=40)})
>>> fit = blm.LMM("y ~ 1", df, random_matrices={"snps": W}).fit_map()
>>> fit.varcorr["grp"].tolist(), fit.draw_effects(5, random_seed=1).shape
(['snps', 'Residual'], (5, 100))
>>> fit.predict(new_X=W[:3]).shape
(3,)
"""

from __future__ import annotations

from typing import Any

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from .covariance import varcorr_frame
from .errors import DataError
from .kernel import GremlFit
from .kernel_design import KernelDesign, _label
from .kernel_effects import conditional_draws, fitted_random, functional, mean_weight, weights
from .newdata import evaluate_new_data
from .results import HDI_PROB, lme4_name, records

__all__ = ["KernelMapResult", "KernelPosteriorResult"]


class _KernelResult:
    """What both result kinds share: the design, effects and predictions."""

    _kd: KernelDesign

    # -- per-kind parameter draws (S draws; one for a MAP fit) ------------------------
    def _theta(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        raise NotImplementedError

    @property
    def formula(self) -> str:
        """The model formula.

        Examples
        --------
        >>> kmap.formula  # kmap: see KernelMapResult
        'y ~ 1'
        """
        return self._kd.formula

    @property
    def nobs(self) -> int:
        """Number of observations used.

        Examples
        --------
        >>> kmap.nobs  # kmap: see KernelMapResult
        40
        """
        return self._kd.nobs

    @property
    def ngroups(self) -> dict[str, int]:
        """Levels of the known-covariance factor with data (empty for a random matrix).

        Examples
        --------
        >>> kmap.ngroups  # kmap: see KernelMapResult
        {}
        """
        return self._kd.ngroups

    @property
    def design(self) -> KernelDesign:
        """The design the model was fitted on.

        Examples
        --------
        >>> d = kmap.design  # kmap: see KernelMapResult
        >>> d.kind, d.name, d.W.shape
        ('matrix', 'snps', (40, 100))
        """
        return self._kd

    def _varcorr(self, sd: float, sigma: float) -> pd.DataFrame:
        term = "Intercept" if self._kd.kind == "covariance" else "effect"
        return varcorr_frame([(self._kd.name, [term], np.array([[sd**2]]))], sigma)

    @property
    def ranef(self) -> dict[str, pd.DataFrame]:
        """BLUPs ``E[ω | y]`` (matrix columns) or ``E[b | y]`` (every level of K).

        Examples
        --------
        >>> b = kmap.ranef["snps"]  # kmap: see KernelMapResult
        >>> b.shape, b.index[:3].tolist()
        ((100, 1), ['snps0', 'snps1', 'snps2'])
        """
        if getattr(self, "_ranef", None) is None:
            kd = self._kd
            w = mean_weight(kd.rotation, *weights(kd.rotation, *self._theta()))
            eff = kd.W.T @ w.astype(kd.W.dtype) if kd.kind == "matrix" else \
                kd.K[:, kd.codes] @ w
            col = "Intercept" if kd.kind == "covariance" else "effect"
            self._ranef = pd.DataFrame({col: np.asarray(eff, float)},
                                       index=pd.Index(kd.effect_names, name=kd.name))
        return {self._kd.name: self._ranef.copy()}

    def _new_rows(self, new_data, new_X):
        """Fixed-effect rows and the operator L of new rows (None: training rows)."""
        kd = self._kd
        if new_data is None and new_X is None:
            return kd.fixed.X, None, kd.fixed.rows
        if kd.kind == "matrix":
            if new_X is None:
                raise DataError(f"Predicting new rows needs their random-matrix rows: pass "
                                f"new_X (one row per new_data row, columns as {kd.name!r}).")
            W_new = self._matrix_rows(new_X, new_data)
            if new_data is None:
                new_data = pd.DataFrame(index=new_X.index if isinstance(new_X, pd.DataFrame)
                                        else pd.RangeIndex(len(W_new)))
            if len(new_data) != len(W_new):
                raise DataError(f"new_X has {len(W_new)} rows for {len(new_data)} rows of "
                                "new_data.")
            L = kd.operator(W_new=W_new)
        else:
            if new_data is None or kd.name not in new_data.columns:
                raise DataError(f"new_data must have the grouping column {kd.name!r}.")
            index = {lab: i for i, lab in enumerate(kd.effect_names)}
            labels = [_label(v) for v in new_data[kd.name]]
            unknown = sorted({lab for lab in labels if lab not in index})
            if unknown:
                raise DataError(f"Level(s) {unknown[:5]} of {kd.name!r} are not in its "
                                "covariance; add them to K to predict them.")
            L = kd.operator(codes_new=np.array([index[lab] for lab in labels]))
        return evaluate_new_data(kd.fixed, new_data).X, L, new_data.index

    def _matrix_rows(self, new_X, new_data) -> np.ndarray:
        kd = self._kd
        if isinstance(new_X, pd.DataFrame):
            missing = [c for c in kd.effect_names if c not in set(map(str, new_X.columns))]
            if missing:
                raise DataError(f"new_X lacks column(s) {missing[:5]} of {kd.name!r}.")
            new_X = new_X.set_axis([str(c) for c in new_X.columns], axis=1)
            if new_data is not None and new_data.index.isin(new_X.index).all():
                new_X = new_X.loc[new_data.index]  # match rows by label when possible
            W_new = new_X[kd.effect_names].to_numpy(dtype=float)
        else:
            W_new = np.atleast_2d(np.asarray(new_X, dtype=float))
            if W_new.shape[1] != kd.W.shape[1]:
                raise DataError(f"new_X must have {kd.W.shape[1]} columns like {kd.name!r}, "
                                f"got {W_new.shape[1]}.")
        return W_new.astype(kd.W.dtype, copy=False)

    def _predict_draws(self, new_data, new_X, include_random: bool):
        """Conditional means ``X_f β + E[g | y, θ]`` per draw of θ: (m, S), and the index."""
        beta, sd, sigma = self._theta()
        Xf, L, index = self._new_rows(new_data, new_X)
        out = Xf @ beta.T
        if include_random:
            a, c = weights(self._kd.rotation, beta, sd, sigma)
            out = out + (fitted_random(self._kd.rotation, a) if L is None
                         else functional(self._kd.rotation, L, a, c))
        return out, index

    def _effect_draws(self, idx: np.ndarray, random_seed: int | None) -> xr.DataArray:
        beta, sd, sigma = self._theta()
        rng = np.random.default_rng(random_seed)
        vals = conditional_draws(self._kd, beta[idx], sd[idx], sigma[idx], rng)
        dim = f"{self._kd.name}_effect"
        return xr.DataArray(vals, dims=("sample", dim),
                            coords={dim: list(self._kd.effect_names)}, name=self._kd.name)

    def _common_dict(self) -> dict[str, Any]:
        fe = self.fixef
        return {"formula": self.formula, "nobs": self.nobs, "ngroups": self.ngroups,
                "random_term": {"name": self._kd.name, "kind": self._kd.kind,
                                "n_effects": len(self._kd.effect_names),
                                "rank": self._kd.rotation.rank,
                                "scale": self._kd.rotation.scale},
                "fixef": {k: float(v) for k, v in fe.items()},
                "fixef_lme4": {lme4_name(k): float(v) for k, v in fe.items()},
                "varcorr": records(self.varcorr), "sigma": self.sigma, "sd": self.sd,
                "h2": self.h2}

    def __repr__(self) -> str:
        return self.__str__()


class KernelMapResult(_KernelResult):
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

    def __init__(self, fit: GremlFit, kd: KernelDesign) -> None:
        self._fit, self._kd, self._ranef = fit, kd, None

    def _theta(self):
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
        return self._fit.sigma

    @property
    def sd(self) -> float:
        """σ̂_b: sd of one random coefficient.

        Examples
        --------
        >>> round(kmap.sd, 4)  # kmap: see KernelMapResult
        0.0857
        """
        return self._fit.sd

    @property
    def h2(self) -> float:
        """ĥ² = σ̂_b² c / (σ̂_b² c + σ̂²), c = tr(K)/n.

        Examples
        --------
        >>> round(kmap.h2, 3)  # kmap: see KernelMapResult
        0.324
        """
        return self._fit.h2

    @property
    def h2_se(self) -> float:
        """SE of ĥ² from the curvature of the profiled criterion.

        Examples
        --------
        >>> round(kmap.h2_se, 3)  # kmap: see KernelMapResult
        0.338
        """
        return self._fit.h2_se

    @property
    def h2_interval(self) -> tuple[float, float]:
        """95% profile-likelihood interval of h².

        Examples
        --------
        >>> tuple(round(v, 3) for v in kmap.h2_interval)  # kmap: see KernelMapResult
        (0.0, 0.866)
        """
        return self._fit.h2_interval

    @property
    def loglik(self) -> float:
        """Log-likelihood (REML: the REML criterion's, as lme4's logLik).

        Examples
        --------
        >>> round(kmap.loglik, 3)  # kmap: see KernelMapResult
        -72.656
        """
        return self._fit.loglik

    @property
    def converged(self) -> bool:
        """Optimiser success.

        Examples
        --------
        >>> kmap.converged  # kmap: see KernelMapResult
        True
        """
        return self._fit.converged

    @property
    def singular(self) -> bool:
        """True when σ̂_b is 0 (the boundary).

        Examples
        --------
        >>> kmap.singular  # kmap: see KernelMapResult
        False
        """
        return self._fit.h2 < 1e-6

    @property
    def fixef(self) -> pd.Series:
        """Fixed-effect estimates β̂.

        Examples
        --------
        >>> kmap.fixef.round(4)  # kmap: see KernelMapResult
        Intercept    0.1134
        Name: estimate, dtype: float64
        """
        return pd.Series(self._fit.beta, index=self._kd.fixed.fixef_names, name="estimate")

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
    def se(self) -> pd.Series:
        """Standard errors of β̂.

        Examples
        --------
        >>> kmap.se.round(4)  # kmap: see KernelMapResult
        Intercept    0.2291
        Name: se, dtype: float64
        """
        return pd.Series(np.sqrt(np.diag(self._fit.vcov)), index=self.fixef.index, name="se")

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
    def aic(self) -> float:
        """AIC: −2 logLik + 2 df.

        Examples
        --------
        >>> round(kmap.aic, 2)  # kmap: see KernelMapResult
        151.31
        """
        return -2.0 * self.loglik + 2 * self.df

    @property
    def bic(self) -> float:
        """BIC: −2 logLik + df log(nobs).

        Examples
        --------
        >>> print(round(kmap.bic, 2))  # kmap: see KernelMapResult
        156.38
        """
        return -2.0 * self.loglik + np.log(self.nobs) * self.df

    @property
    def varcorr(self) -> pd.DataFrame:
        """The random term's and the residual's variance and sd (lme4's layout).

        Examples
        --------
        >>> kmap.varcorr.round(4)  # kmap: see KernelMapResult
                grp    var1  var2    vcov   sdcor
        0      snps  effect  None  0.0073  0.0857
        1  Residual     NaN  None  1.5229  1.2341
        """
        return self._varcorr(self.sd, self.sigma)

    def summary(self) -> pd.DataFrame:
        """Fixed effects: estimate, se, t.

        Examples
        --------
        >>> kmap.summary().round(3)  # kmap: see KernelMapResult
                   estimate     se      t
        Intercept     0.113  0.229  0.495
        """
        return pd.DataFrame({"estimate": self.fixef, "se": self.se,
                             "t": self.fixef / self.se})

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
        Name: predicted, dtype: float64
        >>> np.allclose(kmap.predict(new_X=new_W), kmap.predict()[:2])
        True
        """
        out, index = self._predict_draws(new_data, new_X, include_random)
        return pd.Series(out[:, 0], index=index, name="predicted")

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
        out = {"kind": "map", "method": self.method, **self._common_dict(),
               "se": {k: float(v) for k, v in self.se.items()},
               "h2_se": self.h2_se, "h2_interval": list(self.h2_interval),
               "loglik": self.loglik, "aic": self.aic, "bic": self.bic,
               "converged": self.converged, "singular": self.singular}
        return _finite(out)

    def __str__(self) -> str:
        from .kernel_display import format_kernel_map

        return format_kernel_map(self)


class KernelPosteriorResult(_KernelResult):
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

    def __init__(self, idata: az.InferenceData, kd: KernelDesign, priors: dict[str, str],
                 info: dict[str, Any] | None = None) -> None:
        self._idata, self._kd, self._priors = idata, kd, dict(priors)
        self._info, self._ranef, self._summary = dict(info or {}), None, None

    @property
    def idata(self) -> az.InferenceData:
        """The ArviZ InferenceData.

        Examples
        --------
        >>> kpost.idata.posterior["h2"].shape  # kpost: see KernelPosteriorResult
        (2, 500)
        """
        return self._idata

    @property
    def info(self) -> dict[str, Any]:
        """Sampler settings.

        Examples
        --------
        >>> {k: kpost.info[k] for k in ("draws", "tune")}  # kpost: see KernelPosteriorResult
        {'draws': 500, 'tune': 500}
        """
        return dict(self._info)

    @property
    def priors(self) -> dict[str, str]:
        """Priors used.

        Examples
        --------
        >>> kpost.priors["sd_snps"]  # kpost: see KernelPosteriorResult
        "Prior('HalfNormal', sigma=0.1507)"
        """
        return dict(self._priors)

    def _flat(self, name: str) -> np.ndarray:
        v = self._idata.posterior[name].values
        return v.reshape(v.shape[0] * v.shape[1], *v.shape[2:])

    def _theta(self):
        return (self._flat("beta"), self._flat(f"sd_{self._kd.name}"), self._flat("sigma"))

    @property
    def fixef(self) -> pd.Series:
        """Posterior means of the fixed effects.

        Examples
        --------
        >>> abs(kpost.fixef - kmap.fixef) < 0.05  # kpost, kmap: see the class examples
        Intercept    True
        dtype: bool
        """
        return pd.Series(self._flat("beta").mean(axis=0), index=self._kd.fixed.fixef_names)

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

    def summary(self, hdi_prob: float = HDI_PROB) -> pd.DataFrame:
        """ArviZ summary of beta, sd_<name>, sigma and h2.

        Examples
        --------
        >>> kpost.summary(hdi_prob=0.9).columns[:4].tolist()  # kpost: see KernelPosteriorResult
        ['mean', 'sd', 'hdi_5%', 'hdi_95%']
        """
        if self._summary is None or hdi_prob != HDI_PROB:
            s = az.summary(self._idata, var_names=["beta", f"sd_{self._kd.name}", "sigma",
                                                   "h2"], hdi_prob=hdi_prob,
                           round_to="none")
            if hdi_prob != HDI_PROB:
                return s
            self._summary = s
        return self._summary.copy()

    @property
    def diagnostics(self) -> dict[str, Any]:
        """Divergences, max R-hat, min bulk and tail ESS, chains and draws.

        Examples
        --------
        >>> sorted(kpost.diagnostics)  # kpost: see KernelPosteriorResult
        ['chains', 'divergences', 'draws', 'max_rhat', 'min_ess_bulk', 'min_ess_tail']
        """
        s, post = self.summary(), self._idata.posterior
        stats = self._idata.sample_stats
        return {"divergences": int(stats["diverging"].sum()) if "diverging" in stats else 0,
                "max_rhat": float(np.nanmax(s["r_hat"])) if s["r_hat"].notna().any()
                else float("nan"),
                "min_ess_bulk": float(np.nanmin(s["ess_bulk"])),
                "min_ess_tail": float(np.nanmin(s["ess_tail"])),
                "chains": int(post.sizes["chain"]), "draws": int(post.sizes["draw"])}

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
                                    "obs": np.asarray(index)}, name="predicted")

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
        s = self.summary()
        return _finite({"kind": "posterior", **self._common_dict(),
                        "summary": {i: {k: float(v) for k, v in r.items()}
                                    for i, r in s.iterrows()},
                        "diagnostics": self.diagnostics, "priors": self.priors,
                        "info": self.info})

    def __str__(self) -> str:
        from .kernel_display import format_kernel_posterior

        return format_kernel_posterior(self)


def _finite(v: Any) -> Any:
    """NaN and inf → None, NumPy scalars → Python, recursively (JSON)."""
    if isinstance(v, dict):
        return {str(k): _finite(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_finite(x) for x in v]
    if isinstance(v, np.generic):
        v = v.item()
    return None if isinstance(v, float) and not np.isfinite(v) else v
