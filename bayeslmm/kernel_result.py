"""Results of a high-dimensional LMM (a wide random matrix or a known covariance).

GREML estimates (:class:`KernelMapResult`, defined in :mod:`bayeslmm.kernel_map_result`)
and NUTS draws (:class:`KernelPosteriorResult`, in :mod:`bayeslmm.kernel_posterior_result`);
what they share is in :mod:`bayeslmm.kernel_result_base`.

Both give ``fixef``, ``sigma``, ``sd`` (σ_b), ``varcorr``, ``h2``, ``ranef`` (BLUPs:
``E[ω | y]`` per column of the matrix, or ``E[b | y]`` per level of K, levels without
data included), ``summary()``, ``to_dict()``, ``predict()`` (genomic prediction: the
fixed part plus ``E[W_new ω | y]`` for new rows of the matrix, or ``E[b_level | y]``)
and ``draw_effects()`` (exact draws of ω or b given y; not stored by default, as p may
be large).

Examples
--------
>>> import numpy as np, pandas as pd, bayeslmm as blm
>>> rng = np.random.default_rng(0)
>>> W = rng.normal(size=(40, 100))
>>> df = pd.DataFrame({"y": W @ rng.normal(scale=0.1, size=100) + rng.normal(size=40)})
>>> fit = blm.LMM("y ~ 1", df, random_matrices={"snps": W}).fit_map()
>>> fit.varcorr["grp"].tolist(), fit.draw_effects(5, random_seed=1).shape
(['snps', 'Residual'], (5, 100))
>>> fit.predict(new_X=W[:3]).shape
(3,)
"""

from .kernel_map_result import KernelMapResult
from .kernel_posterior_result import KernelPosteriorResult

__all__ = ["KernelMapResult", "KernelPosteriorResult"]
