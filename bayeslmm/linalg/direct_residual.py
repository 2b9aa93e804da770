"""The whole log-density of a marginal mixed model with a structured residual on its
sufficient statistics, and its gradient, in numba: nothing to compile per model.

The model of :mod:`bayeslmm.linalg.direct_kernel` plus a residual structure whose
cross-products are ``Σ_k c_k S_k`` (:mod:`bayeslmm.residual.sufficient`): the
unconstrained vector holds, between the grouping factors' parameters and ``log σ``, the
correlation's (``Phi`` or ``Rho`` under PyMC's interval transform of its ``Uniform``
prior) and the VarIdent ratios (``log``, ``LogNormal`` priors). Per evaluation: the
coefficients c_k and their derivatives, the combined cross-products, the likelihood
kernel with its gradient in the cross-products (``data_grads``), whose contraction
with each ``S_k`` gives ∂/∂c_k, then the chain rule to the parameters; plus
``−½ log|Λ|``. The cost does not depend on the number of rows. The entry points release
the GIL, so nutpie's chains (threads) run them in parallel.

Residual spec: ``rkind`` (0: no correlation, 1: Markov ``Phi``, 2: CompSymm ``Rho``),
``roff`` (the correlation's place in ``x``; the ratios follow), ``rlo``, ``rhi`` (its
Uniform prior's bounds), ``rpar`` ((S − 1, 2) the ratios' LogNormal ``mu``, ``sigma``),
then the statistics' ``kind``, ``value``, ``a``, ``b`` and the log-determinant's
``values``, ``counts``, ``strata_rows``.

Examples
--------
See :class:`bayeslmm.pymc.direct.DirectModel`, whose ``logp_grad`` calls these and is
tested equal to PyMC's own compiled log-density and gradient.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .blocked_kernel import blocked_kernel_grads
from .direct_kernel import factor_grad_back, prior_terms
from .marginal_kernel import dense_logp_grad, one_factor_logp_grad

__all__ = ["direct_residual_one_factor", "direct_residual_dense", "direct_residual_blocked",
           "residual_terms"]

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


@numba.njit(cache=True)
def _inside(rkind, par, values):  # pragma: no cover - compiled
    """Whether Λ is positive definite at the correlation ``par``: 1 − r² > 0 for every
    gap's r = par^gap (Markov), 1 − ρ > 0 and 1 + (n − 1)ρ > 0 for every group size
    (CompSymm). Near ±1 the interval transform rounds to the bound itself."""
    for j in range(values.shape[0]):
        if rkind == 1 and not (1.0 - par ** (2.0 * values[j]) > 0.0):
            return False
        if rkind == 2 and not (1.0 + (values[j] - 1.0) * par > 0.0):
            return False
    return not (rkind == 2 and not (1.0 - par > 0.0))


@numba.njit(cache=True)
def residual_terms(x, rkind, roff, rlo, rhi, rpar, kind, value, a, b, values, counts,
                   strata_rows):  # pragma: no cover - compiled
    """Priors (with Jacobians) of the residual parameters and their gradient, ``−½
    log|Λ|`` and its gradient, the coefficients c_k, and ∂c_k/∂x (K × len(x)) as
    ``dc_corr`` (K,) for the correlation and the strata's contributions via ``a``, ``b``.

    Returns ``(lp, grad_x, coef, dcoef_corr, w)`` with ``lp`` and ``grad_x`` holding the
    priors and −½ log|Λ|, ``w`` the inverse sd ratios (``w[0] = 1``)."""
    grad = np.zeros(x.shape[0])
    lp = 0.0
    S = strata_rows.shape[0]
    ioff = roff + (1 if rkind > 0 else 0)
    w = np.ones(S)
    for i in range(S - 1):  # LogNormal(mu, sigma) of e^u, with the log Jacobian u
        u = x[ioff + i]
        z = (u - rpar[i, 0]) / rpar[i, 1]
        lp += -0.5 * z * z - math.log(rpar[i, 1]) - _HALF_LOG_2PI
        grad[ioff + i] += -z / rpar[i, 1]
        w[i + 1] = math.exp(-u)
        # −½ log|Λ| ∋ −Σ_a n_a log δ_a = −n_a u
        lp -= strata_rows[i + 1] * u
        grad[ioff + i] -= strata_rows[i + 1]
    K = kind.shape[0]
    coef = np.empty(K)
    dcoef = np.zeros(K)
    par, dpar = 0.0, 0.0
    if rkind > 0:  # Uniform(lo, hi) under the interval transform: log s + log(1 − s)
        u = x[roff]
        s = 1.0 / (1.0 + math.exp(-u))
        lp += math.log(s) + math.log1p(-s)
        grad[roff] += 1.0 - 2.0 * s
        par = rlo + (rhi - rlo) * s
        dpar = (rhi - rlo) * s * (1.0 - s)
        if not _inside(rkind, par, values):  # the transform rounded to a bound: -inf
            return -np.inf, grad, np.zeros(K), np.zeros(K), w
        dld = 0.0
        ld = 0.0
        for j in range(values.shape[0]):
            v = values[j]
            if rkind == 1:
                r2 = par ** (2.0 * v)
                ld += counts[j] * math.log1p(-r2)
                dld += counts[j] * (-2.0 * v * par ** (2.0 * v - 1.0)) / (1.0 - r2)
            else:
                ld += counts[j] * ((v - 1.0) * math.log1p(-par) + math.log1p((v - 1.0) * par))
                dld += counts[j] * (-(v - 1.0) / (1.0 - par) + (v - 1.0) / (1.0 + (v - 1.0) * par))
        lp -= 0.5 * ld
        grad[roff] -= 0.5 * dld * dpar
    for k in range(K):
        ww = w[a[k]] * w[b[k]]
        g, dg = 1.0, 0.0
        if rkind == 1:
            v = value[k]
            r = par ** v
            dr = v * par ** (v - 1.0) if v != 0.0 else 0.0
            f = 1.0 / (1.0 - r * r)
            if kind[k] == 1:
                g, dg = r * r * f, 2.0 * r * f * f * dr
            elif kind[k] == 2:
                g, dg = -r * f, -(1.0 + r * r) * f * f * dr
        elif rkind == 2:
            rho = par
            if kind[k] == 3:
                g, dg = 1.0 / (1.0 - rho), 1.0 / ((1.0 - rho) * (1.0 - rho))
            else:
                n1 = value[k] - 1.0
                h = (1.0 + n1 * rho) * (1.0 - rho)
                dh = n1 * (1.0 - rho) - (1.0 + n1 * rho)
                g, dg = -rho / h, -(h - rho * dh) / (h * h)
        coef[k] = g * ww
        if rkind > 0:
            dcoef[k] = dg * ww * dpar
    return lp, grad, coef, dcoef, w


@numba.njit(cache=True)
def _combine(coef, stack):  # pragma: no cover - compiled
    """Σ_k coef[k] · stack[k] (stack flattened to (K, size))."""
    K, size = stack.shape
    out = np.zeros(size)
    for k in range(K):
        c = coef[k]
        for i in range(size):
            out[i] += c * stack[k, i]
    return out


@numba.njit(cache=True)
def _contract(dc, g, stack):  # pragma: no cover - compiled
    """dc[k] += ⟨g, stack[k]⟩: a data gradient contracted with each statistic."""
    for k in range(stack.shape[0]):
        acc = 0.0
        for i in range(g.shape[0]):
            acc += g[i] * stack[k, i]
        dc[k] += acc


@numba.njit(cache=True)
def _chain_dc(grad, coef, dcoef, rkind, roff, a, b, dc):  # pragma: no cover - compiled
    """Add Σ_k ∂ loglik/∂c_k (``dc``) · ∂c_k/∂x to ``grad``."""
    ioff = roff + (1 if rkind > 0 else 0)
    for k in range(coef.shape[0]):
        if rkind > 0:
            grad[roff] += dc[k] * dcoef[k]
        # c_k ∝ w_a w_b, w = e^-u: ∂c_k/∂u_a = −c_k ([a_k = a] + [b_k = a])
        if a[k] > 0:
            grad[ioff + a[k] - 1] -= dc[k] * coef[k]
        if b[k] > 0:
            grad[ioff + b[k] - 1] -= dc[k] * coef[k]


@numba.njit(cache=True)
def _chain(grad, coef, dcoef, rkind, roff, a, b, gzz, gzxy, gxx, zz, zxy, xx):  # pragma: no cover
    """Add ∂ loglik/∂c_k · ∂c_k/∂x to ``grad`` (the data gradients contracted with S_k)."""
    dc = np.zeros(coef.shape[0])
    _contract(dc, gzz, zz)
    _contract(dc, gzxy, zxy)
    _contract(dc, gxx, xx)
    _chain_dc(grad, coef, dcoef, rkind, roff, a, b, dc)


@numba.njit(cache=True, nogil=True)
def direct_residual_one_factor(x, p, bcode, bpar, bloc, bscale, fkind, fq, foff, fsd, feta,
                               fpar, fc, scode, spar, soff, zz, z_xy, xy_xy, n, rkind, roff,
                               rlo, rhi, rpar, kind, value, a, b, values, counts,
                               strata_rows):  # pragma: no cover - compiled
    """``(log p(x), ∇ log p(x))`` with one grouping factor; ``zz`` (K, m, q, q),
    ``z_xy`` (K, m, q, p + 1), ``xy_xy`` (K, p + 1, p + 1) the statistics."""
    lp, grad, beta, Ls, sigma = prior_terms(x, p, bcode, bpar, bloc, bscale, fkind, fq,
                                            foff, fsd, feta, fpar, fc, scode, spar, soff)
    rlp, rgrad, coef, dcoef, _ = residual_terms(x, rkind, roff, rlo, rhi, rpar, kind, value,
                                                a, b, values, counts, strata_rows)
    K, m, q, p1 = z_xy.shape[0], z_xy.shape[1], z_xy.shape[2], z_xy.shape[3]
    zzf = zz.reshape(K, m * q * q)
    zxyf = z_xy.reshape(K, m * q * p1)
    xxf = xy_xy.reshape(K, p1 * p1)
    A = _combine(coef, zzf).reshape(m, q, q)
    C = _combine(coef, zxyf).reshape(m, q, p1)
    D = _combine(coef, xxf).reshape(p1, p1)
    L = np.empty((q, q))
    L[:, :] = Ls[0, :q, :q]
    ll, gb, gs, gL, gA, gC, gD = one_factor_logp_grad(A, C, D, n, beta, sigma, L, True)
    if not np.isfinite(ll) or not np.isfinite(rlp):
        return -np.inf, grad
    grad += rgrad
    grad[:p] += gb * bscale
    grad[soff] += gs * sigma
    factor_grad_back(grad, gL, 0, Ls, fkind, fq, foff, fc, x)
    _chain(grad, coef, dcoef, rkind, roff, a, b, gA.reshape(-1),
           gC.reshape(-1), gD.reshape(-1), zzf, zxyf, xxf)
    return lp + rlp + ll, grad


@numba.njit(cache=True, nogil=True)
def direct_residual_dense(x, p, bcode, bpar, bloc, bscale, fkind, fq, foff, fsd, feta, fpar,
                          fc, scode, spar, soff, order, zz, z_xy, xy_xy, n, ms, rkind, roff,
                          rlo, rhi, rpar, kind, value, a, b, values, counts,
                          strata_rows):  # pragma: no cover - compiled
    """The same with several grouping factors (``zz`` (K, Q, Q), ``z_xy`` (K, Q, p + 1))
    or none (``order`` empty: the least-squares likelihood)."""
    lp, grad, beta, Ls, sigma = prior_terms(x, p, bcode, bpar, bloc, bscale, fkind, fq,
                                            foff, fsd, feta, fpar, fc, scode, spar, soff)
    rlp, rgrad, coef, dcoef, _ = residual_terms(x, rkind, roff, rlo, rhi, rpar, kind, value,
                                                a, b, values, counts, strata_rows)
    K, Q, p1 = z_xy.shape[0], z_xy.shape[1], z_xy.shape[2]
    zzf = zz.reshape(K, Q * Q)
    zxyf = z_xy.reshape(K, Q * p1)
    xxf = xy_xy.reshape(K, p1 * p1)
    D = _combine(coef, xxf).reshape(p1, p1)
    nf = order.shape[0]
    if nf == 0:  # no random effects: log N(y | Xβ, σ²Λ) on the whitened cross-products
        u = np.empty(p1)
        u[:p] = -beta
        u[p] = 1.0
        s = sigma * sigma
        rtr = u @ (D @ u)
        ll = -0.5 * (n * math.log(2.0 * math.pi) + n * math.log(s) + rtr / s)
        gb = (D @ u)[:p] / s
        gs = -n / sigma + rtr / (s * sigma)
        gA, gC = np.zeros(0), np.zeros(0)
        gD = -0.5 * np.outer(u, u) / s
    else:
        A = _combine(coef, zzf).reshape(Q, Q)
        C = _combine(coef, zxyf).reshape(Q, p1)
        ordered = np.zeros(Ls.shape)
        qs = np.empty(nf, dtype=np.int64)
        for pos in range(nf):
            ordered[pos] = Ls[order[pos]]
            qs[pos] = fq[order[pos]]
        ll, gb, gs, gLs, gA2, gC2, gD = dense_logp_grad(A, C, D, n, beta, sigma, ordered, qs,
                                                        ms, True)
        gA, gC = gA2.reshape(-1), gC2.reshape(-1)
        for pos in range(nf):
            factor_grad_back(grad, gLs[pos], order[pos], Ls, fkind, fq, foff, fc, x)
    if not np.isfinite(ll) or not np.isfinite(rlp):
        return -np.inf, np.zeros(x.shape[0])
    grad += rgrad
    grad[:p] += gb * bscale
    grad[soff] += gs * sigma
    _chain(grad, coef, dcoef, rkind, roff, a, b, gA, gC,
           gD.reshape(-1), zzf, zxyf, xxf)
    return lp + rlp + ll, grad


@numba.njit(cache=True)
def _mix(coef, stack):  # pragma: no cover - compiled
    """Σ_k coef[k] · stack[k], shaped as one statistic, and the stack flattened."""
    flat = stack.reshape(stack.shape[0], -1)
    return _combine(coef, flat), flat


@numba.njit(cache=True, nogil=True)
def direct_residual_blocked(x, p, bcode, bpar, bloc, bscale, fkind, fq, foff, fsd, feta, fpar,
                            fc, scode, spar, soff, order, a11, c1, bptr, bblk, tptr, tent,
                            eown, a21, a21d, boff, bfac, a22, c2, xy_xy, n, full, blockdiag,
                            rkind, roff, rlo, rhi, rpar, kind, value, a, b, values, counts,
                            strata_rows):  # pragma: no cover - compiled
    """The same with several grouping factors by the blocked factorisation: the
    layout's values as stacks (K, …) on one pattern
    (:func:`~bayeslmm.linalg.blocked_layout.blocked_stacks`), its gradient in them
    (:mod:`~bayeslmm.linalg.blocked_adjoint`) contracted with each statistic."""
    lp, grad, beta, Ls, sigma = prior_terms(x, p, bcode, bpar, bloc, bscale, fkind, fq,
                                            foff, fsd, feta, fpar, fc, scode, spar, soff)
    rlp, rgrad, coef, dcoef, _ = residual_terms(x, rkind, roff, rlo, rhi, rpar, kind, value,
                                                a, b, values, counts, strata_rows)
    if not np.isfinite(rlp):
        return -np.inf, np.zeros(x.shape[0])
    nf = order.shape[0]
    ordered = np.zeros(Ls.shape)
    qs = np.empty(nf, dtype=np.int64)
    for pos in range(nf):
        ordered[pos] = Ls[order[pos]]
        qs[pos] = fq[order[pos]]
    A11, f11 = _mix(coef, a11)
    C1, fc1 = _mix(coef, c1)
    A21, f21 = _mix(coef, a21)
    A21d, f21d = _mix(coef, a21d)
    A22, f22 = _mix(coef, a22)
    C2, fc2 = _mix(coef, c2)
    XY, fxy = _mix(coef, xy_xy)
    out = blocked_kernel_grads(
        A11.reshape(a11.shape[1:]), C1.reshape(c1.shape[1:]), bptr, bblk, tptr, tent, eown,
        A21.reshape(a21.shape[1:]), A21d.reshape(a21d.shape[1:]), boff, bfac,
        A22.reshape(a22.shape[1:]), C2.reshape(c2.shape[1:]), XY.reshape(xy_xy.shape[1:]), n,
        full, blockdiag, beta, sigma, ordered, qs, True)
    if not np.isfinite(out[0]) or not np.isfinite(rlp):
        return -np.inf, np.zeros(x.shape[0])
    grad += rgrad
    grad[:p] += out[1] * bscale
    grad[soff] += out[2] * sigma
    for pos in range(nf):
        factor_grad_back(grad, out[3][pos], order[pos], Ls, fkind, fq, foff, fc, x)
    dc = np.zeros(coef.shape[0])
    _contract(dc, out[4].ravel(), f11)
    _contract(dc, out[5].ravel(), fc1)
    _contract(dc, out[6].ravel(), f21)
    _contract(dc, out[7].ravel(), f21d)
    _contract(dc, out[8].ravel(), f22)
    _contract(dc, out[9].ravel(), fc2)
    _contract(dc, out[10].ravel(), fxy)
    _chain_dc(grad, coef, dcoef, rkind, roff, a, b, dc)
    return lp + rlp + out[0], grad
