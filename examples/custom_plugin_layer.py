"""A custom layer in plain Python + NumPy: Swish with a learned slope per channel, y = x * sigmoid(beta * x)
(Ramachandran et al., 2017). Its backward pass is checked against finite differences, then it trains
inside a CNN on the digits, and the model is saved and loaded back by the layer's registered name.

    python examples/custom_plugin_layer.py                 # ~10 s
    python examples/custom_plugin_layer.py --epochs 10

A layer needs forward (and, when training, saving what backward needs), backward (return dL/dx, add
dL/dparameter to the parameters' gradients) and get_config (so that a saved model can rebuild it).
@register_layer makes the name known in this process; to ship a layer as a pip package that convkit finds
on its own (saved models then load without any import), declare an entry point in the group
"convkit.layers": see examples/plugin_layer/ (pip install examples/plugin_layer).
Needs scikit-learn for the digits (pip install "convkit[demo]").
"""
import argparse
import os
import sys
import tempfile

import numpy as np

import convkit
from convkit import Sequential, data, layers, optim
from convkit.layers import Layer
from convkit.registry import register_layer


@register_layer
class LearnedSwish(Layer):
    """x (N, ..., C) -> x * sigmoid(beta * x), same shape; one learned beta per channel (C,).

    beta = 0 gives x / 2 (linear), large beta approaches ReLU: the network picks its nonlinearity."""

    def __init__(self, beta: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.beta_init = float(beta)

    def build(self, input_shape):
        # A shape of one value per channel: broadcasting applies it along the last (channel) axis.
        # decay=False: weight decay would pull beta towards 0, i.e. towards a linear activation.
        self.beta = self.add_weight("beta", input_shape[-1:],
                                    {"class_name": "constant", "config": {"value": self.beta_init}}, decay=False)

    def forward(self, x, training=False):
        s = 1 / (1 + np.exp(-self.beta.value * x))
        if training:
            self.save_for_backward(x, s)  # what backward needs; saving s avoids a second exp
        return x * s

    def backward(self, dy):
        x, s = self.saved()
        ds = dy * x * s * (1 - s)                     # dL/d(beta x): sigmoid' = s (1 - s)
        leading = tuple(range(x.ndim - 1))            # sum over every axis but the channels
        self.accumulate(self.beta, (ds * x).sum(axis=leading))  # accumulate ADDS (and skips frozen weights)
        return dy * s + ds * self.beta.value          # product rule: d(x s)/dx = s + x s' beta

    def get_config(self):
        return {**super().get_config(), "beta": self.beta_init}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--train-size", type=int, default=0, help="first N training images (0: all 1,438)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    convkit.initializers.set_seed(args.seed)

    # 1. Gradient check: backward against central differences, in float64, on the input and on beta.
    rng = np.random.default_rng(args.seed)
    swish = LearnedSwish(beta=0.7, dtype="float64")
    report = convkit.testing.check_gradients(swish, rng.standard_normal((3, 5, 5, 4)), max_checks=None)
    print(f"gradient check passed: {report.checked} elements; the worst, {report.worst}")

    # 2. Train it inside a CNN, where ReLU would usually be.
    x_train, y_train = data.load_digits("train")
    x_test, y_test = data.load_digits("test")
    if args.train_size:
        x_train, y_train = x_train[:args.train_size], y_train[:args.train_size]
    model = Sequential([
        layers.Conv2D(16, 3, padding="same"), LearnedSwish(name="swish1"),
        layers.MaxPooling2D(2),
        layers.Conv2D(32, 3, padding="same"), LearnedSwish(name="swish2"),
        layers.Flatten(),
        layers.Dense(10),
    ], input_shape=(8, 8, 1))
    model.compile(optimizer=optim.SGD(lr=0.05, momentum=0.9), loss="softmax_cross_entropy", metrics=["accuracy"])
    model.fit(x_train, y_train, batch_size=32, epochs=args.epochs, seed=args.seed, verbose=2)
    print(f"test accuracy: {100 * model.evaluate(x_test, y_test)['accuracy']:.2f}%")
    betas = model.get_layer("swish1").beta.value
    print(f"learned beta of swish1 (started at 1.0): min {betas.min():.3f}, max {betas.max():.3f}")

    # 3. Save and load: the architecture file names the layer 'LearnedSwish'; the registry finds the class.
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "swish_cnn.ckpt")
        model.save(path)
        same = convkit.load_model(path)
        identical = np.array_equal(same.predict(x_test), model.predict(x_test))
    print(f"saved and loaded back by name: predictions identical: {identical}")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
