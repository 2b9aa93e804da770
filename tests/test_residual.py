"""Residual structures: O(n) log-density, whitening and log-determinant against the dense
oracle and scipy, in NumPy and PyTensor; binding and its errors; priors."""

import numpy as np
import pandas as pd
import pytensor
import pytensor.tensor as pt
import pytest
from scipy import linalg, stats

import bayeslmm as blm
from bayeslmm.errors import BayesLMMError, DataError, FitError
from bayeslmm.formula.design import build_design
from bayeslmm.pymc.priors import resolve_priors
from bayeslmm.residual.algebra import (
    initial_unconstrained,
    logdet_lambda,
    nlme_params,
    residual_logp,
    to_params,
    unwhiten,
    whiten,
    whiten_design,
)
from bayeslmm.residual.bind import bind
from bayeslmm.residual.structures import (
    AR1,
    CAR1,
    CompSymm,
    Residual,
    VarExp,
    VarIdent,
    VarPower,
    parse_residual,
)
from tests.oracle import dense_lambda, profiled_criterion

N = 31


def _data(seed=0):
    """Groups of unequal sizes, rows shuffled (times unsorted within groups), integer
    times with gaps, continuous times, a signed covariate, a three-level factor."""
    rng = np.random.default_rng(seed)
    g = rng.choice(list("abcdef"), N, p=[0.3, 0.25, 0.2, 0.15, 0.05, 0.05])
    df = pd.DataFrame({
        "g": g,
        "it": rng.permutation(3 * N)[:N],
        "t": rng.permutation(N) * 0.7 + rng.uniform(0, 0.3, N),
        "v": rng.uniform(0.4, 3.0, N) * rng.choice([-1, 1], N),
        "s": pd.Categorical(rng.choice(["hi", "lo", "mid"], N), categories=["mid", "lo", "hi"]),
    })
    return df, rng


STRUCTURES = [
    AR1(group="g"), AR1(group="g", time="it"), AR1(), CAR1(time="t", group="g"),
    CompSymm(group="g"), VarIdent(by="s"), VarPower(covariate="v"), VarExp(covariate="v"),
    VarPower(), Residual(VarIdent("s"), AR1("g", "it")), Residual(VarPower("v"), CompSymm("g")),
    Residual(VarExp(), CAR1("t", "g")), Residual(VarPower(), AR1("g")),
]


def _params(rd, rng, n=N):
    p = {"Phi": 0.65 if isinstance(rd.correlation, CAR1) else -0.55, "Rho": 0.35,
         "power": 0.8, "expon": -0.45, "varident_ratio": np.array([0.4, 2.5]),
         "fitted": rng.normal(size=n) + 2.0}
    return {k: v for k, v in p.items() if k in rd.param_names or k == "fitted"}


@pytest.fixture(params=STRUCTURES, ids=repr)
def case(request):
    df, rng = _data()
    rd = bind(request.param, df)
    return rd, _params(rd, rng), rng


def test_logp_matches_scipy_with_dense_oracle(case):
    rd, p, rng = case
    eps, sigma = rng.normal(size=N) * 1.7, 1.3
    ref = stats.multivariate_normal(cov=sigma**2 * dense_lambda(rd, p)).logpdf(eps)
    np.testing.assert_allclose(residual_logp(rd, eps, sigma, p), ref, rtol=1e-12, atol=1e-10)
    pointwise = residual_logp(rd, eps, sigma, p, pointwise=True)
    assert pointwise.shape == (N,)
    np.testing.assert_allclose(pointwise.sum(), ref, rtol=1e-12, atol=1e-10)


def test_pytensor_matches_numpy(case):
    rd, p, rng = case
    sym = {k: pt.as_tensor(v).type() for k, v in p.items()}
    e, s, M = pt.dvector("e"), pt.dscalar("s"), pt.dmatrix("M")
    outs = [residual_logp(rd, e, s, sym), residual_logp(rd, e, s, sym, pointwise=True),
            logdet_lambda(rd, sym), whiten(rd, M, sym)]
    fn = pytensor.function([e, s, M, *sym.values()], outs, on_unused_input="ignore")
    eps, Mv = rng.normal(size=N), rng.normal(size=(N, 3))
    got = fn(eps, 0.9, Mv, *p.values())
    want = [residual_logp(rd, eps, 0.9, p), residual_logp(rd, eps, 0.9, p, pointwise=True),
            logdet_lambda(rd, p), whiten(rd, Mv, p)]
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)


def test_whitening_and_logdet_against_dense(case):
    rd, p, rng = case
    lam = dense_lambda(rd, p)
    M = rng.normal(size=(N, 4))
    W = whiten(rd, M, p)
    np.testing.assert_allclose(W.T @ W, M.T @ np.linalg.solve(lam, M), atol=1e-10)
    assert abs(logdet_lambda(rd, p) - np.linalg.slogdet(lam)[1]) < 1e-10
    # the transform is L⁻¹ for L the Cholesky factor of Λ with rows in sorted order
    o = rd.order
    expect = linalg.solve_triangular(np.linalg.cholesky(lam[np.ix_(o, o)]), M[o], lower=True)
    np.testing.assert_allclose(W[o], expect, atol=1e-10)
    np.testing.assert_allclose(unwhiten(rd, W, p), M, atol=1e-10)
    np.testing.assert_allclose(whiten(rd, M[:, 0], p), W[:, 0], atol=1e-14)


def test_unwhiten_draws_have_covariance_lambda():
    df, rng = _data(1)
    rd = bind(Residual(VarIdent("s"), CompSymm("g")), df)
    p = _params(rd, rng)
    x = unwhiten(rd, rng.normal(size=(N, 40000)), p)
    lam = dense_lambda(rd, p)
    scale = np.sqrt(np.outer(np.diag(lam), np.diag(lam)))
    np.testing.assert_allclose(np.cov(x) / scale, lam / scale, atol=0.03)


def test_bind_orders_rows_by_group_then_time():
    df = pd.DataFrame({"g": list("babab"), "t": [3.0, 2.0, 1.0, 1.0, 0.5]}, index=list("vwxyz"))
    rd = bind(CAR1(time="t", group="g"), df)
    assert list(df.index[rd.order]) == ["y", "w", "z", "x", "v"]
    np.testing.assert_array_equal(rd.position, [0, 1, 0, 1, 2])
    np.testing.assert_allclose(rd.lag, [1.0, 1.0, 1.0, 0.5, 2.0])
    assert rd.group_levels == ["a", "b"] and rd.max_group_size == 3
    # AR1 with integer time gaps: corr Phi^gap, as nlme's corAR1 (via corARMA)
    rd = bind(AR1(group="g", time="t"), df.assign(t=[5, 1, 2, 3, 1]))
    lam = dense_lambda(rd, {"Phi": 0.5})
    assert lam[0, 2] == 0.5**3 and lam[1, 3] == 0.5**2 and lam[0, 1] == 0


def test_nlme_names_and_unconstrained_map():
    df, rng = _data()
    rd = bind(Residual(VarIdent("s"), CompSymm("g")), df)
    assert rd.param_names == ["Rho", "varident_ratio"] and rd.by_levels == ["mid", "lo", "hi"]
    out = nlme_params(rd, {"Rho": 0.3, "varident_ratio": np.array([0.5, 2.0])})
    assert out == {"Rho": 0.3, "mid": 1.0, "lo": 0.5, "hi": 2.0}
    u0 = initial_unconstrained(rd)
    p0 = to_params(rd, u0)
    assert abs(p0["Rho"]) < 1e-12 and np.allclose(p0["varident_ratio"], 1.0)
    p = to_params(rd, [-30.0, 1.0, -1.0])
    assert p["Rho"] > -1 / (rd.max_group_size - 1)
    assert to_params(bind(AR1(group="g"), df), [0.3]) == {"Phi": np.tanh(0.3)}
    assert 0 < to_params(bind(CAR1("t", "g"), df), [-2.0])["Phi"] < 0.5


@pytest.mark.parametrize("struct, edit, match", [
    (AR1(group="gg"), None, r"Unknown column 'gg'.*Did you mean 'g'"),
    (AR1(group="g", time="it"), {"it": [1, 2, 1]}, r"'it'.*duplicated times.*rows 0, 2"),
    (CAR1(time="t", group="g"), {"t": [0.5, 0.2, 0.5]}, r"'t'.*duplicated.*rows 0, 2"),
    (AR1(group="g", time="t"), {"t": [0.5, 1.0, 2.0]}, r"'t'.*integer times.*row.* 0"),
    (CAR1(time="s"), None, r"'s'.*must be numeric"),
    (VarPower(covariate="v"), {"v": [0.0, 1.0, 2.0]}, r"'v'.*is 0 in rows 0"),
    (VarExp(covariate="v"), {"v": [2.0, 2.0, 2.0]}, r"'v'.*constant"),
    (VarExp(covariate="v"), {"v": [2.0, np.inf, 2.0]}, r"'v'.*non-finite.*rows 1"),
    (VarIdent(by="s"), {"s": ["x", "y", "y"]}, r"Level 'x' of column 's'.*single obs.*row 0"),
    (VarIdent(by="s"), {"s": ["x", "x", "x"]}, r"'s'.*single level"),
    (CompSymm(group="s"), {"s": ["x", "y", "z"]}, r"single row.*not identifiable"),
])
def test_bind_errors_name_column_and_rows(struct, edit, match):
    df = pd.DataFrame({"g": ["a", "b", "a"], "it": [1, 2, 3], "t": [0.1, 0.2, 0.3],
                       "v": [1.0, 2.0, 3.0], "s": ["x", "y", "x"]})
    with pytest.raises(DataError, match=match):
        bind(struct, df.assign(**(edit or {})))


def test_structure_type_errors():
    with pytest.raises(BayesLMMError, match="takes VarIdent"):
        Residual(variance=AR1(group="g"))
    with pytest.raises(BayesLMMError, match="takes AR1"):
        Residual(correlation=VarIdent(by="s"))
    with pytest.raises(BayesLMMError, match="residual= takes"):
        blm.LMM("distance ~ age", blm.datasets.load("Orthodont"), residual="AR1")


def test_parse_residual_from_text():
    assert parse_residual("AR1(group=Subject)") == Residual(correlation=AR1(group="Subject"))
    both = parse_residual("Residual(variance=VarIdent(by='Sex'), correlation=CompSymm(Subject))")
    assert both == Residual(VarIdent("Sex"), CompSymm("Subject"))
    assert parse_residual("VarExp(age)").variance == VarExp("age")
    for bad, match in [("AR2(g)", "known:"), ("AR1(group=", "Cannot read"),
                       ("AR1(grp=g)", "unexpected keyword"), ("AR1(group=1)", "write e.g.")]:
        with pytest.raises(BayesLMMError, match=match):
            parse_residual(bad)


def test_numpy_parameter_checks():
    df, rng = _data()
    rd = bind(Residual(VarIdent("s"), AR1("g")), df)
    eps = rng.normal(size=N)
    with pytest.raises(BayesLMMError, match="Missing residual parameter"):
        residual_logp(rd, eps, 1.0, {"Phi": 0.1})
    with pytest.raises(BayesLMMError, match=r"Phi must lie in \(-1, 1\)"):
        residual_logp(rd, eps, 1.0, {"Phi": 1.0, "varident_ratio": np.ones(2)})
    with pytest.raises(BayesLMMError, match="2 positive ratios"):
        whiten(rd, eps, {"Phi": 0.1, "varident_ratio": np.ones(3)})
    rd = bind(CompSymm("g"), df)
    with pytest.raises(BayesLMMError, match="Rho must lie in"):
        logdet_lambda(rd, {"Rho": -0.5})


def test_missing_values_in_residual_columns_drop_rows(orthodont):
    df = orthodont.copy()
    df.loc[[2, 7], "age"] = np.nan
    with pytest.warns(UserWarning, match="Dropped 2 of 108 rows.*'age'"):
        m = blm.LMM("distance ~ Sex + (1 | Subject)", df,
                    residual=CAR1(time="age", group="Subject"))
    assert m.nobs == 106 and m.residual.n == 106
    with pytest.raises(DataError, match="Unknown column 'Age'.*residual"):
        build_design("distance ~ Sex", df, extra_columns=["Age"])


def test_rows_come_back_in_data_order(orthodont):
    """Shuffling the rows permutes the pointwise log-density and nothing else."""
    rng = np.random.default_rng(5)
    shuffled = orthodont.sample(frac=1.0, random_state=3)
    p = {"Phi": 0.4}
    rd_a = bind(AR1(group="Subject", time="age"), orthodont)
    rd_b = bind(AR1(group="Subject", time="age"), shuffled)
    eps = pd.Series(rng.normal(size=len(orthodont)), index=orthodont.index)
    a = residual_logp(rd_a, eps.to_numpy(), 1.0, p, pointwise=True)
    b = residual_logp(rd_b, eps[shuffled.index].to_numpy(), 1.0, p, pointwise=True)
    np.testing.assert_allclose(pd.Series(b, index=shuffled.index)[orthodont.index], a)


def test_default_priors_and_overrides(orthodont):
    d = build_design("distance ~ age + (1 | Subject)", orthodont)
    rd = bind(Residual(VarPower("age"), CompSymm("Subject")), d)
    pr = resolve_priors(d, None, rd)
    assert pr.residual["Rho"] == blm.Prior("Uniform", lower=-1 / 3, upper=1.0)
    assert pr.residual["power"].name == "Normal" and 1 <= pr.residual["power"].params["sigma"] <= 2
    assert "Rho" in pr.describe()
    pr = resolve_priors(d, {"Rho": blm.Prior("Beta", alpha=2, beta=2)}, rd)
    assert pr.residual["Rho"].name == "Beta"
    with pytest.raises(BayesLMMError, match="must keep it within"):
        resolve_priors(d, {"Rho": blm.Prior("Normal", mu=0, sigma=1)}, rd)
    with pytest.raises(BayesLMMError, match="Unknown prior 'Phi'"):
        resolve_priors(d, {"Phi": blm.Prior("Uniform", lower=-1, upper=1)}, rd)
    rd = bind(VarIdent("Sex"), d)
    with pytest.raises(BayesLMMError, match="positive values"):
        resolve_priors(d, {"varident_ratio": blm.Prior("Normal", mu=1, sigma=1)}, rd)


def test_map_with_residual_fits(orthodont):
    # ML/REML with residual structures: tests/test_map_residual.py, tests/test_reference.py
    m = blm.LMM("distance ~ age + (1 | Subject)", orthodont, residual=AR1(group="Subject"))
    assert set(m.fit_map().residual_params) == {"Phi"}


NLME = [
    ("Orthodont_ar1", "distance ~ age + Sex + (1 | Subject)", AR1(group="Subject")),
    ("Orthodont_gls_cs", "distance ~ age + Sex", CompSymm(group="Subject")),
    ("Orthodont_varident", "distance ~ age + Sex + (1 | Subject)", VarIdent(by="Sex")),
]


@pytest.mark.parametrize("method", ["ml", "reml"])
@pytest.mark.parametrize("case, formula, residual", NLME, ids=[c[0] for c in NLME])
def test_whitened_design_reproduces_nlme_loglik(orthodont, case, formula, residual, method):
    """At nlme's estimates, lme4's profiled criterion on the whitened design plus log|Λ|
    equals nlme's −2 logLik: the recipe for ML/REML with residual structures."""
    from tests.conftest import reference

    ref = reference(f"{case}_{method}")
    m = blm.LMM(formula, orthodont, residual=residual)
    rp = ref["residual_params"]
    if isinstance(residual, VarIdent):
        p = {"varident_ratio": np.array([rp[lv] for lv in m.residual.by_levels[1:]])}
    else:
        p = {k: v for k, v in rp.items() if k in ("Phi", "Rho")}
    theta = [x["value"] / ref["sigma"] for x in ref.get("sd", [])]
    white = whiten_design(m.residual, m.design, p)
    dev = profiled_criterion(white, theta, reml=method == "reml") + logdet_lambda(m.residual, p)
    assert abs(dev + 2 * ref["loglik"]) < 1e-8


def test_whiten_design_needs_nested_groups(orthodont):
    m = blm.LMM("distance ~ age + (1 | Subject)", orthodont, residual=AR1())
    with pytest.raises(FitError, match=r"not nested.*\['Subject'\]"):
        whiten_design(m.residual, m.design, {"Phi": 0.2})
    m = blm.LMM("distance ~ age + (1 | Subject)", orthodont, residual=VarIdent("Sex"))
    assert whiten_design(m.residual, m.design, {"varident_ratio": np.array([0.5])}).nobs == 108
