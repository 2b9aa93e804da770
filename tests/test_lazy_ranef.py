"""b drawn on demand (``b_draws="lazy"``): the very numbers the stored draws have, drawn a
block at a time when read, and every use of a result (means, predictions, saving,
ArviZ) the same as with the draws in memory."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import bayeslmm as blm
from bayeslmm.errors import BayesLMMError
from bayeslmm.linalg.crossprod import CrossProducts
from bayeslmm.results import posterior as posterior_module
from bayeslmm.results import predict as predict_module
from bayeslmm.sampling import ranef_draws
from bayeslmm.sampling.lazy_ranef import B_DRAWS_AUTO_LIMIT, lazy_random_effects, lazy_wanted
from bayeslmm.sampling.ranef_draws import RanefBlocks, draw_random_effects
from tests.posteriors import synthetic_posterior

CASES = [
    ("sleepstudy", "Reaction ~ Days + (Days | Subject)", None),
    ("Penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)", None),
    ("Orthodont", "distance ~ age + (age | Subject)", blm.AR1(group="Subject")),
    ("Orthodont", "distance ~ age + (1 | Subject) + (1 | Sex)", blm.CompSymm("Subject")),
    ("Orthodont", "distance ~ age + (1 | Subject)", blm.VarPower(covariate="age")),
]


def _hyper_draws(m, nc=2, nd=37, seed=0) -> xr.Dataset:
    """Hyper-parameter draws around plausible values (b's draws only need them)."""
    rng = np.random.default_rng(seed)
    d = m.design
    beta = np.linalg.lstsq(d.X, d.y, rcond=None)[0]
    data = {"beta": (("chain", "draw", "fixef"), beta + 0.1 * rng.standard_normal((nc, nd,
                                                                                   len(beta)))),
            "sigma": (("chain", "draw"), np.std(d.y) / 3 * rng.uniform(0.5, 1.5, (nc, nd)))}
    for t in d.terms:
        data[f"sd_{t.group}"] = (("chain", "draw", f"{t.group}_term"),
                                 rng.uniform(0.3, 2.0, (nc, nd, t.q)))
        if t.q == 2:
            c = np.zeros((nc, nd, 2, 2)) + np.eye(2)
            c[..., 0, 1] = c[..., 1, 0] = rng.uniform(-0.6, 0.6, (nc, nd))
            data[f"corr_{t.group}"] = (("chain", "draw", f"{t.group}_term",
                                        f"{t.group}_term_bis"), c)
    for k in (m.residual.param_names if m.residual is not None else []):
        data[k] = (("chain", "draw"), rng.uniform(0.2, 0.5, (nc, nd)))
    return xr.Dataset(data, coords={"chain": np.arange(nc), "draw": np.arange(nd)})


@pytest.mark.parametrize("name, formula, structure", CASES)
def test_lazy_draws_are_the_stored_draws(name, formula, structure):
    m = blm.LMM(formula, blm.datasets.load(name), residual=structure)
    d, rd, post = m.design, m.residual, _hyper_draws(m)
    cp = CrossProducts.from_design(d) if rd is None else None
    seed = np.random.SeedSequence(5)
    stored = draw_random_effects(d, cp, post, seed, chunk=10, residual=rd)
    lazy = lazy_random_effects(RanefBlocks(d, cp, post, seed, chunk=10, residual=rd), post)
    assert list(lazy) == list(stored)
    for k, b in lazy.items():
        assert not b.variable._in_memory
        assert b.dims == stored[k].dims and b.shape == stored[k].shape
        np.testing.assert_array_equal(b.values, stored[k].values)
        g = b.dims[2]
        pick = dict(chain=1, draw=slice(3, 31, 4), **{g: [0, b.sizes[g] - 1]})
        np.testing.assert_array_equal(b.isel(pick).values, stored[k].isel(pick).values)
        np.testing.assert_array_equal(b.isel(draw=-1).values, stored[k].isel(draw=-1).values)


def test_a_selection_draws_only_the_blocks_it_touches(monkeypatch):
    m = blm.LMM("Reaction ~ Days + (Days | Subject)", blm.datasets.load("sleepstudy"))
    post = _hyper_draws(m, nd=50)
    calls = []
    block = ranef_draws.RanefBlocks.block

    def counted(self, c, lo, hi, **kw):
        calls.append((c, lo, hi))
        return block(self, c, lo, hi, **kw)

    monkeypatch.setattr(ranef_draws.RanefBlocks, "block", counted)
    b = lazy_random_effects(RanefBlocks(m.design, CrossProducts.from_design(m.design),
                                        post, 1, chunk=10), post)["b_Subject"]
    assert calls == []  # nothing drawn until read
    assert b.isel(chain=1, draw=slice(12, 25)).shape == (13, 18, 2)
    b.isel(chain=1, draw=slice(12, 25)).load()
    assert calls == [(1, 10, 20), (1, 20, 30)]


def test_b_draws_option():
    assert not lazy_wanted("auto", B_DRAWS_AUTO_LIMIT) and lazy_wanted("auto",
                                                                        B_DRAWS_AUTO_LIMIT + 1)
    assert lazy_wanted("lazy", 1) and not lazy_wanted("memory", 10 * B_DRAWS_AUTO_LIMIT)
    m = blm.LMM("Reaction ~ Days + (Days | Subject)", blm.datasets.load("sleepstudy"))
    with pytest.raises(BayesLMMError, match="b_draws='later' is not one of"):
        m.fit(b_draws="later")  # before any sampling


@pytest.fixture(scope="module")
def pair():
    m = blm.LMM("Reaction ~ Days + (Days | Subject)", blm.datasets.load("sleepstudy"))
    return (synthetic_posterior(m, draws=60, seed=3, b_draws="lazy"),
            synthetic_posterior(m, draws=60, seed=3, b_draws="memory"))


def test_a_result_with_lazy_draws_reads_as_the_stored_one(pair, tmp_path, monkeypatch):
    import arviz as az

    lazy, stored = pair
    assert not lazy.idata.posterior["b_Subject"].variable._in_memory
    pd.testing.assert_frame_equal(lazy.ranef["Subject"], stored.ranef["Subject"],
                                  check_exact=False, rtol=1e-13)
    # means of large draws are summed a few draws at a time
    monkeypatch.setattr(posterior_module, "STREAM_VALUES", 100)
    pd.testing.assert_frame_equal(lazy.ranef["Subject"], stored.ranef["Subject"],
                                  check_exact=False, rtol=1e-12)
    np.testing.assert_array_equal(lazy.predict(kind="response", random_seed=1).values,
                                  stored.predict(kind="response", random_seed=1).values)
    summary = az.summary(lazy.idata, var_names=["b_Subject"])
    pd.testing.assert_frame_equal(summary, az.summary(stored.idata, var_names=["b_Subject"]))
    lazy.save(tmp_path / "lazy.nc")
    back = blm.load(tmp_path / "lazy.nc")
    np.testing.assert_array_equal(back.idata.posterior["b_Subject"].values,
                                  stored.idata.posterior["b_Subject"].values)


def test_lazy_predictions_on_dask_data_read_b_a_block_at_a_time(monkeypatch):
    dd = pytest.importorskip("dask.dataframe")
    df = blm.datasets.load("sleepstudy")
    f = "Reaction ~ Days + (Days | Subject)"
    out_of_core = synthetic_posterior(blm.LMM(f, dd.from_pandas(df, npartitions=3)),
                                      draws=40, seed=2, b_draws="lazy")
    in_memory = synthetic_posterior(blm.LMM(f, df), draws=40, seed=2, b_draws="memory")
    np.testing.assert_allclose(out_of_core.idata.posterior["b_Subject"].values,
                               in_memory.idata.posterior["b_Subject"].values, rtol=1e-10)
    monkeypatch.setattr(predict_module, "STREAM_VALUES", 500)  # 13 draws a task
    pred = out_of_core.predict(kind="mean")
    assert pred.data.numblocks == (2, 4, 3)
    np.testing.assert_allclose(pred.values, in_memory.predict(kind="mean").values,
                               rtol=1e-10)


def test_predictions_on_dask_data_with_a_residual_structure():
    dd = pytest.importorskip("dask.dataframe")
    df = blm.datasets.load("Orthodont")
    f, ar1 = "distance ~ age + (1 | Subject)", blm.AR1(group="Subject")
    out_of_core = synthetic_posterior(blm.LMM(f, dd.from_pandas(df, npartitions=3),
                                              residual=ar1), draws=30, seed=4)
    in_memory = synthetic_posterior(blm.LMM(f, df, residual=ar1), draws=30, seed=4)
    # the mean does not involve the residual structure: computed partition by partition
    np.testing.assert_allclose(out_of_core.predict(kind="mean").values,
                               in_memory.predict(kind="mean").values, rtol=1e-10)
    with pytest.raises(BayesLMMError, match="kind='mean'.*pandas DataFrame"):
        out_of_core.predict(kind="response")
