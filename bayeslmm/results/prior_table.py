"""``model.priors`` and ``result.priors``: a dict (parameter → description) that prints as
a table, one row per coefficient.

Examples
--------
>>> t = PriorTable({"beta": "Prior('Normal', mu=[298.5079,   0.    ], sigma=[261.2202,  48.8915])",
...                 "sigma": "Prior('Exponential', lam=0.01775)", "eta_Subject": "2.0"},
...                elements={"beta": ["Intercept", "Days"]})
>>> t
parameter        prior
beta[Intercept]  Normal(mu=298.5079, sigma=261.2202)
beta[Days]       Normal(mu=0, sigma=48.8915)
sigma            Exponential(lam=0.01775)
eta_Subject      LKJ(eta=2)
>>> t["sigma"]  # still a dict of descriptions
"Prior('Exponential', lam=0.01775)"
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import pandas as pd

__all__ = ["PriorTable", "prior_rows", "design_elements"]

_PRIOR = re.compile(r"^Prior\('(\w+)'(.*)\)$", re.S)
_PARAM = re.compile(r",\s*(\w+)=")


def _number(text: str) -> str:
    text = text.strip()
    try:
        return f"{float(text):.7g}"
    except ValueError:
        return text


def _parse(desc: str) -> tuple[str, dict[str, list[str] | str]] | None:
    """A description ``Prior('Name', a=1, b=[1., 2.])`` → (name, {param: value(s)})."""
    m = _PRIOR.match(desc.strip())
    if m is None:
        return None
    name, rest = m.groups()
    parts = _PARAM.split(rest)[1:]
    params: dict[str, list[str] | str] = {}
    for key, value in zip(parts[::2], parts[1::2], strict=True):
        value = value.strip()
        if value.startswith("[") and value.endswith("]"):
            params[key] = [_number(v) for v in re.split(r"[,\s]+", value[1:-1].strip()) if v]
        else:
            params[key] = _number(value)
    return name, params


def _show(name: str, params: Mapping[str, str]) -> str:
    return f"{name}(" + ", ".join(f"{k}={v}" for k, v in params.items()) + ")"


def design_elements(design) -> dict[str, list[str]]:
    """The coefficient names of a formula design's vector priors.

    >>> import bayeslmm as blm
    >>> design_elements(blm.LMM("Yield ~ 1 + (1 | Batch)", blm.datasets.load("Dyestuff")).design)
    {'beta': ['Intercept'], 'sd_Batch': ['Intercept']}
    """
    out = {"beta": list(design.fixef_names)}
    out.update({f"sd_{t.group}": list(t.term_names) for t in design.terms})
    return out


def prior_rows(priors: Mapping[str, str],
               elements: Mapping[str, Sequence[str]] | None = None) -> list[tuple[str, str]]:
    """(row label, distribution) pairs: one per coefficient where ``elements`` names them.

    >>> prior_rows({"sd_g": "Prior('HalfNormal', sigma=[1., 2.])"}, {"sd_g": ["a", "b"]})
    [('sd_g[a]', 'HalfNormal(sigma=1)'), ('sd_g[b]', 'HalfNormal(sigma=2)')]
    """
    elements = elements or {}
    rows = []
    for key, desc in priors.items():
        if key.startswith("eta_"):
            if len(elements.get(f"sd_{key[4:]}", [0, 0])) > 1:  # no LKJ for one column
                rows.append((key, f"LKJ(eta={_number(desc)})"))
            continue
        parsed = _parse(desc)
        if parsed is None:
            rows.append((key, desc))
            continue
        name, params = parsed
        names = list(elements.get(key, []))
        lengths = {len(v) for v in params.values() if isinstance(v, list)}
        if names and lengths == {len(names)}:
            for k, el in enumerate(names):
                rows.append((f"{key}[{el}]", _show(name, {
                    p: (v[k] if isinstance(v, list) else v) for p, v in params.items()})))
        else:
            rows.append((key, _show(name, {p: ("[" + ", ".join(v) + "]" if isinstance(v, list)
                                               else v) for p, v in params.items()})))
    return rows


class PriorTable(dict):
    """The priors in use: a dict parameter → description that prints as a table.

    ``elements`` names the coefficients of vector parameters (``beta``,
    ``sd_<group>``), which then get a row each.

    Examples
    --------
    >>> import bayeslmm as blm
    >>> m = blm.LMM("Yield ~ 1 + (1 | Batch)", blm.datasets.load("Dyestuff"))
    >>> m.priors
    parameter            prior
    beta[Intercept]      Normal(mu=1527.5, sigma=157.5592)
    sigma                Exponential(lam=0.01587)
    sd_Batch[Intercept]  HalfNormal(sigma=157.5592)
    """

    def __init__(self, priors: Mapping[str, str],
                 elements: Mapping[str, Sequence[str]] | None = None) -> None:
        super().__init__(priors)
        self._elements = {k: list(v) for k, v in (elements or {}).items()}

    def to_frame(self) -> pd.DataFrame:
        """The table as a DataFrame (index: parameter, column: ``prior``).

        Examples
        --------
        >>> PriorTable({"sigma": "Prior('Exponential', lam=0.5)"}).to_frame()["prior"].tolist()
        ['Exponential(lam=0.5)']
        """
        rows = prior_rows(self, self._elements)
        return pd.DataFrame({"prior": [d for _, d in rows]},
                            index=pd.Index([k for k, _ in rows], name="parameter"))

    def __repr__(self) -> str:
        rows = prior_rows(self, self._elements)
        width = max([len("parameter")] + [len(k) for k, _ in rows])
        return "\n".join([f"{'parameter':<{width}}  prior"]
                         + [f"{k:<{width}}  {d}" for k, d in rows])

    __str__ = __repr__

    def _repr_html_(self) -> str:
        return self.to_frame().to_html()
