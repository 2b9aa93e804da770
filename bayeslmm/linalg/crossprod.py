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

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

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
        """Compute the cross-products of a :class:`~bayeslmm.formula.design.Design`."""
        terms = design.terms
        n, p = design.X.shape
        xy = np.column_stack([design.X, design.y])
        order = factor_order(terms)
        q = tuple(terms[k].q for k in order)
        m = tuple(terms[k].n_levels for k in order)
        if not terms:
            return cls(n, p, (), (), (), np.zeros((0, 0, 0)), sp.csr_matrix((0, 0)),
                       np.zeros((0, 0, p + 1)), xy.T @ xy, float(design.y @ design.y))
        t1 = terms[order[0]]
        # per-level sums over rows: bincount on the level codes, one per matrix entry
        def per_level(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            prod = a[:, :, None] * b[:, None, :]
            flat = prod.reshape(n, -1)
            out = np.empty((t1.n_levels, flat.shape[1]))
            for c in range(flat.shape[1]):
                out[:, c] = np.bincount(t1.codes, weights=flat[:, c], minlength=t1.n_levels)
            return out.reshape(t1.n_levels, a.shape[1], b.shape[1])

        A11 = per_level(t1.Z, t1.Z)
        C1xy = per_level(t1.Z, xy)
        zrest = [sparse_z(terms[k]) for k in order[1:]]
        if zrest:
            Zr = sp.hstack(zrest, format="csr")
            C1z = (sparse_z(t1).T @ Zr).tocsr()
            zz = (Zr.T @ Zr).toarray()
            zxy = np.asarray(Zr.T @ xy)
            Arr = np.block([[zz, zxy], [zxy.T, xy.T @ xy]])
        else:
            C1z = sp.csr_matrix((t1.n_levels * t1.q, 0))
            Arr = xy.T @ xy
        C1z.sort_indices()
        return cls(n, p, order, q, m, A11, C1z, C1xy, Arr, float(design.y @ design.y))
