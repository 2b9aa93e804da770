"""The dense correlations (:mod:`~bayeslmm.residual.correlations`) bound to rows, and
their algebra: one correlation matrix per group, factored by Cholesky.

Rows are in the sorted order of :class:`~bayeslmm.residual.bind.ResidualDesign` (by
group, then time or data order). Groups are padded to the largest size ``m`` with
independent dummy rows (identity rows and columns), so every group is one slice of a
``(G, m, m)`` batch: NumPy's batched Cholesky, PyTensor's blockwise one (differentiable,
for NUTS). With ``C_g = L_g L_gᵀ``, the one-step innovations of a group are
``diag(L_g) · L_g⁻¹ x_g`` with log conditional variances ``2 log diag(L_g)``: the
interface that :mod:`~bayeslmm.residual.algebra` uses for every correlation.

Parameters (keys of ``params``; the PyMC variables): ``cor_symm`` (CorSymm: the
correlations ``cor(j,k)`` in ``np.triu_indices`` order), ``arma_pacf`` (CorARMA: the
partial autocorrelations, AR part first), ``range`` and ``nugget`` (spatial).

Examples
--------
>>> import numpy as np, pandas as pd
>>> from bayeslmm.residual.correlations import CorExp
>>> df = pd.DataFrame({"g": list("aab"), "x": [0.0, 1.0, 5.0]})
>>> dc = bind_dense(CorExp(coords="x", group="g"), df, np.arange(3),
...                 np.array([0, 0, 1]), np.array([0, 1, 0]), list(df.index))
>>> np.round(group_corr(dc, CorExp(coords="x", group="g"), {"range": 2.0}, np)[0], 4)
array([[1.    , 0.6065],
       [0.6065, 1.    ]])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pytensor.tensor as pt
from scipy.spatial.distance import cdist

from ..errors import BayesLMMError, DataError
from .batched_chol import UNROLL_MAX, solve_lower, unrolled_solve
from .checks import integer_times, numeric, rows_text
from .corr_math import arma_acf, cpc_to_corr, pacf_to_coef, spatial_corr
from .correlations import DENSE_CORRELATIONS, METRICS, CorARMA, CorLin, CorSpher, CorSymm

__all__ = ["DenseCorr", "bind_dense", "is_dense", "group_corr", "innovations",
           "unwhiten_sorted", "param_names", "to_params", "initial_unconstrained",
           "u_bounds", "extra_starts", "nlme_names", "check_params", "symm_labels",
           "edge_message"]


def is_dense(correlation: Any) -> bool:
    """Whether a correlation structure is one of the dense ones.

    >>> from bayeslmm.residual.correlations import CorSymm
    >>> is_dense(CorSymm(group="g")), is_dense(None)
    (True, False)
    """
    return isinstance(correlation, DENSE_CORRELATIONS)


@dataclass(frozen=True)
class DenseCorr:
    """A dense correlation bound to the sorted rows: padded group slots and the per-group
    position, lag or distance arrays its correlation matrix is built from.

    Attributes
    ----------
    slot : ndarray of int, shape (n,)
        Flat index ``g·m + k`` of each sorted row in the padded ``(G, m)`` layout.
    mask : ndarray of bool, shape (G, m)
        Real rows (False: padding).
    positions : ndarray of int, shape (G, m)
        CorSymm: each row's position (0-based) in the full ``dim × dim`` matrix.
    dim : int
        CorSymm: the number of positions.
    lags : ndarray of int, shape (G, m, m), or None
        CorARMA: |t_j − t_k| within the group.
    dist : ndarray, shape (G, m, m), or None
        Spatial: distances within the group.
    min_dist : float
        Spatial: the smallest distance between two rows of a group (nlme's ``minD``).
    """

    slot: np.ndarray
    mask: np.ndarray
    positions: np.ndarray
    dim: int
    lags: np.ndarray | None = None
    dist: np.ndarray | None = None
    min_dist: float = 0.0
    #: the last NumPy Cholesky factors by parameter values (whitening and log|Λ| of
    #: one evaluation of a criterion share them)
    cache: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def shape(self) -> tuple[int, int]:
        """``(G, m)``: groups and padded group size."""
        return self.mask.shape

    @property
    def max_lag(self) -> int:
        """CorARMA: the largest lag within a group."""
        return int(self.lags.max()) if self.lags is not None and self.lags.size else 0


def _layout(codes: np.ndarray, position: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    G, m = int(codes.max()) + 1, int(position.max()) + 1
    slot = codes * m + position
    mask = np.zeros(G * m, dtype=bool)
    mask[slot] = True
    return slot, mask.reshape(G, m)


def _padded(values: np.ndarray, slot: np.ndarray, shape, fill=0) -> np.ndarray:
    out = np.full((shape[0] * shape[1], *values.shape[1:]), fill, dtype=values.dtype)
    out[slot] = values
    return out.reshape(*shape, *values.shape[1:])


def bind_dense(c, data: pd.DataFrame, order: np.ndarray, codes: np.ndarray,
               position: np.ndarray, labels: Sequence, fitting: bool = True) -> DenseCorr:
    """The arrays of a dense correlation for rows sorted by ``order`` (``codes`` and
    ``position``: group and position of each sorted row).

    Raises
    ------
    DataError
        Non-numeric or non-integer times or coordinates; two rows of a group at the same
        place without a nugget (their correlation would be 1).
    """
    what = repr(c)
    slot, mask = _layout(codes, position)
    shape = mask.shape
    sorted_labels = [labels[i] for i in order]
    if isinstance(c, CorSymm):
        if c.time is None:
            return DenseCorr(slot, mask, _padded(position, slot, shape), int(shape[1]))
        t = integer_times(numeric(data, c.time, what, labels), c.time, what, labels)[order]
        values, pos = np.unique(t, return_inverse=True)
        if np.any(np.diff(values) != 1):
            raise DataError(f"Column {c.time!r} of {what} gives positions in the correlation "
                            "matrix and must take consecutive integer values (as nlme's "
                            f"corSymm), got {values.tolist()[:12]}.")
        return DenseCorr(slot, mask, _padded(pos.astype(np.int64), slot, shape), len(values))
    if isinstance(c, CorARMA):
        t = position if c.time is None else integer_times(
            numeric(data, c.time, what, labels), c.time, what, labels)[order]
        tp = _padded(t, slot, shape)
        lags = np.abs(tp[:, :, None] - tp[:, None, :]) * (mask[:, :, None] & mask[:, None, :])
        return DenseCorr(slot, mask, np.zeros(shape, dtype=np.int64), 0, lags=lags)
    xy = np.column_stack([numeric(data, col, what, labels) for col in c.coords])[order]
    xyp = _padded(xy, slot, shape)
    dist = np.stack([cdist(g, g, metric=METRICS[c.metric]) for g in xyp])
    real = mask[:, :, None] & mask[:, None, :] & ~np.eye(shape[1], dtype=bool)
    if not real.any():
        return DenseCorr(slot, mask, np.zeros(shape, dtype=np.int64), 0, dist=dist)
    if not c.nugget and np.any(dist[real] == 0):
        g, j, _ = np.argwhere(real & (dist == 0))[0]
        same = (codes == g) & np.isin(position, np.flatnonzero((dist[g, j] == 0) & mask[g]))
        raise DataError(f"Rows {rows_text(sorted_labels, same)} of {what} are at the same "
                        f"place ({list(c.coords)}) within a group: their correlation is 1. "
                        "Use nugget=True, or average or drop duplicated rows.")
    return DenseCorr(slot, mask, np.zeros(shape, dtype=np.int64), 0, dist=dist,
                     min_dist=float(dist[real].min()))


def _symm_matrix(v, dim: int, xp):
    iu = np.triu_indices(dim, 1)
    if xp is np:
        full = np.eye(dim)
        full[iu] = v
        full[iu[::-1]] = v
        return full
    up = pt.set_subtensor(pt.zeros((dim, dim))[iu], v)
    return up + up.T + pt.eye(dim)


def arma_coefficients(c: CorARMA, pacf, xp) -> tuple[list, list]:
    """``(Phi, Theta)`` (lists of scalars) from the partial autocorrelations (AR first)."""
    a = [pacf[i] for i in range(c.p + c.q)]
    return (pacf_to_coef(xp, a[: c.p], -1.0), pacf_to_coef(xp, a[c.p:], 1.0))


def group_corr(dc: DenseCorr, c, params: Mapping[str, Any], xp):
    """The ``(G, m, m)`` batch of group correlation matrices (padding: identity)."""
    G, m = dc.shape
    if isinstance(c, CorSymm):
        full = _symm_matrix(params["cor_symm"], dc.dim, xp)
        C = full[dc.positions[:, :, None], dc.positions[:, None, :]]
    elif isinstance(c, CorARMA):
        phi, theta = arma_coefficients(c, params["arma_pacf"], xp)
        C = arma_acf(xp, phi, theta, dc.max_lag)[dc.lags]
    else:
        nug = params["nugget"] if c.nugget else 0.0
        C = (1.0 - nug) * spatial_corr(xp, c.kind, dc.dist, params["range"]) \
            + nug * np.eye(m)
    keep = (dc.mask[:, :, None] & dc.mask[:, None, :]).astype(float)
    return C * keep + np.eye(m) * (1.0 - keep)


def _factor(dc: DenseCorr, c, params: Mapping[str, Any], xp):
    """The batch of Cholesky factors (NumPy: cached by parameter values)."""
    if xp is not np:
        return pt.linalg.cholesky(group_corr(dc, c, params, xp), lower=True, on_error="nan")
    key = tuple(np.asarray(params[k], dtype=float).tobytes() for k in param_names(c))
    L = dc.cache.get(key)
    if L is None:
        L = np.linalg.cholesky(group_corr(dc, c, params, np))
        if len(dc.cache) >= 4:
            dc.cache.pop(next(iter(dc.cache)))
        dc.cache[key] = L
    return L


def innovations(dc: DenseCorr, c, x, params: Mapping[str, Any], xp):
    """One-step innovations of sorted rows ``x`` ((n,) or (n, k)) and the log of their
    conditional variances: ``diag(L)·L⁻¹x`` and ``2 log diag(L)`` per group."""
    G, m = dc.shape
    X = x[:, None] if x.ndim == 1 else x
    k = X.shape[1]
    if xp is np:
        L = _factor(dc, c, params, xp)
        Xp = np.zeros((G * m, k))
        Xp[dc.slot] = X
        W = solve_lower(L, Xp.reshape(G, m, k))
        d = np.diagonal(L, axis1=1, axis2=2)
    elif m <= UNROLL_MAX:
        Xp = pt.set_subtensor(pt.zeros((G * m, k))[dc.slot], X)
        d, W = unrolled_solve(group_corr(dc, c, params, xp), Xp.reshape((G, m, k)), m)
    else:
        L = _factor(dc, c, params, xp)
        Xp = pt.set_subtensor(pt.zeros((G * m, k))[dc.slot], X)
        W = pt.linalg.solve_triangular(L, Xp.reshape((G, m, k)), lower=True, b_ndim=2)
        d = pt.diagonal(L, axis1=1, axis2=2)
    E = (W * d[:, :, None]).reshape((G * m, k))[dc.slot]
    logv = 2.0 * xp.log(d).reshape((G * m,))[dc.slot]
    return (E[:, 0] if x.ndim == 1 else E), logv


def unwhiten_sorted(dc: DenseCorr, c, W: np.ndarray, params: Mapping[str, Any]) -> np.ndarray:
    """``L w`` per group (NumPy): iid standard normal sorted rows → draws of N(0, C)."""
    G, m = dc.shape
    L = _factor(dc, c, params, np)
    X = W[:, None] if W.ndim == 1 else W
    Wp = np.zeros((G * m, X.shape[1]))
    Wp[dc.slot] = X
    out = (L @ Wp.reshape(G, m, -1)).reshape(G * m, -1)[dc.slot]
    return out[:, 0] if W.ndim == 1 else out


def param_names(c) -> list[str]:
    """The keys of ``params`` (and PyMC variables) of a dense correlation."""
    if isinstance(c, CorSymm):
        return ["cor_symm"]
    if isinstance(c, CorARMA):
        return ["arma_pacf"]
    return list(c.param_labels)


def n_unconstrained(dc: DenseCorr, c) -> int:
    """Number of free parameters."""
    if isinstance(c, CorSymm):
        return dc.dim * (dc.dim - 1) // 2
    return c.p + c.q if isinstance(c, CorARMA) else len(c.param_labels)


def _range_offset(dc: DenseCorr, c) -> float:
    """nlme's spherical and linear ranges are ``minD + exp(u)``."""
    return dc.min_dist if isinstance(c, (CorSpher, CorLin)) else 0.0


def to_params(dc: DenseCorr, c, u) -> dict[str, Any]:
    """Unconstrained ``u`` (length :func:`n_unconstrained`) → ``params``: CorSymm by
    canonical partial correlations ``tanh u``; CorARMA's partial autocorrelations
    ``tanh(u/2)`` (nlme's); ``range = e^u`` (plus ``minD`` for Spher and Lin) and
    ``nugget`` logistic (nlme's)."""
    u = np.asarray(u, dtype=float)
    if isinstance(c, CorSymm):
        C = cpc_to_corr(np.tanh(u), dc.dim)
        return {"cor_symm": C[np.triu_indices(dc.dim, 1)]}
    if isinstance(c, CorARMA):
        return {"arma_pacf": np.tanh(u / 2.0)}
    out = {"range": float(_range_offset(dc, c) + np.exp(u[0]))}
    if c.nugget:
        out["nugget"] = float(1.0 / (1.0 + np.exp(-u[1])))
    return out


def initial_unconstrained(dc: DenseCorr, c) -> np.ndarray:
    """nlme's start: no correlation (CorSymm, CorARMA); ``range = 0.9 minD`` and
    ``nugget = 0.1`` (spatial)."""
    if not isinstance(c, (CorSymm, CorARMA)):
        start = 0.9 * dc.min_dist if dc.min_dist > 0 else 1.0
        u = [np.log(start)] + ([np.log(0.1 / 0.9)] if c.nugget else [])
        return np.array(u)
    return np.zeros(n_unconstrained(dc, c))


def u_bounds(dc: DenseCorr, c) -> list[tuple[float | None, float | None]]:
    """Search bounds of ``u``: correlations off ±1 (partial correlations within
    ±tanh 4 = ±0.9993, partial autocorrelations within ±tanh 6, where the group matrices
    stay numerically positive definite: L-BFGS-B's first steps reach the bounds, and an
    undefined criterion there stalls it), ranges within e^±25 of the smallest distance."""
    if isinstance(c, CorSymm):
        return [(-4.0, 4.0)] * n_unconstrained(dc, c)
    if isinstance(c, CorARMA):
        return [(-12.0, 12.0)] * n_unconstrained(dc, c)
    centre = float(np.log(dc.min_dist)) if dc.min_dist > 0 else 0.0
    return [(centre - 25.0, centre + 25.0)] + ([(-25.0, 25.0)] if c.nugget else [])


def edge_message(dc: DenseCorr, c, u) -> str | None:
    """A warning's text when the search ended on a bound of ``u`` (the likelihood still
    rising toward a correlation of ±1, an infinite range or a nugget of 0 or 1), else
    None."""
    u = np.asarray(u, dtype=float)[:n_unconstrained(dc, c)]
    hit = [k for k, (lo, hi) in enumerate(u_bounds(dc, c))
           if min(abs(u[k] - lo), abs(u[k] - hi)) < 1e-3]
    if not hit:
        return None
    named = nlme_names(dc, c, to_params(dc, c, u))
    names = list(named) if not isinstance(c, CorARMA) else list(c.param_labels)
    shown = ", ".join(f"{names[k]} = {named[names[k]]:.6g}" for k in hit if k < len(names))
    return (f"The residual correlation ended at the edge of its search range ({shown}): "
            "the likelihood keeps rising toward the limit, so this is not an estimate. The "
            "data may not support this structure (try a simpler one, or a nugget).")


def extra_starts(dc: DenseCorr, c, x0: np.ndarray, k: int) -> tuple[np.ndarray, ...]:
    """More starts for the search (``u`` at ``x0[k:]``): a strong correlation, and for
    the spatial family ranges at the 10%, 50% and 90% quantiles of the distances within
    groups (their likelihood can have several local maxima)."""
    x = x0.copy()
    if isinstance(c, CorSymm):
        x[k:] = np.arctanh(0.5)
        return (x,)
    if isinstance(c, CorARMA):
        x[k] = 2.0 * np.arctanh(0.6)
        return (x,)
    real = dc.dist[(dc.mask[:, :, None] & dc.mask[:, None, :])]
    real = real[real > 0]
    out = []
    for q in (0.1, 0.5, 0.9) if real.size else ():
        d = float(np.quantile(real, q))
        x = x0.copy()
        x[k] = np.log(max(d - _range_offset(dc, c), 1e-3 * d))
        out.append(x)
    return tuple(out)


def symm_labels(dim: int) -> list[str]:
    """The names of CorSymm's correlations, ``cor(j,k)`` with 1-based positions.

    >>> symm_labels(3)
    ['cor(1,2)', 'cor(1,3)', 'cor(2,3)']
    """
    return [f"cor({i + 1},{j + 1})" for i, j in zip(*np.triu_indices(dim, 1), strict=True)]


def nlme_names(dc: DenseCorr, c, values: Mapping[str, Any]) -> dict[str, float]:
    """Parameters named as nlme names them: ``cor(j,k)``; ``Phi1..``, ``Theta1..``;
    ``range``, ``nugget``."""
    if isinstance(c, CorSymm):
        v = np.atleast_1d(np.asarray(values["cor_symm"], dtype=float))
        return dict(zip(symm_labels(dc.dim), map(float, v), strict=True))
    if isinstance(c, CorARMA):
        pacf = np.atleast_1d(np.asarray(values["arma_pacf"], dtype=float))
        phi, theta = arma_coefficients(c, pacf, np)
        return dict(zip(c.param_labels, map(float, [*phi, *theta]), strict=True))
    return {k: float(np.asarray(values[k])) for k in c.param_labels}


def check_params(dc: DenseCorr, c, params: Mapping[str, Any]) -> None:
    """NumPy parameters inside their domain (else a BayesLMMError)."""
    if isinstance(c, CorSymm):
        v = np.asarray(params["cor_symm"], dtype=float)
        if v.shape != (dc.dim * (dc.dim - 1) // 2,) or np.any(np.abs(v) >= 1):
            raise BayesLMMError(f"cor_symm must be {dc.dim * (dc.dim - 1) // 2} correlations "
                                f"in (-1, 1) ({', '.join(symm_labels(dc.dim))}), got {v}.")
    elif isinstance(c, CorARMA):
        a = np.asarray(params["arma_pacf"], dtype=float)
        if a.shape != (c.p + c.q,) or np.any(np.abs(a) >= 1):
            raise BayesLMMError(f"arma_pacf must be {c.p + c.q} partial autocorrelations in "
                                f"(-1, 1), got {a}.")
    else:
        if not float(params["range"]) > 0:
            raise BayesLMMError(f"range must be positive, got {params['range']}.")
        if c.nugget and not 0 <= float(params["nugget"]) < 1:
            raise BayesLMMError(f"nugget must lie in [0, 1), got {params['nugget']}.")
