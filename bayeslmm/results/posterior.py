"""Posterior results: an immutable view of NUTS draws with lme4-like accessors.

Examples
--------
``post``: the sleepstudy fit of the examples of :class:`PosteriorResult`.

>>> list(post.ranef["Subject"].columns), post.ngroups
(['Intercept', 'Days'], {'Subject': 18})
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from ..dask.frame import POINTWISE_OUT_OF_CORE, is_dask_frame
from ..errors import BayesLMMError
from ..formula.design import Design
from ..formula.newdata import evaluate_new_data
from ..formula.weights import new_weights
from .base import HDI_PROB, PosteriorBase, SavableResult, jsonable, lme4_name, records
from .effects import EffectsMixin
from .group_loglik import check_group, group_loglik
from .loglik import with_log_likelihood
from .predict import STREAM_VALUES, lazy_posterior_draws, posterior_draws, training_rows
from .prior_table import design_elements
from .r2 import BayesR2Mixin, R2Mixin
from .sensitivity import SensitivityMixin
from .varcorr import varcorr_frame

__all__ = ["PosteriorResult", "HDI_PROB", "lme4_name", "records"]



class PosteriorResult(PosteriorBase, SavableResult, EffectsMixin, R2Mixin,
                      BayesR2Mixin, SensitivityMixin):
    """Posterior draws of a fitted :class:`~bayeslmm.LMM` (returned by ``LMM.fit``).

    Point summaries (``fixef``, ``ranef``, ``varcorr``, ``sigma``) are posterior means;
    ``summary()`` gives sds, 94% HDIs, R-hat and ESS; ``idata`` holds every draw.

    Examples
    --------
    The examples of this class share one fit, made once for them all:

        sleep = blm.datasets.load("sleepstudy")
        post = blm.LMM("Reaction ~ Days + (Days | Subject)", sleep).fit(
            draws=500, tune=500, chains=2, random_seed=1)

    >>> post.fixef.round(-1)
    Intercept    250.0
    Days          10.0
    Name: fixef, dtype: float64
    """

    _FILE_KIND = "posterior"

    def __init__(self, idata: az.InferenceData, design: Design, priors: dict[str, str],
                 info: dict[str, Any], residual=None) -> None:
        self._idata = idata
        self._residual = residual
        self._with_loglik: az.InferenceData | None = None  # log_likelihood(), once
        self._group_loglik: dict[str, az.InferenceData] = {}  # per grouping factor
        self._design = design
        self._formula, self._nobs = design.spec.formula, design.nobs
        self._ngroups = design.ngroups
        self._priors = dict(priors)
        self._info = dict(info)
        self._summary: pd.DataFrame | None = None

    def _prior_elements(self) -> dict[str, list[str]]:
        return design_elements(self._design)

    def _mean(self, name: str) -> np.ndarray:
        v = self._idata.posterior[name]
        nc, nd = v.sizes["chain"], v.sizes["draw"]
        if v.size <= STREAM_VALUES:
            return v.mean(("chain", "draw")).values
        # b drawn on demand (b_draws="lazy") is read a few draws at a time, never whole
        step = max(1, STREAM_VALUES // (v.size // (nc * nd)))
        total = sum(v.isel(chain=c, draw=slice(lo, lo + step)).sum("draw").values
                    for c in range(nc) for lo in range(0, nd, step))
        return total / (nc * nd)

    # --- point summaries ---------------------------------------------------------
    @property
    def fixef(self) -> pd.Series:
        """Posterior means of the fixed effects.

        Examples
        --------
        >>> post.fixef.round(-1)  # post: see PosteriorResult
        Intercept    250.0
        Days          10.0
        Name: fixef, dtype: float64
        """
        return pd.Series(self._mean("beta"), index=self._design.fixef_names, name="fixef")

    @property
    def ranef(self) -> dict[str, pd.DataFrame]:
        """Posterior means of the random effects: group → DataFrame (levels × terms).

        Examples
        --------
        >>> b = post.ranef["Subject"]  # post: see PosteriorResult
        >>> b.shape, b.columns.tolist()
        ((18, 2), ['Intercept', 'Days'])
        """
        return {t.group: pd.DataFrame(self._mean(f"b_{t.group}"),
                                      index=pd.Index(t.levels, name=t.group),
                                      columns=t.term_names) for t in self._design.terms}

    @property
    def sigma(self) -> float:
        """Posterior mean of the residual sd.

        Examples
        --------
        >>> 20 < post.sigma < 30  # post: see PosteriorResult
        True
        """
        return float(self._mean("sigma"))

    @property
    def residual(self):
        """The residual structure (a ``bayeslmm.Residual``), or None for iid residuals.

        Examples
        --------
        >>> post.residual is None  # post: see PosteriorResult
        True
        """
        return None if self._residual is None else self._residual.structure

    @property
    def residual_params(self) -> dict[str, float]:
        """Posterior means of the residual-structure parameters (empty for iid residuals).

        Named as nlme names them: ``Phi``, ``Rho``, ``power``, ``expon``, varIdent's sd
        ratio per level (the reference level at 1).

        Examples
        --------
        >>> post.residual_params  # post: see PosteriorResult
        {}
        """
        if self._residual is None:
            return {}
        from ..residual.algebra import nlme_params

        rd = self._residual
        return nlme_params(rd, {k: self._mean(k) for k in rd.param_names})

    @property
    def varcorr(self) -> pd.DataFrame:
        """Variance components in lme4's ``as.data.frame(VarCorr)`` layout.

        ``sdcor`` holds posterior means of the sds and correlations; ``vcov`` the
        variances and covariances implied by those means.

        Examples
        --------
        >>> post.varcorr[["grp", "var1", "var2"]]  # post: see PosteriorResult
                grp       var1  var2
        0   Subject  Intercept   NaN
        1   Subject       Days   NaN
        2   Subject  Intercept  Days
        3  Residual        NaN   NaN
        """
        groups, blocks = [], []
        for t in self._design.terms:
            sd = self._mean(f"sd_{t.group}")
            name = f"corr_{t.group}"
            corr = self._mean(name) if name in self._idata.posterior else np.eye(t.q)
            groups.append((t.group, t.term_names, corr * np.outer(sd, sd)))
            blocks.append(t.blocks)
        return varcorr_frame(groups, self.sigma, blocks)

    # --- diagnostics and tables --------------------------------------------------
    def _params(self) -> xr.Dataset:
        """The model's parameters, correlations as one entry per pair."""
        post = self._idata.posterior
        ds = {"beta": post["beta"]}
        for t in self._design.terms:
            ds[f"sd_{t.group}"] = post[f"sd_{t.group}"]
            if f"corr_{t.group}" in post:
                pairs = [(i, j) for b in t.blocks for j in b for i in b if i > j]
                if pairs:
                    c = post[f"corr_{t.group}"].values
                    labels = [f"{t.term_names[j]}, {t.term_names[i]}" for i, j in pairs]
                    vals = np.stack([c[..., i, j] for i, j in pairs], axis=-1)
                    ds[f"corr_{t.group}"] = xr.DataArray(
                        vals, dims=("chain", "draw", f"{t.group}_pair"),
                        coords={"chain": post.chain, "draw": post.draw,
                                f"{t.group}_pair": labels})
        if self._info.get("sigma_fixed") is None:  # a fixed σ is data: nothing to summarise
            ds["sigma"] = post["sigma"]
        for name in ([] if self._residual is None else self._residual.param_names):
            ds[name] = post[name]
        return xr.Dataset(ds)

    def _summarize(self, hdi_prob: float) -> pd.DataFrame:
        return az.summary(self._params(), hdi_prob=hdi_prob, round_to="none")

    # --- predictions and checks --------------------------------------------------
    def predict(
        self,
        new_data: pd.DataFrame | None = None,
        *,
        kind: str = "mean",
        include_random: bool = True,
        new_levels: str = "sample",
        random_seed: int | None = None,
        weights: Any = None,
    ) -> xr.DataArray:
        """Posterior draws of predictions, dims ``(chain, draw, obs)``.

        Parameters
        ----------
        new_data : DataFrame or dask DataFrame, optional
            Rows to predict (default: the training rows); ``obs`` holds their index.
            Dask data (and the rows of a fit of dask data) give draws backed by a lazy
            dask array (no ``obs`` labels), computed partition by partition.
        kind : {"mean", "response"}
            Draws of the mean ``Xβ + Zb``, or of new observations (mean + residual).
        include_random : bool
            False gives population-level predictions ``Xβ``.
        new_levels : {"sample", "population", "error"}
            Levels not seen in training: effects drawn from ``N(0, Ψ)`` per draw,
            set to 0, or an error naming them.
        random_seed : int, optional
            Seeds the draws of new-level effects and residuals.
        weights : str or array, optional
            Prior weights of the rows (a model fitted with ``weights=``; residual sd
            σ/√w for ``kind="response"``): a column of ``new_data`` or one value per
            row. Default: the training weights, or the model's weights column of
            ``new_data``.

        Examples
        --------
        >>> new = pd.DataFrame({"Days": [9, 5], "Subject": ["308", "a new subject"]})
        >>> draws = post.predict(new, new_levels="population")  # post: see PosteriorResult
        >>> draws.dims, draws.shape
        (('chain', 'draw', 'obs'), (2, 500, 2))
        >>> draws.mean(("chain", "draw")).round(-1).values
        array([430., 300.])
        """
        if is_dask_frame(new_data) or (new_data is None and not self._design.in_memory):
            return lazy_posterior_draws(self._design, self._idata.posterior, new_data, kind,
                                        include_random, new_levels, random_seed,
                                        residual=self._residual, weights=weights)
        rows = (training_rows(self._design) if new_data is None
                else evaluate_new_data(self._design, new_data))
        rd = self._residual
        if rd is not None and new_data is not None and kind == "response":
            from ..residual.bind import bind

            rd = bind(self._residual.structure, new_data.loc[rows.index], fitting=False)
            if rd.varfuncs is not None:  # VarComb's VarIdent parts: the training levels
                from ..residual.varfuncs import align_levels

                rd = replace(rd, varfuncs=align_levels(rd.varfuncs, self._residual.varfuncs))
        w = None
        if kind == "response" and (weights is not None or self._design.weights is not None):
            w = new_weights(self._design, new_data, rows.index, weights)
        return posterior_draws(self._design, self._idata.posterior, rows, kind=kind,
                               include_random=include_random, new_levels=new_levels,
                               random_seed=random_seed, residual=rd,
                               train_residual=self._residual, weights=w)

    def posterior_predictive(self, random_seed: int | None = None) -> az.InferenceData:
        """The InferenceData with a ``posterior_predictive`` group drawn now.

        The group holds ``y`` (dims ``chain, draw, obs``); the result itself is not
        changed. Returns a new InferenceData (``idata``'s groups plus that one), ready for
        ``az.plot_ppc(post.posterior_predictive())``.

        Examples
        --------
        >>> idata = post.posterior_predictive(random_seed=1)  # post: see PosteriorResult
        >>> idata.posterior_predictive["y"].shape, "posterior_predictive" in post.idata.groups()
        ((2, 500, 180), False)
        """
        y = self.predict(kind="response", random_seed=random_seed)
        if self._design.in_memory:  # out of core: lazy, and no labels for 10⁸ rows
            y = y.assign_coords(obs=np.arange(self.nobs))
        y = y.rename("y")
        groups = {g: self._idata[g] for g in self._idata.groups()}
        groups["posterior_predictive"] = xr.Dataset({"y": y})
        return az.InferenceData(**groups)

    def log_likelihood(self, *, level: str = "observation",
                       group: str | None = None) -> az.InferenceData:
        """The InferenceData with the pointwise log-likelihood group, for LOO and WAIC.

        ``level="observation"``: per observation, conditional on the drawn random
        effects, for iid residuals and variance functions; per correlation group (dim
        ``residual_group``: the group's joint density) where residuals are correlated
        within groups, so LOO leaves out one whole group. ``idata`` itself when it holds
        the group (see ``LMM.fit(log_likelihood=...)``), else a new InferenceData,
        computed once.

        ``level="group"``: per level of the grouping factor ``group`` (the model's only
        one by default), its marginal log-likelihood with the random effects
        integrated out exactly (:mod:`bayeslmm.results.group_loglik`): LOO on it is
        leave-one-group-out, which scores predictions for new groups. Needs iid
        residuals; factors nested in ``group`` are integrated out with it.

        Examples
        --------
        >>> post.log_likelihood().log_likelihood["y"].dims  # post: see PosteriorResult
        ('chain', 'draw', 'obs')
        >>> post.log_likelihood(level="group").log_likelihood["y"].dims
        ('chain', 'draw', 'Subject')
        """
        if not self._design.in_memory:
            raise BayesLMMError(f"Pointwise LOO/WAIC: {POINTWISE_OUT_OF_CORE}")
        if level == "group":
            return self._group_log_likelihood(group)
        if level != "observation":
            raise BayesLMMError(f"level must be 'observation' or 'group', got {level!r}.")
        if "log_likelihood" in self._idata.groups():
            return self._idata
        if self._with_loglik is None:
            self._with_loglik = with_log_likelihood(self._idata, self._design, self._residual)
        return self._with_loglik

    def _group_log_likelihood(self, group: str | None) -> az.InferenceData:
        if self._residual is not None:
            raise BayesLMMError("level='group' needs iid residuals: with a residual "
                                "structure use level='observation' (a correlated structure "
                                "is already scored per correlation group).")
        group = check_group(self._design, group)
        if group not in self._group_loglik:
            ll = group_loglik(self._design, self._idata.posterior, group)
            groups = {g: self._idata[g] for g in self._idata.groups()}
            groups["log_likelihood"] = xr.Dataset({"y": ll})
            self._group_loglik[group] = az.InferenceData(**groups)
        return self._group_loglik[group]

    # --- export ------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary with the names of the public contract.

        Examples
        --------
        >>> d = post.to_dict()  # post: see PosteriorResult
        >>> d["kind"], d["nobs"], list(d["fixef_lme4"])
        ('posterior', 180, ['(Intercept)', 'Days'])
        """
        return jsonable({
            **self._draws_dict(),
            "residual_params": self.residual_params,
            "ranef": {g: {"levels": list(df.index), **{c: df[c].tolist() for c in df}}
                      for g, df in self.ranef.items()},
        })

    def __str__(self) -> str:
        from .display import format_posterior

        return format_posterior(self)

