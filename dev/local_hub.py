"""Serve the hub stand-in of the tests (tests/local_hub.py) until Ctrl-C: the reference studies' model and
dataset ids, small, each at two commits, on 127.0.0.1, so that a study with `hf:` models and hub tasks runs
here with no hub. Built into --root the first time (~45 s), reused after.

    .venv/bin/python dev/local_hub.py --port 8090 --root /tmp/hub
    # then, in another shell, the lines it prints, e.g.
    export HF_ENDPOINT=http://127.0.0.1:8090 HF_HOME=/tmp/hub/client/hf-8090 ...
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import local_hub  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--root", type=Path, default=Path("/tmp/quantbench-hub"))
    args = parser.parse_args()

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # `kill` stops olah too, as Ctrl-C does
    hub = local_hub.start(args.root, args.port)
    print(f"serving {len(hub.commits)} repos from {hub.root / 'mirrors'} (log: {hub.log})")
    for repo_id, commits in hub.commits.items():
        print(f"  {repo_id}: {' '.join(commits)}  (oldest first)")
    # the tests' proxies to nowhere are left out: in a user's shell they would cut pip off too
    env = {k: v for k, v in hub.env.items() if "proxy" not in k.lower()}
    print("export " + " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()), flush=True)
    try:
        hub.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        hub.stop()


if __name__ == "__main__":
    main()
