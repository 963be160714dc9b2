"""What every benchmark script shares: the machine line, interleaved timing rounds, writing the table.

A benchmark prints a markdown table of medians over repeats and saves it under benchmarks/results/.
Ratios are only ever taken between ways measured in the same run, round by round in a rotating order
(`interleaved_rounds`), so a change in the machine's load hits every way alike.
"""

from __future__ import annotations

import datetime
import os
import platform
import resource
import statistics
import shlex
import sys
from pathlib import Path
from typing import Callable, TypeVar

ROOT = Path(__file__).resolve().parents[1]
Reading = TypeVar("Reading")


def cpu_model() -> str:
    """The processor's marketing name from /proc/cpuinfo, else what `platform` knows."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "cpu"


def machine_header(device: str | None = None) -> str:
    """'Machine: <cpu>, <cores> cores, load average ... at the start, torch <version> with <n> intra-op
    thread(s)[, GPU <name>]; <date>.'

    Torch is described only where the script has imported it (workflow.py times subprocesses and
    never does); call this after `torch.set_num_threads`, so that the thread count is the one used."""
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    parts = [f"{cpu_model()}, {os.cpu_count()} cores, load average {load} at the start"]
    torch = sys.modules.get("torch")
    if torch is not None:
        parts.append(f"torch {torch.__version__} with {torch.get_num_threads()} intra-op thread(s)")
        if device is not None and str(device).startswith("cuda"):
            parts.append(f"GPU {torch.cuda.get_device_name(device)}")
    return f"Machine: {', '.join(parts)}; {datetime.datetime.now().isoformat(timespec='minutes')}."


def synchronise(device) -> None:
    """Wait for queued GPU work, so that a wall-clock reading covers it; nothing on a CPU."""
    if str(device).startswith("cuda"):
        import torch

        torch.cuda.synchronize(device)


def interleaved_rounds(ways: list[str], repeats: int, measure: Callable[[str], Reading]) -> dict[str, list[Reading]]:
    """`measure(way)` for every way, `repeats` rounds; round r starts at way r (mod the number of
    ways), so that no way always runs first, when the caches are cold or the load has just changed."""
    readings: dict[str, list[Reading]] = {way: [] for way in ways}
    for repeat in range(repeats):
        shift = repeat % len(ways)
        for way in ways[shift:] + ways[:shift]:
            readings[way].append(measure(way))
    return readings


def median_readings(readings: dict[str, list[dict]]) -> dict[str, dict]:
    """Per way, the median of each figure over its rounds (`interleaved_rounds` of dict readings)."""
    return {way: {key: statistics.median(reading[key] for reading in values) for key in values[0]}
            for way, values in readings.items()}


def children_cpu() -> float:
    """User + system CPU seconds of all finished child processes so far: the difference of two
    readings around one `subprocess.run` is that child's CPU time."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def command_line() -> str:
    """How this script was run, relative to the repository root."""
    script = Path(sys.argv[0]).resolve()
    shown = script.relative_to(ROOT) if script.is_relative_to(ROOT) else script
    return shlex.join(["python", str(shown), *sys.argv[1:]])


def write_table(title: str, lines: list[str], out: str | os.PathLike) -> str:
    """Print '# title', the command that made it, and the table (markdown lines); save it at `out`."""
    table = "\n".join([f"# {title}", "", f"`{command_line()}`:", "", *lines]) + "\n"
    print(table)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(table)
    return table
