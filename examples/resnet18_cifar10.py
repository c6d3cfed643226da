"""ResNet-18 (CIFAR variant: a 3x3 stem instead of 7x7/2 + max-pool) on CIFAR-10, with the standard
augmentation: random horizontal flips and random 32x32 crops of the image padded by 4 pixels.

    python examples/resnet18_cifar10.py --data ~/data/cifar10              # a taste: 2,000 images, 1 epoch
    python examples/resnet18_cifar10.py --data ~/data/cifar10 --download   # fetch the binary batches (~160 MB)
    python examples/resnet18_cifar10.py --data ~/data/cifar10 --train-size 0 --epochs 30   # the real run (hours)
    python examples/resnet18_cifar10.py --data ~/data/cifar10 --model resnet_cifar         # ResNet-20: 13x fewer FLOPs

DIR holds cifar-10-batches-bin/ (data_batch_1.bin ... data_batch_5.bin, test_batch.bin) or those files.
ResNet-18 has 11.2M parameters and costs 1.1 GFLOPs per 32x32 image forward (a multiply-add counted as 2),
about three times that to train, so a CPU trains a few to a few tens of images per second; the default
settings only show that it runs and learns.
"""
import argparse
import sys
import time

import numpy as np

import convkit
from convkit import data, models, optim, schedules
from convkit.callbacks import LearningRateScheduler
from convkit.data import augmentations as aug


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", metavar="DIR", help="directory with the CIFAR-10 binary batches")
    parser.add_argument("--download", action="store_true", help="download the binary archive into DIR first")
    parser.add_argument("--model", choices=["resnet18_cifar", "resnet_cifar"], default="resnet18_cifar",
                        help="resnet18_cifar (11.2M parameters) or resnet_cifar (ResNet-20: 0.27M, 13x fewer FLOPs)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--train-size", type=int, default=2000, help="first N training images (0: all 50,000)")
    parser.add_argument("--test-size", type=int, default=1000, help="first N test images (0: all 10,000)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--no-augment", action="store_true", help="train without flips and crops")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    if args.data is None:
        print("resnet18_cifar10: give the CIFAR-10 directory with --data DIR (add --download to fetch the binary\n"
              "batches into it, about 160 MB, from https://www.cs.toronto.edu/~kriz/cifar.html).", file=sys.stderr)
        return 2
    try:
        x_train, y_train = data.load_cifar10(args.data, "train", download=args.download)
        x_test, y_test = data.load_cifar10(args.data, "test")
    except (FileNotFoundError, ConnectionError) as error:
        print(f"resnet18_cifar10: {error} (this script: --download)", file=sys.stderr)
        return 2
    if args.train_size:
        x_train, y_train = x_train[:args.train_size], y_train[:args.train_size]
    if args.test_size:
        x_test, y_test = x_test[:args.test_size], y_test[:args.test_size]
    print(f"data: {len(x_train)} training and {len(x_test)} test images of shape {x_train.shape[1:]}")

    # Standardise each colour channel with the training set's statistics. After that, the zeros that
    # RandomCrop pads with are the average colour, so the padded border carries no spurious signal.
    x_train = x_train.astype(np.float32) / 255
    x_test = x_test.astype(np.float32) / 255
    mean, std = x_train.mean(axis=(0, 1, 2)), x_train.std(axis=(0, 1, 2))
    x_train, x_test = (x_train - mean) / std, (x_test - mean) / std

    # Augmentation shows the network a slightly different image every epoch: a mirror image of a cat is still
    # a cat, and so is the cat moved by a few pixels. It is applied per batch, on the fly, seeded by
    # (seed, epoch, batch), so a run is reproducible.
    augment = None if args.no_augment else aug.Compose([aug.RandomFlip("horizontal"), aug.RandomCrop(32, padding=4)])

    convkit.initializers.set_seed(args.seed)
    model = models.get(args.model, input_shape=(32, 32, 3), classes=10)
    trainable = sum(p.value.size for p in model.trainable_parameters())
    print(f"{model.name}: {trainable:,} trainable parameters")
    groups = optim.param_groups_by_decay(model.trainable_parameters(), weight_decay=5e-4)  # kernels only
    optimizer = optim.SGD(groups, lr=args.lr, momentum=0.9, nesterov=True)
    model.compile(optimizer=optimizer, loss="softmax_cross_entropy", metrics=["accuracy"])
    # Cosine decay: a large learning rate early to move fast, a small one at the end to settle in a minimum.
    cosine = schedules.CosineDecay(optimizer, total_epochs=args.epochs, warmup_epochs=min(1, args.epochs - 1))
    started = time.perf_counter()
    model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs, seed=args.seed, augment=augment,
              callbacks=[LearningRateScheduler(cosine)], verbose=2)
    seconds = time.perf_counter() - started
    test = model.evaluate(x_test, y_test, batch_size=64)
    print(f"trained {args.epochs} epoch(s) in {seconds:.1f} s ({args.epochs * len(x_train) / seconds:.1f} images/s)"
          f"{'' if augment is None else ' with flip + crop (pad 4) augmentation'}")
    print(f"test accuracy: {100 * test['accuracy']:.2f}% (loss {test['loss']:.4f}; chance is 10%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
