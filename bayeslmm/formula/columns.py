"""Which data columns a formula reads, and the names it may use besides columns.

Examples
--------
>>> from bayeslmm.formula.spec import parse_formula
>>> columns_used(parse_formula("y ~ np.log(x) + (1 | g)"), ["y", "x", "g"])
(['y'], ['y', 'x', 'g'], ['x', 'g'])
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from ..errors import DataError, suggest
from . import contrasts
from .spec import ModelSpec, identifiers

__all__ = ["NAMESPACE", "columns_used"]

#: Names a formula may use besides columns (``sin(2 * pi * Time)``, ``np.log(x)``).
NAMESPACE: dict[str, Any] = {
    "np": np, "numpy": np, "pi": np.pi, "e": np.e, "log": np.log, "log2": np.log2,
    "log10": np.log10, "log1p": np.log1p, "exp": np.exp, "sqrt": np.sqrt, "abs": np.abs,
    "sin": np.sin, "cos": np.cos, "tan": np.tan,
}
_KNOWN = set(NAMESPACE) | set(contrasts.ENCODINGS) | {"True", "False", "None"}


def _strip_strings(expr: str) -> str:
    expr = re.sub(r"\"[^\"]*\"|'[^']*'", " ", expr)
    return re.sub(r"\b[A-Za-z_]\w*\s*=(?!=)", " ", expr)  # keyword arguments


def _columns_in(expr: str, columns, where: str) -> list[str]:
    cols = []
    found = identifiers(_strip_strings(expr))
    contrasts.check_functions([n for n, called in found if called], NAMESPACE, where)
    for name, called in found:
        if called or name in columns:
            if not called:
                cols.append(name)
            continue
        if name in _KNOWN or re.fullmatch(r"[\d.]+", name) or name.split(".")[0] in _KNOWN:
            continue
        raise DataError(
            f"Unknown column {name!r} in {where}.{suggest(name, columns)} "
            f"The data have columns {list(map(str, columns))}."
        )
    return cols


def columns_used(spec: ModelSpec, columns, extra_columns=()) -> tuple[list[str], list[str],
                                                                     list[str]]:
    """The data columns a model reads: (response's, all used, predictors).

    ``columns`` are the data's column names; every name the formula uses must be one
    (or a known function), else a DataError names it. ``extra_columns`` (a residual
    structure's) are used but are not predictors.

    >>> from bayeslmm.formula.spec import parse_formula
    >>> columns_used(parse_formula("y ~ log(x) + (1 | g:h)"), ["y", "x", "g", "h", "z"])
    (['y'], ['y', 'x', 'g', 'h'], ['x', 'g', 'h'])
    """
    columns = list(columns)
    response_cols = _columns_in(spec.response, columns, "the response")
    used = _columns_in(spec.fixed, columns, "the fixed effects")
    for bar in spec.bars:
        used += _columns_in(bar.expr, columns, f"random-effect term {bar}")
        for c in bar.group_columns:
            if c not in columns:
                raise DataError(
                    f"Unknown grouping column {c!r} in random-effect term {bar}."
                    f"{suggest(c, columns)} The data have columns {columns}."
                )
            used.append(c)
    for c in extra_columns:
        if c not in columns:
            raise DataError(f"Unknown column {c!r} in the residual structure."
                            f"{suggest(c, columns)} The data have columns "
                            f"{list(map(str, columns))}.")
    predictors = list(dict.fromkeys(used))
    used += list(extra_columns)
    return response_cols, list(dict.fromkeys(response_cols + used)), predictors
