"""Sweep the soft-label expert epoch per images-per-class, to choose `benchmark.soft_labels[].expert_epoch`.

Trains one expert (or reuses its checkpoints), then for every IPC and expert epoch trains a small
population of students on the same random real images with that epoch's soft labels, plus hard
labels as the reference. Prints a markdown table (mean best test accuracy over students, %) and saves
it under benchmarks/results/. This is the paper's `tune_start` run (the expert-epoch search) as a script;
the analyses issue turns it into a workflow experiment.

    python benchmarks/tune_expert_epoch.py --raw-root /usr/share/datasets/fashion-mnist --device cuda
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from labelworth.data import load_split, prepare_data
from labelworth.distill.random import select_random
from labelworth.experts import load_expert, train_expert
from labelworth.specs import checkpoint_name
from labelworth.labels import hard_labels, soft_labels
from labelworth.resume import ExpertFiles
from labelworth.settings import ExpertSettings, StudentSettings
from labelworth.students import evaluate_students
from labelworth.training import predict_logits, resolve_device

from common import machine_header, write_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw-root", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--work", default="work/tune_expert_epoch")
    parser.add_argument("--arch", default="convnet-d3-w32")
    parser.add_argument("--expert-lr", type=float, default=0.01)
    parser.add_argument("--expert-epochs", type=int, default=15)
    parser.add_argument("--epochs-to-try", type=int, nargs="+", default=[0, 1, 2, 3, 4, 5, 6, 8, 10, 12, 15])
    parser.add_argument("--images-per-class", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--student-epochs", type=int, default=300)
    parser.add_argument("--student-lr", type=float, default=0.01)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--eval-every", type=int, default=100, help="test cadence (the default config's)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default="benchmarks/results/tune_expert_epoch.md")
    args = parser.parse_args()

    device = resolve_device(args.device)
    info = machine_header(device)
    work = Path(args.work)
    started = time.time()
    if not (work / "data" / "test.pt").exists():
        prepare_data("fashion_mnist", args.raw_root, work / "data")
    expert_settings = ExpertSettings(arch=args.arch, lr=args.expert_lr, epochs=args.expert_epochs, seeds=(0,),
                                     batch_size=256)
    files = ExpertFiles(work / "checkpoints", work / "metrics.csv", work / "expert")
    metrics = train_expert(work / "data", expert_settings, files, str(device))
    train, test = load_split(work / "data", "train", device), load_split(work / "data", "test", device)
    student_settings = StudentSettings(arch=args.arch, optimizer="sgd", lr=args.student_lr,
                                       epochs=args.student_epochs, seeds=tuple(args.seeds), batch_size=256,
                                       eval_every=args.eval_every)

    def population(images, targets):
        result = evaluate_students(images, targets, test, student_settings)
        return 100 * result["best_accuracy"]["mean"], 100 * result["best_accuracy"]["std"]

    rows = []
    for ipc in args.images_per_class:
        chosen = select_random(train.labels.cpu(), ipc, train.spec.num_classes, seed=42).to(device)
        images = train.images[chosen]
        hard = population(images, hard_labels(train.labels[chosen], train.spec.num_classes))
        row = {"IPC": ipc, "hard": hard}
        for epoch in args.epochs_to_try:
            expert = load_expert(work / "checkpoints" / checkpoint_name(epoch), device)
            row[epoch] = population(images, soft_labels([predict_logits(expert, images)]))
        rows.append(row)
        print(row, flush=True)

    header = ["IPC", "hard"] + [f"e{epoch}" for epoch in args.epochs_to_try] + ["best epoch"]
    lines = [
        f"Expert-epoch sweep on Fashion-MNIST: {args.arch} expert (lr {args.expert_lr}), random real images "
        f"(seed 42), {len(args.seeds)} students x {args.student_epochs} epochs (lr {args.student_lr}); "
        f"mean best test accuracy (%) over students. Device: {device}, {time.time() - started:.0f} s in all.",
        "",
        info,
        "",
        "Expert test accuracy (%) by epoch: "
        + ", ".join(f"e{m['epoch']} {100 * m['test_accuracy']:.1f}" for m in metrics if m["epoch"] in args.epochs_to_try),
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for row in rows:
        best = max(args.epochs_to_try, key=lambda epoch: row[epoch][0])
        cells = [str(row["IPC"]), f"{row['hard'][0]:.1f}"] + [f"{row[e][0]:.1f}" for e in args.epochs_to_try]
        lines.append("| " + " | ".join(cells + [f"e{best}"]) + " |")
    write_table("Expert-epoch sweep", lines, args.out)


if __name__ == "__main__":
    main()
