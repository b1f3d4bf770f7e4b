"""Where a study's time went: wall time per rule from Snakemake's own log (each job from its start line to its
"Finished jobid" line, imports included), and the slowest jobs.

    .venv/bin/python dev/stage_times.py .snakemake/log/<run>.snakemake.log
"""

from __future__ import annotations

import argparse
import datetime
import re
from collections import defaultdict
from pathlib import Path

STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ [\d:]+ \d{4})\]$")


def job_times(log: str) -> list[tuple[str, str, float]]:
    """(rule, wildcards, seconds) per finished job."""
    started: dict[str, list] = {}
    done, stamp, rule, job = [], None, None, None
    for line in log.splitlines():
        if match := STAMP.match(line):
            stamp = datetime.datetime.strptime(match.group(1), "%a %b %d %H:%M:%S %Y")
        elif match := re.match(r"^(?:local)?rule (\w+):$", line):
            rule = match.group(1)
        elif match := re.match(r"^\s+jobid: (\d+)$", line):
            job = match.group(1)
            started[job] = [rule, "", stamp]
        elif (match := re.match(r"^\s+wildcards: (.*)$", line)) and job in started:
            started[job][1] = match.group(1)
        elif match := re.match(r"^Finished jobid: (\d+)", line):
            rule_, wildcards, began = started.pop(match.group(1))
            done.append((rule_, wildcards, (stamp - began).total_seconds()))
    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log", type=Path)
    parser.add_argument("--slowest", type=int, default=12)
    args = parser.parse_args()
    jobs = job_times(args.log.read_text())
    per_rule = defaultdict(list)
    for rule, _, seconds in jobs:
        per_rule[rule].append(seconds)
    total = sum(seconds for *_, seconds in jobs)
    print(f"{len(jobs)} jobs, {total / 60:.1f} min of job time")
    print("| rule | jobs | minutes | share | mean s |")
    print("|---|---|---|---|---|")
    for rule, times in sorted(per_rule.items(), key=lambda kv: -sum(kv[1])):
        print(f"| {rule} | {len(times)} | {sum(times) / 60:.1f} | {sum(times) / total:.0%} | {sum(times) / len(times):.0f} |")
    print(f"\nslowest {args.slowest}:")
    for rule, wildcards, seconds in sorted(jobs, key=lambda j: -j[2])[:args.slowest]:
        print(f"  {seconds:5.0f} s  {rule}  {wildcards}")


if __name__ == "__main__":
    main()
