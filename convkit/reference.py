"""Independent float64 NumPy oracles for convolution, pooling and matmul, for tests.

Layouts are those of convkit.conv_spec: channels-last data x (N, *spatial, C),
convolution weight (*kernel_size, C_in // groups, C_out) and transposed
convolution weight (*kernel_size, C_out // groups, C_in).  Convolution is
cross-correlation, as in deep-learning libraries.  Every function loops over
the kernel offsets; for each offset it takes the strided window of samples
that offset touches and contracts it with that offset's weight slice, group
by group, with einsum.  Slow but simple; no im2col.  Pooling loops over the
output positions and reduces each window, gathered by its list of input taps.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from typing import Optional

import numpy as np
import numpy.typing as npt

from .conv_spec import ConvSpec, IntOrTuple, Padding, conv_spec, conv_transpose_spec
from .pool_spec import adaptive_output_size, pool_spec

_NUMPY_PAD_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def pad_reference(
    x: npt.ArrayLike, pad_before: Sequence[int], pad_after: Sequence[int], mode: str = "zeros"
) -> np.ndarray:
    """Pad the spatial axes of channels-last x (N, *spatial, C) -> (N, *(spatial + before + after), C).

    mode: "zeros", "reflect" (np.pad 'reflect', the edge sample is not
    repeated), "replicate" (np.pad 'edge') or "circular" (np.pad 'wrap').
    """
    widths = [(0, 0), *zip(pad_before, pad_after), (0, 0)]
    return np.pad(x, widths, mode=_NUMPY_PAD_MODES[mode])


def conv_reference(
    x: npt.ArrayLike,
    w: npt.ArrayLike,
    b: Optional[npt.ArrayLike] = None,
    *,
    stride: IntOrTuple = 1,
    padding: Padding = "valid",
    dilation: IntOrTuple = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> np.ndarray:
    """Convolution of x (N, *spatial, C_in) with w (*kernel_size, C_in // groups, C_out).

    Plus bias b (C_out,) when given.  Returns float64 (N, *out_spatial, C_out).
    Options as in conv_spec.
    """
    spec = conv_spec(np.shape(x), np.shape(w), stride=stride, padding=padding, dilation=dilation,
                     groups=groups, padding_mode=padding_mode)
    xp = pad_reference(np.asarray(x, np.float64), spec.pad_before, spec.pad_after, spec.padding_mode)
    w = np.asarray(w, np.float64)
    y = np.zeros((xp.shape[0], *spec.out_spatial, spec.out_channels))
    for offset, window in _offset_windows(spec, spec.out_spatial):
        y += _grouped("...gi,igo->...go", xp[window], w[offset], spec.groups)
    return _add_bias(y, b)


def conv_backward_reference(
    dy: npt.ArrayLike,
    x: npt.ArrayLike,
    w: npt.ArrayLike,
    *,
    stride: IntOrTuple = 1,
    padding: Padding = "valid",
    dilation: IntOrTuple = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients (dx, dw, db) of sum(dy * conv_reference(x, w, b, ...)) w.r.t. x, w and b.

    dy: (N, *out_spatial, C_out); x: (N, *spatial, C_in);
    w: (*kernel_size, C_in // groups, C_out).
    Returns float64 dx (N, *spatial, C_in), dw (*kernel_size, C_in // groups, C_out), db (C_out,).
    dx scatters dy back through every kernel offset onto the padded input, then
    folds the padded samples onto the input samples they copy.
    """
    spec = conv_spec(np.shape(x), np.shape(w), stride=stride, padding=padding, dilation=dilation,
                     groups=groups, padding_mode=padding_mode)
    dy = np.asarray(dy, np.float64)
    expected = (np.shape(x)[0], *spec.out_spatial, spec.out_channels)
    if dy.shape != expected:
        raise ValueError(f"dy must have shape {expected}, got shape {dy.shape}")
    xp = pad_reference(np.asarray(x, np.float64), spec.pad_before, spec.pad_after, spec.padding_mode)
    w = np.asarray(w, np.float64)
    dy_rows = _split_groups(dy.reshape(-1, spec.out_channels), spec.groups)
    dw = np.zeros_like(w)
    for offset, window in _offset_windows(spec, spec.out_spatial):
        x_rows = _split_groups(xp[window].reshape(-1, spec.in_channels), spec.groups)
        dw[offset] = np.einsum("mgi,mgo->igo", x_rows, dy_rows).reshape(w.shape[-2:])
    dx = _pad_adjoint(_scatter(dy, w, spec, xp.shape[1:-1]), spec)
    return dx, dw, dy.sum(axis=tuple(range(dy.ndim - 1)))


def conv_transpose_reference(
    x: npt.ArrayLike,
    w: npt.ArrayLike,
    b: Optional[npt.ArrayLike] = None,
    *,
    stride: IntOrTuple = 1,
    padding: Padding = "valid",
    output_padding: IntOrTuple = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
) -> np.ndarray:
    """Transposed convolution of x (N, *spatial, C_in) with w (*kernel_size, C_out // groups, C_in).

    Plus bias b (C_out,) when given.  Returns float64 (N, *out_spatial, C_out).
    Options as in conv_transpose_spec.
    Each input sample x[n, i] adds w[o] @ x[n, i] (group by group) at output
    position i * stride + o * dilation - pad_before for every kernel offset o;
    positions outside the output are dropped.  This is the adjoint of
    conv_reference with the same w and options.
    """
    spec = conv_transpose_spec(np.shape(x), np.shape(w), stride=stride, padding=padding,
                               output_padding=output_padding, dilation=dilation, groups=groups)
    full = tuple(out + lo + hi for out, lo, hi in zip(spec.out_spatial, spec.pad_before, spec.pad_after))
    canvas = _scatter(np.asarray(x, np.float64), np.asarray(w, np.float64), spec, full)
    crop = tuple(slice(lo, lo + out) for lo, out in zip(spec.pad_before, spec.out_spatial))
    return _add_bias(canvas[(slice(None), *crop, slice(None))], b)


def matmul_reference(
    a: npt.ArrayLike, b: npt.ArrayLike, transpose_a: bool = False, transpose_b: bool = False
) -> np.ndarray:
    """float64 product op(a) @ op(b), op swapping the last two axes when asked.

    op(a): (..., M, K); op(b): (..., K, P); leading axes broadcast.  Returns (..., M, P).
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if transpose_a:
        a = np.swapaxes(a, -1, -2)
    if transpose_b:
        b = np.swapaxes(b, -1, -2)
    return np.einsum("...mk,...kp->...mp", a, b)


def max_pool_reference(
    x: npt.ArrayLike,
    pool_size: IntOrTuple,
    *,
    stride: Optional[IntOrTuple] = None,
    padding: Padding = "valid",
    dilation: IntOrTuple = 1,
    ceil_mode: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """(y, indices) of max pooling x (N, *spatial, C), options as in pool_spec; padding never wins.

    y is float64 (N, *out_spatial, C); indices (int64, same shape) hold the flat spatial index of the first
    maximum of each window in window order (np.argmax: a NaN counts as the maximum).
    """
    windows = _sliding_windows_reference(np.shape(x), pool_size, stride, padding, dilation, ceil_mode)
    return _reduce_windows(x, windows, "max")


def avg_pool_reference(
    x: npt.ArrayLike,
    pool_size: IntOrTuple,
    *,
    stride: Optional[IntOrTuple] = None,
    padding: Padding = "valid",
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> np.ndarray:
    """Average pooling of x (N, *spatial, C), float64; padding counts as zeros.

    The divisor is the number of window taps inside the padded input (count_include_pad) or inside x.
    """
    windows = _sliding_windows_reference(np.shape(x), pool_size, stride, padding, 1, ceil_mode)
    return _reduce_windows(x, windows, "avg" if count_include_pad else "mean")


def adaptive_max_pool_reference(x: npt.ArrayLike, output_size: IntOrTuple) -> tuple[np.ndarray, np.ndarray]:
    """(y, indices) of max pooling x to (N, *output_size, C) over PyTorch's adaptive bins."""
    return _reduce_windows(x, _adaptive_windows_reference(np.shape(x), output_size), "max")


def adaptive_avg_pool_reference(x: npt.ArrayLike, output_size: IntOrTuple) -> np.ndarray:
    """Average pooling of x to (N, *output_size, C) over PyTorch's adaptive bins, float64."""
    return _reduce_windows(x, _adaptive_windows_reference(np.shape(x), output_size), "mean")


# One axis's windows for the pooling references: per output index, (input taps, taps counting padding).
AxisTapLists = list[tuple[list[int], int]]


def _sliding_windows_reference(x_shape, pool_size, stride, padding, dilation, ceil_mode) -> list[AxisTapLists]:
    spec = pool_spec(x_shape, pool_size, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode)
    axes = []
    for n, k, s, d, before, after, out in zip(spec.in_spatial, spec.pool_size, spec.stride, spec.dilation,
                                              spec.pad_before, spec.pad_after, spec.out_spatial):
        taps = [[o * s - before + j * d for j in range(k)] for o in range(out)]
        axes.append([([t for t in ts if 0 <= t < n], sum(t < n + after for t in ts)) for ts in taps])
    return axes


def _adaptive_windows_reference(x_shape, output_size) -> list[AxisTapLists]:
    axes = []
    for n, m in zip(x_shape[1:-1], adaptive_output_size(x_shape, output_size)):
        bins = [list(range(math.floor(i * n / m), math.ceil((i + 1) * n / m))) for i in range(m)]
        axes.append([(b, len(b)) for b in bins])
    return axes


def _reduce_windows(x: npt.ArrayLike, axes: list[AxisTapLists], how: str):
    """Reduce every window of x to float64: "max" -> (y, indices); "avg" (y) divides each window's sum by
    its taps counting padding, "mean" (y) by its input taps."""
    x = np.asarray(x, np.float64)
    spatial = x.shape[1:-1]
    shape = (x.shape[0], *(len(a) for a in axes), x.shape[-1])
    y, indices = np.empty(shape), np.empty(shape, np.int64)
    for position in itertools.product(*(range(len(a)) for a in axes)):
        taps = [axes[a][o][0] for a, o in enumerate(position)]
        window = x[(slice(None), *np.ix_(*taps), slice(None))]
        window = window.reshape(x.shape[0], math.prod(map(len, taps)), x.shape[-1])  # (N, window taps, C)
        at = (slice(None), *position, slice(None))
        if how == "max":
            flat = np.ravel_multi_index(np.meshgrid(*taps, indexing="ij"), spatial).ravel()
            best = np.argmax(window, axis=1)  # (N, C): first maximum, or first NaN
            y[at] = np.take_along_axis(window, best[:, None], axis=1)[:, 0]
            indices[at] = flat[best]
        else:
            count = math.prod(axes[a][o][1] for a, o in enumerate(position)) if how == "avg" else window.shape[1]
            y[at] = window.sum(axis=1) / count
    return (y, indices) if how == "max" else y


def _offset_windows(
    spec: ConvSpec, positions: Sequence[int]
) -> Iterator[tuple[tuple[int, ...], tuple[slice, ...]]]:
    """(offset, index) per kernel offset: index selects, from a padded (N, *padded, C) array,
    the samples that offset meets when the kernel sits at `positions` strided places per axis."""
    for offset in np.ndindex(*spec.kernel_size):
        spatial = (
            slice(o * d, o * d + (p - 1) * s + 1, s)
            for o, d, s, p in zip(offset, spec.dilation, spec.stride, positions)
        )
        yield offset, (slice(None), *spatial, slice(None))


def _split_groups(a: np.ndarray, groups: int) -> np.ndarray:
    """(..., groups * C) -> (..., groups, C)."""
    return a.reshape(*a.shape[:-1], groups, a.shape[-1] // groups)


def _grouped(subscripts: str, a: np.ndarray, w_offset: np.ndarray, groups: int) -> np.ndarray:
    """einsum of a (..., groups * A) with one offset's weight (B, groups * C), group by group.

    The operands are split to (..., groups, A) and (B, groups, C); the groups
    axis of the (..., groups, D) result is merged back: (..., groups * D).
    """
    out = np.einsum(subscripts, _split_groups(a, groups), _split_groups(w_offset, groups))
    return out.reshape(*out.shape[:-2], out.shape[-2] * out.shape[-1])


def _scatter(src: np.ndarray, w: np.ndarray, spec: ConvSpec, canvas_spatial: Sequence[int]) -> np.ndarray:
    """Scatter src (N, *positions, groups * C_o) through w (*kernel_size, C_i, groups * C_o) onto
    zeros (N, *canvas_spatial, groups * C_i): the adjoint of the window gather in conv_reference."""
    canvas = np.zeros((src.shape[0], *canvas_spatial, w.shape[-2] * spec.groups))
    for offset, window in _offset_windows(spec, src.shape[1:-1]):
        canvas[window] += _grouped("...go,igo->...gi", src, w[offset], spec.groups)
    return canvas


def _pad_adjoint(grad_padded: np.ndarray, spec: ConvSpec) -> np.ndarray:
    """Adjoint of pad_reference: fold grad_padded (N, *padded, C) onto (N, *in_spatial, C).

    Padding the 1-based flat index of every input sample tells which input
    sample each padded sample copies (0: a zero-padding sample, copies none);
    np.add.at sums the gradient of all copies of each input sample.
    """
    size = math.prod(spec.in_spatial)
    source = np.arange(1, size + 1).reshape(1, *spec.in_spatial, 1)
    source = pad_reference(source, spec.pad_before, spec.pad_after, spec.padding_mode)[0, ..., 0]
    copies = source > 0
    n, channels = grad_padded.shape[0], grad_padded.shape[-1]
    grad = np.zeros((n, size, channels))
    np.add.at(grad, (slice(None), source[copies] - 1), grad_padded[:, copies])
    return grad.reshape(n, *spec.in_spatial, channels)


def _add_bias(y: np.ndarray, b: Optional[npt.ArrayLike]) -> np.ndarray:
    """y (..., C) plus the float64 bias b (C,), or y itself when b is None."""
    if b is None:
        return y
    b = np.asarray(b, np.float64)
    if b.shape != (y.shape[-1],):
        raise ValueError(f"b must have shape ({y.shape[-1]},), got shape {b.shape}")
    return y + b


def _normalize_over(x: np.ndarray, axes: tuple, eps: float) -> np.ndarray:
    """(x - mean) / sqrt(var + eps) with the mean and biased variance over `axes`, two-pass in float64."""
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(var + eps)


def _affine(x_hat: np.ndarray, gamma, beta) -> np.ndarray:
    if gamma is not None:
        x_hat = x_hat * np.asarray(gamma, dtype=np.float64)
    if beta is not None:
        x_hat = x_hat + np.asarray(beta, dtype=np.float64)
    return x_hat


def batch_norm_reference(x: npt.ArrayLike, gamma=None, beta=None, eps: float = 1e-5, running_mean=None,
                         running_var=None) -> np.ndarray:
    """BatchNorm of channels-last x (N, *spatial, C): batch statistics over every axis but the last, or the
    running statistics when both are given (inference)."""
    x = np.asarray(x, dtype=np.float64)
    if running_mean is not None and running_var is not None:
        x_hat = (x - np.asarray(running_mean, np.float64)) / np.sqrt(np.asarray(running_var, np.float64) + eps)
    else:
        x_hat = _normalize_over(x, tuple(range(x.ndim - 1)), eps)
    return _affine(x_hat, gamma, beta)


def layer_norm_reference(x: npt.ArrayLike, normalized_ndim: int, gamma=None, beta=None,
                         eps: float = 1e-5) -> np.ndarray:
    """LayerNorm over the last normalized_ndim axes; gamma and beta have those axes' shape."""
    x = np.asarray(x, dtype=np.float64)
    return _affine(_normalize_over(x, tuple(range(x.ndim - normalized_ndim, x.ndim)), eps), gamma, beta)


def layer_norm_backward_reference(dy: npt.ArrayLike, x: npt.ArrayLike, normalized_ndim: int, gamma=None,
                                  eps: float = 1e-5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dgamma, dbeta) of sum(dy * layer_norm(x, normalized_ndim, gamma, beta, eps)), in float64: the
    textbook formula dx = (dy*gamma - mean(dy*gamma) - x_hat * mean(dy*gamma * x_hat)) / sqrt(var + eps),
    the means over the normalized axes; dgamma and dbeta sum over the leading axes."""
    x, dy = np.asarray(x, dtype=np.float64), np.asarray(dy, dtype=np.float64)
    axes = tuple(range(x.ndim - normalized_ndim, x.ndim))
    leading = tuple(range(x.ndim - normalized_ndim))
    mean = x.mean(axis=axes, keepdims=True)
    inv_std = 1.0 / np.sqrt(((x - mean) ** 2).mean(axis=axes, keepdims=True) + eps)
    x_hat = (x - mean) * inv_std
    dg = dy * (1.0 if gamma is None else np.asarray(gamma, dtype=np.float64))
    dx = inv_std * (dg - dg.mean(axis=axes, keepdims=True) - x_hat * (dg * x_hat).mean(axis=axes, keepdims=True))
    return dx, (dy * x_hat).sum(axis=leading), dy.sum(axis=leading)


def group_norm_reference(x: npt.ArrayLike, groups: int, gamma=None, beta=None, eps: float = 1e-5) -> np.ndarray:
    """GroupNorm of x (N, *spatial, C): statistics per sample over the spatial axes and C / groups channels."""
    x = np.asarray(x, dtype=np.float64)
    split = x.reshape(*x.shape[:-1], groups, x.shape[-1] // groups)
    axes = (*range(1, x.ndim - 1), split.ndim - 1)
    return _affine(_normalize_over(split, axes, eps).reshape(x.shape), gamma, beta)


def instance_norm_reference(x: npt.ArrayLike, gamma=None, beta=None, eps: float = 1e-5) -> np.ndarray:
    """InstanceNorm of x (N, *spatial, C): statistics per sample and channel over the spatial axes."""
    x = np.asarray(x, dtype=np.float64)
    return _affine(_normalize_over(x, tuple(range(1, x.ndim - 1)), eps), gamma, beta)


def local_response_norm_reference(x: npt.ArrayLike, size: int, alpha: float = 1e-4, beta: float = 0.75,
                                  k: float = 1.0) -> np.ndarray:
    """PyTorch's LocalResponseNorm across the last (channel) axis of x:
    y[c] = x[c] / (k + alpha / size * sum of x[j]^2 for j in [c - size // 2, c + (size - 1) // 2])^beta,
    channels outside [0, C) counting as zero."""
    x = np.asarray(x, dtype=np.float64)
    channels = x.shape[-1]
    sums = np.zeros_like(x)
    for c in range(channels):
        window = slice(max(0, c - size // 2), min(channels, c + (size - 1) // 2 + 1))
        sums[..., c] = (x[..., window] ** 2).sum(axis=-1)
    return x / (k + alpha / size * sums) ** beta


# ---- Losses: the formulas of the PyTorch documentation, in float64 -----------------------------------------


def _reduce_losses(losses: np.ndarray, reduction: str, mean_divisor: float):
    if reduction == "none":
        return losses
    total = float(losses.sum())
    if reduction == "sum":
        return total
    return total / mean_divisor if mean_divisor else float("nan")  # a mean over nothing: 0 / 0


def log_softmax_reference(z: npt.ArrayLike) -> np.ndarray:
    """log(softmax(z)) along the last axis: z - (m + log(sum(exp(z - m)))), m the row maximum."""
    z = np.asarray(z, dtype=np.float64)
    m = z.max(axis=-1, keepdims=True)
    return z - (m + np.log(np.exp(z - m).sum(axis=-1, keepdims=True)))


def softmax_cross_entropy_reference(logits: npt.ArrayLike, targets: npt.ArrayLike, weight=None,
                                    ignore_index: int = -100, label_smoothing: float = 0.0,
                                    reduction: str = "mean"):
    """torch.nn.functional.cross_entropy with the class axis last: loss[n] = -sum_c w[c] t[n, c] log p[n, c],
    t the one-hot label (or the given probabilities) mixed with the uniform distribution,
    (1 - label_smoothing) * t + label_smoothing / K. 'mean' divides by the summed w[label] of the labels
    that are not ignore_index, or by the number of rows for probability targets."""
    log_p = log_softmax_reference(logits)
    classes = log_p.shape[-1]
    w = np.ones(classes) if weight is None else np.asarray(weight, dtype=np.float64)
    targets = np.asarray(targets)
    if targets.shape == log_p.shape:
        t = (1 - label_smoothing) * targets.astype(np.float64) + label_smoothing / classes
        losses = -(w * t * log_p).sum(axis=-1)
        return _reduce_losses(losses, reduction, losses.size)
    kept = targets != ignore_index
    labels = np.where(kept, targets, 0)
    one_hot = labels[..., None] == np.arange(classes)
    t = (1 - label_smoothing) * one_hot + label_smoothing / classes
    losses = np.where(kept, -(w * t * log_p).sum(axis=-1), 0.0)
    return _reduce_losses(losses, reduction, float((w[labels] * kept).sum()))


def nll_loss_reference(log_probs: npt.ArrayLike, labels: npt.ArrayLike, weight=None, ignore_index: int = -100,
                       reduction: str = "mean"):
    """torch.nn.functional.nll_loss, class axis last: loss[n] = -w[y[n]] * log_probs[n, y[n]], 0 where
    y[n] == ignore_index; 'mean' divides by the summed w[y[n]] of the others."""
    log_probs = np.asarray(log_probs, dtype=np.float64)
    labels = np.asarray(labels)
    w = np.ones(log_probs.shape[-1]) if weight is None else np.asarray(weight, dtype=np.float64)
    kept = labels != ignore_index
    safe = np.where(kept, labels, 0)
    picked = np.take_along_axis(log_probs, safe[..., None], axis=-1)[..., 0]
    losses = np.where(kept, -w[safe] * picked, 0.0)
    return _reduce_losses(losses, reduction, float((w[safe] * kept).sum()))


def binary_cross_entropy_with_logits_reference(logits: npt.ArrayLike, targets: npt.ArrayLike, pos_weight=None,
                                               reduction: str = "mean"):
    """torch.nn.functional.binary_cross_entropy_with_logits: loss = -(pos_weight * t * log(sigmoid(z)) +
    (1 - t) * log(1 - sigmoid(z))), elementwise, pos_weight along the last axis; log(sigmoid(z)) is taken
    as -logaddexp(0, -z). 'mean' is over all elements."""
    z = np.asarray(logits, dtype=np.float64)
    t = np.asarray(targets, dtype=np.float64)
    pw = 1.0 if pos_weight is None else np.asarray(pos_weight, dtype=np.float64)
    losses = pw * t * np.logaddexp(0.0, -z) + (1 - t) * np.logaddexp(0.0, z)
    return _reduce_losses(losses, reduction, losses.size)


def mse_loss_reference(y_pred: npt.ArrayLike, y_true: npt.ArrayLike, reduction: str = "mean"):
    """(y_pred - y_true)^2 elementwise; 'mean' is over all elements."""
    losses = (np.asarray(y_pred, dtype=np.float64) - np.asarray(y_true, dtype=np.float64)) ** 2
    return _reduce_losses(losses, reduction, losses.size)


# ---- activations ---------------------------------------------------------------------------------------
# Written from the definitions in float64 (not from convkit's y-based gradient formulas): each pointwise
# activation is a pair (f(x), f'(x)). Where a textbook form cancels (1 + erf for negative x, 1 + tanh),
# the reference uses the equivalent erfc / sigmoid form so that it stays accurate to a few ulps.

_erfc = np.vectorize(math.erfc, otypes=[np.float64])
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _normal_cdf(x: np.ndarray) -> np.ndarray:
    return 0.5 * _erfc(-x * math.sqrt(0.5))


def _gelu_tanh_u(x: np.ndarray) -> np.ndarray:
    return _SQRT_2_OVER_PI * (x + 0.044715 * x ** 3)


_POINTWISE_REFERENCES = {
    "linear": (lambda x, **_: x, lambda x, **_: np.ones_like(x)),
    "relu": (lambda x: np.where(x > 0, x, 0.0), lambda x: np.where(x > 0, 1.0, 0.0)),
    "clipped_relu": (lambda x, max_value: np.clip(x, 0.0, max_value),
                     lambda x, max_value: np.where((x > 0) & (x < max_value), 1.0, 0.0)),
    "relu6": (lambda x: np.clip(x, 0.0, 6.0), lambda x: np.where((x > 0) & (x < 6), 1.0, 0.0)),
    "leaky_relu": (lambda x, alpha=0.01: np.where(x > 0, x, alpha * x),
                   lambda x, alpha=0.01: np.where(x > 0, 1.0, alpha)),
    "elu": (lambda x, alpha=1.0: np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0))),
            lambda x, alpha=1.0: np.where(x > 0, 1.0, alpha * np.exp(np.minimum(x, 0)))),
    "sigmoid": (_sigmoid, lambda x: _sigmoid(x) * _sigmoid(-x)),
    "tanh": (np.tanh, lambda x: 1.0 / np.cosh(x) ** 2),
    "gelu": (lambda x: x * _normal_cdf(x),
             lambda x: _normal_cdf(x) + x * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)),
    # 0.5 * (1 + tanh(u)) = sigmoid(2u); its derivative is 2 * sigmoid(2u) * sigmoid(-2u) * u'(x).
    "gelu_tanh": (lambda x: x * _sigmoid(2 * _gelu_tanh_u(x)),
                  lambda x: _sigmoid(2 * _gelu_tanh_u(x)) + x * 2 * _sigmoid(2 * _gelu_tanh_u(x))
                  * _sigmoid(-2 * _gelu_tanh_u(x)) * _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x)),
    "hard_sigmoid": (lambda x: np.clip(x + 3, 0, 6) / 6, lambda x: np.where((x > -3) & (x < 3), 1 / 6, 0.0)),
    "hard_swish": (lambda x: x * np.clip(x + 3, 0, 6) / 6,
                   lambda x: np.where(x < -3, 0.0, np.where(x <= 3, (2 * x + 3) / 6, 1.0))),
}


def pointwise_activation_reference(x: npt.ArrayLike, name: str, **params) -> tuple[np.ndarray, np.ndarray]:
    """(f(x), f'(x)) in float64 for an elementwise activation: linear, relu, clipped_relu (max_value), relu6,
    leaky_relu (alpha), elu (alpha), sigmoid, tanh, gelu, gelu_tanh (GELU's tanh approximation), hard_sigmoid,
    hard_swish. At a kink f' is the left side's slope (clipped_relu and relu6: 0 at both kinks)."""
    x = np.asarray(x, np.float64)
    f, df = _POINTWISE_REFERENCES[name]
    with np.errstate(over="ignore", invalid="ignore"):
        return f(x, **params), df(x, **params)


def prelu_reference(x: npt.ArrayLike, slope: npt.ArrayLike) -> np.ndarray:
    """x where x > 0, else slope * x; slope broadcasts along the last axis of x (shape (C,), (1,) or ())."""
    x = np.asarray(x, np.float64)
    return np.where(x > 0, x, np.asarray(slope, np.float64) * x)


def softmax_reference(x: npt.ArrayLike, axis: int = -1, log: bool = False) -> np.ndarray:
    """Softmax (or log-softmax) of each slice along `axis`, one slice at a time. A slice with a NaN is NaN;
    one with +inf entries is its limit, the +inf entries sharing probability 1 equally; one of only -inf is
    NaN."""
    x = np.moveaxis(np.asarray(x, np.float64), axis, -1)
    out = np.empty_like(x)
    with np.errstate(divide="ignore"):
        for index in np.ndindex(x.shape[:-1]):
            row = x[index]
            if np.isnan(row).any() or (row == -np.inf).all():
                out[index] = np.nan
                continue
            if (row == np.inf).any():
                p = (row == np.inf) / np.count_nonzero(row == np.inf)
                out[index] = np.log(p) if log else p
                continue
            z = row - row.max()
            total = np.exp(z).sum()
            out[index] = z - np.log(total) if log else np.exp(z) / total
    return np.moveaxis(out, -1, axis)


def maxout_reference(x: npt.ArrayLike, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(y, argmax) of maxout over the last axis of x (..., C * k): unit c takes the maximum of channels
    [c * k, (c + 1) * k), argmax its first maximal piece (the first NaN, if any), in [0, k)."""
    x = np.asarray(x, np.float64)
    pieces = x.reshape(*x.shape[:-1], x.shape[-1] // k, k)
    argmax = np.where(np.isnan(pieces).any(axis=-1), np.argmax(np.isnan(pieces), axis=-1),
                      np.argmax(np.where(np.isnan(pieces), -np.inf, pieces), axis=-1))
    return np.take_along_axis(pieces, argmax[..., None], axis=-1)[..., 0], argmax
