"""What fit() samples and returns: the user's model (extensions included), checked
options, interrupted runs marked, no process left behind, no noise on the terminal."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd
import pymc as pm
import pytest
import xarray as xr

import bayeslmm as blm
from bayeslmm.cli import main
from bayeslmm.errors import BayesLMMError
from bayeslmm.sampling import nuts
from bayeslmm.sampling.nuts import check_options, run_info
from tests.posteriors import synthetic_posterior

ROOT = Path(__file__).resolve().parents[1]
SAMPLERS = ["pymc", "nutpie"] + (["numpyro"] if importlib.util.find_spec("numpyro") else [])


def _sleep(formula="Reaction ~ Days + (1 | Subject)"):
    return blm.LMM(formula, blm.datasets.load("sleepstudy"))


class _Sampled(Exception):
    pass


def test_fit_samples_the_model_pymc_model_returns(monkeypatch):
    m = _sleep()
    seen = []

    def fake_sample(model, **kw):
        seen.append(model)
        raise _Sampled

    monkeypatch.setattr("bayeslmm.model.sample", fake_sample)
    for par in ("auto", "marginal", "conditional"):
        with pytest.raises(_Sampled):
            m.fit(parameterization=par)
    assert seen[0] is m.pymc_model is m.build("auto") is m.build("marginal")
    assert seen[1] is seen[0] and seen[2] is m.build("conditional") is not seen[0]
    assert m.marginal_model is m.build("marginal")  # the older name, the same object


@pytest.mark.parametrize("value, match", [
    (np.int64(20), None), (20.0, "draws must be a positive integer"),
    (True, "draws must be a positive integer"), (0, "draws must be a positive integer")])
def test_draws_option(value, match):
    kw = dict(tune=0, chains=1, target_accept=0.8, random_seed=None)
    if match is None:
        assert check_options(draws=value, **kw)["draws"] == 20
    else:
        with pytest.raises(BayesLMMError, match=match):
            check_options(draws=value, **kw)


def test_seed_and_target_accept_options():
    kw = dict(draws=10, tune=0, chains=1)
    assert check_options(target_accept=0.9, random_seed=np.uint32(7), **kw)["random_seed"] == 7
    with pytest.raises(BayesLMMError, match="random_seed must be a non-negative integer, got 1.5"):
        check_options(target_accept=0.9, random_seed=1.5, **kw)
    with pytest.raises(BayesLMMError, match="target_accept must be a number in"):
        check_options(target_accept="high", random_seed=None, **kw)


def _partial(chains=2, draws=5, asked=100):
    post = xr.Dataset({"beta": (("chain", "draw"), np.zeros((chains, draws)))})
    return az.InferenceData(posterior=post)


def test_interrupted_run_is_marked_with_true_counts():
    with pytest.warns(UserWarning, match=r"Sampling was interrupted: 2 chains x 5 draws of the "
                                         r"4 x 100 asked for") as rec:
        info = run_info(_partial(), draws=100, chains=4, tune=10, sampler="pymc")
    assert rec[0].filename == __file__  # the warning points at the caller's line
    assert info["draws"] == 5 and info["chains"] == 2 and "interrupted" in info
    post = synthetic_posterior(_sleep(), chains=1, draws=30)
    cut = type(post)(post.idata, post._design, post.priors, {**post.info, **info})
    assert cut.warnings[0].startswith("sampling was interrupted")
    assert "WARNING: sampling was interrupted" in str(cut)
    assert "Draws: 2 chains x 5" in str(cut)
    assert nuts.interrupted(_partial(4, 100), draws=100, chains=4) is None


def test_nutpie_padding_of_an_interrupted_run_is_cut():
    energy = np.full((3, 8), np.nan)
    energy[0, :6], energy[1, :4] = 1.0, 1.0  # chain 2 never started
    idata = az.InferenceData(
        posterior=xr.Dataset({"x": (("chain", "draw"), np.arange(24.0).reshape(3, 8))}),
        sample_stats=xr.Dataset({"energy": (("chain", "draw"), energy)}))
    out = nuts._complete_draws(idata)
    assert out.posterior.sizes == {"chain": 2, "draw": 4}
    np.testing.assert_array_equal(out.posterior["x"].values, [[0, 1, 2, 3], [8, 9, 10, 11]])
    assert nuts._complete_draws(out) is out  # complete: unchanged


def test_cli_speaks_in_flags(tmp_path, capsys):
    post = synthetic_posterior(blm.LMM("Yield ~ 1 + (1 | Batch)", blm.datasets.load("Dyestuff")),
                               chains=1, draws=20)
    post.save(tmp_path / "fit.nc")
    pd.DataFrame({"Batch": ["Z"]}).to_csv(tmp_path / "new.csv", index=False)
    code = main(["predict", str(tmp_path / "fit.nc"), "--data", str(tmp_path / "new.csv"),
                 "--out", str(tmp_path / "p.csv"), "--new-levels", "error"])
    err = capsys.readouterr().err
    assert code == 2 and "pass --new-levels sample" in err and "new_levels=" not in err


def test_dropped_rows_warning_names_the_callers_line():
    df = blm.datasets.load("sleepstudy").copy()
    df.loc[3, "Days"] = np.nan
    with pytest.warns(UserWarning, match="Dropped 1 of 180 rows") as rec:
        blm.LMM("Reaction ~ Days + (1 | Subject)", df)
    assert rec[0].filename == __file__


def test_datasets_listing_ends_with_a_newline(capfd):
    assert main(["datasets"]) == 0
    assert capfd.readouterr().out.endswith("\n")


def test_library_noise_is_held_back_and_filters_restored():
    before = list(warnings.filters)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        with blm.errors.quiet_libraries():
            warnings.warn("PyTensor could not link to a BLAS installation.", stacklevel=1)
        warnings.warn("a user's own warning", stacklevel=1)
    assert [str(w.message) for w in rec] == ["a user's own warning"]
    assert warnings.filters == before
    import importlib

    importlib.reload(blm)  # importing bayeslmm leaves the user's filters alone
    assert warnings.filters == before


# --- the sampling tier -------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("sampler", SAMPLERS)
@pytest.mark.parametrize("par", ["marginal", "conditional"])
def test_users_deterministic_and_potential_are_sampled(par, sampler):
    m = _sleep()
    with m.build(par) as model:
        pm.Deterministic("ratio", model["sd_Subject"][0] / model["sigma"])
        pm.Potential("sigma_near_20", pm.logp(pm.Normal.dist(20.0, 0.1), model["sigma"]))
    post = m.fit(parameterization=par, sampler=sampler, draws=300, tune=300, chains=2,
                 random_seed=3, progressbar=False)
    p = post.idata.posterior
    np.testing.assert_allclose(p["ratio"], p["sd_Subject"].sel(Subject_term="Intercept")
                               / p["sigma"], rtol=1e-10)
    # the likelihood alone puts sigma near 31 (lme4: 30.99); the potential holds it at 20
    assert abs(float(p["sigma"].mean()) - 20.0) < 0.3
    assert "b_Subject" in p  # the random effects are there in either parameterization


def _children() -> list[int]:
    out = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        ppid = next((line.split()[1] for line in text.splitlines() if line.startswith("PPid")),
                    None)
        if ppid == str(os.getpid()):
            out.append(int(status.parent.name))
    return out


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
@pytest.mark.parametrize("sampler, cores", [("pymc", 2), ("nutpie", None)])
def test_no_process_outlives_a_fit(sampler, cores):
    before = set(_children())
    _sleep().fit(sampler=sampler, cores=cores, draws=50, tune=50, chains=2, random_seed=1,
                 progressbar=False)
    deadline = time.time() + 10  # PyMC's workers exit when the sampler closes
    while set(_children()) - before and time.time() < deadline:
        time.sleep(0.2)
    assert not set(_children()) - before


@pytest.mark.slow
@pytest.mark.parametrize("sampler", ["pymc", "nutpie"])
def test_ctrl_c_returns_a_marked_partial_posterior(sampler, tmp_path):
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(f"""
        import bayeslmm as blm
        m = blm.LMM("Reaction ~ Days + (Days | Subject)", blm.datasets.load("sleepstudy"))
        m.fit(draws=10, tune=10, chains=1, progressbar=False, sampler="{sampler}")
        print("SAMPLING", flush=True)
        post = m.fit(draws=10**6, tune=100, chains=2, random_seed=1, progressbar=False,
                     sampler="{sampler}", cores=1)
        p = post.idata.posterior
        print("DONE", post.info["chains"], post.info["draws"], p.sizes["draw"],
              bool(p["sigma"].isnull().any()), "interrupted" in post.info, flush=True)
    """))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout.readline().strip() == "SAMPLING"
    time.sleep(8)  # compiled and tuned: drawing
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    done = [line for line in out.splitlines() if line.startswith("DONE")]
    assert done, err[-2000:]
    _, chains, draws, stored, has_nan, marked = done[0].split()
    assert 1 <= int(chains) <= 2 and 0 < int(draws) < 10**6 and int(stored) == int(draws)
    assert has_nan == "False" and marked == "True"
    assert "Sampling was interrupted" in err


@pytest.mark.slow
def test_a_first_session_is_quiet(tmp_path):
    """Install-fit-predict-save-load as a new user would, warnings shown as Python shows
    them by default: nothing on stderr."""
    script = tmp_path / "session.py"
    script.write_text(textwrap.dedent("""
        import pandas as pd
        import bayeslmm as blm
        df = blm.datasets.load("sleepstudy")
        m = blm.LMM("Reaction ~ Days + (Days | Subject)", df)
        post = m.fit(draws=200, tune=200, chains=2, random_seed=1, progressbar=False)
        print(post)
        new = pd.DataFrame({"Days": [1, 2], "Subject": ["308", "someone new"]})
        post.predict(new).mean(("chain", "draw"))
        post.save("fit.nc")
        blm.load("fit.nc").summary()
        print(m.fit_map())
    """))
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         cwd=tmp_path, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stderr.strip() == "", res.stderr[-3000:]
