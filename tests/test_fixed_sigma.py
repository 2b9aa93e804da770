"""σ fixed at a known value (``LMM(..., sigma=)``, nlme's ``lmeControl(sigma = s)``): the
criterion against the dense oracle, the API around it (errors, printing, saving, tests
refused), and the PyMC model where σ is data. The fits themselves are checked against nlme
and the dense ML/REML of models/make_fixed_sigma.R in tests/test_reference.py
(``*_fixed_sigma_*``)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from oracle import dense_psi, dense_z, marginal_loglik, reml_loglik
from scipy.optimize import approx_fprime

import bayeslmm as blm
from bayeslmm.errors import BayesLMMError, FitError
from bayeslmm.formula.design import build_design
from bayeslmm.linalg.fixed_sigma import FixedSigmaPLS
from bayeslmm.linalg.theta import ThetaLayout
from bayeslmm.mle.fit import fit_map


@pytest.fixture(scope="module")
def bcg():
    return blm.datasets.load("bcg")


@pytest.fixture(scope="module")
def meta(bcg):
    """The random-effects meta-analysis of the BCG trials (REML)."""
    m = blm.LMM("yi ~ 1 + (1 | trial)", bcg, residual=blm.VarFixed("vi"), sigma=1.0)
    return m, m.fit_map("REML")


@pytest.mark.parametrize("reml", [False, True])
@pytest.mark.parametrize("theta", [[0.4, 0.1, 0.3], [1.1, -0.2, 0.05]])
def test_criterion_equals_the_dense_likelihood(reml, theta):
    """−2ℓ at θ and a known σ: β at its GLS estimate (ML), integrated out (REML)."""
    d = build_design("Reaction ~ Days + (Days | Subject)", blm.datasets.load("sleepstudy"))
    sigma = 20.0
    pls = FixedSigmaPLS.from_design(d, sigma=sigma)
    G = dense_psi(d.terms, ThetaLayout.from_terms(d.terms).psis(theta, sigma))
    Z = dense_z(d.terms)
    if reml:
        want = -2 * reml_loglik(d.y, d.X, Z, G, sigma)
    else:
        beta = pls.solution(theta).beta
        want = -2 * marginal_loglik(d.y, d.X, Z, G, beta, sigma)
    assert pls.objective(theta, reml) == pytest.approx(want, rel=1e-10)
    # the analytic gradient against central differences
    g = pls.objective_and_gradient(theta, reml)[1]
    num = approx_fprime(np.array(theta), lambda t: pls.objective(t, reml), 1e-6)
    np.testing.assert_allclose(g, num, rtol=1e-4, atol=1e-3)


def test_solution_scales_with_the_fixed_sigma():
    """β̂ and the modes do not depend on σ given θ; vcov(β̂) is σ²(XᵀV₀⁻¹X)⁻¹."""
    d = build_design("Yield ~ 1 + (1 | Batch)", blm.datasets.load("Dyestuff"))
    pls = FixedSigmaPLS.from_design(d, sigma=30.0)
    free = super(FixedSigmaPLS, pls).solution([0.8])
    sol = pls.solution([0.8])
    np.testing.assert_allclose(sol.beta, free.beta, rtol=1e-12)
    np.testing.assert_allclose(sol.vcov, 900.0 * pls.beta_cov([0.8]), rtol=1e-10)
    np.testing.assert_allclose(sol.b_sd[0], free.b_sd[0] * 30.0 / free.sigma, rtol=1e-12)


@pytest.mark.parametrize("bad", [0, 0.0, -1.0, math.nan, math.inf, "1", True, [1.0]])
def test_invalid_sigma_names_the_value(bcg, bad):
    with pytest.raises(BayesLMMError, match="sigma must be a positive finite number") as e:
        blm.LMM("yi ~ 1 + (1 | trial)", bcg, residual=blm.VarFixed("vi"), sigma=bad)
    assert repr(bad) in str(e.value)
    d = build_design("Yield ~ 1 + (1 | Batch)", blm.datasets.load("Dyestuff"))
    with pytest.raises(BayesLMMError, match=re_escape(repr(bad))):
        fit_map(d, "ML", sigma=bad)


def re_escape(s: str) -> str:
    import re

    return re.escape(s)


def test_one_level_per_row_needs_a_known_sigma(bcg):
    """Without σ known, 13 trials of one row each are refused (lme4's check), and the
    error says how to fit the meta-analysis."""
    with pytest.raises(BayesLMMError, match=r"sigma=1\.0"):
        blm.LMM("yi ~ 1 + (1 | trial)", bcg, residual=blm.VarFixed("vi"))


def test_meta_analysis_prints_and_counts_sigma_as_known(meta):
    m, fit = meta
    assert fit.sigma == 1.0 and fit.sigma_fixed
    assert fit.df == 2  # μ and τ: σ is not a parameter (nlme's df)
    assert fit.aic == pytest.approx(-2 * fit.loglik + 4)
    text = str(fit)
    assert "Residual standard error fixed at 1 (not estimated)" in text
    assert "Structure: fixed weights" in text
    assert m.priors["sigma"] == "fixed at 1.0 (no prior)"
    gls = blm.LMM("yi ~ ablat", m.design.data, residual=blm.VarFixed("vi"),
                  sigma=1.0).fit_map("ML")
    assert "Residual standard error: 1.0 (fixed)" in str(gls)


def test_a_saved_fixed_sigma_fit_comes_back(meta, tmp_path):
    _, fit = meta
    fit.save(tmp_path / "meta.nc")
    back = blm.load(tmp_path / "meta.nc")
    assert back.sigma_fixed and back.sigma == 1.0
    assert back.loglik == pytest.approx(fit.loglik, rel=1e-12)
    np.testing.assert_allclose(back.fixef, fit.fixef, rtol=1e-10)


def test_refits_keep_sigma_fixed_and_tests_needing_sigma_refuse(meta):
    m, fit = meta
    assert fit.refit(method="ML").sigma == 1.0
    assert fit.refit(method="ML").loglik == pytest.approx(-12.66507635, abs=2e-6)  # nlme
    iid = blm.LMM("distance ~ age + (1 | Subject)", blm.datasets.load("Orthodont"),
                  sigma=1.5).fit_map()
    with pytest.raises(FitError, match="not defined with σ fixed"):
        iid.summary(ddf="Kenward-Roger")
    with pytest.raises(FitError, match="not defined with σ fixed"):
        iid.confint(method="profile")
    # Satterthwaite over θ = τ alone (σ = 1 known): df = 2 v² / (v'² · 2/H), v = Var(μ̂)
    # and H the second derivative of the REML deviance in τ, dense, central differences
    sat = fit.summary(ddf="Satterthwaite")
    assert sat.loc["Intercept", "se"] == pytest.approx(fit.se["Intercept"], rel=1e-8)
    d = m.design
    vi = d.data["vi"].to_numpy()

    def dev(t):
        return -2 * reml_loglik(d.y, d.X, np.eye(d.nobs), t ** 2 * np.eye(d.nobs) +
                                np.diag(vi) - np.eye(d.nobs), 1.0)

    def var_mu(t):
        return 1.0 / np.sum(1.0 / (vi + t ** 2))

    tau, h = float(fit.theta.iloc[0]), 1e-4
    H = (dev(tau + h) - 2 * dev(tau) + dev(tau - h)) / h ** 2
    g = (var_mu(tau + h) - var_mu(tau - h)) / (2 * h)
    want = 2 * var_mu(tau) ** 2 / (g ** 2 * 2 / H)
    assert sat.loc["Intercept", "df"] == pytest.approx(want, rel=1e-3)


def test_out_of_core_fit_with_sigma_fixed_equals_in_memory():
    """VarIdent on a dask frame (the strata's cross-products) with σ fixed: the same fit."""
    import dask.dataframe as dd

    df = blm.datasets.load("Orthodont")
    args = ("distance ~ age + (1 | Subject)",)
    kw = {"residual": blm.VarIdent(by="Sex"), "sigma": 1.5}
    ooc = blm.LMM(*args, dd.from_pandas(df, npartitions=3), **kw).fit_map("REML")
    mem = blm.LMM(*args, df, **kw).fit_map("REML")
    assert ooc.sigma == mem.sigma == 1.5
    assert ooc.loglik == pytest.approx(mem.loglik, abs=1e-6)
    assert ooc.residual_params["Female"] == pytest.approx(mem.residual_params["Female"],
                                                          rel=1e-6)


def test_sigma_with_a_kernel_model_is_refused():
    df = blm.datasets.load("Dyestuff")
    K = np.eye(6)
    with pytest.raises(BayesLMMError, match="sigma="):
        blm.LMM("Yield ~ 1 + (1 | Batch)", df, covariances={"Batch": K}, sigma=1.0)


@pytest.mark.parametrize("par", ["marginal", "conditional"])
def test_pymc_model_has_sigma_as_data(par):
    """σ is a constant of the model, not a free variable with a prior: the model's
    log-density is the model with σ free, at σ = 1.5, without σ's prior term."""
    df = blm.datasets.load("Orthodont")
    args = ("distance ~ age + (1 | Subject)", df)
    fixed = blm.LMM(*args, residual=blm.VarFixed("age"), sigma=1.5).build(par)
    free = blm.LMM(*args, residual=blm.VarFixed("age")).build(par)
    assert "sigma" not in [v.name for v in fixed.free_RVs]
    assert "sigma" in [v.name for v in free.free_RVs]
    point = {k: v + 0.1 for k, v in fixed.initial_point().items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = fixed.compile_logp()(point)
        rest = [v for v in free.basic_RVs if v.name != "sigma"] + list(free.potentials)
        want = free.compile_logp(vars=rest)({**point, "sigma_log__": np.log(1.5)})
    assert got == pytest.approx(want, rel=1e-10)


@pytest.mark.slow
def test_nuts_on_the_meta_analysis(meta):
    """NUTS with σ known: μ's posterior is centred near the REML estimate (−0.71, se 0.18)
    and σ is 1 in every draw, shown as fixed."""
    m, fit = meta
    post = m.fit(draws=500, tune=500, chains=2, random_seed=3, progressbar=False)
    assert "sigma" not in post.summary().index
    assert np.all(post.idata.posterior["sigma"].values == 1.0)
    assert abs(post.fixef["Intercept"] - fit.fixef["Intercept"]) < 0.1
    assert "sd (fixed)" in str(post)
    # new observations have the known variance vi (σ = 1) around the mean's draws
    new = m.design.data.iloc[:3]
    resp = post.predict(new, kind="response", random_seed=1).var(("chain", "draw"))
    mean = post.predict(new).var(("chain", "draw"))
    np.testing.assert_allclose((resp - mean).values, new["vi"].to_numpy(), rtol=0.25)
