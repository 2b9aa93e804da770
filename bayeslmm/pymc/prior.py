"""``Prior``: a PyMC distribution name and its parameters (the user's way to set a prior).

Examples
--------
>>> p = Prior("HalfNormal", sigma=10)
>>> p
Prior('HalfNormal', sigma=10)
>>> p.dist(shape=2).owner is not None
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pymc as pm

from ..errors import BayesLMMError

__all__ = ["Prior", "POSITIVE_FAMILIES"]

#: Distribution families a scale parameter's prior may take (positive support).
POSITIVE_FAMILIES = {"HalfNormal", "HalfStudentT", "HalfCauchy", "Exponential", "Gamma",
                     "InverseGamma", "LogNormal", "Weibull", "Uniform", "TruncatedNormal"}


@dataclass(frozen=True)
class Prior:
    """A prior: a PyMC distribution name and its parameters.

    Parameters
    ----------
    name : str
        A distribution in ``pymc`` (``"Normal"``, ``"StudentT"``, ``"HalfNormal"`` ...).
    **params
        Its parameters, scalars or arrays (broadcast over the coefficients).

    Examples
    --------
    >>> import bayeslmm as blm
    >>> m = blm.LMM("Reaction ~ Days + (Days | Subject)", blm.datasets.load("sleepstudy"),
    ...             priors={"sigma": blm.Prior("HalfNormal", sigma=50)})
    >>> m.priors["sigma"]
    "Prior('HalfNormal', sigma=50)"
    """

    name: str
    params: dict[str, Any] = field(default_factory=dict)

    def __init__(self, name: str, **params: Any) -> None:
        if not isinstance(name, str) or not hasattr(pm, name):
            raise BayesLMMError(f"Unknown PyMC distribution {name!r} in Prior.")
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "params", dict(params))

    def __repr__(self) -> str:
        args = "".join(f", {k}={_fmt(v)}" for k, v in self.params.items())
        return f"Prior({self.name!r}{args})"

    def dist(self, **kwargs: Any):
        """An unnamed PyMC distribution (``pm.<name>.dist``).

        Examples
        --------
        >>> d = Prior("Normal", mu=0, sigma=[1.0, 10.0]).dist()
        >>> pm.draw(d, random_seed=1).shape
        (2,)
        """
        return getattr(pm, self.name).dist(**self.params, **kwargs)

    def rv(self, name: str, **kwargs: Any):
        """A named random variable inside the current model context.

        Examples
        --------
        >>> with pm.Model() as model:
        ...     x = Prior("HalfNormal", sigma=2).rv("x")
        >>> model.free_RVs
        [x]
        """
        return getattr(pm, self.name)(name, **self.params, **kwargs)


def _fmt(v: Any) -> str:
    if isinstance(v, np.ndarray):
        return np.array2string(v, precision=4, separator=", ")
    return f"{v:.4g}" if isinstance(v, float) else repr(v)
