"""The correlation functions of the dense structures, in NumPy or PyTensor (``xp``).

- :func:`spatial_corr`: nlme's spatial correlation functions of d / range;
- :func:`pacf_to_coef`: nlme's map from partial autocorrelations in (−1, 1) to ARMA
  coefficients (Durbin–Levinson; the AR part stationary, the MA part invertible);
- :func:`arma_acf`: the autocorrelations of an ARMA(p, q) process at lags 0..L;
- :func:`cpc_to_corr`: a correlation matrix from canonical partial correlations in
  (−1, 1) (the LKJ parameterisation: any values give a positive-definite matrix;
  NumPy only, for the ML search).

Everything is written with array operations of ``xp`` (``numpy`` or
``pytensor.tensor``) and Python loops over the (small, static) orders, so the same code
builds a PyTensor graph.

Examples
--------
>>> import numpy as np
>>> float(arma_acf(np, [0.5], [], 3)[3])  # AR(1): 0.5³
0.125
>>> np.round(pacf_to_coef(np, np.array([0.5, 0.2]), -1.0), 4)  # AR(2) from its pacf
array([0.4, 0.2])
"""

from __future__ import annotations

import numpy as np

__all__ = ["spatial_corr", "pacf_to_coef", "coef_to_pacf", "arma_acf", "cpc_to_corr",
           "corr_to_cpc", "cpc_correlations", "lkj_cpc_shapes"]


def spatial_corr(xp, kind: str, d, range_):
    """``f(d / range)`` of a spatial correlation (without the nugget).

    Examples
    --------
    >>> d = np.array([0.0, 0.5, 1.0, 2.0])
    >>> [np.round(spatial_corr(np, k, d, 1.0), 4).tolist() for k in ("exp", "lin")]
    [[1.0, 0.6065, 0.3679, 0.1353], [1.0, 0.5, 0.0, 0.0]]
    """
    s = d / range_
    if kind == "exp":
        return xp.exp(-s)
    if kind == "gaus":
        return xp.exp(-(s**2))
    if kind == "ratio":
        return 1.0 / (1.0 + s**2)
    inside = s < 1.0
    s = xp.minimum(s, 1.0)  # no gradient through the branch that is not taken
    if kind == "lin":
        return xp.where(inside, 1.0 - s, 0.0)
    if kind == "spher":
        return xp.where(inside, 1.0 - 1.5 * s + 0.5 * s**3, 0.0)
    raise ValueError(f"unknown spatial correlation {kind!r}")


def pacf_to_coef(xp, a, sign: float, n: int | None = None) -> list:
    """nlme's ``ARMA_untransPar``: partial autocorrelations ``a`` (in (−1, 1)) → the
    coefficients, ``sign = −1`` for the AR part (Durbin–Levinson) and ``+1`` for the
    MA part. Returns a list of ``n`` scalars (``n``: the length of ``a``, given for a
    PyTensor vector).

    Examples
    --------
    >>> [round(float(c), 4) for c in pacf_to_coef(np, np.array([0.5, -0.3]), 1.0)]
    [0.35, -0.3]
    """
    n = len(a) if n is None else n
    coef: list = []
    for i in range(n):
        ai = a[i]
        prev = list(coef)
        coef = [prev[j] + sign * ai * prev[i - j - 1] for j in range(i)] + [ai]
    return coef


def coef_to_pacf(coef, sign: float) -> np.ndarray:
    """The inverse of :func:`pacf_to_coef` (NumPy; nlme's ``ARMA_transPar`` without its
    final log transform): ARMA coefficients → partial autocorrelations.

    Examples
    --------
    >>> np.round(coef_to_pacf([0.4, 0.2], -1.0), 10)
    array([0.5, 0.2])
    """
    c = [float(v) for v in coef]
    out = [0.0] * len(c)
    for k in range(len(c) - 1, -1, -1):
        a = c[k]
        if abs(a) >= 1:
            raise ValueError(f"coefficients {list(coef)} are outside the stationary "
                             "(invertible) region")
        out[k] = a
        c = [(c[j] - sign * a * c[k - j - 1]) / (1.0 - a * a) for j in range(k)]
    return np.array(out)


def arma_acf(xp, phi, theta, max_lag: int):
    """Autocorrelations ``ρ(0..max_lag)`` of ``x_t = Σφ_i x_{t−i} + e_t + Σθ_j e_{t−j}``
    (``phi``, ``theta``: sequences of scalars).

    The autocovariances at lags 0..r (r = max(p, q)) solve r + 1 linear equations
    (``γ(k) − Σφ_iγ(|k−i|) = Σ_{j≥k} θ_j ψ_{j−k}``, ψ the MA(∞) weights); later lags
    follow ``γ(k) = Σφ_iγ(k−i)``.

    Examples
    --------
    >>> np.round(arma_acf(np, [], [0.5], 2), 4)  # MA(1): θ/(1+θ²)
    array([1. , 0.4, 0. ])
    """
    p, q = len(phi), len(theta)
    r = max(p, q)
    th = [1.0] + [theta[j] for j in range(q)]
    psi = [1.0]
    for j in range(1, q + 1):
        psi.append(th[j] + sum(phi[i - 1] * psi[j - i] for i in range(1, min(j, p) + 1)))
    rows, rhs = [], []
    for k in range(r + 1):
        row = [0.0] * (r + 1)
        row[k] = 1.0
        for i in range(1, p + 1):
            row[abs(k - i)] = row[abs(k - i)] - phi[i - 1]
        rows.append(row)
        rhs.append(sum(th[j] * psi[j - k] for j in range(k, q + 1)) if k <= q else 0.0)
    if xp is np:
        A = np.array([[float(v) for v in row] for row in rows])
        gamma = list(np.linalg.solve(A, np.array([float(v) for v in rhs])))
    else:
        A = xp.stack([xp.stack([xp.as_tensor_variable(v) for v in row]) for row in rows])
        b = xp.stack([xp.as_tensor_variable(v) for v in rhs])
        g = xp.linalg.solve(A, b)
        gamma = [g[k] for k in range(r + 1)]
    for k in range(r + 1, max_lag + 1):
        gamma.append(sum(phi[i - 1] * gamma[k - i] for i in range(1, p + 1)) if p else 0.0)
    gamma = gamma[: max_lag + 1]
    out = [xp.as_tensor_variable(v) if xp is not np else float(v) for v in gamma]
    vec = np.array(out) if xp is np else xp.stack(out)
    return vec / vec[0]


def cpc_to_corr(z, d: int) -> np.ndarray:
    """The d × d correlation matrix whose Cholesky factor has canonical partial
    correlations ``z`` (NumPy; length d(d−1)/2, in the order of ``np.triu_indices(d, 1)``).

    Examples
    --------
    >>> C = cpc_to_corr(np.array([0.5, 0.2, -0.3]), 3)
    >>> np.round(C, 4).tolist()[0], bool(np.all(np.linalg.eigvalsh(C) > 0))
    ([1.0, 0.5, 0.2], True)
    """
    z = np.asarray(z, dtype=float)
    L = np.zeros((d, d))
    L[0, 0] = 1.0
    for k, (i, j) in enumerate(zip(*np.triu_indices(d, 1), strict=True)):
        L[j, i] = z[k] * np.sqrt(1.0 - np.sum(L[j, :i] ** 2))
        if i == j - 1:  # the row is complete
            L[j, j] = np.sqrt(max(1.0 - np.sum(L[j, :j] ** 2), 0.0))
    return L @ L.T


def corr_to_cpc(C: np.ndarray) -> np.ndarray:
    """The inverse of :func:`cpc_to_corr` (NumPy): canonical partial correlations of a
    positive-definite correlation matrix.

    Examples
    --------
    >>> np.round(corr_to_cpc(cpc_to_corr(np.array([0.5, 0.2, -0.3]), 3)), 10)
    array([ 0.5,  0.2, -0.3])
    """
    L = np.linalg.cholesky(C)
    d = C.shape[0]
    out = []
    for i, j in zip(*np.triu_indices(d, 1), strict=True):
        rest = 1.0 - np.sum(L[j, :i] ** 2)
        out.append(L[j, i] / np.sqrt(rest))
    return np.array(out)


def cpc_correlations(xp, z, d: int):
    """The correlations (``np.triu_indices(d, 1)`` order) of :func:`cpc_to_corr`, in
    NumPy or PyTensor (``z``: a vector of d(d−1)/2 partial correlations).

    Examples
    --------
    >>> z = np.array([0.5, 0.2, -0.3])
    >>> np.allclose(cpc_correlations(np, z, 3), cpc_to_corr(z, 3)[np.triu_indices(3, 1)])
    True
    """
    pairs = list(zip(*np.triu_indices(d, 1), strict=True))
    index = {pair: k for k, pair in enumerate(pairs)}
    L = [[0.0] * d for _ in range(d)]
    L[0][0] = 1.0
    for j in range(1, d):
        rest = 1.0
        for i in range(j):
            c = z[index[(i, j)]]
            L[j][i] = c * xp.sqrt(rest)
            rest = rest * (1.0 - c**2)
        L[j][j] = xp.sqrt(rest)
    out = [sum(L[i][k] * L[j][k] for k in range(i + 1)) for i, j in pairs]
    return np.array([float(v) for v in out]) if xp is np else xp.stack(out)


def lkj_cpc_shapes(d: int, eta: float) -> np.ndarray:
    """The Beta(b, b) shapes on (−1, 1) of the partial correlations of an LKJ(η) matrix
    (Lewandowski, Kurowicka and Joe 2009): ``b = η + (d − 1 − i)/2`` for those of
    column i (1-based) of the Cholesky factor, in ``np.triu_indices(d, 1)`` order.

    Examples
    --------
    >>> lkj_cpc_shapes(3, 1.0).tolist()
    [1.5, 1.5, 1.0]
    """
    rows, _ = np.triu_indices(d, 1)
    return eta + (d - 2 - rows) / 2.0
