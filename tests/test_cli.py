import json

import pytest

from bayeslmm.cli import main


def test_datasets_lists_all(capsys):
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    for name in ("sleepstudy", "Orthodont", "InstEval", "radon"):
        assert name in out


def test_fit_prints_and_writes_json(tmp_path, capsys):
    out = tmp_path / "fit.json"
    code = main(["fit", "Yield ~ 1 + (1 | Batch)", "--data", "Dyestuff", "--chains", "1",
                 "--draws", "100", "--tune", "200", "--seed", "2", "--no-progress",
                 "--json", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert "Formula: Yield ~ 1 + (1 | Batch)" in text and "Number of obs: 30" in text
    d = json.loads(out.read_text())
    assert d["ngroups"] == {"Batch": 6} and "(Intercept)" in d["fixef_lme4"]
    assert 1400 < d["fixef"]["Intercept"] < 1650


def test_fit_csv_and_errors(tmp_path, capsys, sleepstudy):
    path = tmp_path / "sleep.csv"
    sleepstudy.to_csv(path, index=False)
    assert main(["fit", "Reaction ~ Dayz + (1 | Subject)", "--data", str(path)]) == 2
    assert "Unknown column 'Dayz'" in capsys.readouterr().err
    assert main(["fit", "y ~ x", "--data", "nosuchdata"]) == 2
    assert "No bundled dataset 'nosuchdata'" in capsys.readouterr().err
    assert main(["fit", "y ~ x", "--data", str(tmp_path / "missing.csv")]) == 2


def test_usage_error():
    with pytest.raises(SystemExit):
        main(["fit"])
