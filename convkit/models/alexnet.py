"""AlexNet (Krizhevsky et al. 2012) as in the paper: two-tower grouped convolutions, LRN, overlapping pooling."""
from __future__ import annotations

from .. import layers
from ..network import Sequential


def alexnet(input_shape=(227, 227, 3), classes: int = 1000, *, two_towers: bool = True,
            dropout: float = 0.5) -> Sequential:
    """AlexNet on 227x227x3 (the size the paper's arithmetic needs).

    two_towers=True keeps the paper's split over two GPUs as groups=2 in conv2, conv4 and conv5:
    60,965,224 parameters with 1000 classes (the paper's "60 million"); False connects every channel
    (62,378,344). LRN uses the paper's k=2, n=5, alpha=1e-4, beta=0.75."""
    groups = 2 if two_towers else 1

    def lrn(name):
        return layers.LocalResponseNormalization(size=5, alpha=1e-4, beta=0.75, k=2.0, name=name)

    return Sequential([
        layers.Conv2D(96, 11, strides=4, activation="relu", name="conv1"),
        lrn("norm1"),
        layers.MaxPooling2D(3, strides=2, name="pool1"),
        layers.Conv2D(256, 5, padding="same", groups=groups, activation="relu", name="conv2"),
        lrn("norm2"),
        layers.MaxPooling2D(3, strides=2, name="pool2"),
        layers.Conv2D(384, 3, padding="same", activation="relu", name="conv3"),
        layers.Conv2D(384, 3, padding="same", groups=groups, activation="relu", name="conv4"),
        layers.Conv2D(256, 3, padding="same", groups=groups, activation="relu", name="conv5"),
        layers.MaxPooling2D(3, strides=2, name="pool5"),
        layers.Flatten(name="flatten"),
        layers.Dense(4096, activation="relu", name="fc6"),
        layers.Dropout(dropout, name="drop6"),
        layers.Dense(4096, activation="relu", name="fc7"),
        layers.Dropout(dropout, name="drop7"),
        layers.Dense(classes, name="fc8"),
    ], input_shape=input_shape, name="alexnet")
