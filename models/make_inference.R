# Reference values for what lme4 users do after an ML/REML fit (issue 19):
#   - profile and Wald intervals, lme4's confint(fit) (the profile itself too);
#   - Satterthwaite denominator df, t and p (lmerTest) for every lmer reference fit
#     of models/, a 1-row contrast (contest1D) and a joint F test (contestMD);
#   - Kenward-Roger df, adjusted standard errors and F tests (pbkrtest) for the REML fits;
#   - likelihood-ratio tables of nested pairs, lme4's anova();
#   - lme4's bootstrap intervals on sleepstudy (nsim = 1000), and R's times for
#     confint(fit) (profile) and for the bootstrap.
#
# Usage (from the repository root): Rscript models/make_inference.R
# Reads bayeslmm/datasets/<name>.csv(.gz) with factors.json (the level order of each
# factor: the data bayeslmm itself loads) and writes models/inference/<case>.json.
# Versions used: R 4.2, lme4 1.1.31, lmerTest 3.1.3, pbkrtest 0.5.2.
suppressPackageStartupMessages({
  library(lme4); library(lmerTest); library(pbkrtest); library(jsonlite)
})
data_dir <- "bayeslmm/datasets"
out_dir <- "models/inference"
dir.create(out_dir, showWarnings = FALSE, recursive = TRUE)
factors <- fromJSON(file.path(data_dir, "factors.json"), simplifyVector = FALSE)

load_data <- function(name) {
  path <- file.path(data_dir, paste0(name, ".csv"))
  if (!file.exists(path)) path <- paste0(path, ".gz")
  df <- read.csv(path, stringsAsFactors = FALSE)
  for (col in names(factors[[name]])) {
    df[[col]] <- factor(as.character(df[[col]]), levels = unlist(factors[[name]][[col]]$levels))
  }
  df
}

versions <- list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                 lmerTest = as.character(packageVersion("lmerTest")),
                 pbkrtest = as.character(packageVersion("pbkrtest")))
write_case <- function(name, x) {
  write_json(c(list(case = name, script = "models/make_inference.R", versions = versions), x),
             file.path(out_dir, paste0(name, ".json")), digits = NA, auto_unbox = TRUE,
             pretty = TRUE, na = "null")
}
table_of <- function(m) {  # a coefficient table as {column: {row: value}}
  m <- as.data.frame(m, check.names = FALSE)
  lapply(setNames(names(m), names(m)), function(col) as.list(setNames(m[[col]], rownames(m))))
}
ci_of <- function(ci) list(names = rownames(ci), lower = unname(ci[, 1]), upper = unname(ci[, 2]))

# ---- the lmer reference fits of models/ (case, dataset, formula) -------------------------
lmer_cases <- list(
  c("Dyestuff2_int", "Dyestuff2", "Yield ~ 1 + (1 | Batch)"),
  c("Dyestuff_int", "Dyestuff", "Yield ~ 1 + (1 | Batch)"),
  c("Orthodont_int", "Orthodont", "distance ~ age + Sex + (1 | Subject)"),
  c("Orthodont_rslope", "Orthodont", "distance ~ age + Sex + (age | Subject)"),
  c("Ovary_int", "Ovary", "follicles ~ sin(2 * pi * Time) + cos(2 * pi * Time) + (1 | Mare)"),
  c("Pastes_nested", "Pastes", "strength ~ 1 + (1 | batch/cask)"),
  c("Penicillin_crossed", "Penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)"),
  c("radon_int", "radon", "log_radon ~ floor + (1 | county)"),
  c("sleepstudy_diag", "sleepstudy", "Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)"),
  c("sleepstudy_rslope", "sleepstudy", "Reaction ~ Days + (Days | Subject)"),
  c("InstEval_crossed", "InstEval", "y ~ service + (1 | s) + (1 | d) + (1 | dept)")
)
# profile intervals for these (REML fits: lme4 profiles the ML deviance of refitML(fit))
profile_cases <- c("Dyestuff2_int", "Dyestuff_int", "Orthodont_int", "Pastes_nested",
                   "Penicillin_crossed", "sleepstudy_diag", "sleepstudy_rslope")

for (cs in lmer_cases) {
  name <- cs[1]; D <- load_data(cs[2]); form <- as.formula(cs[3])
  for (method in c("ML", "REML")) {
    if (name == "InstEval_crossed" && method == "REML") next
    case <- paste0(name, "_", tolower(method))
    cat(case, "\n")
    fit <- lmerTest::lmer(form, data = D, REML = method == "REML")
    p <- length(fixef(fit))
    out <- list(dataset = cs[2], formula = cs[3], method = method,
                loglik = as.numeric(logLik(fit)), theta = unname(getME(fit, "theta")))
    # Satterthwaite: summary's table, a 1-row contrast (all ones) and a joint F test of
    # every coefficient but the first
    sat <- list(coefficients = table_of(summary(fit)$coefficients),
                vcov_varpar = unname(fit@vcov_varpar))
    L1 <- rep(1, p)
    sat$contrast1 <- c(list(L = L1), as.list(contest1D(fit, L1)))
    if (p >= 2) {
      L <- diag(p)[-1, , drop = FALSE]
      sat$joint <- c(list(L = L), as.list(contestMD(fit, L)))
    }
    out$satterthwaite <- sat
    if (method == "REML" && name != "InstEval_crossed") {
      kr <- list(coefficients = table_of(summary(fit, ddf = "Kenward-Roger")$coefficients),
                 vcov_adj = unname(as.matrix(vcovAdj(fit))))
      kr$contrast1 <- c(list(L = L1), as.list(contest1D(fit, L1, ddf = "Kenward-Roger")))
      krm <- KRmodcomp(fit, matrix(L1, nrow = 1))$test
      kr$contrast1$F.scaling <- krm[1, "F.scaling"]
      if (p >= 2) {
        L <- diag(p)[-1, , drop = FALSE]
        krm <- KRmodcomp(fit, L)$test
        kr$joint <- list(L = L, F = krm[1, "stat"], F_unscaled = krm[2, "stat"],
                         ndf = krm[1, "ndf"], ddf = krm[1, "ddf"],
                         F.scaling = krm[1, "F.scaling"], p = krm[1, "p.value"])
      }
      out$kenward_roger <- kr
    }
    if (name %in% profile_cases) {
      fit4 <- lme4::lmer(form, data = D, REML = method == "REML")
      pp <- profile(fit4)
      out$profile <- list(table = as.data.frame(pp), level95 = ci_of(confint(pp)),
                          level90 = ci_of(confint(pp, level = 0.9)),
                          names_long = rownames(confint(fit4, method = "Wald",
                                                        oldNames = FALSE)))
      out$wald <- ci_of(confint(fit4, method = "Wald"))
      if (name == "sleepstudy_rslope" && method == "REML") {
        times <- replicate(5, system.time(confint(fit4, quiet = TRUE))[["elapsed"]])
        out$timing <- list(what = "confint(fit) (profile), median of 5 runs",
                           median_elapsed_s = median(times), runs_s = times)
      }
    }
    write_case(case, out)
  }
}

# ---- likelihood-ratio tables: lme4's anova() -------------------------------------------
anova_of <- function(a) {
  a <- as.data.frame(a, check.names = FALSE)
  c(list(rows = rownames(a)), lapply(as.list(a), function(v) unname(v)))
}
sleep <- load_data("sleepstudy"); ortho <- load_data("Orthodont")
s0 <- lme4::lmer(Reaction ~ Days + (1 | Subject), sleep)
s1 <- lme4::lmer(Reaction ~ Days + (Days | Subject), sleep)
sd1 <- lme4::lmer(Reaction ~ Days + (1 | Subject) + (0 + Days | Subject), sleep)
o0 <- lme4::lmer(distance ~ age + (1 | Subject), ortho)
o1 <- lme4::lmer(distance ~ age + Sex + (1 | Subject), ortho)
o0ml <- update(o0, REML = FALSE); o1ml <- update(o1, REML = FALSE)
msg <- NULL
a_sleep <- withCallingHandlers(anova(s0, s1), message = function(m) {
  msg <<- conditionMessage(m); invokeRestart("muffleMessage")
})
write_case("anova", list(
  note = "rows are sorted by npar, as lme4 prints them; 'models' lists formulas in call order",
  sleepstudy = c(list(models = c("Reaction ~ Days + (1 | Subject)",
                                 "Reaction ~ Days + (Days | Subject)"),
                      method = "REML", refit = TRUE, message = trimws(msg)),
                 anova_of(a_sleep)),
  sleepstudy_norefit = c(list(models = c("Reaction ~ Days + (1 | Subject)",
                                         "Reaction ~ Days + (Days | Subject)"),
                              method = "REML", refit = FALSE),
                         anova_of(anova(s0, s1, refit = FALSE))),
  sleepstudy_three = c(list(models = c("Reaction ~ Days + (Days | Subject)",
                                       "Reaction ~ Days + (1 | Subject)",
                                       "Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)"),
                            method = "REML", refit = TRUE),
                       anova_of(suppressMessages(anova(s1, s0, sd1)))),
  orthodont_fixef = c(list(models = c("distance ~ age + (1 | Subject)",
                                      "distance ~ age + Sex + (1 | Subject)"),
                           method = "REML", refit = TRUE),
                      anova_of(suppressMessages(anova(o0, o1)))),
  orthodont_fixef_ml = c(list(models = c("distance ~ age + (1 | Subject)",
                                         "distance ~ age + Sex + (1 | Subject)"),
                              method = "ML", refit = TRUE),
                         anova_of(anova(o0ml, o1ml)))
))

# ---- lme4's parametric bootstrap intervals (sleepstudy) and its speed -------------------
fit4 <- lme4::lmer(Reaction ~ Days + (Days | Subject), sleep)
tb <- system.time(ci_boot <- suppressWarnings(
  confint(fit4, method = "boot", nsim = 1000, seed = 1, quiet = TRUE)))[["elapsed"]]
write_case("bootstrap", list(
  dataset = "sleepstudy", formula = "Reaction ~ Days + (Days | Subject)", method = "REML",
  r_call = "confint(fit, method = 'boot', nsim = 1000, seed = 1)  # boot.type = 'perc'",
  level95 = ci_of(ci_boot), elapsed_s = tb, refits_per_s = 1000 / tb))

# ---- emmeans' Satterthwaite df for nlme fits with residual structures (REML) -------------
# lmerTest and pbkrtest take no nlme fits; emmeans approximates Satterthwaite's df for
# them (mode = "satterthwaite": nlme's apVar, a numerical gradient of vcov). The R call of
# each nlme reference fit is read from its models/<case>.toml.
suppressPackageStartupMessages({library(nlme); library(emmeans)})
Orthodont <- load_data("Orthodont"); Ovary <- load_data("Ovary"); sleepstudy <- sleep
nlme_df <- list()
for (path in Sys.glob("models/*_reml.toml")) {
  lines <- readLines(path)
  call <- grep("^r_call = ", lines, value = TRUE)
  if (!length(call)) next
  call <- fromJSON(paste0("[", sub("^r_call = ", "", call), "]"))
  if (!grepl("^(lme|gls)\\(", call) || grepl("fitted|varPower\\(\\)", call)) next
  case <- sub("\\.toml$", "", basename(path))
  res <- tryCatch({
    fit <- eval(parse(text = call))
    set.seed(1)  # emmeans' gradient of vcov for lme fits is randomised (~1% noise)
    rg <- ref_grid(fit, mode = "satterthwaite")
    p <- length(coef(fit))
    df <- sapply(seq_len(p), function(j) rg@dffun(diag(p)[j, ], rg@dfargs))
    list(r_call = call, coefficients = names(coef(fit)), df = unname(df))
  }, error = function(e) {
    message(case, ": ", conditionMessage(e)); NULL
  })
  if (!is.null(res)) nlme_df[[case]] <- res
}
write_case("nlme_satterthwaite", list(
  engine = paste("emmeans", as.character(packageVersion("emmeans"))),
  note = paste("emmeans' approximate Satterthwaite df (nlme's apVar; for lme fits a",
               "randomised numerical gradient of vcov, ~1% noise), REML fits"),
  fits = nlme_df))

# ---- boot's percentile interval (boot:::norm.inter), on a fixed vector ------------------
t_fixed <- qchisq(ppoints(57), df = 3) * (1 + (1:57 %% 5) / 10)
write_case("percentile", list(
  t = t_fixed, level = c(0.95, 0.9, 0.5),
  interval = lapply(c(0.95, 0.9, 0.5), function(conf) {
    a <- (1 + c(-conf, conf)) / 2
    unname(boot:::norm.inter(t_fixed, a)[, 2])
  })))
cat("done\n")
