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
