"""ML/REML with residual structures: the criterion against the dense normal density,
the optimum against a brute-force dense fit, errors, the result object and its printed
form (on fixed parameters). nlme's own numbers are in tests/test_reference.py."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats

import bayeslmm as blm
from bayeslmm.errors import FitError
from bayeslmm.mle.lme import ResidualCriterion
from bayeslmm.results.map import MapResult
from bayeslmm.results.varcorr import varcorr_frame
from tests.oracle import dense_lambda, dense_psi, dense_z, gls


def _data(seed: int = 0, groups: int = 8, per: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(groups), per)
    t = np.tile(np.arange(per), groups) + rng.integers(0, 2, groups * per) * 0.5
    b = rng.normal(size=(groups, 2)) * [1.0, 0.3]
    x = rng.normal(size=groups * per)
    sex = np.where(g % 2 == 0, "M", "F")
    e = rng.normal(size=(groups, per))
    for k in range(1, per):  # AR(1) errors within groups, Phi = 0.6
        e[:, k] = 0.6 * e[:, k - 1] + 0.8 * e[:, k]
    y = 1 + 0.5 * x + b[g, 0] + b[g, 1] * t + e.ravel() * np.where(sex == "M", 1.0, 0.6)
    return pd.DataFrame({"y": y + 5, "x": x, "t": t, "g": [f"s{k}" for k in g],
                         "sex": pd.Categorical(sex, ["M", "F"])})


STRUCTURES = [
    blm.AR1(group="g"),
    blm.CAR1(time="t", group="g"),
    blm.CompSymm(group="g"),
    blm.VarIdent(by="sex"),
    blm.VarPower(covariate="t1"),
    blm.VarExp(covariate="t"),
    blm.Residual(variance=blm.VarIdent(by="sex"), correlation=blm.AR1(group="g")),
    blm.Residual(variance=blm.VarExp(covariate="x"), correlation=blm.CAR1(time="t", group="g")),
    blm.VarPower(),
]


def _dense_criterion(m, crit: ResidualCriterion, x: np.ndarray, reml: bool) -> float:
    """−2 logLik (or the REML criterion) with β and σ profiled out, from
    scipy.stats.multivariate_normal on V = σ²(Z Λθ Λθᵀ Zᵀ + Λ)."""
    d = m.design
    k = crit.n_theta
    lam = dense_lambda(m.residual, crit.params(x[k:]))
    # the criterion's θ is relative to the σ of the variance function over its geometric
    # mean (see ResidualCriterion.centred): θ·e^m relative to nlme's σ
    theta = x[:k] * np.exp(crit.centred(x[k:])[1])
    Z = dense_z(d.terms)
    V0 = lam + (Z @ dense_psi(d.terms, crit.layout.psis(theta, 1.0)) @ Z.T if k else 0)
    beta, cov = gls(d.y, d.X, V0)
    r = d.y - d.X @ beta
    n, p = d.X.shape
    s2 = r @ np.linalg.solve(V0, r) / (n - p if reml else n)
    out = -2 * stats.multivariate_normal(mean=d.X @ beta, cov=s2 * V0).logpdf(d.y)
    if reml:  # −2ℓ_R = −2ℓ − p log 2π + log|XᵀV⁻¹X|
        out += -p * np.log(2 * np.pi) - np.linalg.slogdet(cov * s2)[1]
    return float(out)


@pytest.mark.parametrize("reml", [False, True], ids=["ML", "REML"])
@pytest.mark.parametrize("structure", STRUCTURES, ids=repr)
@pytest.mark.parametrize("formula", ["y ~ x + (t | g)", "y ~ x"])
def test_criterion_equals_dense_normal(structure, formula, reml):
    df = _data().assign(t1=lambda d: d.t + 1)
    m = blm.LMM(formula, df, residual=structure)
    rng = np.random.default_rng(1)
    fitted = df.y.to_numpy() + rng.normal(size=len(df)) if m.residual.fitted_covariate \
        else None
    crit = ResidualCriterion(m.design, m.residual, reml, fitted)
    for _ in range(2):
        x = crit.start() + rng.normal(scale=0.4, size=crit.start().size)
        x[:crit.n_theta][crit.layout.is_diag] = np.abs(x[:crit.n_theta][crit.layout.is_diag])
        assert crit.value(x) == pytest.approx(_dense_criterion(m, crit, x, reml), rel=1e-9)


def test_gradient_matches_differences():
    m = blm.LMM("y ~ x + (t | g)", _data(), residual=blm.Residual(
        variance=blm.VarIdent(by="sex"), correlation=blm.AR1(group="g")))
    crit = ResidualCriterion(m.design, m.residual, reml=True)
    x = np.array([0.8, 0.1, 0.3, 0.4, -0.2])
    _, g = crit.value_and_grad(x)
    num = optimize.approx_fprime(x, crit.value, 1e-6)
    np.testing.assert_allclose(g, num, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("method", ["ML", "REML"])
def test_optimum_matches_brute_force_dense_fit(method):
    """fit_map's optimum against Nelder–Mead on the dense criterion over (θ, Phi)."""
    df = _data(seed=3)
    m = blm.LMM("y ~ x + (1 | g)", df, residual=blm.CAR1(time="t", group="g"))
    fit = m.fit_map(method)
    reml = method == "REML"
    crit = ResidualCriterion(m.design, m.residual, reml)

    def dense(v):
        th, phi = v
        if th < 0 or not 0 < phi < 1:
            return np.inf
        return _dense_criterion(m, crit, np.array([th, np.log(phi / (1 - phi))]), reml)

    best = optimize.minimize(dense, [1.0, 0.5], method="Nelder-Mead",
                             options={"xatol": 1e-8, "fatol": 1e-10, "maxiter": 4000})
    assert -2 * fit.loglik <= best.fun + 1e-6
    assert -2 * fit.loglik == pytest.approx(best.fun, abs=1e-5)
    assert fit.residual_params["Phi"] == pytest.approx(best.x[1], abs=1e-3)


def test_gls_and_lme_through_lmm():
    df = blm.datasets.load("Orthodont")
    cs = blm.LMM("distance ~ age + Sex", df, residual=blm.CompSymm(group="Subject"))
    fit = cs.fit_map("ML")
    # nlme: gls(..., corCompSymm(form = ~1 | Subject), method = "ML")
    assert fit.loglik == pytest.approx(-217.428242546831, abs=1e-6)
    assert fit.residual_params["Rho"] == pytest.approx(0.596567204282533, abs=1e-6)
    assert fit.ngroups == {} and fit.theta.size == 0 and fit.df == 5
    # marginally the random-intercept model (Rho ≥ 0): the same likelihood
    ri = blm.LMM("distance ~ age + Sex + (1 | Subject)", df).fit_map("ML")
    assert fit.loglik == pytest.approx(ri.loglik, abs=1e-6)


def test_fitted_covariate_reaches_a_fixed_point():
    m = blm.LMM("distance ~ age + Sex + (1 | Subject)", blm.datasets.load("Orthodont"),
                residual=blm.VarPower())
    fit = m.fit_map("ML")
    assert fit.converged and "rounds" in fit.optimizer["message"]
    # refitting with the covariate held at the final fitted values changes nothing
    crit = ResidualCriterion(m.design, m.residual, False, fit.predict().to_numpy())
    u = np.array(fit.optimizer["u"])
    res = optimize.minimize(lambda v: crit.value(np.r_[v[0], v[1:]]),
                            np.r_[fit.theta.to_numpy() * 0 + 1.2, u], method="Nelder-Mead",
                            options={"xatol": 1e-9, "fatol": 1e-12})
    assert res.x[1] == pytest.approx(fit.residual_params["power"], abs=1e-4)


def test_correlation_groups_must_nest_in_random_effect_levels():
    df = blm.datasets.load("sleepstudy")
    m = blm.LMM("Reaction ~ Days + (1 | Subject)", df, residual=blm.AR1())  # one series
    with pytest.raises(FitError, match="not nested within the levels of grouping factor"):
        m.fit_map("REML")


def test_method_and_result_fields():
    m = blm.LMM("distance ~ age + Sex + (1 | Subject)", blm.datasets.load("Orthodont"),
                residual=blm.VarIdent(by="Sex"))
    with pytest.raises(FitError, match="method must be one of"):
        m.fit_map("MLE")
    fit = m.fit_map("REML")
    assert list(fit.residual_params) == ["Male", "Female"]
    assert fit.residual_params["Male"] == 1.0
    assert fit.residual == blm.Residual(variance=blm.VarIdent(by="Sex"))
    vc = fit.varcorr
    assert float(vc[vc.grp == "Residual"].sdcor.iloc[0]) == pytest.approx(fit.sigma)
    assert fit.df == 6
    assert fit.bic == pytest.approx(-2 * fit.loglik + 6 * np.log(108 - 3))  # nlme's REML BIC
    out = json.loads(json.dumps(fit.to_dict()))
    assert out["residual_params"] == pytest.approx(fit.residual_params)
    assert out["residual"] == "Residual(variance=VarIdent(by='Sex'), correlation=None)"
    delta = np.where(m.design.data["Sex"] == "Male", 1.0, fit.residual_params["Female"])
    np.testing.assert_allclose(fit.scaled_residuals, fit.residuals / (fit.sigma * delta))


def test_small_ar1_fit_takes_few_evaluations():
    # the search's cost, counted (its time is benchmarks/bench_map.py's): 19 criterion
    # and gradient evaluations for nlme's Orthodont AR(1) model
    m = blm.LMM("distance ~ age + Sex + (1 | Subject)", blm.datasets.load("Orthodont"),
                residual=blm.AR1(group="Subject"))
    fit = m.fit_map("REML")
    assert fit.converged and fit.optimizer["nfev"] <= 40


def _fixed(structure, params, groups=True) -> MapResult:
    names = ["Intercept", "x"]
    idx = pd.RangeIndex(4)
    terms = [("g", ["Intercept"], np.array([[4.0]]))] if groups else []
    return MapResult(
        formula="y ~ x + (1 | g)" if groups else "y ~ x", method="REML",
        fixef=pd.Series([10.0, -2.5], index=names),
        vcov=pd.DataFrame([[0.25, -0.05], [-0.05, 0.04]], index=names, columns=names),
        ranef={"g": pd.DataFrame([[1.0], [-1.0]], index=["a", "b"], columns=["Intercept"])}
        if groups else {},
        ranef_sd={"g": pd.DataFrame([[0.3], [0.3]], index=["a", "b"], columns=["Intercept"])}
        if groups else {},
        varcorr=varcorr_frame(terms, 1.5), sigma=1.5, nobs=4,
        ngroups={"g": 2} if groups else {}, loglik=-10.0, df=6 if groups else 5,
        converged=True, singular=False,
        theta=pd.Series([1.33] if groups else [], dtype=float),
        fitted=pd.Series([1.0, 2.0, 3.0, 4.0], index=idx),
        residuals=pd.Series([-1.5, 0.0, 0.75, 1.5], index=idx),
        optimizer={"method": "fixed", "nfev": 0, "message": ""},
        blocks={"g": ((0,),)} if groups else {},
        residual_structure=structure, residual_params=params,
        scaled_residuals=pd.Series([-1.0, 0.0, 0.5, 1.0], index=idx),
    )


def test_printed_form_with_residual_structure():
    structure = blm.Residual(variance=blm.VarIdent(by="Sex"),
                             correlation=blm.AR1(group="Subject"))
    text = str(_fixed(structure, {"Phi": 0.04375039, "Male": 1.0, "Female": 0.4541324}))
    lines = text.splitlines()
    assert lines[0] == "Linear mixed model fit by REML (as nlme's lme)"
    assert "REML criterion at convergence: 20.0" in text
    i = lines.index("Correlation Structure: AR(1)")
    assert lines[i + 1:i + 5] == [" Formula: ~1 | Subject", " Parameter estimate(s):",
                                  "        Phi", " 0.04375039"]
    i = lines.index("Variance function:")
    assert lines[i + 1:i + 6] == [
        " Structure: Different standard deviations per stratum", " Formula: ~1 | Sex",
        " Parameter estimates:", "      Male    Female", " 1.0000000 0.4541324"]
    i = next(k for k, s in enumerate(lines) if s.startswith("Scaled residuals"))
    assert [float(v) for v in lines[i + 2].split()] == [-1.0, -0.25, 0.25, 0.625, 1.0]
    # AIC = 20 + 12, BIC = 20 + 6 log(4 - 2) (nlme's REML BIC)
    assert lines[5].split()[:2] == ["32.000", f"{20 + 6 * np.log(2):.3f}"]


def test_printed_form_gls():
    text = str(_fixed(blm.Residual(correlation=blm.CAR1(time="age", group="Subject")),
                      {"Phi": 0.5}, groups=False))
    assert text.splitlines()[0] == "Generalized least squares fit by REML (as nlme's gls)"
    assert "Random effects:" not in text and "Residual standard error: 1.5" in text
    assert "Correlation Structure: Continuous AR(1)\n Formula: ~age | Subject" in text


def test_no_warnings_on_regular_fit():
    m = blm.LMM("distance ~ age + Sex + (1 | Subject)", blm.datasets.load("Orthodont"),
                residual=blm.CAR1(time="age", group="Subject"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit = m.fit_map("ML")
    assert fit.converged and not fit.singular


def test_correlation_at_the_edge_of_its_range_warns():
    from bayeslmm.mle.lme_search import warn_edge

    m = blm.LMM("distance ~ age + (1 | Subject)", blm.datasets.load("Orthodont"),
                residual=blm.AR1(group="Subject"))
    rd = m.residual
    with pytest.warns(UserWarning, match=r"Phi ended at the edge of its range \(Phi = 1\.0"):
        warn_edge(rd, np.array([12.0]), {"Phi": np.tanh(12.0)})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_edge(rd, np.array([1.0]), {"Phi": np.tanh(1.0)})  # an interior estimate
        m.fit_map("ML")  # nlme's Phi here is 0.0 to 0.3: no warning
