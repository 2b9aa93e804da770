"""Pointwise residual log-densities of many posterior draws at once (NumPy, vectorised
over draws) for the structures with sufficient statistics: AR1, CAR1, CompSymm and
VarIdent (:mod:`bayeslmm.residual.sufficient`).

The same per-row terms as :func:`bayeslmm.residual.algebra.residual_logp` with
``pointwise=True`` (each row's density given the earlier rows of its correlation
group), for parameters that hold one value per draw: a posterior's pointwise
log-likelihood costs a few array operations instead of a Python loop over draws.

Examples
--------
>>> import numpy as np, pandas as pd
>>> from bayeslmm.residual.structures import AR1
>>> from bayeslmm.residual.bind import bind
>>> from bayeslmm.residual.algebra import residual_logp
>>> rd = bind(AR1(group="g"), pd.DataFrame({"g": list("aabbb")}))
>>> eps = np.random.default_rng(0).normal(size=(3, 5))
>>> phi, sigma = np.array([0.1, 0.5, -0.3]), np.array([1.0, 2.0, 0.5])
>>> got = draws_logp(rd, eps, sigma, {"Phi": phi})
>>> want = [residual_logp(rd, eps[d], sigma[d], {"Phi": phi[d]}, pointwise=True)
...         for d in range(3)]
>>> bool(np.allclose(got, want))
True
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .bind import ResidualDesign
from .structures import AR1, CAR1, CompSymm, VarIdent

__all__ = ["draws_logp"]

_LOG2PI = float(np.log(2 * np.pi))


def draws_logp(rd: ResidualDesign, eps: np.ndarray, sigma: np.ndarray,
               params: Mapping[str, np.ndarray]) -> np.ndarray:
    """Per-row terms of ``log N(eps_d | 0, σ_d² Λ_d)`` for every draw d.

    Parameters
    ----------
    rd : ResidualDesign
        A structure with sufficient statistics (AR1, CAR1, CompSymm, VarIdent).
    eps : ndarray (draws, n)
        Residuals, rows in the data's order.
    sigma : ndarray (draws,)
    params : mapping
        ``Phi`` or ``Rho`` (draws,), ``varident_ratio`` (draws, levels − 1).

    Returns
    -------
    ndarray (draws, n)
        In the data's row order; each row sums to that draw's log-density.
    """
    x = np.asarray(eps, dtype=float)[:, rd.order]
    sigma = np.asarray(sigma, dtype=float)[:, None]
    lp = -0.5 * _LOG2PI - np.log(sigma)
    if isinstance(rd.variance, VarIdent):
        ratio = np.asarray(params["varident_ratio"], dtype=float).reshape(len(x), -1)
        logd = np.concatenate([np.zeros((len(x), 1)), np.log(ratio)], axis=1)[:, rd.by_codes]
        x = x * np.exp(-logd)
        lp = lp - logd
    c = rd.correlation
    if isinstance(c, (AR1, CAR1)):
        first = rd.position == 0
        prev = np.maximum(np.arange(rd.n) - 1, 0)
        phi = np.asarray(params["Phi"], dtype=float)[:, None]
        r = np.power(phi, rd.lag[None, :]) * (~first)
        x = x - r * x[:, prev]
        lp = lp - 0.5 * np.log1p(-(r**2))
        x = x / np.sqrt(1.0 - r**2)
    elif isinstance(c, CompSymm):
        rho = np.asarray(params["Rho"], dtype=float)[:, None]
        k = rd.position[None, :]
        excl = np.cumsum(x, axis=1) - x
        s = excl - excl[:, rd.start]  # sum of the earlier rows of the group
        denom = rho * (k - 1) + 1
        logv = np.log1p(-rho) + np.log1p(rho * k) - np.log(denom)
        x = (x - rho / denom * s) * np.exp(-0.5 * logv)
        lp = lp - 0.5 * logv
    lp = lp - 0.5 * (x / sigma) ** 2
    return lp[:, rd.inverse]
