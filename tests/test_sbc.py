"""A small simulation-based calibration in the sampling tier (the full runs and their
table: ``benchmarks/bench_sbc.py``, ``docs/calibration.md``): 20 simulations of the
correlated intercept-and-slope model, fitted as ``fit()`` does by default, give uniform
ranks; the same simulations fitted with a wrong prior on σ (a wrong posterior, as a
broken sampler or density would give) do not."""

from __future__ import annotations

import dataclasses

import pytest

import bayeslmm as blm
from tests.sbc import CASES, run, uniformity

SIMS = 20
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
