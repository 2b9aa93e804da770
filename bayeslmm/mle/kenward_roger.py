"""Kenward–Roger's adjusted covariance of β̂ and denominator degrees of freedom, as
pbkrtest computes them (``vcovAdj``, ``Lb_ddf``, ``KRmodcomp``), for REML fits with iid
residuals.

The covariance of y is Σ = Σ_r γ_r G_r: γ the entries of each random-effect term's
covariance matrix (lower triangle) and σ², G_r = Z E_r Zᵀ (E_r the pattern of γ_r,
repeated over the levels) and G_σ² = I. With W = Σ⁻¹ and Φ = vcov(β̂),

    P_r = −XᵀWG_rWX,  Q_rs = XᵀWG_rWG_sWX,  I_rs = tr(WG_rWG_s) − 2tr(ΦQ_rs) + tr(ΦP_rΦP_s),
    Ŵ = 2 I⁻¹,  Φ_A = Φ + 2Φ [Σ_rs Ŵ_rs (Q_rs − P_rΦP_s)] Φ.

None of it needs the n × n matrices: with Ψ = σ²Λ̃Λ̃ᵀ, K = Λ̃ᵀZᵀZΛ̃ + I and
G = Λ̃K⁻¹Λ̃ᵀ, W = σ⁻²(I − ZGZᵀ) (Woodbury), so ZᵀWZ, ZᵀWX, XᵀWX, ZᵀW²Z, ZᵀW²X, XᵀW²X,
XᵀW³X and tr W² are all Q × Q algebra on ZᵀZ, ZᵀX and XᵀX (Q random effects).

Examples
--------
>>> import bayeslmm as blm
>>> m = blm.LMM("Reaction ~ Days + (Days | Subject)", blm.datasets.load("sleepstudy"))
>>> fit = m.fit_map()
>>> kr = KenwardRoger(m.design, fit.theta.to_numpy(), fit.sigma)
>>> round(kr.ddf_1d(np.array([0.0, 1.0])), 4)   # pbkrtest: 17
17.0
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.stats import f as f_dist

from ..errors import FitError
from ..linalg.crossprod import sparse_z
from ..linalg.theta import ThetaLayout

__all__ = ["KenwardRoger", "MAX_RANDOM_EFFECTS"]

#: Largest number of random effects Q for which the Q × Q algebra is attempted.
MAX_RANDOM_EFFECTS = 5000


def _patterns(design) -> list[sp.csr_matrix]:
    """E_r of each covariance entry γ_r: a term's (i, j) entry, repeated over its levels."""
    Q = sum(t.n_levels * t.q for t in design.terms)
    out, offset = [], 0
    for t in design.terms:
        base = offset + np.arange(t.n_levels) * t.q
        for block in t.blocks:
            for jj, j in enumerate(block):
                for i in block[jj:]:
                    rows = base + i if i == j else np.concatenate([base + i, base + j])
                    cols = base + j if i == j else np.concatenate([base + j, base + i])
                    out.append(sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(Q, Q)))
        offset += t.n_levels * t.q
    return out


class KenwardRoger:
    """pbkrtest's ``vcovAdj`` of a REML fit, and its F tests (see module docstring).

    Parameters
    ----------
    design : Design
    theta : ndarray
        lme4's θ at the REML estimate.
    sigma : float

    Attributes
    ----------
    vcov : ndarray (p, p)
        Φ = vcov(β̂).
    vcov_adj : ndarray (p, p)
        Φ_A, the adjusted covariance (pbkrtest's ``vcovAdj``).
    """

    def __init__(self, design, theta: np.ndarray, sigma: float):
        Z = sp.hstack([sparse_z(t) for t in design.terms], format="csr") if design.terms \
            else sp.csr_matrix((design.nobs, 0))
        Q = Z.shape[1]
        if Q > MAX_RANDOM_EFFECTS:
            raise FitError(f"Kenward–Roger needs {Q} × {Q} dense matrices ({Q} random "
                           f"effects, more than {MAX_RANDOM_EFFECTS}); use "
                           "ddf='Satterthwaite'.")
        X, n = design.X, design.nobs
        lam = sp.block_diag([sp.kron(sp.eye(t.n_levels), sp.csr_matrix(L))
                             for t, L in zip(design.terms,
                                             ThetaLayout.from_terms(design.terms).lambdas(theta),
                                             strict=True)], format="csr") if Q else None
        Szz = (Z.T @ Z).toarray()
        Szx = np.asarray(Z.T @ X)
        Sxx = X.T @ X
        s2 = sigma**2
        if Q:
            lamd = lam.toarray()
            K = lamd.T @ Szz @ lamd + np.eye(Q)
            G = lamd @ np.linalg.solve(K, lamd.T)
        else:
            G = np.zeros((0, 0))
        R = np.eye(Q) - Szz @ G
        RSzx = R @ Szx
        A = R @ Szz / s2                       # ZᵀWZ
        B = RSzx / s2                          # ZᵀWX
        A2 = R @ Szz @ R.T / s2**2             # ZᵀW²Z
        B2 = R @ RSzx / s2**2                  # ZᵀW²X
        GSzx = G @ Szx
        C2 = (Sxx - 2 * Szx.T @ GSzx + GSzx.T @ Szz @ GSzx) / s2**2    # XᵀW²X
        C3 = (C2 * s2**2 - RSzx.T @ G @ RSzx) / s2**3                # XᵀW³X
        GS = G @ Szz
        trW2 = (n - 2 * np.trace(GS) + np.sum(GS * GS.T)) / s2**2
        Phi = np.linalg.inv((Sxx - Szx.T @ GSzx) / s2)
        E = _patterns(design)
        nr = len(E)
        EA = [Er @ A for Er in E]
        EB = [Er @ B for Er in E]
        P = [-B.T @ eb for eb in EB] + [-C2]
        Qm: dict[tuple[int, int], np.ndarray] = {}
        kt = np.empty((nr + 1, nr + 1))
        for r in range(nr):
            for s in range(r, nr):
                Qm[r, s] = B.T @ (E[r] @ (A @ EB[s]))
                kt[r, s] = kt[s, r] = np.sum(EA[r] * EA[s].T)
            Qm[r, nr] = EB[r].T @ B2
            kt[r, nr] = kt[nr, r] = (E[r].multiply(A2)).sum()
        Qm[nr, nr] = C3
        kt[nr, nr] = trW2
        m = nr + 1
        info = np.empty((m, m))
        for i in range(m):
            for j in range(i, m):
                info[i, j] = info[j, i] = (kt[i, j] - 2 * np.sum(Phi * Qm[i, j])
                                           + np.sum((Phi @ P[i]) * (P[j] @ Phi)))
        cond = np.min(np.abs(np.linalg.eigvalsh(info)))
        Wm = 2 * (np.linalg.inv(info) if cond > 1e-10 else np.linalg.pinv(info))
        U = np.zeros_like(Phi)
        for i in range(m - 1):
            for j in range(i + 1, m):
                U += Wm[i, j] * (Qm[i, j] - P[i] @ Phi @ P[j])
        U = U + U.T
        for i in range(m):
            U += Wm[i, i] * (Qm[i, i] - P[i] @ Phi @ P[i])
        self.vcov = Phi
        self.vcov_adj = Phi + 2 * Phi @ U @ Phi
        self._P, self._W = P, Wm

    def _a12(self, theta_phi: np.ndarray) -> tuple[float, float]:
        A1 = A2 = 0.0
        m = len(self._P)
        u = [theta_phi @ P @ self.vcov for P in self._P]
        tr = [np.trace(x) for x in u]
        for i in range(m):
            for j in range(i, m):
                e = 1.0 if i == j else 2.0
                A1 += e * self._W[i, j] * tr[i] * tr[j]
                A2 += e * self._W[i, j] * np.sum(u[i] * u[j].T)
        return A1, A2

    def ddf_1d(self, L: np.ndarray) -> float:
        """Denominator df of a one-row contrast (pbkrtest's ``Lb_ddf``)."""
        return self.f_test(np.atleast_2d(L), np.zeros(self.vcov.shape[0]))["ddf"]

    def f_test(self, L: np.ndarray, beta: np.ndarray,
               rhs: np.ndarray | None = None) -> dict[str, float]:
        """pbkrtest's ``KRmodcomp`` of H₀: Lβ = rhs: scaled F, unscaled F, ndf, ddf,
        F scaling and p (from the scaled F)."""
        L = np.atleast_2d(np.asarray(L, dtype=float))
        Phi = self.vcov
        theta = L.T @ np.linalg.solve(L @ Phi @ L.T, L)
        A1, A2 = self._a12(theta @ Phi)
        q = np.linalg.matrix_rank(L)
        B = (A1 + 6 * A2) / (2 * q)
        g = ((q + 1) * A1 - (q + 4) * A2) / ((q + 2) * A2)
        c1 = g / (3 * q + 2 * (1 - g))
        c2 = (q - g) / (3 * q + 2 * (1 - g))
        c3 = (q + 2 - g) / (3 * q + 2 * (1 - g))
        v0, v1, v2 = 1 + c1 * B, 1 - c2 * B, 1 - c3 * B
        v0 = 0.0 if abs(v0) < 1e-10 else v0
        x, y = 1 - A2 / q, v1
        ratio = 1.0 if abs(x) < 1e-14 and abs(y) < 1e-14 else x / y
        rho = ratio**2 * v0 / (q * v2)
        ddf = 4 + (q + 2) / (q * rho - 1)
        scaling = 1.0 if abs(ddf - 2) < 1e-2 else ddf * (1 - A2 / q) / (ddf - 2)
        diff = L @ np.asarray(beta, dtype=float) - (0.0 if rhs is None else np.asarray(rhs))
        F_u = float(diff @ np.linalg.solve(L @ self.vcov_adj @ L.T, diff)) / q
        F = scaling * F_u
        return {"F": F, "F_unscaled": F_u, "ndf": int(q), "ddf": float(ddf),
                "F_scaling": float(scaling), "p": float(f_dist.sf(F, q, ddf))}
