"""Faults inside one stage, run through the CLI as the rules run it: corrupted input files and NaN
losses. Each must end the stage with one line naming the file (exit 2) or the epoch and batch
(exit 3), and write no output; a corrupted expert checkpoint is rebuilt by rerunning the expert."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from conftest import flip_tensor_byte
from labelworth import experts, io
from labelworth.cli import main
from labelworth.data import load_split

EXPERT_EPOCHS = 3


def error_line(capsys) -> str:
    """The stage's one error line: the last line of stderr, and the only one from labelworth (the rest
    is progress bars)."""
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    [line] = [line for line in lines if line.startswith("labelworth ")]
    assert line == lines[-1]
    return line


def train_expert_args(data_dir: Path, out: Path, lr: float = 0.05) -> list[str]:
    return ["train-expert", "--data-dir", str(data_dir), "--options", "arch=convnet-d2-w8", f"lr={lr}",
            f"epochs={EXPERT_EPOCHS}", "seeds=0", "batch_size=32", "--device", "cpu",
            "--checkpoint-dir", str(out / "checkpoints"), "--metrics", str(out / "metrics.csv"),
            "--work-dir", str(out / "work")]


def finite_state_epoch(work_dir: Path) -> int:
    """The epoch of the resume state in `work_dir`, after checking its weights are all finite."""
    state = io.load_tensors(work_dir / "state.pt", required=("model",))
    assert all(torch.isfinite(value).all() for value in state["model"].values() if value.is_floating_point())
    return state["meta"]["epoch"]


@pytest.fixture
def student_inputs(tmp_path, fashion_mnist_data) -> dict:
    """images.pt (the first 20 normalised test images) and their hard labels.pt, as the stages store
    them; their meta is minimal, as these tests fail before the meta is read."""
    test = load_split(fashion_mnist_data, "test")
    images, classes = test.images[:20], test.labels[:20]
    paths = {"images": tmp_path / "images.pt", "labels": tmp_path / "labels.pt", "data": fashion_mnist_data}
    io.save_tensors(paths["images"], {"images": images, "labels": classes}, io.provenance("test"))
    io.save_tensors(paths["labels"], {"labels": torch.eye(10)[classes]}, io.provenance("test"))
    return paths


def evaluate_students_args(inputs: dict, out: Path, lr: float = 0.01) -> list[str]:
    return ["evaluate-students", "--images", str(inputs["images"]), "--labels", str(inputs["labels"]),
            "--data-dir", str(inputs["data"]), "--out", str(out), "--options", "arch=convnet-d2-w8", "seeds=0",
            "epochs=2", f"lr={lr}", "eval_every=1", "--device", "cpu"]


# --------------------------------------------------------------------------------------------------
# Corrupted files


@pytest.mark.parametrize("damage, expected", [("flipped bit", "the content does not match its checksum"),
                                              ("truncated", "the file is corrupted or truncated")])
def test_corrupted_dataset_stops_the_expert_before_any_output(damage, expected, capsys, tmp_path,
                                                              fashion_mnist_data):
    train = fashion_mnist_data / "train.pt"
    if damage == "flipped bit":
        flip_tensor_byte(train)
    else:
        train.write_bytes(train.read_bytes()[: train.stat().st_size // 2])
    assert main(train_expert_args(fashion_mnist_data, tmp_path / "expert")) == 2
    line = error_line(capsys)
    assert line.startswith(f"labelworth train-expert: error: {train}: ") and expected in line
    assert "run `labelworth verify --repair` and then the snakemake command it prints" in line
    assert not (tmp_path / "expert").exists() or not any((tmp_path / "expert").iterdir())


def test_corrupted_labels_stop_the_students_before_any_output(capsys, tmp_path, student_inputs):
    flip_tensor_byte(student_inputs["labels"])
    out = tmp_path / "students.json"
    assert main(evaluate_students_args(student_inputs, out)) == 2
    line = error_line(capsys)
    assert line.startswith(f"labelworth evaluate-students: error: {student_inputs['labels']}: the content does")
    assert not out.exists()


def test_edited_student_result_stops_the_figure(capsys, tmp_path):
    result = tmp_path / "students.json"
    io.write_json(result, {"best_accuracy": {"mean": 0.25, "std": 0.0}, "meta": {"stage": "evaluate_students"}})
    stored = json.loads(result.read_text())
    stored["best_accuracy"]["mean"] += 0.5
    result.write_text(json.dumps(stored, indent=2))
    png = tmp_path / "figure.png"
    assert main(["figure", "soft_vs_hard", "--inputs", str(result), "--png", str(png), "--pdf",
                 str(tmp_path / "figure.pdf"), "--table-csv", str(tmp_path / "table.csv"), "--table-md",
                 str(tmp_path / "table.md")]) == 2
    assert error_line(capsys).startswith(f"labelworth figure: error: {result}: the content does not match")
    assert not png.exists()


def test_corrupted_expert_checkpoint_is_rebuilt_by_rerunning_the_expert(capsys, tmp_path, fashion_mnist_data):
    """Results hold hard links to the work folder's epochs, so corrupting one corrupts both; the
    rerun expert must notice, retrain from scratch and write the original bytes again."""
    out = tmp_path / "expert"
    assert main(train_expert_args(fashion_mnist_data, out)) == 0
    checkpoints = sorted((out / "checkpoints").glob("epoch_*.pt"))
    original = {path.name: path.read_bytes() for path in checkpoints}
    flip_tensor_byte(checkpoints[1])
    checkpoints[1].unlink()  # what the error message tells the user to do
    capsys.readouterr()
    assert main(train_expert_args(fashion_mnist_data, out)) == 0
    assert "a finished epoch is unusable" in capsys.readouterr().out
    assert {path.name: path.read_bytes() for path in (out / "checkpoints").glob("epoch_*.pt")} == original


# --------------------------------------------------------------------------------------------------
# NaN and inf


def test_diverging_expert_stops_with_epoch_batch_and_last_good_state(capsys, tmp_path, fashion_mnist_data):
    """lr 100 overflows within a few batches: exit 3, one line naming the stage, epoch, batch and the
    state file, no declared output, and the state holds the last finished epoch with finite weights."""
    out = tmp_path / "expert"
    assert main(train_expert_args(fashion_mnist_data, out, lr=100.0)) == 3
    line = error_line(capsys)
    match = re.fullmatch(r"labelworth train-expert: numerical fault: epoch (\d+), batch \d+ of \d+: training "
                         r"loss became (nan|inf); the state after epoch (\d+) is kept in (\S+); no output was "
                         r"written", line)
    assert match, line
    failed_epoch, kept_epoch, state_path = int(match[1]), int(match[3]), Path(match[4])
    assert kept_epoch == failed_epoch - 1 and state_path == out / "work" / "state.pt"
    assert finite_state_epoch(out / "work") == kept_epoch
    assert not (out / "checkpoints").exists() and not (out / "metrics.csv").exists()


def test_weights_spoilt_by_an_epochs_last_step_are_never_saved(capsys, monkeypatch, tmp_path,
                                                               fashion_mnist_data):
    """A last step can leave inf weights behind a finite loss; the epoch must not be saved as good."""
    real_train_epoch, calls = experts.train_epoch, []

    def spoil_second_epoch(model, *args):
        result = real_train_epoch(model, *args)
        calls.append(None)
        if len(calls) == 2:
            with torch.no_grad():
                next(model.parameters()).fill_(float("inf"))
        return result

    monkeypatch.setattr(experts, "train_epoch", spoil_second_epoch)
    out = tmp_path / "expert"
    assert main(train_expert_args(fashion_mnist_data, out)) == 3
    line = error_line(capsys)
    assert line.startswith("labelworth train-expert: numerical fault: epoch 2, weights became non-finite after "
                           "the last batch (")
    assert f"the state after epoch 1 is kept in {out / 'work' / 'state.pt'}" in line
    assert finite_state_epoch(out / "work") == 1
    assert not (out / "work" / "epoch_002.pt").exists() and not (out / "checkpoints").exists()


def test_diverging_students_stop_without_a_result(capsys, tmp_path, student_inputs):
    out = tmp_path / "students.json"
    assert main(evaluate_students_args(student_inputs, out, lr=1e12)) == 3
    line = error_line(capsys)
    assert re.fullmatch(r"labelworth evaluate-students: numerical fault: student seed 0, epoch \d+, "
                        r"batch \d+ of \d+: training loss became (nan|inf); no output was written", line), line
    assert not out.exists()


def test_a_full_disk_or_unwritable_folder_is_one_line_naming_the_path(capsys, tmp_path, fashion_mnist_data,
                                                                      monkeypatch):
    """ENOSPC and EACCES from a write reach the user as one line with the path and the cause."""
    import errno
    import os as os_module

    from labelworth import io as io_module

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, os_module.strerror(errno.ENOSPC), str(tmp_path / "images.pt"))

    monkeypatch.setattr(io_module.tempfile, "mkstemp", full_disk)
    assert main(["distill-images", "--image-set", "random-ipc1", "--data-dir", str(fashion_mnist_data),
                 "--out", str(tmp_path / "images.pt"), "--grid", str(tmp_path / "grid.png")]) == 2
    line = error_line(capsys)
    assert line.startswith(f"labelworth distill-images: error: {tmp_path / 'images.pt'}: No space left on device "
                           "(errno ENOSPC)") and not (tmp_path / "images.pt").exists()


def test_an_unreadable_file_is_not_called_corrupted(capsys, tmp_path, student_inputs, monkeypatch):
    import torch as torch_module

    def denied(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(torch_module, "load", denied)
    assert main(evaluate_students_args(student_inputs, tmp_path / "students.json")) == 2
    line = error_line(capsys)
    assert "cannot be read (Permission denied)" in line and "corrupted" not in line
