import copy
from pathlib import Path

import pytest
import yaml

from labelworth.config import benchmark_label_specs, check_config, check_number_strings
from labelworth.errors import LabelworthError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def config():
    return yaml.safe_load((ROOT / "config.yaml").read_text())


def test_default_and_tiny_configs_pass(config):
    check_number_strings(config)
    check_config(config)
    for other in ("tests/config.tiny.yaml", "configs/fashion_mnist_full.yaml"):
        check_config(yaml.safe_load((ROOT / other).read_text()))


def test_benchmark_plan_pairs_hard_and_soft_labels_per_ipc(config):
    config["benchmark"].update(images_per_class=[1, 10], expert_epoch=[2, 7], temperature=2.0)
    assert benchmark_label_specs(config) == {1: ["hard", "expert-e2-t2"], 10: ["hard", "expert-e7-t2"]}


def test_scientific_notation_without_dot_is_named(config):
    config = yaml.safe_load((ROOT / "config.yaml").read_text().replace("lr: 1.0e-2", "lr: 1e-2", 1))
    with pytest.raises(LabelworthError, match=r"expert\.lr: '1e-2'.*1\.0e-3"):
        check_number_strings(config)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda c: c.update(dataset="svhn"), "unknown dataset 'svhn'"),
        (lambda c: c["expert"].update(arch="vgg11"), "expert.arch: unknown architecture"),
        (lambda c: c["benchmark"].update(expert_epoch=[2, 5, 99]), "expert epoch 99.*expert.epochs is 15"),
        (lambda c: c["benchmark"].update(images_per_class=[1, 10, 7000]), "7000 is more than the smallest"),
        (lambda c: c["benchmark"].update(expert_epoch=[2, 5]), "one epoch per IPC"),
    ],
)
def test_semantic_errors_name_the_key(config, change, message):
    bad = copy.deepcopy(config)
    change(bad)
    with pytest.raises(LabelworthError, match=message):
        check_config(bad)
