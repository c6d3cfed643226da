"""Averaging the gradients over the ranks after each backward pass, in a few large fused messages.

One all-reduce per parameter would pay MPI's latency dozens of times per step (ResNet-18 has 62 tensors);
one per network would wait for the whole backward pass. As in Horovod and PyTorch's DDP, the trainable
parameters are packed, in backward order (the last layer's first), into buckets of about 25 MB: one
contiguous buffer per bucket, and each `Parameter.grad` becomes a view into it, so the layers accumulate
their gradients straight into the message and nothing is copied. When the network tells which layer's
gradients are complete (`Network.gradient_ready_hook`, called during backward), a full bucket's
non-blocking all-reduce (MPI_Iallreduce) starts at once and overlaps the rest of the backward pass;
`synchronize()` then starts the remaining buckets and waits. A model without that hook gets one fused
all-reduce per bucket after backward.

The sum is divided by the world size: every rank ends with the same bits (MPI returns the same reduced
buffer to all ranks), which keeps the replicas identical step after step.
"""
from __future__ import annotations

from typing import Any, Dict, List, Sequence

import numpy as np

from ..parameter import Parameter
from . import runtime

DEFAULT_BUCKET_BYTES = 25 * 2**20


def plan_buckets(params: Sequence[Parameter], bucket_bytes: int) -> List[List[Parameter]]:
    """Groups params (in the order given) into buckets of one dtype and at most bucket_bytes each, a parameter
    larger than that alone in its own. Buckets of each dtype keep the parameters' order."""
    buckets: List[List[Parameter]] = []
    open_bucket: Dict[np.dtype, tuple] = {}  # dtype -> (bucket, its bytes so far)
    for p in params:
        bucket, used = open_bucket.get(p.value.dtype, (None, 0))
        if bucket is None or used + p.value.nbytes > bucket_bytes:
            bucket, used = [], 0
            buckets.append(bucket)
        bucket.append(p)
        open_bucket[p.value.dtype] = (bucket, used + p.value.nbytes)
    return buckets


class _Bucket:
    """One contiguous buffer holding the gradients of `params`, each grad a view of its slot."""

    def __init__(self, params: List[Parameter]) -> None:
        self.params = params
        self.buffer = np.zeros(sum(p.size for p in params), dtype=params[0].value.dtype)
        self.slots = []
        offset = 0
        for p in params:
            self.slots.append(self.buffer[offset:offset + p.size].reshape(p.shape))
            offset += p.size
        self.adopt_gradients()
        self.waiting = len(params)  # parameters whose gradient is not complete yet in this step
        self.request: Any = None

    def adopt_gradients(self) -> None:
        """Makes each grad the view of its slot (copying the current values in), unless it already is: a grad
        array replaced by someone else is taken back rather than silently left out of the average."""
        for p, slot in zip(self.params, self.slots):
            if p.grad is not slot:
                slot[...] = p.grad
                p.grad = slot


class GradientAverager:
    """Averages the gradients of `network`'s trainable parameters over the ranks of `comm` (mpi4py).

        averager = GradientAverager(model, comm)     # grads become views into the buckets; hook installed
        ... model.backward(dy) ...                   # buckets start reducing as their layers finish
        averager.synchronize()                       # every grad is now the mean over the ranks
        optimizer.step()
        averager.close()                             # removes the hook (grads stay valid arrays)

    bucket_bytes: the size of a fused message (default 25 MB). overlap=False starts every bucket only in
    synchronize() (one fused all-reduce per bucket after backward), for comparison. Every rank must train the
    same network: the buckets then start in the same order everywhere, as MPI requires.
    """

    def __init__(self, network, comm, bucket_bytes: int = DEFAULT_BUCKET_BYTES, overlap: bool = True) -> None:
        if not isinstance(bucket_bytes, int) or isinstance(bucket_bytes, bool) or bucket_bytes < 1:
            raise ValueError(f"bucket_bytes must be a positive int, got {bucket_bytes!r}")
        self.network = network
        self.comm = comm
        self.bucket_bytes = bucket_bytes
        self.overlap = bool(overlap) and hasattr(network, "gradient_ready_hook")
        self._build()
        self._in_step = False
        if self.overlap:
            network.gradient_ready_hook = self._layer_ready

    def _build(self) -> None:
        self._params = list(reversed(self.network.trainable_parameters()))  # backward order
        self.buckets = [_Bucket(params) for params in plan_buckets(self._params, self.bucket_bytes)]
        self._bucket_of = {id(p): bucket for bucket in self.buckets for p in bucket.params}
        self._ready: set = set()
        self._started = 0  # buckets started in this step: always the first ones

    def _begin_step(self) -> None:
        """New buckets when parameters were frozen or unfrozen since the last step (by a callback, say)."""
        if [id(p) for p in reversed(self.network.trainable_parameters())] != [id(p) for p in self._params]:
            self._build()
        self._in_step = True

    def _layer_ready(self, layer) -> None:
        """The network's hook: layer's gradients are complete; start the buckets this completes, in bucket
        order (a bucket waits for the ones before it: every rank then starts them in the same order)."""
        if not self._in_step:
            self._begin_step()
        for p in layer.parameters():
            bucket = self._bucket_of.get(id(p))
            if bucket is not None and id(p) not in self._ready:
                self._ready.add(id(p))
                bucket.waiting -= 1
        while self._started < len(self.buckets) and self.buckets[self._started].waiting == 0:
            self._start(self.buckets[self._started])
        pending = [bucket.request for bucket in self.buckets[:self._started]]
        if pending:  # let MPI progress the messages under way
            pending[0].Testall(pending)

    def _start(self, bucket: _Bucket) -> None:
        MPI = runtime.mpi_module()
        bucket.adopt_gradients()
        bucket.request = self.comm.Iallreduce(MPI.IN_PLACE, bucket.buffer, op=MPI.SUM)
        self._started += 1

    def synchronize(self) -> None:
        """Completes the step's all-reduces (starting those not yet started, in bucket order) and divides by
        the world size: afterwards every trainable parameter's grad is the mean of the ranks' gradients."""
        if not self._in_step:
            self._begin_step()
        while self._started < len(self.buckets):
            self._start(self.buckets[self._started])
        size = self.comm.Get_size()
        for bucket in self.buckets:
            bucket.request.Wait()
            bucket.request = None
            bucket.waiting = len(bucket.params)
            np.divide(bucket.buffer, size, out=bucket.buffer)
        self._ready.clear()
        self._started = 0
        self._in_step = False

    def close(self) -> None:
        """Removes the backward hook; the grads stay (now plain) arrays."""
        if self.overlap and self.network.gradient_ready_hook == self._layer_ready:
            self.network.gradient_ready_hook = None

    @property
    def bucket_sizes(self) -> List[int]:
        """Bytes per bucket, in the order they are reduced."""
        return [bucket.buffer.nbytes for bucket in self.buckets]

