"""Exact draws of one grouping factor's random effects for q = 1 and q = 2 in closed form,
over the structure-of-arrays cross-products of :mod:`bayeslmm.linalg.small_q_kernel`.

Per draw (β, L, σ) and level j, with P = LᵀAⱼL + σ²I = CCᵀ and rⱼ = Zⱼᵀ(y − Xβ):
C v = Lᵀrⱼ, Cᵀu = v + σε, b = Lu (ε the given standard normal noise), the draws of
:func:`bayeslmm.sampling.ranef_draws.draw_random_effects` for one factor. The 2 × 2
Cholesky factor is written out, its last pivot from |P| = |L|²|Aⱼ| + σ² tr M + σ⁴ (no
cancellation where Aⱼ is singular), and the levels run innermost and contiguously, so
the loop vectorises (square roots and divisions included).

Examples
--------
>>> import numpy as np
>>> zz_s = np.array([[4.0], [2.0], [3.0]])  # ZᵀZ = [[4, 2], [2, 3]], one level
>>> zx_s = np.array([[[1.0], [2.0]], [[0.5], [1.0]]])  # ZᵀX = [1, 0.5], Zᵀy = [2, 1]
>>> out = np.empty((1, 1, 2))
>>> eps = np.zeros((2, 1, 1))  # no noise: b is the conditional mean
>>> small_q_draws(0, 1, np.eye(2)[None], np.array([[0.5]]), np.array([1.0]), zz_s, zx_s,
...               eps, out)
>>> P = np.array([[4.0, 2.0], [2.0, 3.0]]) + np.eye(2)  # ZᵀZ + σ²I, L = I
>>> bool(np.allclose(out[0, 0], np.linalg.solve(P, [2.0 - 0.5, 1.0 - 0.25])))
True
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["small_q_draws"]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _draws_q1(L, beta, sigma, a, zx, eps, out, d, c):  # pragma: no cover - compiled
    m, p = a.shape[0], zx.shape[0] - 1
    l11, sg = L[d, 0, 0], sigma[d]
    s = sg * sg
    for j in range(m):  # r = Zⱼᵀy − ZⱼᵀXβ (levels innermost)
        c[j] = zx[p, j]
    for b in range(p):
        bb = beta[d, b]
        for j in range(m):
            c[j] -= zx[b, j] * bb
    for j in range(m):
        C = math.sqrt(l11 * l11 * a[j] + s)
        v = l11 * c[j] / C
        c[j] = l11 * (v + sg * eps[0, d, j]) / C
    for j in range(m):
        out[d, j, 0] = c[j]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _draws_q2(L, beta, sigma, zz, zx, eps, out, d, c1, c2):  # pragma: no cover - compiled
    m, p = zz.shape[1], zx.shape[1] - 1
    l11, l21, l22, sg = L[d, 0, 0], L[d, 1, 0], L[d, 1, 1], sigma[d]
    s = sg * sg
    dl2 = (l11 * l22) ** 2
    for j in range(m):  # r = Zⱼᵀy − ZⱼᵀXβ (levels innermost)
        c1[j], c2[j] = zx[0, p, j], zx[1, p, j]
    for b in range(p):
        bb = beta[d, b]
        for j in range(m):
            c1[j] -= zx[0, b, j] * bb
            c2[j] -= zx[1, b, j] * bb
    for j in range(m):
        a11, a12, a22 = zz[0, j], zz[1, j], zz[2, j]
        al11, al12 = a11 * l11 + a12 * l21, a12 * l22        # A L
        al21, al22 = a12 * l11 + a22 * l21, a22 * l22
        m11 = l11 * al11 + l21 * al21                         # M = Lᵀ A L
        m12 = l11 * al12 + l21 * al22
        m22 = l22 * al22
        p11 = m11 + s
        det = dl2 * (a11 * a22 - a12 * a12) + s * (m11 + m22) + s * s
        k11 = math.sqrt(p11)                                  # C
        k21 = m12 / k11
        k22 = math.sqrt(det / p11)
        w1, w2 = l11 * c1[j] + l21 * c2[j], l22 * c2[j]       # C v = Lᵀ r
        v1 = w1 / k11
        v2 = (w2 - k21 * v1) / k22
        u2 = (v2 + sg * eps[1, d, j]) / k22                   # Cᵀ u = v + σ ε
        u1 = (v1 + sg * eps[0, d, j] - k21 * u2) / k11
        c1[j] = l11 * u1                                      # b = L u
        c2[j] = l21 * u1 + l22 * u2
    for j in range(m):  # stores into (m, 2) rows apart: the loop above vectorises
        out[d, j, 0] = c1[j]
        out[d, j, 1] = c2[j]


@numba.njit(cache=True, nogil=True)
def small_q_draws(lo, hi, L, beta, sigma, zz_s, zx_s, eps, out):  # pragma: no cover
    """Draws ``lo`` to ``hi`` (of ``L`` (draws, q, q), ``beta`` (draws, p), ``sigma``) into
    ``out`` (draws, m, q), with noise ``eps`` (q, draws, m); the cross-products as
    :func:`~bayeslmm.linalg.small_q_kernel.soa_arrays` lays them out."""
    q, m = zx_s.shape[0], zx_s.shape[2]
    c1, c2 = np.empty(m), np.empty(m)
    for d in range(lo, hi):
        if q == 1:
            _draws_q1(L, beta, sigma, zz_s[0], zx_s[0], eps, out, d, c1)
        else:
            _draws_q2(L, beta, sigma, zz_s, zx_s, eps, out, d, c1, c2)
