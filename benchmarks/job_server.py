"""What the job server buys: a run's own job commands, each in a process of its own and forked by the server.

    python benchmarks/job_server.py --run DIR [--repeats 3]

DIR is a folder where `make figures` has finished (e.g. the clone of `benchmarks/cost_table.py
--clone-and-run`). From its Snakemake log the script takes the shell commands of a few jobs as the
workflow ran them (a label file, an IPC-1 and an IPC-10 student population, a figure), and runs each
in DIR, its log sent to a scratch file: with `LABELWORTH_JOB_SERVER=off` (a process per job, as
before the server) and through a server this script starts (labelworth/job_client.py), in
interleaved rounds. The commands rewrite their outputs in DIR; the script checks that every output
is bitwise what it was before.

Wall seconds from this process's clock; CPU seconds of the job as getrusage of its shell and client,
plus, when served, the worker's own CPU from its cost line (a worker is the server's child, not
ours). The server's own imports are a one-off per run, reported above the table.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from labelworth.costs import parse_cost_line
from labelworth.job_client import SERVER_ENV, SERVER_OFF, JobServer

from common import children_cpu, interleaved_rounds, machine_header, median_readings, write_table

WAYS = ("own process", "served")
# (name, rule, a pattern its command must match): the first such job of the run
CASES = (
    ("a label file (make_labels)", "make_labels", r""),
    ("IPC-1 students (evaluate_students)", "evaluate_students", r"images/random-ipc1/.*--labels \S*/hard\.pt"),
    ("IPC-10 students (evaluate_students)", "evaluate_students", r"images/random-ipc10/.*--labels \S*/hard\.pt"),
    ("a figure (figure_soft_vs_hard)", "figure_soft_vs_hard", r""),
)
LOG_REDIRECT = re.compile(r"\s*>\s*(\S+)\s+2>&1\s*$")


def shell_commands(run: Path) -> list[tuple[str, str]]:
    """(rule, shell command) of every job in the run's Snakemake logs, in the order they started."""
    jobs, rule = [], None
    for log in sorted((run / ".snakemake" / "log").glob("*.snakemake.log")):
        for line in log.read_text().splitlines():
            if match := re.match(r"(?:local)?rule (\w+):", line.strip()):
                rule = match[1]
            elif line.startswith("Shell command: ") and rule:
                jobs.append((rule, line.removeprefix("Shell command: ")))
    return jobs


def pick(jobs: list[tuple[str, str]], rule: str, pattern: str) -> str:
    for job_rule, command in jobs:
        if job_rule == rule and re.search(pattern, command) and LOG_REDIRECT.search(command):
            return command
    raise SystemExit(f"the run has no {rule} job matching {pattern!r}")


def outputs_digest(run: Path, command: str) -> str:
    """sha256 over every results/ file the command names (inputs and outputs alike)."""
    digest = hashlib.sha256()
    for path in sorted(set(re.findall(r"results/\S+", command))):
        file = run / path.strip("'\")")
        if file.is_file():
            digest.update(file.read_bytes())
    return digest.hexdigest()



def run_command(run: Path, command: str, environ: dict, log: Path) -> dict:
    """Wall and CPU seconds of one job; served, its worker's CPU comes from its cost line."""
    shell = LOG_REDIRECT.sub(f" > {log} 2>&1", command)
    before = children_cpu()
    started = time.perf_counter()
    result = subprocess.run(["bash", "-c", shell], cwd=run, env=environ)
    wall = time.perf_counter() - started
    cpu = children_cpu() - before
    text = log.read_text(errors="replace")
    if result.returncode != 0:
        raise SystemExit(f"{command} failed:\n{text[-3000:]}")
    if environ[SERVER_ENV] != SERVER_OFF:
        record = next(filter(None, map(parse_cost_line, reversed(text.splitlines()))))
        cpu += sum(record["cpu"].values())
    return {"wall": wall, "cpu": cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="a folder where `make figures` has finished")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/results/job_server.md")
    args = parser.parse_args()
    run = args.run.resolve()
    info = machine_header()
    jobs = shell_commands(run)
    cases = [(name, pick(jobs, rule, pattern)) for name, rule, pattern in CASES]
    environ = {**os.environ, "OMP_NUM_THREADS": "1"}  # as Snakemake sets it per job
    environ["PATH"] = f"{run / '.venv' / 'bin'}:{environ['PATH']}"
    started = time.time()
    rows = []
    with tempfile.TemporaryDirectory(prefix="labelworth-job-server-bench-") as scratch:
        scratch = Path(scratch)
        served_environ: dict = {}
        server = JobServer(scratch / "server.log")
        server.start(served_environ)
        deadline = time.monotonic() + 120
        while "listening" not in server.log.read_text():
            if time.monotonic() > deadline:
                raise SystemExit(f"the server did not start:\n{server.log.read_text()}")
            time.sleep(0.1)
        ways = {"own process": {**environ, SERVER_ENV: SERVER_OFF}, "served": {**environ, **served_environ}}
        try:
            for name, command in cases:
                before = outputs_digest(run, command)
                readings = interleaved_rounds(list(WAYS), args.repeats, lambda way: run_command(
                    run, command, ways[way], scratch / "job.log"))
                if outputs_digest(run, command) != before:
                    raise SystemExit(f"{name}: the outputs changed; a served job must write bitwise the same")
                medians = median_readings(readings)
                rows.append((name, medians))
                print(name, medians, flush=True)
        finally:
            server.stop(served_environ)
        server_costs = next(filter(None, map(parse_cost_line, reversed(server.log.read_text().splitlines()))))

    lines = [
        f"Jobs of a finished default run (`{run.name}`), each command as the workflow ran it, 1 thread per "
        f"job (OMP_NUM_THREADS=1, as Snakemake sets it): in a process of its own (LABELWORTH_JOB_SERVER=off) "
        f"and forked by the job server; medians of {args.repeats} rounds, the two ways interleaved. Wall "
        f"seconds are the command's, shell and client included; CPU seconds add the worker's (its cost line). "
        f"Every output bitwise the same after the rounds. The server's one-off start-up: "
        f"{server_costs['cpu']['start-up']:.1f} CPU s of imports. Whole benchmark {time.time() - started:.0f} s.",
        "",
        info,
        "",
        "| job | way | wall s | CPU s | wall own/served | CPU own/served |",
        "|---|---|---|---|---|---|",
    ]
    for name, medians in rows:
        own, served = medians["own process"], medians["served"]
        for way in WAYS:
            value = medians[way]
            ratios = (f"{own['wall'] / served['wall']:.2f}x | {own['cpu'] / served['cpu']:.2f}x"
                      if way == "served" else " | ")
            lines.append(f"| {name} | {way} | {value['wall']:.2f} | {value['cpu']:.2f} | {ratios} |")
    write_table("The job server: jobs forked from one warm Python", lines, args.out)


if __name__ == "__main__":
    sys.exit(main())
