"""Analytic gradient in θ of the profiled ML/REML criterion of :mod:`bayeslmm.linalg.pls`.

Let Ω = Λ̃ᵀAΛ̃ + diag(I, 0, 0) (A = [Z X y]ᵀ[Z X y]) and Ω_S its leading blocks for
S = Z, ZX and all. Then log|ΛᵀZᵀZΛ + I| = log|Ω_Z|, log|R_X|² = log|Ω_ZX| − log|Ω_Z| and
log pwrss = log|Ω| − log|Ω_ZX|, so

    ML:   d = log|Ω_Z|  + n (log|Ω| − log|Ω_ZX|) + const
    REML: d = log|Ω_ZX| + (n − p)(log|Ω| − log|Ω_ZX|) + const.

Because Λ̃ᵀA = (Ω − D)Λ̃⁻¹, ∂log|Ω_S|/∂θ = 2 tr((I − (Ω_S⁻¹)_ZZ) Λ⁻¹ ∂Λ). With ∂Λ = I ⊗ E_rc
on factor k this is 2[((m_k I − T_k^S) Λ_k⁻¹)]_cr where T_k^S is the sum over levels of
the q_k×q_k diagonal blocks of Ω_S⁻¹. As L⁻¹ is lower triangular, Ω_S⁻¹ = L_S⁻ᵀL_S⁻¹
splits T_k^S by the rows of L⁻¹ it comes from: Z rows, X rows, the y row.

For the first (block-diagonal) factor those sums reduce to traces against the inverse
of the dense Schur complement, tr(S⁻¹ Q) with Q = Λ_rᵀCᵀ blockdiag(K_j K_jᵀ) CΛ_r,
K_j = Λ₁M_j⁻¹: one more sparse product and one dense Cholesky inverse per gradient.
Factors with a singular Λ_k (a θ on its bound) get forward differences instead.

Examples
--------
>>> import numpy as np, bayeslmm as blm
>>> from bayeslmm.formula.design import build_design
>>> from bayeslmm.linalg.pls import PLS
>>> from scipy.optimize import approx_fprime
>>> pls = PLS.from_design(build_design("Reaction ~ Days + (Days | Subject)",
...                                    blm.datasets.load("sleepstudy")))
>>> th = np.array([0.9, 0.1, 0.3])
>>> g = pls.objective_and_gradient(th, reml=True)[1]
>>> bool(np.allclose(g, approx_fprime(th, lambda t: pls.objective(t, True), 1e-7), atol=1e-4))
True
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla
from scipy.linalg import lapack

__all__ = ["gradient", "gradient_parts"]


def _sums(pls, f) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """T_k split by rows (Z, X, y) for each factor, in the PLS's sorted order."""
    cp, L = pls.cp, f.L
    rz, p, r = cp.rz, cp.p, L.shape[0]
    # S⁻¹ from the Cholesky factor; only its lower triangle is filled (L's upper is 0)
    sinv, info = lapack.dpotri(L, lower=1)
    if info:
        raise np.linalg.LinAlgError("dpotri failed")
    sdiag = np.diag(sinv).copy()
    # rows X and y of L⁻¹, as columns: L⁻ᵀ e_ρ
    rows = sla.solve_triangular(L, np.eye(r)[:, rz:], trans="T", lower=True,
                                check_finite=False)
    rx, ry = rows[:, :p], rows[:, p]
    out = []
    lz = pls._lambda_rest(f.lambdas) if rz else None
    q1 = cp.q[0]
    lam1 = f.lambdas[cp.order[0]]
    K = lam1[0, 0] * f.Minv if q1 == 1 else lam1 @ f.Minv
    own = np.array([[np.sum(f.Minv)]]) if q1 == 1 else f.Minv.sum(axis=0)
    tz, tx, ty = (np.zeros((q1, q1)) for _ in range(3))
    for a in range(q1):
        for b in range(a, q1):
            if q1 == 1:
                w = K**2
            else:
                w = np.einsum("ji,jk->jik", K[:, :, a], K[:, :, b])
                w = 0.5 * (w + w.transpose(0, 2, 1))
            Q = pls._scale_rest(pls.ctgc(w), lz)
            tot = 2.0 * np.sum(sinv * Q) - sdiag @ np.diag(Q)  # Q symmetric
            xq = np.einsum("ri,rs,si->", rx, Q, rx)
            yq = ry @ Q @ ry
            for t, v in ((tz, tot - xq - yq), (tx, xq), (ty, yq)):
                t[a, b] = t[b, a] = v
    out.append((own + tz, tx, ty))
    for k, off in enumerate(cp.offsets[:-1]):
        m, q = cp.m[k + 1], cp.q[k + 1]
        sl = slice(off, off + m * q)
        if q == 1:
            tot = np.array([[np.sum(sdiag[sl])]])
        else:
            sub = np.tril(sinv[sl, sl])
            sub = sub + np.tril(sub, -1).T
            tot = np.einsum("jajb->ab", sub.reshape(m, q, m, q))
        xk = rx[sl].reshape(m, q, p)
        yk = ry[sl].reshape(m, q)
        xs = np.einsum("jar,jbr->ab", xk, xk)
        ys = np.einsum("ja,jb->ab", yk, yk)
        out.append((tot - xs - ys, xs, ys))
    return out


def gradient_parts(pls, theta: np.ndarray, f) -> np.ndarray:
    """∂/∂θ of log|ΛᵀZᵀZΛ + I|, log|R_X|² and log pwrss (rows of a 3 × size array),
    the pieces of every criterion (:meth:`~bayeslmm.linalg.pls.PLS.parts`)."""
    cp, lay = pls.cp, pls.layout
    out = np.zeros((3, lay.size))
    sums, base = None, None
    for pos, k in enumerate(cp.order):
        idx, r_, c_ = pls._lam_index[k]
        if len(idx) == 0:
            continue
        lam = f.lambdas[k]
        if np.min(np.abs(np.diag(lam))) <= 1e-10 * max(1.0, np.max(np.abs(lam))):
            if base is None:  # Λ_k singular: Λ⁻¹ undefined, use forward differences
                base = _log_parts(pls, theta)
            for i in idx:
                h = 1e-7 * max(1.0, abs(theta[i]))
                up = theta.copy()
                up[i] += h
                out[:, i] = (_log_parts(pls, up) - base) / h
            continue
        if sums is None:
            sums = _sums(pls, f)
        tz, tx, ty = sums[pos]
        inv = np.linalg.inv(lam)
        for row, t in enumerate((cp.m[pos] * np.eye(len(lam)) - tz, -tx, -ty)):
            out[row, idx] = (2.0 * t @ inv)[c_, r_]
    return out


def _log_parts(pls, theta: np.ndarray) -> np.ndarray:
    ld, ldx, pwrss = pls.parts(theta)
    return np.array([ld, ldx, np.log(pwrss)])


def gradient(pls, theta: np.ndarray, f, val: float, reml: bool) -> np.ndarray:
    """∂(criterion)/∂θ at θ, given its factorisation ``f`` and value ``val``."""
    n, p = pls.cp.n, pls.cp.p
    g = gradient_parts(pls, theta, f)
    if reml:
        return g[0] + g[1] + (n - p) * g[2]
    return g[0] + n * g[2]
