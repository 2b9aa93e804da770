"""Designs → PyMC models: priors, the conditional model (explicit random effects), the
marginal model (random effects integrated out, from cross-products) and the rotated
model of the genomic LMM. Every model is a real ``pm.Model``."""
