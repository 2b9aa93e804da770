"""The structures of issue 18 in the PyMC models: priors (defaults, overrides, their
checks), variables and coordinates, the conditional and marginal likelihoods against
scipy on the dense oracle's Λ, draws and predictions; NUTS itself in the sampling tier."""

import numpy as np
import pymc as pm
import pytest
from scipy import stats

import bayeslmm as blm
from bayeslmm.errors import BayesLMMError
from bayeslmm.pymc.priors import resolve_priors
from bayeslmm.residual.corr_math import cpc_to_corr, lkj_cpc_shapes
from tests.oracle import dense_psi, dense_z
from tests.oracle_structures import correlation_matrix, sd_weights
from tests.posteriors import synthetic_posterior

FORMULA = "distance ~ age + Sex + (1 | Subject)"
#: (structure, parameterization): each model built costs a compilation
STRUCTURES = [
    (blm.CorSymm(group="Subject"), "marginal"),
    (blm.CorARMA(p=1, q=1, group="Subject"), "conditional"),
    (blm.Residual(blm.VarComb(blm.VarIdent("Sex"), blm.VarConstPower("age")),
                  blm.CorExp(coords="age", group="Subject", nugget=True)), "marginal"),
    (blm.Residual(blm.VarComb(blm.VarIdent("Sex"), blm.VarConstPower("age")),
                  blm.CorExp(coords="age", group="Subject", nugget=True)), "conditional"),
    (blm.VarComb(blm.VarFixed("age"), blm.VarPower()), "conditional"),
]


def _values(model, names, point):
    outs = model.replace_rvs_by_values([model[n] for n in names])
    fn = model.compile_fn(outs, inputs=model.value_vars, on_unused_input="ignore")
    return dict(zip(names, fn(point), strict=True))


def _lambda(m, vals, fitted):
    """The oracle's Λ from the model variables' values (natural parameters)."""
    r, rd, df = m.residual.structure, m.residual, m.design.data
    nat = {"range": vals.get("range"), "nugget": vals.get("nugget", 0.0)}
    if "arma_coef" in vals:
        nat.update(Phi=vals["arma_coef"][:1], Theta=vals["arma_coef"][1:])
    if "cor_symm" in vals:
        d = rd.dense.dim
        full = np.eye(d)
        full[np.triu_indices(d, 1)] = vals["cor_symm"]
        nat["cor"] = np.triu(full) + np.triu(full, 1).T
    C = correlation_matrix(r.correlation, df, nat) if r.correlation is not None \
        else np.eye(len(df))
    if r.variance is None:
        return C
    parts = []
    for k, b in enumerate(rd.varfuncs):
        pre = f"{chr(65 + k)}."
        q = {n[len(pre):]: vals[n] for n in b.names if not n.endswith("varident_ratio")}
        if b.by_levels is not None:
            q["ratio"] = dict(zip(b.by_levels, [1.0, *vals[pre + "varident_ratio"]],
                                  strict=True))
        parts.append(q)
    d = sd_weights(r.variance, df, {"parts": parts}, fitted)
    return d[:, None] * C * d[None, :]


@pytest.mark.parametrize("residual, parameterization", STRUCTURES, ids=repr)
def test_likelihoods_match_scipy_on_the_dense_oracle(orthodont, residual, parameterization):
    m = blm.LMM(FORMULA, orthodont, residual=residual)
    d, rd = m.design, m.residual
    model = m.build(parameterization)
    extra = [n for n in ("arma_coef",) if n in model.named_vars]
    rng = np.random.default_rng(4)
    point = {k: v + rng.normal(scale=0.3, size=np.shape(v))
             for k, v in model.initial_point(random_seed=3).items()}
    conditional = "y" in model.named_vars
    names = ["beta", "sigma", "sd_Subject", *rd.param_names, *extra] + (
        ["b_Subject"] if conditional else ["marginal_loglik"])
    outs = model.replace_rvs_by_values([model[n] for n in names])
    if conditional:  # the likelihood term of y, in the same compilation
        outs.append(model.logp(vars=[model["y"]]))
    fn = model.compile_fn(outs, inputs=model.value_vars, on_unused_input="ignore")
    got = fn(point)
    vals = dict(zip(names, got, strict=False))
    mu = d.X @ vals["beta"]
    if conditional:
        mu = mu + vals["b_Subject"][d.terms[0].codes, 0]
    lam = vals["sigma"] ** 2 * _lambda(m, vals, mu)
    if conditional:
        want, got = stats.multivariate_normal(mu, lam).logpdf(d.y), got[-1]
    else:
        Z, G = dense_z(d.terms), dense_psi(d.terms, [vals["sd_Subject"][None, :] ** 2])
        want = stats.multivariate_normal(mu, Z @ G @ Z.T + lam).logpdf(d.y)
        got = vals["marginal_loglik"]
    assert abs(got - want) < 1e-8 * max(1.0, abs(want)), (conditional, got, want)

def test_default_priors_variables_and_coords(orthodont):
    m = blm.LMM("distance ~ age", orthodont, residual=blm.Residual(
        blm.VarComb(blm.VarIdent("Sex"), blm.VarConstPower("age")),
        blm.CorARMA(p=2, q=1, group="Subject")))
    pr = m.priors
    assert pr["arma_pacf"] == "Prior('Uniform', lower=-1, upper=1)"
    assert pr["A.varident_ratio"] == "Prior('LogNormal', mu=0, sigma=1)"
    assert pr["B.const"] == "Prior('LogNormal', mu=0, sigma=2)"
    assert pr["B.power"].startswith("Prior('Normal', mu=0")
    model = m.pymc_model
    assert {"arma_pacf", "A.varident_ratio", "B.const", "B.power"} <= \
        {v.name for v in model.free_RVs}
    assert list(model.coords["arma_term"]) == ["ar1", "ar2", "ma1"]
    assert list(model.coords["arma_coef_name"]) == ["Phi1", "Phi2", "Theta1"]
    assert list(model.coords["A.varident_level"]) == ["Female"]
    m = blm.LMM("distance ~ age", orthodont,
                residual=blm.CorSpher(coords="age", group="Subject", nugget=True))
    # ages 8, 10, 12, 14: distances 2, 4, 6, 2, 4, 2, median 3
    assert m.priors["range"] == f"Prior('LogNormal', mu={np.log(3.0):.4g}, sigma=1)"
    assert m.priors["nugget"] == "Prior('Uniform', lower=0, upper=1)"


def test_cor_symm_prior_is_lkj(orthodont):
    """cor_symm's draws have LKJ(η)'s marginals: each correlation Beta(η − 1 + d/2)
    on (−1, 1), variance 1/(2η + d − 1)."""
    m = blm.LMM("distance ~ age", orthodont, residual=blm.CorSymm(group="Subject"),
                priors={"eta_cor_symm": 2.0})
    draws = pm.draw(m.build("marginal")["cor_symm"], draws=4000, random_seed=2)
    assert draws.shape == (4000, 6)
    np.testing.assert_allclose(draws.var(axis=0), 1 / (2 * 2.0 + 4 - 1), rtol=0.1)
    C = cpc_to_corr(2 * np.random.default_rng(1).beta(*[lkj_cpc_shapes(4, 2.0)] * 2) - 1, 4)
    assert np.all(np.linalg.eigvalsh(C) > 0)


@pytest.mark.parametrize("key, prior, match", [
    ("eta_cor_symm", -1.0, r"eta_cor_symm must be a positive number"),
    ("arma_pacf", blm.Prior("Normal", mu=0, sigma=1), r"within \(-1, 1\)"),
    ("nugget", blm.Prior("Uniform", lower=0, upper=2), r"within \(0, 1\)"),
    ("range", blm.Prior("Normal", mu=3, sigma=1), "positive values"),
])
def test_prior_overrides_are_checked(orthodont, key, prior, match):
    residual = {"eta_cor_symm": blm.CorSymm(group="Subject"),
                "arma_pacf": blm.CorARMA(p=1, group="Subject")}.get(
        key, blm.CorExp(coords="age", group="Subject", nugget=True))
    m = blm.LMM("distance ~ age", orthodont, residual=residual)
    with pytest.raises(BayesLMMError, match=match):
        resolve_priors(m.design, {key: prior}, m.residual)
    ok = {"arma_pacf": blm.Prior("Uniform", lower=-0.9, upper=0.9),
          "nugget": blm.Prior("Beta", alpha=2, beta=5),
          "range": blm.Prior("LogNormal", mu=1, sigma=0.5),
          "eta_cor_symm": 3.0}[key]
    assert resolve_priors(m.design, {key: ok}, m.residual).residual[key] == ok


def test_posterior_draws_predictions_and_loglik(orthodont):
    m = blm.LMM("distance ~ age + (1 | Subject)", orthodont, residual=blm.Residual(
        blm.VarComb(blm.VarIdent("Sex"), blm.VarFixed("age")),
        blm.CorExp(coords="age", group="Subject", nugget=True)))
    post = synthetic_posterior(m, draws=30, seed=2)
    assert set(post.residual_params) == {"range", "nugget", "A.Male", "A.Female"}
    assert post.log_likelihood().log_likelihood["y"].dims == ("chain", "draw",
                                                              "residual_group")
    new = orthodont[orthodont.Sex == "Female"].head(8)  # one level of VarIdent only
    y = post.predict(new, kind="response", random_seed=1)
    assert y.shape == (2, 30, 8) and np.all(np.isfinite(y.values))
    with pytest.raises(blm.DataError, match="were not in the training data"):
        post.predict(new.assign(Sex="Other"), kind="response")


@pytest.mark.slow
@pytest.mark.parametrize("case, formula, residual", [
    ("Orthodont_gls_symm_reml", "distance ~ age + Sex", blm.CorSymm(group="Subject")),
    ("fieldplots_exp_nugget_reml", "yield ~ z + treatment + (1 | site)",
     blm.CorExp(coords=("x", "y"), group="site", nugget=True)),
    ("sleepstudy_gls_ar2_reml", "Reaction ~ Days",
     blm.CorARMA(p=2, group="Subject", time="Days")),
])
def test_nuts_near_nlme(case, formula, residual):
    """NUTS (marginal, nutpie): posterior means of the structure's parameters and β
    within 2.5 posterior sds of nlme's REML estimates, no divergences."""
    from tests.conftest import reference

    ref = reference(case)
    data = blm.datasets.load(case.split("_")[0])
    m = blm.LMM(formula, data, residual=residual)
    post = m.fit(draws=400, tune=600, chains=2, random_seed=5, progressbar=False)
    assert post.info["parameterization"] == "marginal"
    assert int(post.idata.sample_stats.diverging.sum()) == 0
    pos = post.idata.posterior
    for name, value in ref["fixef"].items():
        draws = pos["beta"].sel(fixef=name)
        assert abs(float(draws.mean()) - value) < 2.5 * float(draws.std()), name
    named = {"cor_symm": "cor_symm", "arma_coef": "arma_coef"}
    for var in named:
        if var in pos:
            labels = pos[var].coords[pos[var].dims[-1]].values
            for k, label in enumerate(labels):
                draws = pos[var].values[..., k]
                assert abs(draws.mean() - ref["residual_params"][str(label)]) < \
                    2.5 * draws.std(), label
    for name in ("range", "nugget"):
        if name in pos:
            assert abs(float(pos[name].mean()) - ref["residual_params"][name]) < \
                2.5 * float(pos[name].std()), name


def test_prior_groups_cover_the_structures(orthodont):
    """The ``prior`` and ``log_prior`` groups (power-scaling sensitivity, prior plots)
    have the structures' vector parameters with their dims."""
    from bayeslmm.pymc.prior_draws import log_prior, prior_draws

    m = blm.LMM("distance ~ age + (1 | Subject)", orthodont, residual=blm.Residual(
        blm.VarComb(blm.VarIdent("Sex"), blm.VarConstPower("age")),
        blm.CorARMA(p=2, q=1, group="Subject")))
    draws = prior_draws(m.design, m._priors, m.residual, draws=30, random_seed=1)
    assert draws["arma_pacf"].dims == ("chain", "draw", "arma_term")
    assert draws["A.varident_ratio"].dims == ("chain", "draw", "A.varident_level")
    lp = log_prior(m.design, m._priors, m.residual, draws)
    np.testing.assert_allclose(lp["arma_pacf"].values, 3 * np.log(0.5))  # Uniform(-1, 1)³
    m = blm.LMM("distance ~ age", orthodont, residual=blm.CorSymm(group="Subject"),
                priors={"eta_cor_symm": 3.0})
    draws = prior_draws(m.design, m._priors, m.residual, draws=30, random_seed=1)
    C = np.eye(4)[None].repeat(30, 0)
    iu = np.triu_indices(4, 1)
    C[:, iu[0], iu[1]] = C[:, iu[1], iu[0]] = draws["cor_symm"].values[0]
    assert np.all(np.linalg.eigvalsh(C) > 0)
    np.testing.assert_allclose(log_prior(m.design, m._priors, m.residual, draws)["cor_symm"]
                               .values[0], 2.0 * np.linalg.slogdet(C)[1])
