"""A dask DataFrame → an out-of-core design, in two passes over its partitions.

The first pass collects what the design needs globally (:mod:`bayeslmm.formula.chunk`:
the levels of every factor, the moments of stateful transforms such as ``scale(x)``,
the rows with missing values); the second builds each partition's design with those
fixed (:mod:`bayeslmm.formula.frozen`) and its cross-products and column moments. Both
are summed by a tree reduction, so no worker ever holds more than a few partitions, and
the driver receives only the sums: [Z X y]ᵀ[Z X y] is of the size of the random
effects, whatever the number of rows. Only the columns the formula uses are read.

The scheduler is dask's current one: the threads of this process, or the cluster of a
``dask.distributed.Client`` if one is active.

Examples
--------
>>> import dask.dataframe as dd, bayeslmm as blm
>>> ddf = dd.from_pandas(blm.datasets.load("sleepstudy"), npartitions=3)
>>> d = summary_design("Reaction ~ Days + (Days | Subject)", ddf)
>>> d.nobs, d.ngroups, d.chunk_rows
(180, {'Subject': 18}, (60, 60, 60))
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import BayesLMMError, DataError
from ..formula.chunk import ChunkPlan, summarise_chunk
from ..formula.frozen import FrozenDesign
from ..formula.spec import ModelSpec, parse_formula
from ..formula.summary import SummaryDesign, combine_moments
from ..linalg.crossprod import CrossProducts
from ..linalg.strata import StrataProducts

__all__ = ["summary_design", "model_design", "is_dask_frame", "require_dask", "tree_sum",
           "refuse_pointwise", "level_order", "INSTALL", "POINTWISE_OUT_OF_CORE"]

#: how to get dask, in every message that needs it
INSTALL = 'pip install "bayeslmm[dask]"'
#: why there is no pointwise log-likelihood (LOO, WAIC) out of core, and what to do
POINTWISE_OUT_OF_CORE = (
    "the pointwise log-likelihood needs every row for every draw (rows × draws values), "
    "and this model's rows are out of core. Compare models by fit_map's loglik, AIC or "
    "blm.anova (exact, from the cross-products), or fit a sample of the rows in memory "
    "(ddf.sample(frac=...).compute()) for PSIS-LOO.")


def require_dask():
    """The ``dask`` module, or a BayesLMMError saying how to install it."""
    try:
        import dask
        import dask.dataframe  # noqa: F401  (the extra's dataframe part)
    except ImportError as exc:  # the extra is optional
        raise BayesLMMError(f"Data in chunks need dask: {INSTALL}.") from exc
    return dask


def is_dask_frame(obj: Any) -> bool:
    """True for a dask DataFrame (without importing dask when it is not one).

    Examples
    --------
    >>> import pandas as pd
    >>> is_dask_frame(pd.DataFrame())
    False
    """
    return type(obj).__module__.split(".")[0] == "dask" and hasattr(obj, "map_partitions") \
        and hasattr(obj, "columns")


def _sum(items: list):
    """Pairwise sum of a short list (the leaves of the tree)."""
    while len(items) > 1:
        items = [items[i] + items[i + 1] if i + 1 < len(items) else items[i]
                 for i in range(0, len(items), 2)]
    return items[0]


def tree_sum(items: list, split_every: int = 8):
    """A delayed sum of delayed ``items``, ``split_every`` at a time (a tree)."""
    dask = require_dask()
    if not items:
        raise DataError("The data have no partitions.")
    while len(items) > 1:
        items = [dask.delayed(_sum)(items[i:i + split_every])
                 for i in range(0, len(items), split_every)]
    return items[0]


def _products(frozen: FrozenDesign, frame, strata: str | None = None,
              series: Callable | None = None) -> tuple:
    """One partition's cross-products, column moments and rows used (and the
    cross-products per stratum of column ``strata``, and ``series`` of its design)."""
    d = frozen.evaluate(frame)
    per = StrataProducts.of_design(d, d.data[strata].to_numpy()) if strata else None
    return _Part(CrossProducts.from_design(d), [d.moments()], (d.nobs,), per,
                 series(d) if series is not None else None)


def _both(a, b):
    """``a + b``, or the one that is not None."""
    return a + b if a is not None and b is not None else (a if b is None else b)


class _Part:
    """What the second pass adds up: cross-products, moments, rows per partition, the
    strata's cross-products, a residual structure's statistics (added in the
    partitions' order: a series split over partitions is joined)."""

    __slots__ = ("cp", "moments", "rows", "strata", "series")

    def __init__(self, cp, moments, rows, strata=None, series=None):
        self.cp, self.moments, self.rows, self.strata = cp, moments, rows, strata
        self.series = series

    def __add__(self, other: _Part) -> _Part:
        mom = [combine_moments(self.moments + other.moments)]
        return _Part(self.cp + other.cp, mom, self.rows + other.rows,
                     _both(self.strata, other.strata), _both(self.series, other.series))


def level_order(dtype, present: list) -> list:
    """nlme's order of a factor's levels ``present`` (a categorical's own order, else
    sorted), as the rows in memory would have it
    (:func:`bayeslmm.formula.design.factor_codes`).

    >>> import pandas as pd
    >>> level_order(pd.CategoricalDtype(["b", "a", "c"]), ["a", "b"])
    ['b', 'a']
    >>> level_order(pd.Series([1]).dtype, [3, 1])
    [1, 3]
    """
    import pandas as pd

    if isinstance(dtype, pd.CategoricalDtype) and getattr(dtype, "known", True):
        return [c for c in dtype.categories if c in set(present)]
    return list(pd.Categorical(present).categories)


def _strata_order(ddf, column: str, strata: StrataProducts) -> StrataProducts:
    """The strata in nlme's level order (:func:`level_order`)."""
    present = list(strata.keys)
    order = level_order(ddf.dtypes[column], present)
    return StrataProducts(tuple(order), tuple(strata.parts[present.index(k)]
                                              for k in order)).labelled(
        [str(k) for k in order])


def summary_design(spec: ModelSpec | str, ddf, *, extra_columns: tuple[str, ...] = (),
                   na_action: str = "drop", split_every: int = 8,
                   strata: str | None = None, series: Callable | None = None
                   ) -> SummaryDesign:
    """The out-of-core design of ``spec`` on dask DataFrame ``ddf`` (two passes).

    A :class:`~bayeslmm.formula.summary.SummaryDesign`; see the module doc.

    Parameters
    ----------
    spec : ModelSpec or str
    ddf : dask.dataframe.DataFrame
    extra_columns : tuple of str
        Columns a residual structure reads (their missing values drop rows too).
    na_action : {"drop", "raise"}
    split_every : int
        Partitions summed per task of the tree reduction.
    strata : str, optional
        A column whose levels' own cross-products are kept too (``VarIdent(by=...)``;
        it must be among ``extra_columns``).
    series : callable, optional
        Applied to each partition's design (in memory); its results, which add up in
        the partitions' order, are summed too (a correlation structure's statistics,
        :mod:`bayeslmm.residual.series`) and kept as the design's ``series``.

    Returns
    -------
    SummaryDesign

    Examples
    --------
    >>> import dask.dataframe as dd, bayeslmm as blm
    >>> df = blm.datasets.load("Pastes")
    >>> d = summary_design("strength ~ 1 + (1 | batch/cask)", dd.from_pandas(df, npartitions=3))
    >>> d.ngroups, d.cross_products.n
    ({'batch': 10, 'batch:cask': 30}, 60)
    """
    dask = require_dask()
    if isinstance(spec, str):
        spec = parse_formula(spec)
    if na_action not in ("drop", "raise"):
        raise DataError(f"na_action must be 'drop' or 'raise', got {na_action!r}.")
    plan = ChunkPlan.of(spec, ddf.dtypes, tuple(extra_columns))
    if spec.response in ddf.columns and not _numeric(ddf.dtypes[spec.response]):
        raise DataError(f"The response {spec.response!r} is not numeric (dtype "
                        f"{ddf.dtypes[spec.response]}); a Gaussian mixed model needs a numeric "
                        "response. Convert it, e.g. with dd.to_numeric.")
    parts = ddf[list(plan.used)].to_delayed()
    # one key each, not traversed: their lists of 10⁵ levels would be walked per task
    plan_key = dask.delayed(plan, traverse=False)
    first = [dask.delayed(summarise_chunk)(plan_key, p) for p in parts]
    (summary,) = dask.compute(tree_sum(first, split_every))
    fz = FrozenDesign.of(plan, summary)
    frozen = dask.delayed(fz, traverse=False)
    second = [dask.delayed(_products)(frozen, p, strata, series) for p in parts]
    (total,) = dask.compute(tree_sum(second, split_every))
    per = _strata_order(ddf, strata, total.strata) if strata else None
    return SummaryDesign.of(fz, total.cp, total.moments[0], chunk_rows=total.rows,
                            source=ddf, na_action=na_action, strata=per, series=total.series)


def refuse_pointwise(design, log_likelihood) -> None:
    """A BayesLMMError when the pointwise log-likelihood is asked of rows out of core.

    Examples
    --------
    >>> refuse_pointwise(type("D", (), {"in_memory": True})(), True)  # rows here: fine
    """
    if log_likelihood and not design.in_memory:
        raise BayesLMMError(f"log_likelihood=True: {POINTWISE_OUT_OF_CORE}")


def model_design(spec: ModelSpec, data, *, na_action: str = "drop", weights=None,
                 extra_columns: tuple[str, ...] = (), strata: str | None = None,
                 known_sigma: bool = False, series: Callable | None = None):
    """A model's design: from a pandas DataFrame (rows in memory) or, out of core, from
    a dask DataFrame (:func:`summary_design`, with the cross-products per level of
    ``strata`` for ``VarIdent`` alone, or ``series`` of each partition for a
    correlation structure).

    >>> import bayeslmm as blm
    >>> model_design(parse_formula("Yield ~ 1 + (1 | Batch)"),
    ...              blm.datasets.load("Dyestuff")).in_memory
    True
    """
    from ..formula.design import build_design

    if not is_dask_frame(data):
        return build_design(spec, data, na_action=na_action, extra_columns=extra_columns,
                            weights=weights, known_sigma=known_sigma)
    if weights is not None:
        raise BayesLMMError("Prior weights on a dask DataFrame are not supported yet: fit "
                            "without weights=, or a sample of the rows in memory.")
    return summary_design(spec, data, na_action=na_action, extra_columns=extra_columns,
                          strata=strata, series=series)


def _numeric(dtype) -> bool:
    import pandas as pd

    return pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
