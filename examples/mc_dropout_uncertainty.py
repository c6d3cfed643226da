"""Monte-Carlo dropout: a CNN with dropout on the digits, and its uncertainty about what it sees.

    python examples/mc_dropout_uncertainty.py                # ~20 s: train 15 epochs, 30 Monte-Carlo passes
    python examples/mc_dropout_uncertainty.py --mc-samples 100

Dropout is normally switched off at inference. Keeping it on and predicting M times samples M slightly
different networks (Gal and Ghahramani, 2016: approximately sampling from a Bayesian posterior over the
weights). Where they agree, the model is sure; where they disagree, the variance of their outputs is large.
The predictive entropy H = -sum_k p_k log p_k of the averaged probabilities p combines both kinds of doubt:
low for a clear digit, higher for the digits the model gets wrong and for inputs unlike any digit (noise).
Needs scikit-learn for the digits (pip install "convkit[demo]").
"""
import argparse
import sys

import numpy as np

import convkit
from convkit import Sequential, data, layers, optim


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--mc-samples", type=int, default=30, help="forward passes with dropout on")
    parser.add_argument("--rate", type=float, default=0.3, help="dropout rate")
    parser.add_argument("--train-size", type=int, default=0, help="first N training images (0: all 1,438)")
    parser.add_argument("--noise-images", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def entropy(p: np.ndarray) -> np.ndarray:
    """Predictive entropy in nats per row of probabilities (0: certain; log(10) = 2.30: uniform over 10)."""
    return -(p * np.log(np.clip(p, 1e-12, None))).sum(axis=-1)


def main() -> int:
    args = parse_args()
    convkit.random.seed(args.seed)  # dropout masks come from convkit's counter-based generator
    convkit.initializers.set_seed(args.seed)
    x_train, y_train = data.load_digits("train")
    x_test, y_test = data.load_digits("test")
    if args.train_size:
        x_train, y_train = x_train[:args.train_size], y_train[:args.train_size]

    he = dict(kernel_initializer="he_uniform")
    model = Sequential([
        layers.Conv2D(16, 3, padding="same", activation="relu", **he),
        layers.MaxPooling2D(2),
        layers.Conv2D(32, 3, padding="same", activation="relu", **he),
        layers.Flatten(),
        layers.Dropout(args.rate),                     # dropout before each dense layer, as in the paper
        layers.Dense(128, activation="relu", **he),
        layers.Dropout(args.rate),
        layers.Dense(10),
    ], input_shape=(8, 8, 1))
    model.compile(optimizer=optim.SGD(lr=0.05, momentum=0.9), loss="softmax_cross_entropy", metrics=["accuracy"])
    model.fit(x_train, y_train, batch_size=32, epochs=args.epochs, seed=args.seed, verbose=2)
    print(f"test accuracy (dropout off): {100 * model.evaluate(x_test, y_test)['accuracy']:.2f}%")

    # The model outputs logits; averaging logits is not averaging predictions. A softmax layer appended after
    # training makes each Monte-Carlo pass output probabilities, so predict() averages probabilities.
    model.add(layers.Softmax())
    rng = np.random.default_rng(args.seed)
    noise = rng.uniform(0, 1, (args.noise_images, 8, 8, 1)).astype(np.float32)  # same value range as the digits
    mean, variance = model.predict(np.concatenate([x_test, noise]), mc_samples=args.mc_samples)
    predicted = mean.argmax(axis=1)
    # The variance of the winning class's probability over the passes: how much the sampled networks disagree.
    spread = variance[np.arange(len(mean)), predicted]
    h = entropy(mean)

    correct = predicted[:len(x_test)] == y_test
    groups = {"test digits, right": np.flatnonzero(correct),          # indices into the predictions
              "test digits, wrong": np.flatnonzero(~correct),
              "uniform noise images": np.arange(len(x_test), len(mean))}
    print(f"\nMonte-Carlo dropout, {args.mc_samples} passes: mean over each group")
    print(f"{'inputs':<28} {'count':>6} {'entropy (nats)':>15} {'variance of top p':>18} {'top p':>7}")
    for label, rows in groups.items():
        if len(rows):
            print(f"{label:<28} {len(rows):>6} {h[rows].mean():>15.3f} {spread[rows].mean():>18.4f} "
                  f"{mean[rows].max(axis=1).mean():>7.3f}")
    print(f"MC-dropout accuracy on the test digits: {100 * correct.mean():.2f}%")
    right, noise = groups["test digits, right"], groups["uniform noise images"]
    print(f"noise images are more uncertain than correctly classified digits: "
          f"{h[noise].mean() > h[right].mean() and spread[noise].mean() > spread[right].mean()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
