"""ML/REML fits against lme4/nlme: every reference model in models/*.toml (residual
structures included), every value against its tolerance."""

from __future__ import annotations

import tomllib
import warnings
from pathlib import Path

import numpy as np
import pytest

import bayeslmm as blm
from bayeslmm.formula.design import build_design
from bayeslmm.mle.fit import fit_map
from bayeslmm.residual.bind import bind
from bayeslmm.residual.structures import parse_residual

MODELS = sorted((Path(__file__).resolve().parents[1] / "models").glob("*.toml"))


def _params():
    for path in MODELS:
        spec = tomllib.loads(path.read_text())
        marks = [pytest.mark.slow] if spec.get("slow") else []
        yield pytest.param(spec, id=spec["name"], marks=marks)


@pytest.fixture(scope="module")
def fits():
    cache: dict = {}

    def get(spec):
        if spec["name"] not in cache:
            data = blm.datasets.load(spec["dataset"])
            sigma = spec.get("fixed_sigma")
            design = build_design(spec["formula"], data, weights=spec.get("weights"),
                                  known_sigma=sigma is not None)
            structure = parse_residual(spec["residual"]) if spec.get("residual") else None
            rd = bind(structure, design) if structure is not None else None
            with warnings.catch_warnings(record=True) as w:
                warnings.simplefilter("always")
                fit = fit_map(design, spec["method"], residual=rd, sigma=sigma)
            cache[spec["name"]] = (fit, [str(x.message) for x in w])
        return cache[spec["name"]]

    return get


def _rel(a, b):
    return abs(a - b) / abs(b) if b != 0 else abs(a - b)


def test_models_exist():
    assert len(MODELS) >= 49


@pytest.mark.parametrize("spec", list(_params()))
def test_reference_fit(spec, fits):
    fit, messages = fits(spec)
    ref, tol = spec["reference"], spec["tolerance"]
    assert fit.converged
    assert fit.nobs == ref["nobs"]
    se = fit.se
    for name, value in ref["fixef"].items():
        err = abs(fit.fixef[name] - value)
        assert err <= max(tol["fixef_rel"] * abs(value), tol["fixef_se_frac"] * ref["se"][name]), \
            (name, fit.fixef[name], value)
    for name, value in ref["se"].items():
        assert _rel(se[name], value) <= tol["se_rel"], (name, se[name], value)
    vc = fit.varcorr
    for row in ref.get("sd", []):
        got = vc[(vc.grp == row["group"]) & (vc.var1 == row["term"]) & vc.var2.isna()].sdcor
        assert len(got) == 1, row
        got = float(got.iloc[0])
        if row["value"] == 0:
            assert got <= 1e-6 * fit.sigma, row
        else:
            assert _rel(got, row["value"]) <= tol["sd_rel"], (row, got)
    for row in ref.get("corr", []):
        got = vc[(vc.grp == row["group"]) & (vc.var1 == row["var1"]) & (vc.var2 == row["var2"])]
        assert len(got) == 1, row
        assert abs(float(got.sdcor.iloc[0]) - row["value"]) <= tol["corr_abs"], (row, got)
    assert _rel(fit.sigma, ref["sigma"]) <= tol["sigma_rel"]
    assert abs(fit.loglik - ref["loglik"]) <= tol["loglik_abs"], (fit.loglik, ref["loglik"])
    assert fit.singular == ref["singular"]
    if ref["singular"]:
        assert any("boundary (singular) fit" in m for m in messages)
    n_par = len(ref["fixef"]) + fit.theta.size + ("fixed_sigma" not in spec) \
        + len(fit.residual_params) \
        - (1 if spec.get("residual", "").count("VarIdent") else 0)  # reference ratio fixed
    assert fit.df == ref.get("df", n_par)
    nlme = spec.get("residual") or "fixed_sigma" in spec
    n_bic = ref["nobs"] - (len(ref["fixef"]) if nlme and
                           spec["method"] == "REML" else 0)  # nlme's REML BIC
    assert fit.aic == pytest.approx(ref.get("aic", -2 * ref["loglik"] + 2 * n_par),
                                    abs=2 * tol["loglik_abs"])
    assert fit.bic == pytest.approx(ref.get("bic", -2 * ref["loglik"] + n_par * np.log(n_bic)),
                                    abs=2 * tol["loglik_abs"])
    got = fit.residual_params
    assert set(got) == set(ref.get("residual_params", {}))
    for name, value in ref.get("residual_params", {}).items():
        assert abs(got[name] - value) <= tol["residual_abs"] * max(1.0, abs(value)), \
            (name, got[name], value)


@pytest.mark.parametrize("spec", [p for p in _params() if p.values[0].get("reference", {})
                                  .get("ranef")])
def test_reference_ranef(spec, fits):
    fit, _ = fits(spec)
    ref, tol = spec["reference"], spec["tolerance"]
    sds = {(r["group"], r["term"]): r["value"] for r in ref["sd"]}
    for group, block in ref["ranef"].items():
        modes = fit.ranef[group].loc[block["levels"]]
        cond = fit.ranef_sd[group].loc[block["levels"]]
        for term, vals in block.items():
            if term == "levels":
                continue
            scale = max(sds[(group, term)], 1e-8 * ref["sigma"])
            err = np.max(np.abs(modes[term].to_numpy() - vals["mode"]))
            assert err <= tol["ranef_frac"] * scale, (group, term, err)
            if "cond_sd" in vals:
                want = np.asarray(vals["cond_sd"])
                got = cond[term].to_numpy()
                assert np.all(np.abs(got - want) <= tol["ranef_sd_rel"] * np.maximum(want, scale)
                              ), (group, term, got[:3], want[:3])
