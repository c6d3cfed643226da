"""A 1-D convolutional network on synthetic signals: classify noisy waveforms (sine, square, sawtooth,
triangle) of random frequency, phase and amplitude, the way one would classify ECG beats or sensor traces.

    python examples/conv1d_sequences.py                    # ~25 s: 2,000 sequences of 128 samples, 10 epochs
    python examples/conv1d_sequences.py --length 256 --noise 0.6

A 1-D convolution slides a short kernel (here 7, 5 and 3 samples) along time, on (N, length, channels)
arrays: the same detector of a local shape (an edge, a ramp, a smooth peak) wherever it occurs. Pooling and
a global average then summarise the whole sequence, whatever the phase at which the waveform starts.
"""
import argparse
import sys

import numpy as np

import convkit
from convkit import Sequential, layers, optim

WAVEFORMS = ("sine", "square", "sawtooth", "triangle")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--length", type=int, default=128, help="samples per sequence (default 128)")
    parser.add_argument("--sequences", type=int, default=2000, help="training sequences (test: a quarter)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--noise", type=float, default=0.4, help="standard deviation of the added noise")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def make_sequences(count: int, length: int, noise: float, rng: np.random.Generator):
    """(count, length, 1) float32 signals and labels indexing WAVEFORMS: 2 to 6 periods per sequence,
    random phase, amplitude 0.5-1.5, Gaussian noise."""
    labels = rng.integers(0, len(WAVEFORMS), count)
    periods = rng.uniform(2, 6, (count, 1))
    phase = rng.uniform(0, 1, (count, 1))
    cycle = (np.arange(length) / length * periods + phase) % 1.0  # position within the period, in [0, 1)
    shapes = np.stack([
        np.sin(2 * np.pi * cycle),          # sine
        np.where(cycle < 0.5, 1.0, -1.0),   # square
        2 * cycle - 1,                      # sawtooth
        1 - 4 * np.abs(cycle - 0.5),        # triangle
    ])                                      # (4, count, length)
    signal = shapes[labels, np.arange(count)] * rng.uniform(0.5, 1.5, (count, 1))
    signal += rng.normal(0, noise, signal.shape)
    return signal[..., None].astype(np.float32), labels.astype(np.int64)


def main() -> int:
    args = parse_args()
    rng = np.random.default_rng(args.seed)
    x_train, y_train = make_sequences(args.sequences, args.length, args.noise, rng)
    x_test, y_test = make_sequences(max(4, args.sequences // 4), args.length, args.noise, rng)
    print(f"data: {len(x_train)} training and {len(x_test)} test sequences of shape {x_train.shape[1:]} "
          f"(classes: {', '.join(WAVEFORMS)})")

    convkit.initializers.set_seed(args.seed)
    he = dict(kernel_initializer="he_uniform")
    model = Sequential([
        layers.Conv1D(16, 7, padding="same", activation="relu", **he),   # kernels (7, C_in, C_out)
        layers.MaxPooling1D(2),
        layers.Conv1D(32, 5, padding="same", activation="relu", **he),
        layers.MaxPooling1D(2),
        layers.Conv1D(32, 3, padding="same", activation="relu", **he),
        layers.GlobalAveragePooling1D(),
        layers.Dense(len(WAVEFORMS)),
    ], input_shape=x_train.shape[1:])
    model.summary()
    model.compile(optimizer=optim.SGD(lr=0.05, momentum=0.9), loss="softmax_cross_entropy", metrics=["accuracy"])
    model.fit(x_train, y_train, batch_size=32, epochs=args.epochs, seed=args.seed, verbose=2)
    test = model.evaluate(x_test, y_test)
    predicted = model.predict(x_test).argmax(axis=1)
    print(f"test accuracy: {100 * test['accuracy']:.2f}% on {len(x_test)} sequences (chance: 25%)")
    for k, name in enumerate(WAVEFORMS):
        mine = y_test == k
        if mine.any():
            print(f"  {name:<9} {100 * np.mean(predicted[mine] == k):6.2f}% of {mine.sum()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
