# Reference fits of the rest of nlme's and lme4's model language (issue 18):
# nlme's corSymm, corARMA, spatial correlations (corExp, corGaus, corSpher, corRatio,
# corLin, with and without nugget), varConstPower, varFixed, varComb; lme4's prior
# weights; ordered factors (contr.poly) in lme4.
#
# Usage: Rscript models/make_nlme_more.R DATA_DIR OUT_DIR
#   DATA_DIR holds <dataset>.csv exported from bayeslmm.datasets.load and factors.json
#   (level order and ordered status of each factor); OUT_DIR receives one JSON per case
#   in the format of models/nlme_extra/*.json. Run through models/make_nlme_more.py, which
#   exports the data and turns the JSON files into models/*.toml.
suppressPackageStartupMessages({library(nlme); library(lme4); library(jsonlite); library(lmerTest)})
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
  # nlme's grouping formulae take a column, not an interaction: cake's recipe:replicate
  if (name == "cake") df$rr <- interaction(df$recipe, df$replicate, sep = ":", lex.order = TRUE)
  df
}

# case, dataset, R call (data = D, method = M), lme4-style formula, bayeslmm residual
# text ("" for none), bayeslmm weights column ("" for none), tolerance overrides (list)
cases <- list(
  # --- corSymm ---------------------------------------------------------------------
  list("Orthodont_gls_symm", "Orthodont",
       "gls(distance ~ age + Sex, data = D, correlation = corSymm(form = ~ 1 | Subject), method = M)",
       "distance ~ age + Sex", "CorSymm(group=Subject)"),
  list("Pastes_symm", "Pastes",
       "lme(strength ~ 1, random = ~ 1 | batch, data = D, correlation = corSymm(form = ~ 1 | batch/cask), method = M)",
       "strength ~ 1 + (1 | batch)", "CorSymm(group='batch:cask')"),
  list("cake_gls_symm", "cake",
       "gls(angle ~ recipe + temp, data = D, correlation = corSymm(form = ~ 1 | rr), method = M)",
       "angle ~ recipe + temp", "CorSymm(group='recipe:replicate')"),
  # --- corARMA ---------------------------------------------------------------------
  list("Ovary_arma11", "Ovary",
       "lme(follicles ~ sin(2 * pi * Time) + cos(2 * pi * Time), random = ~ 1 | Mare, data = D, correlation = corARMA(form = ~ 1 | Mare, p = 1, q = 1), method = M)",
       "follicles ~ sin(2 * pi * Time) + cos(2 * pi * Time) + (1 | Mare)", "CorARMA(p=1, q=1, group=Mare)"),
  list("Orthodont_gls_arma11", "Orthodont",
       "gls(distance ~ age + Sex, data = D, correlation = corARMA(form = ~ 1 | Subject, p = 1, q = 1), method = M)",
       "distance ~ age + Sex", "CorARMA(p=1, q=1, group=Subject)"),
  list("sleepstudy_gls_ar2", "sleepstudy",
       "gls(Reaction ~ Days, data = D, correlation = corARMA(form = ~ Days | Subject, p = 2), method = M)",
       "Reaction ~ Days", "CorARMA(p=2, group=Subject, time=Days)"),
  # --- spatial: Wheat2 (2-D coordinates, one group), fieldplots (2-D coordinates within
  # sites, random site effects), Orthodont (1-D: age within subjects). Starting values
  # as Pinheiro and Bates (2000, section 5.3) give them: nlme's default start (range
  # 0.9 x the smallest distance) stops at a local maximum without correlation.
  list("Wheat2_gls_gaus_nugget", "Wheat2",
       "gls(yield ~ variety, data = D, correlation = corGaus(c(28, 0.2), form = ~ latitude + longitude, nugget = TRUE), method = M)",
       "yield ~ variety", "CorGaus(coords=(latitude, longitude), nugget=True)"),
  # (corSpher on the whole field: nlme's REML fit is a local maximum; the likelihood
  # rises further toward range -> Inf, nugget -> 0, as corExp's does; so per Block)
  list("Wheat2_gls_spher_block_nugget", "Wheat2",
       "gls(yield ~ variety, data = D, correlation = corSpher(c(28, 0.2), form = ~ latitude + longitude | Block, nugget = TRUE), method = M)",
       "yield ~ variety", "CorSpher(coords=(latitude, longitude), group=Block, nugget=True)"),
  list("Wheat2_gls_ratio_nugget", "Wheat2",
       "gls(yield ~ variety, data = D, correlation = corRatio(c(13, 0.2), form = ~ latitude + longitude, nugget = TRUE), method = M)",
       "yield ~ variety", "CorRatio(coords=(latitude, longitude), nugget=True)"),
  list("Wheat2_gls_exp_manhattan", "Wheat2",
       "gls(yield ~ variety, data = D, correlation = corExp(28, form = ~ latitude + longitude, metric = \"manhattan\"), method = M)",
       "yield ~ variety", "CorExp(coords=(latitude, longitude), metric='manhattan')"),
  list("fieldplots_exp_nugget", "fieldplots",
       "lme(yield ~ z + treatment, random = ~ 1 | site, data = D, correlation = corExp(c(3, 0.2), form = ~ x + y | site, nugget = TRUE), method = M)",
       "yield ~ z + treatment + (1 | site)", "CorExp(coords=(x, y), group=site, nugget=True)"),
  list("fieldplots_gaus_nugget", "fieldplots",
       "lme(yield ~ z + treatment, random = ~ 1 | site, data = D, correlation = corGaus(c(3, 0.2), form = ~ x + y | site, nugget = TRUE), method = M)",
       "yield ~ z + treatment + (1 | site)", "CorGaus(coords=(x, y), group=site, nugget=True)"),
  list("fieldplots_spher", "fieldplots",
       "lme(yield ~ z + treatment, random = ~ 1 | site, data = D, correlation = corSpher(8, form = ~ x + y | site), method = M)",
       "yield ~ z + treatment + (1 | site)", "CorSpher(coords=(x, y), group=site)"),
  list("fieldplots_ratio_nugget", "fieldplots",
       "lme(yield ~ z + treatment, random = ~ 1 | site, data = D, correlation = corRatio(c(2, 0.2), form = ~ x + y | site, nugget = TRUE), method = M)",
       "yield ~ z + treatment + (1 | site)", "CorRatio(coords=(x, y), group=site, nugget=True)"),
  # (corLin is a correlation in one dimension only: in fieldplots' two, nlme stops at a
  # local maximum of a likelihood with kinks; sleepstudy's Days is one-dimensional)
  list("sleepstudy_lin_nugget", "sleepstudy",
       "lme(Reaction ~ Days, random = ~ 1 | Subject, data = D, correlation = corLin(c(5, 0.2), form = ~ Days | Subject, nugget = TRUE), method = M)",
       "Reaction ~ Days + (1 | Subject)", "CorLin(coords=Days, group=Subject, nugget=True)"),
  list("Orthodont_gls_exp_nugget", "Orthodont",
       "gls(distance ~ age + Sex, data = D, correlation = corExp(form = ~ age | Subject, nugget = TRUE), method = M)",
       "distance ~ age + Sex", "CorExp(coords=age, group=Subject, nugget=True)"),
  list("Orthodont_gls_lin_nugget", "Orthodont",
       "gls(distance ~ age + Sex, data = D, correlation = corLin(form = ~ age | Subject, nugget = TRUE), method = M)",
       "distance ~ age + Sex", "CorLin(coords=age, group=Subject, nugget=True)"),
  # --- variance functions ----------------------------------------------------------
  list("fieldplots_gls_constpower_area", "fieldplots",
       "gls(biomass ~ z, data = D, weights = varConstPower(form = ~ area), method = M)",
       "biomass ~ z", "VarConstPower(covariate=area)"),
  list("fieldplots_constpower_area", "fieldplots",
       "lme(biomass ~ z, random = ~ 1 | site, data = D, weights = varConstPower(form = ~ area), method = M)",
       "biomass ~ z + (1 | site)", "VarConstPower(covariate=area)"),
  # (varConstPower from nlme's default start on most bundled real datasets, Orthodont,
  # cake, radon, Wheat2, stops on a flat ridge: const stays at its start or goes to 0;
  # the simulated fieldplots biomass is heteroscedastic enough to identify both
  # parameters. On sleepstudy both are identified, nlme's approximate covariance of
  # (const, power) positive definite, against Days, started off the ridge (nlme's
  # default start, const = 1, power = 0, stops there or fails). Against the fitted values
  # (nlme: const = 0.28, power = 1.73) the likelihood keeps rising along const -> Inf)
  list("sleepstudy_gls_constpower_days", "sleepstudy",
       "gls(Reaction ~ Days, data = D, weights = varConstPower(const = 50, power = 1, form = ~ Days), method = M)",
       "Reaction ~ Days", "VarConstPower(covariate=Days)"),
  list("sleepstudy_constpower_days", "sleepstudy",
       "lme(Reaction ~ Days, random = ~ 1 | Subject, data = D, weights = varConstPower(const = 50, power = 1, form = ~ Days), method = M)",
       "Reaction ~ Days + (1 | Subject)", "VarConstPower(covariate=Days)"),
  list("Orthodont_gls_fixed_age", "Orthodont",
       "gls(distance ~ age + Sex, data = D, weights = varFixed(~ age), method = M)",
       "distance ~ age + Sex", "VarFixed(covariate=age)"),
  list("cake_fixed_temp", "cake",
       "lme(angle ~ recipe + temp, random = ~ 1 | rr, data = D, weights = varFixed(~ temp), method = M)",
       "angle ~ recipe + temp + (1 | recipe:replicate)", "VarFixed(covariate=temp)"),
  list("Orthodont_gls_comb", "Orthodont",
       "gls(distance ~ age + Sex, data = D, weights = varComb(varIdent(form = ~ 1 | Sex), varPower(form = ~ age)), method = M)",
       "distance ~ age + Sex", "VarComb(VarIdent(by=Sex), VarPower(covariate=age))"),
  list("cake_comb", "cake",
       "lme(angle ~ recipe + temp, random = ~ 1 | rr, data = D, weights = varComb(varIdent(form = ~ 1 | recipe), varExp(form = ~ temp)), method = M)",
       "angle ~ recipe + temp + (1 | recipe:replicate)", "VarComb(VarIdent(by=recipe), VarExp(covariate=temp))"),
  list("Orthodont_comb_fixed", "Orthodont",
       "lme(distance ~ age + Sex, random = ~ 1 | Subject, data = D, weights = varComb(varFixed(~ age), varIdent(form = ~ 1 | Sex)), method = M)",
       "distance ~ age + Sex + (1 | Subject)", "VarComb(VarFixed(covariate=age), VarIdent(by=Sex))"),
  # --- lme4: prior weights, ordered factors ----------------------------------------
  list("Orthodont_weights", "Orthodont",
       "lmer(distance ~ age + Sex + (1 | Subject), data = D, weights = age, REML = M == \"REML\")",
       "distance ~ age + Sex + (1 | Subject)", "", "age"),
  list("cake_weights", "cake",
       "lmer(angle ~ recipe + temp + (1 | recipe:replicate), data = D, weights = temp, REML = M == \"REML\")",
       "angle ~ recipe + temp + (1 | recipe:replicate)", "", "temp"),
  list("Orthodont_lm_weights", "Orthodont",
       "lm(distance ~ age + Sex, data = D, weights = age)",
       "distance ~ age + Sex", "", "age"),
  list("cake_ordered", "cake",
       "lmer(angle ~ recipe * temperature + (1 | recipe:replicate), data = D, REML = M == \"REML\")",
       "angle ~ recipe * temperature + (1 | recipe:replicate)", "", "")
)

struct_params <- function(fit) {
  out <- list()
  ms <- fit$modelStruct
  if (!is.null(ms$corStruct)) {
    cs <- ms$corStruct
    p <- coef(cs, unconstrained = FALSE)
    if (inherits(cs, "corSymm")) {  # unnamed: the upper triangle, row by row
      d <- round((1 + sqrt(1 + 8 * length(p))) / 2)
      idx <- which(upper.tri(diag(d)), arr.ind = TRUE)
      idx <- idx[order(idx[, 1], idx[, 2]), , drop = FALSE]
      names(p) <- sprintf("cor(%d,%d)", idx[, 1], idx[, 2])
    }
    out$correlation <- list(class = class(cs)[1], formula = deparse(formula(cs)),
                            parameters = as.list(p))
    for (a in c("p", "q", "metric", "nugget")) {
      if (!is.null(attr(cs, a))) out$correlation[[a]] <- attr(cs, a)
    }
  }
  if (!is.null(ms$varStruct)) {
    vs <- ms$varStruct
    p <- as.list(coef(vs, unconstrained = FALSE, allCoef = TRUE))
    out$variance <- list(class = class(vs)[1], formula = deparse(formula(vs)), parameters = p)
    if (inherits(vs, "varComb")) {
      out$variance$parts <- lapply(vs, function(v) list(class = class(v)[1],
                                                       formula = deparse(formula(v))))
    }
  }
  out
}

lme4_part <- function(fit) {
  vc <- as.data.frame(VarCorr(fit))
  re <- lapply(names(getME(fit, "flist")), function(g) {
    v <- VarCorr(fit)[[g]]
    sds <- attr(v, "stddev"); cr <- attr(v, "correlation")
    list(group = g, terms = I(names(sds)), sd = as.list(sds),
         corr = unname(lapply(seq_len(nrow(cr)), function(i) I(unname(cr[i, ])))))
  })
  r <- ranef(fit, condVar = TRUE)
  rf <- list()
  for (g in names(r)) {
    pv <- attr(r[[g]], "postVar")
    rf[[g]] <- c(list(levels = rownames(r[[g]])),
                 setNames(lapply(seq_along(r[[g]]), function(k)
                   list(mode = r[[g]][[k]], cond_sd = sqrt(pv[k, k, ]))), names(r[[g]])))
  }
  list(re = re, ranef = rf, singular = isSingular(fit))
}

one_fit <- function(case, method) {
  D <- load_data(case[[2]]); M <- method
  call_text <- case[[3]]
  fit <- eval(parse(text = call_text))
  times <- sapply(1:3, function(i) system.time(eval(parse(text = call_text)))[["elapsed"]])
  kind <- if (inherits(fit, "lme")) "lme" else if (inherits(fit, "gls")) "gls" else
    if (inherits(fit, "merMod")) "lmer" else "lm"
  note <- NULL; ranef_out <- NULL; re <- list(); singular <- FALSE; tol <- NULL
  inference <- NULL
  if (kind %in% c("lme", "gls")) {
    fe <- if (kind == "lme") fixef(fit) else coef(fit)
    tt <- summary(fit)$tTable
    se <- setNames(tt[, "Std.Error"], rownames(tt))
    sigma <- fit$sigma; ll <- logLik(fit)
    if (kind == "lme") {
      # the innermost grouping level's random effects (one level of random effects here)
      psi <- as.matrix(getVarCov(fit))
      sds <- sqrt(diag(psi)); cr <- cov2cor(psi)
      grp <- names(fit$groups)[1]
      if (grp == "rr") grp <- "recipe:replicate"
      re <- list(list(group = grp, terms = I(colnames(psi)), sd = as.list(setNames(sds, colnames(psi))),
                      corr = unname(lapply(seq_len(nrow(cr)), function(i) I(unname(cr[i, ]))))))
      r <- ranef(fit)
      ranef_out <- list()
      ranef_out[[grp]] <- c(list(levels = rownames(r)),
                            setNames(lapply(colnames(r), function(t) list(mode = r[[t]])), colnames(r)))
    }
    engine <- paste0("nlme::", kind, " ", packageVersion("nlme"))
    aic <- AIC(fit); bic <- BIC(fit)
  } else if (kind == "lmer") {
    fe <- fixef(fit); se <- sqrt(diag(as.matrix(vcov(fit))))
    sigma <- sigma(fit); ll <- logLik(fit)
    part <- lme4_part(fit); re <- part$re; ranef_out <- part$ranef; singular <- part$singular
    engine <- paste0("lme4::lmer ", packageVersion("lme4"))
    # lmerTest's Satterthwaite (and, REML without weights, Kenward-Roger: pbkrtest
    # builds V without the prior weights) df; lme4's profile intervals of the standard
    # deviations (its fixed-effect profiles are not monotonic with weights)
    lt <- lmerTest::as_lmerModLmerTest(fit)
    inference <- list(satterthwaite_df = as.list(summary(lt)$coefficients[, "df"]))
    if (M == "REML" && is.null(weights(fit, type = "prior")) ||
        M == "REML" && all(weights(fit) == 1)) inference$kenward_roger_df <-
      as.list(summary(lt, ddf = "Kenward-Roger")$coefficients[, "df"])
    ci <- suppressWarnings(confint(fit, parm = "theta_", method = "profile", oldNames = FALSE))
    inference$profile_ci <- lapply(split(ci, seq_len(nrow(ci))), unname)
    names(inference$profile_ci) <- rownames(ci)
    aic <- AIC(fit); bic <- BIC(fit)
  } else {
    # lm: REML is lm's own fit (sigma^2 = RSS_w / (n - p)); ML has sigma^2 = RSS_w / n,
    # and its standard errors scale by sqrt((n - p) / n) (bayeslmm's ML convention, lme4's)
    n <- nobs(fit); p <- length(coef(fit))
    reml <- M == "REML"
    fe <- coef(fit); s <- summary(fit)
    scale <- if (reml) 1 else sqrt((n - p) / n)
    se <- s$coefficients[, "Std. Error"] * scale
    sigma <- s$sigma * scale; ll <- logLik(fit, REML = reml)
    engine <- paste0("stats::lm ", R.version$major, ".", R.version$minor)
    aic <- -2 * as.numeric(ll) + 2 * attr(ll, "df")
    bic <- -2 * as.numeric(ll) + attr(ll, "df") * log(n)
    note <- paste("lm with prior weights; ML: logLik(fit), sigma = sqrt(RSS_w / n),",
                  "std errors x sqrt((n - p) / n); REML: logLik(fit, REML = TRUE), lm's sigma and std errors")
  }
  r_call <- sub("data = D", paste0("data = ", case[[2]]), call_text)
  r_call <- sub("method = M", paste0("method = \"", method, "\""), r_call)
  r_call <- sub("REML = M == \"REML\"", paste0("REML = ", method == "REML"), r_call)
  if (kind == "lm") r_call <- paste0(r_call, if (method == "REML") "  # logLik(fit, REML = TRUE)" else "")
  if (length(case) >= 7) tol <- case[[7]]
  list(case = paste0(case[[1]], "_", tolower(method)), dataset = case[[2]],
       formula = case[[4]], bayeslmm_residual = if (nzchar(case[[5]])) case[[5]] else NULL,
       weights = if (length(case) >= 6 && nzchar(case[[6]])) case[[6]] else NULL,
       method = method, engine = engine, r_call = r_call,
       fixed_effects = list(names = names(fe), estimate = as.list(fe), std_error = as.list(se)),
       random_effects = re, ranef = ranef_out, nobs = nobs(fit), residual_sd = sigma,
       residual_structure_parameters = if (kind %in% c("lme", "gls")) struct_params(fit) else NULL,
       logLik = as.numeric(ll), df = attr(ll, "df"), AIC = aic, BIC = bic,
       singular = singular, note = note, tolerance = tol, inference = inference,
       timing = list(repeats = 3, elapsed_s = times, median_elapsed_s = median(times)),
       versions = list(R = R.version.string, nlme = as.character(packageVersion("nlme")),
                       lme4 = as.character(packageVersion("lme4"))))
}

dir.create(out_dir, showWarnings = FALSE, recursive = TRUE)
only <- if (length(args) > 2) args[3:length(args)] else NULL
for (case in cases) for (method in c("ML", "REML")) {
  if (!is.null(only) && !(case[[1]] %in% only)) next
  res <- tryCatch(one_fit(case, method), error = function(e) {
    message(case[[1]], " ", method, ": ", conditionMessage(e)); NULL })
  if (is.null(res)) next
  writeLines(toJSON(res, auto_unbox = TRUE, digits = NA, pretty = TRUE, null = "null"),
             file.path(out_dir, paste0(res$case, ".json")))
  message("wrote ", res$case, ".json  logLik ", format(res$logLik, digits = 10),
          "  ", paste(names(unlist(res$residual_structure_parameters)), collapse = " "))
}
