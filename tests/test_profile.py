"""Profile and Wald intervals against lme4's ``confint(fit)`` (models/inference/*.json,
made by models/make_inference.R), the sd/cor/σ naming map, the profile's plot and the
refusals."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.stats import norm

import bayeslmm as blm
from bayeslmm.errors import BayesLMMError, FitError
from bayeslmm.results.base import lme4_name
from conftest import fit_reference, inference_reference

#: the four of the issue, three more, and an ML fit (lme4 profiles the ML deviance for both)
CASES = ["sleepstudy_rslope_reml", "Penicillin_crossed_reml", "Pastes_nested_reml",
         "Dyestuff2_int_reml", "Dyestuff_int_reml", "sleepstudy_diag_reml",
         "Orthodont_int_reml", "sleepstudy_rslope_ml"]
#: lme4's intervals are reproduced to ~5e-6 (relative); the issue asks for 1e-3
RTOL = 1e-4


@pytest.fixture(scope="module")
def fits():
    cache: dict = {}

    def get(case):
        if case not in cache:
            ref = inference_reference(case)
            cache[case] = (ref, fit_reference(ref))
        return cache[case]

    return get


@pytest.mark.parametrize("case", CASES)
def test_profile_intervals_equal_lme4(case, fits):
    ref, fit = fits(case)
    prof = fit.profile()
    for level, key in ((0.95, "level95"), (0.9, "level90")):
        r = ref["profile"][key]
        ci = prof.confint(level).rename(index=prof.lme4_names)
        assert list(ci.index) == r["names"]
        np.testing.assert_allclose(ci.iloc[:, 0], r["lower"], rtol=RTOL, atol=1e-9)
        np.testing.assert_allclose(ci.iloc[:, 1], r["upper"], rtol=RTOL, atol=1e-9)


def test_boundary_interval_starts_at_zero(fits):
    """Dyestuff2: the batch sd is estimated at 0; its profile starts there and the
    interval's lower end is the bound (lme4: 0, 2.0840)."""
    ref, fit = fits("Dyestuff2_int_reml")
    assert fit.singular
    ci = fit.confint()
    assert ci.loc["sd_Batch[Intercept]", "2.5 %"] == 0.0
    assert ci.loc["sd_Batch[Intercept]", "97.5 %"] == pytest.approx(2.084043489, rel=1e-5)
    pts = fit.profile().table
    sd = pts[pts[".par"] == "sd_Batch[Intercept]"]
    assert sd["sd_Batch[Intercept]"].min() == 0.0 and (sd[".zeta"] >= 0).all()


@pytest.mark.parametrize("case", ["sleepstudy_rslope_reml", "Pastes_nested_reml",
                                  "sleepstudy_diag_reml"])
def test_lme4_names_map_to_ours(case, fits):
    """lme4's .sig01... (oldNames) and its sd_(Intercept)|g names (oldNames = FALSE) name
    the same parameters as bayeslmm's sd_g[term] / corr_g[a, b]."""
    ref, fit = fits(case)
    ours = list(fit.confint(method="wald").index)
    assert list(fit.confint(method="wald", lme4_names=True).index) == ref["wald"]["names"]
    for mine, theirs in zip(ours, ref["profile"]["names_long"], strict=True):
        if theirs == "sigma" or not theirs.startswith(("sd_", "cor_")):
            assert lme4_name(mine) == theirs
            continue
        kind, rest = theirs.split("_", 1)
        terms, group = rest.rsplit("|", 1)
        g, inner = mine[:-1].split("[", 1)
        assert g.split("_", 1)[0] == ("sd" if kind == "sd" else "corr")
        assert sorted(g.split("_", 1)[1].split(":")) == sorted(group.split(":"))
        mine_terms = [lme4_name(t.strip()) for t in inner.split(",")]
        assert sorted(mine_terms) == sorted(terms.split("."))


@pytest.mark.parametrize("case", ["sleepstudy_rslope_reml", "Orthodont_int_reml"])
def test_wald_intervals_equal_lme4(case, fits):
    ref, fit = fits(case)
    ci = fit.confint(method="Wald")
    r = ref["wald"]
    lower = np.array([np.nan if v is None else v for v in r["lower"]])
    upper = np.array([np.nan if v is None else v for v in r["upper"]])
    np.testing.assert_allclose(ci.iloc[:, 0], lower, rtol=1e-6)
    np.testing.assert_allclose(ci.iloc[:, 1], upper, rtol=1e-6)


def test_profile_zeta_points_match_lme4(fits):
    """The profiled points themselves: ζ at lme4's parameter values, through our spline."""
    ref, fit = fits("sleepstudy_rslope_reml")
    prof = fit.profile()
    lme4 = {v: k for k, v in prof.lme4_names.items()}
    for row in ref["profile"]["table"]:
        par = lme4[row[".par"]]
        z = prof.zeta(par, [row[row[".par"]]])[0]
        if np.isfinite(z) and abs(row[".zeta"]) < 3.5:
            assert z == pytest.approx(row[".zeta"], abs=2e-4), (par, row)


def test_parm_selects_and_profiles_only_those(fits):
    _, fit = fits("Dyestuff_int_reml")
    ci = fit.confint(["sigma", "(Intercept)"])
    assert list(ci.index) == ["sigma", "Intercept"]
    assert fit.profile(["sigma"]).parameters == ["sigma"]
    assert list(fit.confint("theta_", method="wald").index) == ["sd_Batch[Intercept]", "sigma"]


def test_profile_plot_marks_the_intervals(fits):
    import matplotlib

    matplotlib.use("Agg")
    _, fit = fits("Dyestuff_int_reml")
    prof = fit.profile()
    fig = prof.plot(levels=(0.95,))
    assert [ax.get_xlabel() for ax in fig.axes] == prof.parameters
    lo, hi = prof.confint(0.95).loc["sigma"]
    ax = fig.axes[prof.parameters.index("sigma")]
    ends = [line.get_xydata() for line in ax.lines if line.get_linestyle() == ":"]
    z = norm.ppf(0.975)
    assert any(np.allclose(e, [[lo, 0], [lo, -z]]) for e in ends)
    assert any(np.allclose(e, [[hi, 0], [hi, z]]) for e in ends)


def test_refusals(fits, orthodont):
    _, fit = fits("Dyestuff_int_reml")
    with pytest.raises(BayesLMMError, match="method must be"):
        fit.confint(method="bayes")
    with pytest.raises(BayesLMMError, match="No parameter 'tau'"):
        fit.confint(["tau"])
    with pytest.raises(BayesLMMError, match="level"):
        fit.profile().confint(1.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ar1 = blm.LMM("distance ~ age + (1 | Subject)", orthodont,
                      residual=blm.AR1(group="Subject")).fit_map()
    with pytest.raises(FitError, match="residual structure"):
        ar1.profile()
    assert np.isfinite(ar1.confint(method="wald").loc["age"]).all()
