"""LeNet-5 (the course's modernised version: ReLU + max pooling) on MNIST-format IDX files.

    python examples/lenet5_mnist.py --data ~/data/mnist                 # one epoch on the first 20,000 images
    python examples/lenet5_mnist.py --data ~/data/mnist --download      # fetch the four files first (MD5-checked)
    python examples/lenet5_mnist.py --data ~/data/fashion --fashion     # Fashion-MNIST: same format, harder

The directory holds train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz]
and t10k-labels-idx1-ubyte[.gz] (from http://yann.lecun.com/exdb/mnist/ or a mirror, or use --download).
"""
import argparse
import sys
import time

import numpy as np

import convkit
from convkit import data, models, optim


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", metavar="DIR", help="directory with the four MNIST IDX files")
    parser.add_argument("--download", action="store_true", help="download missing files into DIR first")
    parser.add_argument("--fashion", action="store_true", help="the files are Fashion-MNIST")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--train-size", type=int, default=20000, help="first N training images (0: all 60,000)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    if args.data is None:
        print("lenet5_mnist: give the MNIST directory with --data DIR (add --download to fetch the four IDX files\n"
              "into it, about 11 MB), or put train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz,\n"
              "t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz there yourself.", file=sys.stderr)
        return 2
    load = data.load_fashion_mnist if args.fashion else data.load_mnist
    try:
        x_train, y_train = load(args.data, "train", download=args.download)
        x_test, y_test = load(args.data, "test", download=args.download)
    except (FileNotFoundError, ConnectionError) as error:
        print(f"lenet5_mnist: {error} (this script: --download)", file=sys.stderr)
        return 2
    if args.train_size:
        x_train, y_train = x_train[:args.train_size], y_train[:args.train_size]
    print(f"data: {len(x_train)} training and {len(x_test)} test images of shape {x_train.shape[1:]}")

    # Pixels 0..255 -> zero mean, unit spread (statistics of the training set only, so the test set stays unseen).
    # Centred inputs keep the first layer's ReLUs from all starting on the same side, which speeds up SGD.
    x_train = x_train.astype(np.float32) / 255
    x_test = x_test.astype(np.float32) / 255
    mean, std = x_train.mean(), x_train.std()
    x_train, x_test = (x_train - mean) / std, (x_test - mean) / std

    # 28x28x1 -> conv 6@5x5 same -> pool -> conv 16@5x5 -> pool -> 120 -> 84 -> 10 logits: 61,706 parameters.
    convkit.initializers.set_seed(args.seed)
    model = models.lenet5_modern(input_shape=(28, 28, 1), classes=10)
    model.summary()
    # Weight decay on the kernels only: shrinking biases does not regularise anything.
    groups = optim.param_groups_by_decay(model.trainable_parameters(), weight_decay=5e-4)
    model.compile(optimizer=optim.SGD(groups, lr=args.lr, momentum=0.9), loss="softmax_cross_entropy",
                  metrics=["accuracy"])
    started = time.perf_counter()
    model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs, seed=args.seed, verbose=2)
    seconds = time.perf_counter() - started
    test = model.evaluate(x_test, y_test, batch_size=256)
    print(f"trained {args.epochs} epoch(s) in {seconds:.1f} s ({args.epochs * len(x_train) / seconds:.0f} images/s)")
    print(f"test accuracy: {100 * test['accuracy']:.2f}% (loss {test['loss']:.4f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
