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
# # Quickstart: a Bayesian mixed model in five minutes
#
# The `sleepstudy` data (Belenky et al., 2003; shipped with lme4) follow 18 subjects over
# 10 days of sleep deprivation and record their average reaction time each day. Every
# subject has their own baseline and their own sensitivity to sleep loss, so we model a
# random intercept and a random slope per subject:
#
# $$\text{Reaction}_{ij} = (\beta_0 + b_{0i}) + (\beta_1 + b_{1i})\,\text{Days}_{ij}
# + \varepsilon_{ij},\quad (b_{0i}, b_{1i}) \sim N(0, \Psi),\quad
# \varepsilon_{ij} \sim N(0, \sigma^2).$$
#
# In lme4's formula syntax this is `Reaction ~ Days + (Days | Subject)`.

# %% tags=["parameters"]
# NUTS settings: `chains` chains of `draws` draws, after `tune` tuning steps each
draws, tune, chains = 1000, 1000, 4

# %%
import arviz as az
import matplotlib.pyplot as plt
import pandas as pd

import bayeslmm as blm

df = blm.datasets.load("sleepstudy")
df.head()

# %%
fig, axes = plt.subplots(3, 6, figsize=(12, 5), sharex=True, sharey=True)
for ax, (subject, rows) in zip(axes.flat, df.groupby("Subject", observed=True)):
    ax.plot(rows["Days"], rows["Reaction"], "o-", ms=3)
    ax.set_title(subject, fontsize=9)
fig.supxlabel("Days of sleep deprivation")
fig.supylabel("Reaction time (ms)")
fig.tight_layout()

# %% [markdown]
# ## Build the model
#
# `blm.LMM` reads the formula, builds the design matrices and a real PyMC model. The priors
# are weakly informative and scaled to the data; `model.priors` lists them.

# %%
model = blm.LMM("Reaction ~ Days + (Days | Subject)", df)
model.priors

# %% [markdown]
# The PyMC model is there to inspect or extend (`pm.model_to_graphviz(model.pymc_model)`
# draws it when graphviz is installed). Its variables have stable names: `beta`,
# `sigma`, `sd_Subject`, `corr_Subject`, `b_Subject`.

# %%
model.pymc_model

# %% [markdown]
# ## Sample the posterior
#
# `fit` runs NUTS and returns a result whose printed form reads like lme4's `summary()`:
# posterior means, sds and 94% highest-density intervals, with sampling diagnostics.

# %%
post = model.fit(draws=draws, tune=tune, chains=chains, random_seed=1, progressbar=False)
print(post)

# %%
post.summary()

# %% [markdown]
# Everything is in an ArviZ `InferenceData` with named dimensions, so ArviZ's tools work
# directly:

# %%
az.plot_trace(post.idata, var_names=["beta", "sd_Subject", "sigma"], compact=True);
plt.tight_layout()

# %% [markdown]
# ## Does the model reproduce the data? A posterior predictive check
#
# We simulate new reaction times from the fitted model (one data set per posterior draw)
# and compare their distribution with the observed one.

# %%
blm.plots.ppc(post, num_pp_samples=100, random_seed=2);

# %% [markdown]
# ## Random effects
#
# Each subject's deviation from the average slope, with 94% intervals:

# %%
blm.plots.caterpillar(post, "Subject", "Days");

# %% [markdown]
# ## Predictions
#
# `predict` returns posterior draws. For a subject seen in training, the prediction uses
# that subject's effects; for a new subject, `new_levels="sample"` draws the effects from
# the fitted population distribution $N(0, \Psi)$ (wider intervals), and
# `new_levels="population"` sets them to zero (the average subject).

# %%
new = pd.DataFrame({"Days": [0, 5, 9, 0, 5, 9],
                    "Subject": ["308"] * 3 + ["a new subject"] * 3})
draws = post.predict(new, new_levels="sample", random_seed=3)
hdi = az.hdi(draws, hdi_prob=0.94)["mu"].values
new.assign(mean=draws.mean(("chain", "draw")).values, hdi_3=hdi[:, 0], hdi_97=hdi[:, 1])

# %% [markdown]
# `kind="response"` adds the residual noise, giving predictive intervals for a single new
# measurement rather than for the mean.
#
# Next: `pooling.ipynb` explains what the random effects do (partial pooling).
