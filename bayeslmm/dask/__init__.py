"""Data larger than memory, and many models, on dask (``pip install "bayeslmm[dask]"``).

``blm.LMM(formula, ddf)`` with a dask DataFrame builds an out-of-core design
(:func:`summary_design`): the cross-products of all rows, summed over the partitions;
``fit_map`` and ``fit`` then run on this machine from them, and predictions on dask data
stay lazy. :func:`grm` accumulates a genomic relationship matrix from genotypes
streamed in column chunks; :func:`bayeslmm.fit_many` fits many models as dask tasks.
Nothing here imports dask until it is used.

Examples
--------
>>> import dask.dataframe as dd, bayeslmm as blm
>>> ddf = dd.from_pandas(blm.datasets.load("sleepstudy"), npartitions=4)
>>> m = blm.LMM("Reaction ~ Days + (Days | Subject)", ddf)
>>> m.design.in_memory, m.fit_map().fixef.round(2).tolist()
(False, [251.41, 10.47])
"""

from .frame import is_dask_frame, summary_design
from .grm import grm

__all__ = ["summary_design", "is_dask_frame", "grm"]
