"""Runtime faults: one clear line in the log and, with `on_error: skip`, a failed record.

A study is hundreds of jobs; with `skip`, one method that runs out of memory or lacks a package
becomes a `failed` row with the reason, and the rest of the study finishes.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Callable, Iterator

from .errors import QuantbenchError

log = logging.getLogger("quantbench")


def explain(err: BaseException) -> str:
    if isinstance(err, MemoryError) or type(err).__name__ == "OutOfMemoryError" or "allocate memory" in str(err):
        return f"out of memory ({type(err).__name__}: {str(err)[:200]})"
    if isinstance(err, ImportError):
        return f"a package is missing: {err}"
    if isinstance(err, QuantbenchError):
        return str(err)
    return f"{type(err).__name__}: {err}"


@contextlib.contextmanager
def guarded(what: str, on_error: str, record_failure: Callable[[str], None]) -> Iterator[None]:
    """Run the block; on an exception log one line saying why, then re-raise or record and carry on."""
    try:
        yield
    except Exception as err:
        message = f"{what} failed: {explain(err)}"
        log.exception(message)
        if on_error != "skip":
            raise
        record_failure(message)
        log.error("on_error: skip -> recorded as a failed run; the study goes on")
