"""A PyMC model drawn as a graph (Graphviz), with a clear error where Graphviz is missing.

Examples
--------
>>> import pymc as pm
>>> with pm.Model() as model:
...     mu = pm.Normal("mu")
...     y = pm.Normal("y", mu=mu, observed=[0.1, -0.3])
>>> g = model_graph(model)
>>> "mu" in g.source and "y" in g.source
True
"""

from __future__ import annotations

import pymc as pm

from ..errors import BayesLMMError

__all__ = ["model_graph"]


def model_graph(model: pm.Model):
    """``pm.model_to_graphviz(model)``: a ``graphviz.Digraph`` (shown by Jupyter).

    Examples
    --------
    >>> with pm.Model() as model:
    ...     sigma = pm.HalfNormal("sigma")
    >>> "Halfnormal" in model_graph(model).source
    True
    """
    try:
        import graphviz  # noqa: F401  (pm.model_to_graphviz needs it)
    except ImportError:
        raise BayesLMMError("Drawing the model needs the graphviz Python package and the "
                            "Graphviz programs: pip install graphviz, and apt-get install "
                            "graphviz (or conda install python-graphviz).") from None
    return pm.model_to_graphviz(model)
