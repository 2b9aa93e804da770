"""NUTS's coordinates for a covariance Cholesky factor: ``log`` standard deviations and
``atanh`` canonical partial correlations, as a PyMC transform of ``LKJCholeskyCov``.

PyMC's default transform of ``LKJCholeskyCov`` (``cholesky-cov-packed``) samples
``log L[i, i]`` and the off-diagonal ``L[i, j]`` themselves. Where the data leave a
standard deviation near 0 (a singular fit, in lme4's words), the entries of its row
shrink with it: a funnel, which NUTS explores slowly (the kb07-like maximal model:
R-hat 1.03 and bulk ESS 202 from 4 × 1000 draws, the worst on the sds of slopes the
data barely support). :class:`SdCorrPacked` keeps the same variable and prior (so
the same posterior) and changes only the coordinates NUTS moves in: each row's sd
and its correlations separately (the formulas and the Jacobian are in
:mod:`bayeslmm.linalg.sd_corr_transform`, whose numba kernels the direct model runs).

Examples
--------
>>> import numpy as np
>>> t = SdCorrPacked(2)
>>> y = np.array([np.log(2.0), np.arctanh(0.6), np.log(3.0)])
>>> t.backward(y).eval().round(6).tolist()
[2.0, 1.8, 2.4]
>>> bool(np.allclose(t.forward(t.backward(y)).eval(), y))
True
"""

from __future__ import annotations

import math

import pytensor.tensor as pt
from pymc.logprob.transforms import Transform

__all__ = ["SdCorrPacked"]


def _log1m_tanh2(v):
    """``log(1 − tanh²(v))`` without underflow for large |v|."""
    a = pt.abs(v)
    return math.log(4.0) - 2.0 * a - 2.0 * pt.log1p(pt.exp(-2.0 * a))


class SdCorrPacked(Transform):
    """The packed lower Cholesky factor of an n × n covariance ↔ per row ``log`` sd
    (at the diagonal's place) and ``atanh`` of its canonical partial correlations.

    Examples
    --------
    >>> import numpy as np
    >>> t = SdCorrPacked(2)
    >>> float(t.log_jac_det(np.array([0.5, 0.0, 0.25])).eval())  # 1·0.5 + 2·0.25
    1.0
    """

    name = "sd-corr"

    def __init__(self, n: int):
        self.n = int(n)

    def backward(self, value, *inputs):
        value = pt.as_tensor(value)
        out, idx = [], 0
        for i in range(self.n):
            s = pt.exp(value[..., idx + i])
            rem = 1.0
            for j in range(i):
                z = pt.tanh(value[..., idx + j])
                out.append(s * z * pt.sqrt(rem))
                # 1 − z², exact where z rounds to ±1 (|y| > 19): the factor stays
                # positive definite, its density finite, far into the tails
                rem = rem * pt.exp(_log1m_tanh2(value[..., idx + j]))
            out.append(s * pt.sqrt(rem))
            idx += i + 1
        return pt.stack(out, axis=-1)

    def forward(self, value, *inputs):
        value = pt.as_tensor(value)
        out, idx = [], 0
        for i in range(self.n):
            row = value[..., idx:idx + i + 1]
            s = pt.sqrt(pt.sum(row * row, axis=-1))
            rem = 1.0
            for j in range(i):
                z = value[..., idx + j] / (s * pt.sqrt(rem))
                out.append(pt.arctanh(z))
                rem = rem * (1.0 - z * z)
            out.append(pt.log(s))
            idx += i + 1
        return pt.stack(out, axis=-1)

    def log_jac_det(self, value, *inputs):
        value = pt.as_tensor(value)
        total, idx = 0.0, 0
        for i in range(self.n):
            total = total + (i + 1) * value[..., idx + i]
            for j in range(i):
                total = total + 0.5 * (i - j) * _log1m_tanh2(value[..., idx + j])
            idx += i + 1
        return total
