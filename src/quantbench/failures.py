"""Runtime faults: one clear line in the log and, with `on_error: skip`, a failed record.

A study is hundreds of jobs; with `skip`, one method that runs out of memory or lacks a package
becomes a `failed` row with the reason, and the rest of the study finishes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
from typing import Callable, Iterator, TypeVar

from .errors import QuantbenchError

log = logging.getLogger("quantbench")
Run = TypeVar("Run")


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


def surviving_crashes(job: Callable[[Run], None], run: Run, record_unfinished: Callable[[Run, str], None]) -> None:
    """Run `job(run)`; under on_error: skip, in a forked child, so that a crash no exception reports (a segfault
    or an abort in a native kernel: llama.cpp's asserts, a misaligned int8 matmul) ends the child only, and the
    runs it did not finish are recorded as failed, naming the signal, instead of Snakemake stopping the study.
    Call it before any torch work: a fork after torch's thread pool has started can hang the child."""
    if run.on_error != "skip":
        job(run)
        return
    sys.stdout.flush()
    sys.stderr.flush()
    child = os.fork()
    if child == 0:
        code = 1
        try:
            job(run)
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        except BaseException:
            log.exception("the job failed")
        finally:
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    status = os.waitpid(child, 0)[1]
    if os.WIFSIGNALED(status):
        killed_by = signal.Signals(os.WTERMSIG(status))
        message = (f"the job's process died of {killed_by.name} ({signal.strsignal(killed_by)}), a crash in native "
                   "code that raised no exception; its log has the library's last words")
        log.error("%s; on_error: skip -> its unfinished runs recorded as failed", message)
        record_unfinished(run, message)
    elif os.waitstatus_to_exitcode(status):
        sys.exit(os.waitstatus_to_exitcode(status))
