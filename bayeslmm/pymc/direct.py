"""A marginal PyMC model as plain arrays, evaluated by precompiled numba code.

PyTensor compiles each model's graph for numba anew (a fresh machine: 15–40 s per
structure). For the marginal model as :func:`bayeslmm.pymc.marginal.build_marginal`
makes it, unchanged by the user, with priors of the families of
:mod:`bayeslmm.linalg.prior_kernels`, :class:`DirectModel` describes the same
log-density in arrays for :mod:`bayeslmm.linalg.direct_kernel`, whose functions are
compiled once per machine: fits of any structure then start at once. Anything else (a
user's Deterministic or Potential, a residual structure, another prior family, a factor
with several correlated blocks) gets ``None`` here and runs on PyTensor's compiled graph.

The unconstrained parameters are PyMC's, in the model's own order (``beta``, per
factor ``sd_<g>_log__`` or ``chol_<g>_cholesky-cov-packed__``, ``sigma_log__``), so the
draws mean what PyMC's mean and PyMC's initial points apply.

Examples
--------
>>> import numpy as np, bayeslmm as blm
>>> m = blm.LMM("Reaction ~ Days + (Days | Subject)", blm.datasets.load("sleepstudy"))
>>> direct = DirectModel.of(m.pymc_model, m.design, m._priors, m._cross_products)
>>> x = np.array([250.0, 10.0, np.log(24.0), 0.1, np.log(6.0), np.log(25.0)])
>>> lp, grad = direct.logp_grad(x)
>>> pymc_lp = m.pymc_model.compile_logp()(direct.point(x))
>>> bool(np.isclose(lp, pymc_lp, rtol=1e-12)), grad.shape
(True, (6,))
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..linalg.direct_kernel import direct_dense, direct_one_factor
from ..linalg.prior_kernels import FAMILIES, PARAMETERS, lkj_normalizing_constant

__all__ = ["DirectModel"]


def _params(prior, size: int) -> np.ndarray | None:
    """(size, 3) parameters of a prior in kernel order, or None for another family."""
    if prior.name not in FAMILIES or set(prior.params) != set(PARAMETERS[prior.name]):
        return None
    out = np.zeros((size, 3))
    for k, name in enumerate(PARAMETERS[prior.name]):
        out[:, k] = np.broadcast_to(np.asarray(prior.params[name], dtype=float), (size,))
    return out


@dataclass(frozen=True)
class DirectModel:
    """The arrays of one marginal model, its constant and how to read draws back.

    Build with :meth:`of`. ``value_names``/``value_shapes`` are the model's unconstrained
    variables; ``names``/``shapes`` the variables a posterior holds.
    """

    spec: tuple
    data: tuple
    dense: bool
    constant: float
    value_names: list[str]
    value_shapes: list[tuple]
    names: list[str]
    shapes: list[tuple]
    groups: list[str]

    @classmethod
    def of(cls, model, design, priors, cp) -> DirectModel | None:
        """The direct form of ``model`` (built by ``build_marginal`` for ``design``), or
        None where it does not describe the model exactly."""
        expected = cls._expected_names(design)
        values = [v.name for v in model.value_vars]
        named = set(model.named_vars) - {v.name for v in model.data_vars}
        if expected is None or values != expected[0] or named != set(expected[1]):
            return None
        p = len(design.fixef_names)
        bpar = _params(priors.beta, p)
        spar = _params(priors.sigma, 1)
        if bpar is None or spar is None:
            return None
        qmax = max([t.q for t in design.terms] + [1])
        fkind, fq, foff, fsd, feta = [], [], [], [], []
        fpar = np.zeros((len(design.terms), qmax, 3))
        off, constant = p, 0.0
        for k, t in enumerate(design.terms):
            par = _params(priors.sd[t.group], t.q)
            if par is None:
                return None
            chol = len(t.blocks) == 1 and t.q > 1
            fkind.append(int(chol))
            fq.append(t.q)
            foff.append(off)
            fsd.append(FAMILIES[priors.sd[t.group].name])
            feta.append(float(priors.eta[t.group]))
            fpar[k, :t.q] = par
            off += t.q * (t.q + 1) // 2 if chol else t.q
            if chol:
                constant += lkj_normalizing_constant(float(priors.eta[t.group]), t.q)
        spec = (p, FAMILIES[priors.beta.name], bpar, np.array(fkind, np.int64),
                np.array(fq, np.int64), np.array(foff, np.int64), np.array(fsd, np.int64),
                np.array(feta), fpar, FAMILIES[priors.sigma.name], spar[0], off)
        arrays = cp.marginal_arrays()
        data = (np.ascontiguousarray(arrays["zz"]), np.ascontiguousarray(arrays["z_xy"]),
                np.ascontiguousarray(arrays["xy_xy"]), float(cp.n))
        dense = len(design.terms) > 1
        if dense:
            data = (np.array(cp.order, np.int64), *data, np.array(cp.m, np.int64))
        shapes = [(p,)] + [((t.q * (t.q + 1) // 2) if k else t.q,)
                           for t, k in zip(design.terms, fkind, strict=True)] + [()]
        rvs = [v.name for v in model.unobserved_RVs]
        return cls(spec, data, dense, constant, values, shapes, rvs,
                   cls._shapes(design, rvs), [t.group for t in design.terms])

    @staticmethod
    def _expected_names(design):
        """The unconstrained variables and all named variables of an unchanged model,
        or None for a factor with several blocks."""
        values, named = ["beta"], ["beta", "sigma", "marginal_loglik"]
        for t in design.terms:
            g = t.group
            if len(t.blocks) == 1 and t.q > 1:
                values.append(f"chol_{g}_cholesky-cov-packed__")
                named += [f"chol_{g}", f"sd_{g}", f"corr_{g}"]
            elif all(len(b) == 1 for b in t.blocks):
                values.append(f"sd_{g}_log__")
                named.append(f"sd_{g}")
            else:
                return None
        values.append("sigma_log__")
        return values, named

    @staticmethod
    def _shapes(design, names) -> list[tuple]:
        q = {f"sd_{t.group}": (t.q,) for t in design.terms}
        q.update({f"corr_{t.group}": (t.q, t.q) for t in design.terms})
        q.update({f"chol_{t.group}": (t.q * (t.q + 1) // 2,) for t in design.terms})
        q.update(beta=(len(design.fixef_names),), sigma=())
        return [q[n] for n in names]

    @property
    def ndim(self) -> int:
        """Length of the unconstrained vector."""
        return int(sum(int(np.prod(s)) for s in self.value_shapes))

    def logp_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """The model's log-density (PyMC's, constants included) and its gradient at ``x``."""
        x = np.ascontiguousarray(x, dtype=np.float64)
        if self.dense:
            order, zz, zxy, xx, n, ms = self.data
            lp, grad = direct_dense(x, *self.spec, order, zz, zxy, xx, n, ms)
        else:
            lp, grad = direct_one_factor(x, *self.spec, *self.data)
        return float(lp + self.constant), grad

    def point(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """``x`` as PyMC's dict of unconstrained values (for PyMC's own functions)."""
        out, k = {}, 0
        for name, shape in zip(self.value_names, self.value_shapes, strict=True):
            size = int(np.prod(shape))
            out[name] = np.asarray(x[k:k + size]).reshape(shape)
            k += size
        return out

    def expand(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """The posterior's variables at ``x`` (constrained values and deterministics)."""
        p, fkind, fq, foff, soff = self.spec[0], self.spec[3], self.spec[4], self.spec[5], \
            self.spec[11]
        out = {"beta": np.array(x[:p]), "sigma": np.array(np.exp(x[soff]))}
        for k, g in enumerate(self.groups):
            q, off = int(fq[k]), int(foff[k])
            if fkind[k] == 0:
                out[f"sd_{g}"] = np.exp(x[off:off + q])
                continue
            packed = np.array(x[off:off + q * (q + 1) // 2])
            rows, cols = np.tril_indices(q)
            packed[rows == cols] = np.exp(packed[rows == cols])
            L = np.zeros((q, q))
            L[rows, cols] = packed
            cov = L @ L.T
            sd = np.sqrt(np.diag(cov))
            out[f"chol_{g}"], out[f"sd_{g}"] = packed, sd
            out[f"corr_{g}"] = cov / np.outer(sd, sd)
        return {n: out[n] for n in self.names}
