"""Whole-workflow timings: the no-op rerun of a finished run, and building the DAG of every config.

    python benchmarks/workflow.py --finished-run /path/to/a/finished/default/run

Prints a markdown table (medians over repeats, with the machine it ran on) and writes it to
benchmarks/results/workflow.md. Targets (issue "Speed"): a no-op rerun of the default config under
10 s; the DAG of the largest paper config under 20 s. The wall time of `make figures` itself is
measured by timing that command (the README says which run).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, machine_header, write_table


def timed_dry_run(workdir: Path, config: Path) -> tuple[float, str]:
    """Seconds for `snakemake --dry-run` in `workdir` with `config`, and its last line."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    command = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(workdir),
               "--configfile", str(config), "--replace-workflow-config", "--cores", "2", "--dry-run", "--quiet"]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{config}: snakemake failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    return elapsed, lines[-1] if lines else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--finished-run", type=Path, help="a folder where the default config has run to the end")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/workflow.md")
    args = parser.parse_args()
    info = machine_header()

    cases = []
    if args.finished_run:
        cases.append(("no-op rerun, config.yaml (finished run)", args.finished_run, ROOT / "config.yaml"))
    scratch = Path(tempfile.mkdtemp(prefix="labelworth-dag-"))
    for config in sorted((ROOT / "configs").glob("*.yaml")):
        cases.append((f"DAG of configs/{config.name} (no data)", scratch / config.stem, config))

    rows = []
    for name, workdir, config in cases:
        workdir.mkdir(parents=True, exist_ok=True)
        times, last = [], ""
        for _ in range(args.repeats):
            elapsed, last = timed_dry_run(workdir, config)
            times.append(elapsed)
        rows.append(f"| {name} | {statistics.median(times):.1f} | {last[:70]} |")

    write_table("Workflow timings", [
        f"Snakemake dry runs, medians of {args.repeats}.",
        "",
        info,
        "",
        "| case | seconds | last line of output |",
        "|---|---|---|",
        *rows,
    ], args.out)


if __name__ == "__main__":
    main()
