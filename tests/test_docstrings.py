"""Every object of the API reference (docs/api.md) has a numpydoc docstring: a one-line
summary and an ``Examples`` section with code (which the doctests run).

The objects are those the page renders: each ``::: name`` entry, the public members of a
module entry (its ``__all__``, else its public classes and functions), and the public
methods and properties of every class, inherited ones from bayeslmm's own bases included.
"""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import pytest

API_PAGE = Path(__file__).resolve().parents[1] / "docs" / "api.md"
EXAMPLES = re.compile(r"^Examples\n-{8,}\n(.*\n)*?>>> ", re.M)


def _resolve(path: str):
    """A dotted name as mkdocstrings resolves it: a module if there is one, else an attribute."""
    try:
        return importlib.import_module(path)
    except ModuleNotFoundError:
        parent, name = path.rsplit(".", 1)
        return getattr(importlib.import_module(parent), name)


def _module_members(module) -> list[tuple[str, object]]:
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n, v in vars(module).items() if not n.startswith("_")
                 and (inspect.isclass(v) or inspect.isfunction(v))
                 and v.__module__ == module.__name__]
    return [(n, getattr(module, n)) for n in names]


def _class_members(cls) -> list[tuple[str, object]]:
    out = {}
    for base in reversed(cls.__mro__):
        if not base.__module__.startswith("bayeslmm"):
            continue
        for name, value in vars(base).items():
            if name.startswith("_"):
                continue
            if isinstance(value, staticmethod | classmethod):
                value = value.__func__
            if inspect.isfunction(value) or isinstance(value, property):
                out[name] = value
    return sorted(out.items())


def _walk(qualname: str, obj) -> list[tuple[str, object]]:
    out = [(qualname, obj)]
    if inspect.ismodule(obj):
        for name, member in _module_members(obj):
            out += _walk(f"{qualname}.{name}", member)
    elif inspect.isclass(obj):
        out += [(f"{qualname}.{name}", member) for name, member in _class_members(obj)]
    return out


def public_api() -> list[tuple[str, object]]:
    entries = re.findall(r"^::: *([\w.]+)", API_PAGE.read_text(), re.M)
    return [item for path in entries for item in _walk(path, _resolve(path))]


API = public_api()


def test_the_walk_finds_the_api():
    names = {n for n, _ in API}
    assert {"bayeslmm.LMM.fit", "bayeslmm.MapResult.sigma", "bayeslmm.KernelModel.fit",
            "bayeslmm.residual.AR1", "bayeslmm.residual.parse_residual",
            "bayeslmm.KernelMapResult.ranef", "bayeslmm.errors.suggest",
            "bayeslmm.compare.compare", "bayeslmm.load"} <= names
    assert len(names) == len(API) > 100


@pytest.mark.parametrize("obj", [o for _, o in API], ids=[n for n, _ in API])
def test_numpydoc_docstring_with_example(obj):
    doc = inspect.getdoc(obj)
    assert doc, "no docstring"
    lines = doc.splitlines()
    assert lines[0].strip() and lines[0].rstrip().endswith("."), \
        f"the summary line must be one sentence ending with '.': {lines[0]!r}"
    assert len(lines) == 1 or not lines[1].strip(), \
        f"the summary must fit on one line, then a blank line: {lines[:2]}"
    assert EXAMPLES.search(doc), "no 'Examples' section with a '>>>' example"
