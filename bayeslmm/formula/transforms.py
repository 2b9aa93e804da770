"""formulae's stateful transforms whose state is a mean and an sd (``center``,
``scale``, ``standardize``), set from exact moments.

formulae computes a transform's state from the data it first sees (``np.mean`` and
``np.std`` of the argument). A design is then the same whether its rows come at once
or in chunks only if that state is computed the same way in both: from the argument's
:class:`~bayeslmm.linalg.moments.Moments` (exact sums, rounded once). The transforms
that need every row at once (spline knots at quantiles, orthogonal polynomials) are
found here too, to be refused where the rows come in chunks.

Examples
--------
>>> import bayeslmm as blm
>>> from bayeslmm.formula.design import NAMESPACE
>>> calls = stateful_calls(("scale(Days)",))
>>> x = argument(calls["scale(Days)"], blm.datasets.load("sleepstudy"), NAMESPACE)
>>> x.shape, Moments.of(x).mean
((180,), 4.5)
"""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache

import numpy as np
import pandas as pd

from ..errors import FormulaError
from ..linalg.moments import Moments

__all__ = ["stateful_calls", "argument", "set_transforms", "exact_transforms",
           "MOMENT_TRANSFORMS"]

#: formulae's stateful transforms whose state is a mean and an sd: exact over chunks
MOMENT_TRANSFORMS = ("center", "scale", "standardize")
#: those whose state needs every row at once (quantile knots, orthogonal bases)
_WHOLE_DATA = ("bs", "cc", "cr", "tp", "poly")


def _walk_calls(obj, out: list) -> None:
    """Every formulae LazyCall in a term or lazy expression, outermost first."""
    call = getattr(obj, "call", None)
    if call is not None and hasattr(call, "callee"):
        obj = call
    if hasattr(obj, "callee"):
        out.append(obj)
        for a in [*obj.args, *obj.kwargs.values()]:
            _walk_calls(a, out)
    for c in getattr(obj, "components", []):
        _walk_calls(c, out)


@lru_cache(maxsize=64)
def stateful_calls(exprs: tuple[str, ...], strict: bool = True) -> dict[str, object]:
    """formulae's stateful calls in right-hand sides ``exprs``, by their text: those of
    :data:`MOMENT_TRANSFORMS` (their lazy objects). With ``strict``, any other stateful
    transform (one that needs all rows at once) or a nested one raises a FormulaError;
    without, they are left to formulae.

    >>> list(stateful_calls(("x + scale(np.log(z))", "1 + center(x)")))
    ['scale(np.log(z))', 'center(x)']
    """
    from formulae import model_description

    from .contrasts import list_literals

    found: dict[str, object] = {}
    for expr in exprs:
        try:  # list literals named as formula_matrices names them
            terms = model_description(list_literals(expr)[0]).terms
        except Exception as exc:  # formulae's parser names the problem
            if not strict:  # formulae itself reports it when it evaluates the formula
                continue
            raise FormulaError(f"Cannot read {expr!r}: {exc}") from exc
        for term in terms:
            calls: list = []
            _walk_calls(term, calls)
            for k, call in enumerate(calls):
                name = str(call.callee)
                if name in _WHOLE_DATA and strict:
                    raise FormulaError(
                        f"{call} needs every row at once (knots at quantiles, an orthogonal "
                        "basis), which data in chunks cannot give exactly. Compute its "
                        "columns yourself with fixed knots (e.g. ddf.map_partitions) and use "
                        "them in the formula, or fit in memory.")
                if name not in MOMENT_TRANSFORMS:
                    continue
                inner = [str(c.callee) for c in calls[k + 1:]]
                if any(c in MOMENT_TRANSFORMS or c in _WHOLE_DATA for c in inner):
                    if not strict:
                        continue
                    raise FormulaError(f"Nested stateful transforms ({call}) are not supported "
                                       "on data in chunks; transform the column first.")
                found[str(call)] = call
    return found


def argument(call, frame: pd.DataFrame, namespace: dict) -> np.ndarray:
    """The values of a stateful call's argument on ``frame`` (formulae's evaluation,
    with the names of ``namespace``)."""
    from formulae.categorical import ENCODINGS
    from formulae.environment import Environment
    from formulae.transforms import TRANSFORMS

    env = Environment([{**TRANSFORMS, **ENCODINGS}]).with_outer_namespace(namespace)
    try:
        return np.asarray(call.args[0].eval(frame, env), dtype=float).reshape(-1)
    except Exception as exc:
        raise FormulaError(f"Cannot evaluate the argument of {call}: {exc}") from exc


def set_transforms(evaluators: dict, moments: dict[str, Moments]) -> None:
    """Give every stateful transform in formulae's fitted matrices (``evaluators``: a
    design's, ``"fixed"`` and a list per factor) the moments of its argument."""
    mats = [evaluators["fixed"]] + [m for k, v in evaluators.items() if k != "fixed"
                                     for m in v]
    for mat in mats:
        if mat is None:
            continue
        for term in mat.terms.values():
            for comp in getattr(term, "components", []):
                call = getattr(comp, "call", None)
                state = getattr(call, "stateful_transform", None)
                key = str(call) if call is not None else None
                if state is None or key not in moments:
                    continue
                mom = moments[key]
                state.mean = mom.mean
                if hasattr(state, "std"):
                    state.std = mom.sd(ddof=0)  # formulae's scale divides by np.std
                state.params_set = True


def exact_transforms(spec, clean: pd.DataFrame, evaluators: dict, X: np.ndarray, terms,
                     namespace: dict):
    """X and the terms' Z with ``center()``/``scale()`` evaluated from the exact moments
    of their argument (as on data in chunks), not formulae's np.mean/np.std; unchanged
    when the formula has none.

    >>> import bayeslmm as blm
    >>> from bayeslmm.formula.design import build_design
    >>> d = build_design("Reaction ~ scale(Days) + (1 | Subject)",
    ...                  blm.datasets.load("sleepstudy"))
    >>> round(float(d.X[:, 1].std()), 12)
    1.0
    """
    calls = stateful_calls(tuple([spec.fixed] + [b.expr for b in spec.bars]), strict=False)
    if not calls:
        return X, terms
    set_transforms(evaluators, {k: Moments.of(argument(c, clean, namespace))
                                for k, c in calls.items()})
    if evaluators["fixed"] is not None:
        X = np.asarray(evaluators["fixed"].evaluate_new_data(clean).design_matrix, dtype=float)
    terms = [replace(t, Z=np.column_stack([
        np.asarray(ev.evaluate_new_data(clean).design_matrix, dtype=float)
        for ev in evaluators[t.group]])) for t in terms]
    return X, terms
