"""The whole log-density of a marginal mixed model (priors, transforms, likelihood) and
its gradient in the unconstrained parameters, in numba: nothing to compile per model.

A model is described by plain arrays (:class:`bayeslmm.pymc.direct.DirectModel` makes
them from a PyMC marginal model and checks that they describe it exactly): the
unconstrained vector ``x`` holds β standardised (β = loc + scale · x[:p], as
:func:`bayeslmm.pymc.terms.fixed_effects` samples it), then each grouping factor's
parameters (``log`` of its standard deviations, or its covariance Cholesky factor L_z
at unit scale in :class:`~bayeslmm.pymc.sd_corr.SdCorrPacked`'s coordinates: log sds and
atanh partial correlations, :mod:`bayeslmm.linalg.sd_corr_transform`), then ``log σ``.
The log-density is PyMC's (the same priors, transforms and Jacobians;
:mod:`bayeslmm.linalg.prior_kernels`) plus the marginal likelihood
(:mod:`bayeslmm.linalg.marginal_kernel`). These functions are compiled once per machine
and cached by numba, so every model of any structure runs without compiling; they
release the GIL, so nutpie's chains (threads) run them in parallel. numba's cache of
this module is keyed on this file alone: after changing the kernels it calls, touch
this file (or clear its ``__pycache__``) so that they are compiled again.

Spec arrays: ``fkind`` (0: standard deviations, 1: Cholesky factor), ``fq``, ``foff``
(start in ``x``), ``fsd`` (the sd prior's family code), ``feta`` (LKJ η) and ``fpar``
((K, q_max, 3) the sd prior's parameters; for a Cholesky factor those of the unit-scale
family, :func:`bayeslmm.pymc.terms.unit_scale`), ``fc`` ((K, q_max) the rows' scales:
L = diag(fc) L_z), all in design order; ``order`` is the factors'
order in the cross-products.

Examples
--------
See :class:`bayeslmm.pymc.direct.DirectModel`, whose ``logp_grad`` calls these and is
tested equal to PyMC's own compiled log-density and gradient.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .blocked_kernel import blocked_kernel
from .marginal_kernel import one_factor_logp_grad
from .prior_kernels import family_logp, lkj_chol_logp
from .sd_corr_transform import sd_corr_back, sd_corr_to_chol
from .small_q_kernel import small_q_logp_grad

__all__ = ["direct_one_factor", "direct_small_q", "direct_blocked", "prior_terms",
           "factor_grad_back"]


@numba.njit(cache=True)
def _priors(x, p, bcode, bpar, bloc, bscale, fkind, fq, foff, fsd, feta, fpar, fc, scode,
            spar, soff):
    """log prior + log Jacobian, its gradient, β, the factors' L (design order), σ."""
    grad = np.zeros(x.shape[0])
    lp = 0.0
    for i in range(p):
        a, d = family_logp(bcode, x[i], bpar[i])
        lp += a
        grad[i] += d
    K = fq.shape[0]
    qmax = 1
    for k in range(K):
        qmax = max(qmax, fq[k])
    Ls = np.zeros((K, qmax, qmax))
    for k in range(K):
        q, off = fq[k], foff[k]
        if fkind[k] == 0:
            for i in range(q):
                sd = math.exp(x[off + i])
                a, d = family_logp(fsd[k], sd, fpar[k, i])
                lp += a + x[off + i]
                grad[off + i] += d * sd + 1.0
                Ls[k, i, i] = sd
        else:  # the unit-scale factor Lz from log sds and atanh partial correlations
            Lz = np.zeros((q, q))
            m = q * (q + 1) // 2
            y = x[off:off + m]
            lj, glj = sd_corr_to_chol(y, q, Lz)
            a, gL = lkj_chol_logp(Lz, feta[k], fsd[k], np.ascontiguousarray(fpar[k, :q]))
            lp += a + lj
            grad[off:off + m] += glj
            sd_corr_back(y, q, Lz, gL, grad, off)
            for i in range(q):
                for j in range(i + 1):
                    Ls[k, i, j] = fc[k, i] * Lz[i, j]
    sigma = math.exp(x[soff])
    a, d = family_logp(scode, sigma, spar)
    lp += a + x[soff]
    grad[soff] += d * sigma + 1.0
    beta = bloc + bscale * x[:p]  # β is sampled standardised: x holds β_z
    return lp, grad, beta, Ls, sigma


@numba.njit(cache=True)
def _back(grad, gL, k, Ls, fkind, fq, foff, fc, x):  # pragma: no cover - compiled
    """Add the likelihood's gradient in factor k's L to the unconstrained gradient."""
    q, off = fq[k], foff[k]
    if fkind[k] == 0:
        for i in range(q):
            grad[off + i] += gL[i, i] * Ls[k, i, i]
        return
    Lz = np.zeros((q, q))  # L = diag(fc) Lz: the gradient in Lz, through the transform
    gLz = np.zeros((q, q))
    for i in range(q):
        for j in range(i + 1):
            Lz[i, j] = Ls[k, i, j] / fc[k, i]
            gLz[i, j] = gL[i, j] * fc[k, i]
    sd_corr_back(x[off:off + q * (q + 1) // 2], q, Lz, gLz, grad, off)


@numba.njit(cache=True, nogil=True)
def direct_one_factor(x, p, bcode, bpar, bloc, bscale, fkind, fq, foff, fsd, feta, fpar,
                      fc, scode, spar, soff, zz, z_xy, xy_xy, n):  # pragma: no cover - compiled
    """``(log p(x), ∇ log p(x))`` of a model with one grouping factor."""
    lp, grad, beta, Ls, sigma = _priors(x, p, bcode, bpar, bloc, bscale, fkind, fq, foff,
                                        fsd, feta, fpar, fc, scode, spar, soff)
    q = fq[0]
    L = np.empty((q, q))  # a fresh C array: a view ('A' layout) compiles to slower loops
    L[:, :] = Ls[0, :q, :q]
    ll, gb, gs, gL, _, _, _ = one_factor_logp_grad(zz, z_xy, xy_xy, n, beta, sigma, L, False)
    if not np.isfinite(ll):
        return -np.inf, grad
    grad[:p] += gb * bscale
    grad[soff] += gs * sigma
    _back(grad, gL, 0, Ls, fkind, fq, foff, fc, x)
    return lp + ll, grad


@numba.njit(cache=True, nogil=True)
def direct_small_q(x, p, bcode, bpar, bloc, bscale, fkind, fq, foff, fsd, feta, fpar, fc,
                   scode, spar, soff, zz_s, zx_s, xy_xy, n):  # pragma: no cover - compiled
    """:func:`direct_one_factor` for q ≤ 2 on the cross-products laid out by
    :func:`bayeslmm.linalg.small_q_kernel.soa_arrays` (the closed-form kernel)."""
    lp, grad, beta, Ls, sigma = _priors(x, p, bcode, bpar, bloc, bscale, fkind, fq, foff,
                                        fsd, feta, fpar, fc, scode, spar, soff)
    q = fq[0]
    L = np.empty((q, q))
    L[:, :] = Ls[0, :q, :q]
    ll, gb, gs, gL = small_q_logp_grad(zz_s, zx_s, xy_xy, n, beta, sigma, L)
    if not np.isfinite(ll):
        return -np.inf, grad
    grad[:p] += gb * bscale
    grad[soff] += gs * sigma
    _back(grad, gL, 0, Ls, fkind, fq, foff, fc, x)
    return lp + ll, grad


@numba.njit(cache=True, nogil=True)
def direct_blocked(x, p, bcode, bpar, bloc, bscale, fkind, fq, foff, fsd, feta, fpar, fc,
                   scode, spar, soff, order, a11, c1, bptr, bblk, tptr, tent, eown, a21,
                   a21d, boff, bfac, a22, c2, xy_xy, n, full,
                   blockdiag):  # pragma: no cover - compiled
    """``(log p(x), ∇ log p(x))`` of a model with several grouping factors, by the blocked
    factorisation (:mod:`bayeslmm.linalg.blocked_kernel`); ``order`` is the factors'
    order in its layout."""
    lp, grad, beta, Ls, sigma = _priors(x, p, bcode, bpar, bloc, bscale, fkind, fq, foff,
                                        fsd, feta, fpar, fc, scode, spar, soff)
    K = order.shape[0]
    ordered = np.zeros(Ls.shape)
    qs = np.empty(K, dtype=np.int64)
    for pos in range(K):
        ordered[pos] = Ls[order[pos]]
        qs[pos] = fq[order[pos]]
    ll, gb, gs, gLs = blocked_kernel(a11, c1, bptr, bblk, tptr, tent, eown, a21, a21d, boff,
                                     bfac, a22, c2, xy_xy, n, full, blockdiag, beta, sigma,
                                     ordered, qs)
    if not np.isfinite(ll):
        return -np.inf, grad
    grad[:p] += gb * bscale
    grad[soff] += gs * sigma
    for pos in range(K):
        _back(grad, gLs[pos], order[pos], Ls, fkind, fq, foff, fc, x)
    return lp + ll, grad


#: the prior step and the chain rule of a factor, for kernels built on these
#: (:mod:`bayeslmm.linalg.direct_residual`)
prior_terms = _priors
factor_grad_back = _back
