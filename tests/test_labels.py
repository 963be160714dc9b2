import torch
import torch.nn.functional as F

from labelworth.labels import hard_labels, keep_top_k, quantise_int8, soft_labels, stored_as_fp16, stored_as_int8
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


from labelworth.labels import (  # noqa: E402
    boost_low_entropy, entropy_per_row, keep_top_k, noisy_true_labels, remove_class_knowledge,
    shuffle_all_but_top, smoothed_to_entropy, swap_kth_largest_with_smallest,
)


def _expert_like(rows=40, classes=10, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return (torch.randn(rows, classes, generator=generator) * 2.5).softmax(1)


def test_swap_keeps_entropy_and_moves_the_kth_largest_to_the_bottom():
    labels = _expert_like()
    for k in (1, 3, 9):
        swapped = swap_kth_largest_with_smallest(labels, k)
        assert torch.allclose(entropy_per_row(swapped), entropy_per_row(labels))
        kth = labels.argsort(1, descending=True)[:, k - 1]
        assert torch.equal(swapped.gather(1, kth[:, None]).squeeze(1), labels.min(1).values)
    assert torch.equal(swap_kth_largest_with_smallest(labels, 1).argmax(1), labels.argmin(1))


def test_top_k_keeps_exactly_k_entries_in_place():
    labels = _expert_like()
    for k in (1, 2, 4):
        kept = keep_top_k(labels, k)
        assert torch.equal((kept > 0).sum(1), torch.full((40,), k))
        assert torch.equal(kept[kept > 0], labels[kept > 0])
        assert (kept.sum(1) <= 1 + 1e-6).all()
        assert torch.allclose(keep_top_k(labels, k, renormalise=True).sum(1), torch.ones(40))
    assert torch.equal(keep_top_k(labels, 10), labels)


def test_shuffle_keeps_top_entry_and_entropy_but_moves_the_rest():
    labels = _expert_like()
    shuffled = shuffle_all_but_top(labels, torch.Generator().manual_seed(1))
    assert torch.equal(shuffled.argmax(1), labels.argmax(1))
    assert torch.equal(shuffled.max(1).values, labels.max(1).values)
    assert torch.allclose(entropy_per_row(shuffled), entropy_per_row(labels))
    assert torch.equal(shuffled.sort(1).values, labels.sort(1).values)
    assert (shuffled != labels).any(1).float().mean() > 0.9  # structure is gone in almost every row


def test_zeroclass_removes_a_class_only_from_other_classes_images():
    labels, classes = _expert_like(), torch.arange(40) % 10
    treated = remove_class_knowledge(labels, classes, 6)
    assert torch.equal(treated[classes == 6], labels[classes == 6])
    assert (treated[classes != 6, 6] == 0).all()
    assert torch.equal(treated[:, :6], labels[:, :6]) and torch.equal(treated[:, 7:], labels[:, 7:])


def test_smoothing_matches_each_rows_entropy_with_the_true_class_on_top():
    labels, classes = _expert_like(), torch.arange(40) % 10
    smooth = smoothed_to_entropy(labels, classes)
    assert torch.allclose(entropy_per_row(smooth), entropy_per_row(labels), atol=1e-5)
    assert torch.allclose(smooth.sum(1), torch.ones(40))
    assert torch.equal(smooth.argmax(1), classes)
    others = smooth.clone()
    others[torch.arange(40), classes] = float("nan")
    assert torch.allclose(others.nan_to_num(0).sum(1), (9 * others.nanmean(1)))  # uniform off-target


def test_noise_labels_give_the_true_class_p_and_sum_to_one():
    classes = torch.arange(30) % 10
    labels = noisy_true_labels(classes, 10, 0.9, torch.Generator().manual_seed(0))
    assert torch.allclose(labels[torch.arange(30), classes], torch.full((30,), 0.9))
    assert torch.allclose(labels.sum(1), torch.ones(30))
    assert torch.equal(noisy_true_labels(classes, 10, 1.0, torch.Generator()), hard_labels(classes, 10))


def test_boost_changes_only_the_lowest_entropy_rows():
    labels = _expert_like()
    boosted = boost_low_entropy(labels, 0.25, 0.1, torch.Generator().manual_seed(0))
    changed = (boosted != labels).any(1)
    assert changed.sum() == 10
    assert set(changed.nonzero().squeeze(1).tolist()) == set(entropy_per_row(labels).argsort()[:10].tolist())
    assert torch.allclose(boosted.sum(1), torch.ones(40))


def test_class_similarity_rows_are_mean_soft_labels_of_each_class():
    from labelworth.labels import class_similarity

    probabilities = _expert_like(rows=30, classes=3)
    classes = torch.arange(30) % 3
    matrix = class_similarity(probabilities, classes, 3)
    assert torch.allclose(matrix.sum(1), torch.ones(3))
    assert torch.allclose(matrix[1], probabilities[classes == 1].mean(0))


def test_learned_labels_come_from_the_image_set_and_take_transforms(tmp_path):
    import pytest

    from labelworth import io
    from labelworth.errors import LabelworthError
    from labelworth.labels import make_labels

    learned = torch.tensor([[0.0, 2.0, 0.5], [1.5, 0.2, 0.0]])  # raw, non-negative, rows need not sum to 1
    meta = {"image_set": "bptt-ipc1", "num_classes": 3}
    io.save_tensors(tmp_path / "bptt.pt", {"images": torch.zeros(2, 1, 4, 4), "labels": torch.tensor([1, 0]),
                                           "learned_labels": learned}, meta)
    assert torch.equal(make_labels(tmp_path / "bptt.pt", "learned", [], tmp_path / "learned.pt"), learned)
    swapped = make_labels(tmp_path / "bptt.pt", "learned-swap1", [], tmp_path / "swapped.pt")
    assert torch.equal(swapped[0], torch.tensor([2.0, 0.0, 0.5]))

    io.save_tensors(tmp_path / "random.pt", {"images": torch.zeros(2, 1, 4, 4), "labels": torch.tensor([1, 0])},
                    meta | {"image_set": "random-ipc1"})
    with pytest.raises(LabelworthError, match="random-ipc1.*holds no labels of its own"):
        make_labels(tmp_path / "random.pt", "learned", [], tmp_path / "none.pt")
    assert not (tmp_path / "none.pt").exists()


def test_labels_stored_as_fp16_or_int8_read_back_within_their_precision():
    """Round trips (label budgets): fp16 within a relative 2^-11 (or 2^-25 below its normal range); int8
    within half a scale step,
    with each row's largest value exact, top-k's zeros kept, and storing twice a no-op."""
    generator = torch.Generator().manual_seed(0)
    labels = soft_labels([torch.randn(64, 10, generator=generator) * 3])
    half = stored_as_fp16(labels)
    # within a relative 2^-11 of each value, or half fp16's smallest step (2^-24) below its normal range
    assert ((half - labels).abs() <= labels.abs() * 2 ** -11 + 2 ** -25).all() and torch.equal(stored_as_fp16(half), half)
    for rows in (labels, keep_top_k(labels, 2)):
        codes, scale = quantise_int8(rows)
        assert codes.dtype == torch.int8 and scale.shape == (64, 1) and int(codes.abs().max()) <= 127
        back = stored_as_int8(rows)
        assert ((back - rows).abs() <= scale / 2 + 1e-7).all()
        assert torch.equal(back.amax(1), (codes.float() * scale).amax(1)) and torch.allclose(back.amax(1), rows.amax(1))
        assert torch.equal(back == 0, rows.abs() < scale / 2) and torch.equal(stored_as_int8(back), back)
    assert torch.equal(stored_as_int8(torch.zeros(2, 10)), torch.zeros(2, 10))  # an all-zero row
