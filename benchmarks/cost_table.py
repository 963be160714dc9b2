"""Where `make figures` spends its time: a cost table of one run, by stage and by kind of cost.

    python benchmarks/cost_table.py --clone-and-run /tmp/figures-run --label after [--commit REV]
    python benchmarks/cost_table.py --finished-run /tmp/figures-run --label after   # tabulate only

`--clone-and-run` clones this repository's HEAD into an empty folder and runs `make figures` there
under /usr/bin/time (a fresh clone: the venv's install and the data check are part of the run), then
tabulates it. Nothing else should run on the machine meanwhile.

Every `labelworth` job ends its log with one cost line (labelworth/costs.py): its wall-clock start
and end and its process CPU seconds split into start-up (the interpreter and every import), data
loading (reading prepared splits and result files), test passes (the clean passes that measure
students and experts) and compute (the rest). The table adds them up per rule; the row "outside the
jobs" is the run's total CPU less the jobs' (Snakemake itself, the venv's install, the data check).
The job server's own log (its imports, its loop) is the row `job_server`: its CPU is among the jobs',
the server itself is not counted as a job. The timeline spreads each job's CPU evenly over its
wall-clock span and reports, per five minutes, how many of the cores the jobs kept busy and which
rules ran: a core left idle shows there.
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import os
import subprocess
from pathlib import Path

from labelworth.costs import PHASES, parse_cost_line
from labelworth.render import RUNS_FILE, duration_text, longest_stamp, run_stamps

from common import ROOT, machine_header, write_table

SERVER_RULE = "job_server"  # logs/{run}/job_server.log: the run's job server, not one of its jobs
TIME_FORMAT = '{"wall": %e, "user": %U, "system": %S}'
BIN_SECONDS = 300


def job_costs(run: Path) -> list[dict]:
    """Every job's cost record from the run's logs (logs/{dataset}/{rule}/.../{job}.log, or
    logs/{dataset}/{rule}.log for a rule of one job), with its rule."""
    jobs = []
    for log in sorted(run.glob("logs/*/**/*.log")):
        rule = log.relative_to(run / "logs").parts[1].removesuffix(".log")
        for line in reversed(log.read_text(errors="replace").splitlines()):
            record = parse_cost_line(line)
            if record is not None:
                jobs.append({**record, "rule": rule})
                break
    return jobs


def stage_rows(jobs: list[dict], total_cpu: float | None) -> list[str]:
    """The markdown table: per rule its jobs, summed wall minutes and CPU minutes by kind of cost."""
    by_rule: dict[str, list[dict]] = collections.defaultdict(list)
    for job in jobs:
        by_rule[job["rule"]].append(job)

    def minutes(values) -> str:
        return f"{sum(values) / 60:.1f}"

    header = ["stage", "jobs", "wall min (summed)", "CPU min", *(f"{phase} CPU min" for phase in PHASES)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    ordered = sorted(by_rule.items(), key=lambda item: -sum(sum(job["cpu"].values()) for job in item[1]))
    for rule, members in [*ordered, ("all jobs", jobs)]:
        cells = [rule if rule != "all jobs" else "**all jobs**",
                 str(len(members) if rule != "all jobs" else sum(job["rule"] != SERVER_RULE for job in jobs)),
                 minutes(job["ended"] - job["started"] for job in members),
                 minutes(sum(job["cpu"].values()) for job in members),
                 *(minutes(job["cpu"][phase] for job in members) for phase in PHASES)]
        lines.append("| " + " | ".join(cells) + " |")
    if total_cpu is not None:
        outside = total_cpu - sum(sum(job["cpu"].values()) for job in jobs)
        for name, cpu in (("outside the jobs", outside), ("**the whole run**", total_cpu)):
            lines.append("| " + " | ".join([name, "", "", f"{cpu / 60:.1f}", *[""] * len(PHASES)]) + " |")
    return lines


def timeline_rows(jobs: list[dict], bin_seconds: int = BIN_SECONDS) -> list[str]:
    """Per `bin_seconds` of the run: the cores the jobs kept busy (CPU seconds / bin seconds) and the
    rules that ran, with how many of their jobs."""
    start = min(job["started"] for job in jobs)
    end = max(job["ended"] for job in jobs)
    bins = max(1, math.ceil((end - start) / bin_seconds))
    busy = [0.0] * bins
    running: list[collections.Counter] = [collections.Counter() for _ in range(bins)]
    for job in jobs:
        begin, finish = job["started"] - start, job["ended"] - start
        rate = sum(job["cpu"].values()) / max(finish - begin, 1e-6)
        for index in range(int(begin // bin_seconds), int(finish // bin_seconds) + 1):
            overlap = min(finish, (index + 1) * bin_seconds) - max(begin, index * bin_seconds)
            if overlap > 0:
                busy[index] += rate * overlap
                running[index][job["rule"]] += 1
    lines = ["| minutes | cores busy | jobs running (by rule) |", "|---|---|---|"]
    for index in range(bins):
        width = min(bin_seconds, end - start - index * bin_seconds)
        rules = ", ".join(f"{rule} {count}" for rule, count in running[index].most_common())
        lines.append(f"| {index * bin_seconds // 60}-{index * bin_seconds // 60 + round(width / 60)} | "
                     f"{busy[index] / width:.2f} | {rules} |")
    return lines


def stamp_sentences(run: Path) -> str:
    """Snakemake's own wall time and commit of each run folder under `run`, from its longest stamp
    (the run that built it, as docs/results.md says; a later top-up is short); '' without stamps."""
    return "".join(f" Snakemake's own wall time, from the run's stamp ({stamp_file.relative_to(run)}): "
                   f"{duration_text(stamp['wall_seconds'])} (commit {stamp['commit']})."
                   for stamp_file in sorted(run.glob(f"logs/*/{RUNS_FILE}"))
                   for stamp in [longest_stamp(run_stamps(stamp_file.parent))])


def clone_and_run(folder: Path, commit: str) -> dict:
    """Clone `commit` into the empty `folder`, run `make figures` there under /usr/bin/time; its times."""
    if folder.exists() and any(folder.iterdir()):
        raise SystemExit(f"{folder} is not empty; give a new folder")
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(folder)], check=True)
    subprocess.run(["git", "-C", str(folder), "checkout", "--quiet", commit], check=True)
    time_file = folder / "make-figures.time.json"
    env = {key: value for key, value in os.environ.items() if key not in ("VIRTUAL_ENV", "PYTHONPATH")}
    result = subprocess.run(["/usr/bin/time", "-f", TIME_FORMAT, "-o", str(time_file), "make", "figures"],
                            cwd=folder, env=env)
    if result.returncode != 0:
        raise SystemExit(f"make figures failed in {folder} (status {result.returncode})")
    return json.loads(time_file.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--clone-and-run", type=Path, metavar="DIR", help="clone HEAD into DIR and run make figures")
    where.add_argument("--finished-run", type=Path, metavar="DIR", help="tabulate the run already in DIR")
    parser.add_argument("--commit", default="HEAD", help="what --clone-and-run checks out (default HEAD)")
    parser.add_argument("--label", required=True, help="names the table: benchmarks/results/cost_table_LABEL.md")
    args = parser.parse_args()
    header = machine_header()  # the load average before the run
    if args.clone_and_run:
        run, times = args.clone_and_run, clone_and_run(args.clone_and_run, args.commit)
    else:
        run = args.finished_run
        time_file = run / "make-figures.time.json"
        times = json.loads(time_file.read_text()) if time_file.exists() else None
    jobs = job_costs(run)
    if not jobs:
        raise SystemExit(f"{run}: no job logs with a cost line (logs/*/*/*.log)")
    commit = subprocess.run(["git", "-C", str(run), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip() or "unknown"
    total_cpu = None if times is None else times["user"] + times["system"]
    summary = (f"`make figures` on a fresh clone of {commit}: "
               + (f"{times['wall'] / 60:.1f} min wall, {total_cpu / 60:.1f} CPU-min, " if times else "")
               + f"{sum(job['rule'] != SERVER_RULE for job in jobs)} labelworth jobs"
               + (" and the job server that forked them." if any(job["rule"] == SERVER_RULE for job in jobs) else ".")
               + stamp_sentences(run))
    lines = [header, "", summary, "", "## By stage and kind of cost", "", *stage_rows(jobs, total_cpu), "",
             "## Timeline (the jobs' CPU spread over their wall-clock span)", "", *timeline_rows(jobs)]
    write_table(f"Cost table of the default run ({args.label})", lines,
                ROOT / "benchmarks" / "results" / f"cost_table_{args.label}.md")


if __name__ == "__main__":
    main()
