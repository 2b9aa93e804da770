"""Griffe extension for the API reference: Sphinx roles in docstrings become Markdown.

The docstrings use Sphinx's roles (``:class:`~bayeslmm.MapResult```, ``:mod:`...```),
which mkdocstrings would show as raw text: each becomes inline code (the last dotted
part with ``~``, as Sphinx shows it), and ``:math:`...``` becomes inline math.
"""

from __future__ import annotations

import re

import griffe

ROLE = re.compile(r":(?:py:)?(class|func|meth|mod|attr|data|obj|exc|math):`(~?)([^`]+)`")


def convert(text: str) -> str:
    """Replace every Sphinx role of ``text`` by its Markdown form.

    >>> convert("See :class:`~bayeslmm.MapResult` and :mod:`bayeslmm.residual`.")
    'See `MapResult` and `bayeslmm.residual`.'
    """
    def one(m: re.Match) -> str:
        role, tilde, target = m.groups()
        if role == "math":
            return rf"\({target}\)"
        return f"`{target.rsplit('.', 1)[-1] if tilde else target}`"

    return ROLE.sub(one, text)


class SphinxRoles(griffe.Extension):
    """Rewrite each object's docstring as it is loaded."""

    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = convert(obj.docstring.value)
