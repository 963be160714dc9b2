"""Synthetic-image distillation: trajectory buffers, DM, MTT (and TESLA's gradient), resume, NaN
stops, the CLI and the workflow's plan. Everything runs on the tiny learnable Fashion-MNIST."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from conftest import ROOT, planned_jobs, snakemake, write_fashion_mnist
from labelworth import io
from labelworth.cli import main
from labelworth.data import load_split, prepare_data
from labelworth.distill.dm import distill_dm, distribution_matching_loss, random_network
from labelworth.distill.mtt import (distill_mtt, matching_loss, plan_steps, sgd_step, tesla_gradients,
                                   trajectory_network, unrolled_gradients)
from labelworth.distill.synthesis import SynthesisFiles, real_image_init
from labelworth.resume import run_iterations
from labelworth.errors import LabelworthError
from labelworth.resume import ExpertFiles
from labelworth.settings import ExpertSettings
from labelworth.experts import load_expert, train_expert
from labelworth.specs import checkpoint_name
from labelworth.settings import DmSettings, MttSettings, from_options
from labelworth.models import ConvNet
from labelworth.trajectories import dump_trajectories, flat_parameters, load_trajectories

DISTILL_CONFIG = ROOT / "tests" / "config.distill.yaml"
ARCH = "convnet-d1-w8"
DM = DmSettings(arch=ARCH, iterations=6, lr_img=1.0, batch_real=10, save_every=2)
MTT = MttSettings(iterations=4, syn_steps=6, expert_epochs=1, max_start_epoch=2, lr_img=100.0, lr_lr=1e-4,
                  lr_teacher=0.05, batch_syn=10, save_every=2)


def files_in(folder: Path) -> SynthesisFiles:
    return SynthesisFiles(folder / "images.pt", folder / "grid.png", folder / "loss_curve.csv",
                          folder / "loss_curve.png", folder / "work")


def train_experts(data_dir: Path, root: Path, seeds=(0, 1), epochs: int = 3) -> list[Path]:
    folders = []
    for seed in seeds:
        folder = root / f"seed{seed}"
        train_expert(data_dir, ExpertSettings(arch=ARCH, lr=0.05, epochs=epochs, seeds=(seed,), batch_size=32),
                     ExpertFiles(folder / "checkpoints", folder / "metrics.csv", root / "work" / f"seed{seed}"), "cpu")
        folders.append(folder / "checkpoints")
    return folders


@pytest.fixture(scope="module")
def buffered_experts(tmp_path_factory) -> tuple[Path, Path, list[Path]]:
    """Data, and a buffer of two experts' epochs 0..3, made once for the module (training costs most)."""
    root = tmp_path_factory.mktemp("buffered")
    data_dir = root / "data"
    prepare_data("fashion_mnist", write_fashion_mnist(root / "raw"), data_dir)
    folders = train_experts(data_dir, root / "experts")
    path = root / "trajectories.pt"
    dump_trajectories(folders, MTT.max_start_epoch + MTT.expert_epochs, path)
    return data_dir, path, folders


def test_a_buffer_row_in_a_network_gives_the_checkpoints_logits(buffered_experts):
    _, path, folders = buffered_experts
    buffer = load_trajectories(path)
    assert buffer["parameters"].shape[:2] == (2, 4)
    maps = Path("/proc/self/maps")
    if maps.exists():  # Linux: the buffer is read through a memory map, not copied into memory
        assert str(path) in maps.read_text()
    assert buffer["meta"]["seeds"] == [0, 1]
    images = torch.randn(5, 1, 28, 28)
    for expert, folder in enumerate(folders):
        for epoch in (0, 3):
            checkpoint = load_expert(folder / checkpoint_name(epoch))
            model = load_expert(folders[0] / checkpoint_name(0))  # another network, overwritten by the row
            torch.nn.utils.vector_to_parameters(buffer["parameters"][expert, epoch].clone(), model.parameters())
            assert torch.equal(model(images), checkpoint(images))


def test_a_corrupted_buffer_is_refused(buffered_experts, tmp_path):
    path = Path(shutil.copyfile(buffered_experts[1], tmp_path / "trajectories.pt"))
    content = io.load_tensors(path)
    content["parameters"][0, 0, 0] += 1.0
    torch.save(content, path)
    with pytest.raises(LabelworthError, match="does not match its checksum"):
        load_trajectories(path)


def held_out_dm_loss(images: torch.Tensor, train, networks: int = 8) -> float:
    """The DM objective averaged over fixed networks and DSA draws that no training iteration used
    (iterations draw their own), comparing with all real images of each class: a noise-free yardstick."""
    real = [train.images[train.labels == label] for label in range(train.spec.num_classes)]
    synthetic = list(images.view(train.spec.num_classes, -1, *images.shape[1:]).unbind(0))
    losses = [distribution_matching_loss(random_network(ARCH, train.spec, 10_000 + seed, "cpu"), real, synthetic,
                                         train.spec.dsa_strategy, [seed] * len(real)).item()
              for seed in range(networks)]
    return sum(losses) / networks


def test_dm_moves_the_images_towards_the_real_distribution(fashion_mnist_data, tmp_path):
    settings = dataclasses.replace(DM, iterations=10, lr_img=0.1)
    losses = distill_dm(fashion_mnist_data, 2, 42, settings, files_in(tmp_path), "cpu")
    assert all(torch.isfinite(torch.tensor(losses)))
    train = load_split(fashion_mnist_data, "train")
    initial, classes = real_image_init(train, 2, 42)
    distilled = io.load_tensors(tmp_path / "images.pt")
    assert torch.equal(distilled["labels"], classes)  # class-major, like random-ipc2
    assert not torch.allclose(distilled["images"], initial)
    assert held_out_dm_loss(distilled["images"], train) < 0.8 * held_out_dm_loss(initial, train)
    assert (tmp_path / "loss_curve.csv").read_text().count("\n") == 11
    assert (tmp_path / "loss_curve.png").stat().st_size > 0


def held_out_matching_loss(images, classes, lr: float, buffer: dict, train) -> float:
    """The MTT loss averaged over every (expert, start epoch) of the buffer, with fixed minibatch and
    DSA draws that no training iteration used: a noise-free yardstick of images and lr."""
    model = trajectory_network(buffer, train.spec, "cpu", torch.float32)
    parameters, losses = buffer["parameters"], []
    for expert in range(parameters.shape[0]):
        for start in range(MTT.max_start_epoch):
            theta = parameters[expert, start].clone().requires_grad_(True)
            steps = plan_steps(len(images), MTT.batch_syn, MTT.syn_steps, torch.Generator().manual_seed(10_000 + start))
            for step in steps:
                theta = sgd_step(model, theta, images, classes, torch.tensor(lr), step, train.spec.dsa_strategy,
                                 create_graph=False).detach().requires_grad_(True)
            target = parameters[expert, start + MTT.expert_epochs]
            losses.append(matching_loss(theta, parameters[expert, start], target).item())
    return sum(losses) / len(losses)


def test_mtt_lowers_the_matching_loss_and_learns_the_lr(buffered_experts, tmp_path):
    fashion_mnist_data, path, _ = buffered_experts
    losses = distill_mtt(fashion_mnist_data, path, 2, 42, dataclasses.replace(MTT, iterations=10),
                         files_in(tmp_path), "cpu")
    assert all(torch.isfinite(torch.tensor(losses)))
    distilled = io.load_tensors(tmp_path / "images.pt")
    assert distilled["meta"]["learned_lr"] != pytest.approx(MTT.lr_teacher)
    train, buffer = load_split(fashion_mnist_data, "train"), load_trajectories(path)
    initial, classes = real_image_init(train, 2, 42)
    before = held_out_matching_loss(initial, classes, MTT.lr_teacher, buffer, train)
    after = held_out_matching_loss(distilled["images"], distilled["labels"], distilled["meta"]["learned_lr"],
                                   buffer, train)
    assert after < 0.8 * before


def test_tesla_gradient_equals_the_unrolled_gradient():
    torch.manual_seed(0)
    model = ConvNet(1, 3, 8, width=4, depth=1).double()
    theta_start = flat_parameters(model)
    theta_target = theta_start + 0.01 * torch.randn_like(theta_start)
    classes = torch.tensor([0, 0, 1, 1, 2, 2])
    steps = plan_steps(6, 4, 3, torch.Generator().manual_seed(1))
    gradients = []
    for meta_gradients in (unrolled_gradients, tesla_gradients):
        images = torch.randn(6, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
        images.requires_grad_(True)
        lr = torch.tensor(0.1, dtype=torch.float64, requires_grad=True)
        loss = meta_gradients(model, theta_start, theta_target, images, classes, lr, steps,
                              "color_crop_cutout_flip_scale_rotate")
        gradients.append((loss, images.grad, lr.grad))
    (unrolled_loss, unrolled_images, unrolled_lr), (tesla_loss, tesla_images, tesla_lr) = gradients
    assert tesla_loss == pytest.approx(unrolled_loss, rel=1e-12)
    torch.testing.assert_close(tesla_images, unrolled_images, rtol=1e-6, atol=1e-12)
    torch.testing.assert_close(tesla_lr, unrolled_lr, rtol=1e-6, atol=1e-12)
    assert unrolled_images.abs().max() > 0


@pytest.mark.parametrize("method", ["dm", "mtt"])
def test_a_resumed_run_ends_with_the_images_of_an_uninterrupted_run(method, buffered_experts, tmp_path, capsys):
    fashion_mnist_data, buffer, _ = buffered_experts

    def run(folder: Path, iterations: int) -> torch.Tensor:
        if method == "dm":
            distill_dm(fashion_mnist_data, 1, 42, dataclasses.replace(DM, iterations=iterations),
                       files_in(folder), "cpu")
        else:
            distill_mtt(fashion_mnist_data, buffer, 1, 42, dataclasses.replace(MTT, iterations=iterations),
                        files_in(folder), "cpu")
        return io.load_tensors(folder / "images.pt")["images"]

    whole = run(tmp_path / "whole", 4)
    run(tmp_path / "parts", 2)  # "stopped" after 2 iterations: its work folder keeps the state
    capsys.readouterr()
    resumed = run(tmp_path / "parts", 4)
    assert "resuming after iteration 1" in capsys.readouterr().out
    assert torch.equal(resumed, whole)
    assert (tmp_path / "whole" / "loss_curve.csv").read_text() == (tmp_path / "parts" / "loss_curve.csv").read_text()


def test_a_nan_loss_stops_naming_the_iteration_before_the_images_move(tmp_path):
    images = torch.ones(3, requires_grad=True)
    optimizer = torch.optim.SGD([images], lr=0.1)

    def compute_gradients(iteration: int) -> float:
        loss = images.sum() * (float("nan") if iteration == 3 else 1.0)
        loss.backward()
        return loss.item()

    with pytest.raises(FloatingPointError, match=r"iteration 3: .* nan; the state after iteration 1 is kept"):
        run_iterations(compute_gradients, {"images": images}, [optimizer], torch.Generator(), 10, 2,
                       tmp_path, {"run": 1}, "test")
    torch.testing.assert_close(images.detach(), torch.full((3,), 1 - 0.3))  # three good steps, no NaN step


def test_method_options_parse_to_settings_and_refuse_unknown_keys():
    assert from_options(MttSettings, ["tesla=True", "lr_lr=1e-05", "syn_steps=3"]) == \
        MttSettings(tesla=True, lr_lr=1e-5, syn_steps=3)
    with pytest.raises(LabelworthError, match="key one of"):
        from_options(DmSettings, ["syn_steps=3"])


def method_options(block: dict) -> list[str]:
    return [f"{key}={value}" for key, value in block.items() if key not in ("num_experts", "expert_run")]


def test_dm_and_mtt_run_through_the_cli(buffered_experts, tmp_path):
    """The methods blocks of config.distill.yaml, as the workflow passes them (experts from the module)."""
    data_dir, _, folders = buffered_experts
    config = yaml.safe_load(DISTILL_CONFIG.read_text())
    mtt = config["methods"]["mtt"]
    buffer = tmp_path / "trajectories.pt"
    assert main(["dump-trajectories", "--checkpoint-dirs", str(folders[0]), "--epochs",
                 str(mtt["max_start_epoch"] + mtt["expert_epochs"]), "--out", str(buffer)]) == 0
    for method, extra in (("dm", [f"arch={config['experts']['convnet']['arch']}"]), ("mtt", [])):
        out = tmp_path / method / "images.pt"
        sources = ["--trajectories", str(buffer)] if method == "mtt" else []
        assert main(["distill-images", "--image-set", f"{method}-ipc1", "--data-dir", str(data_dir),
                     *sources, "--options", *extra, *method_options(config["methods"][method]),
                     "--work-dir", str(tmp_path / "work" / method), "--out", str(out),
                     "--grid", str(tmp_path / method / "grid.png"), "--device", "cpu"]) == 0
        assert io.load_tensors(out)["images"].shape == (10, 1, 28, 28)
        assert (out.parent / "loss_curve.png").exists()


def test_mtt_without_trajectories_is_refused(fashion_mnist_data, tmp_path, capsys):
    assert main(["distill-images", "--image-set", "mtt-ipc1", "--data-dir", str(fashion_mnist_data),
                 "--work-dir", str(tmp_path), "--out", str(tmp_path / "images.pt"),
                 "--grid", str(tmp_path / "grid.png")]) == 2
    assert "give --trajectories" in capsys.readouterr().err


def test_the_workflow_plans_trajectories_and_synthetic_sets(tmp_path):
    targets = [f"results/fashion_mnist/images/{image_set}/images.pt"
               for image_set in ("random-ipc1", "dm-ipc1", "mtt-ipc1", "mtt-ipc1-without2")]
    result = snakemake(tmp_path, "-n", *targets, "--quiet", "rules", config=DISTILL_CONFIG)
    assert planned_jobs(result) == {"prepare_data": 1, "train_expert": 1, "dump_trajectories": 1,
                                    "distill_images": 2, "synthesise_images": 2}


def test_a_buffer_longer_than_the_run_trains_its_experts_as_far_as_it_needs(tmp_path):
    config = yaml.safe_load(DISTILL_CONFIG.read_text())
    config["methods"]["mtt"].update(max_start_epoch=5, num_experts=2)  # epochs 0..7 of a run of 3 epochs
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, "-n", "results/fashion_mnist/trajectories/convnet-d2-w8-lr0.01.pt", "--quiet",
                       "rules", config=path)
    assert planned_jobs(result) == {"prepare_data": 1, "train_expert": 2, "dump_trajectories": 1}
