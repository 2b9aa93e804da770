import pytest

from bayeslmm.errors import FormulaError
from bayeslmm.formula.spec import Bar, parse_formula


@pytest.mark.parametrize(
    "formula, fixed, bars",
    [
        ("y ~ x + (x | g)", "x", [Bar("x", "g", True)]),
        ("y ~ x + (x || g)", "x", [Bar("x", "g", False)]),
        ("y ~ x + (0 + x | g)", "x", [Bar("0 + x", "g", True)]),
        ("y ~ 1 + (1 | a/b)", "1", [Bar("1", "a"), Bar("1", "a:b")]),
        ("y ~ 1 + (1 | a/b/c)", "1", [Bar("1", "a"), Bar("1", "a:b"), Bar("1", "a:b:c")]),
        ("y ~ (1 | a:b)", "1", [Bar("1", "a:b")]),
        ("y ~ x + (1 | a) + (1 | b)", "x", [Bar("1", "a"), Bar("1", "b")]),
        ("y ~ (1 | a) + x*z - 1", "x*z - 1", [Bar("1", "a")]),
        ("y ~ 0 + x + (1|g)", "0 + x", [Bar("1", "g")]),
        ("y ~ np.log(x) + (scale(x) | g)", "np.log(x)", [Bar("scale(x)", "g")]),
        ("y ~ x", "x", []),
    ],
)
def test_parse(formula, fixed, bars):
    s = parse_formula(formula)
    assert s.response == "y"
    assert s.fixed == fixed
    assert list(s.bars) == bars


def test_groups_in_order():
    assert parse_formula("y ~ (1|b) + (x|a) + (0+z|b)").groups == ["b", "a"]


@pytest.mark.parametrize(
    "formula, match",
    [
        ("y ~ x + (x | g", "Unbalanced parentheses"),
        ("y ~ x + x | g)", "Unbalanced parentheses"),
        ("y ~ x + x | g", "outside parentheses"),
        ("y x", "exactly one '~'"),
        ("~ x", "no response"),
        ("y ~ ", "nothing on the right"),
        ("y ~ (| g)", "nothing left of the bar"),
        ("y ~ (1 | )", "no grouping factor"),
        ("y ~ (1 | a | b)", "Too many bars"),
        ("y ~ (1 | a + b)", "Cannot read grouping factor"),
        ("", "non-empty string"),
    ],
)
def test_errors(formula, match):
    with pytest.raises(FormulaError, match=match):
        parse_formula(formula)


def test_grouping_columns_with_spaces_in_backticks():
    spec = parse_formula("y ~ x + (1 | `my subject`) + (x | `a b`/c)")
    assert [b.group for b in spec.bars] == ["my subject", "a b", "a b:c"]
    with pytest.raises(FormulaError, match="rename the column"):
        parse_formula("y ~ x + (1 | `a:b`)")
    with pytest.raises(FormulaError, match="Mix of ':' and '/'"):
        parse_formula("y ~ x + (1 | a/b:c)")


def test_a_grouping_column_with_a_space_fits_as_lme4_does():
    import bayeslmm as blm

    sleep = blm.datasets.load("sleepstudy").rename(columns={"Subject": "my subject",
                                                            "Days": "n days"})
    fit = blm.LMM("Reaction ~ `n days` + (`n days` | `my subject`)", sleep).fit_map("REML")
    # lme4, sleepstudy REML (models/reference): 251.405105, 10.467286; sd 24.740448
    assert fit.fixef["n days"] == pytest.approx(10.467286, rel=1e-6)
    assert fit.varcorr["sdcor"].iloc[0] == pytest.approx(24.740448, rel=1e-5)
