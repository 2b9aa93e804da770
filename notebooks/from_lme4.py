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
# # From lme4 to bayeslmm
#
# If you know `lmer`, you know the formula syntax already. This notebook shows that
# `fit_map` gives lme4's numbers, then fits the same model by NUTS and explains where the
# posterior and the REML estimates differ, and why.

# %% tags=["parameters"]
# NUTS settings: `chains` chains of `draws` draws, after `tune` tuning steps each
draws, tune, chains = 1000, 1000, 4

# %%
import pandas as pd

import bayeslmm as blm

KW = dict(draws=draws, tune=tune, chains=chains)
KW.update(random_seed=1, progressbar=False)
sleep = blm.datasets.load("sleepstudy")

# %% [markdown]
# ## REML, as `lmer(Reaction ~ Days + (Days | Subject), sleepstudy)`
#
# The random effects are integrated out exactly and the restricted likelihood is maximised
# over the covariance parameters (flat priors): this is lme4's estimator, so the printed
# summary reads like `summary(lmer(...))`.

# %%
model = blm.LMM("Reaction ~ Days + (Days | Subject)", sleep)
reml = model.fit_map(method="REML")
print(reml)

# %% [markdown]
# lme4 1.1-31 reports (R 4.2): fixed effects 251.405 (SE 6.825) and 10.467 (SE 1.546),
# sd(Intercept) 24.741, sd(Days) 5.922, correlation 0.066, residual sd 25.592, REML
# criterion 1743.6. The table puts bayeslmm's numbers next to them:

# %%
lme4 = {"(Intercept)": 251.405104848485, "Days": 10.467285959596,
        "sd(Intercept)": 24.7406579949841, "sd(Days)": 5.92213765889808,
        "corr": 0.0655512382381282, "sigma": 25.5917957216753,
        "logLik": -871.814135979976}
vc = reml.varcorr
ours = {"(Intercept)": reml.fixef["Intercept"], "Days": reml.fixef["Days"],
        "sd(Intercept)": vc.loc[0, "sdcor"], "sd(Days)": vc.loc[1, "sdcor"],
        "corr": vc.loc[2, "sdcor"], "sigma": reml.sigma, "logLik": reml.loglik}
table = pd.DataFrame({"lme4": lme4, "bayeslmm": ours})
table["relative difference"] = (table["bayeslmm"] - table["lme4"]) / table["lme4"].abs()
table

# %% [markdown]
# ML (`REML = FALSE`) works the same way; `est.aic`, `est.bic`, `est.se`, `est.vcov`,
# `est.ranef` (conditional modes) and `est.ranef_sd` (their conditional sds, lme4's
# `condVar`) are there too.

# %%
ml = model.fit_map(method="ML")
pd.Series({"logLik": ml.loglik, "AIC": ml.aic, "BIC": ml.bic, "sigma": ml.sigma})

# %% [markdown]
# ## The posterior of the same model

# %%
post = model.fit(**KW)
s = post.summary()
side = pd.DataFrame({
    "REML": [reml.fixef["Intercept"], reml.fixef["Days"], vc.loc[0, "sdcor"],
             vc.loc[1, "sdcor"], vc.loc[2, "sdcor"], reml.sigma],
    "posterior mean": s["mean"].values[[0, 1, 2, 3, 4, 5]],
    "posterior sd": s["sd"].values[[0, 1, 2, 3, 4, 5]],
}, index=s.index[:6])
side

# %%
import matplotlib.pyplot as plt

fig, axes = plt.subplots(1, 2, figsize=(9, 3))
for ax, term, k in ((axes[0], "Intercept", 0), (axes[1], "Days", 1)):
    draws = post.idata.posterior["sd_Subject"].sel(Subject_term=term).values.ravel()
    ax.hist(draws, bins=40, color="C0", alpha=0.7, label="posterior")
    ax.axvline(vc.loc[k, "sdcor"], color="k", ls="--", label="REML")
    ax.axvline(draws.mean(), color="C1", label="posterior mean")
    ax.set_title(f"sd({term})")
axes[0].legend(fontsize=8)
fig.tight_layout()

# %% [markdown]
# ## When they differ, and why
#
# - **Fixed effects** agree closely: with 180 observations the likelihood dominates any
#   weakly informative prior, and the posterior is nearly symmetric.
# - **Standard deviations** of random effects: the posterior mean lies above the REML
#   estimate. REML gives the mode of a likelihood that is skewed to the right for a
#   variance estimated from 18 subjects; the posterior mean averages over that skew. The
#   posterior sd is the honest uncertainty, which lme4 does not report for variance
#   components.
# - **The correlation** is estimated from 18 pairs of effects: its posterior is wide, and
#   the LKJ prior (`eta = 2`) pulls it gently toward 0.
#
# A boundary fit shows the difference most clearly. `Dyestuff2` has no detectable batch
# variation: REML puts the batch sd at exactly 0 (a singular fit, with lme4's warning),
# while the posterior says "small, probably below a few units", without ever putting it at
# exactly zero.

# %%
dy2 = blm.LMM("Yield ~ 1 + (1 | Batch)", blm.datasets.load("Dyestuff2"))
est = dy2.fit_map(method="REML")
print("REML: sd(Batch) =", est.varcorr.loc[0, "sdcor"], " singular:", est.singular)
post2 = dy2.fit(**KW)
post2.summary().loc[["sd_Batch[Intercept]", "sigma"], ["mean", "sd", "hdi_3%", "hdi_97%"]]

# %% [markdown]
# | R | bayeslmm |
# | --- | --- |
# | `lmer(f, data)` | `blm.LMM(f, df).fit_map()` |
# | `lmer(f, data, REML = FALSE)` | `.fit_map(method="ML")` |
# | `fixef`, `vcov`, `VarCorr`, `ranef` | `.fixef`, `.vcov`, `.varcorr`, `.ranef` |
# | `logLik`, `AIC`, `BIC` | `.loglik`, `.aic`, `.bic` |
# | `lme(..., correlation = corAR1(form = ~1 \| g))` | `residual=blm.AR1(group="g")` |
