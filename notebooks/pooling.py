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
# # Pooling: what a mixed model does, explained with radon
#
# Radon is a radioactive gas that seeps into houses from the ground. The EPA measured it
# in 919 Minnesota homes in 85 counties (Gelman and Hill, 2007). We want the typical
# radon level **in each county**, but some counties have 1 or 2 measurements and others
# over 100. This notebook assumes you know linear regression, and nothing else.
#
# Variables: `log_radon` (the response), `floor` (0 = basement, 1 = first floor: radon
# comes from the ground, so basements read higher), `county`.

# %% tags=["parameters"]
# NUTS settings: `chains` chains of `draws` draws, after `tune` tuning steps each
draws, tune, chains = 1000, 1000, 4

# %%
import matplotlib.pyplot as plt

import bayeslmm as blm

KW = dict(draws=draws, tune=tune, chains=chains)
KW.update(random_seed=1, progressbar=False)

radon = blm.datasets.load("radon")
counts = radon["county"].value_counts()
print(f"{len(radon)} houses in {radon['county'].nunique()} counties; "
      f"houses per county: min {counts.min()}, median {counts.median():.0f}, max {counts.max()}")

# %% [markdown]
# ## Three ways to use the county
#
# **Complete pooling** ignores the county: one regression line for the whole state.
# Every county gets the same estimate, which is wrong for counties that really differ.

# %%
complete = blm.LMM("log_radon ~ floor", radon).fit(**KW)
complete.fixef

# %% [markdown]
# **No pooling** fits a separate intercept for every county (`0 + county` gives one
# coefficient per county). Each county uses only its own houses, so a county with one
# house gets an estimate as noisy as that single measurement.

# %%
nopool = blm.LMM("log_radon ~ 0 + county + floor", radon).fit(**KW)
nopool.fixef.head()

# %% [markdown]
# **Partial pooling** is the mixed model: county intercepts are drawn from a common
# distribution, $b_j \sim N(0, \tau^2)$, whose spread $\tau$ (`sd_county`) is learned
# from the data:
#
# $$\text{log\_radon}_{ij} = \beta_0 + b_j + \beta_1\,\text{floor}_{ij} +
# \varepsilon_{ij}.$$
#
# A county with many houses keeps an estimate close to its own mean; a county with few
# houses is pulled ("shrunk") toward the state average, because its own data say little.
# How much is decided by the data: roughly, county $j$'s estimate is a weighted average
# of its own mean and the overall mean with weight
# $n_j / (n_j + \sigma^2/\tau^2)$ on its own mean.

# %%
partial = blm.LMM("log_radon ~ floor + (1 | county)", radon).fit(**KW)
print(partial)

# %% [markdown]
# ## The shrinkage plot
#
# Each county's no-pooling estimate (open circle) is joined to its partial-pooling
# estimate (filled circle); the dashed line is complete pooling. Counties are sorted by
# their no-pooling estimate. The extreme estimates are mostly small counties, and they
# move the most.

# %%
fig, ax = plt.subplots(figsize=(14, 4.5))
blm.plots.shrinkage(partial, "county", ax=ax);

# %%
table = blm.plots.shrinkage_table(partial, "county")
table["moved"] = (table["partial_pooling[Intercept]"] - table["no_pooling[Intercept]"]).abs()
fig, ax = plt.subplots(figsize=(5, 3.5))
ax.scatter(table["n"], table["moved"], s=12)
ax.set_xscale("log")
ax.set_xlabel("houses in the county (log scale)")
ax.set_ylabel("|partial − no pooling|")
ax.set_title("Small counties are shrunk most");

# %% [markdown]
# ## Which model predicts best?
#
# Leave-one-out cross-validation (PSIS-LOO) estimates how well each model predicts a
# house it has not seen. Partial pooling wins: it uses the county information without
# over-fitting the small counties.

# %%
blm.compare({"complete pooling": complete, "no pooling": nopool, "partial pooling": partial})

# %% [markdown]
# ## More than one random coefficient: Ψ and the LKJ prior
#
# The floor effect may also differ between counties: `(floor | county)` gives every county
# its own intercept **and** slope, $(b_{0j}, b_{1j}) \sim N(0, \Psi)$ with
#
# $$\Psi = \begin{pmatrix} \tau_0^2 & \rho\,\tau_0\tau_1 \\
# \rho\,\tau_0\tau_1 & \tau_1^2 \end{pmatrix}.$$
#
# $\tau_0, \tau_1$ are `sd_county`; $\rho$ is `corr_county`: do counties with high
# baseline radon also have a larger floor effect? bayeslmm puts an LKJ prior on the
# correlation matrix (through its Cholesky factor, `pm.LKJCholeskyCov`). Its parameter
# `eta` (default 2) says how strongly small correlations are preferred: `eta = 1` is flat
# over all correlation matrices, larger values pull toward independence. With 85 counties
# but few houses on first floors, the data say little about $\rho$ and its posterior
# stays wide: that is the prior at work, not a bug. Try `priors={"eta_county": 1}` and
# compare.

# %%
slopes = blm.LMM("log_radon ~ floor + (floor | county)", radon).fit(**KW)
slopes.summary().loc[["sd_county[Intercept]", "sd_county[floor]",
                      "corr_county[Intercept, floor]"]]

# %% [markdown]
# ## What to remember
#
# - complete pooling: one estimate for all groups, too rigid;
# - no pooling: one independent estimate per group, too noisy for small groups;
# - partial pooling: group estimates borrow strength from each other, in proportion to
#   how much each group's own data can say. The group-level sd ($\tau$) decides how much,
#   and it is estimated from the data.
