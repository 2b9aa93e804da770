"""nlme's variance functions ``varConstPower``, ``varFixed`` and ``varComb`` (the
structures; :mod:`~bayeslmm.residual.varfuncs` binds them to rows and computes their sd
weights).

==================================  ==================================  ====================
class                               nlme                                parameters
==================================  ==================================  ====================
``VarConstPower(covariate="v")``    ``varConstPower(form = ~ v)``       ``const``, ``power``:
                                                                        sd ∝ const + |v|^power
``VarFixed(covariate="v")``         ``varFixed(~ v)``                   none: variance ∝ v
``VarComb(VarIdent("g"),            ``varComb(varIdent(form = ~1|g),    each part's, named
VarPower("v"))``                    varPower(form = ~v))``              ``A.``, ``B.``, …
==================================  ==================================  ====================

``VarComb`` multiplies its parts' sd weights (any of VarIdent, VarPower, VarExp,
VarConstPower, VarFixed); its parameters carry nlme's prefixes (``A.Female``,
``B.power``; PyMC variables ``A.varident_ratio``, ``B.power``). ``covariate="fitted"``
(VarConstPower's default, as nlme's) uses the conditional mean, as VarPower() does.

VarFixed with known sampling variances ``v`` is the meta-analysis model's residual with
σ fixed at 1 (``LMM(..., sigma=1.0)``, nlme's ``lmeControl(sigma = 1)``); with σ free the
v are known up to a common factor.

Examples
--------
>>> VarComb(blm.VarIdent(by="Sex"), blm.VarPower(covariate="age"))
VarComb(VarIdent(by='Sex'), VarPower(covariate='age'))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import BayesLMMError

__all__ = ["VarConstPower", "VarFixed", "VarComb", "NEW_VARIANCES", "parts_of",
           "covariate_columns"]


@dataclass(frozen=True)
class VarConstPower:
    """Residual sd ``σ · (const + |v|^power)`` (nlme's ``varConstPower``).

    ``covariate="fitted"`` (the default) uses the conditional mean. PyMC variables
    ``const`` (> 0) and ``power``.

    Examples
    --------
    >>> m = blm.LMM("biomass ~ z", blm.datasets.load("fieldplots"),
    ...             residual=blm.VarConstPower(covariate="area"))
    >>> {k: round(v, 3) for k, v in m.fit_map("ML").residual_params.items()}  # nlme
    {'const': 5.08, 'power': 1.333}
    """

    covariate: str = "fitted"


@dataclass(frozen=True)
class VarFixed:
    """Known variances up to σ²: residual variance ``σ² · v`` (nlme's ``varFixed``).

    ``v`` must be positive; no parameters. With ``LMM(..., sigma=1.0)`` the v are the
    variances themselves (the meta-analysis model). For lme4's prior weights w
    (variance σ²/w) see ``LMM(..., weights=)``.

    Examples
    --------
    >>> m = blm.LMM("yi ~ 1 + (1 | trial)", blm.datasets.load("bcg"),
    ...             residual=blm.VarFixed(covariate="vi"), sigma=1.0)
    >>> round(float(m.fit_map("REML").fixef["Intercept"]), 4)  # metafor's rma: -0.7145
    -0.7145
    """

    covariate: str


class VarComb:
    """The product of variance functions (nlme's ``varComb``): sd weights multiply.

    Parameters
    ----------
    *parts
        Two or more of VarIdent, VarPower, VarExp, VarConstPower, VarFixed.

    Examples
    --------
    >>> m = blm.LMM("distance ~ age + Sex", blm.datasets.load("Orthodont"),
    ...             residual=blm.VarComb(blm.VarIdent(by="Sex"), blm.VarPower(covariate="age")))
    >>> {k: round(v, 4) for k, v in m.fit_map("ML").residual_params.items()}  # nlme
    {'A.Male': 1.0, 'A.Female': 0.9305, 'B.power': 0.0828}
    """

    __slots__ = ("parts",)

    def __init__(self, *parts: Any) -> None:
        # the parts' types are checked by Residual (which knows every variance function)
        if len(parts) < 2:
            raise BayesLMMError(f"VarComb takes two or more of VarIdent, VarPower, VarExp, "
                                f"VarConstPower, VarFixed; got {parts!r}.")
        object.__setattr__(self, "parts", tuple(parts))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("VarComb is immutable.")

    def __repr__(self) -> str:
        return f"VarComb({', '.join(map(repr, self.parts))})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, VarComb) and self.parts == other.parts

    def __hash__(self) -> int:
        return hash(("VarComb", self.parts))


NEW_VARIANCES = (VarConstPower, VarFixed, VarComb)


def parts_of(variance: Any) -> tuple:
    """The parts of a variance function (itself, unless a VarComb).

    >>> parts_of(VarFixed("v"))
    (VarFixed(covariate='v'),)
    """
    return variance.parts if isinstance(variance, VarComb) else (variance,)


def covariate_columns(variance: Any) -> list[str]:
    """The data columns a variance function reads.

    >>> covariate_columns(VarComb(blm.VarIdent("g"), blm.VarPower(), VarFixed("v")))
    ['g', 'v']
    """
    cols = []
    for p in parts_of(variance):
        col = getattr(p, "by", None) or p.covariate
        if col != "fitted":
            cols.append(col)
    return cols
