"""Property-based tests (hypothesis): on random designs (group sizes from 1, q up to 3,
crossed and nested factors, residual structures) every fast log-density and gradient
equals the dense oracle (``tests/oracle.py``), and the ML/REML estimates are
equivariant under row permutation, level relabelling and affine changes of the
response and of a predictor.

The examples are derandomised (the same on every run) and bounded (``PROPS``), so this
module stays in the numerical tier.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.linalg as sla
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scipy.stats import multivariate_normal

import bayeslmm as blm
from bayeslmm.formula.design import build_design
from bayeslmm.linalg.crossprod import CrossProducts
from bayeslmm.linalg.marginal_kernel import marginal_logp_grad
from bayeslmm.linalg.pls import PLS
from bayeslmm.linalg.theta import ThetaLayout
from bayeslmm.pymc.direct import DirectModel
from bayeslmm.residual.algebra import residual_logp
from bayeslmm.residual.bind import bind
from bayeslmm.residual.structures import AR1, CAR1, CompSymm, Residual, VarExp, VarIdent, VarPower
from tests.oracle import dense_lambda, dense_psi, dense_z, marginal_loglik, profiled_criterion


def props(n: int) -> settings:
    """At most ``n`` examples, the same ones every run, no deadline (first calls JIT)."""
    return settings(max_examples=n, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


@st.composite
def designs(draw, max_q: int = 3, second: bool = True):
    """(formula, data): a factor ``g`` of 3–7 levels of 1–5 rows each with q = 1–3
    random coefficients (correlated or not), optionally a crossed factor ``k`` or a
    factor ``g:h`` nested in ``g``; rows shuffled."""
    sizes = draw(st.lists(st.integers(1, 5), min_size=3, max_size=7))
    assume(sum(sizes) >= 8)
    q = draw(st.integers(1, max_q))
    correlated = draw(st.booleans())
    extra = draw(st.sampled_from([None, "crossed", "nested"])) if second else None
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    n = sum(sizes)
    g = np.repeat(np.arange(len(sizes)), sizes)
    df = pd.DataFrame({"y": rng.normal(size=n), "x": rng.normal(size=n),
                       "z": rng.uniform(size=n), "w": rng.normal(size=n) * 3 + 1,
                       "g": pd.Categorical([f"g{i}" for i in g]),
                       "k": pd.Categorical([f"k{i}" for i in rng.integers(0, 3, n)]),
                       "h": pd.Categorical([f"h{i}" for i in rng.integers(0, 2, n)])})
    # identifiable: fewer random effects per factor than rows (DataError otherwise)
    assume(len(sizes) * q < n)
    assume(extra != "nested" or len(set(zip(g, df["h"], strict=True))) < n)
    assume(extra != "crossed" or df["k"].nunique() > 1)
    cols = {1: "1", 2: "x", 3: "x + z"}[q]
    bar = "|" if correlated or q == 1 else "||"
    formula = f"y ~ x + w + ({cols} {bar} g)"
    if extra == "crossed":
        formula += " + (1 | k)"
    elif extra == "nested":
        formula += " + (1 | g:h)"
    return formula, df.sample(frac=1.0, random_state=int(rng.integers(2**31)))


def _chol_factors(terms, rng) -> list[np.ndarray]:
    """A random Cholesky-type factor per term, zero outside its correlated blocks."""
    out = []
    for t in terms:
        mask = np.zeros((t.q, t.q), bool)
        for b in t.blocks:
            mask[np.ix_(b, b)] = True
        L = np.tril(rng.normal(scale=0.6, size=(t.q, t.q)))
        L[np.diag_indices(t.q)] = rng.uniform(0.3, 1.5, t.q)
        out.append(np.where(mask, L, 0.0))
    return out


def _dense_gradient(d, beta, sigma, Ls):
    """∂ log N(y | Xβ, Z Ψ̃ Zᵀ + σ²I) by dense matrix calculus: with a = V⁻¹r and
    M = ½(aaᵀ − V⁻¹), ∂/∂β = Xᵀa, ∂/∂σ = 2σ tr M, ∂/∂L_k = 2 S_k L_k for S_k the sum over
    levels of Z_{k,l}ᵀ M Z_{k,l}."""
    Z = dense_z(d.terms)
    V = Z @ dense_psi(d.terms, [L @ L.T for L in Ls]) @ Z.T + sigma**2 * np.eye(d.nobs)
    Vi = np.linalg.inv(V)
    a = Vi @ (d.y - d.X @ beta)
    M = 0.5 * (np.outer(a, a) - Vi)
    grads, col = [], 0
    for t, L in zip(d.terms, Ls, strict=True):
        Zk = Z[:, col:col + t.n_levels * t.q]
        col += t.n_levels * t.q
        S = (Zk.T @ M @ Zk).reshape(t.n_levels, t.q, t.n_levels, t.q)
        S = np.einsum("lilj->ij", S)
        grads.append(2.0 * S @ L)
    return d.X.T @ a, 2.0 * sigma * np.trace(M), grads


@props(25)
@given(designs(), st.integers(0, 2**31))
def test_marginal_kernel_equals_dense_oracle(design, seed):
    formula, df = design
    d = build_design(formula, df)
    rng = np.random.default_rng(seed)
    beta, sigma = rng.normal(size=d.X.shape[1]), float(rng.uniform(0.3, 2.0))
    Ls = _chol_factors(d.terms, rng)
    cp = CrossProducts.from_design(d)
    qmax = max(cp.q)
    packed = np.zeros((len(Ls), qmax, qmax))
    for k, j in enumerate(cp.order):
        packed[k, :d.terms[j].q, :d.terms[j].q] = Ls[j]
    a = cp.marginal_arrays()
    lp, g_beta, g_sigma, g_L, *_ = marginal_logp_grad(a["zz"], a["z_xy"], a["xy_xy"], cp.n,
                                                      beta, sigma, packed, np.array(cp.q),
                                                      np.array(cp.m), False)
    Z = dense_z(d.terms)
    want = marginal_loglik(d.y, d.X, Z, dense_psi(d.terms, [L @ L.T for L in Ls]), beta, sigma)
    assert lp == pytest.approx(want, rel=1e-10)
    w_beta, w_sigma, w_L = _dense_gradient(d, beta, sigma, Ls)
    np.testing.assert_allclose(g_beta, w_beta, rtol=1e-8, atol=1e-8)
    assert g_sigma == pytest.approx(w_sigma, rel=1e-8, abs=1e-8)
    for k, j in enumerate(cp.order):
        q = d.terms[j].q
        free = np.tril(Ls[j] != 0)  # the factor's free entries
        np.testing.assert_allclose(g_L[k, :q, :q][free], w_L[j][free], rtol=1e-7, atol=1e-8)


@props(25)
@given(designs(), st.integers(0, 2**31), st.booleans())
def test_pls_objective_equals_dense_criterion(design, seed, reml):
    formula, df = design
    d = build_design(formula, df)
    lay = ThetaLayout.from_terms(d.terms)
    rng = np.random.default_rng(seed)
    theta = np.where(lay.is_diag, rng.uniform(0.0, 2.0, lay.size),
                     rng.uniform(-0.8, 0.8, lay.size))
    assert PLS.from_design(d).objective(theta, reml) == pytest.approx(
        profiled_criterion(d, theta, reml), rel=1e-10)


@props(3)  # each example compiles PyMC's log-density
@given(designs(max_q=2), st.integers(0, 2**31))
def test_direct_model_equals_pymc_logp_and_gradient(design, seed):
    formula, df = design
    m = blm.LMM(formula, df)
    model = m.build("marginal")
    direct = DirectModel.of(model, m.design, m._priors, m._cross_products)
    assert direct is not None
    logp, dlogp = model.compile_logp(), model.compile_dlogp()
    start = model.initial_point()
    base = np.concatenate([np.ravel(start[n]) for n in direct.value_names])
    x = base + np.random.default_rng(seed).normal(scale=0.3, size=base.shape)
    lp, grad = direct.logp_grad(x)
    assert lp == pytest.approx(float(logp(direct.point(x))), rel=1e-10, abs=1e-8)
    np.testing.assert_allclose(grad, dlogp(direct.point(x)), rtol=1e-7, atol=1e-8)


@functools.cache
def _tail_model(formula: str):
    """A marginal model, its precompiled density and PyMC's compiled one (once)."""
    rng = np.random.default_rng(5)
    df = pd.DataFrame({"y": rng.normal(size=40), "x": rng.normal(size=40),
                       "g": pd.Categorical(np.repeat(np.arange(8), 5)),
                       "k": pd.Categorical(np.tile(np.arange(5), 8)),
                       "h": pd.Categorical(np.tile([0, 0, 1, 1, 1], 8))})
    m = blm.LMM(formula, df)
    model = m.build("marginal")
    direct = DirectModel.of(model, m.design, m._priors, m._cross_products)
    return direct, model.compile_logp(), model.compile_dlogp()


@props(40)
@given(st.sampled_from(["y ~ x + (x | g)", "y ~ x + (1 | g)", "y ~ x + (1 | g) + (1 | k)",
                        "y ~ x + (1 | g) + (1 | g:h)"]),
       st.lists(st.floats(-800.0, 40.0), min_size=6, max_size=6))
def test_direct_model_in_the_far_tails(formula, values):
    """Far out in the unconstrained space (where exp underflows or overflows, as NUTS's
    first steps may go) the precompiled density returns a number or -inf, never raises
    (an exception inside nutpie's sampler crashes the fit), and equals PyMC's where
    PyMC's is finite."""
    direct, logp, dlogp = _tail_model(formula)
    assert direct is not None
    x = np.array(values[:direct.ndim])
    with np.errstate(all="ignore"):
        lp, grad = direct.logp_grad(x)
        want = float(logp(direct.point(x)))
    assert not np.isnan(lp) and lp < np.inf
    if np.isfinite(want) and np.isfinite(lp) and abs(want) < 1e12:
        assert lp == pytest.approx(want, rel=1e-8)


_CORRELATIONS = [None, AR1(group="g"), AR1(group="g", time="t"), CAR1(time="u", group="g"),
                 CompSymm(group="g")]
_VARIANCES = [None, VarIdent(by="k"), VarPower(covariate="v"), VarExp(covariate="v")]


@props(40)
@given(st.lists(st.integers(1, 6), min_size=1, max_size=6), st.sampled_from(_CORRELATIONS),
       st.sampled_from(_VARIANCES), st.integers(0, 2**31))
def test_residual_logp_equals_dense_normal(sizes, correlation, variance, seed):
    assume(correlation is not None or variance is not None)
    n = sum(sizes)
    assume(n >= 6 and max(sizes) > 1)  # bind's data checks: some group of 2 rows or more
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"g": np.repeat([f"g{i}" for i in range(len(sizes))], sizes),
                       "t": rng.permutation(3 * n)[:n], "u": rng.uniform(0, 5, n),
                       "v": rng.uniform(0.3, 3.0, n) * rng.choice([-1, 1], n),
                       "k": rng.permutation(np.resize(["a", "b", "c"], n))}
                      ).sample(frac=1.0, random_state=seed)
    rd = bind(Residual(variance, correlation), df)
    lower = -1.0 / (max(sizes) - 1) if max(sizes) > 1 else -1.0
    params = {"Phi": float(rng.uniform(0.0, 0.95) if isinstance(correlation, CAR1)
                           else rng.uniform(-0.95, 0.95)),
              "Rho": float(rng.uniform(lower + 0.05 * (1 - lower), 0.95)),
              "power": float(rng.uniform(-1, 1)), "expon": float(rng.uniform(-1, 1)),
              "varident_ratio": rng.uniform(0.3, 3.0, max(len(rd.param_names), 3) - 1)}
    params = {k: v for k, v in params.items() if k in rd.param_names}
    if "varident_ratio" in params:
        params["varident_ratio"] = params["varident_ratio"][:len(rd.by_levels) - 1]
    eps, sigma = rng.normal(size=n), float(rng.uniform(0.3, 2.0))
    want = multivariate_normal(cov=sigma**2 * dense_lambda(rd, params)).logpdf(eps)
    assert residual_logp(rd, eps, sigma, params) == pytest.approx(want, rel=1e-10, abs=1e-10)
    pointwise = residual_logp(rd, eps, sigma, params, pointwise=True)
    assert pointwise.sum() == pytest.approx(want, rel=1e-10, abs=1e-10)


def _fit(formula, df, method):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return blm.LMM(formula, df).fit_map(method)


def _same_fit(a, b, *, beta=None, sigma_scale=1.0, loglik_shift=0.0):
    """``b`` is ``a`` transformed: β (given), σ scaled, loglik shifted, θ (the sds
    relative to σ) the same."""
    np.testing.assert_allclose(b.fixef.to_numpy(),
                               a.fixef.to_numpy() if beta is None else beta,
                               rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(b.fixef).max())))
    assert b.sigma == pytest.approx(a.sigma * sigma_scale, rel=1e-4)
    assert b.loglik == pytest.approx(a.loglik + loglik_shift, rel=1e-7, abs=1e-5)
    np.testing.assert_allclose(b.theta.to_numpy(), a.theta.to_numpy(), atol=2e-3)


@props(10)
@given(designs(max_q=2), st.sampled_from(["ML", "REML"]), st.integers(0, 2**31))
def test_estimates_invariant_to_row_order_and_level_labels(design, method, seed):
    formula, df = design
    a = _fit(formula, df, method)
    rng = np.random.default_rng(seed)
    shuffled = df.iloc[rng.permutation(len(df))]
    _same_fit(a, _fit(formula, shuffled, method))
    # new names, in another order: the fit is the same, each level's effects move with it
    levels = list(df["g"].cat.categories)
    names = {lv: f"L{j}" for lv, j in zip(levels, rng.permutation(len(levels)), strict=True)}
    relabelled = df.assign(g=pd.Categorical(df["g"].map(names).astype(str)))
    b = _fit(formula, relabelled, method)
    _same_fit(a, b)
    ra, rb = a.ranef["g"], b.ranef["g"]
    np.testing.assert_allclose(rb.loc[[names[lv] for lv in ra.index]].to_numpy(),
                               ra.to_numpy(), atol=1e-3 * max(1.0, float(np.abs(ra).max().max())))


@props(12)
@given(designs(max_q=2), st.sampled_from(["ML", "REML"]),
       st.floats(0.01, 100.0).flatmap(lambda s: st.sampled_from([s, -s])),
       st.floats(-50.0, 50.0))
def test_estimates_equivariant_to_affine_response(design, method, a, b):
    formula, df = design
    f0 = _fit(formula, df, method)
    f1 = _fit(formula, df.assign(y=a * df["y"] + b), method)
    beta = a * f0.fixef.to_numpy()
    beta[0] += b  # the intercept
    # θ (sds relative to σ) unchanged; σ and the sds scale by |a|; the density of a·y + b
    # is that of y over |a|ⁿ (REML: |a|^(n-p), the error contrasts)
    n_eff = f0.nobs - (len(beta) if method == "REML" else 0)
    _same_fit(f0, f1, beta=beta, sigma_scale=abs(a), loglik_shift=-n_eff * np.log(abs(a)))


@props(10)
@given(designs(max_q=2), st.sampled_from(["ML", "REML"]),
       st.floats(0.05, 20.0).flatmap(lambda s: st.sampled_from([s, -s])),
       st.floats(-10.0, 10.0))
def test_estimates_equivariant_to_affine_predictor(design, method, c, shift):
    formula, df = design
    f0 = _fit(formula, df, method)
    # w (fixed only): w' = c w + shift gives β_w / c and the intercept less β_w shift / c
    f1 = _fit(formula, df.assign(w=c * df["w"] + shift), method)
    beta = f0.fixef.to_numpy().copy()
    j = list(f0.fixef.index).index("w")
    beta[0] -= beta[j] * shift / c
    beta[j] /= c
    # REML's criterion has log|XᵀV⁻¹X|, which the scale of a column changes by 2 log|c|
    _same_fit(f0, f1, beta=beta, loglik_shift=-np.log(abs(c)) if method == "REML" else 0.0)
    # x (in the random term too): x' = c x divides its coefficient by c, and its random
    # slope's variance by c² and covariances by c (Ψ' = DΨD, D = diag(1, 1/c))
    f2 = _fit(formula, df.assign(x=c * df["x"]), method)
    beta = f0.fixef.to_numpy().copy()
    beta[list(f0.fixef.index).index("x")] /= c
    assert f2.loglik == pytest.approx(
        f0.loglik - (np.log(abs(c)) if method == "REML" else 0.0), rel=1e-7, abs=1e-5)
    np.testing.assert_allclose(f2.fixef.to_numpy(), beta, rtol=1e-4,
                               atol=1e-4 * max(1.0, float(np.abs(beta).max())))
    assert f2.sigma == pytest.approx(f0.sigma, rel=1e-4)
    v0, v2 = f0.varcorr, f2.varcorr
    scale = np.where(v0["var1"] == "x", 1 / c, 1.0) * np.where(v0["var2"] == "x", 1 / c, 1.0)
    scale = np.where((v0["var1"] == "x") & v0["var2"].isna(), 1 / c**2, scale)
    want = v0["vcov"].to_numpy() * scale
    np.testing.assert_allclose(v2["vcov"].to_numpy(), want, rtol=2e-3,
                               atol=1e-5 * max(1.0, float(np.abs(want).max())))


@pytest.mark.parametrize("n", [3])
def test_dense_gradient_helper_matches_differences(n):
    """The dense gradient used above, against central differences of the oracle."""
    rng = np.random.default_rng(n)
    df = pd.DataFrame({"y": rng.normal(size=20), "x": rng.normal(size=20),
                       "w": rng.normal(size=20), "g": pd.Categorical(rng.integers(0, 4, 20))})
    d = build_design("y ~ x + w + (x | g)", df)
    beta, sigma, Ls = rng.normal(size=3), 0.9, _chol_factors(d.terms, rng)
    Z = dense_z(d.terms)

    def f(b, s, L):
        return marginal_loglik(d.y, d.X, Z, dense_psi(d.terms, [L @ L.T]), b, s)

    g_beta, g_sigma, g_L = _dense_gradient(d, beta, sigma, Ls)
    h = 1e-6
    e = np.eye(3)
    np.testing.assert_allclose(
        g_beta, [(f(beta + h * e[i], sigma, Ls[0]) - f(beta - h * e[i], sigma, Ls[0])) / (2 * h)
                 for i in range(3)], rtol=1e-6)
    assert g_sigma == pytest.approx((f(beta, sigma + h, Ls[0]) - f(beta, sigma - h, Ls[0]))
                                    / (2 * h), rel=1e-6)
    E = np.zeros((2, 2))
    E[1, 0] = h
    assert g_L[0][1, 0] == pytest.approx((f(beta, sigma, Ls[0] + E) - f(beta, sigma, Ls[0] - E))
                                         / (2 * h), rel=1e-6)
    assert sla.norm(g_L[0]) > 0
