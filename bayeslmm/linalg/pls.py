"""Profiled ML/REML criterion from cross-products: the blocked Cholesky of lme4/MixedModels.jl.

With Λ(θ) the relative covariance factor (:mod:`bayeslmm.linalg.theta`) and
A = [Z X y]ᵀ[Z X y], the lower Cholesky factor L of Λ̃ᵀAΛ̃ + diag(I, 0, 0) gives
(Bates et al. 2015) log|ΛᵀZᵀZΛ + I| and log|R_X|² from its diagonal, the penalised
residual sum of squares as its last diagonal entry squared, and β̂ and the conditional
modes by back-substitution. The first factor's block is block-diagonal (one q₁×q₁
Cholesky per level, batched); the others are a dense Schur complement
Λᵀ(A_rr − A_r1 G A_1r)Λ + I, G = blockdiag(Λ₁ M_j⁻¹ Λ₁ᵀ), built with a sparse product.
No evaluation touches the n rows.

Examples
--------
>>> import bayeslmm as blm
>>> from bayeslmm.formula.design import build_design
>>> d = build_design("Reaction ~ Days + (Days | Subject)", blm.datasets.load("sleepstudy"))
>>> pls = PLS.from_design(d)
>>> round(pls.objective([0.9667, 0.0152, 0.2309], reml=True), 3)
1743.628
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp

from .crossprod import CrossProducts
from .theta import ThetaLayout

__all__ = ["PLS", "Factorization", "Solution"]

_LOG2PI1 = 1.0 + np.log(2.0 * np.pi)


@dataclass(frozen=True)
class Factorization:
    """The blocked Cholesky at one θ (internal pieces kept for :meth:`PLS.solution`)."""

    lambdas: list[np.ndarray]
    G: np.ndarray          # (m₁,) if q₁ = 1 else (m₁, q₁, q₁): Λ₁ M_j⁻¹ Λ₁ᵀ
    Minv: np.ndarray       # M_j⁻¹, M_j = Λ₁ᵀZ₁ⱼᵀZ₁ⱼΛ₁ + I, same shapes as G
    logdet1: float         # log|M_j| summed over the first factor's levels
    L: np.ndarray | None   # lower Cholesky of the Schur complement, (r × r); None if not PD


@dataclass(frozen=True)
class Solution:
    """Estimates at θ with β and σ profiled out.

    Attributes
    ----------
    beta : ndarray (p,)
    sigma : float
    vcov : ndarray (p, p)
        σ̂² (XᵀV̂⁻¹X)⁻¹.
    b, b_sd : list of ndarray (levels, q)
        Conditional modes and conditional sds of each factor, in design order.
    criterion : float
        −2 × (REML) log-likelihood.
    pwrss : float
        Penalised weighted residual sum of squares.
    """

    beta: np.ndarray
    sigma: float
    vcov: np.ndarray
    b: list[np.ndarray]
    b_sd: list[np.ndarray]
    criterion: float
    pwrss: float


class PLS:
    """Evaluate the profiled criterion of one design at any θ.

    Parameters
    ----------
    cp : CrossProducts
    layout : ThetaLayout
        θ layout over the design's terms (in design order).
    """

    def __init__(self, cp: CrossProducts, layout: ThetaLayout):
        self.cp = cp
        self.layout = layout
        self._rest_diag = all(q == 1 for q in cp.q[1:])
        self._m1q1 = cp.m[0] * cp.q[0] if cp.q else 0
        # small cases: dense products beat scipy.sparse's per-call overhead
        self._c1z_dense = (cp.C1z.toarray()
                           if cp.rz and self._m1q1 * cp.rz * max(cp.rz, 50) <= 2e7 else None)
        lay = layout
        self._lam_index = [(np.flatnonzero(lay.term == k), lay.row[lay.term == k],
                            lay.col[lay.term == k]) for k in range(len(lay.q))]

    def lambdas(self, theta: Sequence[float]) -> list[np.ndarray]:
        """The Λ_k of each factor at θ (design order)."""
        theta = np.asarray(theta, dtype=float)
        out = []
        for q, (idx, r, c) in zip(self.layout.q, self._lam_index, strict=True):
            lam = np.zeros((q, q))
            lam[r, c] = theta[idx]
            out.append(lam)
        return out

    @classmethod
    def from_design(cls, design) -> PLS:
        """Build cross-products and θ layout of a design."""
        return cls(CrossProducts.from_design(design), ThetaLayout.from_terms(design.terms))

    # -- Λ of the factors after the first, applied to the dense rest block -------------
    def _lambda_rest(self, lambdas: list[np.ndarray]):
        """Λ_z as a vector (all q = 1) or a sparse block-diagonal matrix."""
        cp = self.cp
        lams = [lambdas[k] for k in cp.order[1:]]
        if self._rest_diag:
            return np.concatenate([np.full(m, lam[0, 0]) for lam, m in zip(lams, cp.m[1:],
                                                                             strict=True)])
        return sp.block_diag([sp.kron(sp.eye(m), lam) for lam, m in zip(lams, cp.m[1:],
                                                                        strict=True)],
                             format="csr")

    def _scale_rest(self, B: np.ndarray, lz) -> np.ndarray:
        rz = self.cp.rz
        if rz == 0:
            return B
        if self._rest_diag:
            d = np.concatenate([lz, np.ones(B.shape[0] - rz)])
            return B * d[:, None] * d[None, :]
        lr = sp.block_diag([lz, sp.eye(B.shape[0] - rz)], format="csr")
        return np.asarray(lr.T @ np.asarray(lr.T @ B).T)

    def _g_sparse(self, G: np.ndarray) -> sp.spmatrix:
        """blockdiag(G_j) as a sparse matrix."""
        if G.ndim == 1:
            return sp.diags(G)
        m1 = G.shape[0]
        return sp.bsr_matrix((G, np.arange(m1), np.arange(m1 + 1))).tocsr()

    def ctgc(self, W: np.ndarray) -> np.ndarray:
        """Cᵀ blockdiag(W_j) C for C = Z₁ᵀ[Z_rest X y] (r × r); W as :attr:`Factorization.G`."""
        cp = self.cp
        rz = cp.rz
        WC = W[:, None, None] * cp.C1xy if W.ndim == 1 else W @ cp.C1xy
        r = cp.Arr.shape[0]
        out = np.empty((r, r))
        out[rz:, rz:] = np.einsum("jab,jac->bc", cp.C1xy, WC)
        if rz:
            cz = self._c1z_dense
            if cz is not None:
                wcz = (W[:, None] * cz if W.ndim == 1 else
                       (W @ cz.reshape(cp.m[0], cp.q[0], rz)).reshape(self._m1q1, rz))
                out[:rz, :rz] = cz.T @ wcz
            else:
                cz = cp.C1z
                out[:rz, :rz] = (cz.T @ (self._g_sparse(W) @ cz)).toarray()
            zx = cz.T @ WC.reshape(self._m1q1, -1)
            out[:rz, rz:] = zx
            out[rz:, :rz] = zx.T
        return out

    def factor(self, theta: Sequence[float]) -> Factorization:
        """Blocked Cholesky factorisation at θ."""
        cp = self.cp
        lambdas = self.lambdas(theta)
        if not cp.order:
            B, G, Minv, logdet1 = cp.Arr.copy(), np.zeros(0), np.zeros(0), 0.0
        else:
            lam1 = lambdas[cp.order[0]]
            if cp.q[0] == 1:
                l2 = lam1[0, 0] ** 2
                M = l2 * cp.A11[:, 0, 0] + 1.0
                logdet1 = float(np.sum(np.log(M)))
                Minv = 1.0 / M
                G = l2 * Minv
            else:
                M = lam1.T @ cp.A11 @ lam1 + np.eye(cp.q[0])
                logdet1 = float(2.0 * np.sum(np.log(np.diagonal(np.linalg.cholesky(M),
                                                                axis1=1, axis2=2))))
                Minv = np.linalg.inv(M)
                G = lam1 @ Minv @ lam1.T
            B = cp.Arr - self.ctgc(G)
        rz = cp.rz
        S = self._scale_rest(B, self._lambda_rest(lambdas) if rz else None)
        S[np.arange(rz), np.arange(rz)] += 1.0
        try:
            L = sla.cholesky(S, lower=True, check_finite=False)
        except np.linalg.LinAlgError:
            L = None
        if L is not None and not np.all(np.isfinite(np.diag(L))):
            L = None
        return Factorization(lambdas, G, Minv, logdet1, L)

    def _criterion(self, f: Factorization, reml: bool) -> float:
        if f.L is None:
            return np.inf
        cp = self.cp
        n, p, rz = cp.n, cp.p, cp.rz
        d = np.diag(f.L)
        pwrss = d[-1] ** 2
        if pwrss <= 0.0 or np.any(d[:-1] <= 0.0):
            return np.inf
        ld = f.logdet1 + 2.0 * np.sum(np.log(d[:rz]))
        if not reml:
            return float(ld + n * (_LOG2PI1 + np.log(pwrss / n)))
        ldx = 2.0 * np.sum(np.log(d[rz:rz + p]))
        return float(ld + ldx + (n - p) * (_LOG2PI1 + np.log(pwrss / (n - p))))

    def parts(self, theta: Sequence[float],
              f: Factorization | None = None) -> tuple[float, float, float]:
        """log|ΛᵀZᵀZΛ + I|, log|R_X|² and the penalised residual sum of squares at θ
        (infinite where the system is not positive definite); ``f``: its factorisation,
        if already made.

        Examples
        --------
        >>> import bayeslmm as blm
        >>> from bayeslmm.formula.design import build_design
        >>> d = build_design("Yield ~ 1 + (1 | Batch)", blm.datasets.load("Dyestuff"))
        >>> [round(v, 3) for v in PLS.from_design(d).parts([0.8])]
        [8.611, 1.966, 72248.452]
        """
        f = self.factor(theta) if f is None else f
        if f.L is None:
            return np.inf, np.inf, np.inf
        rz, p = self.cp.rz, self.cp.p
        d = np.diag(f.L)
        if d[-1] <= 0.0 or np.any(d[:-1] <= 0.0):
            return np.inf, np.inf, np.inf
        ld = f.logdet1 + 2.0 * np.sum(np.log(d[:rz]))
        return float(ld), float(2.0 * np.sum(np.log(d[rz:rz + p]))), float(d[-1] ** 2)

    def deviance(self, theta: Sequence[float], sigma: float, reml: bool = False) -> float:
        """−2 (REML) log-likelihood at θ and a given σ, β at its estimate given θ.

        lme4's ``devfun2`` (ML) and lmerTest's ``devfun_vp`` (ML or REML): the
        criterion before σ is profiled out; at σ̂(θ) it equals :meth:`objective`.

        Examples
        --------
        >>> import bayeslmm as blm
        >>> from bayeslmm.formula.design import build_design
        >>> pls = PLS.from_design(build_design("Yield ~ 1 + (1 | Batch)",
        ...                                    blm.datasets.load("Dyestuff")))
        >>> s = float(np.sqrt(pls.parts([0.8])[2] / 30))     # σ̂(θ) for ML
        >>> bool(np.isclose(pls.deviance([0.8], s), pls.objective([0.8])))
        True
        """
        ld, ldx, pwrss = self.parts(theta)
        if not np.isfinite(pwrss) or sigma <= 0.0:
            return np.inf
        s2 = float(sigma) ** 2
        n, p = self.cp.n, self.cp.p
        dev = ld + pwrss / s2 + n * np.log(2.0 * np.pi * s2)
        if reml:
            dev += ldx - p * np.log(2.0 * np.pi * s2)
        return float(dev)

    def beta_cov(self, theta: Sequence[float]) -> np.ndarray:
        """(XᵀV₀⁻¹X)⁻¹ at θ, V₀ = I + ZΛΛᵀZᵀ: vcov(β̂) is σ² times it.

        Examples
        --------
        >>> import bayeslmm as blm
        >>> from bayeslmm.formula.design import build_design
        >>> pls = PLS.from_design(build_design("Yield ~ 1 + (1 | Batch)",
        ...                                    blm.datasets.load("Dyestuff")))
        >>> s = pls.solution([0.8], reml=True)
        >>> bool(np.allclose(s.sigma ** 2 * pls.beta_cov([0.8]), s.vcov))
        True
        """
        f = self.factor(theta)
        if f.L is None:
            raise np.linalg.LinAlgError("The penalised system is not positive definite at θ.")
        rz, p = self.cp.rz, self.cp.p
        lxx_inv = sla.solve_triangular(f.L[rz:rz + p, rz:rz + p], np.eye(p), lower=True,
                                       check_finite=False)
        return lxx_inv.T @ lxx_inv

    def objective(self, theta: Sequence[float], reml: bool = False) -> float:
        """lme4's deviance (ML) or REML criterion at θ; ``inf`` where it is undefined."""
        return self._criterion(self.factor(theta), reml)

    def objective_and_gradient(self, theta: Sequence[float],
                               reml: bool = False) -> tuple[float, np.ndarray]:
        """The criterion and its analytic gradient in θ (:mod:`~bayeslmm.linalg.pls_gradient`)."""
        from .pls_gradient import gradient

        f = self.factor(theta)
        val = self._criterion(f, reml)
        if not np.isfinite(val) or self.layout.size == 0:
            return val, np.zeros(self.layout.size)
        return val, gradient(self, np.asarray(theta, dtype=float), f, val, reml)

    def solution(self, theta: Sequence[float], reml: bool = False) -> Solution:
        """β̂, σ̂, vcov(β̂), conditional modes and sds at θ.

        Examples
        --------
        >>> import bayeslmm as blm
        >>> from bayeslmm.formula.design import build_design
        >>> d = build_design("Yield ~ 1 + (1 | Batch)", blm.datasets.load("Dyestuff"))
        >>> s = PLS.from_design(d).solution([0.8], reml=True)
        >>> round(float(s.beta[0]), 2), s.b[0].shape
        (1527.5, (6, 1))
        """
        cp = self.cp
        f = self.factor(theta)
        if f.L is None:
            raise np.linalg.LinAlgError("The penalised system is not positive definite at θ.")
        n, p, rz = cp.n, cp.p, cp.rz
        L = f.L
        pwrss = float(L[-1, -1] ** 2)
        sigma = float(np.sqrt(pwrss / (n - p if reml else n)))
        x = sla.solve_triangular(L[:-1, :-1], L[-1, :-1], trans="T", lower=True,
                                 check_finite=False)
        beta = x[rz:]
        lxx = L[rz:rz + p, rz:rz + p]
        lxx_inv = sla.solve_triangular(lxx, np.eye(p), lower=True, check_finite=False)
        vcov = sigma**2 * lxx_inv.T @ lxx_inv
        b_sorted, sd_sorted = [], []
        if cp.order:
            lz = self._lambda_rest(f.lambdas) if rz else None
            b_rest = (lz * x[:rz] if self._rest_diag else lz @ x[:rz]) if rz else np.zeros(0)
            # first factor: b₁ⱼ = G_j Z₁ⱼᵀ(y − Xβ − Z_rest b_rest)
            r1 = np.einsum("jac,c->ja", cp.C1xy, np.append(-beta, 1.0))
            r1 = r1 - (cp.C1z @ b_rest).reshape(r1.shape)
            G = f.G
            if G.ndim == 1:
                b1, var1 = G[:, None] * r1, G[:, None].copy()
            else:
                b1 = np.einsum("jab,jb->ja", G, r1)
                var1 = np.diagonal(G, axis1=1, axis2=2).copy()
            if rz:
                # Var(b_rest | y) ∝ Λ_z S⁻¹ Λ_zᵀ with S = L_zz L_zzᵀ: W = L_zz⁻¹ Λ_zᵀ
                linv = sla.solve_triangular(L[:rz, :rz], np.eye(rz), lower=True,
                                            check_finite=False)
                W = linv * lz[None, :] if self._rest_diag else np.asarray((lz @ linv.T).T)
                var_rest = np.sum(W**2, axis=0)
                Ht = np.asarray(self._g_sparse(G).T @ cp.C1z @ W.T)  # (m₁q₁ × rz)
                var1 = var1 + np.sum(Ht**2, axis=1).reshape(var1.shape)
            b_sorted.append(b1)
            sd_sorted.append(sigma * np.sqrt(np.clip(var1, 0.0, None)))
            for k, off in enumerate(cp.offsets[:-1]):
                size = cp.m[k + 1] * cp.q[k + 1]
                shape = (cp.m[k + 1], cp.q[k + 1])
                b_sorted.append(b_rest[off:off + size].reshape(shape))
                sd_sorted.append(sigma * np.sqrt(np.clip(var_rest[off:off + size], 0.0,
                                                         None)).reshape(shape))
        b = [np.zeros(0)] * len(cp.order)
        b_sd = [np.zeros(0)] * len(cp.order)
        for pos, k in enumerate(cp.order):
            b[k], b_sd[k] = b_sorted[pos], sd_sorted[pos]
        return Solution(beta, sigma, vcov, b, b_sd, self._criterion(f, reml), pwrss)
