# Figures of a quantbench study (ggplot2), called through rpy2, which gives R the run table's declared columns
# and sources tables.R first (read_run_table). Each figure is written as PNG and PDF.
# A figure whose data the study lacks (not measured, or every run failed) is still written, as a panel
# that says so, so a study's outputs are always complete. Bars are means over repetitions, with the
# range (min-max) drawn where a point has more than one repetition.

suppressPackageStartupMessages(library(ggplot2))

save_both <- function(plot, stem, width, height) {
  width <- min(width, 18)
  ggsave(paste0(stem, ".png"), plot, width = width, height = height, dpi = 150, device = ragg::agg_png)
  ggsave(paste0(stem, ".pdf"), plot, width = width, height = height)
}

# A figure that says which data it would show and why there is none.
no_data_figure <- function(title, why, stem) {
  p <- ggplot() + annotate("text", x = 0, y = 0, label = paste("no data:", why), size = 4.5) +
    labs(title = title) + theme_void() +
    theme(panel.border = element_rect(colour = "grey60", fill = NA), plot.margin = margin(8, 8, 8, 8))
  save_both(p, stem, 6, 3)
}

ok_runs <- function(runs, kind) {
  runs[runs$kind == kind & runs$status == "ok", ]
}

# Methods from most to fewest bits, so the baseline comes first.
method_levels <- function(runs) {
  q <- ok_runs(runs, "quantize")
  unique(c(q$method[order(-q$bits, q$method)], sort(unique(runs$method))))
}

# A method as the figures name it: with its effective bits per weight where they differ from its nominal bits by
# more than a quarter bit (llama.cpp's Q4_K_M stores SmolLM2 at about 6 bits: not a "4-bit" model).
method_labels <- function(methods, runs) {
  q <- ok_runs(runs, "quantize")
  q <- q[!is.na(q$effective_bits) & abs(q$effective_bits - q$bits) > 0.25, ]
  effective <- tapply(q$effective_bits, q$method, mean)
  ifelse(methods %in% names(effective),
         paste0(methods, " (", formatC(effective[methods], format = "f", digits = 1), " bits)"), methods)
}

method_factor <- function(methods, runs) {
  levels <- method_levels(runs)
  factor(methods, levels = levels, labels = method_labels(levels, runs))
}

# Mean, min and max of `value` per combination of `by` (rows without a value are dropped).
summarise_runs <- function(d, value, by) {
  d <- d[!is.na(d[[value]]), ]
  if (nrow(d) == 0) return(NULL)
  stat <- function(fun) aggregate(d[[value]], by = d[by], FUN = fun)$x
  out <- aggregate(d[[value]], by = d[by], FUN = mean)
  names(out)[ncol(out)] <- "value"
  reps <- stat(length)
  out$low <- ifelse(reps > 1, stat(min), NA_real_)
  out$high <- ifelse(reps > 1, stat(max), NA_real_)
  out
}

# Several run-table columns in long form: one `measure` per column, named by its label.
measures <- function(d, labels, by) {
  parts <- lapply(names(labels), function(column) {
    s <- summarise_runs(d, column, by)
    if (!is.null(s)) s$measure <- labels[[column]]
    s
  })
  out <- do.call(rbind, parts)
  if (!is.null(out)) out$measure <- factor(out$measure, levels = unname(labels))
  out
}

# A legend of every method, in rows of at most five, so a study of ten methods shows them all.
method_legend <- function(methods) {
  guide_legend(nrow = ceiling(length(unique(methods)) / 5), byrow = TRUE)
}

# Grouped bars of `agg` (columns value, low, high, method, model and `x`), faceted by model
# (and by measure when there are several).
bar_figure <- function(agg, runs, x, title, y_label, stem, values = FALSE, subtitle = NULL) {
  agg$method <- method_factor(agg$method, runs)
  dodge <- position_dodge(0.9)
  p <- ggplot(agg, aes(.data[[x]], value, fill = method)) +
    geom_col(position = dodge) +
    geom_errorbar(aes(ymin = low, ymax = high), position = dodge, width = 0.3, na.rm = TRUE) +
    labs(x = NULL, y = y_label, fill = "method", title = title, subtitle = subtitle) +
    guides(fill = method_legend(agg$method)) +
    theme_bw() + theme(legend.position = "bottom", axis.text.x = element_text(angle = 30, hjust = 1),
                       plot.subtitle = element_text(size = 8))
  if (values) p <- p + geom_text(aes(label = signif(value, 3)), position = dodge, vjust = -0.3, size = 2.5)
  several <- !is.null(agg$measure) && length(unique(agg$measure)) > 1
  p <- p + if (several) {
    # each panel its own x: measures of different tasks (token and word perplexity) share no x value
    facet_wrap(vars(measure, model), ncol = length(unique(agg$model)), scales = "free",
               labeller = labeller(measure = label_wrap_gen(22)))
  } else {
    facet_wrap(~ model, scales = "free_y")
  }
  models <- length(unique(agg$model))
  bars <- nrow(unique(agg[, unique(c(x, "method"))]))  # per model: x groups times methods (once when x is method)
  save_both(p, stem, max(8, 2 + models * max(3, 0.35 * bars)), if (several) 6.5 else 4.5)
}

# Accuracy with its 95% Wilson interval (mean of the repetitions' bounds): 100 items give about +-10 points.
accuracy_figure <- function(runs, stem) {
  title <- "Accuracy per task and method"
  ev <- ok_runs(runs, "evaluate")
  agg <- summarise_runs(ev, "accuracy", c("model", "method", "task"))
  if (is.null(agg)) return(no_data_figure(title, "the study has no successful choice-task evaluations", stem))
  by <- c("model", "method", "task")
  agg <- agg[, c(by, "value")]
  for (bound in c("low", "high")) {
    s <- summarise_runs(ev, paste0("accuracy_ci_", bound), by)
    agg[[bound]] <- if (is.null(s)) NA_real_ else s$value[match(do.call(paste, agg[by]), do.call(paste, s[by]))]
  }
  metrics <- unique(ev$metric[!is.na(ev$metric) & nzchar(ev$metric)])  # read.csv reads a missing string as ""
  bar_figure(agg, runs, "task", title, "accuracy", stem,
             subtitle = paste0("whiskers: 95% Wilson interval; per-item metric: ", paste(metrics, collapse = ", ")))
}

DIVERGENCE_LABELS <- c(kld_mean = "mean KL divergence (nats)", kld_p99 = "99th percentile KL divergence (nats)",
                       top1_agreement = "top-1 agreement with the baseline")

# KL divergence of each variant's next-token distributions from the baseline's, on the perplexity text.
divergence_figure <- function(runs, stem) {
  title <- "Divergence from the baseline (perplexity text)"
  agg <- measures(ok_runs(runs, "evaluate"), DIVERGENCE_LABELS, c("model", "method", "task"))
  if (is.null(agg)) return(no_data_figure(title, "the study has no perplexity task, so no divergence", stem))
  bar_figure(agg, runs, "method", title, NULL, stem, values = TRUE,
             subtitle = "KL(baseline || variant) per scored token, as llama.cpp's perplexity --kl-divergence")
}

PERPLEXITY_LABELS <- c(perplexity_token = "token perplexity (sliding window)",
                       perplexity_word = "word perplexity (lm-eval, per document)")

perplexity_figure <- function(runs, stem) {
  title <- "Perplexity (lower is better)"
  agg <- measures(ok_runs(runs, "evaluate"), PERPLEXITY_LABELS, c("model", "method", "task"))
  if (is.null(agg)) return(no_data_figure(title, "the study has no successful perplexity evaluations", stem))
  bar_figure(agg, runs, "task", title, "perplexity", stem, values = TRUE)
}

MEMORY_LABELS <- c(model_rss_mb = "model's resident memory", peak_gpu_allocated_mb = "peak GPU allocated")

# Size on disk (quantize rows) next to the memory the model takes per batch size (benchmark rows): resident
# memory over the process's before the load (not Python's and the libraries'), and torch's GPU peak.
memory_figure <- function(runs, stem) {
  title <- "Model size on disk and the memory it takes"
  size <- summarise_runs(transform(ok_runs(runs, "quantize"), mb = size_bytes / 1e6), "mb", c("model", "method"))
  if (!is.null(size)) size$series <- "size on disk"
  bench <- ok_runs(runs, "benchmark")
  peak <- do.call(rbind, lapply(names(MEMORY_LABELS), function(column) {
    s <- summarise_runs(bench, column, c("model", "method", "batch_size"))
    if (!is.null(s)) s$series <- paste0(MEMORY_LABELS[[column]], ", batch ", s$batch_size)
    s[, setdiff(names(s), "batch_size")]
  }))
  agg <- rbind(size, peak)
  if (is.null(agg)) return(no_data_figure(title, "no successful quantize or benchmark runs", stem))
  agg$series <- factor(agg$series, levels = unique(agg$series))
  agg$method <- method_factor(agg$method, runs)
  dodge <- position_dodge(0.9)
  p <- ggplot(agg, aes(method, value, fill = series)) +
    geom_col(position = dodge) +
    geom_errorbar(aes(ymin = low, ymax = high), position = dodge, width = 0.3, na.rm = TRUE) +
    geom_text(aes(label = round(value)), position = dodge, vjust = -0.3, size = 2.3) +
    facet_wrap(~ model, scales = "free_y") +
    labs(x = NULL, y = "MB", fill = NULL, title = title,
         subtitle = "resident memory: the batch's peak minus the process's before the model loaded") +
    theme_bw() + theme(legend.position = "bottom", axis.text.x = element_text(angle = 30, hjust = 1),
                       plot.subtitle = element_text(size = 8))
  save_both(p, stem, 2 + length(unique(agg$model)) * max(4, 0.3 * nlevels(agg$series) * nlevels(agg$method)), 4.5)
}

SPEED_LABELS <- c(latency_mean_s = "latency per call (s)", throughput_tokens_per_s = "generated tokens / s",
                  decode_tokens_per_s = "decode tokens / s")

# Latency per generate call, throughput and decode rate against batch size; the decode panel shows each
# method's memory-bandwidth bound as a dashed line.
speed_figure <- function(runs, stem) {
  title <- "Latency and throughput vs batch size"
  bench <- ok_runs(runs, "benchmark")
  agg <- measures(bench, SPEED_LABELS, c("model", "method", "batch_size"))
  if (is.null(agg)) return(no_data_figure(title, "no successful benchmark runs", stem))
  agg$method <- method_factor(agg$method, runs)
  p <- ggplot(agg, aes(batch_size, value, colour = method)) +
    geom_line() + geom_point() +
    geom_errorbar(aes(ymin = low, ymax = high), width = 0.1, na.rm = TRUE)
  bound <- summarise_runs(bench, "bandwidth_bound_tokens_per_s", c("model", "method", "batch_size"))
  if (!is.null(bound)) {
    bound$measure <- factor(SPEED_LABELS[["decode_tokens_per_s"]], levels = levels(agg$measure))
    bound$method <- method_factor(bound$method, runs)
    p <- p + geom_line(data = bound, linetype = "dashed", alpha = 0.6)
  }
  # log y: the bounds lie one to two orders of magnitude above the measured rates on a CPU
  p <- p + scale_x_continuous(trans = "log2", breaks = sort(unique(agg$batch_size))) +
    scale_y_log10() +
    facet_grid(measure ~ model, scales = "free_y") +
    labs(x = "batch size", y = NULL, colour = "method", title = title,
         subtitle = paste("log scales; dashed: the decode rate memory bandwidth allows",
                          "(batch x bandwidth / weight bytes per step)")) +
    guides(colour = method_legend(agg$method)) +
    theme_bw() + theme(legend.position = "bottom", plot.subtitle = element_text(size = 8))
  save_both(p, stem, max(8, 2 + 3.5 * length(unique(agg$model))), 7.5)
}

# The energy methods behind a figure's numbers, so estimates are never read as measurements.
energy_note <- function(d) {
  used <- sort(unique(na.omit(d$energy_method)))
  estimate <- if (any(grepl("estimate", used))) " (estimates: no hardware energy counter was readable)" else ""
  paste0("energy measured by: ", paste(used, collapse = ", "), estimate)
}

energy_figure <- function(runs, stem) {
  title <- "Energy and CO2 per task (evaluation runs)"
  ev <- transform(ok_runs(runs, "evaluate"), co2_g = co2_kg * 1000)
  agg <- measures(ev, c(energy_j = "energy (J)", co2_g = "CO2 (g)"), c("model", "method", "task"))
  if (is.null(agg)) return(no_data_figure(title, "no evaluation run recorded energy", stem))
  bar_figure(agg, runs, "task", title, NULL, stem, subtitle = energy_note(ev))
}

quantization_figure <- function(runs, stem) {
  title <- "Quantization cost: time and energy"
  q <- ok_runs(runs, "quantize")
  agg <- measures(q, c(quantize_time_s = "wall time (s)", energy_j = "energy (J)"), c("model", "method"))
  if (is.null(agg)) return(no_data_figure(title, "no successful quantize runs", stem))
  bar_figure(agg, runs, "method", title, NULL, stem, values = TRUE, subtitle = energy_note(q))
}

# One point per variant (model x method): quality, evaluation energy and peak memory.
variant_table <- function(runs) {
  ev <- ok_runs(runs, "evaluate")
  quality <- if (any(!is.na(ev$accuracy))) "accuracy" else "perplexity_token"
  ev <- ev[!is.na(ev[[quality]]) & !is.na(ev$energy_j), ]
  bench <- ok_runs(runs, "benchmark")
  memory <- if (any(!is.na(bench$peak_gpu_allocated_mb))) "peak_gpu_allocated_mb" else "model_rss_mb"
  bench <- bench[!is.na(bench[[memory]]), ]
  if (nrow(ev) == 0 || nrow(bench) == 0) return(NULL)
  # mean over repetitions per task, then: quality averaged over tasks, energy summed over them
  per_task <- aggregate(cbind(q = ev[[quality]], e = ev$energy_j),
                        by = list(model = ev$model, method = ev$method, task = ev$task), FUN = mean)
  v <- merge(aggregate(q ~ model + method, per_task, mean), aggregate(e ~ model + method, per_task, sum))
  v <- merge(v, aggregate(bench[[memory]], by = list(model = bench$model, method = bench$method), FUN = max))
  names(v) <- c("model", "method", "quality", "energy", "memory")
  attr(v, "quality") <- quality
  attr(v, "memory") <- memory
  v
}

# A variant is dominated when another is at least as good on quality, energy and memory, and better on one.
dominated <- function(quality, energy, memory, higher_is_better) {
  q <- if (higher_is_better) quality else -quality
  sapply(seq_along(q), function(i) {
    no_worse <- q >= q[i] & energy <= energy[i] & memory <= memory[i]
    better <- q > q[i] | energy < energy[i] | memory < memory[i]
    any(no_worse & better)
  })
}

pareto_figure <- function(runs, stem) {
  title <- "Pareto front: quality vs energy vs memory"
  v <- variant_table(runs)
  if (is.null(v) || nrow(v) == 0)
    return(no_data_figure(title, "needs evaluations with energy and benchmark memory for the same variants", stem))
  accuracy <- attr(v, "quality") == "accuracy"
  # Each model's variants compete with each other only: a small model's variant does not dominate a big one's.
  v$dominated <- FALSE
  for (m in unique(v$model)) {
    own <- v$model == m
    v$dominated[own] <- dominated(v$quality[own], v$energy[own], v$memory[own], accuracy)
  }
  v$colour <- ifelse(v$dominated, "dominated", v$model)
  models <- unique(v$model)
  palette <- c(setNames(scales::hue_pal()(length(models)), models), dominated = "grey70")
  p <- ggplot(v, aes(energy, quality)) +
    geom_point(aes(size = memory, colour = colour), alpha = 0.85) +
    geom_text(aes(label = method, colour = colour), vjust = -1.8, size = 3, show.legend = FALSE) +
    facet_wrap(~ model, scales = "free") +
    scale_colour_manual(values = palette, breaks = c(models, "dominated"), name = NULL) +
    scale_size_continuous(name = paste(MEMORY_LABELS[[attr(v, "memory")]], "(MB)"), range = c(3, 9)) +
    scale_x_continuous(expand = expansion(mult = 0.15)) + scale_y_continuous(expand = expansion(mult = 0.2)) +
    labs(x = "evaluation energy, summed over tasks (J)",
         y = if (accuracy) "accuracy, mean over choice tasks" else "token perplexity (lower is better)",
         title = title,
         subtitle = paste0("grey: dominated (another variant of the same model is no worse on all three and ",
                           "better on one)\n", energy_note(ok_runs(runs, "evaluate")))) +
    theme_bw() + theme(legend.position = "right", plot.subtitle = element_text(size = 8))
  save_both(p, stem, max(8, 5 * length(models)), 5)
}

qb_figures <- function(runs_csv, out_dir) {
  runs <- read_run_table(runs_csv)
  dir.create(out_dir, showWarnings = FALSE, recursive = TRUE)
  figures <- list(accuracy = accuracy_figure, perplexity = perplexity_figure, divergence = divergence_figure,
                  memory = memory_figure,
                  speed = speed_figure, energy = energy_figure, quantization = quantization_figure,
                  pareto = pareto_figure)
  for (name in names(figures)) figures[[name]](runs, file.path(out_dir, name))
  invisible(names(figures))
}
