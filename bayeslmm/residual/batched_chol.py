"""Cholesky factors and triangular solves of a batch of small matrices ``(G, m, m)``:
the dense correlations' groups (:mod:`~bayeslmm.residual.dense_corr`).

NumPy: LAPACK's Cholesky (batched) and triangular solves. PyTensor: for small groups an
unrolled Cholesky–Crout factorisation and forward substitution in elementwise operations
over the batch (differentiable, and on every backend NUTS uses); PyTensor's blockwise
Cholesky loops over the groups in Python.

Examples
--------
>>> import numpy as np, pytensor
>>> C = np.array([[[4.0, 2.0], [2.0, 3.0]]])
>>> Ct, Xt = pytensor.tensor.tensor3("C"), pytensor.tensor.tensor3("X")
>>> d, W = pytensor.function([Ct, Xt], unrolled_solve(Ct, Xt, 2))(C, np.ones((1, 2, 1)))
>>> np.allclose(d[0], np.diag(np.linalg.cholesky(C[0]))), W.shape
(True, (1, 2, 1))
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
import scipy.linalg as sla

__all__ = ["UNROLL_MAX", "unrolled_solve", "solve_lower"]


#: PyTensor: groups of up to this many rows are factored by an unrolled Cholesky,
#: vectorised over the groups (PyTensor's blockwise Cholesky and triangular solve loop
#: over the groups in Python: 100× slower per gradient for many small groups)
UNROLL_MAX = 12


def unrolled_solve(C, X, m: int):
    """The Cholesky factor's diagonal (G, m) and ``L⁻¹X`` (G, m, k) of a batch of small
    matrices ``C`` (PyTensor), in elementwise operations over the batch (Cholesky–Crout,
    then forward substitution); NaN where a matrix is not positive definite."""
    L = [[None] * m for _ in range(m)]
    W = []
    for j in range(m):
        s = C[:, j, j]
        for k in range(j):
            s = s - L[j][k] ** 2
        L[j][j] = pt.sqrt(s)
        for i in range(j + 1, m):
            s = C[:, i, j]
            for k in range(j):
                s = s - L[i][k] * L[j][k]
            L[i][j] = s / L[j][j]
        w = X[:, j, :]
        for k in range(j):
            w = w - L[j][k][:, None] * W[k]
        W.append(w / L[j][j][:, None])
    return pt.stack([L[j][j] for j in range(m)], axis=1), pt.stack(W, axis=1)


def solve_lower(L: np.ndarray, B: np.ndarray) -> np.ndarray:
    """``L⁻¹B`` per group: triangular solves for few large groups, else a batched LU.

    >>> L = np.linalg.cholesky(np.array([[[4.0, 2.0], [2.0, 3.0]]]))
    >>> np.allclose(L @ solve_lower(L, np.ones((1, 2, 1))), 1.0)
    True
    """
    if L.shape[0] > 64 or L.shape[1] < 32:
        return np.linalg.solve(L, B)
    return np.stack([sla.solve_triangular(Lg, Bg, lower=True, check_finite=False)
                     for Lg, Bg in zip(L, B, strict=True)])
