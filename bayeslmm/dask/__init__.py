"""Data larger than memory, and many models, on dask (``pip install "bayeslmm[dask]"``).

``blm.LMM(formula, ddf)`` with a dask DataFrame builds an out-of-core design
(:mod:`bayeslmm.dask.frame`): the cross-products of all rows, summed over the
partitions; the fits then run on one node from them. :func:`grm` accumulates a genomic
relationship matrix from genotypes streamed in column chunks. Nothing here imports
dask until it is used.
"""

from .frame import is_dask_frame, summary_design
from .grm import grm

__all__ = ["summary_design", "is_dask_frame", "grm"]
