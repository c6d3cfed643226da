"""model.summary(): Keras' table (Layer (type), Output Shape, Param #, and Connected to for graphs) with two
more columns, per sample:

- FLOPs: the estimated forward cost, Layer.flops(); a multiply-add counts 2 FLOPs (so a conv costs
  2 * out_pixels * C_out * kernel_taps * C_in/groups, plus one per output for the bias); pooling,
  normalization and merges count about one FLOP per element they read.
- Act. memory: the elements of the layer's output times its dtype's size. Flatten and Reshape return views
  and count 0. The total adds the network's inputs: it is the memory one sample's forward pass keeps
  (VGG-16 on 224x224x3: 15,237,608 values, ~58 MiB in float32).
"""
from __future__ import annotations

import math

import numpy as np

HEADERS = ("Layer (type)", "Output Shape", "Param #", "FLOPs", "Act. memory")
WIDTHS = (34, 22, 13, 15, 13)
CONNECTED_WIDTH = 30


def _shape_text(shape) -> str:
    return "(None, " + ", ".join(map(str, shape)) + ")"


def _row(cells, widths) -> str:
    return "".join(f" {str(c):<{w - 1}}" if len(str(c)) < w else f" {c} " for c, w in zip(cells, widths)).rstrip()


def _bytes(n: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def _count(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f}{unit}"
    return f"{int(n)}"


def _layer_rows(network) -> tuple[list, int, int]:
    """([layer, output shape, flops, activation values, activation bytes, links] per layer, gathering a
    shared layer's calls), and the values and bytes of the network's inputs (Model's are InputLayer rows)."""
    from .network import InputLayer, Sequential

    rows: dict[int, list] = {}
    for layer, in_shape, out_shape, links in network.summary_nodes():
        values = 0 if layer.output_is_view else math.prod(out_shape)
        row = rows.setdefault(id(layer), [layer, out_shape, 0, 0, 0, []])
        row[2] += 0 if isinstance(layer, InputLayer) else layer.flops(in_shape)
        row[3] += values
        row[4] += values * np.dtype(layer.dtype).itemsize
        row[5] += links
    input_values = input_bytes = 0
    if isinstance(network, Sequential):
        input_values = math.prod(network.summary_nodes()[0][1])
        input_bytes = input_values * np.dtype(network.layers[0].dtype).itemsize
    return list(rows.values()), input_values, input_bytes


def activation_count(network) -> int:
    """The summary's 'Activations per sample': the inputs plus every layer output that is not a view."""
    rows, input_values, _ = _layer_rows(network)
    return input_values + sum(row[3] for row in rows)


def forward_flops(network) -> int:
    """The summary's 'Forward FLOPs per sample'."""
    return sum(row[2] for row in _layer_rows(network)[0])


def summarize(network, line_length=None) -> str:
    """The summary of a built network as text (see the module docstring)."""
    from .network import Model  # the Connected to column only exists for graphs

    graph = isinstance(network, Model)
    widths = (*WIDTHS, CONNECTED_WIDTH) if graph else WIDTHS
    headers = (*HEADERS, "Connected to") if graph else HEADERS
    width = line_length or sum(widths)
    rows, input_values, input_bytes = _layer_rows(network)
    lines = [f'Model: "{network.name}"', "_" * width, _row(headers, widths), "=" * width]
    for index, (layer, out_shape, flops, _, memory, links) in enumerate(rows):
        cells = [f"{layer.name} ({type(layer).__name__})", _shape_text(out_shape), f"{layer.count_params():,}",
                 _count(flops), _bytes(memory)]
        if graph:
            cells.append(links[0] if links else "")
        lines.append(_row(cells, widths))
        lines += [_row([""] * (len(widths) - 1) + [link], widths) for link in links[1:]]
        if index < len(rows) - 1:
            lines.append("")
    params = network.parameters()
    total, trainable = sum(p.size for p in params), sum(p.size for p in params if p.trainable)
    flops = sum(row[2] for row in rows)
    values = input_values + sum(row[3] for row in rows)
    memory = input_bytes + sum(row[4] for row in rows)
    lines += ["=" * width, f"Total params: {total:,}", f"Trainable params: {trainable:,}",
              f"Non-trainable params: {total - trainable:,}", "_" * width,
              f"Forward FLOPs per sample: {flops:,} ({_count(flops)}; a multiply-add is 2 FLOPs)",
              f"Activations per sample: {values:,} values, {_bytes(memory)} (inputs included)",
              "_" * width]
    return "\n".join(lines)
