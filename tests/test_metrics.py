"""Metrics: against direct loops over the samples, ties, one-hot targets, segmentation shapes, lookup by name,
argument errors."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from convkit import metrics


def rank_of_true_class(scores, label):
    """How many classes score strictly higher than the true one."""
    return sum(1 for s in scores if s > scores[label])


@given(n=st.integers(1, 12), classes=st.integers(1, 6), k=st.integers(1, 6), seed=st.integers(0, 2**31))
def test_accuracy_and_top_k_against_loops(n, classes, k, seed):
    k = min(k, classes)
    rng = np.random.default_rng(seed)
    scores = rng.integers(-2, 3, (n, classes)).astype(np.float64)  # small integers: many ties
    labels = rng.integers(0, classes, n)
    first_max = [int(np.flatnonzero(row == row.max())[0]) for row in scores]
    assert metrics.accuracy(scores, labels) == pytest.approx(np.mean([m == y for m, y in zip(first_max, labels)]))
    expected_top_k = np.mean([rank_of_true_class(row, y) < k for row, y in zip(scores, labels)])
    assert metrics.top_k_accuracy(scores, labels, k) == pytest.approx(expected_top_k)
    assert metrics.top_k_accuracy(scores, np.eye(classes)[labels], k) == pytest.approx(expected_top_k)
    assert metrics.top_k_accuracy(scores, labels, classes) == 1.0


def test_accuracy_worked_example_with_one_hot_and_segmentation_shapes():
    scores = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.2, 0.6], [0.4, 0.4, 0.2]])
    labels = np.array([1, 2, 2, 1])  # hit, miss, hit, miss (a tie goes to the first class)
    assert metrics.accuracy(scores, labels) == 0.5
    assert metrics.accuracy(scores, np.eye(3)[labels]) == 0.5
    # Row 4's class 1 ties for first place: a hit for top-k, not for accuracy's first maximum.
    assert metrics.top_k_accuracy(scores, labels, k=1) == 0.75
    assert metrics.top_k_accuracy(scores, labels, k=2) == 0.75  # row 2's class 2 is third
    assert metrics.top_k_accuracy(scores, labels, k=3) == 1.0
    pixels = scores.reshape(1, 2, 2, 3)
    assert metrics.accuracy(pixels, labels.reshape(1, 2, 2)) == 0.5


def test_binary_accuracy_thresholds_logits_by_default():
    logits = np.array([[2.0, -1.0], [0.0, 0.3]])
    targets = np.array([[1, 0], [1, 0]])
    assert metrics.binary_accuracy(logits, targets) == 0.5  # 0.0 is not above the threshold 0
    assert metrics.binary_accuracy(1 / (1 + np.exp(-logits)), targets, threshold=0.5) == 0.5
    assert metrics.binary_accuracy(logits, np.array([[0.9, 0.2], [0.1, 0.6]])) == 1.0  # soft targets


def test_empty_batches_give_nan():
    assert np.isnan(metrics.accuracy(np.zeros((0, 3)), np.zeros(0, int)))
    assert np.isnan(metrics.binary_accuracy(np.zeros(0), np.zeros(0)))


def test_get_by_name():
    assert metrics.get("accuracy") is metrics.accuracy
    assert metrics.get("binary_accuracy") is metrics.binary_accuracy
    scores = np.arange(12.0).reshape(2, 6)
    labels = np.array([0, 3])
    assert metrics.get("top_k_accuracy").__name__ == "top_5_accuracy"
    assert metrics.get("top_k_accuracy")(scores, labels) == 0.5
    assert metrics.get("top_3_accuracy")(scores, labels) == 0.5
    assert metrics.get("top_2_accuracy")(scores, labels) == 0.0
    assert metrics.get(len) is len
    with pytest.raises(ValueError, match="unknown metric 'f1'.*accuracy, binary_accuracy, top_k_accuracy"):
        metrics.get("f1")
    with pytest.raises(ValueError, match="top_0_accuracy"):
        metrics.get("top_0_accuracy")
    with pytest.raises(TypeError, match="5"):
        metrics.get(5)


@pytest.mark.parametrize("call,match", [
    (lambda: metrics.accuracy(np.zeros((3, 4)), np.array([0, 4, 1])), r"in \[0, 4\), got values in \[0, 4\]"),
    (lambda: metrics.accuracy(np.zeros((3, 4)), np.array([0, 1])), r"shape \(3,\)"),
    (lambda: metrics.accuracy(np.zeros((3, 4)), np.zeros(3)), "integer labels"),
    (lambda: metrics.accuracy(np.zeros(3), np.zeros(3, int)), r"\(N, \.\.\., K\)"),
    (lambda: metrics.top_k_accuracy(np.zeros((3, 4)), np.zeros(3, int), k=5), r"k must be an int in \[1, 4\]"),
    (lambda: metrics.top_k_accuracy(np.zeros((3, 4)), np.zeros(3, int), k=0), "got 0"),
    (lambda: metrics.binary_accuracy(np.zeros(3), np.zeros(4)), "y_pred's shape"),
])
def test_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()
