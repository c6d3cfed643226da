"""An ensemble: three small CNNs trained from different random seeds, combined by averaging their predicted
probabilities and by majority vote.

    python examples/ensemble_vote.py                       # ~15 s
    python examples/ensemble_vote.py --models 5 --epochs 5

Networks started from different random weights (and shown the data in different orders) end in different
minima and make partly different mistakes; combining them cancels some of those mistakes, so the ensemble
is usually at least as accurate as its best member. The price: K times the training and inference cost.
Needs scikit-learn for the digits (pip install "convkit[demo]").
"""
import argparse
import sys

import numpy as np

import convkit
from convkit import Sequential, data, layers, optim


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=3, help="ensemble size")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per model (few: members differ more)")
    parser.add_argument("--train-size", type=int, default=0, help="first N training images (0: all 1,438)")
    parser.add_argument("--seed", type=int, default=0, help="model k uses seed + k")
    return parser.parse_args()


def small_cnn(seed: int) -> Sequential:
    """A LeNet-like CNN for 8x8 digits, outputting logits; `seed` picks its initial weights."""
    convkit.initializers.set_seed(seed)
    model = Sequential([
        layers.Conv2D(8, 3, padding="same", activation="relu", kernel_initializer="he_uniform"),
        layers.MaxPooling2D(2),
        layers.Flatten(),
        layers.Dense(32, activation="relu", kernel_initializer="he_uniform"),
        layers.Dense(10),
    ], input_shape=(8, 8, 1))
    model.compile(optimizer=optim.SGD(lr=0.05, momentum=0.9), loss="softmax_cross_entropy", metrics=["accuracy"])
    return model


def main() -> int:
    args = parse_args()
    x_train, y_train = data.load_digits("train")
    x_test, y_test = data.load_digits("test")
    if args.train_size:
        x_train, y_train = x_train[:args.train_size], y_train[:args.train_size]

    members = []
    for k in range(args.models):
        model = small_cnn(args.seed + k)
        model.fit(x_train, y_train, batch_size=32, epochs=args.epochs, seed=args.seed + k, verbose=0)
        # A softmax appended after training: the ensemble then averages probabilities, not logits.
        model.add(layers.Softmax())
        accuracy = np.mean(model.predict(x_test).argmax(axis=1) == y_test)
        print(f"model {k + 1} (seed {args.seed + k}): test accuracy {100 * accuracy:.2f}%")
        members.append(model)

    mean, variance = convkit.ensemble(members, x_test, mode="average")
    average_accuracy = np.mean(mean.argmax(axis=1) == y_test)
    print(f"ensemble, average of probabilities: test accuracy {100 * average_accuracy:.2f}%")
    vote, vote_variance = convkit.ensemble(members, x_test, mode="vote")
    print(f"ensemble, majority vote: test accuracy {100 * np.mean(vote == y_test):.2f}%")
    # The vote's variance p(1-p) is 0 where all members agree: disagreement flags the doubtful images.
    disputed = vote_variance > 0
    print(f"members disagree on {disputed.sum()} of {len(x_test)} test images; the vote is right on "
          f"{100 * np.mean(vote[disputed] == y_test[disputed]) if disputed.any() else 100:.0f}% of those "
          f"and {100 * np.mean(vote[~disputed] == y_test[~disputed]):.2f}% of the others")
    return 0


if __name__ == "__main__":
    sys.exit(main())
