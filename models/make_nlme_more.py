"""Reference fits of issue 18's structures (nlme's corSymm, corARMA, spatial correlations,
varConstPower, varFixed, varComb; lme4's prior weights and ordered factors): run R, write
models/*.toml.

Usage: ``python models/make_nlme_more.py [--no-r] [CASE ...]``

Exports the bundled datasets (``bayeslmm.datasets.load``: the rows and the level order
and ordered status of every factor, as R would see them) to a temporary folder, runs
``Rscript models/make_nlme_more.R DATA OUT [CASE ...]`` (needs R with nlme, lme4 and
jsonlite), keeps R's output as ``models/nlme_more/<case>.json`` and turns each into
``models/<case>.toml`` with :func:`make_models.convert`. ``--no-r`` rebuilds the TOML files
from the kept JSON. ``bayeslmm/datasets/fieldplots.csv`` is made by
``Rscript models/make_fieldplots.R bayeslmm/datasets/fieldplots.csv``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

import bayeslmm as blm

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from make_models import convert  # noqa: E402

DATASETS = ("Orthodont", "Ovary", "sleepstudy", "Pastes", "Wheat2", "cake", "fieldplots")
KEEP = HERE / "nlme_more"


def export(folder: Path) -> None:
    """The datasets as CSV, plus factors.json (levels in order) for the R script."""
    factors = {}
    for name in DATASETS:
        df = blm.datasets.load(name)
        df.to_csv(folder / f"{name}.csv", index=False)
        factors[name] = {c: {"levels": [str(x) for x in df[c].cat.categories],
                             "ordered": bool(df[c].cat.ordered)}
                         for c in df.columns if isinstance(df[c].dtype, pd.CategoricalDtype)}
    (folder / "factors.json").write_text(json.dumps(factors))


def main(argv: list[str]) -> None:
    cases = [a for a in argv if not a.startswith("--")]
    if "--no-r" not in argv:
        with tempfile.TemporaryDirectory() as tmp:
            data, out = Path(tmp, "data"), Path(tmp, "out")
            data.mkdir()
            export(data)
            subprocess.run(["Rscript", str(HERE / "make_nlme_more.R"), str(data), str(out),
                            *cases], check=True)
            KEEP.mkdir(exist_ok=True)
            for f in sorted(out.glob("*.json")):
                shutil.copy(f, KEEP / f.name)
    for path in sorted(KEEP.glob("*.json")):
        if path.name == "corr_matrices.json":  # models/make_corr_matrices.R's
            continue
        ref = json.loads(path.read_text())
        toml = convert(ref, f"models/nlme_more/{path.name}", "models/make_nlme_more.py")
        (HERE / f"{ref['case']}.toml").write_text(toml)
        print("wrote", f"{ref['case']}.toml")


if __name__ == "__main__":
    main(sys.argv[1:])
