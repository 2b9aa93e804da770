"""Cross-products of derived rows: the statistics structured residuals are sums of.

A residual precision ``Λ⁻¹`` whose entries are fixed functions of a few parameters is a
short sum ``Σ_k c_k(params) A_k`` of fixed sparse matrices, so ``Mᵀ Λ⁻¹ M`` (M = [Z X y])
is ``Σ_k c_k · Mᵀ A_k M``, each term computed once from the rows. Every ``A_k`` used
(:mod:`bayeslmm.residual.sufficient`) is ``½(BᵀC + CᵀB)`` for sparse row maps B, C
(k × n: selections of rows, sums over groups), whose rows each lie inside one level of
every grouping factor; :func:`bilinear_cross_products` gives ``½[(BM)ᵀ(CM) + (CM)ᵀ(BM)]``
blocked as :class:`~bayeslmm.linalg.crossprod.CrossProducts`, and
:func:`combine_cross_products` the weighted sum. Both add over chunks of rows (chunks
of whole correlation groups): the Dask path sums them like the plain cross-products.

Examples
--------
>>> import numpy as np, scipy.sparse as sp, bayeslmm as blm
>>> from bayeslmm.formula.design import build_design
>>> d = build_design("Reaction ~ Days + (Days | Subject)", blm.datasets.load("sleepstudy"))
>>> I = sp.identity(d.nobs, format="csr")
>>> cp = bilinear_cross_products(d, I)                 # B = C = I: the plain ones
>>> bool(np.allclose(cp.Arr, np.column_stack([d.X, d.y]).T @ np.column_stack([d.X, d.y])))
True
>>> bool(np.allclose(combine_cross_products([cp, cp], [0.5, 1.5], d.nobs).A11, 2 * cp.A11))
True
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from .crossprod import CrossProducts, factor_order, sparse_z
from .exact_sums import pair_sums

__all__ = ["bilinear_cross_products", "combine_cross_products", "add_cross_products",
           "row_map", "RowBlock", "polar"]


def row_map(rows: np.ndarray, n: int, weights: np.ndarray | None = None,
            out_rows: np.ndarray | None = None, n_out: int | None = None) -> sp.csr_matrix:
    """A sparse (n_out × n) map whose output row ``out_rows[i]`` adds ``weights[i]`` ×
    input row ``rows[i]``: a selection (``out_rows`` = 0, 1, …) or group sums.

    >>> row_map(np.array([2, 0]), 3).toarray()
    array([[0., 0., 1.],
           [1., 0., 0.]])
    >>> row_map(np.array([0, 1, 2]), 3, out_rows=np.array([0, 0, 1])).toarray()
    array([[1., 1., 0.],
           [0., 0., 1.]])
    """
    rows = np.asarray(rows, dtype=np.int64)
    out = np.arange(len(rows)) if out_rows is None else np.asarray(out_rows, dtype=np.int64)
    n_out = int(out.max()) + 1 if n_out is None and len(out) else (n_out or 0)
    w = np.ones(len(rows)) if weights is None else np.asarray(weights, dtype=float)
    return sp.csr_matrix((w, (out, rows)), shape=(n_out, n))


def _per_level(codes: np.ndarray, m: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(m, a-cols, b-cols): Σ over derived rows of level j of a_k b_kᵀ."""
    prod = (a[:, :, None] * b[:, None, :]).reshape(len(codes), -1)
    out = np.empty((m, prod.shape[1]))
    for c in range(prod.shape[1]):
        out[:, c] = np.bincount(codes, weights=prod[:, c], minlength=m)
    return out.reshape(m, a.shape[1], b.shape[1])


def _derived_sparse_z(z: np.ndarray, codes: np.ndarray, m: int) -> sp.csr_matrix:
    k, q = z.shape
    rows = np.repeat(np.arange(k), q)
    cols = (codes[:, None] * q + np.arange(q)[None, :]).ravel()
    return sp.csr_matrix((z.ravel(), (rows, cols)), shape=(k, m * q))


def _sym(a, b):
    """½(a + b) of two dense or sparse blocks (b is a's mirror term)."""
    return (a + b) * 0.5


def bilinear_cross_products(design, B: sp.csr_matrix, C: sp.csr_matrix | None = None,
                            rows: np.ndarray | None = None) -> CrossProducts:
    """``½[(BM)ᵀ(CM) + (CM)ᵀ(BM)]`` for M = [Z X y] of ``design``, blocked as
    :class:`~bayeslmm.linalg.crossprod.CrossProducts` (``C`` None: B's Gram matrix).

    Each row of B (and the same row of C) must combine rows inside one level of every
    grouping factor (correlation groups nested in the factors); its level is that of
    ``rows[i]`` (default: its first row; give ``rows`` where a row of B may be empty).
    ``n`` of the result is the number of derived rows.
    """
    B = sp.csr_matrix(B)
    C = B if C is None else sp.csr_matrix(C)
    same = C is B
    terms = design.terms
    k, n = B.shape
    xy = np.column_stack([design.X, design.y])
    p = design.X.shape[1]
    bxy = np.asarray(B @ xy)
    cxy = bxy if same else np.asarray(C @ xy)
    xyxy = bxy.T @ cxy if same else _sym(bxy.T @ cxy, cxy.T @ bxy)
    order = factor_order(terms)
    if not terms:
        return CrossProducts(k, p, (), (), (), np.zeros((0, 0, 0)), sp.csr_matrix((0, 0)),
                             np.zeros((0, 0, p + 1)), xyxy, float(xyxy[-1, -1]))
    first = B.indices[B.indptr[:-1]] if rows is None else np.asarray(rows, dtype=np.int64)
    t1 = terms[order[0]]
    codes = t1.codes[first]
    bz, cz = np.asarray(B @ t1.Z), None
    cz = bz if same else np.asarray(C @ t1.Z)
    A11 = _per_level(codes, t1.n_levels, bz, cz)
    C1xy = _per_level(codes, t1.n_levels, bz, cxy)
    if not same:
        A11 = _sym(A11, np.swapaxes(A11, 1, 2))
        C1xy = _sym(C1xy, _per_level(codes, t1.n_levels, cz, bxy))
    q = tuple(terms[j].q for j in order)
    m = tuple(terms[j].n_levels for j in order)
    rest = [sparse_z(terms[j]) for j in order[1:]]
    if rest:
        Zr = sp.hstack(rest, format="csr")
        bzr = (B @ Zr).tocsr()
        czr = bzr if same else (C @ Zr).tocsr()
        z1b = _derived_sparse_z(bz, codes, t1.n_levels)
        z1c = z1b if same else _derived_sparse_z(cz, codes, t1.n_levels)
        if same:
            C1z = (z1b.T @ czr).tocsr()
            zz = (bzr.T @ czr).toarray()
            zxy = np.asarray(bzr.T @ cxy)
        else:
            C1z = _sym(z1b.T @ czr, z1c.T @ bzr).tocsr()
            zz = _sym(bzr.T @ czr, czr.T @ bzr).toarray()
            zxy = _sym(np.asarray(bzr.T @ cxy), np.asarray(czr.T @ bxy))
        Arr = np.block([[zz, zxy], [zxy.T, xyxy]])
    else:
        C1z = sp.csr_matrix((t1.n_levels * t1.q, 0))
        Arr = xyxy
    C1z.sort_indices()
    return CrossProducts(k, p, order, q, m, A11, C1z, C1xy, Arr, float(Arr[-1, -1]))


def combine_cross_products(parts: Sequence[CrossProducts], coef: Sequence[float],
                           n: int) -> CrossProducts:
    """``Σ_k coef[k] · parts[k]`` (all of one design's layout), with ``n`` rows."""
    first = parts[0]
    c = [float(v) for v in coef]
    A11 = sum(ck * cp.A11 for ck, cp in zip(c, parts, strict=True))
    C1xy = sum(ck * cp.C1xy for ck, cp in zip(c, parts, strict=True))
    Arr = sum(ck * cp.Arr for ck, cp in zip(c, parts, strict=True))
    C1z = first.C1z
    if first.C1z.shape[1]:
        C1z = sum((ck * cp.C1z for ck, cp in zip(c, parts, strict=True)),
                  sp.csr_matrix(first.C1z.shape)).tocsr()
        C1z.sort_indices()
    return CrossProducts(n, first.p, first.order, first.q, first.m, A11, C1z, C1xy, Arr,
                         float(Arr[-1, -1]))


def add_cross_products(a: CrossProducts, b: CrossProducts) -> CrossProducts:
    """The cross-products of two chunks of derived rows added (plain sums).

    >>> import bayeslmm as blm
    >>> from bayeslmm.formula.design import build_design
    >>> d = build_design("Yield ~ 1 + (1 | Batch)", blm.datasets.load("Dyestuff"))
    >>> cp = bilinear_cross_products(d, sp.identity(d.nobs, format="csr"))
    >>> add_cross_products(cp, cp).n
    60
    """
    if (a.p, a.order, a.q, a.m) != (b.p, b.order, b.q, b.m):
        raise ValueError("Statistics of different designs cannot be added: build every "
                         "chunk with the same columns and levels of every factor.")
    C1z = (a.C1z + b.C1z).tocsr()
    C1z.sort_indices()
    Arr = a.Arr + b.Arr
    return CrossProducts(a.n + b.n, a.p, a.order, a.q, a.m, a.A11 + b.A11, C1z,
                         a.C1xy + b.C1xy, Arr, float(Arr[-1, -1]))


class _Term:
    """A term's rows in a :class:`RowBlock` (what the cross-products read)."""

    __slots__ = ("codes", "Z", "n_levels", "group")

    def __init__(self, codes, Z, n_levels, group):
        self.codes, self.Z, self.n_levels, self.group = codes, Z, n_levels, group

    @property
    def q(self) -> int:
        return self.Z.shape[1]


class RowBlock:
    """Rows of a design (y, X, each term's Z and level codes), or exact sums of rows
    (with their remainders): what the statistics of structured residuals are Gram
    matrices of. :meth:`gram` is :meth:`CrossProducts.from_design` of these rows, an
    exact sum whatever their order, so chunks' statistics add up to all rows' bit for bit.

    >>> import bayeslmm as blm
    >>> from bayeslmm.formula.design import build_design
    >>> d = build_design("Yield ~ 1 + (1 | Batch)", blm.datasets.load("Dyestuff"))
    >>> b = RowBlock.of(d, np.arange(30))
    >>> bool(np.array_equal(b.gram().Arr, CrossProducts.from_design(d).Arr))
    True
    >>> s = b.sums(d.terms[0].codes, 6)            # the batches' sums
    >>> len(s), bool(s.y[0] == d.y[d.terms[0].codes == 0].sum())
    (6, True)
    """

    __slots__ = ("y", "X", "terms", "residue")

    def __init__(self, y, X, terms, residue=None):
        self.y, self.X, self.terms, self.residue = y, X, terms, residue

    @classmethod
    def of(cls, source, rows: np.ndarray) -> RowBlock:
        """Rows ``rows`` of a design (or of a block).

        >>> import bayeslmm as blm
        >>> from bayeslmm.formula.design import build_design
        >>> d = build_design("Yield ~ 1 + (1 | Batch)", blm.datasets.load("Dyestuff"))
        >>> RowBlock.of(d, np.array([0, 29])).terms[0].codes.tolist()
        [0, 5]
        """
        res = None if getattr(source, "residue", None) is None else source.residue[rows]
        return cls(source.y[rows], source.X[rows],
                   [_Term(t.codes[rows], t.Z[rows], t.n_levels, t.group)
                    for t in source.terms], res)

    def __len__(self) -> int:
        return len(self.y)

    def _matrix(self) -> np.ndarray:
        return np.column_stack([self.y[:, None], self.X] + [t.Z for t in self.terms])

    def _split(self, M: np.ndarray, codes: list) -> RowBlock:
        p = self.X.shape[1]
        ends = np.cumsum([1, p] + [t.q for t in self.terms])
        parts = np.split(M, ends[:-1], axis=1)
        return RowBlock(parts[0][:, 0], parts[1],
                        [_Term(c, z, t.n_levels, t.group)
                         for c, z, t in zip(codes, parts[2:], self.terms, strict=True)])

    def sums(self, out_rows: np.ndarray, n_out: int, first: np.ndarray | None = None
             ) -> RowBlock:
        """Exact sums of the rows (and their remainders) by ``out_rows``; each sum has
        the levels of its first row (or of row ``first[i]``).

        >>> b = RowBlock(np.array([1e16, 1.0, -1e16]), np.ones((3, 1)), [])
        >>> b.sums(np.zeros(3, dtype=np.int64), 1).y.tolist()   # exact: not 0
        [1.0]
        """
        M = self._matrix()
        c = M.shape[1]
        keys = (np.asarray(out_rows, dtype=np.int64)[:, None] * c + np.arange(c)).ravel()
        prods = M.ravel()
        if self.residue is not None:
            keys, prods = np.concatenate([keys, keys]), np.concatenate([prods,
                                                                        self.residue.ravel()])
        k, v, r = pair_sums(keys, prods)
        V, R = np.zeros(n_out * c), np.zeros(n_out * c)
        V[k], R[k] = v, r
        if first is None:
            first = np.zeros(n_out, dtype=np.int64)
            first[out_rows[::-1]] = np.arange(len(out_rows))[::-1]
        out = self._split(V.reshape(n_out, c), [t.codes[first] for t in self.terms])
        out.residue = R.reshape(n_out, c)
        return out

    def scatter(self, out_rows: np.ndarray, n_out: int, codes: list) -> RowBlock:
        """``n_out`` rows: row ``out_rows[i]`` is row i of these, the others 0; each
        term's level codes given (``codes``: one array of ``n_out`` per term).

        >>> RowBlock(np.array([2.0]), np.ones((1, 1)), []).scatter(np.array([1]), 2, []).y
        array([0., 2.])
        """
        M = np.zeros((n_out, 1 + self.X.shape[1] + sum(t.q for t in self.terms)))
        M[out_rows] = self._matrix()
        return self._split(M, codes)

    def combined(self, other: RowBlock, sign: float) -> RowBlock:
        """Rows ``self + sign · other`` (values; the levels of ``self``).

        >>> b = RowBlock(np.array([2.0]), np.ones((1, 1)), [])
        >>> b.combined(b, -1.0).y.tolist()
        [0.0]
        """
        return self._split(self._matrix() + sign * other._matrix(),
                           [t.codes for t in self.terms])

    def gram(self) -> CrossProducts:
        """The rows' cross-products, exact (:meth:`CrossProducts.from_design`).

        >>> RowBlock(np.array([1.0, 2.0]), np.ones((2, 1)), []).gram().yy
        5.0
        """
        return CrossProducts.from_design(self)

    @staticmethod
    def concat(blocks: list[RowBlock]) -> RowBlock:
        """The rows of ``blocks`` one after the other.

        >>> b = RowBlock(np.array([1.0]), np.ones((1, 1)), [])
        >>> len(RowBlock.concat([b, b, b]))
        3
        """
        terms = [_Term(np.concatenate([b.terms[k].codes for b in blocks]),
                       np.concatenate([b.terms[k].Z for b in blocks]), t.n_levels, t.group)
                 for k, t in enumerate(blocks[0].terms)]
        res = None if blocks[0].residue is None else \
            np.concatenate([b.residue for b in blocks])
        return RowBlock(np.concatenate([b.y for b in blocks]),
                        np.concatenate([b.X for b in blocks]), terms, res)


def polar(plus: CrossProducts, minus: CrossProducts) -> CrossProducts:
    """``½(plus − minus)``: with ``plus``, ``minus`` the Gram matrices of rows u + v and
    u − v, the symmetric product ``uᵀv + vᵀu`` (from exact Gram matrices, so the same
    whatever the order of the rows).

    >>> import bayeslmm as blm
    >>> from bayeslmm.formula.design import build_design
    >>> d = build_design("Yield ~ 1 + (1 | Batch)", blm.datasets.load("Dyestuff"))
    >>> u, v = RowBlock.of(d, np.arange(0, 30, 2)), RowBlock.of(d, np.arange(1, 30, 2))
    >>> s = polar(u.combined(v, 1.0).gram(), u.combined(v, -1.0).gram())
    >>> bool(np.isclose(s.yy, 2 * d.y[0::2] @ d.y[1::2]))
    True
    """
    return combine_cross_products([plus, minus], [0.5, -0.5], plus.n)
