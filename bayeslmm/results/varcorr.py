"""Random-effect covariance Ψ: its layout per grouping factor and lme4's VarCorr table.

Examples
--------
>>> import numpy as np
>>> vc = varcorr_frame([("g", ["Intercept", "x"], np.array([[4.0, 1.0], [1.0, 1.0]]))], 2.0)
>>> print(vc.to_string())
        grp       var1 var2  vcov  sdcor
0         g  Intercept  NaN   4.0    2.0
1         g          x  NaN   1.0    1.0
2         g  Intercept    x   1.0    0.5
3  Residual        NaN  NaN   4.0    2.0
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["varcorr_frame", "block_mask", "cov_to_sd_corr", "psi_from_varcorr"]


def block_mask(q: int, blocks: Sequence[Sequence[int]]) -> np.ndarray:
    """Boolean q×q mask of the entries of Ψ that are free (inside a correlated block)."""
    mask = np.zeros((q, q), dtype=bool)
    for b in blocks:
        mask[np.ix_(b, b)] = True
    return mask


def cov_to_sd_corr(cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Standard deviations and correlation matrix of a covariance matrix (0-safe)."""
    cov = np.asarray(cov, dtype=float)
    sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = cov / np.outer(sd, sd)
    corr = np.where(np.isfinite(corr), corr, 0.0)
    np.fill_diagonal(corr, 1.0)
    return sd, corr


def varcorr_frame(
    groups: Sequence[tuple[str, Sequence[str], np.ndarray]],
    sigma: float | None,
    blocks: Sequence[Sequence[Sequence[int]]] | None = None,
) -> pd.DataFrame:
    """Lay out variance components like lme4's ``as.data.frame(VarCorr(fit))``.

    Parameters
    ----------
    groups : sequence of (group, term_names, cov)
        Each grouping factor's name, term names and q×q covariance Ψ.
    sigma : float or None
        Residual standard deviation (a ``Residual`` row), or None for no row.
    blocks : sequence, optional
        Per group, its correlated blocks; correlation rows are given only inside a
        block (an uncorrelated ``(x || g)`` term has none). Default: one full block.

    Returns
    -------
    DataFrame
        Columns ``grp, var1, var2, vcov, sdcor``: one row per standard deviation
        (``var2`` NaN, ``vcov`` the variance), one per correlation (``vcov`` the
        covariance, ``sdcor`` the correlation), then ``Residual``.
    """
    rows = []
    for k, (grp, names, cov) in enumerate(groups):
        cov = np.atleast_2d(np.asarray(cov, dtype=float))
        q = len(names)
        sd, corr = cov_to_sd_corr(cov)
        mask = block_mask(q, blocks[k]) if blocks is not None else np.ones((q, q), bool)
        for i in range(q):
            rows.append((grp, names[i], None, cov[i, i], sd[i]))
        for j in range(q):  # lme4 order: lower triangle, column by column
            for i in range(j + 1, q):
                if mask[i, j]:
                    rows.append((grp, names[j], names[i], cov[i, j], corr[i, j]))
    if sigma is not None:
        rows.append(("Residual", None, None, float(sigma) ** 2, float(sigma)))
    df = pd.DataFrame(rows, columns=["grp", "var1", "var2", "vcov", "sdcor"])
    for c in ("grp", "var1", "var2"):  # NaN where lme4 has NA, whatever the other rows hold
        df[c] = df[c].astype(object).where(df[c].notna(), np.nan)
    return df


def psi_from_varcorr(varcorr: pd.DataFrame, group: str, names: Sequence[str]) -> np.ndarray:
    """Ψ of one grouping factor from a :func:`varcorr_frame` table (the inverse layout).

    >>> import numpy as np
    >>> vc = varcorr_frame([("g", ["a", "b"], np.array([[4.0, 1.0], [1.0, 1.0]]))], 1.0)
    >>> psi_from_varcorr(vc, "g", ["a", "b"]).tolist()
    [[4.0, 1.0], [1.0, 1.0]]
    """
    rows = varcorr[varcorr["grp"] == group]
    pos = {n: i for i, n in enumerate(names)}
    psi = np.zeros((len(names), len(names)))
    for _, r in rows.iterrows():
        i = pos[r["var1"]]
        if pd.isna(r["var2"]):
            psi[i, i] = r["vcov"]
        else:
            j = pos[r["var2"]]
            psi[i, j] = psi[j, i] = r["vcov"]
    return psi
