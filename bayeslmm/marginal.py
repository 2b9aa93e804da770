"""PyTensor marginal log-likelihood log N(y | Xβ, ZΨ̃Zᵀ + σ²I) from precomputed cross-products.

The random effects are integrated out; with L̃ = blockdiag(I ⊗ L_k) (L_k the Cholesky
factor of Ψ_k) and P = L̃ᵀZᵀZL̃ + σ²I (Woodbury),

    log|V| = (n − Q) log σ² + log|P|,    rᵀV⁻¹r = (rᵀr − wᵀP⁻¹w) / σ²,  w = L̃ᵀZᵀr,

and rᵀr, Zᵀr come from [Z X y]ᵀ[Z X y]: nothing scales with the number of rows.

One grouping factor: P is block-diagonal with one q×q block per level. Its Cholesky and
the forward substitution are written out entry by entry, each entry an elementwise op
over all levels at once (batched ``pt.linalg.cholesky`` loops over the levels in
Python, ~100× slower). Several factors: a dense (Σ q·levels) Cholesky via pt.linalg.

Examples
--------
>>> import numpy as np, pytensor, pytensor.tensor as pt, bayeslmm as blm
>>> from bayeslmm.design import build_design
>>> d = build_design("Reaction ~ Days + (Days | Subject)", blm.datasets.load("sleepstudy"))
>>> beta, sigma, L = pt.vector("beta"), pt.scalar("sigma"), pt.matrix("L")
>>> f = pytensor.function([beta, sigma, L], marginal_logp(MarginalStats.from_design(d),
...                                                       beta, sigma, [L]))
>>> Lv = np.array([[24.74, 0.0], [0.42, 5.91]])
>>> got = float(f([251.4, 10.47], 25.59, Lv))
>>> from bayeslmm.likelihood import dense_psi, dense_z, marginal_loglik
>>> want = marginal_loglik(d.y, d.X, dense_z(d.terms), dense_psi(d.terms, [Lv @ Lv.T]),
...                        np.array([251.4, 10.47]), 25.59)
>>> round(got, 4), abs(got - want) < 1e-9
(-875.9996, True)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pytensor.tensor as pt
import scipy.linalg as sla

from .suffstats import CrossProducts

__all__ = ["MarginalStats", "marginal_logp"]


@dataclass(frozen=True)
class MarginalStats:
    """Cross-products in the layout :func:`marginal_logp` uses (factors in design order).

    Attributes
    ----------
    n : int
    q, m : tuple of int
        Coefficients and levels per factor.
    ZtZ : ndarray
        (m, q, q) per-level blocks for one factor; dense (Q × Q) for several.
    ZtX : ndarray
        (m, q, p) for one factor; (Q, p) for several.
    Zty : ndarray
        (m, q) for one factor; (Q,) for several.
    XtX, Xty, yty : ndarray, ndarray, float
    """

    n: int
    q: tuple[int, ...]
    m: tuple[int, ...]
    ZtZ: np.ndarray
    ZtX: np.ndarray
    Zty: np.ndarray
    XtX: np.ndarray
    Xty: np.ndarray
    yty: float

    @classmethod
    def from_design(cls, design) -> MarginalStats:
        """Compute the cross-products of a :class:`~bayeslmm.design.Design`."""
        return cls.from_cross_products(CrossProducts.from_design(design))

    @classmethod
    def from_cross_products(cls, cp: CrossProducts) -> MarginalStats:
        """Re-lay :class:`~bayeslmm.suffstats.CrossProducts` (sorted factors) in design order."""
        p, rz = cp.p, cp.rz
        xtx, xty = cp.Arr[rz:rz + p, rz:rz + p], cp.Arr[rz:rz + p, -1]
        k = len(cp.order)
        q = tuple(cp.q[cp.order.index(i)] for i in range(k))
        m = tuple(cp.m[cp.order.index(i)] for i in range(k))
        if k == 1:
            return cls(cp.n, q, m, cp.A11, cp.C1xy[:, :, :p], cp.C1xy[:, :, p], xtx, xty, cp.yy)
        # dense ZᵀZ in sorted order, then permuted to design order
        m1q1 = cp.m[0] * cp.q[0]
        c1z = cp.C1z.toarray()
        ztz = np.block([[sla.block_diag(*cp.A11), c1z], [c1z.T, cp.Arr[:rz, :rz]]])
        ztx = np.vstack([cp.C1xy[:, :, :p].reshape(m1q1, p), cp.Arr[:rz, rz:rz + p]])
        zty = np.concatenate([cp.C1xy[:, :, p].ravel(), cp.Arr[:rz, -1]])
        sizes = [cp.m[j] * cp.q[j] for j in range(k)]
        starts = np.concatenate([[0], np.cumsum(sizes)])
        perm = np.concatenate([np.arange(starts[cp.order.index(i)], starts[cp.order.index(i) + 1])
                               for i in range(k)])
        return cls(cp.n, q, m, ztz[np.ix_(perm, perm)], ztx[perm], zty[perm], xtx, xty, cp.yy)


def _unrolled(stats: MarginalStats, L, s2, zr):
    """log|P| and wᵀP⁻¹w for one factor, P_j = LᵀA_jL + σ²I, entry by entry."""
    q = stats.q[0]
    A = pt.as_tensor_variable(stats.ZtZ)
    # vec(Lᵀ A_j L) = vec(A_j) (L ⊗ L), row-major: one (m, q²) × (q², q²) product,
    # not an (m, q, q, q) broadcast (which cost half of a gradient at 20,000 groups)
    LL = (L[:, None, :, None] * L[None, :, None, :]).reshape((q * q, q * q))
    P = pt.dot(A.reshape((A.shape[0], q * q)), LL).reshape((A.shape[0], q, q))
    w = pt.dot(zr, L)                                     # (m, q): w_j = Lᵀ Zⱼᵀr
    C = [[None] * q for _ in range(q)]
    for i in range(q):
        for j in range(i + 1):
            s = P[:, i, j] + (s2 if i == j else 0.0)
            for k in range(j):
                s = s - C[i][k] * C[j][k]
            C[i][j] = pt.sqrt(s) if i == j else s / C[j][j]
    v, logdet, quad = [], 0.0, 0.0
    for i in range(q):
        s = w[:, i]
        for k in range(i):
            s = s - C[i][k] * v[k]
        v.append(s / C[i][i])
        logdet = logdet + 2.0 * pt.sum(pt.log(C[i][i]))
        quad = quad + pt.sum(v[i] ** 2)
    return logdet, quad


def _dense(stats: MarginalStats, chol, s2, zr):
    """log|P| and wᵀP⁻¹w for several factors with a dense Cholesky of P."""
    Lt = pt.linalg.block_diag(*[pt.linalg.kron(pt.eye(m), lk) for m, lk in
                                zip(stats.m, chol, strict=True)])
    Q = sum(m * q for m, q in zip(stats.m, stats.q, strict=True))
    P = Lt.T @ pt.as_tensor_variable(stats.ZtZ) @ Lt + s2 * pt.eye(Q)
    C = pt.linalg.cholesky(P)
    v = pt.linalg.solve_triangular(C, Lt.T @ zr, lower=True)
    return 2.0 * pt.sum(pt.log(pt.diag(C))), pt.sum(v**2)


def marginal_logp(stats: MarginalStats, beta, sigma, chol: Sequence) -> pt.TensorVariable:
    """log N(y | Xβ, Z Ψ̃ Zᵀ + σ²I) as a PyTensor scalar (differentiable in all inputs).

    Parameters
    ----------
    stats : MarginalStats
    beta : tensor (p,)
    sigma : scalar tensor
        Residual standard deviation.
    chol : sequence of (q_k × q_k) tensors
        Lower Cholesky factor of each factor's Ψ_k (design order), e.g. from
        ``pm.LKJCholeskyCov``; structural zeros between blocks are the caller's.

    Returns
    -------
    TensorVariable
    """
    beta = pt.as_tensor_variable(beta)
    s2 = pt.as_tensor_variable(sigma) ** 2
    n = stats.n
    xtx, xty = pt.as_tensor_variable(stats.XtX), pt.as_tensor_variable(stats.Xty)
    rtr = stats.yty - 2.0 * pt.dot(beta, xty) + pt.dot(beta, pt.dot(xtx, beta))
    zr = pt.as_tensor_variable(stats.Zty) - pt.dot(pt.as_tensor_variable(stats.ZtX), beta)
    if not chol:
        logdet, quad = 0.0, 0.0
    elif len(chol) == 1:
        logdet, quad = _unrolled(stats, pt.as_tensor_variable(chol[0]), s2, zr)
    else:
        logdet, quad = _dense(stats, [pt.as_tensor_variable(c) for c in chol], s2, zr)
    # Σ levels·q from ZtZ's shape: symbolic when the cross-products are pm.Data
    Q = (pt.as_tensor_variable(stats.ZtZ).shape[0] * (stats.q[0] if len(chol) == 1 else 1)
         if chol else 0)
    logdet_v = (n - Q) * pt.log(s2) + logdet
    return -0.5 * (n * np.log(2.0 * np.pi) + logdet_v + (rtr - quad) / s2)
