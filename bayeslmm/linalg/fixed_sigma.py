"""The ML/REML criterion with σ fixed at a known value (nlme's ``lmeControl(sigma = s)``,
``glsControl(sigma = s)``): the meta-analysis model, whose residual variances are known.

With σ given, it is not profiled out; only β is (at its GLS estimate given θ):

    ML:   −2ℓ  = log|ΛᵀZᵀZΛ + I| + pwrss/σ² + n log(2πσ²)
    REML: −2ℓ_R = ML's + log|R_X|² − p log(2πσ²)

(:meth:`~bayeslmm.linalg.pls.PLS.deviance`). This REML is the restricted likelihood of
Harville (1977), metafor's and nlme's ``gls``: nlme's ``lme`` computes another one with σ
fixed (for REML its C function ``internal_loglik``, src/nlmefit.c, adds
``p·lglk[Q+1] + 1``, lglk[Q+1] the log of the response's pivot in its decomposition, to
the log-likelihood; BCG vaccine trials: τ² = 0.3376 where the REML estimate is 0.3132),
a known bug (Pustejovsky,
"Bug in nlme::lme with fixed sigma and REML estimation", 2016). ML agrees with nlme.

Examples
--------
>>> import bayeslmm as blm
>>> from bayeslmm.formula.design import build_design
>>> d = build_design("Yield ~ 1 + (1 | Batch)", blm.datasets.load("Dyestuff"))
>>> pls = FixedSigmaPLS.from_design(d, sigma=50.0)
>>> bool(np.isclose(pls.objective([0.8]), PLS.from_design(d).deviance([0.8], 50.0)))
True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from .crossprod import CrossProducts
from .pls import PLS, Solution
from .pls_gradient import gradient_parts
from .theta import ThetaLayout

__all__ = ["FixedSigmaPLS", "make_pls"]


class FixedSigmaPLS(PLS):
    """:class:`~bayeslmm.linalg.pls.PLS` with σ a known constant, not profiled out.

    Parameters
    ----------
    cp : CrossProducts
    layout : ThetaLayout
    sigma : float
        The residual sd (positive, finite).

    Examples
    --------
    >>> import bayeslmm as blm
    >>> from bayeslmm.formula.design import build_design
    >>> d = build_design("Yield ~ 1 + (1 | Batch)", blm.datasets.load("Dyestuff"))
    >>> FixedSigmaPLS.from_design(d, sigma=50.0).solution([0.8]).sigma
    50.0
    """

    def __init__(self, cp: CrossProducts, layout: ThetaLayout, sigma: float):
        super().__init__(cp, layout)
        self.sigma = float(sigma)

    @classmethod
    def from_design(cls, design, sigma: float) -> FixedSigmaPLS:  # type: ignore[override]
        """Cross-products and θ layout of a design, σ fixed at ``sigma``."""
        return cls(CrossProducts.from_design(design), ThetaLayout.from_terms(design.terms),
                   sigma)

    def _criterion(self, f, reml: bool) -> float:
        ld, ldx, pwrss = self.parts(None, f)
        if not np.isfinite(pwrss):
            return np.inf
        s2 = self.sigma ** 2
        n, p = self.cp.n, self.cp.p
        dev = ld + pwrss / s2 + n * np.log(2.0 * np.pi * s2)
        if reml:
            dev += ldx - p * np.log(2.0 * np.pi * s2)
        return float(dev)

    def objective_and_gradient(self, theta: Sequence[float],
                               reml: bool = False) -> tuple[float, np.ndarray]:
        """The criterion and its analytic gradient in θ: ∂log|·| terms as for the
        profiled one, and pwrss/σ² · ∂log pwrss."""
        theta = np.asarray(theta, dtype=float)
        f = self.factor(theta)
        val = self._criterion(f, reml)
        if not np.isfinite(val) or self.layout.size == 0:
            return val, np.zeros(self.layout.size)
        g = gradient_parts(self, theta, f)
        pwrss = self.parts(theta, f)[2]
        return val, g[0] + (g[1] if reml else 0.0) + pwrss / self.sigma ** 2 * g[2]

    def solution(self, theta: Sequence[float], reml: bool = False) -> Solution:
        """The profiled solution with σ̂ replaced by σ: β̂ and the modes do not depend
        on σ given θ; vcov(β̂) and the conditional sds scale with it."""
        sol = super().solution(theta, reml)
        k = self.sigma / sol.sigma if sol.sigma > 0 else np.nan
        return replace(sol, sigma=self.sigma, vcov=sol.vcov * k ** 2,
                       b_sd=[s * k for s in sol.b_sd])


def make_pls(cp: CrossProducts, layout: ThetaLayout, sigma: float | None = None) -> PLS:
    """A :class:`PLS`, or a :class:`FixedSigmaPLS` when ``sigma`` is given.

    >>> import bayeslmm as blm
    >>> from bayeslmm.formula.design import build_design
    >>> d = build_design("Yield ~ 1 + (1 | Batch)", blm.datasets.load("Dyestuff"))
    >>> cp, lay = CrossProducts.from_design(d), ThetaLayout.from_terms(d.terms)
    >>> type(make_pls(cp, lay)).__name__, type(make_pls(cp, lay, 1.0)).__name__
    ('PLS', 'FixedSigmaPLS')
    """
    return PLS(cp, layout) if sigma is None else FixedSigmaPLS(cp, layout, sigma)
