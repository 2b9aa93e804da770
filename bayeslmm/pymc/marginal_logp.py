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
>>> from bayeslmm.formula.design import build_design
>>> from bayeslmm.linalg.crossprod import CrossProducts
>>> d = build_design("Reaction ~ Days + (Days | Subject)", blm.datasets.load("sleepstudy"))
>>> beta, sigma, L = pt.vector("beta"), pt.scalar("sigma"), pt.matrix("L")
>>> arrays = CrossProducts.from_design(d).marginal_arrays()
>>> logp = marginal_logp(arrays, beta, sigma, [L], n=180, q=[2], m=[18])
>>> f = pytensor.function([beta, sigma, L], logp)
>>> Lv = np.array([[24.74, 0.0], [0.42, 5.91]])
>>> got = float(f([251.4, 10.47], 25.59, Lv))
>>> from scipy.stats import multivariate_normal  # the dense V: n × n
>>> Zs = np.zeros((180, 18, 2))
>>> Zs[np.arange(180), d.terms[0].codes] = d.terms[0].Z
>>> Z = Zs.reshape(180, 36)
>>> V = Z @ np.kron(np.eye(18), Lv @ Lv.T) @ Z.T + 25.59**2 * np.eye(180)
>>> want = multivariate_normal(d.X @ [251.4, 10.47], V).logpdf(d.y)
>>> round(got, 4), bool(abs(got - want) < 1e-9)
(-875.9996, True)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pytensor.tensor as pt

__all__ = ["marginal_logp"]


def _unrolled(zz, q: int, L, s2, zr):
    """log|P| and wᵀP⁻¹w for one factor, P_j = LᵀA_jL + σ²I, entry by entry."""
    A = pt.as_tensor_variable(zz)
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


def _dense(zz, q: Sequence[int], m: Sequence[int], chol, s2, zr):
    """log|P| and wᵀP⁻¹w for several factors with a dense Cholesky of P."""
    Lt = pt.linalg.block_diag(*[pt.linalg.kron(pt.eye(mk), lk) for mk, lk in
                                zip(m, chol, strict=True)])
    Q = sum(mk * qk for mk, qk in zip(m, q, strict=True))
    P = Lt.T @ pt.as_tensor_variable(zz) @ Lt + s2 * pt.eye(Q)
    C = pt.linalg.cholesky(P)
    v = pt.linalg.solve_triangular(C, Lt.T @ zr, lower=True)
    return 2.0 * pt.sum(pt.log(pt.diag(C))), pt.sum(v**2)


def marginal_logp(arrays: Mapping, beta, sigma, chol: Sequence, *, n, q: Sequence[int],
                  m: Sequence[int]) -> pt.TensorVariable:
    """log N(y | Xβ, Z Ψ̃ Zᵀ + σ²I) as a PyTensor scalar (differentiable in all inputs).

    Parameters
    ----------
    arrays : mapping
        ``zz``, ``z_xy``, ``xy_xy`` of
        :meth:`~bayeslmm.linalg.crossprod.CrossProducts.marginal_arrays` (NumPy arrays,
        ``pm.Data`` containers or PyTensor expressions of them).
    beta : tensor (p,)
    sigma : scalar tensor
        Residual standard deviation.
    chol : sequence of (q_k × q_k) tensors
        Lower Cholesky factor of each factor's Ψ_k, in the order of ``arrays`` (e.g.
        from ``pm.LKJCholeskyCov``); structural zeros between blocks are the caller's.
    n : int or scalar tensor
        Number of rows.
    q, m : sequence of int
        Coefficients and levels of each factor, in the same order.

    Returns
    -------
    TensorVariable
    """
    beta = pt.as_tensor_variable(beta)
    s2 = pt.as_tensor_variable(sigma) ** 2
    xy_xy = pt.as_tensor_variable(arrays["xy_xy"])
    v = pt.concatenate([-beta, pt.ones(1)])
    rtr = pt.dot(v, pt.dot(xy_xy, v))
    # Zᵀ(y − Xβ): (m, q) for one factor, (Q,) for several
    zr = pt.dot(pt.as_tensor_variable(arrays["z_xy"]), v) if chol else None
    if not chol:
        logdet, quad, Q = 0.0, 0.0, 0
    elif len(chol) == 1:
        zz = pt.as_tensor_variable(arrays["zz"])
        logdet, quad = _unrolled(zz, q[0], pt.as_tensor_variable(chol[0]), s2, zr)
        Q = zz.shape[0] * q[0]  # symbolic when the cross-products are pm.Data
    else:
        logdet, quad = _dense(arrays["zz"], q, m, [pt.as_tensor_variable(c) for c in chol],
                              s2, zr)
        Q = sum(mk * qk for mk, qk in zip(m, q, strict=True))
    logdet_v = (n - Q) * pt.log(s2) + logdet
    return -0.5 * (n * np.log(2.0 * np.pi) + logdet_v + (rtr - quad) / s2)
