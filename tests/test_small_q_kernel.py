"""The closed-form one-factor kernel (q = 1, 2; structure-of-arrays cross-products)
equals the dense oracle (log-density; gradient by central differences of it) and the
general kernel (value and gradient) on random unbalanced designs, at the edges of its
support and on the direct nutpie path; q = 3 stays on the general kernel. The exact
b draws for q = 1, 2 equal the dense conditional level by level."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import bayeslmm as blm
from bayeslmm.formula.design import build_design
from bayeslmm.linalg.crossprod import CrossProducts
from bayeslmm.linalg.marginal_kernel import one_factor_logp_grad
from bayeslmm.linalg.small_q_draws import small_q_draws
from bayeslmm.linalg.small_q_kernel import small_q_logp_grad, soa_arrays
from bayeslmm.pymc.direct import DirectModel
from tests.oracle import dense_psi, dense_z, marginal_loglik

RE = {1: "1", 2: "x", 3: "x + z"}
FIXED = {1: "1", 2: "x", 3: "x + z"}


def _data(groups: int, seed: int) -> pd.DataFrame:
    """Unbalanced: 1 to 9 rows a group (a one-row group makes ZⱼᵀZⱼ singular for q ≥ 2),
    responses on a scale far from 1."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(groups), rng.integers(1, 10, groups))
    x, z = rng.normal(2.0, 3.0, g.size), rng.uniform(size=g.size)
    y = 40 + 3 * x + rng.normal(0, 5, groups)[g] + rng.normal(0, 2, groups)[g] * x \
        + rng.normal(0, 4, g.size)
    return pd.DataFrame({"y": y, "x": x, "z": z, "g": pd.Categorical(g)})


def _setup(q: int, p: int, groups: int, seed: int):
    d = build_design(f"y ~ {FIXED[p]} + ({RE[q]} | g)", _data(groups, seed))
    a = CrossProducts.from_design(d).marginal_arrays()
    rng = np.random.default_rng(seed + 7)
    L = np.tril(rng.normal(size=(q, q)) * 3.0)
    L[np.diag_indices(q)] = np.abs(L.diagonal()) + 0.5
    beta = np.array([40.0, 3.0, 0.5][:p]) + rng.normal(size=p)
    return d, a, L, beta, 4.0 + rng.uniform()


def _both(a, L, beta, sigma, n):
    zz_s, zx_s = soa_arrays(a["zz"], a["z_xy"])
    fast = small_q_logp_grad(zz_s, zx_s, a["xy_xy"], n, beta, sigma, L)
    slow = one_factor_logp_grad(a["zz"], a["z_xy"], a["xy_xy"], n, beta, sigma, L, False)
    return fast, slow[:4]


def _assert_equal(fast, slow, rtol=1e-10):
    assert fast[0] == pytest.approx(slow[0], rel=rtol, abs=0)
    for got, want in zip(fast[1:], slow[1:], strict=True):
        scale = np.max(np.abs(want))
        np.testing.assert_allclose(got, want, rtol=0, atol=rtol * scale)


@pytest.mark.parametrize("q", [1, 2])
@pytest.mark.parametrize("p", [1, 2, 3])
@pytest.mark.parametrize("groups", [2, 40, 600])  # 600: tiles of 256 and a remainder
def test_equals_oracle_and_general_kernel(q, p, groups):
    d, a, L, beta, sigma = _setup(q, p, groups, seed=10 * q + p + groups)
    fast, slow = _both(a, L, beta, sigma, float(d.nobs))
    _assert_equal(fast, slow)
    if groups <= 40:  # the dense oracle, n × n
        t = d.terms[0]
        want = marginal_loglik(d.y, d.X, dense_z(d.terms), dense_psi(d.terms, [L @ L.T]),
                               beta, sigma)
        assert fast[0] == pytest.approx(want, rel=1e-10, abs=0)
        assert t.q == q and d.X.shape[1] == p


@pytest.mark.parametrize("q", [1, 2])
def test_gradient_equals_oracle_differences(q):
    d, a, L, beta, sigma = _setup(q, 2, 12, seed=3 + q)
    Z = dense_z(d.terms)
    rows, cols = np.tril_indices(q)

    def oracle(theta):
        b, s = theta[:2], theta[2]
        Lm = np.zeros((q, q))
        Lm[rows, cols] = theta[3:]
        return marginal_loglik(d.y, d.X, Z, dense_psi(d.terms, [Lm @ Lm.T]), b, s)

    theta = np.concatenate([beta, [sigma], L[rows, cols]])
    h = 1e-5 * np.maximum(1.0, np.abs(theta))
    num = np.array([(oracle(theta + h[i] * np.eye(len(theta))[i])
                     - oracle(theta - h[i] * np.eye(len(theta))[i])) / (2 * h[i])
                    for i in range(len(theta))])
    fast, _ = _both(a, L, beta, sigma, float(d.nobs))
    got = np.concatenate([fast[1], [fast[2]], fast[3][rows, cols]])
    np.testing.assert_allclose(got, num, rtol=1e-6, atol=1e-6 * np.max(np.abs(num)))


@pytest.mark.parametrize("q", [1, 2])
def test_edges_of_the_support(q):
    d, a, L, beta, sigma = _setup(q, 2, 300, seed=5)
    n = float(d.nobs)
    # a zero column of L (the boundary), a small σ, large Ψ/σ² (blocks of levels whose
    # product of |P|/σ⁴ overflows take logarithms one by one): the general kernel's values
    Lz = L.copy()
    Lz[:, -1] = 0.0
    _assert_equal(*_both(a, Lz, beta, sigma, n))
    _assert_equal(*_both(a, L, beta, 0.1, n))
    # σ⁴ underflows: -inf, as the general kernel
    fast, slow = _both(a, L, beta, 1e-90, n)
    assert fast[0] == slow[0] == -np.inf


@pytest.mark.parametrize("q", [1, 2])
def test_blocks_whose_product_overflows(q):
    """|P|/σ⁴ ~ 10²⁰ a level: each block of levels takes its logarithms one by one. Ψ
    isotropic and well-conditioned levels keep P well conditioned."""
    d = build_design(f"y ~ x + ({RE[q]} | g)", _data(300, 6))
    a = CrossProducts.from_design(d).marginal_arrays()
    keep = np.linalg.eigvalsh(a["zz"])[:, 0] > 0.5  # well-conditioned levels only
    a = {"zz": a["zz"][keep], "z_xy": a["z_xy"][keep], "xy_xy": a["xy_xy"]}
    fast, slow = _both(a, 1e5 * np.eye(q), np.array([40.0, 3.0]), 0.5, float(d.nobs))
    assert fast[0] == pytest.approx(slow[0], rel=1e-10, abs=0)
    np.testing.assert_allclose(fast[2], slow[2], rtol=1e-10)
    np.testing.assert_allclose(fast[3], slow[3], rtol=0, atol=1e-10 * np.max(np.abs(slow[3])))
    np.testing.assert_allclose(fast[1], slow[1], rtol=0, atol=1e-10 * np.max(np.abs(slow[1])))


def test_singular_levels_with_large_variances_stay_finite():
    """One-row levels (ZⱼᵀZⱼ singular) under Ψ/σ² ~ 10¹⁶: |P| = |L|²|A| + σ² tr M + σ⁴
    has no cancellation (the general kernel's Cholesky factor of P fails there); the
    value agrees with the dense oracle on a small design."""
    d, a, L, beta, _ = _setup(2, 2, 12, seed=8)
    fast, _ = _both(a, 1e4 * L, beta, 0.5, float(d.nobs))
    want = marginal_loglik(d.y, d.X, dense_z(d.terms), dense_psi(d.terms, [1e8 * L @ L.T]),
                           beta, 0.5)
    assert np.isfinite(fast[0]) and fast[0] == pytest.approx(want, rel=1e-6)


@pytest.mark.parametrize("formula", ["y ~ x + (1 | g)", "y ~ x + z + (x | g)",
                                     "y ~ x + (x || g)", "y ~ 1 + (x + z | g)"])
def test_direct_path_uses_it_and_equals_the_general_kernel(formula):
    m = blm.LMM(formula, _data(300, 2))
    fast = DirectModel.of(m.marginal_model, m.design, m._priors, m._cross_products)
    q = m.design.terms[0].q
    assert fast.small_q == (q <= 2)
    a = m._cross_products.marginal_arrays()
    slow = DirectModel(fast.spec, (a["zz"], a["z_xy"], *fast.data[2:]), False,
                       fast.constant, fast.value_names, fast.value_shapes, fast.names,
                       fast.shapes, fast.groups)
    rng = np.random.default_rng(4)
    for _ in range(3):
        x = rng.normal(0, 0.5, fast.ndim)
        lp_f, g_f = fast.logp_grad(x)
        lp_s, g_s = slow.logp_grad(x)
        assert lp_f == pytest.approx(lp_s, rel=1e-10, abs=0)
        np.testing.assert_allclose(g_f, g_s, rtol=0, atol=1e-10 * np.max(np.abs(g_s)))


@pytest.mark.parametrize("q", [1, 2])
def test_draws_equal_the_dense_conditional(q):
    """b = L C⁻ᵀ(C⁻¹Lᵀrⱼ + σε) level by level (P = CCᵀ = LᵀAⱼL + σ²I; NumPy's Cholesky),
    per draw, on unbalanced levels (one-row levels included); no noise gives the
    conditional mean Ψ Zᵀ V⁻¹ r of the dense oracle."""
    d, a, _, _, _ = _setup(q, 2, 40, seed=9)
    rng = np.random.default_rng(3)
    nd, m = 3, a["zz"].shape[0]
    Ls = np.tril(rng.normal(size=(nd, q, q)))
    Ls[:, range(q), range(q)] = np.abs(Ls[:, range(q), range(q)]) + 0.5
    beta, sigma = rng.normal([40.0, 3.0], 1.0, (nd, 2)), rng.uniform(2.0, 5.0, nd)
    eps = rng.standard_normal((q, nd, m))
    zz_s, zx_s = soa_arrays(a["zz"], a["z_xy"])
    for noise in (eps, np.zeros_like(eps)):
        out = np.empty((nd, m, q))
        small_q_draws(0, nd, Ls, beta, sigma, zz_s, zx_s, noise, out)
        for k in range(nd):
            L, s = Ls[k], sigma[k]
            r = a["z_xy"] @ np.append(-beta[k], 1.0)
            for j in range(m):
                C = np.linalg.cholesky(L.T @ a["zz"][j] @ L + s**2 * np.eye(q))
                v = np.linalg.solve(C, L.T @ r[j])
                want = L @ np.linalg.solve(C.T, v + s * noise[:, k, j])
                np.testing.assert_allclose(out[k, j], want, rtol=1e-10,
                                           atol=1e-12 * np.abs(want).max())
        if noise is not eps:  # the dense conditional mean, for the first draw
            Psi = dense_psi(d.terms, [Ls[0] @ Ls[0].T])
            Z = dense_z(d.terms)
            V = Z @ Psi @ Z.T + sigma[0] ** 2 * np.eye(d.nobs)
            mean = Psi @ Z.T @ np.linalg.solve(V, d.y - d.X @ beta[0])
            np.testing.assert_allclose(out[0].ravel(), mean, rtol=1e-9,
                                       atol=1e-10 * np.abs(mean).max())
