"""Fit results: immutable views with lme4's accessors, printed forms and ``save``.

=============================  ==========================================================
:class:`PosteriorResult`       NUTS draws of a formula model (``LMM.fit``)
:class:`MapResult`             ML/REML estimates of a formula model (``LMM.fit_map``)
:class:`KernelPosteriorResult`  NUTS draws of a model with a random matrix or a known
                               covariance
:class:`KernelMapResult`       its ML/REML (GREML) estimates
:class:`Profile`               the likelihood profile of a ``MapResult`` (``.profile()``)
:class:`BootstrapResult`       its parametric bootstrap (``.bootstrap()``)
=============================  ==========================================================

All give ``fixef``, ``ranef``, ``varcorr``, ``sigma``, ``summary()``, ``predict()``,
``to_dict()`` and ``save()``. The kernel results add ``sd`` (σ_b), ``h2`` and
``draw_effects()`` (exact draws of the matrix's coefficients or the levels' effects).

Examples
--------
>>> import numpy as np, pandas as pd, bayeslmm as blm
>>> rng = np.random.default_rng(0)
>>> W = rng.normal(size=(40, 100))
>>> df = pd.DataFrame({"y": W @ rng.normal(scale=0.1, size=100) + rng.normal(size=40)})
>>> fit = blm.LMM("y ~ 1", df, random_matrices={"snps": W}).fit_map()
>>> type(fit).__name__, fit.varcorr["grp"].tolist(), fit.draw_effects(5, random_seed=1).shape
('KernelMapResult', ['snps', 'Residual'], (5, 100))
"""

from .bootstrap import BootstrapResult
from .kernel_map import KernelMapResult
from .kernel_posterior import KernelPosteriorResult
from .map import MapResult
from .posterior import PosteriorResult
from .profile import Profile

__all__ = ["PosteriorResult", "MapResult", "KernelPosteriorResult", "KernelMapResult",
           "Profile", "BootstrapResult"]
