"""When grouping pays: the label sets of one image set as separate student jobs or as one population.

    python benchmarks/populations.py                 # CPU, IPC 1 and 10: about 14 minutes
    python benchmarks/populations.py --quick         # IPC 1, 40 epochs, one round: about 3 minutes

The workflow trains students one job per (image set, label set) by default (`student_populations:
per_label_set`); `per_image_set` trains every label set an experiment compares on one image set as one
population in one job. This script times both on real Fashion-MNIST (the Debian package's files, or
`--data-root`): random real images at each IPC and `--label-sets` label files (hard and noisy hard
labels: their content does not change the cost), 3 student seeds each, convnet-d3-w32, the default
config's protocol. Ways, each a set of fresh `labelworth evaluate-students` processes on the CPU:

* separate: one job per label set, two at a time with one thread each (what `snakemake --cores 2`
  runs with the default per_label_set);
* grouped, sequential engine, 1 or 2 threads: one job for all label sets (per_image_set);
* grouped, vectorised engine, 2 threads: the same job training all students in one torch.func pass.

Wall seconds are the makespan of the way's jobs (interpreter start, data loading, testing included);
CPU seconds their user+system time. Medians over `--repeats` rounds, the ways in a rotating order.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from labelworth.settings import StudentSettings, to_options

from common import interleaved_rounds, machine_header, median_readings, write_table

WAYS = ("separate", "grouped sequential 1 thread", "grouped sequential 2 threads", "grouped vectorised 2 threads")
SEEDS = (0, 1, 2)


def labelworth(*arguments: str) -> None:
    result = subprocess.run([sys.executable, "-m", "labelworth", *arguments], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"labelworth {' '.join(arguments)} failed:\n{result.stderr[-3000:]}")


def prepare_inputs(data_root: str, scratch: Path, images_per_class: list[int], label_sets: int) -> dict:
    """data/, and per IPC the random images and `label_sets` label files: IPC -> (images, [labels])."""
    labelworth("prepare-data", "--dataset", "fashion_mnist", "--data-root", data_root, "--out-dir", str(scratch / "data"))
    specs = ["hard"] + [f"noise{0.1 * index:.1f}" for index in range(1, label_sets)]
    inputs = {}
    for ipc in images_per_class:
        folder = scratch / f"random-ipc{ipc}"
        images = folder / "images.pt"
        labelworth("distill-images", "--image-set", f"random-ipc{ipc}", "--data-dir", str(scratch / "data"),
                   "--out", str(images), "--grid", str(folder / "grid.png"), "--device", "cpu")
        labels = []
        for spec in specs:
            labels.append(folder / f"{spec}.pt")
            labelworth("make-labels", "--images", str(images), "--label-spec", spec, "--out", str(labels[-1]),
                       "--device", "cpu")
        inputs[ipc] = (images, labels)
    return inputs


def student_job(images: Path, labels: list[Path], data_dir: Path, out: Path, epochs: int, engine: str,
                threads: int) -> list[str]:
    settings = StudentSettings(arch="convnet-d3-w32", lr=0.01, epochs=epochs, seeds=SEEDS,
                               eval_every=max(epochs // 2, 1), engine=engine)
    return [sys.executable, "-m", "labelworth", "evaluate-students", "--images", str(images), "--labels",
            *map(str, labels), "--data-dir", str(data_dir), "--out", str(out), "--options", *to_options(settings),
            "--threads", str(threads), "--device", "cpu"]


def run_jobs(commands: list[list[str]], at_once: int) -> dict:
    """Wall (makespan) and CPU seconds of `commands`, `at_once` of them running at a time."""
    usage_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    with ThreadPoolExecutor(at_once) as pool:
        results = list(pool.map(lambda command: subprocess.run(command, capture_output=True, text=True), commands))
    wall = time.perf_counter() - started
    usage_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    for result in results:
        if result.returncode != 0:
            raise SystemExit(f"{' '.join(result.args)} failed:\n{result.stderr[-3000:]}")
    cpu = (usage_after.ru_utime - usage_before.ru_utime) + (usage_after.ru_stime - usage_before.ru_stime)
    return {"wall": wall, "cpu": cpu}


def measure(way: str, images: Path, labels: list[Path], data_dir: Path, out_dir: Path, epochs: int) -> dict:
    if way == "separate":
        commands = [student_job(images, [label_file], data_dir, out_dir / f"{label_file.stem}.json", epochs,
                                "sequential", 1) for label_file in labels]
        return run_jobs(commands, at_once=2)
    _, engine, threads, _ = way.split()
    return run_jobs([student_job(images, labels, data_dir, out_dir / "population.json", epochs, engine,
                                 int(threads))], at_once=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default="auto", help="Fashion-MNIST's raw files (auto: the Debian package)")
    parser.add_argument("--images-per-class", type=int, nargs="*", default=[1, 10])
    parser.add_argument("--epochs", type=int, nargs="*", default=[200, 50], help="student epochs, one per IPC")
    parser.add_argument("--label-sets", type=int, default=5, help="label sets of the image set (label_swap has 5)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="IPC 1, 40 epochs, one round")
    parser.add_argument("--out", default="benchmarks/results/populations.md")
    args = parser.parse_args()
    if args.quick:
        args.images_per_class, args.epochs, args.repeats = [1], [40], 1
    if len(args.epochs) != len(args.images_per_class):
        parser.error("give one --epochs value per --images-per-class value")
    info = machine_header()
    started = time.time()
    rows = []
    with tempfile.TemporaryDirectory(prefix="labelworth-populations-bench-") as scratch:
        scratch = Path(scratch)
        inputs = prepare_inputs(args.data_root, scratch, args.images_per_class, args.label_sets)
        for ipc, epochs in zip(args.images_per_class, args.epochs):
            images, labels = inputs[ipc]
            readings = interleaved_rounds(list(WAYS), args.repeats,
                                          lambda way: measure(way, images, labels, scratch / "data", scratch, epochs))
            medians = median_readings(readings)
            print(f"IPC {ipc}:", medians, flush=True)
            rows.append((ipc, epochs, medians))

    lines = [
        f"{args.label_sets} label sets x {len(SEEDS)} student seeds of one image set (random real Fashion-MNIST "
        f"images), convnet-d3-w32, batch 256, eval at half and at the end; device cpu. Medians of {args.repeats} "
        f"round(s), ways interleaved. Wall: makespan of the way's processes; CPU: their user+system seconds. "
        f"Whole run {time.time() - started:.0f} s.",
        "",
        info,
        "",
        "| IPC | epochs | way | jobs | wall s | CPU s | speed-up vs separate |",
        "|---|---|---|---|---|---|---|",
    ]
    for ipc, epochs, medians in rows:
        for way in WAYS:
            jobs = args.label_sets if way == "separate" else 1
            value = medians[way]
            lines.append(f"| {ipc} | {epochs} | {way} | {jobs} | {value['wall']:.1f} | {value['cpu']:.1f} | "
                         f"{medians['separate']['wall'] / value['wall']:.2f}x |")
    write_table("Student populations: one job per label set, or one per image set", lines, args.out)


if __name__ == "__main__":
    main()
