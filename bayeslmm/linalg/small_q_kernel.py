"""The one-factor marginal log-likelihood and gradient for q = 1 and q = 2 in closed form,
over cross-products laid out structure-of-arrays (the level index innermost).

The same quantity as :func:`bayeslmm.linalg.marginal_kernel.one_factor_logp_grad` (see
that module's doc for the formulas) for the designs that dominate large data,
``(1 | g)`` and ``(x | g)``: per level, P = LᵀAL + σ²I is 1 × 1 or 2 × 2, so its
determinant, inverse and every product are written out (no Cholesky, no inner loops
over q), and the levels' arrays are read contiguously, so that LLVM vectorises the
loop over levels (SIMD lanes across levels; the sums are reductions, reassociated
only inside that loop). The general kernel spends ~140 ns a level at q = 2 in nested
loops of unknown trip count; this one a few.

log|P| needs a logarithm per level, which libm does not vectorise (numba has no SVML
here): since P ⪰ σ²I, each r = |P|/σ²q ≥ 1, so Σ log|P| = m q log σ² + Σ log r, and
the r of a block of levels are multiplied and their product's logarithm taken once
(a block whose product would overflow takes its levels' logarithms one by one).

Layout (:func:`soa_arrays`): ``zz_s`` (q(q+1)/2, m) the distinct entries of each
ZⱼᵀZⱼ (q = 2: a₁₁, a₁₂, a₂₂), ``zx_s`` (q, p + 1, m) Zⱼᵀ[X y].

Examples
--------
>>> import numpy as np, bayeslmm as blm
>>> from bayeslmm.formula.design import build_design
>>> from bayeslmm.linalg.crossprod import CrossProducts
>>> from bayeslmm.linalg.marginal_kernel import one_factor_logp_grad
>>> d = build_design("Reaction ~ Days + (Days | Subject)", blm.datasets.load("sleepstudy"))
>>> a = CrossProducts.from_design(d).marginal_arrays()
>>> L, beta = np.array([[24.74, 0.0], [0.42, 5.91]]), np.array([251.4, 10.47])
>>> zz_s, zx_s = soa_arrays(a["zz"], a["z_xy"])
>>> fast = small_q_logp_grad(zz_s, zx_s, a["xy_xy"], 180.0, beta, 25.59, L)
>>> slow = one_factor_logp_grad(a["zz"], a["z_xy"], a["xy_xy"], 180.0, beta, 25.59, L, False)
>>> round(fast[0], 4), bool(abs(fast[0] - slow[0]) < 1e-9), bool(np.allclose(fast[3], slow[3]))
(-875.9996, True, True)
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .marginal_kernel import beta_gradient, marginal_closing

__all__ = ["soa_arrays", "small_q_logp_grad", "SMALL_Q"]

#: the numbers of random-effect coefficients this kernel takes
SMALL_Q = (1, 2)

#: levels per tile: the tile's temporaries stay in the L1 cache
_TILE = 256
#: levels whose ratios r ≥ 1 are multiplied before one logarithm
_BLOCK = 16
#: a block's product above this is taken level by level (16 ratios of 1e18 fit)
_BIG = 1e290
#: reassociation (the reductions over levels vectorise) and fused multiply-adds;
#: no assumptions about NaN or infinities
_FAST = {"reassoc", "contract"}


def soa_arrays(zz: np.ndarray, z_xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(zz_s, zx_s)``: the one-factor cross-products ``zz`` (m, q, q) and ``z_xy``
    (m, q, p + 1) of :meth:`~bayeslmm.linalg.crossprod.CrossProducts.marginal_arrays`
    laid out for :func:`small_q_logp_grad` (ZⱼᵀZⱼ symmetrised).

    >>> zz_s, zx_s = soa_arrays(np.ones((5, 2, 2)), np.ones((5, 2, 3)))
    >>> zz_s.shape, zx_s.shape
    ((3, 5), (2, 3, 5))
    """
    zz = np.asarray(zz, dtype=np.float64)
    q = zz.shape[1]
    rows, cols = np.tril_indices(q)
    zz_s = 0.5 * (zz[:, cols, rows] + zz[:, rows, cols]).T  # (a11[, a21, a22])
    zx_s = np.ascontiguousarray(np.transpose(np.asarray(z_xy, dtype=np.float64), (1, 2, 0)))
    return np.ascontiguousarray(zz_s), zx_s


@numba.njit(cache=True, nogil=True, fastmath=_FAST, error_model="numpy")
def _sum_log(r):  # pragma: no cover - compiled
    """Σ log r for r ≥ 1: one logarithm per block of levels (level by level where a
    block's product would overflow)."""
    m = r.shape[0]
    total = 0.0
    for start in range(0, m, _BLOCK):
        stop = min(start + _BLOCK, m)
        prod, low = 1.0, 1.0
        for j in range(start, stop):
            prod *= r[j]
            low = min(low, r[j])
        if not low > 0.0:  # P not positive definite (or NaN): outside the support
            return -np.inf
        if prod < _BIG:
            total += math.log(prod)
        else:
            for j in range(start, stop):
                total += math.log(r[j])
    return total


@numba.njit(cache=True, nogil=True, fastmath=_FAST, error_model="numpy")
def _pass_q1(a, zx, u, p, l11, s, zlv):  # pragma: no cover - compiled
    """One pass over the levels, q = 1: adds (ZⱼᵀX)ᵀLv into ``zlv``; returns the other
    sums (Σ log r, r = P/σ², first). Tiles of levels, so that every innermost loop runs
    over levels (the loop LLVM vectorises)."""
    m = a.shape[0]
    logr, quad, vv, trinv, gl = 0.0, 0.0, 0.0, 0.0, 0.0
    inv_s = 1.0 / s
    c, lv, r = np.empty(_TILE), np.empty(_TILE), np.empty(_TILE)
    for t0 in range(0, m, _TILE):
        t = min(_TILE, m - t0)
        for j in range(t):                       # c = Zⱼᵀ(y − Xβ)
            c[j] = zx[p, t0 + j]
        for b in range(p):
            ub = u[b]
            for j in range(t):
                c[j] += zx[b, t0 + j] * ub
        for j in range(t):
            cj, aj = c[j], a[t0 + j]
            P = l11 * l11 * aj + s
            ip = 1.0 / P
            w = l11 * cj
            v = ip * w
            quad += w * v
            vv += v * v
            trinv += ip
            lvj = l11 * v
            lv[j] = lvj
            gl += aj * l11 * ip - (cj - aj * lvj) * v * inv_s
            r[j] = P * inv_s
        logr += _sum_log(r[:t])
        for b in range(p):                       # (ZⱼᵀX)ᵀ L v
            acc = 0.0
            for j in range(t):
                acc += zx[b, t0 + j] * lv[j]
            zlv[b] += acc
    return logr, quad, vv, trinv, gl


@numba.njit(cache=True, nogil=True, fastmath=_FAST, error_model="numpy")
def _pass_q2(zz, zx, u, p, l11, l21, l22, s, zlv, G):  # pragma: no cover - compiled
    """One pass over the levels, q = 2: adds (ZⱼᵀX)ᵀLv into ``zlv`` and
    A L P⁻¹ − (c − ALv)vᵀ/σ² into ``G`` (row-major 4); returns the other sums (Σ log r,
    r = |P|/σ⁴, first). Tiles of levels, as :func:`_pass_q1`."""
    m = zz.shape[1]
    logr, quad, vv, trinv = 0.0, 0.0, 0.0, 0.0
    g11, g12, g21, g22 = 0.0, 0.0, 0.0, 0.0
    inv_s, inv_s2 = 1.0 / s, 1.0 / (s * s)
    dl2 = (l11 * l22) ** 2
    c1, c2 = np.empty(_TILE), np.empty(_TILE)
    lv1, lv2, r = np.empty(_TILE), np.empty(_TILE), np.empty(_TILE)
    for t0 in range(0, m, _TILE):
        t = min(_TILE, m - t0)
        for j in range(t):                       # c = Zⱼᵀ(y − Xβ)
            c1[j], c2[j] = zx[0, p, t0 + j], zx[1, p, t0 + j]
        for b in range(p):
            ub = u[b]
            for j in range(t):
                c1[j] += zx[0, b, t0 + j] * ub
                c2[j] += zx[1, b, t0 + j] * ub
        for j in range(t):
            a11, a12, a22 = zz[0, t0 + j], zz[1, t0 + j], zz[2, t0 + j]
            al11, al12 = a11 * l11 + a12 * l21, a12 * l22       # A L
            al21, al22 = a12 * l11 + a22 * l21, a22 * l22
            m11 = l11 * al11 + l21 * al21                        # M = Lᵀ A L
            m12 = l11 * al12 + l21 * al22
            m22 = l22 * al22
            p11, p22 = m11 + s, m22 + s                          # P = M + σ² I
            # |P| = |L|²|A| + σ² tr M + σ⁴: positive terms, no cancellation (P₁₁P₂₂ − P₁₂²
            # and the Cholesky factor lose |M|/σ² digits where Aⱼ is singular)
            da = a11 * a22 - a12 * a12
            rj = (dl2 * da * inv_s + (m11 + m22)) * inv_s + 1.0  # |P| / σ⁴
            idet = inv_s2 / rj
            i11, i12, i22 = p22 * idet, -m12 * idet, p11 * idet  # P⁻¹
            w1, w2 = l11 * c1[j] + l21 * c2[j], l22 * c2[j]      # w = Lᵀ c
            v1, v2 = i11 * w1 + i12 * w2, i12 * w1 + i22 * w2    # v = P⁻¹ w
            quad += w1 * v1 + w2 * v2
            vv += v1 * v1 + v2 * v2
            trinv += i11 + i22
            x1, x2 = l11 * v1, l21 * v1 + l22 * v2               # L v
            lv1[j], lv2[j] = x1, x2
            e1 = (c1[j] - (a11 * x1 + a12 * x2)) * inv_s        # (c − A L v)/σ²
            e2 = (c2[j] - (a12 * x1 + a22 * x2)) * inv_s
            g11 += al11 * i11 + al12 * i12 - e1 * v1
            g12 += al11 * i12 + al12 * i22 - e1 * v2
            g21 += al21 * i11 + al22 * i12 - e2 * v1
            g22 += al21 * i12 + al22 * i22 - e2 * v2
            r[j] = rj
        logr += _sum_log(r[:t])
        for b in range(p):                       # (ZⱼᵀX)ᵀ L v
            acc = 0.0
            for j in range(t):
                acc += zx[0, b, t0 + j] * lv1[j] + zx[1, b, t0 + j] * lv2[j]
            zlv[b] += acc
    G[0] += g11
    G[1] += g12
    G[2] += g21
    G[3] += g22
    return logr, quad, vv, trinv


@numba.njit(cache=True, nogil=True)
def small_q_logp_grad(zz_s, zx_s, xy_xy, n, beta, sigma, L):  # pragma: no cover - compiled
    """``(log p, ∂β, ∂σ, ∂L)`` of one grouping factor with q ≤ 2 (``L`` its q × q
    Cholesky factor); the values of ``one_factor_logp_grad(..., data_grads=False)``
    (``-inf`` where σ² or σ⁴ leave the floating-point range)."""
    q, p1, m = zx_s.shape[0], zx_s.shape[1], zx_s.shape[2]
    p = p1 - 1
    u = np.empty(p1)
    u[:p] = -beta
    u[p] = 1.0
    s = sigma * sigma
    gL = np.zeros((q, q))
    if not (s * s > 0.0 and s < np.inf and s * s < np.inf):
        return -np.inf, np.zeros(p), 0.0, gL
    rtr = 0.0
    for a in range(p1):
        for b in range(p1):
            rtr += u[a] * xy_xy[a, b] * u[b]
    zlv = np.zeros(p)
    if q == 1:
        logr, quad, vv, trinv, g = _pass_q1(zz_s[0], zx_s[0], u, p, L[0, 0], s, zlv)
        gL[0, 0] = -g
    else:
        G = np.zeros(4)
        logr, quad, vv, trinv = _pass_q2(zz_s, zx_s, u, p, L[0, 0], L[1, 0], L[1, 1], s,
                                         zlv, G)
        gL[0, 0], gL[0, 1], gL[1, 0], gL[1, 1] = -G[0], -G[1], -G[2], -G[3]
    Q = m * q
    logdet = Q * math.log(s) + logr
    if not np.isfinite(logdet) or not np.isfinite(quad):  # P not positive definite
        return -np.inf, np.zeros(p), 0.0, np.zeros((q, q))
    g_beta = beta_gradient(xy_xy, u, zlv, s)
    logp, d_s = marginal_closing(n, Q, s, logdet, rtr, quad, trinv, vv)
    return logp, g_beta, 2.0 * sigma * d_s, gL
