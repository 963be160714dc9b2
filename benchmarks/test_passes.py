"""What a student's test pass costs, and ways to make it cheaper without changing what it predicts.

    python benchmarks/test_passes.py --data-dir results/fashion_mnist/data      # about 3 minutes

A default-config student is tested on all 10,000 test images after epochs 100 and 200, and an IPC-1
student's 200 epochs see only 10 images each, so the passes can cost as much as its training. This
times one pass of convnet-d3-w32 over the prepared test split (one thread, medians over rounds in a
rotating order) in each way, next to one IPC-1 training epoch, and checks that each way predicts the
same logits, bitwise, as the workflow's way (`training.predict_logits`: no_grad, chunks of PREDICT_BATCH_CPU):

* chunks of 100 to 10,000 images, under torch.inference_mode;
* three students at once through torch.func.vmap (what the vectorised engine does for training),
  chunks of 500, per student.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
from torch.func import functional_call, stack_module_state, vmap

from labelworth.data import load_split
from labelworth.models import build_model
from labelworth.settings import StudentSettings
from labelworth.students import make_optimizer
from labelworth.training import PREDICT_BATCH_CPU, predict_logits, train_epoch

from common import ROOT, interleaved_rounds, machine_header, write_table

ARCH = "convnet-d3-w32"
STUDENTS = 3
WORKFLOW = f"workflow: predict_logits, chunks of {PREDICT_BATCH_CPU}"


def chunked(model, images, chunk: int) -> torch.Tensor:
    with torch.inference_mode():
        model.eval()
        return torch.cat([model(images[i : i + chunk]) for i in range(0, len(images), chunk)])


def vmapped(models, images, chunk: int) -> torch.Tensor:
    params, buffers = stack_module_state([model.eval() for model in models])
    template = copy.deepcopy(models[0]).to("meta").eval()

    def one(student_params, student_buffers, batch):
        return functional_call(template, (student_params, student_buffers), (batch,))

    with torch.inference_mode():
        return torch.cat([vmap(one, in_dims=(0, 0, None))(params, buffers, images[i : i + chunk])
                          for i in range(0, len(images), chunk)], dim=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="results/fashion_mnist/data", help="a prepare-data folder")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "test_passes.md"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    test = load_split(args.data_dir, "test")
    train = load_split(args.data_dir, "train")
    models = []
    for seed in range(STUDENTS):  # students after 200 IPC-1 epochs, so that their predictions are not trivial
        torch.manual_seed(seed)
        model = build_model(ARCH, test.spec)
        settings = StudentSettings(arch=ARCH, lr=0.01, epochs=200, seeds=(seed,))
        opt, schedule = make_optimizer(model.parameters(), settings)
        images = torch.cat([train.images[train.labels == label][:1] for label in range(test.spec.num_classes)])
        labels = torch.arange(test.spec.num_classes)
        generator = torch.Generator().manual_seed(seed)
        for _ in range(settings.epochs):
            train_epoch(model, opt, images, labels, 256, test.spec.dsa_strategy, generator)
            schedule.step()
        models.append(model)
    reference = [predict_logits(model, test.images) for model in models]

    def epoch_way():
        model = copy.deepcopy(models[0]).train()  # a copy: the students stay as they are
        opt, _ = make_optimizer(model.parameters(), StudentSettings(arch=ARCH, lr=0.01, epochs=200, seeds=(0,)))
        train_epoch(model, opt, images, labels, 256, test.spec.dsa_strategy, torch.Generator().manual_seed(0))

    ways = {
        "one IPC-1 training epoch (for scale)": (epoch_way, None),
        WORKFLOW: (lambda: predict_logits(models[0], test.images), 0),
        "inference_mode, chunks of 100": (lambda: chunked(models[0], test.images, 100), 0),
        "inference_mode, chunks of 250": (lambda: chunked(models[0], test.images, 250), 0),
        "inference_mode, chunks of 500": (lambda: chunked(models[0], test.images, 500), 0),
        "inference_mode, chunks of 2,000": (lambda: chunked(models[0], test.images, 2000), 0),
        "inference_mode, chunks of 10,000": (lambda: chunked(models[0], test.images, 10000), 0),
        f"vmap over {STUDENTS} students, chunks of 500 (per student)": (lambda: vmapped(models, test.images, 500), "all"),
    }

    def measure(way: str) -> float:
        run, _ = ways[way]
        started = time.perf_counter()
        run()
        return time.perf_counter() - started

    readings = interleaved_rounds(list(ways), args.repeats, measure)
    baseline = statistics.median(readings[WORKFLOW])
    lines = [machine_header(), "", f"{ARCH} on {len(test.images)} test images, medians of {args.repeats} rounds.", "",
             "| way | seconds | vs workflow | bitwise the same logits |", "|---|---|---|---|"]
    for way, (run, compared) in ways.items():
        seconds = statistics.median(readings[way])
        if compared == "all":
            seconds /= STUDENTS
            same = all(torch.equal(logits, ref) for logits, ref in zip(run(), reference))
        elif compared == 0:
            same = torch.equal(run(), reference[0])
        else:
            same = None
        lines.append(f"| {way} | {seconds:.3f} | {baseline / seconds:.2f}x | {'' if same is None else same} |")
    write_table("Test passes", lines, args.out)


if __name__ == "__main__":
    main()
