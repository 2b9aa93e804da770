import numpy as np
import pymc as pm
import pytest
from scipy import stats

import bayeslmm as blm
from bayeslmm.formula.design import build_design
from bayeslmm.pymc.conditional import build_conditional
from bayeslmm.pymc.priors import resolve_priors
from tests.test_design import dense_Z

CASES = [
    ("sleepstudy", "Reaction ~ Days + (Days | Subject)"),
    ("sleepstudy", "Reaction ~ Days + (Days || Subject)"),
    ("Pastes", "strength ~ 1 + (1 | batch/cask)"),
    ("Penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)"),
    ("sleepstudy", "Reaction ~ Days + (Days | Subject) + (0 + Week | Subject)"),
]


def _evaluate(m, outputs, point):
    """Values of model variables at a point of the (transformed) value variables."""
    outs = m.replace_rvs_by_values(outputs)
    return m.compile_fn(outs, inputs=m.value_vars, on_unused_input="ignore")(point)


def _load(ds):
    df = blm.datasets.load(ds)
    if ds == "sleepstudy":  # a two-level factor to test several blocks on one factor
        df["Week"] = np.where(df["Days"] < 5, "first", "second")
    return df


def _model(ds, formula):
    d = build_design(formula, _load(ds))
    return d, build_conditional(d, resolve_priors(d))


@pytest.mark.parametrize("ds, formula", CASES)
def test_likelihood_term_matches_dense_normal(ds, formula):
    """log p(y | β, b, σ) of the model equals scipy's on mu = Xβ + Z_dense b."""
    d, m = _model(ds, formula)
    rng = np.random.default_rng(0)
    point = {k: v + rng.normal(scale=0.3, size=np.shape(v))
             for k, v in m.initial_point(random_seed=1).items()}
    det = _evaluate(m, [m["beta"], m["sigma"]] + [m[f"b_{t.group}"] for t in d.terms], point)
    beta, sigma, bs = det[0], det[1], det[2:]
    b_stacked = np.concatenate([b.reshape(-1) for b in bs])
    mu = d.X @ beta + dense_Z(d) @ b_stacked
    expected = stats.norm.logpdf(d.y, mu, sigma).sum()
    got = m.compile_logp(vars=[m["y"]])(point)
    np.testing.assert_allclose(got, expected, rtol=1e-10)


@pytest.mark.parametrize("ds, formula", CASES)
def test_finite_logp_and_gradient_at_initial_point(ds, formula):
    _, m = _model(ds, formula)
    point = m.initial_point(random_seed=0)
    assert np.isfinite(m.compile_logp()(point))
    grad = m.compile_dlogp()(point)
    assert np.all(np.isfinite(grad)) and np.any(grad != 0)


def test_variables_dims_and_coords():
    d, m = _model("sleepstudy", "Reaction ~ Days + (Days | Subject)")
    assert m.named_vars_to_dims["beta"] == ("fixef",)
    assert m.named_vars_to_dims["b_Subject"] == ("Subject", "Subject_term")
    assert m.named_vars_to_dims["sd_Subject"] == ("Subject_term",)
    assert m.named_vars_to_dims["corr_Subject"] == ("Subject_term", "Subject_term_bis")
    assert list(m.coords["Subject"]) == d.terms[0].levels
    assert list(m.coords["fixef"]) == ["Intercept", "Days"]
    assert "sigma" in m.named_vars and "chol_Subject_z" in m.named_vars
    assert pm.model_to_graphviz(m) is not None


def test_uncorrelated_has_no_correlation():
    _, m = _model("sleepstudy", "Reaction ~ Days + (Days || Subject)")
    assert "corr_Subject" not in m.named_vars and not any("chol" in v for v in m.named_vars)
    assert m["sd_Subject"] in m.free_RVs


def test_mixed_blocks_have_block_diagonal_correlation():
    d, m = _model(*CASES[-1])
    assert d.terms[0].term_names == ["Intercept", "Days", "Week[first]", "Week[second]"]
    rng = np.random.default_rng(3)
    point = {k: v + rng.normal(size=np.shape(v)) for k, v in m.initial_point().items()}
    (corr,) = _evaluate(m, [m["corr_Subject"]], point)
    assert corr.shape == (4, 4)
    assert corr[0, 2] == 0 and corr[1, 3] == 0 and corr[2, 3] != 0 and corr[0, 1] != 0


# --- residual structures -------------------------------------------------------------
RESIDUALS = [
    blm.AR1(group="Subject"),
    blm.Residual(blm.VarIdent("Sex"), blm.CompSymm("Subject")),
    blm.VarPower(),
    blm.Residual(blm.VarExp("age"), blm.CAR1(time="age", group="Subject")),
    blm.VarIdent("Sex"),
]


@pytest.mark.parametrize("residual", RESIDUALS, ids=repr)
def test_residual_likelihood_matches_dense_normal(orthodont, residual):
    """log p(y | β, b, σ, residual params) equals scipy's on the dense σ²Λ."""
    from tests.oracle import dense_lambda

    m = blm.LMM("distance ~ age + Sex + (1 | Subject)", orthodont, residual=residual)
    pm_model, rd = m.build("conditional"), m.residual
    rng = np.random.default_rng(0)
    point = {k: v + rng.normal(scale=0.3, size=np.shape(v))
             for k, v in pm_model.initial_point(random_seed=1).items()}
    names = ["beta", "sigma", "b_Subject", *rd.param_names]
    vals = dict(zip(names, _evaluate(pm_model, [pm_model[n] for n in names], point),
                    strict=True))
    mu = m.design.X @ vals["beta"] + dense_Z(m.design) @ vals["b_Subject"].reshape(-1)
    params = {k: vals[k] for k in rd.param_names} | {"fitted": mu}
    cov = vals["sigma"] ** 2 * dense_lambda(rd, params)
    expected = stats.multivariate_normal(mu, cov).logpdf(m.design.y)
    np.testing.assert_allclose(pm_model.compile_logp(vars=[pm_model["y"]])(point), expected,
                               rtol=1e-10)
    assert np.all(np.isfinite(pm_model.compile_dlogp()(point)))


def test_residual_variables_and_names(orthodont):
    m = blm.LMM("distance ~ age + (1 | Subject)", orthodont,
                residual=blm.Residual(blm.VarIdent("Sex"), blm.AR1(group="Subject")))
    pm_model = m.build("conditional")
    assert {"Phi", "varident_ratio"} <= {v.name for v in pm_model.free_RVs}
    assert pm_model.named_vars_to_dims["varident_ratio"] == ("varident_level",)
    assert list(pm_model.coords["varident_level"]) == ["Female"]  # Male: the reference
    m = blm.LMM("distance ~ age + (1 | Subject)", orthodont, residual=blm.VarPower("age"))
    model = m.build("conditional")
    free = {v.name for v in model.free_RVs}
    assert "sigma_ref" in free and "sigma" not in free and "sigma" in model.named_vars


def test_gls_compound_symmetry_without_random_effects(orthodont):
    """nlme's gls(distance ~ age + Sex, correlation = corCompSymm(~1 | Subject))."""
    m = blm.LMM("distance ~ age + Sex", orthodont, residual=blm.CompSymm(group="Subject"))
    assert m.ngroups == {} and m.residual.n_groups == 27
    assert {v.name for v in m.build("conditional").free_RVs} == {"beta_z", "sigma", "Rho"}
    pp = m.prior_predictive(20, random_seed=1)
    assert pp.prior_predictive["y"].shape == (1, 20, 108)
    assert np.all(np.isfinite(pp.prior_predictive["y"].values))


@pytest.mark.slow
def test_nuts_orthodont_ar1_near_nlme(orthodont):
    """lme(distance ~ age + Sex, random = ~1 | Subject, correlation = corAR1(~1 | Subject)):
    posterior means within 2 posterior sds of nlme's REML estimates, no divergences."""
    from tests.conftest import ref_sd, reference

    ref = reference("Orthodont_ar1_reml")
    m = blm.LMM("distance ~ age + Sex + (1 | Subject)", orthodont,
                residual=blm.AR1(group="Subject"))
    post = m.fit(draws=400, tune=500, chains=2, random_seed=11, progressbar=False, cores=1)
    idata = post.idata
    assert int(idata.sample_stats.diverging.sum()) == 0
    pos = idata.posterior
    fe = ref["fixef"]
    checks = [
        (pos["beta"].sel(fixef="Intercept"), fe["Intercept"]),
        (pos["beta"].sel(fixef="age"), fe["age"]),
        (pos["beta"].sel(fixef="Sex[Female]"), fe["Sex[Female]"]),
        (pos["sigma"], ref["sigma"]),
        (pos["sd_Subject"].sel(Subject_term="Intercept"), ref_sd(ref, "Subject", "Intercept")),
        (pos["Phi"], ref["residual_params"]["Phi"]),
    ]
    for draws, est in checks:
        assert abs(float(draws.mean()) - est) < 2 * float(draws.std()), (draws.name, est)
    # correlated residuals: LOO terms are whole subjects (each one's joint density)
    assert idata.log_likelihood["y"].dims == ("chain", "draw", "residual_group")
    assert idata.log_likelihood["y"].shape == (2, 400, 27)
