"""Residual structures on rows out of core (a dask DataFrame): ``VarIdent`` alone works,
as its likelihood adds up per stratum (:mod:`bayeslmm.linalg.strata`); AR1, CAR1 with
few distinct gaps and CompSymm (alone or with VarIdent) on their statistics summed over
the partitions, series split over partitions joined (:mod:`bayeslmm.residual.series`);
the others need the rows at every evaluation, and are refused with what to do instead.

Examples
--------
>>> import bayeslmm as blm
>>> strata_column(blm.residual.Residual(variance=blm.VarIdent(by="Sex")))
'Sex'
>>> strata_column(blm.residual.Residual(correlation=blm.AR1(group="Subject"))) is None
True
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial

import numpy as np

from ..dask.frame import is_dask_frame, level_order, model_design
from ..errors import BayesLMMError, DataError
from .bind import ResidualDesign, bind
from .series import chunk_series, series_family
from .structures import Residual, VarExp, VarIdent, VarPower, as_residual, residual_columns

__all__ = ["strata_column", "out_of_core_refusal", "bind_strata", "bind_series",
           "design_and_residual"]


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
    alt = ("VarIdent(by=<a factor>), AR1, CAR1 with integer (or few distinct) time gaps, "
           "or CompSymm (their likelihoods add up over the partitions, so they work on a "
           "dask DataFrame)")
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
    _check_levels(by, what, levels, counts)
    return _rowless(residual, design.nobs, list(levels))


def _check_levels(by: str, what: str, levels: list, counts: list) -> None:
    if len(levels) < 2:
        raise DataError(f"Column {by!r} of {what} has a single level ({levels[0]!r}); "
                        "VarIdent needs at least two.")
    for lev, c in zip(levels, counts, strict=True):
        if c == 1:
            raise DataError(f"Level {lev!r} of column {by!r} in {what} has a single "
                            "observation: its residual sd cannot be estimated. Merge or "
                            "drop that level.")


def _rowless(residual: Residual, n: int, by_levels: list | None,
             max_size: int | None = None) -> ResidualDesign:
    """A structure bound to rows out of core: its levels and sizes, no arrays."""
    none = np.zeros(0, dtype=np.int64)
    return ResidualDesign(structure=residual, n=n, order=none, inverse=none,
                          group_codes=none, group_levels=["(all)"], start=none,
                          position=none, lag=np.zeros(0), time=np.zeros(0),
                          by_codes=none, by_levels=by_levels, max_size=max_size)


def bind_series(residual: Residual, design, ddf) -> tuple:
    """AR1, CAR1 or CompSymm (with VarIdent or not) bound to an out-of-core design whose
    ``series`` (:mod:`bayeslmm.residual.series`) were summed over the partitions: the
    design with its finished statistics and the structure (no rows).

    >>> import dask.dataframe as dd, bayeslmm as blm
    >>> df = blm.datasets.load("Orthodont")
    >>> m = blm.LMM("distance ~ age + (1 | Subject)", dd.from_pandas(df, npartitions=3),
    ...             residual=blm.CompSymm(group="Subject"))
    >>> m.residual.max_group_size, m.design.series.counts.tolist()
    (4, [27.0])
    """
    part = design.series
    v = residual.variance
    if isinstance(v, VarIdent):
        levels = level_order(ddf.dtypes[v.by], list(part.strata_rows))
        labels = [str(k) for k in levels]
        _check_levels(v.by, repr(v), labels, [part.strata_rows[k] for k in levels])
    else:
        levels, labels = [0], None
    names = design.frozen.fixef_names
    keep = [j for j, name in enumerate(names) if name in set(design.fixef_names)]
    keep = np.array(keep + [len(names)]) if design.dropped_fixef else None
    stats, largest = part.finish(levels, keep)
    return replace(design, series=stats), _rowless(residual, design.nobs, labels, largest)


def design_and_residual(spec, data, structure: Residual | None, *, na_action: str = "drop",
                        weights=None, known_sigma: bool = False) -> tuple:
    """A model's design and its residual structure bound to it: rows in memory (pandas),
    or out of core (dask), where ``VarIdent`` alone works on its strata's cross-products
    and AR1, CAR1 (few gaps) and CompSymm on their statistics.

    >>> import bayeslmm as blm
    >>> from bayeslmm.formula.spec import parse_formula
    >>> d, rd = design_and_residual(parse_formula("Yield ~ 1 + (1 | Batch)"),
    ...                             blm.datasets.load("Dyestuff"), None)
    >>> d.nobs, rd
    (30, None)
    """
    ooc = is_dask_frame(data)
    structure = as_residual(structure)
    family = series_family(structure) if ooc else None
    if ooc and structure is not None and strata_column(structure) is None and not family:
        raise out_of_core_refusal(structure)
    by = structure.variance.by if family and structure.variance is not None else None
    design = model_design(spec, data, na_action=na_action, weights=weights,
                          extra_columns=tuple(residual_columns(structure)),
                          strata=strata_column(structure) if ooc else None,
                          known_sigma=known_sigma,
                          series=partial(chunk_series, structure, by) if family else None)
    if structure is None:
        return design, None
    if family:
        return bind_series(structure, design, data)
    return design, bind_strata(structure, design) if ooc else bind(structure, design)
