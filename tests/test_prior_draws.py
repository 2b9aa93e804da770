"""Prior log-densities and draws computed without PyMC's graphs equal PyMC's: the
densities exactly, the draws in distribution (Kolmogorov–Smirnov against SciPy), LKJ's
correlations against their Beta marginal."""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytest
from scipy import stats

from bayeslmm.pymc.prior_draws import _logp, _numpy_draw, lkj_corr_draws
from bayeslmm.pymc.priors import Prior

FAMILIES = [
    (Prior("Normal", mu=1.0, sigma=2.0), stats.norm(1.0, 2.0)),
    (Prior("HalfNormal", sigma=3.0), stats.halfnorm(scale=3.0)),
    (Prior("Exponential", lam=0.5), stats.expon(scale=2.0)),
    (Prior("StudentT", nu=4.0, mu=-1.0, sigma=2.0), stats.t(4.0, -1.0, 2.0)),
    (Prior("HalfStudentT", nu=3.0, sigma=2.0), None),  # 2 × Student t on x > 0
    (Prior("HalfCauchy", beta=2.0), stats.halfcauchy(scale=2.0)),
    (Prior("Cauchy", alpha=1.0, beta=0.5), stats.cauchy(1.0, 0.5)),
    (Prior("Uniform", lower=0.0, upper=5.0), stats.uniform(0.0, 5.0)),
    (Prior("LogNormal", mu=0.5, sigma=0.8), stats.lognorm(0.8, scale=np.exp(0.5))),
]


@pytest.mark.parametrize("prior, dist", FAMILIES, ids=[p.name for p, _ in FAMILIES])
def test_log_density_equals_scipy_and_pymc(prior, dist):
    x = np.array([[0.3, 1.7, 4.2]])
    want = (np.log(2) + stats.t(3.0, 0.0, 2.0).logpdf(x)) if dist is None else dist.logpdf(x)
    np.testing.assert_allclose(_logp(prior, x, vector=False), want, rtol=1e-12)
    # the same parameterization as PyMC's (which evaluates here in FAST_COMPILE mode)
    pymc = pm.logp(prior.dist(shape=x.shape), x).eval()
    np.testing.assert_allclose(_logp(prior, x, vector=False), pymc, rtol=1e-6)


@pytest.mark.parametrize("prior, dist", [f for f in FAMILIES if f[1] is not None],
                         ids=[p.name for p, _ in FAMILIES if p.name != "HalfStudentT"])
def test_draws_follow_the_family(prior, dist):
    x = _numpy_draw(prior.name, prior.params, (4000,), np.random.default_rng(3))
    assert stats.kstest(x, dist.cdf).pvalue > 0.001


def test_half_student_t_draws():
    x = _numpy_draw("HalfStudentT", {"nu": 3.0, "sigma": 2.0}, (4000,),
                    np.random.default_rng(4))
    assert stats.kstest(x / 2.0, lambda v: 2 * stats.t(3.0).cdf(v) - 1).pvalue > 0.001


@pytest.mark.parametrize("n, eta", [(2, 1.0), (3, 2.0), (4, 0.7)])
def test_lkj_correlations_have_their_beta_marginals(n, eta):
    r = lkj_corr_draws(n, eta, 3000, np.random.default_rng(n))
    assert np.allclose(r, np.swapaxes(r, 1, 2))
    assert np.all(np.linalg.eigvalsh(r) > 0)
    a = eta - 1 + n / 2  # each r_ij ~ 2 Beta(a, a) - 1
    for i, j in [(0, 1), (n - 2, n - 1)]:
        assert stats.kstest((r[:, i, j] + 1) / 2, stats.beta(a, a).cdf).pvalue > 0.001
