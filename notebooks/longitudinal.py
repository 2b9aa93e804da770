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
# # Longitudinal data: residual structures
#
# Repeated measurements on the same subject are correlated beyond what a random intercept
# explains: measurements close in time are more alike. nlme models this with a residual
# covariance $\sigma^2\Lambda_i$ per subject; bayeslmm has the same structures:
#
# | bayeslmm | nlme |
# | --- | --- |
# | `blm.AR1(group="Subject")` | `correlation = corAR1(form = ~ 1 \| Subject)` |
# | `blm.CAR1(time="age", group="Subject")` | `corCAR1(form = ~ age \| Subject)` |
# | `blm.CompSymm(group="Subject")` | `corCompSymm(form = ~ 1 \| Subject)` |
# | `blm.VarIdent(by="Sex")` | `weights = varIdent(form = ~ 1 \| Sex)` |
# | `blm.VarPower(covariate="age")`, `blm.VarExp(...)` | `varPower(form = ~ age)`, `varExp` |
# | `blm.Residual(variance=..., correlation=...)` | both |

# %% tags=["parameters"]
# NUTS settings: `chains` chains of `draws` draws, after `tune` tuning steps each
draws, tune, chains = 1000, 1000, 4

# %%
import arviz as az
import matplotlib.pyplot as plt
import pandas as pd

import bayeslmm as blm

KW = dict(draws=draws, tune=tune, chains=chains)
KW.update(random_seed=1, progressbar=False, log_likelihood=True)
orth = blm.datasets.load("Orthodont")
orth.head()

# %% [markdown]
# Orthodont: the distance from the pituitary to the pterygomaxillary fissure (mm) of 27
# children, measured at ages 8, 10, 12 and 14. We fit four residual structures with the
# same fixed and random parts, and compare them.

# %%
formula = "distance ~ age + Sex + (1 | Subject)"
structures = {
    "iid": None,
    "AR(1)": blm.AR1(group="Subject"),
    "CAR(1) in age": blm.CAR1(time="age", group="Subject"),
    "varIdent by Sex": blm.VarIdent(by="Sex"),
}
fits = {name: blm.LMM(formula, orth, residual=r).fit(**KW) for name, r in structures.items()}
print(fits["varIdent by Sex"])

# %% [markdown]
# The residual sd of girls is about half that of boys (`Female` ratio below 1), a much
# larger effect than any serial correlation: with a random intercept per child, the AR(1)
# coefficient `Phi` is small and its interval includes 0 (nlme's REML estimate is 0.06).

# %%
pd.DataFrame({name: pd.Series(f.residual_params) for name, f in fits.items()}).T

# %% [markdown]
# ## Which structure predicts best?
#
# PSIS-LOO. Without a correlation, the pointwise terms are single observations: iid
# against varIdent.

# %%
blm.compare({"iid": fits["iid"], "varIdent by Sex": fits["varIdent by Sex"]})

# %% [markdown]
# With correlated residuals the observations of a child are not exchangeable, so the
# terms are whole children (each child's joint density) and LOO leaves out one child at a
# time. Models are compared within one kind of term:

# %%
both = blm.Residual(variance=blm.VarIdent(by="Sex"), correlation=blm.AR1(group="Subject"))
correlated = {"AR(1)": fits["AR(1)"], "CAR(1) in age": fits["CAR(1) in age"],
              "varIdent + AR(1)": blm.LMM(formula, orth, residual=both).fit(**KW)}
blm.compare(correlated)

# %% [markdown]
# ## Ovary: a clear serial correlation
#
# The number of ovarian follicles in mares, measured repeatedly over the oestrus cycle,
# with a sinusoidal mean. Here the AR(1) correlation is strong.

# %%
ovary = blm.datasets.load("Ovary")
f = "follicles ~ sin(2 * pi * Time) + cos(2 * pi * Time) + (1 | Mare)"
ar1 = blm.LMM(f, ovary, residual=blm.AR1(group="Mare")).fit(**KW)
ar1.summary().loc[["Phi", "sigma", "sd_Mare[Intercept]"], ["mean", "sd", "hdi_3%", "hdi_97%"]]

# %% [markdown]
# A posterior predictive check with correlated residuals: `posterior_predictive` draws
# each mare's residual series with the fitted `Phi`.

# %%
az.plot_ppc(ar1.posterior_predictive(random_seed=2), num_pp_samples=100, random_seed=1);

# %%
mare = ovary["Mare"] == ovary["Mare"].cat.categories[0]
draws = ar1.predict(kind="response", random_seed=3).values[..., mare.to_numpy()]
fig, ax = plt.subplots(figsize=(7, 3.5))
for k in range(5):
    ax.plot(ovary.loc[mare, "Time"], draws[0, k], color="C0", alpha=0.4)
ax.plot(ovary.loc[mare, "Time"], ovary.loc[mare, "follicles"], "ko-", label="observed")
ax.set_xlabel("Time in the cycle")
ax.set_ylabel("follicles")
ax.legend()
ax.set_title("Replicated series for one mare");
