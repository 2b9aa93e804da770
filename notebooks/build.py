"""Execute the notebooks from their sources and store them with their outputs.

Each notebook's source of truth is its jupytext percent-format file ``<name>.py``
(readable, diffable, linted); ``<name>.ipynb`` is that file executed, outputs included.

    python notebooks/build.py            # every notebook
    python notebooks/build.py quickstart # one

``tests/test_notebooks.py`` checks that the two agree and runs each notebook with few
draws (it overrides the ``parameters`` cell, as papermill does).
"""

from __future__ import annotations

import sys
from pathlib import Path

import jupytext
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
NOTEBOOKS = ["quickstart", "pooling", "from_lme4", "longitudinal", "speed", "genomic",
             "random_slopes"]


def execute(nb, *, timeout: int = 1200):
    """Run every cell of ``nb`` in a fresh kernel started in notebooks/ (in place)."""
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(HERE)}}).execute()
    return nb


def main(names: list[str]) -> None:
    for name in names or NOTEBOOKS:
        nb = execute(jupytext.read(HERE / f"{name}.py"))
        jupytext.write(nb, HERE / f"{name}.ipynb")
        print(f"wrote {name}.ipynb")


if __name__ == "__main__":
    main(sys.argv[1:])
