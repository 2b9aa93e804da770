"""Saving and loading the results of models with a random matrix or a known covariance.

The ``bayeslmm`` group of the netCDF file holds what :mod:`bayeslmm.io` stores for any
result (formula, training rows, priors, how the fit ran) and, in addition, the random
matrix ``W`` (rows used × effects, in its own dtype: a float32 genotype matrix stays
float32) or the known covariance ``K`` with its level labels. Loading rebuilds the
design from them; its rotation is recomputed only when predictions or effects ask for
it. An ML/REML result is refitted on loading, as in :mod:`bayeslmm.io`.

Examples
--------
>>> import os, tempfile, bayeslmm as blm
>>> path = os.path.join(tempfile.mkdtemp(), "kpost.nc")
>>> kpost.save(path)  # kpost: see KernelPosteriorResult
>>> back = blm.load(path)
>>> bool(back.fixef.equals(kpost.fixef)), back.design.W.shape
(True, (40, 100))
"""

from __future__ import annotations

import dataclasses
import json
import warnings

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from .errors import BayesLMMError

__all__ = ["save_kernel", "load_kernel"]


def save_kernel(result, path) -> None:
    """Write a kernel posterior or ML/REML result (see the module doc)."""
    from .io import FORMAT, GROUP, _columns, _encode

    kd = result.design
    data = kd.fixed.data[_columns(kd.fixed, None)].copy()
    if kd.kind == "covariance" and kd.name not in data.columns:
        data[kd.name] = np.asarray(kd.effect_names, dtype=object)[kd.codes]
    ds, meta = _encode(data)
    ds.attrs = {"bayeslmm_format": FORMAT, "formula": kd.formula, "residual": "",
                "columns": json.dumps(meta), "term": kd.kind, "name": kd.name}
    if hasattr(result, "idata"):
        ds.attrs.update(kind="kernel-posterior", priors=json.dumps(result.priors),
                        info=json.dumps(result.info, default=str))
        idata = result.idata.copy()
    else:
        ds.attrs.update(kind="kernel-map", method=result.method,
                        estimates=json.dumps(result.to_dict()["fixef"]))
        idata = az.InferenceData()
    if kd.kind == "matrix":
        ds["__matrix__"] = (("row", "effect"), kd.W)
        ds = ds.assign_coords(effect=np.asarray(kd.effect_names, dtype=object))
    else:
        ds["__covariance__"] = (("level", "level_"), kd.K)
        ds = ds.assign_coords(level=np.asarray(kd.effect_names, dtype=object))
    idata.add_groups({GROUP: ds}, warn_on_custom_groups=False)
    idata.to_netcdf(str(path))


def load_kernel(idata: az.InferenceData, ds: xr.Dataset, path):
    """Rebuild a result written by :func:`save_kernel` (called by ``bayeslmm.load``)."""
    from .greml import greml
    from .io import GROUP, _decode
    from .kernel_design import build_kernel_design
    from .kernel_result import KernelMapResult, KernelPosteriorResult

    attrs = ds.attrs
    try:
        data = _decode(ds, json.loads(attrs["columns"]))
        name, term = attrs["name"], attrs["term"]
        if term == "matrix":
            entry = {"random_matrices": {name: ds["__matrix__"].values}}
        else:
            labels = [str(v) for v in ds["level"].values]
            entry = {"covariances": {name: pd.DataFrame(ds["__covariance__"].values,
                                                        index=labels, columns=labels)}}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            kd = build_kernel_design(attrs["formula"], data, **entry)
        if term == "matrix":  # the stored column names (an array gets generic ones)
            kd = dataclasses.replace(kd, effect_names=[str(v) for v in ds["effect"].values])
        if attrs["kind"] == "kernel-map":
            result = KernelMapResult(greml(kd.rotation, attrs["method"]), kd)
            _check_refit(result, json.loads(attrs["estimates"]), path)
            return result
        priors, info = json.loads(attrs["priors"]), json.loads(attrs["info"])
    except (KeyError, ValueError) as exc:
        raise BayesLMMError(f"{str(path)!r} has a damaged bayeslmm group: {exc}") from exc
    del idata[GROUP]
    return KernelPosteriorResult(idata, kd, priors, info)


def _check_refit(result, stored: dict, path) -> None:
    for key, value in stored.items():
        if not np.isclose(result.fixef[key], value, rtol=1e-6, atol=1e-9):
            warnings.warn(f"Refitting {str(path)!r} gave {key} = {result.fixef[key]!r}, the "
                          f"file holds {value!r} (a different bayeslmm version?).",
                          UserWarning, stacklevel=4)
