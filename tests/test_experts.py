import csv

import torch

from labelworth.resume import ExpertFiles
from labelworth.settings import ExpertSettings
from labelworth.experts import load_expert, train_expert
from labelworth.training import accuracy, predict_logits
from labelworth.data import load_split


def _train(data_dir, root, epochs, name="run", **options):
    settings = ExpertSettings(arch="convnet-d2-w8", lr=0.05, epochs=epochs, seeds=(3,), batch_size=32, **options)
    files = ExpertFiles(root / name / "checkpoints", root / name / "metrics.csv", root / "work" / name)
    return train_expert(data_dir, settings, files, device="cpu")


def test_expert_checkpoints_every_epoch_and_learns(fashion_mnist_data, tmp_path):
    metrics = _train(fashion_mnist_data, tmp_path, epochs=4)
    checkpoints = sorted((tmp_path / "run" / "checkpoints").glob("epoch_*.pt"))
    assert [path.name for path in checkpoints] == [f"epoch_{e:03d}.pt" for e in range(5)]
    rows = list(csv.DictReader(open(tmp_path / "run" / "metrics.csv")))
    assert [int(row["epoch"]) for row in rows] == list(range(5))
    assert float(rows[-1]["test_accuracy"]) > float(rows[0]["test_accuracy"]) + 0.2
    # the stored metric is the checkpoint's own accuracy, recomputed from the file
    test = load_split(fashion_mnist_data, "test")
    model = load_expert(checkpoints[-1])
    assert abs(accuracy(predict_logits(model, test.images), test.labels) - metrics[-1]["test_accuracy"]) < 1e-6
    # entropy of an untrained network's softmax is near log(10); training lowers it
    assert float(rows[0]["train_label_entropy"]) > 2.0 > float(rows[-1]["train_label_entropy"])


def test_interrupted_then_resumed_run_ends_with_identical_weights(fashion_mnist_data, tmp_path):
    _train(fashion_mnist_data, tmp_path, epochs=3, name="straight")
    _train(fashion_mnist_data, tmp_path, epochs=1, name="resumed")  # the "killed" run stops after epoch 1
    log = _train(fashion_mnist_data, tmp_path, epochs=3, name="resumed")
    assert len(log) == 4
    for epoch in range(4):
        straight = torch.load(tmp_path / "straight" / "checkpoints" / f"epoch_{epoch:03d}.pt")["state_dict"]
        resumed = torch.load(tmp_path / "resumed" / "checkpoints" / f"epoch_{epoch:03d}.pt")["state_dict"]
        assert all(torch.equal(straight[key], resumed[key]) for key in straight)
    assert (tmp_path / "straight" / "metrics.csv").read_text() == (tmp_path / "resumed" / "metrics.csv").read_text()


def test_a_runs_weight_decay_changes_its_experts_and_is_part_of_what_it_is(fashion_mnist_data, tmp_path):
    import pytest

    from conftest import micro_config
    from labelworth.config import load_config
    from labelworth.errors import LabelworthError
    from labelworth.io import load_tensors

    _train(fashion_mnist_data, tmp_path, epochs=1, name="plain")
    _train(fashion_mnist_data, tmp_path, epochs=1, name="decayed", weight_decay=0.5)
    plain, decayed = (load_tensors(tmp_path / name / "checkpoints" / "epoch_001.pt") for name in ("plain", "decayed"))
    assert not torch.equal(plain["state_dict"]["classifier.weight"], decayed["state_dict"]["classifier.weight"])
    # part of the run's identity where set; left to the trainer's recipe, the identity is as before it existed
    assert decayed["meta"]["weight_decay"] == 0.5 and "weight_decay" not in plain["meta"]
    config = micro_config({})
    config["experts"]["decayed"] = {**config["experts"]["convnet"], "weight_decay": 5.0e-4}
    config["defaults"] = {"expert_run": "convnet"}
    with pytest.raises(LabelworthError, match="experts.decayed.weight_decay: 0.0005, but experts.convnet trains the "
                                              "same run convnet-d2-w8-lr0.01 with None"):
        load_config(config)


def test_train_metrics_on_a_fixed_sample_leave_the_weights_alone(fashion_mnist_data, tmp_path):
    from labelworth.training import mean_entropy, train_metric_indices

    train = load_split(fashion_mnist_data, "train")
    sample = train_metric_indices(len(train.labels), 50)
    assert torch.equal(sample, train_metric_indices(len(train.labels), 50))  # fixed across calls
    assert len(set(sample.tolist())) == 50 and 0 <= sample.min() and sample.max() < len(train.labels)
    assert train_metric_indices(len(train.labels), len(train.labels)) is None  # not below the size: all
    assert train_metric_indices(len(train.labels), None) is None

    everything = _train(fashion_mnist_data, tmp_path, epochs=2, name="all", train_metric_images=None)
    sampled = _train(fashion_mnist_data, tmp_path, epochs=2, name="sampled", train_metric_images=50)
    for epoch in range(3):
        weights = [torch.load(tmp_path / name / "checkpoints" / f"epoch_{epoch:03d}.pt")["state_dict"]
                   for name in ("all", "sampled")]
        assert all(torch.equal(weights[0][key], weights[1][key]) for key in weights[0])
    assert [row["test_accuracy"] for row in everything] == [row["test_accuracy"] for row in sampled]
    # the stored train metrics are those of the sample, recomputed from the last checkpoint
    logits = predict_logits(load_expert(tmp_path / "sampled" / "checkpoints" / "epoch_002.pt"), train.images[sample])
    assert sampled[-1]["train_accuracy"] == accuracy(logits, train.labels[sample])
    assert abs(sampled[-1]["train_label_entropy"] - mean_entropy(logits.softmax(1))) < 1e-6
    assert [row["train_accuracy"] for row in sampled] != [row["train_accuracy"] for row in everything]
