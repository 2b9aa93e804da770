# Extra nlme reference fits with residual structures (not in /work/shared/reference).
#
# Usage: Rscript models/make_nlme_extra.R DATA_DIR OUT_DIR
#   DATA_DIR holds <dataset>.csv exported from bayeslmm.datasets.load and factors.json
#   (level order of each factor); OUT_DIR receives one JSON per case in the format of
#   /work/shared/reference/*.json. Run through models/make_nlme_extra.py, which exports
#   the data and turns the JSON files into models/*.toml.
suppressPackageStartupMessages({library(nlme); library(jsonlite)})
args <- commandArgs(trailingOnly = TRUE)
data_dir <- args[1]; out_dir <- args[2]
factors <- fromJSON(file.path(data_dir, "factors.json"), simplifyVector = FALSE)

load_data <- function(name) {
  df <- read.csv(file.path(data_dir, paste0(name, ".csv")), stringsAsFactors = FALSE)
  for (col in names(factors[[name]])) {
    df[[col]] <- factor(as.character(df[[col]]), levels = unlist(factors[[name]][[col]]$levels))
  }
  df
}

# std_error is summary()'s (for lme ML fits sqrt(N/(N - p)) times sqrt(diag(vcov())))
# case, dataset, R call (data = D), lme4-style formula, bayeslmm residual text
cases <- list(
  list("Orthodont_car1", "Orthodont",
       "lme(distance ~ age + Sex, random = ~ 1 | Subject, data = D, correlation = corCAR1(form = ~ age | Subject), method = M)",
       "distance ~ age + Sex + (1 | Subject)", "CAR1(time=age, group=Subject)"),
  list("Orthodont_varpower_age", "Orthodont",
       "lme(distance ~ age + Sex, random = ~ 1 | Subject, data = D, weights = varPower(form = ~ age), method = M)",
       "distance ~ age + Sex + (1 | Subject)", "VarPower(covariate=age)"),
  list("Orthodont_varexp_age", "Orthodont",
       "lme(distance ~ age + Sex, random = ~ 1 | Subject, data = D, weights = varExp(form = ~ age), method = M)",
       "distance ~ age + Sex + (1 | Subject)", "VarExp(covariate=age)"),
  list("Orthodont_varident_ar1", "Orthodont",
       "lme(distance ~ age + Sex, random = ~ 1 | Subject, data = D, weights = varIdent(form = ~ 1 | Sex), correlation = corAR1(form = ~ 1 | Subject), method = M)",
       "distance ~ age + Sex + (1 | Subject)", "Residual(variance=VarIdent(by=Sex), correlation=AR1(group=Subject))"),
  # varPower() of the fitted values: nlme alternates optimisation and updates of the
  # fitted values; with the default control it stops ~2e-3 (relative, in sigma) short of
  # its own fixed point along a flat ridge, so the reference uses a tight control (the
  # default fit's numbers are kept in the note). Tighter than tolerance = 1e-7 the REML
  # iteration does not settle; its sigma is good to ~2e-4, hence sigma_rel = 5e-4 here.
  list("Orthodont_varpower_fitted", "Orthodont",
       "lme(distance ~ age + Sex, random = ~ 1 | Subject, data = D, weights = varPower(), method = M, control = lmeControl(opt = \"optim\", tolerance = 1e-7, msTol = 1e-14, maxIter = 500, msMaxIter = 500))",
       "distance ~ age + Sex + (1 | Subject)", "VarPower()"),
  list("Orthodont_gls_ar1", "Orthodont",
       "gls(distance ~ age + Sex, data = D, correlation = corAR1(form = ~ 1 | Subject), method = M)",
       "distance ~ age + Sex", "AR1(group=Subject)"),
  list("Orthodont_gls_varident_cs", "Orthodont",
       "gls(distance ~ age * Sex, data = D, weights = varIdent(form = ~ 1 | Sex), correlation = corCompSymm(form = ~ 1 | Subject), method = M)",
       "distance ~ age * Sex", "Residual(variance=VarIdent(by=Sex), correlation=CompSymm(group=Subject))"),
  list("Ovary_car1", "Ovary",
       "lme(follicles ~ sin(2 * pi * Time) + cos(2 * pi * Time), random = ~ 1 | Mare, data = D, correlation = corCAR1(form = ~ Time | Mare), method = M)",
       "follicles ~ sin(2 * pi * Time) + cos(2 * pi * Time) + (1 | Mare)", "CAR1(time=Time, group=Mare)"),
  # (random = ~ Days | Subject with corAR1 stops with "singular convergence" in nlme)
  list("sleepstudy_int_ar1", "sleepstudy",
       "lme(Reaction ~ Days, random = ~ 1 | Subject, data = D, correlation = corAR1(form = ~ Days | Subject), method = M)",
       "Reaction ~ Days + (1 | Subject)", "AR1(group=Subject, time=Days)"),
  list("sleepstudy_gls_varexp_ar1", "sleepstudy",
       "gls(Reaction ~ Days, data = D, weights = varExp(form = ~ Days), correlation = corAR1(form = ~ 1 | Subject), method = M)",
       "Reaction ~ Days", "Residual(variance=VarExp(covariate=Days), correlation=AR1(group=Subject))")
)

struct_params <- function(fit) {
  out <- list()
  ms <- fit$modelStruct
  if (!is.null(ms$corStruct)) {
    cs <- ms$corStruct
    out$correlation <- list(class = class(cs)[1], formula = deparse(formula(cs)),
                            parameters = as.list(coef(cs, unconstrained = FALSE)))
  }
  if (!is.null(ms$varStruct)) {
    vs <- ms$varStruct
    p <- as.list(coef(vs, unconstrained = FALSE, allCoef = TRUE))
    out$variance <- list(class = class(vs)[1], formula = deparse(formula(vs)), parameters = p)
  }
  out
}

one_fit <- function(case, method) {
  D <- load_data(case[[2]]); M <- method
  call_text <- case[[3]]
  fit <- eval(parse(text = call_text))
  times <- sapply(1:5, function(i) system.time(eval(parse(text = call_text)))[["elapsed"]])
  is_lme <- inherits(fit, "lme")
  fe <- fixef_or_coef <- if (is_lme) fixef(fit) else coef(fit)
  vc <- vcov(fit)
  re <- list(); rf <- NULL
  if (is_lme) {
    psi <- as.matrix(getVarCov(fit))
    sds <- sqrt(diag(psi)); cr <- cov2cor(psi)
    grp <- names(fit$groups)[1]
    re <- list(list(group = grp, terms = I(colnames(psi)), sd = as.list(setNames(sds, colnames(psi))),
                    corr = unname(lapply(seq_len(nrow(cr)), function(i) I(unname(cr[i, ])))),
                    nlme_name = grp))
    r <- ranef(fit)
    rf <- list()
    rf[[grp]] <- c(list(levels = rownames(r)),
                   setNames(lapply(colnames(r), function(t) list(mode = r[[t]])), colnames(r)))
  }
  ll <- logLik(fit)
  note <- NULL
  if (grepl("control = ", call_text)) {
    dflt <- eval(parse(text = sub(", control = .*)$", ")", call_text)))
    note <- sprintf(paste("Tight nlme control; with the default control nlme gives logLik %.6f,",
                          "sigma %.6g, %s"), as.numeric(logLik(dflt)), dflt$sigma,
                    paste(names(coef(dflt$modelStruct$varStruct, unconstrained = FALSE)),
                          signif(coef(dflt$modelStruct$varStruct, unconstrained = FALSE), 7),
                          collapse = ", "))
  }
  r_call <- sub("data = D", paste0("data = ", case[[2]]),
                sub("method = M", paste0("method = \"", method, "\""), call_text))
  list(case = paste0(case[[1]], "_", tolower(method)), dataset = case[[2]],
       formula = case[[4]], bayeslmm_residual = case[[5]], method = method,
       engine = paste0("nlme::", if (is_lme) "lme" else "gls", " ", packageVersion("nlme")),
       r_call = r_call,
       fixed_effects = list(names = names(fe), estimate = as.list(fe),
                            std_error = as.list(summary(fit)$tTable[, "Std.Error"]), vcov = unname(vc)),
       random_effects = re, ranef = rf, nobs = nobs(fit), residual_sd = fit$sigma,
       residual_structure_parameters = struct_params(fit),
       logLik = as.numeric(ll), df = attr(ll, "df"), AIC = AIC(fit), BIC = BIC(fit),
       BIC_note = "nlme: for REML, BIC uses log(N - p) (p = number of fixed effects); for ML log(N)",
       singular = FALSE, note = note,
       tolerance = if (is.null(note)) NULL else list(sigma_rel = 5e-4),
       timing = list(repeats = 5, elapsed_s = times, median_elapsed_s = median(times)),
       versions = list(R = R.version.string, nlme = as.character(packageVersion("nlme"))))
}

dir.create(out_dir, showWarnings = FALSE, recursive = TRUE)
for (case in cases) for (method in c("ML", "REML")) {
  res <- tryCatch(one_fit(case, method), error = function(e) {
    message(case[[1]], " ", method, ": ", conditionMessage(e)); NULL })
  if (is.null(res)) next
  writeLines(toJSON(res, auto_unbox = TRUE, digits = NA, pretty = TRUE, null = "null"),
             file.path(out_dir, paste0(res$case, ".json")))
  message("wrote ", res$case, ".json  logLik ", format(res$logLik, digits = 10))
}
