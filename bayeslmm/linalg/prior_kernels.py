"""Log-densities of the priors a mixed model uses, and their derivatives, in numba.

Each family is a code (:data:`FAMILIES`) with up to three parameters; :func:`family_logp`
returns ``log p(x)`` and ``d log p / dx`` exactly as PyMC's distribution of that name
(normalising constants included), so a log-density assembled from these equals PyMC's.
:func:`lkj_chol_logp` is PyMC's ``LKJCholeskyCov`` density of a packed covariance
Cholesky factor (LKJ on the correlations, a scale family on the standard deviations,
and the Jacobian between them), with its gradient in the packed entries.

Examples
--------
>>> import numpy as np
>>> from scipy import stats
>>> lp, d = family_logp(FAMILIES["HalfNormal"], 1.5, np.array([2.0, 0.0, 0.0]))
>>> bool(np.isclose(lp, stats.halfnorm(scale=2.0).logpdf(1.5))), round(d, 6)
(True, -0.375)
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["FAMILIES", "family_logp", "lkj_chol_logp", "lkj_normalizing_constant"]

#: PyMC family name → code, and the parameters (in order) each takes.
FAMILIES = {"Normal": 0, "HalfNormal": 1, "Exponential": 2, "StudentT": 3,
            "HalfStudentT": 4, "HalfCauchy": 5, "Cauchy": 6}
PARAMETERS = {"Normal": ("mu", "sigma"), "HalfNormal": ("sigma",), "Exponential": ("lam",),
              "StudentT": ("nu", "mu", "sigma"), "HalfStudentT": ("nu", "sigma"),
              "HalfCauchy": ("beta",), "Cauchy": ("alpha", "beta")}

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
_LOG2 = math.log(2.0)
_LOGPI = math.log(math.pi)


@numba.njit(cache=True)
def family_logp(code, x, par):  # pragma: no cover - compiled
    """``(log p(x), d log p / dx)`` of family ``code`` with parameters ``par`` (length 3,
    in :data:`PARAMETERS` order)."""
    if code == 0:  # Normal(mu, sigma)
        z = (x - par[0]) / par[1]
        return -0.5 * z * z - math.log(par[1]) - _HALF_LOG_2PI, -z / par[1]
    if code == 1:  # HalfNormal(sigma)
        z = x / par[0]
        return _LOG2 - _HALF_LOG_2PI - math.log(par[0]) - 0.5 * z * z, -z / par[0]
    if code == 2:  # Exponential(lam)
        return math.log(par[0]) - par[0] * x, -par[0]
    if code == 3 or code == 4:  # StudentT(nu, mu, sigma), HalfStudentT(nu, sigma)
        nu = par[0]
        mu, s = (par[1], par[2]) if code == 3 else (0.0, par[1])
        z = (x - mu) / s
        lp = (math.lgamma(0.5 * (nu + 1.0)) - math.lgamma(0.5 * nu)
              - 0.5 * math.log(nu * math.pi) - math.log(s)
              - 0.5 * (nu + 1.0) * math.log1p(z * z / nu))
        return lp + (_LOG2 if code == 4 else 0.0), -(nu + 1.0) * z / (s * (nu + z * z))
    if code == 5:  # HalfCauchy(beta)
        b = par[0]
        return _LOG2 - _LOGPI - math.log(b) - math.log1p((x / b) ** 2), -2.0 * x / (b * b + x * x)
    # Cauchy(alpha, beta)
    z = (x - par[0]) / par[1]
    return -_LOGPI - math.log(par[1]) - math.log1p(z * z), -2.0 * z / (par[1] * (1.0 + z * z))


@numba.njit(cache=True)
def lkj_chol_logp(L, eta, sd_code, sd_par):  # pragma: no cover - compiled
    """PyMC's ``LKJCholeskyCov`` log-density (without its normalising constant, see
    :func:`lkj_normalizing_constant`) of the lower Cholesky factor ``L`` of a covariance,
    and its gradient in ``L``'s lower triangle. ``sd_par``: (n, 3), one row of the sd
    prior's parameters per standard deviation."""
    n = L.shape[0]
    grad = np.zeros((n, n))
    lp = 0.0
    for i in range(n):
        big = 0.0
        for j in range(i + 1):
            big = max(big, abs(L[i, j]))
        if not L[i, i] > 0.0:  # exp underflowed far in the tails: no density there
            return -np.inf, grad
        ss = 0.0
        for j in range(i + 1):
            ss += (L[i, j] / big) ** 2
        sd = big * math.sqrt(ss)  # the row's norm, scaled: L² of a tiny row underflows to 0
        lsd, dsd = family_logp(sd_code, sd, sd_par[i])
        coef = 2.0 * eta - 3.0 + n - i + 1.0  # LKJ term and the Jacobian's log corr_diag
        lp += lsd + coef * math.log(L[i, i] / sd) - i * math.log(sd)
        for j in range(i + 1):
            u = L[i, j] / sd
            g = dsd * u - (coef + i) * u / sd
            if i == j:
                g += coef / L[i, i]
            grad[i, j] = g
    return lp, grad


def lkj_normalizing_constant(eta: float, n: int) -> float:
    """PyMC's ``_lkj_normalizing_constant`` (the log normaliser of LKJ(η) in dimension n).

    >>> round(lkj_normalizing_constant(2.0, 2), 6)
    0.287682
    """
    from scipy.special import gammaln

    if eta == 1:
        result = float(np.sum(gammaln(2.0 * np.arange(1, int((n - 1) / 2) + 1))))
        if n % 2 == 1:
            result += (0.25 * (n**2 - 1) * np.log(np.pi) - 0.25 * (n - 1) ** 2 * np.log(2.0)
                       - (n - 1) * gammaln(int((n + 1) / 2)))
        else:
            result += (0.25 * n * (n - 2) * np.log(np.pi) + 0.25 * (3 * n**2 - 4 * n)
                       * np.log(2.0) + n * gammaln(n / 2) - (n - 1) * gammaln(n))
        return float(result)
    k = np.arange(1, n)
    result = -(n - 1) * gammaln(eta + 0.5 * (n - 1))
    result += float(np.sum(0.5 * k * np.log(np.pi) + gammaln(eta + 0.5 * (n - 1 - k))))
    return float(result)
