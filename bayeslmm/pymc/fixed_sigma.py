"""σ fixed at a known value in the PyMC models (``LMM(..., sigma=...)``; nlme's
``lmeControl(sigma = ...)``): σ is data, not a parameter, and has no prior.

PyMC's do-operator (:func:`pymc.do`) replaces the variable ``sigma`` of a built model by
a constant (and ``sigma_ref``, VarPower's and VarExp's sampled scale, which then no longer
enters the likelihood). After sampling, ``sigma`` is put back into the posterior as that
constant in every draw, so what reads ``posterior["sigma"]`` (the exact draws of b,
predictions, log-likelihoods) is unchanged.

Examples
--------
>>> import bayeslmm as blm
>>> m = blm.LMM("distance ~ age + (1 | Subject)", blm.datasets.load("Orthodont"))
>>> [v.name for v in fix_sigma(m.build("marginal"), 1.5).free_RVs]
['beta_z', 'sd_Subject']
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import xarray as xr

__all__ = ["fix_sigma", "with_fixed_sigma"]


def fix_sigma(model: pm.Model, sigma: float) -> pm.Model:
    """A copy of ``model`` with ``sigma`` the constant ``sigma`` (:func:`pymc.do`).

    >>> import bayeslmm as blm
    >>> m = blm.LMM("Yield ~ 1 + (1 | Batch)", blm.datasets.load("Dyestuff"))
    >>> float(fix_sigma(m.build("conditional"), 50.0)["sigma"].get_value())
    50.0
    """
    values = {"sigma": float(sigma)}
    if "sigma_ref" in model.named_vars:  # VarPower/VarExp: σ's sampled scale, now unused
        values["sigma_ref"] = 1.0
    return pm.do(model, values)


def with_fixed_sigma(posterior: xr.Dataset, sigma: float) -> xr.Dataset:
    """The posterior with ``sigma`` the constant in every draw.

    >>> ds = xr.Dataset({"beta": (("chain", "draw"), np.zeros((2, 3)))})
    >>> with_fixed_sigma(ds, 1.0)["sigma"].values.tolist()
    [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]
    """
    shape = (posterior.sizes["chain"], posterior.sizes["draw"])
    return posterior.assign(sigma=(("chain", "draw"), np.full(shape, float(sigma))))
