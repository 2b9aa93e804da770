"""The printed form of an ML/REML fit, laid out like lme4's ``summary(lmer(...))``.

Numbers are formatted as R's ``format`` does: each column gets the decimals needed to
show every entry to ``digits`` significant digits (trailing zeros not counted).

Examples
--------
>>> fmt_column([251.405104, 10.467286], 5)
['251.405', ' 10.467']
>>> fmt_column([-3.95361, 0.02312, 5.1793], 4)
['-3.95361', ' 0.02312', ' 5.17930']
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..residual.correlations import SPATIAL, CorARMA, CorSymm
from ..residual.structures import AR1, CAR1, CompSymm, VarExp, VarIdent, VarPower
from ..residual.variances import VarComb, VarConstPower, VarFixed

__all__ = ["format_map", "fmt_column", "nlme_formula", "describe_structure"]


def _decimals(v: float, digits: int) -> int:
    if not math.isfinite(v) or v == 0.0:
        return 0
    dec = max(0, digits - 1 - math.floor(math.log10(abs(v))))
    while dec > 0 and f"{v:.{dec - 1}f}" + "0" == f"{v:.{dec}f}":
        dec -= 1
    return min(dec, 15)


def fmt_column(values: Sequence[float], digits: int = 4) -> list[str]:
    """Format numbers with common decimals, right-aligned, R-style."""
    dec = max((_decimals(float(v), digits) for v in values), default=0)
    out = [f"{float(v):.{dec}f}" if math.isfinite(float(v)) else "NaN" for v in values]
    w = max((len(s) for s in out), default=0)
    return [s.rjust(w) for s in out]


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1,
           indent: str = "") -> list[str]:
    """Columns padded to a common width; the first ``left`` columns left-aligned."""
    cols = list(zip(header, *rows, strict=True))
    widths = [max(len(c) for c in col) for col in cols]
    def line(cells):
        parts = [c.ljust(w) if i < left else c.rjust(w)
                 for i, (c, w) in enumerate(zip(cells, widths, strict=True))]
        return (indent + " ".join(parts)).rstrip()
    return [line(header)] + [line(r) for r in rows]


def _random_effects(fit) -> list[str]:
    vc = fit.varcorr
    sd_rows = vc[vc["var2"].isna()]
    var = fmt_column(sd_rows["vcov"].to_numpy(), 4)
    sdv = fmt_column(sd_rows["sdcor"].to_numpy(), 4)
    corr = {(r.grp, r.var1, r.var2): r.sdcor for r in vc[vc["var2"].notna()].itertuples()}
    has_corr = bool(corr)
    rows, prev = [], None
    for k, r in enumerate(sd_rows.itertuples()):
        name = "" if r.var1 is None or (isinstance(r.var1, float) and np.isnan(r.var1)) \
            else str(r.var1)
        cells = [r.grp if r.grp != prev else "", name, var[k], sdv[k]]
        if has_corr:
            earlier = [str(x.var1) for x in sd_rows.iloc[:k].itertuples() if x.grp == r.grp]
            cs = [corr.get((r.grp, e, name)) for e in earlier]
            cells.append(" ".join("     " if c is None else f"{c:5.2f}" for c in cs))
        rows.append(cells)
        prev = r.grp
    header = ["Groups", "Name", "Variance", "Std.Dev."] + (["Corr"] if has_corr else [])
    return _table(header, rows, left=2, indent=" ")


def _fixed_effects(fit) -> list[str]:
    s = fit.summary()
    p = len(s)
    both = fmt_column(np.concatenate([s["estimate"].to_numpy(), s["se"].to_numpy()]), 4)
    est, se = [v.strip() for v in both[:p]], [v.strip() for v in both[p:]]
    t = fmt_column(s["t"].to_numpy(), 4)
    rows = [[str(n), e, a, b] for n, e, a, b in zip(s.index, est, se, t, strict=True)]
    return _table(["", "Estimate", "Std. Error", "t value"], rows)


def _fixef_corr(fit) -> list[str]:
    v = fit.vcov.to_numpy()
    p = v.shape[0]
    if p < 2 or p > 12:
        return []
    sd = np.sqrt(np.diag(v))
    c = v / np.outer(sd, sd)
    names = [str(n) for n in fit.fixef.index]
    abbrev = [n[:6] for n in names]
    c = np.round(c, 3) + 0.0  # no "-0.000"
    rows = [[names[i]] + [f"{c[i, j]:.3f}" for j in range(i)] + [""] * (p - 1 - i)
            for i in range(1, p)]
    return ["", "Correlation of Fixed Effects:"] + _table([""] + abbrev[:-1], rows)


def _group_part(group: str | None) -> str:
    return f" | {group}" if group else ""


def nlme_formula(part) -> str:
    """nlme's ``form`` of one residual structure (correlation or variance function).

    >>> from bayeslmm.residual.structures import AR1, CAR1, VarIdent, VarPower
    >>> [nlme_formula(s) for s in (AR1(group="Subject"), CAR1(time="age", group="Subject"),
    ...                            VarIdent(by="Sex"), VarPower())]
    ['~1 | Subject', '~age | Subject', '~1 | Sex', '~fitted(.)']
    """
    if isinstance(part, VarIdent):
        return f"~1 | {part.by}"
    if isinstance(part, VarPower | VarExp | VarConstPower | VarFixed):
        return "~fitted(.)" if part.covariate == "fitted" else f"~{part.covariate}"
    if isinstance(part, SPATIAL):
        return f"~{' + '.join(part.coords)}{_group_part(part.group)}"
    return f"~{getattr(part, 'time', None) or 1}{_group_part(part.group)}"


def describe_structure(residual) -> str:
    """A residual structure in nlme's words, its parts joined by "; ".

    >>> from bayeslmm.residual.structures import AR1, Residual, VarIdent
    >>> describe_structure(Residual(VarIdent(by="Sex"), AR1(group="Subject")))
    'AR(1), form ~1 | Subject; Different standard deviations per stratum, form ~1 | Sex'
    """
    parts = [p for p in (residual.correlation, residual.variance) if p is not None]
    return "; ".join(f"{_NLME_NAMES[type(p)]}, form {nlme_formula(p)}" for p in parts)


_NLME_NAMES = {AR1: "AR(1)", CAR1: "Continuous AR(1)", CompSymm: "Compound symmetry",
               VarIdent: "Different standard deviations per stratum",
               VarPower: "Power of variance covariate",
               VarExp: "Exponential of variance covariate", CorSymm: "General",
               VarConstPower: "Constant plus power of variance covariate",
               VarFixed: "fixed weights", **{c: c.nlme_title for c in SPATIAL}}


def _title(part) -> str:
    """nlme's name of a structure (``ARMA(p,q)`` with its orders)."""
    return f"ARMA({part.p},{part.q})" if isinstance(part, CorARMA) else _NLME_NAMES[type(part)]


def _symm_matrix(params: dict[str, float], indent: str) -> list[str]:
    """nlme's printed corSymm estimate: the lower triangle, 3 decimals."""
    cells = {tuple(int(i) for i in k[4:-1].split(",")): f"{v:.3f}"
             for k, v in params.items() if k.startswith("cor(")}
    d = max(j for _, j in cells)
    w = max(len(x) for x in cells.values())
    lab = len(str(d))
    rows = [" " * lab + " " + " ".join(str(i).ljust(w) for i in range(1, d))]
    for j in range(2, d + 1):
        row = [cells[(i, j)] for i in range(1, j)] + [" " * w] * (d - j)
        rows.append(str(j).ljust(lab) + " " + " ".join(x.rjust(w) for x in row))
    return [indent + "Correlation: "] + [r.rstrip() for r in rows]


def _correlation_keys(c, params: dict[str, float]) -> list[str]:
    """The keys of ``params`` that belong to the correlation."""
    if isinstance(c, CorSymm):
        return [k for k in params if k.startswith("cor(")]
    if isinstance(c, (CorARMA, *SPATIAL)):
        return list(c.param_labels)
    return ["Rho" if isinstance(c, CompSymm) else "Phi"]


def _variance_part(v, params: dict[str, float], prefix: str = "") -> list[str]:
    """One variance function's ``Structure:``, ``Formula:`` and estimates (VarComb's
    parts with their ``A.``, ``B.`` names shown without the prefix, as nlme does)."""
    out = [f" Structure: {_title(v)}", f" Formula: {nlme_formula(v)}"]
    own = {k[len(prefix):]: x for k, x in params.items() if k.startswith(prefix)}
    if isinstance(v, VarIdent):
        own = {k: x for k, x in own.items() if k not in ("power", "expon", "const")}
    elif isinstance(v, VarConstPower):
        own = {k: own[k] for k in ("const", "power")}
    elif isinstance(v, VarPower | VarExp):
        own = {k: own[k] for k in (("power",) if isinstance(v, VarPower) else ("expon",))}
    if own and not isinstance(v, VarFixed):
        out += [" Parameter estimates:", *_named_values(own, "")]
    return out


def _variance_lines(v, params: dict[str, float]) -> list[str]:
    if not isinstance(v, VarComb):
        return ["Variance function:", *_variance_part(v, params)]
    out = ["Combination of variance functions: "]
    for k, part in enumerate(v.parts):
        prefix = f"{chr(ord('A') + k)}."
        out += _variance_part(part, {n: x for n, x in params.items() if n.startswith(prefix)},
                              prefix)
    return out


def _named_values(params: dict[str, float], indent: str) -> list[str]:
    """nlme's printed named vector: names over values, right-aligned (7 digits)."""
    vals = [v.strip() for v in fmt_column(list(params.values()), 7)]
    w = [max(len(k), len(v)) for k, v in zip(params, vals, strict=True)]
    return [indent + " ".join(k.rjust(n) for k, n in zip(params, w, strict=True)),
            indent + " ".join(v.rjust(n) for v, n in zip(vals, w, strict=True))]


def _residual_structure(fit) -> list[str]:
    """nlme's ``Correlation Structure:`` and ``Variance function:`` sections."""
    r, params = fit.residual, fit.residual_params
    out = []
    corr_keys: list[str] = []
    if isinstance(r.correlation, (CorSymm, CorARMA, *SPATIAL)):
        c = r.correlation
        corr_keys = _correlation_keys(c, params)
        est = {k: params[k] for k in corr_keys}
        out += [f"Correlation Structure: {_title(c)}", f" Formula: {nlme_formula(c)}",
                " Parameter estimate(s):",
                *(_symm_matrix(est, " ") if isinstance(c, CorSymm) else
                  _named_values(est, ""))]
    elif r.correlation is not None:
        c = r.correlation
        name = "Rho" if isinstance(c, CompSymm) else "Phi"
        corr_keys = [name]
        out += [f"Correlation Structure: {_NLME_NAMES[type(c)]}",
                f" Formula: {nlme_formula(c)}", " Parameter estimate(s):",
                *_named_values({name: params[name]}, " ")]
    if isinstance(r.variance, VarConstPower | VarFixed | VarComb):
        out += _variance_lines(r.variance, {k: x for k, x in params.items()
                                            if k not in corr_keys})
    elif r.variance is not None:
        v = r.variance
        shown = {k: x for k, x in params.items() if k not in corr_keys}
        out += ["Variance function:", f" Structure: {_NLME_NAMES[type(v)]}",
                f" Formula: {nlme_formula(v)}", " Parameter estimates:",
                *_named_values(shown, " ")]
    return out


def format_map(fit) -> str:
    """lme4-style summary text of a :class:`~bayeslmm.results.map.MapResult` (with a
    residual structure: nlme's header and residual-structure sections)."""
    reml = fit.method == "REML"
    how = "REML" if reml else "maximum likelihood"
    nlme = fit.residual is not None
    gls = nlme and not fit.ngroups
    if not nlme:
        head = f"Linear mixed model fit by {how} ['lmerMod']"
    else:
        kind = "Generalized least squares" if gls else "Linear mixed model"
        head = f"{kind} fit by {how} (as nlme's {'gls' if gls else 'lme'})"
    lines = [head, f"Formula: {fit.formula}", ""]
    dev = -2.0 * fit.loglik
    if reml:
        lines.append(f"REML criterion at convergence: {dev:.1f}")
    if reml and nlme:  # nlme's header line
        vals = fmt_column([fit.aic, fit.bic, fit.loglik], 5)
        lines += _table(["AIC", "BIC", "logLik"], [vals], left=0, indent=" ")
    elif not reml:
        vals = fmt_column([fit.aic, fit.bic, fit.loglik, dev], 5)
        lines += _table(["AIC", "BIC", "logLik", "deviance", "df.resid"],
                        [[*vals, str(fit.nobs - fit.df)]], left=0, indent=" ")
    if fit.out_of_core:  # quantiles of 10⁸ residuals are a pass over the data: on request
        lines += ["", "Scaled residuals: out of core (fit.scaled_residuals is a dask Series)"]
    else:
        q = np.quantile(fit.scaled_residuals.to_numpy(), [0, 0.25, 0.5, 0.75, 1])
        lines += ["", "Scaled residuals:" if not nlme else
                  "Scaled residuals (standardized within-group, (y - fitted) / (sigma delta)):"]
        lines += _table(["Min", "1Q", "Median", "3Q", "Max"], [fmt_column(q, 4)], left=0)
    if gls:
        fixed = " (fixed)" if fit.sigma_fixed else ""
        lines += ["", f"Residual standard error: {fmt_column([fit.sigma], 5)[0]}{fixed}",
                  f"Number of obs: {fit.nobs}"]
    else:
        lines += ["", "Random effects:"] + _random_effects(fit)
        if fit.sigma_fixed:  # nlme's lmeControl(sigma = s): data, not an estimate
            lines.append(f"Residual standard error fixed at {fit.sigma:g} (not estimated)")
        groups = ", ".join(f"{g}, {n}" for g, n in fit.ngroups.items())
        lines.append(f"Number of obs: {fit.nobs}" + (f", groups:  {groups}" if groups else ""))
    if nlme:
        lines += [""] + _residual_structure(fit)
    if len(fit.fixef):
        lines += ["", "Fixed effects:"] + _fixed_effects(fit) + _fixef_corr(fit)
    notes = []
    if fit.singular:
        notes.append("boundary (singular) fit: a variance is 0 or a correlation ±1")
    if not fit.converged:
        notes.append(f"optimizer did not converge: {fit.optimizer.get('message', '')}")
    if notes:
        lines += [""] + notes
    return "\n".join(lines)
