"""The augmentation of the decoupled methods' evaluation (SRe2L, RDED; docs/method.md §14.1): a random resized
crop and a horizontal flip per image, then CutMix of the batch with a Beta(1, 1) mixing ratio.

Randomness comes only from the CPU `torch.Generator` passed in, consumed in a fixed order (crop
areas, aspect ratios, centres, flips, then the mixing ratio, the box and the partner permutation), so
equal generators give equal batches.

* crop: area share ~ U(0.08, 1) and log aspect ratio ~ U(log 3/4, log 4/3), torchvision's
  RandomResizedCrop defaults as SRe2L uses them, clipped to the image; the box's centre is uniform
  over the positions that keep it inside; the box is resized back to the full image by bilinear
  `grid_sample` (align_corners=False).
* flip: horizontal with p = 0.5.
* CutMix: one ratio per batch, lam ~ Beta(1, 1) = U(0, 1); a box of side sqrt(1 - lam) times the
  image's, centred uniformly and clipped, is pasted from the image's partner in a random permutation.
  `CutMix.kept` is the share of each image that stays its own, after clipping.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

CROP_SCALE = (0.08, 1.0)
CROP_RATIO = (3 / 4, 4 / 3)
PROB_FLIP = 0.5


@dataclass(frozen=True)
class CutMix:
    """How a batch was mixed: image i holds partner `permutation[i]` in its box, `kept` of it its own."""

    permutation: torch.Tensor
    kept: float

    def mix(self, targets: torch.Tensor) -> torch.Tensor:
        """Fixed labels of the mixed batch: each target mixed with its partner's by area. Property
        (tests): rows that sum to 1 still do."""
        return self.kept * targets + (1 - self.kept) * targets[self.permutation.to(targets.device)]


def random_resized_crop_flip(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each image cropped to a random box and resized back, then flipped with p = 0.5. Property
    (tests): a box of the whole image, unflipped, returns the image."""
    count = len(images)
    area = torch.empty(count).uniform_(*CROP_SCALE, generator=generator)
    log_ratio = torch.empty(count).uniform_(math.log(CROP_RATIO[0]), math.log(CROP_RATIO[1]), generator=generator)
    ratio = log_ratio.exp()
    width, height = (area * ratio).sqrt().clamp(max=1.0), (area / ratio).sqrt().clamp(max=1.0)
    # Centres in [-1, 1] coordinates that keep the box inside the image.
    centre_x = (torch.rand(count, generator=generator) * 2 - 1) * (1 - width)
    centre_y = (torch.rand(count, generator=generator) * 2 - 1) * (1 - height)
    flip = torch.rand(count, generator=generator) < PROB_FLIP
    theta = torch.zeros(count, 2, 3)
    theta[:, 0, 0] = torch.where(flip, -width, width)
    theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = centre_x, height, centre_y
    theta = theta.to(device=images.device, dtype=images.dtype)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def cutmix(images: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, CutMix]:
    """The batch with a box of each image replaced by its partner's, and how it was mixed."""
    count, size = len(images), images.shape[-1]
    lam = float(torch.rand(1, generator=generator))
    side = int(size * math.sqrt(1 - lam))
    centre_y, centre_x = (int(v) for v in torch.randint(0, size, (2,), generator=generator))
    top, bottom = max(centre_y - side // 2, 0), min(centre_y + side // 2, size)
    left, right = max(centre_x - side // 2, 0), min(centre_x + side // 2, size)
    permutation = torch.randperm(count, generator=generator)
    mixed = images.clone()
    mixed[:, :, top:bottom, left:right] = images[permutation.to(images.device), :, top:bottom, left:right]
    kept = 1 - (bottom - top) * (right - left) / (size * size)
    return mixed, CutMix(permutation, kept)


def cutmix_augment(images: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, CutMix]:
    """SRe2L's and RDED's evaluation augmentation: `random_resized_crop_flip`, then `cutmix`."""
    return cutmix(random_resized_crop_flip(images, generator), generator)
