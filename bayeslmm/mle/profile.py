"""Likelihood profiles of an lme4-style fit, as lme4's ``profile.merMod`` computes them.

Every parameter (each sd and correlation, σ, each fixed effect) is held at a sequence of
values; at each the ML deviance is minimised over all the others, and the signed square
root of its rise, ζ = sign(x − x̂)·√(D(x) − D̂), is recorded. As in lme4 the profile is of
the ML deviance (a REML fit is first refitted by ML), the steps aim at equal increments
of ζ (``delta = cutoff / 8``, ``cutoff = √χ²(0.99; all parameters)``) and stop beyond the
cutoff, at a bound, or after ``maxpts`` points.

- sd, correlations and σ: the deviance with σ explicit (:meth:`PLS.deviance
  <bayeslmm.linalg.pls.PLS.deviance>`, lme4's ``devfun2``) is minimised over the other
  sd/cor/σ on their own scale (sd ≥ 0, |cor| ≤ 1) by L-BFGS-B, started at the previous
  point (lme4's ``startmethod = "prev"``); its gradient is the analytic one in θ
  (:func:`~bayeslmm.linalg.pls_gradient.gradient_parts`) through the Jacobian of θ in
  the sd/cor/σ (by differences of that cheap map).
- a fixed effect β_j: moved into the response at each value (y − x_j β_j), the reduced
  model is refitted over θ with β and σ profiled (cross-products transformed, no pass
  over the rows).

Examples
--------
>>> import bayeslmm as blm
>>> from bayeslmm.formula.design import build_design
>>> m = blm.LMM("Yield ~ 1 + (1 | Batch)", blm.datasets.load("Dyestuff"))
>>> theta = m.fit_map("ML").theta.to_numpy()
>>> tab = profile_table(m.design, theta, which=["sigma"])
>>> tab[".par"].unique().tolist(), bool((tab[".zeta"].abs() > 3).any())
(['sigma'], True)
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.stats import chi2

from ..errors import BayesLMMError, user_stacklevel
from ..linalg.pls import PLS
from ..linalg.pls_gradient import gradient_parts
from ..results.base import lme4_name
from .search import SINGULAR_TOL, one_blas_thread
from .varpar import VarPar

__all__ = ["profile_table", "ProfileSettings"]

_OPTS = {"ftol": 1e-13, "gtol": 1e-8, "maxiter": 2000}


class ProfileSettings:
    """lme4's ``profile`` arguments: ``alphamax`` (cutoff √χ²(1 − alphamax)),
    ``maxpts`` (points per direction), ``delta_cutoff`` (ζ step / cutoff), ``maxmult``
    (largest step as a multiple of the last), ``devtol`` (a lower deviance tolerated)."""

    def __init__(self, alphamax: float = 0.01, maxpts: int = 100, delta_cutoff: float = 1 / 8,
                 maxmult: float = 10.0, devtol: float = 1e-9):
        self.alphamax, self.maxpts, self.delta_cutoff = alphamax, maxpts, delta_cutoff
        self.maxmult, self.devtol = maxmult, devtol


def _vp_objective(pls: PLS, vp: VarPar):
    """The ML deviance of the sd/cor/σ vector and its gradient."""
    lay_n = pls.cp.n

    def value(x: np.ndarray) -> float:
        th = vp.to_theta(x)
        return np.inf if th is None else pls.deviance(th, x[-1])

    def jac_theta(x: np.ndarray, th: np.ndarray) -> np.ndarray:
        J = np.empty((len(th), len(x)))
        for i in range(len(x) - 1):  # σ: θ ∝ 1/σ, done analytically below
            h = 1e-6 * max(1.0, abs(x[i]))
            cols = []
            for s in (h, -h):
                if vp.lower[i] <= x[i] + s <= vp.upper[i]:
                    xs = x.copy()
                    xs[i] += s
                    ts = vp.to_theta(xs)
                    if ts is not None:
                        cols.append((s, ts))
            if len(cols) == 2:
                J[:, i] = (cols[0][1] - cols[1][1]) / (2 * h)
            elif cols:
                J[:, i] = (cols[0][1] - th) / cols[0][0]
            else:
                J[:, i] = 0.0
        J[:, -1] = -th / x[-1]
        return J

    def value_and_grad(x: np.ndarray):
        th = vp.to_theta(x)
        if th is None:
            return np.inf, np.zeros(len(x))
        s2 = x[-1] ** 2
        f = pls.factor(th)
        ld, _, pwrss = pls.parts(th, f)
        if not np.isfinite(pwrss):
            return np.inf, np.zeros(len(x))
        val = ld + pwrss / s2 + lay_n * np.log(2 * np.pi * s2)
        g = np.zeros(len(x))
        if len(th):
            parts = gradient_parts(pls, th, f)
            g = jac_theta(x, th).T @ (parts[0] + pwrss / s2 * parts[2])
        g[-1] += -2.0 * pwrss / (s2 * x[-1]) + 2.0 * lay_n / x[-1]
        return float(val), g

    return value, value_and_grad


def _nextpar(rows, cc, r, absstep, lower, upper, maxmult, minstep=1e-6) -> float:
    """lme4's ``nextpar``: the next value of column ``cc`` for a ζ step of ``absstep``."""
    p0, p1 = rows[r - 1][cc], rows[r][cc]
    z0, z1 = rows[r - 1][0], rows[r][0]
    num, denom = p1 - p0, z1 - z0
    if not np.isfinite(denom) or denom == 0:
        warnings.warn("Last two rows have identical or NA zeta values: using minstep",
                      stacklevel=user_stacklevel())
        step = minstep
    else:
        step = absstep * num / denom
        if step < 0:
            warnings.warn("unexpected decrease in profile: using minstep",
                          stacklevel=user_stacklevel())
            step = minstep
        elif abs(step) > abs(maxmult * num):
            step = np.sign(step) * abs(maxmult * num)
    return float(min(upper, max(lower, p1 + np.sign(num) * step)))


def _fill(rows, cc, lowcut, upcut, zetafun, cutoff, delta, st: ProfileSettings):
    """lme4's ``fillmat``: step from the last two rows until |ζ| > cutoff or a bound."""
    rows = list(rows)
    i = 1
    while (len(rows) < st.maxpts and lowcut < rows[i][cc] < upcut
           and np.isfinite(rows[i][0]) and abs(rows[i][0]) <= cutoff):
        nxt = _nextpar(rows, cc, i, delta, lowcut, upcut, st.maxmult)
        row = zetafun(nxt, rows[i])
        if row is None:
            break
        rows.append(row)
        i += 1
    return rows


def _signed_root(dev: float, base: float, x: float, at: float, st: ProfileSettings) -> float:
    diff = dev - base
    if diff < -1e-7 * max(1.0, abs(base)):
        warnings.warn(f"profiling found a deviance {-diff:.3g} below the fit's: the fit was "
                      "not at the optimum", UserWarning, stacklevel=user_stacklevel())
    return float(np.sign(x - at) * np.sqrt(max(diff, st.devtol)))


def profile_table(design, ml_theta: np.ndarray, *, which: Sequence[str] | None = None,
                  settings: ProfileSettings | None = None) -> pd.DataFrame:
    """lme4's profile of a design's ML deviance (see the module docstring).

    Parameters
    ----------
    design : Design
        An lme4-style model (iid residuals).
    ml_theta : ndarray
        θ of its ML fit.
    which : list of str, optional
        Parameters to profile, by bayeslmm's or lme4's names (default: all).
    settings : ProfileSettings, optional

    Returns
    -------
    DataFrame
        One row per profiled point: ``.zeta``, every parameter (sd/cor/σ in lme4's
        order, then the fixed effects) and ``.par``, the parameter profiled; sorted by
        ``.par`` (in parameter order) and value. lme4's ``as.data.frame(profile(fit))``.
    """
    pls = PLS.from_design(design)
    with one_blas_thread(pls.cp.Arr.shape[0]):
        return _profile(design, pls, np.asarray(ml_theta, dtype=float), which,
                        settings or ProfileSettings())


def _profile(design, pls, theta, which, st) -> pd.DataFrame:
    vp = VarPar.from_design(design)
    fx = list(design.fixef_names)
    sol = pls.solution(theta, reml=False)
    base = pls.objective(theta, reml=False)
    opt = np.concatenate([vp.from_theta(theta, sol.sigma), sol.beta])
    nvp, p = vp.size, len(fx)
    names = vp.names + fx
    chosen = _which(which, names, vp.lme4_names + [lme4 for lme4 in _lme4_fixef(fx)])
    cutoff = float(np.sqrt(chi2.ppf(1 - st.alphamax, nvp + p)))
    delta = cutoff * st.delta_cutoff
    lower = np.concatenate([vp.lower, np.full(p, -np.inf)])
    upper = np.concatenate([vp.upper, np.full(p, np.inf)])
    value, value_and_grad = _vp_objective(pls, vp)
    opt_row = np.concatenate([[0.0], opt])
    out = []
    for w in chosen:
        if w < nvp:
            zetafun = _vp_zeta(pls, vp, value, value_and_grad, w, opt, base, st)
            pw = opt[w]
            shift = 1e-3 if pw == 0 else pw * 1.01
        else:
            zetafun = _fixef_zeta(pls, w - nvp, opt, base, vp, st)
            pw = opt[w]
            shift = pw + delta * float(np.sqrt(sol.vcov[w - nvp, w - nvp]))
        first = zetafun(shift, opt_row)
        if first is None:
            raise BayesLMMError(f"Profiling {names[w]} failed at its first step.")
        up = _fill([opt_row, first], w + 1, lower[w], upper[w], zetafun, cutoff, delta, st)
        down = (_fill([first, opt_row], w + 1, lower[w], upper[w], zetafun, cutoff, delta, st)
                if pw > lower[w] else [first, opt_row])
        rows = np.unique(np.array(up + down), axis=0)
        rows = rows[np.argsort(rows[:, w + 1], kind="stable")]
        frame = pd.DataFrame(rows, columns=[".zeta", *names])
        frame[".par"] = names[w]
        out.append(frame)
    return pd.concat(out, ignore_index=True)


def _lme4_fixef(fx: list[str]) -> list[str]:
    return [lme4_name(n) for n in fx]


def _which(which, names: list[str], lme4: list[str]) -> list[int]:
    if which is None:
        return list(range(len(names)))
    if isinstance(which, str):
        which = [which]
    out = []
    for w in which:
        if w in names:
            out.append(names.index(w))
        elif w in lme4:
            out.append(lme4.index(w))
        else:
            raise BayesLMMError(f"No parameter {w!r} to profile; the parameters are "
                                f"{names} (lme4: {lme4}).")
    return sorted(set(out))


def _inner(fg, start: np.ndarray, bounds, sd_idx: list[int], scale: float):
    """L-BFGS-B from ``start``; an sd (or diagonal θ) that ends at 0 is then probed from
    inside (0.05 and 0.5 × ``scale``), as the deviance is even in it and 0 is therefore
    always stationary (:func:`bayeslmm.mle.search.search` does the same for fits)."""
    def run(x0):
        return minimize(fg, x0, jac=True, method="L-BFGS-B", bounds=bounds, options=_OPTS)

    best = run(start)
    for _ in range(3):
        zero = [k for k in sd_idx if best.x[k] < SINGULAR_TOL * scale]
        improved = False
        for k in zero:
            for v in (0.05 * scale, 0.5 * scale):
                x0 = best.x.copy()
                x0[k] = v
                res = run(x0)
                if res.fun < best.fun - 1e-10 * max(1.0, abs(best.fun)):
                    best, improved = res, True
        if not improved:
            break
    return best


def _restrict(value_grad, keep: list[int]):
    return value_grad[0], value_grad[1][keep]


def _vp_zeta(pls, vp, value, value_and_grad, w, opt, base, st):
    """ζ at sd/cor/σ ``w`` = xx: the other sd/cor/σ re-optimised from the previous row."""
    nvp = vp.size
    others = [i for i in range(nvp) if i != w]
    lower = vp.lower.copy()
    lower[-1] = 1e-6 * opt[nvp - 1]  # σ > 0: a line search cannot step back from an infinity
    bounds = [(lower[i] if np.isfinite(lower[i]) else None,
               vp.upper[i] if np.isfinite(vp.upper[i]) else None) for i in others]
    sd_idx = [k for k, i in enumerate(others) if vp.lower[i] == 0 and i < nvp - 1]

    def full(xx, y):
        x = np.empty(nvp)
        x[w] = xx
        x[others] = y
        return x

    def zeta(xx: float, prev: np.ndarray):
        start = prev[1:nvp + 1][others]
        if others:
            sigma = xx if w == nvp - 1 else start[-1]
            best = _inner(lambda y: _restrict(value_and_grad(full(xx, y)), others), start,
                          bounds, sd_idx, sigma)
            y, dev = best.x, float(best.fun)
        else:
            y, dev = start, value(full(xx, start))
        if not np.isfinite(dev):
            return None
        x = full(xx, y)
        beta = pls.solution(vp.to_theta(x), reml=False).beta
        return np.concatenate([[_signed_root(dev, base, xx, opt[w], st)], x, beta])

    return zeta


def _fixef_zeta(pls, j, opt, base, vp, st):
    """ζ at β_j = fw: the model without column j, y − x_j fw, refitted over θ."""
    cp = pls.cp
    p = cp.p
    keep = [i for i in range(p) if i != j]
    lay = pls.layout
    bounds = [(lo if np.isfinite(lo) else None, None) for lo in lay.lower]
    theta0 = vp.to_theta(opt[:vp.size])

    def zeta(fw: float, prev: np.ndarray):
        M = np.zeros((p + 1, p))
        M[keep, np.arange(p - 1)] = 1.0
        M[j, -1] = -fw
        M[p, -1] = 1.0
        red = PLS(cp.transform_xy(M), lay)
        if lay.size:
            best = _inner(lambda th: red.objective_and_gradient(th, False), theta0, bounds,
                          list(np.flatnonzero(lay.is_diag)), 1.0)
            th, dev = best.x, float(best.fun)
        else:
            th, dev = theta0, red.objective(theta0, False)
        if not np.isfinite(dev):
            return None
        s = red.solution(th, reml=False)
        beta = np.empty(p)
        beta[keep], beta[j] = s.beta, fw
        return np.concatenate([[_signed_root(dev, base, fw, opt[vp.size + j], st)],
                               vp.from_theta(th, s.sigma), beta])

    return zeta
