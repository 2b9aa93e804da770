"""Running NUTS (PyMC, nutpie, numpyro) on a built model: sampler choice, nutpie's
compilation and its caches, and the exact draws of the random effects after the
marginal model."""
