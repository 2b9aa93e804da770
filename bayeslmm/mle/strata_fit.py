"""nlme's fits out of core: the criterion of :mod:`bayeslmm.mle.lme` on statistics
summed over the partitions instead of the rows: ``varIdent``'s cross-products of each
stratum (:mod:`bayeslmm.linalg.strata`), or AR1's, CAR1's (few gaps) and CompSymm's
(:mod:`bayeslmm.residual.series`).

At residual parameters u the whitened cross-products are ``Σ_k c_k(u) S_k`` and log|Λ|
is closed form (for VarIdent alone: Σₛ δₛ⁻² [Z X y]ₛᵀ[Z X y]ₛ and 2 Σₛ nₛ log δₛ): the
very criterion the rows give (the same centring of the variance function by its
geometric mean, so the search is the same), with no pass over the rows.

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
from ..residual.closed_forms import mean_log_sd
from ..residual.sufficient import statistics
from .lme import ResidualCriterion, fit_lme

__all__ = ["StrataCriterion", "fit_strata"]


class StrataCriterion(ResidualCriterion):
    """:class:`~bayeslmm.mle.lme.ResidualCriterion` on an out-of-core design: the
    structure's statistics summed over the partitions
    (:func:`~bayeslmm.residual.sufficient.statistics`: VarIdent's levels' cross-products,
    or those of AR1, CAR1 and CompSymm), combined at each evaluation.

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
        self.stats = statistics(design, rd)
        self._cache: OrderedDict = OrderedDict()

    def centred(self, u) -> tuple[dict, float]:
        """The parameters at u and the log of the variance function's geometric mean
        over the rows (VarIdent; 0 without)."""
        p = self.params(u)
        return p, mean_log_sd(self.stats.strata_rows, p)

    def products_at(self, u: np.ndarray) -> tuple[PLS | None, float]:
        """The PLS of the statistics' combination and log|Λ| at u (centred)."""
        try:
            with np.errstate(all="ignore"):
                p, m = self.centred(u)
                ld = self.stats.logdet(p, m)
                cp = self.stats.cross_products(p, m)
            ok = np.isfinite(ld) and np.isfinite(cp.Arr).all()
            return (make_pls(cp, self.layout, self.sigma_at(m)), ld) if ok else (None, np.inf)
        except (ValueError, np.linalg.LinAlgError):  # outside the domain
            return None, np.inf


def fit_strata(design, rd: ResidualDesign, method: str, *, maxiter: int | None = None,
               sigma: float | None = None):
    """ML or REML with a residual structure on an out-of-core design (:func:`fit_lme`
    on :class:`StrataCriterion`).

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
