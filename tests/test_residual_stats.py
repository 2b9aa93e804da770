"""Structured residuals from sufficient statistics (issue 20): the statistics against the
whitened rows, the likelihood against the dense oracle (scipy on ZΨZᵀ + σ²Λ), the
direct kernel's log-density against PyMC's and its gradient against finite
differences, for every structure with statistics × the random-effect designs of the
marginal engine; chunks adding up; draws and pointwise log-likelihoods from them."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import bayeslmm as blm
from bayeslmm.formula.design import build_design
from bayeslmm.linalg.crossprod import CrossProducts
from bayeslmm.linalg.marginal_kernel import marginal_logp_grad
from bayeslmm.pymc.direct import DirectModel
from bayeslmm.residual.algebra import residual_logp, whiten_design
from bayeslmm.residual.bind import bind
from bayeslmm.residual.draws_logp import draws_logp
from bayeslmm.residual.structures import AR1, CAR1, CompSymm, Residual, VarIdent
from bayeslmm.residual.sufficient import residual_stats, sufficient_reason
from tests.oracle import dense_lambda, dense_psi, dense_z


def _data(seed=0, groups=14):
    """Unbalanced groups (1–6 rows, one of a single row), integer times with gaps, CAR1
    times on a half-unit grid, three strata varying within groups, a nesting factor,
    rows shuffled."""
    rng = np.random.default_rng(seed)
    rows = []
    for g in range(groups):
        size = 1 if g == 0 else int(rng.integers(2, 7))
        for t in np.sort(rng.choice(12, size, replace=False)):
            rows.append({"g": f"g{g:02d}", "school": f"s{g % 4}", "t": int(t), "ct": 0.5 * t,
                         "s": rng.choice(["lo", "mid", "hi"]), "x": rng.normal(),
                         "y": rng.normal()})
    df = pd.DataFrame(rows).sample(frac=1, random_state=seed).reset_index(drop=True)
    df["s"] = pd.Categorical(df["s"], categories=["mid", "lo", "hi"])
    return df


RATIOS = np.array([0.6, 1.7])
STRUCTURES = [
    (AR1(group="g"), {"Phi": -0.55}),
    (AR1(group="g", time="t"), {"Phi": 0.7}),
    (CAR1(time="ct", group="g"), {"Phi": 0.35}),
    (CompSymm(group="g"), {"Rho": 0.4}),
    (VarIdent(by="s"), {"varident_ratio": RATIOS}),
    (Residual(VarIdent("s"), AR1("g", "t")), {"Phi": 0.5, "varident_ratio": RATIOS}),
    (Residual(VarIdent("s"), CAR1("ct", "g")), {"Phi": 0.3, "varident_ratio": RATIOS}),
    (Residual(VarIdent("s"), CompSymm("g")), {"Rho": -0.1, "varident_ratio": RATIOS}),
]
FORMULAS = ["y ~ x + (1 | g)", "y ~ x + (x | g)", "y ~ x + (1 | g) + (x | school)", "y ~ x"]


@pytest.fixture(scope="module")
def df():
    return _data()


@pytest.mark.parametrize("formula", FORMULAS)
@pytest.mark.parametrize("structure, params", STRUCTURES, ids=repr)
def test_statistics_equal_the_whitened_rows_and_the_dense_oracle(df, formula, structure,
                                                                params):
    d = build_design(formula, df)
    rd = bind(structure, d)
    assert sufficient_reason(rd) is None
    st = residual_stats(d, rd)
    got, want = st.cross_products(params), CrossProducts.from_design(whiten_design(rd, d, params))
    for a, b in [(got.A11, want.A11), (got.C1xy, want.C1xy), (got.Arr, want.Arr),
                 (got.C1z.toarray(), want.C1z.toarray())]:
        np.testing.assert_allclose(a, b, atol=1e-10)
    lam = dense_lambda(rd, params)
    assert abs(st.logdet(params) - np.linalg.slogdet(lam)[1]) < 1e-10
    # the marginal log-likelihood from the combined statistics against scipy
    rng = np.random.default_rng(1)
    beta, sigma = rng.normal(size=d.X.shape[1]), 0.8
    Ls = [np.tril(rng.uniform(0.3, 1.0, (t.q, t.q))) for t in d.terms]
    lp = _loglik(st.cross_products(params), beta, sigma, Ls) - 0.5 * st.logdet(params)
    Z, Psi = dense_z(d.terms), dense_psi(d.terms, [L @ L.T for L in Ls])
    V = sigma**2 * lam + (Z @ Psi @ Z.T if d.terms else 0.0)
    assert abs(lp - stats.multivariate_normal(d.X @ beta, V).logpdf(d.y)) < 1e-10


def _loglik(cp, beta, sigma, Ls):
    a = cp.marginal_arrays()
    if not cp.order:
        u = np.append(-beta, 1.0)
        return -0.5 * (cp.n * np.log(2 * np.pi * sigma**2) + u @ a["xy_xy"] @ u / sigma**2)
    qmax = max(cp.q)
    packed = np.zeros((len(cp.order), qmax, qmax))
    for pos, k in enumerate(cp.order):
        packed[pos, :cp.q[pos], :cp.q[pos]] = Ls[k]
    return marginal_logp_grad(a["zz"], a["z_xy"], a["xy_xy"], cp.n, beta, sigma, packed,
                              cp.q, cp.m, False)[0]


@pytest.mark.parametrize("formula", FORMULAS)
@pytest.mark.parametrize("structure, params", STRUCTURES, ids=repr)
def test_direct_gradient_matches_central_differences(df, formula, structure, params):
    m = blm.LMM(formula, df, residual=structure)
    model = m.build("marginal")
    direct = DirectModel.of(model, m.design, m._priors, None, residual=m.residual)
    assert direct is not None and direct.residual
    rng = np.random.default_rng(2)
    x = rng.normal(scale=0.5, size=direct.ndim)
    lp, grad = direct.logp_grad(x)
    h = 1e-6
    num = [(direct.logp_grad(x + h * e)[0] - direct.logp_grad(x - h * e)[0]) / (2 * h)
           for e in np.eye(len(x))]
    np.testing.assert_allclose(grad, num, rtol=1e-6, atol=1e-6)
    assert np.isfinite(lp)


# one PyMC compilation each: the structures' coefficient graphs and both kernels
PYMC_CASES = [
    ("y ~ x + (x | g)", AR1(group="g", time="t")),
    ("y ~ x + (1 | g) + (x | school)", Residual(VarIdent("s"), CAR1("ct", "g"))),
    ("y ~ x", Residual(VarIdent("s"), CompSymm("g"))),
    ("y ~ x + (1 | g)", VarIdent(by="s")),
]


@pytest.mark.parametrize("formula, structure", PYMC_CASES, ids=repr)
def test_pymc_model_and_direct_kernel_agree_with_the_oracle(df, formula, structure):
    m = blm.LMM(formula, df, residual=structure)
    model = m.build("marginal")
    assert "stat_kind" in {v.name for v in model.data_vars}  # built on the statistics
    direct = DirectModel.of(model, m.design, m._priors, None, residual=m.residual)
    names = ["beta", "sigma", *m.residual.param_names,
             *[f"sd_{t.group}" for t in m.design.terms],
             *[f"corr_{t.group}" for t in m.design.terms if t.q > 1], "marginal_loglik"]
    outs = model.replace_rvs_by_values([model[n] for n in names])
    fn = model.compile_fn([*outs, model.logp()], inputs=model.value_vars,
                          on_unused_input="ignore")
    dlogp = model.compile_dlogp()
    rng = np.random.default_rng(5)
    for _ in range(2):
        point = {k: v + rng.normal(scale=0.4, size=np.shape(v))
                 for k, v in model.initial_point(random_seed=3).items()}
        got = fn(point)
        vals = dict(zip(names, got, strict=False))
        p = {k: vals[k] for k in m.residual.param_names}
        d = m.design
        lam = vals["sigma"] ** 2 * dense_lambda(m.residual, p)
        covs = []
        for t in d.terms:
            sd = vals[f"sd_{t.group}"]
            covs.append(np.outer(sd, sd) * vals.get(f"corr_{t.group}", 1.0))
        Z = dense_z(d.terms)
        V = lam + (Z @ dense_psi(d.terms, covs) @ Z.T if d.terms else 0.0)
        want = stats.multivariate_normal(d.X @ vals["beta"], V).logpdf(d.y)
        assert abs(vals["marginal_loglik"] - want) < 1e-9 * max(1.0, abs(want))
        x = np.concatenate([np.ravel(point[n]) for n in direct.value_names])
        lp, grad = direct.logp_grad(x)
        assert abs(lp - got[len(names)]) < 1e-8 * max(1.0, abs(lp))
        np.testing.assert_allclose(grad, dlogp(point), rtol=1e-8, atol=1e-8)


def test_chunks_of_whole_groups_add_up(df):
    structure = Residual(VarIdent("s"), AR1("g", "t"))
    d = build_design("y ~ x + (1 | g) + (1 | school)", df)
    full = residual_stats(d, bind(structure, d))
    half = df["g"].isin(sorted(df["g"].unique())[:7]).to_numpy()
    parts = []
    for rows in (np.flatnonzero(half), np.flatnonzero(~half)):
        dc = replace(d, y=d.y[rows], X=d.X[rows], data=d.data.iloc[rows],
                     terms=[replace(t, codes=t.codes[rows], Z=t.Z[rows]) for t in d.terms])
        rc = bind(structure, dc.data, fitting=False)
        parts.append(residual_stats(dc, rc, by_levels=["mid", "lo", "hi"]))
    total = parts[0] + parts[1]
    assert total.keys == full.keys and total.n == full.n
    np.testing.assert_array_equal(total.counts, full.counts)
    p = {"Phi": 0.45, "varident_ratio": RATIOS}
    np.testing.assert_allclose(total.cross_products(p).Arr, full.cross_products(p).Arr,
                               atol=1e-12)
    assert abs(total.logdet(p) - full.logdet(p)) < 1e-12


@pytest.mark.parametrize("structure, params", STRUCTURES, ids=repr)
def test_draws_logp_equals_the_row_wise_terms(df, structure, params):
    rd = bind(structure, df)
    rng = np.random.default_rng(3)
    eps, sigma = rng.normal(size=(3, len(df))), np.array([0.7, 1.0, 1.6])
    scale = np.array([1.0, 0.8, 1.1])
    draw = [{k: (v * s if k != "Rho" else v) for k, v in params.items()} for s in scale]
    batched = {k: np.array([p[k] for p in draw]) for k in params}
    got = draws_logp(rd, eps, sigma, batched)
    for i in range(3):
        np.testing.assert_allclose(got[i], residual_logp(rd, eps[i], sigma[i], draw[i],
                                                         pointwise=True), atol=1e-12)


def test_row_bound_structures_say_why(df):
    d = build_design("y ~ x + (1 | g)", df)
    assert "covariate" in sufficient_reason(bind(blm.VarPower(covariate="x"), d))
    df2 = df.assign(ct=df["ct"] + np.random.default_rng(0).uniform(0, 0.4, len(df)))
    assert "distinct values" in sufficient_reason(bind(CAR1(time="ct", group="g"), df2))
    m = blm.LMM("y ~ x + (1 | g) + (1 | school)", df2, residual=CAR1(time="ct", group="g"))
    with pytest.raises(blm.errors.BayesLMMError, match="sufficient statistics"):
        m.build("marginal")


def test_random_effect_draws_with_several_factors_match_the_dense_conditional(df):
    import xarray as xr

    from bayeslmm.sampling.ranef_draws import draw_random_effects

    structure = Residual(VarIdent("s"), CompSymm("g"))
    m = blm.LMM("y ~ x + (1 | g) + (1 | school)", df, residual=structure)
    d, rd = m.design, m.residual
    beta, sigma, sds, copies = np.array([0.2, -0.4]), 0.9, {"g": 0.7, "school": 1.2}, 4000
    p = {"Rho": 0.3, "varident_ratio": RATIOS}
    post = xr.Dataset({
        "beta": (("chain", "draw", "fixef"), np.tile(beta, (1, copies, 1))),
        "sigma": (("chain", "draw"), np.full((1, copies), sigma)),
        "Rho": (("chain", "draw"), np.full((1, copies), p["Rho"])),
        "varident_ratio": (("chain", "draw", "lev"), np.tile(RATIOS, (1, copies, 1))),
        **{f"sd_{g}": (("chain", "draw", f"{g}_term"), np.full((1, copies, 1), v))
           for g, v in sds.items()}})
    draws = draw_random_effects(d, None, post, random_seed=4, residual=rd)
    flat = np.concatenate([draws[f"b_{t.group}"].values[0].reshape(copies, -1)
                           for t in d.terms], axis=1)
    Psi = dense_psi(d.terms, [np.array([[sds[t.group] ** 2]]) for t in d.terms])
    Z = dense_z(d.terms)
    V = Z @ Psi @ Z.T + sigma**2 * dense_lambda(rd, p)
    mean = Psi @ Z.T @ np.linalg.solve(V, d.y - d.X @ beta)
    cov = Psi - Psi @ Z.T @ np.linalg.solve(V, Z @ Psi)
    se = np.sqrt(np.diag(cov) / copies)
    assert np.max(np.abs(flat.mean(0) - mean) / se) < 4.5
    np.testing.assert_allclose(np.cov(flat.T), cov, atol=0.08 * np.diag(cov).max())


@pytest.mark.slow
@pytest.mark.parametrize("case", ["Orthodont_ar1_reml", "Orthodont_car1_reml",
                                  "Orthodont_varident_ar1_reml"])
def test_nuts_on_the_statistics_near_nlme(case):
    """NUTS on the statistics (nutpie, the direct kernel): no divergences; β, σ and the
    residual parameters within 2.5 posterior sds of nlme's REML estimates."""
    import tomllib
    from pathlib import Path

    toml = tomllib.loads((Path(__file__).parents[1] / "models" / f"{case}.toml").read_text())
    ref = toml["reference"]
    m = blm.LMM(toml["formula"], blm.datasets.load("Orthodont"),
                residual=blm.residual.parse_residual(toml["residual"]))
    post = m.fit(draws=500, tune=500, chains=2, random_seed=3, progressbar=False)
    pos = post.idata.posterior
    assert post.info["parameterization"] == "marginal"
    assert pos.attrs["nutpie_backend"] == "direct"
    assert int(post.idata.sample_stats.diverging.sum()) == 0
    for name, value in ref["fixef"].items():
        draws = pos["beta"].sel(fixef=name)
        assert abs(float(draws.mean()) - value) < 2.5 * float(draws.std()), name
    assert abs(float(pos["sigma"].mean()) - ref["sigma"]) < 2.5 * float(pos["sigma"].std())
    assert abs(float(pos["Phi"].mean()) - ref["residual_params"]["Phi"]) \
        < 2.5 * float(pos["Phi"].std())
    if "varident_ratio" in pos:
        draws = pos["varident_ratio"].values[..., 0]
        assert abs(draws.mean() - ref["residual_params"]["Female"]) < 2.5 * draws.std()
