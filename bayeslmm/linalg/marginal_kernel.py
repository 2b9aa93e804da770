"""The marginal log-likelihood of a Gaussian LMM and its gradient, from cross-products,
in compiled code (numba, cached on disk once per machine).

With b integrated out, y ~ N(Xβ, Z L̃L̃ᵀ Zᵀ + σ²I) for L̃ = blockdiag(I ⊗ L_k) (L_k the
Cholesky factor of Ψ_k). With A = ZᵀZ, c = Zᵀ(y − Xβ), P = L̃ᵀAL̃ + σ²I, w = L̃ᵀc and
v = P⁻¹w (Woodbury),

    log p = −½ [n log 2π + (n − Q) log σ² + log|P| + (rᵀr − wᵀv) / σ²],

and, with s = σ², the gradient is

    ∂/∂β   = (Xᵀr − (ZᵀX)ᵀ L̃v) / s
    ∂/∂s   = −½ [(n − Q)/s + tr P⁻¹ − (rᵀr − wᵀv)/s² + vᵀv/s]
    ∂/∂L̃   = −[A L̃ P⁻¹ − (c vᵀ − A L̃ v vᵀ)/s]        (L_k: the sum of its diagonal blocks)
    ∂/∂A   = −½ [L̃ P⁻¹ L̃ᵀ + L̃v vᵀL̃ᵀ/s],   ∂/∂c = L̃v/s,   ∂/∂(rᵀr) = −1/(2s)

(the last three give the gradient in the cross-products themselves, for models whose
cross-products depend on parameters: residual structures). One grouping factor: P is
block diagonal, one q×q block per level, and everything is a loop over the levels.
Several: a dense Q×Q P (Q = Σ levels·q; the marginal model takes it for few random
effects).

The cross-products are those of :meth:`bayeslmm.linalg.crossprod.CrossProducts.marginal_arrays`:
``zz`` (m, q, q) per level or (Q, Q), ``z_xy`` = Zᵀ[X y], ``xy_xy`` = [X y]ᵀ[X y].

Examples
--------
>>> import numpy as np, bayeslmm as blm
>>> from scipy.stats import multivariate_normal
>>> from bayeslmm.formula.design import build_design
>>> from bayeslmm.linalg.crossprod import CrossProducts
>>> d = build_design("Reaction ~ Days + (Days | Subject)", blm.datasets.load("sleepstudy"))
>>> a = CrossProducts.from_design(d).marginal_arrays()
>>> L = np.array([[[24.74, 0.0], [0.42, 5.91]]])
>>> out = marginal_logp_grad(a["zz"], a["z_xy"], a["xy_xy"], 180.0, np.array([251.4, 10.47]),
...                          25.59, L, np.array([2]), np.array([18]), False)
>>> Zs = np.zeros((180, 18, 2))
>>> Zs[np.arange(180), d.terms[0].codes] = d.terms[0].Z
>>> Z = Zs.reshape(180, 36)
>>> V = Z @ np.kron(np.eye(18), L[0] @ L[0].T) @ Z.T + 25.59**2 * np.eye(180)
>>> want = multivariate_normal(d.X @ [251.4, 10.47], V).logpdf(d.y)
>>> round(out[0], 4), bool(abs(out[0] - want) < 1e-9)
(-875.9996, True)
"""

from __future__ import annotations

import numba
import numpy as np

from .small_dense import chol_inv_into

__all__ = ["marginal_logp_grad", "one_factor_logp_grad", "dense_logp_grad", "marginal_closing",
           "beta_gradient"]

_LOG2PI = float(np.log(2.0 * np.pi))


@numba.njit(cache=True)
def marginal_closing(n, Q, s, logdet, rtr, quad, trinv, vv):  # pragma: no cover - compiled
    """``(logp, d logp / ds)`` of the marginal model (s = σ², n rows, Q random effects)
    from what every kernel computes: ``logdet`` = log|P|, ``rtr − quad`` = rᵀr −
    wᵀP⁻¹w (w = L̃ᵀZᵀr), ``trinv`` = tr(P⁻¹), ``vv`` = vᵀv (v = P⁻¹w). The one-factor,
    dense, small-q and blocked kernels all end here."""
    logp = -0.5 * (n * _LOG2PI + (n - Q) * np.log(s) + logdet + (rtr - quad) / s)
    d_s = -0.5 * ((n - Q) / s + trinv - (rtr - quad) / (s * s) + vv / s)
    return logp, d_s


@numba.njit(cache=True)
def beta_gradient(xy_xy, u, zlv, s):  # pragma: no cover - compiled
    """d logp / dβ = (Xᵀ(y − Xβ) − ``zlv``) / s from [XᵀX Xᵀy] and u = (−β, 1); ``zlv`` =
    Σⱼ (ZⱼᵀX)ᵀL̃vⱼ."""
    p, p1 = zlv.shape[0], u.shape[0]
    g_beta = np.empty(p)
    for b in range(p):
        acc = 0.0
        for a in range(p1):
            acc += xy_xy[b, a] * u[a]
        g_beta[b] = (acc - zlv[b]) / s
    return g_beta


@numba.njit(cache=True)
def _chol_inv(P, C, Cinv, Pinv):  # pragma: no cover - compiled
    """C⁻¹ (lower, into ``Cinv``; C the Cholesky factor, work in ``C``) and P⁻¹ = C⁻ᵀC⁻¹
    (into ``Pinv``) of a small SPD matrix, and log|P|, with no allocation per level;
    ok False if P is not PD."""
    q = P.shape[0]
    for i in range(q):
        for j in range(i + 1, q):
            Cinv[i, j] = 0.0
    ok, logdet = chol_inv_into(P, C, Cinv)
    if not ok:
        return 0.0, False
    for a in range(q):  # P⁻¹ = C⁻ᵀC⁻¹
        for b in range(q):
            acc = 0.0
            for k in range(max(a, b), q):
                acc += Cinv[k, a] * Cinv[k, b]
            Pinv[a, b] = acc
    return logdet, True


@numba.njit(cache=True, nogil=True)
def one_factor_logp_grad(zz, z_xy, xy_xy, n, beta, sigma, L, data_grads):  # pragma: no cover
    m, q, p1 = z_xy.shape[0], z_xy.shape[1], z_xy.shape[2]
    p = p1 - 1
    u = np.empty(p1)
    u[:p] = -beta
    u[p] = 1.0
    s = sigma * sigma
    if not (s * s > 0.0 and s < np.inf):  # σ⁴ underflows (σ < 1e-77) or σ² overflows: -inf
        return (-np.inf, np.zeros(p), 0.0, np.zeros((q, q)),
                np.zeros((m if data_grads else 0, q, q)),
                np.zeros((m if data_grads else 0, q, p1)), np.zeros((p1, p1)))
    rtr = 0.0
    for a in range(p1):
        for b in range(p1):
            rtr += u[a] * xy_xy[a, b] * u[b]
    logdet, quad, vv, trinv = 0.0, 0.0, 0.0, 0.0
    zlv = np.zeros(p)          # Σ_j (ZⱼᵀX)ᵀ L v_j
    GL = np.zeros((q, q))      # Σ_j A_j L P_j⁻¹ − (c_j − A_j L v_j) v_jᵀ / s
    g_zz = np.zeros((m if data_grads else 0, q, q))
    g_zxy = np.zeros((m if data_grads else 0, q, p1))
    c, w, v, Lv, ALv = np.empty(q), np.empty(q), np.empty(q), np.empty(q), np.empty(q)
    AL, P, ALP = np.empty((q, q)), np.empty((q, q)), np.empty((q, q))
    C, Cinv, Pinv = np.zeros((q, q)), np.zeros((q, q)), np.zeros((q, q))
    for j in range(m):
        for a in range(q):
            acc = 0.0
            for b in range(p1):
                acc += z_xy[j, a, b] * u[b]
            c[a] = acc
            for b in range(q):
                acc = 0.0
                for k in range(q):
                    acc += zz[j, a, k] * L[k, b]
                AL[a, b] = acc
        for a in range(q):
            for b in range(q):
                acc = s if a == b else 0.0
                for k in range(q):  # Lᵀ sym(A) L: the gradient in A is then symmetric
                    acc += 0.5 * (L[k, a] * AL[k, b] + L[k, b] * AL[k, a])
                P[a, b] = acc
        ld, ok = _chol_inv(P, C, Cinv, Pinv)
        if not ok:
            return (-np.inf, np.zeros(p), 0.0, np.zeros((q, q)), g_zz, g_zxy,
                    np.zeros((p1, p1)))
        for a in range(q):
            acc = 0.0
            for k in range(q):
                acc += L[k, a] * c[k]
            w[a] = acc
        for a in range(q):
            acc = 0.0
            for k in range(q):
                acc += Pinv[a, k] * w[k]
            v[a] = acc
            quad += w[a] * acc
            vv += acc * acc
            trinv += Pinv[a, a]
        logdet += ld
        for a in range(q):
            acc, acc2 = 0.0, 0.0
            for k in range(q):
                acc += L[a, k] * v[k]
                acc2 += AL[a, k] * v[k]
            Lv[a], ALv[a] = acc, acc2
            for b in range(q):
                acc = 0.0
                for k in range(q):
                    acc += AL[a, k] * Pinv[k, b]
                ALP[a, b] = acc
        for b in range(p):
            acc = 0.0
            for a in range(q):
                acc += z_xy[j, a, b] * Lv[a]
            zlv[b] += acc
        for a in range(q):
            for b in range(q):
                GL[a, b] += ALP[a, b] - (c[a] - ALv[a]) * v[b] / s
        if data_grads:  # L P⁻¹ Lᵀ by loops: matrix products allocate at every level
            for a in range(q):
                for b in range(q):
                    acc = 0.0
                    for k in range(q):
                        acc += L[a, k] * Pinv[k, b]
                    ALP[a, b] = acc  # reused as L P⁻¹ (its own use is done)
            for a in range(q):
                for b in range(q):
                    acc = 0.0
                    for k in range(q):
                        acc += ALP[a, k] * L[b, k]
                    g_zz[j, a, b] = -0.5 * (acc + Lv[a] * Lv[b] / s)
                for b in range(p1):
                    g_zxy[j, a, b] = Lv[a] / s * u[b]
    Q = m * q
    g_beta = beta_gradient(xy_xy, u, zlv, s)
    logp, d_s = marginal_closing(n, Q, s, logdet, rtr, quad, trinv, vv)
    g_xyxy = np.zeros((p1, p1))
    if data_grads:
        for a in range(p1):
            for b in range(p1):
                g_xyxy[a, b] = -0.5 * u[a] * u[b] / s
    return logp, g_beta, 2.0 * sigma * d_s, -GL, g_zz, g_zxy, g_xyxy


@numba.njit(cache=True, nogil=True)
def dense_logp_grad(zz, z_xy, xy_xy, n, beta, sigma, Ls, qs, ms, data_grads):  # pragma: no cover
    Q, p1 = z_xy.shape[0], z_xy.shape[1]
    p = p1 - 1
    u = np.empty(p1)
    u[:p] = -beta
    u[p] = 1.0
    s = sigma * sigma
    if not (s * s > 0.0 and s < np.inf):  # σ⁴ underflows (σ < 1e-77) or σ² overflows: -inf
        return (-np.inf, np.zeros(p), 0.0, np.zeros(Ls.shape), np.zeros((0, Q)),
                np.zeros((0, p1)), np.zeros((p1, p1)))
    rtr = u @ (xy_xy @ u)
    Lt = np.zeros((Q, Q))     # L̃ = blockdiag over factors of (I_levels ⊗ L_k)
    pos = 0
    for k in range(len(qs)):
        qk = qs[k]
        for _ in range(ms[k]):
            Lt[pos:pos + qk, pos:pos + qk] = Ls[k, :qk, :qk]
            pos += qk
    c = z_xy @ u
    AL = zz @ Lt
    P = Lt.T @ AL
    P = 0.5 * (P + P.T)  # Lᵀ sym(A) L: the gradient in A is then symmetric
    for i in range(Q):
        P[i, i] += s
    try:
        C = np.linalg.cholesky(P)
    except Exception:  # not positive definite: outside the support
        return (-np.inf, np.zeros(p), 0.0, np.zeros(Ls.shape), np.zeros((0, Q)),
                np.zeros((0, p1)), np.zeros((p1, p1)))
    logdet = 0.0
    for i in range(Q):
        logdet += 2.0 * np.log(C[i, i])
    Cinv = np.linalg.inv(C)
    Pinv = Cinv.T @ Cinv
    w = Lt.T @ c
    v = Pinv @ w
    quad, vv = w @ v, v @ v
    trinv = 0.0
    for i in range(Q):
        trinv += Pinv[i, i]
    Ltv = Lt @ v
    G = AL @ Pinv - np.outer(c - AL @ v, v) / s
    gLs = np.zeros(Ls.shape)
    pos = 0
    for k in range(len(qs)):
        qk = qs[k]
        for _ in range(ms[k]):
            gLs[k, :qk, :qk] -= G[pos:pos + qk, pos:pos + qk]
            pos += qk
    g_beta = ((xy_xy @ u)[:p] - np.ascontiguousarray(z_xy[:, :p].T) @ Ltv) / s
    logp, d_s = marginal_closing(n, Q, s, logdet, rtr, quad, trinv, vv)
    if data_grads:
        g_zz = -0.5 * (Lt @ Pinv @ Lt.T + np.outer(Ltv, Ltv) / s)
        g_zxy = np.outer(Ltv / s, u)
        g_xyxy = -0.5 * np.outer(u, u) / s
    else:
        g_zz, g_zxy, g_xyxy = np.zeros((0, Q)), np.zeros((0, p1)), np.zeros((p1, p1))
    return logp, g_beta, 2.0 * sigma * d_s, gLs, g_zz, g_zxy, g_xyxy


def marginal_logp_grad(zz, z_xy, xy_xy, n, beta, sigma, Ls, qs, ms, data_grads):
    """log p and its gradient in (β, σ, each L_k) and, with ``data_grads``, in the
    cross-products (``zz``, ``z_xy``, ``xy_xy``); see the module doc.

    ``Ls`` is (K, q_max, q_max): factor k's Cholesky factor in its top-left q_k × q_k
    corner; ``qs``, ``ms`` its coefficients and levels. Returns ``(logp, d_beta,
    d_sigma, d_Ls, d_zz, d_z_xy, d_xy_xy)`` (the last three empty without
    ``data_grads``); ``logp = -inf`` where P is not positive definite. One factor runs
    :func:`one_factor_logp_grad`, several :func:`dense_logp_grad`.
    """
    f64 = np.float64
    args = (np.ascontiguousarray(zz, f64), np.ascontiguousarray(z_xy, f64),
            np.ascontiguousarray(xy_xy, f64), float(n), np.ascontiguousarray(beta, f64),
            float(sigma))
    Ls = np.ascontiguousarray(Ls, f64)
    if len(qs) == 1:
        q = int(qs[0])
        out = one_factor_logp_grad(*args, np.ascontiguousarray(Ls[0, :q, :q]), bool(data_grads))
        gLs = np.zeros(Ls.shape)
        gLs[0, :q, :q] = out[3]
        return (*out[:3], gLs, *out[4:])
    return dense_logp_grad(*args, Ls, np.asarray(qs, np.int64), np.asarray(ms, np.int64),
                           bool(data_grads))
