"""Which PyMC model a fit samples, and roughly what one of its gradients costs.

``"auto"`` takes the marginal model (random effects integrated out, from
cross-products) wherever it is exact and cheap: iid residuals or a residual structure
within one grouping factor, and one grouping factor or few random effects in all. The
conditional model (explicit non-centred b) takes the rest.

Examples
--------
>>> import bayeslmm as blm
>>> m = blm.LMM("Reaction ~ Days + (Days | Subject)", blm.datasets.load("sleepstudy"))
>>> choose_parameterization(m.design, m.residual, "auto")
'marginal'
>>> gradient_cost(m.design, m.residual, "marginal")
76
"""

from __future__ import annotations

from ..errors import BayesLMMError
from .marginal import MAX_DENSE_RE, marginal_supports

__all__ = ["choose_parameterization", "gradient_cost", "PARAMETERIZATIONS"]

#: Values of ``parameterization``.
PARAMETERIZATIONS = ("auto", "marginal", "conditional")


def choose_parameterization(design, residual, requested: str) -> str:
    """``"marginal"`` or ``"conditional"`` for a requested ``parameterization``.

    Raises
    ------
    BayesLMMError
        An unknown value, or ``"marginal"`` where the marginal model is not exact.
    """
    if requested not in PARAMETERIZATIONS:
        raise BayesLMMError(f"Unknown parameterization {requested!r}; choose one of "
                            f"{PARAMETERIZATIONS}.")
    why = marginal_supports(design, residual)
    if not design.in_memory:  # rows out of core: only the cross-products are here
        if requested == "conditional" or why:
            raise BayesLMMError(
                "This model's rows are not in memory: only the marginal model (from "
                "cross-products) can be sampled"
                + (f", and it is not available here: {why}." if why else
                   "; use parameterization='marginal' (or 'auto')."))
        return "marginal"
    if not design.terms and residual is None:
        return "conditional"  # no random effects: nothing to integrate out
    if requested == "marginal":
        if why:
            raise BayesLMMError(f"parameterization='marginal' is not available: {why}.")
        return "marginal"
    if requested == "conditional":
        return "conditional"
    n_re = sum(t.n_levels * t.q for t in design.terms)
    cheap = len(design.terms) <= 1 or n_re <= MAX_DENSE_RE
    return "marginal" if cheap and why is None else "conditional"


def gradient_cost(design, residual, parameterization: str) -> int:
    """Roughly the work of one gradient: q²·levels (+ p²) for the marginal model on
    cross-products; rows × q where the graph touches every row."""
    if parameterization == "marginal" and residual is None:
        return sum(t.n_levels * t.q**2 for t in design.terms) + len(design.fixef_names) ** 2
    return design.nobs * max(1, sum(t.q for t in design.terms))
