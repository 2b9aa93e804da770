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
# # Random slopes, shrinkage and priors: a student's guide
#
# In the `sleepstudy` experiment (Belenky et al., 2003) 18 people slept at most three
# hours a night for nine nights; every day their reaction time was measured. Each
# person has ten measurements. We ask: how much slower do people get per day of sleep
# deprivation, and **does that differ from person to person?**
#
# This notebook assumes you know linear regression. It shows what a random slope is,
# why a mixed model pulls each person's estimate towards the average (partial pooling),
# and when the prior on a variance component matters.

# %% tags=["parameters"]
# NUTS settings: `chains` chains of `draws` draws, after `tune` tuning steps each
draws, tune, chains = 1000, 1000, 4

# %%
import pandas as pd

import bayeslmm as blm

KW = dict(draws=draws, tune=tune, chains=chains)
KW.update(random_seed=1, progressbar=False)

sleep = blm.datasets.load("sleepstudy")
sleep.head()

# %% [markdown]
# ## What a random slope is
#
# A **random intercept** model gives every person their own baseline but one common
# slope: all lines are parallel. A **random slope** model also gives every person their
# own slope, drawn around the average slope:
#
# $$\text{Reaction}_{ij} = (\beta_0 + b_{0i}) + (\beta_1 + b_{1i})\,\text{Days}_{ij}
#   + \varepsilon_{ij}, \qquad (b_{0i}, b_{1i}) \sim N(0, \Psi)$$
#
# $\beta_1$ is the average slope; $b_{1i}$ is how much person $i$ differs from it; the
# standard deviation of the $b_{1i}$ (`sd_Subject[Days]`) says how much slopes vary.
# Here are both models' fitted lines, one panel per person (quick ML fits first). The
# dashed line is the population line, the same in every panel.

# %%
intercepts = blm.LMM("Reaction ~ Days + (1 | Subject)", sleep)
slopes = blm.LMM("Reaction ~ Days + (Days | Subject)", sleep)
blm.plots.group_fits(intercepts.fit_map(), "Days", per_page=6);

# %% [markdown]
# Parallel lines miss people like 309 (flat) and 308 (steep). With random slopes each
# line follows its person:

# %%
blm.plots.group_fits(slopes.fit_map(), "Days", per_page=6);

# %% [markdown]
# ## The Bayesian fit
#
# Now the full posterior of the random-slope model. The **conditional effect** of Days
# is the population line $\beta_0 + \beta_1 \text{Days}$ with its 95% interval: what we
# expect for a typical person.

# %%
post = slopes.fit(**KW)
print(post)
blm.plots.effects(post, "Days");

# %%
post.effects_table("Days", n=4).round(1)

# %% [markdown]
# Each person's own line, with its 95% band, for all 18:

# %%
blm.plots.group_fits(post, "Days");

# %% [markdown]
# ## Why partial pooling shrinks
#
# Fit a separate regression to each person ("no pooling") and each person gets the line
# that fits their ten points best. The mixed model's line for the same person ("partial
# pooling") is pulled towards the average. The pull is a weighted average: a person's
# own data get a weight that grows with how many points they have and how precise they
# are; the population average gets a weight that grows as people are more alike (small
# `sd_Subject`). Extreme, noisy estimates move most.

# %%
blm.plots.shrinkage(post, "Subject");

# %% [markdown]
# With fewer measurements per person the individual fits are noisier and the pull is
# stronger. Keep only the first four days:

# %%
short = sleep[sleep["Days"] <= 3]
post_short = blm.LMM("Reaction ~ Days + (Days | Subject)", short).fit(**KW)
blm.plots.shrinkage(post_short, "Subject");

# %% [markdown]
# ## The prior on a variance component, with few groups
#
# How much do slopes vary between people? With 18 people the data answer well. With 4,
# they cannot say much, and the prior on `sd_Subject` fills the gap. Fit the model on
# four people with bayeslmm's default prior (weakly informative, scaled to the data),
# then with a prior that says slopes vary by about 2 ms/day at most:

# %%
few = sleep[sleep["Subject"].isin(["308", "309", "310", "330"])].copy()
few["Subject"] = few["Subject"].cat.remove_unused_categories()
default_prior = blm.LMM("Reaction ~ Days + (Days | Subject)", few)
default_prior.priors

# %%
post_few = default_prior.fit(**KW)
tight = blm.LMM("Reaction ~ Days + (Days | Subject)", few,
                priors={"sd_Subject": blm.Prior("HalfNormal", sigma=[50.0, 2.0])})
post_tight = tight.fit(**KW)
for name, p in [("default prior", post_few), ("tight prior", post_tight)]:
    sd = p.idata.posterior["sd_Subject"].sel(Subject_term="Days")
    print(f"{name}: sd of the slopes, posterior mean {float(sd.mean()):.1f} ms/day")

# %% [markdown]
# The prior changed the answer: four people cannot tell us how much slopes vary. The
# plots show each standard deviation's prior (dashed) and posterior. The
# **power-scaling sensitivity** (Kallioinen et al. 2023) measures how far each posterior
# moves when the prior, or the likelihood, is made a little stronger or weaker (0.05 or
# more counts as sensitive). Sensitive to both: the prior and the data pull in
# different directions (a *prior-data conflict*). Sensitive to the prior only: the data
# say little about that parameter, and the panel says so.

# %%
blm.plots.prior_posterior(post_few);

# %%
blm.plots.prior_posterior(post_tight);

# %%
pd.concat({"default prior": post_few.sensitivity(), "tight prior": post_tight.sensitivity()},
          axis=1).round(3)

# %% [markdown]
# With all 18 people the default prior hardly matters:

# %%
blm.plots.prior_posterior(post);

# %% [markdown]
# ## How much does the model explain?
#
# The **Bayesian R²** (Gelman et al. 2019) is the share of variance explained by the
# fitted values, one value per posterior draw. Nakagawa & Schielzeth's **marginal R²**
# counts the fixed effects only, the **conditional R²** the fixed and random effects.

# %%
r2 = post.bayes_r2()
nak = post.r2_nakagawa()
print(f"Bayesian R²: {float(r2.mean()):.3f}; Nakagawa: marginal "
      f"{float(nak['marginal'].mean()):.3f}, conditional {float(nak['conditional'].mean()):.3f}")

# %% [markdown]
# ## Does the model reproduce the data?
#
# A posterior predictive check draws new data from the fitted model and compares them
# with the real data: the whole distribution of reaction times, then each person's
# spread (sd) against what the model predicts for that person.

# %%
blm.plots.ppc(post, random_seed=1);

# %%
blm.plots.ppc_groups(post, "Subject", stat="sd", random_seed=1);

# %% [markdown]
# ## Random intercepts or random slopes? Leave one person out
#
# `compare` scores each model on data it did not see. With `level="group"` it leaves
# out one whole person at a time: how well does the model predict a **new** person?

# %%
post_int = intercepts.fit(**KW)
blm.compare({"random slopes": post, "random intercepts": post_int}, level="group")

# %% [markdown]
# The `warning` column flags a Pareto k above 0.7: one person is influential enough that
# the shortcut (PSIS) is rough for them; refitting without that person would give the
# exact number.
#
# ## The model itself
#
# bayeslmm builds a PyMC model; here is its graph (the conditional form, with the
# random effects `b_Subject` drawn from their scales `chol_Subject`):

# %%
slopes.graph()
