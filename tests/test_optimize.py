"""fit_map: errors, singular fits, rank deficiency, convergence failure, the result object
and its printed form (on fixed parameters)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

import bayeslmm as blm
from bayeslmm.errors import DataError, FitError
from bayeslmm.formula.design import build_design
from bayeslmm.mle.fit import fit_map
from bayeslmm.results.base import lme4_name
from bayeslmm.results.map import MapResult
from bayeslmm.results.varcorr import varcorr_frame
from tests.oracle import profiled_criterion


@pytest.fixture(scope="module")
def sleep_fit():
    d = build_design("Reaction ~ Days + (Days | Subject)", blm.datasets.load("sleepstudy"))
    return d, fit_map(d, "REML")


def test_method_is_validated():
    d = build_design("Yield ~ 1 + (1 | Batch)", blm.datasets.load("Dyestuff"))
    with pytest.raises(FitError, match=r"'ML', 'REML'"):
        fit_map(d, "MLE")
    assert fit_map(d, "ml").method == "ML"


def test_optimum_is_a_minimum_of_the_oracle(sleep_fit):
    d, fit = sleep_fit
    best = profiled_criterion(d, fit.theta.to_numpy(), reml=True)
    assert -2 * fit.loglik == pytest.approx(best, rel=1e-12)
    rng = np.random.default_rng(0)
    for _ in range(5):
        step = rng.normal(scale=1e-3, size=fit.theta.size)
        assert profiled_criterion(d, fit.theta.to_numpy() + step, reml=True) >= best - 1e-9


def test_singular_fit_warns_and_reports_zero_sd():
    d = build_design("Yield ~ 1 + (1 | Batch)", blm.datasets.load("Dyestuff2"))
    with pytest.warns(UserWarning, match="boundary \\(singular\\) fit"):
        fit = fit_map(d, "REML")
    assert fit.singular and fit.converged
    assert fit.varcorr.sdcor.iloc[0] == 0.0
    assert np.all(fit.ranef["Batch"].to_numpy() == 0.0)
    assert "boundary (singular) fit" in str(fit)


def test_perfect_correlation_is_singular():
    rng = np.random.default_rng(4)
    g = np.repeat(np.arange(12), 10)
    x = np.tile(np.arange(10.0), 12)
    u = rng.normal(size=12)
    y = 2 * u[g] + 1 * u[g] * x + rng.normal(size=120)  # slope = intercept/2: corr +1
    df = pd.DataFrame({"y": y, "x": x, "g": pd.Categorical(g.astype(str))})
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        fit = fit_map(build_design("y ~ x + (x | g)", df), "ML")
    vc = fit.varcorr
    corr = vc[vc.var2.notna()].sdcor.iloc[0]
    assert fit.singular == (abs(corr) > 0.999)
    assert fit.singular is False or any("singular" in str(x.message) for x in w)


def test_rank_deficient_x_is_dropped_and_fits():
    df = blm.datasets.load("sleepstudy")
    df["Days2"] = 2.0 * df["Days"]
    with pytest.warns(UserWarning, match="rank deficient"):
        d = build_design("Reaction ~ Days + Days2 + (1 | Subject)", df)
    fit = fit_map(d, "ML")
    ref = fit_map(build_design("Reaction ~ Days + (1 | Subject)", df), "ML")
    assert list(fit.fixef.index) == ["Intercept", "Days"]
    assert fit.loglik == pytest.approx(ref.loglik, abs=1e-8)


def test_one_level_per_row_is_a_data_error():
    df = blm.datasets.load("Dyestuff")
    df["row"] = pd.Categorical(np.arange(len(df)).astype(str))
    with pytest.raises(DataError, match="not identifiable"):
        build_design("Yield ~ 1 + (1 | row)", df)


def test_convergence_failure_warns():
    d = build_design("distance ~ age + Sex + (age | Subject)", blm.datasets.load("Orthodont"))
    with pytest.warns(UserWarning, match="failed to converge"):
        fit = fit_map(d, "REML", maxiter=1)
    assert not fit.converged
    assert "did not converge" in str(fit)


def test_categorical_fixed_effects_and_lme4_names():
    d = build_design("distance ~ age * Sex + (1 | Subject)", blm.datasets.load("Orthodont"))
    fit = fit_map(d, "REML")
    assert list(fit.fixef.index) == ["Intercept", "age", "Sex[Female]", "age:Sex[Female]"]
    assert list(fit.to_dict()["fixef_lme4"]) == ["(Intercept)", "age", "SexFemale",
                                                 "age:SexFemale"]
    assert lme4_name("C(x)[b]") == "C(x)b"


def test_result_accessors(sleep_fit):
    d, fit = sleep_fit
    assert fit.nobs == 180 and fit.ngroups == {"Subject": 18}
    assert fit.df == 6
    assert fit.aic == pytest.approx(-2 * fit.loglik + 12)
    assert fit.bic == pytest.approx(-2 * fit.loglik + 6 * np.log(180))
    np.testing.assert_allclose(fit.se, np.sqrt(np.diag(fit.vcov)))
    s = fit.summary()
    assert list(s.columns) == ["estimate", "se", "t"]
    np.testing.assert_allclose(s["t"], fit.fixef / fit.se)
    pred = fit.predict()
    np.testing.assert_allclose(pred.to_numpy() + fit.residuals.to_numpy(), d.y)
    b = fit.ranef["Subject"].to_numpy()
    np.testing.assert_allclose(pred.to_numpy(), d.X @ fit.fixef.to_numpy()
                               + np.einsum("iq,iq->i", d.terms[0].Z, b[d.terms[0].codes]))
    assert fit.ranef_sd["Subject"].shape == (18, 2)
    assert fit.residual_params == {} and fit.residual is None
    # prediction on new data: tests/test_predict.py
    with pytest.raises(AttributeError):
        fit.sigma = 1.0
    fx = fit.fixef
    fx.iloc[0] = 0.0  # a copy
    assert fit.fixef.iloc[0] != 0.0


def test_to_dict_is_json_ready(sleep_fit):
    _, fit = sleep_fit
    out = json.loads(json.dumps(fit.to_dict()))
    for key in ("formula", "method", "nobs", "ngroups", "fixef", "se", "vcov", "varcorr",
                "sigma", "residual_params", "loglik", "aic", "bic", "converged", "singular",
                "ranef", "fixef_lme4"):
        assert key in out
    assert out["varcorr"][0] == {"grp": "Subject", "var1": "Intercept", "var2": None,
                                 "vcov": pytest.approx(fit.varcorr.vcov[0]),
                                 "sdcor": pytest.approx(fit.varcorr.sdcor[0])}
    assert len(out["ranef"]["Subject"]["Days"]["mode"]) == 18


def _fixed_result(method: str) -> MapResult:
    """A result built from fixed numbers, to test the printed form alone."""
    psi = np.array([[4.0, 0.6], [0.6, 1.0]])
    names = ["Intercept", "x"]
    idx = pd.RangeIndex(4)
    return MapResult(
        formula="y ~ x + (x | g)", method=method,
        fixef=pd.Series([10.0, -2.5], index=names), vcov=pd.DataFrame(
            [[0.25, -0.05], [-0.05, 0.04]], index=names, columns=names),
        ranef={"g": pd.DataFrame([[1.0, 0.5], [-1.0, -0.5]], index=["a", "b"], columns=names)},
        ranef_sd={"g": pd.DataFrame([[0.3, 0.1], [0.3, 0.1]], index=["a", "b"],
                                    columns=names)},
        varcorr=varcorr_frame([("g", names, psi)], 1.5), sigma=1.5, nobs=4, ngroups={"g": 2},
        loglik=-10.0, df=6, converged=True, singular=False,
        theta=pd.Series([1.33, 0.2, 0.6]),
        fitted=pd.Series([1.0, 2.0, 3.0, 4.0], index=idx),
        residuals=pd.Series([-1.5, 0.0, 0.75, 1.5], index=idx),
        optimizer={"method": "fixed", "nfev": 0, "message": ""}, blocks={"g": ((0, 1),)},
    )


def test_printed_form_reml():
    text = str(_fixed_result("REML"))
    lines = text.splitlines()
    assert lines[0] == "Linear mixed model fit by REML ['lmerMod']"
    assert lines[1] == "Formula: y ~ x + (x | g)"
    assert "REML criterion at convergence: 20.0" in text
    i = lines.index("Scaled residuals:")
    assert lines[i + 1].split() == ["Min", "1Q", "Median", "3Q", "Max"]
    assert [float(v) for v in lines[i + 2].split()] == [-1.0, -0.25, 0.25, 0.625, 1.0]
    i = lines.index("Random effects:")
    assert lines[i + 1].split() == ["Groups", "Name", "Variance", "Std.Dev.", "Corr"]
    assert lines[i + 2].split() == ["g", "Intercept", "4.00", "2.0"]
    assert lines[i + 3].split() == ["x", "1.00", "1.0", "0.30"]
    assert lines[i + 4].split() == ["Residual", "2.25", "1.5"]
    assert lines[i + 5] == "Number of obs: 4, groups:  g, 2"
    i = lines.index("Fixed effects:")
    assert lines[i + 1].split() == ["Estimate", "Std.", "Error", "t", "value"]
    assert lines[i + 2].split() == ["Intercept", "10.0", "0.5", "20.0"]
    assert lines[i + 3].split() == ["x", "-2.5", "0.2", "-12.5"]
    assert lines[-1].split() == ["x", "-0.500"]


def test_printed_form_ml():
    fit = _fixed_result("ML")
    lines = str(fit).splitlines()
    assert lines[0] == "Linear mixed model fit by maximum likelihood ['lmerMod']"
    assert lines[3].split() == ["AIC", "BIC", "logLik", "deviance", "df.resid"]
    assert [float(v) for v in lines[4].split()] == [32.0, pytest.approx(fit.bic, abs=0.05),
                                                    -10.0, 20.0, -2.0]
    assert repr(fit) == str(fit)


@pytest.mark.parametrize("formula,dataset", [
    ("diameter ~ 1 + (1 | plate)", "Penicillin"),
    ("log_radon ~ floor + log_uranium + (floor | county)", "radon"),
])
def test_no_false_boundary_fit(formula, dataset):
    """L-BFGS-B's first step can land on θ = 0 (a stationary point); the fit must leave it."""
    from scipy.optimize import minimize

    from bayeslmm.linalg.pls import PLS

    d = build_design(formula, blm.datasets.load(dataset))
    fit = fit_map(d, "ML")
    pls = PLS.from_design(d)
    bounds = [(0, None) if lo == 0 else (None, None) for lo in pls.layout.lower]
    other = min(minimize(pls.objective, s * pls.layout.start(), method="Powell",
                         bounds=bounds).fun for s in (0.3, 0.6))
    assert -2 * fit.loglik <= other + 1e-6
    assert not fit.singular
