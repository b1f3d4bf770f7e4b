# Statistical tests of a quantbench study, called from Python through rpy2 (src/quantbench/rbridge.py), which
# gives R the run table's declared columns and sources tables.R first (read_run_table; the metrics tested below).
# Input: the run table and per-item table written by `aggregate`. Output: one tidy CSV, one row per test.
#
# Columns of the output (empty where a column does not apply to a test):
#   family          the set of tests one Holm correction runs over: "<test>|<metric>" (all models and groups),
#                   and for Dunn's post-hoc tests "<test>|<metric>|<model>|<group>" (the pairs after one
#                   Kruskal-Wallis test)
#   test            shapiro_wilk | kruskal_wallis | dunn | cliffs_delta | mcnemar_exact | spearman | kendall
#   metric          the run-table column tested; "correct" is per-item correctness; "x~y" for correlations
#   model, group    the model; the group is a task name (evaluate runs), "bs<N>" (benchmark batch size) or
#                   "variants" (Kendall: the model's variants ranked by the two measures in `metric`)
#   method, versus  the method tested and what it is compared with: the baseline, another method, or
#                   "all" (omnibus test across methods); Shapiro-Wilk tests one method's sample (versus empty)
#   statistic, statistic_name   the test statistic: W (Shapiro-Wilk), H (Kruskal-Wallis chi-squared),
#                   z (Dunn: positive when `method`'s ranks are higher than `versus`', the sign of Cliff's delta;
#                   rstatix reports the opposite sign), S (Spearman), T or z (Kendall); McNemar's is given by its
#                   discordant counts
#   direction       what a positive statistic or effect means, on the rows where the sign matters
#   p_value, p_holm p-value, and Holm-adjusted within `family`
#   effect, effect_name, effect_ci_low, effect_ci_high   effect size with its 95% confidence interval:
#                   Cliff's delta (method vs versus), accuracy difference (McNemar), Spearman's rho, Kendall's tau
#   n               observations in the test (items for McNemar, variants for Spearman and Kendall)
#   n_baseline_only, n_method_only   McNemar's discordant pairs: items only the baseline got right (b),
#                   items only the method got right (c); p_value = binom.test(b, b + c, 0.5)$p.value
#   n_unverified    McNemar: pairs whose content could not be checked to be the same item (no doc_hash on
#                   one side; items are paired by doc_id, and two runs that scored other items are refused)

suppressPackageStartupMessages(library(effectsize))  # must be attached before cliffs_delta (0.8.3)

COLUMNS <- c("family", "test", "metric", "model", "group", "method", "versus", "statistic", "statistic_name",
             "direction", "p_value", "p_holm", "effect", "effect_name", "effect_ci_low", "effect_ci_high", "n",
             "n_baseline_only", "n_method_only", "n_unverified")
METHOD_LARGER <- "positive: method's values larger than versus'"

# What each test does, in words for the report (rbridge.test_descriptions reads them).
TEST_DESCRIPTIONS <- c(
  mcnemar_exact = paste(
    "Exact McNemar test of per-item correctness, each method against the baseline on the same items;",
    "n_baseline_only (b) and n_method_only (c) are the discordant items, p = binom.test(b, b + c). Items are",
    "paired by id and content: two runs that scored other items, or whose data changed between the evaluations,",
    "are refused; n_unverified counts pairs whose content had no hash to check."),
  kruskal_wallis = "Kruskal-Wallis test across methods, over repetitions, per model and batch size or task.",
  dunn = paste(
    "Dunn's pairwise post-hoc tests after each Kruskal-Wallis test (three or more methods); Holm within the",
    "pairs of one omnibus test. z > 0: the method's values rank higher than versus' (the sign of Cliff's delta)."),
  cliffs_delta = paste(
    "Cliff's delta of each method against the baseline over repetitions (positive: the method's values are",
    "larger), with its 95% confidence interval."),
  shapiro_wilk = paste(
    "Shapiro-Wilk normality test of each method's repetitions (n >= 3, not constant): why the tests above are",
    "rank-based."),
  spearman = paste(
    "Spearman's rank correlation between a task's evaluation energy and its quality across the methods of one",
    "model."),
  kendall = paste(
    "Agreement of the quality measures: Kendall's tau between the rankings of one model's variants by two",
    "measures (token perplexity, KLD, each task's headline value; each oriented so higher is better), with its",
    "95 % interval (Fisher's z, variance 0.437 / (n - 4)). A low or negative tau: the measures disagree on",
    "which variants are better, so one of them alone would mislead.")
)

# One output row; columns a test does not fill stay NA.
test_row <- function(...) {
  row <- as.list(setNames(rep(NA, length(COLUMNS)), COLUMNS))
  values <- list(...)
  row[names(values)] <- values
  as.data.frame(row, stringsAsFactors = FALSE)
}

is_constant <- function(x) length(unique(x)) < 2

# Shapiro-Wilk on each method's sample: where n >= 3 and the values are not all equal.
shapiro_rows <- function(values, metric, model, group) {
  rows <- list()
  for (m in names(values)) {
    x <- values[[m]]
    if (length(x) < 3 || length(x) > 5000 || is_constant(x)) next
    sw <- shapiro.test(x)
    rows[[length(rows) + 1]] <- test_row(
      test = "shapiro_wilk", metric = metric, model = model, group = group, method = m,
      statistic = unname(sw$statistic), statistic_name = "W", p_value = sw$p.value, n = length(x))
  }
  rows
}

# Kruskal-Wallis across methods, then Dunn's pairwise tests (three or more methods).
rank_rows <- function(values, metric, model, group) {
  long <- data.frame(value = unlist(values, use.names = FALSE),
                     method = rep(names(values), lengths(values)), stringsAsFactors = FALSE)
  if (length(values) < 2 || any(lengths(values) < 2) || is_constant(long$value)) return(list())
  kw <- kruskal.test(value ~ factor(method), data = long)
  rows <- list(test_row(
    test = "kruskal_wallis", metric = metric, model = model, group = group, method = "all", versus = "all",
    statistic = unname(kw$statistic), statistic_name = "H", p_value = kw$p.value, n = nrow(long)))
  if (length(values) < 3) return(rows)
  dunn <- as.data.frame(rstatix::dunn_test(long, value ~ method, p.adjust.method = "none"))
  for (i in seq_len(nrow(dunn))) {
    # rstatix's z is positive when group2 ranks higher; negated, it reads like Cliff's delta of method vs versus
    rows[[length(rows) + 1]] <- test_row(
      test = "dunn", metric = metric, model = model, group = group, method = dunn$group1[i],
      versus = dunn$group2[i], statistic = -dunn$statistic[i], statistic_name = "z", direction = METHOD_LARGER,
      p_value = dunn$p[i], n = dunn$n1[i] + dunn$n2[i])
  }
  rows
}

# Cliff's delta of each method against the baseline (positive: the method's values are larger).
cliff_rows <- function(values, metric, model, group, baseline) {
  base <- values[[baseline]]
  if (is.null(base) || length(base) < 2) return(list())
  rows <- list()
  for (m in setdiff(names(values), baseline)) {
    x <- values[[m]]
    if (length(x) < 2) next
    d <- effectsize::cliffs_delta(x, base)
    rows[[length(rows) + 1]] <- test_row(
      test = "cliffs_delta", metric = metric, model = model, group = group, method = m, versus = baseline,
      direction = METHOD_LARGER, effect = d$r_rank_biserial, effect_name = "cliffs_delta", effect_ci_low = d$CI_low,
      effect_ci_high = d$CI_high, n = length(x) + length(base))
  }
  rows
}

# All per-run tests of one metric, per (model, group), over the repetitions of each method.
metric_tests <- function(runs, metric, group_of, baseline) {
  runs <- runs[!is.na(runs[[metric]]), ]
  if (nrow(runs) == 0) return(list())
  runs$group <- group_of(runs)
  rows <- list()
  for (key in unique(paste(runs$model, runs$group, sep = "\r"))) {
    parts <- strsplit(key, "\r")[[1]]
    sub <- runs[runs$model == parts[1] & runs$group == parts[2], ]
    values <- split(sub[[metric]], sub$method)
    rows <- c(rows, shapiro_rows(values, metric, parts[1], parts[2]),
              rank_rows(values, metric, parts[1], parts[2]),
              cliff_rows(values, metric, parts[1], parts[2], baseline))
  }
  rows
}

repetition_tests <- function(runs, baseline) {
  ok <- runs[runs$status == "ok", ]
  bench <- ok[ok$kind == "benchmark", ]
  evals <- ok[ok$kind == "evaluate", ]
  rows <- list()
  # benchmark rows grouped by batch size, evaluate rows by task
  for (metric in TESTED_BENCHMARK_METRICS)
    rows <- c(rows, metric_tests(bench, metric, function(d) paste0("bs", d$batch_size), baseline))
  for (metric in TESTED_EVALUATE_METRICS)
    rows <- c(rows, metric_tests(evals, metric, function(d) d$task, baseline))
  rows
}

# Paired exact McNemar test per (model, task, method) against the baseline on the same items.
mcnemar_vs_baseline <- function(items, baseline) {
  rows <- list()
  for (key in unique(paste(items$model, items$task, sep = "\r"))) {
    parts <- strsplit(key, "\r")[[1]]
    sub <- items[items$model == parts[1] & items$task == parts[2], ]
    # repetitions of a deterministic evaluation are identical: use the first one
    sub <- sub[sub$rep == min(sub$rep), ]
    base <- sub[sub$method == baseline, c("doc_id", "doc_hash", "correct")]
    if (nrow(base) == 0) next
    for (m in setdiff(unique(sub$method), baseline)) {
      scored <- sub[sub$method == m, c("doc_id", "doc_hash", "correct")]
      only_method <- setdiff(scored$doc_id, base$doc_id)
      only_base <- setdiff(base$doc_id, scored$doc_id)
      if (length(only_method) + length(only_base) > 0)
        stop("task ", parts[2], " of model ", parts[1], ": McNemar pairs the same items, but ", length(only_method),
             " items of the ", m, " run are not in the ", baseline, " run and ", length(only_base), " of the ",
             baseline, " run's are not in the ", m, " run (doc_id ", paste(head(c(only_method, only_base), 5),
             collapse = ", "), "): evaluate both on the same items (the task's limit and seed), then rerun",
             call. = FALSE)
      pairs <- merge(base, scored, by = "doc_id", suffixes = c(".base", ".method"))
      changed <- which(!is.na(pairs$doc_hash.base) & !is.na(pairs$doc_hash.method) &
                         pairs$doc_hash.base != pairs$doc_hash.method)
      if (length(changed) > 0)
        stop("task ", parts[2], " of model ", parts[1], ": items ", paste(head(pairs$doc_id[changed], 5), collapse = ", "),
             " have other content in the ", m, " run than in the ", baseline, " run (doc_hash differs): the data ",
             "changed between the two evaluations, so they cannot be paired; rerun both", call. = FALSE)
      b <- sum(pairs$correct.base == 1 & pairs$correct.method == 0)
      c <- sum(pairs$correct.base == 0 & pairs$correct.method == 1)
      rows[[length(rows) + 1]] <- test_row(
        test = "mcnemar_exact", metric = "correct", model = parts[1], group = parts[2], method = m,
        versus = baseline, direction = "positive: method more accurate than versus",
        p_value = if (b + c == 0) 1 else binom.test(b, b + c, 0.5)$p.value,
        effect = mean(pairs$correct.method) - mean(pairs$correct.base), effect_name = "accuracy_difference",
        n = nrow(pairs), n_baseline_only = b, n_method_only = c,
        n_unverified = sum(is.na(pairs$doc_hash.base) | is.na(pairs$doc_hash.method)))
    }
  }
  rows
}

# Spearman's rho between a task's evaluation energy and its quality, across the methods of one model
# (means over repetitions; accuracy, or token perplexity for text tasks).
spearman_energy_quality <- function(runs) {
  ev <- runs[runs$kind == "evaluate" & runs$status == "ok" & !is.na(runs$energy_j), ]
  rows <- list()
  for (quality in c("accuracy", "perplexity_token")) {
    sub <- ev[!is.na(ev[[quality]]), ]
    if (nrow(sub) == 0) next
    means <- aggregate(cbind(energy = sub$energy_j, quality = sub[[quality]]),
                       by = list(model = sub$model, task = sub$task, method = sub$method), FUN = mean)
    for (key in unique(paste(means$model, means$task, sep = "\r"))) {
      parts <- strsplit(key, "\r")[[1]]
      d <- means[means$model == parts[1] & means$task == parts[2], ]
      if (nrow(d) < 3 || is_constant(d$energy) || is_constant(d$quality)) next
      exact <- !anyDuplicated(d$energy) && !anyDuplicated(d$quality)  # exact p only without ties
      ct <- cor.test(d$energy, d$quality, method = "spearman", exact = exact)
      rows[[length(rows) + 1]] <- test_row(
        test = "spearman", metric = paste0("energy_j~", quality), model = parts[1], group = parts[2],
        method = "all", versus = "all", statistic = unname(ct$statistic), statistic_name = "S",
        direction = "positive rho: more energy goes with higher values of the quality measure",
        p_value = ct$p.value, effect = unname(ct$estimate), effect_name = "spearman_rho", n = nrow(d))
    }
  }
  rows
}

# Kendall's tau between the rankings of one model's variants by two quality measures: token perplexity, KLD
# and each task's headline value (means over repetitions), each oriented so that higher is better (perplexity and
# KLD negated), so a positive tau says the two measures agree on which variants are better. Its 95 % interval:
# Fisher's z of tau with Fieller, Hartley and Pearson's (1957) variance 0.437 / (n - 4) (n >= 5 variants).
QUALITY_MEASURES <- c("perplexity_token", "kld_mean")
LOWER_IS_BETTER <- "^(perplexity|kld|bits_per_byte)"  # perplexities (answers' under the baseline too), divergences

kendall_agreement <- function(runs) {
  ev <- runs[runs$kind == "evaluate" & runs$status == "ok", ]
  rows <- list()
  for (model in unique(ev$model)) {
    of_model <- ev[ev$model == model, ]
    measures <- list()
    for (task in unique(of_model$task)) {
      of_task <- of_model[of_model$task == task, ]
      primary <- of_task$primary[!is.na(of_task$primary)][1]
      names <- unique(c(if (!is.na(primary)) primary, QUALITY_MEASURES))
      for (name in names) {
        values <- of_task[[name]]
        if (all(is.na(values))) next
        sign <- if (grepl(LOWER_IS_BETTER, name)) -1 else 1
        means <- tapply(values, of_task$method, mean, na.rm = TRUE)
        measures[[paste0(task, ":", name)]] <- sign * means[!is.na(means)]
      }
    }
    labels <- names(measures)
    for (i in seq_along(labels)) for (j in seq_along(labels)) {
      if (j <= i) next
      methods <- intersect(names(measures[[i]]), names(measures[[j]]))
      x <- measures[[i]][methods]; y <- measures[[j]][methods]
      n <- length(methods)
      if (n < 5 || is_constant(x) || is_constant(y)) next
      ct <- suppressWarnings(cor.test(x, y, method = "kendall", exact = !anyDuplicated(x) && !anyDuplicated(y)))
      tau <- unname(ct$estimate)
      half <- qnorm(0.975) * sqrt(0.437 / (n - 4))
      z <- atanh(max(min(tau, 0.999999), -0.999999))
      rows[[length(rows) + 1]] <- test_row(
        test = "kendall", metric = paste0(labels[i], "~", labels[j]), model = model, group = "variants",
        method = "all", versus = "all", statistic = unname(ct$statistic),
        statistic_name = names(ct$statistic), direction = "positive tau: the two measures rank the variants alike",
        p_value = ct$p.value, effect = tau, effect_name = "kendall_tau", effect_ci_low = tanh(z - half),
        effect_ci_high = tanh(z + half), n = n)
    }
  }
  rows
}

# The family a test belongs to for Holm's correction (see the header).
family_of <- function(result) {
  family <- paste(result$test, result$metric, sep = "|")
  posthoc <- result$test == "dunn"
  family[posthoc] <- paste(family[posthoc], result$model[posthoc], result$group[posthoc], sep = "|")
  family
}

qb_stats <- function(runs_csv, items_csv, baseline, out_csv) {
  runs <- read_run_table(runs_csv)
  items <- read_item_table(items_csv)
  rows <- c(if (nrow(items) > 0) mcnemar_vs_baseline(items, baseline), repetition_tests(runs, baseline),
            spearman_energy_quality(runs), kendall_agreement(runs))
  if (length(rows) == 0) {
    result <- as.data.frame(setNames(replicate(length(COLUMNS), logical(0), simplify = FALSE), COLUMNS))
  } else {
    result <- do.call(rbind, rows)
    result$family <- family_of(result)
    result$p_holm <- ave(result$p_value, result$family, FUN = function(p) p.adjust(p, "holm"))
  }
  write.csv(result[, COLUMNS], out_csv, row.names = FALSE, na = "")
  invisible(nrow(result))
}
