"""Fit one model with bambi and print a JSON line of timings and diagnostics.

Runs inside bambi's own virtual environment (bambi 0.17.2 pins formulae < 0.7, which
bayeslmm cannot share): ``bench_sampling.py`` creates it on first use and calls

    .bambi-venv/bin/python bambi_runner.py '{"csv": ..., "formula": ..., ...}'
"""

import json
import os
import resource
import sys
import time

import arviz as az
import bambi as bmb
import numpy as np
import pandas as pd


def bambi_formula(formula: str) -> str:
    """bambi reads no '||': ``(x || g)`` is ``(1 | g) + (0 + x | g)`` (its ``(x | g)``
    has independent priors too, so both forms are uncorrelated in bambi)."""
    import re

    return re.sub(r"\(\s*([^|()]+?)\s*\|\|\s*([^)]+?)\s*\)", r"(1|\2) + (0 + \1|\2)", formula)


def main(spec: dict) -> dict:
    df = pd.read_csv(spec["csv"])
    for col in spec.get("categorical", []):
        df[col] = df[col].astype(str).astype("category")
    t0 = time.perf_counter()
    model = bmb.Model(bambi_formula(spec["formula"]), df)
    model.build()
    t_build = time.perf_counter() - t0
    t1 = time.perf_counter()
    idata = model.fit(draws=spec["draws"], tune=spec["tune"], chains=spec["chains"],
                      random_seed=spec["seed"], progressbar=False,
                      cores=spec.get("cores", spec["chains"]))
    t_fit = time.perf_counter() - t1
    sampling = float(idata.posterior.attrs.get("sampling_time", np.nan))
    names = [v for v in idata.posterior.data_vars
             if not v.endswith("_offset") and idata.posterior[v].ndim == 2]  # scalars
    summ = az.summary(idata, var_names=names, kind="diagnostics")
    return {
        "tool": "bambi 0.17.2", "build_s": t_build, "compile_s": t_fit - sampling,
        "sample_s": sampling, "total_s": t_build + t_fit,
        "divergences": int(idata.sample_stats["diverging"].sum()),
        "min_ess_bulk": float(summ["ess_bulk"].min()),
        "min_ess_tail": float(summ["ess_tail"].min()),
        "max_rhat": float(summ["r_hat"].max()),
        "peak_mem_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        # this process's and its reaped workers' CPU seconds (chains in child processes)
        "cpu_s": sum(os.times()[:4]),
        "steps_per_draw": (float(idata.sample_stats["n_steps"].mean())
                           if "n_steps" in idata.sample_stats else None),
    }


if __name__ == "__main__":
    print("RESULT " + json.dumps(main(json.loads(sys.argv[1]))))
