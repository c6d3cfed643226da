"""A 3-D convolutional network on synthetic volumes: tell compact blobs (think nodules) from tubes (think
vessels) in noisy 16x16x16 scans, the kind of decision CT and MRI analysis asks of a CNN.

    python examples/conv3d_volumes.py                      # ~40 s: 600 volumes, 8 epochs
    python examples/conv3d_volumes.py --size 24 --volumes 2000 --epochs 10

A 2-D network would have to look at the scan slice by slice, and a cross-section of a tube seen face on is
a disc, just like a slice of a blob. 3-D kernels (3x3x3 here, on (N, D, H, W, C) arrays) see all three axes
at once, so the network can learn that a tube continues along its axis and a blob does not.
"""
import argparse
import sys

import numpy as np

import convkit
from convkit import Sequential, layers, optim

CLASSES = ("blob", "tube")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=16, help="volume edge in voxels (default 16)")
    parser.add_argument("--volumes", type=int, default=600, help="training volumes (test: a quarter as many)")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--noise", type=float, default=0.25, help="standard deviation of the voxel noise")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def make_volumes(count: int, size: int, noise: float, rng: np.random.Generator):
    """(count, size, size, size, 1) float32 volumes and labels 0 (blob) / 1 (tube), classes balanced.

    Blob: a Gaussian ball (radius 1.5-3 voxels). Tube: a Gaussian cylinder (radius 1-1.5) along a random
    direction, 0.6-0.9 of the volume long. Both at a random position near the centre, plus Gaussian noise."""
    grid = np.stack(np.meshgrid(*[np.arange(size)] * 3, indexing="ij"), axis=-1).astype(np.float32)  # (D,H,W,3)
    labels = rng.permutation(np.arange(count) % 2)
    volumes = np.empty((count, size, size, size, 1), np.float32)
    for i, label in enumerate(labels):
        offset = grid - rng.uniform(0.35, 0.65, 3) * (size - 1)  # voxel positions relative to the centre
        if label == 0:
            distance2 = (offset ** 2).sum(axis=-1)
            radius = rng.uniform(1.5, 3.0)
        else:
            direction = rng.standard_normal(3)
            direction /= np.linalg.norm(direction)
            along = offset @ direction                                   # position along the tube's axis
            distance2 = (offset ** 2).sum(axis=-1) - along ** 2           # squared distance from the axis
            radius = rng.uniform(1.0, 1.5)
            half_length = rng.uniform(0.3, 0.45) * size
            distance2 = np.where(np.abs(along) <= half_length, distance2, np.inf)
        volumes[i, ..., 0] = np.exp(-distance2 / (2 * radius ** 2))
    volumes += rng.normal(0, noise, volumes.shape).astype(np.float32)
    return volumes, labels.astype(np.int64)


def main() -> int:
    args = parse_args()
    rng = np.random.default_rng(args.seed)
    x_train, y_train = make_volumes(args.volumes, args.size, args.noise, rng)
    x_test, y_test = make_volumes(max(2, args.volumes // 4), args.size, args.noise, rng)
    print(f"data: {len(x_train)} training and {len(x_test)} test volumes of shape {x_train.shape[1:]} "
          f"(classes: {', '.join(CLASSES)})")

    convkit.initializers.set_seed(args.seed)
    he = dict(kernel_initializer="he_uniform")
    model = Sequential([
        layers.Conv3D(8, 3, padding="same", activation="relu", **he),     # 3x3x3 kernels: (3, 3, 3, C_in, C_out)
        layers.MaxPooling3D(2),
        layers.Conv3D(16, 3, padding="same", activation="relu", **he),
        layers.MaxPooling3D(2),
        layers.Conv3D(16, 3, padding="same", activation="relu", **he),
        # Global pooling: the answer does not depend on where in the volume the structure lies.
        layers.GlobalMaxPooling3D(),
        layers.Dense(len(CLASSES)),
    ], input_shape=x_train.shape[1:])
    model.summary()
    model.compile(optimizer=optim.SGD(lr=0.02, momentum=0.9), loss="softmax_cross_entropy", metrics=["accuracy"])
    model.fit(x_train, y_train, batch_size=16, epochs=args.epochs, seed=args.seed, verbose=2)
    test = model.evaluate(x_test, y_test)
    print(f"test accuracy: {100 * test['accuracy']:.2f}% on {len(x_test)} volumes (chance: 50%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
