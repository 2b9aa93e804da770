"""The four results name and type the accessors they share alike (bayeslmm.results.base)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

import bayeslmm as blm
from bayeslmm.results.base import MapBase, PosteriorBase, ResultBase
from tests.posteriors import synthetic_kernel_posterior, synthetic_posterior


@pytest.fixture(scope="module")
def results() -> dict:
    # random intercepts only: no correlation row, so var2 is missing in every row
    lmm = blm.LMM("Reaction ~ Days + (1 | Subject)", blm.datasets.load("sleepstudy"))
    rng = np.random.default_rng(0)
    W = rng.normal(size=(40, 100))
    df = pd.DataFrame({"y": W @ rng.normal(scale=0.1, size=100) + rng.normal(size=40)})
    kernel = blm.LMM("y ~ 1", df, random_matrices={"snps": W})
    return {"map": lmm.fit_map(), "posterior": synthetic_posterior(lmm, chains=1, draws=100),
            "kernel_map": kernel.fit_map(),
            "kernel_posterior": synthetic_kernel_posterior(kernel, chains=1, draws=100)}


def test_bases(results):
    assert all(isinstance(r, ResultBase) for r in results.values())
    assert isinstance(results["map"], MapBase)
    assert isinstance(results["kernel_map"], MapBase)
    assert isinstance(results["posterior"], PosteriorBase)
    assert isinstance(results["kernel_posterior"], PosteriorBase)


def test_fixef_is_a_series_named_fixef(results):
    for kind, r in results.items():
        assert r.fixef.name == "fixef", kind


def test_varcorr_has_nan_where_lme4_has_na(results):
    for kind, r in results.items():
        vc = r.varcorr
        assert all(isinstance(v, float) and math.isnan(v) for v in vc["var2"]), kind
        assert math.isnan(vc["var1"].iloc[-1]), kind


def test_ranef_index_named_after_its_group(results):
    for kind, r in results.items():
        assert all(df.index.name == g for g, df in r.ranef.items()), kind


def test_numbers_are_python_floats(results):
    for kind, r in results.items():
        assert type(r.sigma) is float, kind
        assert type(r.nobs) is int and isinstance(r.ngroups, dict), kind
    for kind in ("map", "kernel_map"):
        r = results[kind]
        assert {type(r.loglik), type(r.aic), type(r.bic)} == {float}, kind
        assert r.aic == pytest.approx(-2 * r.loglik + 2 * r.df)
        assert r.bic == pytest.approx(-2 * r.loglik + r.df * math.log(r.nobs))


def test_point_predictions_are_named_fit_and_draws_mu(results):
    new = blm.datasets.load("sleepstudy").head(3)
    fit = results["map"]
    assert fit.predict().name == fit.predict(new).name == "fit"
    assert fit.predict(new, se_fit=True).columns.tolist() == ["fit", "se"]
    kmap = results["kernel_map"]
    assert kmap.predict().name == kmap.predict(new_X=kmap.design.W[:2]).name == "fit"
    assert results["posterior"].predict(new).name == "mu"
    assert results["kernel_posterior"].predict().name == "mu"


def test_to_dict_is_strict_json_with_the_shared_entries(results):
    for kind, r in results.items():
        d = json.loads(json.dumps(r.to_dict(), allow_nan=False))
        assert d["kind"] == ("map" if kind.endswith("map") else "posterior")
        assert {"formula", "nobs", "ngroups", "fixef", "fixef_lme4", "varcorr",
                "sigma"} <= d.keys(), kind
        assert d["varcorr"][0]["var2"] is None
    for kind in ("map", "kernel_map"):
        d = results[kind].to_dict()
        assert {"method", "se", "loglik", "aic", "bic", "df", "converged"} <= d.keys()
    for kind in ("posterior", "kernel_posterior"):
        assert {"summary", "diagnostics", "priors", "info"} <= results[kind].to_dict().keys()


def test_posterior_warnings_are_printed_alike(results):
    for kind in ("posterior", "kernel_posterior"):
        r = results[kind]
        text = str(r)
        assert "max R-hat n/a (1 chain)" in text, kind
        assert [ln[9:] for ln in text.splitlines() if ln.startswith("WARNING: ")] == r.warnings
