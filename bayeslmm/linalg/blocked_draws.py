"""Exact draws of the random effects b | y, θ, β, σ for designs with several grouping
factors, by the blocked Cholesky factor of P (the kernels' algebra: see
:mod:`bayeslmm.linalg.blocked_kernel`), so a posterior's b cost what its gradients do.

With P = CCᵀ (C = [[C₁₁, 0], [C₂₁, C₂₂]]), z = C⁻¹L̃ᵀZᵀr and ε ~ N(0, I),
x = C⁻ᵀ(z + σε) ~ N(P⁻¹L̃ᵀZᵀr, σ²P⁻¹) and b = L̃x: the Gaussian conditional of b.

Examples
--------
>>> import numpy as np, bayeslmm as blm
>>> from bayeslmm.formula.design import build_design
>>> from bayeslmm.linalg.crossprod import CrossProducts
>>> from bayeslmm.linalg.blocked_layout import blocked_arrays
>>> d = build_design("diameter ~ 1 + (1 | plate) + (1 | sample)",
...                  blm.datasets.load("Penicillin"))
>>> cp = CrossProducts.from_design(d)
>>> a = blocked_arrays(cp)
>>> Ls = np.array([[[0.85]], [[1.77]]])
>>> eps = np.random.default_rng(1).standard_normal(30)
>>> b = blocked_draw(a, np.array([22.97]), 0.55, Ls, np.array(cp.q), eps)
>>> b.shape  # the 24 plates' effects, then the 6 samples'
(30,)
"""

from __future__ import annotations

import numba
import numpy as np

from .blocked_parts import first_factor, rest_left, rest_schur

__all__ = ["blocked_draw"]


@numba.njit(cache=True)
def _draw(a11, c1, bptr, bblk, tptr, tent, eown, a21, boff, bfac, a22, c2, beta, sigma, Ls,
          qs, eps):  # pragma: no cover - compiled
    m1, q1, p1 = c1.shape[0], c1.shape[1], c1.shape[2]
    p, r = p1 - 1, a22.shape[0]
    s = sigma * sigma
    u = np.empty(p1)
    u[:p] = -beta
    u[p] = 1.0
    L1 = np.ascontiguousarray(Ls[0, :q1, :q1])
    ok, _, Ci, _, _, z1 = first_factor(a11, c1, L1, s, u)
    T, S, c2u, w2, y2, C21, B = rest_schur(a21, a22, c2, bptr, bblk, tptr, tent, eown,
                                            boff, bfac, Ls, qs, L1, Ci, z1, s, u)
    C22 = np.linalg.cholesky(S)
    z2 = np.zeros(r)   # C₂₂ z₂ = y₂
    for i in range(r):
        acc = y2[i]
        for k in range(i):
            acc -= C22[i, k] * z2[k]
        z2[i] = acc / C22[i, i]
    x2 = np.zeros(r)   # C₂₂ᵀ x₂ = z₂ + σε₂
    off = m1 * q1
    for i in range(r - 1, -1, -1):
        acc = z2[i] + sigma * eps[off + i]
        for k in range(i + 1, r):
            acc -= C22[k, i] * x2[k]
        x2[i] = acc / C22[i, i]
    out = np.zeros(off + r)
    t1 = np.zeros(q1)
    for j in range(m1):   # C₁₁ⱼᵀ x₁ⱼ = z₁ⱼ + σε₁ⱼ − C₂₁ⱼᵀx₂, b₁ⱼ = L₁x₁ⱼ
        for a in range(q1):
            t1[a] = z1[j, a] + sigma * eps[j * q1 + a]
        for e in range(bptr[j], bptr[j + 1]):
            o, q = boff[bblk[e]], qs[bfac[bblk[e]]]
            for i in range(q):
                for a in range(q1):
                    t1[a] -= C21[e, i, a] * x2[o + i]
        for a in range(q1):
            acc = 0.0
            for i in range(a, q1):
                acc += Ci[j, i, a] * t1[i]
            out[j * q1 + a] = acc
        x1 = out[j * q1:(j + 1) * q1].copy()
        for a in range(q1):
            acc = 0.0
            for i in range(a + 1):
                acc += L1[a, i] * x1[i]
            out[j * q1 + a] = acc
    out[off:] = rest_left(Ls, boff, bfac, qs, x2.reshape(r, 1), False).ravel()
    return out


def blocked_draw(arrays: dict, beta, sigma: float, Ls, qs, eps) -> np.ndarray:
    """One draw of b (all factors, in the cross-products' order, level-major) given
    ``beta``, ``sigma``, the factors' ``Ls`` and standard normal ``eps`` (length Q)."""
    a = arrays
    return _draw(a["a11"], a["c1"], a["bptr"], a["bblk"], a["tptr"], a["tent"], a["eown"],
                 a["a21"], a["boff"], a["bfac"],
                 a["a22"], a["c2"], np.ascontiguousarray(beta, np.float64), float(sigma),
                 np.ascontiguousarray(Ls, np.float64), np.asarray(qs, np.int64),
                 np.ascontiguousarray(eps, np.float64))
