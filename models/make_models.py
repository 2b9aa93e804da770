"""Write one TOML file per reference fit from the reference JSON files (lme4 / nlme output).

Usage: ``python models/make_models.py [REFERENCE_DIR]`` (default ``/work/shared/reference``).
Names are translated to bayeslmm's: fixed effects in formulae's naming (``Sex[Female]``),
groups as bayeslmm names them (lme4's ``Subject.1`` is part of ``Subject``; ``cask:batch``
from ``(1 | batch/cask)`` is ``batch:cask``, levels ``A:a``).
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import bayeslmm as blm
from bayeslmm.formula.design import build_design
from bayeslmm.residual.structures import parse_residual
from bayeslmm.results.base import lme4_name

HERE = Path(__file__).resolve().parent
#: Residual parameters: |Δ| ≤ RESIDUAL_ABS · max(1, |reference|): absolute for
#: correlations and parameters near 0 (Phi = 0.044), relative for ratios and powers > 1.
RESIDUAL_ABS = 1e-3
TOLERANCE = {
    "fixef_rel": 1e-4, "fixef_se_frac": 1e-3, "se_rel": 2e-3, "sd_rel": 5e-4,
    "corr_abs": 2e-3, "sigma_rel": 1e-4, "loglik_abs": 2e-3,
    # conditional modes: |Δ| ≤ frac × the group's random-effect sd; cond. sds relative
    "ranef_frac": 2e-3, "ranef_sd_rel": 2e-3,
}


def _q(s: str) -> str:
    return json.dumps(s)


def _val(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return _q(v)
    if isinstance(v, list):
        return "[" + ", ".join(_val(x) for x in v) + "]"
    return repr(float(v)) if isinstance(v, float) else str(v)


def _group_map(design, lme4_group: str):
    """bayeslmm term and a level translator for an lme4 group name."""
    base = lme4_group.split(".")[0] if lme4_group.split(".")[-1].isdigit() else lme4_group
    parts = base.split(":")
    for t in design.terms:
        ours = t.group.split(":")
        if sorted(ours) == sorted(parts):
            perm = [parts.index(p) for p in ours]
            return t, (lambda lev, perm=perm: ":".join(lev.split(":")[i] for i in perm))
    raise KeyError(f"No bayeslmm group for lme4 group {lme4_group!r}")


def _term_name(term, lme4_term: str) -> str:
    for nm in term.term_names:
        if lme4_name(nm) == lme4_term:
            return nm
    raise KeyError(f"No term {lme4_term!r} in {term.group}: {term.term_names}")


def _form(formula: str) -> tuple[str, str | None]:
    """nlme's ``~ v | g`` → (v, g); ``~ v`` → (v, None)."""
    rhs = formula.strip().lstrip("~")
    v, _, g = rhs.partition("|")
    return v.strip(), (g.strip() or None)


#: nlme grouping columns that stand for an interaction (made in models/make_nlme_more.R)
_GROUP_ALIASES = {"rr": "recipe:replicate"}

_SPATIAL = {"corExp": "CorExp", "corGaus": "CorGaus", "corSpher": "CorSpher",
            "corRatio": "CorRatio", "corLin": "CorLin"}


def _group_arg(g: str | None) -> str:
    if not g:
        return ""
    g = _GROUP_ALIASES.get(g, g.replace("/", ":"))
    return f"group={g!r}" if ":" in g else f"group={g}"


def _variance_text(cls: str, v: str, g: str | None) -> str:
    if cls == "varIdent":
        return f"VarIdent(by={g})"
    if cls in ("varPower", "varExp", "varConstPower"):
        name = {"varPower": "VarPower", "varExp": "VarExp", "varConstPower": "VarConstPower"}[cls]
        return f"{name}()" if v == "fitted(.)" else f"{name}(covariate={v})"
    if cls == "varFixed":
        return f"VarFixed(covariate={v})"
    raise ValueError(f"No bayeslmm structure for {cls}")


def nlme_residual(params: dict) -> str:
    """bayeslmm's residual text (for :func:`bayeslmm.residual.structures.parse_residual`) of nlme's
    ``residual_structure_parameters``.

    >>> nlme_residual({"correlation": {"class": "corCAR1", "formula": "~age | Subject"},
    ...                "variance": {"class": "varPower", "formula": "~fitted(.)"}})
    'Residual(variance=VarPower(), correlation=CAR1(time=age, group=Subject))'
    """
    parts = {}
    cor = params.get("correlation")
    if cor:
        v, g = _form(cor["formula"])
        grp = _group_arg(g)
        cls = cor["class"]
        if cls == "corAR1":
            parts["correlation"] = f"AR1({grp}{', ' if grp and v != '1' else ''}" \
                                   f"{'time=' + v if v != '1' else ''})"
        elif cls == "corCAR1":
            parts["correlation"] = f"CAR1(time={v}{', ' + grp if grp else ''})"
        elif cls == "corCompSymm":
            parts["correlation"] = f"CompSymm({grp})"
        elif cls == "corSymm":
            time = f", time={v}" if v != "1" else ""
            parts["correlation"] = f"CorSymm({grp}{time})"
        elif cls == "corARMA":
            args = [f"p={int(cor['p'])}", f"q={int(cor['q'])}", grp] + \
                ([f"time={v}"] if v != "1" else [])
            parts["correlation"] = f"CorARMA({', '.join(a for a in args if a)})"
        elif cls in _SPATIAL:
            coords = [c.strip() for c in v.split("+")]
            args = [f"coords=({', '.join(coords)}{',' if len(coords) == 1 else ''})", grp]
            if cor.get("nugget"):
                args.append("nugget=True")
            if cor.get("metric", "euclidean") != "euclidean":
                args.append(f"metric={cor['metric']!r}")
            parts["correlation"] = f"{_SPATIAL[cls]}({', '.join(a for a in args if a)})"
        else:
            raise ValueError(f"No bayeslmm structure for {cls}")
    var = params.get("variance")
    if var:
        cls = var["class"]
        if cls == "varComb":
            inner = [_variance_text(p["class"], *_form(p["formula"]))
                     for p in var["parts"].values()]
            parts["variance"] = f"VarComb({', '.join(inner)})"
        else:
            parts["variance"] = _variance_text(cls, *_form(var["formula"]))
    if len(parts) == 1:
        return next(iter(parts.values()))
    return f"Residual(variance={parts['variance']}, correlation={parts['correlation']})"


def convert(ref: dict, fname: str, script: str = "models/make_models.py") -> str:
    params = ref.get("residual_structure_parameters") or {}
    formula = ref["formula"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        design = build_design(formula, blm.datasets.load(ref["dataset"]),
                              known_sigma=ref.get("fixed_sigma") is not None)
    fx = {lme4_name(n): n for n in design.fixef_names}
    lines = [f"# Generated by {script} from {fname}; do not edit by hand.",
             f"name = {_q(ref['case'])}", f"dataset = {_q(ref['dataset'])}",
             f"formula = {_q(formula)}", f"method = {_q(ref['method'])}"]
    if params:
        text = nlme_residual(params)
        given = ref.get("bayeslmm_residual")
        if given is not None and parse_residual(given) != parse_residual(text):
            raise ValueError(f"{fname}: {given!r} is not nlme's {text!r}")
        lines.append(f"residual = {_q(text)}")
    if ref.get("weights"):
        lines.append(f"weights = {_q(ref['weights'])}")
    if ref.get("fixed_sigma") is not None:  # nlme's lmeControl(sigma = s)
        lines.append(f"fixed_sigma = {float(ref['fixed_sigma'])!r}")
    if ref["nobs"] > 10000:
        lines.append("slow = true")
    if ref.get("note"):
        lines.append(f"note = {_q(ref['note'])}")
    r_s = round(float(ref["timing"]["median_elapsed_s"]), 4)
    lines += ["", "[source]", f"engine = {_q(ref['engine'])}", f"r_call = {_q(ref['r_call'])}",
              f"file = {_q(fname)}", f"r_median_s = {r_s!r}",
              "", "[tolerance]"]
    lines += [f"{k} = {v}" for k, v in {**TOLERANCE, **(ref.get("tolerance") or {})}.items()]
    if params:
        lines.append(f"residual_abs = {RESIDUAL_ABS}")
    lines += ["", "[reference]", f"sigma = {ref['residual_sd']!r}", f"loglik = {ref['logLik']!r}",
              f"singular = {_val(bool(ref.get('singular')))}", f"nobs = {ref['nobs']}"]
    lines += [f"{k.lower()} = {float(ref[k])!r}" for k in ("AIC", "BIC") if k in ref]
    if "df" in ref:
        lines.append(f"df = {int(ref['df'])}")
    if params:
        lines += ["", "[reference.residual_params]"]
        for kind in ("correlation", "variance"):
            given = params.get(kind, {}).get("parameters") or {}  # varFixed: none
            for k, v in given.items():
                lines.append(f"{_q(k)} = {float(v)!r}")
    inf = ref.get("inference") or {}
    for key in ("satterthwaite_df", "kenward_roger_df"):
        if key in inf:
            lines += ["", f"[reference.inference.{key}]"] + \
                [f"{_q(fx[k])} = {float(v)!r}" for k, v in inf[key].items()]
    if "profile_ci" in inf:  # lme4's names: sd_(Intercept)|Subject, sigma
        lines += ["", "[reference.inference.profile_ci]"] + \
            [f"{_q(k)} = {_val([float(x) for x in v])}" for k, v in inf["profile_ci"].items()]
    fe = ref["fixed_effects"]
    lines += ["", "[reference.fixef]"] + [f"{_q(fx[k])} = {v!r}" for k, v in fe["estimate"].items()]
    lines += ["", "[reference.se]"] + [f"{_q(fx[k])} = {v!r}" for k, v in fe["std_error"].items()]
    sd_rows, corr_rows = [], []
    for re_ in ref["random_effects"]:
        term, _ = _group_map(design, re_["group"])
        names = [_term_name(term, t) for t in re_["terms"]]
        for t, nm in zip(re_["terms"], names, strict=True):
            sd_rows.append((term.group, nm, re_["sd"][t]))
        for j in range(len(names)):
            for i in range(j + 1, len(names)):
                corr_rows.append((term.group, names[j], names[i], re_["corr"][i][j]))
    for g, nm, v in sd_rows:
        lines += ["", "[[reference.sd]]", f"group = {_q(g)}", f"term = {_q(nm)}",
                  f"value = {float(v)!r}"]
    for g, a, b, v in corr_rows:
        lines += ["", "[[reference.corr]]", f"group = {_q(g)}", f"var1 = {_q(a)}",
                  f"var2 = {_q(b)}", f"value = {float(v)!r}"]
    for g, block in (ref.get("ranef") or {}).items():
        term, level = _group_map(design, g)
        lines += ["", f"[reference.ranef.{_q(term.group)}]",
                  f"levels = {_val([level(lv) for lv in block['levels']])}"]
        for t, vals in block.items():
            if t == "levels":
                continue
            lines += ["", f"[reference.ranef.{_q(term.group)}.{_q(_term_name(term, t))}]",
                      f"mode = {_val([float(x) for x in vals['mode']])}"]
            if "cond_sd" in vals:
                lines.append(f"cond_sd = {_val([float(x) for x in vals['cond_sd']])}")
    return "\n".join(lines) + "\n"


def main(refdir: str = "/work/shared/reference", script: str = "models/make_models.py") -> None:
    for path in sorted(Path(refdir).glob("*.json")):
        ref = json.loads(path.read_text())
        (HERE / f"{ref['case']}.toml").write_text(convert(ref, path.name, script))
        print("wrote", f"{ref['case']}.toml")


if __name__ == "__main__":
    main(*sys.argv[1:])
