"""Exact ML and REML: the bounded search, lme4's fit (iid residuals), nlme's fit (residual
structures), GREML for random matrices and known covariances, the assembly of the
result and the restoration of a saved fit at its stored parameters."""
