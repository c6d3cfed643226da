"""Mini-batches for training: shuffled reproducibly, augmented, converted to float32, prefetched."""
from __future__ import annotations

import queue
import threading
from typing import Callable, Iterator, Optional, Sequence, Tuple

import numpy as np

Augment = Callable[[np.ndarray, np.random.Generator], np.ndarray]


class DataLoader:
    """Iterate over (x_batch, y_batch) pairs of a dataset held in memory.

    x: (N, H, W, C) uint8 or floating images; y: (N,) labels (any array with N rows). Each batch comes out
    as x float32 (N_b, H, W, C) -- uint8 scaled to [0, 1], then `(x - mean) / std` per channel when
    `mean`/`std` are given -- and the matching rows of y.

    - Order: with `shuffle`, a permutation drawn from (seed, epoch); the epoch is the one set by
      `set_epoch(e)`, and each new iteration then moves on to the next epoch, so a loop over epochs
      reshuffles and any epoch can be replayed.
    - `augment(batch, rng)` (e.g. an augmentations.Compose) runs on the raw batch, uint8 (or float32 for
      floating x), rng seeded from (seed, epoch, batch index): batches are reproducible whatever the
      prefetching.
    - `prefetch`: batches prepared ahead by one background thread (0: none, all work in the caller). The
      augmentation kernels release the GIL, so this overlaps with training. An exception in the thread is
      raised in the caller; leaving a loop early (break, an exception, dropping the iterator) stops the
      thread.
    - `drop_last`: leave out the final incomplete batch.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int, *, shuffle: bool = True, seed: int = 0,
                 drop_last: bool = False, augment: Optional[Augment] = None, prefetch: int = 2,
                 mean: Optional[Sequence[float]] = None, std: Optional[Sequence[float]] = None):
        x, y = np.asarray(x), np.asarray(y)
        if x.ndim != 4:
            raise ValueError(f"x must have shape (N, H, W, C), got shape {x.shape}")
        if x.dtype != np.uint8 and not np.issubdtype(x.dtype, np.floating):
            raise TypeError(f"x must be uint8 or floating images, got dtype {x.dtype}")
        if y.ndim < 1 or y.shape[0] != x.shape[0]:
            raise ValueError(f"y must have one row per image ({x.shape[0]}), got shape {y.shape}")
        for value, name in ((batch_size, "batch_size"), (prefetch + 1, "prefetch + 1")):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if augment is not None and not callable(augment):
            raise TypeError(f"augment must be a callable (batch, rng) -> batch, got {augment!r}")
        self.x, self.y = x, y
        self.batch_size, self.shuffle, self.seed = int(batch_size), bool(shuffle), int(seed)
        self.drop_last, self.augment, self.prefetch = bool(drop_last), augment, int(prefetch)
        self.mean, self.std = self._channel_stats(mean, "mean"), self._channel_stats(std, "std")
        if self.std is not None and np.any(self.std <= 0):
            raise ValueError(f"std must be > 0 in every channel, got {std!r}")
        self.epoch = 0

    def _channel_stats(self, values, name: str) -> Optional[np.ndarray]:
        if values is None:
            return None
        arr = np.asarray(values, dtype=np.float32).reshape(-1)
        if arr.size not in (1, self.x.shape[3]) or not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} must be finite, one value or one per channel ({self.x.shape[3]}), got {values!r}")
        return arr

    def set_epoch(self, epoch: int) -> None:
        """The epoch the next iteration uses (its shuffle and augmentation draws)."""
        if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 0:
            raise ValueError(f"epoch must be an int >= 0, got {epoch!r}")
        self.epoch = int(epoch)

    def __len__(self) -> int:
        n = self.x.shape[0]
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def order(self, epoch: int) -> np.ndarray:
        """The sample indices of `epoch`, in the order they are served."""
        n = self.x.shape[0]
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng([self.seed, epoch]).permutation(n)

    def _batch(self, epoch: int, index: int, rows: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        xb = self.x[rows]
        if xb.dtype != np.uint8:  # the augmentation kernels take uint8 or float32
            xb = xb.astype(np.float32, copy=False)
        if self.augment is not None:
            xb = self.augment(xb, np.random.default_rng([self.seed, epoch, index]))
        xb = np.divide(xb, 255, dtype=np.float32) if xb.dtype == np.uint8 else xb.astype(np.float32, copy=False)
        if self.mean is not None:
            xb -= self.mean
        if self.std is not None:
            xb /= self.std
        return xb, self.y[rows]

    def _batches(self, epoch: int) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
        order = self.order(epoch)
        for index in range(len(self)):
            yield self._batch(epoch, index, order[index * self.batch_size:(index + 1) * self.batch_size])

    def __iter__(self) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
        epoch, self.epoch = self.epoch, self.epoch + 1
        if self.prefetch == 0:
            return self._batches(epoch)
        return _Prefetcher(self._batches(epoch), self.prefetch)


_DONE = object()


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error


def _put(q: queue.Queue, stop: threading.Event, item) -> bool:
    """Queue `item` unless the consumer has gone; False when it has."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.05)
            return True
        except queue.Full:
            continue
    return False


def _produce(batches: Iterator, q: queue.Queue, stop: threading.Event) -> None:
    # A plain function, not a method: the thread must not keep the _Prefetcher alive, or dropping the
    # iterator would never reach __del__ and the thread would wait forever.
    try:
        for batch in batches:
            if not _put(q, stop, batch):
                return
        _put(q, stop, _DONE)
    except BaseException as e:  # handed to the consumer, raised there
        _put(q, stop, _Failure(e))


class _Prefetcher:
    """Runs a batch generator in a daemon thread, at most `depth` batches ahead (a bounded queue)."""

    def __init__(self, batches: Iterator, depth: int):
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=_produce, args=(batches, self._queue, self._stop),
                                        name="convkit-prefetch", daemon=True)
        self._thread.start()

    def __iter__(self):
        return self

    def __next__(self):
        if self._stop.is_set():
            raise StopIteration
        item = self._queue.get()
        if item is _DONE:
            self.close()
            raise StopIteration
        if isinstance(item, _Failure):
            self.close()
            raise item.error
        return item

    def close(self) -> None:
        """Stop the thread and wait for it (it finishes the batch it is making)."""
        self._stop.set()
        self._thread.join()

    def __del__(self):
        self.close()
