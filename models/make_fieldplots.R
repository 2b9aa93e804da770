# Simulates bayeslmm/datasets/fieldplots.csv: plots with 2-D coordinates within sites,
# a random site intercept and exponentially correlated residuals within sites (nugget):
# `yield`; and a second, heteroscedastic response `biomass` (residual sd
# 0.3 (2 + area^1.2), independent). The spatial and varConstPower reference fits with
# random effects (models/make_nlme_more.R) use it.
#
# Usage: Rscript models/make_fieldplots.R OUT_CSV
args <- commandArgs(trailingOnly = TRUE)
set.seed(18)
G <- 40
sizes <- sample(6:10, G, replace = TRUE)
n <- sum(sizes)
site <- rep(sprintf("S%02d", seq_len(G)), sizes)
x <- round(runif(n, 0, 10), 2)
y <- round(runif(n, 0, 10), 2)
z <- round(rnorm(n), 3)
treatment <- sample(c("control", "treated"), n, replace = TRUE)
b <- rnorm(G, 0, 2)
eps <- numeric(n)
for (g in unique(site)) {
  i <- which(site == g)
  d <- as.matrix(dist(cbind(x[i], y[i])))
  C <- 0.8 * exp(-d / 4) + 0.2 * diag(length(i))
  eps[i] <- 1.5 * drop(t(chol(C)) %*% rnorm(length(i)))
}
k <- match(site, unique(site))
yield <- round(10 + 1.5 * z - 1 * (treatment == "treated") + b[k] + eps, 3)
area <- round(runif(n, 1, 20), 2)
b2 <- rnorm(G, 0, 1)
biomass <- round(5 + 0.8 * z + b2[k] + 0.3 * (2 + area^1.2) * rnorm(n), 3)
write.csv(data.frame(site, x, y, z, treatment, yield, area, biomass), args[1], row.names = FALSE)
