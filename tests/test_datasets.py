import json
from pathlib import Path

import pandas as pd
import pytest

import bayeslmm as blm
from bayeslmm.errors import DataError
from tests.conftest import SHARED


@pytest.mark.parametrize("name", blm.datasets.names())
def test_load_matches_shared_csv_and_factor_order(name):
    df = blm.datasets.load(name)
    src = SHARED / "datasets" / f"{name}.csv"
    if not src.exists():
        pytest.skip("shared datasets not available")
    raw = pd.read_csv(src)
    assert df.shape == raw.shape and list(df.columns) == list(raw.columns)
    factors = json.loads((SHARED / "datasets" / "factors.json").read_text()).get(name, {})
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
