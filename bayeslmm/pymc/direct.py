"""A marginal PyMC model as plain arrays, evaluated by precompiled numba code.

PyTensor compiles each model's graph for numba anew (a fresh machine: 15–40 s per
structure). For the marginal model as :func:`bayeslmm.pymc.marginal.build_marginal`
makes it, unchanged by the user, with priors of the families of
:mod:`bayeslmm.linalg.prior_kernels`, :class:`DirectModel` describes the same
log-density in arrays for :mod:`bayeslmm.linalg.direct_kernel`, whose functions are
compiled once per machine: fits of any structure then start at once. A residual
structure with sufficient statistics (:mod:`bayeslmm.residual.sufficient`) runs on
:mod:`bayeslmm.linalg.direct_residual` (with several grouping factors, on the blocked
factorisation and its gradient in the data). Anything else (a
user's Deterministic or Potential, a residual structure bound to its rows, another
prior family, a factor with several correlated blocks) gets ``None`` here and runs on
PyTensor's compiled graph.

The unconstrained parameters are PyMC's, in the model's own order (``beta_z``, per
factor ``sd_<g>_log__`` or ``chol_<g>_z_sd-corr__``, ``sigma_log__``), so the
draws mean what PyMC's mean and PyMC's initial points apply.

Examples
--------
>>> import numpy as np, bayeslmm as blm
>>> m = blm.LMM("Reaction ~ Days + (Days | Subject)", blm.datasets.load("sleepstudy"))
>>> direct = DirectModel.of(m.pymc_model, m.design, m._priors, m._cross_products)
>>> x = np.array([-0.2, 0.2, np.log(24.0), 0.1, np.log(6.0), np.log(25.0)])
>>> lp, grad = direct.logp_grad(x)
>>> pymc_lp = m.pymc_model.compile_logp()(direct.point(x))
>>> bool(np.isclose(lp, pymc_lp, rtol=1e-12)), grad.shape
(True, (6,))
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..linalg.blocked_layout import VALUE_NAMES, blocked_arrays, blocked_stacks, kernel_stacks
from ..linalg.direct_kernel import direct_blocked, direct_one_factor, direct_small_q
from ..linalg.direct_residual import (
    direct_residual_blocked,
    direct_residual_dense,
    direct_residual_one_factor,
)
from ..linalg.prior_kernels import FAMILIES, PARAMETERS, lkj_normalizing_constant
from ..linalg.sd_corr_transform import sd_corr_to_chol
from ..linalg.small_q_kernel import SMALL_Q, soa_arrays
from ..residual.structures import CompSymm, VarIdent
from ..residual.sufficient import statistics, sufficient_reason
from .blocked_op import DATA_NAMES
from .sd_corr import SdCorrPacked
from .terms import STANDARDISED, unit_scale

__all__ = ["DirectModel"]


def _standardised(prior, size: int):
    """The standard family's parameters and β's location and scale, for a prior that
    :func:`~bayeslmm.pymc.terms.fixed_effects` samples standardised; else None."""
    spec = STANDARDISED.get(prior.name)
    if spec is None or not set(prior.params) <= {spec[0], spec[2], *spec[4]}:
        return None
    loc_name, loc0, scale_name, scale0, shapes = spec
    standard = {loc_name: 0.0, scale_name: 1.0, **{k: prior.params[k] for k in shapes}}
    par = _params(type(prior)(prior.name, **standard), size)
    loc = np.broadcast_to(np.asarray(prior.params.get(loc_name, loc0), float), (size,))
    scale = np.broadcast_to(np.asarray(prior.params.get(scale_name, scale0), float), (size,))
    return par, np.ascontiguousarray(loc), np.ascontiguousarray(scale)


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
    residual: tuple = ()
    small_q: bool = False

    @classmethod
    def of(cls, model, design, priors, cp, residual=None, stats=None) -> DirectModel | None:
        """The direct form of ``model`` (built by ``build_marginal`` for ``design``, with
        ``residual`` bound to its rows and ``stats`` its statistics, computed here if not
        given), or None where it does not describe the model exactly."""
        if residual is not None and sufficient_reason(residual) is not None:
            return None
        expected = cls._expected_names(design, priors, residual)
        values = [v.name for v in model.value_vars]
        named = set(model.named_vars) - {v.name for v in model.data_vars}
        if expected is None or values != expected[0] or named != set(expected[1]):
            return None
        p = len(design.fixef_names)
        beta = _standardised(priors.beta, p)
        spar = _params(priors.sigma, 1)
        if beta is None or spar is None:
            return None
        bpar, bloc, bscale = beta
        qmax = max([t.q for t in design.terms] + [1])
        fkind, fq, foff, fsd, feta = [], [], [], [], []
        fpar = np.zeros((len(design.terms), qmax, 3))
        off, constant = p, 0.0
        fc = np.ones((len(design.terms), qmax))
        for k, t in enumerate(design.terms):
            prior = priors.sd[t.group]
            chol = len(t.blocks) == 1 and t.q > 1
            if chol and unit_scale(prior) is not None:  # sampled at unit scale
                prior, scale = unit_scale(prior)
                fc[k, :t.q] = np.broadcast_to(scale, (t.q,))
            par = _params(prior, t.q)
            if par is None:
                return None
            fkind.append(int(chol))
            fq.append(t.q)
            foff.append(off)
            fsd.append(FAMILIES[prior.name])
            feta.append(float(priors.eta[t.group]))
            fpar[k, :t.q] = par
            off += t.q * (t.q + 1) // 2 if chol else t.q
            if chol:
                constant += lkj_normalizing_constant(float(priors.eta[t.group]), t.q)
        rspec: tuple = ()
        if residual is not None:
            rspec = _residual_spec(residual, priors, off,
                                   stats if stats is not None else statistics(design, residual))
            if rspec is None:
                return None
        soff = off + (_n_residual(residual) if residual is not None else 0)
        spec = (p, FAMILIES[priors.beta.name], bpar, bloc, bscale, np.array(fkind, np.int64),
                np.array(fq, np.int64), np.array(foff, np.int64), np.array(fsd, np.int64),
                np.array(feta), fpar, fc, FAMILIES[priors.sigma.name], spar[0], soff)
        shapes = [(p,)] + [((t.q * (t.q + 1) // 2) if k else t.q,)
                           for t, k in zip(design.terms, fkind, strict=True)]
        rvs = [v.name for v in model.unobserved_RVs]
        if residual is not None:  # statistics: one factor, several (blocked) or none
            data, dense = rspec[0], len(design.terms) != 1
            shapes += [() if name != "varident_ratio" else (len(residual.by_levels) - 1,)
                       for name in residual.param_names] + [()]
            return cls(spec, data, dense, constant, values, shapes, rvs,
                       cls._shapes(design, rvs, residual), [t.group for t in design.terms],
                       rspec[1])
        dense, small = len(design.terms) > 1, False
        if dense:  # several factors: the blocked layout
            lay = blocked_arrays(cp)
            data = (np.array(cp.order, np.int64),
                    *[np.ascontiguousarray(lay[k]) for k in DATA_NAMES[:-1]], float(cp.n),
                    bool(lay["full"]), bool(lay["blockdiag"]))
        else:  # q ≤ 2: the closed-form kernel on levels laid out contiguously
            arrays = cp.marginal_arrays()
            zz, z_xy = arrays["zz"], arrays["z_xy"]
            small = len(design.terms) == 1 and zz.shape[1] in SMALL_Q
            data = (*(soa_arrays(zz, z_xy) if small
                      else (np.ascontiguousarray(zz), np.ascontiguousarray(z_xy))),
                    np.ascontiguousarray(arrays["xy_xy"]), float(cp.n))
        shapes.append(())
        return cls(spec, data, dense, constant, values, shapes, rvs,
                   cls._shapes(design, rvs), [t.group for t in design.terms],
                   small_q=small)

    @staticmethod
    def _expected_names(design, priors, residual=None):
        """The unconstrained variables and all named variables of an unchanged model,
        or None for a factor with several blocks."""
        values, named = ["beta_z"], ["beta_z", "beta", "sigma", "marginal_loglik"]
        for t in design.terms:
            g = t.group
            if len(t.blocks) == 1 and t.q > 1:
                chol = f"chol_{g}_z" if unit_scale(priors.sd[g]) is not None else f"chol_{g}"
                values.append(f"{chol}_{SdCorrPacked.name}__")
                named += [chol, f"sd_{g}", f"corr_{g}"]
            elif all(len(b) == 1 for b in t.blocks):
                values.append(f"sd_{g}_log__")
                named.append(f"sd_{g}")
            else:
                return None
        for name in residual.param_names if residual is not None else ():
            values.append(f"{name}_log__" if name == "varident_ratio" else f"{name}_interval__")
            named.append(name)
        values.append("sigma_log__")
        return values, named

    @staticmethod
    def _shapes(design, names, residual=None) -> list[tuple]:
        q = {f"sd_{t.group}": (t.q,) for t in design.terms}
        if residual is not None:
            levels = residual.by_levels if isinstance(residual.variance, VarIdent) else [0]
            q.update(Phi=(), Rho=(), varident_ratio=(len(levels) - 1,))
        q.update({f"corr_{t.group}": (t.q, t.q) for t in design.terms})
        q.update({f"chol_{t.group}{z}": (t.q * (t.q + 1) // 2,) for t in design.terms
                  for z in ("", "_z")})
        q.update(beta=(len(design.fixef_names),), beta_z=(len(design.fixef_names),), sigma=())
        return [q[n] for n in names]

    @property
    def ndim(self) -> int:
        """Length of the unconstrained vector."""
        return int(sum(int(np.prod(s)) for s in self.value_shapes))

    def logp_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """The model's log-density (PyMC's, constants included) and its gradient at ``x``."""
        x = np.ascontiguousarray(x, dtype=np.float64)
        if self.residual:
            f = direct_residual_one_factor
            if self.dense:  # several factors' data end with the layout's flags
                f = direct_residual_blocked if len(self.groups) > 1 else direct_residual_dense
            lp, grad = f(x, *self.spec, *self.data, *self.residual)
        elif self.dense:
            lp, grad = direct_blocked(x, *self.spec, *self.data)
        elif self.small_q:
            lp, grad = direct_small_q(x, *self.spec, *self.data)
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
        p, bloc, bscale = self.spec[0], self.spec[3], self.spec[4]
        fkind, fq, foff, fc, soff = (self.spec[5], self.spec[6], self.spec[7], self.spec[11],
                                     self.spec[14])
        z = np.array(x[:p])
        out = {"beta_z": z, "beta": bloc + bscale * z, "sigma": np.array(np.exp(x[soff]))}
        for k, g in enumerate(self.groups):
            q, off = int(fq[k]), int(foff[k])
            if fkind[k] == 0:
                out[f"sd_{g}"] = np.exp(x[off:off + q])
                continue
            Lz = np.zeros((q, q))
            sd_corr_to_chol(np.ascontiguousarray(x[off:off + q * (q + 1) // 2]), q, Lz)
            rows, cols = np.tril_indices(q)
            packed = Lz[rows, cols]
            L = fc[k, :q][:, None] * Lz
            cov = L @ L.T
            sd = np.sqrt(np.diag(cov))
            out[f"chol_{g}"] = out[f"chol_{g}_z"] = packed
            out[f"sd_{g}"] = sd
            out[f"corr_{g}"] = cov / np.outer(sd, sd)
        if self.residual:
            rkind, roff, lo, hi, rpar = self.residual[:5]
            if rkind:
                out["Rho" if rkind == 2 else "Phi"] = np.array(
                    lo + (hi - lo) / (1.0 + np.exp(-x[roff])))
            start = roff + (rkind > 0)
            out["varident_ratio"] = np.exp(x[start:start + len(rpar)])
        return {n: out[n] for n in self.names}


def _n_residual(rd) -> int:
    """Unconstrained residual parameters: the correlation's and the VarIdent ratios."""
    ratios = len(rd.by_levels) - 1 if isinstance(rd.variance, VarIdent) else 0
    return (rd.correlation is not None) + ratios


def _residual_spec(rd, priors, roff: int, stats) -> tuple | None:
    """``(data, residual spec)`` of :mod:`bayeslmm.linalg.direct_residual` for a
    structure with statistics ``stats``; None for priors other than the defaults'
    families (a Uniform correlation, LogNormal ratios)."""
    rkind, lo, hi = 0, 0.0, 0.0
    if rd.correlation is not None:
        name = rd.param_names[0]
        prior = priors.residual[name]
        if prior.name != "Uniform" or set(prior.params) != {"lower", "upper"}:
            return None
        rkind = 2 if isinstance(rd.correlation, CompSymm) else 1
        lo, hi = float(prior.params["lower"]), float(prior.params["upper"])
    S = stats.n_strata
    rpar = np.zeros((S - 1, 2))
    if S > 1:
        prior = priors.residual["varident_ratio"]
        if prior.name != "LogNormal" or not set(prior.params) <= {"mu", "sigma"}:
            return None
        rpar[:, 0] = np.broadcast_to(np.asarray(prior.params.get("mu", 0.0), float), (S - 1,))
        rpar[:, 1] = np.broadcast_to(np.asarray(prior.params.get("sigma", 1.0), float),
                                     (S - 1,))
    first = stats.parts[0]
    f64 = np.float64
    spec = (rkind, roff, lo, hi, rpar, stats.kind.astype(np.int64), stats.value.astype(f64),
            stats.a.astype(np.int64), stats.b.astype(np.int64), stats.values.astype(f64),
            stats.counts.astype(f64), stats.strata_rows.astype(f64))
    if len(first.order) > 1:  # several factors: the blocked layout's values, stacked
        layout, values = blocked_stacks(stats.parts)
        values = kernel_stacks(layout, values)
        data = tuple(values[k] if k in VALUE_NAMES else np.ascontiguousarray(layout[k])
                     for k in DATA_NAMES[:-1])
        return (np.array(first.order, np.int64), *data, float(stats.n), bool(layout["full"]),
                bool(layout["blockdiag"])), spec
    st = stats.marginal_stacks()
    K, p1 = len(stats.parts), first.p + 1
    zz, zxy = st["zz"], st["z_xy"]
    if not first.order:  # no random effects: the dense kernel's empty layout
        zz, zxy = zz.reshape(K, 0, 0), zxy.reshape(K, 0, p1)
    data = (np.ascontiguousarray(zz), np.ascontiguousarray(zxy),
            np.ascontiguousarray(st["xy_xy"]), float(stats.n))
    if len(first.order) != 1:  # no random effects: the dense kernel's empty layout
        data = (np.array(first.order, np.int64), *data, np.array(first.m, np.int64))
    return data, spec
