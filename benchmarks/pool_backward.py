"""What the ConvNet's 2x2 average pool costs in training, taps or kernel, and that both train the same weights.

    python benchmarks/pool_backward.py --data-dir results/fashion_mnist/data      # about 2 minutes

`models.AvgPool2x2` adds the four taps of each window as elementwise operations, which is faster
than PyTorch's CPU kernel in a test pass. Under plain autograd, though, each tap is a strided slice
whose backward pass allocates and zeroes a copy of the whole input. The workflow's autograd function
keeps the taps forward and spreads grad / 4 back in one pass. This times one training epoch each
way (medians over rounds in a rotating order) for:

* an IPC-50 student (500 images, one thread, as a student job runs, with its malloc settings);
* 20 batches of an expert epoch (5,120 training images, two threads, as an expert job runs);

and checks, after the timed rounds, that every way ends on bitwise the same weights.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from unittest import mock

import torch

from labelworth import models
from labelworth.cli import keep_freed_memory
from labelworth.data import load_split
from labelworth.distill.random import select_random
from labelworth.models import build_model
from labelworth.settings import StudentSettings
from labelworth.students import make_optimizer
from labelworth.training import train_epoch

from common import ROOT, interleaved_rounds, machine_header, write_table

ARCH = "convnet-d3-w32"
TAPS = "taps, autograd through each strided slice"
KERNEL = "PyTorch's kernel forward and backward"
WORKFLOW = "workflow: taps forward, one-pass backward"
WAYS = {TAPS: models._taps, KERNEL: models._kernel, WORKFLOW: models._TapPool.apply}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="results/fashion_mnist/data", help="a prepare-data folder")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "pool_backward.md"))
    args = parser.parse_args()
    keep_freed_memory()  # as every job does
    train = load_split(args.data_dir, "train")
    spec = train.spec
    chosen = select_random(train.labels, 50, spec.num_classes, seed=42)
    cases = {  # case -> (images, labels, threads)
        "IPC-50 student epoch, 1 thread": (train.images[chosen], train.labels[chosen], 1),
        "20 expert batches of 256, 2 threads": (train.images[: 20 * 256], train.labels[: 20 * 256], 2),
    }
    torch.manual_seed(0)
    initial = build_model(ARCH, spec)
    settings = StudentSettings(arch=ARCH, lr=0.01, epochs=200, seeds=(0,))

    def trained(case: str, way: str, epochs: int) -> torch.nn.Module:
        images, labels, threads = cases[case]
        torch.set_num_threads(threads)
        model = copy.deepcopy(initial)
        opt, _ = make_optimizer(model.parameters(), settings)
        generator = torch.Generator().manual_seed(0)
        with mock.patch.object(models._TapPool, "apply", WAYS[way]):
            for _ in range(epochs):
                train_epoch(model, opt, images, labels, 256, spec.dsa_strategy, generator)
        return model

    lines = [machine_header(), "", f"{ARCH}, SGD as a student, DSA, batches of 256; medians of {args.repeats} rounds.",
             "", "| case | way | seconds per epoch | vs taps | bitwise the same weights as the taps after 3 epochs |",
             "|---|---|---|---|---|"]
    for case in cases:
        def measure(way: str) -> float:
            started = time.perf_counter()
            trained(case, way, 1)
            return time.perf_counter() - started

        readings = interleaved_rounds(list(WAYS), args.repeats, measure)
        taps = statistics.median(readings[TAPS])
        weights = {way: trained(case, way, 3).state_dict() for way in WAYS}
        for way in WAYS:
            seconds = statistics.median(readings[way])
            same = all(torch.equal(weights[TAPS][key], weights[way][key]) for key in weights[TAPS])
            lines.append(f"| {case} | {way} | {seconds:.3f} | {taps / seconds:.2f}x | {'' if way == TAPS else same} |")
    write_table("The ConvNet's pool in training", lines, args.out)


if __name__ == "__main__":
    main()
