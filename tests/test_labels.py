import torch
import torch.nn.functional as F

from labelworth.labels import hard_labels, soft_labels
from labelworth.training import mean_entropy


def test_hard_labels_are_one_hot_and_give_the_integer_cross_entropy():
    classes = torch.tensor([0, 2, 1, 2])
    labels = hard_labels(classes, 3)
    assert torch.equal(labels.sum(1), torch.ones(4)) and torch.equal(labels.argmax(1), classes)
    logits = torch.randn(4, 3)
    assert torch.allclose(F.cross_entropy(logits, labels), F.cross_entropy(logits, classes))


def test_soft_labels_are_distributions_and_temperature_flattens_them():
    logits = torch.randn(6, 10) * 3
    cold, warm, hot = (soft_labels([logits], t) for t in (0.5, 1.0, 4.0))
    for labels in (cold, warm, hot):
        assert torch.allclose(labels.sum(1), torch.ones(6))
    assert torch.allclose(warm, logits.softmax(1))
    assert mean_entropy(cold) < mean_entropy(warm) < mean_entropy(hot)
    assert torch.equal(cold.argmax(1), hot.argmax(1))  # temperature never changes the top class


def test_ensemble_labels_average_logits_not_probabilities():
    first, second = torch.randn(5, 4), torch.randn(5, 4)
    assert torch.allclose(soft_labels([first, second]), ((first + second) / 2).softmax(1))
    assert not torch.allclose(soft_labels([first, second]), (first.softmax(1) + second.softmax(1)) / 2)
