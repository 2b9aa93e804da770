"""Structured residuals with sufficient statistics on the blocked engine (issue 20 on
issue 15's designs): the blocked log-likelihood of the statistics against the dense
oracle (scipy on ZΨZᵀ + σ²Λ), the direct kernel's gradient against central
differences, PyMC's Op against the direct kernel, for crossed, partially crossed and
nested (two and three levels) unbalanced designs × every structure with statistics;
``auto`` takes the marginal model beyond the former dense limit."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import bayeslmm as blm
from bayeslmm.formula.design import build_design
from bayeslmm.linalg.blocked_kernel import blocked_kernel_grads
from bayeslmm.linalg.blocked_layout import blocked_stacks, kernel_stacks
from bayeslmm.pymc.blocked_op import DATA_NAMES
from bayeslmm.pymc.direct import DirectModel
from bayeslmm.pymc.parameterization import choose_parameterization
from bayeslmm.residual.bind import bind
from bayeslmm.residual.structures import AR1, CAR1, CompSymm, Residual, VarIdent
from bayeslmm.residual.sufficient import residual_stats, sufficient_reason
from tests.oracle import dense_lambda, dense_psi, dense_z


def _data(kind: str, seed: int = 0) -> pd.DataFrame:
    """Correlation groups ``g`` (1–5 rows, integer times with gaps, CAR1 times on a
    half-unit grid, strata varying within groups) inside one level of every factor:
    subject × item cells (crossed: all cells; partial: about half), students in classes
    in schools (nested)."""
    rng = np.random.default_rng(seed)
    if kind in ("crossed", "partial"):
        cells = [(s, i) for s in range(7) for i in range(5)
                 if kind == "crossed" or rng.random() < 0.55 or i == s % 5]
        groups = [{"subj": f"s{s}", "item": f"i{i}", "g": f"s{s}i{i}"} for s, i in cells]
    else:
        groups = []
        for school in range(4):
            for k in range(int(rng.integers(2, 4))):
                for st in range(int(rng.integers(1, 4))):
                    groups.append({"school": f"h{school}", "klass": f"h{school}k{k}",
                                   "student": f"h{school}k{k}s{st}",
                                   "g": f"h{school}k{k}s{st}"})
    rows = []
    for grp in groups:
        size = int(rng.integers(1, 6))
        for t in np.sort(rng.choice(9, size, replace=False)):
            rows.append({**grp, "t": int(t), "ct": 0.5 * t, "x": rng.normal(),
                         "s": rng.choice(["lo", "mid", "hi"]), "y": rng.normal()})
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
    (Residual(VarIdent("s"), CompSymm("g")), {"Rho": -0.1, "varident_ratio": RATIOS}),
]
# (data, formula, the kernel the layout takes)
DESIGNS = [
    ("crossed", "y ~ x + (1 | subj) + (x | item)", "crossed"),
    ("partial", "y ~ x + (x | subj) + (1 | item)", "pattern"),
    ("nested", "y ~ x + (1 | klass) + (1 | school)", "nested"),
    ("nested", "y ~ x + (1 | student) + (1 | klass) + (x | school)", "pattern"),
]


@pytest.fixture(scope="module")
def frames():
    return {kind: _data(kind) for kind in ("crossed", "partial", "nested")}


def _kernel_loglik(layout, values, coef, beta, sigma, Ls, qs, n):
    arrays = {**layout, **{k: np.tensordot(coef, v, axes=1)
                           for k, v in kernel_stacks(layout, values).items()}}
    return blocked_kernel_grads(*[np.ascontiguousarray(arrays[k]) for k in DATA_NAMES[:-1]],
                                float(n), bool(layout["full"]),
                                bool(layout["blockdiag"]), beta, sigma, Ls,
                                np.asarray(qs, np.int64), True)


@pytest.mark.parametrize("kind, formula, kernel", DESIGNS, ids=[d[1] for d in DESIGNS])
@pytest.mark.parametrize("structure, params", STRUCTURES, ids=repr)
def test_blocked_statistics_equal_the_dense_oracle(frames, kind, formula, kernel, structure,
                                                   params):
    d = build_design(formula, frames[kind])
    rd = bind(structure, d)
    assert sufficient_reason(rd) is None
    st = residual_stats(d, rd)
    layout, values = blocked_stacks(st.parts)
    taken = "crossed" if layout["full"] else "nested" if layout["blockdiag"] else "pattern"
    assert taken == kernel
    rng = np.random.default_rng(1)
    beta, sigma = rng.normal(size=d.X.shape[1]), 0.8
    first = st.parts[0]
    Ls = np.zeros((len(first.order), 2, 2))
    chols = [np.tril(rng.uniform(0.3, 1.0, (t.q, t.q))) for t in d.terms]
    for pos, k in enumerate(first.order):
        Ls[pos, :d.terms[k].q, :d.terms[k].q] = chols[k]
    coef = st.coefficients(params)
    out = _kernel_loglik(layout, values, coef, beta, sigma, Ls, first.q, st.n)
    Z, Psi = dense_z(d.terms), dense_psi(d.terms, [L @ L.T for L in chols])
    V = sigma**2 * dense_lambda(rd, params) + Z @ Psi @ Z.T
    want = stats.multivariate_normal(d.X @ beta, V).logpdf(d.y)
    assert abs(out[0] - 0.5 * st.logdet(params) - want) < 1e-10 * max(1.0, abs(want))
    # the gradient in the statistics' coefficients: the data gradient contracted with S_k
    dc = [sum(np.sum(g * v[k]) for g, v in zip(out[4:], kernel_stacks(layout, values).values(),
                                               strict=True)) for k in range(len(coef))]
    h = 1e-6
    num = [(_kernel_loglik(layout, values, coef + h * e, beta, sigma, Ls, first.q, st.n)[0]
            - _kernel_loglik(layout, values, coef - h * e, beta, sigma, Ls, first.q, st.n)[0])
           / (2 * h) for e in np.eye(len(coef))]
    np.testing.assert_allclose(dc, num, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("kind, formula, kernel", DESIGNS, ids=[d[1] for d in DESIGNS])
@pytest.mark.parametrize("structure, params", STRUCTURES, ids=repr)
def test_direct_blocked_gradient_matches_central_differences(frames, kind, formula, kernel,
                                                             structure, params):
    m = blm.LMM(formula, frames[kind], residual=structure)
    direct = DirectModel.of(m.build("marginal"), m.design, m._priors, None, residual=m.residual)
    assert direct is not None and direct.residual and direct.dense
    x = np.random.default_rng(2).normal(scale=0.5, size=direct.ndim)
    lp, grad = direct.logp_grad(x)
    h = 1e-6
    num = [(direct.logp_grad(x + h * e)[0] - direct.logp_grad(x - h * e)[0]) / (2 * h)
           for e in np.eye(len(x))]
    assert np.isfinite(lp)
    np.testing.assert_allclose(grad, num, rtol=1e-6, atol=1e-6)


# one PyMC compilation each: PyMC's Op (its data gradients through PyTensor's chain rule)
PYMC_CASES = [
    ("crossed", "y ~ x + (1 | subj) + (x | item)", Residual(VarIdent("s"), AR1("g", "t"))),
    ("nested", "y ~ x + (1 | klass) + (1 | school)", CompSymm(group="g")),
]


@pytest.mark.parametrize("kind, formula, structure", PYMC_CASES, ids=repr)
def test_pymc_op_and_direct_kernel_agree(frames, kind, formula, structure):
    m = blm.LMM(formula, frames[kind], residual=structure)
    model = m.build("marginal")
    assert "stat_a11" in {v.name for v in model.data_vars}  # the blocked layout's stacks
    direct = DirectModel.of(model, m.design, m._priors, None, residual=m.residual)
    logp, dlogp = model.compile_logp(), model.compile_dlogp()
    rng = np.random.default_rng(5)
    for _ in range(2):
        point = {k: v + rng.normal(scale=0.4, size=np.shape(v))
                 for k, v in model.initial_point(random_seed=3).items()}
        x = np.concatenate([np.ravel(point[n]) for n in direct.value_names])
        lp, grad = direct.logp_grad(x)
        assert abs(lp - logp(point)) < 1e-9 * max(1.0, abs(lp))
        np.testing.assert_allclose(grad, dlogp(point), rtol=1e-8, atol=1e-8)


def test_auto_takes_the_marginal_model_beyond_the_former_dense_limit():
    """413 random effects (400 groups in 10 clusters, crossed with a 3-level factor),
    CompSymm within the groups: the blocked engine, where the dense path stopped at
    400."""
    rng = np.random.default_rng(1)
    n = 1600
    df = pd.DataFrame({"y": rng.normal(size=n), "a": np.arange(n) // 4,
                       "b": np.arange(n) // 160, "c": (np.arange(n) // 4) % 3})
    m = blm.LMM("y ~ 1 + (1 | a) + (1 | b) + (1 | c)", df, residual=CompSymm(group="a"))
    assert choose_parameterization(m.design, m.residual, "auto") == "marginal"
    direct = DirectModel.of(m.build("marginal"), m.design, m._priors, None,
                            residual=m.residual)
    assert direct is not None
    lp, grad = direct.logp_grad(np.zeros(direct.ndim))
    assert np.isfinite(lp) and np.all(np.isfinite(grad))


def test_varident_out_of_core_with_several_factors(frames):
    """VarIdent's statistics from each level's cross-products summed over chunks (dask):
    the blocked direct kernel reads the same log-density and gradient as in memory."""
    import dask.dataframe as dd

    df = frames["partial"]
    f, res = "y ~ x + (x | subj) + (1 | item)", VarIdent(by="s")
    mem = blm.LMM(f, df, residual=res)
    ooc = blm.LMM(f, dd.from_pandas(df, npartitions=3), residual=res)
    da, db = (DirectModel.of(m.build("marginal"), m.design, m._priors, None,
                             residual=m.residual) for m in (mem, ooc))
    assert da.dense and db.dense
    x = np.random.default_rng(1).normal(0, 0.3, da.ndim)
    (la, ga), (lb, gb) = da.logp_grad(x), db.logp_grad(x)
    np.testing.assert_allclose([la, *ga], [lb, *gb], rtol=1e-10, atol=1e-10)


@pytest.mark.slow
def test_nuts_on_a_crossed_design_with_ar1_recovers_the_truth():
    """kb07-like subjects × items, AR(1) errors (Phi = 0.5) within each cell's trials,
    10,752 rows: nutpie on the blocked direct kernel, no divergences, the truth within
    3 posterior sds."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
    from bench_blocked_residual import KB07_Q2, crossed

    m = blm.LMM(KB07_Q2, crossed(6), residual=AR1(group="cell", time="t"))
    post = m.fit(draws=500, tune=500, chains=2, random_seed=1, progressbar=False)
    pos = post.idata.posterior
    assert post.info["parameterization"] == "marginal"
    assert pos.attrs["nutpie_backend"] == "direct"
    assert int(post.idata.sample_stats.diverging.sum()) == 0
    for name, value in [("Phi", 0.5), ("sigma", 500.0)]:
        assert abs(float(pos[name].mean()) - value) < 3 * float(pos[name].std()), name
    for name, value in {"spkr": 100.0, "prec": 300.0, "load": 80.0}.items():
        draws = pos["beta"].sel(fixef=name)
        assert abs(float(draws.mean()) - value) < 3 * float(draws.std()), name


@pytest.mark.parametrize("formula", ["y ~ x + (1 | subj) + (x | item)", "y ~ x + (1 | subj)"])
@pytest.mark.parametrize("structure", [AR1(group="g"), CompSymm(group="g")], ids=repr)
def test_a_correlation_rounded_to_its_bound_is_minus_infinity(frames, formula, structure):
    """Far out in the unconstrained space (NUTS's early jumps) the interval transform
    gives exactly ±1: the log-density is -inf there (nutpie rejects the step), not a
    division by zero inside the kernel."""
    m = blm.LMM(formula, frames["crossed"], residual=structure)
    direct = DirectModel.of(m.build("marginal"), m.design, m._priors, None, residual=m.residual)
    roff = direct.residual[1]  # the correlation's place in the unconstrained vector
    for u in (60.0, -60.0 if isinstance(structure, AR1) else 60.0):
        x = np.zeros(direct.ndim)
        x[roff] = u
        lp, _ = direct.logp_grad(x)
        assert lp == -np.inf
