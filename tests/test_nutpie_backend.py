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
@pytest.mark.skipif(not (importlib.util.find_spec("nutpie") and importlib.util.find_spec("jax")),
                    reason="nutpie and jax not installed")
def test_new_structure_samples_on_jax_while_numba_is_compiled_for_next_time(
        tmp_path, monkeypatch):
    from bayeslmm.sampling.compiled import COMPILED

    monkeypatch.setenv("BAYESLMM_CACHE_DIR", str(tmp_path))
    started = []
    monkeypatch.setattr(nb.subprocess, "Popen", lambda args, **kw: started.append(args))
    COMPILED.clear()
    m = blm.LMM("y ~ x + (1 | g)", _sim(400, 15, seed=4))
    kw = dict(draws=50, tune=100, chains=1, random_seed=1, progressbar=False,
              sampler="nutpie", parameterization="marginal")
    first = m.fit(**kw)
    assert first.idata.posterior.attrs["nutpie_backend"] == "jax"
    (marker, key), = [(a[-2], a[-1]) for a in started]
    assert a_module(started[0]) == "bayeslmm.sampling.nutpie_backend" and not nb.is_cached(key)
    nb._warm(nb.Path(marker), key)  # what the subprocess runs
    assert nb.is_cached(key) and not nb.Path(marker).exists()
    second = blm.LMM("y ~ x + (1 | g)", _sim(700, 25, seed=5)).fit(**kw)
    assert second.idata.posterior.attrs["nutpie_backend"] == "numba"
    assert len(started) == 1


def a_module(args):
    return args[args.index("-m") + 1]
