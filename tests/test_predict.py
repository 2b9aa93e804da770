"""Predictions, predictive checks, comparison, plots and saving (posterior results).

The posteriors here are drawn near the ML estimates (tests/posteriors.py): what is tested
is what a result does with its draws; NUTS itself is tested in the sampling tier.
"""

import matplotlib

matplotlib.use("Agg")

import arviz as az  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402

import bayeslmm as blm  # noqa: E402
from bayeslmm.cli import main  # noqa: E402
from bayeslmm.errors import BayesLMMError, DataError  # noqa: E402
from tests.posteriors import synthetic_posterior  # noqa: E402


@pytest.fixture(scope="module")
def fit(sleepstudy):
    m = blm.LMM("Reaction ~ Days + (Days | Subject)", sleepstudy)
    return synthetic_posterior(m, chains=2, draws=150, seed=5)


NEW = pd.DataFrame({"Days": [0, 5, 5, 9], "Subject": ["308", "new1", "new1", "new2"]})


def test_training_predictions_are_X_beta_plus_Z_b(fit, sleepstudy):
    post = fit.idata.posterior
    c, d = 1, 17
    beta = post["beta"].values[c, d]
    b = post["b_Subject"].sel(Subject=sleepstudy["Subject"].astype(str).values).values[c, d]
    expected = beta[0] + beta[1] * sleepstudy["Days"] + b[:, 0] + b[:, 1] * sleepstudy["Days"]
    np.testing.assert_allclose(fit.predict().values[c, d], expected)
    np.testing.assert_allclose(fit.predict(include_random=False).values[c, d],
                               beta[0] + beta[1] * sleepstudy["Days"])


def test_new_data_seen_level_matches_training(fit, sleepstudy):
    same = fit.predict(sleepstudy.iloc[[12, 13]])
    np.testing.assert_allclose(same.values, fit.predict().values[..., [12, 13]])
    assert same["obs"].values.tolist() == [12, 13]


def test_new_levels_population_sample_error(fit):
    post = fit.idata.posterior
    pop = fit.predict(NEW, new_levels="population").values
    fixed = np.einsum("cdp,np->cdn", post["beta"].values, np.array([[1, 0], [1, 5], [1, 5],
                                                                    [1, 9]]))
    np.testing.assert_allclose(pop[..., 1:], fixed[..., 1:])
    s1 = fit.predict(NEW, new_levels="sample", random_seed=3).values
    s2 = fit.predict(NEW, new_levels="sample", random_seed=3).values
    np.testing.assert_array_equal(s1, s2)
    assert not np.allclose(s1[..., 1:], pop[..., 1:])
    # rows of one new level share its drawn effect; the seen level is untouched
    np.testing.assert_allclose(s1[..., 1], s1[..., 2])
    np.testing.assert_allclose(s1[..., 0], pop[..., 0])
    # row 3, a new level at Days = 9: its drawn effect b0 + 9 b1 has the variance
    # sd0² + 81 sd1² + 18 ρ sd0 sd1 that the posterior's Ψ gives, on average
    spread = s1[..., 3] - pop[..., 3]
    sd_int = post["sd_Subject"].sel(Subject_term="Intercept").values
    sd_days = post["sd_Subject"].sel(Subject_term="Days").values
    corr = post["corr_Subject"].values[..., 0, 1]
    expected_var = sd_int**2 + 81 * sd_days**2 + 18 * corr * sd_int * sd_days
    ratio = np.mean(spread**2) / np.mean(expected_var)
    assert 0.8 < ratio < 1.25
    with pytest.raises(DataError, match=r"\['new1', 'new2'\] of grouping factor 'Subject'"):
        fit.predict(NEW, new_levels="error")


def test_response_draws_add_residual_noise(fit):
    mean = fit.predict(kind="mean").values
    resp = fit.predict(kind="response", random_seed=1).values
    sigma = fit.idata.posterior["sigma"].values
    z = (resp - mean) / sigma[..., None]
    assert abs(z.std() - 1) < 0.02 and abs(z.mean()) < 0.02


def test_prediction_errors(fit):
    with pytest.raises(BayesLMMError, match="kind must be one of"):
        fit.predict(kind="median")
    with pytest.raises(BayesLMMError, match="new_levels must be one of"):
        fit.predict(NEW, new_levels="zero")
    with pytest.raises(DataError, match=r"lack column\(s\) \['Days'\]"):
        fit.predict(pd.DataFrame({"Subject": ["308"]}))
    with pytest.raises(DataError, match="missing values in column"):
        fit.predict(pd.DataFrame({"Days": [np.nan], "Subject": ["308"]}))


def test_posterior_and_prior_predictive(fit, sleepstudy, tmp_path):
    idata = fit.posterior_predictive(random_seed=2)
    assert idata.posterior_predictive["y"].shape == (2, 150, 180)
    y_rep = idata.posterior_predictive["y"].values
    assert abs(y_rep.mean() - sleepstudy["Reaction"].mean()) < 10
    ax = az.plot_ppc(idata, num_pp_samples=20, random_seed=1)
    np.ravel(ax)[0].figure.savefig(tmp_path / "ppc.png")
    assert (tmp_path / "ppc.png").stat().st_size > 5000
    prior = blm.LMM("Reaction ~ Days + (Days | Subject)", sleepstudy).prior_predictive(
        draws=50, random_seed=1)
    assert prior.prior_predictive["y"].shape == (1, 50, 180)
    assert "observed_data" in prior.groups()


@pytest.mark.parametrize("plot", ["caterpillar", "shrinkage", "forest", "ppc"])
def test_plots_render_to_png(fit, plot, tmp_path):
    fn = getattr(blm.plots, plot)
    args = {"caterpillar": ("Subject",), "shrinkage": ("Subject",)}.get(plot, ())
    ax = fn(fit, *args)
    fig = np.ravel(ax)[0].figure
    fig.savefig(tmp_path / f"{plot}.png")
    assert (tmp_path / f"{plot}.png").stat().st_size > 5000


def test_shrinkage_table_no_pooling_is_per_subject_ols(fit, sleepstudy):
    tab = blm.plots.shrinkage_table(fit, "Subject")
    one = sleepstudy[sleepstudy["Subject"] == "309"]
    slope, intercept = np.polyfit(one["Days"], one["Reaction"], 1)
    assert tab.loc["309", "no_pooling[Days]"] == pytest.approx(slope)
    assert tab.loc["309", "no_pooling[Intercept]"] == pytest.approx(intercept)
    np.testing.assert_allclose(tab["partial_pooling[Days]"],
                               fit.fixef["Days"] + fit.ranef["Subject"]["Days"])


def test_save_load_roundtrip(fit, tmp_path):
    path = tmp_path / "fit.nc"
    fit.save(path)
    back = blm.load(path)
    assert str(back) == str(fit)
    pd.testing.assert_frame_equal(back.summary(), fit.summary())
    np.testing.assert_array_equal(back.predict(NEW, random_seed=4).values,
                                  fit.predict(NEW, random_seed=4).values)
    assert back.to_dict()["fixef"] == fit.to_dict()["fixef"]


def test_load_rejects_bad_files(tmp_path):
    junk = tmp_path / "junk.nc"
    junk.write_bytes(b"not a netcdf file at all")
    with pytest.raises(BayesLMMError, match="not a netCDF file written by bayeslmm"):
        blm.load(junk)
    foreign = tmp_path / "foreign.nc"
    az.from_dict(posterior={"x": np.zeros((1, 5))}).to_netcdf(str(foreign))
    with pytest.raises(BayesLMMError, match="not a bayeslmm result"):
        blm.load(foreign)
    with pytest.raises(BayesLMMError, match="No such file"):
        blm.load(tmp_path / "missing.nc")


def test_compare_by_loo(fit, sleepstudy):
    small = synthetic_posterior(blm.LMM("Reaction ~ Days + (1 | Subject)", sleepstudy),
                                chains=2, draws=150, seed=5)
    table = blm.compare({"slopes": fit, "intercepts": small})
    assert table.index[0] == "slopes" and "elpd_loo" in table.columns
    ll = fit.log_likelihood().log_likelihood["y"]
    assert isinstance(ll, xr.DataArray) and ll.shape == (2, 150, 180)
    with pytest.raises(BayesLMMError, match="at least two"):
        blm.compare({"one": fit})


@pytest.mark.slow
def test_cli_fit_save_then_predict(tmp_path, capsys):
    saved, new, out = tmp_path / "f.nc", tmp_path / "new.csv", tmp_path / "pred.csv"
    assert main(["fit", "Yield ~ 1 + (1 | Batch)", "--data", "Dyestuff", "--chains", "1",
                 "--draws", "100", "--tune", "200", "--seed", "1", "--no-progress",
                 "--save", str(saved)]) == 0
    pd.DataFrame({"Batch": ["A", "Z"]}).to_csv(new, index=False)
    assert main(["predict", str(saved), "--data", str(new), "--out", str(out),
                 "--new-levels", "population", "--seed", "1"]) == 0
    pred = pd.read_csv(out)
    assert pred.columns.tolist() == ["Batch", "mean", "sd", "hdi_94_lower", "hdi_94_upper"]
    assert (pred["hdi_94_lower"] < pred["mean"]).all() and (pred["mean"] < pred[
        "hdi_94_upper"]).all()
    assert main(["predict", str(new), "--data", str(new), "--out", str(out)]) == 2
    assert "not a netCDF file" in capsys.readouterr().err


def test_residual_structure_predictions_and_roundtrip(orthodont, tmp_path):
    structure = blm.Residual(variance=blm.VarIdent(by="Sex"),
                             correlation=blm.AR1(group="Subject"))
    r = synthetic_posterior(blm.LMM("distance ~ age + Sex + (1 | Subject)", orthodont,
                                    residual=structure), chains=2, draws=100, seed=2)
    assert set(r.residual_params) == {"Phi", "Male", "Female"}
    ll = r.log_likelihood().log_likelihood["y"]  # LOO per subject: rows are correlated
    assert ll.dims == ("chain", "draw", "residual_group") and ll.shape == (2, 100, 27)
    assert r.residual_params["Male"] == 1.0
    assert ("Residual structure: AR(1), form ~1 | Subject; Different standard deviations per "
            "stratum, form ~1 | Sex") in str(r)
    # response draws: the within-subject residual correlation is the draw's Phi
    y = r.predict(kind="response", random_seed=1).values - r.predict().values
    male = (orthodont["Sex"] == "Male").to_numpy()
    resid = y[..., male].reshape(2, 100, -1, 4)  # 4 ages per subject, in order
    lag1 = np.mean(resid[..., 1:] * resid[..., :-1]) / np.mean(resid**2)
    assert abs(lag1 - r.idata.posterior["Phi"].mean()) < 0.1
    new = orthodont.iloc[:4]  # one subject (male): no second VarIdent level needed
    assert r.predict(new, kind="response", random_seed=1).shape == (2, 100, 4)
    path = tmp_path / "ar1.nc"
    r.save(path)
    back = blm.load(path)
    assert back.residual_params == r.residual_params and str(back) == str(r)


def test_map_predictions_match_lme4_fitted_values(sleepstudy):
    from tests.conftest import reference

    ref = reference("sleepstudy_rslope_reml")
    est = blm.LMM("Reaction ~ Days + (Days | Subject)", sleepstudy).fit_map()
    fe = ref["fixef"]
    modes = ref["ranef"]["Subject"]
    level = {lev: k for k, lev in enumerate(modes["levels"])}
    k = sleepstudy["Subject"].astype(str).map(level).to_numpy()
    days = sleepstudy["Days"].to_numpy()
    lme4_fitted = (fe["Intercept"] + np.array(modes["Intercept"]["mode"])[k]
                   + (fe["Days"] + np.array(modes["Days"]["mode"])[k]) * days)
    np.testing.assert_allclose(est.predict().to_numpy(), lme4_fitted, rtol=1e-5)
    np.testing.assert_allclose(est.predict(sleepstudy).to_numpy(), lme4_fitted, rtol=1e-5)
    pop = est.predict(NEW, include_random=False)
    np.testing.assert_allclose(pop, fe["Intercept"] + fe["Days"] * NEW["Days"], rtol=1e-5)
    out = est.predict(NEW, se_fit=True, new_levels="sample")
    assert out["fit"].iloc[1] == pytest.approx(pop.iloc[1])  # new level: b = 0
    # seen level: se from Var(β̂) and the conditional sds; new level: adds z'Ψz
    se_pop = est.predict(NEW, se_fit=True, new_levels="population")["se"]
    assert out["se"].iloc[1] > se_pop.iloc[1] > 0
    with pytest.raises(DataError, match="new1"):
        est.predict(NEW, new_levels="error")


def test_map_result_save_load(orthodont, tmp_path):
    est = blm.LMM("distance ~ age + Sex + (1 | Subject)", orthodont,
                  residual=blm.AR1(group="Subject")).fit_map(method="ML")
    path = tmp_path / "map.nc"
    est.save(path)
    back = blm.load(path)
    assert str(back) == str(est)
    pd.testing.assert_series_equal(back.fixef, est.fixef)
    assert back.residual_params == est.residual_params
    new = orthodont.iloc[:6]
    pd.testing.assert_series_equal(back.predict(new), est.predict(new))
