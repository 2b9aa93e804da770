"""nlme's general within-group correlations, built as a dense matrix per group.

=====================================  ==================================  ===================
class                                  nlme                                parameters
=====================================  ==================================  ===================
``CorSymm(group="g")``                 ``corSymm(form = ~ 1 | g)``         ``cor(j,k)``, each
                                                                           pair of positions
``CorARMA(p=1, q=1, group="g")``       ``corARMA(form = ~ 1 | g, p, q)``   ``Phi1..``,
                                                                           ``Theta1..``
``CorExp(coords="x + y", group="g")``  ``corExp(form = ~ x + y | g)``      ``range``, ``nugget``
``CorGaus``, ``CorSpher``,             ``corGaus``, ``corSpher``,          the same
``CorRatio``, ``CorLin``               ``corRatio``, ``corLin``
=====================================  ==================================  ===================

The spatial family's correlation at distance ``d`` is ``(1 − nugget) · f(d / range)``
(``nugget = 0`` without ``nugget=True``), with ``f(s)`` = ``exp(−s)`` (Exp),
``exp(−s²)`` (Gaus), ``1 − 1.5s + 0.5s³`` for s < 1 (Spher), ``1 / (1 + s²)``
(Ratio), ``1 − s`` for s < 1 (Lin); distances are Euclidean, Manhattan or maximum
(nlme's ``metric``) between the rows' ``coords`` within a group. As in nlme, the
spherical and linear ranges are at least the smallest distance in the data.

The classes hold no data; :mod:`bayeslmm.residual.dense_corr` binds them to rows and
does their algebra (a Cholesky factor per group: groups are small).

Examples
--------
>>> CorExp(coords="x + y", group="field", nugget=True)
CorExp(coords=('x', 'y'), group='field', nugget=True, metric='euclidean')
>>> CorARMA(p=1, q=1, group="Subject").param_labels
['Phi1', 'Theta1']
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import BayesLMMError

__all__ = ["CorSymm", "CorARMA", "CorExp", "CorGaus", "CorSpher", "CorRatio", "CorLin",
           "SPATIAL", "DENSE_CORRELATIONS", "METRICS"]

#: nlme's ``metric`` → SciPy's ``cdist`` metric.
METRICS = {"euclidean": "euclidean", "manhattan": "cityblock", "maximum": "chebyshev"}


@dataclass(frozen=True)
class CorSymm:
    """Unstructured (general) correlation within groups, nlme's ``corSymm``.

    Every pair of positions within a group has its own correlation. Positions are the
    rows' order within the group or, with ``time``, the distinct values of that
    integer column (rows of a group at times 1, 2, 4 take rows and columns 1, 2, 4
    of the full matrix, as nlme's ``corSymm(form = ~ t | g)``). Parameters
    ``cor(j,k)`` (j < k, 1-based positions; PyMC variable ``cor_symm``, an LKJ
    correlation).

    Examples
    --------
    >>> m = blm.LMM("distance ~ age + Sex", blm.datasets.load("Orthodont"),
    ...             residual=blm.CorSymm(group="Subject"))
    >>> fit = m.fit_map("ML")
    >>> round(fit.residual_params["cor(1,2)"], 4), round(fit.loglik, 3)  # nlme: 0.5778
    (0.5778, -213.883)
    """

    group: str | None = None
    time: str | None = None


@dataclass(frozen=True)
class CorARMA:
    """ARMA(p, q) correlation within groups, nlme's ``corARMA``.

    ``x_t = Σ Phi_i x_{t−i} + e_t + Σ Theta_j e_{t−j}``; the correlation of rows at
    integer times s, t is the ARMA autocorrelation at lag |s − t| (rows in data order
    without ``time``). Stationary and invertible by construction: the parameters are
    reached, as in nlme, from partial autocorrelations in (−1, 1) (PyMC variable
    ``arma_pacf``; ``Phi1..``, ``Theta1..`` derived from it).

    Examples
    --------
    >>> CorARMA(p=2, group="Subject").param_labels
    ['Phi1', 'Phi2']
    """

    p: int = 1
    q: int = 0
    group: str | None = None
    time: str | None = None

    def __post_init__(self) -> None:
        for k in ("p", "q"):
            v = getattr(self, k)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise BayesLMMError(f"CorARMA({k}=...) must be a whole number ≥ 0, got {v!r}.")
        if self.p + self.q == 0:
            raise BayesLMMError("CorARMA needs p > 0 or q > 0 (p = q = 0 is iid residuals).")

    @property
    def param_labels(self) -> list[str]:
        """nlme's names: ``Phi1..Phip``, ``Theta1..Thetaq``.

        Examples
        --------
        >>> CorARMA(p=1, q=2).param_labels
        ['Phi1', 'Theta1', 'Theta2']
        """
        return [f"Phi{i + 1}" for i in range(self.p)] + [f"Theta{j + 1}" for j in range(self.q)]


@dataclass(frozen=True)
class _Spatial:
    coords: tuple[str, ...] | str = ()
    group: str | None = None
    nugget: bool = False
    metric: str = "euclidean"

    #: nlme's printed name and the code of the correlation function
    nlme_title = ""
    kind = ""

    def __post_init__(self) -> None:
        coords = self.coords
        if isinstance(coords, str):
            coords = tuple(c.strip() for c in coords.split("+"))
        coords = tuple(coords)
        if not coords or not all(isinstance(c, str) and c for c in coords):
            raise BayesLMMError(f"{type(self).__name__}(coords=...) takes one or more column "
                                f"names, e.g. ('x', 'y') or 'x + y', got {self.coords!r}.")
        object.__setattr__(self, "coords", coords)
        if self.metric not in METRICS:
            raise BayesLMMError(f"{type(self).__name__}(metric=...) is one of "
                                f"{sorted(METRICS)}, got {self.metric!r}.")
        if not isinstance(self.nugget, bool):
            raise BayesLMMError(f"{type(self).__name__}(nugget=...) is True or False, got "
                                f"{self.nugget!r}.")

    @property
    def time(self) -> None:
        """No time: rows keep their data order within a group.

        Examples
        --------
        >>> CorExp(coords="x").time is None
        True
        """
        return None

    @property
    def param_labels(self) -> list[str]:
        """``range`` and, with a nugget, ``nugget``.

        Examples
        --------
        >>> CorGaus(coords="x").param_labels
        ['range']
        """
        return ["range", "nugget"] if self.nugget else ["range"]


@dataclass(frozen=True)
class CorExp(_Spatial):
    """Exponential spatial correlation ``exp(−d / range)``, nlme's ``corExp``.

    Examples
    --------
    >>> CorExp(coords=("latitude", "longitude"), nugget=True).param_labels
    ['range', 'nugget']
    """

    nlme_title = "Exponential spatial correlation"
    kind = "exp"


@dataclass(frozen=True)
class CorGaus(_Spatial):
    """Gaussian spatial correlation ``exp(−(d / range)²)``, nlme's ``corGaus``.

    Examples
    --------
    >>> CorGaus(coords="x").coords
    ('x',)
    """

    nlme_title = "Gaussian spatial correlation"
    kind = "gaus"


@dataclass(frozen=True)
class CorSpher(_Spatial):
    """Spherical spatial correlation, nlme's ``corSpher``.

    ``1 − 1.5 s + 0.5 s³`` for s = d / range < 1, else 0.

    Examples
    --------
    >>> CorSpher(coords=("x", "y"), metric="manhattan").metric
    'manhattan'
    """

    nlme_title = "Spherical spatial correlation"
    kind = "spher"


@dataclass(frozen=True)
class CorRatio(_Spatial):
    """Rational quadratic spatial correlation ``1 / (1 + (d / range)²)``, nlme's corRatio.

    Examples
    --------
    >>> CorRatio(coords="x", group="g").group
    'g'
    """

    nlme_title = "Rational quadratic spatial correlation"
    kind = "ratio"


@dataclass(frozen=True)
class CorLin(_Spatial):
    """Linear spatial correlation ``1 − d / range`` (0 beyond the range), nlme's ``corLin``.

    Positive definite in one dimension only (as in nlme, not checked beforehand: a
    range where a group's matrix is not positive definite is outside the domain).

    Examples
    --------
    >>> CorLin(coords="age", group="Subject", nugget=True).param_labels
    ['range', 'nugget']
    """

    nlme_title = "Linear spatial correlation"
    kind = "lin"


SPATIAL = (CorExp, CorGaus, CorSpher, CorRatio, CorLin)
DENSE_CORRELATIONS = (CorSymm, CorARMA, *SPATIAL)
