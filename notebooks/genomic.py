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
# # Heritability and genomic prediction
#
# How much of the variation in a trait (height, yield, blood pressure) is due to genetic
# differences between individuals? With genotypes at many markers (SNPs) we can estimate
# it, and predict the genetic value of individuals whose trait we have not measured. This
# notebook does both, on simulated data where we know the truth.
#
# **The model.** For individual $i$ with genotypes $x_{i1}, \dots, x_{ip}$ (0, 1 or 2
# copies of an allele, standardised),
#
# $$y_i = \beta_0 + \beta_1 \text{sex}_i + \underbrace{\textstyle\sum_j x_{ij}\,
# \omega_j}_{g_i\text{, genetic value}} + e_i,\qquad
# \omega_j \sim N(0, \sigma_b^2),\quad e_i \sim N(0, \sigma^2).$$
#
# There are far more SNP effects $\omega_j$ than individuals ($p \gg n$), so we cannot
# estimate each one freely; treating them as *random effects* with a common variance
# $\sigma_b^2$ is what makes the problem well posed (it is ridge regression with the
# penalty estimated from the data). The **heritability** is the share of the trait's
# variance due to $g$:
#
# $$h^2 = \frac{\sigma_b^2\, \bar k}{\sigma_b^2\, \bar k + \sigma^2},\qquad
# \bar k = \operatorname{tr}(XX^\top)/n \;(= p \text{ for standardised SNPs}).$$

# %% tags=["parameters"]
# NUTS settings: `chains` chains of `draws` draws, after `tune` tuning steps each
draws, tune, chains = 1000, 1000, 4

# %%
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import bayeslmm as blm

warnings.filterwarnings("ignore", message="PyTensor could not link to a BLAS")

# %% [markdown]
# ## Simulated genotypes
#
# 1,200 individuals and 6,000 SNPs. Each SNP has an allele frequency between 5% and 50%;
# an individual carries 0, 1 or 2 copies (a binomial draw). We standardise each SNP, give
# every SNP a small effect, and set the true heritability to 0.6. The first 1,000
# individuals are our training data; we pretend not to know the trait of the last 200.

# %%
rng = np.random.default_rng(42)
n, p, h2_true = 1200, 6000, 0.6
freq = rng.uniform(0.05, 0.5, size=p)
X = rng.binomial(2, freq, size=(n, p)).astype(float)
X = (X - X.mean(axis=0)) / X.std(axis=0)
omega = rng.normal(scale=np.sqrt(h2_true / p), size=p)   # true SNP effects
g = X @ omega                                           # true genetic values
sex = rng.integers(0, 2, size=n)
y = 170 + 10 * sex + 8 * (g + rng.normal(scale=np.sqrt(1 - h2_true), size=n))
df = pd.DataFrame({"height": y, "sex": sex})
train, test = slice(0, 1000), slice(1000, None)
df.head()

# %% [markdown]
# ## Fit by REML (GREML)
#
# The SNP matrix goes next to the formula: the formula holds the ordinary fixed effects,
# `random_matrices` the wide random-effect design. Integrating the SNP effects out gives
# $y \sim N(X_f\beta, \sigma_b^2 XX^\top + \sigma^2 I)$. With the eigendecomposition
# $XX^\top = U S U^\top$ (computed once), the rotated data $U^\top y$ are independent
# with variances $\sigma_b^2 s_i + \sigma^2$: every likelihood evaluation costs $O(n)$,
# however many SNPs there are. REML then reduces to a one-dimensional search over $h^2$
# (the method of GCTA and FaST-LMM).

# %%
t0 = time.perf_counter()
model = blm.LMM("height ~ sex", df.iloc[train], random_matrices={"snps": X[train]})
reml = model.fit_map("REML")
print(f"built and fitted in {time.perf_counter() - t0:.1f} s\n")
print(reml)

# %% [markdown]
# The heritability line gives the estimate, a standard error from the curvature of the
# likelihood, and a 95% *profile-likelihood* interval (the values of $h^2$ the data do not
# reject). The truth is 0.6. With 1,000 individuals $h^2$ is not known precisely: each
# individual is one noisy look at a whole genome.
#
# ## The posterior of $h^2$ with NUTS
#
# `fit` samples $(\beta, \sigma_b, \sigma)$ with NUTS on the same rotated likelihood.
# Priors: the data-scaled defaults for $\beta$ and $\sigma$, and a half-normal on the sd
# of the genetic values, $\sigma_b\sqrt{\bar k} \sim \text{HalfNormal}(\text{sd}(y))$,
# which is broad on the $h^2$ scale (`model.priors` lists them).

# %%
model.priors

# %%
t0 = time.perf_counter()
post = model.fit(draws=draws, tune=tune, chains=chains, random_seed=1, progressbar=False)
print(f"NUTS, {chains} chains x {draws} draws: {time.perf_counter() - t0:.1f} s (compilation "
      "included)\n")
print(post)

# %%
h2 = post.h2_draws.values.ravel()
fig, ax = plt.subplots(figsize=(6, 3.2))
ax.hist(h2, bins=40, density=True, color="C0", alpha=0.6, label="posterior draws")
ax.axvline(h2_true, color="k", lw=2, label="true $h^2$")
ax.axvline(reml.h2, color="C3", ls="--", label="REML estimate")
ax.axvspan(*reml.h2_interval, color="C3", alpha=0.08, label="REML 95% profile interval")
ax.set_xlabel("$h^2$")
ax.legend(fontsize=8)
fig.tight_layout()

# %% [markdown]
# The posterior and the REML fit agree: with flat-ish priors and a thousand individuals,
# the likelihood dominates. The posterior also answers questions REML cannot directly,
# such as "how likely is $h^2 > 0.5$?":

# %%
print(f"P(h2 > 0.5 | data) = {np.mean(h2 > 0.5):.2f}")

# %% [markdown]
# ## Genomic prediction
#
# For the 200 held-out individuals we know only their genotypes. Their predicted genetic
# value is the best linear unbiased prediction (BLUP),
# $E[X_\text{new}\,\omega \mid y] = \sigma_b^2 X_\text{new} X^\top V^{-1}(y - X_f\beta)$:
# individuals who share alleles with tall training individuals are predicted taller.
# `predict(new_data, new_X=...)` adds the fixed part (sex); `include_random=False` would
# leave the genetic part out.

# %%
pred = post.predict(df.iloc[test], new_X=X[test]).mean(("chain", "draw")).values
genetic = pred - post.predict(df.iloc[test], new_X=X[test],
                              include_random=False).mean(("chain", "draw")).values
true_genetic = 8 * g[test]
r = np.corrcoef(genetic, true_genetic)[0, 1]
fig, ax = plt.subplots(figsize=(4, 4))
ax.scatter(true_genetic, genetic, s=8)
ax.set_xlabel("true genetic value (cm)")
ax.set_ylabel("predicted genetic value (cm)")
ax.set_title(f"held-out individuals: r = {r:.2f}")
fig.tight_layout()

# %% [markdown]
# The predictions are shrunk towards zero (the slope is below 1) and the accuracy is
# modest: with 1,000 unrelated individuals and 6,000 independent SNPs, most of an
# individual's genetic value cannot be pinned down. Daetwyler et al. (2008) give the
# expected accuracy for this setting, $r \approx \sqrt{n h^2 / (n h^2 + p)}$: it grows
# with the number of training individuals and with $h^2$, and falls with the number of
# independent effects. (In real populations relatives share long stretches of genome,
# which raises the accuracy.)

# %%
print(f"observed r = {r:.2f}; expected sqrt(n h2 / (n h2 + p)) = "
      f"{np.sqrt(1000 * h2_true / (1000 * h2_true + p)):.2f}")

# %% [markdown]
# ## SNP effects
#
# The BLUPs of the individual SNP effects are `post.ranef["snps"]`. They are heavily
# shrunk: no single SNP is estimated well, yet together they predict. For uncertainty,
# `draw_effects` gives exact draws from their Gaussian conditional distribution (not
# stored by default, as there are $p$ of them per draw).

# %%
blup = post.ranef["snps"]["effect"].to_numpy()
draws = post.draw_effects(200, random_seed=2)          # dims (sample, snps_effect)
lo, hi = np.percentile(draws.values, [3, 97], axis=0)
fig, ax = plt.subplots(figsize=(6, 3))
idx = np.arange(40)
ax.errorbar(idx, blup[idx], yerr=[blup[idx] - lo[idx], hi[idx] - blup[idx]], fmt="o",
            ms=3, label="BLUP and 94% interval")
ax.scatter(idx, omega[idx] * 8, color="k", marker="x", s=15, label="true effect (cm)")
ax.set_xlabel("SNP")
ax.set_ylabel("effect (cm per sd of genotype)")
ax.legend(fontsize=8)
fig.tight_layout()
print(f"coverage of the 94% intervals over all {p} SNPs: "
      f"{np.mean((lo <= 8 * omega) & (8 * omega <= hi)):.2f}")

# %% [markdown]
# ## The same model with a kinship matrix
#
# Instead of SNPs we may have a relationship matrix between individuals (a pedigree, or
# the genomic relationship matrix $K = XX^\top/p$). A random intercept per individual
# with that covariance, $b \sim N(0, \sigma_b^2 K)$, is written with `covariances` and the
# formula term `(1 | id)`; a DataFrame is matched to the levels by label. With
# $K = XX^\top/p$ it is the same model, so REML gives the same $h^2$:

# %%
ids = [f"ind{i}" for i in range(n)]
K = pd.DataFrame(X @ X.T / p, index=ids, columns=ids)
kin = df.iloc[train].assign(id=ids[:1000])
reml_k = blm.LMM("height ~ sex + (1 | id)", kin, covariances={"id": K}).fit_map("REML")
print(f"h2 with SNPs: {reml.h2:.4f}; with the kinship matrix: {reml_k.h2:.4f}")

# %% [markdown]
# Because $K$ also holds the 200 untested individuals, their genetic values are predicted
# directly, by their `id`, with no genotypes needed:

# %%
pred_k = reml_k.predict(df.iloc[test].assign(id=ids[1000:]), include_random=True)
pred_snp = reml.predict(df.iloc[test], new_X=X[test])
print(f"max difference between the two predictions: "
      f"{np.max(np.abs(pred_k.to_numpy() - pred_snp.to_numpy())):.2e} cm")

# %% [markdown]
# **Summary.** `random_matrices={"snps": X}` fits the ridge/genomic mixed model
# (GREML by `fit_map`, the full posterior by `fit`) at a cost per likelihood evaluation
# that does not depend on the number of SNPs; `covariances={"id": K}` fits a random effect
# with a known covariance. What may be combined with them: fixed effects and iid
# residuals, one such term per model.
