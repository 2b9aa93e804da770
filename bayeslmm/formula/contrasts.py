"""R's coding of factors in formulae's matrices, and the formula functions bayeslmm knows.

- Ordered factors (an ordered pandas categorical, as R's ``ordered()``) get R's default
  ``contr.poly``: orthogonal polynomial columns named as R prints them, ``.L``, ``.Q``,
  ``.C``, ``^4``, … (``temperature[.L]`` here, ``temperature.L`` in lme4's naming).
  A bare ordered column in a formula is read as ``C(x, Poly)``; ``C(x, Treatment)``
  keeps treatment coding.
- ``C(x, levels=[...])``: formulae's parser reads no list literal, so each one is
  handed to it as a name bound to the list.
- :func:`check_functions`: an unknown function in a formula is an error that lists the
  functions a formula may call.

Examples
--------
>>> np.round(contr_poly(3), 4) + 0.0  # R's contr.poly(3)
array([[-0.7071,  0.4082],
       [ 0.    , -0.8165],
       [ 0.7071,  0.4082]])
>>> poly_labels(5)
['.L', '.Q', '.C', '^4']
>>> rewrite_ordered("recipe * temperature + C(temperature, Treatment)", {"temperature"})
'recipe * C(temperature, Poly) + C(temperature, Treatment)'
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from formulae.categorical import ContrastMatrix, Encoding, Sum, Treatment
from formulae.transforms import TRANSFORMS

from ..errors import FormulaError, suggest

__all__ = ["Poly", "contr_poly", "poly_labels", "rewrite_ordered", "ordered_columns",
           "r_name", "list_literals", "check_functions", "ENCODINGS"]


def contr_poly(n: int) -> np.ndarray:
    """R's ``contr.poly(n)``: orthonormal polynomials of the scores 1..n (degrees 1..n−1).

    The columns are Q of the QR of the centred powers, each signed by its R diagonal
    (as R's ``make.poly``): increasing in the score's leading power.

    >>> contr_poly(2).round(6).tolist()
    [[-0.707107], [0.707107]]
    """
    if n < 2:
        raise FormulaError(f"contr.poly needs at least 2 levels, got {n}.")
    x = np.arange(1, n + 1, dtype=float)
    X = np.vander(x - x.mean(), n, increasing=True)
    Q, R = np.linalg.qr(X)
    Z = Q * np.sign(np.diag(R))
    Z /= np.sqrt((Z**2).sum(axis=0))
    return Z[:, 1:]


def poly_labels(n: int) -> list[str]:
    """R's names of the ``contr.poly(n)`` columns: ``.L``, ``.Q``, ``.C``, ``^4`` …

    >>> poly_labels(3)
    ['.L', '.Q']
    """
    return [{1: ".L", 2: ".Q", 3: ".C"}.get(k, f"^{k}") for k in range(1, n)]


class Poly(Encoding):
    """formulae's encoding of R's ``contr.poly`` (``C(x, Poly)``).

    Examples
    --------
    >>> Poly().code_without_intercept(["lo", "mid", "hi"]).labels
    ['.L', '.Q']
    """

    def code_with_intercept(self, levels):
        """One indicator per level (R codes a factor that spans the intercept so)."""
        return ContrastMatrix(np.eye(len(levels), dtype=int), [str(v) for v in levels])

    def code_without_intercept(self, levels):
        """The ``contr.poly`` columns."""
        return ContrastMatrix(contr_poly(len(levels)), poly_labels(len(levels)))


#: the encodings a formula may name in ``C(x, ...)``
ENCODINGS: dict[str, Any] = {"Poly": Poly, "Treatment": Treatment, "Sum": Sum}


def ordered_columns(data: pd.DataFrame, columns: Iterable[str]) -> set[str]:
    """The columns among ``columns`` that are ordered categoricals.

    >>> df = pd.DataFrame({"t": pd.Categorical(["a", "b"], ordered=True), "s": ["x", "y"]})
    >>> ordered_columns(df, ["t", "s"])
    {'t'}
    """
    return {c for c in columns if c in data.columns
            and isinstance(data[c].dtype, pd.CategoricalDtype) and data[c].cat.ordered}


_TOKEN = re.compile(r"`[^`]*`|[A-Za-z_.][\w.]*|\(|\)|\"[^\"]*\"|'[^']*'|\[|\]")


def rewrite_ordered(expr: str, ordered: set[str]) -> str:
    """``expr`` with each bare ordered column (outside any function call) as
    ``C(column, Poly)``.

    >>> rewrite_ordered("(a + x):b + I(x)", {"x"})
    '(a + C(x, Poly)):b + I(x)'
    """
    if not ordered:
        return expr
    out, last, stack = [], 0, []
    tokens = list(_TOKEN.finditer(expr))
    for k, m in enumerate(tokens):
        tok = m.group(0)
        nxt = tokens[k + 1].group(0) if k + 1 < len(tokens) else ""
        after = expr[m.end():tokens[k + 1].start()] if k + 1 < len(tokens) else ""
        if tok in ("(", "["):
            prev = tokens[k - 1].group(0) if k else ""
            stack.append(tok == "[" or bool(re.fullmatch(r"[A-Za-z_.][\w.]*", prev))
                         and not expr[tokens[k - 1].end():m.start()].strip())
        elif tok in (")", "]"):
            if stack:
                stack.pop()
        elif tok.strip("`") in ordered and not any(stack) \
                and not (nxt == "(" and not after.strip()):
            out.append(expr[last:m.start()] + f"C({tok}, Poly)")
            last = m.end()
    return "".join(out) + expr[last:]


_POLY_NAME = re.compile(r"C\((`[^`]*`|[^,()]+), *Poly\)\[")
#: list literals handed to formulae as names (a name ↔ the literal as written)
_LISTS: dict[str, str] = {}
_LIST_NAME = re.compile(r"bayeslmm_list[0-9a-f]{12}")


def r_name(name: str) -> str:
    """A column name as the formula wrote it: a ``C(x, Poly)`` term as R prints it
    (``x[.L]``), list literals restored.

    >>> r_name("recipe[B]:C(temperature, Poly)[.L]")
    'recipe[B]:temperature[.L]'
    """
    name = _LIST_NAME.sub(lambda m: _LISTS.get(m.group(0), m.group(0)), name)
    return _POLY_NAME.sub(lambda m: m.group(1).strip("`") + "[", name)


def list_literals(expr: str) -> tuple[str, dict[str, list]]:
    """Replace each list literal (``levels=['b', 'a']``) by a name bound to the list
    (the name is fixed by the literal's text; :func:`r_name` restores the text).

    >>> text, names = list_literals("C(x, levels=['b', 'a'])")
    >>> list(names.values()), r_name(text)
    ([['b', 'a']], "C(x, levels=['b', 'a'])")
    """
    import ast
    import hashlib

    names: dict[str, list] = {}

    def repl(m: re.Match) -> str:
        try:
            value = ast.literal_eval(m.group(0))
        except (ValueError, SyntaxError) as exc:
            raise FormulaError(f"Cannot read the list {m.group(0)} in {expr!r}: write "
                               "quoted levels, e.g. levels=['low', 'high'].") from exc
        key = "bayeslmm_list" + hashlib.sha1(m.group(0).encode()).hexdigest()[:12]
        names[key] = list(value)
        _LISTS[key] = m.group(0)
        return key

    return re.sub(r"\[[^\[\]]*\]", repl, expr), names


def check_functions(called: Iterable[str], namespace: Mapping[str, Any], where: str) -> None:
    """Raise a FormulaError for a function a formula calls that is not known.

    >>> check_functions(["np.log", "C"], {"np": np}, "the fixed effects")
    >>> check_functions(["foo"], {"np": np}, "the fixed effects")
    Traceback (most recent call last):
    ...
    bayeslmm.errors.FormulaError: Unknown function 'foo' in the fixed effects. ...
    """
    known = sorted(set(TRANSFORMS) | set(ENCODINGS) | {k for k, v in namespace.items()
                                                       if callable(v)})
    for name in called:
        head, *rest = name.split(".")
        ok, hint = head in TRANSFORMS or head in ENCODINGS, suggest(name, known)
        if head in namespace:
            obj, parent = namespace[head], head
            for part in rest:
                hint = suggest(f"{parent}.{part}", [f"{parent}.{a}" for a in dir(obj)
                                                     if not a.startswith("_")])
                obj, parent = getattr(obj, part, None), f"{parent}.{part}"
            ok = callable(obj)
        if not ok:
            raise FormulaError(
                f"Unknown function {name!r} in {where}.{hint} A formula "
                f"may call: {', '.join(known)}, and NumPy's functions as np.<name> "
                "(random effects: (x | g), (x || g), zerocorr(x | g)).")
