"""atheris harness for the checkpoint loader (convkit.load_model and what resuming reads).

    FUZZ_HARNESS=checkpoint tools/fuzz.sh 600        # or: make fuzz-checkpoint

Each input becomes a file in one of three ways, so that the fuzzer reaches past the zip's CRCs into the
.npy and JSON parsers and the architecture checks: the raw bytes; the small valid checkpoint of
tests/robustness/checkpoint_corpus.py with bytes overwritten at fuzzed positions; or that checkpoint's
members with one replaced by fuzzed bytes (a .npy header text, a JSON text, an extra member name) and the zip
written again with correct CRCs. Loading may succeed or raise CheckpointError; any other exception, a
crash or a hang is a finding. Not collected by pytest (test_fuzz_smoke.py runs it briefly).
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import atheris
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the corpus helpers

with atheris.instrument_imports():  # coverage feedback from the loader
    import convkit
    from convkit import saving
    from convkit.saving import CheckpointError

from robustness import checkpoint_corpus  # noqa: E402

WORKDIR = tempfile.mkdtemp(prefix="convkit-fuzz-checkpoint-")
VALID = checkpoint_corpus.valid_checkpoint(os.path.join(WORKDIR, "valid.ckpt"))
MEMBERS = checkpoint_corpus.members_of(VALID)
NAMES = sorted(MEMBERS)
TARGET = os.path.join(WORKDIR, "input.ckpt")


def file_from(data: bytes) -> bytes:
    fdp = atheris.FuzzedDataProvider(data)
    mode = fdp.ConsumeIntInRange(0, 3)
    if mode == 0:
        return fdp.ConsumeBytes(fdp.remaining_bytes())
    if mode == 1:
        damaged = bytearray(VALID)
        for _ in range(fdp.ConsumeIntInRange(1, 8)):
            damaged[fdp.ConsumeIntInRange(0, len(damaged) - 1)] = fdp.ConsumeInt(1) & 0xFF
        return bytes(damaged)
    members = dict(MEMBERS)
    if mode == 2:  # one member's content replaced; a .npy keeps its magic half the time
        name = NAMES[fdp.ConsumeIntInRange(0, len(NAMES) - 1)]
        content = fdp.ConsumeBytes(fdp.remaining_bytes())
        if name.endswith(".npy") and content[:1] == b"h":
            content = checkpoint_corpus.npy_with_header(content[1:].decode("latin1"), payload=b"\0" * 24)
        members[name] = content
    else:  # an extra member under a fuzzed name
        name = fdp.ConsumeUnicodeNoSurrogates(40)
        members[name] = fdp.ConsumeBytes(fdp.remaining_bytes())
    return checkpoint_corpus.write_zip(list(members.items()))


def test_one_input(data: bytes) -> None:
    with open(TARGET, "wb") as file:
        file.write(file_from(data))
    try:
        model = convkit.load_model(TARGET)
        model.compile("sgd", loss="mse")
        saving.load_optimizer_state(TARGET, model.optimizer)
        saving.read_metadata(TARGET)
    except CheckpointError:
        return
    predict_once(model)


def predict_once(model) -> None:
    """A loaded model runs: its stored (fuzzed: NaN, huge) weights through the compiled kernels. Small inputs
    only, as a fuzzed architecture may declare any input shape for layers without weights."""
    shape = model._input_shape() if isinstance(model, convkit.Sequential) else None
    if shape is not None and np.prod(shape, dtype=np.float64) <= 10_000:
        model.predict(np.ones((2, *shape), np.float32))


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
