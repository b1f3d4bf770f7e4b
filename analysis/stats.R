# Statistical tests of a quantbench study, called from Python through rpy2 (src/quantbench/rbridge.py).
# Input: the run table and per-item table written by `aggregate`. Output: one tidy CSV of tests.

suppressPackageStartupMessages(library(effectsize))  # must be attached before cliffs_delta (0.8.3)

# Paired exact McNemar test per (model, task, method) against the baseline on the same items.
mcnemar_vs_baseline <- function(items, baseline) {
  out <- list()
  for (key in unique(paste(items$model, items$task, sep = "\r"))) {
    parts <- strsplit(key, "\r")[[1]]
    sub <- items[items$model == parts[1] & items$task == parts[2], ]
    # repetitions of a deterministic evaluation are identical: use the first one
    sub <- sub[sub$rep == min(sub$rep), ]
    base <- sub[sub$method == baseline, c("doc_id", "correct")]
    if (nrow(base) == 0) next
    for (m in setdiff(unique(sub$method), baseline)) {
      other <- merge(base, sub[sub$method == m, c("doc_id", "correct")], by = "doc_id",
                     suffixes = c(".base", ".method"))
      b <- sum(other$correct.base == 1 & other$correct.method == 0)  # baseline right, method wrong
      c <- sum(other$correct.base == 0 & other$correct.method == 1)
      p <- if (b + c == 0) 1 else binom.test(b, b + c, 0.5)$p.value
      out[[length(out) + 1]] <- data.frame(
        test = "mcnemar_exact", metric = "correct", model = parts[1], group = parts[2],
        method = m, baseline = baseline, statistic = b - c, p_value = p,
        effect = mean(other$correct.method) - mean(other$correct.base),
        effect_name = "accuracy_difference", n = nrow(other))
    }
  }
  do.call(rbind, out)
}

# Kruskal-Wallis across methods, and Cliff's delta of each method vs the baseline,
# on benchmark throughput per (model, batch size) over repetitions.
throughput_tests <- function(runs, baseline) {
  bench <- runs[runs$kind == "benchmark" & runs$status == "ok", ]
  out <- list()
  for (key in unique(paste(bench$model, bench$batch_size, sep = "\r"))) {
    parts <- strsplit(key, "\r")[[1]]
    sub <- bench[bench$model == parts[1] & bench$batch_size == as.numeric(parts[2]), ]
    reps <- table(sub$method)
    if (length(reps) < 2 || any(reps < 2)) next
    kw <- kruskal.test(throughput_tokens_per_s ~ factor(method), data = sub)
    out[[length(out) + 1]] <- data.frame(
      test = "kruskal_wallis", metric = "throughput_tokens_per_s", model = parts[1],
      group = paste0("bs", parts[2]), method = "all", baseline = NA, statistic = unname(kw$statistic),
      p_value = kw$p.value, effect = NA, effect_name = NA, n = nrow(sub))
    base <- sub$throughput_tokens_per_s[sub$method == baseline]
    if (length(base) == 0) next
    for (m in setdiff(unique(sub$method), baseline)) {
      x <- sub$throughput_tokens_per_s[sub$method == m]
      d <- effectsize::cliffs_delta(x, base)
      out[[length(out) + 1]] <- data.frame(
        test = "cliffs_delta", metric = "throughput_tokens_per_s", model = parts[1],
        group = paste0("bs", parts[2]), method = m, baseline = baseline, statistic = NA,
        p_value = NA, effect = d$r_rank_biserial, effect_name = "cliffs_delta", n = length(x) + length(base))
    }
  }
  do.call(rbind, out)
}

qb_stats <- function(runs_csv, items_csv, baseline, out_csv) {
  runs <- read.csv(runs_csv, stringsAsFactors = FALSE)
  items <- if (file.size(items_csv) > 1) read.csv(items_csv, stringsAsFactors = FALSE) else data.frame()
  columns <- c("test", "metric", "model", "group", "method", "baseline", "statistic",
               "p_value", "p_holm", "effect", "effect_name", "n")
  result <- rbind(if (nrow(items) > 0) mcnemar_vs_baseline(items, baseline), throughput_tests(runs, baseline))
  if (is.null(result)) {
    result <- as.data.frame(setNames(replicate(length(columns), logical(0), simplify = FALSE), columns))
  } else {
    # Holm correction within each family of tests
    result$p_holm <- ave(result$p_value, result$test, FUN = function(p) p.adjust(p, "holm"))
    result <- result[, columns]
  }
  write.csv(result, out_csv, row.names = FALSE, na = "")
  invisible(nrow(result))
}
