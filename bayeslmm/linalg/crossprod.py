"""Cross-products [Z X y]ᵀ[Z X y] of a design, computed once, in blocked form.

The grouping factors are reordered by number of random effects (levels·q, descending),
as MixedModels.jl does. The first factor's block of ZᵀZ is block-diagonal (each row
belongs to one level), so it is kept as one q₁×q₁ matrix per level; its cross-product
with everything else is sparse in the other factors' columns and dense in [X y]. The
remaining columns ``rest = [Z₂ … Z_K X y]`` get a dense (r×r) cross-product. Nothing
after this needs the n rows.

Examples
--------
>>> import bayeslmm as blm
>>> from bayeslmm.formula.design import build_design
>>> d = build_design("diameter ~ 1 + (1 | plate) + (1 | sample)", blm.datasets.load("Penicillin"))
>>> cp = CrossProducts.from_design(d)
>>> cp.order, cp.A11.shape, cp.C1z.shape, cp.Arr.shape
((0, 1), (24, 1, 1), (24, 6), (8, 8))
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from .exact_sums import add_pairs, dense_outer, level_outer, pair_sums

__all__ = ["CrossProducts", "sparse_z", "factor_order"]


def sparse_z(term) -> sp.csr_matrix:
    """One factor's n × (levels·q) random-effects matrix, level-major columns.

    >>> import bayeslmm as blm
    >>> from bayeslmm.formula.design import build_design
    >>> d = build_design("Reaction ~ Days + (Days | Subject)", blm.datasets.load("sleepstudy"))
    >>> sparse_z(d.terms[0]).shape
    (180, 36)
    """
    n, q = term.Z.shape
    rows = np.repeat(np.arange(n), q)
    cols = (term.codes[:, None] * q + np.arange(q)[None, :]).ravel()
    return sp.csr_matrix((term.Z.ravel(), (rows, cols)), shape=(n, term.n_levels * q))


def factor_order(terms) -> tuple[int, ...]:
    """Term indices by number of random effects (levels·q), largest first (stable).

    >>> T = lambda m, q: type("T", (), {"n_levels": m, "q": q})()
    >>> factor_order([T(6, 1), T(24, 1), T(6, 2)])
    (1, 2, 0)
    """
    return tuple(sorted(range(len(terms)), key=lambda k: -terms[k].n_levels * terms[k].q))


@dataclass(frozen=True)
class CrossProducts:
    """Blocked cross-products of a design (see module docstring).

    Attributes
    ----------
    n, p : int
        Rows and fixed-effect columns.
    order : tuple of int
        Design term indices, reordered: ``order[0]`` is the block-diagonal factor.
    q, m : tuple of int
        Coefficients and levels of each factor, in ``order``.
    A11 : ndarray, shape (m₁, q₁, q₁)
        Per-level Z₁ⱼᵀZ₁ⱼ of the first factor (empty if there are no factors).
    C1z : scipy.sparse.csr_matrix, shape (m₁q₁, rz)
        Z₁ᵀ [Z₂ … Z_K].
    C1xy : ndarray, shape (m₁, q₁, p + 1)
        Per-level Z₁ⱼᵀ [X y].
    Arr : ndarray, shape (r, r)
        [Z₂ … Z_K X y]ᵀ [Z₂ … Z_K X y], r = rz + p + 1.
    yy : float
        yᵀy.
    residue : tuple of ndarray, optional
        The remainders of A11, C1z's data, C1xy and Arr (their sums are accumulated
        with their rounding errors, :mod:`bayeslmm.linalg.exact_sums`): what adding the
        cross-products of chunks needs to give the very values of all rows at once.
    """

    n: int
    p: int
    order: tuple[int, ...]
    q: tuple[int, ...]
    m: tuple[int, ...]
    A11: np.ndarray
    C1z: sp.csr_matrix
    C1xy: np.ndarray
    Arr: np.ndarray
    yy: float
    residue: tuple | None = field(default=None, repr=False, compare=False)

    @property
    def rz(self) -> int:
        """Number of random effects outside the first factor."""
        return sum(q * m for q, m in zip(self.q[1:], self.m[1:], strict=True))

    @property
    def offsets(self) -> np.ndarray:
        """Start of each factor after the first within the ``rest`` columns."""
        sizes = [q * m for q, m in zip(self.q[1:], self.m[1:], strict=True)]
        return np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)

    @property
    def xy_xy(self) -> np.ndarray:
        """[X y]ᵀ[X y], (p + 1) × (p + 1)."""
        return self.Arr[self.rz:, self.rz:]

    def __add__(self, other: CrossProducts) -> CrossProducts:
        """The cross-products of the rows of both (the design of their concatenation).

        Both must come from designs with the same columns and the same levels of every
        factor (chunks of one dataset with its levels fixed beforehand): rows add up.

        >>> import bayeslmm as blm
        >>> from bayeslmm.formula.design import build_design
        >>> d = build_design("diameter ~ 1 + (1 | plate) + (1 | sample)",
        ...                  blm.datasets.load("Penicillin"))
        >>> cp = CrossProducts.from_design(d)
        >>> double = cp + cp
        >>> double.n, bool(np.allclose(double.Arr, 2 * cp.Arr))
        (288, True)
        """
        if not isinstance(other, CrossProducts):
            return NotImplemented
        if (self.p, self.order, self.q, self.m) != (other.p, other.order, other.q, other.m):
            raise ValueError(
                "Cross-products of different designs cannot be added: columns "
                f"{(self.p, self.q, self.m)} vs {(other.p, other.q, other.m)} (p, q, levels). "
                "Build every chunk with the same levels of every factor.")
        if self.residue is None or other.residue is None:
            raise ValueError("Only cross-products computed from rows (with their "
                             "remainders) can be added.")
        a, b = self.residue, other.residue
        A11, A11r = add_pairs(self.A11, a[0], other.A11, b[0])
        C1xy, C1xyr = add_pairs(self.C1xy, a[2], other.C1xy, b[2])
        Arr, Arrr = add_pairs(self.Arr, a[3], other.Arr, b[3])
        C1z, C1zr = _add_sparse(self.C1z, a[1], other.C1z, b[1])
        return CrossProducts(self.n + other.n, self.p, self.order, self.q, self.m, A11, C1z,
                             C1xy, Arr, float(Arr[-1, -1]), (A11r, C1zr, C1xyr, Arrr))

    @staticmethod
    def total(parts) -> CrossProducts:
        """The sum of cross-products of chunks, added pairwise (a balanced tree).

        >>> import bayeslmm as blm
        >>> from bayeslmm.formula.design import build_design
        >>> d = build_design("Yield ~ 1 + (1 | Batch)", blm.datasets.load("Dyestuff"))
        >>> CrossProducts.total([CrossProducts.from_design(d)] * 3).n
        90
        """
        parts = list(parts)
        if not parts:
            raise ValueError("No cross-products to add.")
        while len(parts) > 1:
            parts = [parts[i] + parts[i + 1] if i + 1 < len(parts) else parts[i]
                     for i in range(0, len(parts), 2)]
        return parts[0]

    def marginal_arrays(self) -> dict[str, np.ndarray]:
        """What the marginal log-density reads, factors in :attr:`order`.

        ``zz`` is the per-level (m₁, q₁, q₁) ZᵀZ for one factor, the dense (Q × Q) one for
        several; ``z_xy`` is Zᵀ[X y], (m₁, q₁, p + 1) or (Q, p + 1); ``xy_xy`` [X y]ᵀ[X y].

        >>> import bayeslmm as blm
        >>> from bayeslmm.formula.design import build_design
        >>> d = build_design("diameter ~ 1 + (1 | plate) + (1 | sample)",
        ...                  blm.datasets.load("Penicillin"))
        >>> {k: v.shape for k, v in CrossProducts.from_design(d).marginal_arrays().items()}
        {'zz': (30, 30), 'z_xy': (30, 2), 'xy_xy': (2, 2)}
        """
        if len(self.order) <= 1:
            return {"zz": self.A11, "z_xy": self.C1xy, "xy_xy": self.xy_xy}
        rz, m1q1 = self.rz, self.m[0] * self.q[0]
        c1z = self.C1z.toarray()
        a11 = np.zeros((m1q1, m1q1))
        for j in range(self.m[0]):
            sl = slice(j * self.q[0], (j + 1) * self.q[0])
            a11[sl, sl] = self.A11[j]
        zz = np.block([[a11, c1z], [c1z.T, self.Arr[:rz, :rz]]])
        z_xy = np.vstack([self.C1xy.reshape(m1q1, -1), self.Arr[:rz, rz:]])
        return {"zz": zz, "z_xy": z_xy, "xy_xy": self.xy_xy}

    def transform_xy(self, M: np.ndarray) -> CrossProducts:
        """The cross-products with [X y] replaced by [X y] M (M: (p + 1) × (p' + 1)).

        Dropping a fixed effect and moving it into the response at a given value
        (lme4's profile of a fixed effect) needs no pass over the rows.

        >>> import bayeslmm as blm
        >>> from bayeslmm.formula.design import build_design
        >>> d = build_design("Reaction ~ Days + (Days | Subject)", blm.datasets.load("sleepstudy"))
        >>> cp = CrossProducts.from_design(d)
        >>> M = np.array([[1.0, 0.0], [0.0, -10.0], [0.0, 1.0]])   # y − 10 Days, X = [1]
        >>> cp.transform_xy(M).p, round(cp.transform_xy(M).yy)
        (1, 11973501)
        """
        M = np.asarray(M, dtype=float)
        rz = self.rz
        arr = np.empty((rz + M.shape[1], rz + M.shape[1]))
        arr[:rz, :rz] = self.Arr[:rz, :rz]
        arr[:rz, rz:] = self.Arr[:rz, rz:] @ M
        arr[rz:, :rz] = arr[:rz, rz:].T
        arr[rz:, rz:] = M.T @ self.xy_xy @ M
        c1xy = self.C1xy @ M
        return CrossProducts(self.n, M.shape[1] - 1, self.order, self.q, self.m, self.A11,
                             self.C1z, c1xy, arr, float(arr[-1, -1]))

    @classmethod
    def from_design(cls, design) -> CrossProducts:
        """Compute the cross-products of a :class:`~bayeslmm.formula.design.Design`.

        A design whose rows are not in memory (an out-of-core design, built from a
        dask DataFrame by :mod:`bayeslmm.dask`) carries them already: they are returned.
        """
        stored = getattr(design, "cross_products", None)
        if isinstance(stored, CrossProducts):
            return stored
        terms = design.terms
        n, p = design.X.shape
        xy = np.column_stack([design.X, design.y])
        order = factor_order(terms)
        q = tuple(terms[k].q for k in order)
        m = tuple(terms[k].n_levels for k in order)
        xy_cols = np.broadcast_to(np.arange(p + 1), (n, p + 1))
        if not terms:
            Arr, Arrr = dense_outer(xy_cols, xy, p + 1)
            return cls(n, p, (), (), (), np.zeros((0, 0, 0)), sp.csr_matrix((0, 0)),
                       np.zeros((0, 0, p + 1)), Arr, float(Arr[-1, -1]),
                       (np.zeros((0, 0, 0)), np.zeros(0), np.zeros((0, 0, p + 1)), Arrr))
        t1 = terms[order[0]]
        # sums over rows per level and per pair of columns, with their rounding errors
        q1 = t1.q  # one pass over the rows for Z₁ⱼᵀZ₁ⱼ and Z₁ⱼᵀ[X y]
        both, rem = level_outer(t1.codes, t1.Z, np.column_stack([t1.Z, xy]), t1.n_levels)
        A11, A11r = np.ascontiguousarray(both[:, :, :q1]), np.ascontiguousarray(rem[:, :, :q1])
        C1xy, C1xyr = np.ascontiguousarray(both[:, :, q1:]), np.ascontiguousarray(rem[:, :, q1:])
        rest = [terms[k] for k in order[1:]]
        offsets = np.cumsum([0] + [t.n_levels * t.q for t in rest])
        rz = int(offsets[-1])
        zcols = [off + t.codes[:, None] * t.q + np.arange(t.q)[None, :]
                 for off, t in zip(offsets, rest, strict=False)]
        cols = np.hstack(zcols + [rz + xy_cols])
        vals = np.hstack([t.Z for t in rest] + [xy])
        Arr, Arrr = dense_outer(cols, vals, rz + p + 1)
        if rest:
            zc, zv = cols[:, :-(p + 1)], vals[:, :-(p + 1)]
            rows1 = t1.codes[:, None] * t1.q + np.arange(t1.q)[None, :]
            keys = (rows1[:, :, None] * rz + zc[:, None, :]).ravel()
            k, v, r = pair_sums(keys, (t1.Z[:, :, None] * zv[:, None, :]).ravel())
            C1z = sp.csr_matrix((v, (k // rz, k % rz)), shape=(t1.n_levels * t1.q, rz))
            C1zr = _aligned(C1z, k, r, rz)
        else:
            C1z, C1zr = sp.csr_matrix((t1.n_levels * t1.q, 0)), np.zeros(0)
        return cls(n, p, order, q, m, A11, C1z, C1xy, Arr, float(Arr[-1, -1]),
                   (A11r, C1zr, C1xyr, Arrr))


def _aligned(C: sp.csr_matrix, keys: np.ndarray, rem: np.ndarray, ncol: int) -> np.ndarray:
    """Remainders ``rem`` of entries ``keys`` (row·ncol + col) in the order of C.data."""
    C.sort_indices()
    rows = np.repeat(np.arange(C.shape[0]), np.diff(C.indptr))
    pos = np.searchsorted(keys, rows.astype(np.int64) * ncol + C.indices)
    return rem[pos]


def _add_sparse(A: sp.csr_matrix, ra: np.ndarray, B: sp.csr_matrix, rb: np.ndarray):
    """A + B with remainders (csr, data order), on the union of their entries."""
    ncol = A.shape[1]
    if ncol == 0:
        return A.copy(), np.zeros(0)

    def keyed(C):
        C.sort_indices()
        rows = np.repeat(np.arange(C.shape[0]), np.diff(C.indptr)).astype(np.int64)
        return rows * ncol + C.indices

    ka, kb = keyed(A), keyed(B)
    keys = np.union1d(ka, kb)
    va, vb = np.zeros(len(keys)), np.zeros(len(keys))
    xa, xb = np.zeros(len(keys)), np.zeros(len(keys))
    ia, ib = np.searchsorted(keys, ka), np.searchsorted(keys, kb)
    va[ia], xa[ia] = A.data, ra
    vb[ib], xb[ib] = B.data, rb
    v, r = add_pairs(va, xa, vb, xb)
    C = sp.csr_matrix((v, (keys // ncol, keys % ncol)), shape=A.shape)
    return C, _aligned(C, keys, r, ncol)
