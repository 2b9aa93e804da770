"""Simulation-based calibration (SBC; Talts, Betancourt, Simpson, Vehtari & Gelman 2018)
of bayeslmm's NUTS fits.

For each simulation the parameters are drawn from the model's own priors, a response is
drawn given them (``m.prior_predictive``), the model is refitted on that response with
``m.fit`` (the user's path: model building, sampler, completion), and the rank of each
true parameter among ``n_ranks`` thinned posterior draws is recorded. If the fit draws
from the exact posterior, each rank is uniform on ``0 .. n_ranks``; a wrong density, a
wrong Jacobian or a sampler that does not converge shows up as a non-uniform rank
histogram (Talts et al., section 4).

The priors are fixed numbers (not the data-scaled defaults, which would depend on the
simulated response and so change the prior between simulations). ``simuk`` (ArviZ's SBC
package) was not used: it samples a bare PyMC model with ``pm.sample``, which would skip
what is under test here (``LMM.fit``: the marginal model, nutpie with the precompiled
log-density, the exact draws of b), and it needs ArviZ 1.0's ``arviz_base``.

Used by ``benchmarks/bench_sbc.py`` (the full runs) and ``tests/test_sbc.py`` (a small
run in the sampling tier).

>>> sorted(CASES)
['ar1', 'crossed', 'genomic', 'slope']
>>> CASES["slope"].model().formula
'y ~ x + (x | g)'
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import arviz as az
import numpy as np
import pandas as pd
import scipy.stats as st

import bayeslmm as blm

__all__ = ["Case", "CASES", "prior_draws", "run", "uniformity", "plot_ranks", "rank_columns"]

#: prior draws made per case and seed; simulation i uses draw i whatever the number run
POOL = 1000

_HN1 = blm.Prior("HalfNormal", sigma=1.0)
_BETA = blm.Prior("Normal", mu=0.0, sigma=1.0)
_SIGMA = blm.Prior("Exponential", lam=1.0)


@dataclass(frozen=True)
class Case:
    """One SBC design: a formula on fixed covariates, fixed priors, where to fit it.

    ``sampler`` names a sampler per parameterization where the default is not used.
    """

    name: str
    formula: str
    #: the covariates, and a placeholder response (not constant: LMM checks it)
    data: pd.DataFrame = field(repr=False)
    priors: dict = field(repr=False)
    parameterizations: tuple[str, ...] = ("marginal", "conditional")
    residual: Any = None
    random_matrices: dict | None = field(default=None, repr=False)
    sampler: dict = field(default_factory=dict)

    def model(self, y: np.ndarray | None = None) -> blm.LMM:
        """The model on the case's covariates, with response ``y`` (else the placeholder)."""
        df = self.data if y is None else self.data.assign(y=np.asarray(y, dtype=float))
        extra = {"random_matrices": self.random_matrices} if self.random_matrices else {}
        return blm.LMM(self.formula, df, priors=self.priors, residual=self.residual, **extra)


def _slope_case() -> Case:
    rng = np.random.default_rng(11)
    g = np.repeat(np.arange(10), 4)
    df = pd.DataFrame({"y": rng.normal(size=40), "x": rng.normal(size=40),
                       "g": pd.Categorical([f"g{k}" for k in g])})
    return Case("slope", "y ~ x + (x | g)", df,
                {"beta": _BETA, "sigma": _SIGMA, "sd_g": _HN1, "eta_g": 2.0})


def _crossed_case() -> Case:
    rng = np.random.default_rng(12)
    a, b = np.meshgrid(np.arange(6), np.arange(5), indexing="ij")
    a, b = np.tile(a.ravel(), 2), np.tile(b.ravel(), 2)  # 6 × 5 cells, 2 rows each
    df = pd.DataFrame({"y": rng.normal(size=60), "x": rng.normal(size=60),
                       "a": pd.Categorical([f"a{k}" for k in a]),
                       "b": pd.Categorical([f"b{k}" for k in b])})
    return Case("crossed", "y ~ x + (1 | a) + (1 | b)", df,
                {"beta": _BETA, "sigma": _SIGMA, "sd_a": _HN1, "sd_b": _HN1})


def _ar1_case() -> Case:
    rng = np.random.default_rng(13)
    g = np.repeat(np.arange(8), 6)  # 8 series of 6 consecutive times (row order)
    df = pd.DataFrame({"y": rng.normal(size=48), "x": rng.normal(size=48),
                       "g": pd.Categorical([f"g{k}" for k in g])})
    # the marginal AR(1) model is compiled per dataset under nutpie (12-17 s a fit):
    # PyMC's NUTS samples the same model in 6 s
    return Case("ar1", "y ~ x + (1 | g)", df,
                {"beta": _BETA, "sigma": _SIGMA, "sd_g": _HN1,
                 "Phi": blm.Prior("Uniform", lower=-1.0, upper=1.0)},
                residual=blm.AR1(group="g"), sampler={"marginal": "pymc"})


def _genomic_case() -> Case:
    rng = np.random.default_rng(14)
    n, p = 40, 60
    W = rng.normal(size=(n, p))
    df = pd.DataFrame({"y": rng.normal(size=n), "x": rng.normal(size=n)})
    # sd of the genetic values sd_snps·sqrt(tr(WWᵀ)/n) ~ HalfNormal(1)
    c = float(np.sum(W**2) / n)
    return Case("genomic", "y ~ x", df,
                {"beta": _BETA, "sigma": _SIGMA,
                 "sd_snps": blm.Prior("HalfNormal", sigma=1.0 / np.sqrt(c))},
                parameterizations=("marginal",), random_matrices={"snps": W})


CASES: dict[str, Case] = {c.name: c for c in (_slope_case(), _crossed_case(), _ar1_case(),
                                              _genomic_case())}


def _flatten(ds, names: list[str]) -> dict[str, np.ndarray]:
    """Scalar parameters ``name[label]`` → array over (chain, draw).

    Correlations keep the strictly lower triangle; random effects ``b_<g>`` their
    first level only (each of its terms).
    """
    out = {}
    for name in names:
        da = ds[name]
        extra = [d for d in da.dims if d not in ("chain", "draw")]
        prefix = ""
        if name.startswith("b_"):
            prefix = f"{da[extra[0]].values[0]},"
            da = da.isel({extra[0]: 0})
            extra = extra[1:]
        if not extra:
            out[name] = da.values
            continue
        stacked = da.stack(_k=extra)
        for k in range(stacked.sizes["_k"]):
            key = stacked["_k"].values[k]
            key = key if isinstance(key, tuple) else (key,)
            if name.startswith("corr_"):
                i, j = (list(da[d].values).index(v) for d, v in zip(extra, key, strict=True))
                if i <= j:
                    continue
            label = prefix + ",".join(str(v) for v in key)
            out[f"{name}[{label}]"] = stacked.isel(_k=k).values
    return out


def _ranked_names(case: Case, ds) -> list[str]:
    """The variables ranked: β, σ, sds, correlations, residual parameters, h², the
    random effects of the first level."""
    keep = ["beta", "sigma", "Phi", "h2"]
    keep += [v for v in ds.data_vars if v.startswith(("sd_", "corr_", "b_"))]
    return [v for v in keep if v in ds.data_vars]


def prior_draws(case: Case, n: int, seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """``n`` draws of the ranked parameters from the priors, and the responses they imply.

    Returns ``({label: (n,) array}, (n, nobs) array)``.
    """
    idata = case.model().prior_predictive(n, random_seed=seed)
    prior = idata.prior
    flat = _flatten(prior, _ranked_names(case, prior))
    return ({k: v.reshape(-1) for k, v in flat.items()},
            idata.prior_predictive["y"].values.reshape(n, -1))


def _thin(a: np.ndarray, n_ranks: int) -> np.ndarray:
    """``n_ranks`` draws spread evenly over the chains (reduces autocorrelation)."""
    flat = a.reshape(-1)
    return flat[np.linspace(0, flat.size - 1, n_ranks).round().astype(int)]


def rank_columns(df: pd.DataFrame) -> list[str]:
    """The parameter columns of a table made by :func:`run`."""
    return [c for c in df.columns if c not in ("sim", "divergences", "min_ess", "seconds")]


def run(case: Case, parameterization: str, n_sims: int, *, draws: int, tune: int,
        chains: int = 2, n_ranks: int = 49, seed: int = 0, out: Path | None = None,
        progress: bool = False, fit_case: Case | None = None) -> pd.DataFrame:
    """SBC of one case and parameterization: one row per simulation, the rank of each
    parameter among ``n_ranks`` thinned draws, with the fit's divergences, smallest
    bulk ESS and seconds. With ``out`` (a CSV) each row is appended as it is made and a
    rerun resumes after the rows already there. ``fit_case`` (default ``case``) is the
    model fitted to the simulated responses: another one (other priors) shows what a
    wrong posterior looks like."""
    truth, ys = prior_draws(case, max(n_sims, POOL), seed)  # a rerun with more sims
    # extends the same sequence of prior draws
    done = pd.read_csv(out) if out is not None and out.exists() else None
    rows = done.to_dict("records") if done is not None else []
    fit_case = case if fit_case is None else fit_case
    sampler = fit_case.sampler.get(parameterization, "auto")
    for i in range(len(rows), n_sims):
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            post = fit_case.model(ys[i]).fit(draws=draws, tune=tune, chains=chains,
                                         random_seed=seed * 100_000 + i + 1, sampler=sampler,
                                         parameterization=parameterization, cores=1,
                                         progressbar=False, log_likelihood=False)
        ds = post.idata.posterior
        names = _ranked_names(case, ds)
        flat = _flatten(ds, names)
        row = {"sim": i}
        row.update({k: int(np.sum(_thin(flat[k], n_ranks) < truth[k][i])) for k in truth})
        row["divergences"] = int(post.idata.sample_stats["diverging"].sum())
        ess = az.ess(post.idata, var_names=[v for v in names if not v.startswith("b_")])
        row["min_ess"] = float(np.nanmin(ess.to_array().values))
        row["seconds"] = round(time.perf_counter() - start, 2)
        rows.append(row)
        if out is not None:
            pd.DataFrame([row]).to_csv(out, mode="a", header=not out.exists(),
                                       index=False)
        if progress:
            print(f"{case.name}/{parameterization} {i + 1}/{n_sims} "
                  f"{row['seconds']} s", flush=True)
    return pd.DataFrame(rows)


def uniformity(ranks: pd.DataFrame, n_ranks: int = 49, bins: int = 10,
               seed: int = 0) -> pd.DataFrame:
    """Per parameter: χ² of the ranks in ``bins`` equal bins against uniform, and
    Kolmogorov–Smirnov of the jittered ranks ``(r + U)/(n_ranks + 1)`` (exactly
    Uniform(0, 1) when the ranks are uniform), with their p-values.

    >>> rng = np.random.default_rng(0)
    >>> t = uniformity(pd.DataFrame({"a": rng.integers(0, 50, 400)}))
    >>> bool(t.loc["a", "p_chi2"] > 0.01), bool(t.loc["a", "p_ks"] > 0.01)
    (True, True)
    """
    if (n_ranks + 1) % bins:
        raise ValueError(f"{n_ranks + 1} rank values do not split into {bins} bins")
    rng = np.random.default_rng(seed)
    out = {}
    for col in rank_columns(ranks):
        r = ranks[col].to_numpy()
        counts = np.bincount(r * bins // (n_ranks + 1), minlength=bins)
        chi2, p_chi2 = st.chisquare(counts)
        u = (r + rng.uniform(size=r.size)) / (n_ranks + 1)
        ks = st.kstest(u, "uniform")
        out[col] = {"n": r.size, "chi2": chi2, "p_chi2": p_chi2, "ks": ks.statistic,
                    "p_ks": ks.pvalue}
    return pd.DataFrame(out).T


def plot_ranks(ranks: pd.DataFrame, title: str, path: Path, n_ranks: int = 49,
               ci_prob: float = 0.99) -> None:
    """ECDF-difference plots of each parameter's ranks against the discrete uniform, with
    ArviZ's simultaneous ``ci_prob`` band (Säilynoja et al. 2022), saved as PNG."""
    import matplotlib.pyplot as plt

    cols = rank_columns(ranks)
    ncol = min(4, len(cols))
    nrow = -(-len(cols) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.2 * ncol, 2.4 * nrow), squeeze=False,
                             sharey=True)
    uniform = st.randint(0, n_ranks + 1)
    for ax, col in zip(axes.ravel(), cols, strict=False):
        az.plot_ecdf(ranks[col].to_numpy(copy=True), cdf=uniform.cdf, difference=True,
                     confidence_bands=True, ci_prob=ci_prob,
                     eval_points=np.arange(n_ranks + 1), rvs=uniform.rvs, random_state=0,
                     ax=ax)
        ax.set_title(col, fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[len(cols):]:
        ax.set_axis_off()
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
