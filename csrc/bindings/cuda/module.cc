// convkit._cuda: the optional CUDA backend (device memory, DLPack exchange, the device ops). The Python
// layer (convkit/cuda/) validates every argument and owns the Tensor type; device pointers travel as ints.
#include <pybind11/pybind11.h>

#include "bindings/cuda/module.h"

PYBIND11_MODULE(_cuda, m) {
  m.doc() = "convkit's CUDA backend. Use convkit.to_device and the convkit ops; these entry points trust their "
            "arguments.";
  convkit::bindings::cuda::bind_memory(m);
  convkit::bindings::cuda::bind_dlpack(m);
  convkit::bindings::cuda::bind_ops(m);
}
