"""io: checksummed tensor and JSON files, bitwise-repeatable saves, atomic writes under concurrency."""

from __future__ import annotations

import json
import os
import threading
from collections import OrderedDict

import pytest
import torch

from labelworth import io
from labelworth.errors import LabelworthError


def _tensors() -> dict:
    return {"weights": torch.arange(12.0).view(3, 4), "labels": torch.tensor([2, 0, 1]),
            "state": OrderedDict(step=torch.tensor(3), nested={"lr": 0.1, "ids": [1, 2]})}


def test_round_trip_keeps_content_and_stores_its_checksum(tmp_path):
    io.save_tensors(tmp_path / "a.pt", _tensors(), io.provenance("test", seed=1))
    content = io.load_tensors(tmp_path / "a.pt", required=("weights",))
    assert torch.equal(content["weights"], _tensors()["weights"])
    assert content["meta"]["seed"] == 1
    assert content["meta"][io.CHECKSUM_KEY] == io.content_checksum(_tensors(), io.provenance("test", seed=1))


def test_checksum_depends_on_content_only():
    """Dict order and memory layout do not change it; one changed value, dtype or meta entry does."""
    tensors, meta = _tensors(), {"stage": "test", "seed": 1}
    reference = io.content_checksum(tensors, meta)
    reordered = dict(reversed(list(tensors.items())))
    reordered["weights"] = tensors["weights"].t().contiguous().t()  # same values, other strides
    assert io.content_checksum(reordered, dict(reversed(list(meta.items())))) == reference
    assert io.content_checksum(tensors, {**meta, io.CHECKSUM_KEY: "anything"}) == reference
    changed = {**tensors, "labels": torch.tensor([2, 0, 2])}
    retyped = {**tensors, "labels": tensors["labels"].int()}
    for other_tensors, other_meta in ((changed, meta), (retyped, meta), (tensors, {**meta, "seed": 2})):
        assert io.content_checksum(other_tensors, other_meta) != reference


def test_equal_content_gives_equal_bytes_whatever_the_file_name(tmp_path):
    """torch.save would name the zip archive after the (random) temporary file; the saved bytes must
    not depend on it, so repeated runs write identical files."""
    for name in ("first.pt", "second_with_a_longer_name.pt"):
        io.save_tensors(tmp_path / name, _tensors(), io.provenance("test"))
    assert (tmp_path / "first.pt").read_bytes() == (tmp_path / "second_with_a_longer_name.pt").read_bytes()


def test_silently_changed_tensor_is_named_as_corrupted(tmp_path):
    """A change torch.load cannot see (valid zip and pickle, other values) fails the checksum."""
    path = tmp_path / "labels.pt"
    io.save_tensors(path, _tensors(), io.provenance("test"))
    content = torch.load(path, weights_only=True)
    content["labels"][0] = 7
    torch.save(content, path)
    with pytest.raises(LabelworthError, match=rf"^{path}: the content does not match its checksum"):
        io.load_tensors(path)


def test_file_without_checksum_is_refused(tmp_path):
    path = tmp_path / "foreign.pt"
    torch.save({"labels": torch.zeros(2), "meta": {"stage": "elsewhere"}}, path)
    with pytest.raises(LabelworthError, match=rf"^{path}: has no checksum"):
        io.load_tensors(path)


def test_json_round_trip_verifies_values_not_layout(tmp_path):
    """read_json returns what write_json got (NaN included); reindenting keeps the file valid, a
    changed value or a missing checksum does not."""
    path = tmp_path / "result.json"
    payload = {"final_accuracy": {"mean": 0.5, "std": 0.0}, "per_class": [0.25, float("nan")],
               "curve": [[1, 0.125]]}
    io.write_json(path, payload)
    read = io.read_json(path)
    assert json.dumps(read, sort_keys=True) == json.dumps(payload, sort_keys=True)

    stored = json.loads(path.read_text())
    path.write_text(json.dumps(stored, indent=8))
    assert io.read_json(path)["curve"] == [[1, 0.125]]

    path.write_text(json.dumps({**stored, "final_accuracy": {"mean": 0.9, "std": 0.0}}))
    with pytest.raises(LabelworthError, match=rf"^{path}: the content does not match its checksum"):
        io.read_json(path)
    path.write_text(json.dumps(payload))
    with pytest.raises(LabelworthError, match=rf"^{path}: has no checksum"):
        io.read_json(path)


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "out.txt"
    io.write_text(path, "old")
    with pytest.raises(RuntimeError), io.atomic_path(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")
    assert path.read_text() == "old"
    assert [entry.name for entry in tmp_path.iterdir()] == ["out.txt"]


def test_concurrent_writers_of_one_path_leave_one_complete_file(tmp_path):
    """Each write has its own temporary file, so racing writers never mix their bytes: the survivor
    is one writer's whole file (its checksum verifies) and no temporary file is left."""
    path = tmp_path / "shared.pt"
    payloads = [torch.full((200_000,), float(writer)) for writer in range(2)]
    start = threading.Barrier(len(payloads))
    errors = []

    def write_repeatedly(payload):
        start.wait()
        try:
            for _ in range(10):
                io.save_tensors(path, {"values": payload}, io.provenance("test"))
        except Exception as error:  # surfaced below: a thread's exception would be lost
            errors.append(error)

    threads = [threading.Thread(target=write_repeatedly, args=(payload,)) for payload in payloads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    survivor = io.load_tensors(path)["values"]
    assert any(torch.equal(survivor, payload) for payload in payloads)
    assert [entry.name for entry in tmp_path.iterdir()] == ["shared.pt"]


def test_written_files_follow_the_umask_like_plain_writes(tmp_path):
    old = os.umask(0o027)
    try:
        io.write_text(tmp_path / "a.txt", "x")
        plain = tmp_path / "plain.txt"
        plain.write_text("x")
        assert (tmp_path / "a.txt").stat().st_mode & 0o777 == plain.stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(old)
