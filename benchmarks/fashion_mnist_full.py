"""The expected cost of configs/fashion_mnist_full.yaml on this machine, stage by stage, from a slice.

    python benchmarks/fashion_mnist_full.py                  # CPU, a few minutes
    python benchmarks/fashion_mnist_full.py --device cuda

The slice: one expert epoch on `--images` Fashion-MNIST-shaped images (extrapolated to 60000), and
for each benchmark IPC a few student epochs and one test pass, all with the config's own settings
(width-128 ConvNet, DSA, batch 256). The expected cost multiplies each by what the config asks for:
every expert epoch of every trained seed, and for every population (IPC x label set) its students'
epochs and test passes. Synthesis is not in this config (random images only).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from pathlib import Path

import torch
import yaml

from common import ROOT, machine_header, synchronise, write_table
from labelworth.data import Split
from labelworth.models import build_model
from labelworth.config import load_config
from labelworth.plan import student_runs, trained_epochs
from labelworth.settings import StudentSettings
from labelworth.specs import dataset_spec, parse_image_set
from labelworth.students import train_students
from labelworth.training import predict_logits, train_epoch

FULL_TRAIN, FULL_TEST = 60000, 10000


def expert_epoch_seconds(arch: str, images: int, device, repeats: int) -> float:
    spec = dataset_spec("fashion_mnist")
    data = torch.randn(images, 1, 28, 28, device=device)
    labels = torch.randint(0, 10, (images,), device=device)
    times = []
    for _ in range(repeats):
        torch.manual_seed(0)
        model = build_model(arch, spec).to(device)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
        synchronise(device)
        start = time.perf_counter()
        train_epoch(model, optimizer, data, labels, 256, spec.dsa_strategy, torch.Generator().manual_seed(0))
        synchronise(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * FULL_TRAIN / images


def student_costs(settings: StudentSettings, ipc: int, epochs: int, test_images: int, device) -> tuple[float, float]:
    """(seconds per student epoch at `ipc`, seconds per full test pass) with the protocol's settings."""
    spec = dataset_spec("fashion_mnist")
    images = torch.randn(10 * ipc, 1, 28, 28, device=device)
    targets = torch.softmax(torch.randn(10 * ipc, 10, device=device), 1)
    test = Split(torch.randn(test_images, 1, 28, 28, device=device), torch.randint(0, 10, (test_images,), device=device),
                 list(spec.class_names), spec)
    short = dataclasses.replace(settings, epochs=epochs, eval_every=epochs, seeds=(0,))
    synchronise(device)
    start = time.perf_counter()
    train_students(images, targets, test, short, seeds=[0])
    synchronise(device)
    total = time.perf_counter() - start
    model = build_model(settings.arch, spec).to(device)
    start = time.perf_counter()
    predict_logits(model, test.images)
    synchronise(device)
    test_pass = time.perf_counter() - start
    return (total - test_pass) / epochs, test_pass * FULL_TEST / test_images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--images", type=int, default=2560, help="images of the timed expert epoch")
    parser.add_argument("--student-epochs", type=int, default=5)
    parser.add_argument("--test-images", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "fashion_mnist_full.md"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = load_config(yaml.safe_load((ROOT / "configs" / "fashion_mnist_full.yaml").read_text()))
    started = time.perf_counter()
    header = machine_header(args.device)

    lines = ["| stage | what the config asks | measured on the slice | expected |", "|---|---|---|---|"]
    total = 0.0
    for (run, seed), epochs in trained_epochs(config).items():
        per_epoch = expert_epoch_seconds(config.trained_runs[run].arch, args.images, args.device, 2)
        cost = per_epoch * epochs
        total += cost
        lines.append(f"| expert {run} seed {seed} | {epochs} epochs of 60000 images | {per_epoch:.1f} s/epoch | "
                     f"{cost / 3600:.2f} h |")
    populations = {}
    for experiment in config.enabled_experiments():
        for image_set, labels, student in student_runs(config, experiment, {1: 2, 10: 4, 50: 12}):
            populations.setdefault((parse_image_set(image_set).images_per_class, student), set()).add(labels)
    for (ipc, student), label_sets in sorted(populations.items()):
        settings = config.student(student, ipc)
        per_epoch, test_pass = student_costs(settings, ipc, args.student_epochs, args.test_images, args.device)
        tests = settings.epochs // settings.eval_every + (settings.epochs % settings.eval_every != 0)
        students = len(settings.seeds) * len(label_sets)
        cost = students * (settings.epochs * per_epoch + tests * test_pass)
        total += cost
        lines.append(f"| students IPC {ipc} ({student}) | {len(label_sets)} label sets x {len(settings.seeds)} "
                     f"students x {settings.epochs} epochs, {tests} tests each | {per_epoch:.2f} s/epoch, "
                     f"{test_pass:.1f} s/test | {cost / 3600:.2f} h |")
    lines.append(f"| **total** | one job at a time | | **{total / 3600:.1f} h** |")
    text = (f"Expected cost of `configs/fashion_mnist_full.yaml` on device {args.device}, from a slice "
            f"(expert epoch on {args.images} images scaled to 60000; {args.student_epochs} student epochs and a "
            f"{args.test_images}-image test pass per IPC, scaled to 10000). Whole run "
            f"{time.perf_counter() - started:.0f} s.")
    write_table("Paper-faithful Fashion-MNIST: expected cost per stage", [text, "", header, "", *lines], args.out)


if __name__ == "__main__":
    main()
