"""Posterior predictions: draws of the mean or of new responses, on training or new data.

Semantics (for every grouping factor):

- ``include_random=True``: rows of a level seen in training use its posterior
  draws of ``b``; rows of an unseen level follow ``new_levels``:
  ``"sample"`` draws the level's effects from ``N(0, Ψ)`` once per posterior draw
  (shared by all rows of that level), ``"population"`` sets them to 0, ``"error"``
  raises a :class:`~bayeslmm.errors.DataError` naming the levels;
- ``include_random=False``: population-level predictions ``Xβ``;
- ``kind="response"`` adds residual noise to each draw: ``N(0, σ²)`` for iid
  residuals, ``N(0, σ²Λ)`` with the draw's residual parameters for a residual
  structure (correlated within its groups, as fitted).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..errors import BayesLMMError, DataError
from ..formula.design import Design
from ..formula.newdata import NewRows, NewTerm, evaluate_new_data

__all__ = ["posterior_draws", "check_options", "training_rows", "point_predictions",
           "psi_factor", "draw_params", "predict_frame", "residual_frame",
           "lazy_posterior_draws", "STREAM_VALUES"]

#: draws larger than this many values (b drawn on demand) are read in pieces of it
STREAM_VALUES = 10_000_000

_KINDS = ("mean", "response")
_NEW_LEVELS = ("sample", "population", "error")


def psi_factor(post: xr.Dataset, group: str, q: int) -> np.ndarray:
    """Per-draw factor L with LLᵀ = Ψ, shape (chain, draw, q, q)."""
    sd = post[f"sd_{group}"].values
    if f"corr_{group}" in post:
        corr = post[f"corr_{group}"].values + 1e-12 * np.eye(q)
        return sd[..., :, None] * np.linalg.cholesky(corr)
    return sd[..., :, None] * np.eye(q)


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


def _varident(rd, train_levels: list[str], ratios: np.ndarray) -> tuple[np.ndarray, float]:
    """Ratios for the levels of ``rd`` (its own reference first) from training ratios."""
    table = dict(zip(train_levels, [1.0, *np.atleast_1d(ratios)], strict=True))
    unseen = [lev for lev in rd.by_levels if lev not in table]
    if unseen:
        raise DataError(f"Level(s) {unseen} of {rd.variance.by!r} were not in the training "
                        "data: their residual sd ratio is unknown.")
    r = np.array([table[lev] for lev in rd.by_levels])
    return r[1:] / r[0], r[0]


def draw_params(rd, post: xr.Dataset, c: int, d: int, mu: np.ndarray) -> dict:
    """One posterior draw's residual parameters (``fitted`` = that draw's mean when the
    variance function reads the fitted values)."""
    params = {k: post[k].values[c, d] for k in rd.param_names}
    if rd.fitted_covariate:
        params["fitted"] = mu[c, d]
    return params


def _structured_noise(rd, train_levels, post: xr.Dataset, mu: np.ndarray, rng) -> np.ndarray:
    """Draws of σ·Λ^{1/2}z per posterior draw (rows in ``rd``'s data order)."""
    from ..residual.algebra import unwhiten

    out = np.empty_like(mu)
    sigma = post["sigma"].values
    for c in range(mu.shape[0]):
        for d in range(mu.shape[1]):
            params = draw_params(rd, post, c, d, mu)
            scale = 1.0
            if "varident_ratio" in params:
                params["varident_ratio"], scale = _varident(rd, train_levels,
                                                            params["varident_ratio"])
            z = rng.standard_normal(rd.n)
            out[c, d] = sigma[c, d] * scale * unwhiten(rd, z, params)
    return out


def posterior_draws(
    design: Design,
    post: xr.Dataset,
    rows: NewRows,
    *,
    kind: str = "mean",
    include_random: bool = True,
    new_levels: str = "sample",
    random_seed: int | np.random.Generator | None = None,
    residual=None,
    train_residual=None,
    weights: np.ndarray | None = None,
) -> xr.DataArray:
    """Draws of predictions, dims ``(chain, draw, obs)``; see the module doc.

    ``residual`` is the residual structure bound to the predicted rows and
    ``train_residual`` the one bound to the training rows (for VarIdent's levels);
    ``weights`` the prior weights of the predicted rows (noise sd σ/√w).
    """
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
                L = psi_factor(post, t.group, t.q)
                z = rng.standard_normal((*shape, len(nt.new_levels), t.q))
                b_new = np.einsum("cdij,cdlj->cdli", L, z)
                new = ~seen
                contrib[..., new] = np.einsum("nq,cdnq->cdn", nt.Z[new],
                                              b_new[:, :, nt.new_codes[new], :])
            mu = mu + contrib
    if kind == "response" and residual is not None:
        levels = train_residual.by_levels if train_residual is not None else None
        mu = mu + _structured_noise(residual, levels, post, mu, rng)
    elif kind == "response":
        scale = 1.0 if weights is None else 1.0 / np.sqrt(weights)
        mu = mu + post["sigma"].values[..., None] * scale * rng.standard_normal(mu.shape)
    return xr.DataArray(
        mu, dims=("chain", "draw", "obs"), name="mu" if kind == "mean" else "y",
        coords={"chain": post["chain"].values, "draw": post["draw"].values,
                "obs": np.asarray(rows.index)},
    )


def point_predictions(design: Design, rows: NewRows, fixef: np.ndarray, vcov: np.ndarray,
                      ranef: dict, ranef_sd: dict, psi: dict, *, include_random: bool = True,
                      new_levels: str = "population") -> tuple[np.ndarray, np.ndarray]:
    """Point predictions of the mean at ML/REML estimates, and their standard errors.

    The variance is ``xᵀ Var(β̂) x`` plus, for seen levels, ``Σ_k z_k² sd_k²`` with the
    conditional sds of the modes (lme4's ``condVar``), ignoring their covariances with
    β̂ and with each other; for unseen levels with ``new_levels="sample"`` the mean
    uses ``b = 0`` and the variance adds ``zᵀΨz`` (the unknown level's effects).
    """
    check_options("mean", new_levels)
    fit = rows.X @ fixef
    var = np.einsum("np,pq,nq->n", rows.X, vcov, rows.X)
    if include_random:
        for t, nt in zip(design.terms, rows.terms, strict=True):
            if nt.new_levels and new_levels == "error":
                raise DataError(
                    f"New level(s) {nt.new_levels} of grouping factor {t.group!r} were not "
                    "in the training data; pass new_levels='population' to set their "
                    "effects to 0, or 'sample' to include their variance in the se.")
            seen = nt.codes >= 0
            b = np.asarray(ranef[t.group])[nt.codes[seen]]
            sd = np.asarray(ranef_sd[t.group])[nt.codes[seen]]
            fit[seen] += np.einsum("nq,nq->n", nt.Z[seen], b)
            var[seen] += np.einsum("nq,nq->n", nt.Z[seen] ** 2, sd**2)
            if new_levels == "sample" and (~seen).any():
                Zn = nt.Z[~seen]
                var[~seen] += np.einsum("nq,qr,nr->n", Zn, psi[t.group], Zn)
    return fit, np.sqrt(var)


def predict_frame(new_data, design, fixef, vcov, ranef, ranef_sd, psi, include_random=True,
                  new_levels="population", se_fit=False):
    """:func:`point_predictions` on a DataFrame (None: the training rows), as a Series
    ``fit`` (or a DataFrame ``fit``, ``se``) indexed like the rows."""
    import pandas as pd

    rows = training_rows(design) if new_data is None else evaluate_new_data(design, new_data)
    fit, se = point_predictions(design, rows, fixef, vcov, ranef, ranef_sd, psi,
                                include_random=include_random, new_levels=new_levels)
    if se_fit:
        return pd.DataFrame({"fit": fit, "se": se}, index=rows.index)
    return pd.Series(fit, index=rows.index, name="fit")


def residual_frame(part, design, fixef, ranef):
    """y − fitted values of one chunk of an out-of-core design's rows (its frozen design
    evaluates the chunk as the fit did)."""
    import pandas as pd

    chunk = design.frozen.evaluate(part)
    keep = [chunk.fixef_names.index(n) for n in design.fixef_names]
    fitted = chunk.X[:, keep] @ fixef
    for t in chunk.terms:
        fitted = fitted + np.einsum("iq,iq->i", t.Z, np.asarray(ranef[t.group])[t.codes])
    return pd.Series(chunk.y - fitted, index=chunk.rows, name="residual")


def _draws_frame(part, design, post, kind, include_random, new_levels, rng):
    """Draws of predictions on one partition (a numpy array chain × draw × rows)."""
    rows = evaluate_new_data(design, part)
    return posterior_draws(design, post, rows, kind=kind, include_random=include_random,
                           new_levels=new_levels, random_seed=rng).values


def lazy_posterior_draws(design: Design, post: xr.Dataset, new_data, kind: str,
                         include_random: bool, new_levels: str, random_seed=None, *,
                         residual=None, weights=None) -> xr.DataArray:
    """:func:`posterior_draws` on dask rows (``new_data``, or None: an out-of-core fit's
    own rows) as a lazy dask array, partition by partition; where the draws are large
    (lazy b draws), a task takes :data:`STREAM_VALUES` values of them at a time."""
    from ..dask.lazy import map_draws

    if kind == "response" and residual is not None:  # the mean does not need Λ
        raise BayesLMMError(
            "Draws of new observations (kind='response') on dask data take iid "
            "residuals: a residual structure's noise needs each group's rows together. "
            "Use kind='mean' (the structure does not change it), or predict a pandas "
            "DataFrame of the rows.")
    if kind == "response" and (weights is not None or design.weights is not None):
        raise BayesLMMError(
            "Draws of new observations with prior weights are not computed on dask data: "
            "use kind='mean' (weights do not change it), or predict a pandas DataFrame "
            "of the rows.")
    keep = ["beta", "sigma"] + [v for t in design.terms for v in (
        f"b_{t.group}", f"sd_{t.group}", f"corr_{t.group}") if v in post]
    shape = (post.sizes["chain"], post.sizes["draw"])
    per_draw = sum(post[v][0, 0].size for v in keep)
    step = (None if per_draw * shape[0] * shape[1] <= STREAM_VALUES
            else max(1, STREAM_VALUES // per_draw))  # lazy b: a block at a time
    data = map_draws(design, new_data, _draws_frame,
                     (post[keep], kind, include_random, new_levels), shape, random_seed,
                     draw_step=step)
    return xr.DataArray(data, dims=("chain", "draw", "obs"),
                        name="mu" if kind == "mean" else "y",
                        coords={"chain": post["chain"].values, "draw": post["draw"].values})
