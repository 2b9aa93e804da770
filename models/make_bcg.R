# The BCG vaccine trials (Colditz et al. 1994) as bayeslmm/datasets/bcg.csv: the 2x2
# counts of the 13 trials typed in from the published table (Colditz GA, Brewer TF,
# Berkey CS, et al. Efficacy of BCG vaccine in the prevention of tuberculosis:
# meta-analysis of the published literature. JAMA 1994;271(9):698-702, Table 1; the
# same numbers as metafor's dat.bcg), with the log risk ratio yi and its sampling
# variance vi computed here (metafor's escalc(measure = "RR"), without metafor):
#   yi = log(tpos / (tpos + tneg)) - log(cpos / (cpos + cneg))
#   vi = 1/tpos - 1/(tpos + tneg) + 1/cpos - 1/(cpos + cneg)
# Check against the literature: the REML random-effects estimate is mu = -0.7145,
# tau^2 = 0.3132 (Viechtbauer 2010, J Stat Softw 36(3), section 3), printed below.
#
# Usage: Rscript models/make_bcg.R bayeslmm/datasets/bcg.csv
args <- commandArgs(trailingOnly = TRUE)
bcg <- data.frame(
  trial = 1:13,
  author = c("Aronson", "Ferguson & Simes", "Rosenthal et al", "Hart & Sutherland",
             "Frimodt-Moller et al", "Stein & Aronson", "Vandiviere et al", "TPT Madras",
             "Coetzee & Berjak", "Rosenthal et al", "Comstock et al", "Comstock & Webster",
             "Comstock et al"),
  year = c(1948, 1949, 1960, 1977, 1973, 1953, 1973, 1980, 1968, 1961, 1974, 1969, 1976),
  tpos = c(4, 6, 3, 62, 33, 180, 8, 505, 29, 17, 186, 5, 27),
  tneg = c(119, 300, 228, 13536, 5036, 1361, 2537, 87886, 7470, 1699, 50448, 2493, 16886),
  cpos = c(11, 29, 11, 248, 47, 372, 10, 499, 45, 65, 141, 3, 29),
  cneg = c(128, 274, 209, 12619, 5761, 1079, 619, 87892, 7232, 1600, 27197, 2338, 17825),
  ablat = c(44, 55, 42, 52, 13, 44, 19, 13, 27, 42, 18, 33, 33),
  alloc = c("random", "random", "random", "random", "alternate", "alternate", "random",
            "random", "random", "systematic", "systematic", "systematic", "systematic"))
bcg$yi <- log(bcg$tpos / (bcg$tpos + bcg$tneg)) - log(bcg$cpos / (bcg$cpos + bcg$cneg))
bcg$vi <- 1 / bcg$tpos - 1 / (bcg$tpos + bcg$tneg) + 1 / bcg$cpos - 1 / (bcg$cpos + bcg$cneg)
# the check: REML tau^2 of the random-effects model (1-D, dense)
reml <- function(t2) {
  w <- 1 / (bcg$vi + t2); mu <- sum(w * bcg$yi) / sum(w)
  -0.5 * (sum(log(bcg$vi + t2)) + log(sum(w)) + sum(w * (bcg$yi - mu)^2))
}
t2 <- optimize(reml, c(0, 5), maximum = TRUE, tol = 1e-12)$maximum
w <- 1 / (bcg$vi + t2)
message(sprintf("REML tau^2 = %.4f, mu = %.4f (Viechtbauer 2010: 0.3132, -0.7145)", t2,
                sum(w * bcg$yi) / sum(w)))
write.csv(bcg, args[1], row.names = FALSE)
