"""``blm.anova`` against lme4's ``anova()`` tables (models/inference/anova.json, made by
models/make_inference.R): REML fits refitted by ML (and saying so), refit=False, three
models, different fixed effects; the refusals; the bootstrap p-value."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import bayeslmm as blm
from bayeslmm.errors import BayesLMMError, DataError, FitError
from conftest import inference_reference

COLUMNS = ["npar", "AIC", "BIC", "logLik", "deviance", "Chisq", "Df", "Pr(>Chisq)"]


def _fit(formula: str, dataset: str, method: str) -> blm.MapResult:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return blm.LMM(formula, blm.datasets.load(dataset)).fit_map(method)


def _check(table, ref):
    assert list(table.columns) == COLUMNS
    assert list(table.index) == ref["rows"]
    for col in COLUMNS:
        want = np.array([np.nan if v is None else v for v in ref[col]], dtype=float)
        got = table[col].to_numpy(dtype=float)
        if col == "Pr(>Chisq)":
            np.testing.assert_allclose(got, want, rtol=2e-3)
        elif col == "Chisq":
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
        else:
            np.testing.assert_allclose(got, want, rtol=1e-6)


#: case in anova.json → (dataset, names of its rows in the call's order)
CASES = {"sleepstudy": ("sleepstudy", ["s0", "s1"]),
         "sleepstudy_norefit": ("sleepstudy", ["s0", "s1"]),
         "sleepstudy_three": ("sleepstudy", ["s1", "s0", "sd1"]),
         "orthodont_fixef": ("Orthodont", ["o0", "o1"]),
         "orthodont_fixef_ml": ("Orthodont", ["o0ml", "o1ml"])}


@pytest.mark.parametrize("case", list(CASES))
def test_anova_equals_lme4(case):
    ref = inference_reference("anova")[case]
    dataset, names = CASES[case]
    fits = [_fit(f, dataset, ref["method"]) for f in ref["models"]]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = blm.anova(*fits, names=names, refit=ref["refit"])
    said = [str(w.message) for w in caught]
    refitted = ref["refit"] and ref["method"] == "REML"
    assert ("refitting model(s) with ML (instead of REML)" in said) == refitted
    if "message" in ref:
        assert ref["message"] in said
    assert table.attrs["refitted"] == refitted
    _check(table, ref)
    # a dict names the rows as well; the table keeps each row's formula
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = blm.anova(dict(zip(names, fits, strict=True)), refit=ref["refit"])
    assert again.equals(table)
    assert table.attrs["models"] == {n: f.formula for n, f in zip(names, fits, strict=True)}


def test_refuses_what_lme4_refuses(sleepstudy):
    full = _fit("Reaction ~ Days + (Days | Subject)", "sleepstudy", "ML")
    part = blm.LMM("Reaction ~ Days + (Days | Subject)", sleepstudy.iloc[:170]).fit_map("ML")
    with pytest.raises(DataError, match="same size of dataset"):
        blm.anova(full, part)
    shuffled = sleepstudy.assign(Reaction=sleepstudy["Reaction"].sample(frac=1,
                                                                        random_state=1).values)
    other = blm.LMM("Reaction ~ Days + (1 | Subject)", shuffled).fit_map("ML")
    with pytest.raises(DataError, match="same data"):
        blm.anova(full, other)
    with pytest.raises(BayesLMMError, match="at least two"):
        blm.anova(full)
    with pytest.raises(BayesLMMError, match="not an ML/REML fit"):
        blm.anova(full, "m1")


def test_reml_mixtures_without_refit():
    o0 = _fit("distance ~ age + (1 | Subject)", "Orthodont", "REML")
    o1 = _fit("distance ~ age + Sex + (1 | Subject)", "Orthodont", "REML")
    with pytest.raises(FitError, match="different fixed effects"):
        blm.anova(o0, o1, refit=False)
    o1ml = _fit("distance ~ age + Sex + (1 | Subject)", "Orthodont", "ML")
    with pytest.warns(UserWarning, match="some models fit with REML = TRUE, some not"):
        blm.anova(o0, o1ml, refit=False)


def test_bootstrap_p_value():
    """pbkrtest's PBtest: a random slope whose LRT is 42 is never matched by responses
    simulated without it; a term that adds nothing (the
    correlation of sd1 → s1, LRT 0.06) is matched about as often as χ² says (p 0.80)."""
    s0 = _fit("Reaction ~ Days + (1 | Subject)", "sleepstudy", "ML")
    sd1 = _fit("Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)", "sleepstudy", "ML")
    s1 = _fit("Reaction ~ Days + (Days | Subject)", "sleepstudy", "ML")
    table = blm.anova(s0, sd1, s1, names=["s0", "sd1", "s1"], bootstrap=19, random_seed=2,
                      progressbar=False)
    # no simulated LRT reaches 42: p = 1 / (1 + #{LRT* > 0}) (about half are 0: a
    # variance at its bound)
    p = table.loc["sd1", "Pr(boot)"]
    assert p <= 0.2 and float(1 / p - 1).is_integer()
    assert 0.4 <= table.loc["s1", "Pr(boot)"] <= 1.0
    again = blm.anova(s0, sd1, s1, names=["s0", "sd1", "s1"], bootstrap=19, random_seed=2,
                      cores=1, progressbar=False)
    assert again["Pr(boot)"].equals(table["Pr(boot)"])
