"""What `make venv` costs with and without byte-compiling every installed module.

    python benchmarks/venv_install.py [--repeats 2]

Each reading creates a fresh venv in a scratch folder and installs envs/requirements.txt and this
repository as `make venv` does, then imports what a run imports first (Snakemake, torch, torchvision,
torch._dynamo, matplotlib, pandas, the job server): `compiled` lets pip byte-compile every module it
installs, as pip does by default; `lazily compiled` passes --no-compile, so Python compiles a module
when it is first imported and caches it. The packages come from this machine's local wheels, so the
network is not in the times. Wall and CPU seconds (getrusage of the finished children), medians over
interleaved rounds.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, children_cpu, interleaved_rounds, machine_header, median_readings, write_table

WAYS = {"compiled": [], "lazily compiled": ["--no-compile"]}
FIRST_IMPORTS = "import snakemake.cli, torch, torchvision, torch._dynamo, matplotlib.pyplot, pandas, labelworth.job_server"



def install(flags: list[str]) -> dict:
    with tempfile.TemporaryDirectory(prefix="labelworth-venv-bench-") as scratch:
        python = Path(scratch) / "bin" / "python"
        pip = [str(python), "-m", "pip", "--disable-pip-version-check", "-qq", "install", *flags]
        before, started = children_cpu(), time.perf_counter()
        for command in ([sys.executable, "-m", "venv", scratch], pip + ["-r", str(ROOT / "envs" / "requirements.txt")],
                        pip + ["--no-deps", "-e", str(ROOT)], [str(python), "-c", FIRST_IMPORTS]):
            subprocess.run(command, check=True, cwd=scratch)
        return {"wall": time.perf_counter() - started, "cpu": children_cpu() - before}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/venv_install.md")
    args = parser.parse_args()
    info = machine_header()
    readings = interleaved_rounds(list(WAYS), args.repeats, lambda way: install(WAYS[way]))
    medians = median_readings(readings)
    compiled = medians["compiled"]
    lines = [f"A fresh venv with envs/requirements.txt and this repository, then the first imports of a run; "
             f"medians of {args.repeats} interleaved rounds.", "", info, "",
             "| way | wall s | CPU s | wall / compiled | CPU / compiled |", "|---|---|---|---|---|"]
    for way, value in medians.items():
        lines.append(f"| {way} | {value['wall']:.1f} | {value['cpu']:.1f} | {value['wall'] / compiled['wall']:.2f}x | "
                     f"{value['cpu'] / compiled['cpu']:.2f}x |")
    write_table("make venv: pip's byte-compilation or Python's own", lines, args.out)


if __name__ == "__main__":
    main()
