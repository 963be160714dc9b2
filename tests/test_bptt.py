"""Ra-BPTT with learned labels (docs/method.md §8.5): the differentiable inner Adam, the window draw, the
outer optimiser's clip and clamp, and the method end to end on the tiny learnable Fashion-MNIST:
gradients reach images and labels, resume, NaN stops, and the CLI with the `learned` label spec."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from conftest import write_fashion_mnist
from labelworth import io
from labelworth.cli import main
from labelworth.data import load_split, prepare_data
from labelworth.distill.bptt import (AdamState, ClippedAdam, adam_step, distill_bptt, ema_update,
                                     initial_adam_state, inner_minibatch, window_start)
from labelworth.distill.synthesis import SynthesisFiles, real_image_init
from labelworth.errors import LabelworthError
from labelworth.labels import make_labels
from labelworth.settings import BpttSettings

BPTT = BpttSettings(arch="convnet-d1-w8", iterations=4, window=2, total_window=4, min_window=0, inner_lr=0.01,
                    lr=0.05, label_lr_scale=1.0, batch_real=20, batch_per_class=1, learn_labels=True,
                    init="real", save_every=2)


def files_in(folder: Path) -> SynthesisFiles:
    return SynthesisFiles(folder / "images.pt", folder / "grid.png", folder / "loss_curve.csv",
                          folder / "loss_curve.png", folder / "work")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bptt")
    prepare_data("fashion_mnist", write_fashion_mnist(root / "raw"), root / "data")
    return root / "data"


def test_the_differentiable_adam_step_takes_torch_adams_values():
    generator = torch.Generator().manual_seed(0)
    start = {"weight": torch.randn(4, 3, generator=generator, dtype=torch.float64),
             "bias": torch.randn(4, generator=generator, dtype=torch.float64)}
    reference = {name: value.clone().requires_grad_(True) for name, value in start.items()}
    optimizer = torch.optim.Adam(reference.values(), lr=0.01)
    parameters, state = dict(start), initial_adam_state(start)
    for _ in range(5):
        gradients = {name: torch.randn(value.shape, generator=generator, dtype=torch.float64)
                     for name, value in start.items()}
        gradients["bias"][0] = 0.0  # a coordinate whose gradient is always zero
        previous, before = parameters, {name: value.clone() for name, value in parameters.items()}
        for name, value in reference.items():
            value.grad = gradients[name].clone()
        optimizer.step()
        parameters, state = adam_step(parameters, gradients, state, lr=0.01)
        for name, value in reference.items():
            assert torch.equal(parameters[name], value.detach())
            assert torch.equal(state.exp_avg[name], optimizer.state[value]["exp_avg"])
            assert torch.equal(state.exp_avg_sq[name], optimizer.state[value]["exp_avg_sq"])
            assert torch.equal(previous[name], before[name])  # a pure function: its inputs are untouched
    assert state.step == 5


def test_the_adam_step_is_differentiable_and_finite_where_a_gradient_was_always_zero():
    weight = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    parameters = {"weight": torch.tensor([0.5, -0.5], dtype=torch.float64)}
    state = initial_adam_state(parameters)
    for _ in range(2):
        gradients = {"weight": weight * torch.tensor([1.0, 0.0], dtype=torch.float64)}  # the second is always 0
        parameters, state = adam_step(parameters, gradients, state, lr=0.1)
    (meta_gradient,) = torch.autograd.grad(parameters["weight"].sum(), weight)
    assert torch.isfinite(meta_gradient).all()
    assert meta_gradient[0] != 0 and meta_gradient[1] == 0
    assert isinstance(state, AdamState)


def test_window_starts_cover_their_range_and_no_more():
    generator = torch.Generator().manual_seed(0)
    starts = {window_start(3, 10, 4, generator) for _ in range(300)}
    assert starts == {3, 4, 5, 6}  # n + window <= total_window = 10
    assert {window_start(0, 5, 5, generator) for _ in range(20)} == {0}


def test_inner_minibatches_take_distinct_images_of_every_class_in_order():
    generator = torch.Generator().manual_seed(0)
    indices = inner_minibatch(images_per_class=5, num_classes=3, batch_per_class=2, generator=generator)
    per_class = indices.view(3, 2)
    assert torch.equal(per_class // 5, torch.arange(3).unsqueeze(1).expand(3, 2))
    assert (per_class[:, 0] < per_class[:, 1]).all()
    state = generator.get_state()
    for batch_per_class in (0, 5, 9):  # all images, and no draw
        assert torch.equal(inner_minibatch(5, 3, batch_per_class, generator), torch.arange(15))
    assert torch.equal(generator.get_state(), state)


def test_the_ema_starts_at_the_first_value_then_moves_a_tenth_of_the_way():
    assert ema_update(None, 5.0) == 5.0
    assert ema_update(5.0, 15.0) == pytest.approx(6.0)
    assert ema_update(5.0, 15.0, coef=0.5) == pytest.approx(10.0)


def test_the_outer_adam_clips_at_twice_the_norm_ema_and_clamps_labels():
    images = torch.zeros(4, requires_grad=True)
    labels = torch.full((3,), 0.001, requires_grad=True)
    optimizer = ClippedAdam([{"params": [images], "clip_ema_coef": 0.9},
                             {"params": [labels], "lr": 1.0, "min_value": 0.0}], lr=0.1)
    reference_images = torch.zeros(4, requires_grad=True)
    reference = torch.optim.Adam([reference_images], lr=0.1)
    for step, scale in enumerate((1.0, 10.0)):
        gradient = torch.tensor([scale, 0.0, 0.0, 0.0])
        images.grad, labels.grad = gradient.clone(), torch.ones(3)
        optimizer.step()
        # first step: EMA = 1, limit 2, no clip; second: EMA = 1 + 0.1 * 9 = 1.9, clipped to norm 3.8
        reference_images.grad = gradient * (1.0 if step == 0 else 3.8 / (10.0 + 1e-6))
        reference.step()
        torch.testing.assert_close(images.detach(), reference_images.detach())
        torch.testing.assert_close(images.grad.norm(), reference_images.grad.norm())
    assert optimizer.param_groups[0]["gradient_norm_ema"] == pytest.approx(1.9)
    assert torch.equal(labels.detach(), torch.zeros(3))  # Adam moved them below 0; the clamp held them at 0
    saved = optimizer.state_dict()
    restored = ClippedAdam([{"params": [torch.zeros(4, requires_grad=True)], "clip_ema_coef": 0.9},
                            {"params": [torch.zeros(3, requires_grad=True)], "lr": 1.0, "min_value": 0.0}], lr=0.1)
    restored.load_state_dict(saved)
    assert restored.param_groups[0]["gradient_norm_ema"] == optimizer.param_groups[0]["gradient_norm_ema"]


def test_distillation_moves_images_and_labels_and_keeps_labels_non_negative(data_dir, tmp_path):
    losses = distill_bptt(data_dir, 2, 42, dataclasses.replace(BPTT, iterations=3, save_every=10),
                          files_in(tmp_path), "cpu")
    assert len(losses) == 3 and all(torch.isfinite(torch.tensor(losses)))
    content = io.load_tensors(tmp_path / "images.pt", required=("learned_labels",))
    initial, classes = real_image_init(load_split(data_dir, "train"), 2, 42)
    assert torch.equal(content["labels"], classes)
    assert not torch.allclose(content["images"], initial)  # the meta-gradient reached the images
    one_hot = torch.nn.functional.one_hot(classes, 10).float()
    learned = content["learned_labels"]
    assert learned.shape == (20, 10) and not torch.equal(learned, one_hot)  # ... and the labels
    assert (learned >= 0).all() and (learned == 0).any()  # clamped, and the clamp was needed
    assert (tmp_path / "loss_curve.csv").read_text().count("\n") == 4


def test_noise_init_and_fixed_labels(data_dir, tmp_path):
    distill_bptt(data_dir, 1, 0, dataclasses.replace(BPTT, iterations=1, init="noise", learn_labels=False),
                 files_in(tmp_path), "cpu")
    content = io.load_tensors(tmp_path / "images.pt")
    assert torch.equal(content["labels"], torch.arange(10))
    assert torch.equal(content["learned_labels"], torch.eye(10))
    assert content["images"].std() > 0.5  # N(0, 1), not real images near the dataset's normalisation


def test_a_resumed_run_ends_with_the_images_and_labels_of_an_uninterrupted_run(data_dir, tmp_path, capsys):
    def run(folder: Path, iterations: int) -> dict:
        distill_bptt(data_dir, 1, 42, dataclasses.replace(BPTT, iterations=iterations), files_in(folder), "cpu")
        return io.load_tensors(folder / "images.pt")

    whole = run(tmp_path / "whole", 4)
    run(tmp_path / "parts", 2)
    capsys.readouterr()
    resumed = run(tmp_path / "parts", 4)
    assert "resuming after iteration 1" in capsys.readouterr().out
    assert torch.equal(resumed["images"], whole["images"])
    assert torch.equal(resumed["learned_labels"], whole["learned_labels"])
    assert (tmp_path / "whole" / "loss_curve.csv").read_text() == (tmp_path / "parts" / "loss_curve.csv").read_text()


def test_a_nan_loss_raises_and_writes_no_images(data_dir, tmp_path):
    with pytest.raises(FloatingPointError, match="iteration 0"):
        distill_bptt(data_dir, 1, 42, dataclasses.replace(BPTT, inner_lr=float("inf")), files_in(tmp_path), "cpu")
    assert not (tmp_path / "images.pt").exists()


def test_an_empty_window_range_is_refused(data_dir, tmp_path):
    with pytest.raises(LabelworthError, match="min_window"):
        distill_bptt(data_dir, 1, 42, dataclasses.replace(BPTT, min_window=3), files_in(tmp_path), "cpu")


def test_the_cli_writes_learned_labels_that_the_learned_label_spec_returns(data_dir, tmp_path):
    out = tmp_path / "bptt-ipc1" / "images.pt"
    options = [f"{key}={value}" for key, value in dataclasses.asdict(dataclasses.replace(BPTT, iterations=2)).items()]
    assert main(["distill-images", "--image-set", "bptt-ipc1", "--data-dir", str(data_dir),
                 "--options", *options, "--work-dir", str(tmp_path / "work"), "--out", str(out),
                 "--grid", str(out.parent / "grid.png"), "--device", "cpu"]) == 0
    content = io.load_tensors(out, required=("learned_labels",))
    assert content["images"].shape == (10, 1, 28, 28)
    assert content["meta"]["method"] == "bptt"
    labels = make_labels(out, "learned", [], tmp_path / "labels.pt")
    assert torch.equal(labels, content["learned_labels"])
    assert (out.parent / "loss_curve.png").exists()
