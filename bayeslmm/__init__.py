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
# ruff: noqa: E402  (ArviZ's refactor notice is silenced before anything imports it)

import warnings as _warnings

_warnings.filterwarnings("ignore", message=".*ArviZ is undergoing a major refactor.*")

from . import datasets, plots
from .compare import compare
from .errors import BayesLMMError, DataError, FitError, FormulaError
from .io import load
from .model import LMM
from .priors import Prior
from .residual import AR1, CAR1, CompSymm, Residual, VarExp, VarIdent, VarPower

__version__ = "0.1.0"
__all__ = [
    "LMM", "Prior", "compare", "load", "datasets", "plots",
    "BayesLMMError", "DataError", "FitError", "FormulaError",
    "AR1", "CAR1", "CompSymm", "VarIdent", "VarPower", "VarExp", "Residual",
]
