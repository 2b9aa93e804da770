"""Printed forms of results, in the style of lme4's ``summary(lmer)``."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .display_map import describe_structure

__all__ = ["format_posterior", "format_table", "groups_line", "sampling_lines"]


def _num(x: float, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return ""
    return f"{x:.{digits}g}" if abs(x) < 1e5 else f"{x:.4e}"


def format_table(df: pd.DataFrame, digits: int = 4, index: bool = True) -> str:
    """A DataFrame as aligned text, numbers to ``digits`` significant digits."""
    shown = df.copy()
    for c in shown.columns:
        if pd.api.types.is_numeric_dtype(shown[c]):
            shown[c] = [_num(float(v), digits) for v in shown[c]]
    shown = shown.fillna("")
    return shown.to_string(index=index)


def groups_line(nobs: int, ngroups: dict[str, int]) -> str:
    """``Number of obs: 180, groups:  Subject, 18``."""
    if not ngroups:
        return f"Number of obs: {nobs}"
    groups = "; ".join(f"{g}, {n}" for g, n in ngroups.items())
    return f"Number of obs: {nobs}, groups:  {groups}"


def _rows(summary: pd.DataFrame, prefix: str) -> pd.DataFrame:
    return summary.loc[[i for i in summary.index if i == prefix or i.startswith(prefix + "[")]]


def _ci_cols(summary: pd.DataFrame) -> list[str]:
    return [c for c in summary.columns if c.startswith("hdi_")]


def format_posterior(result) -> str:
    """lme4-like summary of a :class:`~bayeslmm.results.posterior.PosteriorResult`."""
    s = result.summary()
    info = result.info
    hdi = _ci_cols(s)
    lines = [
        f"Bayesian linear mixed model fit by NUTS ({info.get('sampler')} sampler, "
        f"{info.get('parameterization')} parameterization)",
        f"Formula: {result.formula}",
        f"Draws: {info.get('chains')} chains x {info.get('draws')} "
        f"(after {info.get('tune')} tuning steps)",
        "",
        "Random effects (posterior mean, sd, 94% HDI):",
    ]
    rows = []
    for g in result.ngroups:
        first = True
        for prefix, label in ((f"sd_{g}", "sd"), (f"corr_{g}", "corr")):
            for idx, r in _rows(s, prefix).iterrows():
                term = idx[len(prefix) + 1 : -1] if "[" in idx else ""
                rows.append({"Groups": g if first else "", "Name": f"{label}({term})",
                             "Mean": r["mean"], "SD": r["sd"],
                             **{c: r[c] for c in hdi}, "R-hat": r["r_hat"],
                             "ESS": r["ess_bulk"]})
                first = False
    if "sigma" in s.index:
        r = s.loc["sigma"]
        rows.append({"Groups": "Residual", "Name": "sd", "Mean": r["mean"], "SD": r["sd"],
                     **{c: r[c] for c in hdi}, "R-hat": r["r_hat"], "ESS": r["ess_bulk"]})
    else:  # σ fixed at a known value (LMM(..., sigma=...)): data, not a parameter
        sig = float(info["sigma_fixed"])
        rows.append({"Groups": "Residual", "Name": "sd (fixed)", "Mean": sig, "SD": 0.0,
                     **{c: sig for c in hdi}, "R-hat": float("nan"), "ESS": float("nan")})
    lines.append(format_table(pd.DataFrame(rows), index=False))
    lines.append(groups_line(result.nobs, result.ngroups))
    if result.residual is not None:
        lines += ["", f"Residual structure: {describe_structure(result.residual)} "
                      "(posterior mean, sd, 94% HDI)"]
        names = [n for n in ("Phi", "Rho", "const", "power", "expon", "varident_ratio")
                 if n in s.index or any(i.startswith(n + "[") for i in s.index)]
        if names:  # (VarFixed has no parameters)
            res = pd.concat([_rows(s, n) for n in names])
            res = res[["mean", "sd", *hdi, "r_hat", "ess_bulk"]]
            res.columns = ["Mean", "SD", *hdi, "R-hat", "ESS"]
            lines.append(format_table(res))
    lines += ["", "Fixed effects (posterior mean, sd, 94% HDI):"]
    fe = _rows(s, "beta")
    fe = fe.rename(index=lambda i: i[5:-1])
    fe = fe[["mean", "sd", *hdi, "r_hat", "ess_bulk", "ess_tail"]]
    fe.columns = ["Mean", "SD", *hdi, "R-hat", "ESS bulk", "ESS tail"]
    lines.append(format_table(fe))
    return "\n".join(lines + ["", *sampling_lines(result)])


def sampling_lines(result) -> list[str]:
    """The sampling diagnostics of a posterior, then its warnings (``WARNING: ...``)."""
    d = result.diagnostics
    rhat = "n/a (1 chain)" if d["chains"] < 2 else f"{d['max_rhat']:.3f}"
    return [f"Sampling: {d['divergences']} divergences, max R-hat {rhat}, "
            f"min ESS bulk {d['min_ess_bulk']:.0f}, tail {d['min_ess_tail']:.0f}",
            *[f"WARNING: {w}" for w in result.warnings]]
