"""labelworth verify: every checksummed result is checked; --repair removes what is bad (an expert's
whole checkpoints/ folder for a bad checkpoint) and prints the command that rebuilds it."""

from __future__ import annotations

import torch

from conftest import flip_tensor_byte
from labelworth import io
from labelworth.cli import main
from labelworth.verify import declared_output, verify


def write_results(root):
    results = root / "results" / "fashion_mnist"
    checkpoint = results / "experts" / "convnet-d2-w8-lr0.01" / "seed0" / "checkpoints" / "epoch_001.pt"
    io.save_tensors(checkpoint, {"state_dict": {"weight": torch.arange(100.0)}}, {"stage": "test"})
    labels = results / "labels" / "random-ipc1" / "hard.pt"
    io.save_tensors(labels, {"labels": torch.eye(10)}, {"stage": "test"})
    student = results / "students" / "random-ipc1" / "hard" / "convnet-d2-w8.json"
    io.write_json(student, {"best_accuracy": {"mean": 0.5}})
    return checkpoint, labels, student


def test_good_files_pass_and_each_kind_of_damage_is_found(tmp_path):
    checkpoint, labels, student = write_results(tmp_path)
    assert verify(tmp_path / "results") == []
    flip_tensor_byte(checkpoint)
    labels.write_bytes(labels.read_bytes()[:100])
    student.write_text(student.read_text().replace("0.5", "0.6"))
    bad = verify(tmp_path / "results")
    assert [item.path for item in bad] == [checkpoint, labels, student]
    assert "does not match its checksum" in bad[0].reason and "cannot be read" in bad[1].reason
    assert declared_output(checkpoint) == checkpoint.parent and declared_output(labels) == labels


def test_repair_removes_the_declared_outputs_and_prints_the_rebuild_command(tmp_path, capsys, monkeypatch):
    checkpoint, labels, _ = write_results(tmp_path)
    flip_tensor_byte(checkpoint)
    flip_tensor_byte(labels)
    monkeypatch.chdir(tmp_path)
    assert main(["verify"]) == 1
    assert "2 of 3 files are bad" in capsys.readouterr().out and labels.exists()
    assert main(["verify", "--repair"]) == 0
    command = capsys.readouterr().out.strip().splitlines()[-1]
    assert command == ("snakemake all "
                       "results/fashion_mnist/experts/convnet-d2-w8-lr0.01/seed0/checkpoints "
                       "results/fashion_mnist/labels/random-ipc1/hard.pt")
    assert not checkpoint.parent.exists() and not labels.exists()
    assert main(["verify"]) == 0
