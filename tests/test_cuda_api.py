"""The CUDA backend's host-side logic, which runs without a GPU: Tensor metadata and interchange
descriptions, device dispatch and its errors (CUDA missing, no device, host/device mix, ops without a CUDA
version, use after fork), and DLPack capsules made and parsed without touching device memory."""
import gc
import pickle
import weakref

import numpy as np
import pytest

import convkit
from convkit import ops
from convkit.cuda import _backend
from convkit.cuda.tensor import Tensor, _tensor_from_exchange

FAKE_ADDRESS = 0x7F0000001000  # never dereferenced: these tests only read metadata


class Owner:
    """Stands for the memory owner a Tensor keeps alive."""


def fake_tensor(shape=(2, 3, 4, 5), dtype=np.float32, owner=None) -> Tensor:
    return Tensor._wrap(FAKE_ADDRESS, shape, np.dtype(dtype), owner)


no_gpu = pytest.mark.skipif(convkit.cuda.is_available(), reason="checks the errors of a machine without a GPU")
needs_extension = pytest.mark.skipif(not convkit.cuda.is_built(), reason="convkit._cuda is not built")


def test_tensor_metadata_and_views():
    t = fake_tensor()
    assert (t.shape, t.dtype, t.ndim, t.size, t.nbytes, t.device, len(t)) == (
        (2, 3, 4, 5), np.float32, 4, 120, 480, "cuda", 2)
    assert t.reshape(6, -1).shape == (6, 20) and t.reshape((120,)).data_ptr == FAKE_ADDRESS
    with pytest.raises(ValueError, match="cannot reshape"):
        t.reshape(7, -1)
    with pytest.raises(ValueError, match="cannot reshape"):
        t.reshape(-1, -1)
    assert "shape=(2, 3, 4, 5)" in repr(t) and "float32" in repr(t)


def test_tensor_is_not_constructed_directly_nor_read_by_numpy():
    with pytest.raises(TypeError, match="to_device"):
        Tensor()
    with pytest.raises(TypeError, match=r"\.numpy\(\)"):
        np.asarray(fake_tensor())


def test_tensor_addition_takes_equal_float_tensors_only():
    t = fake_tensor((2, 3))
    with pytest.raises(TypeError, match="adds only Tensors"):
        t + np.ones((2, 3), np.float32)
    with pytest.raises(ValueError, match=r"equal shapes and dtypes, got \(2, 3\) float32 and \(3, 2\) float32"):
        t += fake_tensor((3, 2))
    with pytest.raises(ValueError, match="equal shapes and dtypes"):
        t + fake_tensor((2, 3), np.float64)
    with pytest.raises(TypeError, match="float32 or float64"):
        fake_tensor((2,), np.int64) + fake_tensor((2,), np.int64)


def test_cuda_array_interface_describes_the_device_memory():
    cai = fake_tensor((4, 3), np.float64).__cuda_array_interface__
    assert cai == {"shape": (4, 3), "typestr": "<f8", "data": (FAKE_ADDRESS, False), "version": 3, "strides": None,
                   "stream": 1}
    assert fake_tensor().__dlpack_device__() == (2, 0)


def test_device_names():
    x = np.ones(3, np.float32)
    assert convkit.to_device(x, "cpu") is not None and isinstance(convkit.to_device(x, "cpu"), np.ndarray)
    with pytest.raises(ValueError, match="device must be 'cuda'"):
        convkit.to_device(x, "cuda:1")
    with pytest.raises(ValueError, match="device must be"):
        convkit.to_device(x, "tpu")


def test_host_dtypes_without_a_device_meaning_are_refused_before_any_copy():
    with pytest.raises(TypeError, match="float16"):
        convkit.to_device(np.ones(3, np.float16))


@no_gpu
def test_device_use_without_a_gpu_says_why():
    with pytest.raises(convkit.cuda.CudaUnavailableError, match="no CUDA device" if convkit.cuda.is_built()
                       else "built without"):
        convkit.to_device(np.ones(3, np.float32))
    # An op given a Tensor reaches the backend, which refuses with the same reason.
    with pytest.raises(convkit.cuda.CudaUnavailableError):
        ops.relu(fake_tensor())
    assert not convkit.cuda.is_available()


def test_host_and_device_operands_in_one_op_raise_naming_both():
    x, w = fake_tensor((1, 5, 5, 2)), np.ones((3, 3, 2, 4), np.float32)
    with pytest.raises(ValueError, match=r"'conv' got operands on cuda \(x\) and on the host \(w \(numpy.ndarray\)\)"):
        ops.conv(x, w)
    with pytest.raises(ValueError, match=r"'gemm' got operands on cuda \(b\)"):
        ops.gemm(np.ones((2, 2), np.float32), fake_tensor((2, 2)))
    with pytest.raises(ValueError, match=r"on cuda \(x\) and on the host \(gamma"):
        ops.batch_norm(fake_tensor((4, 3)), np.ones(3, np.float32))


def test_an_op_without_a_cuda_version_raises_not_implemented():
    with pytest.raises(NotImplementedError, match="'local_response_norm' has no CUDA implementation"):
        ops.local_response_norm(fake_tensor((1, 2, 2, 8)), 5)


def test_dispatch_keeps_the_host_ops_as_they_were():
    x = np.array([-1.0, 0.5], np.float32)
    np.testing.assert_array_equal(ops.relu(x), [0.0, 0.5])
    assert ops.conv2d.__name__ == "conv2d" and "channels-last" in ops.conv.__doc__
    assert ops.max_pool.__wrapped__.__module__ == "convkit.ops._pool"
    assert pickle.loads(pickle.dumps(ops.relu)) is ops.relu  # e.g. sent to worker processes


def test_use_after_fork_is_refused(monkeypatch):
    monkeypatch.setattr(_backend, "_state", dict(_backend._state, loaded=True, module=object(), used=True))
    _backend._after_fork_in_child()  # what os.register_at_fork runs in a child
    with pytest.raises(RuntimeError, match="forked after it used CUDA.*spawn"):
        _backend.module()


def test_a_fork_before_first_use_is_fine(monkeypatch):
    monkeypatch.setattr(_backend, "_state", dict(_backend._state, used=False, forked_after_use=False))
    _backend._after_fork_in_child()
    assert not _backend._state["forked_after_use"]


# ---- DLPack capsules, made and parsed on the host -------------------------------------------------------


@needs_extension
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.uint8])
def test_dlpack_export_and_import_round_trip(dtype):
    from convkit import _cuda

    owner = Owner()
    capsule = _cuda.to_dlpack(owner, FAKE_ADDRESS, [2, 3], np.dtype(dtype).name, 0)
    t = _tensor_from_exchange(*_cuda.from_dlpack_capsule(capsule))
    assert (t.shape, t.dtype, t.data_ptr) == ((2, 3), np.dtype(dtype), FAKE_ADDRESS)
    with pytest.raises(ValueError, match="unconsumed DLPack capsule"):
        _cuda.from_dlpack_capsule(capsule)  # a capsule is consumed once


@needs_extension
def test_dlpack_keeps_the_exporting_memory_alive_until_the_importer_is_done():
    from convkit import _cuda

    owner = Owner()
    alive = weakref.ref(owner)
    t = _tensor_from_exchange(*_cuda.from_dlpack_capsule(_cuda.to_dlpack(owner, FAKE_ADDRESS, [4], "float32", 0)))
    del owner
    gc.collect()
    assert alive() is not None
    view = t.reshape(2, 2)
    del t
    gc.collect()
    assert alive() is not None  # the view still holds it
    del view
    gc.collect()
    assert alive() is None


@needs_extension
def test_an_unconsumed_capsule_releases_its_owner():
    from convkit import _cuda

    owner = Owner()
    alive = weakref.ref(owner)
    capsule = _cuda.to_dlpack(owner, FAKE_ADDRESS, [4], "float32", 0)
    del owner, capsule
    gc.collect()
    assert alive() is None


@needs_extension
def test_dlpack_import_refuses_host_arrays_strides_and_dtypes():
    from convkit import _cuda

    host_capsule = np.arange(6.0).__dlpack__()
    with pytest.raises(ValueError, match="CUDA array, got DLPack device type 1"):
        _tensor_from_exchange(*_cuda.from_dlpack_capsule(host_capsule))
    with pytest.raises(ValueError, match="C-contiguous"):
        _tensor_from_exchange(FAKE_ADDRESS, (2, 3), (1, 2), "float32", 2, 0, None)
    t = _tensor_from_exchange(FAKE_ADDRESS, (2, 1, 3), (3, 99, 1), "float32", 2, 0, None)  # unit axis: any stride
    assert t.shape == (2, 1, 3)
    with pytest.raises(TypeError, match="float16"):
        _tensor_from_exchange(FAKE_ADDRESS, (2,), None, "float16", 2, 0, None)
    with pytest.raises(ValueError, match="device 0"):
        _tensor_from_exchange(FAKE_ADDRESS, (2,), None, "float32", 2, 1, None)
    with pytest.raises(TypeError, match="float32, float64, int64 and uint8"):
        _cuda.to_dlpack(Owner(), FAKE_ADDRESS, [2], "float16", 0)


def test_from_dlpack_of_a_host_array_is_refused():
    with pytest.raises(ValueError, match="DLPack device type 1.*to_device"):
        convkit.from_dlpack(np.arange(3.0))
