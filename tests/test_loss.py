"""Losses: values against the float64 references of convkit.reference (the PyTorch documentation's formulas)
and, when it is installed, PyTorch itself; every gradient by finite differences in float64 for every option
family; float32 against float64; extreme and NaN logits; reductions over nothing; thread-count
independence; argument errors; the loss objects of convkit.losses."""
import numpy as np
import pytest
from conv_testing import numeric_gradient
from hypothesis import given
from hypothesis import strategies as st

import convkit
from convkit import losses, ops
from convkit.reference import (
    binary_cross_entropy_with_logits_reference,
    log_softmax_reference,
    mse_loss_reference,
    nll_loss_reference,
    softmax_cross_entropy_reference,
)

DTYPES = [np.float32, np.float64]
REDUCTIONS = ["mean", "sum", "none"]


@st.composite
def class_shapes(draw):
    """(N, *spatial, K): batch 0-4, 0-2 spatial axes, 1-7 classes."""
    rank = draw(st.integers(0, 2))
    return (draw(st.integers(0, 4)), *(draw(st.integers(1, 3)) for _ in range(rank)), draw(st.integers(1, 7)))


def upstream_gradient(rng, reduction, shape, dtype, given_):
    """dloss for reduction 'none' (when given_), else None."""
    return rng.standard_normal(shape).astype(dtype) if reduction == "none" and given_ else None


def check_loss(call, x, expected, dloss=None, seed=0):
    """call(x) -> (loss, grad). The loss must equal the float64 reference `expected` (float32 inputs are
    computed in double too, so only 'none' losses, rounded to float32, carry float32 error). The gradient
    must be, in float64, the central differences of the scalar the loss stands for (sum(dloss * losses)
    for reduction 'none'; dloss None means ones); in float32, the float64 gradient at the same point."""
    value, grad = call(x)
    assert grad.shape == x.shape and grad.dtype == x.dtype
    if isinstance(expected, np.ndarray):
        assert isinstance(value, np.ndarray) and value.dtype == x.dtype and value.shape == expected.shape
        tol = 1e-6 if x.dtype == np.float32 else 1e-12
    else:
        assert isinstance(value, float)
        tol = 1e-11
    np.testing.assert_allclose(value, expected, rtol=tol, atol=tol)
    if x.dtype == np.float32:
        _, grad64 = call(x.astype(np.float64))
        np.testing.assert_allclose(grad, grad64, rtol=1e-6, atol=1e-7 * max(1.0, np.abs(grad64).max(initial=0)))
        return
    if x.size == 0 or not np.all(np.isfinite(expected)):
        return
    weights = 1.0 if dloss is None else dloss
    rng = np.random.default_rng(seed)
    indices = [np.unravel_index(i, x.shape) for i in rng.choice(x.size, min(12, x.size), replace=False)]
    numeric = numeric_gradient(lambda: float(np.sum(call(x)[0] * weights)), x, indices)
    np.testing.assert_allclose(grad[tuple(np.array(indices).T)], numeric, rtol=1e-6, atol=1e-8)


def random_labels(rng, shape, classes, ignore_index, ignored_fraction):
    labels = rng.integers(0, classes, shape)
    labels[rng.random(shape) < ignored_fraction] = ignore_index
    return labels


# ---- softmax cross-entropy --------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@given(shape=class_shapes(), weighted=st.booleans(), smoothing=st.sampled_from([0.0, 0.1, 0.37, 1.0]),
       ignore_index=st.sampled_from([-100, -1, 255, 0]), ignored_fraction=st.sampled_from([0.0, 0.3]),
       reduction=st.sampled_from(REDUCTIONS), with_dloss=st.booleans(), seed=st.integers(0, 2**31))
def test_softmax_cross_entropy_with_labels(dtype, shape, weighted, smoothing, ignore_index, ignored_fraction,
                                           reduction, with_dloss, seed):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    labels = random_labels(rng, shape[:-1], shape[-1], ignore_index, ignored_fraction)
    weight = rng.uniform(0.1, 2.0, shape[-1]) if weighted else None
    dloss = upstream_gradient(rng, reduction, shape[:-1], dtype, with_dloss)
    options = dict(weight=weight, ignore_index=ignore_index, label_smoothing=smoothing, reduction=reduction)
    expected = softmax_cross_entropy_reference(x, labels, **options)
    check_loss(lambda z: ops.softmax_cross_entropy(z, labels, dloss=dloss, **options), x, expected, dloss, seed)


@pytest.mark.parametrize("dtype", DTYPES)
@given(shape=class_shapes(), weighted=st.booleans(), smoothing=st.sampled_from([0.0, 0.2, 1.0]),
       one_hot=st.booleans(), reduction=st.sampled_from(REDUCTIONS), with_dloss=st.booleans(),
       seed=st.integers(0, 2**31))
def test_softmax_cross_entropy_with_probabilities(dtype, shape, weighted, smoothing, one_hot, reduction, with_dloss,
                                                  seed):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    if one_hot:
        targets = np.eye(shape[-1], dtype=dtype)[rng.integers(0, shape[-1], shape[:-1])]
    else:
        targets = rng.dirichlet(np.ones(shape[-1]), shape[:-1]).astype(dtype).reshape(shape)
    weight = rng.uniform(0.1, 2.0, shape[-1]) if weighted else None
    dloss = upstream_gradient(rng, reduction, shape[:-1], dtype, with_dloss)
    options = dict(weight=weight, label_smoothing=smoothing, reduction=reduction)
    expected = softmax_cross_entropy_reference(x, targets, **options)
    check_loss(lambda z: ops.softmax_cross_entropy(z, targets, dloss=dloss, **options), x, expected, dloss, seed)


def test_one_hot_targets_give_the_labels_loss():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 2, 5))
    labels = rng.integers(0, 5, (6, 2))
    one_hot = np.eye(5)[labels]
    for smoothing in (0.0, 0.3):
        by_label = ops.softmax_cross_entropy(x, labels, label_smoothing=smoothing)
        by_target = ops.softmax_cross_entropy(x, one_hot, label_smoothing=smoothing)
        assert by_label[0] == pytest.approx(by_target[0], rel=1e-14)
        np.testing.assert_allclose(by_label[1], by_target[1], rtol=1e-13, atol=1e-16)


def test_softmax_cross_entropy_worked_values():
    # Equal logits: p = 1/K whatever the label or smoothing; the mean's gradient is (p - target) / N.
    labels = np.array([0, 1, 3])
    value, grad = ops.softmax_cross_entropy(np.zeros((3, 4)), labels, label_smoothing=0.4)
    assert value == pytest.approx(np.log(4), rel=1e-15)
    np.testing.assert_allclose(grad, (0.25 - (0.6 * np.eye(4)[labels] + 0.1)) / 3, rtol=1e-15, atol=1e-17)
    # Two classes: loss = log(1 + e^(z_other - z_label)); gradient p - onehot.
    value, grad = ops.softmax_cross_entropy(np.array([[2.0, 0.0]]), np.array([1]))
    assert value == pytest.approx(np.log1p(np.exp(2.0)), rel=1e-15)
    p0 = 1 / (1 + np.exp(-2.0))
    np.testing.assert_allclose(grad, [[p0, -p0]], rtol=1e-15)
    # Weighted mean divides by the weights of the labels present: a weighted average of the row losses.
    x = np.array([[1.0, 0.0], [0.0, 3.0]])
    rows = ops.softmax_cross_entropy(x, np.array([0, 0]), reduction="none")[0]
    value, _ = ops.softmax_cross_entropy(x, np.array([0, 0]), weight=[2.0, 5.0])
    assert value == pytest.approx((2 * rows[0] + 2 * rows[1]) / 4, rel=1e-15)


# ---- negative log-likelihood, binary cross-entropy, mean squared error -------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@given(shape=class_shapes(), weighted=st.booleans(), ignore_index=st.sampled_from([-100, 2]),
       ignored_fraction=st.sampled_from([0.0, 0.3]), reduction=st.sampled_from(REDUCTIONS),
       with_dloss=st.booleans(), seed=st.integers(0, 2**31))
def test_nll_loss(dtype, shape, weighted, ignore_index, ignored_fraction, reduction, with_dloss, seed):
    rng = np.random.default_rng(seed)
    x = log_softmax_reference(rng.standard_normal(shape) * 2).astype(dtype)
    labels = random_labels(rng, shape[:-1], shape[-1], ignore_index, ignored_fraction)
    weight = rng.uniform(0.1, 2.0, shape[-1]) if weighted else None
    dloss = upstream_gradient(rng, reduction, shape[:-1], dtype, with_dloss)
    options = dict(weight=weight, ignore_index=ignore_index, reduction=reduction)
    expected = nll_loss_reference(x, labels, **options)
    check_loss(lambda z: ops.nll_loss(z, labels, dloss=dloss, **options), x, expected, dloss, seed)


def test_nll_of_log_softmax_is_softmax_cross_entropy():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((7, 4))
    labels = rng.integers(0, 4, 7)
    weight = rng.uniform(0.5, 2, 4)
    nll, _ = ops.nll_loss(log_softmax_reference(x), labels, weight=weight)
    assert nll == pytest.approx(ops.softmax_cross_entropy(x, labels, weight=weight)[0], rel=1e-14)


@pytest.mark.parametrize("dtype", DTYPES)
@given(shape=st.lists(st.integers(0, 4), min_size=1, max_size=3).map(tuple), pos_weight=st.sampled_from(
       [None, "scalar", "per_class"]), reduction=st.sampled_from(REDUCTIONS), with_dloss=st.booleans(),
       soft=st.booleans(), seed=st.integers(0, 2**31))
def test_binary_cross_entropy_with_logits(dtype, shape, pos_weight, reduction, with_dloss, soft, seed):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 4).astype(dtype)
    targets = (rng.random(shape) if soft else rng.integers(0, 2, shape)).astype(dtype)
    pw = {None: None, "scalar": 2.5, "per_class": rng.uniform(0, 3, shape[-1])}[pos_weight]
    dloss = upstream_gradient(rng, reduction, shape, dtype, with_dloss)
    expected = binary_cross_entropy_with_logits_reference(x, targets, pos_weight=pw, reduction=reduction)
    check_loss(lambda z: ops.binary_cross_entropy_with_logits(z, targets, pos_weight=pw, reduction=reduction,
                                                              dloss=dloss), x, expected, dloss, seed)


@pytest.mark.parametrize("dtype", DTYPES)
@given(shape=st.lists(st.integers(0, 4), min_size=1, max_size=4).map(tuple), reduction=st.sampled_from(REDUCTIONS),
       with_dloss=st.booleans(), seed=st.integers(0, 2**31))
def test_mse_loss(dtype, shape, reduction, with_dloss, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    y = rng.standard_normal(shape).astype(dtype)
    dloss = upstream_gradient(rng, reduction, shape, dtype, with_dloss)
    check_loss(lambda p: ops.mse_loss(p, y, reduction=reduction, dloss=dloss), x,
               mse_loss_reference(x, y, reduction), dloss, seed)


# ---- against PyTorch --------------------------------------------------------------------------------------


def torch_value_and_grad(f, x):
    """f(torch logits, class axis last) -> torch loss; returns (loss as numpy, gradient of its sum)."""
    torch = pytest.importorskip("torch")
    t = torch.tensor(x, requires_grad=True)
    loss = f(t)
    loss.sum().backward()
    return loss.detach().numpy(), t.grad.numpy()


def class_axis_second(t):
    """A channels-last torch tensor (N, *spatial, K) as PyTorch's (N, K, *spatial)."""
    return t.movedim(-1, 1)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.25])
@pytest.mark.parametrize("targets_kind", ["labels", "probabilities"])
def test_softmax_cross_entropy_matches_pytorch(reduction, weighted, smoothing, targets_kind):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 3, 2, 5)) * 2
    if targets_kind == "labels":
        targets = random_labels(rng, (4, 3, 2), 5, -100, 0.25)
        torch_targets = torch.tensor(targets)
    else:
        targets = rng.dirichlet(np.ones(5), (4, 3, 2))
        torch_targets = class_axis_second(torch.tensor(targets))
    weight = rng.uniform(0.2, 2, 5) if weighted else None
    expected, expected_grad = torch_value_and_grad(lambda t: torch.nn.functional.cross_entropy(
        class_axis_second(t), torch_targets, weight=None if weight is None else torch.tensor(weight),
        label_smoothing=smoothing, reduction=reduction), x)
    value, grad = ops.softmax_cross_entropy(x, targets, weight=weight, label_smoothing=smoothing, reduction=reduction)
    np.testing.assert_allclose(value, expected, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_nll_bce_mse_match_pytorch(reduction):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(4)
    x = rng.standard_normal((5, 3, 4)) * 3
    labels = random_labels(rng, (5, 3), 4, 1, 0.2)
    weight = rng.uniform(0.2, 2, 4)
    expected = torch_value_and_grad(lambda t: F.nll_loss(class_axis_second(t), torch.tensor(labels),
                                                         weight=torch.tensor(weight), ignore_index=1,
                                                         reduction=reduction), x)
    got = ops.nll_loss(x, labels, weight=weight, ignore_index=1, reduction=reduction)
    targets = rng.random(x.shape)
    pos_weight = rng.uniform(0, 3, 4)
    expected += torch_value_and_grad(lambda t: F.binary_cross_entropy_with_logits(
        t, torch.tensor(targets), pos_weight=torch.tensor(pos_weight), reduction=reduction), x)
    got += ops.binary_cross_entropy_with_logits(x, targets, pos_weight=pos_weight, reduction=reduction)
    expected += torch_value_and_grad(lambda t: F.mse_loss(t, torch.tensor(targets), reduction=reduction), x)
    got += ops.mse_loss(x, targets, reduction=reduction)
    for ours, theirs in zip(got, expected):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-14)


# ---- numerical edges ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_extreme_logits_stay_finite_and_exact(dtype):
    x = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4], [1e4, 1e4, 1e4]], dtype=dtype)
    labels = np.array([1, 2, 0])
    value, grad = ops.softmax_cross_entropy(x, labels, reduction="none")
    np.testing.assert_allclose(value, [2e4, 0.0, np.log(3)], rtol=1e-6)
    np.testing.assert_allclose(grad, [[1, -1, 0], [0, 0, 0], [-2 / 3, 1 / 3, 1 / 3]], atol=1e-7)
    for smoothing in (0.0, 0.1):
        for targets in (labels, np.eye(3, dtype=dtype)[labels]):
            value, grad = ops.softmax_cross_entropy(x, targets, label_smoothing=smoothing, weight=[1, 2, 3])
            assert np.isfinite(value) and np.all(np.isfinite(grad))
            assert value == pytest.approx(softmax_cross_entropy_reference(x, targets, [1, 2, 3], -100, smoothing),
                                          rel=1e-12)
    z = np.array([1e4, -1e4, 1e4, -1e4], dtype=dtype)
    t = np.array([0, 1, 1, 0], dtype=dtype)
    losses_, grad = ops.binary_cross_entropy_with_logits(z, t, pos_weight=2.0, reduction="none")
    np.testing.assert_allclose(losses_, [1e4, 2e4, 0, 0], rtol=1e-12)
    np.testing.assert_allclose(grad, [1, -2, 0, 0], atol=1e-12)


def test_masked_class_logit_of_minus_infinity_costs_nothing_without_target_mass():
    x = np.array([[0.0, -np.inf, 1.0]])
    value, grad = ops.softmax_cross_entropy(x, np.array([2]))
    assert value == pytest.approx(np.log1p(np.exp(-1.0)))
    assert grad[0, 1] == 0 and np.all(np.isfinite(grad))


@pytest.mark.parametrize("dtype", DTYPES)
def test_nan_logits_propagate(dtype):
    x = np.zeros((3, 4), dtype=dtype)
    x[1, 2] = np.nan
    labels = np.array([0, 2, 1])  # row 1 picks the NaN (NLL reads only that)
    rows, grad = ops.softmax_cross_entropy(x, labels, reduction="none")
    assert np.isnan(rows[1]) and np.all(np.isnan(grad[1]))
    assert np.all(np.isfinite(rows[[0, 2]])) and np.all(np.isfinite(grad[[0, 2]]))
    assert np.isnan(ops.softmax_cross_entropy(x, labels)[0])
    assert np.isnan(ops.softmax_cross_entropy(x, np.eye(4)[labels])[0])
    assert np.isnan(ops.nll_loss(x, labels)[0])
    assert np.isnan(ops.binary_cross_entropy_with_logits(x, np.ones_like(x))[0])
    assert np.isnan(ops.mse_loss(x, np.ones_like(x))[0])
    # An ignored row is left out entirely, NaN or not (as PyTorch).
    value, grad = ops.softmax_cross_entropy(x, np.array([0, -100, 2]))
    assert np.isfinite(value) and np.all(grad[1] == 0)


def test_reductions_over_nothing():
    x = np.random.default_rng(5).standard_normal((3, 4))
    ignored = np.full(3, -100)
    value, grad = ops.softmax_cross_entropy(x, ignored, label_smoothing=0.1)
    assert np.isnan(value) and np.all(grad == 0)  # 0 / 0, as PyTorch; no gradient at all
    assert ops.softmax_cross_entropy(x, ignored, reduction="sum")[0] == 0
    assert np.all(ops.nll_loss(x, ignored, reduction="none")[0] == 0)
    empty = np.zeros((0, 4))
    for value, grad in (ops.softmax_cross_entropy(empty, np.zeros(0, int)), ops.softmax_cross_entropy(empty, empty),
                        ops.nll_loss(empty, np.zeros(0, int)), ops.binary_cross_entropy_with_logits(empty, empty),
                        ops.mse_loss(empty, empty)):
        assert np.isnan(value) and grad.shape == (0, 4)
    assert ops.mse_loss(empty, empty, reduction="sum")[0] == 0


def test_float32_inputs_are_accumulated_in_double():
    rng = np.random.default_rng(6)
    x = (rng.standard_normal((100_000, 3)) * 5).astype(np.float32)
    labels = rng.integers(0, 3, 100_000)
    value, _ = ops.softmax_cross_entropy(x, labels, label_smoothing=0.1)
    assert value == pytest.approx(softmax_cross_entropy_reference(x, labels, label_smoothing=0.1), rel=1e-12)
    value, _ = ops.mse_loss(x, np.zeros_like(x), reduction="sum")
    assert value == pytest.approx(float(np.sum(x.astype(np.float64) ** 2)), rel=1e-12)


def test_non_contiguous_inputs():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((5, 8)).T[::2]  # (4, 5) strided view
    labels = rng.integers(0, 5, 8)[::2]
    targets = rng.random((5, 8)).T[::2]
    for f, args in ((ops.softmax_cross_entropy, (labels,)), (ops.softmax_cross_entropy, (targets,)),
                    (ops.nll_loss, (labels,)), (ops.binary_cross_entropy_with_logits, (targets,)),
                    (ops.mse_loss, (targets,))):
        value, grad = f(x, *args)
        expected_value, expected_grad = f(np.ascontiguousarray(x), *(np.ascontiguousarray(a) for a in args))
        assert value == expected_value
        np.testing.assert_array_equal(grad, expected_grad)


def test_targets_take_the_logits_dtype():
    x = np.random.default_rng(8).standard_normal((4, 3)).astype(np.float32)
    one_hot = np.eye(3)[[0, 2, 1, 1]]  # float64, as np.eye gives
    value, grad = ops.softmax_cross_entropy(x, one_hot)
    assert grad.dtype == np.float32 and isinstance(value, float)
    assert ops.softmax_cross_entropy(x, one_hot.astype(np.int64))[0] == value
    assert ops.softmax_cross_entropy(x, one_hot.astype(bool))[0] == value
    assert ops.mse_loss(x, one_hot)[1].dtype == np.float32


@pytest.mark.parametrize("dtype", DTYPES)
def test_results_do_not_depend_on_the_thread_count(dtype):
    rng = np.random.default_rng(9)
    x = (rng.standard_normal((300, 2, 257)) * 3).astype(dtype)  # enough work for several threads
    labels = random_labels(rng, (300, 2), 257, -100, 0.1)
    targets = rng.random(x.shape).astype(dtype)
    calls = [
        lambda r: ops.softmax_cross_entropy(x, labels, weight=np.linspace(0.5, 2, 257), label_smoothing=0.1,
                                            reduction=r),
        lambda r: ops.softmax_cross_entropy(x, targets, reduction=r),
        lambda r: ops.nll_loss(x, labels, reduction=r),
        lambda r: ops.binary_cross_entropy_with_logits(x, targets, reduction=r),
        lambda r: ops.mse_loss(x, targets, reduction=r),
    ]
    for call in calls:
        for reduction in REDUCTIONS:
            results = []
            for threads in (1, 2, 3):
                convkit.set_num_threads(threads)
                results.append(call(reduction))
            for value, grad in results[1:]:
                np.testing.assert_array_equal(value, results[0][0])
                np.testing.assert_array_equal(grad, results[0][1])


# ---- argument errors ----------------------------------------------------------------------------------------

X = np.zeros((2, 3, 4))
LABELS = np.zeros((2, 3), dtype=np.int64)


@pytest.mark.parametrize("call,error,match", [
    (lambda: ops.softmax_cross_entropy(X, np.array([[0, 1, 2], [3, 4, 0]])), ValueError,
     r"targets\[1, 1\] = 4 is outside \[0, 4\)"),
    (lambda: ops.softmax_cross_entropy(X, np.array([[0, -1, 2], [3, 0, 0]])), ValueError, r"targets\[0, 1\] = -1"),
    (lambda: ops.nll_loss(X, np.array([[0, 7, 2], [3, 0, 0]]), ignore_index=7 + 1), ValueError,
     r"labels\[0, 1\] = 7 .*ignore_index=8"),
    (lambda: ops.softmax_cross_entropy(X, np.zeros((2, 4), np.int64)), ValueError, r"shape \(2, 3\)"),
    (lambda: ops.softmax_cross_entropy(X, np.zeros((2, 3, 5))), ValueError, r"got shape \(2, 3, 5\)"),
    (lambda: ops.softmax_cross_entropy(X, LABELS.astype(np.float32)), TypeError, "integer class indices"),
    (lambda: ops.softmax_cross_entropy(X, LABELS.astype(bool)), TypeError, "integer class indices"),
    (lambda: ops.softmax_cross_entropy(X, LABELS, weight=[1, 2, -0.5, 1]), ValueError, r"weight\[2\] = -0.5"),
    (lambda: ops.softmax_cross_entropy(X, LABELS, weight=[1, 2, np.nan, 1]), ValueError, r"weight\[2\] = nan"),
    (lambda: ops.softmax_cross_entropy(X, LABELS, weight=[1, 2, 3]), ValueError, r"shape \(4,\), got shape \(3,\)"),
    (lambda: ops.softmax_cross_entropy(X, LABELS, label_smoothing=1.5), ValueError, "label_smoothing.*1.5"),
    (lambda: ops.softmax_cross_entropy(X, LABELS, label_smoothing=-0.1), ValueError, "label_smoothing.*-0.1"),
    (lambda: ops.softmax_cross_entropy(X, LABELS, reduction="avg"), ValueError, "reduction.*'avg'"),
    (lambda: ops.softmax_cross_entropy(X, LABELS, ignore_index=1.0), TypeError, "ignore_index.*1.0"),
    (lambda: ops.softmax_cross_entropy(X, np.zeros(X.shape), ignore_index=0), ValueError,
     "ignore_index applies to class-index targets"),
    (lambda: ops.softmax_cross_entropy(X, LABELS, dloss=np.ones((2, 3))), ValueError, "reduction='mean'"),
    (lambda: ops.softmax_cross_entropy(X, LABELS, reduction="none", dloss=np.ones((2, 4))), ValueError,
     r"dloss must have the losses' shape \(2, 3\)"),
    (lambda: ops.softmax_cross_entropy(X.astype(np.int32), LABELS), TypeError, "logits.*int32"),
    (lambda: ops.softmax_cross_entropy(np.zeros(4), np.int64(0)), ValueError, "at least 2 axes"),
    (lambda: ops.softmax_cross_entropy(np.zeros((2, 0)), np.zeros(2, np.int64)), ValueError, "at least one class"),
    (lambda: ops.binary_cross_entropy_with_logits(X, np.zeros((2, 3))), ValueError, r"shape \(2, 3, 4\)"),
    (lambda: ops.binary_cross_entropy_with_logits(X, X, pos_weight=[1, 2]), ValueError, r"pos_weight.*\(4,\)"),
    (lambda: ops.binary_cross_entropy_with_logits(X, X, pos_weight=-1), ValueError, r"pos_weight\[0\] = -1"),
    (lambda: ops.binary_cross_entropy_with_logits(X, X.astype(str)), TypeError, "targets must be real"),
    (lambda: ops.mse_loss(X, X[0]), ValueError, "y_true must have the predictions' shape"),
    (lambda: ops.mse_loss(X, X, reduction="none", dloss=np.ones(3)), ValueError, "dloss must have"),
])
def test_bad_arguments_raise_naming_them(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_the_core_rejects_labels_out_of_range_itself():
    grad = np.empty((2, 3))
    with pytest.raises(ValueError, match="label 5 at row 1"):
        convkit._C.softmax_cross_entropy_labels(np.zeros((2, 3)), np.array([0, 5]), -100, None, 0.0, "mean", None,
                                                None, grad)


# ---- loss objects ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name,cls", [
    ("softmax_cross_entropy", losses.SoftmaxCrossEntropy), ("sparse_categorical_crossentropy", losses.SoftmaxCrossEntropy),
    ("categorical_crossentropy", losses.CategoricalCrossentropy), ("nll", losses.NLLLoss),
    ("binary_crossentropy", losses.BinaryCrossentropy), ("mse", losses.MeanSquaredError),
])
def test_get_by_name(name, cls):
    loss = losses.get(name)
    assert type(loss) is cls and loss.reduction == "mean"
    assert losses.get(loss.get_config()).get_config() == loss.get_config()


def test_get_rejects_unknown_names_listing_the_known_ones():
    with pytest.raises(ValueError, match="unknown loss 'hinge'.*binary_crossentropy.*categorical_crossentropy.*mse"):
        losses.get("hinge")
    with pytest.raises(ValueError, match="needs a 'name'"):
        losses.get({"reduction": "sum"})
    with pytest.raises(TypeError, match="3"):
        losses.get(3)


def test_get_returns_objects_and_callables_as_they_are():
    loss = losses.MeanSquaredError(reduction="sum")
    assert losses.get(loss) is loss
    assert losses.get(ops.mse_loss) is ops.mse_loss


def test_loss_objects_compute_what_the_functions_do():
    rng = np.random.default_rng(10)
    x = rng.standard_normal((6, 5))
    labels = rng.integers(0, 5, 6)
    labels[2] = 255
    loss = losses.SoftmaxCrossEntropy(weight=[1, 2, 3, 4, 5], ignore_index=255, label_smoothing=0.1)
    config = loss.get_config()
    assert config == {"name": "softmax_cross_entropy", "weight": [1.0, 2.0, 3.0, 4.0, 5.0], "ignore_index": 255,
                      "label_smoothing": 0.1, "reduction": "mean"}
    expected = ops.softmax_cross_entropy(x, labels, weight=[1, 2, 3, 4, 5], ignore_index=255, label_smoothing=0.1)
    for candidate in (loss, losses.get(config)):
        value, grad = candidate(x, labels)
        assert value == expected[0]
        np.testing.assert_array_equal(grad, expected[1])
    one_hot = np.eye(5)[rng.integers(0, 5, 6)]
    assert losses.get("categorical_crossentropy")(x, one_hot)[0] == ops.softmax_cross_entropy(x, one_hot)[0]
    assert losses.NLLLoss(reduction="sum")(x, labels % 5)[0] == ops.nll_loss(x, labels % 5, reduction="sum")[0]
    targets = rng.random(x.shape)
    bce = losses.BinaryCrossentropy(pos_weight=3.0)
    assert bce.get_config() == {"name": "binary_crossentropy", "pos_weight": [3.0], "reduction": "mean"}
    assert bce(x, targets)[0] == ops.binary_cross_entropy_with_logits(x, targets, pos_weight=3.0)[0]
    assert losses.get(bce.get_config())(x, targets)[0] == bce(x, targets)[0]
    assert losses.get("mse")(x, targets)[0] == ops.mse_loss(x, targets)[0]


def test_categorical_crossentropy_refuses_labels():
    with pytest.raises(ValueError, match="sparse_categorical_crossentropy"):
        losses.CategoricalCrossentropy()(np.zeros((3, 4)), np.array([0, 1, 2]))


@pytest.mark.parametrize("make,match", [
    (lambda: losses.SoftmaxCrossEntropy(weight=[1, -2]), r"weight\[1\] = -2"),
    (lambda: losses.SoftmaxCrossEntropy(weight=[[1, 2]]), "1-D"),
    (lambda: losses.SoftmaxCrossEntropy(label_smoothing=2), "label_smoothing"),
    (lambda: losses.CategoricalCrossentropy(reduction="mena"), "reduction"),
    (lambda: losses.NLLLoss(ignore_index="x"), "ignore_index"),
    (lambda: losses.BinaryCrossentropy(pos_weight=-1.0), "pos_weight"),
    (lambda: losses.get({"name": "mse", "reductio": "sum"}), "reductio"),
])
def test_loss_options_are_checked_at_construction(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()
