"""Moments of a column that add up over chunks of rows: count, Σx and Σx² (each an
exact rational of a compensated sum, :mod:`bayeslmm.linalg.exact_sums`) and whether it
takes at most two distinct values.

The data-scaled default priors (:mod:`bayeslmm.pymc.priors`) need, of the response and
of every column of X and Z, its mean, its sd and whether it is two-valued (rstanarm's
rule: such columns are not rescaled); ``center()`` and ``scale()`` need the mean and
sd of their argument. The sums are kept exactly and the mean and sd rounded once from
them, so rows in chunks give the very values of the rows at once.

Examples
--------
>>> x = np.array([1.0, 2.0, 4.0, 8.0])
>>> whole, halves = Moments.of(x), Moments.of(x[:2]) + Moments.of(x[2:])
>>> whole.n, whole.mean, bool(np.isclose(halves.sd(), np.std(x, ddof=1)))
(4, 3.75, True)
>>> Moments.of(np.array([0.0, 1.0, 1.0])).two_valued, whole.two_valued
(True, False)
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from .exact_sums import column_summary

__all__ = ["Moments"]


@dataclass(frozen=True)
class Moments:
    """Count, Σx, Σx² and (at most two) distinct values.

    Attributes
    ----------
    n : int
    s1, s2 : Fraction
        Σx and Σx² (the exact values of their compensated sums).
    values : tuple of float, or None
        The distinct values when there are at most two, else None.
    """

    n: int
    s1: Fraction
    s2: Fraction
    values: tuple[float, ...] | None

    @classmethod
    def of(cls, x: np.ndarray) -> Moments:
        """The moments of one column."""
        x = np.asarray(x, dtype=float).reshape(-1)
        if x.size == 0:
            return cls(0, Fraction(0), Fraction(0), ())
        (v1, r1, v2, r2), values = column_summary(x)
        return cls(int(x.size), Fraction(v1) + Fraction(r1), Fraction(v2) + Fraction(r2),
                   None if values is None else tuple(float(v) for v in values))

    def __add__(self, other: Moments) -> Moments:
        if not isinstance(other, Moments):
            return NotImplemented
        values = None
        if self.values is not None and other.values is not None:
            both = tuple(sorted(set(self.values) | set(other.values)))
            values = both if len(both) <= 2 else None
        return Moments(self.n + other.n, self.s1 + other.s1, self.s2 + other.s2, values)

    @property
    def mean(self) -> float:
        """The mean, rounded once."""
        return float(self.s1 / self.n) if self.n else 0.0

    @property
    def rms(self) -> float:
        """The root mean square √(Σx²/n), rounded once."""
        return float(np.sqrt(float(self.s2 / self.n))) if self.n else 0.0

    @property
    def m2(self) -> float:
        """Σ (x − mean)², rounded once."""
        return float(max(self.s2 - self.s1 * self.s1 / self.n, 0)) if self.n else 0.0

    def sd(self, ddof: int = 1) -> float:
        """The standard deviation (``ddof=1``: the sample sd; 0: formulae's ``scale``)."""
        if self.n <= ddof:
            return 0.0
        return float(np.sqrt(float(max(self.s2 - self.s1 * self.s1 / self.n, 0)
                                   / (self.n - ddof))))

    @property
    def two_valued(self) -> bool:
        """At most two distinct values (a dummy or a constant column)."""
        return self.values is not None
