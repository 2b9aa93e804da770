"""The precompiled log-density of marginal models equals PyMC's own compiled one (value
and gradient) on every structure and prior family it takes, and declines the rest."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pymc as pm
import pytest

import bayeslmm as blm
from bayeslmm.pymc.direct import DirectModel


def _crossed(seed=0):
    rng = np.random.default_rng(seed)
    s, i = np.repeat(np.arange(12), 10), np.tile(np.arange(10), 12)
    x = rng.normal(size=120)
    y = 1 + 0.5 * x + rng.normal(size=12)[s] + 0.3 * rng.normal(size=12)[s] * x \
        + rng.normal(size=10)[i] + rng.normal(size=120)
    w = rng.normal(size=120)
    return pd.DataFrame({"y": y, "x": x, "w": w, "subj": pd.Categorical(s),
                         "item": pd.Categorical(i)})


CASES = {
    "slope": ("Reaction ~ Days + (Days | Subject)", "sleepstudy", {}),
    "uncorrelated": ("Reaction ~ Days + (Days || Subject)", "sleepstudy", {}),
    "intercept": ("Reaction ~ Days + (1 | Subject)", "sleepstudy", {}),
    "crossed": ("diameter ~ 1 + (1 | plate) + (1 | sample)", "Penicillin", {}),
    "nested": ("strength ~ 1 + (1 | batch/cask)", "Pastes", {}),
    "crossed slopes": ("y ~ x + (x | subj) + (1 | item)", _crossed, {}),
    "crossed q3 q2": ("y ~ x + w + (x + w | subj) + (x | item)", _crossed, {}),
    "other families": ("Reaction ~ Days + (Days | Subject)", "sleepstudy",
                       {"sd_Subject": blm.Prior("HalfStudentT", nu=4, sigma=[30.0, 8.0]),
                        "sigma": blm.Prior("HalfCauchy", beta=20.0),
                        "beta": blm.Prior("StudentT", nu=5, mu=0.0, sigma=[300.0, 50.0]),
                        "eta_Subject": 1.0}),
    "cauchy, exponential": ("Reaction ~ Days + (Days || Subject)", "sleepstudy",
                            {"sd_Subject": blm.Prior("Exponential", lam=[0.05, 0.2]),
                             "beta": blm.Prior("Cauchy", alpha=0.0, beta=[100.0, 20.0]),
                             "sigma": blm.Prior("HalfNormal", sigma=40.0)}),
}


def _model(name):
    formula, data, priors = CASES[name]
    df = data() if callable(data) else blm.datasets.load(data)
    return blm.LMM(formula, df, priors=priors)


@pytest.mark.parametrize("name", CASES)
def test_equals_pymc_value_and_gradient(name):
    m = _model(name)
    model = m.build("marginal")
    direct = DirectModel.of(model, m.design, m._priors, m._cross_products)
    assert direct is not None
    logp, dlogp = model.compile_logp(), model.compile_dlogp()
    start = model.initial_point()
    rng = np.random.default_rng(1)
    base = np.concatenate([np.ravel(start[n]) for n in direct.value_names])
    for _ in range(3):
        x = base + rng.normal(scale=0.3, size=base.shape)
        lp, grad = direct.logp_grad(x)
        point = direct.point(x)
        assert lp == pytest.approx(float(logp(point)), rel=1e-10, abs=1e-8)
        np.testing.assert_allclose(grad, dlogp(point), rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize("name", ["slope", "crossed slopes", "crossed q3 q2"])
def test_expand_gives_the_posteriors_variables(name):
    m = _model(name)
    model = m.build("marginal")
    direct = DirectModel.of(model, m.design, m._priors, m._cross_products)
    x = np.concatenate([np.ravel(v) for v in model.initial_point().values()]) + 0.2
    got = direct.expand(x)
    outs = model.unobserved_value_vars
    want = dict(zip([v.name for v in outs],
                    model.compile_fn(outs, inputs=model.value_vars,
                                     on_unused_input="ignore")(direct.point(x)), strict=True))
    assert list(got) == [v.name for v in model.unobserved_RVs]
    for k, v in got.items():
        np.testing.assert_allclose(v, want[k], rtol=1e-12, err_msg=k)
        assert v.shape == tuple(direct.shapes[direct.names.index(k)])


def test_declines_what_it_does_not_describe():
    sleep = blm.datasets.load("sleepstudy")
    m = blm.LMM("Reaction ~ Days + (Days | Subject)", sleep)
    with m.build("marginal") as model:
        pm.Deterministic("ratio", model["sigma"] / 2)
    assert DirectModel.of(model, m.design, m._priors, m._cross_products) is None
    m = blm.LMM("Reaction ~ Days + (Days | Subject)", sleep,
                priors={"sigma": blm.Prior("Gamma", alpha=2.0, beta=0.1)})
    assert DirectModel.of(m.build("marginal"), m.design, m._priors, m._cross_products) is None
    m = blm.LMM("Reaction ~ Days + (1 | Subject) + (0 + Days | Subject) + (0 + I(Days**2) "
                "| Subject)", sleep)
    model = m.build("marginal")  # one factor, three singleton blocks: supported
    assert DirectModel.of(model, m.design, m._priors, m._cross_products) is not None
