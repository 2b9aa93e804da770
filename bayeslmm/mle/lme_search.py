"""The search of nlme's fit (:mod:`bayeslmm.mle.lme`): bounds of the residual
parameters, extra starting points, and the warning for a correlation that ends on its
bound.

Examples
--------
>>> import bayeslmm as blm
>>> m = blm.LMM("distance ~ age + (1 | Subject)", blm.datasets.load("Orthodont"),
...             residual=blm.AR1(group="Subject"))
>>> u_bounds(m.residual)
[(-12.0, 12.0)]
"""

from __future__ import annotations

import warnings

import numpy as np

from ..errors import user_stacklevel
from ..residual import dense_corr, varfuncs
from ..residual.bind import ResidualDesign
from ..residual.structures import AR1, CAR1, CompSymm, VarIdent
from ..residual.variances import VarConstPower

__all__ = ["u_bounds", "warn_edge", "strong_start"]


def u_bounds(rd: ResidualDesign) -> list[tuple[float | None, float | None]]:
    """Keep Phi and Rho off ±1 and the varIdent ratios finite."""
    out: list[tuple[float | None, float | None]] = []
    c = rd.correlation
    if rd.dense is not None:
        out += dense_corr.u_bounds(rd.dense, c)
    elif c is not None:
        out.append((-12.0, 12.0) if isinstance(c, AR1) else (-25.0, 25.0))
    if rd.varfuncs is not None:
        out += varfuncs.u_bounds(rd.varfuncs)
    elif isinstance(rd.variance, VarIdent):
        out += [(-25.0, 25.0)] * (len(rd.by_levels) - 1)
    elif rd.variance is not None:
        out.append((None, None))
    return out


def warn_edge(rd: ResidualDesign, u: np.ndarray, p: dict) -> None:
    """A correlation that ends on its search bound (|Phi| or Rho within ~1e-10 of its
    limit) is not an estimate: the likelihood still rises toward the edge."""
    if rd.dense is not None:
        msg = dense_corr.edge_message(rd.dense, rd.correlation, u)
        if msg:
            warnings.warn(msg, stacklevel=user_stacklevel())
        return
    if rd.correlation is None or not len(u):
        return
    hi = u_bounds(rd)[0][1]
    if abs(u[0]) > hi - 1e-3:
        name = rd.param_names[0]
        warnings.warn(f"The residual correlation {name} ended at the edge of its range "
                      f"({name} = {float(np.ravel(p[name])[0]):.6f}): the likelihood keeps "
                      "rising toward the limit. The data may not support this structure "
                      "(try a simpler one, or check the time/group columns).",
                      stacklevel=user_stacklevel())


def strong_start(crit, x0: np.ndarray) -> tuple:
    """With random effects and a correlation: also start at a correlation of 0.6; with
    VarConstPower, also at power 1 and const the mean |v| (nlme's start, const 1 and
    power 0, may lie on the ridge const → ∞ of iid residuals: sleepstudy's ML fit)."""
    return _correlation_start(crit, x0) + _constpower_start(crit, x0)


def _constpower_start(crit, x0: np.ndarray) -> tuple:
    bound = crit.rd.varfuncs
    if not bound or len(bound) != 1 or not isinstance(bound[0].structure, VarConstPower):
        return ()
    v = bound[0].covariate if bound[0].covariate is not None else crit.fitted
    if v is None:
        return ()
    x = x0.copy()
    x[-2], x[-1] = np.log(max(float(np.mean(np.abs(v))), 1e-8)), 1.0  # (log const, power)
    return (x,)


def _correlation_start(crit, x0: np.ndarray) -> tuple:
    c = crit.rd.correlation
    if crit.rd.dense is not None:  # spatial likelihoods: local maxima even without θ
        return dense_corr.extra_starts(crit.rd.dense, c, x0, crit.n_theta)
    if c is None or crit.n_theta == 0:
        return ()
    x = x0.copy()
    k = crit.n_theta
    if isinstance(c, AR1):
        x[k] = np.arctanh(0.6)
    elif isinstance(c, CAR1):
        x[k] = np.log(0.2 / 0.8)  # Phi = 0.2 per time unit (the first start: 0.5)
    elif isinstance(c, CompSymm):
        lo = -1.0 / (crit.rd.max_group_size - 1)
        x[k] = -np.log((1 - lo) / (0.6 - lo) - 1)
    return (x,)
