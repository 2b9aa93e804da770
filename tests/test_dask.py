"""Models of dask DataFrames (out of core) against the same models of the pandas
DataFrame: the design's levels and names, the cross-products, ML/REML estimates and
log-likelihoods, the inputs of NUTS (and, in the sampling tier, its draws) must be the
same, to 1e-10 (in fact bit for bit: every sum is exact, :mod:`bayeslmm.linalg.exact_sums`).

Designs: one factor, crossed factors, nested (an interaction of columns), stateful
transforms, missing values, categorical levels spread unevenly over the partitions and
a level present in one partition only. The dask scheduler is the synchronous one (the
cluster is not the point); one test runs on a 2-worker LocalCluster.
"""

from __future__ import annotations

import warnings

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest

import bayeslmm as blm
from bayeslmm.formula.design import build_design
from bayeslmm.linalg.crossprod import CrossProducts
from bayeslmm.linalg.moments import Moments
from bayeslmm.pymc.direct import DirectModel
from tests.posteriors import synthetic_posterior

RTOL = 1e-10


@pytest.fixture(autouse=True)
def synchronous():
    with dask.config.set(scheduler="synchronous"):
        yield


def _uneven() -> pd.DataFrame:
    """Sorted so that the partitions see the levels unevenly: level "d" of the
    categorical ``f`` (R order c, a, b, d) and group "g9" are in the last rows only."""
    rng = np.random.default_rng(7)
    n = 240
    f = np.where(np.arange(n) < 60, "c", rng.choice(["a", "b", "c"], n))
    f[-12:] = "d"
    g = np.array([f"g{k}" for k in rng.integers(0, 9, n)], dtype=object)
    g[-8:] = "g9"
    df = pd.DataFrame({
        "f": pd.Categorical(f, categories=["c", "a", "b", "d"]),
        "s": rng.choice(["zz", "aa", "mm"], n), "g": g, "x": rng.normal(size=n)})
    b = {lev: rng.normal() for lev in set(g)}
    df["y"] = (1 + df.x + (df.f == "d") * 2.0 + (df.s == "mm") * 0.5
               + df.g.map(b) + rng.normal(size=n))
    return df


def _missing() -> pd.DataFrame:
    df = blm.datasets.load("sleepstudy").copy()
    df.loc[[3, 50], "Reaction"] = np.nan
    df.loc[[7, 120, 121], "Days"] = np.nan
    df["Subject"] = df["Subject"].astype(object)
    df.loc[100, "Subject"] = None
    return df


CASES = {
    "one factor": (lambda: blm.datasets.load("sleepstudy"),
                   "Reaction ~ Days + (Days | Subject)", 4),
    "crossed": (lambda: blm.datasets.load("Penicillin"),
                "diameter ~ 1 + (1 | plate) + (1 | sample)", 5),
    "nested": (lambda: blm.datasets.load("Pastes"), "strength ~ 1 + (1 | batch/cask)", 3),
    "transforms": (lambda: blm.datasets.load("Orthodont"),
                   "distance ~ scale(age) * Sex + center(np.log(age)) + (1 | Subject)", 4),
    "missing": (_missing, "Reaction ~ Days + (Days || Subject)", 3),
    "uneven levels": (_uneven, "y ~ x + f + s + (1 | g)", 4),
}


def _pair(case: str):
    make, formula, nparts = CASES[case]
    df = make()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the rows dropped for missing values
        return (blm.LMM(formula, df),
                blm.LMM(formula, dd.from_pandas(df, npartitions=nparts, sort=False)))


def _close(a, b):
    np.testing.assert_allclose(np.asarray(b, float), np.asarray(a, float), rtol=RTOL,
                               atol=RTOL * max([1.0, *np.abs(np.asarray(a, float)).ravel()]))


@pytest.mark.parametrize("case", list(CASES))
def test_design_and_fits_equal_pandas(case):
    mem, ooc = _pair(case)
    assert not ooc.design.in_memory and mem.design.in_memory
    assert ooc.nobs == mem.nobs and ooc.fixef_names == mem.fixef_names
    assert [(t.group, t.levels, t.term_names, t.blocks) for t in ooc.design.terms] == \
        [(t.group, t.levels, t.term_names, t.blocks) for t in mem.design.terms]
    a, b = mem._cross_products, ooc._cross_products
    for name in ("A11", "C1xy", "Arr"):
        _close(getattr(a, name), getattr(b, name))
    _close(a.C1z.toarray(), b.C1z.toarray())
    for method in ("REML", "ML"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fa, fb = mem.fit_map(method), ooc.fit_map(method)
        _close(fa.fixef, fb.fixef)
        _close(fa.se, fb.se)
        _close(fa.theta, fb.theta)
        _close([fa.loglik, fa.sigma], [fb.loglik, fb.sigma])
        for g, r in fa.ranef.items():
            _close(r, fb.ranef[g])
        assert fb.ranef[next(iter(fa.ranef))].index.tolist() == \
            fa.ranef[next(iter(fa.ranef))].index.tolist()


@pytest.mark.parametrize("case", ["one factor", "crossed", "nested", "transforms",
                                  "uneven levels"])
def test_nuts_inputs_are_the_same(case):
    """What NUTS reads (priors, the precompiled model's arrays: for several factors the
    blocked engine's layout): bit for bit, so draws with the same seed are the same (the
    sampling tier checks the draws)."""
    from bayeslmm.pymc.parameterization import gradient_cost, nested

    mem, ooc = _pair(case)
    assert mem.priors == ooc.priors
    # the sampler's choices (nested designs: from Z₁ᵀZ₂'s pattern out of core)
    assert nested(ooc.design) == nested(mem.design) == (case == "nested")
    assert gradient_cost(ooc.design, None, "marginal") == \
        gradient_cost(mem.design, None, "marginal")
    da = DirectModel.of(mem.pymc_model, mem.design, mem._priors, mem._cross_products)
    db = DirectModel.of(ooc.pymc_model, ooc.design, ooc._priors, ooc._cross_products)
    assert da.spec[0] == db.spec[0] and da.constant == db.constant
    for x, y in zip(da.data, db.data, strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.slow
@pytest.mark.parametrize("case", ["one factor", "crossed", "uneven levels"])
def test_posterior_equal_pandas(case):
    mem, ooc = _pair(case)
    kw = dict(draws=200, tune=200, chains=2, random_seed=11, progressbar=False)
    pa, pb = mem.fit(**kw), ooc.fit(**kw)
    for v in pa.idata.posterior.data_vars:
        _close(pa.idata.posterior[v].values, pb.idata.posterior[v].values)


def test_chunks_add_up_to_all_rows():
    """Cross-products of chunks, added, are those of all rows (bit for bit), and both
    equal the dense products [Z X y]ᵀ[Z X y]."""
    d = build_design("y ~ service + (1 | s) + (1 | d) + (1 | dept:service)",
                     blm.datasets.load("InstEval").head(4000))
    whole = CrossProducts.from_design(d)
    cuts = [0, 1000, 1001, 2500, 4000]
    parts = []
    for a, b in zip(cuts[:-1], cuts[1:], strict=True):
        sub = d.__class__(**{**d.__dict__, "y": d.y[a:b], "X": d.X[a:b],
                             "terms": [t.__class__(**{**t.__dict__, "codes": t.codes[a:b],
                                                      "Z": t.Z[a:b]}) for t in d.terms]})
        parts.append(CrossProducts.from_design(sub))
    total = CrossProducts.total(parts)
    for name in ("A11", "C1xy", "Arr"):
        np.testing.assert_array_equal(getattr(total, name), getattr(whole, name))
    np.testing.assert_array_equal(total.C1z.toarray(), whole.C1z.toarray())
    arrays = whole.marginal_arrays()
    Z = np.hstack([np.eye(t.n_levels)[t.codes] * t.Z for t in
                   [d.terms[k] for k in whole.order]])
    xy = np.column_stack([d.X, d.y])
    np.testing.assert_allclose(arrays["zz"], Z.T @ Z, rtol=1e-13, atol=1e-9)
    np.testing.assert_allclose(arrays["z_xy"], Z.T @ xy, rtol=1e-13, atol=1e-9)
    np.testing.assert_allclose(arrays["xy_xy"], xy.T @ xy, rtol=1e-13)


def test_moments_of_chunks():
    x = np.random.default_rng(3).normal(1e4, 1.0, 1001)
    whole = Moments.of(x)
    parts = Moments.of(x[:10]) + Moments.of(x[10:600]) + Moments.of(x[600:])
    assert (parts.mean, parts.sd(), parts.sd(0)) == (whole.mean, whole.sd(), whole.sd(0))
    assert abs(whole.sd() - np.std(x, ddof=1)) < 1e-12 and not whole.two_valued
    assert (Moments.of(np.array([0.0, 1.0])) + Moments.of(np.array([1.0]))).two_valued


def test_predictions_are_lazy_and_equal():
    mem, ooc = _pair("uneven levels")
    df = _uneven()
    new = dd.from_pandas(df.iloc[::7], npartitions=2)
    fa, fb = mem.fit_map(), ooc.fit_map()
    lazy = fb.predict(new, se_fit=True)
    assert type(lazy).__module__.startswith("dask")
    _close(fa.predict(df.iloc[::7], se_fit=True), lazy.compute())
    assert fb.out_of_core and not fa.out_of_core
    _close(fa.residuals, fb.residuals.compute())
    _close(fa.predict(), fb.predict().compute())


def test_posterior_predictions_lazy():
    mem, ooc = _pair("one factor")
    pa = synthetic_posterior(mem, draws=20, chains=2, seed=1)
    pb = synthetic_posterior(ooc, draws=20, chains=2, seed=1)
    new = blm.datasets.load("sleepstudy").iloc[::9]
    lazy = pb.predict(dd.from_pandas(new, npartitions=3), new_levels="population")
    assert type(lazy.data).__module__.startswith("dask")
    _close(pa.predict(new, new_levels="population").values, lazy.values)
    assert pb.posterior_predictive(random_seed=1).posterior_predictive["y"].shape == (2, 20, 180)


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_varident_out_of_core(method):
    """VarIdent from the cross-products of each level: the criterion is the rows' one
    (1e-10) and the fit the pandas fit's (whose ratio is nlme's 0.4541, REML) to the
    search's tolerance; NUTS's log-density and gradient equal. Orthodont's rows are
    sorted by Sex: the level Female is in the last partitions only."""
    from bayeslmm.mle.lme import ResidualCriterion
    from bayeslmm.mle.strata_fit import StrataCriterion

    df = blm.datasets.load("Orthodont")
    f, res = "distance ~ age + Sex + (1 | Subject)", blm.VarIdent(by="Sex")
    mem, ooc = blm.LMM(f, df, residual=res), blm.LMM(f, dd.from_pandas(df, npartitions=3),
                                                    residual=res)
    assert ooc.residual.by_levels == mem.residual.by_levels == ["Male", "Female"]
    a = ResidualCriterion(mem.design, mem.residual, method == "REML")
    b = StrataCriterion(ooc.design, ooc.residual, method == "REML")
    for x in ([0.5, 0.0], [1.3, -0.8], [0.2, 0.6]):
        _close(a.value(np.array(x)), b.value(np.array(x)))
    fa, fb = mem.fit_map(method), ooc.fit_map(method)
    _close(fa.loglik, fb.loglik)
    np.testing.assert_allclose(fb.fixef, fa.fixef, rtol=1e-6)
    np.testing.assert_allclose(fb.se, fa.se, rtol=1e-6)
    np.testing.assert_allclose([fb.sigma, fb.residual_params["Female"]],
                               [fa.sigma, fa.residual_params["Female"]], rtol=1e-6)
    np.testing.assert_allclose(fb.scaled_residuals.compute(), fa.scaled_residuals,
                               rtol=1e-6, atol=1e-7)
    # NUTS reads the same statistics (issue 20's, one per level): bit for bit
    x = np.random.default_rng(1).normal(0, 0.3, 6)
    da = DirectModel.of(mem.marginal_model, mem.design, mem._priors, None,
                        residual=mem.residual)
    db = DirectModel.of(ooc.marginal_model, ooc.design, ooc._priors, None,
                        residual=ooc.residual)
    (la, ga), (lb, gb) = da.logp_grad(x), db.logp_grad(x)
    _close([la, *ga], [lb, *gb])


@pytest.mark.slow
def test_varident_posterior_out_of_core():
    df = blm.datasets.load("Orthodont")
    f, res = "distance ~ age + Sex + (1 | Subject)", blm.VarIdent(by="Sex")
    kw = dict(draws=200, tune=200, chains=2, random_seed=3, progressbar=False)
    pa = blm.LMM(f, df, residual=res).fit(**kw)
    pb = blm.LMM(f, dd.from_pandas(df, npartitions=3), residual=res).fit(**kw)
    for v in pa.idata.posterior.data_vars:
        _close(pa.idata.posterior[v].values, pb.idata.posterior[v].values)


@pytest.mark.parametrize("structure, alternative", [
    (blm.CorSymm(group="Subject"), r"VarIdent\(by=<a factor>\), AR1, CAR1 with integer"),
    (blm.VarPower("age"), r"VarIdent\(by=<the covariate in bins>\)"),
    (blm.Residual(variance=blm.VarExp("age"), correlation=blm.AR1(group="Subject")),
     r"VarIdent\(by=<the covariate in bins>\)"),
])
def test_residual_structures_refused_out_of_core(structure, alternative):
    ddf = dd.from_pandas(blm.datasets.load("Orthodont"), npartitions=2)
    with pytest.raises(blm.BayesLMMError, match=f"out of core. Instead: {alternative}"):
        blm.LMM("distance ~ age + (1 | Subject)", ddf, residual=structure)


def test_out_of_core_refusals():
    ddf = dd.from_pandas(blm.datasets.load("Orthodont"), npartitions=2)
    with pytest.raises(blm.FormulaError, match=r"bs\(age, df=4\) needs every row"):
        blm.LMM("distance ~ bs(age, df=4) + (1 | Subject)", ddf)
    with pytest.raises(blm.DataError, match="not numeric"):
        blm.LMM("Sex ~ age + (1 | Subject)", ddf)
    with pytest.raises(blm.DataError, match="Unknown column 'agee'"):
        blm.LMM("distance ~ agee + (1 | Subject)", ddf)
    m = blm.LMM("distance ~ age + (1 | Subject)", ddf)
    with pytest.raises(blm.BayesLMMError, match="only the marginal model"):
        m.fit(parameterization="conditional")
    with pytest.raises(blm.BayesLMMError, match="pointwise log-likelihood"):
        m.fit(log_likelihood=True)
    with pytest.raises(blm.DataError, match="not in memory"):
        _ = m.design.X
    with pytest.raises(blm.DataError, match="not in memory"):
        m.fit_map().r2_nakagawa()
    empty = dd.from_pandas(blm.datasets.load("Orthodont").assign(distance=np.nan),
                           npartitions=2)
    with pytest.raises(blm.DataError, match="No rows left"):
        blm.LMM("distance ~ age + (1 | Subject)", empty)


def test_pointwise_loo_refused():
    post = synthetic_posterior(_pair("one factor")[1], draws=10, chains=2, seed=1)
    with pytest.raises(blm.BayesLMMError, match="rows × draws.*sample of the rows"):
        post.log_likelihood()
    with pytest.raises(blm.BayesLMMError, match="out of core"):
        blm.compare({"a": post, "b": post})


def _many_frame() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    batch = np.repeat(np.arange(12), 10)
    df = pd.DataFrame({"batch": batch, "x": rng.normal(size=120)})
    for k in range(5):
        df[f"y{k}"] = 1 + k * df.x + rng.normal(size=12)[batch] + rng.normal(size=120)
    df.loc[[3, 40], "y2"] = np.nan
    df["y4"] = np.nan  # fails: every response value missing
    df["site"] = np.where(np.arange(120) % 3 == 0, "a", "b")
    return df


def test_fit_many_reports_failures_and_matches_single_fits(monkeypatch):
    import bayeslmm.many as many

    built = []
    monkeypatch.setattr(many, "build_design",
                        lambda spec, frame, **kw: built.append(spec.response)
                        or build_design(spec, frame, **kw))
    df = _many_frame()
    res = blm.fit_many("~ x + (1 | batch)", df, responses=[f"y{k}" for k in range(5)],
                       scheduler="synchronous")
    # one shared design; y2 (two rows missing) and y4 (all missing) get their own
    assert len(built) == 3 and sorted(built[1:]) == ["y2", "y4"]  # tasks in any order
    assert res.index.tolist() == ["y0", "y1", "y2", "y3", "y4"]
    assert res["error"].isna().tolist() == [True, True, True, True, False]
    assert res.loc["y4", "error"].startswith("DataError: No rows left")
    for k in range(4):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # y2's two rows dropped
            fit = blm.LMM(f"y{k} ~ x + (1 | batch)", df).fit_map()
        row = res.loc[f"y{k}"]
        _close([row["beta[x]"], row["se:beta[x]"], row["loglik"],
                row["sd_batch[Intercept]"], row["sigma"]],
               [fit.fixef["x"], fit.se["x"], fit.loglik,
                fit.varcorr.sdcor.iloc[0], fit.sigma])
    assert res.loc["y2", "nobs"] == 118
    by = blm.fit_many("y1 ~ x + (1 | batch)", df, by="site", method="ML",
                      scheduler="synchronous")
    fit = blm.LMM("y1 ~ x + (1 | batch)", df[df.site == "b"]).fit_map("ML")
    _close(by.loc["b", "loglik"], fit.loglik)


@pytest.mark.slow
def test_fit_many_nuts_is_each_models_own_fit():
    """nuts=True: model i samples with stream i of random_seed; its row is the posterior
    summary of that very fit; the failing model keeps its row."""
    df = _many_frame()
    kw = dict(draws=100, tune=100, chains=2)
    res = blm.fit_many("~ x + (1 | batch)", df, responses=["y1", "y4"], nuts=True,
                       random_seed=3, scheduler="synchronous", **kw)
    seed = int(np.random.SeedSequence(3).spawn(2)[0].generate_state(1)[0])
    post = blm.LMM("y1 ~ x + (1 | batch)", df).fit(random_seed=seed, progressbar=False, **kw)
    summ = post.summary()
    _close(res.loc["y1", summ.index].to_numpy(float), summ["mean"].to_numpy(float))
    assert res.loc["y4", "error"].startswith("DataError")


@pytest.mark.parametrize("processes", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_on_a_local_cluster(processes):
    """Workers in this process (fast), or in their own (the tasks pickled: sampling tier)."""
    distributed = pytest.importorskip("distributed")
    df = _many_frame()
    with dask.config.set(scheduler=None), distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=processes,
            dashboard_address=None) as lc, \
            distributed.Client(lc) as client:
        res = blm.fit_many("~ x + (1 | batch)", df, responses=["y0", "y1", "y4"],
                           client=client)
        assert res["error"].isna().tolist() == [True, True, False]
        fit = blm.LMM("y1 ~ x + (1 | batch)", df).fit_map()
        _close(res.loc["y1", "loglik"], fit.loglik)
        ooc = blm.LMM("Reaction ~ Days + (Days | Subject)",
                      dd.from_pandas(blm.datasets.load("sleepstudy"), npartitions=4))
        mem = blm.LMM("Reaction ~ Days + (Days | Subject)", blm.datasets.load("sleepstudy"))
        _close(mem.fit_map().fixef, ooc.fit_map().fixef)


def test_grm_streamed_in_blocks(tmp_path):
    import dask.array as da

    X = np.random.default_rng(2).integers(0, 3, size=(40, 1000)).astype(np.int8)
    np.save(tmp_path / "g.npy", X)
    mm = np.load(tmp_path / "g.npy", mmap_mode="r")
    dense = X.astype(float) @ X.T.astype(float) / 1000
    np.testing.assert_allclose(blm.dask.grm(da.from_array(mm, chunks=(40, 128))), dense,
                               rtol=1e-6)
    np.testing.assert_allclose(blm.dask.grm(mm, block=300, dtype=np.float64), dense,
                               rtol=1e-14)
    Z = (X - X.mean(0)) / X.std(0)
    np.testing.assert_allclose(blm.dask.grm(mm, standardize=True, dtype=np.float64),
                               Z @ Z.T / 1000, rtol=1e-12, atol=1e-12)
    bad = X.astype(float)
    bad[3, 5] = np.nan
    with pytest.raises(blm.DataError, match="impute"):
        blm.dask.grm(bad)
