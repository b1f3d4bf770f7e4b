"""A job's log: everything the job prints, libraries included, goes to its Snakemake log file."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path


def setup(log_file: str | os.PathLike, threads: int | None = None) -> None:
    """Send stdout, stderr and logging to `log_file`; give torch `threads` threads where given."""
    Path(log_file).parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr, force=True)
    if threads:
        import torch

        torch.set_num_threads(threads)
