"""The compile cache of bayeslmm.sampling.nutpie_backend: what its key depends on, and that a
stored entry is what a second compilation loads."""

from __future__ import annotations

import importlib.util

import numpy as np
import pandas as pd
import pytest

import bayeslmm as blm
from bayeslmm.sampling import nutpie_backend as nb


def _sim(n, groups, scale=1.0, seed=0):
    rng = np.random.default_rng(seed)
    g = rng.integers(0, groups, n)
    x = rng.normal(size=n)
    y = scale * (1 + 0.5 * x + rng.normal(size=groups)[g] + rng.normal(size=n))
    return pd.DataFrame({"y": y, "x": x, "g": pd.Categorical(g)})


def test_key_depends_on_structure_not_on_data():
    a = blm.LMM("y ~ x + (x | g)", _sim(500, 20)).marginal_model
    b = blm.LMM("y ~ x + (x | g)", _sim(3000, 70, scale=100.0, seed=1)).marginal_model
    c = blm.LMM("y ~ x + (1 | g)", _sim(500, 20)).marginal_model
    assert nb.structure_key(a, "numba") == nb.structure_key(b, "numba")
    assert nb.structure_key(a, "numba") != nb.structure_key(c, "numba")
    assert nb.structure_key(a, "numba") != nb.structure_key(a, "jax")
    # the data differ only through pm.Data, priors included
    da, db = nb.model_data(a), nb.model_data(b)
    assert da.keys() == db.keys() and "prior_beta_sigma" in da and "stat_n" in da
    assert da["stat_n"] == 500 and db["stat_n"] == 3000


@pytest.mark.slow
@pytest.mark.skipif(not importlib.util.find_spec("nutpie"), reason="nutpie not installed")
def test_disk_cache_is_written_and_then_loaded(tmp_path, monkeypatch):
    monkeypatch.setenv("BAYESLMM_CACHE_DIR", str(tmp_path))
    model = blm.LMM("y ~ x + (1 | g)", _sim(300, 12)).marginal_model
    key = nb.structure_key(model, "numba")
    first = nb.compile_model(model, "numba", key=key)
    assert (tmp_path / f"{key}.pkl").exists()

    def no_compiling(*args, **kwargs):
        raise AssertionError("compiled again despite the cache")

    monkeypatch.setattr("nutpie.compile_pymc._make_functions", no_compiling)
    other = blm.LMM("y ~ x + (1 | g)", _sim(900, 30, seed=2)).marginal_model
    second = nb.compile_model(other, "numba", key=nb.structure_key(other, "numba"))
    x = first._make_initial_points(0)
    f1, f2 = first._make_logp_func(), second._make_logp_func()
    # same compiled function, each model's own data: different values at the same point
    v1, g1 = f1(x, **first._shared_data)
    v2, g2 = f2(x, **second._shared_data)
    assert np.isfinite(v1) and np.isfinite(v2) and v1 != v2
    assert g1.shape == g2.shape == x.shape


def test_corrupt_cache_entry_is_ignored(tmp_path, monkeypatch):
    monkeypatch.setenv("BAYESLMM_CACHE_DIR", str(tmp_path))
    (tmp_path / "abc.pkl").write_bytes(b"not a pickle")
    assert nb._load("abc") is None
    monkeypatch.setenv("BAYESLMM_CACHE_DIR", "")
    assert nb._load("abc") is None  # cache turned off


@pytest.mark.slow
@pytest.mark.skipif(not importlib.util.find_spec("nutpie"), reason="nutpie not installed")
def test_extended_model_is_compiled_once_per_structure_into_the_disk_cache(
        tmp_path, monkeypatch):
    """A model the user extended is not the precompiled direct path's: its graph is
    compiled for numba, kept on disk, and read back for the next data of that structure."""
    import pymc as pm

    from bayeslmm.sampling.compiled import COMPILED

    monkeypatch.setenv("BAYESLMM_CACHE_DIR", str(tmp_path))
    COMPILED.clear()
    kw = dict(draws=50, tune=100, chains=1, random_seed=1, progressbar=False,
              sampler="nutpie", parameterization="marginal")
    keys = []
    for n, groups, seed in ((400, 15, 4), (700, 25, 5)):
        m = blm.LMM("y ~ x + (1 | g)", _sim(n, groups, seed=seed))
        model = m.build("marginal")
        with model:
            pm.Deterministic("twice_sigma", 2 * model["sigma"])
        keys.append(nb.structure_key(model, "numba"))
        assert nb.is_cached(keys[-1]) == (seed == 5)
        post = m.fit(**kw).idata.posterior
        assert post.attrs["nutpie_backend"] == "numba"
        np.testing.assert_allclose(post["twice_sigma"], 2 * post["sigma"])
        COMPILED.clear()  # the second fit reads the disk, not this process's memory
    assert keys[0] == keys[1] and nb.is_cached(keys[0])
