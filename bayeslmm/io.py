"""Saving and loading fitted results (netCDF through ArviZ).

The file holds the InferenceData groups plus a ``bayeslmm`` group with the formula,
the priors, how the fit was run, and the training rows the model used, so that a
reloaded result rebuilds the same design and predicts exactly as before.

Examples
--------
>>> import tempfile, os, bayeslmm as blm
>>> path = os.path.join(tempfile.mkdtemp(), "fit.nc")
>>> post.save(path)  # post: the sleepstudy posterior of the PosteriorResult examples
>>> back = blm.load(path)
>>> bool((back.fixef == post.fixef).all()), back.formula
(True, 'Reaction ~ Days + (Days | Subject)')
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from .design import build_design
from .errors import BayesLMMError
from .residual import parse_residual, residual_columns
from .residual_design import bind
from .spec import identifiers

__all__ = ["save", "load"]

GROUP = "bayeslmm"
FORMAT = 1


def _columns(design, residual) -> list[str]:
    resp = [n for n, called in identifiers(design.spec.response)
            if not called and n in design.data.columns]
    return list(dict.fromkeys(design.predictors + resp + residual_columns(residual)))


def _encode(df: pd.DataFrame) -> tuple[xr.Dataset, dict]:
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


def _decode(ds: xr.Dataset, meta: dict) -> pd.DataFrame:
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


def _group(design, structure, kind: str, **attrs) -> xr.Dataset:
    ds, meta = _encode(design.data[_columns(design, structure)])
    ds.attrs = {"bayeslmm_format": FORMAT, "kind": kind, "formula": design.spec.formula,
                "residual": "" if structure is None else str(structure),
                "columns": json.dumps(meta), **attrs}
    return ds


def save(result, path) -> None:
    """Write a posterior or ML/REML result to a netCDF file.

    A posterior result keeps its InferenceData; an ML/REML result keeps its data and
    specification and is refitted on loading (a deterministic fit of milliseconds to
    seconds), its stored estimates checked against the refit.
    """
    if hasattr(result, "idata"):
        design = result._design
        ds = _group(design, result.residual, "posterior", priors=json.dumps(result.priors),
                    info=json.dumps(result.info, default=str))
        idata = result.idata.copy()
    else:
        design = result._design
        if design is None:
            raise BayesLMMError("This result holds no design to save; refit it with fit_map.")
        ds = _group(design, result.residual, "map", method=result.method,
                    estimates=json.dumps(result.to_dict()["fixef"]))
        idata = az.InferenceData()
    idata.add_groups({GROUP: ds}, warn_on_custom_groups=False)
    idata.to_netcdf(str(path))


def load(path):
    """Read a result written by ``result.save(path)``.

    Raises
    ------
    BayesLMMError
        If the file is missing, not netCDF, or not written by bayeslmm.

    Examples
    --------
    An ML/REML result is refitted from the data and specification it stored:

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "reml.nc")
    >>> mapfit.save(path)  # mapfit: the REML fit of the MapResult examples
    >>> back = blm.load(path)
    >>> back.method, back.fixef.round(2).tolist()
    ('REML', [251.41, 10.47])
    """
    from .results import PosteriorResult

    path = Path(path)
    if not path.exists():
        raise BayesLMMError(f"No such file {str(path)!r}.")
    try:
        idata = az.from_netcdf(str(path))
    except Exception as exc:  # h5py/netCDF raise many kinds for a non-netCDF file
        raise BayesLMMError(f"{str(path)!r} is not a netCDF file written by bayeslmm "
                            f"({type(exc).__name__}: {exc}).") from exc
    if GROUP not in idata.groups() or "formula" not in idata[GROUP].attrs:
        raise BayesLMMError(f"{str(path)!r} is a netCDF file but not a bayeslmm result "
                            "(no 'bayeslmm' group): was it written by result.save()?")
    ds = idata[GROUP]
    attrs = ds.attrs
    if int(attrs.get("bayeslmm_format", 0)) > FORMAT:
        raise BayesLMMError(f"{str(path)!r} was written by a newer bayeslmm; upgrade to read it.")
    if attrs.get("kind") == "map":
        return _load_map(ds, path)
    if str(attrs.get("kind", "")).startswith("kernel"):
        from .kernel_io import load_kernel

        return load_kernel(idata, ds, path)
    try:
        data = _decode(ds, json.loads(attrs["columns"]))
        structure = parse_residual(attrs["residual"]) if attrs.get("residual") else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            design = build_design(attrs["formula"], data,
                                  extra_columns=residual_columns(structure))
        rd = None if structure is None else bind(structure, design)
        priors, info = json.loads(attrs["priors"]), json.loads(attrs["info"])
    except (KeyError, ValueError) as exc:
        raise BayesLMMError(f"{str(path)!r} has a damaged bayeslmm group: {exc}") from exc
    if "observed_data" in idata.groups() and idata.observed_data["y"].size != design.nobs:
        raise BayesLMMError(f"{str(path)!r}: stored data do not match the stored posterior.")
    del idata[GROUP]
    return PosteriorResult(idata, design, priors, info, residual=rd)


def _load_map(ds: xr.Dataset, path) -> object:
    """Refit an ML/REML result from its stored data and check the estimates."""
    from .model import LMM

    attrs = ds.attrs
    try:
        data = _decode(ds, json.loads(attrs["columns"]))
        structure = parse_residual(attrs["residual"]) if attrs.get("residual") else None
        stored = json.loads(attrs["estimates"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            result = LMM(attrs["formula"], data, residual=structure).fit_map(attrs["method"])
    except (KeyError, ValueError) as exc:
        raise BayesLMMError(f"{str(path)!r} has a damaged bayeslmm group: {exc}") from exc
    refit = result.fixef
    for name, value in stored.items():
        if not np.isclose(refit[name], value, rtol=1e-6, atol=1e-9):
            warnings.warn(f"Refitting {str(path)!r} gave {name} = {refit[name]!r}, the file "
                          f"holds {value!r} (a different bayeslmm version?).", UserWarning,
                          stacklevel=3)
    return result
