"""Exceptions raised by bayeslmm.

Every user-facing error is a :class:`BayesLMMError`, raised before any PyMC work,
with a message that names the offending column, term or value and says what to do.
"""

from __future__ import annotations

import difflib


class BayesLMMError(ValueError):
    """Base class of all bayeslmm errors (a ``ValueError``)."""


class FormulaError(BayesLMMError):
    """The model formula cannot be read (syntax, bars, unknown terms)."""


class DataError(BayesLMMError):
    """The data do not fit the formula (missing columns, types, sizes)."""


class FitError(BayesLMMError):
    """A fit cannot be carried out or did not converge."""


def suggest(name: str, candidates) -> str:
    """Return a ' Did you mean ...?' hint for ``name`` among ``candidates``, or ''."""
    close = difflib.get_close_matches(name, [str(c) for c in candidates], n=3, cutoff=0.6)
    if not close:
        lower = {str(c).lower(): str(c) for c in candidates}
        if name.lower() in lower:
            close = [lower[name.lower()]]
    return f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
