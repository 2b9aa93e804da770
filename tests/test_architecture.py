"""The package's structure (ARCHITECTURE.md): layers import only downward, no import
cycle, no private name imported from another module, no module over 400 lines, and
ARCHITECTURE.md lists every module.

Imports are read from the source (``ast``), function-level ones included.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "bayeslmm"

#: bottom to top; a module may import its own layer's modules and those below
LAYERS = [
    ["bayeslmm.errors", "bayeslmm.datasets"],
    ["bayeslmm.linalg"],
    ["bayeslmm.formula"],
    ["bayeslmm.dask"],
    ["bayeslmm.residual"],
    ["bayeslmm.results"],
    ["bayeslmm.mle"],
    ["bayeslmm.pymc"],
    ["bayeslmm.sampling"],
    ["bayeslmm.model", "bayeslmm.kernel_model", "bayeslmm.io", "bayeslmm.plots",
     "bayeslmm.compare", "bayeslmm.anova", "bayeslmm.many"],
    ["bayeslmm.cli"],
    ["bayeslmm"],
]


def _modules() -> dict[str, Path]:
    out = {}
    for path in PKG.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imports(name: str) -> list[tuple[str, str | None]]:
    """(module imported, name taken from it) for every import in module ``name``."""
    path = MODULES[name]
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            stem = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:
                full = f"{stem}.{alias.name}"
                out.append((full, None) if full in MODULES else (stem, alias.name))
        elif isinstance(node, ast.Import):
            out += [(alias.name, None) for alias in node.names]
    return [(m, n) for m, n in out if m == "bayeslmm" or m.startswith("bayeslmm.")]


GRAPH = {m: {t for t, _ in _imports(m) if t in MODULES and t != m} for m in MODULES}


def layer(module: str) -> int:
    """Index in LAYERS of the layer a module belongs to (its longest listed prefix)."""
    best, where = -1, None
    for k, names in enumerate(LAYERS):
        for prefix in names:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, where = len(prefix), k
    assert where is not None, f"{module} is in no layer: add it to LAYERS and ARCHITECTURE.md"
    return where


def test_every_module_has_a_layer():
    assert len(MODULES) > 40
    for m in MODULES:
        layer(m)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_go_down(module):
    up = [t for t in GRAPH[module] if layer(t) > layer(module)]
    assert not up, f"{module} (layer {layer(module)}) imports higher layers: {up}"


def test_no_import_cycle():
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for t in sorted(GRAPH[m]):
            if state.get(t) == 1:
                cycle = stack[stack.index(t):] + [t]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(MODULES):
        if m not in state:
            visit(m)


def test_no_private_names_across_modules():
    bad = [f"{m} imports {n} from {t}" for m in MODULES for t, n in _imports(m)
           if n and n.startswith("_") and not n.startswith("__")]
    assert not bad


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_under_400_lines(module):
    assert len(MODULES[module].read_text().splitlines()) <= 400


def test_architecture_page_lists_every_module():
    text = (ROOT / "ARCHITECTURE.md").read_text()
    listed = set(re.findall(r"^- `(bayeslmm/[\w/]+\.py)`", text, re.M))
    actual = {str(p.relative_to(ROOT)) for p in MODULES.values()}
    actual -= {p for p in actual if p.endswith("__init__.py") and p.count("/") == 2
               and p.split("/")[1] not in ("datasets", "residual", "results", "dask")}
    assert listed == actual, (f"missing from ARCHITECTURE.md: {sorted(actual - listed)}; "
                              f"listed but absent: {sorted(listed - actual)}")


def test_the_checks_see_a_violation(tmp_path):
    """The graph reader finds relative, absolute and function-level imports."""
    assert "bayeslmm.mle.lmer" in GRAPH["bayeslmm.mle.fit"]          # from .lmer import
    assert "bayeslmm.results.map" in GRAPH["bayeslmm.mle.lmer"]      # from ..results.map
    assert "bayeslmm.sampling.ranef_draws" in GRAPH["bayeslmm.sampling.complete"]  # in a def
    assert layer("bayeslmm.pymc.priors") > layer("bayeslmm.mle.greml")
