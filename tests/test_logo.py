"""Leave-one-group-out by PSIS against brute force: refit without each group and score
its data under the refit's draws (sampling tier)."""

from __future__ import annotations

import warnings

import arviz as az
import numpy as np
import pytest
from scipy.special import logsumexp

import bayeslmm as blm
from bayeslmm.results.group_loglik import group_loglik

NUTS = {"draws": 1000, "tune": 1000, "chains": 2, "random_seed": 1, "progressbar": False}


@pytest.mark.slow
def test_psis_logo_matches_refits_without_each_group():
    df = blm.datasets.load("Dyestuff")
    formula = "Yield ~ 1 + (1 | Batch)"
    post = blm.LMM(formula, df).fit(**NUTS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loo = az.loo(post.log_likelihood(level="group"), pointwise=True)
    psis = loo.loo_i.values
    design = blm.LMM(formula, df).design
    brute = []
    for j, level in enumerate(df["Batch"].cat.categories):
        train = df[df["Batch"] != level].copy()
        train["Batch"] = train["Batch"].cat.remove_unused_categories()
        refit = blm.LMM(formula, train).fit(**NUTS)
        # the left-out batch as a new group: its effect integrated out under each draw
        # of the refit (β, σ and sd_Batch: the refit's b are not used)
        ll = group_loglik(design, refit.idata.posterior).values[..., j]
        brute.append(logsumexp(ll.ravel()) - np.log(ll.size))
    brute = np.array(brute)
    good = loo.pareto_k.values < 0.7
    assert good.sum() >= 4, loo.pareto_k.values
    # per batch (elpd about -25 each): Monte Carlo error of both sides is ~0.1
    np.testing.assert_allclose(psis[good], brute[good], atol=0.35)
    assert abs(psis.sum() - brute.sum()) < 1.0
