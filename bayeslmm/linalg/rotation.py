"""The high-dimensional ("genomic") LMM in its rotated, diagonal form: the rotation and
the log-density (ML/REML in :mod:`bayeslmm.mle.greml`).

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
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property

import numpy as np
import scipy.linalg as sla
from scipy.linalg import lapack

from .householder import Householder, tridiagonalize

__all__ = ["Rotation", "gram", "rotate_matrix", "rotate_kernel", "loglik"]

_LOG2PI = np.log(2.0 * np.pi)


class Rotation:
    """The data in the eigenbasis of K: everything the likelihood needs.

    Built by :func:`rotate_matrix` or :func:`rotate_kernel`. When K is an n × n matrix,
    each stage is computed when first asked for: its Householder tridiagonalisation
    ``K = Q T Qᵀ`` (all ML/REML needs, see :func:`bayeslmm.mle.greml.greml`), the
    eigendecomposition ``T = Z S Zᵀ`` (NUTS) and the eigenvectors ``U = Q Z`` of K
    (random effects and predictions). Building a model therefore costs nothing until
    it is fitted.

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

    def __init__(self, y: np.ndarray, Xf: np.ndarray, scale: float, *,
                 eigen: tuple[np.ndarray, np.ndarray] | None = None,
                 kernel: Callable[[], np.ndarray] | None = None,
                 on_values: Callable[[np.ndarray], None] | None = None):
        if (eigen is None) == (kernel is None):
            raise ValueError("Give either eigen=(U, s) or kernel=<function returning K>.")
        self._data = np.column_stack([np.asarray(Xf, float), np.asarray(y, float)])
        self.n, self.k, self.scale = self._data.shape[0], self._data.shape[1] - 1, float(scale)
        self._kernel, self._on_values = kernel, on_values
        if eigen is not None:
            U, s = eigen
            self._values, self._vectors = np.clip(s, 0.0, None), U

    @cached_property
    def _hh(self) -> Householder | None:
        """The tridiagonal form, computed on first use (K itself is then released)."""
        if self._kernel is None:
            return None
        hh, self._kernel = tridiagonalize(self._kernel()), None
        return hh

    @cached_property
    def _M(self) -> np.ndarray:
        """``[X_f y]`` in the working basis: as given, or ``Qᵀ[X_f y]`` for T."""
        return self._data if self._hh is None else self._hh.qt(self._data)

    @cached_property
    def _all_values(self) -> np.ndarray:
        if self._hh is None:
            return self._values
        lam = sla.eigvalsh_tridiagonal(self._hh.d, self._hh.e, check_finite=False)
        if self._on_values is not None:  # e.g. a positive semi-definiteness check
            self._on_values(lam)
        return np.clip(lam, 0.0, None)

    @cached_property
    def _keep(self) -> np.ndarray:
        """Eigenvalues kept; the rest joins the σ²-only complement."""
        s = self._all_values
        return s > float(s.max(initial=0.0)) * max(self.n, 1) * np.finfo(float).eps * 10

    @property
    def rank(self) -> int:
        """Rank of K (eigenvalues kept)."""
        return int(self._keep.sum())

    @property
    def n_c(self) -> int:
        """Dimension of the complement, ``n − r``."""
        return self.n - self.rank

    @cached_property
    def _eigen(self):
        """Kept eigenvalues, their eigenvectors in the working basis, the data's
        coordinates on them, and the complement's part of the data (working basis)."""
        if self._hh is None:
            s, Z = self._values, self._vectors
        else:
            s, Z = sla.eigh_tridiagonal(self._hh.d, self._hh.e, check_finite=False)
        keep = self._keep
        Z1 = np.ascontiguousarray(Z[:, keep])
        proj = Z1.T @ self._M
        # the complement is projected explicitly (not by differences of sums of squares)
        rest = self._M - Z1 @ proj if self.n_c else np.zeros_like(self._M)
        return np.clip(s[keep], 0.0, None), Z1, proj, rest

    @property
    def s(self) -> np.ndarray:
        """Non-zero eigenvalues of K."""
        return self._eigen[0]

    @property
    def yt(self) -> np.ndarray:
        """``U₁ᵀy``."""
        return self._eigen[2][:, -1]

    @property
    def Xt(self) -> np.ndarray:
        """``U₁ᵀX_f``."""
        return self._eigen[2][:, :-1]

    @cached_property
    def C(self) -> np.ndarray:
        """Cross-products of the complement's part of ``[X_f y]``."""
        rest = self._eigen[3]
        return rest.T @ rest

    @cached_property
    def Mc(self) -> np.ndarray:
        """``[X_f y]`` projected on the complement of ``U₁``."""
        rest = self._eigen[3]
        return rest if self._hh is None else self._hh.q(rest)

    @cached_property
    def U(self) -> np.ndarray:
        """Eigenvectors of K with non-zero eigenvalue (n × r)."""
        Z1 = self._eigen[1]
        return Z1 if self._hh is None else np.ascontiguousarray(self._hh.q(Z1))

    def gls(self, h2: float):
        """Generalised least squares under ``V₀ = (h²/scale) K + (1 − h²) I``.

        Returns
        -------
        logdet : float
            ``log det V₀`` (inf where V₀ is singular).
        A : ndarray (k, k)
            ``X_fᵀ V₀⁻¹ X_f``.
        b : ndarray (k,)
            ``X_fᵀ V₀⁻¹ y``.
        quad : callable
            ``β ↦ (y − X_f β)ᵀ V₀⁻¹ (y − X_f β)``.
        """
        k, a, c = self.k, h2 / self.scale, 1.0 - h2
        if self.n_c and c <= 0.0:  # no residual variance left for K's null space
            return np.inf, None, None, None
        if self._hh is not None:  # tridiagonal Cholesky, O(n k)
            dd, ee, info = lapack.dpttrf(a * self._hh.d + c, a * self._hh.e)
            if info != 0:
                return np.inf, None, None, None
            S = lapack.dpttrs(dd, ee, self._M)[0]  # V₀⁻¹ Qᵀ[X_f y]
            G = self._M[:, :k].T @ S

            def quad(beta):
                return float((self._M[:, k] - self._M[:, :k] @ beta)
                             @ (S[:, k] - S[:, :k] @ beta))
            return float(np.sum(np.log(dd))), G[:, :k], G[:, k], quad
        d = a * self.s + c
        A = self.Xt.T @ (self.Xt / d[:, None])
        b = self.Xt.T @ (self.yt / d)
        logdet = float(np.sum(np.log(d))) + (self.n_c * np.log(c) if self.n_c else 0.0)
        if self.n_c:
            A, b = A + self.C[:k, :k] / c, b + self.C[:k, k] / c

        def quad(beta):
            v = np.append(-beta, 1.0)
            r = self.yt - self.Xt @ beta
            return float(np.sum(r**2 / d)) + (float(v @ self.C @ v) / c if self.n_c else 0.0)
        return logdet, A, b, quad


def gram(W: np.ndarray, chunk: int = 12_288) -> np.ndarray:
    """``W Wᵀ`` in float64, accumulated over column blocks.

    A float32 ``W`` is multiplied in float32 block by block (twice as fast, half the
    memory) and summed in float64, which keeps the rounding error of each block small
    (~2e-7 relative for blocks of 12,288 columns against 7e-7 in one product). The
    blocks are strided views: copying them cost a third more time.

    >>> W = np.arange(6.0).reshape(2, 3)
    >>> gram(W, chunk=2).tolist()
    [[5.0, 14.0], [14.0, 50.0]]
    """
    W = np.asarray(W)
    if W.dtype == np.float64 or W.shape[1] <= chunk:
        return np.asarray(W @ W.T, dtype=np.float64)
    K = np.zeros((W.shape[0], W.shape[0]))
    for j in range(0, W.shape[1], chunk):
        block = W[:, j:j + chunk]
        K += block @ block.T
    return K


def rotate_matrix(W: np.ndarray, y: np.ndarray, Xf: np.ndarray) -> Rotation:
    """Rotation for ``K = W Wᵀ``: tridiagonalisation of the n×n ``W Wᵀ`` when W is
    wide (p ≥ n), the thin SVD of W otherwise.
    """
    n, p = W.shape
    scale = float(np.einsum("ij,ij->", W, W, dtype=np.float64)) / n
    if p >= n:
        return Rotation(y, Xf, scale, kernel=lambda: gram(W))
    U, sv, _ = sla.svd(np.asarray(W, dtype=float), full_matrices=False, check_finite=False)
    return Rotation(y, Xf, scale, eigen=(U, sv**2))


def rotate_kernel(K: np.ndarray, y: np.ndarray, Xf: np.ndarray, *, copy: bool = True,
                  on_values: Callable[[np.ndarray], None] | None = None) -> Rotation:
    """Rotation for an n×n positive semi-definite K (its tridiagonalisation, on first use).

    With ``copy=False`` K's memory is reused for the tridiagonal form; ``on_values`` is
    called with K's eigenvalues when they are first computed (before clipping at 0).
    """
    K = np.asarray(K, dtype=float)
    scale = float(np.trace(K)) / len(y)
    return Rotation(y, Xf, scale, kernel=(lambda: K.copy()) if copy else (lambda: K),
                    on_values=on_values)


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
