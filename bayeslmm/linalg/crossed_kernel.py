"""The blocked marginal log-likelihood and gradient for *fully crossed* designs (every
level of the first factor meets every level of the others: subjects × items), where
the pattern of Z_restᵀZ₁ is dense: the same algebra as
:mod:`bayeslmm.linalg.blocked_kernel`, with Z_restᵀZ₁ as one dense matrix so that its
products are a few large matrix products (BLAS) and loops along r, instead of many
small products.

Examples
--------
>>> import numpy as np, bayeslmm as blm
>>> from bayeslmm.formula.design import build_design
>>> from bayeslmm.linalg.crossprod import CrossProducts
>>> from bayeslmm.linalg.blocked_layout import blocked_arrays
>>> from bayeslmm.linalg.blocked_kernel import blocked_logp_grad
>>> d = build_design("diameter ~ 1 + (1 | plate) + (1 | sample)",
...                  blm.datasets.load("Penicillin"))
>>> cp = CrossProducts.from_design(d)
>>> a = blocked_arrays(cp)
>>> Ls, beta = np.array([[[0.85]], [[1.77]]]), np.array([22.97])
>>> out = crossed_kernel(a["a11"], a["c1"], a["a21d"], a["boff"], a["bfac"], a["a22"],
...                      a["c2"], a["xy_xy"], a["n"], beta, 0.55, Ls, np.array(cp.q))
>>> ref = blocked_logp_grad(dict(a, full=False), beta, 0.55, Ls, cp.q)
>>> bool(np.isclose(out[0], ref[0], rtol=1e-12) and np.allclose(out[3], ref[3]))
True
"""

from __future__ import annotations

import numba
import numpy as np

from .blocked_parts import rest_left, start
from .marginal_kernel import marginal_closing
from .small_dense import gram, mm, mv
from .spd_inverse import spd_inverse

__all__ = ["crossed_kernel"]

#: the per-level loops' sums may be reordered, so that they run in SIMD lanes along r
_FAST = {"reassoc", "contract"}


@numba.njit(cache=True, fastmath=_FAST, error_model="numpy")
def _per_level(C12, Ci, r, m1, q1):  # pragma: no cover - compiled
    """(I ⊗ C₁₁⁻¹)·X and (I ⊗ C₁₁⁻ᵀ)·that for X = P₂₁ᵀ held as m₁q₁ × r (loops along r)."""
    C = np.zeros((m1 * q1, r))
    B = np.zeros((m1 * q1, r))
    for j in range(m1):
        o = j * q1
        for a in range(q1):
            for c in range(a + 1):
                x = Ci[j, a, c]
                for i in range(r):
                    C[o + a, i] += x * C12[o + c, i]
        for a in range(q1):
            for c in range(a, q1):
                x = Ci[j, c, a]
                for i in range(r):
                    B[o + a, i] += x * C[o + c, i]
    return C, B


@numba.njit(cache=True, fastmath=_FAST, error_model="numpy")
def _level_products(X, Y, U, V, m1, q1):  # pragma: no cover - compiled
    """Per level j: X_jY_jᵀ and U_jV_jᵀ (q₁ × q₁) for m₁q₁ × r matrices (rows j·q₁...)."""
    r = X.shape[1]
    XY = np.zeros((m1, q1, q1))
    UV = np.zeros((m1, q1, q1))
    for j in range(m1):
        o = j * q1
        for a in range(q1):
            for c in range(q1):
                acc, acc2 = 0.0, 0.0
                for i in range(r):
                    acc += X[o + a, i] * Y[o + c, i]
                    acc2 += U[o + a, i] * V[o + c, i]
                XY[j, a, c] = acc
                UV[j, a, c] = acc2
    return XY, UV


@numba.njit(cache=True, fastmath=_FAST, error_model="numpy")
def _rest_grad(gLs, T, M22, W, M21, a, v2, s, boff, bfac, qs):  # pragma: no cover - compiled
    """The rest's blocks' gradient: gLs[k] −= the diagonal blocks of T·M22 + W·M21
    (rows of both, along r and m₁q₁) + a v₂ᵀ / s, block by block."""
    r, n1 = M22.shape[0], M21.shape[1]
    for b in range(boff.shape[0] - 1):
        k, o = bfac[b], boff[b]
        q = qs[k]
        for i in range(q):
            for c in range(q):
                acc = 0.0
                for col in range(r):
                    acc += T[o + i, col] * M22[o + c, col]
                for col in range(n1):
                    acc += W[o + i, col] * M21[o + c, col]
                gLs[k, i, c] -= acc + a[o + i] * v2[o + c] / s


@numba.njit(cache=True)
def crossed_kernel(a11, c1, a21d, boff, bfac, a22, c2, xy_xy, n, beta, sigma, Ls,
                   qs):  # pragma: no cover - compiled
    """``(logp, d_beta, d_sigma, d_Ls)``, as :func:`~bayeslmm.linalg.blocked_kernel.
    blocked_kernel`, with ``a21d`` = Z_restᵀZ₁ dense (r × m₁q₁); then what the data's
    gradient needs: (P⁻¹)₁₁ⱼ, v₁ⱼ, L̃₂v₂, (P⁻¹)₂₁ (dense, r × m₁q₁) and S⁻¹."""
    m1, q1, p1 = c1.shape[0], c1.shape[1], c1.shape[2]
    p, r = p1 - 1, a22.shape[0]
    bad = (-np.inf, np.zeros(p), 0.0, np.zeros(Ls.shape), np.zeros((0, 0, 0)),
           np.zeros((0, 0)), np.zeros(0), np.zeros((0, 0)), np.zeros((0, 0)))
    s, u, xyu, rtr, L1, ok, logdet, Ci, c1u, w1m, z1m = start(a11, c1, xy_xy, beta, sigma, Ls)
    if not ok:
        return bad
    w1, z1 = w1m.ravel(), z1m.ravel()
    T = rest_left(Ls, boff, bfac, qs, a22, True).T.copy()   # A₂₂L̃₂ (A₂₂ symmetric)
    S = rest_left(Ls, boff, bfac, qs, T, True)               # L̃₂ᵀA₂₂L̃₂
    c2u = mv(c2, u)
    w2 = rest_left(Ls, boff, bfac, qs, c2u.reshape(r, 1), True).ravel()
    W = np.dot(a21d.reshape(r * m1, q1), L1).reshape(r, m1 * q1)   # A₂₁(I ⊗ L₁)
    P12 = rest_left(Ls, boff, bfac, qs, W, True).T.copy()          # P₂₁ᵀ
    # C₂₁ and B = C₂₁(I ⊗ C₁₁⁻¹), held transposed (m₁q₁ × r)
    C12, B12 = _per_level(P12, Ci, r, m1, q1)
    S -= np.dot(C12.T, C12)   # (a transposed view: BLAS reads it as it is)
    for i in range(r):
        S[i, i] += s
    ok, ld2, M22 = spd_inverse(S)
    if not ok:
        return bad
    logdet += ld2
    v2 = np.dot(M22, w2 - np.dot(z1, C12))
    t = np.dot(C12, v2)
    v1 = np.empty(m1 * q1)
    for j in range(m1):
        sl = slice(j * q1, (j + 1) * q1)
        v1[sl] = mv(Ci[j].T.copy(), z1[sl] - t[sl])
    M12 = -np.dot(B12, M22)                 # ((P⁻¹)₂₁)ᵀ on the whole (dense) pattern
    M21 = M12.T.copy()
    LM12 = rest_left(Ls, boff, bfac, qs, M21, False).T.copy()
    A12 = a21d.T.copy()
    Lv = rest_left(Ls, boff, bfac, qs, v2.reshape(r, 1), False).ravel()
    A12Lv = np.dot(A12, Lv)
    BM, AL = _level_products(B12, M12, A12, LM12, m1, q1)
    quad = w2 @ v2 + w1 @ v1
    vv = v1 @ v1 + v2 @ v2
    trinv = np.trace(M22)
    gLs = np.zeros(Ls.shape)
    g_beta = xyu[:p].copy()
    M11s = np.empty((m1, q1, q1))
    for j in range(m1):
        sl = slice(j * q1, (j + 1) * q1)
        M11 = gram(Ci[j]) - BM[j]           # (P⁻¹)₁₁ⱼ
        M11s[j] = M11
        trinv += np.trace(M11)
        L1v1 = mv(L1, v1[sl])
        AM = mm(a11[j], mm(L1, M11)) + AL[j]
        Av = mv(a11[j], L1v1) + A12Lv[sl]
        for a in range(q1):
            for c in range(q1):
                gLs[0, a, c] -= AM[a, c] + (Av[a] - c1u[j, a]) * v1[j * q1 + c] / s
        for a in range(p):
            for i in range(q1):
                g_beta[a] -= c1[j, i, a] * L1v1[i]
    Tv = np.dot(T, v2)
    AvR = np.dot(W, v1)
    _rest_grad(gLs, T, M22, W, M21, Tv + AvR - c2u, v2, s, boff, bfac, qs)
    for a in range(p):
        g_beta[a] = (g_beta[a] - np.ascontiguousarray(c2[:, a]) @ Lv) / s
    Q = m1 * q1 + r
    logp, d_s = marginal_closing(n, Q, s, logdet, rtr, quad, trinv, vv)
    return logp, g_beta, 2.0 * sigma * d_s, gLs, M11s, v1.reshape(m1, q1), Lv, M21, M22
