"""Writing results to netCDF (through ArviZ): the ``bayeslmm`` group and its data codec.

Every file holds the result's InferenceData groups (none for an ML/REML fit) and a
``bayeslmm`` group: the formula, the residual structure, the training rows the model
used (so that loading rebuilds the same design), and per kind:

==================  ==========================================================
``posterior``       priors and how the fit ran
``map``             method, θ, the residual parameters u (and the covariate of a
                    variance function of the fitted values), the log-likelihood and
                    the search's report: loading evaluates the solution there
``kernel-*``        the random matrix (in its dtype) or the covariance with its
                    labels; for ``kernel-map`` h² and the log-likelihood
==================  ==========================================================

Files are written whole or not at all (to a temporary file, then renamed). Reading
them is :func:`bayeslmm.load` (:mod:`bayeslmm.io`).

Examples
--------
>>> import pandas as pd
>>> df = pd.DataFrame({"g": pd.Categorical(["b", "a"], categories=["b", "a"]), "x": [1.5, 2]})
>>> ds, meta = encode_frame(df)
>>> back = decode_frame(ds, meta)
>>> back.equals(df), list(back["g"].cat.categories)
(True, ['b', 'a'])
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from ..errors import BayesLMMError
from ..formula.spec import identifiers
from ..formula.weights import WEIGHTS_COLUMN
from ..residual.structures import residual_columns
from .predict import STREAM_VALUES

__all__ = ["save", "encode_frame", "decode_frame", "data_columns", "GROUP", "FORMAT"]

#: Name of the netCDF group that holds what bayeslmm needs to rebuild a result.
GROUP = "bayeslmm"
#: File format version (a newer file is refused by an older bayeslmm).
FORMAT = 1


def data_columns(design, residual) -> list[str]:
    """The data columns a design (and residual structure) reads: predictors, the
    response's columns and the structure's."""
    resp = [n for n, called in identifiers(design.spec.response)
            if not called and n in design.data.columns]
    return list(dict.fromkeys(design.predictors + resp + residual_columns(residual)))


def encode_frame(df: pd.DataFrame) -> tuple[xr.Dataset, dict]:
    """A DataFrame as netCDF-friendly variables (dim ``row``) and the metadata to decode
    them (categories with their order, the index)."""
    data, meta = {}, {}
    for c in df.columns:
        s = df[c]
        if isinstance(s.dtype, pd.CategoricalDtype):
            data[c] = ("row", s.cat.codes.to_numpy().astype(np.int32))
            meta[c] = {"kind": "category", "categories": [str(v) for v in s.cat.categories],
                       "ordered": bool(s.cat.ordered),
                       "numeric": bool(pd.api.types.is_numeric_dtype(s.cat.categories))}
        elif pd.api.types.is_numeric_dtype(s):
            data[c] = ("row", s.to_numpy())
            meta[c] = {"kind": "numeric"}
        else:
            data[c] = ("row", s.astype(str).to_numpy().astype(object))
            meta[c] = {"kind": "string"}
    index = df.index.to_numpy()
    meta["__index__"] = {"kind": "numeric" if np.issubdtype(index.dtype, np.number)
                         else "string"}
    data["__index__"] = ("row", index if meta["__index__"]["kind"] == "numeric"
                         else index.astype(str).astype(object))
    return xr.Dataset(data), meta


def decode_frame(ds: xr.Dataset, meta: dict) -> pd.DataFrame:
    """The inverse of :func:`encode_frame`."""
    cols = {}
    for c, m in meta.items():
        if c == "__index__":
            continue
        v = ds[c].values
        if m["kind"] == "category":
            cats = m["categories"]
            if m.get("numeric"):
                cats = pd.to_numeric(pd.Series(cats)).tolist()
            cols[c] = pd.Categorical.from_codes(v, categories=cats, ordered=m["ordered"])
        else:
            cols[c] = v
    return pd.DataFrame(cols, index=pd.Index(ds["__index__"].values))


def _group(data: pd.DataFrame, formula: str, kind: str, residual, **attrs) -> xr.Dataset:
    ds, meta = encode_frame(data)
    ds.attrs = {"bayeslmm_format": FORMAT, "kind": kind, "formula": formula,
                "residual": "" if residual is None else str(residual),
                "columns": json.dumps(meta), **attrs}
    return ds


def _formula_group(result, kind: str) -> xr.Dataset:
    design = result._design
    if design is None:
        raise BayesLMMError("This result holds no design to save; refit it with fit_map.")
    data = design.data[data_columns(design, result.residual)].copy()
    for c in data.columns:  # the design holds every factor as ordered: the user's flags
        if isinstance(data[c].dtype, pd.CategoricalDtype):
            cat = data[c].cat
            data[c] = cat.as_ordered() if c in design.ordered else cat.as_unordered()
    weights = {}
    if design.weights is not None:  # lme4's prior weights: their column, or "(weights)"
        col = design.weights_column or WEIGHTS_COLUMN
        data = data.assign(**{col: design.weights})
        weights = {"weights": col}
    if kind == "posterior":
        return _group(data, design.spec.formula, kind, result.residual,
                      priors=json.dumps(result.priors),
                      info=json.dumps(result.info, default=str), **weights)
    opt = result.optimizer
    ds = _group(data, design.spec.formula, kind, result.residual, method=result.method,
                **weights,
                estimates=json.dumps(result.to_dict()["fixef"]),
                theta=json.dumps([float(v) for v in result.theta]),
                u=json.dumps(opt.get("u", [])), loglik=float(result.loglik),
                converged=int(result.converged), nfev=int(opt["nfev"]),
                message=str(opt["message"]),
                **({"fixed_sigma": float(result.sigma)} if result.sigma_fixed else {}))
    if result._covariate is not None:
        ds["__covariate__"] = ("row", np.asarray(result._covariate, dtype=float))
    return ds


def _kernel_group(result, kind: str) -> xr.Dataset:
    kd = result.design
    data = kd.fixed.data[data_columns(kd.fixed, None)].copy()
    if kd.kind == "covariance" and kd.name not in data.columns:
        data[kd.name] = np.asarray(kd.effect_names, dtype=object)[kd.codes]
    if kind == "kernel-posterior":
        attrs = {"priors": json.dumps(result.priors),
                 "info": json.dumps(result.info, default=str)}
    else:
        attrs = {"method": result.method, "estimates": json.dumps(result.to_dict()["fixef"]),
                 "h2": float(result.h2), "loglik": float(result.loglik),
                 "converged": int(result.converged)}
    ds = _group(data, kd.formula, kind, None, term=kd.kind, name=kd.name, **attrs)
    if kd.kind == "matrix":
        ds["__matrix__"] = (("row", "effect"), kd.W)
        return ds.assign_coords(effect=np.asarray(kd.effect_names, dtype=object))
    ds["__covariance__"] = (("level", "level_"), kd.K)
    return ds.assign_coords(level=np.asarray(kd.effect_names, dtype=object))


def _in_pieces(post: xr.Dataset, values: int = STREAM_VALUES) -> xr.Dataset:
    """Draws larger than ``values`` (lazy b draws, ``b_draws="lazy"``) as dask chunks of
    whole draws, so that they are read and written a piece at a time (with dask)."""
    big = {k: max(1, values // (v.size // (v.sizes["chain"] * v.sizes["draw"])))
           for k, v in post.data_vars.items() if v.size > values and "draw" in v.dims}
    if not big:
        return post
    try:
        import dask.array  # noqa: F401
    except ImportError:  # the base install writes them whole
        return post
    return post.assign({k: post[k].chunk({"chain": 1, "draw": step})
                        for k, step in big.items()})


def save(result, path) -> None:
    """Write a result (any kind) to a netCDF file, whole or not at all.

    Raises
    ------
    BayesLMMError
        When the file cannot be written (the message names the path and the reason).
    """
    kind = result._FILE_KIND
    group = _kernel_group(result, kind) if kind.startswith("kernel") else \
        _formula_group(result, kind)
    idata = result.idata.copy() if kind.endswith("posterior") else az.InferenceData()
    if "posterior" in idata.groups():
        idata.posterior = _in_pieces(idata.posterior)
    idata.add_groups({GROUP: group}, warn_on_custom_groups=False)
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        idata.to_netcdf(str(tmp))
        os.replace(tmp, path)  # atomic: an interrupted save leaves no half-written file
    except OSError as exc:
        raise BayesLMMError(f"Cannot write {str(path)!r}: {exc.strerror or exc}. Check that "
                            "the folder exists and is writable.") from exc
    finally:
        if tmp.exists():
            tmp.unlink()
