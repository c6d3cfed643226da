"""Reading a checkpoint file without trusting it: every way it can be malformed raises CheckpointError.

The file is an uncompressed zip of .npy and .json members (see convkit.saving). np.load would trust the zip's
directory and the .npy headers; here the whole file is checked first (size cap, member count, member names
and kinds, no duplicate or overlapping members, stored not compressed) and each member then parsed by hand:
a .npy header must describe a dtype of the allow-list and a non-negative shape whose bytes are exactly the
member's payload; a .json member must be a small UTF-8 JSON object. Nothing is ever unpickled or imported.
"""
from __future__ import annotations

import io
import json
import os
import re
import struct
import tokenize
import zipfile
from typing import Union

import numpy as np

MAX_FILE_BYTES = 8 * 2**30
MAX_MEMBERS = 100_000
MAX_JSON_BYTES = 16 * 2**20
MAX_NPY_HEADER_BYTES = 10_000  # numpy's own default cap for np.load
JSON_MEMBERS = ("architecture.json", "optimizer.json", "metadata.json")
ARRAY_DIRECTORIES = ("weights/", "optimizer/")
# dtype.str of the dtypes a checkpoint may hold (little-endian, as convkit writes them); never object.
ALLOWED_DTYPES = {np.dtype(t).newbyteorder("<").str: np.dtype(t) for t in
                  (np.float32, np.float64, np.int64, np.int32, np.bool_, np.uint8)}
# A path segment of an array's name: no '.'/'..' segment, no backslash, NUL or control character.
_SEGMENT = re.compile(r"[^/\\\x00-\x1f\x7f]+")
_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, (version .. sizes), name length, extra length
_LOCAL_SIGNATURE = b"PK\x03\x04"
# What zipfile, numpy's header parser (it tokenizes the header: TokenError) and json raise on bytes they
# cannot make sense of.
_PARSE_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, struct.error, ValueError, KeyError,
                 IndexError, NotImplementedError, OverflowError, RuntimeError, SyntaxError, RecursionError,
                 tokenize.TokenError)

Member = Union[np.ndarray, dict]


class CheckpointError(ValueError):
    """A checkpoint file that is not a well-formed convkit checkpoint (corrupt, truncated, forged)."""


def is_valid_member_name(name: str) -> bool:
    if name in JSON_MEMBERS:
        return True
    directory = next((d for d in ARRAY_DIRECTORIES if name.startswith(d)), None)
    if directory is None or not name.endswith(".npy"):
        return False
    segments = name[len(directory):-len(".npy")].split("/")
    return all(_SEGMENT.fullmatch(s) and s not in (".", "..") for s in segments)


def _check_layout(data: bytes, archive: zipfile.ZipFile, path: str) -> None:
    """Member count, names, kinds, compression, and that every member's bytes lie apart, before the directory."""
    infos = archive.infolist()
    if len(infos) > MAX_MEMBERS:
        raise CheckpointError(f"{path}: {len(infos)} members, more than the {MAX_MEMBERS} a checkpoint may hold")
    names = [info.filename for info in infos]
    if len(set(names)) != len(names):
        duplicated = sorted({n for n in names if names.count(n) > 1})
        raise CheckpointError(f"{path}: duplicate members {duplicated}")
    extents = []
    for info in infos:
        if not is_valid_member_name(info.filename):
            raise CheckpointError(f"{path}: unexpected member {info.filename!r} (a checkpoint holds architecture.json, "
                                  "optimizer.json, metadata.json, weights/*.npy and optimizer/*.npy)")
        if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1 or info.compress_size != info.file_size:
            raise CheckpointError(f"{path}: member {info.filename!r} is compressed or encrypted (convkit stores "
                                  "members uncompressed)")
        header = data[info.header_offset:info.header_offset + _LOCAL_HEADER.size]
        if len(header) != _LOCAL_HEADER.size:
            raise CheckpointError(f"{path}: member {info.filename!r} starts past the end of the file")
        signature, name_length, extra_length = _LOCAL_HEADER.unpack(header)
        if signature != _LOCAL_SIGNATURE:
            raise CheckpointError(f"{path}: member {info.filename!r} has no local header at offset "
                                  f"{info.header_offset}")
        end = info.header_offset + _LOCAL_HEADER.size + name_length + extra_length + info.compress_size
        extents.append((info.header_offset, end, info.filename))
    extents.sort()
    directory_start = archive.start_dir
    for (start, end, name), following in zip(extents, [*extents[1:], (directory_start, None, "the directory")]):
        if end > following[0]:
            raise CheckpointError(f"{path}: member {name!r} (bytes {start}..{end}) overlaps {following[2]!r} at "
                                  f"byte {following[0]}")


def _parse_npy(raw: bytes, name: str, path: str) -> np.ndarray:
    stream = io.BytesIO(raw)
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(stream, MAX_NPY_HEADER_BYTES)
    elif version == (2, 0):
        shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(stream, MAX_NPY_HEADER_BYTES)
    else:
        raise CheckpointError(f"{path}: member {name!r} has .npy format version {version}, expected 1.0 or 2.0")
    if dtype.str not in ALLOWED_DTYPES or dtype.hasobject:
        raise CheckpointError(f"{path}: member {name!r} has dtype {dtype.str!r}; allowed: {sorted(ALLOWED_DTYPES)}")
    if not all(isinstance(n, int) and n >= 0 for n in shape):
        raise CheckpointError(f"{path}: member {name!r} has shape {shape}, not a tuple of non-negative ints")
    count = 1
    for n in shape:  # Python ints: no overflow; compared with the bytes actually present
        count *= n
    payload = len(raw) - stream.tell()
    if count * dtype.itemsize != payload:
        raise CheckpointError(f"{path}: member {name!r} of shape {shape} and dtype {dtype.str} needs "
                              f"{count * dtype.itemsize} bytes, the member holds {payload}")
    array = np.frombuffer(raw, dtype=ALLOWED_DTYPES[dtype.str], count=count, offset=stream.tell())
    return (array.reshape(shape[::-1]).T if fortran_order else array.reshape(shape)).copy()


def _parse_json(raw: bytes, name: str, path: str) -> dict:
    if len(raw) > MAX_JSON_BYTES:
        raise CheckpointError(f"{path}: member {name!r} holds {len(raw)} bytes, over the cap of {MAX_JSON_BYTES}")
    value = json.loads(raw.decode("utf-8"))
    if not isinstance(value, dict):
        raise CheckpointError(f"{path}: member {name!r} must hold a JSON object, got {type(value).__name__}")
    return value


def read_members(path: str) -> dict[str, Member]:
    """{member name: array or dict} of the checkpoint at path. OSError (missing file, no permission) as is;
    CheckpointError, naming the path and what is wrong, for anything malformed."""
    with open(path, "rb") as file:
        # Sized by the file, not by the cap: read(MAX_FILE_BYTES + 1) would reserve 8 GiB for every load.
        size = os.fstat(file.fileno()).st_size
        if size > MAX_FILE_BYTES:
            raise CheckpointError(f"{path}: {size} bytes, over the cap of {MAX_FILE_BYTES} bytes for a checkpoint")
        data = file.read(size)
        if file.read(1):
            raise CheckpointError(f"{path}: grew while being read, or is not a regular file")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            _check_layout(data, archive, path)
            members: dict[str, Member] = {}
            for info in archive.infolist():
                raw = archive.read(info)  # checks the CRC and that the local header names the same member
                parse = _parse_json if info.filename.endswith(".json") else _parse_npy
                members[info.filename] = parse(raw, info.filename, path)
            return members
    except CheckpointError:
        raise
    except _PARSE_ERRORS as error:
        raise CheckpointError(f"{path}: not a readable convkit checkpoint (corrupt or truncated?): "
                              f"{type(error).__name__}: {error}") from None
