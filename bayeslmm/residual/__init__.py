"""Residual structures as in nlme, ``ε ~ N(0, σ²Λ)``.

The structures themselves (:mod:`~bayeslmm.residual.structures`), bound to a design's rows
(:mod:`~bayeslmm.residual.bind`), and their algebra: whitening, log-determinants,
log-densities (:mod:`~bayeslmm.residual.algebra`).

Examples
--------
>>> from bayeslmm.residual import AR1, Residual, VarIdent
>>> Residual(variance=VarIdent(by="Sex"), correlation=AR1(group="Subject"))
Residual(variance=VarIdent(by='Sex'), correlation=AR1(group='Subject', time=None))
"""

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

__all__ = ["VarIdent", "VarPower", "VarExp", "AR1", "CAR1", "CompSymm", "Residual",
           "as_residual", "residual_columns", "parse_residual"]
