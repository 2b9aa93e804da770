import numpy as np
import pandas as pd
import pytest

import bayeslmm as blm
from bayeslmm.errors import DataError, FormulaError
from bayeslmm.formula.design import build_design


def dense_Z(design):
    """Stack the terms into one n × Σ(levels·q) matrix, the obvious way."""
    blocks = []
    for t in design.terms:
        Zt = np.zeros((design.nobs, t.n_levels * t.q))
        for i in range(design.nobs):
            Zt[i, t.codes[i] * t.q : (t.codes[i] + 1) * t.q] = t.Z[i]
        blocks.append(Zt)
    return np.hstack(blocks)


def test_sleepstudy_Z_equals_hand_built(sleepstudy):
    d = build_design("Reaction ~ Days + (Days | Subject)", sleepstudy)
    subjects = list(sleepstudy["Subject"].cat.categories)
    hand = np.zeros((180, 36))
    for i, (s, days) in enumerate(zip(sleepstudy["Subject"], sleepstudy["Days"], strict=True)):
        k = subjects.index(s)
        hand[i, 2 * k] = 1.0
        hand[i, 2 * k + 1] = days
    np.testing.assert_array_equal(dense_Z(d), hand)
    np.testing.assert_array_equal(d.X, np.column_stack([np.ones(180), sleepstudy["Days"]]))
    np.testing.assert_array_equal(d.y, sleepstudy["Reaction"].to_numpy())
    assert d.terms[0].levels == subjects
    assert d.terms[0].blocks == ((0, 1),)


def test_uncorrelated_forms_are_one_diagonal_term(sleepstudy):
    a = build_design("Reaction ~ Days + (Days || Subject)", sleepstudy)
    b = build_design("Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)", sleepstudy)
    for d in (a, b):
        (t,) = d.terms
        assert t.term_names == ["Intercept", "Days"] and t.blocks == ((0,), (1,))
    np.testing.assert_array_equal(dense_Z(a), dense_Z(b))


def test_nested_and_interaction():
    pastes = blm.datasets.load("Pastes")
    d = build_design("strength ~ 1 + (1 | batch/cask)", pastes)
    assert d.ngroups == {"batch": 10, "batch:cask": 30}
    inter = d.term("batch:cask")
    # the nested factor has the same partition as the dataset's own 'sample' column
    np.testing.assert_array_equal(
        pd.factorize(pd.Series(inter.levels)[inter.codes])[0],
        pd.factorize(pastes["sample"].astype(str))[0],
    )
    assert inter.levels[:3] == ["A:a", "A:b", "A:c"]
    d2 = build_design("strength ~ 1 + (1 | batch:cask)", pastes)
    np.testing.assert_array_equal(d2.terms[0].codes, inter.codes)


def test_crossed_factors():
    d = build_design("diameter ~ 1 + (1 | plate) + (1 | sample)", blm.datasets.load("Penicillin"))
    assert d.ngroups == {"plate": 24, "sample": 6}
    assert dense_Z(d).sum(axis=1).tolist() == [2.0] * 144


def test_categorical_order_and_interactions(orthodont):
    d = build_design("distance ~ age * Sex + (age | Subject)", orthodont)
    assert d.fixef_names == ["Intercept", "age", "Sex[Female]", "age:Sex[Female]"]
    female = (orthodont["Sex"] == "Female").to_numpy(float)
    np.testing.assert_array_equal(d.X[:, 3], orthodont["age"].to_numpy() * female)
    # a plain string column is sorted, as R's factor() does
    df = orthodont.assign(Sex=orthodont["Sex"].astype(str))
    assert build_design("distance ~ Sex", df).fixef_names == ["Intercept", "Sex[Male]"]
    # an unordered categorical in the user's order keeps it
    df = orthodont.assign(Sex=pd.Categorical(orthodont["Sex"].astype(str),
                                             categories=["Male", "Female"]))
    assert build_design("distance ~ Sex", df).fixef_names == ["Intercept", "Sex[Female]"]


def test_no_intercept_and_transforms(orthodont):
    assert build_design("distance ~ 0 + Sex", orthodont).fixef_names == ["Sex[Male]",
                                                                         "Sex[Female]"]
    assert build_design("distance ~ age - 1", orthodont).fixef_names == ["age"]
    d = build_design("np.log(distance) ~ scale(age) + I(age ** 2) + (1 | Subject)", orthodont)
    np.testing.assert_allclose(d.y, np.log(orthodont["distance"]))
    np.testing.assert_allclose(d.X[:, 2], orthodont["age"] ** 2)
    ovary = blm.datasets.load("Ovary")
    d = build_design("follicles ~ sin(2 * pi * Time) + (1 | Mare)", ovary)
    np.testing.assert_allclose(d.X[:, 1], np.sin(2 * np.pi * ovary["Time"]))


def test_numeric_grouping_factor_is_categorical():
    df = pd.DataFrame({"y": np.arange(12.0) ** 1.5, "g": np.repeat([10, 2, 3], 4)})
    (t,) = build_design("y ~ 1 + (1 | g)", df).terms
    assert t.levels == ["2", "3", "10"] and t.codes.tolist() == [2] * 4 + [0] * 4 + [1] * 4


def test_missing_rows_dropped_with_warning(sleepstudy):
    df = sleepstudy.copy()
    df.loc[[3, 50], "Days"] = np.nan
    df["unused"] = np.nan
    with pytest.warns(UserWarning, match="Dropped 2 of 180 rows"):
        d = build_design("Reaction ~ Days + (Days | Subject)", df)
    assert d.nobs == 178 and 3 not in d.rows and 50 not in d.rows
    with pytest.raises(DataError, match="2 row\\(s\\) have missing values in column\\(s\\) "
                                        "\\['Days'\\]"):
        build_design("Reaction ~ Days + (Days | Subject)", df, na_action="raise")


def test_rank_deficient_X_drops_columns(sleepstudy):
    df = sleepstudy.assign(Days2=2 * sleepstudy["Days"])
    with pytest.warns(UserWarning, match="dropping 1 column.*Days2"):
        d = build_design("Reaction ~ Days + Days2 + (1 | Subject)", df)
    assert d.fixef_names == ["Intercept", "Days"] and d.dropped_fixef == ["Days2"]


@pytest.mark.parametrize(
    "formula, match",
    [
        ("Reaction ~ Day + (Days | Subject)", "Unknown column 'Day'.*Did you mean 'Days'"),
        ("Reaction ~ Days + (Days | Subjct)", "Unknown grouping column 'Subjct'.*'Subject'"),
        ("reaction ~ Days", "Unknown column 'reaction'.*'Reaction'"),
        ("Reaction ~ Days + (dayz | Subject)", "Unknown column 'dayz'.*random-effect term"),
        ("Reaction ~ Days + (1 | Subject) + (1 | Subject)", "appears twice"),
        ("Reaction ~ nosuch(Days)", "Unknown function 'nosuch' in the fixed effects.*may call"),
    ],
)
def test_errors_name_the_problem(sleepstudy, formula, match):
    with pytest.raises((DataError, FormulaError), match=match):
        build_design(formula, sleepstudy)


def test_data_errors(sleepstudy):
    one = sleepstudy.assign(G="only")
    with pytest.raises(DataError, match="'G' has a single level \\('only'\\)"):
        build_design("Reaction ~ Days + (1 | G)", one)
    with pytest.raises(DataError, match="response 'Subject' is not numeric"):
        build_design("Subject ~ Days", sleepstudy)
    empty = sleepstudy.assign(Days=np.nan)
    with pytest.raises(DataError, match="No rows left"), pytest.warns(UserWarning):
        build_design("Reaction ~ Days", empty)
    with pytest.raises(DataError, match="no rows"):
        build_design("Reaction ~ Days", sleepstudy.iloc[:0])
    per_row = sleepstudy.assign(id=np.arange(180))
    with pytest.raises(DataError, match="180 levels.*not identifiable"):
        build_design("Reaction ~ Days + (1 | id)", per_row)
    with pytest.raises(DataError, match="must be a pandas DataFrame"):
        build_design("Reaction ~ Days", sleepstudy.to_dict())
