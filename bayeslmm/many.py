"""``fit_many``: one model per response, or per group of a ``by`` column, scheduled as
tasks on dask; one row of results per model.

Many responses with the same right-hand side (one model per gene, per trait) share
their design: it is built once (formulae's evaluation is most of the cost of a small
fit), sent once to the workers, and each model only swaps its response in. A response
with missing values gets its own design (its rows differ). The groups of a ``by``
column are separate datasets of one formula: each task builds its groups' designs.
Models run in batches (a few per worker) on dask's scheduler: the cluster of a
``dask.distributed.Client`` (passed, or the one active), else local processes.

A model that fails (a response all missing, a singular design) gets its row with the
error; no model is dropped. Warnings (singular fits, convergence) are kept per model.

Examples
--------
>>> import numpy as np, pandas as pd, bayeslmm as blm
>>> df = blm.datasets.load("Dyestuff")
>>> df["Yield2"] = df["Yield"] * 2.0
>>> df["empty"] = np.nan
>>> res = blm.fit_many("~ 1 + (1 | Batch)", df, responses=["Yield", "Yield2", "empty"],
...                    method="ML", scheduler="synchronous")
>>> res["loglik"].round(2)
model
Yield    -163.66
Yield2   -184.46
empty        NaN
Name: loglik, dtype: float64
>>> res.loc["empty", "error"]
'DataError: No rows left after dropping rows with missing values.'
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from .dask.frame import require_dask
from .errors import DataError, FormulaError
from .formula.checks import check_response
from .formula.design import build_design
from .formula.spec import parse_formula
from .mle.fit import fit_map

__all__ = ["fit_many"]

_PLACEHOLDER = "bayeslmm_placeholder_response"


def _spec_for(formula: str, response: str | None):
    """The formula with ``response`` on its left (a formula without one takes it)."""
    rhs = formula.split("~", 1)[1] if "~" in formula else formula
    if response is None:
        if "~" not in formula or not formula.split("~", 1)[0].strip():
            raise FormulaError(f"The formula {formula!r} has no response: give responses=.")
        return parse_formula(formula)
    return parse_formula(f"{response} ~ {rhs}")


def _row(fit, nuts: bool) -> dict[str, Any]:
    """One model's numbers: estimates, their se (ML/REML) or posterior sd (NUTS)."""
    out: dict[str, Any] = {"nobs": fit.nobs}
    if nuts:
        summ = fit.summary()
        for name, r in summ.iterrows():
            out[name] = r["mean"]
            out[f"sd:{name}"] = r["sd"]
        out.update(rhat_max=float(summ["r_hat"].max()),
                   ess_bulk_min=float(summ["ess_bulk"].min()), divergences=fit.divergences)
        return out
    out.update(method=fit.method, converged=fit.converged, singular=fit.singular,
               loglik=fit.loglik, aic=fit.aic, bic=fit.bic, sigma=fit.sigma)
    se = fit.se
    for name, v in fit.fixef.items():
        out[f"beta[{name}]"] = v
        out[f"se:beta[{name}]"] = se[name]
    for _, r in fit.varcorr.iterrows():
        if r["grp"] == "Residual":
            continue
        key = (f"sd_{r['grp']}[{r['var1']}]" if not isinstance(r["var2"], str) or not r["var2"]
               else f"corr_{r['grp']}[{r['var1']}, {r['var2']}]")
        out[key] = r["sdcor"]
    return out


def _fit_one(design, method: str, nuts: dict | None, frame: pd.DataFrame, formula: str):
    if nuts is None:
        return fit_map(design, method)
    from .model import LMM

    return LMM(formula, frame).fit(progressbar=False, **nuts)


def _design_for(spec, frame: pd.DataFrame, base):
    """One response's design: the shared one with its y swapped in when the response is
    numeric and complete on the shared rows (checked as a design's response is), else
    its own (its rows differ, or it fails with the reason)."""
    col = frame[spec.response] if spec.response in frame.columns else None
    if base is not None and col is not None and frame.index.is_unique \
            and pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
        y = col.to_numpy(dtype=float)[frame.index.get_indexer(base.rows)]
        if np.isfinite(y).all():
            check_response(y, spec.response, base.terms, base.rows)
            return replace(base, spec=spec, response=spec.response, y=y,
                           data=base.data.assign(**{spec.response: y}))
    return build_design(spec, frame)


def _model(key, unit, response, shared) -> dict[str, Any]:
    """Fit one model and return its row (its error, if it fails)."""
    method, nuts = shared["method"], shared["nuts"]
    out: dict[str, Any] = {"model": key}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            spec = _spec_for(shared["formula"], response)
            frame, base = unit
            design = _design_for(spec, frame, base) if nuts is None else None
            nuts_opts = None if nuts is None else {**nuts, "random_seed": shared["seeds"][key]}
            fit = _fit_one(design, method, nuts_opts, frame, spec.formula)
            out.update(_row(fit, nuts is not None))
            out["error"] = None
        except Exception as exc:  # recorded, never dropped
            out["error"] = f"{type(exc).__name__}: {exc}"
    out["warnings"] = "; ".join(dict.fromkeys(str(w.message) for w in caught)) or None
    return out


def _batch(items: list, shared) -> list[dict[str, Any]]:
    units = shared.get("units")
    return [_model(key, units[u] if units is not None else u, resp, shared)
            for key, u, resp in items]


def _client(client):
    if client is not None:
        return client
    try:
        from distributed import default_client

        return default_client()
    except (ImportError, ValueError):
        return None


def fit_many(formula: str, data: pd.DataFrame, *, responses: Sequence[str] | None = None,
             by: str | None = None, method: str = "REML", nuts: bool = False,
             draws: int = 1000, tune: int = 1000, chains: int = 4,
             random_seed: int | None = None, client: Any = None,
             scheduler: str = "processes", batch_size: int | None = None) -> pd.DataFrame:
    """Fit one model per response and/or per group of ``by``; one row per model.

    Parameters
    ----------
    formula : str
        lme4 syntax. With ``responses`` the left side may be left out (``"~ x + (1 | g)"``);
        each response takes its place.
    data : DataFrame
    responses : sequence of str, optional
        Response columns: one model each, on the same right-hand side.
    by : str, optional
        A column: one model per level, on its rows (with ``responses``: one per pair).
    method : {"REML", "ML"}
        The exact fit (the default); ignored with ``nuts=True``.
    nuts : bool
        Sample each model's posterior with NUTS instead (``draws``, ``tune``,
        ``chains``; model i draws from stream i of ``random_seed``).
    client : dask.distributed.Client, optional
        The cluster to run on (default: the active client, if any).
    scheduler : str
        Without a client: dask's local scheduler (``"processes"``, ``"threads"``,
        ``"synchronous"``).
    batch_size : int, optional
        Models per task (default: about four tasks per worker).

    Returns
    -------
    DataFrame
        Indexed by ``model`` (the response, the ``by`` level, or both); columns
        ``nobs``, ``method``, ``converged``, ``singular``, ``loglik``, ``aic``, ``bic``,
        ``sigma``, ``beta[<term>]`` and ``se:beta[<term>]``, ``sd_<g>[<term>]``,
        ``corr_<g>[<a>, <b>]`` (with NUTS: posterior means by parameter, ``sd:<name>``,
        ``rhat_max``, ``ess_bulk_min``, ``divergences``), ``error`` (None when the fit
        ran) and ``warnings``.

    Examples
    --------
    >>> import bayeslmm as blm
    >>> df = blm.datasets.load("sleepstudy")
    >>> df["half"] = (df["Days"] >= 5).map({True: "late", False: "early"})
    >>> res = blm.fit_many("Reaction ~ Days + (1 | Subject)", df, by="half",
    ...                    scheduler="synchronous")
    >>> res["beta[Days]"].round(2)
    model
    early     8.25
    late     10.91
    Name: beta[Days], dtype: float64
    """
    dask = require_dask()
    if not isinstance(data, pd.DataFrame):
        raise DataError(f"data must be a pandas DataFrame, got {type(data).__name__}.")
    if responses is not None and (isinstance(responses, str) or not len(responses)):
        raise DataError("responses must be a non-empty list of column names.")
    resp_list = list(responses) if responses is not None else [None]
    if by is not None and by not in data.columns:
        raise DataError(f"Unknown by column {by!r}; the data have {list(data.columns)}.")
    units: dict = {}
    items: list = []
    if by is None:
        base = None
        if responses is not None:  # one design for every response (where it is complete)
            spec = _spec_for(formula, _PLACEHOLDER)  # any response that passes the checks
            frame = data.assign(**{_PLACEHOLDER: np.arange(len(data), dtype=float)})
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    base = build_design(spec, frame)
            except Exception:  # each model then reports its own error
                base = None
        units[0] = (data, base)
        items = [(r if r is not None else "model", 0, r) for r in resp_list]
    else:
        for level, sub in data.groupby(by, sort=True, observed=True):
            units[level] = (sub, None)
            for r in resp_list:
                items.append(((level if r is None or responses is None else (r, level)),
                              level, r))
    keys = [k for k, _, _ in items]
    seeds = {k: int(s.generate_state(1)[0])
             for k, s in zip(keys, np.random.SeedSequence(random_seed).spawn(len(keys)),
                             strict=True)}
    shared = {"formula": formula, "method": method, "seeds": seeds,
              "nuts": dict(draws=draws, tune=tune, chains=chains) if nuts else None}
    client = _client(client)
    workers = (len(client.scheduler_info().get("workers", {})) if client is not None
               else os.cpu_count() or 1)
    size = batch_size or max(1, math.ceil(len(items) / (4 * max(workers, 1))))
    if by is None:  # the shared unit (its design) goes once to each worker
        shared["units"] = units
        batches = [items[i:i + size] for i in range(0, len(items), size)]
    else:  # a batch carries its own groups' rows
        batches = [[(k, units[u], r) for k, u, r in items[i:i + size]]
                   for i in range(0, len(items), size)]
    if client is not None:
        handle = client.scatter(shared, broadcast=True)
        rows = client.gather(client.map(_batch, batches, shared=handle, pure=False))
    else:
        handle = dask.delayed(shared, traverse=False)
        rows = dask.compute(*[dask.delayed(_batch)(b, handle) for b in batches],
                            scheduler=scheduler)
    table = pd.DataFrame([r for batch in rows for r in batch])
    index = pd.MultiIndex.from_tuples(keys, names=["response", by]) \
        if keys and isinstance(keys[0], tuple) else pd.Index(keys, name="model")
    table.index = index
    return table.drop(columns="model")
