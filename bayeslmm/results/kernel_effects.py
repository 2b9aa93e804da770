"""The random effects of a rotated model given its parameters: BLUPs, predictions for
new rows, and exact draws from the Gaussian conditional.

For parameters θ = (β, σ_b, σ), ``E[g_new | y, θ] = σ_b² L V⁻¹ (y − X_f β)`` with
``L = Cov(g_new, y)/σ_b²`` (``W_new Wᵀ`` for a random matrix, ``K[new, rows]`` for a
known covariance). In the rotated basis ``σ_b² V⁻¹ (y − X_f β) = U₁ a + M_c c`` with
``a = σ_b² (ỹ − X̃β)/(σ_b² s + σ²)`` (r values) and ``c = (σ_b²/σ²) [−β; 1]``, so a
functional costs ``L U₁`` and ``L M_c`` once, then O(m r) per draw of θ.

Draws of ω (or b) given y use Matheron's rule: with ``ω₀ ~ N(0, σ_b² I)`` and
``e₀ ~ N(0, σ² I)``, ``ω₀ + σ_b² Wᵀ V⁻¹ (y − X_f β − W ω₀ − e₀)`` has exactly the
conditional distribution, at O(n p) a draw and without its p × p covariance.

Examples
--------
>>> import numpy as np
>>> from bayeslmm.linalg.rotation import rotate_matrix
>>> rng = np.random.default_rng(0)
>>> W, Xf = rng.normal(size=(20, 40)), np.ones((20, 1))
>>> y = W @ rng.normal(scale=0.3, size=40) + rng.normal(size=20)
>>> rot = rotate_matrix(W, y, Xf)
>>> a, c = weights(rot, np.array([[0.1]]), np.array([0.3]), np.array([1.0]))
>>> V = 0.09 * W @ W.T + np.eye(20)
>>> blup = W.T @ (rot.U @ a + rot.Mc @ c)[:, 0]
>>> bool(np.allclose(blup, 0.09 * W.T @ np.linalg.solve(V, y - 0.1)))
True
"""

from __future__ import annotations

import numpy as np

from ..formula.kernel_design import KernelDesign
from ..linalg.rotation import Rotation

__all__ = ["weights", "fitted_random", "mean_weight", "functional", "conditional_draws"]


def weights(rot: Rotation, beta: np.ndarray, sd: np.ndarray,
            sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per draw of θ, ``(a, c)`` with ``σ_b² V⁻¹ (y − X_f β) = U₁ a + M_c c``.

    Parameters
    ----------
    beta : ndarray (S, k)
    sd, sigma : ndarray (S,)

    Returns
    -------
    a : ndarray (r, S)
    c : ndarray (k + 1, S)
    """
    beta = np.atleast_2d(np.asarray(beta, float))
    v_b, v_e = np.asarray(sd, float) ** 2, np.asarray(sigma, float) ** 2
    d = v_b[None, :] * rot.s[:, None] + v_e[None, :]
    a = v_b[None, :] * (rot.yt[:, None] - rot.Xt @ beta.T) / d
    c = (v_b / v_e)[None, :] * np.vstack([-beta.T, np.ones(len(v_b))])
    if not rot.n_c:
        c = np.zeros_like(c)
    return a, c


def mean_weight(rot: Rotation, a: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``E_θ[σ_b² V⁻¹ (y − X_f β)]`` over the draws: an n-vector (linear in a, c)."""
    return rot.U @ a.mean(axis=1) + rot.Mc @ c.mean(axis=1)


def fitted_random(rot: Rotation, a: np.ndarray) -> np.ndarray:
    """``E[g | y, θ]`` at the training rows, (n, S): ``K U₁ = U₁ S`` and ``K M_c = 0``."""
    return rot.U @ (rot.s[:, None] * a)


def functional(rot: Rotation, L: np.ndarray, a: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``E[g_new | y, θ]`` per draw, (m, S), for ``L = Cov(g_new, y)/σ_b²`` (m × n)."""
    out = (L @ rot.U) @ a
    if rot.n_c:
        out += (L @ rot.Mc) @ c
    return out


def _solve(rot: Rotation, R: np.ndarray, v_b: np.ndarray, v_e: np.ndarray) -> np.ndarray:
    """``σ_b² V⁻¹ R`` column by column, each column with its own (σ_b², σ²)."""
    P = rot.U.T @ R
    out = rot.U @ (v_b * P / (v_b * rot.s[:, None] + v_e))
    if rot.n_c:
        out += (v_b / v_e) * (R - rot.U @ P)
    return out


def conditional_draws(kd: KernelDesign, beta: np.ndarray, sd: np.ndarray,
                      sigma: np.ndarray, rng: np.random.Generator,
                      root: np.ndarray | None = None) -> np.ndarray:
    """One exact draw of ω (p values) or b (one per level of K) per θ, (S, p or L).

    Parameters
    ----------
    kd : KernelDesign
    beta : ndarray (S, k)
    sd, sigma : ndarray (S,)
    rng : numpy Generator
    root : ndarray, optional
        ``F`` with ``F Fᵀ = K`` (known covariance only); computed if absent.
    """
    rot = kd.rotation
    beta = np.atleast_2d(np.asarray(beta, float))
    v_b, v_e = np.asarray(sd, float) ** 2, np.asarray(sigma, float) ** 2
    S, n = len(v_b), kd.nobs
    if kd.kind == "matrix":
        eff0 = rng.standard_normal((kd.W.shape[1], S)) * np.sqrt(v_b)
        g0 = np.asarray(kd.W @ eff0.astype(kd.W.dtype), dtype=float)
    else:
        if root is None:
            lam, Q = np.linalg.eigh(kd.K)
            root = Q * np.sqrt(np.clip(lam, 0.0, None))
        eff0 = root @ rng.standard_normal((root.shape[1], S)) * np.sqrt(v_b)
        g0 = eff0[kd.codes]
    R = (kd.fixed.y[:, None] - kd.fixed.X @ beta.T - g0
         - rng.standard_normal((n, S)) * np.sqrt(v_e))
    U = _solve(rot, R, v_b, v_e)
    if kd.kind == "matrix":
        upd = np.asarray(kd.W.T @ U.astype(kd.W.dtype), dtype=float)
    else:
        upd = kd.K[:, kd.codes] @ U
    return (eff0 + upd).T
