"""Householder tridiagonalisation ``K = Q T Qᵀ`` of a symmetric matrix, with ``Q``
kept as its reflectors (LAPACK ``sytrd``), so that ``Q`` or ``Qᵀ`` can be applied to a
few vectors in O(n²) without forming it.

This is the first and costly stage of a symmetric eigendecomposition (``eigh``). The
genomic LMM needs the rest only for sampling: its ML/REML criterion works with the
tridiagonal ``T`` directly (a tridiagonal Cholesky per evaluation, O(n)), and NUTS needs
the eigenvalues of ``T`` and its eigenvectors applied to the data, which skips the
O(n³) back-transformation of all n eigenvectors (about a third of ``eigh``'s time at
n = 5,000) until the eigenvectors of K themselves are asked for.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> W = rng.normal(size=(6, 9))
>>> K = W @ W.T
>>> hh = tridiagonalize(K.copy())
>>> T = np.diag(hh.d) + np.diag(hh.e, 1) + np.diag(hh.e, -1)
>>> M = rng.normal(size=(6, 2))
>>> bool(np.allclose(hh.qt(K @ M), T @ hh.qt(M)))
True
>>> bool(np.allclose(hh.q(hh.qt(M)), M))
True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import lapack

__all__ = ["Householder", "tridiagonalize"]


@dataclass(frozen=True)
class Householder:
    """``K = Q T Qᵀ``: ``T`` by its diagonal and off-diagonal, ``Q`` by its reflectors.

    Attributes
    ----------
    d : ndarray (n,)
        Diagonal of ``T``.
    e : ndarray (n − 1,)
        Off-diagonal of ``T``.
    reflectors : ndarray (n − 1, n − 1)
        Householder vectors below the diagonal, as LAPACK's ``?geqrf`` stores them
        (``Q = H(1) ⋯ H(n−1)`` acts on rows 2…n).
    tau : ndarray (n − 1,)
        Their scalar factors.
    """

    d: np.ndarray
    e: np.ndarray
    reflectors: np.ndarray
    tau: np.ndarray

    @property
    def n(self) -> int:
        """Order of K."""
        return len(self.d)

    def _apply(self, M: np.ndarray, trans: bytes, blocked: bool) -> np.ndarray:
        out = np.array(M, dtype=float, order="F", copy=True)
        if out.ndim != 2:
            raise ValueError("M must be 2-D.")
        if self.n < 2 or out.shape[1] == 0:
            return out
        rest = out[1:]
        # the unblocked kernel (lwork = columns) is faster for a few columns: the
        # blocked one builds a triangular factor per block of reflectors
        lwork = max(1, out.shape[1])
        if blocked:
            lwork = int(lapack.dormqr(b"L", trans, self.reflectors, self.tau, rest, -1)[1][0])
        res, _, info = lapack.dormqr(b"L", trans, self.reflectors, self.tau, rest,
                                     lwork, overwrite_c=1)
        if info != 0:  # pragma: no cover - LAPACK argument errors only
            raise RuntimeError(f"dormqr failed (info={info}).")
        out[1:] = res
        return out

    def qt(self, M: np.ndarray) -> np.ndarray:
        """``Qᵀ M`` for an (n, m) array."""
        return self._apply(M, b"T", blocked=M.shape[1] > 32)

    def q(self, M: np.ndarray) -> np.ndarray:
        """``Q M`` for an (n, m) array."""
        return self._apply(M, b"N", blocked=M.shape[1] > 32)


def tridiagonalize(K: np.ndarray) -> Householder:
    """Reduce a symmetric float64 matrix to tridiagonal form, overwriting ``K``.

    Parameters
    ----------
    K : ndarray (n, n)
        Symmetric; only its lower triangle is read. Its memory is reused for the
        reflectors (pass a copy to keep it).

    Returns
    -------
    Householder
    """
    K = np.asarray(K, dtype=float)
    n = K.shape[0]
    if n == 0:
        z = np.zeros(0)
        return Householder(z, z, np.zeros((0, 0)), z)
    # a C-ordered symmetric K is, read in Fortran order, the same matrix: no copy
    A = K.T if K.flags.c_contiguous else np.asfortranarray(K)
    lwork = int(lapack.dsytrd_lwork(n, lower=1)[0])
    c, d, e, tau, info = lapack.dsytrd(A, lower=1, lwork=max(lwork, n), overwrite_a=1)
    if info != 0:  # pragma: no cover - LAPACK argument errors only
        raise RuntimeError(f"dsytrd failed (info={info}).")
    return Householder(d=d, e=e, reflectors=_compact(c), tau=tau)


def _compact(c: np.ndarray) -> np.ndarray:
    """``c[1:, :n−1]`` as a Fortran-ordered array in ``c``'s own memory (LAPACK needs it
    contiguous; a copy of n² values costs more than moving them, mostly page faults)."""
    n = c.shape[0]
    if not c.flags.f_contiguous or n < 2:
        return np.asfortranarray(c[1:, :n - 1])
    flat = c.reshape(-1, order="F")
    m = n - 1
    for j in range(m):  # column j moves to j·m: never past data not yet moved
        flat[j * m:(j + 1) * m] = flat[j * n + 1:(j + 1) * n]
    return flat[:m * m].reshape((m, m), order="F")
