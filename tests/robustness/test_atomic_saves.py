"""Saves are atomic: a process killed (SIGKILL) at random moments while saving over and over always leaves a
loadable, intact checkpoint (its weights hash to what the saver recorded in it); a failed write (no space,
no permission; the disk filling up at any point of the file) raises OSError naming the path and leaves the
previous file as it was."""
from __future__ import annotations

import errno
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import convkit
from convkit import saving
from convkit.layers import Dense

SAVER = textwrap.dedent("""
    import hashlib, sys
    import numpy as np
    import convkit
    from convkit.layers import Dense

    def digest(model):
        return hashlib.sha256(b"".join(p.value.tobytes() for p in model.parameters())).hexdigest()

    model = convkit.Sequential([Dense(256, input_shape=(512,)), Dense(10)])
    rng = np.random.default_rng(int(sys.argv[2]))
    print("ready", flush=True)
    while True:
        for p in model.parameters():
            p.assign(rng.standard_normal(p.shape).astype(np.float32))
        print("saving", digest(model), flush=True)
        model.save(sys.argv[1], metadata={"sha256": digest(model)})
        print("saved", flush=True)
""")


def digest(model) -> str:
    import hashlib
    return hashlib.sha256(b"".join(p.value.tobytes() for p in model.parameters())).hexdigest()


def run_saver_and_kill(path: Path, seed: int, delay: float) -> list[tuple[str, bool]]:
    """Starts the saver, kills it with SIGKILL `delay` seconds after it is ready; (hash, finished) per save."""
    package_parent = Path(convkit.__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(package_parent), OPENBLAS_NUM_THREADS="1")
    # cwd: `python -c` puts the working directory first on sys.path, and a source checkout there would shadow
    # the package under test with uncompiled sources.
    saver = subprocess.Popen([sys.executable, "-c", SAVER, str(path), str(seed)], stdout=subprocess.PIPE, text=True,
                             env=env, cwd=package_parent)
    assert saver.stdout.readline().strip() == "ready"
    time.sleep(delay)
    saver.send_signal(signal.SIGKILL)
    out = saver.stdout.read()  # not communicate(): it would skip what readline() already buffered
    assert saver.wait(timeout=60) == -signal.SIGKILL
    saves: list[tuple[str, bool]] = []
    for line in out.splitlines():
        if line.startswith("saving "):
            saves.append((line.split()[1], False))
        elif line == "saved":
            saves[-1] = (saves[-1][0], True)
    return saves


def test_kill_9_while_saving_always_leaves_the_previous_or_the_new_checkpoint_intact(tmp_path):
    path = tmp_path / "model.ckpt"
    rng = random.Random(0)
    total_saves, seen = 0, set()
    for round_ in range(30):
        saves = run_saver_and_kill(path, seed=round_, delay=rng.uniform(0.05, 0.6))
        total_saves += sum(done for _, done in saves)
        if not path.exists():  # killed before its first save finished: nothing was there to protect
            assert total_saves == 0
            continue
        model = convkit.load_model(path)
        stored = saving.read_metadata(path)["sha256"]
        assert digest(model) == stored  # intact: weights and their recorded hash agree
        finished = [h for h, done in saves if done]
        # the last finished save, or the one the kill interrupted after its rename
        candidates = finished[-1:] + [h for h, done in saves if not done]
        if saves:
            assert stored in candidates or (not finished and stored in seen)
        seen.add(stored)
        if total_saves >= 100 and round_ >= 9:
            break
    assert total_saves >= 100


@pytest.fixture()
def saved_model(tmp_path):
    model = convkit.Sequential([Dense(3, input_shape=(4,))])
    path = tmp_path / "model.ckpt"
    model.save(path)
    return model, path, path.read_bytes()


def assert_old_file_kept(path: Path, before: bytes) -> None:
    assert path.read_bytes() == before
    assert sorted(os.listdir(path.parent)) == [path.name]  # no temporary file left behind
    convkit.load_model(path)


def test_no_space_left_raises_os_error_naming_the_path_and_keeps_the_old_file(saved_model, monkeypatch):
    model, path, before = saved_model

    def full_disk(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full_disk)
    for p in model.parameters():
        p.assign(np.ones(p.shape, np.float32))
    with pytest.raises(OSError, match="could not save checkpoint .*model.ckpt.*No space left") as caught:
        model.save(path)
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(path)
    assert_old_file_kept(path, before)


class FillingDisk:
    """A file on a disk with `free` bytes left: a write past them raises ENOSPC, as write(2) does when the
    disk fills mid-file (the rest of the file object's interface passes through)."""

    def __init__(self, file, free: int) -> None:
        self._file, self._free = file, free

    def write(self, data) -> int:
        if len(data) > self._free:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._free -= len(data)
        return self._file.write(data)

    def __getattr__(self, name):
        return getattr(self._file, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self._file.close()


@pytest.mark.parametrize("free", [0, 100, 1000, 3000])
def test_a_disk_filling_up_mid_save_raises_enospc_and_keeps_the_old_file(saved_model, monkeypatch, free):
    """ENOSPC from the writes themselves, at several points of the file (its first byte, a member's header,
    the data, the zip directory), not only from fsync."""
    model, path, before = saved_model
    for p in model.parameters():
        p.assign(np.ones(p.shape, np.float32))
    real_fdopen = os.fdopen
    monkeypatch.setattr(os, "fdopen", lambda fd, mode: FillingDisk(real_fdopen(fd, mode), free))
    with pytest.raises(OSError, match="could not save checkpoint .*model.ckpt.*No space left") as caught:
        model.save(path, metadata={"pad": "x" * 4000})  # over 3000 bytes in all: every free size runs out
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(path)
    monkeypatch.undo()
    assert_old_file_kept(path, before)


def test_a_failing_write_raises_os_error_and_keeps_the_old_file(saved_model, monkeypatch):
    model, path, before = saved_model

    def failing_write(*args, **kwargs):
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr("zipfile.ZipFile.writestr", failing_write)
    with pytest.raises(OSError, match="model.ckpt") as caught:
        model.save(path)
    assert caught.value.errno == errno.EIO
    assert_old_file_kept(path, before)


def test_no_permission_raises_os_error_naming_the_path_and_keeps_the_old_file(saved_model, monkeypatch):
    model, path, before = saved_model
    os.chmod(path.parent, 0o500)
    try:
        if os.access(path.parent, os.W_OK):  # root ignores directory permissions: make the denial explicit
            def denied(*args, **kwargs):
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
            monkeypatch.setattr("tempfile.mkstemp", denied)
        with pytest.raises(PermissionError, match="could not save checkpoint .*model.ckpt") as caught:
            model.save(path)
        assert caught.value.filename == str(path)
    finally:
        os.chmod(path.parent, 0o700)
    assert_old_file_kept(path, before)
