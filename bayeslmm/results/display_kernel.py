"""Printed forms of high-dimensional LMM results, in the style of lme4's summary.

Examples
--------
>>> print(h2_line(0.4812, 0.0456, (0.39, 0.57)))
Heritability h²: 0.4812 (SE 0.0456; 95% profile interval 0.3900 to 0.5700)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .display import format_table, groups_line, sampling_lines

__all__ = ["format_kernel_map", "format_kernel_posterior", "h2_line"]


def h2_line(h2: float, se: float, interval: tuple[float, float]) -> str:
    """One line with ĥ², its SE and profile-likelihood interval."""
    se_txt = f"SE {se:.4f}" if np.isfinite(se) else "SE not available at the boundary"
    return (f"Heritability h²: {h2:.4f} ({se_txt}; 95% profile interval "
            f"{interval[0]:.4f} to {interval[1]:.4f})")


def _term_line(result) -> str:
    kd = result.design
    if kd.kind == "matrix":
        return (f"Random matrix: {kd.name} ({kd.nobs} rows × {len(kd.effect_names)} columns, "
                f"rank {kd.rotation.rank}); coefficients iid N(0, sd²)")
    return (f"Known covariance: (1 | {kd.name}), b ~ N(0, sd² K) over "
            f"{len(kd.effect_names)} levels")


def format_kernel_map(result) -> str:
    """lme4-like summary of a :class:`~bayeslmm.kernel_result.KernelMapResult`."""
    vc = result.varcorr
    re = pd.DataFrame({"Groups": vc["grp"], "Name": vc["var1"].fillna(""),
                       "Variance": vc["vcov"], "Std.Dev.": vc["sdcor"]})
    fe = pd.DataFrame({"Estimate": result.fixef, "Std. Error": result.se,
                       "t value": result.fixef / result.se})
    crit = "REML criterion" if result.method == "REML" else "-2 log-likelihood"
    lines = [
        f"Linear mixed model fit by {result.method} (rotated, exact)",
        f"Formula: {result.formula}",
        _term_line(result),
        f"{crit} at convergence: {-2 * result.loglik:.4f}",
        "", "Random effects:", format_table(re, index=False),
        groups_line(result.nobs, result.ngroups),
        h2_line(result.h2, result.h2_se, result.h2_interval),
        "", "Fixed effects:", format_table(fe),
    ]
    if not result.converged:
        lines.append("WARNING: the optimiser did not converge.")
    if result.singular:
        lines.append("boundary (singular) fit: the random term's variance is 0.")
    return "\n".join(lines)


def format_kernel_posterior(result) -> str:
    """Summary of a :class:`~bayeslmm.kernel_result.KernelPosteriorResult`."""
    s = result.summary()
    hdi = [c for c in s.columns if c.startswith("hdi_")]
    cols = ["mean", "sd", *hdi, "r_hat", "ess_bulk"]
    names = ["Mean", "SD", *hdi, "R-hat", "ESS"]
    var = s.loc[[f"sd_{result.design.name}", "sigma", "h2"], cols]
    var.index = [f"{result.design.name} sd", "Residual sd", "h²"]
    fe = s.loc[[i for i in s.index if i.startswith("beta[")], cols]
    fe.index = [i[5:-1] for i in fe.index]
    info = result.info
    lines = [
        f"Bayesian linear mixed model fit by NUTS ({info.get('sampler')} sampler, "
        f"{info.get('parameterization')})",
        f"Formula: {result.formula}", _term_line(result),
        f"Draws: {info.get('chains')} chains x {info.get('draws')} "
        f"(after {info.get('tune')} tuning steps)",
        "", "Variance parameters (posterior mean, sd, 94% HDI):",
        format_table(var.set_axis(names, axis=1)),
        groups_line(result.nobs, result.ngroups),
        "", "Fixed effects (posterior mean, sd, 94% HDI):",
        format_table(fe.set_axis(names, axis=1)),
        "", *sampling_lines(result),
    ]
    return "\n".join(lines)
