"""Cross-products per stratum of a factor: what nlme's ``varIdent`` needs out of core.

With residual sds σδₛ constant within each stratum s (the levels of a factor), whitening
the rows divides stratum s's rows by δₛ, so the whitened cross-products are

    [Z X y]ᵀ Λ⁻¹ [Z X y] = Σₛ δₛ⁻² [Z X y]ₛᵀ[Z X y]ₛ,    log|Λ| = 2 Σₛ nₛ log δₛ,

a weighted sum of the strata's own cross-products: one pass over the rows gives every
likelihood evaluation, whatever δ. Chunks' :class:`StrataProducts` add up stratum by
stratum (the keys are the factor's raw values until :meth:`StrataProducts.labelled`
fixes nlme's level order).

Examples
--------
>>> import bayeslmm as blm
>>> from bayeslmm.formula.design import build_design
>>> d = build_design("distance ~ age + (1 | Subject)", blm.datasets.load("Orthodont"))
>>> sp_ = StrataProducts.of_design(d, d.data["Sex"].to_numpy())
>>> s = sp_.labelled(["Male", "Female"])
>>> s.labels, s.counts
(['Male', 'Female'], [64, 44])
>>> whole = CrossProducts.from_design(d)
>>> bool(np.allclose(s.weighted(np.ones(2)).Arr, whole.Arr))
True
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from .crossprod import CrossProducts

__all__ = ["StrataProducts"]


@dataclass(frozen=True)
class StrataProducts:
    """The cross-products of the rows of each stratum (see the module doc).

    Attributes
    ----------
    keys : tuple
        The strata's raw values (chunks), or their labels once :meth:`labelled`.
    parts : tuple of CrossProducts
        Each stratum's [Z X y]ᵀ[Z X y], in the order of ``keys``.
    """

    keys: tuple
    parts: tuple

    @classmethod
    def of_design(cls, design, strata) -> StrataProducts:
        """The strata's cross-products of an in-memory design; ``strata`` holds each
        row's stratum (its raw value)."""
        strata = np.asarray(strata, dtype=object)
        keys = tuple(pd.unique(strata))
        parts = []
        for k in keys:
            rows = np.flatnonzero(strata == k)
            terms = [replace(t, codes=t.codes[rows], Z=t.Z[rows]) for t in design.terms]
            sub = replace(design, y=design.y[rows], X=design.X[rows], terms=terms)
            parts.append(CrossProducts.from_design(sub))
        return cls(keys, tuple(parts))

    def __add__(self, other: StrataProducts) -> StrataProducts:
        """Stratum by stratum (a stratum absent from one side is kept as is)."""
        if not isinstance(other, StrataProducts):
            return NotImplemented
        mine = dict(zip(self.keys, self.parts, strict=True))
        for k, cp in zip(other.keys, other.parts, strict=True):
            mine[k] = mine[k] + cp if k in mine else cp
        return StrataProducts(tuple(mine), tuple(mine.values()))

    @property
    def labels(self) -> list[str]:
        """The strata's labels (text)."""
        return [str(k) for k in self.keys]

    @property
    def counts(self) -> list[int]:
        """Rows per stratum."""
        return [int(cp.n) for cp in self.parts]

    def labelled(self, order: list[str]) -> StrataProducts:
        """Keyed by label, in ``order`` (nlme's: the reference level first)."""
        by = {str(k): cp for k, cp in zip(self.keys, self.parts, strict=True)}
        return StrataProducts(tuple(order), tuple(by[k] for k in order))

    def transform_xy(self, M: np.ndarray) -> StrataProducts:
        """Each stratum's :meth:`CrossProducts.transform_xy` (columns of X dropped)."""
        return StrataProducts(self.keys, tuple(cp.transform_xy(M) for cp in self.parts))

    def weighted(self, w) -> CrossProducts:
        """Σₛ wₛ [Z X y]ₛᵀ[Z X y]ₛ (wₛ = δₛ⁻²: the whitened rows' cross-products)."""
        w = np.asarray(w, dtype=float)
        first = self.parts[0]
        A11 = sum(wk * cp.A11 for wk, cp in zip(w, self.parts, strict=True))
        C1z = sum(wk * cp.C1z for wk, cp in zip(w, self.parts, strict=True)).tocsr()
        C1xy = sum(wk * cp.C1xy for wk, cp in zip(w, self.parts, strict=True))
        Arr = sum(wk * cp.Arr for wk, cp in zip(w, self.parts, strict=True))
        return CrossProducts(sum(self.counts), first.p, first.order, first.q, first.m,
                             A11, C1z, C1xy, Arr, float(Arr[-1, -1]))
