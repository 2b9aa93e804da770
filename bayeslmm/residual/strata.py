"""Residual structures on rows out of core (a dask DataFrame): ``VarIdent`` alone works,
as its likelihood adds up per stratum (:mod:`bayeslmm.linalg.strata`); the others need
the rows at every evaluation, and are refused with what to do instead.

Examples
--------
>>> import bayeslmm as blm
>>> strata_column(blm.residual.Residual(variance=blm.VarIdent(by="Sex")))
'Sex'
>>> strata_column(blm.residual.Residual(correlation=blm.AR1(group="Subject"))) is None
True
"""

from __future__ import annotations

import numpy as np

from ..dask.frame import is_dask_frame, model_design
from ..errors import BayesLMMError, DataError
from .bind import ResidualDesign, bind
from .structures import Residual, VarExp, VarIdent, VarPower, residual_columns

__all__ = ["strata_column", "out_of_core_refusal", "bind_strata", "design_and_residual"]


def strata_column(residual: Residual | None) -> str | None:
    """The factor of a structure that is ``VarIdent`` alone (no correlation): the one
    kind whose cross-products add up per stratum; else None.

    >>> strata_column(None) is None
    True
    """
    if residual is None or residual.correlation is not None:
        return None
    return residual.variance.by if isinstance(residual.variance, VarIdent) else None


def out_of_core_refusal(residual: Residual) -> BayesLMMError:
    """Why a structure cannot be fitted out of core, and what to do instead.

    >>> import bayeslmm as blm
    >>> err = out_of_core_refusal(blm.residual.Residual(variance=blm.VarPower("age")))
    >>> "VarIdent(by=<the covariate in bins>)" in str(err)
    True
    """
    alt = ("VarIdent(by=<a factor>) alone (its likelihood adds up per stratum, so it works "
           "on a dask DataFrame)")
    if isinstance(residual.variance, VarPower | VarExp):
        alt = ("VarIdent(by=<the covariate in bins>), e.g. a column of its deciles "
               "(one sd per bin: it adds up per stratum and works on a dask DataFrame)")
    return BayesLMMError(
        f"The residual structure {residual!r} needs a pass over the rows at every "
        "evaluation of the likelihood (its whitening depends on its parameters), and the "
        "rows of a dask DataFrame are out of core. Instead: " + alt + "; iid residuals; "
        "or this structure on a sample of the rows in memory "
        "(ddf.sample(frac=...).compute()).")


def bind_strata(residual: Residual, design) -> ResidualDesign:
    """``VarIdent`` bound to an out-of-core design: its levels (nlme's order) from the
    design's per-stratum cross-products, no rows; checked as :func:`bind` checks.

    >>> import dask.dataframe as dd, bayeslmm as blm
    >>> df = blm.datasets.load("Orthodont")
    >>> m = blm.LMM("distance ~ age + (1 | Subject)", dd.from_pandas(df, npartitions=2),
    ...             residual=blm.VarIdent(by="Sex"))
    >>> m.residual.by_levels, m.residual.n
    (['Male', 'Female'], 108)
    """
    by = strata_column(residual)
    strata = getattr(design, "strata", None)
    if by is None or strata is None:
        raise out_of_core_refusal(residual)
    levels, counts = strata.labels, strata.counts
    what = repr(residual.variance)
    if len(levels) < 2:
        raise DataError(f"Column {by!r} of {what} has a single level ({levels[0]!r}); "
                        "VarIdent needs at least two.")
    for lev, c in zip(levels, counts, strict=True):
        if c == 1:
            raise DataError(f"Level {lev!r} of column {by!r} in {what} has a single "
                            "observation: its residual sd cannot be estimated. Merge or "
                            "drop that level.")
    none = np.zeros(0, dtype=np.int64)
    return ResidualDesign(structure=residual, n=design.nobs, order=none, inverse=none,
                          group_codes=none, group_levels=["(all)"], start=none,
                          position=none, lag=np.zeros(0), time=np.zeros(0),
                          by_codes=none, by_levels=list(levels))


def design_and_residual(spec, data, structure: Residual | None, *, na_action: str = "drop",
                        weights=None, known_sigma: bool = False) -> tuple:
    """A model's design and its residual structure bound to it: rows in memory (pandas),
    or out of core (dask), where only ``VarIdent`` alone is accepted.

    >>> import bayeslmm as blm
    >>> from bayeslmm.formula.spec import parse_formula
    >>> d, rd = design_and_residual(parse_formula("Yield ~ 1 + (1 | Batch)"),
    ...                             blm.datasets.load("Dyestuff"), None)
    >>> d.nobs, rd
    (30, None)
    """
    ooc = is_dask_frame(data)
    if ooc and structure is not None and strata_column(structure) is None:
        raise out_of_core_refusal(structure)
    design = model_design(spec, data, na_action=na_action, weights=weights,
                          extra_columns=tuple(residual_columns(structure)),
                          strata=strata_column(structure) if ooc else None,
                          known_sigma=known_sigma)
    if structure is None:
        return design, None
    return design, bind_strata(structure, design) if ooc else bind(structure, design)
