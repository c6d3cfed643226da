"""Malformed checkpoint files: (label, bytes) pairs, each of which convkit.load_model must reject with exactly
CheckpointError. Built from one small valid checkpoint (`valid_checkpoint`): every truncation point, byte flips,
forged .npy headers, forged zip layouts (duplicate, overlapping, escaping members; a hand-written zip writer
so that the directory can lie), forged JSON, and pickle payloads whose unpickling would create `sentinel`.

Byte flips are listed apart (`byte_flips`): a flip in a field zip readers ignore (a timestamp, the "version
made by") leaves a file that still loads to the same weights, which is fine.
"""
from __future__ import annotations

import io
import json
import struct
import zipfile
import zlib
from typing import Iterator, Optional

import numpy as np

import convkit
from convkit.layers import Dense

Corpus = Iterator[tuple[str, bytes]]


def valid_checkpoint(path) -> bytes:
    """A small Sequential (Dense 3 -> 2) with optimizer state and metadata, saved at path; its bytes."""
    model = convkit.Sequential([Dense(2, input_shape=(3,), name="dense")])
    model.compile("sgd", loss="mse")
    model.train_on_batch(np.ones((2, 3), np.float32), np.zeros((2, 2), np.float32))
    model.save(path, optimizer=model.optimizer, metadata={"epoch": 1})
    with open(path, "rb") as file:
        return file.read()


def members_of(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def write_zip(members: list[tuple[str, bytes]], offsets: Optional[dict[int, int]] = None, method: int = 0,
              flags: int = 0, sizes: Optional[dict[int, int]] = None) -> bytes:
    """A stored zip of members, in order; offsets / sizes override the directory's entry i (the local headers
    stay where they are), method and flags are written for every member."""
    body, directory = bytearray(), bytearray()
    for i, (name, data) in enumerate(members):
        encoded, crc = name.encode(), zlib.crc32(data)
        size = (sizes or {}).get(i, len(data))
        offset = (offsets or {}).get(i, len(body))
        directory += struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 20, flags, method, 0, 33, crc, size,
                                 size, len(encoded), 0, 0, 0, 0, 0, offset) + encoded
        body += struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, flags, method, 0, 33, crc, len(data), len(data),
                            len(encoded), 0) + encoded + data
    end = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(members), len(members), len(directory), len(body), 0)
    return bytes(body + directory + end)


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def npy_with_header(header: str, payload: bytes = b"\0" * 24, version: bytes = b"\x01\x00") -> bytes:
    """A .npy member whose header text is `header` (padded to 64 bytes + newline like numpy's)."""
    text = header.encode("latin1")
    text += b" " * (-(len(text) + 11) % 64) + b"\n"
    length = struct.pack("<H", len(text)) if version == b"\x01\x00" else struct.pack("<I", len(text))
    return b"\x93NUMPY" + version + length + text + payload


class _CreatesSentinel:
    """Unpickling it calls open(path, 'w'): a file appears if anything unpickles the payload."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return open, (self.path, "w")


def pickle_payload_npy(sentinel: str) -> bytes:
    return npy(np.array([_CreatesSentinel(sentinel)], dtype=object))


def replaced(members: dict[str, bytes], **changes: Optional[bytes]) -> list[tuple[str, bytes]]:
    """members with some replaced (keyword: name with '/' as '__' and '.' as '_'), None removing one."""
    keyed = {name.replace("/", "__").replace(".", "_"): name for name in members}
    out = dict(members)
    for key, value in changes.items():
        if value is None:
            del out[keyed[key]]
        else:
            out[keyed[key]] = value
    return list(out.items())


def truncations(data: bytes) -> Corpus:
    for end in range(len(data)):
        yield f"truncated to {end} bytes", data[:end]


def byte_flips(data: bytes, step: int = 3) -> Corpus:
    for position in range(0, len(data), step):
        flipped = bytearray(data)
        flipped[position] ^= 0xFF
        yield f"byte {position} flipped", bytes(flipped)


def forged_npy_headers() -> Corpus:
    base = "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }"
    for shape in ["(-1, 3)", "(3, -2)", "(2**62, 2**62)", "(9223372036854775807, 2)", "(2, 4)", "(1,)",
                  "(10**30,)", "(3, 2.5)", "'abc'", "(True, 2)", "None"]:
        yield f"npy shape {shape}", npy_with_header(base % shape)
    for descr in ["'|O'", "'<c8'", "'<f2'", "'>f4'", "'<U3'", "[('a', '<f4')]", "'<M8[s]'", "'V24'", "'xyz'", "3"]:
        yield f"npy dtype {descr}", npy_with_header("{'descr': %s, 'fortran_order': False, 'shape': (3, 2), }" % descr)
    for header in ["{'descr': '<f4', 'shape': (3, 2), }", "{'descr': '<f4', 'fortran_order': 'yes', 'shape': (3, 2), }",
                   "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), 'x': 1}", "[1, 2, 3]", "(",
                   "__import__('os').system('true')", "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2)" + ")" * 50,
                   "[" * 5000 + "]" * 5000]:
        yield f"npy header {header[:40]!r}", npy_with_header(header)
    yield "npy header of 100 kB", npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }" +
                                                  " " * 100_000, version=b"\x02\x00")
    yield "npy version 3.0", npy_with_header(base % "(3, 2)", version=b"\x03\x00")
    yield "npy bad magic", b"\x93NUMPZ\x01\x00" + npy_with_header(base % "(3, 2)")[8:]
    yield "npy empty", b""
    yield "npy magic only", b"\x93NUMPY\x01\x00"


def forged_members(members: dict[str, bytes], sentinel: str) -> Corpus:
    """Whole files built from the valid members with one thing wrong."""
    kernel = "weights/dense/kernel.npy"
    for label, header_npy in forged_npy_headers():
        yield f"{label} (as the kernel)", write_zip(replaced(members, weights__dense__kernel_npy=header_npy))
    payload = pickle_payload_npy(sentinel)
    yield "pickle payload as the kernel", write_zip(replaced(members, weights__dense__kernel_npy=payload))
    yield "pickle payload as an optimizer array", write_zip([*members.items(), ("optimizer/evil.npy", payload)])
    yield "pickle payload as metadata.json", write_zip(replaced(members, metadata_json=payload))
    yield "a bare pickle file", payload[payload.index(b"\n") + 1:]
    yield "np.savez with an object array", _savez({"weights/dense/kernel": np.array([_CreatesSentinel(sentinel)])})
    items = list(members.items())
    yield "duplicate member names", write_zip([*items, (kernel, members[kernel])])
    yield "duplicate architecture.json", write_zip([*items, ("architecture.json", b"{}")])
    yield "two entries at one offset", write_zip([*items, ("weights/dense/extra.npy", members[kernel])],
                                                 offsets={len(items): 0})
    yield "an entry inside another's data", write_zip(items, offsets={1: 40})
    yield "an entry past the end", write_zip(items, offsets={1: 10**6})
    yield "an entry reaching into the directory", write_zip(items, sizes={len(items) - 1: 10_000})
    yield "deflated members", write_zip(items, method=8)
    yield "encrypted members", write_zip(items, flags=1)
    yield "no members", write_zip([])
    for name in ["../evil.npy", "/weights/abs.npy", "weights/../../x.npy", "weights/a\\b.npy", "evil.py",
                 "weights/x.txt", "weights/.npy", "weights//k.npy", "weights/./k.npy", "model.pkl",
                 "weights/k.npy/", "architecture.json.npy", "weights/\x00.npy", "optimizer.json/x.npy"]:
        yield f"member named {name!r}", write_zip([*items, (name, members[kernel])])
    yield "network class 'os.system'", _with_architecture(members, {"format": 1, "network": {
        "class_name": "os.system", "config": {"layers": []}}})
    architecture = json.loads(members["architecture.json"])
    for label, change in [("unknown layer 'subprocess.Popen'", {"class_name": "subprocess.Popen"}),
                          ("layer class_name a list", {"class_name": ["Dense"]}),
                          ("layer config with an unknown argument", {"config": {"units": 2, "evil": 1}}),
                          ("layer config units -1", {"config": {"units": -1, "name": "dense"}}),
                          ("layer config a list", {"config": [1, 2]}),
                          ("layer entry without config", {"config": None})]:
        forged = json.loads(json.dumps(architecture))
        forged["network"]["config"]["layers"][0].update(change)
        yield label, _with_architecture(members, forged)
    for label, text in [("architecture not JSON", b"{not json"), ("architecture a JSON list", b"[1, 2]"),
                        ("architecture invalid UTF-8", b'{"format": "\xff"}'),
                        ("architecture nested 100000 deep", b"[" * 100_000 + b"]" * 100_000),
                        ("architecture of 17 MB", b'{"pad": "' + b" " * (17 * 2**20) + b'"}'),
                        ("architecture format 2", json.dumps({**architecture, "format": 2}).encode()),
                        ("architecture without network", b'{"format": 1}'),
                        ("architecture network null", b'{"format": 1, "network": null}'),
                        ("architecture layers not a list", b'{"format": 1, "network": {"class_name": "Sequential", '
                                                           b'"config": {"layers": 5}}}'),
                        ("architecture huge int", b'{"format": 1' + b"0" * 5000 + b'}')]:
        yield label, write_zip(replaced(members, architecture_json=text))
    yield from forged_sizes(members)
    yield "optimizer.json a string", write_zip(replaced(members, optimizer_json=b'"x"'))
    yield "metadata.json a number", write_zip(replaced(members, metadata_json=b"3"))
    yield "no weights", write_zip(replaced(members, weights__dense__kernel_npy=None, weights__dense__bias_npy=None))
    yield "kernel missing", write_zip(replaced(members, weights__dense__kernel_npy=None))
    yield "an extra weight array", write_zip([*items, ("weights/dense/extra.npy", npy(np.zeros(2, np.float32)))])
    yield "kernel transposed", write_zip(replaced(members, weights__dense__kernel_npy=npy(np.zeros((2, 3), np.float32))))
    yield "kernel of ints", write_zip(replaced(members, weights__dense__kernel_npy=npy(np.zeros((3, 2), np.int32))))
    yield "kernel renamed", write_zip([(n.replace("kernel", "kernal"), d) for n, d in items])
    yield "optimizer.json with an unknown key", write_zip(replaced(members, optimizer_json=b'{"evil": 1}'))
    yield "not a zip", b"not a zip at all" * 10
    yield "empty file", b""


def forged_sizes(members: dict[str, bytes]) -> Corpus:
    """Architectures declaring weights far larger than the file stores (terabytes when allocated): the loader
    must compare them with the stored arrays before building anything."""
    architecture = json.loads(members["architecture.json"])
    dense = architecture["network"]["config"]["layers"][0]
    conv = {"class_name": "Conv2D", "config": {"name": "dense", "filters": 10**6, "kernel_size": [3, 3],
                                               "input_shape": [8, 8, 3]}}
    extra = {"class_name": "Dense", "config": {"name": "huge", "units": 10**9}}
    for label, layers, input_shape in [
            ("Dense of 10**9 units", [{**dense, "config": {**dense["config"], "units": 10**9}}], [3]),
            ("Dense on 10**12 inputs", [{**dense, "config": {**dense["config"], "input_shape": [10**12]}}], [10**12]),
            ("Conv2D of 10**6 filters", [conv], [8, 8, 3]),
            ("an extra Dense of 10**9 units", [dense, extra], [3])]:
        forged = json.loads(json.dumps(architecture))
        forged["network"]["config"].update(layers=layers, input_shape=input_shape)
        yield f"architecture declaring {label}", _with_architecture(members, forged)


def _savez(arrays: dict) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _with_architecture(members: dict[str, bytes], architecture: dict) -> bytes:
    return write_zip(replaced(members, architecture_json=json.dumps(architecture).encode()))


def malformed(data: bytes, sentinel: str) -> Corpus:
    """Every truncation point of data, then the forged files (byte flips apart: see the module docstring)."""
    yield from truncations(data)
    yield from forged_members(members_of(data), sentinel)
