"""Reading a .safetensors file with NumPy alone, trusting nothing in it.

The format (https://github.com/huggingface/safetensors): an unsigned little-endian 64-bit header length N,
N bytes of a UTF-8 JSON object {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__":
{str: str}}, then the byte buffer the offsets index (little-endian values, row-major). The buffer must be
covered exactly: every tensor's bytes are its shape times its item size, tensors neither overlap nor leave
holes. Any departure raises CheckpointError naming the file.
"""
from __future__ import annotations

import json
import math
import os
import struct

import numpy as np

from .._checkpoint_file import CheckpointError

MAX_HEADER_BYTES = 100 * 2**20  # the format's own cap
# The format's dtype names; BF16 is widened to float32 (NumPy has no bfloat16).
DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2", "I64": "<i8", "I32": "<i4", "I16": "<i2",
          "I8": "i1", "U8": "u1", "BOOL": "?"}


def _fail(path: str, what: str) -> CheckpointError:
    return CheckpointError(f"{path}: not a valid safetensors file: {what}")


def _parse_header(raw: bytes, path: str) -> dict:
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise _fail(path, f"its header is not UTF-8 JSON ({error})") from None
    if not isinstance(header, dict):
        raise _fail(path, f"its header must be a JSON object, got {type(header).__name__}")
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise _fail(path, "__metadata__ must map strings to strings")
    return header


def _check_entry(name: str, entry, path: str) -> tuple[np.dtype, tuple, int, int]:
    """(dtype, shape, begin, end) of one header entry after checking its fields."""
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        raise _fail(path, f"tensor {name!r} must have exactly dtype, shape and data_offsets, got {entry!r}")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if dtype not in DTYPES:
        raise _fail(path, f"tensor {name!r} has dtype {dtype!r}; known: {sorted(DTYPES)}")
    if not isinstance(shape, list) or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape):
        raise _fail(path, f"tensor {name!r} has shape {shape!r}, not a list of non-negative ints")
    if (not isinstance(offsets, list) or len(offsets) != 2
            or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
            or not 0 <= offsets[0] <= offsets[1]):
        raise _fail(path, f"tensor {name!r} has data_offsets {offsets!r}, not [begin, end] with 0 <= begin <= end")
    numpy_dtype = np.dtype(DTYPES[dtype])
    needed = math.prod(shape) * numpy_dtype.itemsize  # Python ints: no overflow
    if offsets[1] - offsets[0] != needed:
        raise _fail(path, f"tensor {name!r} of dtype {dtype} and shape {shape} needs {needed} bytes, its data_offsets "
                          f"{offsets} span {offsets[1] - offsets[0]}")
    return numpy_dtype, tuple(shape), offsets[0], offsets[1]


def read_safetensors(path) -> dict[str, np.ndarray]:
    """{name: array} of the file, in the order of the tensors' data. OSError (missing file...) as is."""
    path = os.fspath(path)
    with open(path, "rb") as file:
        size = os.fstat(file.fileno()).st_size
        prefix = file.read(8)
        if len(prefix) != 8:
            raise _fail(path, f"{size} bytes, too short for the 8-byte header length")
        (header_bytes,) = struct.unpack("<Q", prefix)
        if header_bytes > min(MAX_HEADER_BYTES, size - 8):
            raise _fail(path, f"header length {header_bytes} exceeds the file ({size} bytes) or the cap of "
                              f"{MAX_HEADER_BYTES}")
        header = _parse_header(file.read(header_bytes), path)
        entries = sorted(((*_check_entry(name, entry, path), name) for name, entry in header.items()),
                         key=lambda e: (e[2], e[3]))
        buffer_bytes, position = size - 8 - header_bytes, 0
        for _, _, begin, end, name in entries:
            if begin != position:
                what = "overlaps the tensor before it" if begin < position else f"leaves a hole at byte {position}"
                raise _fail(path, f"tensor {name!r} at data_offsets [{begin}, {end}] {what}")
            position = end
        if position != buffer_bytes:
            raise _fail(path, f"the tensors cover {position} bytes of a data buffer of {buffer_bytes}")
        arrays = {}
        for dtype, shape, begin, end, name in entries:
            raw = file.read(end - begin)
            array = np.frombuffer(raw, dtype=dtype).reshape(shape)
            if dtype == np.dtype("<u2") and header[name]["dtype"] == "BF16":
                array = (array.astype(np.uint32) << 16).view(np.float32)
            arrays[name] = array.astype(array.dtype.newbyteorder("="))
        return arrays

