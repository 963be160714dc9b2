"""Online teacher labels, the KL loss and the CutMix recipe (labelworth/students.py, labelworth/cutmix.py)."""

from __future__ import annotations

import pytest
import torch

from labelworth import io
from labelworth.cutmix import CutMix, cutmix, random_resized_crop_flip
from labelworth.data import load_split
from labelworth.distill.random import select_random
from labelworth.errors import LabelworthError
from labelworth.experts import train_expert
from labelworth.labels import make_labels
from labelworth.resume import ExpertFiles
from labelworth.settings import ExpertSettings, StudentSettings
from labelworth.students import run_evaluate_students


@pytest.fixture
def labelled_set(fashion_mnist_data, tmp_path):
    """A random IPC-2 set, an epoch-2 expert and that expert's labels at T = 2 (make_labels)."""
    train_expert(fashion_mnist_data, ExpertSettings(arch="convnet-d2-w8", lr=0.05, epochs=2, seeds=(0,), batch_size=32),
                 ExpertFiles(tmp_path / "expert" / "checkpoints", tmp_path / "expert" / "metrics.csv", tmp_path / "work"),
                 device="cpu")
    train = load_split(fashion_mnist_data, "train")
    chosen = select_random(train.labels, 2, 10, seed=42)
    io.save_tensors(tmp_path / "images.pt", {"images": train.images[chosen], "labels": train.labels[chosen]},
                    {"image_set": "random-ipc2", "method": "random", "images_per_class": 2, "num_classes": 10})
    checkpoint = tmp_path / "expert" / "checkpoints" / "epoch_002.pt"
    make_labels(tmp_path / "images.pt", "expert-e2-t2", [checkpoint], tmp_path / "labels.pt", device="cpu")
    return tmp_path


def _students(folder, data_dir, **protocol):
    settings = StudentSettings(arch="convnet-d2-w8", seeds=(0, 1), epochs=4, lr=0.01, batch_size=8, eval_every=1,
                               **protocol)
    result = run_evaluate_students(folder / "images.pt", [folder / "labels.pt"], data_dir,
                                   folder / f"out-{len(list(folder.glob('out-*')))}.json", settings, device="cpu")
    return [student["curve"] for student in result["students"]]


def test_online_labels_without_augmentation_train_the_students_fixed_labels_train(labelled_set, fashion_mnist_data):
    for loss in ("soft_ce", "kl"):
        fixed = _students(labelled_set, fashion_mnist_data, augmentation="none", loss=loss)
        online = _students(labelled_set, fashion_mnist_data, augmentation="none", loss=loss, labels="online")
        assert [[epoch for epoch, _ in curve] for curve in online] == [[1, 2, 3, 4]] * 2
        for ours, theirs in zip(online, fixed):  # the same to within float rounding of one test image
            assert all(abs(a - b) <= 0.0101 for (_, a), (_, b) in zip(ours, theirs)), (loss, ours, theirs)


def test_online_labels_with_augmentation_differ_from_fixed_ones(labelled_set, fashion_mnist_data):
    fixed = _students(labelled_set, fashion_mnist_data, augmentation="cutmix")
    online = _students(labelled_set, fashion_mnist_data, augmentation="cutmix", labels="online")
    assert online != fixed  # the teacher labels what the crop and the mix made, not the stored image
    assert online == _students(labelled_set, fashion_mnist_data, augmentation="cutmix", labels="online")


def test_kl_loss_is_t_squared_kl_at_the_label_specs_temperature(labelled_set, fashion_mnist_data):
    import torch.nn.functional as F

    from labelworth.students import LabelSource, student_batch_loss

    settings = StudentSettings(arch="convnet-d2-w8", loss="kl", augmentation="none")
    step = student_batch_loss(settings, "flip", LabelSource(temperature=2.0))
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
    images, targets = torch.randn(5, 1, 2, 2), torch.softmax(torch.randn(5, 3), 1)
    loss, logits, _ = step(model, images, targets, torch.Generator())
    expected = 4.0 * (targets * (targets.log() - F.log_softmax(logits / 2.0, 1))).sum(1).mean()
    assert torch.allclose(loss, expected)


def test_online_labels_refuse_transformed_label_specs(labelled_set, fashion_mnist_data):
    labels = io.load_tensors(labelled_set / "labels.pt")
    meta = {**labels["meta"], "label_spec": "expert-e2-t2-swap1"}
    io.save_tensors(labelled_set / "labels.pt", {"labels": labels["labels"]}, meta)
    with pytest.raises(LabelworthError, match="online labels are the expert's own soft labels"):
        _students(labelled_set, fashion_mnist_data, labels="online")


def test_the_vectorised_engine_refuses_other_batches():
    with pytest.raises(LabelworthError, match="the vectorised engine trains fixed labels, soft_ce and dsa only"):
        StudentSettings(engine="vectorised", augmentation="cutmix")


def test_a_full_unflipped_crop_is_the_image_and_cutmix_pastes_the_partners_box():
    images = torch.rand(6, 1, 8, 8)
    assert random_resized_crop_flip(images, torch.Generator().manual_seed(0)).shape == images.shape
    for seed in range(5):
        mixed, mix = cutmix(images, torch.Generator().manual_seed(seed))
        changed = (mixed != images).any(0).any(0)  # the box: where any image changed (random pixels all differ)
        assert mix.kept == pytest.approx(1 - changed.sum().item() / 64)
        assert torch.equal(mixed[:, :, changed], images[mix.permutation][:, :, changed])
        assert torch.equal(mixed[:, :, ~changed], images[:, :, ~changed])
    targets = torch.softmax(torch.randn(6, 4), 1)
    assert torch.allclose(mix.mix(targets).sum(1), torch.ones(6))


def test_an_identity_crop_returns_the_image():
    from labelworth import cutmix as recipe

    images = torch.rand(3, 2, 8, 8)
    saved = recipe.CROP_SCALE, recipe.CROP_RATIO, recipe.PROB_FLIP
    try:
        recipe.CROP_SCALE, recipe.CROP_RATIO, recipe.PROB_FLIP = (1.0, 1.0), (1.0, 1.0), 0.0
        assert torch.allclose(recipe.random_resized_crop_flip(images, torch.Generator()), images, atol=1e-6)
    finally:
        recipe.CROP_SCALE, recipe.CROP_RATIO, recipe.PROB_FLIP = saved
    assert isinstance(CutMix(torch.arange(3), 0.5).mix(torch.eye(3)), torch.Tensor)
