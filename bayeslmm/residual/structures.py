"""Residual structures as in nlme: ``ε_i ~ N(0, σ² Λ_i)``, ``Λ_i = Δ_i C_i Δ_i``.

A variance function Δ (diagonal sd weights) and a within-group correlation C:

==============================  ==============================  =========================
class                           nlme                            parameters (nlme names)
==============================  ==============================  =========================
``VarIdent(by="g")``            ``varIdent(form = ~1 | g)``     sd ratio per level of g
``VarPower(covariate="v")``     ``varPower(form = ~v)``         ``power``: sd ∝ |v|^power
``VarExp(covariate="v")``       ``varExp(form = ~v)``           ``expon``: sd ∝ exp(expon v)
``AR1(group="g", time=None)``   ``corAR1(form = ~t | g)``       ``Phi``: corr Phi^|lag|
``CAR1(time="t", group="g")``   ``corCAR1(form = ~t | g)``      ``Phi``: corr Phi^|t_i-t_j|
``CompSymm(group="g")``         ``corCompSymm(form = ~1 | g)``  ``Rho``: common corr
``Residual(variance, corr.)``   ``weights=, correlation=``      both
==============================  ==============================  =========================

The rest of nlme's structures are in :mod:`~bayeslmm.residual.correlations` (``CorSymm``,
``CorARMA``, the spatial ``CorExp``, ``CorGaus``, ``CorSpher``, ``CorRatio``, ``CorLin``)
and :mod:`~bayeslmm.residual.variances` (``VarConstPower``, ``VarFixed``, ``VarComb``);
``Residual`` and :func:`parse_residual` take them all.

``covariate="fitted"`` (the default of VarPower and VarExp, as nlme's ``varPower()``)
uses the conditional mean ``Xβ + Zb``. σ is nlme's: the sd where the variance function
is 1 (the first level of ``by``; ``|v| = 1``; ``v = 0``).

:func:`bayeslmm.residual.bind.bind` checks a structure against the rows of a design
and returns a :class:`~bayeslmm.residual.bind.ResidualDesign` (plain arrays);
:mod:`bayeslmm.residual.algebra` computes log-densities, whitening and log-determinants
from it. This module holds the structures only (no data).

Examples
--------
>>> import bayeslmm as blm
>>> blm.Residual(variance=blm.VarIdent(by="Sex"), correlation=blm.AR1(group="Subject"))
Residual(variance=VarIdent(by='Sex'), correlation=AR1(group='Subject', time=None))
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any

from ..errors import BayesLMMError
from .correlations import DENSE_CORRELATIONS
from .variances import NEW_VARIANCES, VarComb, covariate_columns

__all__ = ["VarIdent", "VarPower", "VarExp", "AR1", "CAR1", "CompSymm", "Residual",
           "as_residual", "residual_columns", "parse_residual"]


@dataclass(frozen=True)
class VarIdent:
    """A separate residual sd for each level of a factor (nlme's ``varIdent``).

    The sd of a row in level ``l`` is ``σ · ratio[l]``; the first level (the first
    category of a pandas categorical, else the first in sorted order) is the
    reference, with ratio 1. PyMC variable: ``varident_ratio`` (dims
    ``varident_level``: the other levels).

    Examples
    --------
    >>> orthodont = blm.datasets.load("Orthodont")
    >>> m = blm.LMM("distance ~ age + Sex + (1 | Subject)", orthodont,
    ...             residual=blm.VarIdent(by="Sex"))
    >>> {k: round(v, 4) for k, v in m.fit_map().residual_params.items()}  # nlme: 0.4541
    {'Male': 1.0, 'Female': 0.4541}
    """

    by: str


@dataclass(frozen=True)
class VarPower:
    """Residual sd proportional to a power of a covariate (nlme's ``varPower``).

    sd = ``σ · |v|^power``; ``covariate="fitted"`` uses the conditional mean, as
    ``varPower()`` does. Rows with ``v = 0`` are refused. PyMC variable: ``power``.

    Examples
    --------
    >>> orthodont = blm.datasets.load("Orthodont")
    >>> m = blm.LMM("distance ~ age + Sex + (1 | Subject)", orthodont,
    ...             residual=blm.VarPower(covariate="age"))
    >>> round(m.fit_map().residual_params["power"], 4)  # nlme: -0.3006
    -0.3006
    """

    covariate: str = "fitted"


@dataclass(frozen=True)
class VarExp:
    """Residual sd exponential in a covariate (nlme's ``varExp``).

    sd = ``σ · exp(expon · v)``; ``covariate="fitted"`` uses the conditional mean.
    PyMC variable: ``expon``.

    Examples
    --------
    >>> orthodont = blm.datasets.load("Orthodont")
    >>> m = blm.LMM("distance ~ age + Sex + (1 | Subject)", orthodont,
    ...             residual=blm.VarExp(covariate="age"))
    >>> round(m.fit_map().residual_params["expon"], 4)  # nlme: -0.0269
    -0.0269
    """

    covariate: str = "fitted"


@dataclass(frozen=True)
class AR1:
    """First-order autoregressive correlation within groups (nlme's ``corAR1``).

    Rows of a group are ordered by ``time`` (integer valued; gaps allowed, the
    correlation of rows at times s, t is ``Phi^|s - t|``) or, without ``time``, by
    their order in the data (lag 1 between consecutive rows). ``group=None`` makes
    all rows one series. PyMC variable: ``Phi`` in (-1, 1).

    Examples
    --------
    >>> m = blm.LMM("follicles ~ sin(2 * pi * Time) + cos(2 * pi * Time) + (1 | Mare)",
    ...             blm.datasets.load("Ovary"), residual=blm.AR1(group="Mare"))
    >>> round(m.fit_map().residual_params["Phi"], 4)  # nlme: 0.6074
    0.6074
    """

    group: str | None = None
    time: str | None = None


@dataclass(frozen=True)
class CAR1:
    """Continuous-time AR(1) correlation (nlme's ``corCAR1``): ``Phi^|t_i - t_j|``.

    PyMC variable: ``Phi`` in (0, 1).

    Examples
    --------
    >>> orthodont = blm.datasets.load("Orthodont")
    >>> m = blm.LMM("distance ~ age + Sex + (1 | Subject)", orthodont,
    ...             residual=blm.CAR1(time="age", group="Subject"))
    >>> round(m.fit_map().residual_params["Phi"], 4)  # nlme: 0.2419
    0.2419
    """

    time: str
    group: str | None = None


@dataclass(frozen=True)
class CompSymm:
    """Compound symmetry: one correlation ``Rho`` between all rows of a group.

    nlme's ``corCompSymm``. ``Rho`` lies in (-1/(m - 1), 1), m the largest group.

    Examples
    --------
    >>> m = blm.LMM("distance ~ age + Sex", blm.datasets.load("Orthodont"),
    ...             residual=blm.CompSymm(group="Subject"))
    >>> round(m.fit_map().residual_params["Rho"], 4)  # nlme's gls: 0.6145
    0.6145
    """

    group: str | None = None


#: the variance functions a VarComb may multiply
BASIC_VARIANCES = (VarIdent, VarPower, VarExp, *NEW_VARIANCES[:2])
VARIANCES = (VarIdent, VarPower, VarExp, *NEW_VARIANCES)
CORRELATIONS = (AR1, CAR1, CompSymm, *DENSE_CORRELATIONS)
_VARIANCE_NAMES = ", ".join(c.__name__ for c in VARIANCES[:-1]) + " or VarComb"
_CORRELATION_NAMES = ", ".join(c.__name__ for c in CORRELATIONS[:-1]) + " or CorLin"


@dataclass(frozen=True)
class Residual:
    """A variance function and a correlation together: ``Λ = Δ C Δ``.

    Examples
    --------
    >>> r = blm.Residual(variance=blm.VarIdent(by="Sex"),
    ...                  correlation=blm.CompSymm(group="Subject"))
    >>> m = blm.LMM("distance ~ age * Sex", blm.datasets.load("Orthodont"), residual=r)
    >>> {k: round(v, 4) for k, v in m.fit_map().residual_params.items()}  # as nlme's gls
    {'Rho': 0.7343, 'Male': 1.0, 'Female': 0.5818}
    """

    variance: Any = None
    correlation: Any = None

    def __post_init__(self) -> None:
        if self.variance is not None and not isinstance(self.variance, VARIANCES):
            raise BayesLMMError(f"Residual(variance=...) takes {_VARIANCE_NAMES}, "
                                f"got {self.variance!r}.")
        if isinstance(self.variance, VarComb):
            bad = [p for p in self.variance.parts if not isinstance(p, BASIC_VARIANCES)]
            if bad:
                raise BayesLMMError(f"VarComb multiplies VarIdent, VarPower, VarExp, "
                                    f"VarConstPower or VarFixed, got {bad[0]!r}.")
        if self.correlation is not None and not isinstance(self.correlation, CORRELATIONS):
            raise BayesLMMError(f"Residual(correlation=...) takes {_CORRELATION_NAMES}, "
                                f"got {self.correlation!r}.")


def as_residual(residual: Any) -> Residual | None:
    """Normalise ``None``, one structure or a :class:`Residual` to a Residual (or None).

    Examples
    --------
    >>> as_residual(CompSymm(group="g")).correlation
    CompSymm(group='g')
    """
    if residual is None or isinstance(residual, Residual):
        return None if residual == Residual() else residual
    if isinstance(residual, VARIANCES):
        return Residual(variance=residual)
    if isinstance(residual, CORRELATIONS):
        return Residual(correlation=residual)
    raise BayesLMMError(
        f"residual= takes None, a correlation ({_CORRELATION_NAMES}), a variance function "
        f"({_VARIANCE_NAMES}) or blm.Residual(variance=..., correlation=...), got "
        f"{residual!r}."
    )


def residual_columns(residual: Any) -> list[str]:
    """The data columns a structure reads (for the missing-value handling of the design).

    Examples
    --------
    >>> residual_columns(Residual(VarPower("fitted"), CAR1(time="t", group="a:b")))
    ['t', 'a', 'b']
    """
    r = as_residual(residual)
    if r is None:
        return []
    cols: list[str | None] = []
    v, c = r.variance, r.correlation
    if v is not None:
        cols += covariate_columns(v)
    if c is not None:
        cols.append(getattr(c, "time", None))
        cols += list(getattr(c, "coords", ()))
        cols += c.group.split(":") if c.group else []
    return list(dict.fromkeys(x for x in cols if x))


_CLASSES = {c.__name__: c for c in (*VARIANCES, *CORRELATIONS, Residual)}


#: the structures whose arguments may be numbers or True/False (p, q, nugget)
_LITERAL_ARGS = {c.__name__ for c in DENSE_CORRELATIONS}


def _node(node: ast.AST, text: str, literals: bool = False):
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
            and node.func.id in _CLASSES:
        lit = node.func.id in _LITERAL_ARGS
        args = [_node(a, text, lit) for a in node.args]
        kwargs = {k.arg: _node(k.value, text, lit) for k in node.keywords}
        try:
            return _CLASSES[node.func.id](*args, **kwargs)
        except TypeError as exc:
            raise BayesLMMError(f"Cannot read residual structure {text!r}: {exc}.") from exc
    if isinstance(node, ast.Constant) and (node.value is None or isinstance(node.value, str)):
        return node.value
    if literals and isinstance(node, ast.Constant) and isinstance(node.value, bool | int):
        return node.value  # CorARMA(p=1), nugget=True
    if literals and isinstance(node, ast.Tuple | ast.List):  # coords=(x, y)
        return tuple(_node(e, text) for e in node.elts)
    if isinstance(node, ast.Name):  # a bare column name
        return node.id
    raise BayesLMMError(f"Cannot read residual structure {text!r}: write e.g. "
                        "'AR1(group=Subject)' or 'Residual(variance=VarIdent(by=Sex), "
                        f"correlation=CompSymm(group=Subject))'; known: {sorted(_CLASSES)}.")


def parse_residual(text: str) -> Residual | None:
    """Read a structure from text (for the command line); bare names are columns.

    Examples
    --------
    >>> parse_residual("CAR1(time=Time, group='Mare')")
    Residual(variance=None, correlation=CAR1(time='Time', group='Mare'))
    >>> parse_residual("Residual(VarPower(), AR1(Subject))").variance
    VarPower(covariate='fitted')
    """
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise BayesLMMError(f"Cannot read residual structure {text!r}: {exc.msg}.") from exc
    return as_residual(_node(tree.body, text))

