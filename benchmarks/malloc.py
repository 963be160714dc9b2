"""What `labelworth.cli.keep_freed_memory()` buys: CLI jobs timed with and without the mallopt call.

    python benchmarks/malloc.py --results R          # CPU: 2.5 min of CPU time, 1 thread per job
    python benchmarks/malloc.py --results R --quick  # IPC 1 students, 20 epochs, one round: 30 s

R is a results/<dataset> folder of a finished run of Fashion-MNIST (data/, images/random-ipc{1,10}/,
labels/random-ipc{1,10}/hard.pt). By default glibc serves every block over 128 KiB-32 MiB by a fresh
mmap and unmaps it when it is freed, so each training step faults in (and the kernel zeroes) pages for
its tensors again; the CLI's first act is a mallopt call that keeps freed memory for reuse. Cases:

* students IPC n: `labelworth evaluate-students` of 1 student, 200 epochs, eval every 100, on
  random-ipc{n} with hard labels, convnet-d3-w32, --threads 1.
* expert epoch: `labelworth train-expert`, 1 epoch of convnet-d3-w32 on the first `--expert-images`
  training images (and 1000 test images), --threads 1, into a fresh folder.

Each reading is one fresh process (the setting is per process) started through the same small
wrapper, which replaces `keep_freed_memory` by a no-op for "off" and calls `labelworth.cli.main`;
wall seconds from the parent's clock, user and system CPU seconds from getrusage of the finished
child, peak resident set from the child's /proc/self/status. Medians over `--repeats` rounds, on and
off alternating in a rotating order.
"""

from __future__ import annotations

import argparse
import itertools
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import interleaved_rounds, machine_header, median_readings, write_table

# The child: `python -c CHILD on|off <labelworth arguments>`.
CHILD = """
import sys
import labelworth.cli as cli
if sys.argv[1] == "off":
    cli.keep_freed_memory = lambda: False  # every job before the call was added
try:
    code = cli.main(sys.argv[2:])
finally:
    status = open("/proc/self/status").read().splitlines()
    print("peak-resident-kb", [line for line in status if line.startswith("VmHWM")][0].split()[1], file=sys.stderr)
sys.exit(code)
"""

SETTINGS = ("on", "off")


def children_rusage() -> tuple[float, float]:
    """(user, system) CPU seconds of all finished child processes so far; differences of two readings
    around one `subprocess.run` are that child's CPU time."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime, usage.ru_stime


def run_job(setting: str, arguments: list[str]) -> dict:
    """Wall, user and system seconds and peak resident MB of one `labelworth` job with `setting`."""
    user_before, system_before = children_rusage()
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", CHILD, setting, *arguments], capture_output=True, text=True)
    wall = time.perf_counter() - started
    user_after, system_after = children_rusage()
    if result.returncode != 0:
        raise SystemExit(f"labelworth {' '.join(arguments)} failed:\n{result.stderr[-3000:]}")
    peak_kb = int(result.stderr.strip().splitlines()[-1].split()[1])
    user, system = user_after - user_before, system_after - system_before
    return {"wall": wall, "user": user, "system": system, "cpu": user + system, "peak_mb": peak_kb / 1024}


def expert_subset(data_dir: Path, train_images: int, test_images: int, out_dir: Path) -> None:
    """A data folder holding the first images of `data_dir`'s splits, in prepare_data's format."""
    from labelworth import io

    for split, count in (("train", train_images), ("test", test_images)):
        content = io.load_tensors(data_dir / f"{split}.pt")
        meta = {key: value for key, value in content["meta"].items() if key != io.CHECKSUM_KEY}
        io.save_tensors(out_dir / f"{split}.pt",
                        {"images": content["images"][:count], "labels": content["labels"][:count]}, meta)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path("results/fashion_mnist"),
                        help="results/<dataset> of a finished Fashion-MNIST run")
    parser.add_argument("--images-per-class", type=int, nargs="*", default=[1, 10])
    parser.add_argument("--student-epochs", type=int, default=200)
    parser.add_argument("--expert-images", type=int, default=6000, help="training images of the expert epoch (0: skip)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="students at IPC 1 for 20 epochs, one round")
    parser.add_argument("--out", default="benchmarks/results/malloc.md")
    args = parser.parse_args()
    if args.quick:
        args.images_per_class, args.student_epochs, args.expert_images, args.repeats = [1], 20, 0, 1
    info = machine_header()
    started = time.time()
    data_dir = args.results / "data"

    rows = []
    with tempfile.TemporaryDirectory(prefix="labelworth-malloc-bench-") as scratch:
        scratch = Path(scratch)
        cases = []
        for ipc in args.images_per_class:
            student = ["evaluate-students", "--images", str(args.results / f"images/random-ipc{ipc}/images.pt"),
                       "--labels", str(args.results / f"labels/random-ipc{ipc}/hard.pt"),
                       "--data-dir", str(data_dir), "--out", str(scratch / "students.json"),
                       "--options", "arch=convnet-d3-w32", "seeds=0", f"epochs={args.student_epochs}", "lr=0.01",
                       f"eval_every={args.student_epochs // 2 or 1}", "--threads", "1", "--device", "cpu"]
            cases.append((f"students IPC {ipc} ({args.student_epochs} epochs)", lambda student=student: student))
        if args.expert_images:
            expert_data = scratch / "expert-data"
            expert_subset(data_dir, args.expert_images, 1000, expert_data)
            runs = itertools.count()

            def expert_job() -> list[str]:
                folder = scratch / f"expert-{next(runs)}"  # a fresh folder: an existing one would resume
                return ["train-expert", "--data-dir", str(expert_data), "--options", "arch=convnet-d3-w32", "lr=0.01",
                        "epochs=1", "seeds=0", "--checkpoint-dir", str(folder / "checkpoints"),
                        "--metrics", str(folder / "metrics.csv"), "--work-dir", str(folder / "work"),
                        "--threads", "1", "--device", "cpu"]

            cases.append((f"expert epoch ({args.expert_images} images)", expert_job))

        for name, job in cases:
            readings = interleaved_rounds(list(SETTINGS), args.repeats, lambda setting: run_job(setting, job()))
            medians = median_readings(readings)
            rows.append((name, medians))
            print(name, medians, flush=True)

    lines = [
        f"CLI jobs with (`on`, the CLI's default) and without (`off`) `labelworth.cli.keep_freed_memory()`, "
        f"device cpu, --threads 1; each reading a fresh process, medians of {args.repeats} rounds, "
        f"on and off interleaved. Seconds are the whole job (interpreter start and data loading included); "
        f"user+sys is the job's CPU time, the ratio to trust when other jobs share the cores. "
        f"Whole run {time.time() - started:.0f} s.",
        "",
        info,
        "",
        "| job | malloc | wall s | user s | sys s | peak RSS MB | wall off/on | user+sys off/on | sys off/on |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, medians in rows:
        on, off = medians["on"], medians["off"]
        for setting in SETTINGS:
            value = medians[setting]
            ratios = (" | ".join(f"{off[key] / on[key]:.2f}x" for key in ("wall", "cpu", "system"))
                      if setting == "on" else " | | ")
            lines.append(f"| {name} | {setting} | {value['wall']:.1f} | {value['user']:.1f} | {value['system']:.2f} | "
                         f"{value['peak_mb']:.0f} | {ratios} |")
    write_table("keep_freed_memory: malloc that keeps freed memory", lines, args.out)


if __name__ == "__main__":
    main()
