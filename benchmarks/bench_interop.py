"""Interchange: exporting zoo models to ONNX, running them in onnxruntime next to convkit, and loading
torchvision-layout weights from .pt and .safetensors files.

    python benchmarks/bench_interop.py --threads 2
    python benchmarks/bench_interop.py --models resnet50 --batch 8 --json
    python benchmarks/bench_interop.py --quick        # small inputs, one repeat (smoke test)

Per model (ResNet-18, ResNet-50, MobileNet and DenseNet-121 on 224x224x3, 1000 classes; --quick: 32x32):
- export s: convkit.export.onnx_bytes (graph, weights, onnx.checker with shape inference); MiB: the file's size;
- convkit ms / ort ms: one inference batch of --batch images in convkit and in onnxruntime (intra-op threads =
  --threads, graph optimisations on), the median of --repeats after a warm-up, the two alternating;
  ratio = ort ms / convkit ms (> 1: convkit faster); max rel diff: max |ort - convkit| / max |convkit|;
- .pt s / .safetensors s: convkit.interop.load_torch_state_dict from a file of the model's torchvision-named
  state dict (ResNets and DenseNet; written from convkit's own weights first, so the files need no download;
  needs PyTorch for .pt and the safetensors package to write the .safetensors file).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (pins BLAS threads before NumPy loads)

MODELS = ("resnet18", "resnet50", "mobilenet", "densenet121")


class Model:
    def __init__(self, name: str) -> None:
        self.name = name


def torchvision_state(model) -> dict:
    """The model's weights under torchvision's keys in PyTorch's layouts: kernels (*k, C_in, C_out) ->
    (C_out, C_in, *k), Dense (in, out) -> (out, in) (the benchmark's models have no Dense after a Flatten)."""
    import numpy as np

    from convkit.interop._torchvision import torchvision_keys

    keys, state = torchvision_keys(model), {}
    for p in model.parameters():
        value = p.value
        if value.ndim >= 2:
            value = np.transpose(value, (value.ndim - 1, value.ndim - 2, *range(value.ndim - 2)))
        state[keys[p.name]] = np.ascontiguousarray(value)
    return state


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--models", default="", help=f"comma-separated among {', '.join(MODELS)}")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    chosen = [m.name for m in common.select(args.models, [Model(n) for n in MODELS], "--models", parser)]
    common.pin_threads(args.threads)

    import numpy as np
    import onnxruntime as ort

    import convkit
    from convkit import export, interop, models

    convkit.set_num_threads(args.threads)
    size, repeats = (32, 1) if args.quick else (224, args.repeats)
    rows = []
    with tempfile.TemporaryDirectory() as directory:
        for name in chosen:
            print(f"{name}: building and exporting", file=sys.stderr, flush=True)
            model = models.get(name, input_shape=(size, size, 3), classes=1000)
            start = time.perf_counter()
            data = export.onnx_bytes(model, (size, size, 3))
            export_seconds = time.perf_counter() - start
            options = ort.SessionOptions()
            options.intra_op_num_threads = args.threads
            session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
            x = np.random.default_rng(0).normal(size=(args.batch, size, size, 3)).astype(np.float32)
            feed = {session.get_inputs()[0].name: x}
            print(f"{name}: timing convkit and onnxruntime", file=sys.stderr, flush=True)
            times = {"convkit": [], "ort": []}
            for _ in range(2):  # two rounds, alternating the peers
                times["convkit"].append(common.median_seconds(lambda: model(x), repeats))
                common.settle()
                times["ort"].append(common.median_seconds(lambda: session.run(None, feed), repeats))
                common.settle()
            ours, theirs = model(x), session.run(None, feed)[0]
            row = {"model": name, "export s": export_seconds, "MiB": len(data) / 2**20,
                   "convkit ms": 1e3 * min(times["convkit"]), "ort ms": 1e3 * min(times["ort"]),
                   "max rel diff": f"{np.abs(theirs - ours).max() / np.abs(ours).max():.1e}"}
            row["ratio"] = row["ort ms"] / row["convkit ms"]
            row.update(load_times(model, directory, interop))
            rows.append(row)
    common.print_table(rows, ["model", "export s", "MiB", "convkit ms", "ort ms", "ratio", "max rel diff", ".pt s",
                              ".safetensors s"], args.json, {**common.describe_machine(args.threads),
                                                             "batch": args.batch, "input": size,
                                                             "load": os.getloadavg()[0]})
    return 0


def load_times(model, directory: str, interop) -> dict:
    """Seconds to load the model's torchvision-named weights from a .pt and a .safetensors file (None: the
    model has no torchvision names, or the package to write the file is missing)."""
    from convkit.interop._torchvision import torchvision_keys

    times = {".pt s": None, ".safetensors s": None}
    if not torchvision_keys(model):
        return times
    state = torchvision_state(model)
    try:
        import torch
    except ImportError:
        return times
    tensors = {k: torch.from_numpy(v) for k, v in state.items()}
    paths = {".pt s": os.path.join(directory, "w.pt"), ".safetensors s": os.path.join(directory, "w.safetensors")}
    torch.save(tensors, paths[".pt s"])
    try:
        from safetensors.torch import save_file
        save_file(tensors, paths[".safetensors s"])
    except ImportError:
        del paths[".safetensors s"]
    for column, path in paths.items():
        start = time.perf_counter()
        interop.load_torch_state_dict(model, path)
        times[column] = time.perf_counter() - start
    return times


if __name__ == "__main__":
    sys.exit(main())
