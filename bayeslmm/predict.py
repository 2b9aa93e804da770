"""Posterior predictions: draws of the mean or of new responses, on training or new data.

Semantics (for every grouping factor):

- ``include_random=True``: rows of a level seen in training use its posterior
  draws of ``b``; rows of an unseen level follow ``new_levels``:
  ``"sample"`` draws the level's effects from ``N(0, Ψ)`` once per posterior draw
  (shared by all rows of that level), ``"population"`` sets them to 0, ``"error"``
  raises a :class:`~bayeslmm.errors.DataError` naming the levels;
- ``include_random=False``: population-level predictions ``Xβ``;
- ``kind="response"`` adds residual noise ``N(0, σ²)`` to each draw.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from .design import Design
from .errors import BayesLMMError, DataError
from .newdata import NewRows, NewTerm

__all__ = ["posterior_draws", "check_options", "training_rows"]

_KINDS = ("mean", "response")
_NEW_LEVELS = ("sample", "population", "error")


def check_options(kind: str, new_levels: str) -> None:
    """Validate the prediction options, naming the valid values."""
    if kind not in _KINDS:
        raise BayesLMMError(f"kind must be one of {_KINDS}, got {kind!r}.")
    if new_levels not in _NEW_LEVELS:
        raise BayesLMMError(f"new_levels must be one of {_NEW_LEVELS}, got {new_levels!r}.")


def training_rows(design: Design) -> NewRows:
    """The training data as :class:`NewRows` (every level seen)."""
    terms = [NewTerm(t.group, t.codes, t.Z, [], np.full(design.nobs, -1)) for t in design.terms]
    return NewRows(X=design.X, terms=terms, index=design.rows)


def _cov_factor(post: xr.Dataset, group: str, q: int) -> np.ndarray:
    """Per-draw Cholesky factor of Ψ, shape (chain, draw, q, q)."""
    sd = post[f"sd_{group}"].values
    if f"corr_{group}" in post:
        corr = post[f"corr_{group}"].values + 1e-12 * np.eye(q)
        return sd[..., :, None] * np.linalg.cholesky(corr)
    return sd[..., :, None] * np.eye(q)


def posterior_draws(
    design: Design,
    post: xr.Dataset,
    rows: NewRows,
    *,
    kind: str = "mean",
    include_random: bool = True,
    new_levels: str = "sample",
    random_seed: int | np.random.Generator | None = None,
) -> xr.DataArray:
    """Draws of predictions, dims ``(chain, draw, obs)``; see the module doc."""
    check_options(kind, new_levels)
    rng = np.random.default_rng(random_seed)
    mu = np.einsum("np,cdp->cdn", rows.X, post["beta"].values)
    shape = mu.shape[:2]
    if include_random:
        for t, nt in zip(design.terms, rows.terms, strict=True):
            seen = nt.codes >= 0
            if nt.new_levels and new_levels == "error":
                raise DataError(
                    f"New level(s) {nt.new_levels} of grouping factor {t.group!r} were not "
                    "in the training data; pass new_levels='sample' to draw their effects "
                    "from the fitted distribution or 'population' to set them to 0."
                )
            b = post[f"b_{t.group}"].values
            contrib = np.zeros(mu.shape)
            contrib[..., seen] = np.einsum("nq,cdnq->cdn", nt.Z[seen],
                                           b[:, :, nt.codes[seen], :])
            if nt.new_levels and new_levels == "sample":
                L = _cov_factor(post, t.group, t.q)
                z = rng.standard_normal((*shape, len(nt.new_levels), t.q))
                b_new = np.einsum("cdij,cdlj->cdli", L, z)
                new = ~seen
                contrib[..., new] = np.einsum("nq,cdnq->cdn", nt.Z[new],
                                              b_new[:, :, nt.new_codes[new], :])
            mu = mu + contrib
    if kind == "response":
        mu = mu + post["sigma"].values[..., None] * rng.standard_normal(mu.shape)
    return xr.DataArray(
        mu, dims=("chain", "draw", "obs"), name="mu" if kind == "mean" else "y",
        coords={"chain": post["chain"].values, "draw": post["draw"].values,
                "obs": np.asarray(rows.index)},
    )
