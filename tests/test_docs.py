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


CODE_PAGES = [p for p in PAGES if BLOCK.search(p.read_text())]


def test_pages_have_code():
    assert {p.stem for p in CODE_PAGES} >= {"index", "formula", "priors", "residuals", "lme4"}


@pytest.mark.slow
@pytest.mark.parametrize("page", CODE_PAGES, ids=[p.stem for p in CODE_PAGES])
def test_page_code_runs(page, small_fits, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    blocks = BLOCK.findall(page.read_text())
    for k, block in enumerate(blocks):
        exec(compile(block, f"{page.name}, block {k + 1}", "exec"), namespace)
    made = [v for v in namespace.values() if type(v).__module__.startswith("bayeslmm")]
    assert made, f"{page.name}: its code made no bayeslmm object"


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("mkdocs") is None, reason="mkdocs not installed")
def test_site_builds_strict(tmp_path):
    out = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q",
                          "-d", str(tmp_path / "site")], cwd=ROOT, capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr[-3000:]


def test_every_picture_is_there():
    # made by docs/make_figures.py from the code above each picture
    for page in PAGES:
        for src in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", page.read_text()):
            assert (page.parent / src).is_file(), f"{page.name}: {src} missing"


def test_analysis_page_shows_each_new_function():
    text = (ROOT / "docs" / "analysis.md").read_text()
    for name in ["effects_table", "plots.effects", "group_fits", "bayes_r2", "r2_nakagawa",
                 "plots.ppc(", "ppc_groups", "sensitivity", "prior_posterior",
                 'level="group"', ".graph()"]:
        assert name in text, name
