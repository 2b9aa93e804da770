"""Small NUTS runs checked against lme4's reference fits (models/, sampling tier), and
what a posterior result gives (fast tier, draws near the ML estimates)."""

import json

import numpy as np
import pytest

import bayeslmm as blm
from bayeslmm.errors import BayesLMMError
from tests.conftest import ref_sd, reference
from tests.posteriors import synthetic_posterior


@pytest.fixture(scope="module")
def sleep_fit(sleepstudy):
    m = blm.LMM("Reaction ~ Days + (Days | Subject)", sleepstudy)
    return m.fit(draws=400, tune=500, chains=2, random_seed=11, progressbar=False, cores=1)


@pytest.fixture(scope="module")
def sleep_post(sleepstudy):
    m = blm.LMM("Reaction ~ Days + (Days | Subject)", sleepstudy)
    return synthetic_posterior(m, chains=2, draws=400, seed=11)


@pytest.mark.slow
def test_sleepstudy_against_lme4(sleep_fit):
    ref = reference("sleepstudy_rslope_reml")
    s = sleep_fit.summary()
    for name in ("Intercept", "Days"):
        row = s.loc[f"beta[{name}]"]
        assert abs(row["mean"] - ref["fixef"][name]) < row["sd"]
    assert s.loc["sd_Subject[Intercept]", "mean"] == pytest.approx(
        ref_sd(ref, "Subject", "Intercept"), rel=0.25)
    assert s.loc["sd_Subject[Days]", "mean"] == pytest.approx(
        ref_sd(ref, "Subject", "Days"), rel=0.25)
    assert s.loc["sigma", "mean"] == pytest.approx(ref["sigma"], rel=0.25)
    corr = s.loc["corr_Subject[Intercept, Days]"]
    assert corr["hdi_3%"] < ref["corr"][0]["value"] < corr["hdi_97%"]
    assert sleep_fit.divergences == 0
    assert sleep_fit.diagnostics["max_rhat"] < 1.02


@pytest.mark.slow
def test_ranef_close_to_lme4_modes(sleep_fit):
    ref = reference("sleepstudy_rslope_reml")["ranef"]["Subject"]
    re = sleep_fit.ranef["Subject"].loc[ref["levels"]]
    # posterior means of b shrink like the BLUPs: within their conditional sd
    for term in ("Intercept", "Days"):
        diff = re[term].to_numpy() - np.array(ref[term]["mode"])
        assert np.all(np.abs(diff) < np.array(ref[term]["cond_sd"]))


@pytest.mark.slow
def test_idata_groups_dims_and_coords(sleep_fit):
    idata = sleep_fit.idata
    for g in ("posterior", "sample_stats", "observed_data", "log_likelihood"):
        assert g in idata.groups()
    post = idata.posterior
    assert post["b_Subject"].dims == ("chain", "draw", "Subject", "Subject_term")
    assert list(post["Subject"].values[:2]) == ["308", "309"]
    assert list(post["fixef"].values) == ["Intercept", "Days"]
    assert idata.log_likelihood["y"].shape == (2, 400, 180)


def test_result_accessors(sleep_post):
    fe = sleep_post.fixef
    post = sleep_post.idata.posterior
    assert fe["Days"] == pytest.approx(float(post["beta"].sel(fixef="Days").mean()))
    vc = sleep_post.varcorr
    assert vc["grp"].tolist() == ["Subject", "Subject", "Subject", "Residual"]
    assert vc.loc[2, "var2"] == "Days"
    assert vc.loc[3, "sdcor"] == pytest.approx(sleep_post.sigma)
    assert sleep_post.ranef["Subject"].shape == (18, 2)
    mu = sleep_post.predict()
    manual = (post["beta"].values @ sleep_post._design.X.T)[0, 0] + np.einsum(
        "nq,nq->n", sleep_post._design.terms[0].Z,
        post["b_Subject"].values[0, 0][sleep_post._design.terms[0].codes])
    np.testing.assert_allclose(mu.values[0, 0], manual)


def test_to_dict_is_json_ready(sleep_post):
    d = json.loads(json.dumps(sleep_post.to_dict()))
    assert d["fixef_lme4"].keys() == {"(Intercept)", "Days"}
    assert d["varcorr"][0] == {"grp": "Subject", "var1": "Intercept", "var2": None,
                               "vcov": pytest.approx(d["varcorr"][0]["sdcor"] ** 2),
                               "sdcor": pytest.approx(d["varcorr"][0]["sdcor"])}
    assert d["diagnostics"]["divergences"] == 0 and d["nobs"] == 180


def test_printed_form(sleep_post):
    text = str(sleep_post)
    for piece in ("Formula: Reaction ~ Days + (Days | Subject)", "Random effects",
                  "sd(Intercept)", "corr(Intercept, Days)", "Residual",
                  "Number of obs: 180, groups:  Subject, 18", "Fixed effects", "0 divergences"):
        assert piece in text
    assert "divergent" not in text
    assert ("WARNING: max R-hat" in text) == (sleep_post.diagnostics["max_rhat"] > 1.01)


@pytest.mark.slow
def test_uncorrelated_and_nested_and_crossed_sample():
    sleep = blm.datasets.load("sleepstudy")
    r = blm.LMM("Reaction ~ Days + (Days || Subject)", sleep).fit(
        draws=50, tune=50, chains=1, random_seed=1, progressbar=False)
    assert "corr_Subject" not in r.idata.posterior
    assert not any(i.startswith("corr") for i in r.summary().index)
    r = blm.LMM("strength ~ 1 + (1 | batch/cask)", blm.datasets.load("Pastes")).fit(
        draws=50, tune=50, chains=1, random_seed=1, progressbar=False)
    assert r.ngroups == {"batch": 10, "batch:cask": 30}
    assert r.idata.posterior["b_batch:cask"].shape == (1, 50, 30, 1)
    r = blm.LMM("diameter ~ 1 + (1 | plate) + (1 | sample)", blm.datasets.load("Penicillin")).fit(
        draws=50, tune=50, chains=1, random_seed=1, progressbar=False)
    assert set(r.ranef) == {"plate", "sample"}


def test_divergence_warning_is_visible(sleep_post):
    class Fake(type(sleep_post)):
        divergences = 7

    fake = Fake(sleep_post.idata, sleep_post._design, {}, sleep_post.info)
    assert "WARNING: 7 divergent transitions" in str(fake)


@pytest.mark.parametrize(
    "kwargs, match",
    [({"sampler": "stan"}, "Unknown sampler 'stan'"), ({"draws": 0}, "draws must be"),
     ({"parameterization": "centred"}, "Unknown parameterization"),
     ({"target_accept": 1.5}, "target_accept")],
)
def test_fit_argument_errors(sleepstudy, kwargs, match):
    with pytest.raises(BayesLMMError, match=match):
        blm.LMM("Reaction ~ Days + (1 | Subject)", sleepstudy).fit(**kwargs)
