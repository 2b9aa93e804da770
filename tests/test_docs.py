"""The documentation: every page's Python code runs as written (with few draws), and
the site builds without warnings."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib
import pytest

import bayeslmm as blm

matplotlib.use("Agg")
ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "docs").glob("*.md"))
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


@pytest.fixture
def small_fits(monkeypatch):
    fit = blm.LMM.fit

    def quick(self, **kw):
        kw.update(draws=min(kw.get("draws", 100), 100), tune=min(kw.get("tune", 150), 150),
                  chains=min(kw.get("chains", 2), 2), progressbar=False)
        return fit(self, **kw)

    monkeypatch.setattr(blm.LMM, "fit", quick)


@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_page_code_runs(page, small_fits, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in BLOCK.findall(page.read_text()):
        exec(compile(block, f"{page.name}", "exec"), namespace)


@pytest.mark.skipif(shutil.which("mkdocs") is None, reason="mkdocs not installed")
def test_site_builds_strict(tmp_path):
    out = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q",
                          "-d", str(tmp_path / "site")], cwd=ROOT, capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr[-3000:]
