"""Objects shared by the docstring examples (doctests).

Each is built once a session, and only for the doctests that name it, so that the examples
stay fast (no NUTS run per docstring). The doctests that use a NUTS fit (``post``,
``post_int``, ``kpost``, or one of their own) belong to the sampling tier (marked
``slow``). Outside that tier PyTensor compiles in its FAST_COMPILE mode (no C compiler:
the oracle checks need correct numbers, not fast code). The class docstrings say how
each object is made:

============  ==============================================================================
``blm``       ``import bayeslmm as blm``
``post``      :class:`~bayeslmm.PosteriorResult`: sleepstudy,
              ``Reaction ~ Days + (Days | Subject)``, NUTS, 2 chains × 500 draws
``post_int``  the same with random intercepts only, ``(1 | Subject)``
``mapfit``    :class:`~bayeslmm.MapResult`: the model of ``post`` by REML
``prof``      :class:`~bayeslmm.results.profile.Profile`: Dyestuff, ``Yield ~ 1 + (1 | Batch)``,
              REML, ``fit.profile()``
``boot``      :class:`~bayeslmm.results.bootstrap.BootstrapResult`: the same fit,
              ``fit.bootstrap(40, random_seed=1, cores=1)``
``kmodel``    :class:`~bayeslmm.kernel_model.KernelModel`: a genomic LMM (40 rows,
              100 markers)
``kmap``      :class:`~bayeslmm.KernelMapResult`: ``kmodel`` fitted by REML
``kpost``     :class:`~bayeslmm.KernelPosteriorResult`: the same, NUTS
============  ==============================================================================
"""

from __future__ import annotations

import re

import matplotlib
import numpy as np
import pandas as pd
import pytensor
import pytest

import bayeslmm as blm

NUTS = {"draws": 500, "tune": 500, "chains": 2, "random_seed": 1, "progressbar": False}


def sleepstudy_model(random: str = "Days | Subject") -> blm.LMM:
    return blm.LMM(f"Reaction ~ Days + ({random})", blm.datasets.load("sleepstudy"))


def dyestuff_fit() -> blm.MapResult:
    return blm.LMM("Yield ~ 1 + (1 | Batch)", blm.datasets.load("Dyestuff")).fit_map()


def genomic_model() -> blm.LMM:
    rng = np.random.default_rng(0)
    W = rng.normal(size=(40, 100))
    df = pd.DataFrame({"y": W @ rng.normal(scale=0.1, size=100) + rng.normal(size=40)})
    return blm.LMM("y ~ 1", df, random_matrices={"snps": W})


#: the shared objects made by NUTS: doctests naming them run in the sampling tier
SAMPLED = {"post", "post_int", "kpost"}

_BUILD = {
    "blm": lambda: blm,
    "post": lambda: sleepstudy_model().fit(**NUTS),
    "post_int": lambda: sleepstudy_model("1 | Subject").fit(**NUTS),
    "mapfit": lambda: sleepstudy_model().fit_map(),
    "prof": lambda: dyestuff_fit().profile(),
    "boot": lambda: dyestuff_fit().bootstrap(40, random_seed=1, cores=1, progressbar=False),
    "kmodel": genomic_model,
    "kmap": lambda: genomic_model().fit_map(),
    "kpost": lambda: genomic_model().fit(**NUTS),
}


def _names_used(dtest) -> set[str]:
    """The shared objects a doctest uses (named, not assigned by the doctest itself)."""
    source = "\n".join(ex.source for ex in dtest.examples)
    assigned = {m.group(1) for m in re.finditer(r"^(\w+) *=", source, re.M)}
    return {n for n in _BUILD if n not in assigned and re.search(rf"\b{n}\b", source)}


def pytest_collection_modifyitems(items):
    for item in items:
        dtest = getattr(item, "dtest", None)
        if dtest is None:
            continue
        source = "\n".join(ex.source for ex in dtest.examples)
        if _names_used(dtest) & SAMPLED or re.search(r"\.fit\(", source):
            item.add_marker(pytest.mark.slow)  # NUTS runs: the sampling tier


@pytest.fixture(autouse=True)
def _fast_compile_outside_the_sampling_tier(request):
    if request.node.get_closest_marker("slow") is not None:
        yield
        return
    with pytensor.config.change_flags(mode="FAST_COMPILE"):
        yield


@pytest.fixture(scope="session")
def _doc_objects() -> dict:
    return {}


@pytest.fixture(autouse=True)
def _doctest_shared_objects(request, _doc_objects):
    """Put the shared objects a doctest names into its namespace (doctests only)."""
    dtest = getattr(request.node, "dtest", None)
    if dtest is None:
        yield
        return
    matplotlib.use("Agg")
    namespace = request.getfixturevalue("doctest_namespace")
    for name in _names_used(dtest):
        if name not in _doc_objects:
            _doc_objects[name] = _BUILD[name]()
        namespace[name] = _doc_objects[name]
    yield
    import matplotlib.pyplot as plt

    plt.close("all")
