"""The structures of issue 18 (CorSymm, CorARMA, the spatial family; VarConstPower,
VarFixed, VarComb): their matrices against nlme's corMatrix, log-densities against scipy
with the dense oracle (tests/oracle_structures.py), PyTensor against NumPy, binding and
its errors, parameter maps, text."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytensor
import pytensor.tensor as pt
import pytest
from scipy import stats

import bayeslmm as blm
from bayeslmm.errors import BayesLMMError, DataError
from bayeslmm.residual.algebra import (
    initial_unconstrained,
    logdet_lambda,
    nlme_params,
    residual_logp,
    to_params,
    unwhiten,
    whiten,
)
from bayeslmm.residual.bind import bind
from bayeslmm.residual.corr_math import arma_acf, coef_to_pacf, pacf_to_coef
from bayeslmm.residual.correlations import (
    CorARMA,
    CorExp,
    CorGaus,
    CorLin,
    CorRatio,
    CorSpher,
    CorSymm,
)
from bayeslmm.residual.structures import AR1, Residual, VarExp, VarIdent, VarPower, parse_residual
from bayeslmm.residual.variances import VarComb, VarConstPower, VarFixed
from tests.oracle_structures import arma_autocorrelation, correlation_matrix, sd_weights

ROOT = Path(__file__).resolve().parents[1]
NLME = json.loads((ROOT / "models" / "nlme_more" / "corr_matrices.json").read_text())
N = 31


def _data(seed=0, sizes=(8, 7, 6, 5, 3, 2)):
    """Unequal groups, rows shuffled; integer times with gaps (it), positions 1..n
    within groups of n rows (k, unsorted), 2-D coordinates, a positive and a signed
    covariate, a factor."""
    rng = np.random.default_rng(seed)
    g = np.repeat(list("abcdef")[:len(sizes)], sizes)
    k = np.concatenate([rng.permutation(n) + 1 for n in sizes])
    n = len(g)
    df = pd.DataFrame({
        "g": g, "k": k, "it": rng.permutation(3 * n)[:n], "x": rng.uniform(0, 4, n),
        "y": rng.uniform(0, 4, n), "v": rng.uniform(0.5, 3.0, n),
        "w": rng.uniform(0.4, 3.0, n) * rng.choice([-1, 1], n),
        "s": pd.Categorical(rng.choice(["hi", "lo", "mid"], n), categories=["mid", "lo", "hi"]),
    })
    return df.sample(frac=1.0, random_state=seed).reset_index(drop=True), rng


STRUCTURES = [
    CorSymm(group="g"), CorSymm(group="g", time="k"), CorARMA(p=1, q=1, group="g"),
    CorARMA(p=2, q=1, group="g", time="it"), CorARMA(p=0, q=2, group="g"),
    CorExp(coords=("x", "y"), group="g", nugget=True), CorGaus(coords="x + y", group="g"),
    CorSpher(coords=("x", "y"), group="g", metric="maximum", nugget=True),
    CorRatio(coords=("x", "y"), group="g", metric="manhattan"),
    CorLin(coords="x", group="g", nugget=True), CorExp(coords=("x", "y")),
    VarConstPower(covariate="w"), VarConstPower(), VarFixed(covariate="v"),
    VarComb(VarIdent("s"), VarPower("w")), VarComb(VarFixed("v"), VarExp(), VarIdent("s")),
    Residual(VarComb(VarFixed("v"), VarConstPower("w")), CorARMA(1, 1, "g")),
    Residual(VarIdent("s"), CorExp(coords=("x", "y"), group="g")),
    Residual(VarComb(VarIdent("s"), VarPower("v")), AR1(group="g")),
]


def _params(rd, df, rng):
    """Package parameters (keys of params) and the oracle's natural ones."""
    p, nat = {}, {}
    c = rd.correlation
    if isinstance(c, CorSymm):
        d = rd.dense.dim
        A = rng.normal(size=(d, d + 2))
        S = A @ A.T
        C = S / np.sqrt(np.outer(np.diag(S), np.diag(S)))
        p["cor_symm"], nat["cor"] = C[np.triu_indices(d, 1)], C
    elif isinstance(c, CorARMA):
        phi, theta = [0.5, 0.25][:c.p], [0.4, -0.3][:c.q]
        p["arma_pacf"] = np.r_[coef_to_pacf(phi, -1.0), coef_to_pacf(theta, 1.0)]
        nat.update(Phi=phi, Theta=theta)
    elif isinstance(c, AR1):
        p["Phi"] = nat["Phi"] = -0.45
    elif c is not None:
        nat["range"] = p["range"] = 1.7
        if c.nugget:
            nat["nugget"] = p["nugget"] = 0.25
    values = {"A.": {}, "B.": {}, "C.": {}, "": {}}
    for b in rd.varfuncs or ():
        s, pre = b.structure, b.prefix
        if isinstance(s, VarIdent):
            r = np.array([0.6, 1.8])
            p[pre + "varident_ratio"] = r
            values[pre]["ratio"] = dict(zip(b.by_levels, [1.0, *r], strict=True))
        for name, val in (("power", 0.7), ("expon", -0.3), ("const", 0.8)):
            if pre + name in b.names:
                p[pre + name] = values[pre][name] = val
    if isinstance(rd.variance, VarIdent):
        p["varident_ratio"] = np.array([0.6, 1.8])
        nat["ratio"] = {"mid": 1.0, "lo": 0.6, "hi": 1.8}
    fitted = rng.normal(size=len(df)) + 3.0
    if rd.fitted_covariate:
        p["fitted"] = fitted
    v = rd.variance
    nat["parts"] = [values[f"{chr(65 + k)}."] for k in range(len(v.parts))] \
        if isinstance(v, VarComb) else None
    if v is not None and not isinstance(v, VarComb | VarIdent):
        nat.update(values[""])
    return p, nat, fitted


def _oracle(rd, df, nat, fitted):
    r = rd.structure
    C = correlation_matrix(r.correlation, df, nat) if r.correlation is not None \
        and not isinstance(r.correlation, AR1) else np.eye(len(df))
    if isinstance(r.correlation, AR1):
        g = df["g"].to_numpy()
        pos = np.array([np.sum(g[:i] == g[i]) for i in range(len(g))])
        C = np.where(g[:, None] == g[None, :],
                     nat["Phi"] ** np.abs(np.subtract.outer(pos, pos)), 0.0)
    if r.variance is None:
        return C
    d = sd_weights(r.variance, df, nat, fitted)
    return d[:, None] * C * d[None, :]


@pytest.fixture(params=STRUCTURES, ids=repr)
def case(request):
    df, rng = _data()
    rd = bind(request.param, df)
    p, nat, fitted = _params(rd, df, rng)
    return rd, df, p, _oracle(rd, df, nat, fitted), rng


@pytest.mark.parametrize("item", NLME["cases"], ids=lambda c: c["name"])
def test_matrices_are_nlme_corMatrix(item):
    """The oracle's and the package's group matrices are nlme's (to 1e-12)."""
    df = pd.DataFrame(NLME["data"])
    r = parse_residual(item["residual"])
    rd = bind(r, df)
    given = item["params"]
    if "Phi" in given:
        phi, theta = np.atleast_1d(given["Phi"]), np.atleast_1d(given["Theta"])
        params = {"arma_pacf": np.r_[coef_to_pacf(phi, -1.0), coef_to_pacf(theta, 1.0)]}
        nat = {"Phi": phi, "Theta": theta}
    elif "cor_symm" in given:
        d = rd.dense.dim
        full = np.eye(d)
        full[np.triu_indices(d, 1)] = given["cor_symm"]
        full = np.triu(full) + np.triu(full, 1).T
        params, nat = {"cor_symm": np.asarray(given["cor_symm"])}, {"cor": full}
    else:
        params, nat = dict(given), dict(given)
    X = unwhiten(rd, np.eye(len(df)), params)
    ours, oracle = X @ X.T, correlation_matrix(r.correlation, df, nat)
    for g, mat in item["matrices"].items():
        rows = np.flatnonzero(df["g"].to_numpy() == g)
        np.testing.assert_allclose(ours[np.ix_(rows, rows)], mat, atol=1e-12)
        np.testing.assert_allclose(oracle[np.ix_(rows, rows)], mat, atol=1e-12)


def test_logp_matches_scipy_with_dense_oracle(case):
    rd, df, p, lam, rng = case
    eps, sigma = rng.normal(size=N) * 1.7, 1.3
    ref = stats.multivariate_normal(cov=sigma**2 * lam).logpdf(eps)
    assert abs(residual_logp(rd, eps, sigma, p) - ref) < 1e-10
    pointwise = residual_logp(rd, eps, sigma, p, pointwise=True)
    assert pointwise.shape == (N,) and abs(pointwise.sum() - ref) < 1e-10
    assert abs(logdet_lambda(rd, p) - np.linalg.slogdet(lam)[1]) < 1e-10


def test_whitening_and_unwhitening_against_dense(case):
    rd, df, p, lam, rng = case
    M = rng.normal(size=(N, 3))
    W = whiten(rd, M, p)
    np.testing.assert_allclose(W.T @ W, M.T @ np.linalg.solve(lam, M), atol=1e-9)
    np.testing.assert_allclose(unwhiten(rd, W, p), M, atol=1e-10)
    np.testing.assert_allclose(whiten(rd, M[:, 0], p), W[:, 0], atol=1e-13)


#: one structure of each kind for the PyTensor graphs (each one costs a compilation)
PYTENSOR = [STRUCTURES[k] for k in (1, 3, 7, 9, 15, 17)]


@pytest.mark.parametrize("structure", PYTENSOR, ids=repr)
def test_pytensor_matches_numpy(structure):
    df, rng = _data(sizes=(5, 4, 4, 3, 2))  # small groups: small graphs to compile
    rd = bind(structure, df)
    p, _, _ = _params(rd, df, rng)
    n = len(df)
    sym = {k: pt.as_tensor(v).type() for k, v in p.items()}
    e, s, M = pt.dvector("e"), pt.dscalar("s"), pt.dmatrix("M")
    outs = [residual_logp(rd, e, s, sym), residual_logp(rd, e, s, sym, pointwise=True),
            logdet_lambda(rd, sym), whiten(rd, M, sym)]
    fn = pytensor.function([e, s, M, *sym.values()], [pt.as_tensor(o) for o in outs],
                           on_unused_input="ignore")
    eps, Mv = rng.normal(size=n), rng.normal(size=(n, 3))
    got = fn(eps, 0.9, Mv, *p.values())
    want = [residual_logp(rd, eps, 0.9, p), residual_logp(rd, eps, 0.9, p, pointwise=True),
            logdet_lambda(rd, p), whiten(rd, Mv, p)]
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("structure", [
    pytest.param(CorARMA(p=2, q=1, group="g"), marks=pytest.mark.slow),  # a long compile
    Residual(VarComb(VarIdent("s"), VarConstPower("v")),
             CorSpher(coords=("x", "y"), group="g", nugget=True))], ids=repr)
def test_pytensor_gradient_matches_differences(structure):
    """The gradient NUTS uses (through the blockwise Cholesky) against central
    differences of the NumPy log-density."""
    df, rng = _data(2, sizes=(4, 4, 3, 3, 2, 2))  # small groups: a small graph to compile
    rd = bind(structure, df)
    p, _, _ = _params(rd, df, rng)
    eps = rng.normal(size=len(df))
    names = [k for k in rd.param_names]
    sym = {k: pt.as_tensor(np.asarray(p[k], dtype=float)).type() for k in names}
    lp = residual_logp(rd, pt.as_tensor(eps), 1.1, sym)
    fn = pytensor.function(list(sym.values()), pytensor.grad(lp, list(sym.values())))
    grads = fn(*[np.asarray(p[k], dtype=float) for k in names])
    for k, g in zip(names, grads, strict=True):
        base = np.atleast_1d(np.asarray(p[k], dtype=float))
        for i in range(base.size):
            h = 1e-6
            up, dn = base.copy(), base.copy()
            up[i] += h
            dn[i] -= h
            fd = (residual_logp(rd, eps, 1.1, {**p, k: up if base.ndim and np.ndim(p[k])
                                                 else up[0]})
                  - residual_logp(rd, eps, 1.1, {**p, k: dn if np.ndim(p[k]) else dn[0]}))
            assert abs(np.atleast_1d(g)[i] - fd / (2 * h)) < 1e-5 * max(1, abs(fd / 2 / h))


def test_arma_maps_and_autocorrelations():
    a = np.array([0.6, -0.3, 0.2])
    for sign in (-1.0, 1.0):
        np.testing.assert_allclose(coef_to_pacf(pacf_to_coef(np, a, sign), sign), a)
    phi = pacf_to_coef(np, np.array([0.5, 0.2]), -1.0)  # AR(2): φ1 = a1(1 − a2), φ2 = a2
    np.testing.assert_allclose(phi, [0.4, 0.2])
    for p_, q_ in [([0.5, 0.2], [0.4]), ([], [0.3, -0.4]), ([0.7], [])]:
        acf = arma_acf(np, p_, q_, 6)
        np.testing.assert_allclose(acf, [arma_autocorrelation(p_, q_, k) for k in range(7)],
                                   atol=1e-12)


def test_unconstrained_maps_and_nlme_names():
    df, _ = _data()
    rd = bind(Residual(VarComb(VarIdent("s"), VarConstPower("v")),
                       CorSymm(group="g", time="k")), df)
    assert rd.param_names == ["cor_symm", "A.varident_ratio", "B.const", "B.power"]
    u0 = initial_unconstrained(rd)
    p0 = to_params(rd, u0)
    assert np.allclose(p0["cor_symm"], 0) and p0["B.const"] == 1.0 and p0["B.power"] == 0.0
    p = to_params(rd, np.r_[np.full(28, 0.9), [0.3, -0.2], [0.5], [1.5]])
    C = np.eye(8)
    C[np.triu_indices(8, 1)] = p["cor_symm"]
    assert np.all(np.linalg.eigvalsh(np.triu(C) + np.triu(C, 1).T) > 0)
    named = nlme_params(rd, p)
    assert list(named)[:2] == ["cor(1,2)", "cor(1,3)"] and named["A.mid"] == 1.0
    assert named["A.hi"] == pytest.approx(np.exp(-0.2)) and named["B.const"] == np.exp(0.5)
    rd = bind(CorARMA(p=1, q=1, group="g"), df)
    assert nlme_params(rd, to_params(rd, [2 * np.arctanh(0.5), 2 * np.arctanh(-0.2)])) \
        == pytest.approx({"Phi1": 0.5, "Theta1": -0.2})
    rd = bind(CorSpher(coords=("x", "y"), group="g", nugget=True), df)
    p = to_params(rd, [0.0, 0.0])  # nlme's: range = minD + e^u, nugget logistic
    assert p["range"] == pytest.approx(rd.dense.min_dist + 1) and p["nugget"] == 0.5


@pytest.mark.parametrize("struct, edit, match", [
    (CorExp(coords=("x", "y"), group="g"), {"x": [1.0, 1.0, 2.0], "y": [0.0, 0.0, 0.0]},
     r"Rows 0, 1 of CorExp.*same place.*nugget=True"),
    (CorARMA(p=1, group="g", time="t"), {"t": [0.5, 1.0, 2.0]}, r"'t'.*integer times.*row.* 0"),
    (CorSymm(group="g", time="t"), {"t": [1, 3, 1]}, r"'t'.*consecutive integer.*\[1, 3\]"),
    (CorGaus(coords="z", group="g"), None, r"Unknown column 'z'"),
    (VarFixed(covariate="x"), {"x": [1.0, 0.0, 2.0]}, r"'x'.*positive.*rows 1"),
    (VarComb(VarIdent("s"), VarPower("x")), {"s": ["p", "q", "q"]},
     r"Level 'p' of column 's'.*single obs"),
    (VarConstPower(covariate="x"), {"x": [2.0, 2.0, 2.0]}, r"'x'.*constant"),
])
def test_bind_errors_name_column_and_rows(struct, edit, match):
    df = pd.DataFrame({"g": ["a", "a", "b"], "t": [1, 2, 1], "x": [1.0, 2.0, 3.0],
                       "y": [0.0, 1.0, 0.5], "s": ["p", "q", "p"]})
    with pytest.raises(DataError, match=match):
        bind(struct, df.assign(**(edit or {})))


def test_structure_and_parameter_errors():
    with pytest.raises(BayesLMMError, match="whole number"):
        CorARMA(p=-1)
    with pytest.raises(BayesLMMError, match="p > 0 or q > 0"):
        CorARMA(p=0, q=0)
    with pytest.raises(BayesLMMError, match="metric"):
        CorExp(coords="x", metric="cosine")
    with pytest.raises(BayesLMMError, match="two or more"):
        VarComb(VarFixed("v"))
    with pytest.raises(BayesLMMError, match="VarComb multiplies"):
        Residual(variance=VarComb(VarFixed("v"), VarComb(VarFixed("v"), VarFixed("w"))))
    df, rng = _data()
    rd = bind(CorExp(coords=("x", "y"), group="g", nugget=True), df)
    with pytest.raises(BayesLMMError, match="nugget must lie"):
        residual_logp(rd, np.zeros(N), 1.0, {"range": 1.0, "nugget": 1.0})
    rd = bind(CorSymm(group="g"), df)
    with pytest.raises(BayesLMMError, match="cor_symm must be 28"):
        whiten(rd, np.zeros(N), {"cor_symm": np.zeros(3)})


@pytest.mark.parametrize("structure", STRUCTURES, ids=repr)
def test_text_round_trip(structure):
    r = structure if isinstance(structure, Residual) else parse_residual(repr(structure))
    assert parse_residual(repr(r)) == r


def test_cli_style_text():
    r = parse_residual("CorExp(coords=(latitude, longitude), group=Block, nugget=True)")
    assert r.correlation == CorExp(coords=("latitude", "longitude"), group="Block",
                                   nugget=True)
    assert parse_residual("CorARMA(1, 1, Subject)").correlation == CorARMA(1, 1, "Subject")
    assert parse_residual("VarComb(VarIdent(Sex), VarPower(age))").variance == \
        VarComb(VarIdent("Sex"), VarPower("age"))


def test_printed_sections_follow_nlme(orthodont):
    fit = blm.LMM("distance ~ age + Sex", orthodont,
                  residual=CorSymm(group="Subject")).fit_map("ML")
    text = str(fit)
    assert ("Correlation Structure: General\n Formula: ~1 | Subject\n"
            " Parameter estimate(s):\n Correlation: \n  1     2     3\n2 0.578\n"
            "3 0.619 0.532\n4 0.462 0.669 0.699") in text  # nlme's print.corSymm
    fit = blm.LMM("distance ~ age + Sex", orthodont, residual=Residual(
        VarComb(VarIdent("Sex"), VarPower("age")), CorARMA(p=1, q=1, group="Subject")))
    text = str(fit.fit_map("ML"))
    assert "Correlation Structure: ARMA(1,1)\n Formula: ~1 | Subject\n" in text
    assert ("Combination of variance functions: \n Structure: Different standard deviations "
            "per stratum\n Formula: ~1 | Sex\n Parameter estimates:\n") in text
    assert " Structure: Power of variance covariate\n Formula: ~age\n" in text
    fit = blm.LMM("distance ~ age", orthodont, residual=Residual(
        VarFixed("age"), CorLin(coords="age", group="Subject", nugget=True))).fit_map()
    text = str(fit)
    assert "Correlation Structure: Linear spatial correlation\n Formula: ~age | Subject\n" \
        in text
    assert "Variance function:\n Structure: fixed weights\n Formula: ~age\n" in text


def test_cli_reads_the_new_structures(capsys):
    from bayeslmm.cli import main

    assert main(["fit", "distance ~ age + Sex", "--data", "Orthodont", "--map", "ML",
                 "--residual", "Residual(VarComb(VarIdent(Sex), VarPower(age)), "
                 "CorARMA(p=1, q=1, group=Subject))"]) == 0
    out = capsys.readouterr().out
    assert "Correlation Structure: ARMA(1,1)" in out
    assert "Combination of variance functions:" in out


def test_edge_message_names_the_parameter():
    from bayeslmm.residual.dense_corr import edge_message, u_bounds

    df, _ = _data()
    rd = bind(CorExp(coords=("x", "y"), group="g", nugget=True), df)
    hi = u_bounds(rd.dense, rd.correlation)[0][1]
    assert "range = " in edge_message(rd.dense, rd.correlation, [hi, 0.0])
    assert edge_message(rd.dense, rd.correlation, [0.0, 0.0]) is None
    rd = bind(CorARMA(p=1, group="g"), df)
    assert "Phi1 = 0.99" in edge_message(rd.dense, rd.correlation, [12.0])
