"""Run the code of docs/analysis.md and save its pictures in docs/images/.

    python docs/make_figures.py

Each Python block runs in one namespace, in order; a block that leaves a matplotlib
figure open saves it as ``images/analysis-<k>.png`` (k counts the blocks from 1), a
block that makes a ``graphviz`` graph saves that as ``images/analysis-<k>.png`` too.
``tests/test_docs.py`` checks that every picture the page shows is there.
"""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HERE = Path(__file__).resolve().parent
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def main() -> None:
    namespace: dict = {}
    for k, block in enumerate(BLOCK.findall((HERE / "analysis.md").read_text()), start=1):
        before = set(namespace)
        exec(compile(block, f"analysis.md, block {k}", "exec"), namespace)
        out = HERE / "images" / f"analysis-{k}.png"
        graphs = [v for n, v in namespace.items()
                  if n not in before and type(v).__name__ == "Digraph"]
        if plt.get_fignums():
            plt.gcf().savefig(out, dpi=90, bbox_inches="tight")
            plt.close("all")
            print("wrote", out.name)
        elif graphs:
            out.write_bytes(graphs[0].pipe(format="png"))
            print("wrote", out.name)


if __name__ == "__main__":
    main()
