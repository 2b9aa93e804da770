"""No silent wrong answers: data that cannot give an honest fit are refused before
fitting, and fits do not depend on the units of the predictors."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import bayeslmm as blm
from bayeslmm.errors import DataError


@pytest.fixture
def sleep():
    return blm.datasets.load("sleepstudy").copy()


def test_non_finite_predictors_are_named(sleep):
    sleep["x"] = sleep["Days"].astype(float)
    sleep.loc[5, "x"] = np.inf
    with pytest.raises(DataError, match=r"Column 'x' of the fixed effects has non-finite "
                                        r"values \(inf or NaN\) in rows 5"):
        blm.LMM("Reaction ~ x + (1 | Subject)", sleep)
    with pytest.raises(DataError, match="Column 'x' of the random-effect term of 'Subject'"):
        blm.LMM("Reaction ~ Days + (0 + x | Subject)", sleep)
    sleep.loc[5, "x"] = 0.0
    with pytest.raises(DataError, match=r"'np.log\(x\)'.*a transform such as np.log of 0"):
        blm.LMM("Reaction ~ np.log(x) + (1 | Subject)", sleep)


def test_duplicated_columns_are_refused(sleep):
    sleep.columns = ["Reaction", "Days", "Days"]
    with pytest.raises(DataError, match=r"duplicated column names \['Days'\]"):
        blm.LMM("Reaction ~ Days + (1 | Days)", sleep)


def test_constant_responses_are_refused(sleep):
    with pytest.raises(DataError, match="The response 'y' is constant"):
        blm.LMM("y ~ Days + (1 | Subject)", sleep.assign(y=3.0))
    # constant within each subject: the intercepts fit it exactly (an unbounded likelihood)
    means = sleep.groupby("Subject", observed=True)["Reaction"].transform("mean")
    with pytest.raises(DataError, match="constant within every level of 'Subject'"):
        blm.LMM("y ~ Days + (Days | Subject)", sleep.assign(y=means))
    blm.LMM("y ~ Days + (0 + Days | Subject)", sleep.assign(y=means + sleep["Days"]))


def test_a_two_valued_response_is_fitted_with_a_warning(sleep):
    with pytest.warns(UserWarning, match="takes two values only") as rec:
        blm.LMM("y ~ Days + (1 | Subject)", sleep.assign(y=sleep["Reaction"] > 300))
    assert rec[0].filename == __file__


@pytest.mark.parametrize("unit", [1e-6, 1e6, 1e8])
@pytest.mark.parametrize("method", ["ML", "REML"])
def test_fits_do_not_depend_on_the_units_of_the_predictors(sleep, unit, method):
    base = blm.LMM("Reaction ~ Days + (Days | Subject)", sleep).fit_map(method)
    fit = blm.LMM("Reaction ~ D + (D | Subject)", sleep.assign(D=sleep["Days"] * unit)
                  ).fit_map(method)
    assert fit.converged and not fit.singular
    # ML: the same likelihood; REML's criterion moves by 2 log(unit) (log|XᵀV⁻¹X|), as lme4's
    shift = 0.0 if method == "ML" else -np.log(unit)
    assert fit.loglik == pytest.approx(base.loglik + shift, rel=1e-9, abs=1e-6)
    np.testing.assert_allclose(fit.fixef.to_numpy() * [1, unit], base.fixef, rtol=1e-6)
    sd = fit.varcorr.set_index(["grp", "var1"])["sdcor"]
    assert sd[("Subject", "D")] * unit == pytest.approx(base.varcorr.sdcor[1], rel=1e-6)
    assert fit.sigma == pytest.approx(base.sigma, rel=1e-7)


def test_residual_structure_fits_do_not_depend_on_the_units_either():
    orth = blm.datasets.load("Orthodont")
    base = blm.LMM("distance ~ age + (age | Subject)", orth,
                   residual=blm.AR1(group="Subject")).fit_map("ML")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit = blm.LMM("distance ~ a + (a | Subject)", orth.assign(a=orth["age"] * 1e6),
                      residual=blm.AR1(group="Subject")).fit_map("ML")
    assert fit.loglik == pytest.approx(base.loglik, rel=1e-8)
    assert fit.residual_params["Phi"] == pytest.approx(base.residual_params["Phi"], abs=1e-5)


def test_a_response_of_any_scale_gives_the_same_ml_fit(sleep):
    base = blm.LMM("Reaction ~ Days + (Days | Subject)", sleep).fit_map("ML")
    for a in (1e-6, 1e6):
        fit = blm.LMM("y ~ Days + (Days | Subject)", sleep.assign(y=sleep["Reaction"] * a)
                      ).fit_map("ML")
        assert fit.loglik == pytest.approx(base.loglik - 180 * np.log(a), rel=1e-9)
        np.testing.assert_allclose(fit.fixef / a, base.fixef, rtol=1e-6)
    pd.testing.assert_index_equal(fit.fixef.index, base.fixef.index)


@pytest.mark.parametrize("parameterization", ["marginal", "conditional"])
def test_nuts_sees_the_same_posterior_whatever_the_units_of_the_response(sleep,
                                                                         parameterization):
    """With the data-scaled default priors, NUTS's coordinates (β standardised, Cholesky
    factors at unit scale, log σ) carry the same log-density for y, y·1e-6 and y·1e6 up
    to the constant n·log a and a shift of log σ: sampling behaves identically (before,
    the packed Cholesky factor was in y's units and nutpie failed to mix at 1e-6)."""
    def logps(a):
        m = blm.LMM("y ~ Days + (Days | Subject)", sleep.assign(y=sleep["Reaction"] * a))
        model = m.build(parameterization)
        f, start = model.compile_logp(), model.initial_point()
        out = []
        for seed in range(3):
            rng = np.random.default_rng(seed)
            point = {k: rng.normal(size=np.shape(v)) for k, v in start.items()}
            point["sigma_log__"] = point["sigma_log__"] + np.log(a)
            out.append(float(f(point)))
        return np.array(out)

    base = logps(1.0)
    for a in (1e-6, 1e6):
        np.testing.assert_allclose(logps(a) - base, -180 * np.log(a), rtol=1e-9)


def test_compare_refuses_ml_fits_and_points_to_anova(sleep):
    from bayeslmm.errors import BayesLMMError

    a = blm.LMM("Reaction ~ Days + (1 | Subject)", sleep).fit_map("ML")
    b = blm.LMM("Reaction ~ Days + (Days | Subject)", sleep).fit_map("ML")
    with pytest.raises(BayesLMMError, match=r"'a' is an ML/REML fit.*blm\.anova"):
        blm.compare({"a": a, "b": b})
    with pytest.raises(BayesLMMError, match="'m' is a LMM"):
        blm.compare({"m": blm.LMM("Reaction ~ Days + (1 | Subject)", sleep), "b": b})
