"""The process's resident memory, read from Linux's /proc/self/status, with a peak that can be reset.

`ru_maxrss` (getrusage) is the process's lifetime peak: in a job that loads a model, measures the memory
bandwidth with two 256 MiB buffers and then runs several batch sizes, it holds whichever came first. Linux
resets the peak (VmHWM) when "5" is written to /proc/self/clear_refs, so each phase can measure its own.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

log = logging.getLogger(__name__)
STATUS, CLEAR_REFS = Path("/proc/self/status"), Path("/proc/self/clear_refs")


def _status_mb(field: str) -> float | None:
    try:
        for line in STATUS.read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return None


def rss_mb() -> float | None:
    """Resident memory now (MiB); None where /proc is not there (not Linux)."""
    return _status_mb("VmRSS")


def peak_rss_mb() -> float | None:
    """Peak resident memory since the last reset_peak() (MiB); None where it cannot be reset."""
    return _status_mb("VmHWM") if _resettable() else None


def reset_peak() -> None:
    """Start a new peak from the current resident memory."""
    if _resettable():
        CLEAR_REFS.write_text("5")


@functools.cache
def _resettable() -> bool:
    try:
        CLEAR_REFS.write_text("5")
    except OSError as err:
        log.warning("memory: the peak resident memory cannot be reset here (%s); peak_rss_mb is left empty", err)
        return False
    return _status_mb("VmHWM") is not None
