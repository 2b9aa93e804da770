"""Log-densities, whitening and log-determinants of ``N(0, σ² Λ)`` residuals.

Every function takes a :class:`~bayeslmm.residual.bind.ResidualDesign` and a ``params``
dict keyed by :attr:`ResidualDesign.param_names` (``Phi``, ``Rho``, ``power``,
``expon``, ``varident_ratio``; plus ``fitted``, the conditional mean per row, when a
variance function reads the fitted values; or ``log_sd``, log δ per row in the data's
order, which replaces the variance function's own). NumPy in gives NumPy out; if any input is
a PyTensor variable the same code builds a PyTensor graph.

The work is O(n) and never forms a dense matrix: with rows sorted by group and time,
``Λ = Δ C Δ`` has Cholesky factor ``L = Δ L_C``, and ``L_C⁻¹`` is the sequence of
one-step innovations ``x_k − E[x_k | x_<k]`` scaled by their conditional sds:

- AR1 / CAR1 (Markov): ``E = r_k x_{k-1}``, var ``1 − r_k²``, ``r_k = Phi^lag_k``
  (the Prais–Winsten transform);
- CompSymm: ``E = ρ/(1 + (k−1)ρ) · Σ_{j<k} x_j`` (a segment cumulative sum), var
  ``(1 − ρ)(1 + kρ)/(1 + (k−1)ρ)``.

So ``log N(ε | 0, σ²Λ)`` is a sum of per-row terms (each row's density given the
earlier rows of its group), which :func:`residual_logp` returns with
``pointwise=True``, in the data's row order.

Examples
--------
>>> import numpy as np, pandas as pd
>>> import scipy.linalg as sla
>>> from scipy import stats
>>> from bayeslmm.residual.structures import AR1
>>> from bayeslmm.residual.bind import bind
>>> rd = bind(AR1(group="g"), pd.DataFrame({"g": list("aabbb")}))
>>> eps, p = np.array([0.3, -1.0, 0.5, 0.2, 1.1]), {"Phi": 0.6}
>>> lam = sla.block_diag([[1, 0.6], [0.6, 1]], sla.toeplitz([1, 0.6, 0.36]))
>>> bool(np.isclose(residual_logp(rd, eps, 1.5, p),
...      stats.multivariate_normal(cov=1.5**2 * lam).logpdf(eps)))
True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Variable

from ..errors import BayesLMMError, FitError
from ..formula.design import Design
from . import dense_corr, varfuncs
from .bind import ResidualDesign
from .structures import AR1, CAR1, CompSymm, VarExp, VarIdent, VarPower

__all__ = ["whiten", "whiten_design", "unwhiten", "logdet_lambda", "log_sd_weights",
           "residual_logp", "nlme_params", "to_params", "initial_unconstrained",
           "rho_lower"]

_LOG2PI = float(np.log(2 * np.pi))


def _xp(*args: Any):
    """PyTensor if any argument (or value of a dict argument) is symbolic, else NumPy."""
    flat = []
    for a in args:
        flat += list(a.values()) if isinstance(a, Mapping) else [a]
    return pt if any(isinstance(a, Variable) for a in flat) else np


def _check(rd: ResidualDesign, params: Mapping[str, Any]) -> None:
    """NumPy inputs only: parameters inside their domain (the PyMC model's transforms
    keep symbolic ones there)."""
    given_sd = "log_sd" in params and rd.variance is not None
    missing = [k for k in rd.param_names if k not in params
               and not (given_sd and k not in rd.correlation_param_names)]
    if rd.fitted_covariate and "fitted" not in params and not given_sd:
        missing.append("fitted")
    if missing:
        raise BayesLMMError(f"Missing residual parameter(s) {missing}; need {rd.param_names}.")
    c = rd.correlation
    if rd.dense is not None:
        dense_corr.check_params(rd.dense, c, params)
    if rd.varfuncs is not None and not given_sd:
        varfuncs.check_params(rd.varfuncs, params)
    if isinstance(c, AR1) and not -1 < params["Phi"] < 1:
        raise BayesLMMError(f"AR1 Phi must lie in (-1, 1), got {params['Phi']}.")
    if isinstance(c, CAR1) and not 0 <= params["Phi"] < 1:
        raise BayesLMMError(f"CAR1 Phi must lie in [0, 1), got {params['Phi']}.")
    if isinstance(c, CompSymm) and not rho_lower(rd) < params["Rho"] < 1:
        raise BayesLMMError(f"CompSymm Rho must lie in ({rho_lower(rd):.4g}, 1) for groups of "
                            f"up to {rd.max_group_size} rows, got {params['Rho']}.")
    if isinstance(rd.variance, VarIdent) and not given_sd:
        r = np.asarray(params["varident_ratio"], dtype=float)
        if r.shape != (len(rd.by_levels) - 1,) or np.any(r <= 0):
            raise BayesLMMError(f"varident_ratio must be {len(rd.by_levels) - 1} positive "
                                f"ratios (levels {rd.by_levels[1:]}), got {r}.")


def rho_lower(rd: ResidualDesign) -> float:
    """Smallest admissible CompSymm ``Rho``: ``-1/(m - 1)``, m the largest group."""
    return -1.0 / (rd.max_group_size - 1)


def log_sd_weights(rd: ResidualDesign, params: Mapping[str, Any]):
    """``log δ`` per row in sorted order (the variance function), or None."""
    v = rd.variance
    if v is None:
        return None
    if "log_sd" in params:
        return params["log_sd"][rd.order]
    xp = _xp(params)
    if rd.varfuncs is not None:
        return varfuncs.log_sd(rd.varfuncs, params, rd.order, xp)
    if isinstance(v, VarIdent):
        log_r = xp.log(params["varident_ratio"])
        return xp.concatenate([xp.zeros(1), log_r])[rd.by_codes]  # reference level: 0
    cov = rd.covariate if rd.covariate is not None else params["fitted"][rd.order]
    if isinstance(v, VarPower):
        return params["power"] * xp.log(xp.abs(cov))
    assert isinstance(v, VarExp)
    return params["expon"] * cov


def _innovations(rd: ResidualDesign, x, params: Mapping[str, Any], xp):
    """One-step innovations of the correlation in sorted rows ``x`` and the log of
    their conditional variances (None, None without a correlation)."""
    c = rd.correlation
    if rd.dense is not None:
        return dense_corr.innovations(rd.dense, c, x, params, xp)
    col = (lambda a: a[:, None]) if x.ndim == 2 else (lambda a: a)
    if isinstance(c, (AR1, CAR1)):
        first = rd.position == 0
        prev = np.maximum(np.arange(rd.n) - 1, 0)
        r = xp.power(params["Phi"], rd.lag) * (~first)
        return x - col(r) * x[prev], xp.log1p(-(r**2))
    if isinstance(c, CompSymm):
        rho, k = params["Rho"], rd.position
        excl = xp.cumsum(x, axis=0) - x
        s = excl - excl[rd.start]  # sum of the earlier rows of the group
        denom = rho * (k - 1) + 1  # symbolic operand first: numpy must not broadcast it
        return x - col(rho / denom) * s, xp.log1p(-rho) + xp.log1p(rho * k) - xp.log(denom)
    return x, None


def _whiten_sorted(rd: ResidualDesign, M, params, xp):
    """``L⁻¹ M`` in sorted order, plus log δ and log conditional variances."""
    x = M[rd.order] if rd.correlation is not None else M
    logd = log_sd_weights(rd, params)
    if logd is not None:
        x = x * xp.exp(-logd)[:, None] if M.ndim == 2 else x * xp.exp(-logd)
    e, logv = _innovations(rd, x, params, xp)
    if logv is not None:
        scale = xp.exp(-0.5 * logv)
        e = e * (scale[:, None] if M.ndim == 2 else scale)
    return e, logd, logv


def whiten(rd: ResidualDesign, M, params: Mapping[str, Any]):
    """``L⁻¹ M`` for ``Λ = L Lᵀ`` (L the Cholesky factor in sorted order), so that
    ``(L⁻¹M)ᵀ(L⁻¹M) = Mᵀ Λ⁻¹ M``.

    Parameters
    ----------
    rd : ResidualDesign
    M : array or tensor, shape (n,) or (n, k)
        Rows in the data's order (``y``, ``X``, ``Z`` as the design holds them).
    params : mapping
        Keys :attr:`ResidualDesign.param_names` (and ``fitted`` if needed).

    Returns
    -------
    array or tensor, same shape as ``M``
        Row i is the whitened innovation of data row i: rows stay within their
        correlation group.
    """
    xp = _xp(M, params)
    if xp is np:
        _check(rd, params)
    e, _, _ = _whiten_sorted(rd, M, params, xp)
    return e[rd.inverse] if rd.correlation is not None else e


def crossing_factors(rd: ResidualDesign, design: Design) -> list[str]:
    """Grouping factors whose levels change within a correlation group."""
    later = rd.position[1:] > 0  # rows whose predecessor is in the same group
    return [t.group for t in design.terms
            if np.any(np.diff(t.codes[rd.order])[later] != 0)]


def whiten_design(rd: ResidualDesign, design: Design, params: Mapping[str, Any]) -> Design:
    """The design with ``y``, ``X`` and each term's ``Z`` block replaced by ``L⁻¹·``.

    The whitened model has iid residuals, so any iid-residual likelihood code applies:
    ``loglik(y | params) = loglik_iid(whitened design) − ½ log|Λ|`` (ML and REML
    alike), i.e. lme4's criterion ``−2ℓ`` gains ``+ logdet_lambda(rd, params)``.

    Each term's compact n × q block is whitened in place of the expanded Z, which is
    exact when every correlation group lies within one level of each grouping factor
    (nlme requires this); otherwise this raises :class:`~bayeslmm.errors.FitError`.

    Examples
    --------
    >>> import bayeslmm as blm
    >>> from bayeslmm.residual.bind import bind
    >>> from bayeslmm.linalg.pls import PLS
    >>> m = blm.LMM("distance ~ age + Sex + (1 | Subject)", blm.datasets.load("Orthodont"),
    ...             residual=blm.AR1(group="Subject"))
    >>> p = {"Phi": 0.04375}  # nlme's ML estimates: Phi, sd(Intercept) / sigma
    >>> dev = PLS.from_design(whiten_design(m.residual, m.design, p)).objective([1.19249])
    >>> round(float(dev + logdet_lambda(m.residual, p)), 3)  # nlme: -2 logLik = 434.790
    434.79
    """
    bad = crossing_factors(rd, design) if rd.correlation is not None else []
    if bad:
        raise FitError(f"The correlation groups of {rd.correlation!r} are not nested within "
                       f"the levels of grouping factor(s) {bad}; use a correlation group "
                       "inside each random-effect level (as nlme requires).")
    cols = [design.y[:, None], design.X] + [t.Z for t in design.terms]
    W = whiten(rd, np.column_stack(cols), params)
    ends = np.cumsum([c.shape[1] for c in cols])
    parts = np.split(W, ends[:-1], axis=1)
    terms = [replace(t, Z=z) for t, z in zip(design.terms, parts[2:], strict=True)]
    return replace(design, y=parts[0][:, 0], X=parts[1], terms=terms)


def logdet_lambda(rd: ResidualDesign, params: Mapping[str, Any]):
    """``log |Λ|`` (so ``log |σ²Λ| = n log σ² + logdet_lambda``)."""
    xp = _xp(params)
    if xp is np:
        _check(rd, params)
    logd = log_sd_weights(rd, params)
    _, logv = _innovations(rd, xp.zeros(rd.n), params, xp)
    out = 0.0
    if logd is not None:
        out = out + 2 * xp.sum(logd)
    return out + xp.sum(logv) if logv is not None else out


def residual_logp(rd: ResidualDesign, eps, sigma, params: Mapping[str, Any], *,
                  pointwise: bool = False):
    """``log N(eps | 0, σ² Λ)``.

    With ``pointwise=True``, per-row terms in the data's order (each row's density
    given the earlier rows of its correlation group); they sum to the total.
    """
    xp = _xp(eps, sigma, params)
    if xp is np:
        _check(rd, params)
    w, logd, logv = _whiten_sorted(rd, eps, params, xp)
    lp = -0.5 * _LOG2PI - xp.log(sigma) - 0.5 * (w / sigma) ** 2
    if logd is not None:
        lp = lp - logd
    if logv is not None:
        lp = lp - 0.5 * logv
    if not pointwise:
        return xp.sum(lp)
    return lp[rd.inverse] if rd.correlation is not None else lp


def unwhiten(rd: ResidualDesign, W: np.ndarray, params: Mapping[str, Any]) -> np.ndarray:
    """``L W`` (NumPy): turns iid standard normal columns into draws of ``N(0, Λ)``.

    A loop over positions within groups, vectorised over groups.
    """
    _check(rd, params)
    W = np.asarray(W, dtype=float)
    if rd.dense is not None:
        x = dense_corr.unwhiten_sorted(rd.dense, rd.correlation, W[rd.order], params)
        logd = log_sd_weights(rd, params)
        if logd is not None:
            x = x * (np.exp(logd)[:, None] if x.ndim == 2 else np.exp(logd))
        return x[rd.inverse]
    ones = np.ones(rd.n)
    _, logv = _innovations(rd, ones, params, np)  # conditional variances only
    w = W[rd.order]
    sd = np.exp(0.5 * logv) if logv is not None else ones
    w = w * (sd[:, None] if w.ndim == 2 else sd)
    x = np.empty_like(w)
    c = rd.correlation
    by_pos = np.argsort(rd.position, kind="stable")
    bounds = np.r_[0, np.cumsum(np.bincount(rd.position))]
    csum = np.zeros((rd.n_groups,) + w.shape[1:])
    for k in range(len(bounds) - 1):
        rows = by_pos[bounds[k] : bounds[k + 1]]
        if isinstance(c, (AR1, CAR1)) and k > 0:
            r = np.power(params["Phi"], rd.lag[rows])
            x[rows] = (r[:, None] if w.ndim == 2 else r) * x[rows - 1] + w[rows]
        elif isinstance(c, CompSymm):
            g = rd.group_codes[rows]
            coef = params["Rho"] / (1 + (k - 1) * params["Rho"])
            x[rows] = coef * csum[g] + w[rows]
            csum[g] += x[rows]
        else:
            x[rows] = w[rows]
    logd = log_sd_weights(rd, params)
    if logd is not None:
        x = x * (np.exp(logd)[:, None] if x.ndim == 2 else np.exp(logd))
    return x[rd.inverse]


def to_params(rd: ResidualDesign, u) -> dict[str, Any]:
    """Unconstrained vector (length :func:`initial_unconstrained`) → ``params``.

    AR1 ``Phi = tanh u``; CAR1 ``Phi = 1/(1 + e^-u)``; CompSymm ``Rho`` a logistic
    map onto ``(-1/(m-1), 1)``; ``power``, ``expon`` as is; VarIdent ratios ``e^u``.
    For optimisers (ML/REML).
    """
    u = np.asarray(u, dtype=float)
    out: dict[str, Any] = {}
    i = 0
    c = rd.correlation
    if rd.dense is not None:
        i = dense_corr.n_unconstrained(rd.dense, c)
        out.update(dense_corr.to_params(rd.dense, c, u[:i]))
    elif c is not None:
        if isinstance(c, AR1):
            out["Phi"] = float(np.tanh(u[0]))
        elif isinstance(c, CAR1):
            out["Phi"] = float(1 / (1 + np.exp(-u[0])))
        else:
            lo = rho_lower(rd)
            out["Rho"] = float(lo + (1 - lo) / (1 + np.exp(-u[0])))
        i = 1
    v = rd.variance
    if rd.varfuncs is not None:
        out.update(varfuncs.to_params(rd.varfuncs, u[i:]))
    elif isinstance(v, VarIdent):
        out["varident_ratio"] = np.exp(u[i:])
    elif v is not None:
        out[rd.param_names[-1]] = float(u[i])
    return out


def initial_unconstrained(rd: ResidualDesign) -> np.ndarray:
    """Starting point for :func:`to_params`: Phi = 0 (CAR1 0.5), Rho = 0, power /
    expon = 0, ratios = 1 (iid residuals)."""
    u = []
    c = rd.correlation
    if rd.dense is not None:
        u += list(dense_corr.initial_unconstrained(rd.dense, c))
    elif c is not None:
        # Rho = 0 at u = log(-lower) (see to_params)
        u.append(float(np.log(-rho_lower(rd))) if isinstance(c, CompSymm) else 0.0)
    v = rd.variance
    if rd.varfuncs is not None:
        u += list(varfuncs.initial_unconstrained(rd.varfuncs))
    elif isinstance(v, VarIdent):
        u += [0.0] * (len(rd.by_levels) - 1)
    elif v is not None:
        u.append(0.0)
    return np.array(u)


def nlme_params(rd: ResidualDesign, values: Mapping[str, Any]) -> dict[str, float]:
    """Parameters named as nlme names them: ``Phi``, ``Rho``, ``power``, ``expon``
    and, for VarIdent, one entry per level (the reference level 1.0).

    ``values`` holds point values keyed by :attr:`ResidualDesign.param_names` (e.g.
    posterior means).
    """
    out: dict[str, float] = {}
    done: set[str] = set()
    if rd.dense is not None:
        out.update(dense_corr.nlme_names(rd.dense, rd.correlation, values))
        done.update(rd.correlation_param_names)
    if rd.varfuncs is not None:
        done.update(varfuncs.param_names(rd.varfuncs))
    for name in rd.param_names:
        if name in done:
            continue
        if name == "varident_ratio":
            ratios = np.atleast_1d(np.asarray(values[name], dtype=float))
            out.update(zip(rd.by_levels, [1.0, *map(float, ratios)], strict=True))
        else:
            out[name] = float(np.asarray(values[name]))
    if rd.varfuncs is not None:
        out.update(varfuncs.nlme_names(rd.varfuncs, values))
    return out
