"""The marginal log-likelihood of a design with several grouping factors and its
gradient, by the blocked Cholesky factorisation of P = L̃ᵀZᵀZL̃ + σ²I (numba).

The notation is :mod:`bayeslmm.linalg.marginal_kernel`'s; the layout
:mod:`bayeslmm.linalg.blocked_layout`'s. P is split as the first factor's levels
(block diagonal, P₁₁ⱼ = L₁ᵀZ₁ⱼᵀZ₁ⱼL₁ + σ²I) and the rest (dense, r × r). With P₁₁ⱼ =
C₁₁ⱼC₁₁ⱼᵀ, C₂₁ = P₂₁C₁₁⁻ᵀ (sparse as Z_restᵀZ₁) and the Schur complement
S = P₂₂ − C₂₁C₂₁ᵀ = C₂₂C₂₂ᵀ (MixedModels.jl's blocked Cholesky),

    log|P| = Σⱼ log|P₁₁ⱼ| + log|S|,

and v = P⁻¹w by the two triangular solves. The gradient needs P⁻¹ only where ZᵀZ is
not zero (a selected inverse, Takahashi's idea): with B = P₂₁P₁₁⁻¹ (the pattern of
Z_restᵀZ₁),

    (P⁻¹)₂₂ = S⁻¹,   (P⁻¹)₂₁ = −S⁻¹B,   (P⁻¹)₁₁ⱼ = P₁₁ⱼ⁻¹ − Bⱼᵀ(P⁻¹)₂₁ⱼ,

where the last two are computed on the pattern only. The work is the first factor's
levels (q₁ × q₁ each), the products over the pattern, and O(r³) for S; none of it
grows with the rows. ``full`` designs (every level of the first factor meets every
level of the rest) do the pattern's products as a few large matrix products;
``blockdiag`` ones (nested) factor S block by block.

Examples
--------
The kernel equals the dense path (itself tested against the dense oracle):

>>> import numpy as np, bayeslmm as blm
>>> from bayeslmm.formula.design import build_design
>>> from bayeslmm.linalg.crossprod import CrossProducts
>>> from bayeslmm.linalg.blocked_layout import blocked_arrays
>>> from bayeslmm.linalg.marginal_kernel import dense_logp_grad
>>> d = build_design("diameter ~ 1 + (1 | plate) + (1 | sample)",
...                  blm.datasets.load("Penicillin"))
>>> cp = CrossProducts.from_design(d)
>>> Ls, beta = np.array([[[0.85]], [[1.77]]]), np.array([22.97])
>>> out = blocked_logp_grad(blocked_arrays(cp), beta, 0.55, Ls, cp.q)
>>> a = cp.marginal_arrays()
>>> ref = dense_logp_grad(a["zz"], a["z_xy"], a["xy_xy"], float(cp.n), beta, 0.55, Ls,
...                       np.array(cp.q), np.array(cp.m), False)
>>> round(out[0], 6), bool(np.isclose(out[0], ref[0], rtol=1e-12))
(-166.094732, True)
>>> bool(np.allclose(out[3], ref[3], rtol=1e-10) and np.isclose(out[2], ref[2]))
True
"""

from __future__ import annotations

import numba
import numpy as np

from .blocked_adjoint import (
    crossed_adjoint,
    first_adjoint,
    pattern_adjoint,
    rest_adjoint,
    rest_block_adjoint,
    xy_adjoint,
    zero_adjoint,
)
from .blocked_parts import entry_rows, gradient, rest_schur, start
from .crossed_kernel import crossed_kernel
from .nested_kernel import nested_kernel
from .spd_inverse import spd_inverse

__all__ = ["blocked_logp_grad", "blocked_kernel", "blocked_kernel_grads"]

_LOG2PI = float(np.log(2.0 * np.pi))


@numba.njit(cache=True, nogil=True)
def blocked_kernel(a11, c1, bptr, bblk, tptr, tent, eown, a21, a21d, boff, bfac, a22, c2,
                   xy_xy, n, full, blockdiag, beta, sigma, Ls, qs):  # pragma: no cover - compiled
    """``(logp, d_beta, d_sigma, d_Ls)``; ``logp = -inf`` where P is not positive
    definite. Arguments: the layout's arrays, then β, σ, Ls (K, q_max, q_max) and the
    factors' q, all in the cross-products' order. Fully crossed designs run
    :func:`~bayeslmm.linalg.crossed_kernel.crossed_kernel`, nested ones
    :func:`~bayeslmm.linalg.nested_kernel.nested_kernel`."""
    s = sigma * sigma
    if not (s * s > 0.0 and s < np.inf):  # σ⁴ underflows (σ < 1e-77) or σ² overflows: -inf
        return -np.inf, np.zeros(beta.shape[0]), 0.0, np.zeros(Ls.shape)
    if full:
        out = crossed_kernel(a11, c1, a21d, boff, bfac, a22, c2, xy_xy, n, beta, sigma, Ls, qs)
        return out[0], out[1], out[2], out[3]
    if blockdiag:
        out2 = nested_kernel(a11, c1, bptr, bblk, a21, boff, bfac, a22, c2, xy_xy, n, beta,
                             sigma, Ls, qs)
        return out2[0], out2[1], out2[2], out2[3]
    out3 = pattern_kernel(a11, c1, bptr, bblk, tptr, tent, eown, a21, boff, bfac, a22, c2,
                          xy_xy, n, beta, sigma, Ls, qs)
    return out3[0], out3[1], out3[2], out3[3]


@numba.njit(cache=True, nogil=True)
def blocked_kernel_grads(a11, c1, bptr, bblk, tptr, tent, eown, a21, a21d, boff, bfac, a22,
                         c2, xy_xy, n, full, blockdiag, beta, sigma, Ls, qs,
                         data_grads):  # pragma: no cover - compiled
    """:func:`blocked_kernel`'s outputs and, with ``data_grads``, the gradient in the
    layout's values ``a11``, ``c1``, ``a21``, ``a21d``, ``a22``, ``c2``, ``xy_xy``
    (:mod:`bayeslmm.linalg.blocked_adjoint`; each the shape of its input, zeros for the
    one of ``a21``/``a21d`` the kernel does not read, and where logp is -inf); without,
    empty arrays. (A function apart, so that :func:`blocked_kernel` compiles without
    the data's gradient.)"""
    s = sigma * sigma
    zero = zero_adjoint(a11, c1, a21, a21d, a22, c2, xy_xy, data_grads)
    if not (s * s > 0.0 and s < np.inf):
        return (-np.inf, np.zeros(beta.shape[0]), 0.0, np.zeros(Ls.shape)) + zero
    q1, p = c1.shape[1], beta.shape[0]
    L1 = np.ascontiguousarray(Ls[0, :q1, :q1])
    u = np.empty(p + 1)
    u[:p] = -beta
    u[p] = 1.0
    if full:
        lp, gb, gs, gLs, M11s, V1, Lv2, M21, M22 = crossed_kernel(
            a11, c1, a21d, boff, bfac, a22, c2, xy_xy, n, beta, sigma, Ls, qs)
        if not data_grads or not np.isfinite(lp):
            return (lp, gb, gs, gLs) + zero
        g11, gc1, Lv1 = first_adjoint(M11s, V1, L1, u, s)
        g21d = crossed_adjoint(M21, Lv1.ravel(), Lv2, Ls, boff, bfac, qs, L1, s)
        g22, gc2 = rest_adjoint(M22, Lv2, Ls, boff, bfac, qs, u, s)
        return (lp, gb, gs, gLs, g11, gc1, np.zeros(a21.shape), g21d, g22, gc2,
                xy_adjoint(u, s))
    if blockdiag:
        lp, gb, gs, gLs, M11s, V1, Lv2, M21, Mb = nested_kernel(
            a11, c1, bptr, bblk, a21, boff, bfac, a22, c2, xy_xy, n, beta, sigma, Ls, qs)
        if not data_grads or not np.isfinite(lp):
            return (lp, gb, gs, gLs) + zero
        g22, gc2 = rest_block_adjoint(Mb, Lv2, Ls, boff, bfac, qs, u, s)
    else:
        lp, gb, gs, gLs, M11s, V1, Lv2, M21, M22 = pattern_kernel(
            a11, c1, bptr, bblk, tptr, tent, eown, a21, boff, bfac, a22, c2, xy_xy, n, beta,
            sigma, Ls, qs)
        if not data_grads or not np.isfinite(lp):
            return (lp, gb, gs, gLs) + zero
        g22, gc2 = rest_adjoint(M22, Lv2, Ls, boff, bfac, qs, u, s)
    g11, gc1, Lv1 = first_adjoint(M11s, V1, L1, u, s)
    g21 = pattern_adjoint(M21, Lv1, Lv2, bptr, bblk, boff, bfac, Ls, qs, L1, s)
    return lp, gb, gs, gLs, g11, gc1, g21, np.zeros(a21d.shape), g22, gc2, xy_adjoint(u, s)


@numba.njit(cache=True)
def pattern_kernel(a11, c1, bptr, bblk, tptr, tent, eown, a21, boff, bfac, a22, c2, xy_xy,
                   n, beta, sigma, Ls, qs):  # pragma: no cover - compiled
    """The general case: any pattern, S dense (r × r). Returns ``(logp, d_beta, d_sigma,
    d_Ls)`` and what the data's gradient needs: (P⁻¹)₁₁ⱼ, v₁ⱼ, L̃₂v₂, (P⁻¹)₂₁ on the
    pattern and S⁻¹."""
    q1, p1 = c1.shape[1], c1.shape[2]
    p, r, nb = p1 - 1, a22.shape[0], boff.shape[0] - 1
    bad = (-np.inf, np.zeros(p), 0.0, np.zeros(Ls.shape), np.zeros((0, 0, 0)),
           np.zeros((0, 0)), np.zeros(0), np.zeros((0, 0, 0)), np.zeros((0, 0)))
    s, u, xyu, rtr, L1, ok, logdet, Ci, c1u, w1, z1 = start(a11, c1, xy_xy, beta, sigma, Ls)
    if not ok:
        return bad
    T, S, c2u, w2, y2, C21, B = rest_schur(a21, a22, c2, bptr, bblk, tptr, tent, eown,
                                            boff, bfac, Ls, qs, L1, Ci, z1, s, u)
    ok, ld2, M22 = spd_inverse(S)
    if not ok:
        return bad
    v2 = np.dot(M22, y2)
    # (P⁻¹)₂₁ on the pattern: −S⁻¹B
    M21 = np.zeros(C21.shape)
    eo, eq = entry_rows(bblk, boff, bfac, qs)
    for b in range(nb):   # by the rows of S⁻¹ it reads: one block's
        o, qa = boff[b], qs[bfac[b]]
        for x in range(tptr[b], tptr[b + 1]):
            e = tent[x]
            j = eown[e]
            if q1 == 1 and qa == 1:
                acc = 0.0
                for f in range(bptr[j], bptr[j + 1]):
                    if eq[f] == 1:
                        acc += M22[o, eo[f]] * B[f, 0, 0]
                    else:
                        for t in range(eq[f]):
                            acc += M22[o, eo[f] + t] * B[f, t, 0]
                M21[e, 0, 0] = -acc
                continue
            for f in range(bptr[j], bptr[j + 1]):
                o2, qb = eo[f], eq[f]
                for i in range(qa):
                    for t in range(qb):
                        mvl = M22[o + i, o2 + t]
                        for a in range(q1):
                            M21[e, i, a] -= mvl * B[f, t, a]
    # the rest's diagonal blocks of TS⁻¹
    TM = np.zeros((r, C21.shape[1]))
    for b in range(nb):
        o, q = boff[b], qs[bfac[b]]
        for i in range(q):
            for t in range(q):
                acc = 0.0
                for l in range(r):
                    acc += T[o + i, l] * M22[o + t, l]
                TM[o + i, t] = acc
    logp, gb, gs, gLs, M11s, V1, Lv2 = gradient(
        a11, c1, bptr, bblk, a21, boff, bfac, c2, n, Ls, qs, s, xyu, rtr, logdet + ld2, L1,
        Ci, c1u, w1, z1, c2u, w2, C21, B, M21, v2, np.trace(M22), TM, np.dot(T, v2))
    return logp, gb, gs, gLs, M11s, V1, Lv2, M21, M22


def blocked_logp_grad(arrays: dict, beta, sigma: float, Ls, qs) -> tuple:
    """``(logp, d_beta, d_sigma, d_Ls)`` from :func:`~bayeslmm.linalg.blocked_layout.
    blocked_arrays`'s dict (see the module doc for an example)."""
    a = arrays
    f64 = np.float64
    return blocked_kernel(a["a11"], a["c1"], a["bptr"], a["bblk"], a["tptr"], a["tent"],
                          a["eown"], a["a21"], a["a21d"],
                          a["boff"], a["bfac"], a["a22"], a["c2"], a["xy_xy"],
                          float(a["n"]), bool(a["full"]), bool(a["blockdiag"]),
                          np.ascontiguousarray(beta, f64), float(sigma),
                          np.ascontiguousarray(Ls, f64), np.asarray(qs, np.int64))
