# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Speed: integrating out the random effects
#
# A mixed model has two kinds of unknowns: a few hyper-parameters (β, Ψ, σ) and many
# random effects b (one vector per group). bambi, brms and rstanarm give NUTS all of them
# at once (the **conditional** parameterization). For a Gaussian model b can be
# integrated out exactly:
#
# $$p(y \mid \beta, \Psi, \sigma) = \int p(y \mid \beta, b, \sigma)\,
# p(b \mid \Psi)\,db = N(y \mid X\beta,\; Z\tilde\Psi Z^\top + \sigma^2 I).$$
#
# bayeslmm's **marginal** parameterization runs NUTS on (β, Ψ, σ) only, with this
# likelihood computed from cross-products $[Z\,X\,y]^\top[Z\,X\,y]$ prepared once: its
# cost per gradient does not grow with the number of rows. Afterwards, for every posterior
# draw, b is drawn exactly from its Gaussian conditional $p(b \mid y, \beta, \Psi,
# \sigma)$. Both parameterizations target the same posterior; the marginal one has fewer
# dimensions and no funnel between Ψ and b.

# %% tags=["parameters"]
# NUTS settings: `chains` chains of `draws` draws, after `tune` tuning steps each
draws, tune, chains = 1000, 1000, 4
# the simulated data of the last section: rows and groups
big_rows, big_groups = 20_000, 200

# %%
import time

import numpy as np
import pandas as pd

import bayeslmm as blm

KW = dict(draws=draws, tune=tune, chains=chains)
KW.update(random_seed=1, progressbar=False)
sleep = blm.datasets.load("sleepstudy")

def timed(model, **kw):
    start = time.perf_counter()
    fit = model.fit(**KW, **kw)
    wall = time.perf_counter() - start
    d = fit.diagnostics
    return fit, {"wall s": wall, "divergences": d["divergences"],
                 "min ESS bulk": d["min_ess_bulk"], "ESS/s": d["min_ess_bulk"] / wall,
                 "max R-hat": d["max_rhat"]}

# %%
model = blm.LMM("Reaction ~ Days + (Days | Subject)", sleep)
marginal, row_m = timed(model, parameterization="marginal")
conditional, row_c = timed(model, parameterization="conditional")
table = pd.DataFrame({"marginal": row_m, "conditional": row_c}).T
ax = table["ESS/s"].plot.barh(figsize=(5, 2), title="min bulk ESS per second of wall time")
table

# %% [markdown]
# Same posterior: the hyper-parameters agree within Monte Carlo error, and so do the
# random effects.

# %%
pd.DataFrame({"marginal": marginal.summary()["mean"],
              "conditional": conditional.summary()["mean"]})

# %%
b_m = marginal.ranef["Subject"]["Days"]
b_c = conditional.ranef["Subject"]["Days"]
print("largest difference in posterior means of b[Days]:", float((b_m - b_c).abs().max()))

# %% [markdown]
# ## More rows
#
# The marginal model's gradient costs the same whatever the number of rows; only the
# number of groups matters. Here: 20,000 (or 2,000 in the quick run) rows in 200 groups.

# %%
rng = np.random.default_rng(0)
n, groups = big_rows, big_groups
g = rng.integers(0, groups, n)
x = rng.normal(size=n)
b = rng.multivariate_normal([0, 0], [[1.0, 0.15], [0.15, 0.25]], size=groups)
df = pd.DataFrame({"y": 1 + 0.5 * x + b[g, 0] + b[g, 1] * x + rng.normal(size=n),
                   "x": x, "g": g})
big = blm.LMM("y ~ x + (x | g)", df)
_, row_big = timed(big, parameterization="marginal", log_likelihood=False)
pd.DataFrame({f"marginal, {n} rows": row_big}).T

# %% [markdown]
# Wall times here include compilation. With nutpie installed, a marginal model is
# compiled once per model *structure* (formula shape and priors' families, not the data)
# and kept on disk in `~/.cache/bayeslmm`: the very first fit of a structure on a machine
# runs on JAX (slower sampling, quick compilation) while the numba version compiles in a
# background process; every later one, in any session and on any data, starts in about a
# second. The conditional model has no such cache.
#
# `benchmarks/bench_sampling.py` compares the samplers (PyMC, nutpie, numpyro) and bambi on
# up to a million rows, with compilation and sampling times and peak memory.
