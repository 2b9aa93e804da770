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

__all__ = ["model_graph", "GraphMixin"]


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


class GraphMixin:
    """``graph``, for model objects that ``build`` their PyMC models by parameterization."""

    def graph(self, parameterization: str = "conditional"):
        """The PyMC model ``build(parameterization)`` drawn as a graph (needs Graphviz).

        ``"conditional"`` (the default) shows the random effects ``b_<group>`` and
        their scales; ``"marginal"`` the model with them integrated out.

        Examples
        --------
        >>> import bayeslmm as blm
        >>> m = blm.LMM("Reaction ~ Days + (Days | Subject)", blm.datasets.load("sleepstudy"))
        >>> g = m.graph()
        >>> type(g).__name__, "b_Subject" in g.source, "b_Subject" in m.graph("marginal").source
        ('Digraph', True, False)
        """
        return model_graph(self.build(parameterization))
