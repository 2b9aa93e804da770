"""The closed forms of :mod:`bayeslmm.residual.sufficient`: each statistic's coefficient
``c_k(params)`` in ``Λ⁻¹ = Σ_k c_k A_k`` and ``log|Λ|``, in NumPy or PyTensor (as the
inputs are), so the same code serves the ML/REML criterion and the PyMC graph.

``family`` is ``"markov"`` (AR1, CAR1: ``Phi``), ``"compsymm"`` (``Rho``) or
``"none"`` (VarIdent alone); kinds 0–4 as that module's doc lists them. ``log_shift``
m divides the variance function by e^m (the ML search's centring).

Examples
--------
>>> import numpy as np
>>> c = coefficients("compsymm", np.array([3, 4]), np.array([1.0, 2.0]), np.zeros(2, int),
...                  np.zeros(2, int), {"Rho": 0.5})
>>> c.round(4).tolist()   # [[2, -2/3], ...]: C⁻¹ of a pair = [[4/3, -2/3], [-2/3, 4/3]]
[2.0, -0.6667]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Variable

__all__ = ["coefficients", "stats_logdet", "mean_log_sd"]


def _xp(params: Mapping[str, Any], *arrays):
    return pt if any(isinstance(v, Variable) for v in (*params.values(), *arrays)) else np


def _log_delta(params: Mapping[str, Any], xp, log_shift):
    """log δ per stratum (reference 0), shifted by −log_shift."""
    if "varident_ratio" not in params:
        return xp.zeros(1) - log_shift
    return xp.concatenate([xp.zeros(1), xp.log(params["varident_ratio"])]) - log_shift


def coefficients(family: str, kind, value, a, b, params: Mapping[str, Any],
                 log_shift: float = 0.0):
    """``c_k`` of the statistics (NumPy or PyTensor, as the inputs are); ``kind``,
    ``value``, ``a``, ``b`` may be data tensors (``pm.Data``).

    >>> coefficients("markov", np.array([0, 1, 2]), np.ones(3), np.zeros(3, int),
    ...              np.zeros(3, int), {"Phi": 0.5}).round(4).tolist()
    [1.0, 0.3333, -0.6667]
    """
    xp = _xp(params, kind, value, a, b)
    where = pt.switch if xp is pt else np.where
    w = xp.exp(-_log_delta(params, xp, log_shift))
    ww = w[a] * w[b]
    if family == "markov":
        r = params["Phi"] ** value
        f = 1.0 / (1.0 - r * r)
        g = where(xp.eq(kind, 0) if xp is pt else kind == 0, 1.0,
                  where(xp.eq(kind, 1) if xp is pt else kind == 1, r * r * f, -r * f))
    elif family == "compsymm":
        rho = params["Rho"]
        g = where(xp.eq(kind, 3) if xp is pt else kind == 3, 1.0 / (1.0 - rho),
                  -rho / ((1.0 + (value - 1.0) * rho) * (1.0 - rho)))
    else:
        g = 1.0
    return g * ww


def stats_logdet(family: str, values, counts, strata_rows, params: Mapping[str, Any],
                 log_shift: float = 0.0):
    """``log|Λ|`` from the gap or group-size counts and the rows per stratum.

    >>> float(stats_logdet("compsymm", np.array([2.0]), np.array([1.0]), np.array([2.0]),
    ...                    {"Rho": 0.5}))  # log det [[1, .5], [.5, 1]] = log 0.75
    -0.2876820724517809
    """
    xp = _xp(params, values, counts, strata_rows)
    out = 2.0 * xp.sum(strata_rows * _log_delta(params, xp, log_shift))
    if family == "markov":
        out = out + xp.sum(counts * xp.log1p(-(params["Phi"] ** (2.0 * values))))
    elif family == "compsymm":
        rho = params["Rho"]
        out = out + xp.sum(counts * ((values - 1.0) * xp.log1p(-rho)
                                     + xp.log1p((values - 1.0) * rho)))
    return out


def mean_log_sd(strata_rows, params: Mapping[str, Any]) -> float:
    """The mean of log δ over the rows (VarIdent; 0 without): the ML search's centring,
    the same number in memory and out of core.

    >>> mean_log_sd(np.array([2.0, 2.0]), {"varident_ratio": np.array([np.e])})
    0.5
    """
    if "varident_ratio" not in params:
        return 0.0
    rows = np.asarray(strata_rows, dtype=float)
    return float(rows @ _log_delta(params, np, 0.0) / rows.sum())
