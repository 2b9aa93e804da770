"""Design → PyMC model with the random effects integrated out (the marginal model).

Same parameters and priors as the conditional model (``beta``, ``sigma``, ``sd_<g>``,
``corr_<g>``, ``chol_<g>``), so both target the same posterior of the
hyper-parameters; the likelihood is the exact marginal ``N(y | Xβ, ZΨ̃Zᵀ + σ²I)``
computed from cross-products (:mod:`bayeslmm.pymc.marginal_op`): its cost per gradient does
not depend on the number of rows. The random effects are drawn afterwards from their
exact Gaussian conditional (:mod:`bayeslmm.sampling.ranef_draws`).

The cross-products, the number of rows and the data-scaled prior parameters are
``pm.Data`` containers: the graph depends on the data only through them, so one
compiled model serves every dataset with the same formula structure (the nutpie
backend caches it, in memory and on disk).

Examples
--------
>>> import bayeslmm as blm
>>> from bayeslmm.formula.design import build_design
>>> from bayeslmm.pymc.priors import resolve_priors
>>> d = build_design("Reaction ~ Days + (Days | Subject)", blm.datasets.load("sleepstudy"))
>>> m = build_marginal(d, resolve_priors(d))
>>> sorted(v.name for v in m.free_RVs)
['beta_z', 'chol_Subject_z', 'sigma']
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from ..errors import BayesLMMError
from ..formula.design import Design
from ..formula.weights import log_weight_term, weighted
from ..linalg.blocked_layout import VALUE_NAMES, blocked_arrays, blocked_stacks, kernel_stacks
from ..linalg.crossprod import CrossProducts
from ..residual.algebra import crossing_factors, logdet_lambda, whiten
from ..residual.bind import ResidualDesign
from ..residual.closed_forms import coefficients, stats_logdet
from ..residual.structures import VarIdent
from ..residual.sufficient import ResidualStats, statistics, sufficient_reason
from . import blocked_op, marginal_op
from .blocked_op import DATA_NAMES, blocked_logp
from .marginal_op import marginal_logp
from .priors import ResolvedPriors, priors_as_data
from .structure_priors import structure_coords
from .terms import coords_of, fixed_effects, residual_params, residual_sigma, term_scale

__all__ = ["build_marginal", "marginal_supports", "loglik_expression",
           "design_cross_products", "register_jax_ops", "MAX_REST_RE"]

#: Above this many random effects outside the largest grouping factor (the dense Schur
#: complement of the blocked factorisation, r × r, O(r³) per gradient), sampling b
#: explicitly costs less than integrating it out (nested designs excepted: their Schur
#: complement is block diagonal).
MAX_REST_RE = 2000


def register_jax_ops() -> None:
    """Teach PyTensor's JAX backend the marginal likelihood's Ops (this imports JAX:
    called for numpyro and nutpie's JAX backend only).

    >>> import importlib.util
    >>> if importlib.util.find_spec("jax") is not None:  # the bayeslmm[jax] extra
    ...     register_jax_ops()
    """
    marginal_op.register_jax()
    blocked_op.register_jax()


def design_cross_products(design: Design) -> CrossProducts:
    """The cross-products the marginal model (and b's draws) use: of the rows scaled by
    √w with lme4's prior weights (:func:`bayeslmm.formula.weights.weighted`).

    Examples
    --------
    >>> import bayeslmm as blm
    >>> from bayeslmm.formula.design import build_design
    >>> d = build_design("Yield ~ 1 + (1 | Batch)", blm.datasets.load("Dyestuff"))
    >>> design_cross_products(d).n
    30
    """
    return CrossProducts.from_design(weighted(design))


def marginal_supports(design: Design, residual: ResidualDesign | None) -> str | None:
    """Why the marginal model cannot take this residual structure, or None if it can."""
    if residual is None:
        return None
    if residual.fitted_covariate:
        return ("a variance function of the fitted values depends on the random effects; "
                "use parameterization='conditional'")
    # (out of core the partitions' pass checked the nesting)
    if residual.correlation is not None and design.in_memory \
            and crossing_factors(residual, design):
        return "the correlation groups are not nested within the random-effect levels"
    why = sufficient_reason(residual)
    if len(design.terms) > 1 and why:
        return (f"with several grouping factors the marginal model needs a residual structure "
                f"with sufficient statistics, and {why}; use the conditional model")
    return None


def _whitened_arrays(design: Design, rd: ResidualDesign, params) -> dict:
    """:meth:`~bayeslmm.linalg.crossprod.CrossProducts.marginal_arrays` of the whitened
    [Z X y] as PyTensor expressions: O(n) per evaluation, since whitening depends on the
    residual parameters (one grouping factor at most)."""
    p = design.X.shape[1]
    cols = [design.X, design.y[:, None]] + [t.Z for t in design.terms]
    W = whiten(rd, np.column_stack(cols), params)
    xy = W[:, :p + 1]
    out = {"xy_xy": pt.dot(xy.T, xy)}
    if design.terms:
        t = design.terms[0]
        Z, codes = W[:, p + 1:], t.codes
        out["zz"] = pt.inc_subtensor(pt.zeros((t.n_levels, t.q, t.q))[codes],
                                     Z[:, :, None] * Z[:, None, :])
        out["z_xy"] = pt.inc_subtensor(pt.zeros((t.n_levels, t.q, p + 1))[codes],
                                       Z[:, :, None] * xy[:, None, :])
    return out


def build_marginal(design: Design, priors: ResolvedPriors,
                   residual: ResidualDesign | None = None,
                   cross_products: CrossProducts | None = None, *,
                   stats: ResidualStats | None = None) -> pm.Model:
    """Build the marginal PyMC model (random effects integrated out).

    With a residual structure the likelihood is that of the whitened data
    (``log N(y | Xβ, ZΨZᵀ + σ²Λ) = log N(L⁻¹y | L⁻¹Xβ, L⁻¹ZΨZᵀL⁻ᵀ + σ²I) − ½ log|Λ|``).
    For AR1, CAR1 with few distinct gaps, CompSymm and VarIdent its cross-products are
    ``Σ_k c_k(params) S_k`` of statistics computed once
    (:mod:`bayeslmm.residual.sufficient`): a gradient costs what an iid one costs, and
    the graph depends on the data only through ``pm.Data`` (compiled once per
    structure). Other structures whiten the rows inside the model: O(n) per gradient.

    ``cross_products`` passes those already computed for ``design`` (of its rows scaled
    by √w for prior weights: :func:`bayeslmm.formula.weights.weighted`), ``stats`` the
    residual structure's statistics.

    Returns
    -------
    pymc.Model
        Free variables: ``beta``, ``sigma``, the covariance and residual parameters;
        the log-likelihood is a ``pm.Potential`` named ``marginal_loglik``.

    Examples
    --------
    >>> import bayeslmm as blm
    >>> from bayeslmm.formula.design import build_design
    >>> from bayeslmm.pymc.priors import resolve_priors
    >>> d = build_design("diameter ~ 1 + (1 | plate) + (1 | sample)",
    ...                  blm.datasets.load("Penicillin"))
    >>> [v.name for v in build_marginal(d, resolve_priors(d)).free_RVs]
    ['beta_z', 'sd_plate', 'sd_sample', 'sigma']
    """
    why = marginal_supports(design, residual)
    if why:
        raise BayesLMMError(f"The marginal model is not available here: {why}.")
    if residual is not None:
        if sufficient_reason(residual) is None:
            return _build_stats(design, priors, residual, stats)
        return _build_whitened(design, priors, residual)
    cp = cross_products if cross_products is not None else design_cross_products(design)
    with pm.Model(coords=coords_of(design, obs=False)) as model:
        n = pm.Data("stat_n", float(cp.n))
        if len(cp.q) > 1:  # several factors: the blocked layout (flags as structure)
            layout = blocked_arrays(cp)
            arrays = {k: pm.Data(f"stat_{k}", layout[k]) for k in DATA_NAMES if k != "n"}
            arrays.update(n=n, full=layout["full"], blockdiag=layout["blockdiag"])
        else:
            arrays = {k: pm.Data(f"stat_{k}", v) for k, v in cp.marginal_arrays().items()}
            arrays["ms"] = pm.Data("stat_ms", np.asarray(cp.m, dtype=np.int64))
        priors = priors_as_data(priors)
        beta = fixed_effects(priors.beta)
        chols = [term_scale(t, priors)[0] for t in design.terms]
        sigma = priors.sigma.rv("sigma")
        loglik = loglik_expression(arrays, n, beta, sigma, [chols[k] for k in cp.order], cp.q,
                                   cp.m)
        if design.weights is not None:  # prior weights: ½ Σ log w
            loglik = loglik + pm.Data("stat_log_weights", log_weight_term(design))
        pm.Potential("marginal_loglik", loglik)
    return model


def loglik_expression(arrays, n, beta, sigma, chols, qs, ms):
    """The marginal log-likelihood of cross-products ``arrays`` (NumPy, ``pm.Data`` or
    expressions): the compiled Op (:mod:`bayeslmm.pymc.marginal_op`; for several
    factors in the blocked layout, :mod:`bayeslmm.pymc.blocked_op`) with the factors'
    Cholesky factors ``chols`` (in the arrays' factor order) packed into one
    (K, q_max, q_max) tensor; without random effects, the least-squares likelihood.

    Examples
    --------
    >>> import numpy as np, pytensor.tensor as pt
    >>> arrays = {"xy_xy": np.array([[4.0, 2.0], [2.0, 3.0]])}  # X = 1, 4 rows
    >>> lp = loglik_expression(arrays, 4.0, pt.as_tensor([0.5]), 1.0, [], (), ())
    >>> round(float(lp.eval()), 4)  # rᵀr = 3 - 2·0.5·2 + 4·0.5² = 2, σ = 1
    -4.6758
    """
    if not chols:
        u = pt.concatenate([-beta, pt.ones(1)])
        rtr = pt.dot(u, pt.dot(arrays["xy_xy"], u))
        return -0.5 * (n * np.log(2 * np.pi) + n * pt.log(sigma**2) + rtr / sigma**2)
    qmax = max(qs)
    Ls = pt.stack([pt.set_subtensor(pt.zeros((qmax, qmax))[:q, :q], L)
                   for L, q in zip(chols, qs, strict=True)])
    if "a11" in arrays:  # several factors in the blocked layout
        return blocked_logp({**arrays, "n": n}, beta, sigma, Ls, qs=qs)
    levels = arrays.get("ms", np.asarray(ms, dtype=np.int64))
    return marginal_logp(arrays["zz"], arrays["z_xy"], arrays["xy_xy"], n, levels, beta,
                         sigma, Ls, qs=qs)


def _build_whitened(design: Design, priors: ResolvedPriors, rd: ResidualDesign) -> pm.Model:
    coords = {**coords_of(design, obs=False), **structure_coords(rd)}
    if isinstance(rd.variance, VarIdent):
        coords["varident_level"] = list(rd.by_levels[1:])
    with pm.Model(coords=coords) as model:
        beta = fixed_effects(priors.beta)
        chols = [term_scale(t, priors)[0] for t in design.terms]
        params = residual_params(rd, priors)
        sigma = residual_sigma(design, rd, priors, params)
        arrays = _whitened_arrays(design, rd, params)
        q, m = [t.q for t in design.terms], [t.n_levels for t in design.terms]
        pm.Potential("marginal_loglik", loglik_expression(arrays, float(design.nobs), beta, sigma,
                                                chols, q, m)
                     - 0.5 * logdet_lambda(rd, params))
    return model


def _build_stats(design: Design, priors: ResolvedPriors, rd: ResidualDesign,
                 stats: ResidualStats | None) -> pm.Model:
    """The marginal model on the residual structure's statistics: the cross-products
    ``Σ_k c_k S_k`` formed from data stacks, the Op's gradient in them carrying ∂/∂c."""
    stats = stats if stats is not None else statistics(design, rd)
    first = stats.parts[0]
    coords = {**coords_of(design), **structure_coords(rd)}
    coords.pop("obs")
    if isinstance(rd.variance, VarIdent):
        coords["varident_level"] = list(rd.by_levels[1:])
    with pm.Model(coords=coords) as model:
        if len(first.order) > 1:  # several factors: the blocked layout, stacked values
            layout, values = blocked_stacks(stats.parts)
            stacks = {k: pm.Data(f"stat_{k}", v)
                      for k, v in kernel_stacks(layout, values).items()}
            pattern = {k: pm.Data(f"stat_{k}", layout[k]) for k in DATA_NAMES
                       if k not in VALUE_NAMES and k != "n"}
            pattern.update(full=layout["full"], blockdiag=layout["blockdiag"])
        else:
            stacks = {k: pm.Data(f"stat_{k}", v) for k, v in stats.marginal_stacks().items()}
            pattern = {"ms": pm.Data("stat_ms", np.asarray(first.m, dtype=np.int64))}
        key = {k: pm.Data(f"stat_{k}", getattr(stats, k)) for k in ("kind", "value", "a", "b")}
        det = {k: pm.Data(f"stat_{k}", getattr(stats, k))
               for k in ("values", "counts", "strata_rows")}
        n = pm.Data("stat_n", float(stats.n))
        priors = priors_as_data(priors)
        beta = fixed_effects(priors.beta)
        chols = [term_scale(t, priors)[0] for t in design.terms]
        params = residual_params(rd, priors)
        sigma = residual_sigma(design, rd, priors, params)
        coef = coefficients(stats.family, key["kind"], key["value"], key["a"], key["b"], params)
        arrays = {k: pt.tensordot(coef, v, axes=1) for k, v in stacks.items()}
        arrays.update(pattern)
        loglik = loglik_expression(arrays, n, beta, sigma, [chols[k] for k in first.order],
                                   first.q, first.m)
        logdet = stats_logdet(stats.family, det["values"], det["counts"], det["strata_rows"],
                              params)
        pm.Potential("marginal_loglik", loglik - 0.5 * logdet)
    return model
