"""Exact draws of the random effects given the hyper-parameters (after marginal NUTS).

For each posterior draw (β, Ψ, σ), with b = L̃u, u ~ N(0, I) a priori (L̃ the
block-diagonal factor of Ψ̃) and r = y − Xβ:

    u | y ~ N(P⁻¹ L̃ᵀZᵀr, σ² P⁻¹),    P = L̃ᵀZᵀZL̃ + I σ²,

so every b draw is exact, and the pair (hyper-parameters, b) is a draw from the same
joint posterior that the conditional model samples. One grouping factor: P is block
diagonal (one q×q block per level), all levels and draws at once. Several factors: a
dense Cholesky of P per draw.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from .design import Design
from .marginal import MarginalStats

__all__ = ["draw_random_effects", "psi_factor"]


def psi_factor(post: xr.Dataset, group: str, q: int) -> np.ndarray:
    """Per-draw factor L with LLᵀ = Ψ, shape (chain, draw, q, q)."""
    sd = post[f"sd_{group}"].values
    if f"corr_{group}" in post:
        corr = post[f"corr_{group}"].values + 1e-12 * np.eye(q)
        return sd[..., :, None] * np.linalg.cholesky(corr)
    return sd[..., :, None] * np.eye(q)


def _one_factor(stats: MarginalStats, L, beta, sigma, rng) -> np.ndarray:
    """(draws, m, q) exact draws for a single grouping factor, batched over levels.

    The q×q Cholesky and triangular solves are written entry by entry, each entry an
    array over all draws and levels: NumPy's batched ``linalg`` pays a per-matrix
    overhead that dominates for millions of 2×2 blocks.
    """
    q = L.shape[-1]
    zr = stats.Zty[None] - np.einsum("mqp,dp->dmq", stats.ZtX, beta)      # (d, m, q)
    A = stats.ZtZ
    AL = [[sum(A[None, :, k, l] * L[:, l, j, None] for l in range(q)) for j in range(q)]
          for k in range(q)]                                               # (A_j L)[k, j]
    P = {(i, j): sum(L[:, k, i, None] * AL[k][j] for k in range(q))
         for i in range(q) for j in range(i + 1)}                          # (Lᵀ A_j L)[i, j]
    s2 = (sigma**2)[:, None]
    w = [sum(L[:, k, i, None] * zr[..., k] for k in range(q)) for i in range(q)]
    C = [[None] * q for _ in range(q)]
    for i in range(q):
        for j in range(i + 1):
            acc = P[i, j] + (s2 if i == j else 0.0)
            for k in range(j):
                acc = acc - C[i][k] * C[j][k]
            C[i][j] = np.sqrt(acc) if i == j else acc / C[j][j]
    v = []                                   # C v = w
    for i in range(q):
        acc = w[i]
        for k in range(i):
            acc = acc - C[i][k] * v[k]
        v.append(acc / C[i][i])
    # u = P⁻¹w + σ C⁻ᵀε: Cᵀu = v + σε (covariance of the noise part σ²P⁻¹)
    rhs = [v[i] + sigma[:, None] * rng.standard_normal(v[i].shape) for i in range(q)]
    u = [None] * q
    for i in reversed(range(q)):
        acc = rhs[i]
        for k in range(i + 1, q):
            acc = acc - C[k][i] * u[k]
        u[i] = acc / C[i][i]
    return np.stack([sum(L[:, i, j, None] * u[j] for j in range(q)) for i in range(q)], -1)


def _several(stats: MarginalStats, Ls, beta, sigma, rng) -> np.ndarray:
    """(draws, Q) exact joint draws for several factors, a dense P per draw."""
    out = np.empty((len(sigma), stats.ZtZ.shape[0]))
    for d in range(len(sigma)):
        blocks = [np.kron(np.eye(m), L[d]) for m, L in zip(stats.m, Ls, strict=True)]
        Lt = _block_diag(blocks)
        zr = stats.Zty - stats.ZtX @ beta[d]
        P = Lt.T @ stats.ZtZ @ Lt + sigma[d] ** 2 * np.eye(len(zr))
        C = np.linalg.cholesky(P)
        mean = np.linalg.solve(P, Lt.T @ zr)
        noise = np.linalg.solve(C.T, rng.standard_normal(len(zr)))
        out[d] = Lt @ (mean + sigma[d] * noise)
    return out


def _block_diag(blocks: list[np.ndarray]) -> np.ndarray:
    n = sum(b.shape[0] for b in blocks)
    out = np.zeros((n, n))
    k = 0
    for b in blocks:
        out[k:k + b.shape[0], k:k + b.shape[0]] = b
        k += b.shape[0]
    return out


def _whitened(design: Design, rd, post: xr.Dataset, beta, sigma, Ls, rng) -> np.ndarray:
    """With a residual structure the cross-products depend on the draw's residual
    parameters: whiten and recompute them per draw (O(n) each)."""
    from .residual_logp import whiten_design

    nc, nd = post.sizes["chain"], post.sizes["draw"]
    values = {k: post[k].values.reshape(nc * nd, *post[k].shape[2:]) for k in rd.param_names}
    out = []
    for d in range(nc * nd):
        wd = whiten_design(rd, design, {k: v[d] for k, v in values.items()})
        stats = MarginalStats.from_design(wd)
        if len(design.terms) == 1:
            out.append(_one_factor(stats, Ls[0][d:d + 1], beta[d:d + 1], sigma[d:d + 1],
                                   rng).reshape(-1))
        else:
            out.append(_several(stats, [L[d:d + 1] for L in Ls], beta[d:d + 1],
                                sigma[d:d + 1], rng)[0])
    return np.array(out)


def draw_random_effects(design: Design, stats: MarginalStats, post: xr.Dataset,
                        random_seed=None, chunk: int = 500,
                        residual=None) -> dict[str, xr.DataArray]:
    """Draw ``b_<group>`` for every posterior draw; dims ``(chain, draw, group, term)``.

    Draws are processed ``chunk`` at a time to bound the memory of the batched
    factorisations. ``residual`` (a bound residual structure) makes the draws
    account for ``σ²Λ``.
    """
    rng = np.random.default_rng(random_seed)
    nc, nd = post.sizes["chain"], post.sizes["draw"]
    beta = post["beta"].values.reshape(nc * nd, -1)
    sigma = post["sigma"].values.reshape(nc * nd)
    Ls = [psi_factor(post, t.group, t.q).reshape(nc * nd, t.q, t.q) for t in design.terms]
    sizes = [t.n_levels * t.q for t in design.terms]
    flat = np.empty((nc * nd, sum(sizes)))
    if residual is not None:
        flat[:] = _whitened(design, residual, post, beta, sigma, Ls, rng)
    for start in range(0, nc * nd if residual is None else 0, chunk):
        sl = slice(start, min(start + chunk, nc * nd))
        if len(design.terms) == 1:
            flat[sl] = _one_factor(stats, Ls[0][sl], beta[sl], sigma[sl], rng).reshape(
                sl.stop - sl.start, -1)
        else:
            flat[sl] = _several(stats, [L[sl] for L in Ls], beta[sl], sigma[sl], rng)
    out, k = {}, 0
    for t, size in zip(design.terms, sizes, strict=True):
        vals = flat[:, k:k + size].reshape(nc, nd, t.n_levels, t.q)
        k += size
        out[f"b_{t.group}"] = xr.DataArray(
            vals, dims=("chain", "draw", t.group, f"{t.group}_term"),
            coords={"chain": post.chain, "draw": post.draw, t.group: t.levels,
                    f"{t.group}_term": t.term_names})
    return out
