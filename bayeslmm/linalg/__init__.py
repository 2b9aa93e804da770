"""Numerical linear algebra of the mixed model, knowing nothing of formulas or PyMC:
lme4's θ layout, the blocked cross-products [Z X y]ᵀ[Z X y], the penalised least-squares
factorisation and its gradient, and the rotation of the genomic LMM (Householder
tridiagonal form, eigenbasis)."""
