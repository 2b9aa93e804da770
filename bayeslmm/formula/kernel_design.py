"""Formula + data + a wide random-effect matrix or a known covariance →
:class:`KernelDesign`: the fixed part, the rows matched, and the rotation.

Supported: exactly one of

- ``random_matrices={"name": W}``: ``g = W ω``, ``ω ~ N(0, σ_b² I_p)``; the formula
  has no ``(… | g)`` bars. ``W`` has one row per data row: a DataFrame matched by
  index label, or an array in the data's row order (before missing rows are dropped).
- ``covariances={"group": K}``: the formula has exactly one bar, ``(1 | group)``, and
  ``b ~ N(0, σ_b² K)`` over the levels of ``group``. ``K`` is a DataFrame with level
  labels as index and columns (it may hold levels without data, which are then
  predicted), or an array over the factor's levels in order (categorical order, else
  sorted).

with the formula's fixed effects and iid residuals. Anything else (more entries,
other bars, a residual structure) raises a :class:`~bayeslmm.errors.BayesLMMError`.

Examples
--------
>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> df = pd.DataFrame({"y": rng.normal(size=20), "x": rng.normal(size=20)})
>>> kd = build_kernel_design("y ~ x", df, random_matrices={"snps": rng.normal(size=(20, 50))})
>>> kd.kind, kd.name, kd.nobs, kd.rotation.rank, kd.effect_names[:2]
('matrix', 'snps', 20, 20, ['snps0', 'snps1'])
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..errors import BayesLMMError, DataError, user_stacklevel
from ..linalg.rotation import Rotation, rotate_kernel, rotate_matrix
from .design import Design, build_design, level_label
from .spec import parse_formula

__all__ = ["KernelDesign", "build_kernel_design"]


@dataclass(frozen=True)
class KernelDesign:
    """A formula's fixed part with one wide random-effect matrix or known covariance.

    Attributes
    ----------
    formula : str
    name : str
        The random term's name (the ``random_matrices`` key or the grouping factor).
    kind : {"matrix", "covariance"}
    fixed : Design
        The fixed part on the rows used (no random-effect terms).
    rotation : Rotation
    effect_names : list of str
        Matrix column names, or the covariance's level labels.
    W : ndarray or None
        (n, p) random-effect matrix of the rows used (``"matrix"``).
    K : ndarray or None
        (L, L) covariance of all its levels (``"covariance"``).
    codes : ndarray or None
        Each row's level index into ``K``.
    """

    formula: str
    name: str
    kind: str
    fixed: Design
    rotation: Rotation
    effect_names: list[str]
    W: np.ndarray | None = None
    K: np.ndarray | None = None
    codes: np.ndarray | None = None

    @property
    def nobs(self) -> int:
        """Number of observations used."""
        return self.fixed.nobs

    @property
    def ngroups(self) -> dict[str, int]:
        """Levels of the known-covariance factor that have data (empty for a matrix)."""
        return {self.name: len(np.unique(self.codes))} if self.kind == "covariance" else {}

    def operator(self, *, W_new: np.ndarray | None = None,
                 codes_new: np.ndarray | None = None) -> np.ndarray:
        """``L`` (m × n) with ``Cov(g_new, y) = σ_b² L``: ``W_new Wᵀ`` or ``K[new, rows]``."""
        if self.kind == "matrix":
            return np.asarray(W_new @ self.W.T, dtype=float)
        return self.K[np.ix_(codes_new, self.codes)]


def _one(entries: Mapping[str, Any] | None, what: str) -> tuple[str, Any] | None:
    if entries is None:
        return None
    if not isinstance(entries, Mapping) or len(entries) != 1:
        raise BayesLMMError(
            f"{what} must be a dict with exactly one entry, e.g. {{'snps': X}}; got "
            f"{len(entries) if isinstance(entries, Mapping) else type(entries).__name__}. "
            "One wide random-effect matrix or one known-covariance factor per model is "
            "supported.")
    (name, value), = entries.items()
    return str(name), value


def _matrix(value: Any, data: pd.DataFrame, rows: pd.Index, name: str):
    """The rows of W for the data rows used, and its column names."""
    if isinstance(value, pd.DataFrame):
        missing = rows.difference(value.index)
        if len(missing):
            raise DataError(f"Random matrix {name!r} lacks {len(missing)} data row(s), e.g. "
                            f"index {list(missing[:3])}; its index must hold the data's.")
        if not value.index.is_unique:
            raise DataError(f"Random matrix {name!r} has a duplicated index.")
        W, cols = value.loc[rows].to_numpy(), [str(c) for c in value.columns]
    else:
        W = np.asarray(value)
        if W.ndim != 2 or W.shape[0] != len(data):
            raise DataError(f"Random matrix {name!r} must be 2-D with one row per data row "
                            f"({len(data)}), got shape {W.shape}.")
        if not data.index.is_unique:
            raise DataError("The data's index has duplicates, so the rows of random matrix "
                            f"{name!r} cannot be matched; use data.reset_index(drop=True).")
        pos = data.index.get_indexer(rows)
        if not np.array_equal(pos, np.arange(len(W))):  # no copy of a big W when all rows used
            W = W[pos]
        cols = [f"{name}{j}" for j in range(W.shape[1])]
    if not np.issubdtype(W.dtype, np.number) or W.dtype == np.bool_:
        raise DataError(f"Random matrix {name!r} must be numeric, got dtype {W.dtype}.")
    if W.dtype != np.float32:
        W = W.astype(np.float64, copy=False)  # integers (0/1/2 genotypes) would overflow
    if not np.all(np.isfinite(W)):
        raise DataError(f"Random matrix {name!r} has missing or non-finite values; impute "
                        "them (e.g. by the column mean) first.")
    return np.ascontiguousarray(W), cols


def _covariance(value: Any, levels: list[str], name: str) -> tuple[np.ndarray, list[str]]:
    """K as a float array (a copy) and its level labels, checked finite and symmetric
    (positive semi-definite: see :func:`check_psd`)."""
    if isinstance(value, pd.DataFrame):
        labels = [level_label(v) for v in value.index]
        if sorted(level_label(v) for v in value.columns) != sorted(labels):
            raise DataError(f"Covariance of {name!r}: index and columns must hold the "
                            "same level labels.")
        value = value.set_axis(labels, axis=0).set_axis(
            [level_label(v) for v in value.columns], axis=1)
        K = value.loc[labels, labels].to_numpy(dtype=float)
    else:
        K = np.array(value, dtype=float, copy=True)  # the model keeps it: not the caller's
        if K.ndim != 2 or K.shape != (len(levels), len(levels)):
            raise DataError(f"Covariance of {name!r} as an array must be {len(levels)}×"
                            f"{len(levels)} (one row per level of {name!r}, in order "
                            f"{levels[:3]}...), got shape {K.shape}. Pass a DataFrame "
                            "indexed by level labels to match by label.")
        labels = list(levels)
    if len(set(labels)) != len(labels):
        raise DataError(f"Covariance of {name!r} has duplicated level labels.")
    worst = _asymmetry(K)
    if not np.isfinite(worst):
        raise DataError(f"Covariance of {name!r} has missing or non-finite values.")
    if worst > 1e-8 * float(np.abs(np.diag(K)).max(initial=0.0)):
        raise DataError(f"Covariance of {name!r} must be symmetric (largest |K - Kᵀ| "
                        f"{worst:.3g}).")
    return K, labels


def _asymmetry(K: np.ndarray, block: int = 512) -> float:
    """``max |K − Kᵀ|`` (NaN or inf if K has non-finite values), by row blocks: no n×n
    temporaries (at n = 5,000 they cost seconds of page faults)."""
    worst = 0.0
    for i in range(0, len(K), block):
        rows, cols = K[i:i + block], K[:, i:i + block].T
        if not np.isfinite(rows).all():
            return float("nan")
        worst = max(worst, float(np.abs(rows - cols).max(initial=0.0)))
    return worst


def build_kernel_design(formula: str, data: pd.DataFrame, *,
                        random_matrices: Mapping[str, Any] | None = None,
                        covariances: Mapping[str, Any] | None = None,
                        na_action: str = "drop") -> KernelDesign:
    """Check the combination and match rows and levels; the rotation is computed on
    first use (see :class:`~bayeslmm.linalg.rotation.Rotation`).

    Parameters
    ----------
    formula : str
    data : DataFrame
    random_matrices, covariances : mapping, optional
        Exactly one of them, with one entry (see the module doc).
    na_action : {"drop", "raise"}

    Returns
    -------
    KernelDesign
    """
    mat, cov = _one(random_matrices, "random_matrices"), _one(covariances, "covariances")
    if (mat is None) == (cov is None):
        raise BayesLMMError("Give either random_matrices or covariances (one entry), not "
                            "both: one high-dimensional random term per model.")
    spec = parse_formula(formula)
    if mat is not None and spec.bars:
        raise BayesLMMError(
            f"A random matrix cannot be combined with grouping-factor terms "
            f"{[str(b) for b in spec.bars]}: its rotation would no longer diagonalise "
            "the covariance. Fit the bars as fixed effects, or use LMM without "
            "random_matrices.")
    if cov is not None:
        group = cov[0]
        if len(spec.bars) != 1 or spec.bars[0].group != group or \
                spec.bars[0].expr.replace(" ", "") not in ("1", "1+1"):
            raise BayesLMMError(
                f"A known covariance for {group!r} needs the formula to have exactly one "
                f"random-effect term, (1 | {group}); got {[str(b) for b in spec.bars]}. "
                "Random slopes and further grouping factors are not supported with it.")
        if group not in data.columns:
            raise DataError(f"Unknown grouping column {group!r} for the covariance.")
        if data[group].isna().any():
            if na_action == "raise":
                raise DataError(f"Column {group!r} has missing values.")
            warnings.warn(f"Dropped {int(data[group].isna().sum())} rows with a missing "
                          f"{group!r}.", UserWarning, stacklevel=user_stacklevel())
            data = data.loc[data[group].notna()]
    fixed = build_design(f"{spec.response} ~ {spec.fixed}", data, na_action=na_action)
    y, Xf = fixed.y, fixed.X
    if mat is not None:
        W, names = _matrix(mat[1], data, fixed.rows, mat[0])
        return KernelDesign(formula, mat[0], "matrix", fixed, rotate_matrix(W, y, Xf),
                            names, W=W)
    col = data[group]
    cats = col.cat.categories if isinstance(col.dtype, pd.CategoricalDtype) else \
        pd.Categorical(col).categories
    K, labels = _covariance(cov[1], [level_label(v) for v in cats], group)
    index = {lab: i for i, lab in enumerate(labels)}
    row_labels = [level_label(v) for v in fixed.data[group]]
    missing = sorted({lab for lab in row_labels if lab not in index})
    if missing:
        raise DataError(f"Covariance of {group!r} lacks level(s) {missing[:5]} present in "
                        "the data.")
    codes = np.array([index[lab] for lab in row_labels], dtype=np.int64)
    if len(np.unique(codes)) < len(labels):
        check_psd(K, group)  # levels without data: the rotation sees only a block of K
    return KernelDesign(formula, group, "covariance", fixed,
                        _rotate_levels(K, codes, y, Xf, group), labels, K=K, codes=codes)


#: relative tolerance on negative eigenvalues: float32 rounding (GRMs are often computed
#: and stored in float32, e.g. by GCTA and PLINK), as scipy.stats's multivariate normal
#: allows for float32 covariances
PSD_TOL = 1e3 * float(np.finfo(np.float32).eps)


def check_psd(K: np.ndarray, name: str, lam: np.ndarray | None = None) -> None:
    """Raise unless K is positive semi-definite up to float32 rounding (smallest
    eigenvalue ≥ −:data:`PSD_TOL` × the largest; the rotation treats the rest as 0):
    from its eigenvalues ``lam`` if given, else by a Cholesky factor of ``K + εI``
    (a fifth of the cost of the eigenvalues, computed only to word the error)."""
    if lam is None:
        A = np.array(K, dtype=float, copy=True)
        A.flat[::len(A) + 1] += PSD_TOL * max(float(np.abs(np.diag(K)).max(initial=0.0)),
                                              1e-300)
        try:
            np.linalg.cholesky(A)
            return
        except np.linalg.LinAlgError:
            lam = np.linalg.eigvalsh(K)
    if len(lam) and lam.min() < -PSD_TOL * max(abs(float(lam.max())), 1e-300):
        raise DataError(f"Covariance of {name!r} is not positive semi-definite "
                        f"(smallest eigenvalue {float(lam.min()):.3g}, largest "
                        f"{float(lam.max()):.3g}).")


def _rotate_levels(K: np.ndarray, codes: np.ndarray, y: np.ndarray, Xf: np.ndarray,
                   name: str):
    """Rotation for ``Z K Zᵀ``: n×n tridiagonalisation, or via a factor of K when the
    data have fewer distinct levels than rows (then ``rank ≤ levels < n``). Both check
    that K (its block of the levels with data) is positive semi-definite from the
    eigenvalues they compute anyway."""
    used = np.unique(codes)
    if len(used) >= len(codes):
        return rotate_kernel(K[np.ix_(codes, codes)], y, Xf, copy=False,
                             on_values=lambda lam: check_psd(K, name, lam))
    lam, Q = np.linalg.eigh(K[np.ix_(used, used)])
    check_psd(K, name, lam)
    F = Q * np.sqrt(np.clip(lam, 0.0, None))  # F Fᵀ = K[used, used]
    return rotate_matrix(F[np.searchsorted(used, codes)], y, Xf)

