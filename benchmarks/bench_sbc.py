"""Simulation-based calibration of bayeslmm's NUTS fits (Talts et al. 2018).

Four designs (``tests/sbc.py``): correlated intercept and slope ``y ~ x + (x | g)``
(LKJ), crossed factors ``y ~ x + (1 | a) + (1 | b)``, AR(1) residuals
``y ~ x + (1 | g)`` with ``residual=blm.AR1(group="g")``, and the genomic model
(``random_matrices=``), each fitted in the marginal and the conditional
parameterization (the genomic one only in the marginal). Each simulation draws the
parameters from the priors, a response given them, refits, and ranks the truth among
49 thinned posterior draws. The table gives per parameter the χ² test of the ranks
(10 bins) and a Kolmogorov–Smirnov test of the jittered ranks against uniform; the
plots (ECDF minus the uniform CDF, with ArviZ's simultaneous 99% band) are saved as
PNG under ``benchmarks/results/sbc/`` with the ranks (CSV, one row per simulation).

Runs resume: a rerun continues each CSV where it stopped; ``--report`` only remakes
the table and plots from the CSVs.

    python benchmarks/bench_sbc.py                        # every run, 200 simulations
    python benchmarks/bench_sbc.py --only slope/marginal ar1/conditional
    python benchmarks/bench_sbc.py --report
    python benchmarks/bench_sbc.py --report --docs         # and docs/calibration.md
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.sbc import CASES, plot_ranks, run, uniformity  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "sbc"
DOCS = ROOT / "docs" / "images" / "sbc"
PAGE = ROOT / "docs" / "calibration.md"
#: NUTS per fit, sized to a shared 2-core machine: the marginal models' fits are cheap
#: (nutpie, a precompiled density); the conditional ones (PyMC's NUTS) and the AR(1)
#: marginal one (PyMC's NUTS, see tests/sbc.py) run one chain
SETTINGS = {"cheap": {"chains": 2, "tune": 300, "draws": 150},
            "pymc": {"chains": 1, "tune": 250, "draws": 150}}
ALPHA = 0.01


def runs() -> list[tuple[str, str]]:
    return [(c, p) for c, case in CASES.items() for p in case.parameterizations]


def settings(case: str, par: str) -> dict:
    pymc = par == "conditional" or CASES[case].sampler.get(par) == "pymc"
    return SETTINGS["pymc" if pymc else "cheap"]


def table(done: list[tuple[str, str]]) -> pd.DataFrame:
    """One row per parameter and run: χ² and KS p-values, divergences, ESS."""
    rows = []
    for case, par in done:
        ranks = pd.read_csv(OUT / f"{case}_{par}.csv")
        u = uniformity(ranks)
        for name, r in u.iterrows():
            rows.append({"model": case, "parameterization": par, "parameter": name,
                         "sims": int(r["n"]), "chi2": r["chi2"], "p_chi2": r["p_chi2"],
                         "p_ks": r["p_ks"]})
    t = pd.DataFrame(rows)
    m = 2 * len(t)  # every χ² and KS test in the table
    t["fails (Bonferroni)"] = (t[["p_chi2", "p_ks"]].min(axis=1) < ALPHA / m).map(
        {True: "FAIL", False: ""})
    return t


def fit_stats(done: list[tuple[str, str]]) -> pd.DataFrame:
    rows = []
    for case, par in done:
        ranks = pd.read_csv(OUT / f"{case}_{par}.csv")
        s = settings(case, par)
        rows.append({"model": case, "parameterization": par, "sims": len(ranks),
                     "NUTS": f"{s['chains']} x {s['draws']} (tune {s['tune']})",
                     "sampler": CASES[case].sampler.get(par, "default"),
                     "fits with divergences": int((ranks["divergences"] > 0).sum()),
                     "median min ESS": round(float(ranks["min_ess"].median())),
                     "median s/fit": round(float(ranks["seconds"].median()), 1)})
    return pd.DataFrame(rows)


def summary(t: pd.DataFrame, stats: pd.DataFrame) -> pd.DataFrame:
    """Per run: its fits, and the smallest p-values of its parameters."""
    g = t.groupby(["model", "parameterization"], sort=False)
    worst = g.agg(**{"min p (χ²)": ("p_chi2", "min"), "min p (KS)": ("p_ks", "min"),
                     "parameters failing": ("fails (Bonferroni)",
                                            lambda f: int((f == "FAIL").sum()))})
    return stats.merge(worst.reset_index(), on=["model", "parameterization"])


def _markdown(df: pd.DataFrame) -> str:
    def cell(v) -> str:
        if isinstance(v, float):
            return f"{v:.3g}"
        return str(v).replace("|", "\\|")
    lines = ["| " + " | ".join(df.columns) + " |", "|" + " --- |" * len(df.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |"
              for row in df.itertuples(index=False)]
    return "\n".join(lines)


def _replace(text: str, key: str, body: str) -> str:
    """``body`` between the page's ``<!-- sbc:key -->`` and ``<!-- /sbc:key -->``."""
    pat = re.compile(rf"(<!-- sbc:{key} -->\n).*?(<!-- /sbc:{key} -->)", re.S)
    if not pat.search(text):
        raise SystemExit(f"{PAGE.name} has no <!-- sbc:{key} --> section")
    return pat.sub(lambda m: m.group(1) + body + "\n" + m.group(2), text)


def write_page(t: pd.DataFrame, stats: pd.DataFrame, done: list[tuple[str, str]],
               note: str) -> None:
    """The tables and plots of ``docs/calibration.md`` from this run's results."""
    results = "\n\n".join([_markdown(summary(t, stats)), note, "### Every parameter",
                            _markdown(t.assign(parameter="`" + t["parameter"] + "`").rename(
                                columns={"chi2": "χ²", "p_chi2": "p (χ²)",
                                         "p_ks": "p (KS)"}))])
    plots = "\n\n".join(
        f"### {case}, {par}\n\n![SBC ranks of {case}, {par}](images/sbc/{case}_{par}.png)"
        for case, par in done)
    text = _replace(PAGE.read_text(), "results", results)
    PAGE.write_text(_replace(text, "plots", plots))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sims", type=int, default=200)
    ap.add_argument("--only", nargs="*", help="runs as case/parameterization")
    ap.add_argument("--report", action="store_true", help="table and plots only")
    ap.add_argument("--docs", action="store_true",
                    help=f"copy the plots to {DOCS}, the tables to {PAGE.name}")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    todo = [tuple(r.split("/")) for r in args.only] if args.only else runs()
    if not args.report:
        for case, par in todo:
            run(CASES[case], par, args.sims, seed=1, out=OUT / f"{case}_{par}.csv",
                progress=True, **settings(case, par))
    done = [r for r in runs() if (OUT / f"{r[0]}_{r[1]}.csv").exists()]
    for case, par in done:
        ranks = pd.read_csv(OUT / f"{case}_{par}.csv")
        png = OUT / f"{case}_{par}.png"
        plot_ranks(ranks, f"{case} ({CASES[case].formula}), {par}: {len(ranks)} simulations",
                   png)
        if args.docs:
            DOCS.mkdir(parents=True, exist_ok=True)
            shutil.copy(png, DOCS / png.name)
    t = table(done)
    stats = fit_stats(done)
    with pd.option_context("display.width", 200, "display.max_rows", 200):
        print(summary(t, stats).to_string(index=False))
        print()
        print(t.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    n_tests = 2 * len(t)
    raw = int((t[["p_chi2", "p_ks"]] < ALPHA).to_numpy().sum())
    note = (f"{n_tests} tests; {raw} with p < {ALPHA} unadjusted (about "
            f"{ALPHA * n_tests:.1f} expected by chance); "
            f"{int((t['fails (Bonferroni)'] == 'FAIL').sum())} parameters fail at the "
            f"Bonferroni level {ALPHA}/{n_tests}.")
    short = stats[stats["sims"] < args.sims]
    if len(short):
        note += (f" Not yet at {args.sims} simulations (stopped for time; rerun to "
                 "resume): " + ", ".join(f"{r.model}/{r.parameterization} ({r.sims})"
                                         for r in short.itertuples()) + ".")
    print("\n" + note)
    t.to_csv(OUT / "table.csv", index=False)
    if args.docs:
        write_page(t, stats, done, note)


if __name__ == "__main__":
    main()
