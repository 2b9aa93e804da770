"""The variance functions of :mod:`~bayeslmm.residual.variances` (and VarComb's parts)
bound to rows, and their log sd weights, parameters and search bounds.

Each part of a variance function (a VarComb has several; every other one is its own
single part) is bound to the sorted rows as a :class:`BoundVar`; ``log δ`` is the sum
of the parts' log sd weights. Keys of ``params``: ``varident_ratio``, ``power``,
``expon``, ``const`` with VarComb's prefixes (``A.``, ``B.`` …).

Examples
--------
>>> import numpy as np, pandas as pd
>>> from bayeslmm.residual.variances import VarComb, VarFixed
>>> df = pd.DataFrame({"v": [1.0, 4.0], "w": [1.0, 2.0]})
>>> bound = bind_varfuncs(VarComb(VarFixed("v"), blm.VarPower("w")), df, [0, 1], np.arange(2))
>>> param_names(bound), np.round(log_sd(bound, {"B.power": 1.0}, np.arange(2), np), 4)
(['B.power'], array([0.    , 1.3863]))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..errors import BayesLMMError, DataError
from ..formula.design import factor_codes
from .checks import column, numeric, rows_text
from .structures import VarExp, VarIdent, VarPower
from .variances import NEW_VARIANCES, VarComb, VarConstPower, VarFixed, parts_of

__all__ = ["BoundVar", "bind_varfuncs", "is_varfunc", "log_sd", "param_names", "to_params",
           "initial_unconstrained", "u_bounds", "nlme_names", "check_params", "fitted_parts",
           "align_levels"]

def is_varfunc(variance: Any) -> bool:
    """Whether a variance function is one of this module's.

    >>> is_varfunc(VarFixed("v")), is_varfunc(VarIdent("g"))
    (True, False)
    """
    return isinstance(variance, NEW_VARIANCES)


@dataclass(frozen=True)
class BoundVar:
    """One part of a variance function bound to the sorted rows.

    Attributes
    ----------
    structure : the part
    prefix : str
        ``""``, or ``"A."``, ``"B."`` … within a VarComb.
    covariate : ndarray or None
        Sorted covariate (None: the fitted values, or VarIdent).
    by_codes : ndarray of int or None
        VarIdent: level of each sorted row, 0 the reference.
    by_levels : list of str or None
    """

    structure: Any
    prefix: str
    covariate: np.ndarray | None = None
    by_codes: np.ndarray | None = None
    by_levels: list[str] | None = None

    @property
    def names(self) -> list[str]:
        """This part's keys of ``params``."""
        s = self.structure
        base = {VarIdent: ["varident_ratio"], VarPower: ["power"], VarExp: ["expon"],
                VarConstPower: ["const", "power"], VarFixed: []}[type(s)]
        return [self.prefix + b for b in base]

    @property
    def fitted(self) -> bool:
        """True when the part reads the fitted values."""
        return not isinstance(self.structure, VarIdent) and self.structure.covariate == "fitted"


def _bind_part(p, prefix: str, data: pd.DataFrame, labels: Sequence, order: np.ndarray,
               fitting: bool) -> BoundVar:
    what = repr(p)
    if isinstance(p, VarIdent):
        codes, levels = factor_codes(data, (column(data, p.by, what).name,))
        counts = np.bincount(codes, minlength=len(levels))
        if fitting and len(levels) < 2:
            raise DataError(f"Column {p.by!r} of {what} has a single level ({levels[0]!r}); "
                            "VarIdent needs at least two.")
        if fitting and np.any(counts == 1):
            k = int(np.flatnonzero(counts == 1)[0])
            raise DataError(f"Level {levels[k]!r} of column {p.by!r} in {what} has a single "
                            f"observation (row {rows_text(labels, codes == k)}): its residual "
                            "sd cannot be estimated. Merge or drop that level.")
        return BoundVar(p, prefix, by_codes=codes[order], by_levels=levels)
    if p.covariate == "fitted":
        return BoundVar(p, prefix)
    x = numeric(data, p.covariate, what, labels)
    if isinstance(p, VarFixed) and np.any(x <= 0):
        raise DataError(f"Column {p.covariate!r} of {what} holds variances and must be "
                        f"positive; it is not in rows {rows_text(labels, x <= 0)}.")
    if isinstance(p, (VarPower, VarConstPower)) and np.any(x == 0) and isinstance(p, VarPower):
        raise DataError(f"Column {p.covariate!r} of {what} is 0 in rows "
                        f"{rows_text(labels, x == 0)}: |v|^power is 0 or infinite there.")
    if fitting and not isinstance(p, VarFixed) and np.ptp(x) == 0:
        raise DataError(f"Column {p.covariate!r} of {what} is constant, so its parameter is "
                        "confounded with sigma.")
    return BoundVar(p, prefix, covariate=x[order])


def bind_varfuncs(variance, data: pd.DataFrame, labels: Sequence, order: np.ndarray,
                  fitting: bool = True) -> tuple[BoundVar, ...]:
    """Bind each part of a variance function to the rows (sorted by ``order``).

    Raises
    ------
    DataError
        Unknown or non-numeric columns, non-positive VarFixed variances, a VarIdent
        level with one row, a constant covariate.
    """
    parts = parts_of(variance)
    prefixes = [f"{chr(ord('A') + k)}." for k in range(len(parts))] \
        if isinstance(variance, VarComb) else [""]
    return tuple(_bind_part(p, pre, data, labels, order, fitting)
                 for p, pre in zip(parts, prefixes, strict=True))


def fitted_parts(bound: Sequence[BoundVar]) -> bool:
    """Whether any part reads the fitted values."""
    return any(b.fitted for b in bound)


def param_names(bound: Sequence[BoundVar]) -> list[str]:
    """All parts' keys of ``params``, in order."""
    return [n for b in bound for n in b.names]


def log_sd(bound: Sequence[BoundVar], params: Mapping[str, Any], order: np.ndarray, xp):
    """``log δ`` per sorted row: the sum of the parts' log sd weights."""
    out = 0.0
    for b in bound:
        s, pre = b.structure, b.prefix
        if isinstance(s, VarIdent):
            log_r = xp.log(params[pre + "varident_ratio"])
            out = out + xp.concatenate([xp.zeros(1), log_r])[b.by_codes]
            continue
        v = b.covariate if b.covariate is not None else params["fitted"][order]
        if isinstance(s, VarFixed):
            out = out + 0.5 * np.log(v)
        elif isinstance(s, VarPower):
            out = out + params[pre + "power"] * xp.log(xp.abs(v))
        elif isinstance(s, VarExp):
            out = out + params[pre + "expon"] * v
        else:
            out = out + xp.log(params[pre + "const"] + xp.abs(v) ** params[pre + "power"])
    return out + xp.zeros(len(order))


def _sizes(b: BoundVar) -> list[int]:
    if isinstance(b.structure, VarIdent):
        return [len(b.by_levels) - 1]
    return [1] * len(b.names)


def to_params(bound: Sequence[BoundVar], u) -> dict[str, Any]:
    """Unconstrained ``u`` → ``params``: VarIdent ratios and ``const`` as ``e^u``
    (nlme's), ``power`` and ``expon`` as they are."""
    u = np.asarray(u, dtype=float)
    out: dict[str, Any] = {}
    i = 0
    for b in bound:
        for name, k in zip(b.names, _sizes(b), strict=True):
            if name.endswith("varident_ratio"):
                out[name] = np.exp(u[i:i + k])
            else:
                out[name] = float(np.exp(u[i]) if name.endswith("const") else u[i])
            i += k
    return out


def initial_unconstrained(bound: Sequence[BoundVar]) -> np.ndarray:
    """nlme's start: ratios 1, ``const = 1``, ``power = expon = 0``."""
    return np.zeros(sum(sum(_sizes(b)) for b in bound))


def u_bounds(bound: Sequence[BoundVar]) -> list[tuple[float | None, float | None]]:
    """Search bounds: ratios and ``const`` within e^±25; powers free."""
    out: list[tuple[float | None, float | None]] = []
    for b in bound:
        for name, k in zip(b.names, _sizes(b), strict=True):
            free = name.endswith(("power", "expon"))
            out += [(None, None) if free else (-25.0, 25.0)] * k
    return out


def nlme_names(bound: Sequence[BoundVar], values: Mapping[str, Any]) -> dict[str, float]:
    """nlme's names: one entry per VarIdent level (the reference at 1), ``const``,
    ``power``, ``expon``, with the VarComb prefixes."""
    out: dict[str, float] = {}
    for b in bound:
        for name in b.names:
            if name.endswith("varident_ratio"):
                r = np.atleast_1d(np.asarray(values[name], dtype=float))
                out.update(zip([b.prefix + lv for lv in b.by_levels], [1.0, *map(float, r)],
                               strict=True))
            else:
                out[name] = float(np.asarray(values[name]))
    return out


def check_params(bound: Sequence[BoundVar], params: Mapping[str, Any]) -> None:
    """NumPy parameters inside their domain (else a BayesLMMError)."""
    for b in bound:
        for name in b.names:
            if name.endswith("varident_ratio"):
                r = np.asarray(params[name], dtype=float)
                if r.shape != (len(b.by_levels) - 1,) or np.any(r <= 0):
                    raise BayesLMMError(f"{name} must be {len(b.by_levels) - 1} positive "
                                        f"ratios (levels {b.by_levels[1:]}), got {r}.")
            elif name.endswith("const") and not float(params[name]) > 0:
                raise BayesLMMError(f"{name} must be positive, got {params[name]}.")


def align_levels(bound: Sequence[BoundVar], train: Sequence[BoundVar]) -> tuple[BoundVar, ...]:
    """Parts bound to new rows, with VarIdent codes in the training rows' levels (the
    ratios are the training ones); unseen levels raise a DataError."""
    out = []
    for b, t in zip(bound, train, strict=True):
        if isinstance(b.structure, VarIdent):
            unseen = [lv for lv in b.by_levels if lv not in t.by_levels]
            if unseen:
                raise DataError(f"Level(s) {unseen} of {b.structure.by!r} were not in the "
                                "training data: their residual sd ratio is unknown.")
            remap = np.array([t.by_levels.index(lv) for lv in b.by_levels], dtype=np.int64)
            b = BoundVar(b.structure, b.prefix, by_codes=remap[b.by_codes],
                         by_levels=list(t.by_levels))
        out.append(b)
    return tuple(out)
