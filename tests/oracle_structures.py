"""Dense Λ of the structures of issue 18, written from their definitions on the data
(no bayeslmm code): the test oracle of :mod:`bayeslmm.residual.dense_corr` and
:mod:`bayeslmm.residual.varfuncs`. tests/test_dense_residual.py checks these matrices
against nlme's own ``corMatrix`` (models/nlme_more/corr_matrices.json).

Parameters are the natural ones: ``cor`` (CorSymm's d × d matrix), ``Phi`` and ``Theta``
(CorARMA), ``range`` and ``nugget``; variance functions as nlme's (``const``, ``power``,
``expon``, ratios per level ``ratio``), VarComb's parts in ``parts``.

Examples
--------
>>> import pandas as pd
>>> from bayeslmm.residual.correlations import CorExp
>>> df = pd.DataFrame({"g": list("aab"), "x": [0.0, 1.0, 5.0]})
>>> np.round(correlation_matrix(CorExp(coords="x", group="g"), df, {"range": 2.0}), 4)
array([[1.    , 0.6065, 0.    ],
       [0.6065, 1.    , 0.    ],
       [0.    , 0.    , 1.    ]])
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

from bayeslmm.residual.correlations import CorARMA, CorSymm
from bayeslmm.residual.structures import VarExp, VarIdent, VarPower
from bayeslmm.residual.variances import VarComb, VarConstPower, VarFixed

__all__ = ["correlation_matrix", "sd_weights", "arma_autocorrelation"]


def _groups(data: pd.DataFrame, group: str | None) -> np.ndarray:
    if group is None:
        return np.zeros(len(data), dtype=int)
    keys = data[group.split(":")].astype(str).agg(":".join, axis=1)
    return pd.factorize(keys)[0]


@lru_cache(maxsize=64)
def _psi(phi: tuple, theta: tuple, terms: int) -> np.ndarray:
    psi = np.zeros(terms)
    psi[0] = 1.0
    for j in range(1, terms):
        psi[j] = (theta[j - 1] if j <= len(theta) else 0.0) + sum(
            phi[i - 1] * psi[j - i] for i in range(1, min(j, len(phi)) + 1))
    return psi


def arma_autocorrelation(phi, theta, lag: int, terms: int = 4000) -> float:
    """ρ(lag) of an ARMA process from its MA(∞) weights ψ (a long truncated sum)."""
    key = (tuple(np.atleast_1d(phi).astype(float)), tuple(np.atleast_1d(theta).astype(float)))
    psi = _psi(*key, terms)
    return float(psi[:terms - lag] @ psi[lag:] / (psi @ psi))


def correlation_matrix(c, data: pd.DataFrame, params: dict) -> np.ndarray:
    """n × n correlation (data row order) of a dense correlation structure."""
    n = len(data)
    g = _groups(data, c.group)
    C = np.eye(n)
    time = getattr(c, "time", None)
    if time is not None:
        t = data[time].to_numpy(dtype=float)
    else:  # position within the group, in data order
        t = np.array([np.sum(g[:i] == g[i]) for i in range(n)], dtype=float)
    for i in range(n):
        for j in range(n):
            if i == j or g[i] != g[j]:
                continue
            if isinstance(c, CorSymm):
                lo = t.min() if time is not None else 0.0
                C[i, j] = params["cor"][int(t[i] - lo), int(t[j] - lo)]
            elif isinstance(c, CorARMA):
                C[i, j] = arma_autocorrelation(params["Phi"], params["Theta"],
                                               int(abs(t[i] - t[j])))
            else:
                a = data.loc[data.index[i], list(c.coords)].to_numpy(dtype=float)
                b = data.loc[data.index[j], list(c.coords)].to_numpy(dtype=float)
                d = {"euclidean": np.sqrt(np.sum((a - b) ** 2)),
                     "manhattan": np.sum(np.abs(a - b)),
                     "maximum": np.max(np.abs(a - b))}[c.metric]
                s = d / params["range"]
                f = {"exp": np.exp(-s), "gaus": np.exp(-s * s), "ratio": 1 / (1 + s * s),
                     "lin": max(1 - s, 0.0),
                     "spher": (1 - 1.5 * s + 0.5 * s**3) if s < 1 else 0.0}[c.kind]
                C[i, j] = (1 - params.get("nugget", 0.0)) * f
    return C


def sd_weights(v, data: pd.DataFrame, params: dict, fitted=None) -> np.ndarray:
    """δ per row (data order) of a variance function; ``params`` of a VarComb: one dict
    per part in ``params["parts"]``."""
    if isinstance(v, VarComb):
        return np.prod([sd_weights(p, data, q, fitted) for p, q in
                        zip(v.parts, params["parts"], strict=True)], axis=0)
    if isinstance(v, VarIdent):
        return np.array([params["ratio"][lv] for lv in data[v.by].astype(str)])
    x = np.asarray(fitted if v.covariate == "fitted" else data[v.covariate], dtype=float)
    if isinstance(v, VarFixed):
        return np.sqrt(x)
    if isinstance(v, VarPower):
        return np.abs(x) ** params["power"]
    if isinstance(v, VarExp):
        return np.exp(params["expon"] * x)
    assert isinstance(v, VarConstPower)
    return params["const"] + np.abs(x) ** params["power"]
