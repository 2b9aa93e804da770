"""Formula and data → design: lme4's syntax read into a :class:`~bayeslmm.formula.spec.ModelSpec`
(no data), evaluated on a DataFrame into a :class:`~bayeslmm.formula.design.Design`
(plain arrays), and the same matrices for new rows (:mod:`~bayeslmm.formula.newdata`).
Models with a wide random matrix or a known covariance have their own design
(:mod:`~bayeslmm.formula.kernel_design`)."""
