"""AR1, CAR1 (integer gaps) and CompSymm, alone or with VarIdent, on dask DataFrames
(out of core) against the same models of the pandas DataFrame: ML/REML estimates,
log-likelihoods and NUTS's log-density and gradient to 1e-10 (in fact bit for bit),
the posterior with the same seed in the sampling tier.

The data (:func:`_series`): 40 series of 2–11 rows at integer times with gaps 1–3, in
uneven partitions (1 to 61 rows) whose boundaries split series, one partition holding
a whole series only, one left empty by missing values, rows shuffled within each
partition (allowed: each partition is sorted as in memory), missing values in the
response, a covariate and the time column; VarIdent strata constant within a series
(``sex``) or changing within it (``half``).
"""

from __future__ import annotations

import warnings

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest

import bayeslmm as blm
from bayeslmm.pymc.direct import DirectModel
from bayeslmm.residual.bind import bind
from bayeslmm.residual.sufficient import residual_stats

RTOL = 1e-10
#: partition sizes: series split at most boundaries; the partition of 4 rows holds the
#: whole series s05 (rows 29–32), the one of 3 rows only rows with missing values
SIZES = (13, 10, 6, 4, 1, 3, 61, 7, 40, 117)
FORMULA = "y ~ x + sex + (1 | subject)"


@pytest.fixture(autouse=True)
def synchronous():
    with dask.config.set(scheduler="synchronous"):
        yield


def _series() -> pd.DataFrame:
    rng = np.random.default_rng(20)
    rows = []
    for s in range(40):
        n = 4 if s == 5 else int(rng.integers(2, 12))
        t = np.cumsum(rng.integers(1, 4, n)) - 1
        e = np.zeros(n)
        for k in range(n):
            e[k] = (0.6 ** (t[k] - t[k - 1]) * e[k - 1] if k else 0) + rng.normal()
        sex = "F" if s % 3 == 0 else "M"
        b = rng.normal(0, 0.8)
        for k in range(n):
            x = rng.normal()
            rows.append((f"s{s:02d}", sex, float(t[k]), x,
                         1 + 0.5 * x + (sex == "F") * 0.7 + b + e[k] * (1.6 if sex == "F"
                                                                       else 1.0)))
    df = pd.DataFrame(rows, columns=["subject", "sex", "day", "x", "y"])
    df["half"] = np.where(df.day % 2 == 0, "even", "odd")  # strata within each series
    df.loc[[5, 60, 61, 200], "y"] = np.nan
    df.loc[[90], "x"] = np.nan
    df.loc[[130], "day"] = np.nan
    df.loc[34:36, "y"] = np.nan   # the partition of 3 rows: nothing left
    assert len(df) == sum(SIZES) and (df.subject.iloc[29:33] == "s05").all()
    return df


def _pieces(df: pd.DataFrame) -> list[pd.DataFrame]:
    """Uneven partitions, rows shuffled within each."""
    rng = np.random.default_rng(3)
    ends = np.cumsum((0,) + SIZES)
    return [df.iloc[a:b].iloc[rng.permutation(b - a)]
            for a, b in zip(ends, ends[1:], strict=False)]


def _chunks(pieces: list[pd.DataFrame]):
    return dd.concat([dd.from_pandas(p, npartitions=1, sort=False) for p in pieces])


STRUCTURES = {
    "AR1": blm.AR1(group="subject"),
    "AR1 time": blm.AR1(time="day", group="subject"),
    "CAR1": blm.CAR1(time="day", group="subject"),
    "CompSymm": blm.CompSymm(group="subject"),
    "VarIdent AR1": blm.Residual(variance=blm.VarIdent(by="sex"),
                                 correlation=blm.CAR1(time="day", group="subject")),
    "VarIdent CompSymm": blm.Residual(variance=blm.VarIdent(by="sex"),
                                      correlation=blm.CompSymm(group="subject")),
    # strata that change within a series: products of two strata's rows (and sums)
    "VarIdent within AR1": blm.Residual(variance=blm.VarIdent(by="half"),
                                        correlation=blm.CAR1(time="day", group="subject")),
    "VarIdent within CompSymm": blm.Residual(variance=blm.VarIdent(by="half"),
                                             correlation=blm.CompSymm(group="subject")),
}


def _pair(name: str, formula: str = FORMULA):
    pieces = _pieces(_series())   # in memory: the same rows in the same order
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the rows dropped for missing values
        return (blm.LMM(formula, pd.concat(pieces), residual=STRUCTURES[name]),
                blm.LMM(formula, _chunks(pieces), residual=STRUCTURES[name]))


def _close(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    np.testing.assert_allclose(b, a, rtol=RTOL, atol=RTOL * max([1.0, *np.abs(a).ravel()]))


def test_partitions_split_series():
    ddf = _chunks(_pieces(_series()))
    parts = [p.compute() for p in ddf.to_delayed()]
    assert [len(p) for p in parts] == list(SIZES)
    assert set(parts[3].subject) == {"s05"} and parts[5].y.isna().all()
    split = [len(set(a.subject) & set(b.subject)) for a, b in zip(parts, parts[1:], strict=False)]
    assert sum(split) >= 5


@pytest.mark.parametrize("name", list(STRUCTURES))
def test_statistics_equal_pandas(name):
    """The statistics summed over the partitions, series joined across them, are those
    of all rows (the same keys, the same cross-products)."""
    mem, ooc = _pair(name)
    a, b = residual_stats(mem.design, bind(mem.residual.structure, mem.design)), \
        ooc.design.series
    assert a.keys == b.keys and a.n == b.n == mem.nobs == ooc.nobs
    _close(a.values, b.values)
    _close(a.counts, b.counts)
    _close(a.strata_rows, b.strata_rows)
    for pa, pb in zip(a.parts, b.parts, strict=True):
        for k in ("A11", "C1xy", "Arr"):
            _close(getattr(pa, k), getattr(pb, k))
        _close(pa.C1z.toarray(), pb.C1z.toarray())
    assert ooc.residual.max_group_size == mem.residual.max_group_size
    assert ooc.residual.by_levels == mem.residual.by_levels


@pytest.mark.parametrize("name", list(STRUCTURES))
def test_fits_equal_pandas(name):
    mem, ooc = _pair(name)
    for method in ("REML", "ML"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # CompSymm's REML fits: sd(subject) at 0
            fa, fb = mem.fit_map(method), ooc.fit_map(method)
        assert fa.singular == fb.singular
        _close([fa.loglik, fa.sigma, *fa.theta], [fb.loglik, fb.sigma, *fb.theta])
        _close(fa.fixef, fb.fixef)
        _close(fa.se, fb.se)
        assert list(fa.residual_params) == list(fb.residual_params)
        _close(list(fa.residual_params.values()), list(fb.residual_params.values()))
        _close(fa.ranef["subject"], fb.ranef["subject"])
    # values per row stay lazy, in the data's order of the partitions
    scaled = fb.scaled_residuals.compute()
    _close(fa.scaled_residuals.loc[scaled.index], scaled)


@pytest.mark.parametrize("name", ["AR1", "CAR1", "CompSymm", "VarIdent AR1"])
def test_nuts_inputs_equal_pandas(name):
    """The precompiled marginal model's log-density and gradient: the same numbers."""
    mem, ooc = _pair(name)
    assert mem.priors == ooc.priors
    da = DirectModel.of(mem.marginal_model, mem.design, mem._priors, None,
                        residual=mem.residual)
    db = DirectModel.of(ooc.marginal_model, ooc.design, ooc._priors, None,
                        residual=ooc.residual)
    size = sum(v.size for v in mem.marginal_model.initial_point().values())
    for seed in (1, 2):
        x = np.random.default_rng(seed).normal(0, 0.3, size)
        (la, ga), (lb, gb) = da.logp_grad(x), db.logp_grad(x)
        _close([la, *ga], [lb, *gb])


def test_no_random_effects_and_orthodont():
    """gls (no random effects) on a split series, and nlme's Orthodont AR1 fit
    (ML loglik −217.395, Phi 0.0438) on 5 even partitions."""
    mem, ooc = _pair("AR1", "y ~ x + sex")
    _close(mem.fit_map("ML").loglik, ooc.fit_map("ML").loglik)
    df = blm.datasets.load("Orthodont")
    fit = blm.LMM("distance ~ age + Sex + (1 | Subject)", dd.from_pandas(df, npartitions=5),
                  residual=blm.AR1(group="Subject")).fit_map("ML")
    assert round(fit.loglik, 3) == -217.395 and round(fit.residual_params["Phi"], 4) == 0.0438


@pytest.mark.slow
@pytest.mark.parametrize("name", ["AR1", "CompSymm"])
def test_posterior_equal_pandas(name):
    mem, ooc = _pair(name)
    kw = dict(draws=200, tune=200, chains=2, random_seed=5, progressbar=False)
    pa, pb = mem.fit(**kw), ooc.fit(**kw)
    for v in pa.idata.posterior.data_vars:
        _close(pa.idata.posterior[v].values, pb.idata.posterior[v].values)


def test_time_order_over_partitions():
    """A series whose times go back across partitions, or repeat, cannot be joined:
    a DataError naming the column and saying how to order the rows."""
    df = _series().dropna()
    first = df[df.subject == "s00"]
    swapped = pd.concat([first.iloc[2:], first.iloc[:2], df[df.subject != "s00"]])
    ddf = dd.concat([dd.from_pandas(swapped.iloc[:3], npartitions=1),
                     dd.from_pandas(swapped.iloc[3:], npartitions=1)])
    with pytest.raises(blm.DataError, match=r"Column 'day' of CAR1.*'s00'.*time order over "
                                            r"the partitions.*sort_values\('day'\)"):
        blm.LMM(FORMULA, ddf, residual=STRUCTURES["CAR1"])
    twice = pd.concat([first.iloc[:2], first.iloc[1:]])
    ddf = dd.concat([dd.from_pandas(twice.iloc[:2], npartitions=1),
                     dd.from_pandas(twice.iloc[2:], npartitions=1)])
    with pytest.raises(blm.DataError, match=r"'s00' has time 1 twice"):
        blm.LMM("y ~ x", ddf, residual=STRUCTURES["CAR1"])
    # without a time column the order is the data's: any split works (as in memory)
    blm.LMM(FORMULA, dd.from_pandas(swapped, npartitions=3), residual=STRUCTURES["AR1"])


def test_row_bound_structures_refused():
    df = _series().dropna()
    ddf = dd.from_pandas(df, npartitions=3)
    jitter = np.random.default_rng(1).uniform(0, 0.5, len(df))  # continuous times
    rough = dd.from_pandas(df.assign(day=df.day + jitter), npartitions=3)
    with pytest.raises(blm.BayesLMMError, match=r"gaps between consecutive times of CAR1.*"
                                                r"distinct values.*Round the times"):
        blm.LMM(FORMULA, rough, residual=blm.CAR1(time="day", group="subject"))
    for structure in (blm.VarPower("x"), blm.CorSymm(group="subject"),
                      blm.CorExp(coords=("day",), group="subject")):
        with pytest.raises(blm.BayesLMMError, match=r"out of core. Instead: VarIdent\("):
            blm.LMM(FORMULA, ddf, residual=structure)
    crossing = dd.from_pandas(df.assign(g=np.arange(len(df)) % 2), npartitions=3)
    with pytest.raises(blm.FitError, match="not nested within the levels"):
        blm.LMM("y ~ x + (1 | subject)", crossing, residual=blm.AR1(group="g"))


@pytest.mark.parametrize("processes", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_on_a_local_cluster(processes):
    """The 2-worker cluster: workers in this process, or in their own (the partitions'
    parts pickled: sampling tier)."""
    distributed = pytest.importorskip("distributed")
    mem, _ = _pair("CAR1")
    with dask.config.set(scheduler=None), distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=processes,
            dashboard_address=None) as lc, distributed.Client(lc):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ooc = blm.LMM(FORMULA, _chunks(_pieces(_series())), residual=STRUCTURES["CAR1"])
        fa, fb = mem.fit_map(), ooc.fit_map()
    _close([fa.loglik, *fa.fixef, fa.residual_params["Phi"]],
           [fb.loglik, *fb.fixef, fb.residual_params["Phi"]])
