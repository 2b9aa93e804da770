"""NUTS on the marginal model: exact random-effect draws, and the same posterior as
the conditional model."""

import numpy as np
import pytest
import xarray as xr

import bayeslmm as blm
from bayeslmm.formula.design import build_design
from bayeslmm.linalg.crossprod import CrossProducts
from bayeslmm.pymc.parameterization import choose_parameterization
from bayeslmm.sampling.ranef_draws import draw_random_effects
from tests.oracle import dense_psi, dense_z

KW = dict(draws=500, tune=500, chains=2, random_seed=3, progressbar=False, cores=1)


def _one_draw_posterior(design, beta, sigma, sds, corrs, copies):
    """A fake posterior: the same parameter values repeated ``copies`` times."""
    data = {"beta": (("chain", "draw", "fixef"), np.tile(beta, (1, copies, 1))),
            "sigma": (("chain", "draw"), np.full((1, copies), sigma))}
    for t, sd, corr in zip(design.terms, sds, corrs, strict=True):
        data[f"sd_{t.group}"] = (("chain", "draw", f"{t.group}_term"),
                                 np.tile(sd, (1, copies, 1)))
        if corr is not None:
            data[f"corr_{t.group}"] = (("chain", "draw", f"{t.group}_term", "bis"),
                                       np.tile(corr, (1, copies, 1, 1)))
    return xr.Dataset(data, coords={"chain": [0], "draw": np.arange(copies)})


@pytest.mark.parametrize("ds, formula, sds, corrs", [
    ("sleepstudy", "Reaction ~ Days + (Days | Subject)", [np.array([24.0, 6.0])],
     [np.array([[1.0, 0.3], [0.3, 1.0]])]),
    ("Penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)",
     [np.array([0.8]), np.array([1.9])], [None, None]),
])
def test_random_effect_draws_match_dense_conditional(ds, formula, sds, corrs):
    d = build_design(formula, blm.datasets.load(ds))
    beta = np.linalg.lstsq(d.X, d.y, rcond=None)[0]
    sigma = 2.0 if ds == "Penicillin" else 25.0
    copies = 20000
    post = _one_draw_posterior(d, beta, sigma, sds, corrs, copies)
    draws = draw_random_effects(d, CrossProducts.from_design(d), post, random_seed=1)
    flat = np.concatenate([draws[f"b_{t.group}"].values[0].reshape(copies, -1)
                           for t in d.terms], axis=1)
    covs = [np.outer(sd, sd) * (c if c is not None else 1.0) for sd, c in zip(sds, corrs,
                                                                              strict=True)]
    Psi, Z = dense_psi(d.terms, covs), dense_z(d.terms)
    V = Z @ Psi @ Z.T + sigma**2 * np.eye(d.nobs)
    mean = Psi @ Z.T @ np.linalg.solve(V, d.y - d.X @ beta)
    cov = Psi - Psi @ Z.T @ np.linalg.solve(V, Z @ Psi)
    sd = np.sqrt(np.diag(cov))
    assert np.max(np.abs(flat.mean(0) - mean) / sd) < 5 / np.sqrt(copies) * 4
    np.testing.assert_allclose(np.cov(flat.T), cov, atol=0.05 * sd.max() ** 2)


def _agree(a, b, names):
    sa, sb = a.summary(), b.summary()
    for n in names:
        se = np.hypot(sa.loc[n, "mcse_mean"], sb.loc[n, "mcse_mean"])
        assert abs(sa.loc[n, "mean"] - sb.loc[n, "mean"]) < 4 * se + 0.02 * sa.loc[n, "sd"], n


@pytest.mark.slow
@pytest.mark.parametrize("ds, formula", [
    ("sleepstudy", "Reaction ~ Days + (Days | Subject)"),
    pytest.param("Pastes", "strength ~ 1 + (1 | batch/cask)", marks=pytest.mark.slow),
    pytest.param("Penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)",
                 marks=pytest.mark.slow),
])
def test_marginal_and_conditional_agree(ds, formula):
    m = blm.LMM(formula, blm.datasets.load(ds))
    mar = m.fit(parameterization="marginal", **KW)
    con = m.fit(parameterization="conditional", target_accept=0.95, **KW)
    assert mar.info["parameterization"] == "marginal" and mar.divergences == 0
    names = [i for i in mar.summary().index]
    _agree(mar, con, names)
    for g in m.ngroups:
        bm, bc = mar.idata.posterior[f"b_{g}"], con.idata.posterior[f"b_{g}"]
        assert bm.dims == bc.dims and (bm[g].values == bc[g].values).all()
        diff = np.abs(bm.mean(("chain", "draw")) - bc.mean(("chain", "draw")))
        assert float((diff / bm.std(("chain", "draw"))).max()) < 0.25
    assert set(mar.idata.groups()) >= {"posterior", "sample_stats", "observed_data",
                                       "log_likelihood"}


@pytest.mark.slow
def test_simulated_truth_is_covered():
    rng = np.random.default_rng(7)
    g = np.repeat(np.arange(40), 15)
    x = rng.normal(size=g.size)
    L = np.array([[1.0, 0.0], [0.4, 0.5]])
    b = rng.standard_normal((40, 2)) @ L.T
    y = 2 + 0.7 * x + b[g, 0] + b[g, 1] * x + rng.normal(scale=0.8, size=g.size)
    import pandas as pd

    df = pd.DataFrame({"y": y, "x": x, "g": g})
    r = blm.LMM("y ~ x + (x | g)", df).fit(**KW)
    s = r.summary()
    truth = {"beta[Intercept]": 2, "beta[x]": 0.7, "sd_g[Intercept]": 1.0,
             "sd_g[x]": np.hypot(0.4, 0.5), "sigma": 0.8,
             "corr_g[Intercept, x]": 0.4 / np.hypot(0.4, 0.5)}
    for name, value in truth.items():
        assert s.loc[name, "hdi_3%"] < value < s.loc[name, "hdi_97%"], name
    assert r.info["parameterization"] == "marginal"  # "auto" picks the marginal model


@pytest.mark.parametrize("structure", [
    blm.AR1(group="Subject"),
    blm.CAR1(time="age", group="Subject"),
    blm.Residual(variance=blm.VarIdent(by="Sex"), correlation=blm.CompSymm(group="Subject")),
    blm.VarExp(covariate="age"),
    blm.VarPower(covariate="age"),
])
def test_marginal_with_residual_structure_equals_dense_normal(structure):
    from scipy import stats

    from tests.oracle import dense_lambda

    m = blm.LMM("distance ~ age + Sex + (age | Subject)", blm.datasets.load("Orthodont"),
                residual=structure)
    mm = m.marginal_model
    rng = np.random.default_rng(0)
    point = {k: v + 0.2 * rng.normal(size=np.shape(v)) for k, v in mm.initial_point().items()}
    names = ["beta", "sigma", "sd_Subject", "corr_Subject"] + m.residual.param_names
    outs = mm.replace_rvs_by_values([mm[n] for n in names] + [mm["marginal_loglik"]])
    vals = dict(zip(names + ["ll"], mm.compile_fn(outs, inputs=mm.value_vars,
                                                  on_unused_input="ignore")(point),
                    strict=True))
    d, rd = m.design, m.residual
    lam = dense_lambda(rd, {k: vals[k] for k in rd.param_names})
    psi = np.outer(vals["sd_Subject"], vals["sd_Subject"]) * vals["corr_Subject"]
    Z = dense_z(d.terms)
    V = Z @ dense_psi(d.terms, [psi]) @ Z.T + vals["sigma"] ** 2 * lam
    want = stats.multivariate_normal(d.X @ vals["beta"], V).logpdf(d.y)
    assert abs(float(vals["ll"]) - want) < 1e-8
    assert choose_parameterization(m.design, m.residual, "auto") == "marginal"
    assert m.pymc_model is m.build("marginal")


def test_marginal_refuses_fitted_variance_and_auto_falls_back():
    m = blm.LMM("distance ~ age + Sex + (1 | Subject)", blm.datasets.load("Orthodont"),
                residual=blm.VarPower())
    assert choose_parameterization(m.design, m.residual, "auto") == "conditional"
    assert m.pymc_model is m.build("conditional")
    with pytest.raises(blm.BayesLMMError, match="fitted values depends on the random effects"):
        m.fit(parameterization="marginal")


@pytest.mark.slow
@pytest.mark.skipif(not __import__("importlib").util.find_spec("nutpie"),
                    reason="nutpie not installed")
def test_second_fit_of_same_shape_compiles_nothing_and_uses_new_data(sleepstudy):
    """The marginal model runs nutpie on the precompiled direct kernels: no model is
    compiled for a fit, the first or the next, and each fit sees its own data."""
    from bayeslmm.sampling.compiled import COMPILED

    COMPILED.clear()
    kw = dict(draws=100, tune=200, chains=2, random_seed=1, progressbar=False,
              sampler="nutpie", parameterization="marginal")
    first = blm.LMM("Reaction ~ Days + (Days | Subject)", sleepstudy).fit(**kw)
    shifted = sleepstudy.assign(Reaction=sleepstudy["Reaction"] + 1000.0)
    second = blm.LMM("Reaction ~ Days + (Days | Subject)", shifted).fit(**kw)
    for fit in (first, second):
        assert fit.idata.posterior.attrs["nutpie_backend"] == "direct"
    assert len(COMPILED) == 0
    diff = second.fixef["Intercept"] - first.fixef["Intercept"]
    assert 980 < diff < 1020


def test_random_effect_draws_with_residual_structure_match_dense_conditional():
    from tests.oracle import dense_lambda

    structure = blm.Residual(variance=blm.VarIdent(by="Sex"),
                             correlation=blm.AR1(group="Subject"))
    m = blm.LMM("distance ~ age + Sex + (age | Subject)", blm.datasets.load("Orthodont"),
                residual=structure)
    d, rd = m.design, m.residual
    beta = np.linalg.lstsq(d.X, d.y, rcond=None)[0]
    sd, corr, sigma, copies = np.array([2.0, 0.2]), np.array([[1, -0.5], [-0.5, 1]]), 1.5, 4000
    post = _one_draw_posterior(d, beta, sigma, [sd], [corr], copies)
    post["Phi"] = (("chain", "draw"), np.full((1, copies), 0.4))
    post["varident_ratio"] = (("chain", "draw", "lev"), np.full((1, copies, 1), 0.5))
    draws = draw_random_effects(d, CrossProducts.from_design(d), post, random_seed=2,
                                residual=rd)
    flat = draws["b_Subject"].values[0].reshape(copies, -1)
    lam = dense_lambda(rd, {"Phi": 0.4, "varident_ratio": np.array([0.5])})
    Psi, Z = dense_psi(d.terms, [np.outer(sd, sd) * corr]), dense_z(d.terms)
    V = Z @ Psi @ Z.T + sigma**2 * lam
    mean = Psi @ Z.T @ np.linalg.solve(V, d.y - d.X @ beta)
    cov = Psi - Psi @ Z.T @ np.linalg.solve(V, Z @ Psi)
    se = np.sqrt(np.diag(cov) / copies)
    assert np.max(np.abs(flat.mean(0) - mean) / se) < 4.5
    np.testing.assert_allclose(np.cov(flat.T), cov, atol=0.08 * np.diag(cov).max())
