"""The parametric bootstrap: reproducible from a seed whatever the number of workers,
the draws are the fit's model (moments against the fitted parameters), boot's percentile
rule (against R's ``boot:::norm.inter``), its intervals against the profile's and
lme4's own bootstrap on sleepstudy (models/inference/, made by models/make_inference.R),
failures counted, no worker left behind."""

from __future__ import annotations

import multiprocessing as mp
import warnings

import numpy as np
import pytest

import bayeslmm as blm
from bayeslmm.errors import BayesLMMError
from bayeslmm.results.bootstrap import percentile_interval
from conftest import inference_reference


@pytest.fixture(scope="module")
def dyestuff():
    return blm.LMM("Yield ~ 1 + (1 | Batch)", blm.datasets.load("Dyestuff")).fit_map()


@pytest.fixture(scope="module")
def sleep():
    return blm.LMM("Reaction ~ Days + (Days | Subject)",
                   blm.datasets.load("sleepstudy")).fit_map()


def test_reproducible_whatever_the_workers(dyestuff):
    one = dyestuff.bootstrap(12, random_seed=3, cores=1, progressbar=False)
    two = dyestuff.bootstrap(12, random_seed=3, cores=2, progressbar=False)
    assert one.replicates.equals(two.replicates)
    assert not mp.active_children()  # the workers are gone
    other = dyestuff.bootstrap(12, random_seed=4, cores=1, progressbar=False)
    assert not other.replicates.equals(one.replicates)
    # a statistic of the full refit: the same replicates (the default path skips
    # building the refits' results)
    stat = dyestuff.bootstrap(12, statistic=lambda f: {"sigma": f.sigma}, random_seed=3,
                              cores=2, progressbar=False)
    np.testing.assert_allclose(stat.replicates["sigma"], one.replicates["sigma"], rtol=1e-6)


def test_replicate_i_refits_simulation_i(dyestuff):
    sims = dyestuff.simulate(5, random_seed=11)
    got = dyestuff.bootstrap(5, statistic=lambda f: (f.predict() + f.residuals).to_numpy(),
                             random_seed=11, cores=1, progressbar=False)
    np.testing.assert_allclose(got.replicates.to_numpy(), sims.to_numpy().T, rtol=1e-12)
    refit = dyestuff.refit(sims["sim_1"])
    first = dyestuff.bootstrap(1, statistic=lambda f: f.sigma, random_seed=11, cores=1,
                               progressbar=False)
    assert refit.method == "REML" and refit.sigma == first.replicates.iloc[0, 0]
    assert dyestuff.refit(method="ML").loglik == pytest.approx(-163.6635, abs=1e-4)  # lme4


def test_simulated_responses_have_the_fitted_moments(dyestuff):
    """Var(y_i) = sd² + σ², Cov(y_i, y_j) = sd² within a batch, 0 across; mean β."""
    y = dyestuff.simulate(4000, random_seed=5).to_numpy()
    sd = float(dyestuff.varcorr["sdcor"].iloc[0])
    s2 = dyestuff.sigma**2
    assert y.mean() == pytest.approx(float(dyestuff.fixef.iloc[0]), abs=3.0)
    cov = np.cov(y)
    batch = blm.datasets.load("Dyestuff")["Batch"].to_numpy()
    same = batch[:, None] == batch[None, :]
    off = ~np.eye(30, dtype=bool)
    assert np.mean(np.diag(cov)) == pytest.approx(sd**2 + s2, rel=0.03)
    assert np.mean(cov[same & off]) == pytest.approx(sd**2, rel=0.06)
    assert abs(np.mean(cov[~same])) < 0.03 * sd**2


def test_simulated_residuals_follow_the_structure(orthodont):
    """gls with compound symmetry: the within-subject correlation of the draws is Rho."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = blm.LMM("distance ~ age + Sex", orthodont,
                      residual=blm.CompSymm(group="Subject")).fit_map()
    y = fit.simulate(3000, random_seed=2).to_numpy()
    c = np.corrcoef(y)
    subj = orthodont["Subject"].to_numpy()
    same = (subj[:, None] == subj[None, :]) & ~np.eye(len(subj), dtype=bool)
    assert np.mean(c[same]) == pytest.approx(fit.residual_params["Rho"], abs=0.02)
    boot = fit.bootstrap(4, random_seed=1, cores=1, progressbar=False)
    assert np.isfinite(boot.replicates.to_numpy()).all()


def test_percentile_interval_is_boots():
    ref = inference_reference("percentile")
    for level, want in zip(ref["level"], ref["interval"], strict=True):
        assert percentile_interval(ref["t"], level) == pytest.approx(tuple(want), rel=1e-12)


def test_boot_interval_overlaps_the_profile(sleep):
    """A small seed-fixed run: its percentile intervals cover most of the profile ones."""
    boot = sleep.confint(method="boot", nsim=100, random_seed=1, progressbar=False)
    prof = sleep.confint()
    lo = np.maximum(boot.iloc[:, 0], prof.iloc[:, 0])
    hi = np.minimum(boot.iloc[:, 1], prof.iloc[:, 1])
    assert ((hi - lo) / (prof.iloc[:, 1] - prof.iloc[:, 0]) > 0.6).all()


@pytest.mark.slow
def test_bootstrap_agrees_with_lme4s_and_brackets_the_profile(sleep):
    """1000 refits: each interval end within Monte-Carlo error of lme4's (its own 1000
    refits, another random stream), and overlapping the profile interval by 80%."""
    ref = inference_reference("bootstrap")["level95"]
    boot = sleep.bootstrap(1000, random_seed=1, progressbar=False)
    ci = boot.confint()
    assert boot.info["failed"] == 0
    # se of a 2.5% quantile of 1000 draws ≈ 0.085 sd; two independent runs: × √2
    tol = 4 * np.sqrt(2) * 0.085 * boot.replicates.std().to_numpy()
    np.testing.assert_array_less(np.abs(ci.iloc[:, 0] - ref["lower"]), tol)
    np.testing.assert_array_less(np.abs(ci.iloc[:, 1] - ref["upper"]), tol)
    prof = sleep.confint()
    lo = np.maximum(ci.iloc[:, 0], prof.iloc[:, 0])
    hi = np.minimum(ci.iloc[:, 1], prof.iloc[:, 1])
    assert ((hi - lo) / (prof.iloc[:, 1] - prof.iloc[:, 0]) > 0.8).all()


def test_failures_are_counted_and_the_bar_can_be_off(dyestuff, capsys):
    def fragile(fit):
        if fit.sigma < 48.0:  # the fit's own σ is 49.5
            raise ValueError("too noisy")
        return fit.sigma

    boot = dyestuff.bootstrap(10, statistic=fragile, random_seed=1, cores=1,
                              progressbar=False)
    failed = int(boot.replicates["statistic"].isna().sum())
    assert 0 < failed < 10 and boot.info["failed"] == failed
    assert boot.info["warnings"]["ValueError: too noisy"] == failed
    assert capsys.readouterr().err == ""
    with pytest.raises(BayesLMMError, match="positive number"):
        dyestuff.bootstrap(0)
    assert np.isfinite(boot.confint().to_numpy()).all()
    assert list(boot.summary().columns) == ["original", "bias", "se"]
