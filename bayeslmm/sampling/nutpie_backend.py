"""Compiling a PyMC model for nutpie, quickly, and keeping what was compiled.

nutpie offers two ways in: its numba backend wraps the log-density in a C callback
that numba compiles afresh in every process (15–30 s for a small mixed model), and
its JAX backend, which pays JAX's dispatch (~0.5 ms) on every gradient. The marginal
LMM's gradient costs ~20 µs, so both dwarf it. The way used here for such models
compiles the log-density and its gradient with PyTensor's numba linker and hands
nutpie a Python function that calls it; the chains run in one thread (the numba
function holds the GIL, so more threads only contend).

Everything is compiled in the process that fits, in the foreground: no process of
bayeslmm outlives the call. Three caches make a repeated model cheap:

* in memory, by the structure of the model's graph
  (:data:`bayeslmm.sampling.compiled.COMPILED`): a second fit of the same formula on
  other data (any size) swaps the data in (``with_data``) and compiles nothing;
* on disk (:func:`cache_dir`: ``~/.cache/bayeslmm``, or ``$BAYESLMM_CACHE_DIR``; about
  2 MB a model structure), the rewritten PyTensor functions, pickled. PyTensor's
  rewrites are not deterministic across processes (they iterate over hashed sets), so
  without this each new process would rewrite the graph into a slightly different one
  and miss numba's cache, paying its compilation again. Set ``BAYESLMM_CACHE_DIR=""``
  to turn it off; delete the folder to clear it. An entry is written whole (to a
  temporary file, then renamed), and one that cannot be read is compiled again;
* PyTensor's own numba cache of its operations (``~/.pytensor``), filled by the first
  model ever fitted on a machine (the slowest fit, 20–60 s).

The graph depends on the data only through ``pm.Data`` containers (see
:mod:`bayeslmm.pymc.marginal`), which is what makes the caches valid across datasets.
With JAX installed, a model whose gradient is costly (tens of thousands of groups)
runs on JAX instead, its chains in parallel threads; see :func:`pick_backend`.

Examples
--------
>>> import bayeslmm as blm
>>> m = blm.LMM("Reaction ~ Days + (Days | Subject)", blm.datasets.load("sleepstudy"))
>>> pick_backend(cost_hint=18 * 2 * 2)
'numba'
>>> len(structure_key(m.marginal_model, "numba"))
64
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib.util
import io
import os
import pickle
import threading
import warnings
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import cloudpickle
import numpy as np
import pymc as pm
import pytensor

from ..errors import user_stacklevel

__all__ = ["compile_model", "compile_direct", "pick_backend", "structure_key", "memory_key",
           "model_data", "is_cached", "cache_dir", "SMALL_MODEL"]

#: below this cost hint (q²·groups for the marginal model) one thread calling numba
#: beats parallel chains under JAX (measured in benchmarks/bench_sampling.py)
SMALL_MODEL = 20_000


def pick_backend(cost_hint: int, cacheable: bool = True) -> str:
    """``"numba"``, compiled in the process that fits (once per structure, then read
    from the caches); ``"jax"`` only when JAX is installed (``bayeslmm[jax]``) and a
    gradient is costly enough that parallel chains pay for JAX's dispatch (~0.5 ms a
    call). ``cacheable`` is accepted for symmetry: an uncacheable model compiles for
    numba each time it is fitted."""
    if cost_hint <= SMALL_MODEL or importlib.util.find_spec("jax") is None:
        return "numba"
    return "jax"


def model_data(model: pm.Model) -> dict[str, np.ndarray]:
    """The values of the model's ``pm.Data`` containers, by name (for ``with_data``)."""
    return {v.name: v.get_value() for v in model.data_vars}


def structure_key(model: pm.Model, backend: str) -> str:
    """A hash of the model's graph (types and constants, not data values) and of the
    library versions: equal keys mean one compiled model serves both."""
    buf = io.StringIO()
    outs = [model.logp(), *model.unobserved_value_vars]
    pytensor.dprint(outs, file=buf, print_type=True)
    for v in model.value_vars:
        buf.write(f"{v.name}:{v.type}\n")
    for dim in _used_dims(model):  # sizes of the variables (not of the data)
        buf.write(f"{dim}:{len(model.coords[dim])}\n")
    for lib in ("pytensor", "pymc", "nutpie", "numba", "bayeslmm"):
        buf.write(f"{lib}={_version(lib)}\n")
    buf.write(backend)
    return hashlib.sha256(buf.getvalue().encode()).hexdigest()


def _version(lib: str) -> str:
    try:
        return version(lib)
    except PackageNotFoundError:
        return "none"


def memory_key(model: pm.Model, backend: str, skey: str | None = None) -> tuple:
    """:func:`structure_key` (``skey`` if already computed) plus the coordinate labels
    the draws are stored under (a compiled nutpie model keeps its labels)."""
    labels = tuple((d, tuple(map(str, model.coords[d]))) for d in _used_dims(model))
    return skey or structure_key(model, backend), labels


def _used_dims(model: pm.Model) -> list[str]:
    return sorted({d for dims in model.named_vars_to_dims.values() for d in dims
                   if d in model.coords})


def compile_model(model: pm.Model, backend: str, *, key: str | None = None):
    """A nutpie model for ``model``. With ``key`` (from :func:`structure_key`) the
    numba functions are read from / written to the disk cache."""
    # nutpie adds made-up dims (chol_<g>_dim_0) to the dict it is given, which is the
    # model's own: PyMC then cannot copy the model (compute_log_likelihood fails). The
    # compiled model gets its own copy; the model's dict is restored.
    saved = dict(model.named_vars_to_dims)
    try:
        compiled = _compile(model, backend, key)
        return dataclasses.replace(compiled, dims=dict(compiled.dims))
    finally:
        model.named_vars_to_dims.clear()
        model.named_vars_to_dims.update(saved)


def _compile(model: pm.Model, backend: str, key: str | None):
    import nutpie

    if backend == "numba" and _has_internals():
        # no C compilation at all: its first use in a process loads PyTensor's C
        # cache (1–2 s); the helper functions (shapes, initial point) run in Python
        with pytensor.config.change_flags(cxx=""):
            return _numba_pyfunc(model, key)
    if backend == "jax":
        from ..pymc.marginal import register_jax_ops

        register_jax_ops()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # not frozen: pm.Data stay inputs, so with_data() can swap them. Without the
        # internals (another nutpie), its own numba backend: slow to compile
        return nutpie.compile_pymc_model(model, freeze_model=False, backend=backend,
                                         **({"gradient_backend": "jax"}
                                            if backend == "jax" else {}))


def _has_internals() -> bool:
    """nutpie's internals that :func:`_numba_pyfunc` reuses (nutpie 0.16)."""
    try:
        from nutpie.compile_pymc import (  # noqa: F401
            _make_functions,
            _prepare_dims_and_coords,
            _rv_dict_to_flat_array_wrapper,
            _wrap_with_lock,
        )
        from nutpie.compiled_pyfunc import from_pyfunc  # noqa: F401
    except ImportError:
        return False
    return True


def is_cached(key: str) -> bool:
    """Whether the disk cache holds an entry for ``key``.

    >>> is_cached("0" * 64)
    False
    """
    folder = cache_dir()
    return folder is not None and (folder / f"{key}.pkl").exists()


def cache_dir() -> Path | None:
    """The on-disk compile cache: ``$BAYESLMM_CACHE_DIR`` (None when set to ""), else
    ``$XDG_CACHE_HOME/bayeslmm`` or ``~/.cache/bayeslmm``.

    >>> import os
    >>> os.environ.get("BAYESLMM_CACHE_DIR") is not None or cache_dir().name == "bayeslmm"
    True
    """
    env = os.environ.get("BAYESLMM_CACHE_DIR")
    if env is not None:
        return Path(env) if env else None
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "bayeslmm"


def _load(key: str | None):
    folder = cache_dir()
    path = folder / f"{key}.pkl" if key and folder else None
    if path is None or not path.exists():
        return None
    try:
        with open(path, "rb") as f:
            return pickle.load(f)
    except Exception:  # a stale or corrupt entry: compile again and overwrite it
        return None


def _store(key: str | None, parts: dict) -> None:
    folder = cache_dir()
    if not key or folder is None:
        return
    # one temporary per writer (process and thread): concurrent writers of one entry
    # never write into each other's file
    tmp = folder / f"{key}.{os.getpid()}.{threading.get_ident()}.tmp"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            # cloudpickle: some graphs hold OpFromGraph gradients defined in closures
            cloudpickle.dump(parts, f)
        tmp.replace(folder / f"{key}.pkl")  # atomic: readers never see half a file
    except Exception as err:  # a read-only home must not stop a fit
        with contextlib.suppress(OSError):  # nothing half-written left behind
            tmp.unlink()
        warnings.warn(f"bayeslmm could not write its compile cache in {folder}: {err}",
                      stacklevel=user_stacklevel())


def _numba_pyfunc(model: pm.Model, key: str | None):
    """nutpie's own wiring for a Python log-density
    (``nutpie.compile_pymc._compile_pymc_model_jax``), with PyTensor's numba-compiled
    logp and gradient in place of JAX's."""
    from nutpie.compile_pymc import (
        _make_functions,
        _prepare_dims_and_coords,
        _rv_dict_to_flat_array_wrapper,
        _wrap_with_lock,
    )
    from nutpie.compiled_pyfunc import from_pyfunc
    from pymc.initial_point import make_initial_point_fn

    start_fn = _wrap_with_lock(make_initial_point_fn(
        model=model, jitter_rvs=set(model.free_RVs), return_transformed=True))
    start_fn(0)  # compiles its inner graphs (OpFromGraph) now, under cxx=""
    parts = _load(key)
    if parts is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ndim, _, logp_pt, expand_pt, _, shape_info = _make_functions(
                model, mode="NUMBA", compute_grad=True, join_expanded=False,
                pymc_initial_point_fn=start_fn)
        parts = {"ndim": ndim, "logp": logp_pt, "expand": expand_pt,
                 "shape_info": shape_info, "nfree": len(model.free_RVs)}
        _store(key, parts)
    names, _, shapes = parts["shape_info"]
    nfree = parts["nfree"]
    initial_point_fn = _rv_dict_to_flat_array_wrapper(start_fn, names=names[:nfree],
                                                      shapes=shapes[:nfree])
    logp_fn, expand_fn = parts["logp"].vm.jit_fn, parts["expand"].vm.jit_fn
    logp_shared = [v.name for v in parts["logp"].get_shared()]
    expand_shared = [v.name for v in parts["expand"].get_shared()]
    data = model_data(model)
    shared = {n: np.asarray(data[n]) for n in (*logp_shared, *expand_shared)}

    def make_logp():
        def logp(x, **data):
            value, grad = logp_fn(x, *[data[n] for n in logp_shared])
            return float(value), np.asarray(grad, dtype="float64")
        return logp

    def make_expand(seed1, seed2, chain):
        def expand(x, **data):
            values = expand_fn(x, *[data[n] for n in expand_shared])
            return {n: np.asarray(v, dtype="float64").reshape(s)
                    for n, v, s in zip(names, values, shapes, strict=True)}
        return expand

    dims, coords = _prepare_dims_and_coords(model, parts["shape_info"])
    return from_pyfunc(
        ndim=parts["ndim"], make_logp_fn=make_logp, make_expand_fn=make_expand,
        make_initial_point_fn=initial_point_fn,
        expanded_dtypes=[np.dtype("float64")] * len(names), expanded_shapes=shapes,
        expanded_names=names, shared_data=shared, dims=dims, coords=coords)


def compile_direct(model: pm.Model, direct):
    """A nutpie model evaluating ``direct`` (a :class:`~bayeslmm.pymc.direct.DirectModel`
    of ``model``): precompiled numba code, so nothing is compiled here but PyMC's
    initial-point function (in Python mode); PyMC's initial points and names."""
    from nutpie.compile_pymc import _rv_dict_to_flat_array_wrapper, _wrap_with_lock
    from nutpie.compiled_pyfunc import from_pyfunc
    from pymc.initial_point import make_initial_point_fn

    with pytensor.config.change_flags(cxx=""):
        start_fn = _wrap_with_lock(make_initial_point_fn(
            model=model, jitter_rvs=set(model.free_RVs), return_transformed=True))
        start_fn(0)
    initial_point_fn = _rv_dict_to_flat_array_wrapper(
        start_fn, names=direct.value_names, shapes=direct.value_shapes)

    def make_logp():
        def logp(x, **data):
            return direct.logp_grad(x)
        return logp

    def make_expand(seed1, seed2, chain):
        def expand(x, **data):
            return direct.expand(x)
        return expand

    dims = {n: model.named_vars_to_dims[n] for n in direct.names
            if n in model.named_vars_to_dims}
    coords = {d: list(model.coords[d]) for dd in dims.values() for d in dd}
    return from_pyfunc(
        ndim=direct.ndim, make_logp_fn=make_logp, make_expand_fn=make_expand,
        make_initial_point_fn=initial_point_fn,
        expanded_dtypes=[np.dtype("float64")] * len(direct.names),
        expanded_shapes=direct.shapes, expanded_names=direct.names, dims=dims, coords=coords)
