import json

import numpy as np
import pytest

from bayeslmm.cli import main


def test_datasets_lists_all(capsys):
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    for name in ("sleepstudy", "Orthodont", "InstEval", "radon"):
        assert name in out


@pytest.mark.slow
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


def test_map_fit_prints_and_writes_json(tmp_path, capsys):
    out = tmp_path / "fit.json"
    code = main(["fit", "Yield ~ 1 + (1 | Batch)", "--data", "Dyestuff", "--map", "ML",
                 "--json", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert "Linear mixed model fit by maximum likelihood" in text and "Batch" in text
    d = json.loads(out.read_text())
    assert d["kind"] == "map" and d["ngroups"] == {"Batch": 6}
    assert d["loglik"] == pytest.approx(-163.6635, abs=1e-3)  # lme4: -163.6635
    assert d["fixef_lme4"]["(Intercept)"] == pytest.approx(1527.5, abs=1e-6)


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


def test_fit_with_random_matrix_and_covariance_files(tmp_path, capsys):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(4)
    n, p = 60, 80
    W = rng.normal(size=(n, p))
    ids = [f"id{i:03d}" for i in range(n)]
    df = pd.DataFrame({"id": ids, "x": rng.normal(size=n)})
    df["y"] = 1 + df.x + W @ rng.normal(scale=0.1, size=p) + rng.normal(size=n)
    df.iloc[::-1].to_csv(tmp_path / "pheno.csv", index=False)  # rows in another order
    pd.DataFrame(W, index=ids).to_csv(tmp_path / "geno.csv")
    out = tmp_path / "k.json"
    assert main(["fit", "y ~ x", "--data", str(tmp_path / "pheno.csv"), "--id", "id",
                 "--random-matrix", f"snps={tmp_path / 'geno.csv'}", "--map", "REML",
                 "--json", str(out)]) == 0
    import bayeslmm as blm

    want = blm.LMM("y ~ x", df, random_matrices={"snps": W}).fit_map("REML")
    assert json.loads(out.read_text())["h2"] == pytest.approx(want.h2, abs=1e-6)  # rows reordered
    assert "snps" in capsys.readouterr().out
    # NUTS, --save, then predict new rows from their genotypes
    saved, new, pred = tmp_path / "fit.nc", tmp_path / "new.csv", tmp_path / "pred.csv"
    np.save(tmp_path / "geno.npy", W)
    assert main(["fit", "y ~ x", "--data", str(tmp_path / "pheno.csv"),
                 "--random-matrix", f"snps={tmp_path / 'geno.npy'}", "--chains", "1",
                 "--draws", "50", "--tune", "50", "--seed", "1", "--no-progress",
                 "--save", str(saved)]) == 0
    pd.DataFrame({"x": [0.0, 1.0]}).to_csv(new, index=False)
    np.save(tmp_path / "new.npy", W[:2])
    assert main(["predict", str(saved), "--data", str(new), "--new-matrix",
                 str(tmp_path / "new.npy"), "--out", str(pred)]) == 0
    assert len(pd.read_csv(pred)) == 2
    assert main(["fit", "y ~ x", "--data", str(tmp_path / "pheno.csv"),
                 "--random-matrix", "snps"]) == 2
    assert "NAME=FILE" in capsys.readouterr().err
    # known covariance from a CSV with level labels
    K = np.corrcoef(rng.normal(size=(6, 20)))
    levels = [f"L{i}" for i in range(6)]
    pd.DataFrame(K, index=levels, columns=levels).to_csv(tmp_path / "K.csv")
    df["line"] = np.array(levels)[np.arange(n) % 6]
    df.to_csv(tmp_path / "lines.csv", index=False)
    assert main(["fit", "y ~ x + (1 | line)", "--data", str(tmp_path / "lines.csv"),
                 "--covariance", f"line={tmp_path / 'K.csv'}", "--map", "ML"]) == 0


@pytest.mark.parametrize("content, says", [
    (b"", "is empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe\x00binary", "not a readable CSV"),
    (b"Reaction,Days,Subject\n", "holds no rows"),
    (b'Reaction,Days\n"1,2\n', "not a readable CSV"),
])
def test_unreadable_csv_files_give_one_line(tmp_path, capsys, content, says):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    assert main(["fit", "Reaction ~ Days + (1 | Subject)", "--data", str(path)]) == 2
    err = capsys.readouterr().err
    assert says in err and "bad.csv" in err and err.count("\n") == 1
    assert "Traceback" not in err


def test_a_folder_as_data_is_refused(tmp_path, capsys):
    assert main(["fit", "y ~ x", "--data", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--json", "--save"])
def test_outputs_are_checked_before_fitting(tmp_path, capsys, flag, monkeypatch):
    import bayeslmm.model

    def no_fit(*args, **kwargs):
        raise AssertionError("fitted before checking the output path")

    monkeypatch.setattr(bayeslmm.model.LMM, "fit_map", no_fit)
    missing = tmp_path / "no" / "such" / "folder" / "out.x"
    assert main(["fit", "Yield ~ 1 + (1 | Batch)", "--data", "Dyestuff", "--map", "ML",
                 flag, str(missing)]) == 2
    err = capsys.readouterr().err
    assert f"{flag} " in err and "create it first" in err
    assert main(["fit", "Yield ~ 1 + (1 | Batch)", "--data", "Dyestuff", "--map", "ML",
                 flag, str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err


def test_map_fits_save_and_predict_with_standard_errors(tmp_path, capsys, sleepstudy):
    import pandas as pd

    import bayeslmm as blm

    fit_file, new_file, out = tmp_path / "fit.nc", tmp_path / "new.csv", tmp_path / "p.csv"
    pd.DataFrame({"Days": [0, 5], "Subject": ["308", "a new subject"]}).to_csv(
        new_file, index=False)
    assert main(["fit", "Reaction ~ Days + (Days | Subject)", "--data", "sleepstudy",
                 "--map", "REML", "--save", str(fit_file)]) == 0
    assert main(["predict", str(fit_file), "--data", str(new_file), "--out", str(out),
                 "--hdi", "0.95"]) == 0
    got = pd.read_csv(out)
    want = blm.LMM("Reaction ~ Days + (Days | Subject)", sleepstudy).fit_map("REML").predict(
        pd.read_csv(new_file, dtype={"Subject": str}), new_levels="sample", se_fit=True)
    np.testing.assert_allclose(got["fit"], want["fit"], rtol=1e-8)
    np.testing.assert_allclose(got["se"], want["se"], rtol=1e-8)
    np.testing.assert_allclose(got["ci_95_upper"] - got["fit"], 1.959964 * got["se"],
                               rtol=1e-6)
    assert main(["predict", str(fit_file), "--data", str(new_file), "--out", str(out),
                 "--kind", "response"]) == 2
    assert "predicts means" in capsys.readouterr().err


def test_fit_with_sigma_fixed(tmp_path, capsys):
    """--sigma: the meta-analysis of the BCG trials (the dense REML of
    models/bcg_fixed_sigma_reml.toml: logLik -13.485, mu -0.7145), and a bad value."""
    out = tmp_path / "fit.json"
    assert main(["fit", "yi ~ 1 + (1 | trial)", "--data", "bcg", "--residual",
                 "VarFixed(covariate=vi)", "--sigma", "1", "--map", "REML",
                 "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "Residual standard error fixed at 1" in text and "-13.485" in text
    import json

    assert round(json.loads(out.read_text())["fixef"]["Intercept"], 4) == -0.7145
    assert main(["fit", "yi ~ 1 + (1 | trial)", "--data", "bcg", "--residual",
                 "VarFixed(covariate=vi)", "--sigma", "-1", "--map", "REML"]) == 2
    assert "got -1.0" in capsys.readouterr().err
