"""SyncBatchNormalization: batch normalization whose training statistics span the batches of all the ranks."""
from __future__ import annotations

import numpy as np

from .. import ops
from ..distributed import runtime
from ..registry import register_layer
from .normalization import BatchNormalization


def _sync_comm():
    """The communicator to synchronise over, or None when this process trains alone."""
    comm = runtime.comm()
    return comm if comm is not None and comm.Get_size() > 1 else None


@register_layer(aliases=("SyncBatchNorm",))
class SyncBatchNormalization(BatchNormalization):
    """BatchNormalization (same arguments, state and checkpoints) whose training-mode statistics are those of
    the whole batch over every rank of convkit.distributed: the same outputs, running statistics and
    gradients as BatchNormalization on the ranks' batches put together. Use it when the batch per rank is
    small (a few images per process of a segmentation or detection network), where each rank's own
    statistics would be noisy. Without MPI, in inference and when frozen, it is BatchNormalization.

    Forward: each rank's count, mean and sum of squared deviations per channel (float64) are gathered and
    merged in rank order (Chan's formula), so every rank normalises with identical statistics. Backward:
    sum(dy) and sum(dy * x_hat) per channel are summed over the ranks, and each rank's dx is
    gamma * inv_std * (dy - sum(dy) / n - x_hat * sum(dy * x_hat) / n), n the count over all ranks, which
    is BatchNorm's gradient on the whole batch (up to the factor world_size by which each rank's loss, a mean
    over its own samples, is larger: the gradient averaging divides it out). Costs two small collectives per
    layer and step.
    """

    def forward(self, x, training=False):
        comm = _sync_comm() if training and self.trainable else None
        if comm is None:
            return super().forward(x, training)
        mean, var, count = self._global_statistics(x, comm)
        y, stats = ops.batch_norm(x, *self._affine_values(), running_mean=mean, running_var=var, training=False,
                                  eps=self.epsilon)
        momentum = self.momentum
        self.moving_mean.value[...] = (1.0 - momentum) * self.moving_mean.value + momentum * mean
        self.moving_variance.value[...] = ((1.0 - momentum) * self.moving_variance.value
                                           + momentum * var * (count / (count - 1)))
        self.save_for_backward(x, stats, comm, count)
        return y

    def _global_statistics(self, x: np.ndarray, comm) -> tuple:
        """(mean, biased variance) per channel over every rank's x (float64), and the number of values."""
        rows = x.reshape(-1, x.shape[-1])
        local_mean = rows.mean(axis=0, dtype=np.float64)
        local_m2 = np.square(rows - local_mean).sum(axis=0)
        local = np.concatenate([[len(rows)], local_mean, local_m2])
        gathered = np.empty((comm.Get_size(), local.size))
        comm.Allgather(local, gathered)
        counts, means, m2s = gathered[:, 0], gathered[:, 1:1 + x.shape[-1]], gathered[:, 1 + x.shape[-1]:]
        count = counts.sum()
        if count < 2:
            raise ValueError(f"layer {self.name!r}: batch normalization in training needs more than one value per "
                             f"channel over all the ranks, got {int(count)}")
        mean = (counts[:, None] * means).sum(axis=0) / count
        m2 = (m2s + counts[:, None] * np.square(means - mean)).sum(axis=0)
        return mean, m2 / count, count

    def backward(self, dy):
        saved = self.saved()
        if len(saved) == 3:  # the forward was BatchNormalization's
            return super().backward(dy)
        MPI = runtime.mpi_module()
        x, stats, comm, count = saved
        gamma = None if self.gamma is None else self.gamma.value
        # With constant statistics (training=False) the op gives gamma * inv_std * dy and this rank's sums.
        dx, dgamma, dbeta = ops.batch_norm_backward(dy, x, gamma, stats.mean, stats.inv_std, training=False)
        self._accumulate_affine(dgamma, dbeta)
        sums = np.concatenate([dbeta, dgamma]).astype(np.float64)
        comm.Allreduce(MPI.IN_PLACE, sums, op=MPI.SUM)
        mean_dy, mean_dy_xhat = np.split(sums / count, 2)
        x_hat = (x - stats.mean) * stats.inv_std
        scale = stats.inv_std * (1.0 if gamma is None else gamma)
        return (dx - scale * (mean_dy + x_hat * mean_dy_xhat)).astype(dx.dtype, copy=False)


def convert_sync_batchnorm(network):
    """Turns every BatchNormalization layer of `network` into a SyncBatchNormalization, in place (same
    parameters and state), and returns the network. Checkpoints saved afterwards record the new class."""
    for layer in network.layers:
        if type(layer) is BatchNormalization:
            layer.__class__ = SyncBatchNormalization
    return network
