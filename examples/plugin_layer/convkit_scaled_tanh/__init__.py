"""An example convkit layer plugin: y = a * tanh(b * x), with a learned scale a and slope b per channel
(LeCun's 1.7159 * tanh(2x / 3) when a, b start at those values). Python and NumPy only."""
import numpy as np

from convkit.layers import Layer


class ScaledTanh(Layer):
    """x (N, ..., C) -> same shape; parameters a (C,) and b (C,)."""

    def __init__(self, scale: float = 1.7159, slope: float = 2 / 3, **kwargs):
        super().__init__(**kwargs)
        self.scale, self.slope = float(scale), float(slope)

    def build(self, input_shape):
        channels = (input_shape[-1],)
        self.a = self.add_weight("a", channels, {"class_name": "constant", "config": {"value": self.scale}}, decay=False)
        self.b = self.add_weight("b", channels, {"class_name": "constant", "config": {"value": self.slope}}, decay=False)

    def forward(self, x, training=False):
        t = np.tanh(x * self.b.value)
        if training:
            self.save_for_backward(x, t)
        return self.a.value * t

    def backward(self, dy):
        x, t = self.saved()
        d_inner = dy * self.a.value * (1 - t * t)  # d/d(b x) of a tanh(b x)
        leading = tuple(range(x.ndim - 1))
        self.accumulate(self.a, (dy * t).sum(axis=leading))
        self.accumulate(self.b, (d_inner * x).sum(axis=leading))
        return d_inner * self.b.value

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "slope": self.slope}
