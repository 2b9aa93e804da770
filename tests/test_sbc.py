"""A small simulation-based calibration in the sampling tier (the full runs and their
table: ``benchmarks/bench_sbc.py``, ``docs/calibration.md``): 20 simulations of the
correlated intercept-and-slope model, fitted as ``fit()`` does by default, give uniform
ranks; the same simulations fitted with a wrong prior on σ (a wrong posterior, as a
broken sampler or density would give) do not. In the numerical tier: the stored ranks
of the full runs give the stored table, and no parameter there fails uniformity."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bayeslmm as blm
from tests.sbc import CASES, run, uniformity

SIMS = 20
RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "sbc"
NUTS = {"draws": 150, "tune": 300, "chains": 2, "seed": 7}


@pytest.fixture(scope="module")
def calibrated():
    return uniformity(run(CASES["slope"], "marginal", SIMS, **NUTS), bins=5)


@pytest.mark.slow
def test_ranks_are_uniform(calibrated):
    # every parameter (β, σ, the sds, the correlation, the first level's b), χ² and KS:
    # Bonferroni over the tests at the 1% level
    m = 2 * len(calibrated)
    assert len(calibrated) == 8
    assert (calibrated[["p_chi2", "p_ks"]].to_numpy() > 0.01 / m).all(), calibrated


@pytest.mark.slow
def test_a_wrong_posterior_fails(calibrated):
    case = CASES["slope"]
    wrong = dataclasses.replace(
        case, priors={**case.priors, "sigma": blm.Prior("HalfNormal", sigma=0.1)})
    u = uniformity(run(case, "marginal", SIMS, fit_case=wrong, **NUTS), bins=5)
    m = 2 * len(u)
    assert u.loc["sigma", "p_ks"] < 0.01 / m and u.loc["sigma", "p_chi2"] < 0.01 / m, u


def test_stored_runs_are_calibrated():
    # the ranks of benchmarks/bench_sbc.py's runs (one CSV per design and
    # parameterization) against its table, and no χ² or KS p-value below 0.01 / m
    # (Bonferroni over the m tests of the table)
    table = pd.read_csv(RESULTS / "table.csv")
    runs = sorted(RESULTS.glob("*_*.csv"))
    assert len(runs) == len(table.groupby(["model", "parameterization"])) >= 4
    for path in runs:
        model, par = path.stem.split("_")
        want = table[(table["model"] == model) & (table["parameterization"] == par)]
        got = uniformity(pd.read_csv(path)).loc[want["parameter"]]
        np.testing.assert_allclose(got["p_chi2"].astype(float), want["p_chi2"], rtol=1e-9)
        np.testing.assert_allclose(got["p_ks"].astype(float), want["p_ks"], rtol=1e-9)
    m = 2 * len(table)
    assert (table[["p_chi2", "p_ks"]].to_numpy() > 0.01 / m).all()
