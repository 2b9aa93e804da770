"""The blocked layout of ZᵀZ for the marginal log-density of designs with several
grouping factors (crossed or nested): plain arrays that
:mod:`bayeslmm.linalg.blocked_kernel` reads.

Factors are in :attr:`CrossProducts.order <bayeslmm.linalg.crossprod.CrossProducts>`
(most random effects first). The first factor's levels are the block-diagonal part:
``a11`` (m₁, q₁, q₁) and ``c1`` = Z₁ⱼᵀ[X y] (m₁, q₁, p + 1). The other factors' random
effects ("the rest", r of them) are cut into *level blocks* (one level of one factor,
q_k rows): ``boff`` (their first rows, plus r), ``bfac`` (their factor's position).
Z₁ᵀZ_rest is stored by the first factor's level: level j meets the level blocks
``bblk[bptr[j]:bptr[j+1]]`` (sorted), and ``a21[e, :q_b, :]`` is the q_b × q₁ block
Z_bᵀZ₁ⱼ of entry e; by level block b, its entries are ``tent[tptr[b]:tptr[b+1]]``, and
``eown[e]`` is entry e's level j. ``a22`` = Z_restᵀZ_rest and ``c2`` = Z_restᵀ[X y] are dense.

``full`` (every level of the first factor meets every level block: fully crossed)
lets the kernel use one large matrix product instead of per-level ones; ``blockdiag``
(no two level blocks are coupled, neither in Z_restᵀZ_rest nor through a level of
the first factor: nested designs) lets it factor the rest block by block.

Examples
--------
>>> import bayeslmm as blm
>>> from bayeslmm.formula.design import build_design
>>> from bayeslmm.linalg.crossprod import CrossProducts
>>> d = build_design("diameter ~ 1 + (1 | plate) + (1 | sample)",
...                  blm.datasets.load("Penicillin"))
>>> a = blocked_arrays(CrossProducts.from_design(d))
>>> a["a11"].shape, a["a22"].shape, a["a21"].shape, bool(a["full"]), bool(a["blockdiag"])
((24, 1, 1), (6, 6), (144, 1, 1), True, False)
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

__all__ = ["blocked_arrays", "blocked_stacks", "kernel_stacks", "rest_size", "VALUE_NAMES"]


def rest_size(q, m) -> int:
    """Random effects outside the first factor (the dense part's size), for factors'
    coefficients ``q`` and levels ``m`` in the cross-products' order.

    >>> rest_size((4, 4), (56, 32))
    128
    """
    return int(sum(qk * mk for qk, mk in zip(q[1:], m[1:], strict=True)))


def blocked_arrays(cp) -> dict[str, np.ndarray]:
    """The blocked layout (see the module doc) of a
    :class:`~bayeslmm.linalg.crossprod.CrossProducts` with at least two factors."""
    q, m = cp.q, cp.m
    if len(q) < 2:
        raise ValueError("the blocked layout is for designs with several grouping factors")
    q1, m1, rz = q[0], m[0], cp.rz
    # level blocks of the rest, in the order of its columns
    bfac = np.concatenate([np.full(m[k], k, np.int64) for k in range(1, len(q))])
    sizes = np.concatenate([np.full(m[k], q[k], np.int64) for k in range(1, len(q))])
    boff = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    nb = len(bfac)
    rows, cols, _ = _nonzeros(cp.C1z)
    pairs = np.unique((rows // q1).astype(np.int64) * nb + np.repeat(np.arange(nb), sizes)[cols])
    bblk = (pairs % nb).astype(np.int64)
    bptr = np.concatenate([[0], np.cumsum(np.bincount(pairs // nb, minlength=m1))])
    # the pattern by level block of the rest (for loops that write one block's rows)
    eown = (pairs // nb).astype(np.int64)
    tent = np.argsort(bblk, kind="stable").astype(np.int64)
    tptr = np.concatenate([[0], np.cumsum(np.bincount(bblk, minlength=nb))]).astype(np.int64)
    a22 = np.ascontiguousarray(cp.Arr[:rz, :rz])
    full = len(pairs) == m1 * nb
    return {
        "a11": np.ascontiguousarray(cp.A11), "c1": np.ascontiguousarray(cp.C1xy),
        "bptr": bptr.astype(np.int64), "bblk": bblk, "tptr": tptr, "tent": tent,
        "eown": eown, "a21": _pattern_values(cp, pairs, boff, nb, int(max(q[1:]))),
        "boff": boff, "bfac": bfac, "a22": a22, "c2": np.ascontiguousarray(cp.Arr[:rz, rz:]),
        "xy_xy": np.ascontiguousarray(cp.xy_xy), "n": float(cp.n),
        "full": np.bool_(full),
        "a21d": (np.ascontiguousarray(cp.C1z.T.toarray()) if full else np.zeros((0, 0))),
        "blockdiag": np.bool_(_coupled(a22, boff, bfac, bptr, nb) is False),
    }


#: the layout's arrays that hold values (the rest is its pattern)
VALUE_NAMES = ("a11", "c1", "a21", "a21d", "a22", "c2", "xy_xy")


def blocked_stacks(parts) -> tuple[dict, dict[str, np.ndarray]]:
    """The layout of a sum ``Σ_k c_k parts[k]`` of cross-products of one design (a
    residual structure's statistics): the pattern of all parts together (so any
    coefficients fit it) and each part's values on it, stacked on a first axis (K).

    Returns ``(layout, stacks)``: :func:`blocked_arrays` of the parts' joint pattern
    (whose value arrays, :data:`VALUE_NAMES`, and ``n`` are placeholders) and ``{name: (K, ...)}``
    for :data:`VALUE_NAMES`: ``Σ_k c_k stacks[name][k]`` is the sum's value ``name``.

    >>> import numpy as np, bayeslmm as blm
    >>> from bayeslmm.formula.design import build_design
    >>> from bayeslmm.linalg.crossprod import CrossProducts
    >>> d = build_design("diameter ~ 1 + (1 | plate) + (1 | sample)",
    ...                  blm.datasets.load("Penicillin"))
    >>> cp = CrossProducts.from_design(d)
    >>> layout, stacks = blocked_stacks([cp, cp])
    >>> stacks["a21d"].shape, bool(np.allclose(stacks["a21"][1], blocked_arrays(cp)["a21"]))
    ((2, 6, 24), True)
    """
    first = parts[0]
    joint = replace(first, C1z=sum((abs(p.C1z) for p in parts[1:]), abs(first.C1z)).tocsr(),
                    Arr=sum(np.abs(p.Arr) for p in parts))
    layout = blocked_arrays(joint)
    nb, rz = len(layout["bfac"]), first.rz
    pairs = layout["eown"] * nb + layout["bblk"]
    stacks = {k: [] for k in VALUE_NAMES}
    for p in parts:
        stacks["a11"].append(p.A11)
        stacks["c1"].append(p.C1xy)
        stacks["a21"].append(_pattern_values(p, pairs, layout["boff"], nb,
                                             layout["a21"].shape[1]))
        stacks["a21d"].append(p.C1z.T.toarray() if layout["full"] else np.zeros((0, 0)))
        stacks["a22"].append(p.Arr[:rz, :rz])
        stacks["c2"].append(p.Arr[:rz, rz:])
        stacks["xy_xy"].append(p.xy_xy)
    return layout, {k: np.ascontiguousarray(np.stack(v)) for k, v in stacks.items()}


def kernel_stacks(layout: dict, stacks: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The stacks a marginal kernel reads: a fully crossed design's kernel reads
    ``a21d``, not ``a21`` (emptied here, so that it costs nothing to combine).

    >>> kernel_stacks({"full": True}, {"a21": np.ones((2, 5, 1, 1))})["a21"].shape
    (2, 0, 1, 1)
    """
    out = dict(stacks)
    if layout["full"]:
        out["a21"] = np.ascontiguousarray(stacks["a21"][:, :0])
    return out


def _nonzeros(C1z):
    coo = C1z.tocoo()
    keep = coo.data != 0
    return coo.row[keep], coo.col[keep], coo.data[keep]


def _pattern_values(cp, pairs, boff, nb, qmax) -> np.ndarray:
    """``a21`` (entries, q_max, q₁) of ``cp``'s Z_restᵀZ₁ on the pattern ``pairs``
    (level j · nb + level block b, sorted), which holds every nonzero of ``cp``."""
    q1 = cp.q[0]
    rows, cols, vals = _nonzeros(cp.C1z)
    b = np.searchsorted(boff, cols, side="right") - 1
    e = np.searchsorted(pairs, (rows // q1).astype(np.int64) * nb + b)
    a21 = np.zeros((len(pairs), qmax, q1))
    a21[e, cols - boff[b], rows % q1] = vals
    return a21


def _coupled(a22, boff, bfac, bptr, nb) -> bool:
    """Whether two level blocks of the rest are coupled (so S is not block diagonal)."""
    if np.any(np.diff(bptr) > 1):
        return True
    block = np.repeat(np.arange(nb), np.diff(boff))
    r, c = np.nonzero(a22)
    return bool(np.any(block[r] != block[c]))
