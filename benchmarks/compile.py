"""What a student protocol's `compile` (torch.compile of each student) costs, saves, and from how many epochs it pays.

    python benchmarks/compile.py                 # CPU, 1 thread: about 3 minutes

One student of `--arch` trained by `labelworth.students.train_students` (sequential engine) on the
random Fashion-MNIST-shaped task of benchmarks/students.py, eager and compiled, each for a short and
a long run of epochs, every reading in a fresh process (the workflow starts one process per job).
The difference of the two runs gives the steady cost of an epoch; what is left of the short run is
the one-off cost (the compile, the first calls); the break-even is the number of epochs after which
the compiled student has caught up. Inductor keeps compiled kernels in an on-disk cache
(TORCHINDUCTOR_CACHE_DIR), so a compile is dearer on a cold cache (the first job on a machine) than
on a warm one (every later job of the same network): the compiled runs use a cache filled by one
untimed run, and a separate short run on an empty cache gives the cold one-off cost. Medians over
`--repeats` rounds, the cases interleaved.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import interleaved_rounds, machine_header, write_table

WAYS = ("eager", "compiled", "compiled-cold")


def child(ipc: int, way: str, epochs: int, arch: str, threads: int) -> None:
    """Train one student and print the wall seconds of `train_students` alone."""
    import torch

    from labelworth.settings import StudentSettings
    from labelworth.students import train_students
    from students import random_task

    torch.set_num_threads(threads)
    images, targets, test = random_task(ipc, torch.device("cpu"))
    settings = StudentSettings(arch=arch, optimizer="sgd", lr=0.01, epochs=epochs, seeds=(0,), batch_size=256,
                               eval_every=epochs, engine="sequential", compile=way != "eager")
    started = time.perf_counter()
    train_students(images, targets, test, settings)
    print(time.perf_counter() - started)


def reading(ipc: int, way: str, epochs: int, args, cache: Path) -> float:
    """Seconds of one child; `compiled-cold` gets an empty inductor cache, the others `cache`."""
    if way == "compiled-cold":
        cache = Path(tempfile.mkdtemp(dir=cache.parent))
    result = subprocess.run([sys.executable, __file__, "--child", str(ipc), way, str(epochs), "--arch", args.arch,
                             "--threads", str(args.threads)], capture_output=True, text=True,
                            env={**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(cache)})
    if result.returncode != 0:
        raise SystemExit(f"child {ipc} {way} {epochs} failed:\n{result.stderr[-3000:]}")
    return float(result.stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=3, metavar=("IPC", "WAY", "EPOCHS"), help=argparse.SUPPRESS)
    parser.add_argument("--arch", default="convnet-d3-w32")
    parser.add_argument("--images-per-class", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--epochs", type=int, nargs="+", default=[20, 220, 4, 44, 2, 12],
                        help="a short and a long run per --images-per-class entry")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--out", default="benchmarks/results/compile.md")
    args = parser.parse_args()
    if args.child:
        child(int(args.child[0]), args.child[1], int(args.child[2]), args.arch, args.threads)
        return
    if len(args.epochs) != 2 * len(args.images_per_class):
        parser.error("give a short and a long --epochs value per --images-per-class entry")
    info = machine_header()
    started = time.time()
    rows = []
    scratch = Path(tempfile.mkdtemp(prefix="labelworth-compile-bench-"))
    warm_cache = scratch / "warm"
    for index, ipc in enumerate(args.images_per_class):
        short, long = args.epochs[2 * index : 2 * index + 2]
        reading(ipc, "compiled", short, args, warm_cache)  # fills the warm cache; not timed
        cases = [f"eager {short}", f"eager {long}", f"compiled {short}", f"compiled {long}", f"compiled-cold {short}"]
        readings = interleaved_rounds(
            cases, args.repeats, lambda case: reading(ipc, case.split()[0], int(case.split()[1]), args, warm_cache))
        seconds = {case: statistics.median(values) for case, values in readings.items()}
        fit = {}
        for way in ("eager", "compiled"):
            per_epoch = (seconds[f"{way} {long}"] - seconds[f"{way} {short}"]) / (long - short)
            fit[way] = (per_epoch, seconds[f"{way} {short}"] - short * per_epoch)
        (eager_epoch, eager_once), (compiled_epoch, warm_once) = fit["eager"], fit["compiled"]
        cold_once = seconds[f"compiled-cold {short}"] - short * compiled_epoch
        saved = eager_epoch - compiled_epoch
        break_even = [(once - eager_once) / saved if saved > 0 else float("inf") for once in (warm_once, cold_once)]
        rows.append((ipc, eager_epoch, compiled_epoch, eager_once, warm_once, cold_once, *break_even))
        print(ipc, seconds, flush=True)

    lines = [
        f"One student of {args.arch}, sequential engine, random Fashion-MNIST-shaped task (10 x IPC images, soft "
        f"targets, DSA, batch 256), device cpu with {args.threads} thread(s); each reading a fresh process, "
        f"medians of {args.repeats} round(s). Epoch cost from the runs of "
        + ", ".join(f"{args.epochs[2 * i]} and {args.epochs[2 * i + 1]} epochs at IPC {ipc}"
                    for i, ipc in enumerate(args.images_per_class))
        + f". Whole run {time.time() - started:.0f} s.",
        "",
        info,
        "",
        "| IPC | eager ms/epoch | compiled ms/epoch | speed-up per epoch | eager one-off s | "
        "compiled one-off s, warm / cold cache | compile pays after (epochs), warm / cold |",
        "|---|---|---|---|---|---|---|",
    ]
    for ipc, eager_epoch, compiled_epoch, eager_once, warm_once, cold_once, warm_even, cold_even in rows:
        lines.append(f"| {ipc} | {1e3 * eager_epoch:.1f} | {1e3 * compiled_epoch:.1f} | "
                     f"{eager_epoch / compiled_epoch:.2f}x | {eager_once:.1f} | {warm_once:.1f} / {cold_once:.1f} | "
                     f"{warm_even:.0f} / {cold_even:.0f} |")
    shutil.rmtree(scratch)
    write_table("torch.compile of a student", lines, args.out)


if __name__ == "__main__":
    main()
