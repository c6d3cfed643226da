"""MobileNet v1 at width multiplier alpha = 0.25 on the handwritten digits (8x8 scans upsampled to 32x32),
and what its depthwise-separable convolutions save against standard 3x3 convolutions.

    python examples/mobilenet_depthwise.py                  # summary, savings table, ~10 epochs of training
    python examples/mobilenet_depthwise.py --alpha 1.0 --image-size 224 --epochs 0   # the paper's numbers

A standard KxK convolution from C_in to C_out channels mixes space and channels at once:
K*K*C_in*C_out weights. A depthwise-separable one factorises it into a depthwise KxK convolution (one filter
per input channel: K*K*C_in weights, space only) followed by a pointwise 1x1 convolution (C_in*C_out, channels
only). The cost ratio is 1/C_out + 1/K^2: with K = 3 and many channels, 8 to 9 times fewer weights and FLOPs.
Needs scikit-learn for the digits (pip install "convkit[demo]").
"""
import argparse
import sys

import numpy as np

import convkit
from convkit import data, layers, models, optim


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alpha", type=float, default=0.25, help="width multiplier (default 0.25)")
    parser.add_argument("--image-size", type=int, default=32, help="digits are upsampled to this size (default 32)")
    parser.add_argument("--epochs", type=int, default=10, help="0: only the summary and the comparison")
    parser.add_argument("--train-size", type=int, default=0, help="first N training images (0: all 1,438)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def separable_savings(model) -> tuple:
    """(rows, totals) comparing every depthwise + pointwise pair of `model` with one standard 3x3 convolution
    of the same input, output channels and stride. Parameters and FLOPs both come from convkit's own layer
    accounting (the summary's), so the comparison counts exactly what the summary counts."""
    nodes = {layer.name: (layer, in_shape, out_shape) for layer, in_shape, out_shape, _ in model.summary_nodes()}
    rows, totals = [], np.zeros(4, dtype=np.int64)
    for name, (depthwise, in_shape, _) in nodes.items():
        if not isinstance(depthwise, layers.DepthwiseConv2D):
            continue
        block = name[:-len("_dw")]
        pointwise, pw_in_shape, _ = nodes[f"{block}_pw_conv"]
        standard = layers.Conv2D(pointwise.filters, depthwise.kernel_size, strides=depthwise.strides, padding=1,
                                 use_bias=False)
        standard.build_once(in_shape)
        separable_params = depthwise.count_params() + pointwise.count_params()
        separable_flops = depthwise.flops(in_shape) + pointwise.flops(pw_in_shape)
        row = np.array([standard.count_params(), separable_params, standard.flops(in_shape), separable_flops])
        rows.append((block, in_shape, pointwise.filters, row))
        totals += row
    return rows, totals


def main() -> int:
    args = parse_args()
    convkit.initializers.set_seed(args.seed)
    convkit.random.seed(args.seed)  # MobileNet's final Dropout draws its masks from convkit's generator
    size = args.image_size
    model = models.mobilenet(alpha=args.alpha, input_shape=(size, size, 1), classes=10)
    model.summary()

    rows, totals = separable_savings(model)
    print(f"\ndepthwise-separable vs standard 3x3 convolutions (MobileNet alpha={args.alpha:g}, {size}x{size} input)")
    print(f"{'block':<8} {'input':>14} {'C_out':>6} {'params std':>11} {'params sep':>11} {'FLOPs std':>13} "
          f"{'FLOPs sep':>13} {'ratio':>6}")
    for block, in_shape, c_out, (p_std, p_sep, f_std, f_sep) in rows:
        print(f"{block:<8} {str(in_shape):>14} {c_out:>6} {p_std:>11,} {p_sep:>11,} {f_std:>13,} {f_sep:>13,} "
              f"{f_std / f_sep:>5.1f}x")
    p_std, p_sep, f_std, f_sep = totals
    print(f"all 13 blocks: {p_std:,} -> {p_sep:,} parameters ({p_std / p_sep:.1f}x fewer), "
          f"{f_std:,} -> {f_sep:,} FLOPs ({f_std / f_sep:.1f}x fewer)")
    if args.epochs == 0:
        return 0

    x_train, y_train = data.load_digits("train")
    x_test, y_test = data.load_digits("test")
    if args.train_size:
        x_train, y_train = x_train[:args.train_size], y_train[:args.train_size]
    # Nearest-neighbour upsampling: MobileNet halves the map five times (224 -> 7 in the paper), so an 8x8
    # image would vanish; 32x32 ends at 1x1 before the global average pool.
    scale = size // 8
    x_train, x_test = (np.kron(x, np.ones((1, scale, scale, 1), np.float32)) for x in (x_train, x_test))
    mean, std = x_train.mean(), x_train.std()
    x_train, x_test = (x_train - mean) / std, (x_test - mean) / std

    model.compile(optimizer=optim.SGD(lr=args.lr, momentum=0.9), loss="softmax_cross_entropy", metrics=["accuracy"])
    model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs, seed=args.seed, verbose=2)
    test = model.evaluate(x_test, y_test, batch_size=128)
    print(f"test accuracy: {100 * test['accuracy']:.2f}% on {len(x_test)} digits "
          f"({sum(p.value.size for p in model.trainable_parameters()):,} trainable parameters)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
