"""Labels for the selected or distilled images (METHOD.md section 6).

A label file holds one float row per image. Hard labels are one-hot rows, so every student trains
with the same probability-target cross-entropy. The label grammar (`LabelSpec`) lives in
`labelworth.specs` so Snakemake can parse it without importing torch.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F

from labelworth import io
from labelworth.errors import LabelworthError
from labelworth.experts import load_expert
from labelworth.specs import format_label_spec, parse_label_spec
from labelworth.training import predict_logits, resolve_device


def hard_labels(classes: torch.Tensor, num_classes: int) -> torch.Tensor:
    """One-hot float rows: cross-entropy against them equals cross-entropy against `classes`."""
    return F.one_hot(classes, num_classes).float()


def soft_labels(expert_logits: list[torch.Tensor], temperature: float = 1.0) -> torch.Tensor:
    """softmax(mean of the experts' logits / temperature).

    One expert gives the paper's soft label; several give its ensemble label (logits are averaged
    before the softmax, as the reference's `--ensemble` does). Rows sum to 1, and a larger
    temperature never lowers a row's entropy.
    """
    mean_logits = torch.stack(expert_logits).mean(0)
    return torch.softmax(mean_logits / temperature, dim=1)


def make_labels(
    images_path: str | os.PathLike,
    label_spec: str,
    expert_checkpoints: list[str],
    out_path: str | os.PathLike,
    device: str = "auto",
) -> torch.Tensor:
    """Write the labels `label_spec` names for the images in `images_path`.

    `expert_checkpoints` lists the checkpoint of each expert the spec uses: none for `hard`, one for
    `expert-e{E}`, N for `ensemble{N}-e{E}`, each saved after E epochs.
    """
    spec = parse_label_spec(label_spec)
    content = io.load_tensors(images_path, required=("images", "labels"))
    classes, num_classes = content["labels"], content["meta"]["num_classes"]
    expected = 0 if not spec.is_soft else spec.ensemble_size
    if len(expert_checkpoints) != expected:
        raise LabelworthError(
            f"label spec {label_spec!r} needs {expected} expert checkpoint(s), got {len(expert_checkpoints)}"
        )
    if spec.is_soft:
        device = resolve_device(device)
        images = content["images"].to(device)
        logits = []
        for checkpoint in expert_checkpoints:
            expert = load_expert(checkpoint, device)
            logits.append(predict_logits(expert, images).cpu())
        labels = soft_labels(logits, spec.temperature)
    else:
        labels = hard_labels(classes, num_classes)
    meta = io.provenance(
        "make_labels",
        label_spec=format_label_spec(spec),
        images=str(images_path),
        expert_checkpoints=[str(path) for path in expert_checkpoints],
    )
    io.save_tensors(out_path, {"labels": labels}, meta)
    return labels
