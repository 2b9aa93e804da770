"""The marginal log-likelihood as one PyTensor Op, with its gradient, for every backend.

:class:`MarginalLogp` evaluates :func:`bayeslmm.linalg.marginal_kernel.marginal_logp_grad`:
the log-likelihood with b integrated out and its gradient, from cross-products, in one
call. PyTensor's C and Python backends call the numba kernel from ``perform``; its numba
backend (nutpie's) inlines it (``numba_funcify``), so compiling a marginal model costs
the priors' graph and nothing per factor or level; JAX (``bayeslmm[jax]``: numpyro, and
nutpie's JAX backend) gets the same log-likelihood written in ``jax.numpy`` and its
gradient by JAX (:func:`register_jax`).

The Op's outputs are the value and the gradient; its ``grad`` returns those outputs
(the same node, merged by PyTensor), so a log-density and gradient evaluation runs the
kernel once. With ``data_grads`` the gradient in the cross-products is returned too (for
cross-products that depend on parameters: residual structures).

Examples
--------
>>> import numpy as np, pytensor, pytensor.tensor as pt, bayeslmm as blm
>>> from bayeslmm.formula.design import build_design
>>> from bayeslmm.linalg.crossprod import CrossProducts
>>> d = build_design("Reaction ~ Days + (Days | Subject)", blm.datasets.load("sleepstudy"))
>>> a = CrossProducts.from_design(d).marginal_arrays()
>>> beta, sigma, L = pt.vector("beta"), pt.scalar("sigma"), pt.tensor3("L")
>>> lp = marginal_logp(a["zz"], a["z_xy"], a["xy_xy"], 180.0, [18], beta, sigma, L, qs=(2,))
>>> f = pytensor.function([beta, sigma, L], [lp, pytensor.grad(lp, sigma)])
>>> v, g = f([251.4, 10.47], 25.59, [[[24.74, 0.0], [0.42, 5.91]]])
>>> round(float(v), 4), bool(np.isfinite(g))
(-875.9996, True)
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import grad_not_implemented, grad_undefined
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.link.numba.dispatch import basic as numba_basic
from pytensor.link.numba.dispatch.basic import register_funcify_default_op_cache_key

from ..linalg.marginal_kernel import dense_logp_grad, marginal_logp_grad, one_factor_logp_grad

__all__ = ["MarginalLogp", "marginal_logp", "register_jax"]


class MarginalLogp(Op):
    """Outputs ``(logp, d_beta, d_sigma, d_Ls[, d_zz, d_z_xy, d_xy_xy])`` of inputs
    ``(zz, z_xy, xy_xy, n, ms, beta, sigma, Ls)``: ``ms`` holds the levels of each
    factor (data, so that one compiled model serves any number of levels), ``qs`` (a
    property, the structure) their coefficients, in the cross-products' order.

    Examples
    --------
    >>> MarginalLogp((2,), False)
    MarginalLogp(qs=(2,),data_grads=False)
    """

    __props__ = ("qs", "data_grads")

    def __init__(self, qs: tuple, data_grads: bool = False) -> None:
        self.qs = tuple(int(q) for q in qs)
        self.data_grads = bool(data_grads)

    def make_node(self, zz, z_xy, xy_xy, n, ms, beta, sigma, Ls) -> Apply:
        inputs = [pt.as_tensor_variable(x).astype("float64")
                  for x in (zz, z_xy, xy_xy, n, beta, sigma, Ls)]
        zz, z_xy, xy_xy, n, beta, sigma, Ls = inputs
        ms = pt.as_tensor_variable(ms).astype("int64")
        inputs.insert(4, ms)
        outputs = [pt.dscalar(), beta.type(), pt.dscalar(), Ls.type()]
        if self.data_grads:
            outputs += [zz.type(), z_xy.type(), xy_xy.type()]
        return Apply(self, inputs, outputs)

    def perform(self, node, inputs, outputs) -> None:
        zz, z_xy, xy_xy, n, ms, beta, sigma, Ls = inputs
        res = marginal_logp_grad(zz, z_xy, xy_xy, n, beta, sigma, Ls, self.qs, ms,
                                 self.data_grads)
        for k, storage in enumerate(outputs):
            storage[0] = np.asarray(res[k], dtype="float64")

    def grad(self, inputs, output_grads):
        gz = output_grads[0]
        outs = self(*inputs)
        zz, z_xy, xy_xy, n, ms, beta, sigma, Ls = inputs
        if self.data_grads:
            data = [gz * outs[4], gz * outs[5], gz * outs[6]]
        else:
            data = [grad_not_implemented(self, k, x) for k, x in enumerate((zz, z_xy, xy_xy))]
        return [*data, grad_undefined(self, 3, n), grad_undefined(self, 4, ms),
                gz * outs[1], gz * outs[2], gz * outs[3]]


def marginal_logp(zz, z_xy, xy_xy, n, ms, beta, sigma, Ls, *, qs,
                  data_grads: bool | None = None):
    """The marginal log-likelihood (a scalar tensor) of the Op's inputs; ``data_grads``
    defaults to whether any cross-product is a computed expression (not data)."""
    if data_grads is None:
        data_grads = any(getattr(pt.as_tensor_variable(x), "owner", None) is not None
                         for x in (zz, z_xy, xy_xy))
    return MarginalLogp(qs, data_grads)(zz, z_xy, xy_xy, n, ms, beta, sigma, Ls)[0]


@register_funcify_default_op_cache_key(MarginalLogp)
def _numba_marginal_logp(op, node, **kwargs):
    qs = np.array(op.qs, dtype=np.int64)
    grads = op.data_grads
    if len(op.qs) == 1:
        q = op.qs[0]

        if grads:
            @numba_basic.numba_njit
            def marginal(zz, z_xy, xy_xy, n, ms, beta, sigma, Ls):
                lp, gb, gs, gL, gzz, gzxy, gxx = one_factor_logp_grad(
                    zz, z_xy, xy_xy, n.item(), beta, sigma.item(),
                    np.ascontiguousarray(Ls[0, :q, :q]), True)
                gLs = np.zeros(Ls.shape)
                gLs[0, :q, :q] = gL
                return np.array(lp), gb, np.array(gs), gLs, gzz, gzxy, gxx
        else:
            @numba_basic.numba_njit
            def marginal(zz, z_xy, xy_xy, n, ms, beta, sigma, Ls):
                lp, gb, gs, gL, _, _, _ = one_factor_logp_grad(
                    zz, z_xy, xy_xy, n.item(), beta, sigma.item(),
                    np.ascontiguousarray(Ls[0, :q, :q]), False)
                gLs = np.zeros(Ls.shape)
                gLs[0, :q, :q] = gL
                return np.array(lp), gb, np.array(gs), gLs
    elif grads:
        @numba_basic.numba_njit
        def marginal(zz, z_xy, xy_xy, n, ms, beta, sigma, Ls):
            lp, gb, gs, gLs, gzz, gzxy, gxx = dense_logp_grad(
                zz, z_xy, xy_xy, n.item(), beta, sigma.item(), Ls, qs, ms, True)
            return np.array(lp), gb, np.array(gs), gLs, gzz, gzxy, gxx
    else:
        @numba_basic.numba_njit
        def marginal(zz, z_xy, xy_xy, n, ms, beta, sigma, Ls):
            lp, gb, gs, gLs, _, _, _ = dense_logp_grad(
                zz, z_xy, xy_xy, n.item(), beta, sigma.item(), Ls, qs, ms, False)
            return np.array(lp), gb, np.array(gs), gLs
    return marginal, 1


_JAX_REGISTERED = []


def register_jax() -> None:
    """Give PyTensor's JAX backend the Op (once; imports JAX, so only when it is used)."""
    if _JAX_REGISTERED:
        return
    import jax
    import jax.numpy as jnp
    from pytensor.link.jax.dispatch import jax_funcify

    def expand(Ls, ms, qs, Q):
        """L̃ (Q × Q) from the packed factors, levels as data: each position's factor,
        level and place in its block by gathers, so every shape is static."""
        sizes = jnp.asarray(qs) * ms
        ends = jnp.cumsum(sizes)
        i = jnp.arange(Q)
        k = jnp.searchsorted(ends, i, side="right")
        off = i - (ends - sizes)[k]
        qk = jnp.asarray(qs)[k]
        level, a = off // qk, off % qk
        same = (k[:, None] == k[None, :]) & (level[:, None] == level[None, :])
        return jnp.where(same, Ls[k[:, None], a[:, None], a[None, :]], 0.0)

    def logp(zz, z_xy, xy_xy, n, ms, beta, sigma, Ls, qs):
        u = jnp.concatenate([-beta, jnp.ones(1)])
        s = sigma**2
        rtr = u @ xy_xy @ u
        if len(qs) == 1:
            L = Ls[0, :qs[0], :qs[0]]
            A = 0.5 * (zz + jnp.swapaxes(zz, 1, 2))
            P = jnp.einsum("ka,jkl,lb->jab", L, A, L) + s * jnp.eye(qs[0])
            C = jnp.linalg.cholesky(P)
            w = jnp.einsum("ka,jk->ja", L, z_xy @ u)
            v = jax.scipy.linalg.solve_triangular(C, w[..., None], lower=True)[..., 0]
            logdet = 2.0 * jnp.sum(jnp.log(jnp.diagonal(C, axis1=1, axis2=2)))
            Q = zz.shape[0] * qs[0]
        else:
            Q = zz.shape[0]
            Lt = expand(Ls, ms, qs, Q)
            P = Lt.T @ (0.5 * (zz + zz.T)) @ Lt + s * jnp.eye(Q)
            C = jnp.linalg.cholesky(P)
            v = jax.scipy.linalg.solve_triangular(C, Lt.T @ (z_xy @ u), lower=True)
            logdet = 2.0 * jnp.sum(jnp.log(jnp.diag(C)))
        return -0.5 * (n * jnp.log(2 * jnp.pi) + (n - Q) * jnp.log(s) + logdet
                       + (rtr - jnp.sum(v**2)) / s)

    @jax_funcify.register(MarginalLogp)
    def _jax_marginal_logp(op, **kwargs):
        qs, grads = op.qs, op.data_grads
        argnums = (0, 1, 2, 5, 6, 7) if grads else (5, 6, 7)
        value_and_grad = jax.value_and_grad(logp, argnums=argnums)

        def marginal(zz, z_xy, xy_xy, n, ms, beta, sigma, Ls):
            lp, g = value_and_grad(zz, z_xy, xy_xy, n, ms, beta, sigma, Ls, qs)
            if grads:
                return lp, g[3], g[4], g[5], g[0], g[1], g[2]
            return lp, g[0], g[1], g[2]

        return marginal

    _JAX_REGISTERED.append(True)
