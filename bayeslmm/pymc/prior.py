"""``Prior``: a PyMC distribution name and its parameters (the user's way to set a
prior), checked when made.

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

from ..errors import BayesLMMError, suggest

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
        dist = getattr(pm, name, None) if isinstance(name, str) else None
        if not (isinstance(dist, type) and issubclass(dist, pm.Distribution)):
            raise BayesLMMError(f"Unknown PyMC distribution {name!r} in Prior: give the name "
                                "of one, e.g. Prior('HalfNormal', sigma=10).")
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "params", dict(params))
        _check_params(self)

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


#: parameters that must be positive, whatever the family (and alpha/beta but for Cauchy)
_POSITIVE_PARAMS = {"sigma", "tau", "lam", "nu", "scale", "eta", "alpha", "beta"}


def _check_params(prior: Prior) -> None:
    """Refuse, when the prior is made, parameters its family does not take, values that
    are not finite numbers, scales that are not positive, and what PyMC itself refuses."""
    import inspect

    signature = inspect.signature(getattr(pm, prior.name).dist).parameters
    known = [k for k, p in signature.items() if p.kind is p.POSITIONAL_OR_KEYWORD
             or p.kind is p.KEYWORD_ONLY]
    unknown = [k for k in prior.params if k not in known]
    if unknown:
        raise BayesLMMError(f"{prior!r}: {prior.name} has no parameter "
                            f"{', '.join(map(repr, unknown))}.{suggest(unknown[0], known)} "
                            f"It takes {', '.join(known)}.")
    for k, v in prior.params.items():
        if hasattr(v, "owner"):  # a model's pm.Data (priors_as_data)
            continue
        try:
            arr = np.asarray(v, dtype=float)
        except (TypeError, ValueError):
            raise BayesLMMError(f"{prior!r}: parameter {k!r} must be a number or an array "
                                f"of numbers, got {v!r}.") from None
        if not np.all(np.isfinite(arr)):
            raise BayesLMMError(f"{prior!r}: parameter {k!r} must be finite, got {v!r}.")
        positive = k in _POSITIVE_PARAMS and not (prior.name == "Cauchy" and k == "alpha")
        if positive and np.any(arr <= 0):
            raise BayesLMMError(f"{prior!r}: parameter {k!r} must be positive, got {v!r}.")
    lo, hi = prior.params.get("lower"), prior.params.get("upper")
    if lo is not None and hi is not None and np.any(np.asarray(lo) >= np.asarray(hi)):
        raise BayesLMMError(f"{prior!r}: lower must be below upper.")
    try:
        prior.dist()
    except Exception as exc:  # PyMC's own checks, named for the user
        raise BayesLMMError(f"{prior!r} is not a valid {prior.name}: {exc}") from exc


def _fmt(v: Any) -> str:
    if isinstance(v, np.ndarray):
        return np.array2string(v, precision=4, separator=", ")
    return f"{v:.4g}" if isinstance(v, float) else repr(v)
