"""Sums of products over rows that do not depend on the order of the rows: compensated
accumulation (Neumaier's), each sum kept as a value and its remainder.

A sum of n floating-point products computed in one order and in another (all rows at
once, or chunk by chunk and then the chunks added) differs in its last bits, and NUTS
amplifies such differences: two fits of the same data would not give the same draws
for the same seed. Here every sum is accumulated with its rounding errors (the error
of the result is about n·ε² of the sum of absolute values, against ε·n for a plain
sum), so the value rounded at the end is the correctly rounded exact sum whatever the
order, but in cases of measure ~ε (Knuth's two-sum per addition). Sums of chunks are
added with their remainders (:func:`add_pairs`). Compiled with numba, cached on disk
once per machine.

Examples
--------
>>> x = np.array([1e16, 1.0, -1e16, 1.0])
>>> float(x.sum()), column_sums(x)[0]   # NumPy's sum, and the exact one
(1.0, 2.0)
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["level_outer", "dense_outer", "pair_sums", "column_sums", "column_summary",
           "add_pairs", "normalise"]


@numba.njit(cache=True, nogil=True, inline="always")
def _acc(v, r, i, p):
    # Knuth's two-sum: the exact rounding error of v + p, without a branch
    a = v[i]
    s = a + p
    bb = s - a
    r[i] += (a - (s - bb)) + (p - bb)
    v[i] = s


def normalise(v: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(value, remainder) with value = fl(v + r) and v + r = value + remainder exactly.

    >>> normalise(np.array([1.0]), np.array([2.0 ** -60]))[0].tolist()
    [1.0]
    """
    s = v + r
    bb = s - v
    return s, (v - (s - bb)) + (r - bb)


def add_pairs(v1, r1, v2, r2) -> tuple[np.ndarray, np.ndarray]:
    """The sum of two (value, remainder) pairs, normalised.

    >>> v, r = add_pairs(np.array([1e16]), np.array([1.0]), np.array([-1e16]), np.array([1.0]))
    >>> v.tolist(), r.tolist()
    ([2.0], [0.0])
    """
    s, e = normalise(np.asarray(v1, dtype=float), np.asarray(v2, dtype=float))
    return normalise(s, e + (np.asarray(r1, dtype=float) + np.asarray(r2, dtype=float)))


@numba.njit(cache=True, nogil=True)
def _level_outer(codes, A, B, m):
    n, a = A.shape
    b = B.shape[1]
    w = np.zeros(2 * m * a * b)  # value, remainder side by side: one cache line a level
    for i in range(n):
        base = 2 * codes[i] * a * b
        for j in range(a):
            aij = A[i, j]
            for k in range(b):
                idx = base + 2 * (j * b + k)
                p = aij * B[i, k]
                x = w[idx]
                s = x + p
                bb = s - x
                w[idx + 1] += (x - (s - bb)) + (p - bb)
                w[idx] = s
    return w[0::2], w[1::2]


def level_outer(codes: np.ndarray, A: np.ndarray, B: np.ndarray, m: int):
    """Per level ``c``: Σ over rows of level c of A_iᵀB_i, shape (m, a, b); (value,
    remainder).

    >>> v, r = level_outer(np.array([0, 1, 0]), np.ones((3, 1)), np.arange(3.0)[:, None], 2)
    >>> v.ravel().tolist()
    [2.0, 1.0]
    """
    A = np.ascontiguousarray(A, dtype=float)
    B = np.ascontiguousarray(B, dtype=float)
    v, r = _level_outer(np.ascontiguousarray(codes, dtype=np.int64), A, B, int(m))
    v, r = normalise(v, r)
    shape = (int(m), A.shape[1], B.shape[1])
    return v.reshape(shape), r.reshape(shape)


@numba.njit(cache=True, nogil=True)
def _dense_outer(cols, vals, size):
    n, R = cols.shape
    v = np.zeros(size * size)
    r = np.zeros(size * size)
    for i in range(n):
        for a in range(R):
            ca, va = cols[i, a], vals[i, a]
            for b in range(a, R):
                cb = cols[i, b]
                lo, hi = (ca, cb) if ca <= cb else (cb, ca)
                _acc(v, r, lo * size + hi, va * vals[i, b])
    return v, r


def dense_outer(cols: np.ndarray, vals: np.ndarray, size: int):
    """Σ over rows of MᵢᵀMᵢ for rows given by their nonzeros (``cols``, ``vals``: n × R,
    distinct columns within a row), as a dense symmetric (size × size); (value,
    remainder).

    >>> cols = np.array([[0, 1], [0, 1]]); vals = np.array([[1.0, 2.0], [1.0, 3.0]])
    >>> dense_outer(cols, vals, 2)[0].tolist()
    [[2.0, 5.0], [5.0, 13.0]]
    """
    v, r = _dense_outer(np.ascontiguousarray(cols, dtype=np.int64),
                        np.ascontiguousarray(vals, dtype=float), int(size))
    v, r = normalise(v, r)
    v, r = v.reshape(size, size), r.reshape(size, size)
    iu = np.triu_indices(size, 1)
    v.T[iu], r.T[iu] = v[iu], r[iu]
    return v, r


@numba.njit(cache=True, nogil=True)
def _segments(keys, prods):
    n = len(keys)
    out_k = np.empty(n, dtype=np.int64)
    v = np.zeros(n)
    r = np.zeros(n)
    j = -1
    for i in range(n):
        if j < 0 or keys[i] != out_k[j]:
            j += 1
            out_k[j] = keys[i]
        _acc(v, r, j, prods[i])
    return out_k[:j + 1], v[:j + 1], r[:j + 1]


def pair_sums(keys: np.ndarray, prods: np.ndarray):
    """Sums of ``prods`` by ``keys`` (sorted distinct keys, value, remainder).

    >>> k, v, r = pair_sums(np.array([3, 1, 3]), np.array([1.0, 2.0, 0.5]))
    >>> k.tolist(), v.tolist()
    ([1, 3], [2.0, 1.5])
    """
    order = np.argsort(keys, kind="stable")
    k, v, r = _segments(np.ascontiguousarray(keys[order], dtype=np.int64),
                        np.ascontiguousarray(prods[order], dtype=float))
    v, r = normalise(v, r)
    return k, v, r


@numba.njit(cache=True, nogil=True)
def _column_sums(x):
    v = np.zeros(2)
    r = np.zeros(2)
    first, second, distinct = 0.0, 0.0, 0  # the first two distinct values (3: more)
    for i in range(len(x)):
        a = x[i]
        _acc(v, r, 0, a)
        sq = a * a  # and its rounding error, exactly (Dekker's product)
        c = 134217729.0 * a
        hi = c - (c - a)
        lo = a - hi
        _acc(v, r, 1, sq)
        _acc(v, r, 1, ((hi * hi - sq) + 2.0 * hi * lo) + lo * lo)
        if distinct == 0:
            first, distinct = a, 1
        elif distinct == 1 and a != first:
            second, distinct = a, 2
        elif distinct == 2 and a != first and a != second:
            distinct = 3
    return v, r, first, second, distinct


def column_sums(x: np.ndarray) -> tuple[float, float, float, float]:
    """Σx and Σx² (of the exact squares), each as (value, remainder).

    >>> column_sums(np.array([1.0, 2.0]))
    (3.0, 0.0, 5.0, 0.0)
    """
    return column_summary(x)[0]


def column_summary(x: np.ndarray) -> tuple[tuple[float, float, float, float], tuple]:
    """:func:`column_sums` and the column's distinct values if at most two (else None),
    in one pass.

    >>> column_summary(np.array([1.0, 0.0, 1.0]))
    ((2.0, 0.0, 2.0, 0.0), (0.0, 1.0))
    """
    v, r, a, b, k = _column_sums(np.ascontiguousarray(x, dtype=float).reshape(-1))
    v, r = normalise(v, r)
    values = None if k > 2 else tuple(sorted([a, b][:k]))
    return (float(v[0]), float(r[0]), float(v[1]), float(r[1])), values
