"""Expert trajectories as one replay buffer for trajectory matching (docs/method.md §5.1, §8.1).

Layout of `trajectories/{arch}-lr{lr}.pt` (written by `io.save_tensors`):

* `parameters`: float32 tensor [experts, epochs + 1, num_params]; row [e, k] is expert e's weights after k
  epochs (k = 0 is the initialisation), flattened in `model.parameters()` order, each parameter
  row-major. For a ConvNet that order is conv.w, conv.b, norm.w, norm.b per block, then fc.w, fc.b,
  the order of MTT's `replay_buffer_*.pt` snapshots, so rows are interchangeable with MTT's.
* meta: `arch`, `dataset`, `seeds` (one per expert, in row order), `epochs`, and `parameter_shapes`
  (name and shape of each parameter, in flat order) so a reader can check it rebuilds the same network.

Loading is lazy: `load_trajectories` maps the file (torch.load(mmap=True)), so an iteration that reads
two rows touches only their pages. The checksum is still verified at load time; that reads every page
once through the page cache (and hashes a transient copy of the tensor), but leaves nothing resident,
because mapped pages are file-backed and the kernel drops them under memory pressure.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from labelworth import io
from labelworth.errors import LabelworthError
from labelworth.experts import load_expert
from labelworth.specs import checkpoint_name


def flat_parameters(model: nn.Module) -> torch.Tensor:
    """The model's parameters as one detached vector in `model.parameters()` order."""
    return torch.cat([parameter.detach().reshape(-1) for parameter in model.parameters()])


def parameter_shapes(model: nn.Module) -> list[list]:
    """[name, shape] of each parameter in flat order (what the buffer's meta records)."""
    return [[name, list(parameter.shape)] for name, parameter in model.named_parameters()]


def unflatten_parameters(flat: torch.Tensor, model: nn.Module) -> dict[str, torch.Tensor]:
    """Name -> view of `flat` shaped like that parameter: the inverse of `flat_parameters`, and the
    argument `torch.func.functional_call(model, ...)` takes. Views keep autograd through `flat`."""
    shapes = [parameter.shape for parameter in model.parameters()]
    pieces = flat.split([shape.numel() for shape in shapes])
    names = [name for name, _ in model.named_parameters()]
    return {name: piece.view(shape) for name, piece, shape in zip(names, pieces, shapes)}


def expert_trajectory(checkpoint_dir: str | os.PathLike, epochs: int) -> tuple[torch.Tensor, dict]:
    """[epochs + 1, num_params] rows of one expert's checkpoints 0..epochs, and what the run was."""
    paths = [Path(checkpoint_dir) / checkpoint_name(epoch) for epoch in range(epochs + 1)]
    models = [load_expert(path) for path in paths]
    meta = io.load_tensors(paths[0], required=("state_dict",))["meta"]
    return torch.stack([flat_parameters(model) for model in models]), {
        "arch": meta["arch"], "dataset": meta["dataset"], "seed": meta["seed"],
        "shapes": parameter_shapes(models[0])}


def dump_trajectories(checkpoint_dirs: list[str | os.PathLike], epochs: int, out_path: str | os.PathLike) -> None:
    """Write the replay buffer of the experts in `checkpoint_dirs` (one row block each, in order)."""
    if not checkpoint_dirs:
        raise LabelworthError("dump-trajectories needs at least one expert checkpoint folder")
    trajectories, metas = zip(*(expert_trajectory(folder, epochs) for folder in checkpoint_dirs))
    first = metas[0]
    for folder, meta in zip(checkpoint_dirs, metas):
        if (meta["arch"], meta["dataset"]) != (first["arch"], first["dataset"]):
            raise LabelworthError(
                f"{folder}: a {meta['arch']} expert on {meta['dataset']}, but the first expert is a "
                f"{first['arch']} on {first['dataset']}; one buffer holds one kind of network"
            )
    meta = io.provenance("dump_trajectories", arch=first["arch"], dataset=first["dataset"],
                         seeds=[meta["seed"] for meta in metas], epochs=epochs,
                         parameter_shapes=first["shapes"])
    io.save_tensors(out_path, {"parameters": torch.stack(trajectories)}, meta)


def load_trajectories(path: str | os.PathLike) -> dict:
    """The buffer at `path`, memory-mapped, checksum verified; a bad file is a LabelworthError."""
    path = Path(path)
    if not path.is_file():
        raise LabelworthError(f"{path}: file not found")
    try:
        content = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as error:  # torch raises many types for a damaged zip/pickle
        raise LabelworthError(f"{path}: cannot be read ({type(error).__name__}); the file is corrupted or "
                              f"truncated, {io.REMEDY}") from None
    if not isinstance(content, dict) or "parameters" not in content or "meta" not in content:
        raise LabelworthError(f"{path}: not a trajectory buffer (missing parameters or meta)")
    meta = content["meta"]
    if io.content_checksum({"parameters": content["parameters"]}, meta) != meta.get(io.CHECKSUM_KEY):
        raise LabelworthError(f"{path}: the content does not match its checksum; the file is corrupted, "
                              f"{io.REMEDY}")
    return content
