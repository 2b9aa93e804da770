"""The blocked kernels' gradient in their data (numba): in the blocked cross-products
Z₁ⱼᵀZ₁ⱼ, Z₁ⱼᵀ[X y], Z_restᵀZ₁, Z_restᵀZ_rest, Z_restᵀ[X y] and [X y]ᵀ[X y], for
cross-products that depend on parameters (a residual structure's ``Σ_k c_k S_k``:
:mod:`bayeslmm.residual.sufficient`), whose gradient in c_k is then the contraction of
these with each S_k.

The notation is :mod:`bayeslmm.linalg.marginal_kernel`'s, where with A = ZᵀZ

    ∂/∂A = −½ [L̃ P⁻¹ L̃ᵀ + L̃v vᵀL̃ᵀ/s],   ∂/∂(Zᵀ[X y]) = L̃v uᵀ/s,   ∂/∂([X y]ᵀ[X y]) = −½ uuᵀ/s.

Block by block, ∂/∂A needs P⁻¹ only where A is not zero: on the first factor's diagonal
blocks ((P⁻¹)₁₁ⱼ), on the pattern of Z_restᵀZ₁ ((P⁻¹)₂₁, counted twice: the layout
holds A₂₁ for A₁₂ = A₂₁ᵀ too) and on Z_restᵀZ_rest ((P⁻¹)₂₂ = S⁻¹, dense or by blocks):
the selected inverse the kernels already compute for their gradient. So the data's
gradient costs what the kernel does, and holds on the data's pattern (zeros
elsewhere): right for any data of that pattern, the only data the kernels take.

Examples
--------
One level of a first factor (q₁ = 1, L₁ = 1), (P⁻¹)₁₁ = ½, v₁ = 1, s = 1, u = (−1, 1):

>>> import numpy as np
>>> g11, gc1, Lv1 = first_adjoint(np.array([[[0.5]]]), np.array([[1.0]]), np.eye(1),
...                               np.array([-1.0, 1.0]), 1.0)
>>> float(g11[0, 0, 0]), gc1[0, 0].tolist()  # −½(½ + 1), L₁v₁uᵀ/s
(-0.75, [-1.0, 1.0])
"""

from __future__ import annotations

import numba
import numpy as np

from .blocked_parts import rest_left

__all__ = ["first_adjoint", "pattern_adjoint", "crossed_adjoint", "rest_adjoint",
           "rest_block_adjoint", "xy_adjoint", "zero_adjoint"]


@numba.njit(cache=True)
def first_adjoint(M11s, V1, L1, u, s):  # pragma: no cover - compiled
    """∂/∂(Z₁ⱼᵀZ₁ⱼ) and ∂/∂(Z₁ⱼᵀ[X y]) per level j from (P⁻¹)₁₁ⱼ and v₁ⱼ; and L₁v₁ⱼ."""
    m1, q1 = V1.shape
    p1 = u.shape[0]
    g11 = np.empty((m1, q1, q1))
    gc1 = np.empty((m1, q1, p1))
    Lv1 = np.zeros((m1, q1))
    LM = np.empty((q1, q1))
    for j in range(m1):
        for a in range(q1):
            for t in range(a + 1):
                Lv1[j, a] += L1[a, t] * V1[j, t]
            for c in range(q1):
                acc = 0.0
                for t in range(a + 1):
                    acc += L1[a, t] * M11s[j, t, c]
                LM[a, c] = acc
        for a in range(q1):
            for c in range(q1):
                acc = 0.0
                for t in range(c + 1):
                    acc += LM[a, t] * L1[c, t]
                g11[j, a, c] = -0.5 * (acc + Lv1[j, a] * Lv1[j, c] / s)
            for b in range(p1):
                gc1[j, a, b] = Lv1[j, a] * u[b] / s
    return g11, gc1, Lv1


@numba.njit(cache=True)
def pattern_adjoint(M21, Lv1, Lv2, bptr, bblk, boff, bfac, Ls, qs, L1,
                    s):  # pragma: no cover - compiled
    """∂/∂(Z_restᵀZ₁) on the pattern (entries, q_max, q₁) from (P⁻¹)₂₁ there."""
    ne, qm, q1 = M21.shape
    g = np.zeros((ne, qm, q1))
    X = np.empty((qm, q1))
    for j in range(bptr.shape[0] - 1):
        for e in range(bptr[j], bptr[j + 1]):
            k, o = bfac[bblk[e]], boff[bblk[e]]
            q = qs[k]
            for i in range(q):   # L_k (P⁻¹)₂₁,e
                for a in range(q1):
                    acc = 0.0
                    for t in range(i + 1):
                        acc += Ls[k, i, t] * M21[e, t, a]
                    X[i, a] = acc
            for i in range(q):
                for c in range(q1):
                    acc = 0.0
                    for a in range(c + 1):
                        acc += X[i, a] * L1[c, a]
                    g[e, i, c] = -(acc + Lv2[o + i] * Lv1[j, c] / s)
    return g


@numba.njit(cache=True)
def crossed_adjoint(M21, Lv1, Lv2, Ls, boff, bfac, qs, L1, s):  # pragma: no cover - compiled
    """∂/∂(Z_restᵀZ₁) held dense (r × m₁q₁) from (P⁻¹)₂₁ dense; ``Lv1`` (m₁q₁)."""
    X = rest_left(Ls, boff, bfac, qs, M21, False)
    r, mq = X.shape
    q1 = L1.shape[0]
    g = np.empty((r, mq))
    for i in range(r):
        for j in range(mq // q1):
            o = j * q1
            for c in range(q1):
                acc = 0.0
                for a in range(c + 1):
                    acc += X[i, o + a] * L1[c, a]
                g[i, o + c] = -(acc + Lv2[i] * Lv1[o + c] / s)
    return g


@numba.njit(cache=True)
def rest_adjoint(M22, Lv2, Ls, boff, bfac, qs, u, s):  # pragma: no cover - compiled
    """∂/∂(Z_restᵀZ_rest) (r × r) from S⁻¹ dense, and ∂/∂(Z_restᵀ[X y])."""
    X = rest_left(Ls, boff, bfac, qs, M22, False)                  # L̃₂S⁻¹
    g22 = rest_left(Ls, boff, bfac, qs, X.T.copy(), False)         # L̃₂S⁻¹L̃₂ᵀ
    r = Lv2.shape[0]
    for i in range(r):
        for c in range(r):
            g22[i, c] = -0.5 * (g22[i, c] + Lv2[i] * Lv2[c] / s)
    return g22, np.outer(Lv2, u) / s


@numba.njit(cache=True)
def rest_block_adjoint(Mb, Lv2, Ls, boff, bfac, qs, u, s):  # pragma: no cover - compiled
    """The same from S⁻¹'s diagonal blocks ``Mb`` (nested designs: Z_restᵀZ_rest is
    block diagonal, so only its blocks are needed)."""
    r = Lv2.shape[0]
    g22 = np.zeros((r, r))
    for b in range(boff.shape[0] - 1):
        k, o = bfac[b], boff[b]
        q = qs[k]
        for i in range(q):
            for c in range(q):
                acc = 0.0
                for t in range(i + 1):
                    for w in range(c + 1):
                        acc += Ls[k, i, t] * Mb[b, t, w] * Ls[k, c, w]
                g22[o + i, o + c] = -0.5 * (acc + Lv2[o + i] * Lv2[o + c] / s)
    return g22, np.outer(Lv2, u) / s


@numba.njit(cache=True)
def xy_adjoint(u, s):  # pragma: no cover - compiled
    """∂/∂([X y]ᵀ[X y]) = −½ uuᵀ/s."""
    return -0.5 * np.outer(u, u) / s


@numba.njit(cache=True)
def zero_adjoint(a11, c1, a21, a21d, a22, c2, xy_xy, data_grads):  # pragma: no cover
    """Zero data gradients (outside the support), each its value's shape, in the
    layout's order; empty ones without ``data_grads``."""
    if not data_grads:
        return (np.zeros((0, 0, 0)), np.zeros((0, 0, 0)), np.zeros((0, 0, 0)),
                np.zeros((0, 0)), np.zeros((0, 0)), np.zeros((0, 0)), np.zeros((0, 0)))
    return (np.zeros(a11.shape), np.zeros(c1.shape), np.zeros(a21.shape),
            np.zeros(a21d.shape), np.zeros(a22.shape), np.zeros(c2.shape),
            np.zeros(xy_xy.shape))
