import gzip
import hashlib
import io
import json
from pathlib import Path

import pandas as pd
import pytest

import bayeslmm as blm
from bayeslmm.errors import DataError

HERE = Path(blm.datasets.__file__).parent
#: sha256 of the project's source CSVs (shared/datasets, from lme4, nlme and rstanarm;
#: Wheat2 and cake written from nlme and lme4 by R's write.csv, fieldplots simulated by
#: models/make_fieldplots.R): the bundled copies are those files, byte for byte
SOURCE_SHA256 = {
    'Dyestuff': '8c41baf5c35281f3cdbf79b9803c84036de0a66c2e0bbf73cc6d274bf8f193cc',
    'Dyestuff2': '2285d9b4e15c04a326fd944f0e7bcc9dfcf6eb180a959bc9bcc333b1e5b58011',
    'InstEval': '1376ad9330171473fb8da325eeb5670fa78e7b0c24a89784ef3dd1ea441893cf',
    'Orthodont': 'ca7c0296405bb2bd5959cd5fff7c50a5035606f16ac308c7797f58666fcd7aa1',
    'Ovary': 'dba1f50ec63fb77599451854a4db46d35b2d1b41d7918635e6faa29dbd48255d',
    'Pastes': '2ff3dab894c7526ba90394ad4b95c20ef085c1f36255b47432833535874c78a7',
    'Penicillin': '8d7e09b5c2519c595a7515028cba5ea149dcd9f99aa08e423534bd139a1eae1f',
    'radon': 'a63973b6958fb57aab59258e2179f52a34dbb1fe9c0f30b3e3de657f96ea1445',
    'sleepstudy': '2918bbddf750e78003059efa97b94885b85c4d7927c22a19c29f7fa5a184c59d',
    'Wheat2': 'e137529b2b94ed22c1be418b4bc9db0731ad8adf5abbecfc53a151942ad2c2d7',
    'cake': '7a6537bc11ee82f21cda3a56eaa638260078c64088f697a1d72f44aa29732f67',
    'fieldplots': '2bad08218154a3d4b3584c6b43abc5e13c30be3a196464d944ad4a63d032ab18',
    # the BCG trials' counts typed in from Colditz et al. (1994), yi and vi computed by
    # models/make_bcg.R
    'bcg': '340ef0a13d8de39bc82910f056246ff912d9edcdfbcb2c7053c6025003f02ebb',
}

#: and of the factors' level order (shared/datasets/factors.json, plus the four above)
FACTORS_SHA256 = "7bc1109b87e5804a16fa7ea593cac0278a637ecdcf5c0ec726287fcaa18807d3"


def _raw(name: str) -> bytes:
    plain = HERE / f"{name}.csv"
    return plain.read_bytes() if plain.exists() else gzip.decompress(
        (HERE / f"{name}.csv.gz").read_bytes())


def test_every_source_is_bundled():
    assert sorted(blm.datasets.names()) == sorted(SOURCE_SHA256)
    assert hashlib.sha256((HERE / "factors.json").read_bytes()).hexdigest() == FACTORS_SHA256


@pytest.mark.parametrize("name", blm.datasets.names())
def test_load_matches_source_csv_and_factor_order(name):
    raw_bytes = _raw(name)
    assert hashlib.sha256(raw_bytes).hexdigest() == SOURCE_SHA256[name]
    df = blm.datasets.load(name)
    raw = pd.read_csv(io.BytesIO(raw_bytes))
    assert df.shape == raw.shape and list(df.columns) == list(raw.columns)
    factors = json.loads((HERE / "factors.json").read_text()).get(name, {})
    for col, info in factors.items():
        assert list(df[col].cat.categories) == info["levels"]
        assert df[col].cat.ordered == info["ordered"]
        assert df[col].astype(str).tolist() == raw[col].astype(str).tolist()
    for col in set(df.columns) - set(factors):
        pd.testing.assert_series_equal(df[col], raw[col], check_names=False)


def test_load_is_a_fresh_copy_and_case_insensitive():
    a = blm.datasets.load("SLEEPSTUDY")
    a["Reaction"] = 0.0
    assert blm.datasets.load("sleepstudy")["Reaction"].iloc[0] == pytest.approx(249.56)


def test_unknown_dataset_suggests():
    with pytest.raises(DataError, match="Did you mean 'sleepstudy'"):
        blm.datasets.load("sleepstudi")


def test_provenance_shipped():
    import bayeslmm.datasets as ds

    text = (Path(ds.__file__).parent / "PROVENANCE.md").read_text()
    assert "lme4 1.1.31" in text and "Licence" in text
