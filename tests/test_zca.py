"""ZCA whitening (docs/method.md §2.2): the pure transform, prepared whitened splits, image sets that still
show their real pixels, and the config key that reruns the data preparation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from labelworth import io
from labelworth.data import load_split, prepare_data
from labelworth.image_sets import displayed_pixels
from labelworth.distill.random import distill_random
from labelworth.distill.subsets import drop_class
from labelworth.distill.synthesis import SynthesisFiles, write_synthetic_set
from labelworth.errors import LabelworthError
from labelworth.specs import ImageSetSpec
from labelworth.zca import ZCA_EPSILON, Zca, fit_zca, unwhiten, whiten

from conftest import micro_config, planned_jobs, snakemake
from test_data import write_cifar10, write_imagenet


def correlated_images(count: int, shape=(2, 2, 3), seed=0) -> torch.Tensor:
    """float64 images in roughly [0, 1] whose features are strongly correlated (random mixing) and
    have variances spread over two orders of magnitude, as neighbouring pixels do."""
    generator = torch.Generator().manual_seed(seed)
    features = int(np.prod(shape))
    scales = torch.logspace(0, -2, features, dtype=torch.float64)
    mixing = torch.randn(features, features, generator=generator, dtype=torch.float64)
    flat = (torch.randn(count, features, generator=generator, dtype=torch.float64) * scales) @ mixing
    return (0.5 + 0.1 * flat).reshape(count, *shape)


def covariance(images: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(np.cov(images.reshape(len(images), -1).numpy(), rowvar=False))


# --------------------------------------------------------------------------------------------------
# The transform


def test_fit_matches_the_closed_form_computed_with_numpy():
    """kornia's recipe written in numpy: unbiased np.cov, SVD, U diag(1/sqrt(S+eps)) U^T and its inverse."""
    images = correlated_images(40)
    zca = fit_zca(images, eps=0.1)
    flat = images.reshape(40, -1).numpy()
    mean = flat.mean(0)
    u, s, _ = np.linalg.svd(np.cov(flat, rowvar=False))
    transform = u @ np.diag(1 / np.sqrt(s + 0.1)) @ u.T
    inverse = u @ np.diag(np.sqrt(s + 0.1)) @ u.T
    assert zca.mean.dtype == zca.transform.dtype == torch.float64
    np.testing.assert_allclose(zca.mean.numpy(), mean, atol=1e-12)
    np.testing.assert_allclose(zca.transform.numpy(), transform, atol=1e-9)
    np.testing.assert_allclose(zca.inverse.numpy(), inverse, atol=1e-9)
    np.testing.assert_allclose(whiten(images, zca).reshape(40, -1).numpy(), (flat - mean) @ transform, atol=1e-9)


@pytest.mark.parametrize("count", [5, 200])  # fewer images than features (a singular covariance), and more
def test_unwhiten_inverts_whiten(count):
    zca = fit_zca(correlated_images(count), eps=ZCA_EPSILON)
    unseen = correlated_images(7, seed=1)
    assert torch.allclose(unwhiten(whiten(unseen, zca), zca), unseen, atol=1e-10)
    as_float32 = unseen.float()
    round_trip = unwhiten(whiten(as_float32, zca), zca)
    assert round_trip.dtype == torch.float32 and round_trip.shape == unseen.shape
    assert torch.allclose(round_trip, as_float32, atol=1e-6)


def test_whitened_training_set_has_identity_covariance_as_eps_goes_to_zero():
    images = correlated_images(500)
    identity = torch.eye(12, dtype=torch.float64)
    assert (covariance(images) - identity).abs().max() > 0.9  # far from white to begin with
    white = whiten(images, fit_zca(images, eps=1e-12))
    assert torch.allclose(covariance(white), identity, atol=1e-6)
    assert white.reshape(500, -1).mean(0).abs().max() < 1e-12
    # eps damps each eigendirection by lambda / (lambda + eps) instead: the covariance shrinks below I.
    damped = torch.linalg.eigvalsh(covariance(whiten(images, fit_zca(images, eps=0.1))))
    assert damped.max() < 1 and damped.min() > 0


# --------------------------------------------------------------------------------------------------
# Prepared splits


@pytest.fixture(scope="module")
def cifar_raw(tmp_path_factory):
    """A tiny CIFAR-10 in its real pickle format: 20 training and 10 test images."""
    return write_cifar10(tmp_path_factory.mktemp("raw"))


@pytest.fixture(scope="module")
def whitened_data(tmp_path_factory, cifar_raw):
    """`cifar_raw` prepared with zca; once per module, as the 3072 x 3072 eigendecomposition takes
    about 10 s of one CPU core."""
    data_dir = tmp_path_factory.mktemp("whitened")
    prepare_data("cifar10", cifar_raw["folder"], data_dir, zca=True)
    return data_dir


def pixels(rows: np.ndarray) -> torch.Tensor:
    """CIFAR rows of 3072 bytes as N x 3 x 32 x 32 floats in [0, 1] (ToTensor, no normalisation)."""
    return torch.from_numpy(rows.reshape(-1, 3, 32, 32)).double() / 255


def test_prepare_data_with_zca_stores_whitened_images_and_the_inverse(whitened_data, cifar_raw):
    train_pixels, test_pixels = pixels(cifar_raw["train"][0]), pixels(cifar_raw["test"][0])
    stored = {split: io.load_tensors(whitened_data / f"{split}.pt", required=("images", "labels"))
              for split in ("train", "test")}
    fitted = Zca(*(stored["train"][f"zca_{field}"].double() for field in Zca._fields))
    # The whitening is the training set's: its mean, and a transform and inverse of each other.
    assert torch.allclose(fitted.mean, train_pixels.reshape(20, -1).mean(0), atol=1e-6)
    assert torch.allclose(fitted.transform @ fitted.inverse, torch.eye(3072, dtype=torch.float64), atol=1e-4)
    assert stored["train"]["images"].reshape(20, -1).mean(0).abs().max() < 1e-5  # centred per feature
    for split, source in (("train", train_pixels), ("test", test_pixels)):
        content = stored[split]
        assert content["meta"]["zca"] is True and content["meta"]["zca_epsilon"] == ZCA_EPSILON
        assert content["images"].dtype == torch.float32 and content["images"].shape == source.shape
        # Both splits go through the same (training) whitening, from pixels in [0, 1].
        assert torch.allclose(content["images"].double(), whiten(source, fitted), atol=1e-4)
        assert torch.allclose(unwhiten(content["images"].double(), fitted), source, atol=1e-5)
        loaded = load_split(whitened_data, split)
        assert torch.equal(loaded.images, content["images"]) and loaded.zca is not None
        assert torch.equal(loaded.zca.inverse, stored["train"]["zca_inverse"])


def test_prepare_data_without_zca_stores_pixels_and_says_so(tmp_path, cifar_raw):
    prepare_data("cifar10", cifar_raw["folder"], tmp_path / "data")
    stored = io.load_tensors(tmp_path / "data" / "train.pt")
    assert stored["meta"]["zca"] is False and stored["images"].dtype == torch.uint8
    assert "zca_inverse" not in stored and load_split(tmp_path / "data", "train").zca is None


def test_zca_is_refused_for_imagenet(tmp_path):
    write_imagenet(tmp_path / "raw")
    with pytest.raises(LabelworthError, match="imagenet: ZCA whitening needs the training images in memory"):
        prepare_data("imagenet", tmp_path / "raw", tmp_path / "data", zca=True)


# --------------------------------------------------------------------------------------------------
# Image sets show real pixels


def grid_tiles(png_path, rows: int, columns: int, size: int = 32) -> torch.Tensor:
    """The rows x columns tiles of a grid from `save_image_grid` (make_grid, padding 2), as uint8."""
    grid = torch.from_numpy(np.array(Image.open(png_path).convert("RGB"))).permute(2, 0, 1)
    step = size + 2
    return torch.stack([torch.stack([grid[:, 2 + row * step:][:, :size, 2 + column * step:][:, :, :size]
                                     for column in range(columns)]) for row in range(rows)])


def test_random_set_of_whitened_data_shows_the_source_pixels(whitened_data, cifar_raw, tmp_path):
    distill_random(whitened_data, 2, 42, tmp_path / "images.pt", tmp_path / "grid.png")
    content = io.load_tensors(tmp_path / "images.pt", required=("images", "pixels", "source_indices"))
    source = torch.from_numpy(cifar_raw["train"][0].reshape(-1, 3, 32, 32))[content["source_indices"]]
    train = load_split(whitened_data, "train")
    assert torch.equal(content["images"], train.images[content["source_indices"]])  # whitened for the students
    assert content["pixels"].dtype == torch.uint8
    assert (content["pixels"].int() - source.int()).abs().max() <= 1
    shown = grid_tiles(tmp_path / "grid.png", rows=10, columns=2).flatten(0, 1)
    assert (shown.int() - source.int()).abs().max() <= 1

    drop_class(tmp_path / "images.pt", 3, tmp_path / "without3.pt", tmp_path / "without3.png")
    cut = io.load_tensors(tmp_path / "without3.pt", required=("pixels",))
    keep = content["labels"] != 3
    assert torch.equal(cut["pixels"], content["pixels"][keep])


def test_synthetic_set_of_whitened_data_stores_its_pixels(whitened_data, tmp_path):
    train = load_split(whitened_data, "train")
    images = train.images[::2] + 0.5  # a "distilled" image leaves the pixel range: clamped for display
    files = SynthesisFiles(tmp_path / "images.pt", tmp_path / "grid.png", tmp_path / "loss.csv",
                           tmp_path / "loss.png", tmp_path / "work")
    write_synthetic_set(files, images, train.labels[::2], ImageSetSpec("dm", 1), train, [1.0, 0.5])
    content = io.load_tensors(files.images, required=("pixels",))
    assert torch.equal(content["pixels"], displayed_pixels(images, train.zca))
    expected = (unwhiten(images, train.zca).clamp(0, 1) * 255).round()
    assert torch.equal(content["pixels"].float(), expected)


# --------------------------------------------------------------------------------------------------
# The config key


def test_toggling_zca_reruns_prepare_data(tmp_path, cifar_raw):
    """Prepared without the key (the schema's default, off), then planned with `zca: true`: the changed
    param makes prepare_data run again, and with it everything downstream of its files."""
    config = {**micro_config({"benchmark": {"soft_labels": [{"expert_epoch": [1, 1]}]}}), "dataset": "cifar10", "run": "cifar10",
              "data_root": str(cifar_raw["folder"])}
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    target = "results/cifar10/data/train.pt"
    snakemake(tmp_path, target, config=config_path)
    config_path.write_text(yaml.safe_dump({**config, "zca": True}))
    plan = snakemake(tmp_path, "--dry-run", target, config=config_path)
    assert planned_jobs(plan) == {"prepare_data": 1}
    assert "reason: Params have changed since last execution" in plan.stdout + plan.stderr
