"""The inverse of a symmetric positive-definite matrix by LAPACK (``dpotrf`` then
``dpotri``), callable from numba-compiled kernels and cached with them.

numba offers LAPACK's Cholesky (``np.linalg.cholesky``) but not ``dpotri``, and the
general inverse (LU) costs about three times its flops. SciPy's LAPACK is reached by
name: the address of ``scipy.linalg.cython_lapack.dpotri`` is registered with LLVM as
a symbol when this module is imported, so compiled code refers to the symbol, not to
an address, and numba can cache it on disk.

Examples
--------
>>> import numpy as np
>>> A = np.random.default_rng(0).normal(size=(300, 310))
>>> P = A @ A.T + np.eye(300)
>>> ok, logdet, Pinv = spd_inverse(P)
>>> want = np.linalg.slogdet(P)[1]
>>> ok, np.allclose(Pinv, np.linalg.inv(P)), bool(abs(logdet - want) < 1e-9)
(True, True, True)
>>> spd_inverse(-P)[0]
False
"""

from __future__ import annotations

import llvmlite.binding as llvm
import numba
import numpy as np
from numba import types
from numba.extending import get_cython_function_address

__all__ = ["spd_inverse"]

llvm.add_symbol("bayeslmm_dpotri",
                get_cython_function_address("scipy.linalg.cython_lapack", "dpotri"))
#: dpotri(uplo, n, a, lda, info): every argument by pointer (Fortran)
_dpotri = types.ExternalFunction(
    "bayeslmm_dpotri",
    types.void(types.voidptr, types.voidptr, types.voidptr, types.voidptr, types.voidptr))


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
    # C's transpose in C order is C in Fortran order: LAPACK's lower factor
    M = C.T.copy()
    uplo = np.array([ord("L")], dtype=np.uint8)
    size = np.array([n], dtype=np.int32)
    info = np.zeros(1, dtype=np.int32)
    _dpotri(uplo.ctypes, size.ctypes, M.ctypes, size.ctypes, info.ctypes)
    if info[0] != 0:
        return False, 0.0, np.zeros((n, n))
    for i in range(n):  # LAPACK filled Fortran's lower triangle: C order's upper one
        for j in range(i):
            M[i, j] = M[j, i]
    return True, logdet, M
