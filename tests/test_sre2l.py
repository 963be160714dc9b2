"""SRe2L (docs/method.md §8.6): the pure pieces of recover (pixel range, jitter, batch-norm statistics loss,
schedule), recovery from a tiny batch-norm teacher, resume, NaN stops, the CLI with the `learned`
label spec, and the refusal of a teacher without batch norm."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from conftest import write_fashion_mnist
from labelworth import io
from labelworth.cli import main
from labelworth.data import denormalize, load_split, normalize, prepare_data
from labelworth.distill import sre2l
from labelworth.distill.sre2l import (batch_norm_statistics_loss, cosine_lr, distill_sre2l, draw_jitter,
                                      jitter_groups, recorded_batch_norm_inputs, recover_loss, valid_pixel_range)
from labelworth.distill.synthesis import SynthesisFiles
from labelworth.errors import LabelworthError
from labelworth.resume import ExpertFiles
from labelworth.settings import ExpertSettings
from labelworth.experts import load_expert, train_expert
from labelworth.labels import make_labels
from labelworth.settings import Sre2lSettings
from labelworth.models import ConvNet
from labelworth.specs import checkpoint_name, dataset_spec

TEACHER_ARCH = "convnet-d1-w8-batchnorm"
SETTINGS = Sre2lSettings(iterations=60, lr=0.25, r_bn=0.01, first_bn_multiplier=10.0, jitter=2, save_every=2)


def files_in(folder: Path) -> SynthesisFiles:
    return SynthesisFiles(folder / "images.pt", folder / "grid.png", folder / "loss_curve.csv",
                          folder / "loss_curve.png", folder / "work")


def train_teacher(data_dir: Path, root: Path, arch: str, epochs: int) -> Path:
    train_expert(data_dir, ExpertSettings(arch=arch, lr=0.05, epochs=epochs, seeds=(0,), batch_size=32),
                 ExpertFiles(root / "checkpoints", root / "metrics.csv", root / "work"), device="cpu")
    return root / "checkpoints" / checkpoint_name(epochs)


@pytest.fixture(scope="module")
def teacher(tmp_path_factory) -> tuple[Path, Path]:
    """Data, and a batch-norm teacher trained for 2 epochs, made once for the module."""
    root = tmp_path_factory.mktemp("sre2l")
    data_dir = root / "data"
    prepare_data("fashion_mnist", write_fashion_mnist(root / "raw"), data_dir)
    return data_dir, train_teacher(data_dir, root / "teacher", TEACHER_ARCH, 2)


def test_the_pixel_range_is_that_of_pixels_0_to_255():
    spec = dataset_spec("fashion_mnist")
    low, high = valid_pixel_range(spec)
    assert low.shape == high.shape == (1, 1, 1)
    torch.testing.assert_close(low, normalize(torch.zeros(1, 1, 1, dtype=torch.uint8), spec))
    torch.testing.assert_close(denormalize(low, spec), torch.zeros(1, 1, 1))
    torch.testing.assert_close(denormalize(high, spec), torch.ones(1, 1, 1))
    torch.testing.assert_close(high, (1 - torch.tensor(spec.mean)) / torch.tensor(spec.std) * torch.ones(1, 1, 1))


def test_jitter_permutes_each_image_and_is_undone_by_the_opposite_roll():
    images = torch.randn(6, 2, 7, 9, generator=torch.Generator().manual_seed(0))
    offsets, flips = draw_jitter(torch.Generator().manual_seed(1), 3, 3, flip=True)
    assert offsets.abs().max() <= 3 and offsets.shape == (3, 2)
    jittered = jitter_groups(images, offsets, flips)
    assert not torch.equal(jittered, images)
    torch.testing.assert_close(jittered.flatten(1).sort(1).values, images.flatten(1).sort(1).values, rtol=0, atol=0)
    undone = jitter_groups(jittered, -offsets, torch.zeros(3, dtype=torch.bool))
    undone = jitter_groups(undone, torch.zeros_like(offsets), flips)
    assert torch.equal(undone, images)
    assert not draw_jitter(torch.Generator().manual_seed(1), 50, 3, flip=False)[1].any()


def set_running_statistics_from(model: ConvNet, images: torch.Tensor) -> None:
    """Running mean and biased variance of every batch-norm layer := those of `images` (a training-mode
    forward normalises with the batch's biased statistics, as eval mode then does with these)."""
    model.train()
    with torch.no_grad(), recorded_batch_norm_inputs(model) as recorded:
        model(images)
    for layer, features in recorded:
        layer.running_mean.copy_(features.mean((0, 2, 3)))
        layer.running_var.copy_(features.var((0, 2, 3), unbiased=False))
    model.eval()


def statistics_loss(model, images, groups: int = 1) -> torch.Tensor:
    with torch.no_grad(), recorded_batch_norm_inputs(model) as recorded:
        model(images)
    assert len(recorded) == 2
    return batch_norm_statistics_loss(recorded, groups, first_bn_multiplier=10.0)


def test_the_statistics_loss_is_zero_at_the_running_statistics_and_separates_groups():
    torch.manual_seed(0)
    model = ConvNet(1, 3, 8, width=4, depth=2, norm="batchnorm")
    images = torch.randn(6, 1, 8, 8)
    set_running_statistics_from(model, images)
    assert statistics_loss(model, images).item() < 1e-5
    assert statistics_loss(model, images + 0.1).item() > 1e-2
    assert statistics_loss(model, 1.5 * images).item() > 1e-2  # same means, other variances
    other = torch.randn(6, 1, 8, 8)
    both = statistics_loss(model, torch.cat([images, other]), groups=2)
    torch.testing.assert_close(both, torch.cat([statistics_loss(model, images), statistics_loss(model, other)]))


def test_the_cosine_schedule_falls_from_lr_to_zero():
    assert cosine_lr(0.25, 0, 100) == 0.25
    assert cosine_lr(0.25, 50, 100) == pytest.approx(0.125)
    assert cosine_lr(0.25, 100, 100) == pytest.approx(0.0)


def test_recover_lowers_the_loss_and_relabels_with_the_teacher(teacher, tmp_path):
    data_dir, checkpoint = teacher
    losses = distill_sre2l(data_dir, checkpoint, 1, 7, SETTINGS, files_in(tmp_path), "cpu")
    assert len(losses) == SETTINGS.iterations and all(torch.isfinite(torch.tensor(losses)))
    recovered = io.load_tensors(tmp_path / "images.pt")
    assert torch.equal(recovered["labels"], torch.arange(10))
    model = load_expert(checkpoint)
    noise = torch.randn(10, 1, 28, 28, generator=torch.Generator().manual_seed(7))  # the run's first draw
    loss = [recover_loss(model, images, recovered["labels"], 1, SETTINGS.r_bn, SETTINGS.first_bn_multiplier).item()
            for images in (noise, recovered["images"])]
    assert loss[1] < 0.5 * loss[0]
    low, high = valid_pixel_range(load_split(data_dir, "train").spec)
    assert (recovered["images"] >= low).all() and (recovered["images"] <= high).all()
    learned = recovered["learned_labels"]
    torch.testing.assert_close(learned, torch.softmax(model(recovered["images"]), 1))
    assert (learned.argmax(1) == recovered["labels"]).float().mean() >= 0.8
    assert (tmp_path / "loss_curve.csv").read_text().count("\n") == SETTINGS.iterations + 1


def test_groups_are_recovered_class_major_from_their_own_noise(teacher, tmp_path):
    data_dir, checkpoint = teacher
    distill_sre2l(data_dir, checkpoint, 2, 7, dataclasses.replace(SETTINGS, iterations=2), files_in(tmp_path), "cpu")
    recovered = io.load_tensors(tmp_path / "images.pt")
    assert torch.equal(recovered["labels"], torch.arange(10).repeat_interleave(2))
    assert recovered["learned_labels"].shape == (20, 10)


def test_a_resumed_run_ends_with_the_images_of_an_uninterrupted_run(teacher, tmp_path, monkeypatch, capsys):
    data_dir, checkpoint = teacher
    settings = dataclasses.replace(SETTINGS, iterations=5)
    whole = distill_sre2l(data_dir, checkpoint, 2, 3, settings, files_in(tmp_path / "whole"), "cpu")

    calls = []

    def stopped_after_three_iterations(*args):
        calls.append(1)
        if len(calls) > 3:
            raise KeyboardInterrupt
        return recover_loss(*args)

    monkeypatch.setattr(sre2l, "recover_loss", stopped_after_three_iterations)
    with pytest.raises(KeyboardInterrupt):
        distill_sre2l(data_dir, checkpoint, 2, 3, settings, files_in(tmp_path / "parts"), "cpu")
    monkeypatch.undo()
    capsys.readouterr()
    resumed = distill_sre2l(data_dir, checkpoint, 2, 3, settings, files_in(tmp_path / "parts"), "cpu")
    assert "resuming after iteration 1" in capsys.readouterr().out  # saved every 2 iterations
    assert resumed == whole
    content = [io.load_tensors(tmp_path / run / "images.pt") for run in ("whole", "parts")]
    for key in ("images", "learned_labels"):
        assert torch.equal(content[0][key], content[1][key])

    # the cosine schedule spans `iterations`, so a run of another length does not resume this one
    distill_sre2l(data_dir, checkpoint, 2, 3, dataclasses.replace(settings, iterations=6),
                  files_in(tmp_path / "parts"), "cpu")
    assert "belongs to another run" in capsys.readouterr().out


def test_a_nan_loss_stops_before_any_image_is_written(teacher, tmp_path):
    data_dir, checkpoint = teacher
    with pytest.raises(FloatingPointError, match="iteration 0: .* nan; no state was saved"):
        distill_sre2l(data_dir, checkpoint, 1, 0, dataclasses.replace(SETTINGS, r_bn=float("nan")),
                      files_in(tmp_path), "cpu")
    assert not (tmp_path / "images.pt").exists()


def distill_by_cli(data_dir: Path, checkpoint: Path, folder: Path, *options: str) -> dict:
    out = folder / "sre2l-ipc1" / "images.pt"
    assert main(["distill-images", "--image-set", "sre2l-ipc1", "--data-dir", str(data_dir),
                 "--teacher", str(checkpoint), "--options", "iterations=4", "save_every=2",
                 "jitter=1", *options, "--seed", "0", "--work-dir", str(folder / "work"), "--out", str(out),
                 "--grid", str(out.parent / "grid.png"), "--device", "cpu"]) == 0
    return io.load_tensors(out)


def test_the_cli_writes_learned_labels_that_the_learned_label_spec_reads(teacher, tmp_path, capsys):
    data_dir, checkpoint = teacher
    content = distill_by_cli(data_dir, checkpoint, tmp_path)
    assert content["meta"]["image_set"] == "sre2l-ipc1" and content["meta"]["iterations"] == 4
    torch.testing.assert_close(content["learned_labels"].sum(1), torch.ones(10))
    labels = make_labels(tmp_path / "sre2l-ipc1" / "images.pt", "learned", [], tmp_path / "labels.pt", device="cpu")
    assert torch.equal(labels, content["learned_labels"])

    # another relabel temperature reuses the finished recovery
    capsys.readouterr()
    hotter = distill_by_cli(data_dir, checkpoint, tmp_path, "relabel_temperature=4.0")
    assert "resuming after iteration 3" in capsys.readouterr().out
    assert torch.equal(hotter["images"], content["images"])
    torch.testing.assert_close(hotter["learned_labels"], torch.softmax(content["learned_labels"].log() / 4, 1))


def test_a_teacher_without_batch_norm_is_refused(teacher, tmp_path):
    data_dir, _ = teacher
    checkpoint = train_teacher(data_dir, tmp_path / "plain", "convnet-d1-w8", 1)
    with pytest.raises(LabelworthError, match="has no batch norm"):
        distill_sre2l(data_dir, checkpoint, 1, 0, SETTINGS, files_in(tmp_path), "cpu")
    assert not (tmp_path / "images.pt").exists()
