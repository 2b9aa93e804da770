"""The relative covariance factor Λ(θ) of lme4: θ's layout, bounds and Ψ from θ.

For each grouping factor k, Ψ_k = σ² Λ_k Λ_kᵀ with Λ_k lower triangular. Λ_k is
block-diagonal over the term's correlated ``blocks``: entries between blocks are
structurally zero and get no θ (``(1|g) + (0+x|g)`` has 2 θ's, ``(x|g)`` has 3).
θ lists, factor by factor in design order and block by block, the lower triangle of
each block column by column (lme4's order). Diagonal entries are bounded below by 0.

Examples
--------
>>> from bayeslmm.formula.design import build_design
>>> import bayeslmm as blm
>>> d = build_design("Reaction ~ Days + (Days | Subject)", blm.datasets.load("sleepstudy"))
>>> lay = ThetaLayout.from_terms(d.terms)
>>> lay.names, lay.start().tolist(), lay.lower.tolist()
(['Subject.Intercept', 'Subject.Days.Intercept', 'Subject.Days'], [1.0, 0.0, 1.0], [0.0, -inf, 0.0])
>>> lay.lambdas([1.0, 0.5, 2.0])[0].tolist()
[[1.0, 0.0], [0.5, 2.0]]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["ThetaLayout"]


@dataclass(frozen=True)
class ThetaLayout:
    """Where each θ goes: factor index, row and column in that factor's Λ.

    Attributes
    ----------
    q : tuple of int
        Coefficients per factor.
    term : ndarray of int
        Factor index of each θ.
    row, col : ndarray of int
        Position of each θ in its factor's q×q Λ.
    names : list of str
        ``group.term`` for diagonal entries, ``group.term_i.term_j`` off the diagonal.
    """

    q: tuple[int, ...]
    term: np.ndarray
    row: np.ndarray
    col: np.ndarray
    names: list[str]

    @classmethod
    def from_terms(cls, terms: Sequence) -> ThetaLayout:
        """Lay out θ for a list of :class:`~bayeslmm.formula.design.ReTerm`."""
        tk, rows, cols, names = [], [], [], []
        for k, t in enumerate(terms):
            for block in t.blocks:
                for jj, j in enumerate(block):
                    for i in block[jj:]:
                        tk.append(k)
                        rows.append(i)
                        cols.append(j)
                        nm = t.term_names[i] if i == j else f"{t.term_names[i]}.{t.term_names[j]}"
                        names.append(f"{t.group}.{nm}")
        as_int = lambda v: np.asarray(v, dtype=np.int64)  # noqa: E731
        return cls(tuple(t.q for t in terms), as_int(tk), as_int(rows), as_int(cols), names)

    @property
    def size(self) -> int:
        """Number of θ parameters."""
        return len(self.names)

    @property
    def is_diag(self) -> np.ndarray:
        """True for the θ's on a diagonal of Λ (those bounded below by 0)."""
        return self.row == self.col

    @property
    def lower(self) -> np.ndarray:
        """Lower bounds: 0 on diagonals, −∞ elsewhere."""
        return np.where(self.is_diag, 0.0, -np.inf)

    def scales(self, terms: Sequence) -> np.ndarray:
        """Per θ, the root mean square of the Z column of its row of Λ.

        Λ's row i multiplies Z's column i (ZΛ), so in units ``θ · scales`` the criterion
        does not depend on the units of the random-effect covariates: the search runs
        there (:func:`bayeslmm.mle.search.search`), and a singular fit is judged there.

        ``terms`` give their columns' root mean squares (``t.rms``: from the rows, or
        from their moments out of core; the same numbers either way).

        >>> import numpy as np
        >>> T = type("T", (), {})
        >>> t = T(); t.rms = np.array([1.0, np.sqrt(12.5)])
        >>> lay = ThetaLayout((2,), np.array([0, 0, 0]), np.array([0, 1, 1]),
        ...                   np.array([0, 0, 1]), ["a", "b.a", "b"])
        >>> lay.scales([t]).round(3).tolist()
        [1.0, 3.536, 3.536]
        """
        rms = [np.asarray(t.rms, dtype=float) for t in terms]
        out = np.array([rms[k][i] for k, i in zip(self.term, self.row, strict=True)])
        return np.where(out > 0, out, 1.0)

    def start(self) -> np.ndarray:
        """lme4's starting value: Λ = I."""
        return self.is_diag.astype(float)

    def lambdas(self, theta: Sequence[float]) -> list[np.ndarray]:
        """The lower-triangular Λ_k of each factor."""
        theta = np.asarray(theta, dtype=float)
        out = [np.zeros((q, q)) for q in self.q]
        for k, lam in enumerate(out):
            sel = self.term == k
            lam[self.row[sel], self.col[sel]] = theta[sel]
        return out

    def theta_from_lambdas(self, lambdas: Sequence[np.ndarray]) -> np.ndarray:
        """Inverse of :meth:`lambdas` (reads the θ positions of each Λ_k)."""
        return np.array([lambdas[k][i, j] for k, i, j in zip(self.term, self.row, self.col,
                                                             strict=True)])

    def psis(self, theta: Sequence[float], sigma: float) -> list[np.ndarray]:
        """Covariances Ψ_k = σ² Λ_k Λ_kᵀ of the random effects of each factor."""
        return [sigma**2 * lam @ lam.T for lam in self.lambdas(theta)]
