"""Write the notebooks from their cell sources and execute them, storing outputs.

    python notebooks/build.py            # all notebooks, full draws
    python notebooks/build.py quickstart # one

Each notebook reads ``BAYESLMM_NB_FAST=1`` (set by the tests) to use few draws.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
NOTEBOOKS = ["quickstart", "pooling", "from_lme4", "longitudinal", "speed", "genomic"]


def make(name: str) -> nbformat.NotebookNode:
    cells = importlib.import_module(f"cells_{name}").CELLS
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    for kind, src in cells:
        src = src.strip("\n")
        nb.cells.append(nbformat.v4.new_markdown_cell(src) if kind == "md"
                        else nbformat.v4.new_code_cell(src))
    return nb


def main(names: list[str]) -> None:
    sys.path.insert(0, str(HERE / "src"))
    for name in names or NOTEBOOKS:
        nb = make(name)
        NotebookClient(nb, timeout=1200, kernel_name="python3",
                       resources={"metadata": {"path": str(HERE)}}).execute()
        nbformat.write(nb, HERE / f"{name}.ipynb")
        print(f"wrote {name}.ipynb")


if __name__ == "__main__":
    main(sys.argv[1:])
