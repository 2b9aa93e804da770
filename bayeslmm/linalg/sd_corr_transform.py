"""A covariance Cholesky factor from unconstrained standard deviations and canonical
partial correlations (Stan's ``cholesky_factor_corr`` transform, with ``log`` sds),
in numba, with its log-Jacobian and the chain rule back to the unconstrained values.

The values are packed as PyMC packs the factor (row by row, the diagonal last in each
row): in row i, ``y[i, i] = log sd_i`` and ``y[i, j] = atanh z_ij`` (j < i) with z_ij
the canonical partial correlations, so that

    L[i, j] = sd_i · z_ij · √(∏_{k<j} (1 − z_ik²)),   L[i, i] = sd_i · √(∏_{k<i} (1 − z_ik²)).

The sds and the correlations are separate coordinates: where the data leave an sd
near 0, its row's correlations follow their prior at a scale of their own, instead of
the funnel of PyMC's ``cholesky-cov-packed`` values (``log L[i, i]`` and ``L[i, j]``,
whose off-diagonal entries shrink with the sd). The density of L (and so the model) is
unchanged: only NUTS's coordinates are. The log-Jacobian of y ↦ L is

    Σ_i [(i + 1) · y[i, i] + Σ_{j<i} ½ (i − j) · log(1 − z_ij²)].

Examples
--------
>>> import numpy as np
>>> y = np.array([np.log(2.0), np.arctanh(0.6), np.log(3.0)])
>>> L = np.zeros((2, 2))
>>> lj, g = sd_corr_to_chol(y, 2, L)
>>> L.round(6).tolist()
[[2.0, 0.0], [1.8, 2.4]]
>>> bool(np.allclose(chol_to_sd_corr(L), y))
True
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["sd_corr_to_chol", "sd_corr_back", "chol_to_sd_corr", "log1m_tanh2"]

_LOG4 = math.log(4.0)


@numba.njit(cache=True)
def log1m_tanh2(v):  # pragma: no cover - compiled
    """``log(1 − tanh²(v))`` = ``−2 log cosh v``, without underflow for large |v|."""
    a = abs(v)
    return _LOG4 - 2.0 * a - 2.0 * math.log1p(math.exp(-2.0 * a))


@numba.njit(cache=True)
def sd_corr_to_chol(y, q, L):  # pragma: no cover - compiled
    """Fill the q × q lower ``L`` from the packed values ``y`` (length q(q + 1)/2);
    return the log-Jacobian of y ↦ L and its gradient in y."""
    glj = np.zeros(y.shape[0])
    lj = 0.0
    idx = 0
    for i in range(q):
        s = math.exp(y[idx + i])
        rem = 1.0  # ∏_{k<j} (1 − z_ik²): the squared norm the row has left
        for j in range(i):
            z = math.tanh(y[idx + j])
            L[i, j] = s * z * math.sqrt(rem)
            lt = log1m_tanh2(y[idx + j])
            rem *= math.exp(lt)  # 1 − z², exact where z rounds to ±1 (|y| > 19)
            lj += 0.5 * (i - j) * lt
            glj[idx + j] = -(i - j) * z
        L[i, i] = s * math.sqrt(rem)
        for j in range(i + 1, q):
            L[i, j] = 0.0
        lj += (i + 1) * y[idx + i]
        glj[idx + i] = i + 1.0
        idx += i + 1
    return lj, glj


@numba.njit(cache=True)
def sd_corr_back(y, q, L, gL, grad, off):  # pragma: no cover - compiled
    """Add (∂L/∂y)ᵀ gL to ``grad[off:]``: the chain rule from a gradient in ``L`` (as
    :func:`sd_corr_to_chol` filled it from ``y``) to one in the packed values."""
    rems = np.empty(q)  # rems[j] = ∏_{k<j} (1 − z_ik²)
    idx = 0
    for i in range(q):
        rem = 1.0
        for j in range(i):
            rems[j] = rem
            rem *= math.exp(log1m_tanh2(y[idx + j]))
        s = math.exp(y[idx + i])
        tail = gL[i, i] * L[i, i]  # Σ_{k>j} gL[i, k] L[i, k], from the diagonal back
        for j in range(i - 1, -1, -1):
            z = math.tanh(y[idx + j])
            # L[i, j] = s·z·√rems[j], and every later entry of the row carries √(1 − z²)
            grad[off + idx + j] += (gL[i, j] * s * math.sqrt(rems[j])
                                    * math.exp(log1m_tanh2(y[idx + j])) - z * tail)
            tail += gL[i, j] * L[i, j]
        grad[off + idx + i] += tail  # every entry of the row is proportional to sd_i
        idx += i + 1


def chol_to_sd_corr(L: np.ndarray) -> np.ndarray:
    """The packed values of a lower Cholesky factor with a positive diagonal (the
    inverse of :func:`sd_corr_to_chol`), in NumPy."""
    q = L.shape[0]
    out = []
    for i in range(q):
        s = float(np.sqrt(np.sum(L[i, :i + 1] ** 2)))
        rem = 1.0
        for j in range(i):
            z = L[i, j] / (s * np.sqrt(rem))
            out.append(float(np.arctanh(z)))
            rem *= 1.0 - z * z
        out.append(float(np.log(s)))
    return np.array(out)
