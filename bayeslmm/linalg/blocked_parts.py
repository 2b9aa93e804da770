"""The pieces the blocked marginal kernels share (numba): the first factor's per-level
factorisation, the products over the pattern of Z_restᵀZ₁, and the gradient from the
selected inverse. See :mod:`bayeslmm.linalg.blocked_kernel` for the algebra.

Examples
--------
>>> import numpy as np
>>> ok, logdet, Ci, c1u, w1, z1 = first_factor(np.array([[[2.0]]]), np.array([[[1.0, 3.0]]]),
...                                            np.array([[1.0]]), 1.0, np.array([-1.0, 1.0]))
>>> ok, round(logdet, 6), round(float(z1[0, 0]), 6)  # P = 1·2·1 + 1, c = 3 − 1 = 2
(True, 1.098612, 1.154701)
"""

from __future__ import annotations

import numba
import numpy as np

from .marginal_kernel import marginal_closing
from .small_dense import chol_inv_into, mm_into, mv

__all__ = ["start", "first_factor", "pattern_products", "rest_schur", "gradient", "rest_left",
           "entry_rows"]


@numba.njit(cache=True)
def _first_scalar(a11, c1, lam, s, u, Ci, c1u, w1, z1):  # pragma: no cover - compiled
    """:func:`first_factor` for q₁ = 1, into the given arrays: ``(ok, Σ log P₁₁ⱼ)``."""
    logdet = 0.0
    for j in range(c1.shape[0]):
        P = lam * a11[j, 0, 0] * lam + s
        if not P > 0.0:
            return False, 0.0
        ci = 1.0 / np.sqrt(P)
        logdet += np.log(P)
        acc = 0.0
        for c in range(c1.shape[2]):
            acc += c1[j, 0, c] * u[c]
        Ci[j, 0, 0] = ci
        c1u[j, 0] = acc
        w1[j, 0] = lam * acc
        z1[j, 0] = ci * lam * acc
    return True, logdet


@numba.njit(cache=True)
def first_factor(a11, c1, L1, s, u):  # pragma: no cover - compiled
    """Per level j of the first factor: C₁₁ⱼ⁻¹, c₁ⱼ = Z₁ⱼᵀr, w₁ⱼ = L₁ᵀc₁ⱼ, z₁ⱼ = C₁₁ⱼ⁻¹w₁ⱼ
    and Σ log|P₁₁ⱼ|; ok False where some P₁₁ⱼ is not positive definite."""
    m1, q1, p1 = c1.shape[0], c1.shape[1], c1.shape[2]
    Ci = np.zeros((m1, q1, q1))
    c1u = np.zeros((m1, q1))
    w1 = np.zeros((m1, q1))
    z1 = np.zeros((m1, q1))
    if q1 == 1:  # scalar levels (nested designs' classes): 6× faster than the loops below
        ok, logdet = _first_scalar(a11, c1, L1[0, 0], s, u, Ci, c1u, w1, z1)
        return ok, logdet, Ci, c1u, w1, z1
    L1T = L1.T.copy()
    T, P, C = np.empty((q1, q1)), np.empty((q1, q1)), np.zeros((q1, q1))
    logdet = 0.0
    for j in range(m1):  # no allocation per level: thousands of levels
        mm_into(a11[j], L1, T)
        mm_into(L1T, T, P)
        for i in range(q1):
            P[i, i] += s
        ok, ld = chol_inv_into(P, C, Ci[j])
        if not ok:
            return False, 0.0, Ci, c1u, w1, z1
        logdet += ld
        for i in range(q1):
            acc = 0.0
            for c in range(p1):
                acc += c1[j, i, c] * u[c]
            c1u[j, i] = acc
        for a in range(q1):
            acc = 0.0
            for c in range(q1):
                acc += L1T[a, c] * c1u[j, c]
            w1[j, a] = acc
        for a in range(q1):
            acc = 0.0
            for c in range(a + 1):
                acc += Ci[j, a, c] * w1[j, c]
            z1[j, a] = acc
    return True, logdet, Ci, c1u, w1, z1


@numba.njit(cache=True)
def start(a11, c1, xy_xy, beta, sigma, Ls):  # pragma: no cover - compiled
    """What every blocked kernel begins with: s = σ², u = (−β, 1), xyu = [X y]ᵀ[X y]u,
    rᵀr, L₁ and :func:`first_factor`'s results."""
    q1, p1 = c1.shape[1], c1.shape[2]
    p = p1 - 1
    s = sigma * sigma
    u = np.empty(p1)
    u[:p] = -beta
    u[p] = 1.0
    xyu = mv(xy_xy, u)
    rtr = u @ xyu
    L1 = np.ascontiguousarray(Ls[0, :q1, :q1])
    ok, logdet, Ci, c1u, w1, z1 = first_factor(a11, c1, L1, s, u)
    return s, u, xyu, rtr, L1, ok, logdet, Ci, c1u, w1, z1


@numba.njit(cache=True)
def _pattern_scalar(a21, bptr, bblk, boff, bfac, Ls, qs, lam, Ci, z1, y2, C21,
                    B):  # pragma: no cover - compiled
    """:func:`pattern_products` for q₁ = 1, into C21 and B."""
    for j in range(bptr.shape[0] - 1):
        ci = Ci[j, 0, 0]
        lc = lam * ci
        for e in range(bptr[j], bptr[j + 1]):
            k, o = bfac[bblk[e]], boff[bblk[e]]
            q = qs[k]
            for i in range(q):
                acc = 0.0
                for t in range(i, q):
                    acc += Ls[k, t, i] * a21[e, t, 0]
                acc *= lc
                C21[e, i, 0] = acc
                y2[o + i] -= acc * z1[j, 0]
                B[e, i, 0] = acc * ci


@numba.njit(cache=True)
def pattern_products(a21, bptr, bblk, boff, bfac, Ls, qs, L1, Ci, z1, y2):  # pragma: no cover
    """C₂₁ = P₂₁C₁₁⁻ᵀ and B = C₂₁C₁₁⁻¹ on the pattern; subtracts C₂₁z₁ from ``y2``."""
    ne, qm, q1 = a21.shape[0], a21.shape[1], a21.shape[2]
    C21 = np.zeros((ne, qm, q1))
    B = np.zeros((ne, qm, q1))
    if q1 == 1:
        _pattern_scalar(a21, bptr, bblk, boff, bfac, Ls, qs, L1[0, 0], Ci, z1, y2, C21, B)
        return C21, B
    tmp = np.zeros((qm, q1))
    L1C = np.zeros((q1, q1))
    for j in range(bptr.shape[0] - 1):
        for c in range(q1):   # L₁C₁₁ⱼ⁻ᵀ
            for a in range(q1):
                acc = 0.0
                for t in range(q1):
                    acc += L1[c, t] * Ci[j, a, t]
                L1C[c, a] = acc
        for e in range(bptr[j], bptr[j + 1]):
            k, o = bfac[bblk[e]], boff[bblk[e]]
            q = qs[k]
            for i in range(q):
                for a in range(q1):
                    acc = 0.0
                    for c in range(q1):
                        acc += a21[e, i, c] * L1C[c, a]
                    tmp[i, a] = acc
            for i in range(q):
                for a in range(q1):
                    acc = 0.0
                    for t in range(i, q):
                        acc += Ls[k, t, i] * tmp[t, a]
                    C21[e, i, a] = acc
                    y2[o + i] -= acc * z1[j, a]
            for i in range(q):
                for a in range(q1):
                    acc = 0.0
                    for c in range(a, q1):
                        acc += C21[e, i, c] * Ci[j, c, a]
                    B[e, i, a] = acc
    return C21, B


@numba.njit(cache=True)
def gradient(a11, c1, bptr, bblk, a21, boff, bfac, c2, n, Ls, qs, s, xyu, rtr, logdet, L1,
             Ci, c1u, w1, z1, c2u, w2, C21, B, M21, v2, trinv, TM,
             Tv):  # pragma: no cover - compiled
    """v₁, (P⁻¹)₁₁ⱼ, and the log-density with its gradient, from the rest's solution
    (v₂, tr S⁻¹, the diagonal blocks TM of A₂₂L̃₂S⁻¹ and Tv = A₂₂L̃₂v₂) and (P⁻¹)₂₁ on
    the pattern (see the module doc); then (P⁻¹)₁₁ⱼ, v₁ⱼ and L̃₂v₂, which the gradient
    in the data needs (:mod:`bayeslmm.linalg.blocked_adjoint`)."""
    m1, q1, p1 = c1.shape[0], c1.shape[1], c1.shape[2]
    p, r, nb = p1 - 1, v2.shape[0], boff.shape[0] - 1
    qm = a21.shape[1]
    quad, vv = w2 @ v2, v2 @ v2
    gLs = np.zeros(Ls.shape)
    DR = np.zeros((r, qm))   # Σⱼ A₂₁L₁(P⁻¹)₁₂ on the rest's diagonal blocks
    AvR = np.zeros(r)        # A₂₁L₁v₁
    Lv = np.zeros(r)         # L̃₂v₂
    for b in range(nb):
        k, o = bfac[b], boff[b]
        for i in range(qs[k]):
            for t in range(i + 1):
                Lv[o + i] += Ls[k, i, t] * v2[o + t]
    g_beta = xyu[:p].copy()
    v1, L1v1, t1 = np.zeros(q1), np.zeros(q1), np.zeros(q1)
    M11, AM, Av = np.zeros((q1, q1)), np.zeros((q1, q1)), np.zeros(q1)
    al, LM = np.zeros(q1), np.zeros((q1, q1))
    M11s, V1 = np.empty((m1, q1, q1)), np.empty((m1, q1))   # for the data's gradient
    for j in range(m1):
        t1[:] = z1[j]   # v₁ⱼ = C₁₁ⱼ⁻ᵀ(z₁ⱼ − C₂₁ⱼᵀv₂)
        for e in range(bptr[j], bptr[j + 1]):
            o, q = boff[bblk[e]], qs[bfac[bblk[e]]]
            for i in range(q):
                for a in range(q1):
                    t1[a] -= C21[e, i, a] * v2[o + i]
        for a in range(q1):
            acc = 0.0
            for i in range(a, q1):
                acc += Ci[j, i, a] * t1[i]
            v1[a] = acc
        for a in range(q1):
            acc = 0.0
            for i in range(a + 1):
                acc += L1[a, i] * v1[i]
            L1v1[a] = acc
        for a in range(q1):
            quad += w1[j, a] * v1[a]
            vv += v1[a] * v1[a]
        for a in range(p):
            for i in range(q1):
                g_beta[a] -= c1[j, i, a] * L1v1[i]
        for a in range(q1):   # (P⁻¹)₁₁ⱼ = C₁₁ⱼ⁻ᵀC₁₁ⱼ⁻¹ − Σ_e B_eᵀ(P⁻¹)₂₁,e
            for c in range(q1):
                acc = 0.0
                for i in range(max(a, c), q1):
                    acc += Ci[j, i, a] * Ci[j, i, c]
                M11[a, c] = acc
        AM[:, :] = 0.0
        Av[:] = 0.0
        for e in range(bptr[j], bptr[j + 1]):
            k, o = bfac[bblk[e]], boff[bblk[e]]
            q = qs[k]
            for i in range(q):
                for a in range(q1):
                    be = B[e, i, a]
                    for c in range(q1):
                        M11[a, c] -= be * M21[e, i, c]
                for c in range(q1):   # a21_eᵀ (L_k M21_e)
                    acc = 0.0
                    for t in range(i + 1):
                        acc += Ls[k, i, t] * M21[e, t, c]
                    for a in range(q1):
                        AM[a, c] += a21[e, i, a] * acc
                for a in range(q1):
                    Av[a] += a21[e, i, a] * Lv[o + i]
                for a in range(q1):   # (a21_e L₁)[i, a], then · M21_eᵀ and · v₁ⱼ
                    acc = 0.0
                    for c in range(a, q1):
                        acc += a21[e, i, c] * L1[c, a]
                    al[a] = acc
                    AvR[o + i] += acc * v1[a]
                for t in range(q):
                    acc = 0.0
                    for a in range(q1):
                        acc += al[a] * M21[e, t, a]
                    DR[o + i, t] += acc
        for a in range(q1):
            trinv += M11[a, a]
        M11s[j] = M11
        V1[j] = v1
        mm_into(L1, M11, LM)
        for a in range(q1):
            for c in range(q1):
                acc = 0.0
                for b in range(q1):
                    acc += a11[j, a, b] * LM[b, c]
                AM[a, c] += acc
            acc = 0.0
            for b in range(q1):
                acc += a11[j, a, b] * L1v1[b]
            Av[a] += acc
        for a in range(q1):
            for c in range(q1):
                gLs[0, a, c] -= AM[a, c] + (Av[a] - c1u[j, a]) * v1[c] / s
    for b in range(nb):
        k, o = bfac[b], boff[b]
        q = qs[k]
        for i in range(q):
            for c in range(q):
                gLs[k, i, c] -= (TM[o + i, c] + DR[o + i, c]
                                 + (Tv[o + i] + AvR[o + i] - c2u[o + i]) * v2[o + c] / s)
    for a in range(p):
        g_beta[a] = (g_beta[a] - np.ascontiguousarray(c2[:, a]) @ Lv) / s
    Q = m1 * q1 + r
    logp, d_s = marginal_closing(n, Q, s, logdet, rtr, quad, trinv, vv)
    return logp, g_beta, 2.0 * np.sqrt(s) * d_s, gLs, M11s, V1, Lv


@numba.njit(cache=True)
def rest_left(Ls, boff, bfac, qs, X, trans):  # pragma: no cover - compiled
    """L̃₂X (or L̃₂ᵀX with ``trans``) for L̃₂ = blockdiag of the rest's level blocks' L_k:
    O(r·q·columns) instead of a dense product's O(r²·columns)."""
    out = np.zeros(X.shape)
    for b in range(boff.shape[0] - 1):
        k, o = bfac[b], boff[b]
        q = qs[k]
        for i in range(q):
            for t in range(q):
                lv = Ls[k, t, i] if trans else Ls[k, i, t]
                if lv != 0.0:
                    for c in range(X.shape[1]):
                        out[o + i, c] += lv * X[o + t, c]
    return out


@numba.njit(cache=True)
def rest_schur(a21, a22, c2, bptr, bblk, tptr, tent, eown, boff, bfac, Ls, qs, L1, Ci, z1,
               s, u):  # pragma: no cover - compiled
    """The rest's dense part: T = A₂₂L̃₂, S = L̃₂ᵀT + sI − C₂₁C₂₁ᵀ (the Schur complement),
    c₂ = Z_restᵀr, w₂ = L̃₂ᵀc₂, y₂ = w₂ − C₂₁z₁, and C₂₁, B on the pattern."""
    r, q1 = a22.shape[0], a21.shape[2]
    T = rest_left(Ls, boff, bfac, qs, a22, True).T.copy()
    S = rest_left(Ls, boff, bfac, qs, T, True)
    for i in range(r):
        S[i, i] += s
    c2u = mv(c2, u)
    w2 = rest_left(Ls, boff, bfac, qs, c2u.reshape(r, 1), True).ravel()
    y2 = w2.copy()
    C21, B = pattern_products(a21, bptr, bblk, boff, bfac, Ls, qs, L1, Ci, z1, y2)
    eo, eq = entry_rows(bblk, boff, bfac, qs)
    if q1 == 1 and eq.max() == 1:   # scalar terms only: the common crossed intercepts
        c = C21[:, 0, 0].copy()
        for b in range(tptr.shape[0] - 1):
            o = boff[b]
            for x in range(tptr[b], tptr[b + 1]):
                e = tent[x]
                j, ce = eown[e], c[e]
                for f in range(bptr[j], bptr[j + 1]):
                    S[o, eo[f]] -= ce * c[f]
        return T, S, c2u, w2, y2, C21, B
    for b in range(tptr.shape[0] - 1):   # by the rows of S it writes: one block's
        o, qa = boff[b], qs[bfac[b]]
        for x in range(tptr[b], tptr[b + 1]):
            e = tent[x]
            j = eown[e]
            for f in range(bptr[j], bptr[j + 1]):
                o2, qb = eo[f], eq[f]
                for i in range(qa):
                    for t in range(qb):
                        acc = 0.0
                        for a in range(q1):
                            acc += C21[e, i, a] * C21[f, t, a]
                        S[o + i, o2 + t] -= acc
    return T, S, c2u, w2, y2, C21, B


@numba.njit(cache=True)
def entry_rows(bblk, boff, bfac, qs):  # pragma: no cover - compiled
    """Each pattern entry's first row in the rest and its number of rows."""
    ne = bblk.shape[0]
    eo = np.empty(ne, dtype=np.int64)
    eq = np.empty(ne, dtype=np.int64)
    for e in range(ne):
        eo[e] = boff[bblk[e]]
        eq[e] = qs[bfac[bblk[e]]]
    return eo, eq
