"""The blocked marginal engine for several grouping factors against the dense oracle
(log-density) and central differences (gradient): crossed, nested, partially crossed,
unbalanced designs with empty cells and q > 1 on several factors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayeslmm.formula.design import build_design
from bayeslmm.linalg.blocked_kernel import blocked_kernel_grads, blocked_logp_grad
from bayeslmm.linalg.blocked_layout import VALUE_NAMES, blocked_arrays
from bayeslmm.linalg.crossprod import CrossProducts
from bayeslmm.pymc.blocked_op import DATA_NAMES
from tests.oracle import dense_psi, dense_z, marginal_loglik


def _data(kind: str, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    if kind == "crossed":       # every subject meets every item
        s, i = np.meshgrid(np.arange(9), np.arange(6), indexing="ij")
        s, i = s.ravel(), i.ravel()
    elif kind == "unbalanced":  # crossed with empty cells and repeats
        s, i = rng.integers(0, 11, 120), rng.integers(0, 7, 120)
        s[:11], i[:7] = np.arange(11), np.arange(7)
    else:                       # nested: classes in schools
        i = rng.integers(0, 5, 90)
        s = i * 4 + rng.integers(0, 4, 90)
    n = len(s)
    x, z = rng.normal(size=n), rng.normal(size=n)
    g3 = rng.integers(0, 3, n)
    y = 1.0 + 0.5 * x + rng.normal(size=n) + 0.7 * rng.normal(size=12)[s % 12]
    return pd.DataFrame({"y": y, "x": x, "z": z, "s": s.astype(str), "i": i.astype(str),
                         "g3": g3.astype(str)})


CASES = [
    ("crossed", "y ~ x + (1 | s) + (1 | i)"),
    ("crossed", "y ~ x + (x | s) + (1 + x | i)"),
    ("unbalanced", "y ~ x + (x + z | s) + (x | i)"),
    ("unbalanced", "y ~ x + (1 | s) + (x | i) + (1 | g3)"),
    ("nested", "y ~ x + (1 | s) + (1 | i)"),
    ("nested", "y ~ x + (x | s) + (x | i)"),
]


def _params(design, cp, rng):
    """β, σ and random lower-triangular factors (design order and the engine's)."""
    chols = []
    for t in design.terms:
        L = np.tril(rng.normal(size=(t.q, t.q)) * 0.4)
        L[np.diag_indices(t.q)] = rng.uniform(0.4, 1.5, t.q)
        chols.append(L)
    qmax = max(t.q for t in design.terms)
    Ls = np.zeros((len(cp.order), qmax, qmax))
    for pos, k in enumerate(cp.order):
        Ls[pos, :design.terms[k].q, :design.terms[k].q] = chols[k]
    return rng.normal(size=design.X.shape[1]), rng.uniform(0.5, 1.5), chols, Ls


@pytest.mark.parametrize("kind, formula", CASES)
def test_log_density_equals_the_dense_oracle(kind, formula):
    d = build_design(formula, _data(kind, 1))
    cp = CrossProducts.from_design(d)
    arrays = blocked_arrays(cp)
    rng = np.random.default_rng(2)
    for _ in range(3):
        beta, sigma, chols, Ls = _params(d, cp, rng)
        G = dense_psi(d.terms, [L @ L.T for L in chols])
        want = marginal_loglik(d.y, d.X, dense_z(d.terms), G, beta, sigma)
        got = blocked_logp_grad(arrays, beta, sigma, Ls, cp.q)[0]
        assert got == pytest.approx(want, rel=1e-11, abs=1e-9)


@pytest.mark.parametrize("kind, formula", CASES)
def test_gradient_equals_central_differences(kind, formula):
    d = build_design(formula, _data(kind, 3))
    cp = CrossProducts.from_design(d)
    arrays = blocked_arrays(cp)
    beta, sigma, _, Ls = _params(d, cp, np.random.default_rng(4))
    _, g_beta, g_sigma, g_Ls = blocked_logp_grad(arrays, beta, sigma, Ls, cp.q)

    def f(b, s, L):
        return blocked_logp_grad(arrays, b, s, L, cp.q)[0]

    h = 1e-6
    for a in range(len(beta)):
        e = np.zeros_like(beta)
        e[a] = h
        assert g_beta[a] == pytest.approx((f(beta + e, sigma, Ls) - f(beta - e, sigma, Ls))
                                          / (2 * h), rel=1e-6, abs=1e-6)
    assert g_sigma == pytest.approx((f(beta, sigma + h, Ls) - f(beta, sigma - h, Ls))
                                    / (2 * h), rel=1e-6, abs=1e-6)
    for k in range(len(cp.q)):
        for i in range(cp.q[k]):
            for j in range(i + 1):
                E = np.zeros_like(Ls)
                E[k, i, j] = h
                fd = (f(beta, sigma, Ls + E) - f(beta, sigma, Ls - E)) / (2 * h)
                assert g_Ls[k, i, j] == pytest.approx(fd, rel=1e-6, abs=1e-6)


def test_layout_flags():
    full = blocked_arrays(CrossProducts.from_design(
        build_design("y ~ x + (1 | s) + (1 | i)", _data("crossed", 0))))
    nested = blocked_arrays(CrossProducts.from_design(
        build_design("y ~ x + (1 | s) + (1 | i)", _data("nested", 0))))
    partial = blocked_arrays(CrossProducts.from_design(
        build_design("y ~ x + (1 | s) + (1 | i)", _data("unbalanced", 0))))
    assert (bool(full["full"]), bool(full["blockdiag"])) == (True, False)
    assert (bool(nested["full"]), bool(nested["blockdiag"])) == (False, True)
    assert not partial["blockdiag"]


def test_not_positive_definite_is_minus_infinity():
    d = build_design("y ~ x + (1 | s) + (1 | i)", _data("crossed", 0))
    cp = CrossProducts.from_design(d)
    out = blocked_logp_grad(blocked_arrays(cp), np.zeros(2), 0.0, np.zeros((2, 1, 1)), cp.q)
    assert out[0] == -np.inf


@pytest.mark.parametrize("kind, formula", CASES)
def test_draws_have_the_conditional_mean_and_covariance(kind, formula):
    """b = L̃C⁻ᵀ(z + σε) is affine in ε: b(0) is the conditional mean and the columns
    b(e_k) − b(0) multiply to the conditional covariance σ²L̃P⁻¹L̃ᵀ, exactly."""
    from bayeslmm.linalg.blocked_draws import blocked_draw

    d = build_design(formula, _data(kind, 5))
    cp = CrossProducts.from_design(d)
    arrays = blocked_arrays(cp)
    beta, sigma, _, Ls = _params(d, cp, np.random.default_rng(6))
    a = cp.marginal_arrays()
    Q = a["zz"].shape[0]
    Lt = np.zeros((Q, Q))
    pos = 0
    for k, m in enumerate(cp.m):
        for _ in range(m):
            Lt[pos:pos + cp.q[k], pos:pos + cp.q[k]] = Ls[k, :cp.q[k], :cp.q[k]]
            pos += cp.q[k]
    P = Lt.T @ a["zz"] @ Lt + sigma**2 * np.eye(Q)
    mean = Lt @ np.linalg.solve(P, Lt.T @ (a["z_xy"] @ np.append(-beta, 1.0)))
    cov = sigma**2 * Lt @ np.linalg.inv(P) @ Lt.T
    b0 = blocked_draw(arrays, beta, sigma, Ls, cp.q, np.zeros(Q))
    cols = np.column_stack([blocked_draw(arrays, beta, sigma, Ls, cp.q, e) - b0
                            for e in np.eye(Q)])
    np.testing.assert_allclose(b0, mean, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(cols @ cols.T, cov, rtol=1e-8, atol=1e-11)


@pytest.mark.parametrize("kind, formula", CASES)
def test_gradient_in_the_data_matches_central_differences(kind, formula):
    """The kernel's gradient in each of the layout's values (for cross-products that
    depend on parameters), along random directions of the data's pattern (symmetric
    where the block is)."""
    d = build_design(formula, _data(kind, 3))
    cp = CrossProducts.from_design(d)
    a = blocked_arrays(cp)
    rng = np.random.default_rng(0)
    beta, sigma, _, Ls = _params(d, cp, rng)

    def run(arrays, grads):
        return blocked_kernel_grads(*[arrays[k] for k in DATA_NAMES[:-1]], float(a["n"]),
                                    bool(a["full"]), bool(a["blockdiag"]), beta, sigma, Ls,
                                    np.asarray(cp.q, np.int64), grads)

    out = run(a, True)
    for name, g in zip(VALUE_NAMES, out[4:], strict=True):
        assert g.shape == a[name].shape, name
        if not a[name].size:
            continue
        D = rng.normal(size=a[name].shape) * (a[name] != 0)
        D = D + np.swapaxes(D, -1, -2) if name in ("a11", "a22", "xy_xy") else D
        h = 1e-6
        num = (run({**a, name: a[name] + h * D}, False)[0]
               - run({**a, name: a[name] - h * D}, False)[0]) / (2 * h)
        assert abs(np.sum(g * D) - num) < 1e-6 * max(1.0, abs(num)), name
