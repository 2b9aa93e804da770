"""bayeslmm: Bayesian linear mixed-effects models.

lme4 formulas are compiled to PyMC models, sampled with NUTS into ArviZ
InferenceData, or fitted by exact ML/REML (``fit_map``).

Examples
--------
>>> import bayeslmm as blm
>>> m = blm.LMM("Reaction ~ Days + (Days | Subject)", blm.datasets.load("sleepstudy"))
>>> m.nobs, m.ngroups
(180, {'Subject': 18})
"""

import warnings as _warnings

_warnings.filterwarnings("ignore", message=".*ArviZ is undergoing a major refactor.*")

from . import datasets  # noqa: E402
from .errors import BayesLMMError, DataError, FitError, FormulaError  # noqa: E402
from .model import LMM  # noqa: E402
from .priors import Prior  # noqa: E402

__version__ = "0.1.0"
__all__ = [
    "LMM", "Prior", "datasets", "BayesLMMError", "DataError", "FitError", "FormulaError",
]
