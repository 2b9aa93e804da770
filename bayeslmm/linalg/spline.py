"""R's interpolating spline of a profile and its inverse (``splines::interpSpline`` and
``splines::backSpline``), as lme4 uses them to turn a profile ζ(x) into intervals.

The forward spline is the natural cubic interpolant of ζ at the profiled points. Its
inverse is piecewise cubic in ζ: on each interval the Hermite cubic through the end
points with slopes 1/ζ'(x) there, the first and last pieces quadratics (R's choice, so
that the ends extrapolate gently), made linear where a quadratic would turn back.
Outside the profiled range the inverse is NaN (R's ``NA``), which lme4's ``confint``
replaces by the parameter's bound.

Examples
--------
>>> import numpy as np
>>> x = np.linspace(-2.0, 3.0, 9)
>>> back = BackSpline.from_profile(x, x / 2)        # ζ = x / 2
>>> np.round(back([-0.5, 0.0, 1.0]), 10).tolist()
[-1.0, 0.0, 2.0]
>>> bool(np.isnan(back([2.0])[0]))                  # beyond ζ(3) = 1.5
True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.interpolate import CubicSpline

__all__ = ["BackSpline", "natural_slopes"]


def natural_slopes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Slopes at the knots of the natural cubic spline through (x, y) (``interpSpline``).

    >>> natural_slopes(np.array([0.0, 1.0, 2.0, 3.0]), np.array([0.0, 1.0, 2.0, 3.0])).tolist()
    [1.0, 1.0, 1.0, 1.0]
    """
    return CubicSpline(x, y, bc_type="natural")(x, 1)


@dataclass(frozen=True)
class BackSpline:
    """x as a piecewise polynomial of ζ: ``knots`` (increasing ζ) and per knot the
    coefficients of ``c0 + c1 d + c2 d² + c3 d³``, d = ζ − knot (R's ``polySpline``)."""

    knots: np.ndarray
    coef: np.ndarray

    @classmethod
    def from_profile(cls, x: Sequence[float], zeta: Sequence[float]) -> BackSpline:
        """The inverse of the natural spline of ζ(x), as ``backSpline(interpSpline(ζ ~ x))``.

        Raises
        ------
        ValueError
            If ζ is not strictly monotone in x at the knots (R: "spline must be monotone").
        """
        x = np.asarray(x, dtype=float)
        zeta = np.asarray(zeta, dtype=float)
        order = np.argsort(x)
        x, zeta = x[order], zeta[order]
        if np.any(np.diff(x) <= 0):
            raise ValueError("knot positions must be strictly increasing")
        if len(x) < 4:
            raise ValueError("at least 4 profiled points are needed for a cubic spline")
        slope = natural_slopes(x, zeta)
        adiff = np.diff(zeta)
        if np.all(adiff < 0):
            rev = True
        elif np.all(adiff > 0):
            rev = False
        else:
            raise ValueError("spline must be monotone")
        kdiff = np.diff(x)
        nk = len(x)
        b = np.zeros((nk, 4))
        b[:, 0] = x
        b[:, 1] = 1.0 / slope
        for i in range(nk - 1):  # Hermite piece: value and slope at the right end
            a = np.array([[adiff[i] ** 2, adiff[i] ** 3], [2 * adiff[i], 3 * adiff[i] ** 2]])
            rhs = np.array([kdiff[i] - adiff[i] * b[i, 1], b[i + 1, 1] - b[i, 1]])
            b[i, 2:4] = np.linalg.solve(a, rhs)
        b[nk - 1, 1:4] = np.nan
        if nk > 2:  # quadratic end pieces
            b[0, 3] = b[nk - 2, 3] = 0.0
            a = np.array([[adiff[0], adiff[0] ** 2], [1.0, 2 * adiff[0]]])
            b[0, 1:3] = np.linalg.solve(a, [kdiff[0], 1.0 / slope[1]])
            b[nk - 2, 2] = (kdiff[nk - 2] - adiff[nk - 2] * b[nk - 2, 1]) / adiff[nk - 2] ** 2
        if b[0, 2] > 0:
            b[0, 2] = 0.0
            b[0, 1] = kdiff[0] / adiff[0]
        if b[nk - 2, 2] < 0:
            b[nk - 2, 2] = 0.0
            b[nk - 2, 1] = kdiff[nk - 2] / adiff[nk - 2]
        knots = zeta
        if rev:
            knots, b = knots[::-1].copy(), b[::-1].copy()
        return cls(knots, b)

    def __call__(self, z: Sequence[float]) -> np.ndarray:
        """x at each ζ (NaN outside the knots), as R's ``predict(polySpline, z)``."""
        z = np.atleast_1d(np.asarray(z, dtype=float))
        k = self.knots
        # R's cut(z, knots): intervals (k_i, k_{i+1}], the first one closed on the left
        i = np.searchsorted(k, z, side="left") - 1
        i[z == k[0]] = 0
        ok = (z >= k[0]) & (z <= k[-1]) & np.isfinite(z)
        out = np.full(z.shape, np.nan)
        j = i[ok]
        d = z[ok] - k[j]
        c = self.coef
        # Horner on the piece's coefficients (NaN-free: the last knot's row is never used
        # here, since cut() puts z = k[-1] into the last interval)
        out[ok] = ((c[j, 3] * d + c[j, 2]) * d + c[j, 1]) * d + c[j, 0]
        return out
