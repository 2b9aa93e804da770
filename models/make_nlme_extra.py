"""Extra nlme reference fits with residual structures: run nlme, write models/*.toml.

Usage: ``python models/make_nlme_extra.py [--no-r]``

Exports the bundled datasets (``bayeslmm.datasets.load``: the rows and the level order of
every factor, as R would see them) to a temporary folder, runs
``Rscript models/make_nlme_extra.R DATA OUT`` (needs R with nlme and jsonlite:
``apt-get install r-base-core r-cran-nlme r-cran-jsonlite``), keeps nlme's output as
``models/nlme_extra/<case>.json`` and turns each into ``models/<case>.toml`` with
:func:`make_models.convert`. ``--no-r`` rebuilds the TOML files from the kept JSON.
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

DATASETS = ("Orthodont", "Ovary", "sleepstudy")
KEEP = HERE / "nlme_extra"


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
    if "--no-r" not in argv:
        with tempfile.TemporaryDirectory() as tmp:
            data, out = Path(tmp, "data"), Path(tmp, "out")
            data.mkdir()
            export(data)
            subprocess.run(["Rscript", str(HERE / "make_nlme_extra.R"), str(data), str(out)],
                           check=True)
            KEEP.mkdir(exist_ok=True)
            for f in sorted(out.glob("*.json")):
                shutil.copy(f, KEEP / f.name)
    for path in sorted(KEEP.glob("*.json")):
        ref = json.loads(path.read_text())
        toml = convert(ref, f"models/nlme_extra/{path.name}", "models/make_nlme_extra.py")
        (HERE / f"{ref['case']}.toml").write_text(toml)
        print("wrote", f"{ref['case']}.toml")


if __name__ == "__main__":
    main(sys.argv[1:])
