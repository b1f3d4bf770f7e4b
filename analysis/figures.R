# Figures of a quantbench study (ggplot2), called through rpy2. Each figure is written as PNG and PDF.

suppressPackageStartupMessages(library(ggplot2))

save_both <- function(plot, stem, width, height) {
  ggsave(paste0(stem, ".png"), plot, width = width, height = height, dpi = 150, device = ragg::agg_png)
  ggsave(paste0(stem, ".pdf"), plot, width = width, height = height)
}

# A figure that says why it is empty (every run of this kind failed or was skipped).
empty_figure <- function(title, stem) {
  p <- ggplot() + annotate("text", x = 0, y = 0, label = "no successful runs to show") +
    labs(title = title) + theme_void()
  save_both(p, stem, 6, 3)
}

method_order <- function(runs) {
  q <- runs[runs$kind == "quantize" & runs$status == "ok", ]
  unique(q$method[order(-q$bits, q$method)])
}

# Accuracy per task and token perplexity, one bar per method (mean over repetitions).
accuracy_figure <- function(runs, stem) {
  ev <- runs[runs$kind == "evaluate" & runs$status == "ok", ]
  if (nrow(ev) == 0) return(empty_figure("Quality per method", stem))
  for (column in c("accuracy", "perplexity_token")) if (is.null(ev[[column]])) ev[[column]] <- NA
  ev$value <- ifelse(is.na(ev$accuracy), ev$perplexity_token, ev$accuracy)
  ev$panel <- ifelse(is.na(ev$accuracy), paste0(ev$task, ": token perplexity (lower is better)"),
                     paste0(ev$task, ": accuracy"))
  agg <- aggregate(value ~ model + method + panel, data = ev, FUN = mean)
  agg$method <- factor(agg$method, levels = method_order(runs))
  p <- ggplot(agg, aes(method, value, fill = method)) +
    geom_col(show.legend = FALSE) +
    geom_text(aes(label = signif(value, 3)), vjust = -0.3, size = 3) +
    facet_wrap(~ model + panel, scales = "free_y") +
    labs(x = NULL, y = NULL, title = "Quality per method") +
    theme_bw() + theme(axis.text.x = element_text(angle = 30, hjust = 1))
  save_both(p, stem, 8, 4.5)
}

# Generation throughput vs batch size, mean and range over repetitions.
throughput_figure <- function(runs, stem) {
  b <- runs[runs$kind == "benchmark" & runs$status == "ok", ]
  if (nrow(b) == 0) return(empty_figure("Throughput vs batch size", stem))
  b$method <- factor(b$method, levels = method_order(runs))
  p <- ggplot(b, aes(batch_size, throughput_tokens_per_s, colour = method)) +
    stat_summary(fun = mean, geom = "line") +
    stat_summary(fun = mean, fun.min = min, fun.max = max, geom = "pointrange") +
    scale_x_continuous(trans = "log2", breaks = sort(unique(b$batch_size))) +
    facet_wrap(~ model, scales = "free_y") +
    labs(x = "batch size", y = "generated tokens / s", title = "Throughput vs batch size") +
    theme_bw()
  save_both(p, stem, 7, 4)
}

qb_figures <- function(runs_csv, out_dir) {
  runs <- read.csv(runs_csv, stringsAsFactors = FALSE)
  dir.create(out_dir, showWarnings = FALSE, recursive = TRUE)
  accuracy_figure(runs, file.path(out_dir, "quality"))
  throughput_figure(runs, file.path(out_dir, "throughput"))
  invisible(TRUE)
}
