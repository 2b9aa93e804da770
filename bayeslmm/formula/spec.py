"""Formula → :class:`ModelSpec`: the lme4 syntax read into plain data, no data involved.

formulae merges ``(1 + x | g)`` with ``(1 | g) + (0 + x | g)`` and rejects ``||``,
so the random-effect bars are split here (as lme4's ``findbars`` does) and each part
is later handed to formulae on its own.

Examples
--------
>>> s = parse_formula("Reaction ~ Days + (Days | Subject)")
>>> s.response, s.fixed, [(b.expr, b.group, b.correlated) for b in s.bars]
('Reaction', 'Days', [('Days', 'Subject', True)])
>>> [b.group for b in parse_formula("y ~ 1 + (1 | a/b)").bars]
['a', 'a:b']
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..errors import FormulaError

__all__ = ["Bar", "ModelSpec", "parse_formula", "identifiers"]


@dataclass(frozen=True)
class Bar:
    """One random-effect bar ``(expr | group)``.

    Attributes
    ----------
    expr : str
        The left side of the bar as formulae reads it (``"1 + Days"``, ``"0 + x"``).
    group : str
        The grouping factor; an interaction of columns is written ``"a:b"``.
    correlated : bool
        False for ``||``: the terms get independent scales.
    """

    expr: str
    group: str
    correlated: bool = True

    @property
    def group_columns(self) -> tuple[str, ...]:
        """The data columns whose combinations define the groups."""
        return tuple(self.group.split(":"))

    def __str__(self) -> str:
        return f"({self.expr} {'|' if self.correlated else '||'} {self.group})"


@dataclass(frozen=True)
class ModelSpec:
    """A parsed mixed-model formula.

    Attributes
    ----------
    formula : str
        The formula as the user wrote it.
    response : str
        The left-hand side (a column name or a formulae expression).
    fixed : str
        The fixed-effects right-hand side, bars removed (``"1"`` if nothing is left).
    bars : tuple of Bar
        The random-effect bars, nested grouping ``a/b`` already expanded.
    """

    formula: str
    response: str
    fixed: str
    bars: tuple[Bar, ...] = field(default_factory=tuple)

    @property
    def groups(self) -> list[str]:
        """Distinct grouping factors in order of first appearance."""
        return list(dict.fromkeys(b.group for b in self.bars))


def _check_parens(text: str, formula: str) -> None:
    depth = 0
    for i, ch in enumerate(text):
        depth += ch == "("
        depth -= ch == ")"
        if depth < 0:
            raise FormulaError(
                f"Unbalanced parentheses in {formula!r}: ')' at position {i} closes nothing."
            )
    if depth:
        raise FormulaError(f"Unbalanced parentheses in {formula!r}: {depth} '(' never closed.")


def _top_level_parts(text: str) -> list[tuple[int, int]]:
    """Spans of the top-level parenthesised groups of ``text``."""
    spans, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            if depth == 0:
                start = i
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                spans.append((start, i + 1))
    return spans


def _split_bar(inner: str, formula: str) -> tuple[str, str, bool]:
    """Split ``expr | group`` (or ``||``) at its top-level bar."""
    depth = 0
    for i, ch in enumerate(inner):
        depth += ch == "("
        depth -= ch == ")"
        if ch == "|" and depth == 0:
            double = inner[i + 1 : i + 2] == "|"
            lhs, rhs = inner[:i], inner[i + (2 if double else 1) :]
            if "|" in rhs:
                raise FormulaError(f"Too many bars in '({inner})' of {formula!r}.")
            return lhs.strip(), rhs.strip(), not double
    raise FormulaError(f"No bar in '({inner})'.")  # pragma: no cover - callers check first


_NAME = r"(?:[A-Za-z_.][\w.]*|`[^`]+`)"
_GROUP_RE = re.compile(rf"^{_NAME}(\s*[:/]\s*{_NAME})*$")


def _expand_group(group: str, term: str, formula: str) -> list[str]:
    if not group:
        raise FormulaError(f"Random-effect term '{term}' in {formula!r} has no grouping factor.")
    if not _GROUP_RE.match(group):
        raise FormulaError(
            f"Cannot read grouping factor {group!r} in '{term}' of {formula!r}: write a column "
            "name (in backticks if it has spaces), an interaction 'a:b' or a nesting 'a/b'."
        )
    # the separators outside backticks; the parts are column names without their quotes
    seps = re.sub(r"`[^`]*`|[^:/]", "", group)
    if "/" in seps and ":" in seps:
        raise FormulaError(f"Mix of ':' and '/' in grouping factor {group!r}: write it out.")
    parts = [p.strip().strip("`") for p in re.findall(r"`[^`]+`|[^:/`]+", group)]
    for part in parts:
        if ":" in part or "/" in part:
            raise FormulaError(f"Grouping column {part!r} in '{term}' has ':' or '/' in its "
                               "name, which group names use for interactions and nesting: "
                               "rename the column.")
    if "/" in seps:  # a/b/c -> a, a:b, a:b:c
        return [":".join(parts[: k + 1]) for k in range(len(parts))]
    return [":".join(parts)]


def parse_formula(formula: str) -> ModelSpec:
    """Read an lme4-style formula into a :class:`ModelSpec`.

    Parameters
    ----------
    formula : str
        ``"response ~ fixed + (terms | group) + (terms || group) + (1 | a/b)"``.

    Returns
    -------
    ModelSpec

    Raises
    ------
    FormulaError
        On a missing ``~``, unbalanced parentheses, empty or malformed bars.

    Examples
    --------
    >>> parse_formula("y ~ x + (x || g)").bars[0].correlated
    False
    >>> parse_formula("y ~ x + zerocorr(1 + x | g)").bars[0]
    Bar(expr='1 + x', group='g', correlated=False)
    """
    if not isinstance(formula, str) or not formula.strip():
        raise FormulaError("The formula must be a non-empty string like 'y ~ x + (x | g)'.")
    _check_parens(formula, formula)
    if formula.count("~") != 1:
        raise FormulaError(
            f"The formula {formula!r} needs exactly one '~' between the response and the terms."
        )
    lhs, rhs = (s.strip() for s in formula.split("~"))
    if not lhs:
        raise FormulaError(f"The formula {formula!r} has no response on the left of '~'.")
    if not rhs:
        raise FormulaError(f"The formula {formula!r} has nothing on the right of '~'.")
    if "|" in lhs:
        raise FormulaError(f"A bar '|' cannot appear in the response of {formula!r}.")

    bars: list[Bar] = []
    fixed_pieces, last = [], 0
    for start, end in _top_level_parts(rhs):
        inner = rhs[start + 1 : end - 1]
        if not _has_top_bar(inner):
            continue
        call = _CALLED.search(rhs[:start])
        if call and call.group(1) != "zerocorr":
            raise FormulaError(
                f"Unknown function {call.group(1)!r} around the random-effect term "
                f"'({inner})' in {formula!r}: random effects are written (x | g), (x || g) "
                "for uncorrelated terms, or zerocorr(x | g) (MixedModels.jl's spelling of "
                "||); other structures of the random effects are not supported.")
        fixed_pieces.append(rhs[last:call.start() if call else start])
        last = end
        expr, group, correlated = _split_bar(inner, formula)
        correlated = correlated and call is None  # zerocorr(x | g) is (x || g)
        if not expr:
            raise FormulaError(
                f"Random-effect term '({inner})' in {formula!r} has nothing left of the bar; "
                "write '(1 | g)' for a random intercept."
            )
        for g in _expand_group(group, f"({inner})", formula):
            bars.append(Bar(expr=expr, group=g, correlated=correlated))
    fixed_pieces.append(rhs[last:])
    fixed = "".join(fixed_pieces)
    if "|" in fixed:
        raise FormulaError(
            f"A bar '|' in {formula!r} is outside parentheses: write random effects as '(x | g)'."
        )
    fixed = _tidy(fixed)
    return ModelSpec(formula=formula, response=lhs, fixed=fixed or "1", bars=tuple(bars))


_CALLED = re.compile(r"([A-Za-z_.][\w.]*)\s*$")


def _has_top_bar(inner: str) -> bool:
    depth = 0
    for ch in inner:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "|" and depth == 0:
            return True
    return False


def _tidy(fixed: str) -> str:
    """Remove the '+' signs left dangling where bars were cut out."""
    fixed = re.sub(r"\s+", " ", fixed).strip()
    prev = None
    while prev != fixed:
        prev = fixed
        fixed = re.sub(r"\+\s*\+", "+", fixed)
        fixed = re.sub(r"\+\s*-", "-", fixed)
        fixed = re.sub(r"^\+\s*", "", fixed).strip()
        fixed = re.sub(r"\s*\+$", "", fixed).strip()
    return fixed


_IDENT = re.compile(r"`([^`]+)`|([A-Za-z_.][\w.]*)(\s*\()?")


def identifiers(expr: str) -> list[tuple[str, bool]]:
    """Names in a formula expression, each with a flag: is it called as a function?

    >>> identifiers("np.log(x) + `my col` + C(g)")
    [('np.log', True), ('x', False), ('my col', False), ('C', True), ('g', False)]
    """
    out = []
    for m in _IDENT.finditer(expr):
        if m.group(1) is not None:
            out.append((m.group(1), False))
        else:
            out.append((m.group(2), m.group(3) is not None))
    return out
