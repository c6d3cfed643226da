"""Fetching dataset files: checksum-verified, written atomically, never needed by default."""
from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

CHUNK = 1 << 20


def _open_url(url: str, timeout: float):
    """The one place that touches the network (tests replace it)."""
    return urllib.request.urlopen(url, timeout=timeout)


def file_digest(path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def download(url: str, path, *, checksum: str, algorithm: str = "sha256", timeout: float = 60.0) -> Path:
    """Download `url` to `path` unless a file with the right checksum is already there.

    The data go to a temporary file in the destination folder, are hashed (`algorithm`: 'sha256', or
    'md5' where that is what the publisher lists), and only a verified file is renamed into place, so an
    interrupted or corrupt download never leaves a file at `path`. Raises ConnectionError when the URL
    cannot be reached (e.g. offline) and ValueError on a checksum mismatch."""
    path = Path(path)
    if path.is_file() and file_digest(path, algorithm) == checksum:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=path.name + ".", suffix=".part", dir=path.parent)
    try:
        h = hashlib.new(algorithm)
        with os.fdopen(fd, "wb") as out:
            try:
                with _open_url(url, timeout) as response:
                    for chunk in iter(lambda: response.read(CHUNK), b""):
                        h.update(chunk)
                        out.write(chunk)
            except (urllib.error.URLError, OSError) as e:
                raise ConnectionError(
                    f"could not download {url} ({e}); are you offline? Download it by hand and put it at {path}"
                ) from e
        if h.hexdigest() != checksum:
            raise ValueError(f"{url}: {algorithm} checksum {h.hexdigest()} does not match the published {checksum}")
        os.replace(tmp_name, path)
    finally:
        if os.path.exists(tmp_name):
            os.remove(tmp_name)
    return path
