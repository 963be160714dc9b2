"""Differentiable Siamese Augmentation (DSA), batched, as in the DC/DSA/MTT `ParamDiffAug` (docs/method.md §4.1).

A strategy such as ``color_crop_cutout_flip_scale_rotate`` names op families separated by ``_``. Each
call of `dsa_augment` draws ONE family uniformly from the strategy and applies it to the whole batch;
its parameters are drawn per sample, or once for the whole batch when ``shared=True`` (the reference's
Siamese "batchmode"). `dsa_augment_population` augments a population of batches (one generator per
member, as the vectorised student engine trains them) with the same draws as one call per member.

Randomness comes only from the `torch.Generator` passed in (a CPU generator), consumed in a fixed order:
the op index, then that op's parameters. So two calls with identically seeded generators apply the
identical transform: with ``shared=True`` to batches of any size (this is how real and synthetic images
of a class are augmented together), and with ``shared=False`` to the same batch twice.

Parameters are small CPU tensors with leading dimension = batch size; `apply_op` moves them to the
images' device and dtype, and every op is a batched tensor expression (no per-image Python loop) that
is differentiable with respect to the images.

Conventions (checked by tests/test_augment.py):

* ``crop``:   ``out[..., h, w] = x[..., h - dy, w - dx]``, zero where that falls outside the image, i.e.
  the content moves down by ``dy`` and right by ``dx``; shifts are integers in ``[-s, s]``,
  ``s = int(H * 0.125 + 0.5)``.
* ``cutout``: rows ``cy - side // 2 ... cy - side // 2 + side - 1`` (same for columns with ``cx``),
  clipped to the image, are zeroed; ``side = int(H * 0.5 + 0.5)``; centres are drawn as the reference
  does, ``cy ~ randint(0, H + 1 - side % 2)``.
* ``scale``:  affine ``theta = [[sx, 0, 0], [0, sy, 0]]`` (sampling coordinates are scaled, so a factor
  above 1 shrinks the content); ``sx, sy ~ U(1/1.2, 1.2)``.
* ``rotate``: affine ``theta = [[cos a, -sin a, 0], [sin a, cos a, 0]]``, ``a`` in radians drawn from
  ``U(-15 deg, 15 deg)``; ``a = +90 deg`` equals ``torch.rot90(x, 1, dims=(-2, -1))`` (anticlockwise).
  Both affine ops use ``F.grid_sample(align_corners=True)`` with zero padding.
* ``flip``:   horizontal (last dimension) where ``params["flip"]`` is true, drawn with p = 0.5.
* ``color``:  brightness, saturation, contrast in that order, each with its own ``u ~ U(0, 1)``:
  ``x += (u - 0.5) * 1.0``; ``x = (x - mean_c) * (2u) + mean_c`` (mean over channels per pixel);
  ``x = (x - mean_chw) * (u + 0.5) + mean_chw`` (mean over C, H, W per image).
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

from labelworth.errors import LabelworthError

DSA_OPS = ("color", "crop", "cutout", "flip", "scale", "rotate")

# The reference's ParamDiffAug constants.
PROB_FLIP = 0.5
RATIO_SCALE = 1.2
RATIO_ROTATE_DEG = 15.0
RATIO_CROP_PAD = 0.125
RATIO_CUTOUT = 0.5
BRIGHTNESS = 1.0
SATURATION = 2.0
CONTRAST = 0.5


def crop_shift_limit(image_size: int) -> int:
    """Largest crop shift s for an image side: int(H * 0.125 + 0.5) (28 -> 4, 32 -> 4, 64 -> 8)."""
    return int(image_size * RATIO_CROP_PAD + 0.5)


def cutout_side(image_size: int) -> int:
    """Side of the cutout square: int(H * 0.5 + 0.5) (28 -> 14, 32 -> 16, 64 -> 32)."""
    return int(image_size * RATIO_CUTOUT + 0.5)


def parse_strategy(strategy: str) -> tuple[str, ...]:
    """Split a strategy string into its op names, in order.

    Every name must be one of `DSA_OPS`, none may repeat and none may be empty; anything else is a
    LabelworthError naming the offending part.
    """
    if not isinstance(strategy, str) or not strategy:
        raise LabelworthError(f"DSA strategy must be a non-empty string like 'color_crop_flip', got {strategy!r}")
    ops = tuple(strategy.split("_"))
    for op in ops:
        if op not in DSA_OPS:
            raise LabelworthError(
                f"DSA strategy {strategy!r}: unknown op {op!r}; expected ops from {', '.join(DSA_OPS)} joined by '_'"
            )
    if len(set(ops)) != len(ops):
        raise LabelworthError(f"DSA strategy {strategy!r} names an op more than once")
    return ops


def choose_op(ops: tuple[str, ...], generator: torch.Generator) -> str:
    """Draw one op uniformly from `ops`, consuming one `randint` from `generator`."""
    index = int(torch.randint(len(ops), (1,), generator=generator).item())
    return ops[index]


# --------------------------------------------------------------------------------------------------
# Parameter draws: CPU float32 (or bool / int64) tensors of leading dimension batch_size.


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=generator, dtype=torch.float32) * (high - low) + low


def _draw_color(n: int, image_size: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    return {
        "brightness": _uniform(n, 0.0, 1.0, generator),
        "saturation": _uniform(n, 0.0, 1.0, generator),
        "contrast": _uniform(n, 0.0, 1.0, generator),
    }


def _draw_crop(n: int, image_size: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    s = crop_shift_limit(image_size)
    return {
        "dy": torch.randint(-s, s + 1, (n,), generator=generator),
        "dx": torch.randint(-s, s + 1, (n,), generator=generator),
    }


def _draw_cutout(n: int, image_size: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    high = image_size + (1 - cutout_side(image_size) % 2)
    return {
        "cy": torch.randint(0, high, (n,), generator=generator),
        "cx": torch.randint(0, high, (n,), generator=generator),
    }


def _draw_flip(n: int, image_size: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    return {"flip": torch.rand(n, generator=generator) < PROB_FLIP}


def _draw_scale(n: int, image_size: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    return {
        "sx": _uniform(n, 1.0 / RATIO_SCALE, RATIO_SCALE, generator),
        "sy": _uniform(n, 1.0 / RATIO_SCALE, RATIO_SCALE, generator),
    }


def _draw_rotate(n: int, image_size: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    limit = math.radians(RATIO_ROTATE_DEG)
    return {"angle": _uniform(n, -limit, limit, generator)}


_DRAWS: dict[str, Callable[[int, int, torch.Generator], dict[str, torch.Tensor]]] = {
    "color": _draw_color,
    "crop": _draw_crop,
    "cutout": _draw_cutout,
    "flip": _draw_flip,
    "scale": _draw_scale,
    "rotate": _draw_rotate,
}


def draw_params(
    op: str, batch_size: int, image_size: int, generator: torch.Generator, shared: bool
) -> dict[str, torch.Tensor]:
    """Draw `op`'s parameters on the CPU from `generator`; every tensor has leading dimension `batch_size`.

    With `shared` one draw is made and repeated for every sample, so the result (and the generator's
    state afterwards) does not depend on `batch_size`: that is the Siamese property.
    """
    if op not in _DRAWS:
        raise LabelworthError(f"unknown DSA op {op!r}; expected one of {', '.join(DSA_OPS)}")
    if batch_size < 0:
        raise LabelworthError(f"batch_size must be >= 0, got {batch_size}")
    params = _DRAWS[op](1 if shared else batch_size, image_size, generator)
    if shared:
        params = {name: value.expand(batch_size).clone() for name, value in params.items()}
    return params


# --------------------------------------------------------------------------------------------------
# Ops: (images [B, C, H, W], params on images.device) -> images of the same shape and dtype.


def _per_sample(value: torch.Tensor) -> torch.Tensor:
    return value.view(-1, 1, 1, 1)


def color(images: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
    """Brightness, then saturation, then contrast; u = 0.5 for saturation and contrast is neutral."""
    x = images + (_per_sample(params["brightness"]) - 0.5) * BRIGHTNESS
    mean_c = x.mean(dim=1, keepdim=True)
    x = (x - mean_c) * (_per_sample(params["saturation"]) * SATURATION) + mean_c
    mean_all = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean_all) * (_per_sample(params["contrast"]) + CONTRAST) + mean_all


def crop(images: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
    """Translate by integer (dy, dx) per sample with zero fill: out[h, w] = x[h - dy, w - dx]."""
    b, c, h, w = images.shape
    device = images.device
    padded = F.pad(images, [1, 1, 1, 1])  # index 0 and H + 1 (W + 1) are the zero border
    rows = torch.arange(h, device=device).unsqueeze(0) - params["dy"].view(-1, 1) + 1
    cols = torch.arange(w, device=device).unsqueeze(0) - params["dx"].view(-1, 1) + 1
    rows = rows.clamp(0, h + 1)
    cols = cols.clamp(0, w + 1)
    out = padded.gather(2, rows.view(b, 1, h, 1).expand(b, c, h, w + 2))
    return out.gather(3, cols.view(b, 1, 1, w).expand(b, c, h, w))


def cutout(images: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
    """Zero a square of side int(H * 0.5 + 0.5) around (cy, cx), clipped to the image."""
    _, _, h, w = images.shape
    device = images.device
    side_h, side_w = cutout_side(h), cutout_side(w)
    top = (params["cy"] - side_h // 2).view(-1, 1)
    left = (params["cx"] - side_w // 2).view(-1, 1)
    hh = torch.arange(h, device=device).unsqueeze(0)
    ww = torch.arange(w, device=device).unsqueeze(0)
    in_rows = (hh >= top) & (hh < top + side_h)  # [B, H]
    in_cols = (ww >= left) & (ww < left + side_w)  # [B, W]
    keep = ~(in_rows.unsqueeze(2) & in_cols.unsqueeze(1))  # [B, H, W]
    return images * keep.unsqueeze(1).to(images.dtype)


def flip(images: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mirror the last dimension of the samples whose params["flip"] is true."""
    return torch.where(_per_sample(params["flip"].bool()), images.flip(-1), images)


def _affine(images: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    grid = F.affine_grid(theta, list(images.shape), align_corners=True)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=True)


def scale(images: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
    """Affine theta = [[sx, 0, 0], [0, sy, 0]]; sx = sy = 1 is the identity."""
    sx, sy = params["sx"], params["sy"]
    zero = torch.zeros_like(sx)
    theta = torch.stack([torch.stack([sx, zero, zero], -1), torch.stack([zero, sy, zero], -1)], -2)
    return _affine(images, theta)


def rotate(images: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
    """Affine theta = [[cos a, -sin a, 0], [sin a, cos a, 0]] about the image centre, a in radians."""
    angle = params["angle"]
    cos, sin, zero = torch.cos(angle), torch.sin(angle), torch.zeros_like(angle)
    theta = torch.stack([torch.stack([cos, -sin, zero], -1), torch.stack([sin, cos, zero], -1)], -2)
    return _affine(images, theta)


_OPS: dict[str, Callable[[torch.Tensor, dict[str, torch.Tensor]], torch.Tensor]] = {
    "color": color,
    "crop": crop,
    "cutout": cutout,
    "flip": flip,
    "scale": scale,
    "rotate": rotate,
}


def _check_images(images: torch.Tensor) -> None:
    if not isinstance(images, torch.Tensor) or images.dim() != 4:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise LabelworthError(f"DSA expects images of shape [batch, channels, height, width], got {shape}")
    if not images.is_floating_point():
        raise LabelworthError(f"DSA expects floating-point images, got {images.dtype}")


def apply_op(op: str, images: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
    """Apply `op` with `params` (moved to images.device; floats cast to images.dtype); shape and dtype kept."""
    if op not in _OPS:
        raise LabelworthError(f"unknown DSA op {op!r}; expected one of {', '.join(DSA_OPS)}")
    _check_images(images)
    moved = {
        name: value.to(device=images.device, dtype=images.dtype if value.is_floating_point() else value.dtype)
        for name, value in params.items()
    }
    for name, value in moved.items():
        if value.shape[:1] != images.shape[:1]:
            raise LabelworthError(
                f"DSA {op} parameter {name!r} has leading size {tuple(value.shape)[:1]}, "
                f"expected the batch size {images.shape[0]}"
            )
    return _OPS[op](images, moved)


def dsa_augment(
    images: torch.Tensor, strategy: str, generator: torch.Generator, shared: bool = False
) -> torch.Tensor:
    """Draw one op of `strategy` from `generator`, draw its parameters, apply it to the whole batch.

    Identically seeded generators give the identical transform: with `shared=True` every sample gets
    the same parameters, so ``dsa_augment(cat(A, B)) == cat(dsa_augment(A), dsa_augment(B))``.
    """
    ops = parse_strategy(strategy)
    op, params = draw_augmentation(ops, images.shape[0], _square_side(images), generator, shared)
    return apply_op(op, images, params)


def draw_augmentation(
    ops: tuple[str, ...], batch_size: int, image_size: int, generator: torch.Generator, shared: bool = False
) -> tuple[str, dict[str, torch.Tensor]]:
    """The draws of one `dsa_augment` call: the op (one `randint`), then its parameters.

    Every DSA user draws through this function, so the one-by-one and the population paths consume a
    generator in the same order and apply the same transform for the same seed.
    """
    op = choose_op(ops, generator)
    return op, draw_params(op, batch_size, image_size, generator, shared)


def dsa_augment_population(
    batches: torch.Tensor, strategy: str, generators: list[torch.Generator]
) -> torch.Tensor:
    """`dsa_augment` of each member's batch with its own generator, as few op calls as possible.

    `batches` is [members, batch, C, H, W]; member i's draws come from `generators[i]` exactly as
    ``dsa_augment(batches[i], strategy, generators[i])`` makes them, so the result equals stacking
    those calls (every op treats samples independently). Members that drew the same op share one
    `apply_op` call on the concatenation of their batches.
    """
    ops = parse_strategy(strategy)
    if batches.dim() != 5 or len(batches) != len(generators):
        raise LabelworthError(
            f"DSA of a population expects [members, batch, C, H, W] images and one generator per member, "
            f"got shape {tuple(batches.shape)} and {len(generators)} generators"
        )
    members, batch_size = batches.shape[:2]
    image_size = _square_side(batches[0])
    draws = [draw_augmentation(ops, batch_size, image_size, generator) for generator in generators]
    pieces, member_order = [], []
    for op in dict.fromkeys(op for op, _ in draws):  # distinct ops in order of first appearance
        chosen = [member for member, (drawn, _) in enumerate(draws) if drawn == op]
        params = {name: torch.cat([draws[member][1][name] for member in chosen]) for name in draws[chosen[0]][1]}
        pieces.append(apply_op(op, batches[chosen].flatten(0, 1), params))
        member_order += chosen
    # Undo the grouping: position k of the concatenation holds member member_order[k].
    inverse = torch.empty(members, dtype=torch.long)
    inverse[torch.tensor(member_order)] = torch.arange(members)
    return torch.cat(pieces).view(batches.shape)[inverse.to(batches.device)]


def _square_side(images: torch.Tensor) -> int:
    _check_images(images)
    height, width = images.shape[-2:]
    if height != width:
        raise LabelworthError(f"DSA expects square images, got {height}x{width}")
    return height
