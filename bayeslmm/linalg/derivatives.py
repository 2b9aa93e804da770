"""Numerical derivatives by Richardson extrapolation, as R's numDeriv (``genD``) takes them:
central differences at steps h, h/2, h/4, h/8 (h = d·|x|, or ``eps`` where x ≈ 0),
combined to cancel the h², h⁴, h⁶ error terms.

lmerTest takes the Hessian of the deviance and the Jacobian of vcov(β) this way; the
same scheme here makes the Satterthwaite degrees of freedom agree with its to many
digits.

Examples
--------
>>> import numpy as np
>>> f = lambda x: np.array([x[0] ** 3 * x[1], np.sin(x[1])])
>>> np.round(jacobian(f, np.array([2.0, 0.5])), 8).tolist()
[[6.0, 8.0], [0.0, 0.87758256]]
>>> np.round(hessian(lambda x: x[0] ** 3 * x[1], np.array([2.0, 0.5])), 6).tolist()
[[6.0, 12.0], [12.0, 0.0]]
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["jacobian", "hessian"]

_ZERO_TOL = float(np.sqrt(np.finfo(float).eps / 7e-7))


def _steps(x: np.ndarray, d: float, eps: float) -> np.ndarray:
    return np.abs(d * x) + eps * (np.abs(x) < _ZERO_TOL)


def _extrapolate(a: list[np.ndarray]) -> np.ndarray:
    """Richardson: estimates at h/2^k (k = 0..r−1) of an O(h²) difference → the limit."""
    a = list(a)
    r = len(a)
    for m in range(1, r):
        for k in range(r - m):
            a[k] = (a[k + 1] * 4.0**m - a[k]) / (4.0**m - 1.0)
    return a[0]


def jacobian(f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, *, d: float = 1e-4,
             eps: float = 1e-4, r: int = 4, v: float = 2.0) -> np.ndarray:
    """∂f/∂x (m × p) of a vector function (numDeriv's ``jacobian``, Richardson)."""
    x = np.asarray(x, dtype=float)
    h0 = _steps(x, d, eps)
    cols = []
    for i in range(len(x)):
        est, h = [], h0[i]
        for _ in range(r):
            e = np.zeros_like(x)
            e[i] = h
            est.append((np.asarray(f(x + e), float) - np.asarray(f(x - e), float)) / (2 * h))
            h /= v
        cols.append(np.atleast_1d(_extrapolate(est)))
    return np.column_stack(cols)


def hessian(f: Callable[[np.ndarray], float], x: np.ndarray, *, d: float = 0.1,
            eps: float = 1e-4, r: int = 4, v: float = 2.0) -> np.ndarray:
    """∂²f/∂x² (p × p) of a scalar function (numDeriv's ``hessian``: ``genD``)."""
    x = np.asarray(x, dtype=float)
    p = len(x)
    h0 = _steps(x, d, eps)
    f0 = float(f(x))
    H = np.empty((p, p))
    for i in range(p):
        est, h = [], h0.copy()
        for _ in range(r):
            e = np.zeros(p)
            e[i] = h[i]
            est.append((float(f(x + e)) - 2 * f0 + float(f(x - e))) / h[i] ** 2)
            h = h / v
        H[i, i] = _extrapolate(est)
    for i in range(p):
        for j in range(i):
            est, h = [], h0.copy()
            for _ in range(r):
                e = np.zeros(p)
                e[i], e[j] = h[i], h[j]
                val = (float(f(x + e)) - 2 * f0 + float(f(x - e))
                       - H[i, i] * h[i] ** 2 - H[j, j] * h[j] ** 2) / (2 * h[i] * h[j])
                est.append(val)
                h = h / v
            H[i, j] = H[j, i] = _extrapolate(est)
    return H
