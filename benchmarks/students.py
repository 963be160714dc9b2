"""Student-training throughput: the reference way, our two engines, and the compute floor.

    python benchmarks/students.py                    # CPU, about 5 minutes on 2 shared cores
    python benchmarks/students.py --device cuda --channels-last --bf16

Every timing trains S students of `--arch` on 10 x IPC random 1x28x28 images (10 classes, soft targets,
Fashion-MNIST's shape and DSA strategy) for a few epochs, with the student protocol (SGD momentum 0.9,
weight decay 5e-4, StepLR, batch 256), and ends with a test pass over 10 images so that testing costs
next to nothing. Ways:

* reference:  the reference code's way (DC/DSA/MTT `evaluate_synset`): a DataLoader over a
  TensorDataset, one DSA op per batch from the global RNG with per-sample parameters whose affine
  matrices are built in a Python list, the loss and a numpy accuracy read back every batch. It lives
  here, not in the package.
* sequential: `labelworth.students.train_students` with a StudentSettings of `engine="sequential"`.
* vectorised: `labelworth.students.train_students` with a StudentSettings of `engine="vectorised"`.
* floor:      a bare forward + backward + SGD step of the same network on the same batch shapes: no
  augmentation, no data handling, no read-back.

The one-by-one ways (reference, sequential, floor) cost S times one student by construction, but are
timed on all S students like the vectorised engine. Each cell is the median over `--repeats` rounds;
within a round the ways run back to back (in a rotating order), so ratios compare like with like.
Times per epoch are wall time / epochs (one-off costs included), extrapolated to `--report-epochs`.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from labelworth.augment import BRIGHTNESS, CONTRAST, PROB_FLIP, RATIO_ROTATE_DEG, RATIO_SCALE, SATURATION
from labelworth.augment import crop_shift_limit, cutout_side
from labelworth.data import Split
from labelworth.models import build_model
from labelworth.settings import StudentSettings
from labelworth.specs import dataset_spec
from labelworth.students import make_optimizer, train_students

from common import interleaved_rounds, machine_header, synchronise, write_table

WAYS = ("reference", "sequential", "vectorised", "floor")


# --------------------------------------------------------------------------------------------------
# The reference way


def reference_dsa(images: torch.Tensor, strategy: str) -> torch.Tensor:
    """DSA as the reference's `DiffAugment(seed=-1)` does it: one op per batch from the global RNG,
    parameters per sample, affine matrices assembled sample by sample in Python."""
    ops = strategy.split("_")
    op = ops[torch.randint(0, len(ops), size=(1,)).item()]
    n, _, height, width = images.shape

    def per_sample_uniform():
        return torch.rand(n, 1, 1, 1, dtype=images.dtype, device=images.device)

    if op == "color":
        x = images + (per_sample_uniform() - 0.5) * BRIGHTNESS
        mean = x.mean(dim=1, keepdim=True)
        x = (x - mean) * (per_sample_uniform() * SATURATION) + mean
        mean = x.mean(dim=[1, 2, 3], keepdim=True)
        return (x - mean) * (per_sample_uniform() + CONTRAST) + mean
    if op == "flip":
        return torch.where(per_sample_uniform() < PROB_FLIP, images.flip(3), images)
    if op == "crop":
        shift = crop_shift_limit(height)
        dy = torch.randint(-shift, shift + 1, size=[n, 1, 1], device=images.device)
        dx = torch.randint(-shift, shift + 1, size=[n, 1, 1], device=images.device)
        grid_b, grid_y, grid_x = torch.meshgrid(torch.arange(n), torch.arange(height), torch.arange(width),
                                                indexing="ij")
        grid_y = torch.clamp(grid_y.to(images.device) + dy + 1, 0, height + 1)
        grid_x = torch.clamp(grid_x.to(images.device) + dx + 1, 0, width + 1)
        padded = F.pad(images, [1, 1, 1, 1]).permute(0, 2, 3, 1).contiguous()
        return padded[grid_b, grid_y, grid_x].permute(0, 3, 1, 2)
    if op == "cutout":
        side = cutout_side(height)
        cy = torch.randint(0, height + (1 - side % 2), size=[n, 1, 1], device=images.device)
        cx = torch.randint(0, width + (1 - side % 2), size=[n, 1, 1], device=images.device)
        grid_b, grid_y, grid_x = torch.meshgrid(torch.arange(n), torch.arange(side), torch.arange(side), indexing="ij")
        grid_y = torch.clamp(grid_y.to(images.device) + cy - side // 2, min=0, max=height - 1)
        grid_x = torch.clamp(grid_x.to(images.device) + cx - side // 2, min=0, max=width - 1)
        mask = torch.ones(n, height, width, dtype=images.dtype, device=images.device)
        mask[grid_b, grid_y, grid_x] = 0
        return images * mask.unsqueeze(1)
    if op == "scale":
        sx = torch.rand(n) * (RATIO_SCALE - 1.0 / RATIO_SCALE) + 1.0 / RATIO_SCALE
        sy = torch.rand(n) * (RATIO_SCALE - 1.0 / RATIO_SCALE) + 1.0 / RATIO_SCALE
        theta = [[[sx[i], 0, 0], [0, sy[i], 0]] for i in range(n)]
    else:  # rotate
        angle = (torch.rand(n) - 0.5) * 2 * RATIO_ROTATE_DEG / 180 * float(np.pi)
        theta = [[[torch.cos(angle[i]), torch.sin(-angle[i]), 0], [torch.sin(angle[i]), torch.cos(angle[i]), 0]]
                 for i in range(n)]
    theta = torch.tensor(theta, dtype=torch.float)
    grid = F.affine_grid(theta, list(images.shape), align_corners=True).to(images.device)
    return F.grid_sample(images, grid, align_corners=True)


def reference_epoch(model, optimizer, loader: DataLoader, strategy: str) -> tuple[float, float]:
    """One training epoch the reference way; returns (mean loss, accuracy) read back batch by batch."""
    model.train()
    loss_sum = correct = count = 0.0
    for images, targets in loader:
        images = reference_dsa(images, strategy)
        output = model(images)
        loss = F.cross_entropy(output, targets)
        hard = targets.argmax(1) if targets.dim() == 2 else targets
        correct += np.sum(np.equal(np.argmax(output.cpu().data.numpy(), axis=-1), hard.cpu().data.numpy()))
        loss_sum += loss.item() * len(images)
        count += len(images)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return loss_sum / count, correct / count


def reference_students(images, targets, test: Split, arch, seeds, epochs, lr, optimizer, batch_size) -> list[float]:
    """Test accuracy of one student per seed, trained and tested the reference way."""
    loader = DataLoader(TensorDataset(images, targets), batch_size=batch_size, shuffle=True, num_workers=0)
    accuracies = []
    for seed in seeds:
        torch.manual_seed(seed)
        model = build_model(arch, test.spec).to(images.device)
        opt, schedule = make_optimizer(model.parameters(), StudentSettings(arch=arch, optimizer=optimizer, lr=lr, epochs=epochs))
        for _ in range(epochs):
            reference_epoch(model, opt, loader, test.spec.dsa_strategy)
            schedule.step()
        model.eval()
        with torch.no_grad():
            accuracies.append((model(test.images).argmax(1) == test.labels).float().mean().item())
    return accuracies


# --------------------------------------------------------------------------------------------------
# The compute floor


def floor_students(images, targets, test: Split, arch, seeds, epochs, lr, optimizer, batch_size) -> None:
    """Forward, backward and optimiser step of each student on the batch shapes of its epochs, on
    fixed tensors: what training costs with augmentation and data handling taken away."""
    batch_sizes = [len(batch) for batch in torch.arange(len(images)).split(batch_size)]
    for seed in seeds:
        torch.manual_seed(seed)
        model = build_model(arch, test.spec).to(images.device)
        opt, _ = make_optimizer(model.parameters(), StudentSettings(arch=arch, optimizer=optimizer, lr=lr, epochs=epochs))
        for _ in range(epochs):
            for size in batch_sizes:
                loss = F.cross_entropy(model(images[:size]), targets[:size])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()


# --------------------------------------------------------------------------------------------------
# Measuring


def time_way(way: str, images, targets, test, args, seeds, epochs, device) -> float:
    """Wall seconds of one way training `seeds` for `epochs` epochs."""
    common = (images, targets, test, args.arch, seeds, epochs, args.lr, "sgd", args.batch_size)
    if way in ("sequential", "vectorised"):  # built before the clock starts, like `common`
        settings = StudentSettings(arch=args.arch, optimizer="sgd", lr=args.lr, epochs=epochs, seeds=tuple(seeds),
                                   batch_size=args.batch_size, eval_every=epochs, engine=way,
                                   channels_last=args.channels_last, bf16=args.bf16)
    synchronise(device)
    start = time.perf_counter()
    if way == "reference":
        reference_students(*common)
    elif way == "floor":
        floor_students(*common)
    else:
        train_students(images, targets, test, settings)
    synchronise(device)
    return time.perf_counter() - start


def random_task(images_per_class: int, device: torch.device, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, Split]:
    """Fashion-MNIST-shaped images, soft targets and a 10-image test split, all random."""
    spec = dataset_spec("fashion_mnist")
    generator = torch.Generator().manual_seed(seed)
    count = spec.num_classes * images_per_class
    images = torch.randn(count, spec.channels, spec.image_size, spec.image_size, generator=generator)
    targets = torch.softmax(torch.randn(count, spec.num_classes, generator=generator), 1)
    test = Split(torch.randn(10, spec.channels, spec.image_size, spec.image_size, generator=generator).to(device),
                 torch.arange(10).to(device), list(spec.class_names), spec)
    return images.to(device), targets.to(device), test


def ratio(value: float) -> str:
    """'1.23x', or '-' where the way it compares with was not run."""
    return "-" if math.isnan(value) else f"{value:.2f}x"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="convnet-d3-w32")
    parser.add_argument("--students", type=int, nargs="+", default=[1, 5, 10])
    parser.add_argument("--images-per-class", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--epochs", type=int, nargs="+", default=[40, 8, 2],
                        help="epochs per timing, one per --images-per-class entry")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ways", nargs="+", default=list(WAYS), choices=WAYS)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--report-epochs", type=int, default=300, help="epochs a student is extrapolated to")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (1: steadier on a shared machine)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--channels-last", action="store_true", help="our engines' channels_last option")
    parser.add_argument("--bf16", action="store_true", help="our engines' bf16 option")
    parser.add_argument("--out", default="benchmarks/results/students.md")
    args = parser.parse_args()
    if len(args.epochs) != len(args.images_per_class):
        parser.error("give one --epochs entry per --images-per-class entry")
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    info = machine_header(device)
    started = time.time()

    # Warm-up: first calls pay for allocator growth and kernel selection.
    images, targets, test = random_task(1, device)
    for way in args.ways:
        time_way(way, images, targets, test, args, [0], 1, device)

    rows = []
    for ipc, epochs in zip(args.images_per_class, args.epochs):
        images, targets, test = random_task(ipc, device)
        for count in args.students:
            seeds = list(range(count))
            seconds = interleaved_rounds(
                args.ways, args.repeats,
                lambda way: time_way(way, images, targets, test, args, seeds, epochs, device))
            medians = {way: statistics.median(values) for way, values in seconds.items()}
            for way in args.ways:
                per_student_epoch = medians[way] / (count * epochs)
                rows.append({"ipc": ipc, "students": count, "way": way, "epochs": epochs,
                             "per_student_epoch": per_student_epoch,
                             "vs_reference": medians.get("reference", float("nan")) / medians[way],
                             "vs_floor": medians[way] / medians.get("floor", float("nan"))})
                print(f"IPC {ipc} S {count} {way}: {1e3 * per_student_epoch:.2f} ms per student-epoch", flush=True)

    options = "".join(f", {name}" for name, on in (("channels_last", args.channels_last), ("bf16", args.bf16)) if on)
    lines = [
        f"Student training throughput: {args.arch}, random 1x28x28 images (10 x IPC, 10 classes, soft targets), "
        f"batch {args.batch_size}, SGD + StepLR, DSA `{dataset_spec('fashion_mnist').dsa_strategy}`; "
        f"device {device}{options}. Medians of {args.repeats} rounds; epochs per timing: "
        + ", ".join(f"{e} at IPC {i}" for i, e in zip(args.images_per_class, args.epochs))
        + f"; per-student times extrapolated to {args.report_epochs} epochs. Whole run {time.time() - started:.0f} s.",
        "",
        info,
        "",
        "| IPC | S | way | ms per student-epoch | s per student | students/s | speed-up vs reference | time vs floor |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        per_student = row["per_student_epoch"] * args.report_epochs
        lines.append(f"| {row['ipc']} | {row['students']} | {row['way']} | {1e3 * row['per_student_epoch']:.2f} | "
                     f"{per_student:.2f} | {1 / per_student:.3f} | {ratio(row['vs_reference'])} | "
                     f"{ratio(row['vs_floor'])} |")
    lines += ["", "Targets (S = 5):"]
    targets_met = [("vectorised >= 2x reference at IPC 1", "vs_reference", 1, lambda value: value >= 2.0),
                   ("vectorised >= 1.3x reference at IPC 10", "vs_reference", 10, lambda value: value >= 1.3)]
    targets_met += [(f"vectorised within 1.3x of the floor at IPC {ipc}", "vs_floor", ipc, lambda value: value <= 1.3)
                    for ipc in args.images_per_class]
    for text, key, ipc, met in targets_met:
        found = [row[key] for row in rows if row["way"] == "vectorised" and row["students"] == 5 and row["ipc"] == ipc]
        if found and not math.isnan(found[0]):
            lines.append(f"- {text}: {found[0]:.2f}x, {'met' if met(found[0]) else 'not met'}")
    write_table("Student training throughput", lines, args.out)


if __name__ == "__main__":
    main()
