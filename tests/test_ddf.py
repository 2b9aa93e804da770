"""Tests of fixed effects: Satterthwaite's df against lmerTest on every lmer reference fit
of models/, Kenward–Roger's against pbkrtest on every REML one (values from
models/make_inference.R), and the refusals where neither is defined."""

from __future__ import annotations

import tomllib
import warnings

import numpy as np
import pytest

import bayeslmm as blm
from bayeslmm.errors import BayesLMMError, FitError
from bayeslmm.residual.structures import parse_residual
from bayeslmm.results.base import lme4_name
from conftest import ROOT, fit_reference, inference_reference

LMER = ["Dyestuff2_int", "Dyestuff_int", "Orthodont_int", "Orthodont_rslope", "Ovary_int",
        "Pastes_nested", "Penicillin_crossed", "radon_int", "sleepstudy_diag",
        "sleepstudy_rslope"]
SATTERTHWAITE = [f"{c}_{m}" for c in LMER for m in ("ml", "reml")]
KENWARD_ROGER = [f"{c}_reml" for c in LMER]
#: the issue's tolerance on df (relative); we are within ~1e-4 (lme4's θ vs ours)
RTOL = 1e-3


def _column(table: dict, col: str, names: list[str]) -> np.ndarray:
    return np.array([table[col][lme4_name(n)] for n in names])


def _check_table(got, ref_table):
    names = list(got.index)
    np.testing.assert_allclose(got["estimate"], _column(ref_table, "Estimate", names), rtol=1e-4)
    np.testing.assert_allclose(got["se"], _column(ref_table, "Std. Error", names), rtol=1e-3)
    np.testing.assert_allclose(got["df"], _column(ref_table, "df", names), rtol=RTOL)
    np.testing.assert_allclose(got["t"], _column(ref_table, "t value", names), rtol=1e-3)
    np.testing.assert_allclose(got["p"], _column(ref_table, "Pr(>|t|)", names), rtol=2e-2,
                               atol=1e-12)


@pytest.mark.parametrize("case", SATTERTHWAITE + [
    pytest.param("InstEval_crossed_ml", marks=pytest.mark.slow)])
def test_satterthwaite_equals_lmertest(case):
    ref = inference_reference(case)
    fit = fit_reference(ref)
    sat = ref["satterthwaite"]
    _check_table(fit.summary(ddf="Satterthwaite"), sat["coefficients"])
    c1 = fit.contrast(np.array(sat["contrast1"]["L"], dtype=float))
    assert c1["F"].iloc[0] == pytest.approx(sat["contrast1"]["t value"] ** 2, rel=2e-3)
    assert c1["ddf"].iloc[0] == pytest.approx(sat["contrast1"]["df"], rel=RTOL)
    if "joint" in sat:
        j = fit.contrast(np.array(sat["joint"]["L"], dtype=float))
        assert j["ndf"].iloc[0] == sat["joint"]["NumDF"]
        assert j["F"].iloc[0] == pytest.approx(sat["joint"]["F value"], rel=1e-3)
        assert j["ddf"].iloc[0] == pytest.approx(sat["joint"]["DenDF"], rel=RTOL)
        assert j["p"].iloc[0] == pytest.approx(sat["joint"]["Pr(>F)"], rel=2e-2, abs=1e-12)


@pytest.mark.parametrize("case", KENWARD_ROGER)
def test_kenward_roger_equals_pbkrtest(case):
    ref = inference_reference(case)
    fit = fit_reference(ref)
    kr = ref["kenward_roger"]
    _check_table(fit.summary(ddf="Kenward-Roger"), kr["coefficients"])
    c1 = fit.contrast(np.array(kr["contrast1"]["L"], dtype=float), ddf="Kenward-Roger")
    scaled = kr["contrast1"]["F.scaling"] * kr["contrast1"]["t value"] ** 2
    assert c1["F"].iloc[0] == pytest.approx(scaled, rel=2e-3)
    assert c1["ddf"].iloc[0] == pytest.approx(kr["contrast1"]["df"], rel=RTOL)
    if "joint" in kr:
        j = fit.contrast(np.array(kr["joint"]["L"], dtype=float), ddf="KR")
        assert j["ndf"].iloc[0] == kr["joint"]["ndf"]
        assert j["F"].iloc[0] == pytest.approx(kr["joint"]["F"], rel=1e-3)
        assert j["ddf"].iloc[0] == pytest.approx(kr["joint"]["ddf"], rel=RTOL)
        assert j["p"].iloc[0] == pytest.approx(kr["joint"]["p"], rel=2e-2, abs=1e-12)


def test_contrast_by_names_and_rhs(sleepstudy):
    fit = blm.LMM("Reaction ~ Days + (Days | Subject)", sleepstudy).fit_map()
    by_name = fit.contrast({"Days": 1.0})
    by_array = fit.contrast([0.0, 1.0])
    assert by_name.equals(by_array)
    # H0: Days = 10.467... (the estimate) gives F = 0
    at_estimate = fit.contrast({"Days": 1.0}, rhs=float(fit.fixef["Days"]))
    assert at_estimate["F"].iloc[0] == pytest.approx(0.0, abs=1e-12)
    # one row: F = t² of the summary
    t = fit.summary(ddf="Satterthwaite").loc["Days", "t"]
    assert by_name["F"].iloc[0] == pytest.approx(t**2, rel=1e-10)


def test_refusals(sleepstudy, orthodont):
    fit = blm.LMM("Reaction ~ Days + (Days | Subject)", sleepstudy).fit_map("ML")
    with pytest.raises(FitError, match="REML"):
        fit.summary(ddf="Kenward-Roger")
    with pytest.raises(BayesLMMError, match="ddf must be"):
        fit.summary(ddf="containment")
    with pytest.raises(BayesLMMError, match="2 finite coefficients"):
        fit.contrast([1.0, 2.0, 3.0])
    with pytest.raises(BayesLMMError, match="not fixed effects"):
        fit.contrast({"days": 1.0})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ar1 = blm.LMM("distance ~ age + (1 | Subject)", orthodont,
                      residual=blm.AR1(group="Subject")).fit_map()
    with pytest.raises(FitError, match="residual structure"):
        ar1.summary(ddf="Kenward-Roger")


NLME = inference_reference("nlme_satterthwaite")["fits"]


@pytest.mark.parametrize("case", sorted(NLME))
def test_satterthwaite_with_a_residual_structure_equals_emmeans(case):
    """lmerTest takes no nlme fits; emmeans approximates Satterthwaite's df for them
    (nlme's apVar; for lme fits a randomised gradient of vcov, ~1–5% noise between its
    runs). The same construction here, over (θ, σ, the structure's parameters), agrees:
    to 1e-3 for gls fits (deterministic there), to 6% for lme fits."""
    spec = tomllib.loads((ROOT / "models" / f"{case}.toml").read_text())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = blm.LMM(spec["formula"], blm.datasets.load(spec["dataset"]),
                      residual=parse_residual(spec["residual"])).fit_map("REML")
    got = fit.summary(ddf="Satterthwaite")
    ref = NLME[case]
    assert [lme4_name(n) for n in got.index] == ref["coefficients"]
    rtol = 1e-3 if ref["r_call"].startswith("gls") else 0.06
    np.testing.assert_allclose(got["df"], ref["df"], rtol=rtol)
    np.testing.assert_allclose(got["se"], fit.se, rtol=1e-6)


def test_a_loaded_fit_tests_and_refits(sleepstudy, tmp_path):
    """A saved fit comes back with its engine: the same tables, refits, draws."""
    fit = blm.LMM("Reaction ~ Days + (Days | Subject)", sleepstudy).fit_map()
    path = tmp_path / "fit.nc"
    fit.save(path)
    back = blm.load(path)
    assert back.summary(ddf="Satterthwaite").equals(fit.summary(ddf="Satterthwaite"))
    assert back.summary(ddf="Kenward-Roger").equals(fit.summary(ddf="Kenward-Roger"))
    assert back.simulate(2, random_seed=1).equals(fit.simulate(2, random_seed=1))
    assert back.refit(method="ML").loglik == pytest.approx(fit.refit(method="ML").loglik)
