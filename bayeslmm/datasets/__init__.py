"""Classic mixed-model datasets shipped with bayeslmm (from lme4, nlme and rstanarm).

Provenance, licences and descriptions are in ``PROVENANCE.md`` beside this file.
Factor columns come back as pandas categoricals in R's level order (ordered where R's
factor is ordered), so that coefficients match R's (``Orthodont``: ``Sex[Female]``).

Examples
--------
>>> from bayeslmm import datasets
>>> df = datasets.load("sleepstudy")
>>> df.shape, list(df["Subject"].cat.categories[:2])
((180, 3), ['308', '309'])
"""

from __future__ import annotations

import json
from functools import cache, lru_cache
from importlib import resources

import pandas as pd

from ..errors import DataError, suggest

__all__ = ["load", "names", "describe"]

_DESCRIPTIONS = {
    "sleepstudy": "Reaction times in a sleep deprivation study (lme4)",
    "Dyestuff": "Yield of dyestuff by batch (lme4)",
    "Dyestuff2": "Simulated yield by batch; singular fit (lme4)",
    "Penicillin": "Variation in penicillin testing; crossed plate × sample (lme4)",
    "Pastes": "Paste strength by batch and cask; nested (lme4)",
    "InstEval": "Lecture evaluations at ETH; 73,421 rows, crossed (lme4)",
    "Orthodont": "Growth curve data on an orthodontic measurement (nlme)",
    "Ovary": "Counts of ovarian follicles in mares (nlme)",
    "radon": "Radon levels in Minnesota houses (rstanarm; Gelman and Hill 2007)",
    "Wheat2": "Wheat yield trial with field coordinates; spatial (nlme)",
    "cake": "Breakage angle of chocolate cakes; ordered temperature (lme4)",
    "fieldplots": "Simulated plots with 2-D coordinates within sites (models/make_fieldplots.R)",
    "bcg": "BCG vaccine trials: log risk ratios and sampling variances; meta-analysis "
           "(Colditz et al. 1994)",
}


def _files():
    return resources.files(__name__)


@lru_cache(maxsize=1)
def _factors() -> dict:
    return json.loads((_files() / "factors.json").read_text())


def names() -> list[str]:
    """Names of the bundled datasets.

    Examples
    --------
    >>> "sleepstudy" in names()
    True
    """
    return list(_DESCRIPTIONS)


def describe() -> pd.DataFrame:
    """A table of the bundled datasets: name, rows, columns, description.

    Examples
    --------
    >>> describe()[["name", "rows", "columns"]].head(3)
             name  rows                  columns
    0  sleepstudy   180  Reaction, Days, Subject
    1    Dyestuff    30             Batch, Yield
    2   Dyestuff2    30             Batch, Yield
    """
    rows = []
    for n in names():
        df = load(n)
        rows.append({"name": n, "rows": len(df), "columns": ", ".join(df.columns),
                     "description": _DESCRIPTIONS[n]})
    return pd.DataFrame(rows)


def load(name: str) -> pd.DataFrame:
    """Load a bundled dataset as a DataFrame.

    Parameters
    ----------
    name : str
        One of :func:`names` (case-insensitive).

    Returns
    -------
    DataFrame
        A fresh copy; factor columns are categoricals in R's level order.

    Examples
    --------
    >>> load("Orthodont")["Sex"].cat.categories.tolist()
    ['Male', 'Female']
    """
    lookup = {n.lower(): n for n in names()}
    key = lookup.get(str(name).lower())
    if key is None:
        raise DataError(f"No bundled dataset {name!r}.{suggest(str(name), names())} "
                        f"Available: {names()}.")
    return _read(key).copy()


@cache
def _read(key: str) -> pd.DataFrame:
    path = _files() / (f"{key}.csv.gz" if key == "InstEval" else f"{key}.csv")
    factors = _factors().get(key, {})
    with resources.as_file(path) as p:
        df = pd.read_csv(p, dtype={c: str for c in factors})
    for col, info in factors.items():
        df[col] = pd.Categorical(df[col], categories=info["levels"], ordered=info["ordered"])
    return df
