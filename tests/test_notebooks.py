"""The notebooks: each ``.ipynb`` is its jupytext source ``.py`` executed (the two agree
cell by cell), stored with outputs, and runs top to bottom (slow tier, few draws)."""

from pathlib import Path

import nbformat
import pytest

jupytext = pytest.importorskip("jupytext")

HERE = Path(__file__).resolve().parents[1] / "notebooks"
NAMES = ["quickstart", "pooling", "from_lme4", "longitudinal", "speed", "genomic",
         "random_slopes"]
#: what replaces each notebook's "parameters" cell when the tests run it
FAST = {"speed": "draws, tune, chains = 300, 400, 2\nbig_rows, big_groups = 2_000, 100"}
FAST_DEFAULT = "draws, tune, chains = 200, 300, 2"


def test_every_source_is_listed():
    sources = {p.stem for p in HERE.glob("*.py")} - {"build"}
    assert sources == set(NAMES)
    assert {p.stem for p in HERE.glob("*.ipynb")} == set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_notebook_matches_its_source(name):
    source = jupytext.read(HERE / f"{name}.py")
    stored = nbformat.read(HERE / f"{name}.ipynb", as_version=4)
    want = [(c.cell_type, c.source.strip()) for c in source.cells]
    got = [(c.cell_type, c.source.strip()) for c in stored.cells]
    assert got == want, "re-run python notebooks/build.py " + name


@pytest.mark.parametrize("name", NAMES)
def test_notebook_stored_with_outputs(name):
    nb = nbformat.read(HERE / f"{name}.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.get("execution_count") for c in code), "re-run notebooks/build.py"
    stored = [o for c in code for o in c.outputs]
    assert not [o for o in stored if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in stored), "no plot stored"
    params = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and "draws" in params[0].source, "one 'parameters' cell"


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_notebook_executes(name, monkeypatch):
    import sys

    sys.path.insert(0, str(HERE))
    from build import execute  # noqa: E402

    # the kernel draws inline (ipykernel picks its inline backend unless this is set)
    monkeypatch.delenv("MPLBACKEND", raising=False)
    nb = jupytext.read(HERE / f"{name}.py")
    k = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    nb.cells.insert(k + 1, nbformat.v4.new_code_cell(FAST.get(name, FAST_DEFAULT)))
    execute(nb, timeout=900)  # raises CellExecutionError, naming the cell, on any error
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code)
    images = [o for c in code for o in c.outputs if "image/png" in o.get("data", {})]
    assert images, "the notebook drew no plot"
