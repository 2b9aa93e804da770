"""R's coding of factors and the formula's functions: contr.poly for ordered factors
(lme4's fixed effects of an ordered factor and its interaction: models/cake_ordered_*.toml
through tests/test_reference.py), C(x, Treatment), C(x, levels=[...]), zerocorr, unknown
functions."""

import numpy as np
import pandas as pd
import pytest

import bayeslmm as blm
from bayeslmm.errors import FormulaError
from bayeslmm.formula.contrasts import contr_poly, list_literals, poly_labels, rewrite_ordered
from bayeslmm.formula.design import build_design
from bayeslmm.results.base import lme4_name

#: R 4.2: print(contr.poly(6)) (7 significant digits as printed)
R_CONTR_POLY_6 = [
    [-0.5976143, 0.5455447, -0.3726780, 0.1889822, -0.06299408],
    [-0.3585686, -0.1091089, 0.5217492, -0.5669467, 0.31497039],
    [-0.1195229, -0.4364358, 0.2981424, 0.3779645, -0.62994079],
    [0.1195229, -0.4364358, -0.2981424, 0.3779645, 0.62994079],
    [0.3585686, -0.1091089, -0.5217492, -0.5669467, -0.31497039],
    [0.5976143, 0.5455447, 0.3726780, 0.1889822, 0.06299408],
]


@pytest.fixture(scope="module")
def cake():
    return blm.datasets.load("cake")


def test_contr_poly_is_rs():
    np.testing.assert_allclose(contr_poly(6), R_CONTR_POLY_6, atol=5e-8)
    assert poly_labels(7) == [".L", ".Q", ".C", "^4", "^5", "^6"]
    Z = contr_poly(9)
    np.testing.assert_allclose(Z.T @ Z, np.eye(8), atol=1e-12)
    np.testing.assert_allclose(Z.sum(axis=0), 0, atol=1e-12)


def test_ordered_factor_names_as_r_prints_them(cake):
    d = build_design("angle ~ recipe * temperature + (1 | recipe:replicate)", cake)
    assert d.fixef_names[:8] == ["Intercept", "recipe[B]", "recipe[C]", "temperature[.L]",
                                 "temperature[.Q]", "temperature[.C]", "temperature[^4]",
                                 "temperature[^5]"]
    assert [lme4_name(n) for n in d.fixef_names[-2:]] == ["recipeC:temperature^4",
                                                          "recipeC:temperature^5"]
    codes = cake["temperature"].cat.codes.to_numpy()
    np.testing.assert_allclose(d.X[:, 3:8], contr_poly(6)[codes], atol=1e-14)
    # unordered, the same column gets treatment coding
    plain = cake.assign(temperature=cake["temperature"].cat.as_unordered())
    assert "temperature[185]" in build_design("angle ~ temperature", plain).fixef_names


def test_treatment_coding_on_request(cake):
    d = build_design("angle ~ C(temperature, Treatment)", cake)
    assert d.fixef_names[1] == "C(temperature, Treatment)[185]"
    assert rewrite_ordered("C(t, Treatment) + t:x + np.log(t2)", {"t", "t2"}) == \
        "C(t, Treatment) + C(t, Poly):x + np.log(t2)"


def test_same_fit_under_either_coding(cake):
    """Coding changes β, not the fitted values nor the ML likelihood."""
    a = blm.LMM("angle ~ recipe * temperature + (1 | recipe:replicate)", cake).fit_map("ML")
    b = blm.LMM("angle ~ recipe * C(temperature, Treatment) + (1 | recipe:replicate)",
                cake).fit_map("ML")
    assert a.loglik == pytest.approx(b.loglik, abs=1e-8)
    np.testing.assert_allclose(a.predict().to_numpy(), b.predict().to_numpy(), atol=1e-6)


def test_predictions_on_rows_with_some_levels(cake):
    fit = blm.LMM("angle ~ C(recipe, levels=['C', 'A', 'B']) * temperature"
                  " + (1 | recipe:replicate)", cake).fit_map()
    rows = cake[(cake.recipe == "B") & (cake.temperature.isin(["185", "205"]))]
    np.testing.assert_allclose(fit.predict(rows).to_numpy(),
                               fit.predict().loc[rows.index].to_numpy(), atol=1e-10)


def test_levels_list_parses_and_orders(cake):
    d = build_design("angle ~ C(recipe, levels=['C', 'A', 'B'])", cake)
    assert d.fixef_names == ["Intercept", "C(recipe, levels=['C', 'A', 'B'])[A]",
                             "C(recipe, levels=['C', 'A', 'B'])[B]"]
    with pytest.raises(FormulaError, match="Cannot read the list"):
        list_literals("C(recipe, levels=['C' 'A', B])")


def test_zerocorr_is_the_double_bar(sleepstudy):
    a = blm.LMM("Reaction ~ Days + zerocorr(Days | Subject)", sleepstudy).fit_map()
    b = blm.LMM("Reaction ~ Days + (Days || Subject)", sleepstudy).fit_map()
    assert a.loglik == b.loglik and a.blocks == b.blocks == {"Subject": ((0,), (1,))}


@pytest.mark.parametrize("formula, match", [
    ("Reaction ~ foo(Days) + (1 | Subject)", r"Unknown function 'foo' in the fixed effects.*"
     r"may call: .*scale.*np\.<name>"),
    ("Reaction ~ np.lgo(Days)", r"Unknown function 'np.lgo'.*Did you mean"),
    ("Reaction ~ Days + (lg(Days) | Subject)", r"Unknown function 'lg' in random-effect"),
    ("Reaction ~ Days + cs(0 + Days | Subject)", r"Unknown function 'cs' around the "
     r"random-effect term '\(0 \+ Days \| Subject\)'.*zerocorr"),
])
def test_unknown_functions_are_named(sleepstudy, formula, match):
    with pytest.raises(FormulaError, match=match):
        blm.LMM(formula, sleepstudy)


def test_saved_fit_keeps_the_coding(cake, tmp_path):
    df = cake.assign(recipe=pd.Categorical(cake.recipe, categories=["B", "A", "C"]))
    fit = blm.LMM("angle ~ recipe + temperature + (1 | recipe:replicate)", df).fit_map()
    fit.save(tmp_path / "f.nc")
    back = blm.load(tmp_path / "f.nc")
    assert list(back.fixef.index) == list(fit.fixef.index)
    assert back.loglik == pytest.approx(fit.loglik, rel=1e-12)
