# nlme's correlation matrices of the dense structures at fixed parameters, on a small
# data set with unequal groups, unsorted times with gaps and 2-D coordinates: the
# definitions (tests/test_dense_residual.py checks bayeslmm's matrices against these).
#
# Usage: Rscript models/make_corr_matrices.R models/nlme_more/corr_matrices.json
suppressPackageStartupMessages({library(nlme); library(jsonlite)})
args <- commandArgs(trailingOnly = TRUE)
D <- data.frame(g = c("a", "b", "a", "b", "a", "c", "b", "a", "c"),
                t = c(3, 1, 1, 4, 2, 2, 2, 6, 5),
                x = c(0.5, 1.0, 2.5, 0.2, 1.1, 3.0, 2.2, 0.9, 1.4),
                y = c(1.0, 0.3, 0.8, 2.0, 2.4, 1.1, 0.7, 0.1, 1.9))
D$g <- factor(D$g)
D <- D[order(D$g), ]  # as gls and lme order it (stable: data order within groups)
rownames(D) <- NULL
mats <- function(cs) {
  cs <- Initialize(cs, data = D)
  m <- corMatrix(cs)
  if (!is.list(m)) m <- list(m)
  lapply(m, function(x) unname(lapply(seq_len(nrow(x)), function(i) unname(x[i, ]))))
}
cases <- list(
  list(name = "symm_time", text = "CorSymm(group=g, time=t)",
       params = list(cor_symm = c(0.3, -0.2, 0.1, 0.25, 0.4, -0.1, 0.2, 0.05, 0.15, 0.3,
                                  0.1, -0.05, 0.2, 0.1, 0.3)),
       nlme = corSymm(c(0.3, -0.2, 0.1, 0.25, 0.4, -0.1, 0.2, 0.05, 0.15, 0.3, 0.1, -0.05,
                        0.2, 0.1, 0.3), form = ~ t | g)),
  list(name = "arma21_time", text = "CorARMA(p=2, q=1, group=g, time=t)",
       params = list(Phi = c(0.5, 0.2), Theta = 0.4),
       nlme = corARMA(c(0.5, 0.2, 0.4), form = ~ t | g, p = 2, q = 1)),
  list(name = "arma02", text = "CorARMA(p=0, q=2, group=g)",
       params = list(Phi = numeric(0), Theta = c(0.3, -0.4)),
       nlme = corARMA(c(0.3, -0.4), form = ~ 1 | g, p = 0, q = 2)),
  list(name = "exp_nugget", text = "CorExp(coords=(x, y), group=g, nugget=True)",
       params = list(range = 1.3, nugget = 0.2),
       nlme = corExp(c(1.3, 0.2), form = ~ x + y | g, nugget = TRUE)),
  list(name = "gaus_manhattan", text = "CorGaus(coords=(x, y), group=g, metric='manhattan')",
       params = list(range = 1.7),
       nlme = corGaus(1.7, form = ~ x + y | g, metric = "manhattan")),
  list(name = "spher_maximum", text = "CorSpher(coords=(x, y), group=g, metric='maximum', nugget=True)",
       params = list(range = 2.1, nugget = 0.1),
       nlme = corSpher(c(2.1, 0.1), form = ~ x + y | g, metric = "maximum", nugget = TRUE)),
  list(name = "ratio", text = "CorRatio(coords=(x, y), group=g)",
       params = list(range = 0.8),
       nlme = corRatio(0.8, form = ~ x + y | g)),
  list(name = "lin_1d", text = "CorLin(coords=(t,), group=g, nugget=True)",
       params = list(range = 3.5, nugget = 0.3),
       nlme = corLin(c(3.5, 0.3), form = ~ t | g, nugget = TRUE))
)
out <- list(data = D, nlme = as.character(packageVersion("nlme")),
            cases = lapply(cases, function(k) list(name = k$name, residual = k$text,
                                                   params = k$params, matrices = mats(k$nlme))))
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), args[1])
