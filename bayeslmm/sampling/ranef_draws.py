"""Exact draws of the random effects given the hyper-parameters (after marginal NUTS).

For each posterior draw (β, Ψ, σ), with b = L̃u, u ~ N(0, I) a priori (L̃ the
block-diagonal factor of Ψ̃) and r = y − Xβ:

    u | y ~ N(P⁻¹ L̃ᵀZᵀr, σ² P⁻¹),    P = L̃ᵀZᵀZL̃ + I σ²,

so every b draw is exact, and the pair (hyper-parameters, b) is a draw from the same
joint posterior that the conditional model samples. One grouping factor: P is block
diagonal (one q×q block per level), all levels and draws at once. Several factors: the
blocked Cholesky factor of P per draw (:mod:`bayeslmm.linalg.blocked_draws`), with a
residual structure's statistics combined per draw on their blocked pattern.

The draws come a block at a time (:class:`RanefBlocks`: one chain's run of at most
``chunk`` draws), each block with its own noise stream, so a block drawn alone, later,
gives the numbers it has among all the draws (b drawn on demand,
:mod:`bayeslmm.sampling.lazy_ranef`).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
import xarray as xr

from ..formula.design import Design
from ..linalg.blocked_draws import blocked_draw
from ..linalg.blocked_layout import blocked_arrays, blocked_stacks
from ..linalg.crossprod import CrossProducts, factor_order
from ..linalg.small_q_draws import small_q_draws
from ..linalg.small_q_kernel import SMALL_Q, soa_arrays
from ..residual.sufficient import statistics
from ..results.predict import psi_factor

__all__ = ["draw_random_effects"]


def _one_factor(A11, C1xy, coef, L, beta, sigma, rng, out=None, buf=None) -> np.ndarray:
    """(draws, m, q) exact draws for a single grouping factor (into ``out`` if given; the
    noise into ``buf``, a flat float64 array of at least q·draws·m values, if given: one
    buffer for every chunk, not a fresh 80 MB of pages a chunk).

    One compiled loop over draws (in parallel) and levels, a q×q Cholesky and two
    triangular solves per level: NumPy, batched or entry by entry over arrays, spent
    19 s on 4,000 draws × 20,000 levels, mostly moving temporaries through memory.
    The loop releases the GIL and runs on one thread per core, chunks of draws each
    (a ``parallel=True`` loop cost 4–12 s of compilation on a user's first fit).
    The noise is NumPy's, drawn in the order of the former NumPy code. ``A11``, ``C1xy``
    are stacks (K, m, …) of cross-products, combined per draw with ``coef`` (draws, K):
    K = 1 and coefficients 1 for iid residuals, a structure's statistics otherwise.
    With iid residuals and q ≤ 2 the closed-form loop of
    :mod:`bayeslmm.linalg.small_q_draws` runs (~10× fewer CPU seconds).
    """
    q = L.shape[-1]
    m, p = A11.shape[1], C1xy.shape[-1] - 1
    shape = (q, len(sigma), m)
    if buf is None:
        eps = rng.standard_normal(shape)
    else:  # the same values as above (NumPy fills ``out`` in the same order)
        eps = buf[:q * len(sigma) * m].reshape(shape)
        rng.standard_normal(out=eps)
    if out is None:
        out = np.empty((len(sigma), m, q))
    L = np.ascontiguousarray(L, dtype=float)
    beta, sigma = np.ascontiguousarray(beta, dtype=float), np.ascontiguousarray(sigma, float)
    if q in SMALL_Q and A11.shape[0] == 1 and np.all(coef == 1.0):
        zz_s, zx_s = soa_arrays(A11[0], C1xy[0])

        def kernel(lo, hi):
            small_q_draws(lo, hi, L, beta, sigma, zz_s, zx_s, eps, out)
    else:
        args = (L, beta, sigma, np.ascontiguousarray(coef, dtype=float),
                np.ascontiguousarray(A11), np.ascontiguousarray(C1xy[..., :p]),
                np.ascontiguousarray(C1xy[..., p]), eps, out)

        def kernel(lo, hi):
            _one_factor_kernel(lo, hi, *args)
    nd = len(sigma)
    workers = max(1, min(os.cpu_count() or 1, nd))
    cuts = np.linspace(0, nd, workers + 1).astype(int)
    if workers == 1:
        kernel(0, nd)
    else:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(lambda k: kernel(cuts[k], cuts[k + 1]), range(workers)))
    return out


@numba.njit(cache=True, nogil=True)
def _one_factor_kernel(lo, hi, L, beta, sigma, coef, ZtZ, ZtX, Zty, eps,
                       out):  # pragma: no cover
    q = L.shape[1]
    K, m, p = ZtX.shape[0], ZtX.shape[1], ZtX.shape[3]
    for d in range(lo, hi):
        C = np.zeros((q, q))
        AL = np.empty((q, q))
        A = np.empty((q, q))
        zr, v, u = np.empty(q), np.empty(q), np.empty(q)
        s2 = sigma[d] ** 2
        for j in range(m):
            for k in range(q):                       # Zⱼᵀr = Zⱼᵀy − ZⱼᵀX β, Aⱼ = ZⱼᵀZⱼ
                acc = 0.0
                for s in range(K):
                    part = Zty[s, j, k]
                    for c in range(p):
                        part -= ZtX[s, j, k, c] * beta[d, c]
                    acc += coef[d, s] * part
                zr[k] = acc
                for t in range(q):
                    acc = 0.0
                    for s in range(K):
                        acc += coef[d, s] * ZtZ[s, j, k, t]
                    A[k, t] = acc
            for k in range(q):                       # Aⱼ L
                for c in range(q):
                    acc = 0.0
                    for t in range(q):
                        acc += A[k, t] * L[d, t, c]
                    AL[k, c] = acc
            for a in range(q):                       # C Cᵀ = Lᵀ Aⱼ L + σ² I
                for c in range(a + 1):
                    acc = s2 if a == c else 0.0
                    for k in range(q):
                        acc += L[d, k, a] * AL[k, c]
                    for k in range(c):
                        acc -= C[a, k] * C[c, k]
                    C[a, c] = np.sqrt(acc) if a == c else acc / C[c, c]
            for a in range(q):                       # C v = Lᵀ Zⱼᵀr
                acc = 0.0
                for k in range(q):
                    acc += L[d, k, a] * zr[k]
                for k in range(a):
                    acc -= C[a, k] * v[k]
                v[a] = acc / C[a, a]
            for a in range(q - 1, -1, -1):           # Cᵀ u = v + σ ε
                acc = v[a] + sigma[d] * eps[a, d, j]
                for k in range(a + 1, q):
                    acc -= C[k, a] * u[k]
                u[a] = acc / C[a, a]
            for a in range(q):                       # b = L u
                acc = 0.0
                for c in range(q):
                    acc += L[d, a, c] * u[c]
                out[d, j, a] = acc


def _several(cp: CrossProducts, Ls, beta, sigma, rng, stacks=None) -> np.ndarray:
    """(draws, Q) exact joint draws for several factors by the blocked Cholesky factor
    (:mod:`bayeslmm.linalg.blocked_draws`); factors (and ``Ls``) in the cross-products'
    order. ``stacks``: ``(layout, values, coef)`` of a residual structure's statistics
    (:func:`~bayeslmm.linalg.blocked_layout.blocked_stacks`, coefficients (draws, K)),
    whose values are combined per draw on the layout's pattern; ``cp`` then gives only
    the factors' q and levels."""
    arrays = blocked_arrays(cp) if stacks is None else stacks[0]
    Q = sum(q * m for q, m in zip(cp.q, cp.m, strict=True))
    qmax = max(cp.q)
    nd = len(sigma)
    out = np.empty((nd, Q))
    packed = np.zeros((nd, len(cp.q), qmax, qmax))
    for k, L in enumerate(Ls):
        packed[:, k, :cp.q[k], :cp.q[k]] = L
    eps = rng.standard_normal((nd, Q))  # the same stream as one call per draw

    def of(d: int) -> dict:
        if stacks is None:
            return arrays
        _, values, coef = stacks
        return {**arrays, **{k: np.tensordot(coef[d], v, axes=1) for k, v in values.items()
                             if k != "a21d"}}

    def run(lo: int, hi: int) -> None:
        for d in range(lo, hi):
            out[d] = blocked_draw(of(d), beta[d], sigma[d], packed[d], cp.q, eps[d])

    workers = max(1, min(os.cpu_count() or 1, nd))
    cuts = np.linspace(0, nd, workers + 1).astype(int)
    with ThreadPoolExecutor(workers) as pool:  # the kernel releases the GIL
        list(pool.map(lambda k: run(cuts[k], cuts[k + 1]), range(workers)))
    return out


def _whitened(design: Design, rd, values: dict, beta, sigma, Ls, rng) -> np.ndarray:
    """With a residual structure the cross-products depend on the draw's residual
    parameters: whiten and recompute them per draw (O(n) each); ``values``: the
    residual parameters' draws, flat like ``beta``."""
    from ..residual.algebra import whiten_design

    out = []
    for d in range(len(sigma)):
        wd = whiten_design(rd, design, {k: v[d] for k, v in values.items()})
        cp = CrossProducts.from_design(wd)
        if len(design.terms) == 1:
            out.append(_one_factor(cp.A11[None], cp.C1xy[None], np.ones((1, 1)),
                                   Ls[0][d:d + 1], beta[d:d + 1], sigma[d:d + 1],
                                   rng).reshape(-1))
        else:
            out.append(_several(cp, [Ls[k][d:d + 1] for k in cp.order], beta[d:d + 1],
                                sigma[d:d + 1], rng)[0])
    return np.array(out).reshape(len(sigma), -1)


def _stacks(design: Design, cp: CrossProducts | None, rd, post: xr.Dataset):
    """The cross-products as stacks (K, …) and each draw's coefficients (draws, K): the
    plain ones (K = 1), or a residual structure's statistics (None for a structure
    bound to its rows)."""
    nc, nd = post.sizes["chain"], post.sizes["draw"]
    if rd is None:
        parts, coef = [cp], np.ones((nc * nd, 1))
    elif (stats := statistics(design, rd)) is not None:
        values = {k: post[k].values.reshape(nc * nd, *post[k].shape[2:])
                  for k in rd.param_names}
        parts = list(stats.parts)
        coef = np.array([stats.coefficients({k: v[d] for k, v in values.items()})
                         for d in range(nc * nd)])
    else:
        return None
    if len(design.terms) == 1:
        return (np.stack([c.A11 for c in parts]), np.stack([c.C1xy for c in parts])), coef
    if rd is None:  # the blocked draws read ``cp`` itself
        return (None, None), coef
    return blocked_stacks(parts), coef


class RanefBlocks:
    """What the b draws need, drawn a block of draws at a time: block ``(c, j)`` holds
    chain ``c``'s draws ``[j·width, (j + 1)·width)`` and has its own noise stream
    (spawn key ``(c, j)`` of ``random_seed``), so any block can be drawn alone, in any
    order, on any worker, and gives the same numbers (what lazy draws need).

    Holds the hyper-parameters' draws, the cross-products (or a residual structure's
    statistics), and the design's rows only for a structure bound to its rows.
    """

    def __init__(self, design: Design, cp: CrossProducts | None, post: xr.Dataset,
                 random_seed=None, chunk: int = 500, residual=None) -> None:
        self.nc, self.nd = post.sizes["chain"], post.sizes["draw"]
        flat = self.nc * self.nd
        self.beta = post["beta"].values.reshape(flat, -1)
        self.sigma = post["sigma"].values.reshape(flat)
        self.Ls = [psi_factor(post, t.group, t.q).reshape(flat, t.q, t.q)
                   for t in design.terms]
        self.order = factor_order(design.terms)  # the layout of a block: cross-products'
        self.terms = [design.terms[k] for k in self.order]
        self.Q = sum(t.n_levels * t.q for t in design.terms)
        self.residual, self.cp = residual, cp
        self.stacks = _stacks(design, cp, residual, post)
        self.stats = (statistics(design, residual).parts[0]
                      if residual is not None and self.stacks is not None
                      and len(design.terms) > 1 else None)
        self.design = design if self.stacks is None else None  # rows only when needed
        self.values = ({k: post[k].values.reshape(flat, *post[k].shape[2:])
                        for k in residual.param_names} if self.stacks is None else None)
        # a block's noise is (draws, Q): at most ~80 MB (10⁵ levels × 2: 50 draws)
        self.width = max(1, min(chunk, 10_000_000 // max(1, self.Q), self.nd))
        self.seed = (random_seed if isinstance(random_seed, np.random.SeedSequence)
                     else np.random.SeedSequence(random_seed))

    def spans(self) -> list[tuple[int, int, int]]:
        """``(chain, lo, hi)`` of every block, in order."""
        return [(c, lo, min(lo + self.width, self.nd)) for c in range(self.nc)
                for lo in range(0, self.nd, self.width)]

    def block(self, c: int, lo: int, hi: int, out=None, buf=None) -> np.ndarray:
        """(hi − lo, Q) draws of chain ``c``, in the cross-products' order of factors
        (into ``out`` if given; ``buf``: the one-factor noise buffer, see ``_one_factor``)."""
        key = (*self.seed.spawn_key, c, lo // self.width)
        rng = np.random.default_rng(np.random.SeedSequence(self.seed.entropy, spawn_key=key))
        sl = slice(c * self.nd + lo, c * self.nd + hi)
        n = hi - lo
        if out is None:
            out = np.empty((n, self.Q))
        beta, sigma, Ls = self.beta[sl], self.sigma[sl], [L[sl] for L in self.Ls]
        if self.stacks is None:  # a structure bound to its rows: whitened per draw
            out[:] = _whitened(self.design, self.residual,
                               {k: v[sl] for k, v in self.values.items()}, beta, sigma,
                               Ls, rng)
            return out
        (zz, z_xy), coef = self.stacks
        if len(self.terms) == 1:
            _one_factor(zz, z_xy, coef[sl], Ls[0], beta, sigma, rng,
                        out=out.reshape(n, -1, Ls[0].shape[-1]), buf=buf)
        elif self.residual is None:
            out[:] = _several(self.cp, [Ls[k] for k in self.order], beta, sigma, rng)
        else:  # the statistics on one blocked pattern (zz, z_xy: layout, values)
            out[:] = _several(self.stats, [Ls[k] for k in self.order], beta, sigma, rng,
                              (zz, z_xy, coef[sl]))
        return out

    def arrays(self, flat) -> dict[str, xr.DataArray]:
        """``b_<group>`` (dims ``chain, draw, group, term``) from all draws ``flat``,
        (chains, draws, Q) in a block's layout."""
        out, pos = {}, 0
        for t in self.terms:
            size = t.n_levels * t.q
            vals = flat[:, :, pos:pos + size].reshape(self.nc, self.nd, t.n_levels, t.q)
            pos += size
            out[f"b_{t.group}"] = xr.DataArray(
                vals, dims=("chain", "draw", t.group, f"{t.group}_term"),
                coords={t.group: t.levels, f"{t.group}_term": t.term_names})
        return out


def draw_random_effects(design: Design, cp: CrossProducts, post: xr.Dataset,
                        random_seed=None, chunk: int = 500,
                        residual=None) -> dict[str, xr.DataArray]:
    """Draw ``b_<group>`` for every posterior draw; dims ``(chain, draw, group, term)``.

    ``cp`` holds the design's cross-products (unused with a residual structure: its
    sufficient statistics are combined per draw, or, for a structure bound to its rows,
    the whitened cross-products recomputed per draw). Draws are processed a block of
    at most ``chunk`` draws of one chain at a time (fewer where a block's noise would
    pass 10⁷ values) to bound memory; the blocks are those of
    :class:`RanefBlocks`, so these are the very values that lazy draws give.
    ``residual`` (a bound residual structure) makes the draws account for ``σ²Λ``.
    """
    plan = RanefBlocks(design, cp, post, random_seed, chunk, residual)
    flat = np.empty((plan.nc, plan.nd, plan.Q))
    one = len(design.terms) == 1 and plan.stacks is not None
    buf = np.empty(plan.width * plan.Q) if one else None  # one buffer for every block
    for c, lo, hi in plan.spans():
        plan.block(c, lo, hi, out=flat[c, lo:hi], buf=buf)
    out = plan.arrays(flat)
    for name in out:
        out[name] = out[name].assign_coords(chain=post.chain, draw=post.draw)
    return {f"b_{t.group}": out[f"b_{t.group}"] for t in design.terms}
