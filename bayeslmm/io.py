"""Loading saved results: ``bayeslmm.load(path)`` for every kind ``result.save`` writes.

The file format is :mod:`bayeslmm.results.codec`'s. Loading rebuilds the design from the
stored training rows; a posterior keeps its stored draws; an ML/REML fit is rebuilt at
its stored parameters (θ and the residual parameters, or h²) without searching again,
and its stored log-likelihood is checked (:mod:`bayeslmm.mle.restore`). Files written
before parameters were stored are refitted, their estimates compared.

Examples
--------
>>> import tempfile, os, bayeslmm as blm
>>> path = os.path.join(tempfile.mkdtemp(), "fit.nc")
>>> mapfit.save(path)  # mapfit: the REML fit of the MapResult examples
>>> back = blm.load(path)
>>> back.method, bool(back.fixef.equals(mapfit.fixef)), back.formula
('REML', True, 'Reaction ~ Days + (Days | Subject)')
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from .errors import BayesLMMError, user_stacklevel
from .formula.design import build_design
from .formula.kernel_design import build_kernel_design
from .mle.fit import fit_map
from .mle.greml import greml, greml_at
from .mle.restore import restore_map
from .residual.bind import bind
from .residual.structures import parse_residual, residual_columns
from .results.codec import FORMAT, GROUP, decode_frame
from .results.kernel_map import KernelMapResult
from .results.kernel_posterior import KernelPosteriorResult
from .results.posterior import PosteriorResult

__all__ = ["load"]


def load(path):
    """Read a result written by ``result.save(path)``.

    Raises
    ------
    BayesLMMError
        If the file is missing, not netCDF, not written by bayeslmm, or damaged.

    Examples
    --------
    A posterior keeps its draws:

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "post.nc")
    >>> post.save(path)  # post: the posterior of the PosteriorResult examples
    >>> back = blm.load(path)
    >>> bool(back.fixef.equals(post.fixef)), back.idata.posterior.sizes["draw"]
    (True, 500)
    """
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
    kind = str(attrs.get("kind", ""))
    try:
        data = decode_frame(ds, json.loads(attrs["columns"]))
        if kind.startswith("kernel"):
            return _kernel(kind, idata, ds, data, path)
        return _formula(kind, idata, ds, data, path)
    except (KeyError, ValueError) as exc:
        raise BayesLMMError(f"{str(path)!r} has a damaged bayeslmm group: {exc}") from exc


def _formula(kind: str, idata: az.InferenceData, ds: xr.Dataset, data: pd.DataFrame, path):
    attrs = ds.attrs
    structure = parse_residual(attrs["residual"]) if attrs.get("residual") else None
    sigma = float(attrs["fixed_sigma"]) if "fixed_sigma" in attrs else \
        (json.loads(attrs["info"]).get("sigma_fixed") if "info" in attrs else None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the warnings of the original fit
        design = build_design(attrs["formula"], data, extra_columns=residual_columns(structure),
                              weights=attrs.get("weights") or None,
                              known_sigma=sigma is not None)
    rd = None if structure is None else bind(structure, design)
    if kind == "map":
        if "theta" not in attrs:  # written before parameters were stored: refit
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                result = fit_map(design, attrs["method"], residual=rd, sigma=sigma)
            _check_refit(result, json.loads(attrs["estimates"]), path)
            return result
        cov = ds["__covariate__"].values if "__covariate__" in ds else None
        return restore_map(design, attrs["method"], json.loads(attrs["theta"]), residual=rd,
                           u=json.loads(attrs["u"]), covariate=cov, sigma=sigma,
                           loglik=float(attrs["loglik"]), converged=bool(attrs["converged"]),
                           nfev=int(attrs["nfev"]), message=str(attrs["message"]))
    if "observed_data" in idata.groups() and idata.observed_data["y"].size != design.nobs:
        raise BayesLMMError(f"{str(path)!r}: stored data do not match the stored posterior.")
    del idata[GROUP]
    return PosteriorResult(idata, design, json.loads(attrs["priors"]),
                           json.loads(attrs["info"]), residual=rd)


def _kernel(kind: str, idata: az.InferenceData, ds: xr.Dataset, data: pd.DataFrame, path):
    attrs = ds.attrs
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
    if kind == "kernel-map":
        if "h2" not in attrs:  # written before h² was stored: refit
            result = KernelMapResult(greml(kd.rotation, attrs["method"]), kd)
            _check_refit(result, json.loads(attrs["estimates"]), path)
            return result
        fit = greml_at(kd.rotation, attrs["method"], float(attrs["h2"]),
                       converged=bool(attrs["converged"]))
        if not np.isclose(fit.loglik, float(attrs["loglik"]), rtol=1e-8, atol=1e-8):
            raise BayesLMMError(f"{str(path)!r} does not reproduce: log-likelihood "
                                f"{fit.loglik!r} at the stored h², the file holds "
                                f"{attrs['loglik']!r}.")
        return KernelMapResult(fit, kd)
    del idata[GROUP]
    return KernelPosteriorResult(idata, kd, json.loads(attrs["priors"]),
                                 json.loads(attrs["info"]))


def _check_refit(result, stored: dict, path) -> None:
    refit = result.fixef
    for key, value in stored.items():
        if not np.isclose(refit[key], value, rtol=1e-6, atol=1e-9):
            warnings.warn(f"Refitting {str(path)!r} gave {key} = {refit[key]!r}, the file "
                          f"holds {value!r} (a different bayeslmm version?).", UserWarning,
                          stacklevel=user_stacklevel())
