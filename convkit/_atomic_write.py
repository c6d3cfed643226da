"""Writing a file all at once or not at all: checkpoints (convkit.saving) and exported models (convkit.export)."""
from __future__ import annotations

import os
import tempfile
from typing import BinaryIO, Callable


def write_atomically(path, write: Callable[[BinaryIO], None], what: str) -> None:
    """write(file) into a temporary file in path's directory, fsync, then os.replace onto path: a reader never
    sees a half-written file, and a failed write (no space, no permission) leaves the previous file as it was
    and raises the same kind of OSError naming `what` and the path."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, temporary = tempfile.mkstemp(prefix=".convkit-", suffix=".tmp", dir=directory)
    except OSError as error:
        raise _naming(error, path, what) from error
    try:
        with os.fdopen(fd, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException as error:
        if os.path.exists(temporary):
            os.unlink(temporary)
        if isinstance(error, OSError):
            raise _naming(error, path, what) from error
        raise


def _naming(error: OSError, path: str, what: str) -> OSError:
    """The same kind of OSError (ENOSPC, EACCES, ...), its message naming what was being saved."""
    return type(error)(error.errno, f"could not save {what} {path!r}: {error.strerror or error}", path)
