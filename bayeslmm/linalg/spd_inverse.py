"""The inverse of a symmetric positive-definite matrix from its Cholesky factor, in
numba, by recursive blocked algorithms whose work is matrix products (BLAS level 3).

numba offers LAPACK's Cholesky (``np.linalg.cholesky``) but not ``dpotri``; the general
inverse (LU) and a product ``C⁻ᵀC⁻¹`` cost about three times LAPACK's flops. The
recursion halves the matrix: for C = [[C₁₁, 0], [C₂₁, C₂₂]],

    C⁻¹ = [[X₁₁, 0], [−X₂₂ C₂₁ X₁₁, X₂₂]]    (Xᵢᵢ = Cᵢᵢ⁻¹)
    XᵀX = [[X₁₁ᵀX₁₁ + X₂₁ᵀX₂₁, X₂₁ᵀX₂₂], [X₂₂ᵀX₂₁, X₂₂ᵀX₂₂]]

so nearly all work is in ``np.dot`` of large blocks (LAPACK's ``dtrtri`` and
``dlauum`` are the same algorithms).

Examples
--------
>>> import numpy as np
>>> A = np.random.default_rng(0).normal(size=(300, 310))
>>> P = A @ A.T + np.eye(300)
>>> ok, logdet, Pinv = spd_inverse(P)
>>> want = np.linalg.slogdet(P)[1]
>>> ok, np.allclose(Pinv, np.linalg.inv(P)), bool(abs(logdet - want) < 1e-9)
(True, True, True)
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["spd_inverse", "tri_inverse", "lower_gram"]

#: below this size the recursion stops and plain loops finish
_LEAF = 48


@numba.njit(cache=True)
def _tri_inverse_leaf(C):  # pragma: no cover - compiled
    n = C.shape[0]
    X = np.zeros((n, n))
    for i in range(n):
        X[i, i] = 1.0 / C[i, i]
        for j in range(i):
            acc = 0.0
            for k in range(j, i):
                acc -= C[i, k] * X[k, j]
            X[i, j] = acc / C[i, i]
    return X


@numba.njit(cache=True)
def tri_inverse(C):  # pragma: no cover - compiled
    """C⁻¹ of a lower-triangular C (lower triangular)."""
    n = C.shape[0]
    if n <= _LEAF:
        return _tri_inverse_leaf(C)
    h = n // 2
    X = np.zeros((n, n))
    X11 = tri_inverse(np.ascontiguousarray(C[:h, :h]))
    X22 = tri_inverse(np.ascontiguousarray(C[h:, h:]))
    X[:h, :h] = X11
    X[h:, h:] = X22
    X[h:, :h] = -np.dot(X22, np.dot(np.ascontiguousarray(C[h:, :h]), X11))
    return X


@numba.njit(cache=True)
def lower_gram(X):  # pragma: no cover - compiled
    """XᵀX of a lower-triangular X (symmetric)."""
    n = X.shape[0]
    if n <= _LEAF:
        return np.dot(X.T.copy(), X)
    h = n // 2
    M = np.empty((n, n))
    X21 = np.ascontiguousarray(X[h:, :h])
    X22 = np.ascontiguousarray(X[h:, h:])
    M[:h, :h] = lower_gram(np.ascontiguousarray(X[:h, :h])) + np.dot(X21.T.copy(), X21)
    M21 = np.dot(X22.T.copy(), X21)
    M[h:, :h] = M21
    M[:h, h:] = M21.T
    M[h:, h:] = lower_gram(X22)
    return M


@numba.njit(cache=True)
def spd_inverse(P):  # pragma: no cover - compiled
    """``(ok, log|P|, P⁻¹)`` of a symmetric P; ``ok`` False (and the rest zeros) where
    P is not positive definite."""
    n = P.shape[0]
    try:
        C = np.linalg.cholesky(P)
    except Exception:  # not positive definite
        return False, 0.0, np.zeros((n, n))
    logdet = 0.0
    for i in range(n):
        logdet += 2.0 * np.log(C[i, i])
    return True, logdet, lower_gram(tri_inverse(C))
