"""LeNet-1 and LeNet-5 (LeCun et al. 1989/1998) and the course's modernised LeNet-5.

Where the originals used sparse connection tables (C3 of LeNet-5, H2 of LeNet-1) or trainable subsampling,
these use full connections and plain average pooling, as most re-implementations (and the course) do; the
parameter counts below are for these versions.
"""
from __future__ import annotations

from .. import layers
from ..network import Sequential


def lenet1(input_shape=(28, 28, 1), classes: int = 10) -> Sequential:
    """LeNet-1: 4@5x5 tanh, avg-pool 2, 12@5x5 tanh, avg-pool 2, dense. 3,246 parameters on 28x28x1."""
    return Sequential([
        layers.Conv2D(4, 5, activation="tanh", name="c1"),
        layers.AveragePooling2D(2, name="s2"),
        layers.Conv2D(12, 5, activation="tanh", name="c3"),
        layers.AveragePooling2D(2, name="s4"),
        layers.Flatten(name="flatten"),
        layers.Dense(classes, name="output"),
    ], input_shape=input_shape, name="lenet1")


def lenet5(input_shape=(32, 32, 1), classes: int = 10) -> Sequential:
    """The original LeNet-5 layout on 32x32 inputs: tanh convolutions and average pooling.

    C1 6@5x5, S2, C3 16@5x5, S4, C5 120@5x5 (a convolution that covers the whole 5x5 map), F6 84, output.
    61,706 parameters with 10 classes (C3 fully connected)."""
    return Sequential([
        layers.Conv2D(6, 5, activation="tanh", name="c1"),
        layers.AveragePooling2D(2, name="s2"),
        layers.Conv2D(16, 5, activation="tanh", name="c3"),
        layers.AveragePooling2D(2, name="s4"),
        layers.Conv2D(120, 5, activation="tanh", name="c5"),
        layers.Flatten(name="flatten"),
        layers.Dense(84, activation="tanh", name="f6"),
        layers.Dense(classes, name="output"),
    ], input_shape=input_shape, name="lenet5")


def lenet5_modern(input_shape=(28, 28, 1), classes: int = 10) -> Sequential:
    """The course's modernised LeNet-5: ReLU and max pooling. 61,706 parameters on 28x28x1.

    Conv 6@5x5 'same', max-pool 2, conv 16@5x5, max-pool 2, dense 120, 84, classes.

    Inputs smaller than 20x20 (the 8x8 digits of `convkit.data.load_digits`) would vanish under two 5x5
    convolutions and two poolings, so there both convolutions are 3x3 'same' and the second pooling is left
    out (8x8 -> 4x4x6 -> 4x4x16 = 256 features; 42,794 parameters with 10 classes). Its ReLU layers start
    from He initialisation, which trains more reliably on so small a network (on the digits: 97.5% test
    accuracy on average over four seeds against 96.3% with the two-pooling, Glorot-initialised version)."""
    if min(input_shape[0], input_shape[1]) >= 20:
        return Sequential([
            layers.Conv2D(6, 5, padding="same", activation="relu", name="conv1"),
            layers.MaxPooling2D(2, name="pool1"),
            layers.Conv2D(16, 5, activation="relu", name="conv2"),
            layers.MaxPooling2D(2, name="pool2"),
            layers.Flatten(name="flatten"),
            layers.Dense(120, activation="relu", name="fc1"),
            layers.Dense(84, activation="relu", name="fc2"),
            layers.Dense(classes, name="output"),
        ], input_shape=input_shape, name="lenet5_modern")
    init = dict(kernel_initializer="he_uniform")
    return Sequential([
        layers.Conv2D(6, 3, padding="same", activation="relu", name="conv1", **init),
        layers.MaxPooling2D(2, name="pool1"),
        layers.Conv2D(16, 3, padding="same", activation="relu", name="conv2", **init),
        layers.Flatten(name="flatten"),
        layers.Dense(120, activation="relu", name="fc1", **init),
        layers.Dense(84, activation="relu", name="fc2", **init),
        layers.Dense(classes, name="output"),
    ], input_shape=input_shape, name="lenet5_modern")
