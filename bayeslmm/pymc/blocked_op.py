"""The marginal log-likelihood of designs with several grouping factors (crossed,
nested) as one PyTensor Op: :func:`bayeslmm.linalg.blocked_kernel.blocked_kernel` and
its gradient in one call, for every backend.

PyTensor's C and Python backends call the numba kernel from ``perform``; its numba
backend (nutpie's) inlines it; JAX (numpyro, nutpie's JAX backend) calls it back on the
host (``jax.pure_callback``) with the kernel's own gradient as the derivative
(:func:`register_jax`), since the blocked factorisation has no ``jax.numpy`` form that
keeps its sparsity.

The layout's arrays (:func:`bayeslmm.linalg.blocked_layout.blocked_arrays`) are the
Op's data inputs; its structure (the factors' q, whether the design is fully crossed
or nested) its properties.

Examples
--------
>>> import numpy as np, pytensor, pytensor.tensor as pt, bayeslmm as blm
>>> from bayeslmm.formula.design import build_design
>>> from bayeslmm.linalg.crossprod import CrossProducts
>>> from bayeslmm.linalg.blocked_layout import blocked_arrays
>>> d = build_design("diameter ~ 1 + (1 | plate) + (1 | sample)",
...                  blm.datasets.load("Penicillin"))
>>> cp = CrossProducts.from_design(d)
>>> a = blocked_arrays(cp)
>>> beta, sigma, L = pt.vector("beta"), pt.scalar("sigma"), pt.tensor3("L")
>>> lp = blocked_logp(a, beta, sigma, L, qs=cp.q)
>>> f = pytensor.function([beta, sigma, L], [lp, pytensor.grad(lp, sigma)])
>>> v, g = f([22.97], 0.55, [[[0.85]], [[1.77]]])
>>> round(float(v), 6), bool(np.isfinite(g))
(-166.094732, True)
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import grad_not_implemented, grad_undefined
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.link.numba.dispatch import basic as numba_basic
from pytensor.link.numba.dispatch.basic import register_funcify_default_op_cache_key

from ..linalg.blocked_kernel import blocked_kernel, blocked_kernel_grads
from ..linalg.blocked_layout import VALUE_NAMES

__all__ = ["BlockedMarginalLogp", "blocked_logp", "register_jax", "DATA_NAMES"]

#: the layout's arrays the Op takes, in its input order
DATA_NAMES = ("a11", "c1", "bptr", "bblk", "tptr", "tent", "eown", "a21", "a21d", "boff",
              "bfac", "a22", "c2", "xy_xy", "n")
_INTS = {"bptr", "bblk", "tptr", "tent", "eown", "boff", "bfac"}


class BlockedMarginalLogp(Op):
    """Outputs ``(logp, d_beta, d_sigma, d_Ls)`` of inputs (the layout's arrays in
    :data:`DATA_NAMES` order, then ``beta``, ``sigma``, ``Ls``); with ``data_grads``,
    then the gradient in each of the layout's values (:data:`~bayeslmm.linalg.
    blocked_layout.VALUE_NAMES`), for values that depend on parameters (a residual
    structure's statistics).

    Examples
    --------
    >>> BlockedMarginalLogp((2, 1), True, False)
    BlockedMarginalLogp(qs=(2, 1),full=True,blockdiag=False,data_grads=False)
    """

    __props__ = ("qs", "full", "blockdiag", "data_grads")

    def __init__(self, qs: tuple, full: bool, blockdiag: bool, data_grads: bool = False) -> None:
        self.qs = tuple(int(q) for q in qs)
        self.full = bool(full)
        self.blockdiag = bool(blockdiag)
        self.data_grads = bool(data_grads)

    def make_node(self, *inputs) -> Apply:
        data, (beta, sigma, Ls) = inputs[:len(DATA_NAMES)], inputs[len(DATA_NAMES):]
        data = [pt.as_tensor_variable(x).astype("int64" if name in _INTS else "float64")
                for name, x in zip(DATA_NAMES, data, strict=True)]
        beta, sigma, Ls = (pt.as_tensor_variable(x).astype("float64")
                           for x in (beta, sigma, Ls))
        outputs = [pt.dscalar(), beta.type(), pt.dscalar(), Ls.type()]
        if self.data_grads:
            outputs += [data[DATA_NAMES.index(k)].type() for k in VALUE_NAMES]
        return Apply(self, [*data, beta, sigma, Ls], outputs)

    def perform(self, node, inputs, outputs) -> None:
        res = _call(inputs, self.qs, self.full, self.blockdiag, self.data_grads)
        for k, storage in enumerate(outputs):
            storage[0] = np.asarray(res[k], dtype="float64")

    def grad(self, inputs, output_grads):
        gz = output_grads[0]
        outs = self(*inputs)
        data = []
        for k, (name, x) in enumerate(zip(DATA_NAMES, inputs, strict=False)):
            if self.data_grads and name in VALUE_NAMES:
                data.append(gz * outs[4 + VALUE_NAMES.index(name)])
            elif name in VALUE_NAMES:
                data.append(grad_not_implemented(self, k, x))
            else:
                data.append(grad_undefined(self, k, x))
        return [*data, gz * outs[1], gz * outs[2], gz * outs[3]]


def _call(inputs, qs, full, blockdiag, data_grads=False):
    *data, beta, sigma, Ls = inputs
    out = blocked_kernel_grads(*[np.ascontiguousarray(x) for x in data[:-1]], float(data[-1]),
                               full, blockdiag, np.ascontiguousarray(beta, np.float64),
                               float(sigma), np.ascontiguousarray(Ls, np.float64),
                               np.asarray(qs, np.int64), data_grads)
    return out if data_grads else out[:4]


def blocked_logp(arrays: dict, beta, sigma, Ls, *, qs, data_grads: bool | None = None):
    """The marginal log-likelihood (a scalar tensor) from the layout's ``arrays`` (NumPy
    arrays or PyMC data; ``full`` and ``blockdiag`` read as the structure);
    ``data_grads`` defaults to whether any of its values is a computed expression
    (not data)."""
    if data_grads is None:
        data_grads = any(getattr(pt.as_tensor_variable(arrays[k]), "owner", None) is not None
                         for k in VALUE_NAMES)
    op = BlockedMarginalLogp(qs, bool(_value(arrays["full"])),
                             bool(_value(arrays["blockdiag"])), data_grads)
    return op(*[arrays[k] for k in DATA_NAMES], beta, sigma, Ls)[0]


def _value(x):
    return x.get_value() if hasattr(x, "get_value") else x


@register_funcify_default_op_cache_key(BlockedMarginalLogp)
def _numba_blocked_logp(op, node, **kwargs):
    qs = np.array(op.qs, dtype=np.int64)
    full, blockdiag = op.full, op.blockdiag

    if op.data_grads:
        @numba_basic.numba_njit
        def blocked(a11, c1, bptr, bblk, tptr, tent, eown, a21, a21d, boff, bfac, a22, c2,
                    xy_xy, n, beta, sigma, Ls):
            out = blocked_kernel_grads(a11, c1, bptr, bblk, tptr, tent, eown, a21, a21d, boff,
                                       bfac, a22, c2, xy_xy, n.item(), full, blockdiag, beta,
                                       sigma.item(), Ls, qs, True)
            return (np.array(out[0]), out[1], np.array(out[2]), out[3], out[4], out[5],
                    out[6], out[7], out[8], out[9], out[10])
    else:
        @numba_basic.numba_njit
        def blocked(a11, c1, bptr, bblk, tptr, tent, eown, a21, a21d, boff, bfac, a22, c2,
                    xy_xy, n, beta, sigma, Ls):
            lp, gb, gs, gLs = blocked_kernel(a11, c1, bptr, bblk, tptr, tent, eown, a21, a21d,
                                             boff, bfac, a22, c2, xy_xy, n.item(), full,
                                             blockdiag, beta, sigma.item(), Ls, qs)
            return np.array(lp), gb, np.array(gs), gLs

    return blocked, 1


_JAX_REGISTERED = []


def register_jax() -> None:
    """Give PyTensor's JAX backend the Op (once; imports JAX, so only when it is used)."""
    if _JAX_REGISTERED:
        return
    import jax
    import jax.numpy as jnp
    from pytensor.link.jax.dispatch import jax_funcify

    @jax_funcify.register(BlockedMarginalLogp)
    def _jax_blocked_logp(op, **kwargs):
        qs, full, blockdiag, grads = op.qs, op.full, op.blockdiag, op.data_grads
        values = [DATA_NAMES.index(k) for k in VALUE_NAMES] if grads else []

        def host(*inputs):
            res = _call([np.asarray(x) for x in inputs], qs, full, blockdiag, grads)
            return tuple(np.asarray(x, dtype=np.float64) for x in res)

        def callback(inputs):
            beta, Ls = inputs[-3], inputs[-1]
            shapes = (jax.ShapeDtypeStruct((), jnp.float64),
                      jax.ShapeDtypeStruct(beta.shape, jnp.float64),
                      jax.ShapeDtypeStruct((), jnp.float64),
                      jax.ShapeDtypeStruct(Ls.shape, jnp.float64),
                      *[jax.ShapeDtypeStruct(inputs[k].shape, jnp.float64) for k in values])
            return jax.pure_callback(host, shapes, *inputs, vmap_method="sequential")

        @jax.custom_vjp
        def blocked(*inputs):
            return callback(inputs)

        def forward(*inputs):
            out = callback(inputs)
            return out, (out[1:], inputs)

        def backward(res, cotangents):
            # the value's derivative is the kernel's gradient; the gradient outputs are
            # not differentiated again (NUTS needs first derivatives only)
            (gb, gs, gL, *gdata), inputs = res
            g = cotangents[0]
            zeros = [np.zeros(np.shape(x), dtype=jax.dtypes.float0)
                     if jnp.issubdtype(jnp.result_type(x), jnp.integer) else jnp.zeros_like(x)
                     for x in inputs[:len(DATA_NAMES)]]
            for k, gk in zip(values, gdata, strict=True):  # the layout's values
                zeros[k] = g * gk
            return (*zeros, g * gb, g * gs, g * gL)

        blocked.defvjp(forward, backward)
        return blocked

    _JAX_REGISTERED.append(True)
