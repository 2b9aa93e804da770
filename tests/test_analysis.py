"""What a user does after the fit: conditional effects, R², leave-one-group-out terms,
prior sensitivity, the new plots and the model graph (numerical tier: synthetic
posteriors from tests/posteriors.py, ML/REML fits, R's reference values in models/)."""

from __future__ import annotations

import tomllib

import matplotlib
import numpy as np
import pandas as pd
import pytest
import scipy.stats as st

import bayeslmm as blm
from bayeslmm.pymc.prior_draws import log_prior
from bayeslmm.results.group_loglik import group_loglik
from bayeslmm.results.predict import psi_factor
from tests.conftest import ROOT
from tests.oracle import dense_psi, dense_z, marginal_loglik
from tests.posteriors import synthetic_posterior

matplotlib.use("Agg")
R2_REF = tomllib.loads((ROOT / "models" / "r2" / "r2_nakagawa.toml").read_text())


@pytest.fixture(scope="module")
def sleep_model(sleepstudy):
    return blm.LMM("Reaction ~ Days + (Days | Subject)", sleepstudy)


@pytest.fixture(scope="module")
def sleep_post(sleep_model):
    return synthetic_posterior(sleep_model, chains=2, draws=100, seed=3)


@pytest.fixture(scope="module")
def orth_model(orthodont):
    return blm.LMM("distance ~ age * Sex + (age | Subject)", orthodont)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


# --- conditional effects -------------------------------------------------------------
def test_effects_table_is_the_posterior_mean_of_x_beta(sleep_post):
    tab = sleep_post.effects_table("Days", n=4, prob=0.9)
    beta = sleep_post.idata.posterior["beta"].values.reshape(-1, 2)
    days = np.linspace(0, 9, 4)
    draws = beta[:, [0]] + beta[:, [1]] * days  # by hand: β₀ + β₁·Days per draw
    np.testing.assert_allclose(tab["Days"], days)
    np.testing.assert_allclose(tab["estimate"], draws.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(tab["lower"], np.quantile(draws, 0.05, axis=0), rtol=1e-12)
    np.testing.assert_allclose(tab["upper"], np.quantile(draws, 0.95, axis=0), rtol=1e-12)


def test_effects_table_by_factor_holds_numeric_at_mean(orth_model, orthodont):
    fit = orth_model.fit_map()
    tab = fit.effects_table("Sex", prob=0.95)
    b = fit.fixef
    age = orthodont["age"].mean()  # the other predictor at its mean: 11
    male = b["Intercept"] + b["age"] * age
    female = male + b["Sex[Female]"] + b["age:Sex[Female]"] * age
    np.testing.assert_allclose(tab["estimate"], [male, female], rtol=1e-12)
    x = np.array([[1, age, 0, 0], [1, age, 1, age]])
    se = np.sqrt(np.einsum("np,pq,nq->n", x, fit.vcov.to_numpy(), x))
    np.testing.assert_allclose(tab["se"], se, rtol=1e-12)
    np.testing.assert_allclose(tab["upper"] - tab["estimate"], 1.959963984540054 * se)


def test_effects_table_two_predictors_and_at(orth_model):
    fit = orth_model.fit_map()
    tab = fit.effects_table("age", by="Sex", n=3)
    assert tab.shape == (6, 6) and tab["Sex"].tolist() == ["Male"] * 3 + ["Female"] * 3
    at = fit.effects_table("age", n=2, at={"Sex": "Female"})
    np.testing.assert_allclose(at["estimate"], tab["estimate"].iloc[[3, 5]])


def test_effects_errors_name_the_predictors(sleep_post):
    with pytest.raises(blm.BayesLMMError, match="'Day' is not a predictor.*'Days'"):
        sleep_post.effects_table("Day")
    with pytest.raises(blm.BayesLMMError, match="grouping factor"):
        sleep_post.effects_table("Subject")
    with pytest.raises(blm.BayesLMMError, match="prob"):
        sleep_post.effects_table("Days", prob=95)


# --- R² ------------------------------------------------------------------------------
@pytest.mark.parametrize("case", sorted(R2_REF))
def test_r2_nakagawa_matches_performance(case):
    ref = R2_REF[case]  # performance::r2_nakagawa, models/r2/make_r2.R
    fit = blm.LMM(ref["formula"], blm.datasets.load(ref["dataset"])).fit_map(ref["method"])
    r2 = fit.r2_nakagawa()
    assert r2["marginal"] == pytest.approx(ref["r2_marginal"], rel=2e-4, abs=1e-12)
    assert r2["conditional"] == pytest.approx(ref["r2_conditional"], rel=2e-4)
    for k in ("var_fixed", "var_random", "var_residual"):
        assert r2[k] == pytest.approx(ref[k], rel=2e-4, abs=1e-12)


def test_r2_nakagawa_per_draw(sleep_post):
    r2 = sleep_post.r2_nakagawa()
    post = sleep_post.idata.posterior
    c, d = 1, 17
    X, Z = sleep_post._design.X, sleep_post._design.terms[0].Z
    sd, corr = post["sd_Subject"].values[c, d], post["corr_Subject"].values[c, d]
    psi = corr * np.outer(sd, sd)
    vf = np.var(X @ post["beta"].values[c, d], ddof=1)
    vr = np.mean([z @ psi @ z for z in Z])
    s2 = post["sigma"].values[c, d] ** 2
    assert float(r2["marginal"][c, d]) == pytest.approx(vf / (vf + vr + s2), rel=1e-10)
    assert float(r2["conditional"][c, d]) == pytest.approx((vf + vr) / (vf + vr + s2),
                                                           rel=1e-10)


def test_bayes_r2_from_the_draws(sleep_post):
    post = sleep_post.idata.posterior
    d = sleep_post._design
    b = post["b_Subject"].values
    mu = (np.einsum("np,cdp->cdn", d.X, post["beta"].values)
          + np.einsum("nq,cdnq->cdn", d.terms[0].Z, b[:, :, d.terms[0].codes, :]))
    var_fit = mu.var(axis=-1, ddof=1)
    want = var_fit / (var_fit + post["sigma"].values ** 2)  # Gelman et al. 2019, eq. 3
    np.testing.assert_allclose(sleep_post.bayes_r2().values, want, rtol=1e-12)
    pop = np.einsum("np,cdp->cdn", d.X, post["beta"].values).var(axis=-1, ddof=1)
    np.testing.assert_allclose(sleep_post.bayes_r2(include_random=False).values,
                               pop / (pop + post["sigma"].values ** 2), rtol=1e-12)


# --- per-group marginal log-likelihood -------------------------------------------------
@pytest.mark.parametrize("formula,dataset,group", [
    ("Reaction ~ Days + (Days | Subject)", "sleepstudy", "Subject"),
    ("strength ~ 1 + (1 | batch/cask)", "Pastes", "batch"),
    ("distance ~ age + Sex + (age || Subject)", "Orthodont", "Subject"),
])
def test_group_loglik_matches_the_dense_oracle(formula, dataset, group):
    m = blm.LMM(formula, blm.datasets.load(dataset))
    post = synthetic_posterior(m, chains=1, draws=4, seed=5).idata.posterior
    ll = group_loglik(m.design, post, group)
    d = m.design
    codes = d.term(group).codes
    Z = dense_z(d.terms)
    for s in range(4):
        psis = []
        for t in d.terms:
            L = psi_factor(post, t.group, t.q)[0, s]
            psis.append(L @ L.T)
        G = dense_psi(d.terms, psis)
        beta, sigma = post["beta"].values[0, s], float(post["sigma"].values[0, s])
        for j in range(d.term(group).n_levels):
            rows = codes == j
            cols = np.abs(Z[rows]).sum(axis=0) > 0
            want = marginal_loglik(d.y[rows], d.X[rows], Z[rows][:, cols],
                                   G[np.ix_(cols, cols)], beta, sigma)
            assert float(ll[0, s, j]) == pytest.approx(want, rel=1e-10)
        # the groups are independent: their sum is the whole marginal likelihood
        whole = marginal_loglik(d.y, d.X, Z, G, beta, sigma)
        assert float(ll[0, s].sum()) == pytest.approx(whole, rel=1e-10)


def test_group_level_needs_nested_factors():
    m = blm.LMM("diameter ~ 1 + (1 | plate) + (1 | sample)", blm.datasets.load("Penicillin"))
    post = synthetic_posterior(m, chains=1, draws=5)
    with pytest.raises(blm.BayesLMMError, match="crossed"):
        post.log_likelihood(level="group", group="plate")
    with pytest.raises(blm.BayesLMMError, match="say which one"):
        post.log_likelihood(level="group")


def test_compare_by_group_says_so(sleep_model, sleepstudy, sleep_post):
    other = synthetic_posterior(blm.LMM("Reaction ~ Days + (1 | Subject)", sleepstudy),
                                chains=2, draws=100, seed=4)
    table = blm.compare({"slopes": sleep_post, "intercepts": other}, level="group")
    assert table["level"].tolist() == ["group (Subject)"] * 2
    assert table.index[0] == "slopes"
    by_obs = blm.compare({"slopes": sleep_post, "intercepts": other})
    assert by_obs["level"].tolist() == ["observation"] * 2
    # LOGO scores 18 subjects, LOO 180 observations: different quantities
    assert table["elpd_loo"].iloc[0] != pytest.approx(by_obs["elpd_loo"].iloc[0], rel=0.01)
    with pytest.raises(blm.BayesLMMError, match="level"):
        blm.compare({"a": sleep_post, "b": other}, level="subject")


# --- priors on the draws and sensitivity ----------------------------------------------
def test_log_prior_matches_scipy(sleep_model, sleep_post):
    post = sleep_post.idata.posterior
    lp = log_prior(sleep_model.design, sleep_model._priors, None, post)
    c, d = 0, 7
    pr = sleep_model._priors
    beta = post["beta"].values[c, d]
    want_beta = st.norm(pr.beta.params["mu"], pr.beta.params["sigma"]).logpdf(beta).sum()
    sd = post["sd_Subject"].values[c, d]
    want_sd = st.halfnorm(scale=pr.sd["Subject"].params["sigma"]).logpdf(sd).sum()
    sigma = post["sigma"].values[c, d]
    want_sigma = st.expon(scale=1 / pr.sigma.params["lam"]).logpdf(sigma)
    corr = post["corr_Subject"].values[c, d]
    assert float(lp["beta"][c, d]) == pytest.approx(want_beta, rel=1e-10)
    assert float(lp["sd_Subject"][c, d]) == pytest.approx(want_sd, rel=1e-10)
    assert float(lp["sigma"][c, d]) == pytest.approx(want_sigma, rel=1e-10)
    # LKJ(η = 2): (η − 1) log det Ω, up to its constant
    assert float(lp["corr_Subject"][c, d]) == pytest.approx(np.log(np.linalg.det(corr)))


def test_prior_draws_follow_the_priors(sleep_post, sleep_model):
    prior = sleep_post.idata.prior
    scale = sleep_model._priors.sd["Subject"].params["sigma"]
    sd = prior["sd_Subject"].values.reshape(-1, 2)
    # HalfNormal(s): E = s √(2/π); 200 draws, 5 standard errors
    se = scale * np.sqrt(1 - 2 / np.pi) / np.sqrt(len(sd))
    assert np.all(np.abs(sd.mean(axis=0) - scale * np.sqrt(2 / np.pi)) < 5 * se)


def test_sensitivity_table(sleep_post):
    tab = sleep_post.sensitivity()
    assert tab.index.tolist() == sleep_post.summary().index.tolist()
    assert set(tab["diagnosis"]) <= {"-", "prior-data conflict",
                                     "prior dominates (weak likelihood)"}
    assert (tab[["prior", "likelihood"]] >= 0).all().all()


def test_sensitivity_sees_a_strong_prior(sleepstudy):
    # a prior far narrower than the data's σ ≈ 25: the posterior of sigma follows it
    m = blm.LMM("Reaction ~ Days + (Days | Subject)", sleepstudy,
                priors={"sigma": blm.Prior("HalfNormal", sigma=3.0)})
    post = synthetic_posterior(m, chains=2, draws=200, seed=1)
    tab = post.sensitivity()
    assert tab.loc["sigma", "prior"] > 0.05
    assert tab.loc["sigma", "prior"] > 10 * tab.loc["beta[Days]", "prior"]


# --- plots -----------------------------------------------------------------------------
def test_effects_plot_draws_the_table(sleep_post):
    ax = blm.plots.effects(sleep_post, "Days", n=5)
    line = ax.get_lines()[0]
    tab = sleep_post.effects_table("Days", n=5)
    np.testing.assert_allclose(line.get_ydata(), tab["estimate"])
    assert ax.get_ylabel() == "Reaction" and len(ax.collections) == 2  # band and data


def test_group_fits_pages_and_samples(sleep_post):
    axes = blm.plots.group_fits(sleep_post, "Days", per_page=5, page=3)
    assert [ax.get_title() for ax in axes] == ["370", "371", "372"]
    assert "page 4 of 4" in axes[0].figure.get_suptitle()
    axes = blm.plots.group_fits(sleep_post, "Days", sample=4, random_seed=1)
    assert len(axes) == 4 and "4 of 18, sampled" in axes[0].figure.get_suptitle()
    with pytest.raises(blm.BayesLMMError, match="page"):
        blm.plots.group_fits(sleep_post, "Days", page=1)


def test_group_fits_line_is_the_groups_prediction(sleep_model):
    fit = sleep_model.fit_map()
    axes = blm.plots.group_fits(fit, "Days", levels=["308"])
    group_line = axes[0].get_lines()[1]
    want = fit.predict(pd.DataFrame({"Days": group_line.get_xdata(), "Subject": "308"}))
    np.testing.assert_allclose(group_line.get_ydata(), want, rtol=1e-12)


def test_ppc_axis_and_group_statistics(sleep_post, sleepstudy):
    assert blm.plots.ppc(sleep_post, num_pp_samples=10, random_seed=1).get_xlabel() == \
        "Reaction"
    tab = blm.plots.ppc_groups_table(sleep_post, "Subject", stat="sd", random_seed=1)
    want = sleepstudy.groupby("Subject", observed=True)["Reaction"].std()
    np.testing.assert_allclose(tab["observed"], want.loc[tab.index], rtol=1e-12)
    assert ((tab["lower"] < tab["upper"]) & tab["p_value"].between(0, 1)).all()
    ax = blm.plots.ppc_groups(sleep_post, "Subject", stat="mean", random_seed=1)
    assert ax.get_xlabel() == "mean of Reaction per Subject"


def test_prior_posterior_panels(sleep_post):
    axes = blm.plots.prior_posterior(sleep_post)
    assert [ax.get_title() for ax in axes] == ["sd_Subject[Intercept]", "sd_Subject[Days]",
                                               "sigma"]
    assert all(len(ax.get_lines()) == 2 for ax in axes)


def test_graph_of_both_models(sleep_model):
    g = sleep_model.graph()
    assert "b_Subject" in g.source and "Reaction" not in g.source or "y" in g.source
    assert "b_Subject" not in sleep_model.graph(parameterization="marginal").source
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"y": rng.normal(size=20)})
    km = blm.LMM("y ~ 1", df, random_matrices={"snps": rng.normal(size=(20, 30))})
    assert "sd_snps" in km.graph().source


def test_priors_print_as_a_table(sleep_model):
    text = repr(sleep_model.priors)
    assert text.splitlines()[0].split() == ["parameter", "prior"]
    assert "sd_Subject[Days]" in text and "HalfNormal(sigma=48.8915)" in text
    assert "Prior(" not in text
    assert sleep_model.priors["sigma"].startswith("Prior('Exponential'")  # still a dict
