"""ZCA whitening of images (docs/method.md §2.2), as MTT and the paper apply it to CIFAR-10.

The reference fits `kornia.enhance.ZCAWhitening(eps=0.1, compute_inv=True)` on the whole training
set, each image flattened to one feature vector: centre every feature by its training mean, take the
unbiased covariance Σ = U diag(λ) Uᵀ, and multiply by

    transform = U diag(1 / sqrt(λ + eps)) Uᵀ        inverse = U diag(sqrt(λ + eps)) Uᵀ

Both matrices are symmetric, so a row vector x is whitened as (x - mean) @ transform and restored as
x_white @ inverse + mean. The decomposition runs in float64: the covariance of 50,000 CIFAR images
sums 50,000 products per entry, and its small eigenvalues are what the whitening amplifies.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

# kornia's ZCAWhitening as the reference constructs it (docs/method.md §2.2).
ZCA_EPSILON = 0.1


class Zca(NamedTuple):
    """A fitted whitening: the per-feature mean (D) and the two symmetric D x D matrices, where D is
    the number of values in one image (C*H*W)."""

    mean: torch.Tensor
    transform: torch.Tensor
    inverse: torch.Tensor


def _flatten(images: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """One row per image, in the dtype and on the device of `like`."""
    return images.reshape(len(images), -1).to(like)


def fit_zca(images: torch.Tensor, eps: float = ZCA_EPSILON) -> Zca:
    """The ZCA whitening of N x C x H x W `images` (float pixels), in float64.

    Tested properties: it equals the closed form above computed with numpy (np.cov, SVD) on a small
    case; with eps -> 0 the whitened images have identity covariance (when N exceeds C*H*W);
    `unwhiten(whiten(x))` recovers x.
    """
    flat = images.reshape(len(images), -1).double()
    mean = flat.mean(0)
    centred = flat - mean
    covariance = centred.T @ centred / (len(flat) - 1)
    eigenvalues, eigenvectors = torch.linalg.eigh(covariance)
    # A covariance is positive semi-definite; rounding can still leave eigenvalues of about -1e-15
    # (kornia's SVD would report their absolute value), which must not reach the square roots.
    eigenvalues = eigenvalues.clamp_min(0) + eps
    return Zca(
        mean=mean,
        transform=(eigenvectors * eigenvalues.rsqrt()) @ eigenvectors.T,
        inverse=(eigenvectors * eigenvalues.sqrt()) @ eigenvectors.T,
    )


def whiten(images: torch.Tensor, zca: Zca) -> torch.Tensor:
    """(x - mean) @ transform for every image, computed in the dtype and on the device of `zca`;
    returned with the shape, dtype and device of `images` (float pixels, scaled to [0, 1])."""
    flat = (_flatten(images, zca.mean) - zca.mean) @ zca.transform
    return flat.reshape(images.shape).to(images)


def unwhiten(images: torch.Tensor, zca: Zca) -> torch.Tensor:
    """The inverse of `whiten`: x_white @ inverse + mean, so unwhiten(whiten(x), zca) == x up to
    rounding. Distilled images may map outside [0, 1]; clamp before showing them."""
    flat = _flatten(images, zca.mean) @ zca.inverse + zca.mean
    return flat.reshape(images.shape).to(images)
