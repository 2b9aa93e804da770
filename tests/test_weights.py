"""lme4's prior weights (residual variance σ²/w): the design, ML/REML against the dense
oracle (lme4's own numbers: models/*_weights_*.toml through tests/test_reference.py),
the PyMC models' likelihoods, predictions, the pointwise log-likelihood, saving, the CLI."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import bayeslmm as blm
from bayeslmm.cli import main
from bayeslmm.errors import BayesLMMError, DataError, FitError
from bayeslmm.formula.design import build_design
from bayeslmm.mle.fit import fit_map
from bayeslmm.residual.bind import bind
from tests.oracle import dense_psi, dense_z
from tests.posteriors import synthetic_posterior

FORMULA = "distance ~ age + Sex + (1 | Subject)"


@pytest.fixture(scope="module")
def orth():
    df = blm.datasets.load("Orthodont")
    return df.assign(w=np.linspace(0.5, 2.0, len(df)))


def _dense_loglik(design, fit):
    """log N(y | Xβ̂, ZΨ̂Zᵀ + σ̂² W⁻¹) at the ML estimates (dense)."""
    psi = [np.atleast_2d(fit.varcorr.vcov[0])]
    Z, G = dense_z(design.terms), dense_psi(design.terms, psi)
    V = Z @ G @ Z.T + fit.sigma**2 * np.diag(1.0 / design.weights)
    return stats.multivariate_normal(design.X @ fit.fixef.to_numpy(), V).logpdf(design.y)


def test_weights_from_a_column_or_an_array(orth):
    d = build_design(FORMULA, orth, weights="w")
    assert d.weights_column == "w" and np.array_equal(d.weights, orth["w"].to_numpy())
    d2 = build_design(FORMULA, orth, weights=orth["w"].to_numpy())
    assert d2.weights_column is None and np.array_equal(d2.weights, d.weights)
    shuffled = orth["w"].sample(frac=1.0, random_state=1)  # a Series: matched by label
    assert np.array_equal(build_design(FORMULA, orth, weights=shuffled).weights, d.weights)


@pytest.mark.parametrize("weights, match", [
    ("ww", r"Unknown weights column 'ww'.*Did you mean 'w'"),
    ("Sex", r"weights column 'Sex' must be numeric"),
    (np.ones(5), r"one value per row of the data \(108\)"),
    (np.r_[0.0, np.ones(107)], r"positive and finite; rows \[0\]"),
])
def test_weight_errors(orth, weights, match):
    with pytest.raises(DataError, match=match):
        build_design(FORMULA, orth, weights=weights)


def test_missing_weights_drop_rows(orth):
    df = orth.assign(w=orth["w"].where(orth.index != 3))
    with pytest.warns(UserWarning, match=r"Dropped 1 of 108 rows.*'w'"):
        assert build_design(FORMULA, df, weights="w").nobs == 107
    w = orth["w"].to_numpy().copy()
    w[5] = np.nan
    with pytest.warns(UserWarning, match=r"Dropped 1 of 108.*'weights'"):
        assert build_design(FORMULA, orth, weights=w).nobs == 107


@pytest.mark.parametrize("method", ["ML", "REML"])
def test_fit_matches_the_dense_weighted_likelihood(orth, method):
    m = blm.LMM(FORMULA, orth, weights="w")
    fit = m.fit_map(method)
    if method == "ML":
        assert abs(fit.loglik - _dense_loglik(m.design, fit)) < 1e-6
    unweighted = blm.LMM(FORMULA, orth).fit_map(method)
    assert abs(fit.loglik - unweighted.loglik) > 1.0
    # lme4's Pearson residuals, √w (y − fitted) / σ
    expect = np.sqrt(orth["w"]) * fit.residuals / fit.sigma
    np.testing.assert_allclose(fit.scaled_residuals, expect)
    assert "Linear mixed model fit by" in str(fit) and fit.residual is None


def test_weights_and_structures_do_not_mix(orth):
    with pytest.raises(BayesLMMError, match="VarFixed"):
        blm.LMM(FORMULA, orth, weights="w", residual=blm.AR1(group="Subject"))
    d = build_design(FORMULA, orth)
    rd = bind(blm.AR1(group="Subject"), d)
    with pytest.raises(FitError, match="VarFixed"):
        fit_map(build_design(FORMULA, orth, weights="w"), "ML", residual=rd)
    with pytest.raises(BayesLMMError, match="random_matrices"):
        blm.LMM("distance ~ 1", orth, weights="w", random_matrices={"m": np.ones((108, 3))})


def test_pymc_likelihoods_are_the_weighted_normal(orth):
    m = blm.LMM(FORMULA, orth, weights="w")
    d = m.design
    for model in (m.pymc_model, m.marginal_model):
        point = model.initial_point(random_seed=2)
        names = ["beta", "sigma", "sd_Subject"] + (
            ["b_Subject"] if "y" in model.named_vars else ["marginal_loglik"])
        outs = model.replace_rvs_by_values([model[n] for n in names])
        vals = dict(zip(names, model.compile_fn(outs, inputs=model.value_vars,
                                                on_unused_input="ignore")(point),
                        strict=True))
        beta, sigma = vals["beta"], vals["sigma"]
        if "y" in model.named_vars:  # conditional: y | b
            mu = d.X @ beta + vals["b_Subject"][d.terms[0].codes, 0]
            want = stats.norm(mu, sigma / np.sqrt(d.weights)).logpdf(d.y).sum()
            got = model.compile_logp(vars=[model["y"]])(point)
        else:
            G = dense_psi(d.terms, [np.atleast_2d(vals["sd_Subject"][0] ** 2)])
            Z = dense_z(d.terms)
            V = Z @ G @ Z.T + sigma**2 * np.diag(1.0 / d.weights)
            want = stats.multivariate_normal(d.X @ beta, V).logpdf(d.y)
            got = vals["marginal_loglik"]
        assert abs(got - want) < 1e-8


def test_predictions_and_loglik_use_the_weights(orth):
    m = blm.LMM(FORMULA, orth, weights="w")
    post = synthetic_posterior(m, draws=400, seed=3)
    ll = post.log_likelihood().log_likelihood["y"].values
    mu = post.predict().values
    sig = post.idata.posterior["sigma"].values[..., None] / np.sqrt(m.design.weights)
    np.testing.assert_allclose(ll, stats.norm(mu, sig).logpdf(m.design.y), rtol=1e-10)
    new = orth.head(2).assign(w=[0.01, 100.0])
    spread = (post.predict(new, kind="response", random_seed=1)
              - post.predict(new, random_seed=1)).std(("chain", "draw")).values
    assert spread[0] > 20 * spread[1]  # sd σ/√w: 10 × σ against σ/10
    same = post.predict(new.assign(w2=[100.0, 100.0]), kind="response", weights="w2",
                        random_seed=1).std(("chain", "draw")).values
    assert same[0] < spread[0] / 10
    with pytest.raises(DataError, match="weights="):
        post.predict(new.drop(columns="w"), kind="response")
    post.predict(new.drop(columns="w"))  # the mean needs no weights


def test_saved_fit_keeps_its_weights(orth, tmp_path):
    for weights in ("w", orth["w"].to_numpy()):
        fit = blm.LMM(FORMULA, orth, weights=weights).fit_map("REML")
        fit.save(tmp_path / "fit.nc")
        back = blm.load(tmp_path / "fit.nc")
        assert back.loglik == pytest.approx(fit.loglik, rel=1e-12)
        assert back._design.weights_column == (weights if isinstance(weights, str)
                                               else "(weights)")


def test_cli_weights(orth, tmp_path, capsys):
    path = tmp_path / "orth.csv"
    orth.to_csv(path, index=False)
    assert main(["fit", FORMULA, "--data", str(path), "--map", "ML", "--weights", "w"]) == 0
    out = capsys.readouterr().out
    fit = blm.LMM(FORMULA, pd.read_csv(path), weights="w").fit_map("ML")
    assert f"{fit.loglik:.1f}" in out


@pytest.mark.parametrize("case", ["Orthodont_weights_reml", "cake_weights_ml",
                                  "cake_ordered_reml"])
def test_inference_with_weights_and_ordered_factors(case):
    """lmerTest's Satterthwaite df (and pbkrtest's Kenward–Roger df, unweighted) and lme4's
    profile intervals of the sds (models/make_nlme_more.R)."""
    import tomllib
    from pathlib import Path

    spec = tomllib.loads((Path(__file__).resolve().parents[1] / "models" / f"{case}.toml")
                         .read_text())
    ref = spec["reference"]["inference"]
    m = blm.LMM(spec["formula"], blm.datasets.load(spec["dataset"]),
                weights=spec.get("weights"))
    fit = m.fit_map(spec["method"])
    sat = fit.summary(ddf="Satterthwaite")["df"]
    for name, value in ref["satterthwaite_df"].items():
        assert sat[name] == pytest.approx(value, rel=1e-4), name
    if "kenward_roger_df" in ref:
        kr = fit.summary(ddf="Kenward-Roger")["df"]
        for name, value in ref["kenward_roger_df"].items():
            assert kr[name] == pytest.approx(value, rel=1e-4), name
    ci = fit.confint("theta_", method="profile")  # sd_<group>[<term>], sigma
    for lme4, value in ref["profile_ci"].items():
        ours = "sigma" if lme4 == "sigma" else f"sd_{lme4.split('|')[1]}[Intercept]"
        np.testing.assert_allclose(ci.loc[ours].to_numpy(), value, rtol=1e-3)
