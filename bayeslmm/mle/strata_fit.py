"""nlme's ``varIdent`` fitted out of core: the criterion of :mod:`bayeslmm.mle.lme` on
the cross-products of each stratum (:mod:`bayeslmm.linalg.strata`) instead of the rows.

At residual parameters u (log sd ratios, the reference level 0) the whitened
cross-products are Σₛ δₛ⁻² [Z X y]ₛᵀ[Z X y]ₛ and log|Λ| = 2 Σₛ nₛ log δₛ: the very
criterion the rows give (the same centring of the variance function by its geometric
mean, so the search is the same), with no pass over the rows.

Examples
--------
>>> import dask.dataframe as dd, bayeslmm as blm
>>> df = blm.datasets.load("Orthodont")
>>> m = blm.LMM("distance ~ age + Sex + (1 | Subject)", dd.from_pandas(df, npartitions=3),
...             residual=blm.VarIdent(by="Sex"))
>>> fit = fit_lme(m.design, m.residual, "REML", criterion=StrataCriterion)
>>> {k: round(v, 4) for k, v in fit.residual_params.items()}   # nlme: 0.4541
{'Male': 1.0, 'Female': 0.4541}
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from ..linalg.fixed_sigma import make_pls
from ..linalg.pls import PLS
from ..linalg.theta import ThetaLayout
from ..residual.algebra import initial_unconstrained
from ..residual.bind import ResidualDesign
from .lme import ResidualCriterion, fit_lme

__all__ = ["StrataCriterion", "fit_strata"]


class StrataCriterion(ResidualCriterion):
    """:class:`~bayeslmm.mle.lme.ResidualCriterion` of ``VarIdent`` on an out-of-core
    design (its ``strata``: the cross-products of each level, nlme's order).

    Examples
    --------
    >>> import dask.dataframe as dd, bayeslmm as blm
    >>> df = blm.datasets.load("Orthodont")
    >>> m = blm.LMM("distance ~ age + (1 | Subject)", dd.from_pandas(df, npartitions=2),
    ...             residual=blm.VarIdent(by="Sex"))
    >>> c = StrataCriterion(m.design, m.residual, reml=True)
    >>> mem = blm.LMM("distance ~ age + (1 | Subject)", df, residual=blm.VarIdent(by="Sex"))
    >>> x = c.start() + 0.1
    >>> bool(abs(c.value(x) - ResidualCriterion(mem.design, mem.residual, True).value(x))
    ...      < 1e-9)
    True
    """

    def __init__(self, design, rd: ResidualDesign, reml: bool,
                 fitted: np.ndarray | None = None, sigma: float | None = None):
        self.design, self.rd, self.reml, self.fitted, self.sigma = design, rd, reml, None, sigma
        self.layout = ThetaLayout.from_terms(design.terms)
        self.n_theta = self.layout.size
        self.n_u = len(initial_unconstrained(rd))
        self.strata = design.strata
        self.counts = np.asarray(self.strata.counts, dtype=float)
        self._cache: OrderedDict = OrderedDict()

    def _log_sd(self, u) -> tuple[np.ndarray, float]:
        """log δ per level and their mean over the rows (the centring)."""
        logd = np.concatenate([[0.0], np.asarray(u, dtype=float)])
        return logd, float(self.counts @ logd / self.counts.sum())

    def centred(self, u) -> tuple[dict, float]:
        """The parameters at u and the log of the variance function's geometric mean."""
        return self.params(u), self._log_sd(u)[1]

    def at(self, u) -> tuple[PLS | None, float]:
        """The PLS of the strata's weighted cross-products and log|Λ| (centred: 0)."""
        u = np.asarray(u, dtype=float)
        key = u.tobytes()
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        logd, m = self._log_sd(u)
        with np.errstate(all="ignore"):
            c = logd - m
            ld = float(2.0 * self.counts @ c)
            cp = self.strata.weighted(np.exp(-2.0 * c))
        ok = np.isfinite(ld) and np.isfinite(cp.Arr).all()
        out = (make_pls(cp, self.layout, self.sigma_at(m)), ld) if ok else (None, np.inf)
        self._cache[key] = out
        if len(self._cache) > 2 * self.n_u + 3:
            self._cache.popitem(last=False)
        return out


def fit_strata(design, rd: ResidualDesign, method: str, *, maxiter: int | None = None,
               sigma: float | None = None):
    """ML or REML with ``VarIdent`` on an out-of-core design (:func:`fit_lme` on
    :class:`StrataCriterion`).

    Examples
    --------
    >>> import dask.dataframe as dd, bayeslmm as blm
    >>> df = blm.datasets.load("Orthodont")
    >>> m = blm.LMM("distance ~ age + (1 | Subject)", dd.from_pandas(df, npartitions=2),
    ...             residual=blm.VarIdent(by="Sex"))
    >>> round(fit_strata(m.design, m.residual, "ML").loglik, 3)  # as the rows in memory give
    -212.847
    """
    return fit_lme(design, rd, method, maxiter=maxiter, criterion=StrataCriterion, sigma=sigma)
