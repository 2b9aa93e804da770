"""Faults survived: an interrupted save leaves no file that loads (and keeps the file it
was replacing); a truncated or corrupt compile-cache entry reads as missing (so it is
compiled again) and is rewritten whole, concurrent writers of one entry never show a
reader half of it, and a failed write leaves nothing behind; end to end (sampling
tier), a truncated entry is compiled again and two processes fitting the same new
model structure at once both succeed."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
import threading
import warnings
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd
import pytest

import bayeslmm as blm
from bayeslmm.sampling import nutpie_backend as nb
from bayeslmm.sampling.compiled import COMPILED
from tests.posteriors import synthetic_posterior

ROOT = Path(__file__).resolve().parents[1]
needs_nutpie = pytest.mark.skipif(not importlib.util.find_spec("nutpie"),
                                  reason="nutpie not installed")


class Crash(Exception):
    """What a write that dies midway raises here."""


def _half_write_then(exc):
    """A stand-in for ``InferenceData.to_netcdf`` that writes part of a file, then raises."""
    def to_netcdf(self, filename, *args, **kwargs):
        with open(filename, "wb") as f:
            f.write(b"\x89HDF\r\n\x1a\n" + b"\0" * 1000)  # a netCDF4/HDF5 header, cut short
        raise exc
    return to_netcdf


@pytest.fixture(scope="module")
def results():
    m = blm.LMM("Reaction ~ Days + (Days | Subject)", blm.datasets.load("sleepstudy"))
    return {"posterior": synthetic_posterior(m, chains=1, draws=20, seed=3),
            "map": m.fit_map()}


@pytest.mark.parametrize("kind", ["posterior", "map"])
@pytest.mark.parametrize("exc", [Crash("disk gone"), KeyboardInterrupt()],
                         ids=["error", "ctrl-c"])
def test_interrupted_save_leaves_nothing_that_loads(results, kind, exc, tmp_path,
                                                    monkeypatch):
    path = tmp_path / "fit.nc"
    monkeypatch.setattr(az.InferenceData, "to_netcdf", _half_write_then(exc))
    with pytest.raises(type(exc)):
        results[kind].save(path)
    assert list(tmp_path.iterdir()) == []  # neither the file nor its temporary


@pytest.mark.parametrize("kind", ["posterior", "map"])
def test_interrupted_save_keeps_the_file_it_replaces(results, kind, tmp_path, monkeypatch):
    path = tmp_path / "fit.nc"
    results[kind].save(path)
    before = path.read_bytes()
    monkeypatch.setattr(az.InferenceData, "to_netcdf", _half_write_then(Crash("disk gone")))
    with pytest.raises(Crash):
        results[kind].save(path)
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["fit.nc"]
    assert path.read_bytes() == before
    pd.testing.assert_series_equal(blm.load(path).fixef, results[kind].fixef)


def _data(seed: int, n: int = 60, groups: int = 8) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = rng.integers(0, groups, n)
    x = rng.normal(size=n)
    return pd.DataFrame({"y": 1 + 0.5 * x + rng.normal(size=groups)[g] + rng.normal(size=n),
                         "x": x, "g": pd.Categorical(g)})


#: a cache entry's parts (the real ones are PyTensor functions: large, like this)
PARTS = {"logp": np.arange(200_000.0), "names": ["beta", "sigma"]}


def test_truncated_or_foreign_cache_entry_reads_as_missing_and_is_rewritten(tmp_path,
                                                                           monkeypatch):
    monkeypatch.setenv("BAYESLMM_CACHE_DIR", str(tmp_path))
    key = "f" * 64
    nb._store(key, PARTS)
    entry = tmp_path / f"{key}.pkl"
    whole = entry.read_bytes()
    for bad in (whole[: len(whole) // 2], whole[:7], b"", b"not a pickle"):
        entry.write_bytes(bad)
        assert nb._load(key) is None  # compiled again by the caller, not an exception
    nb._store(key, PARTS)  # what the caller does after compiling
    np.testing.assert_array_equal(nb._load(key)["logp"], PARTS["logp"])
    assert [p.name for p in tmp_path.iterdir()] == [entry.name]


def test_concurrent_cache_writers_never_show_a_reader_half_an_entry(tmp_path, monkeypatch):
    # writers in threads (the same process: the case a per-process temporary name
    # would get wrong) and a reader: every read is the whole entry or none at all
    monkeypatch.setenv("BAYESLMM_CACHE_DIR", str(tmp_path))
    key = "c" * 64
    stop, seen, errors = threading.Event(), [], []

    def write():
        try:
            for _ in range(15):
                nb._store(key, PARTS)
        except Exception as err:  # pragma: no cover - the failure reported below
            errors.append(err)

    def read():
        while not stop.is_set():
            got = nb._load(key)
            seen.append(got is not None)
            if got is not None and got["logp"].shape != PARTS["logp"].shape:
                errors.append(ValueError("half an entry"))  # pragma: no cover

    reader = threading.Thread(target=read)
    reader.start()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a writer that failed would warn
        writers = [threading.Thread(target=write) for _ in range(3)]
        for t in writers:
            t.start()
        for t in writers:
            t.join()
    stop.set()
    reader.join()
    assert not errors and any(seen)
    assert [p.name for p in tmp_path.iterdir()] == [f"{key}.pkl"]  # no temporary left
    np.testing.assert_array_equal(nb._load(key)["logp"], PARTS["logp"])


def test_failed_cache_write_warns_and_leaves_no_temporary(tmp_path, monkeypatch):
    monkeypatch.setenv("BAYESLMM_CACHE_DIR", str(tmp_path))

    def dump(obj, f):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(nb.cloudpickle, "dump", dump)
    with pytest.warns(UserWarning, match="could not write its compile cache"):
        nb._store("d" * 64, PARTS)
    assert list(tmp_path.iterdir()) == []


#: a structure no other test compiles, extended by the user: nutpie runs its PyTensor
#: graph (not the precompiled density), through the disk cache
FORMULA = "y ~ x + (1 | g)"
FIT = {"draws": 50, "tune": 100, "chains": 1, "random_seed": 1, "progressbar": False,
       "sampler": "nutpie", "parameterization": "marginal"}


def _extended(df: pd.DataFrame) -> blm.LMM:
    m = blm.LMM(FORMULA, df)
    with m.build("marginal") as model:
        import pymc as pm

        pm.Deterministic("fault_test_ratio", model["sd_g"][0] / model["sigma"])
    return m


@pytest.mark.slow
@needs_nutpie
def test_truncated_cache_entry_is_compiled_again(tmp_path, monkeypatch):
    monkeypatch.setenv("BAYESLMM_CACHE_DIR", str(tmp_path))
    COMPILED.clear()
    first = _extended(_data(1)).fit(**FIT)
    (entry,) = tmp_path.glob("*.pkl")
    whole = entry.stat().st_size
    entry.write_bytes(entry.read_bytes()[: whole // 2])
    assert nb._load(entry.stem) is None

    from nutpie import compile_pymc
    compiled = []
    make = compile_pymc._make_functions

    def counting(*args, **kwargs):
        compiled.append(1)
        return make(*args, **kwargs)

    monkeypatch.setattr(compile_pymc, "_make_functions", counting)
    COMPILED.clear()  # as in a new process: only the disk cache is left
    second = _extended(_data(2)).fit(**FIT)
    assert compiled == [1]  # the truncated entry was not used, the graph compiled again
    assert sorted(p.name for p in tmp_path.iterdir()) == [entry.name]  # no temporary left
    assert nb._load(entry.stem) is not None  # and rewritten whole
    for post in (first, second):
        ratio = post.idata.posterior["fault_test_ratio"].values
        assert ratio.shape == (1, 50) and np.isfinite(ratio).all()
    COMPILED.clear()


_WORKER = textwrap.dedent("""
    import sys
    import numpy as np
    sys.path.insert(0, {root!r})
    from tests.test_faults import FIT, _data, _extended

    post = _extended(_data(int(sys.argv[1]))).fit(**FIT)
    ratio = post.idata.posterior["fault_test_ratio"].values
    assert ratio.shape == (1, 50) and np.isfinite(ratio).all()
    print("fitted", float(post.idata.posterior["beta"].mean()))
""")


@pytest.mark.slow
@needs_nutpie
def test_two_processes_compile_the_same_new_structure_at_once(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    script = tmp_path / "worker.py"
    script.write_text(_WORKER.format(root=str(ROOT)))
    env = {**os.environ, "BAYESLMM_CACHE_DIR": str(cache)}
    procs = [subprocess.Popen([sys.executable, str(script), str(seed)], env=env, cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for seed in (3, 4)]
    outs = [p.communicate(timeout=900) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-3000:]
        assert out.startswith("fitted")
    entries = sorted(p.name for p in cache.iterdir())
    assert len(entries) == 1 and entries[0].endswith(".pkl"), entries  # no temporary left
    monkeypatch.setenv("BAYESLMM_CACHE_DIR", str(cache))
    assert nb._load(entries[0][: -len(".pkl")]) is not None
