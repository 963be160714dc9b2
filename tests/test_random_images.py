import numpy as np
import pytest
import torch

from labelworth import io
from labelworth.distill.random import distill_random, select_random
from labelworth.errors import LabelworthError


def test_selection_is_class_major_distinct_and_matches_the_reference_draw():
    classes = torch.tensor(np.random.default_rng(0).integers(0, 3, size=60))
    chosen = select_random(classes, 4, 3, seed=42)
    assert classes[chosen].tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert len(set(chosen.tolist())) == 12
    # the reference: np.random.seed(42); for each class, np.random.permutation(its indices)[:ipc]
    rng = np.random.RandomState(42)
    reference = [np.flatnonzero(classes.numpy() == c)[rng.permutation(int((classes == c).sum()))[:4]]
                 for c in range(3)]
    assert chosen.tolist() == np.concatenate(reference).tolist()


def test_too_many_images_per_class_is_a_clear_error():
    with pytest.raises(LabelworthError, match="class 1 has only 1"):
        select_random(torch.tensor([0, 0, 1]), 2, 2, seed=0)


def test_distill_random_writes_images_labels_indices_and_grid(fashion_mnist_data, tmp_path):
    distill_random(fashion_mnist_data, 3, 42, tmp_path / "images.pt", tmp_path / "grid.png")
    content = io.load_tensors(tmp_path / "images.pt", required=("images", "labels", "source_indices"))
    train = io.load_tensors(fashion_mnist_data / "train.pt")
    assert content["images"].shape == (30, 1, 28, 28)
    assert torch.equal(content["labels"], train["labels"][content["source_indices"]])
    assert content["meta"]["images_per_class"] == 3 and content["meta"]["method"] == "random"
    assert (tmp_path / "grid.png").stat().st_size > 0
