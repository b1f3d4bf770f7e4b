# Reading quantbench's tables in R, against the declared columns (RUN_TABLE_TYPES, ITEM_TABLE_TYPES) that
# rbridge.call gives R from src/quantbench/runtable.py before it sources this file and a script.

# A table with every declared column (absent ones as NA) in its declared type.
declared_table <- function(path, types, what) {
  raw <- if (file.size(path) > 1) read.csv(path, stringsAsFactors = FALSE) else data.frame()
  unknown <- setdiff(names(raw), names(types))
  if (length(unknown) > 0) stop(what, " has columns not in the run-table schema: ", paste(unknown, collapse = ", "))
  n <- nrow(raw)
  columns <- lapply(names(types), function(name) {
    value <- if (name %in% names(raw)) raw[[name]] else rep(NA, n)
    methods::as(value, types[[name]])
  })
  table <- as.data.frame(setNames(columns, names(types)), stringsAsFactors = FALSE)
  structure(table, class = c("qb_table", "data.frame"), qb_what = what)
}

read_run_table <- function(path) declared_table(path, RUN_TABLE_TYPES, "the run table")
read_item_table <- function(path) declared_table(path, ITEM_TABLE_TYPES, "the item table")

# Reading a column that is not declared is an error, not NULL.
undeclared <- function(x, name) {
  stop("no column '", name, "' in ", attr(x, "qb_what"), " (src/quantbench/runtable.py declares its columns)",
       call. = FALSE)
}
`$.qb_table` <- function(x, name) {
  if (!name %in% names(x)) undeclared(x, name)
  .subset2(x, name)
}
`[[.qb_table` <- function(x, i, ...) {
  if (is.character(i) && !i %in% names(x)) undeclared(x, i)
  .subset2(x, i, ...)
}
`[.qb_table` <- function(x, ...) {
  out <- NextMethod()
  if (is.data.frame(out)) attributes(out)[c("class", "qb_what")] <- list(class(x), attr(x, "qb_what"))
  out
}
