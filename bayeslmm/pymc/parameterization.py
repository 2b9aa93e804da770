"""Which PyMC model a fit samples, and roughly what one of its gradients costs.

``"auto"`` takes the marginal model (random effects integrated out, from
cross-products) wherever it is exact and cheap: iid residuals or a residual structure
within one grouping factor; with several grouping factors (crossed or nested), the
blocked factorisation, whose cost is the random effects outside the largest factor
(r, cubed) unless the design is nested: up to :data:`~bayeslmm.pymc.marginal.
MAX_REST_RE` of them, with iid residuals or a residual structure with sufficient
statistics alike (their weighted cross-products have ZᵀZ's blocked pattern). The
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

import numpy as np

from ..errors import BayesLMMError
from ..linalg.crossprod import factor_order
from ..residual.sufficient import sufficient_reason
from .marginal import MAX_REST_RE, marginal_supports

__all__ = ["choose_parameterization", "gradient_cost", "cacheable", "rest", "nested",
           "PARAMETERIZATIONS"]

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
    cheap = len(design.terms) <= 1 or rest(design) <= MAX_REST_RE or nested(design)
    return "marginal" if cheap and why is None else "conditional"


def rest(design) -> int:
    """Random effects outside the largest grouping factor (the blocked factorisation's
    dense part).

    >>> import bayeslmm as blm
    >>> m = blm.LMM("diameter ~ 1 + (1 | plate) + (1 | sample)", blm.datasets.load("Penicillin"))
    >>> rest(m.design)  # the 6 samples (the 24 plates are the block-diagonal part)
    6
    """
    order = factor_order(design.terms)
    return sum(design.terms[k].n_levels * design.terms[k].q for k in order[1:])


def nested(design) -> bool:
    """Two grouping factors, each level of the larger within one level of the other
    (classes in schools): the blocked factorisation is then linear in the levels.

    >>> import bayeslmm as blm
    >>> m = blm.LMM("diameter ~ 1 + (1 | plate) + (1 | sample)", blm.datasets.load("Penicillin"))
    >>> nested(m.design)
    False
    """
    if len(design.terms) != 2:
        return False
    if not design.in_memory:  # out of core: the pairs of levels that Z₁ᵀZ₂ couples
        cp = design.cross_products
        r, c = cp.C1z.nonzero()
        pairs = np.unique(np.column_stack([r // cp.q[0], c // cp.q[1]]), axis=0)
        return len(pairs) == len(np.unique(pairs[:, 0]))
    first, second = (design.terms[k] for k in factor_order(design.terms))
    pairs = np.unique(np.column_stack([first.codes, second.codes]), axis=0)
    return len(pairs) == len(np.unique(first.codes))


def gradient_cost(design, residual, parameterization: str) -> int:
    """Roughly the work of one gradient: q²·levels (+ p²) for the marginal model on
    cross-products (twice that on a residual structure's statistics, which are
    combined at every gradient), plus r³/3 for the blocked factorisation's dense part
    with several factors (none when nested); rows × q where the graph touches every
    row."""
    if not cacheable(design, residual, parameterization):
        return design.nobs * max(1, sum(t.q for t in design.terms))
    cost = sum(t.n_levels * t.q**2 for t in design.terms) + len(design.fixef_names) ** 2
    dense = 0 if len(design.terms) < 2 or nested(design) else rest(design) ** 3 // 3
    return (cost if residual is None else 2 * cost) + dense


def cacheable(design, residual, parameterization: str) -> bool:
    """Whether the model's graph depends on the data only through ``pm.Data`` (one
    compiled model per structure): the marginal model with iid residuals or a residual
    structure with sufficient statistics (:mod:`bayeslmm.residual.sufficient`).

    >>> import bayeslmm as blm
    >>> m = blm.LMM("distance ~ age + (1 | Subject)", blm.datasets.load("Orthodont"),
    ...             residual=blm.CAR1(time="age", group="Subject"))
    >>> cacheable(m.design, m.residual, "marginal"), cacheable(m.design, None, "conditional")
    (True, False)
    """
    if parameterization != "marginal":
        return False
    return residual is None or sufficient_reason(residual) is None
