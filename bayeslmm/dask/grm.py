"""The genomic relationship matrix K = XXᵀ/p of genotypes read in column chunks: K is
accumulated block by block (``K += X_b X_bᵀ``, BLAS ``syrk``), so p is bounded by the
disk, not by memory: at any time memory holds K (n × n, float64) and a block or two.

Genotypes are a dask array (``da.from_zarr(...)``, ``da.from_array(np.load(path,
mmap_mode="r"), chunks=(n, c))``) or any array (a NumPy memmap is read in column
blocks of ``block`` columns). A float32 block is multiplied in float32 and added in
float64 (:func:`bayeslmm.linalg.rotation.gram`'s scheme); integer genotypes (0/1/2,
int8 on disk) are converted per block. ``standardize=True`` centres and scales each
column to unit variance (over the n rows, which every block holds whole) and drops
constant columns: the GRM of standardized genotypes. The result goes to
``blm.LMM(..., covariances={"line": K})``.

Examples
--------
>>> import numpy as np, dask.array as da
>>> X = np.random.default_rng(1).integers(0, 3, size=(6, 50)).astype(np.int8)
>>> K = grm(da.from_array(X, chunks=(6, 16)))
>>> bool(np.allclose(K, X.astype(float) @ X.T / 50))
True
>>> bool(np.allclose(grm(X, block=7), K))
True
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.linalg.blas as blas

from ..errors import DataError
from .frame import require_dask

__all__ = ["grm"]


def _prepare(block, standardize: bool, dtype) -> np.ndarray:
    """One block as ``dtype``, standardized if asked, checked for missing values."""
    B = np.asarray(block).astype(dtype, copy=standardize)  # standardized in place
    if not np.isfinite(B).all():
        raise DataError("The genotypes have missing or non-finite values: impute them "
                        "(e.g. by the column mean) before computing the GRM.")
    if standardize:  # column moments in float64, the block itself never in float64
        mean = B.mean(axis=0, dtype=np.float64)
        sd = np.sqrt(np.maximum(np.square(B).mean(axis=0, dtype=np.float64) - mean**2, 0.0))
        keep = sd > 1e-12 * np.maximum(np.abs(mean), 1.0)
        if not keep.all():
            B = B[:, keep]
        B -= mean[keep].astype(dtype)
        B /= sd[keep].astype(dtype)
    return np.asfortranarray(B)


def _add(K: np.ndarray, B: np.ndarray) -> int:
    """K (lower triangle, float64) += B Bᵀ; the number of columns of B."""
    if B.shape[1] == 0:
        return 0
    if B.dtype == np.float64:  # in place: no n × n temporary
        blas.dsyrk(1.0, B, beta=1.0, c=K, overwrite_c=1, lower=1)
    else:  # float32 product (an n × n float32 temporary), float64 sum
        K += blas.ssyrk(1.0, B, lower=1)
    return B.shape[1]


def grm(genotypes, *, standardize: bool = False, dtype=np.float32,
        block: int = 8192) -> np.ndarray:
    """K = XXᵀ/p of an n × p genotype array read in column blocks (module doc).

    Parameters
    ----------
    genotypes : dask array or array-like (n × p)
        Rows are individuals, columns markers; a dask array is read in its column
        chunks (its rows are gathered into one chunk first), another array in blocks of
        ``block`` columns.
    standardize : bool
        Centre and scale each column to unit variance, dropping constant ones (p then
        counts the columns kept).
    dtype : float32 or float64
        The precision of each block's product (the sum is float64).
    block : int
        Columns per block for an array that is not a dask array.

    Returns
    -------
    ndarray (n × n), float64

    Examples
    --------
    >>> X = np.array([[0, 1, 2], [2, 1, 0]], dtype=np.int8)
    >>> grm(X).tolist()
    [[1.6666666666666667, 0.3333333333333333], [0.3333333333333333, 1.6666666666666667]]
    """
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise DataError(f"dtype must be float32 or float64, got {dtype}.")
    if getattr(genotypes, "ndim", 2) != 2:
        raise DataError("The genotypes must be a 2-D array (individuals × markers).")
    n, p = genotypes.shape
    if type(genotypes).__module__.split(".")[0] == "dask":
        require_dask()
        X = genotypes.rechunk({0: n})
        blocks = [X.blocks[0, j] for j in range(X.numblocks[1])]

        def read(j):
            return blocks[j].compute(scheduler="threads")
        count = len(blocks)
    else:
        def read(j):
            return genotypes[:, j * block:(j + 1) * block]
        count = -(-p // block)
    K = np.zeros((n, n), order="F")
    used = 0
    with ThreadPoolExecutor(max_workers=1) as pool:  # read block j+1 while j multiplies
        nxt = pool.submit(lambda: _prepare(read(0), standardize, dtype)) if count else None
        for j in range(count):
            B = nxt.result()
            if j + 1 < count:
                nxt = pool.submit(lambda k=j + 1: _prepare(read(k), standardize, dtype))
            used += _add(K, B)
            del B
    if used == 0:
        raise DataError("No genotype column left (all constant?): the GRM is undefined.")
    _mirror(K)
    K /= used
    return K


def _mirror(K: np.ndarray, block: int = 512) -> None:
    """Copy the lower triangle onto the upper one in place, a band of rows at a time
    (no n × n temporary)."""
    n = K.shape[0]
    for i in range(0, n, block):
        j = min(i + block, n)
        K[i:j, j:] = K[j:, i:j].T
        D = K[i:j, i:j]
        up = np.triu_indices(j - i, 1)
        D[up] = D.T[up]
