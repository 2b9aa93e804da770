"""Residual structures as in nlme, ``ε ~ N(0, σ²Λ)``.

The structures themselves (:mod:`~bayeslmm.residual.structures`,
:mod:`~bayeslmm.residual.correlations`, :mod:`~bayeslmm.residual.variances`), bound to a
design's rows (:mod:`~bayeslmm.residual.bind`), and their algebra: whitening,
log-determinants, log-densities (:mod:`~bayeslmm.residual.algebra`, with the dense
correlations' in :mod:`~bayeslmm.residual.dense_corr` and the variance functions' in
:mod:`~bayeslmm.residual.varfuncs`).

Examples
--------
>>> from bayeslmm.residual import AR1, Residual, VarIdent
>>> Residual(variance=VarIdent(by="Sex"), correlation=AR1(group="Subject"))
Residual(variance=VarIdent(by='Sex'), correlation=AR1(group='Subject', time=None))
"""

from .correlations import CorARMA, CorExp, CorGaus, CorLin, CorRatio, CorSpher, CorSymm
from .structures import (
    AR1,
    CAR1,
    CompSymm,
    Residual,
    VarExp,
    VarIdent,
    VarPower,
    as_residual,
    parse_residual,
    residual_columns,
)
from .variances import VarComb, VarConstPower, VarFixed

__all__ = ["VarIdent", "VarPower", "VarExp", "AR1", "CAR1", "CompSymm", "Residual",
           "CorSymm", "CorARMA", "CorExp", "CorGaus", "CorSpher", "CorRatio", "CorLin",
           "VarConstPower", "VarFixed", "VarComb",
           "as_residual", "residual_columns", "parse_residual"]
