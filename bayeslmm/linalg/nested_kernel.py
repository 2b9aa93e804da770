"""The blocked marginal log-likelihood and gradient for *nested* designs (classes in
schools: every level of the first factor meets at most one level block of the rest,
and the rest's blocks are not coupled), where the Schur complement S is block
diagonal: the algebra of :mod:`bayeslmm.linalg.blocked_kernel` with S factored block
by block, so the cost is linear in the number of groups at every level.

Examples
--------
>>> import numpy as np, pandas as pd
>>> from bayeslmm.formula.design import build_design
>>> from bayeslmm.linalg.crossprod import CrossProducts
>>> from bayeslmm.linalg.blocked_layout import blocked_arrays
>>> from bayeslmm.linalg.marginal_kernel import dense_logp_grad
>>> rng = np.random.default_rng(0)
>>> school = rng.integers(0, 4, 60)
>>> df = pd.DataFrame({"y": rng.normal(size=60), "school": school,
...                    "klass": school * 3 + rng.integers(0, 3, 60)})
>>> d = build_design("y ~ 1 + (1 | school) + (1 | klass)", df)
>>> cp = CrossProducts.from_design(d)
>>> a = blocked_arrays(cp)
>>> Ls, beta = np.array([[[0.6]], [[0.9]]]), np.array([0.1])
>>> out = nested_kernel(a["a11"], a["c1"], a["bptr"], a["bblk"], a["a21"], a["boff"],
...                     a["bfac"], a["a22"], a["c2"], a["xy_xy"], a["n"], beta, 0.8, Ls,
...                     np.array(cp.q))
>>> m = cp.marginal_arrays()
>>> ref = dense_logp_grad(m["zz"], m["z_xy"], m["xy_xy"], float(cp.n), beta, 0.8, Ls,
...                       np.array(cp.q), np.array(cp.m), False)
>>> bool(a["blockdiag"]), bool(np.isclose(out[0], ref[0]) and np.allclose(out[3], ref[3]))
(True, True)
"""

from __future__ import annotations

import numba
import numpy as np

from .blocked_parts import gradient, pattern_products, start
from .small_dense import chol_inv_into, mv

__all__ = ["nested_kernel"]


@numba.njit(cache=True)
def nested_kernel(a11, c1, bptr, bblk, a21, boff, bfac, a22, c2, xy_xy, n, beta, sigma, Ls,
                  qs):  # pragma: no cover - compiled
    """``(logp, d_beta, d_sigma, d_Ls)`` as :func:`~bayeslmm.linalg.blocked_kernel.
    blocked_kernel`, for a layout whose ``blockdiag`` is true, and what the data's
    gradient needs: (P⁻¹)₁₁ⱼ, v₁ⱼ, L̃₂v₂, (P⁻¹)₂₁ on the pattern, S⁻¹'s blocks."""
    q1, p1 = c1.shape[1], c1.shape[2]
    p, r, nb = p1 - 1, a22.shape[0], boff.shape[0] - 1
    qm = a21.shape[1]
    bad = (-np.inf, np.zeros(p), 0.0, np.zeros(Ls.shape), np.zeros((0, 0, 0)),
           np.zeros((0, 0)), np.zeros(0), np.zeros((0, 0, 0)), np.zeros((0, 0, 0)))
    s, u, xyu, rtr, L1, ok, logdet, Ci, c1u, w1, z1 = start(a11, c1, xy_xy, beta, sigma, Ls)
    if not ok:
        return bad
    Tb = np.zeros((nb, qm, qm))
    Sb = np.zeros((nb, qm, qm))
    c2u = mv(c2, u)
    w2 = np.zeros(r)
    for b in range(nb):   # no allocation per block: thousands of blocks
        k, o = bfac[b], boff[b]
        q = qs[k]
        for i in range(q):   # T = A₂₂,b L_k (L_k lower triangular)
            for c in range(q):
                acc = 0.0
                for t in range(c, q):
                    acc += a22[o + i, o + t] * Ls[k, t, c]
                Tb[b, i, c] = acc
        for i in range(q):   # S = L_kᵀ T + s I, w₂ = L_kᵀ c₂u
            for c in range(q):
                acc = 0.0
                for t in range(i, q):
                    acc += Ls[k, t, i] * Tb[b, t, c]
                Sb[b, i, c] = acc
            Sb[b, i, i] += s
            acc = 0.0
            for t in range(i, q):
                acc += Ls[k, t, i] * c2u[o + t]
            w2[o + i] = acc
    y2 = w2.copy()
    C21, B = pattern_products(a21, bptr, bblk, boff, bfac, Ls, qs, L1, Ci, z1, y2)
    for e in range(bblk.shape[0]):
        b = bblk[e]
        q = qs[bfac[b]]
        for i in range(q):
            for t in range(q):
                acc = 0.0
                for a in range(q1):
                    acc += C21[e, i, a] * C21[e, t, a]
                Sb[b, i, t] -= acc
    v2 = np.zeros(r)
    Tv = np.zeros(r)
    TM = np.zeros((r, qm))
    Mb = np.zeros((nb, qm, qm))
    Cw, Xw = np.zeros((qm, qm)), np.zeros((qm, qm))
    trinv = 0.0
    for b in range(nb):
        o, q = boff[b], qs[bfac[b]]
        X = Xw[:q, :q]
        ok, ld = chol_inv_into(Sb[b, :q, :q], Cw[:q, :q], X)   # X = C⁻¹, upper part 0
        if not ok:
            return bad
        logdet += ld
        for i in range(q):   # S_b⁻¹ = XᵀX, v₂ = S_b⁻¹y₂
            for c in range(q):
                acc = 0.0
                for t in range(max(i, c), q):
                    acc += X[t, i] * X[t, c]
                Mb[b, i, c] = acc
            trinv += Mb[b, i, i]
        for i in range(q):
            acc = 0.0
            for c in range(q):
                acc += Mb[b, i, c] * y2[o + c]
            v2[o + i] = acc
        for i in range(q):   # TM = T S_b⁻¹
            for c in range(q):
                acc = 0.0
                for t in range(q):
                    acc += Tb[b, i, t] * Mb[b, t, c]
                TM[o + i, c] = acc
    for b in range(nb):
        o, q = boff[b], qs[bfac[b]]
        for i in range(q):
            acc = 0.0
            for t in range(q):
                acc += Tb[b, i, t] * v2[o + t]
            Tv[o + i] = acc
    M21 = np.zeros(C21.shape)
    for e in range(bblk.shape[0]):
        b = bblk[e]
        q = qs[bfac[b]]
        for i in range(q):
            for t in range(q):
                mvl = Mb[b, i, t]
                for a in range(q1):
                    M21[e, i, a] -= mvl * B[e, t, a]
    logp, gb, gs, gLs, M11s, V1, Lv2 = gradient(
        a11, c1, bptr, bblk, a21, boff, bfac, c2, n, Ls, qs, s, xyu, rtr, logdet, L1, Ci,
        c1u, w1, z1, c2u, w2, C21, B, M21, v2, trinv, TM, Tv)
    return logp, gb, gs, gLs, M11s, V1, Lv2, M21, Mb
