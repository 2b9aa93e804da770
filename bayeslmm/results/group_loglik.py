"""The marginal log-likelihood of each group, per posterior draw: for leave-one-group-out.

For a level ``j`` of a grouping factor, with the random effects of every term that
lives inside that level (the factor's own, and those of factors nested in it)
integrated out exactly:

    y_j ~ N(X_j β, σ² I + Z_j Ψ̃_j Z_jᵀ),   Ψ̃_j = L_j L_jᵀ (block diagonal)

and by Woodbury, with ``M = I + L_jᵀ Z_jᵀZ_j L_j / σ²`` and ``r = y_j − X_j β``,

    log|V_j| = n_j log σ² + log|M|,
    rᵀV_j⁻¹r = (rᵀr − wᵀ M⁻¹ w / σ²) / σ²,   w = L_jᵀ Z_jᵀ r,

so each draw needs only the group's cross-products ``Z_jᵀZ_j``, ``Z_jᵀX_j``,
``Z_jᵀy_j``, ``X_jᵀX_j``, ``X_jᵀy_j``, ``y_jᵀy_j`` (computed once) and small
Cholesky factors. PSIS-LOO on these terms is leave-one-group-out (Merkle, Furr &
Rabe-Hesketh 2019): it estimates how well the model predicts a new group, and its
importance weights are far more stable than those of the per-observation terms.

Examples
--------
``post``: the sleepstudy posterior of :class:`~bayeslmm.PosteriorResult`.

>>> ll = group_loglik(post._design, post.idata.posterior, "Subject")
>>> ll.dims, ll.shape
(('chain', 'draw', 'Subject'), (2, 500, 18))
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from ..errors import BayesLMMError
from .predict import psi_factor

__all__ = ["GroupCrossProducts", "group_loglik", "check_group"]

_LOG2PI = np.log(2.0 * np.pi)


def check_group(design, group: str | None) -> str:
    """The grouping factor to leave out: ``group``, or the model's only one.

    >>> import bayeslmm as blm
    >>> d = blm.LMM("Yield ~ 1 + (1 | Batch)", blm.datasets.load("Dyestuff")).design
    >>> check_group(d, None)
    'Batch'
    """
    groups = [t.group for t in design.terms]
    if group is None:
        if len(groups) != 1:
            raise BayesLMMError(f"The model has grouping factors {groups}: say which one "
                                "to leave out with group=...")
        return groups[0]
    if group not in groups:
        raise BayesLMMError(f"No grouping factor {group!r}; the model has {groups}.")
    return group


@dataclass(frozen=True)
class GroupCrossProducts:
    """Per level of one grouping factor: its rows' cross-products and random-effect layout.

    ``blocks[j]`` lists, for level ``j``, (term index, level of that term) of each
    q-column block of ``Z_j``, the factor's own block first.
    """

    group: str
    levels: list[str]
    n: np.ndarray
    ZZ: list[np.ndarray]
    ZX: list[np.ndarray]
    Zy: list[np.ndarray]
    XX: np.ndarray
    Xy: np.ndarray
    yy: np.ndarray
    blocks: list[list[tuple[int, int]]]

    @classmethod
    def from_design(cls, design, group: str) -> GroupCrossProducts:
        """One pass over the rows; factors crossed with ``group`` are an error.

        Examples
        --------
        >>> import bayeslmm as blm
        >>> d = blm.LMM("strength ~ 1 + (1 | batch/cask)", blm.datasets.load("Pastes")).design
        >>> gcp = GroupCrossProducts.from_design(d, "batch")
        >>> len(gcp.levels), gcp.ZZ[0].shape  # each batch: its own effect and 3 casks'
        (10, (4, 4))
        """
        k0 = [t.group for t in design.terms].index(group)
        t0 = design.terms[k0]
        for k, t in enumerate(design.terms):
            if k != k0 and any(len(np.unique(t0.codes[t.codes == lev])) > 1
                               for lev in range(t.n_levels)):
                raise BayesLMMError(
                    f"Grouping factor {t.group!r} is crossed with {group!r} (a level of it "
                    f"spans several levels of {group!r}): the groups are not independent, "
                    f"so {group!r} cannot be left out one level at a time.")
        X, y = design.X, design.y
        n, ZZ, ZX, Zy, XX, Xy, yy, blocks = [], [], [], [], [], [], [], []
        for j in range(t0.n_levels):
            rows = np.flatnonzero(t0.codes == j)
            cols, lay = [t0.Z[rows]], [(k0, j)]
            for k, t in enumerate(design.terms):
                if k == k0:
                    continue
                for lev in np.unique(t.codes[rows]):
                    cols.append(t.Z[rows] * (t.codes[rows] == lev)[:, None])
                    lay.append((k, int(lev)))
            Z = np.hstack(cols)
            n.append(len(rows))
            ZZ.append(Z.T @ Z)
            ZX.append(Z.T @ X[rows])
            Zy.append(Z.T @ y[rows])
            XX.append(X[rows].T @ X[rows])
            Xy.append(X[rows].T @ y[rows])
            yy.append(y[rows] @ y[rows])
            blocks.append(lay)
        return cls(group, list(t0.levels), np.array(n), ZZ, ZX, Zy, np.array(XX),
                   np.array(Xy), np.array(yy), blocks)


def group_loglik(design, post: xr.Dataset, group: str | None = None,
                 gcp: GroupCrossProducts | None = None) -> xr.DataArray:
    """Per-draw marginal log-likelihood of each level of ``group``, dims
    ``(chain, draw, <group>)`` (see the module doc).

    Examples
    --------
    >>> group_loglik(post._design, post.idata.posterior).sizes["Subject"]  # post: see above
    18
    """
    group = check_group(design, group)
    gcp = gcp or GroupCrossProducts.from_design(design, group)
    beta = post["beta"].values
    chains, draws = beta.shape[:2]
    beta = beta.reshape(chains * draws, -1)
    s2 = post["sigma"].values.reshape(-1) ** 2
    Ls = [psi_factor(post, t.group, t.q).reshape(chains * draws, t.q, t.q)
          for t in design.terms]
    out = np.empty((chains * draws, len(gcp.levels)))
    for j in range(len(gcp.levels)):
        # r'r and w = Lᵀ Zᵀ r per draw
        Xb_y = np.einsum("sp,p->s", beta, gcp.Xy[j])
        rr = gcp.yy[j] - 2.0 * Xb_y + np.einsum("sp,pq,sq->s", beta, gcp.XX[j], beta)
        u = gcp.Zy[j][None, :] - beta @ gcp.ZX[j].T
        d = len(gcp.Zy[j])
        L = np.zeros((len(s2), d, d))
        pos = 0
        for k, _ in gcp.blocks[j]:
            q = design.terms[k].q
            L[:, pos:pos + q, pos:pos + q] = Ls[k]
            pos += q
        Lt = np.swapaxes(L, -1, -2)
        M = np.eye(d) + Lt @ gcp.ZZ[j] @ L / s2[:, None, None]
        C = np.linalg.cholesky(M)
        w = np.einsum("sij,sj->si", Lt, u)
        v = np.linalg.solve(C, w[..., None])[..., 0]
        logdet = gcp.n[j] * np.log(s2) + 2.0 * np.log(np.diagonal(C, axis1=1, axis2=2)).sum(-1)
        quad = (rr - (v**2).sum(-1) / s2) / s2
        out[:, j] = -0.5 * (gcp.n[j] * _LOG2PI + logdet + quad)
    return xr.DataArray(out.reshape(chains, draws, -1), dims=("chain", "draw", group),
                        coords={"chain": post.chain, "draw": post.draw, group: gcp.levels})
