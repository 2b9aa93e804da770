"""What the two results of a high-dimensional LMM share: BLUPs, predictions, draws.

A random matrix's coefficients ω (or a known covariance's effects b) are integrated
out when fitting; :class:`KernelResultBase` recovers them given the data and draws of
(β, σ_b, σ): ``ranef`` (BLUPs ``E[ω | y]``), ``predict`` (``X_f β + E[g | y]`` on
training or new rows) and ``draw_effects`` (their exact Gaussian conditional).

Examples
--------
>>> from bayeslmm.results.kernel_map import KernelMapResult
>>> issubclass(KernelMapResult, KernelResultBase)
True
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import DataError
from ..formula.design import level_label
from ..formula.kernel_design import KernelDesign
from ..formula.newdata import evaluate_new_data
from .base import ResultBase
from .codec import save
from .kernel_effects import conditional_draws, fitted_random, functional, mean_weight, weights
from .varcorr import varcorr_frame

__all__ = ["KernelResultBase"]


class KernelResultBase(ResultBase):
    """What both kernel results share: the design, the BLUPs, predictions, effect draws.

    Subclasses set ``_kd`` (and ``_formula``, ``_nobs``, ``_ngroups`` from it) and give
    ``_param_draws()``: draws of (β, σ_b, σ), one row per draw (one for an ML/REML fit).
    """

    _kd: KernelDesign

    def save(self, path) -> None:
        """Save to netCDF: formula, training rows, random matrix or covariance, draws.

        ``bayeslmm.load(path)`` gives back a result that prints, summarises and predicts
        as this one (a posterior's draws as stored; an ML/REML fit rebuilt at its stored h²). A
        float32 random matrix is stored as float32 (n × p × 4 bytes).

        Examples
        --------
        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "kmap.nc")
        >>> kmap.save(path)  # kmap: see KernelMapResult
        >>> back = blm.load(path)
        >>> bool(abs(back.h2 - kmap.h2) < 1e-9), back.design.W.shape
        (True, (40, 100))
        """
        save(self, path)

    # -- per-kind parameter draws (S draws; one for a MAP fit) ------------------------
    def _param_draws(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        raise NotImplementedError

    @property
    def design(self) -> KernelDesign:
        """The design the model was fitted on.

        Examples
        --------
        >>> d = kmap.design  # kmap: see KernelMapResult
        >>> d.kind, d.name, d.W.shape
        ('matrix', 'snps', (40, 100))
        """
        return self._kd

    def _set_design(self, kd: KernelDesign) -> None:
        self._kd, self._ranef = kd, None
        self._formula, self._nobs, self._ngroups = kd.formula, kd.nobs, kd.ngroups

    def _varcorr(self, sd: float, sigma: float) -> pd.DataFrame:
        term = "Intercept" if self._kd.kind == "covariance" else "effect"
        return varcorr_frame([(self._kd.name, [term], np.array([[sd**2]]))], sigma)

    @property
    def ranef(self) -> dict[str, pd.DataFrame]:
        """BLUPs ``E[ω | y]`` (matrix columns) or ``E[b | y]`` (every level of K).

        Examples
        --------
        >>> b = kmap.ranef["snps"]  # kmap: see KernelMapResult
        >>> b.shape, b.index[:3].tolist()
        ((100, 1), ['snps0', 'snps1', 'snps2'])
        """
        if self._ranef is None:
            kd = self._kd
            w = mean_weight(kd.rotation, *weights(kd.rotation, *self._param_draws()))
            eff = kd.W.T @ w.astype(kd.W.dtype) if kd.kind == "matrix" else \
                kd.K[:, kd.codes] @ w
            col = "Intercept" if kd.kind == "covariance" else "effect"
            self._ranef = pd.DataFrame({col: np.asarray(eff, float)},
                                       index=pd.Index(kd.effect_names, name=kd.name))
        return {self._kd.name: self._ranef.copy()}

    def _new_rows(self, new_data, new_X):
        """Fixed-effect rows and the operator L of new rows (None: training rows)."""
        kd = self._kd
        if new_data is None and new_X is None:
            return kd.fixed.X, None, kd.fixed.rows
        if kd.kind == "matrix":
            if new_X is None:
                raise DataError(f"Predicting new rows needs their random-matrix rows: pass "
                                f"new_X (one row per new_data row, columns as {kd.name!r}).")
            W_new = self._matrix_rows(new_X, new_data)
            if new_data is None:
                new_data = pd.DataFrame(index=new_X.index if isinstance(new_X, pd.DataFrame)
                                        else pd.RangeIndex(len(W_new)))
            if len(new_data) != len(W_new):
                raise DataError(f"new_X has {len(W_new)} rows for {len(new_data)} rows of "
                                "new_data.")
            L = kd.operator(W_new=W_new)
        else:
            if new_data is None or kd.name not in new_data.columns:
                raise DataError(f"new_data must have the grouping column {kd.name!r}.")
            index = {lab: i for i, lab in enumerate(kd.effect_names)}
            labels = [level_label(v) for v in new_data[kd.name]]
            unknown = sorted({lab for lab in labels if lab not in index})
            if unknown:
                raise DataError(f"Level(s) {unknown[:5]} of {kd.name!r} are not in its "
                                "covariance; add them to K to predict them.")
            L = kd.operator(codes_new=np.array([index[lab] for lab in labels]))
        return evaluate_new_data(kd.fixed, new_data).X, L, new_data.index

    def _matrix_rows(self, new_X, new_data) -> np.ndarray:
        kd = self._kd
        if isinstance(new_X, pd.DataFrame):
            missing = [c for c in kd.effect_names if c not in set(map(str, new_X.columns))]
            if missing:
                raise DataError(f"new_X lacks column(s) {missing[:5]} of {kd.name!r}.")
            new_X = new_X.set_axis([str(c) for c in new_X.columns], axis=1)
            if new_data is not None and new_data.index.isin(new_X.index).all():
                new_X = new_X.loc[new_data.index]  # match rows by label when possible
            W_new = new_X[kd.effect_names].to_numpy(dtype=float)
        else:
            W_new = np.atleast_2d(np.asarray(new_X, dtype=float))
            if W_new.shape[1] != kd.W.shape[1]:
                raise DataError(f"new_X must have {kd.W.shape[1]} columns like {kd.name!r}, "
                                f"got {W_new.shape[1]}.")
        return W_new.astype(kd.W.dtype, copy=False)

    def _predict_draws(self, new_data, new_X, include_random: bool):
        """Conditional means ``X_f β + E[g | y, θ]`` per draw of θ: (m, S), and the index."""
        beta, sd, sigma = self._param_draws()
        Xf, L, index = self._new_rows(new_data, new_X)
        out = Xf @ beta.T
        if include_random:
            a, c = weights(self._kd.rotation, beta, sd, sigma)
            out = out + (fitted_random(self._kd.rotation, a) if L is None
                         else functional(self._kd.rotation, L, a, c))
        return out, index

    def _effect_draws(self, idx: np.ndarray, random_seed: int | None) -> xr.DataArray:
        beta, sd, sigma = self._param_draws()
        rng = np.random.default_rng(random_seed)
        vals = conditional_draws(self._kd, beta[idx], sd[idx], sigma[idx], rng)
        dim = f"{self._kd.name}_effect"
        return xr.DataArray(vals, dims=("sample", dim),
                            coords={dim: list(self._kd.effect_names)}, name=self._kd.name)

    def _kernel_dict(self) -> dict[str, Any]:
        """The ``to_dict()`` entries of the random term: what it is, σ_b and h²."""
        kd = self._kd
        return {"random_term": {"name": kd.name, "kind": kd.kind,
                                "n_effects": len(kd.effect_names), "rank": kd.rotation.rank,
                                "scale": kd.rotation.scale},
                "sd": self.sd, "h2": self.h2}
