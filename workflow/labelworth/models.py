"""Networks: the ConvNet family of DC/MTT/the paper, and torchvision ResNets (docs/method.md §3).

`build_model(arch, spec)` is the only constructor the stages use, so a checkpoint that stores its arch
string and dataset name can always rebuild its network.
"""

from __future__ import annotations

import torch
from torch import nn

from labelworth.specs import ArchSpec, DatasetSpec, parse_arch


def _norm_layer(norm: str, width: int, feature_size: int) -> nn.Module:
    if norm == "instancenorm":
        # GroupNorm with one group per channel is instance norm with a learnable affine, exactly
        # as the reference ConvNet defines it (and with the same parameter count).
        return nn.GroupNorm(width, width, affine=True)
    if norm == "batchnorm":
        return nn.BatchNorm2d(width)
    if norm == "layernorm":
        return nn.LayerNorm([width, feature_size, feature_size], elementwise_affine=True)
    if norm == "groupnorm":
        return nn.GroupNorm(4, width, affine=True)
    return nn.Identity()


def _taps(images: torch.Tensor) -> torch.Tensor:
    """avg_pool2d(images, 2, 2) of a CPU float32 tensor, bitwise: the four taps of each window added
    in the order the kernel adds them (row by row, left to right), then divided by 4."""
    height, width = images.shape[-2] // 2 * 2, images.shape[-1] // 2 * 2  # an odd edge is dropped
    even = images[..., :height, :width]
    return (((even[..., 0::2, 0::2] + even[..., 0::2, 1::2]) + even[..., 1::2, 0::2]) + even[..., 1::2, 1::2]) / 4


def _kernel(images: torch.Tensor) -> torch.Tensor:
    if images.dim() <= 4:
        return nn.functional.avg_pool2d(images, 2, 2)
    return nn.functional.avg_pool2d(images.flatten(0, -4), 2, 2).unflatten(0, images.shape[:-3])  # one batch dim


class _TapPool(torch.autograd.Function):
    """The taps forward; backward, each input gets its window's grad / 4 in one pass, the bits of
    the kernel's backward (which adds grad / 4 to a zeroed input: 0 + x, so -0.0 becomes 0.0).
    Autograd would instead give each strided tap a zeroed copy of the whole input and add them up.
    Where the backward pass is itself recorded (MTT's and BPTT's meta-gradients), it is the
    kernel's backward, so that second derivatives are the kernel's too."""

    generate_vmap_rule = True  # plain tensor operations: torch.func.vmap batches them

    @staticmethod
    def forward(images: torch.Tensor) -> torch.Tensor:
        return _taps(images)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        ctx.save_for_backward(inputs[0])  # ReLU's output, which its own backward keeps anyway

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (images,) = ctx.saved_tensors
        if torch.is_grad_enabled():  # differentiable: its own derivative is the kernel's avg_pool2d
            flat_grad, flat_images = (grad, images) if grad.dim() <= 4 else (grad.flatten(0, -4), images.flatten(0, -4))
            spread = torch.ops.aten.avg_pool2d_backward(flat_grad, flat_images, [2, 2], [2, 2], [0, 0], False, True, None)
            return spread.view_as(images)
        rows, columns = grad.shape[-2:]
        spread = (grad / 4).add_(0.0)[..., :, None, :, None].expand(*grad.shape[:-2], rows, 2, columns, 2)
        spread = spread.reshape(*grad.shape[:-2], 2 * rows, 2 * columns)
        missing_rows, missing_columns = images.shape[-2] - 2 * rows, images.shape[-1] - 2 * columns
        return nn.functional.pad(spread, (0, missing_columns, 0, missing_rows)) if missing_rows or missing_columns \
            else spread


class AvgPool2x2(nn.Module):
    """nn.AvgPool2d(2, 2), bitwise, forward and backward (tests compare both ways).

    On a CPU float32 tensor PyTorch's kernel adds each window in scalar code: it took 29% of a
    ConvNet's forward pass. The taps run vectorised at 1.7-3x its speed, and in training the
    one-pass backward beats both the kernel's and autograd's through the taps
    (benchmarks/results/test_passes.md, pool_backward.md).
    Elsewhere (a GPU, bfloat16, whose kernels accumulate in float32) the kernel itself runs."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.device.type != "cpu" or images.dtype != torch.float32:
            return _kernel(images)
        if torch.is_grad_enabled() and images.requires_grad:
            return _TapPool.apply(images)
        return _taps(images)


class ConvNet(nn.Module):
    """depth x [conv3x3(width) -> norm -> ReLU -> pool2x2] -> linear.

    28x28 single-channel inputs get padding 3 in the first conv, so they are treated as 32x32 and
    every depth-3 ConvNet ends on a 4x4 map (the reference's trick). Parameters are ordered conv.w,
    conv.b, norm.w, norm.b per block, then fc.w, fc.b, which keeps MTT trajectories interchangeable.
    """

    def __init__(
        self,
        channels: int,
        num_classes: int,
        image_size: int,
        width: int = 128,
        depth: int = 3,
        norm: str = "instancenorm",
        pool: str = "avgpool",
    ):
        super().__init__()
        pad_to_32 = image_size == 28 and channels == 1
        feature_size = 32 if image_size == 28 else image_size
        layers: list[nn.Module] = []
        in_channels = channels
        for block in range(depth):
            padding = 3 if (block == 0 and pad_to_32) else 1
            layers += [
                nn.Conv2d(in_channels, width, kernel_size=3, padding=padding),
                _norm_layer(norm, width, feature_size),
                nn.ReLU(inplace=True),
                AvgPool2x2() if pool == "avgpool" else nn.MaxPool2d(2, 2),
            ]
            in_channels = width
            feature_size //= 2
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(width * feature_size * feature_size, num_classes)

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """Flattened features before the classifier (what distribution matching compares)."""
        return self.features(images).flatten(1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(images))


def _resnet(arch: ArchSpec, spec: DatasetSpec) -> nn.Module:
    import torchvision  # here only: ConvNet jobs start twice as fast without it

    constructor = {18: torchvision.models.resnet18, 50: torchvision.models.resnet50}[arch.depth]
    model = constructor(weights=None, num_classes=spec.num_classes)
    if arch.small_stem:
        # SRe2L's CIFAR/Tiny variant: a 3x3 stride-1 stem and no max-pool keep small images large.
        model.conv1 = nn.Conv2d(spec.channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
    elif spec.channels != 3:
        model.conv1 = nn.Conv2d(spec.channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    return model


def build_model(arch: str | ArchSpec, spec: DatasetSpec) -> nn.Module:
    """A freshly initialised network (PyTorch default init, drawn from torch's global RNG)."""
    arch = parse_arch(arch) if isinstance(arch, str) else arch
    if arch.family == "resnet":
        return _resnet(arch, spec)
    return ConvNet(
        spec.channels, spec.num_classes, spec.image_size, arch.width, arch.depth, arch.norm, arch.pool
    )


def count_parameters(model: nn.Module) -> int:
    return sum(parameter.numel() for parameter in model.parameters())
