"""Reference fits with σ fixed at a known value (nlme's ``lmeControl(sigma = s)``; the
meta-analysis model): run ``models/make_fixed_sigma.R``, write ``models/*.toml``.

Usage: ``python models/make_fixed_sigma.py [--no-r]``

Exports the bundled datasets (as :mod:`make_nlme_more` does, with ``bcg``, made by
``Rscript models/make_bcg.R bayeslmm/datasets/bcg.csv``), runs
``Rscript models/make_fixed_sigma.R DATA OUT``, keeps R's output as
``models/fixed_sigma/<case>.json`` and turns each into ``models/<case>.toml`` (with
``fixed_sigma``). ``--no-r`` rebuilds the TOML files from the kept JSON.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import make_nlme_more  # noqa: E402
from make_models import convert  # noqa: E402

KEEP = HERE / "fixed_sigma"


def main(argv: list[str]) -> None:
    if "--no-r" not in argv:
        make_nlme_more.DATASETS = ("bcg", "Orthodont")
        with tempfile.TemporaryDirectory() as tmp:
            data, out = Path(tmp, "data"), Path(tmp, "out")
            data.mkdir()
            make_nlme_more.export(data)
            subprocess.run(["Rscript", str(HERE / "make_fixed_sigma.R"), str(data), str(out)],
                           check=True)
            KEEP.mkdir(exist_ok=True)
            for f in sorted(out.glob("*.json")):
                shutil.copy(f, KEEP / f.name)
    for path in sorted(KEEP.glob("*.json")):
        ref = json.loads(path.read_text())
        toml = convert(ref, f"models/fixed_sigma/{path.name}", "models/make_fixed_sigma.py")
        (HERE / f"{ref['case']}.toml").write_text(toml)
        print("wrote", f"{ref['case']}.toml")


if __name__ == "__main__":
    main(sys.argv[1:])
