"""Transfer learning: train a small convolutional backbone on the digits 0-4, freeze it, and train only a new
classifier head on the digits 5-9.

    python examples/transfer_learning.py                   # ~20 s: backbone 10 epochs, head 10 epochs
    python examples/transfer_learning.py --head-train-size 50   # few labelled examples: where transfer shines

The first layers of a CNN learn generic features (strokes, edges, corners); features learned on one set of
classes are useful for other classes. Freezing them (layer.trainable = False) means that the optimizer
skips their weights: training is cheaper, needs fewer labelled examples, and cannot destroy what the backbone
learned. The script checks that the frozen weights come out bit-identical.
Needs scikit-learn for the digits (pip install "convkit[demo]").
"""
import argparse
import sys

import numpy as np

import convkit
from convkit import Sequential, data, layers, optim


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=10, help="epochs for the backbone and for the head")
    parser.add_argument("--head-train-size", type=int, default=0,
                        help="labelled images of the digits 5-9 for the head (0: all ~720)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def split_classes(x, y, classes):
    """The images whose label is in `classes`, relabelled 0..len(classes)-1 (each head has its own outputs)."""
    keep = np.isin(y, classes)
    return x[keep], np.searchsorted(classes, y[keep])


def compile_sgd(model, lr: float) -> None:
    model.compile(optimizer=optim.SGD(lr=lr, momentum=0.9), loss="softmax_cross_entropy", metrics=["accuracy"])


def main() -> int:
    args = parse_args()
    convkit.initializers.set_seed(args.seed)
    x_train, y_train = data.load_digits("train")
    x_test, y_test = data.load_digits("test")
    first, second = np.arange(5), np.arange(5, 10)

    # The backbone: two 3x3 convolutions and a dense layer, ending in a 64-value feature vector.
    backbone = [
        layers.Conv2D(16, 3, padding="same", activation="relu", kernel_initializer="he_uniform", name="conv1"),
        layers.MaxPooling2D(2, name="pool1"),
        layers.Conv2D(32, 3, padding="same", activation="relu", kernel_initializer="he_uniform", name="conv2"),
        layers.Flatten(name="flatten"),
        layers.Dense(64, activation="relu", kernel_initializer="he_uniform", name="features"),
    ]

    # 1. Pretraining: backbone + head A on the digits 0-4.
    pretrain = Sequential(backbone + [layers.Dense(5, name="head_a")], input_shape=(8, 8, 1))
    compile_sgd(pretrain, args.lr)
    xa, ya = split_classes(x_train, y_train, first)
    pretrain.fit(xa, ya, batch_size=args.batch_size, epochs=args.epochs, seed=args.seed, verbose=2)
    accuracy_a = pretrain.evaluate(*split_classes(x_test, y_test, first))["accuracy"]
    print(f"pretraining on digits 0-4: test accuracy {100 * accuracy_a:.2f}%")

    # 2. Freeze the backbone and put a new head B on it. The two Sequentials share the backbone's layer
    #    objects, hence their weights: nothing is copied.
    for layer in backbone:
        layer.trainable = False
    transfer = Sequential(backbone + [layers.Dense(5, name="head_b")], input_shape=(8, 8, 1))
    frozen_before = {p.name: p.value.copy() for layer in backbone for p in layer.parameters()}
    trainable = [p.name for p in transfer.trainable_parameters()]
    print(f"trainable after freezing: {trainable} "
          f"({sum(p.value.size for p in transfer.trainable_parameters()):,} of {transfer.count_params():,} parameters)")

    # 3. Train only the head on the digits 5-9.
    compile_sgd(transfer, args.lr)
    xb, yb = split_classes(x_train, y_train, second)
    if args.head_train_size:
        xb, yb = xb[:args.head_train_size], yb[:args.head_train_size]
    transfer.fit(xb, yb, batch_size=args.batch_size, epochs=args.epochs, seed=args.seed, verbose=2)
    accuracy_b = transfer.evaluate(*split_classes(x_test, y_test, second))["accuracy"]
    print(f"new head on digits 5-9 ({len(xb)} training images), frozen backbone: "
          f"test accuracy {100 * accuracy_b:.2f}%")

    # 4. The optimizer skipped the frozen weights: not one bit changed.
    unchanged = all(np.array_equal(frozen_before[p.name], p.value) for layer in backbone for p in layer.parameters())
    print(f"frozen backbone weights bit-identical after training: {unchanged}")
    return 0 if unchanged else 1


if __name__ == "__main__":
    sys.exit(main())
