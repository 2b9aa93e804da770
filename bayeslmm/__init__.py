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
# ruff: noqa: E402, I001  (ArviZ is imported first, its refactor notice held back)

import warnings as _warnings

with _warnings.catch_warnings():  # the user's own filters are left as they were
    _warnings.filterwarnings("ignore", message=".*ArviZ is undergoing a major refactor.*")
    import arviz as _arviz  # noqa: F401

from . import datasets, plots
from .anova import anova
from .compare import compare
from .errors import BayesLMMError, DataError, FitError, FormulaError
from .io import load
from .kernel_model import KernelModel
from .many import fit_many
from .model import LMM
from .pymc.priors import Prior
from .residual import (
    AR1, CAR1, CompSymm, CorARMA, CorExp, CorGaus, CorLin, CorRatio, CorSpher, CorSymm,
    Residual, VarComb, VarConstPower, VarExp, VarFixed, VarIdent, VarPower,
)
from .results import (
    BootstrapResult,
    KernelMapResult,
    KernelPosteriorResult,
    MapResult,
    PosteriorResult,
    Profile,
)

__version__ = "0.1.0"
__all__ = [
    "LMM", "KernelModel", "Prior", "compare", "anova", "load", "datasets", "plots", "fit_many",
    "PosteriorResult", "MapResult", "KernelMapResult", "KernelPosteriorResult",
    "Profile", "BootstrapResult",
    "BayesLMMError", "DataError", "FitError", "FormulaError",
    "AR1", "CAR1", "CompSymm", "VarIdent", "VarPower", "VarExp", "Residual",
    "CorSymm", "CorARMA", "CorExp", "CorGaus", "CorSpher", "CorRatio", "CorLin",
    "VarConstPower", "VarFixed", "VarComb",
]
