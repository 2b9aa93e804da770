"""lme4's variance parameters of a fit: standard deviations and correlations of each
random-effect term, then σ (lme4's ``.sig01``, ``.sig02``, …, ``.sigma``), their
names in bayeslmm, bounds, and the maps to and from θ.

lme4 orders its random-effect terms by number of levels (most first; ties in formula
order) and lists each term's sd/cor matrix by the columns of its lower triangle. A
bayeslmm term (one per grouping factor) holds lme4's terms on that factor as its
correlated ``blocks``; each block is one lme4 term here. Names:

====================================  ========================  =========================
bayeslmm                              lme4 (``oldNames=TRUE``)   lme4 (``oldNames=FALSE``)
====================================  ========================  =========================
``sd_Subject[Intercept]``             ``.sig01``                ``sd_(Intercept)|Subject``
``corr_Subject[Intercept, Days]``     ``.sig02``                ``cor_Days.(Intercept)|Subject``
``sd_Subject[Days]``                  ``.sig03``                ``sd_Days|Subject``
``sigma``                             ``.sigma``                ``sigma``
``Intercept``, ``Days``               ``(Intercept)``, ``Days``  (the same)
====================================  ========================  =========================

Examples
--------
>>> import bayeslmm as blm
>>> from bayeslmm.formula.design import build_design
>>> vp = VarPar.from_design(build_design("Reaction ~ Days + (Days | Subject)",
...                                      blm.datasets.load("sleepstudy")))
>>> vp.names
['sd_Subject[Intercept]', 'corr_Subject[Intercept, Days]', 'sd_Subject[Days]', 'sigma']
>>> vp.lme4_names
['.sig01', '.sig02', '.sig03', '.sigma']
>>> x = vp.from_theta(np.array([0.9667, 0.0152, 0.2309]), 25.59)
>>> np.round(x, 3).tolist(), np.round(vp.to_theta(x), 4).tolist()
([24.738, 0.066, 5.922, 25.59], [0.9667, 0.0152, 0.2309])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..linalg.theta import ThetaLayout
from ..results.base import lme4_name

__all__ = ["VarPar", "lme4_order"]


def lme4_order(terms) -> list[tuple[int, tuple[int, ...]]]:
    """(term index, block) of each lme4 random-effect term, in lme4's order: by number
    of levels, most first, ties in design order (a stable sort).

    >>> T = lambda m, blocks: type("T", (), {"n_levels": m, "blocks": blocks})()
    >>> lme4_order([T(10, ((0,),)), T(30, ((0,),))])
    [(1, (0,)), (0, (0,))]
    """
    items = [(k, b) for k, t in enumerate(terms) for b in t.blocks]
    return sorted(items, key=lambda kb: -terms[kb[0]].n_levels)


def _psd_cholesky(R: np.ndarray) -> np.ndarray | None:
    """Lower factor C with CCᵀ = R for a positive semi-definite correlation matrix
    (a zero column where a pivot vanishes: a correlation at ±1); None if R is not PSD."""
    q = len(R)
    C = np.zeros_like(R)
    for j in range(q):
        d = R[j, j] - C[j, :j] @ C[j, :j]
        if d < -1e-12:
            return None
        C[j, j] = np.sqrt(max(d, 0.0))
        for i in range(j + 1, q):
            v = R[i, j] - C[i, :j] @ C[j, :j]
            if C[j, j] > 1e-12:
                C[i, j] = v / C[j, j]
            elif abs(v) > 1e-10:
                return None
    return C


@dataclass(frozen=True)
class VarPar:
    """The sd/cor/σ parameter vector of a design's random effects (see module docstring).

    Attributes
    ----------
    layout : ThetaLayout
    entries : list of (int, int, int)
        Per random-effect parameter: θ-layout term, row and column (a diagonal entry
        is an sd, an off-diagonal one a correlation).
    names, lme4_names, lme4_long : list of str
        bayeslmm's, lme4's ``.sigNN`` and lme4's ``oldNames = FALSE`` names (with σ).
    lower, upper : ndarray
        Bounds: sd ≥ 0, −1 ≤ cor ≤ 1, σ ≥ 0.
    blocks : list of (int, tuple of int, list of int)
        Per lme4 term: its θ-layout term, its columns there, its entries' positions.
    """

    layout: ThetaLayout
    entries: list[tuple[int, int, int]]
    names: list[str]
    lme4_names: list[str]
    lme4_long: list[str]
    lower: np.ndarray
    upper: np.ndarray
    blocks: list[tuple[int, tuple[int, ...], list[int]]]

    @classmethod
    def from_design(cls, design) -> VarPar:
        """The parameters of a design's random-effect terms (and σ)."""
        terms = design.terms
        entries, names, long, blocks = [], [], [], []
        for k, block in lme4_order(terms):
            t = terms[k]
            start = len(entries)
            for jj, j in enumerate(block):
                for i in block[jj:]:
                    entries.append((k, i, j))
                    a, b = t.term_names[j], t.term_names[i]
                    if i == j:
                        names.append(f"sd_{t.group}[{a}]")
                        long.append(f"sd_{lme4_name(a)}|{t.group}")
                    else:
                        names.append(f"corr_{t.group}[{a}, {b}]")
                        long.append(f"cor_{lme4_name(b)}.{lme4_name(a)}|{t.group}")
            blocks.append((k, tuple(block), list(range(start, len(entries)))))
        is_sd = np.array([i == j for _, i, j in entries], dtype=bool)
        lower = np.concatenate([np.where(is_sd, 0.0, -1.0), [0.0]])
        upper = np.concatenate([np.where(is_sd, np.inf, 1.0), [np.inf]])
        lme4 = [f".sig{i + 1:02d}" for i in range(len(entries))] + [".sigma"]
        return cls(ThetaLayout.from_terms(terms), entries, names + ["sigma"], lme4,
                   long + ["sigma"], lower, upper, blocks)

    @property
    def size(self) -> int:
        """Number of parameters, σ included."""
        return len(self.names)

    def from_theta(self, theta: np.ndarray, sigma: float) -> np.ndarray:
        """sd/cor/σ at θ and σ (a correlation with a zero sd is 0)."""
        lambdas = self.layout.lambdas(theta)
        out = np.empty(self.size)
        for k, idx, pos_list in self.blocks:
            idx = list(idx)
            C = sigma * lambdas[k][np.ix_(idx, idx)]
            psi = C @ C.T
            sd = np.sqrt(np.diag(psi))
            for p in pos_list:
                _, i, j = self.entries[p]
                a, b = idx.index(i), idx.index(j)
                if a == b:
                    out[p] = sd[a]
                else:
                    den = sd[a] * sd[b]
                    out[p] = psi[a, b] / den if den > 0 else 0.0
        out[-1] = sigma
        return out

    def to_theta(self, x: np.ndarray) -> np.ndarray | None:
        """θ at sd/cor/σ (None where the correlations are not a correlation matrix or
        σ is 0)."""
        sigma = x[-1]
        if not sigma > 0:
            return None
        lambdas = [np.zeros((q, q)) for q in self.layout.q]
        for k, idx, pos_list in self.blocks:
            idx = list(idx)
            q = len(idx)
            R, sd = np.eye(q), np.zeros(q)
            for p in pos_list:
                _, i, j = self.entries[p]
                a, b = idx.index(i), idx.index(j)
                if a == b:
                    sd[a] = x[p]
                else:
                    R[a, b] = R[b, a] = x[p]
            C = _psd_cholesky(R)
            if C is None:
                return None
            lambdas[k][np.ix_(idx, idx)] = sd[:, None] * C / sigma
        return self.layout.theta_from_lambdas(lambdas)
