import pytest
import torch

from labelworth.models import build_model, count_parameters
from labelworth.specs import DATASETS


@pytest.mark.parametrize(
    "dataset, arch, expected",
    [("fashion_mnist", "convnet-d3", 317_706), ("cifar10", "convnet-d3", 320_010),
     ("cifar100", "convnet-d3", 504_420), ("tinyimagenet", "convnet-d4", 857_160)],
)
def test_convnet_parameter_counts_match_the_paper(dataset, arch, expected):
    assert count_parameters(build_model(arch, DATASETS[dataset])) == expected


def test_28px_single_channel_input_is_treated_as_32px():
    model = build_model("convnet-d3", DATASETS["fashion_mnist"])
    assert model.features(torch.zeros(2, 1, 28, 28)).shape == (2, 128, 4, 4)
    assert model.features[0].padding == (3, 3) and model.features[4].padding == (1, 1)


@pytest.mark.parametrize("arch", ["convnet-d3-batchnorm", "convnet-d3-layernorm", "convnet-d3-groupnorm",
                                  "convnet-d3-nonorm", "convnet-d3-maxpool", "convnet-d3-w32"])
def test_convnet_variants_run(arch):
    assert build_model(arch, DATASETS["cifar10"])(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_convnet_parameter_order_is_conv_norm_per_block_then_classifier():
    names = [name for name, _ in build_model("convnet-d2", DATASETS["cifar10"]).named_parameters()]
    assert names == ["features.0.weight", "features.0.bias", "features.1.weight", "features.1.bias",
                     "features.4.weight", "features.4.bias", "features.5.weight", "features.5.bias",
                     "classifier.weight", "classifier.bias"]


def test_resnet_small_stem_keeps_resolution_and_imagenet_stem_downsamples():
    small = build_model("resnet18-small", DATASETS["cifar100"])
    assert small.conv1.stride == (1, 1) and isinstance(small.maxpool, torch.nn.Identity)
    assert small(torch.zeros(2, 3, 32, 32)).shape == (2, 100)
    full = build_model("resnet18", DATASETS["imagenet"])
    assert full.conv1.stride == (2, 2) and full.fc.out_features == 1000


def test_same_seed_gives_same_initialisation():
    torch.manual_seed(3)
    first = build_model("convnet-d3-w8", DATASETS["fashion_mnist"])
    torch.manual_seed(3)
    second = build_model("convnet-d3-w8", DATASETS["fashion_mnist"])
    assert all(torch.equal(a, b) for a, b in zip(first.parameters(), second.parameters()))


@pytest.mark.parametrize("shape", [(6, 4, 32, 32), (6, 4, 16, 16), (3, 2, 7, 9), (2, 5, 4, 6, 6)])
def test_the_convnet_pool_is_avg_pool2d_bitwise_forward_and_backward(shape):
    """AvgPool2x2 replaces nn.AvgPool2d(2, 2) for speed only: every result must stay bitwise the same
    (odd edges dropped as the kernel drops them; a leading students dimension as under vmap)."""
    from labelworth.models import AvgPool2x2

    torch.manual_seed(0)
    images = (torch.randn(shape) * 3).requires_grad_()
    copy = images.detach().clone().requires_grad_()
    flat = copy.flatten(0, 1) if len(shape) == 5 else copy
    expected = torch.nn.functional.avg_pool2d(flat, 2, 2)
    pooled = AvgPool2x2()(images)
    assert torch.equal(pooled.flatten(0, 1) if len(shape) == 5 else pooled, expected)
    with torch.no_grad():  # a test pass: the taps without autograd
        assert torch.equal(AvgPool2x2()(images), pooled)
    grad = torch.randn_like(pooled)
    grad.view(-1)[:3] = torch.tensor([-0.0, 1e-45, -1e-45])  # the kernel's backward turns -0.0 into 0.0
    grad.requires_grad_()
    # first derivatives bitwise, signs of zeros included; and second ones (MTT's meta-gradient)
    (ours,) = torch.autograd.grad(pooled, images, grad, create_graph=True)
    (theirs,) = torch.autograd.grad(expected, copy, grad.flatten(0, 1) if len(shape) == 5 else grad, create_graph=True)
    assert torch.equal(ours.view(torch.int32), theirs.view(torch.int32))
    (ours,), (theirs,) = (torch.autograd.grad((first ** 2).sum(), grad) for first in (ours, theirs))
    assert torch.equal(ours, theirs)
    pooled.backward(grad.detach())  # and without a recorded backward pass, the one-pass spread
    expected.backward(grad.detach().flatten(0, 1) if len(shape) == 5 else grad.detach())
    assert torch.equal(images.grad.view(torch.int32), copy.grad.view(torch.int32))
    as_double = flat.detach().double()  # not float32: the kernel itself
    assert torch.equal(AvgPool2x2()(as_double), torch.nn.functional.avg_pool2d(as_double, 2, 2))
