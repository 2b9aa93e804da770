"""The high-dimensional ("genomic") LMM in its rotated, diagonal form: rotation,
log-density and exact ML/REML (GREML).

The model is ``y = X_f β + g + e`` with ``g ~ N(0, σ_b² K)`` and ``e ~ N(0, σ² I)``,
where ``K = W Wᵀ`` for a wide random-effect matrix ``W`` (``g = W ω``,
``ω ~ N(0, σ_b² I_p)``) or ``K = Z K_levels Zᵀ`` for a factor with a known covariance.
With ``K = U S Uᵀ`` the rotated data ``Uᵀy`` have the diagonal covariance
``σ_b² S + σ² I``, so one evaluation of the log-density costs O(n k) (k fixed
effects), whatever the number of columns of ``W``.

Only the r eigenvectors with non-zero eigenvalue ``U₁`` (n × r) are kept: when W has
fewer columns than rows (or K is rank deficient) the complement of ``U₁`` has variance
``σ² I`` and enters through the cross-products of ``M_c = (I − U₁U₁ᵀ)[X_f y]``, computed
once.

Examples
--------
>>> import numpy as np
>>> from scipy.stats import multivariate_normal
>>> rng = np.random.default_rng(0)
>>> W, Xf = rng.normal(size=(30, 50)), np.column_stack([np.ones(30), rng.normal(size=30)])
>>> y = Xf @ [1.0, 0.5] + W @ rng.normal(scale=0.2, size=50) + rng.normal(size=30)
>>> rot = rotate_matrix(W, y, Xf)
>>> V = 0.2**2 * W @ W.T + np.eye(30)
>>> bool(np.isclose(loglik(rot, [1.0, 0.5], 0.2, 1.0),
...                 multivariate_normal(Xf @ [1.0, 0.5], V).logpdf(y)))
True
>>> fit = greml(rot, "REML")
>>> 0 <= fit.h2 <= 1, fit.beta.shape
(True, (2,))
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla
from scipy.optimize import brentq, minimize_scalar

from .errors import BayesLMMError

__all__ = ["Rotation", "GremlFit", "gram", "rotate_matrix", "rotate_kernel", "loglik",
           "profiled_deviance", "greml"]

_LOG2PI = np.log(2.0 * np.pi)
#: χ²₁ 95% quantile, for the profile-likelihood interval of h²
_CHI2_95 = 3.841458820694124


@dataclass(frozen=True)
class Rotation:
    """The data in the eigenbasis of K: everything the likelihood needs.

    Attributes
    ----------
    U : ndarray (n, r)
        Eigenvectors of K with non-zero eigenvalue.
    s : ndarray (r,)
        Their eigenvalues.
    yt, Xt : ndarray (r,), (r, k)
        ``U₁ᵀy`` and ``U₁ᵀX_f``.
    Mc : ndarray (n, k + 1)
        ``[X_f y]`` projected on the complement of ``U₁`` (variance σ² there).
    C : ndarray (k + 1, k + 1)
        ``M_cᵀM_c``: the complement's cross-products.
    n_c : int
        Dimension of the complement, ``n − r``.
    scale : float
        ``tr(K)/n``: the genetic variance is ``σ_b² · scale`` (the h² numerator).
    """

    U: np.ndarray
    s: np.ndarray
    yt: np.ndarray
    Xt: np.ndarray
    Mc: np.ndarray
    C: np.ndarray
    n_c: int
    scale: float

    @property
    def n(self) -> int:
        """Number of observations."""
        return self.U.shape[0]

    @property
    def k(self) -> int:
        """Number of fixed effects."""
        return self.Xt.shape[1]

    @property
    def rank(self) -> int:
        """Rank of K (eigenvalues kept)."""
        return len(self.s)


def gram(W: np.ndarray, chunk: int = 12_288) -> np.ndarray:
    """``W Wᵀ`` in float64, accumulated over column blocks.

    A float32 ``W`` is multiplied in float32 block by block (twice as fast, half the
    memory) and summed in float64, which keeps the rounding error of each block small
    (~4e-7 relative for blocks of 12,288 columns; larger blocks gain no speed).

    >>> W = np.arange(6.0).reshape(2, 3)
    >>> gram(W, chunk=2).tolist()
    [[5.0, 14.0], [14.0, 50.0]]
    """
    W = np.asarray(W)
    if W.dtype == np.float64 or W.shape[1] <= chunk:
        return np.asarray(W @ W.T, dtype=np.float64)
    K = np.zeros((W.shape[0], W.shape[0]))
    for j in range(0, W.shape[1], chunk):
        block = np.ascontiguousarray(W[:, j:j + chunk])
        K += block @ block.T
    return K


def _rotation(U: np.ndarray, s: np.ndarray, y: np.ndarray, Xf: np.ndarray,
              scale: float) -> Rotation:
    """Keep the non-zero eigenvalues; the rest joins the σ²-only complement."""
    n = len(y)
    keep = s > max(float(s.max(initial=0.0)), 0.0) * max(n, 1) * np.finfo(float).eps * 10
    U1, s1 = np.ascontiguousarray(U[:, keep]), s[keep]
    M = np.column_stack([Xf, y])
    proj = U1.T @ M
    n_c = n - len(s1)
    # the complement is projected explicitly (not by differences of sums of squares)
    Mc = M - U1 @ proj if n_c else np.zeros_like(M)
    return Rotation(U=U1, s=s1, yt=proj[:, -1].copy(), Xt=proj[:, :-1].copy(), Mc=Mc,
                    C=Mc.T @ Mc, n_c=n_c, scale=float(scale))


def rotate_matrix(W: np.ndarray, y: np.ndarray, Xf: np.ndarray) -> Rotation:
    """Rotation for ``K = W Wᵀ``: eigendecomposition of the n×n ``W Wᵀ`` when W is wide
    (p ≥ n), the thin SVD of W otherwise.
    """
    n, p = W.shape
    if p >= n:
        s, U = sla.eigh(gram(W), driver="evr", overwrite_a=True, check_finite=False)
    else:
        U, sv, _ = sla.svd(np.asarray(W, dtype=float), full_matrices=False,
                           check_finite=False)
        s = sv**2
    scale = float(np.einsum("ij,ij->", W, W, dtype=np.float64)) / n
    return _rotation(U, np.clip(s, 0.0, None), np.asarray(y, float), np.asarray(Xf, float),
                     scale)


def rotate_kernel(K: np.ndarray, y: np.ndarray, Xf: np.ndarray) -> Rotation:
    """Rotation for an n×n positive semi-definite K (its eigendecomposition)."""
    K = np.asarray(K, dtype=float)
    scale = float(np.trace(K)) / len(y)
    s, U = sla.eigh(K, driver="evr", check_finite=False)
    return _rotation(U, np.clip(s, 0.0, None), np.asarray(y, float), np.asarray(Xf, float),
                     scale)


def loglik(rot: Rotation, beta, sd: float, sigma: float) -> float:
    """``log N(y | X_f β, sd² K + sigma² I)`` from the rotated data, O(n k).

    Parameters
    ----------
    rot : Rotation
    beta : array (k,)
        Fixed effects.
    sd : float
        σ_b, the sd of the random coefficients (``g ~ N(0, sd² K)``).
    sigma : float
        Residual sd.
    """
    beta = np.asarray(beta, dtype=float)
    d = sd**2 * rot.s + sigma**2
    r = rot.yt - rot.Xt @ beta
    v = np.append(-beta, 1.0)  # M_c v = y_c − X_c β
    quad = float(np.sum(r**2 / d)) + float(v @ rot.C @ v) / sigma**2
    logdet = float(np.sum(np.log(d))) + rot.n_c * np.log(sigma**2)
    return -0.5 * (rot.n * _LOG2PI + logdet + quad)


def _weighted(rot: Rotation, h2: float):
    """Cross-products under V₀(h²) = (h²/scale) K + (1 − h²) I (V = τ V₀)."""
    d = (h2 / rot.scale) * rot.s + (1.0 - h2)
    dc = 1.0 - h2
    w = 1.0 / d
    k = rot.k
    A = rot.Xt.T @ (w[:, None] * rot.Xt)
    b = rot.Xt.T @ (w * rot.yt)
    logdet = float(np.sum(np.log(d)))
    if rot.n_c:
        A = A + rot.C[:k, :k] / dc
        b = b + rot.C[:k, k] / dc
        logdet += rot.n_c * np.log(dc)
    return d, dc, A, b, logdet


def profiled_deviance(rot: Rotation, h2: float, reml: bool = True):
    """−2 log-likelihood (ML) or REML criterion at h², β and the total variance profiled.

    Returns
    -------
    deviance : float
    beta : ndarray (k,)
        GLS estimate at h².
    tau : float
        Profiled total variance ``σ_b² · scale + σ²``.
    A : ndarray (k, k)
        ``X_fᵀ V₀⁻¹ X_f``; ``tau · A⁻¹`` is the covariance of β̂.
    """
    n, k = rot.n, rot.k
    if rot.n_c and h2 >= 1.0:
        return np.inf, np.full(k, np.nan), np.nan, np.full((k, k), np.nan)
    d, dc, A, b, logdet = _weighted(rot, h2)
    beta = np.linalg.solve(A, b) if k else np.zeros(0)
    r = rot.yt - rot.Xt @ beta
    v = np.append(-beta, 1.0)
    rss = float(np.sum(r**2 / d)) + (float(v @ rot.C @ v) / dc if rot.n_c else 0.0)
    m = n - k if reml else n
    tau = rss / m
    dev = m * (1.0 + np.log(2.0 * np.pi * tau)) + logdet
    if reml and k:
        dev += np.linalg.slogdet(A)[1]
    return float(dev), beta, tau, A


@dataclass(frozen=True)
class GremlFit:
    """The ML/REML estimates of a rotated model (see :func:`greml`)."""

    method: str
    h2: float
    beta: np.ndarray
    vcov: np.ndarray
    sd: float
    sigma: float
    loglik: float
    h2_se: float
    h2_interval: tuple[float, float]
    converged: bool
    evaluations: int


def greml(rot: Rotation, method: str = "REML", grid: int = 51) -> GremlFit:
    """ML or REML estimates by a one-dimensional search over h² (FaST-LMM's method).

    β and the total variance τ have closed forms at each h², so the criterion is
    profiled to one dimension; a grid locates the optimum (the criterion can be
    multimodal) and bounded Brent refines it.

    Parameters
    ----------
    rot : Rotation
    method : {"REML", "ML"}
    grid : int
        Grid points on [0, 1] before refining.

    Returns
    -------
    GremlFit
        With the standard error of h² from the curvature of the profiled criterion
        (NaN at a boundary) and its 95% profile-likelihood interval.
    """
    if method not in ("ML", "REML"):
        raise BayesLMMError(f"method must be 'ML' or 'REML', got {method!r}.")
    reml = method == "REML"
    if rot.n - rot.k <= 0:
        raise BayesLMMError(f"{rot.n} observations for {rot.k} fixed effects: nothing "
                            "is left to estimate the variances.")
    hi = 1.0 - 1e-9 if rot.n_c else 1.0
    calls = [0]

    def dev(h: float) -> float:
        calls[0] += 1
        return profiled_deviance(rot, h, reml)[0]

    hs = np.linspace(0.0, hi, grid)
    devs = np.array([dev(h) for h in hs])
    j = int(np.argmin(devs))
    lo_b, hi_b = hs[max(j - 1, 0)], hs[min(j + 1, grid - 1)]
    opt = minimize_scalar(dev, bounds=(lo_b, hi_b), method="bounded",
                          options={"xatol": 1e-10})
    h = float(opt.x) if opt.fun <= devs[j] else float(hs[j])
    dmin, beta, tau, A = profiled_deviance(rot, h, reml)
    se = _curvature_se(dev, h, hi)
    interval = (_root(dev, dmin, h, 0.0), _root(dev, dmin, h, hi))
    return GremlFit(
        method=method, h2=h, beta=beta, vcov=tau * np.linalg.inv(A) if rot.k else A,
        sd=float(np.sqrt(h * tau / rot.scale)), sigma=float(np.sqrt((1.0 - h) * tau)),
        loglik=-0.5 * dmin, h2_se=se, h2_interval=interval,
        converged=bool(np.isfinite(dmin)) and (opt.success or j in (0, grid - 1)),
        evaluations=calls[0])


def _curvature_se(dev, h: float, hi: float) -> float:
    """sd of h² from the second derivative of the deviance (2 × observed information)."""
    e = 1e-4
    if h - e <= 0.0 or h + e >= hi:
        return float("nan")
    d2 = (dev(h + e) - 2.0 * dev(h) + dev(h - e)) / e**2
    return float(np.sqrt(2.0 / d2)) if d2 > 0 else float("nan")


def _root(dev, dmin: float, h: float, end: float) -> float:
    """Where the deviance has risen by χ²₁(0.95) between h and ``end`` (else ``end``)."""
    f = lambda x: dev(x) - dmin - _CHI2_95  # noqa: E731
    if h == end or f(end) <= 0.0:
        return float(end)
    return float(brentq(f, min(h, end), max(h, end), xtol=1e-8))
