import numpy as np
import pytest

import bayeslmm as blm
from bayeslmm.errors import BayesLMMError
from bayeslmm.formula.design import build_design
from bayeslmm.pymc.priors import Prior, default_priors, resolve_priors


@pytest.fixture(scope="module")
def design(sleepstudy):
    return build_design("Reaction ~ Days + (Days | Subject)", sleepstudy)


def test_defaults_are_scaled_to_the_data(design, sleepstudy):
    sy = sleepstudy["Reaction"].std()
    sx = sleepstudy["Days"].std()
    flat = default_priors(design)
    np.testing.assert_allclose(flat["beta[Days]"].params["sigma"], 2.5 * sy / sx)
    np.testing.assert_allclose(flat["sigma"].params["lam"], 1 / sy)
    np.testing.assert_allclose(flat["sd_Subject[Intercept]"].params["sigma"], 2.5 * sy)
    np.testing.assert_allclose(flat["sd_Subject[Days]"].params["sigma"], 2.5 * sy / sx)
    implied = np.sqrt((2.5 * sy) ** 2 + (2.5 * sy / sx * sleepstudy["Days"].mean()) ** 2)
    np.testing.assert_allclose(flat["beta[Intercept]"].params["sigma"], implied)
    assert flat["eta_Subject"] == 2.0


def test_binary_columns_are_not_rescaled(orthodont):
    d = build_design("distance ~ age + Sex + (1 | Subject)", orthodont)
    sy = orthodont["distance"].std()
    np.testing.assert_allclose(default_priors(d)["beta[Sex[Female]]"].params["sigma"], 2.5 * sy)


def test_overrides(design):
    r = resolve_priors(design, {"beta[Days]": Prior("Normal", mu=10.0, sigma=1.0),
                                "sigma": Prior("HalfNormal", sigma=5.0),
                                "sd_Subject": Prior("HalfNormal", sigma=3.0),
                                "eta_Subject": 4})
    np.testing.assert_allclose(r.beta.params["mu"][1], 10.0)
    np.testing.assert_allclose(r.beta.params["sigma"][1], 1.0)
    assert r.sigma == Prior("HalfNormal", sigma=5.0)
    np.testing.assert_allclose(r.sd["Subject"].params["sigma"], [3.0, 3.0])
    assert r.eta["Subject"] == 4.0


def test_user_prior_reaches_the_model(sleepstudy):
    m = blm.LMM("Reaction ~ Days + (Days | Subject)", sleepstudy,
                priors={"sigma": Prior("HalfNormal", sigma=5.0)})
    pm_model = m.build("conditional")
    draws = np.asarray(__import__("pymc").draw(pm_model["sigma"], draws=2000, random_seed=1))
    np.testing.assert_allclose(draws.std(), 5.0 * np.sqrt(1 - 2 / np.pi), rtol=0.1)


@pytest.mark.parametrize(
    "priors, match",
    [
        ({"sigmaa": Prior("HalfNormal", sigma=1)}, "Unknown prior 'sigmaa'.*'sigma'"),
        ({"sigma": Prior("Normal", mu=0, sigma=1)}, "positive values"),
        ({"eta_Subject": -1}, "positive number"),
        ({"beta": 3.0}, "must be a bayeslmm.Prior"),
        ({"beta[Days]": Prior("StudentT", nu=3, mu=0, sigma=1)}, "share one distribution"),
    ],
)
def test_prior_errors(design, priors, match):
    with pytest.raises(BayesLMMError, match=match):
        resolve_priors(design, priors)


def test_unknown_distribution():
    with pytest.raises(BayesLMMError, match="Unknown PyMC distribution 'Nrmal'"):
        Prior("Nrmal", sigma=1)


def test_vector_override_gives_one_value_per_column(design):
    r = resolve_priors(design, {"sd_Subject": Prior("HalfNormal", sigma=[50.0, 10.0])})
    np.testing.assert_allclose(r.sd["Subject"].params["sigma"], [50.0, 10.0])
    with pytest.raises(BayesLMMError, match="shape \\(3,\\).*one value per element \\(2\\)"):
        resolve_priors(design, {"beta": Prior("Normal", mu=0, sigma=[1.0, 2.0, 3.0])})


@pytest.mark.parametrize("args, kw, match", [
    (("HalfNormal",), {"sd": 10}, r"HalfNormal has no parameter 'sd'\. .*It takes sigma, tau"),
    (("HalfNormal",), {"sigma": -1}, "parameter 'sigma' must be positive, got -1"),
    (("Exponential",), {"lam": 0.0}, "parameter 'lam' must be positive"),
    (("Normal",), {"mu": "a"}, "parameter 'mu' must be a number"),
    (("Normal",), {"mu": float("nan")}, "parameter 'mu' must be finite"),
    (("Uniform",), {"lower": 2, "upper": 1}, "lower must be below upper"),
    (("sample",), {}, "Unknown PyMC distribution 'sample'"),
])
def test_priors_are_checked_when_made(args, kw, match):
    with pytest.raises(BayesLMMError, match=match):
        Prior(*args, **kw)
    assert Prior("Cauchy", alpha=-3.0, beta=2.0).params["alpha"] == -3.0  # a location


def test_a_bad_prior_fails_before_any_sampling(sleepstudy):
    with pytest.raises(BayesLMMError, match="must be positive"):
        blm.LMM("Reaction ~ Days + (1 | Subject)", sleepstudy,
                priors={"sigma": Prior("HalfNormal", sigma=-5)})
