# Reference fits with the residual sd fixed at a known value (issue 18): nlme's
# lmeControl(sigma = s) / glsControl(sigma = s), the meta-analysis model with known
# sampling variances (varFixed(~ vi), sigma = 1) and a bundled dataset without varFixed.
#
# Usage: Rscript models/make_fixed_sigma.R DATA_DIR OUT_DIR  (through
# models/make_fixed_sigma.py, which exports the datasets and writes models/*.toml)
#
# Every case is also computed densely here (V = sigma^2 diag(v) + tau^2 Z Z', tau^2 by
# optimize() on the exact ML or REML log-likelihood; beta, its covariance and the
# conditional modes in closed form). The reference is nlme's fit where nlme computes the
# criterion it documents (ML; gls's REML), checked against the dense fit (|delta logLik|,
# relative delta tau < 1e-5, or the script stops); for lme's REML with sigma fixed it is the
# dense fit: for REML with sigma fixed nlme's C function internal_loglik adds
# p * lglk[Q+1] + 1 (lglk[Q+1]: the log of the response's pivot in its decomposition) to
# the log-likelihood (nlme 3.1-162 src/nlmefit.c; Pustejovsky 2016, "Bug in nlme::lme with fixed sigma and
# REML estimation"), so its estimates are not REML's (BCG: tau^2 = 0.3376, REML's 0.3132,
# the value metafor's rma() and Viechtbauer 2010 give); nlme's numbers are kept in `note`.
# And lme's logLik with sigma fixed at s != 1 is off by -(N - p) log(s) (estimates right):
# the reference logLik is the dense one there.
# lme's ML standard errors here are sqrt(diag(vcov(fit))): nlme's summary() multiplies
# them by sqrt(N / (N - p)) for an estimated sigma (adjustSigma), which does not apply to
# a known one; gls's ML vcov() has that factor in it, undone here the same way.
suppressPackageStartupMessages({library(nlme); library(jsonlite)})
args <- commandArgs(trailingOnly = TRUE)
data_dir <- args[1]; out_dir <- args[2]
factors <- fromJSON(file.path(data_dir, "factors.json"), simplifyVector = FALSE)
load_data <- function(name) {
  df <- read.csv(file.path(data_dir, paste0(name, ".csv")), stringsAsFactors = FALSE)
  for (col in names(factors[[name]])) {
    f <- factors[[name]][[col]]
    df[[col]] <- factor(as.character(df[[col]]), levels = unlist(f$levels),
                        ordered = isTRUE(f$ordered))
  }
  df
}

# case, dataset, fixed sigma, response, fixed formula (R), group ("" for gls), known
# variances column ("" for none), bayeslmm formula, bayeslmm residual text
cases <- list(
  list("bcg_fixed_sigma", "bcg", 1, "yi", "yi ~ 1", "trial", "vi",
       "yi ~ 1 + (1 | trial)", "VarFixed(covariate=vi)"),
  list("bcg_fixed_sigma_ablat", "bcg", 1, "yi", "yi ~ ablat", "trial", "vi",
       "yi ~ ablat + (1 | trial)", "VarFixed(covariate=vi)"),
  list("bcg_gls_fixed_sigma_ablat", "bcg", 1, "yi", "yi ~ ablat", "", "vi",
       "yi ~ ablat", "VarFixed(covariate=vi)"),
  list("Orthodont_fixed_sigma", "Orthodont", 1.5, "distance", "distance ~ age + Sex",
       "Subject", "", "distance ~ age + Sex + (1 | Subject)", ""),
  list("Orthodont_gls_fixed_sigma", "Orthodont", 1.5, "distance", "distance ~ age + Sex",
       "", "", "distance ~ age + Sex", "")
)

dense <- function(D, cs, reml) {
  s <- cs[[3]]; y <- D[[cs[[4]]]]; X <- model.matrix(as.formula(cs[[5]]), D)
  n <- length(y); p <- ncol(X)
  v <- if (nzchar(cs[[7]])) D[[cs[[7]]]] else rep(1, n)
  Z <- if (nzchar(cs[[6]])) model.matrix(~ 0 + D[[cs[[6]]]]) else matrix(0, n, 0)
  fit_at <- function(t2) {
    V <- diag(s^2 * v, n) + t2 * Z %*% t(Z)
    Vi <- solve(V); XVX <- t(X) %*% Vi %*% X
    beta <- solve(XVX, t(X) %*% Vi %*% y); r <- y - X %*% beta
    ll <- -0.5 * (n * log(2 * pi) + determinant(V)$modulus + t(r) %*% Vi %*% r)
    if (reml) ll <- ll - 0.5 * (determinant(XVX)$modulus - p * log(2 * pi))
    list(ll = as.numeric(ll), beta = drop(beta), vcov = solve(XVX),
         b = drop(t2 * t(Z) %*% Vi %*% r))
  }
  t2 <- if (ncol(Z)) optimize(function(t) fit_at(t)$ll, c(0, 10 * var(y)), maximum = TRUE,
                              tol = 1e-14)$maximum else 0
  c(fit_at(t2), list(tau = sqrt(t2), X = X, Z = Z))
}

one_fit <- function(cs, method) {
  D <- load_data(cs[[2]]); reml <- method == "REML"; s <- cs[[3]]
  wts <- if (nzchar(cs[[7]])) paste0(", weights = varFixed(~ ", cs[[7]], ")") else ""
  gls_case <- !nzchar(cs[[6]])
  call_text <- if (gls_case) {
    sprintf("gls(%s, data = D%s, control = glsControl(sigma = %s), method = \"%s\")",
            cs[[5]], wts, s, method)
  } else {
    sprintf("lme(%s, random = ~ 1 | %s, data = D%s, control = lmeControl(sigma = %s), method = \"%s\")",
            cs[[5]], cs[[6]], wts, s, method)
  }
  fit <- eval(parse(text = call_text))
  times <- sapply(1:3, function(i) system.time(eval(parse(text = call_text)))[["elapsed"]])
  d <- dense(D, cs, reml)
  ll_nlme <- as.numeric(logLik(fit))
  tau_nlme <- if (gls_case) 0 else sqrt(as.numeric(getVarCov(fit)[1]))
  fe_nlme <- if (gls_case) coef(fit) else fixef(fit)
  nlme_right <- !(reml && !gls_case)
  # lme's logLik with sigma fixed counts log(sigma) twice: its C code subtracts
  # (N - p) log(sigma) and MEestimate() N log(sigma) (0 at sigma = 1; the estimates are
  # unaffected, the term being constant)
  ll_shift <- if (gls_case) 0 else -(nrow(D) - ncol(d$X)) * log(s)
  agree <- abs(ll_nlme - ll_shift - d$ll) < 1e-5 &&
    (gls_case || abs(tau_nlme / d$tau - 1) < 1e-5) &&
    max(abs(fe_nlme - d$beta)) < 1e-5 * max(1, abs(d$beta))
  if (nlme_right && !agree) stop(cs[[1]], " ", method, ": nlme and the dense fit disagree: ",
                                 ll_nlme, " vs ", d$ll)
  note <- if (nlme_right && ll_shift == 0) {
    sprintf("nlme's fit; the dense fit agrees (logLik %.10g)", d$ll)
  } else if (nlme_right) {
    sprintf(paste("nlme's estimates; the logLik is the dense fit's (nlme's %.10g counts",
                  "(N - p) log(sigma) twice)"), ll_nlme)
  } else {
    sprintf(paste("the dense REML fit (nlme's lme REML with sigma fixed is not REML:",
                  "tau = %.10g, logLik %.10g, fixed effects %s)"), tau_nlme, ll_nlme,
            paste(format(fe_nlme, digits = 10), collapse = ", "))
  }
  # nlme's values where nlme is right, else the dense fit's (they agree where both hold)
  fe <- d$beta; names(fe) <- colnames(d$X)
  se <- sqrt(diag(d$vcov)); names(se) <- colnames(d$X)
  re <- list(); ranef_out <- NULL
  if (!gls_case) {
    re <- list(list(group = cs[[6]], terms = I("(Intercept)"),
                    sd = list("(Intercept)" = if (nlme_right) tau_nlme else d$tau),
                    corr = list(I(1))))
    modes <- if (nlme_right) ranef(fit)[[1]] else d$b
    ranef_out <- list()
    ranef_out[[cs[[6]]]] <- list(levels = levels(D[[cs[[6]]]]),
                                 "(Intercept)" = list(mode = unname(modes)))
  }
  if (nlme_right) fe <- fe_nlme
  ll <- if (nlme_right) ll_nlme - ll_shift else d$ll
  k <- length(fe) + (!gls_case)  # sigma is not a parameter
  n <- nrow(D); n_bic <- n - if (reml) length(fe) else 0
  list(case = paste0(cs[[1]], "_", tolower(method)), dataset = cs[[2]], formula = cs[[8]],
       bayeslmm_residual = if (nzchar(cs[[9]])) cs[[9]] else NULL, fixed_sigma = s,
       method = method, engine = paste0("nlme::", if (gls_case) "gls" else "lme", " ",
                                         packageVersion("nlme"), if (nlme_right) "" else
                                         " (REML: the dense fit, see note)"),
       r_call = sub("data = D", paste0("data = ", cs[[2]]), call_text),
       fixed_effects = list(names = names(fe), estimate = as.list(fe), std_error = as.list(se)),
       random_effects = re, ranef = ranef_out, nobs = n, residual_sd = s,
       residual_structure_parameters = if (nzchar(cs[[7]]))
         list(variance = list(class = "varFixed", formula = paste("~", cs[[7]]),
                              parameters = structure(list(), names = character(0)))) else NULL,
       logLik = ll, df = k, AIC = -2 * ll + 2 * k, BIC = -2 * ll + k * log(n_bic),
       singular = FALSE, note = note,
       timing = list(repeats = 3, elapsed_s = times, median_elapsed_s = median(times)),
       versions = list(R = R.version.string, nlme = as.character(packageVersion("nlme"))))
}

dir.create(out_dir, showWarnings = FALSE, recursive = TRUE)
for (cs in cases) for (method in c("ML", "REML")) {
  res <- one_fit(cs, method)
  writeLines(toJSON(res, auto_unbox = TRUE, digits = NA, pretty = TRUE, null = "null"),
             file.path(out_dir, paste0(res$case, ".json")))
  message("wrote ", res$case, ".json  logLik ", format(res$logLik, digits = 10), "  ", res$note)
}
