"""convkit.Tensor: an array in GPU memory, and the ways in and out (to_device, .numpy(), DLPack, CUDA array
interface).

A Tensor is C-contiguous, float32/float64 (data) or int64/uint8 (labels, indices, dropout masks), on the
current CUDA device. Its memory is released when the last Tensor viewing it goes (reshape() views share it).
Exchange with CuPy, PyTorch, JAX... is zero-copy both ways: `torch.from_dlpack(t)`, `cupy.asarray(t)`
(through __cuda_array_interface__), `convkit.from_dlpack(torch_tensor)`.
"""
from __future__ import annotations

import math
from typing import Any, Optional, Sequence, Union

import numpy as np

from . import _backend

DTYPES = tuple(np.dtype(t) for t in (np.float32, np.float64, np.int64, np.uint8))
DLPACK_CUDA_DEVICE = 2  # DLPack's kDLCUDA
LEGACY_DEFAULT_STREAM = 1  # how the CUDA array interface and DLPack name the stream convkit runs on


def _check_device(device) -> str:
    if device in ("cuda", "cuda:0"):
        return "cuda"
    if device == "cpu":
        return "cpu"
    raise ValueError(f"device must be 'cuda' (or 'cuda:0') or 'cpu', got {device!r}; convkit drives one GPU, "
                     "the current device (select another with CUDA_VISIBLE_DEVICES)")


class Tensor:
    """An array in GPU memory: shape, dtype, .numpy() back to the host. Made by to_device, from_dlpack and
    the convkit.ops that have a CUDA version (given Tensors, they run on the GPU and return Tensors)."""

    __slots__ = ("_shape", "_dtype", "_pointer", "_owner")

    def __init__(self, *args, **kwargs):
        raise TypeError("make a Tensor with convkit.to_device(array, 'cuda') or convkit.from_dlpack(obj)")

    @classmethod
    def _wrap(cls, pointer: int, shape: tuple, dtype: np.dtype, owner: Any) -> "Tensor":
        """A Tensor over `pointer`, keeping `owner` (what frees the memory) alive."""
        tensor = object.__new__(cls)
        tensor._shape = tuple(int(s) for s in shape)
        tensor._dtype = np.dtype(dtype)
        tensor._pointer = int(pointer)
        tensor._owner = owner
        return tensor

    @property
    def shape(self) -> tuple:
        return self._shape

    @property
    def dtype(self) -> np.dtype:
        return self._dtype

    @property
    def ndim(self) -> int:
        return len(self._shape)

    @property
    def size(self) -> int:
        return math.prod(self._shape)

    @property
    def nbytes(self) -> int:
        return self.size * self._dtype.itemsize

    @property
    def device(self) -> str:
        return "cuda"

    @property
    def data_ptr(self) -> int:
        """The device address of element 0."""
        return self._pointer

    def numpy(self) -> np.ndarray:
        """A host copy (waits for the work queued on the tensor)."""
        host = np.empty(self._shape, dtype=self._dtype)
        _backend.module().copy_to_host(host, self._pointer, self.nbytes)
        return host

    def to(self, device: str) -> Union["Tensor", np.ndarray]:
        """This tensor on `device`: itself for 'cuda', a host copy (numpy.ndarray) for 'cpu'."""
        return self if _check_device(device) == "cuda" else self.numpy()

    def reshape(self, *shape) -> "Tensor":
        """A view with another shape (same memory); one axis may be -1."""
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        shape = tuple(int(s) for s in shape)
        unknown = [axis for axis, extent in enumerate(shape) if extent == -1]
        known = math.prod(extent for extent in shape if extent != -1)
        if unknown and len(unknown) == 1 and known > 0 and self.size % known == 0:
            shape = shape[:unknown[0]] + (self.size // known,) + shape[unknown[0] + 1:]
        if any(extent < 0 for extent in shape) or math.prod(shape) != self.size:
            raise ValueError(f"cannot reshape a Tensor of shape {self._shape} to {shape}")
        return Tensor._wrap(self._pointer, shape, self._dtype, self._owner)

    def copy(self) -> "Tensor":
        result = empty(self._shape, self._dtype)
        _backend.module().copy_on_device(result._pointer, self._pointer, self.nbytes)
        return result

    def _check_addend(self, other) -> "Tensor":
        if not isinstance(other, Tensor):
            raise TypeError(f"a Tensor adds only Tensors (no broadcasting, no host arrays: convkit.to_device them), "
                            f"got {type(other).__name__}")
        if other.shape != self._shape or other.dtype != self._dtype:
            raise ValueError(f"Tensor addition needs equal shapes and dtypes, got {self._shape} {self._dtype} and "
                             f"{other.shape} {other.dtype}")
        if self._dtype.kind != "f":
            raise TypeError(f"Tensor addition takes float32 or float64 Tensors, got {self._dtype}")
        return other

    def __iadd__(self, other: "Tensor") -> "Tensor":
        """self += other, in place (residual sums, gradient accumulation)."""
        other = self._check_addend(other)
        _backend.module().axpy(self._dtype.name, self.size, 1.0, other._pointer, self._pointer)
        return self

    def __add__(self, other: "Tensor") -> "Tensor":
        """self + other, a new Tensor (same shape and dtype; no broadcasting)."""
        other = self._check_addend(other)
        return self.copy().__iadd__(other)

    def __array__(self, dtype=None, copy=None):
        raise TypeError("a convkit.Tensor lives in GPU memory: call .numpy() for a host copy (NumPy functions do not "
                        "take device arrays)")

    def __len__(self) -> int:
        if not self._shape:
            raise TypeError("len() of a 0-d Tensor")
        return self._shape[0]

    def __repr__(self) -> str:
        return f"convkit.Tensor(shape={self._shape}, dtype={self._dtype}, device='cuda')"

    # ---- interoperability ---------------------------------------------------------------------------

    @property
    def __cuda_array_interface__(self) -> dict:
        return {"shape": self._shape, "typestr": self._dtype.str, "data": (self._pointer, False), "version": 3,
                "strides": None, "stream": LEGACY_DEFAULT_STREAM}

    def __dlpack_device__(self) -> tuple[int, int]:
        return DLPACK_CUDA_DEVICE, 0

    def __dlpack__(self, *, stream: Optional[int] = None, max_version=None, dl_device=None, copy=None):
        """A DLPack capsule viewing this tensor. `stream`: the consumer's stream; convkit's work runs on the
        legacy default stream, so for any other stream (not None, 1 or -1) it is synchronised first."""
        if dl_device is not None and tuple(dl_device) != self.__dlpack_device__():
            raise BufferError(f"convkit.Tensor lives on CUDA device 0, cannot export to {dl_device}")
        if copy:
            raise BufferError("convkit.Tensor exports without copying; call .copy() first")
        module = _backend.module()
        if stream not in (None, LEGACY_DEFAULT_STREAM, -1):
            module.synchronize()
        return module.to_dlpack(self._owner, self._pointer, list(self._shape), self._dtype.name, 0)


def empty(shape: Sequence[int], dtype) -> Tensor:
    """An uninitialised device tensor."""
    module = _backend.module()
    dtype = np.dtype(dtype)
    shape = tuple(int(s) for s in shape)
    buffer = module.DeviceBuffer(math.prod(shape) * dtype.itemsize)
    return Tensor._wrap(buffer.pointer, shape, dtype, buffer)


def _host_dtype(arr: np.ndarray, name: str) -> np.dtype:
    if arr.dtype in DTYPES:
        return arr.dtype.newbyteorder("=")
    if np.issubdtype(arr.dtype, np.integer):
        return np.dtype(np.int64)  # labels and indices
    if arr.dtype == np.bool_:
        return np.dtype(np.uint8)
    raise TypeError(f"{name} must be a float32, float64 or integer array, got dtype {arr.dtype}; convert it first, "
                    f"e.g. {name}.astype(np.float32)")


def to_device(x, device: str = "cuda") -> Union[Tensor, np.ndarray]:
    """x on `device`. 'cuda': a Tensor (a host array is copied; a Tensor is returned as it is; a GPU array of
    another library is viewed without a copy, through DLPack). 'cpu': a numpy.ndarray (Tensor.numpy()).

    Host dtypes: float32 and float64 as they are; other integers become int64, bool uint8; others raise.
    """
    if _check_device(device) == "cpu":
        return x.numpy() if isinstance(x, Tensor) else np.asarray(x)
    if isinstance(x, Tensor):
        return x
    if hasattr(x, "__dlpack_device__") and x.__dlpack_device__()[0] == DLPACK_CUDA_DEVICE:
        return from_dlpack(x)
    host = np.asarray(x)
    host = np.ascontiguousarray(host, dtype=_host_dtype(host, "x"))
    tensor = empty(host.shape, host.dtype)
    _backend.module().copy_to_device(tensor.data_ptr, host, tensor.nbytes)
    return tensor


def from_dlpack(obj) -> Tensor:
    """A Tensor viewing another library's CUDA array without a copy (any object with __dlpack__, or a
    "dltensor" capsule). The array must be C-contiguous, on CUDA device 0, and of a Tensor dtype."""
    if hasattr(obj, "__dlpack_device__"):
        device_type, device_id = obj.__dlpack_device__()
        if device_type != DLPACK_CUDA_DEVICE:
            raise ValueError(f"from_dlpack takes a CUDA array; this one is on DLPack device type {device_type} "
                             "(1 is the host: use convkit.to_device(x) to copy it to the GPU)")
        capsule = obj.__dlpack__(stream=LEGACY_DEFAULT_STREAM)
    elif hasattr(obj, "__dlpack__"):
        capsule = obj.__dlpack__()
    else:
        capsule = obj
    exchange = _backend.module().from_dlpack_capsule(capsule)
    return _tensor_from_exchange(*exchange)


def _tensor_from_exchange(pointer, shape, strides, dtype_name, device_type, device_id, keeper) -> Tensor:
    """The checks of from_dlpack on what a capsule described (a separate step so that tests can run it on
    capsules made without a GPU)."""
    if device_type != DLPACK_CUDA_DEVICE:
        raise ValueError(f"from_dlpack takes a CUDA array, got DLPack device type {device_type}")
    if device_id != 0:
        raise ValueError(f"from_dlpack takes arrays on CUDA device 0 (the current one), got device {device_id}")
    try:
        dtype = np.dtype(dtype_name)
    except TypeError:
        dtype = None
    if dtype not in DTYPES:
        raise TypeError(f"from_dlpack takes float32, float64, int64 or uint8 arrays, got {dtype_name}")
    if strides is not None and not _is_c_contiguous(shape, strides):
        raise ValueError(f"from_dlpack takes C-contiguous arrays, got shape {tuple(shape)} with strides "
                         f"{tuple(strides)} (elements); make a contiguous copy first")
    return Tensor._wrap(pointer, shape, dtype, keeper)


def _is_c_contiguous(shape, strides) -> bool:
    expected = 1
    for extent, stride in zip(reversed(shape), reversed(strides)):
        if extent != 1 and stride != expected:
            return False
        expected *= extent
    return True
