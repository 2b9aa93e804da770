"""Exceptions raised by bayeslmm.

Every user-facing error is a :class:`BayesLMMError`, raised before any PyMC work,
with a message that names the offending column, term or value and says what to do.

Examples
--------
>>> import bayeslmm as blm
>>> blm.datasets.load("sleepstudie")
Traceback (most recent call last):
    ...
bayeslmm.errors.DataError: No bundled dataset 'sleepstudie'. Did you mean 'sleepstudy'? ...
"""

from __future__ import annotations

import contextlib
import difflib
import inspect
import os
import warnings


class BayesLMMError(ValueError):
    """Base class of all bayeslmm errors (a ``ValueError``).

    Examples
    --------
    >>> try:
    ...     blm.datasets.load("sleepstudie")
    ... except blm.BayesLMMError as err:
    ...     print(type(err).__name__, isinstance(err, ValueError))
    DataError True
    """


class FormulaError(BayesLMMError):
    """The model formula cannot be read (syntax, bars, unknown terms).

    Examples
    --------
    >>> blm.LMM("Reaction ~ Days + (Days | )", blm.datasets.load("sleepstudy"))
    Traceback (most recent call last):
        ...
    bayeslmm.errors.FormulaError: Random-effect term '(Days | )' ... has no grouping factor.
    """


class DataError(BayesLMMError):
    """The data do not fit the formula (missing columns, types, sizes).

    Examples
    --------
    >>> blm.LMM("Reaction ~ Days + (Days | Subjekt)", blm.datasets.load("sleepstudy"))
    Traceback (most recent call last):
        ...
    bayeslmm.errors.DataError: Unknown grouping column 'Subjekt' ... Did you mean 'Subject'? ...
    """


class FitError(BayesLMMError):
    """A fit cannot be carried out or did not converge.

    Examples
    --------
    >>> blm.LMM("Yield ~ 1 + (1 | Batch)", blm.datasets.load("Dyestuff")).fit_map("MLE")
    Traceback (most recent call last):
        ...
    bayeslmm.errors.FitError: method must be one of ['ML', 'REML'] (got 'MLE').
    """


def suggest(name: str, candidates) -> str:
    """Return a ' Did you mean ...?' hint for ``name`` among ``candidates``, or ''.

    Examples
    --------
    >>> suggest("Subjekt", ["Subject", "Days"]), suggest("zzz", ["Subject", "Days"])
    (" Did you mean 'Subject'?", '')
    """
    close = difflib.get_close_matches(name, [str(c) for c in candidates], n=3, cutoff=0.6)
    if not close:
        lower = {str(c).lower(): str(c) for c in candidates}
        if name.lower() in lower:
            close = [lower[name.lower()]]
    return f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def user_stacklevel() -> int:
    """The ``stacklevel`` that points a warning at the first frame outside bayeslmm.

    Call it as ``warnings.warn(msg, stacklevel=user_stacklevel())``: the warning then
    names the user's line, however deep in the package it was raised (pandas'
    ``find_stack_level`` does the same).

    Examples
    --------
    >>> user_stacklevel() >= 1
    True
    """
    frame = inspect.currentframe()
    caller = frame.f_back if frame is not None else None  # the function that warns
    level = 1
    while caller is not None and os.path.abspath(caller.f_code.co_filename).startswith(
            _PACKAGE_DIR + os.sep):
        caller = caller.f_back
        level += 1
    return level


#: Library warnings that tell a user of bayeslmm nothing they can act on: PyTensor's
#: missing BLAS (the models do their dense algebra in NumPy/SciPy and numba), ArviZ's
#: notice of its coming refactor, PyMC's note that prior predictive draws ignore
#: potentials (bayeslmm draws the response from the conditional model, which has none),
#: and NumPy's note on PyMC's LKJCholeskyCov density at a point whose sds differ by
#: ~10⁸ (its rows' variances are differences of one cumulative sum, which cancel): the
#: log-density there is not finite and NUTS rejects the step, as it should.
LIBRARY_NOISE = (
    "PyTensor could not link to a BLAS",
    ".*ArviZ is undergoing a major refactor",
    "The effect of Potentials on other parameters is ignored",
    "invalid value encountered in accumulate",
)


@contextlib.contextmanager
def quiet_libraries():
    """Hold back :data:`LIBRARY_NOISE` inside the block.

    The user's warning filters are as they were afterwards.

    Examples
    --------
    >>> with quiet_libraries():
    ...     warnings.warn("PyTensor could not link to a BLAS installation.")
    """
    with warnings.catch_warnings():
        for message in LIBRARY_NOISE:
            warnings.filterwarnings("ignore", message=message)
        yield
