"""Small dense matrix helpers for the compiled kernels (numba): at q × q sizes (q of a
random-effects term, a handful) plain loops beat BLAS's call overhead.

Examples
--------
>>> import numpy as np
>>> ok, logdet, X = small_chol(np.array([[4.0, 2.0], [2.0, 3.0]]))
>>> ok, round(logdet, 6), np.round(X @ np.linalg.cholesky([[4.0, 2.0], [2.0, 3.0]]), 12)
(True, 2.079442, array([[1., 0.],
       [0., 1.]]))
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["small_chol", "chol_inv_into", "mm", "mm_into", "mv", "gram"]


@numba.njit(cache=True)
def small_chol(P):  # pragma: no cover - compiled
    """(ok, log|P|, C⁻¹) of a small SPD matrix (C its lower Cholesky factor); ok False
    where P is not positive definite."""
    q = P.shape[0]
    X = np.zeros((q, q))
    ok, logdet = chol_inv_into(P, np.zeros((q, q)), X)
    return ok, logdet, X


@numba.njit(cache=True)
def chol_inv_into(P, C, X):  # pragma: no cover - compiled
    """:func:`small_chol` without allocating (for loops over many levels): C (work) and
    X (C⁻¹, lower triangle written, the upper one left as it is) are the caller's;
    returns (ok, log|P|)."""
    q = P.shape[0]
    for i in range(q):
        for j in range(i + 1):
            acc = P[i, j]
            for k in range(j):
                acc -= C[i, k] * C[j, k]
            if i == j:
                if acc <= 0.0:
                    return False, 0.0
                C[i, i] = np.sqrt(acc)
            else:
                C[i, j] = acc / C[j, j]
    logdet = 0.0
    for i in range(q):
        logdet += 2.0 * np.log(C[i, i])
        X[i, i] = 1.0 / C[i, i]
        for j in range(i):
            acc = 0.0
            for k in range(j, i):
                acc -= C[i, k] * X[k, j]
            X[i, j] = acc / C[i, i]
    return True, logdet


@numba.njit(cache=True)
def mm_into(A, B, out):  # pragma: no cover - compiled
    """out = A @ B, without allocating."""
    n, k, m = A.shape[0], A.shape[1], B.shape[1]
    for i in range(n):
        for j in range(m):
            acc = 0.0
            for t in range(k):
                acc += A[i, t] * B[t, j]
            out[i, j] = acc


@numba.njit(cache=True)
def mm(A, B):  # pragma: no cover - compiled
    """A @ B."""
    n, k, m = A.shape[0], A.shape[1], B.shape[1]
    out = np.zeros((n, m))
    for i in range(n):
        for t in range(k):
            a = A[i, t]
            if a != 0.0:
                for j in range(m):
                    out[i, j] += a * B[t, j]
    return out


@numba.njit(cache=True)
def mv(A, x):  # pragma: no cover - compiled
    """A @ x."""
    out = np.zeros(A.shape[0])
    for i in range(A.shape[0]):
        acc = 0.0
        for t in range(A.shape[1]):
            acc += A[i, t] * x[t]
        out[i] = acc
    return out


@numba.njit(cache=True)
def gram(X):  # pragma: no cover - compiled
    """XᵀX of a lower-triangular X."""
    q = X.shape[0]
    out = np.zeros((q, q))
    for a in range(q):
        for c in range(q):
            acc = 0.0
            for i in range(max(a, c), q):
                acc += X[i, a] * X[i, c]
            out[a, c] = acc
    return out
