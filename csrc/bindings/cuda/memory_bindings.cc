// Device memory for convkit.Tensor: an owning buffer, host <-> device copies, and the device queries.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>

#include "bindings/cuda/module.h"
#include "core/cuda/runtime.h"

namespace convkit::bindings::cuda {
namespace py = pybind11;
namespace rt = convkit::cuda;

namespace {

// One cudaMalloc allocation, freed when the last Python reference goes.
class DeviceBuffer {
 public:
  explicit DeviceBuffer(std::int64_t bytes) : bytes_(bytes), data_(rt::allocate(bytes)) {}
  ~DeviceBuffer() { rt::release(data_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  std::uintptr_t pointer() const { return reinterpret_cast<std::uintptr_t>(data_); }
  std::int64_t bytes() const { return bytes_; }

 private:
  std::int64_t bytes_;
  void* data_;
};

void* as_pointer(std::uintptr_t address) { return reinterpret_cast<void*>(address); }

void require_contiguous_bytes(const py::array& host, std::int64_t bytes) {
  if (!(host.flags() & py::array::c_style)) throw py::value_error("host array must be C-contiguous");
  if (static_cast<std::int64_t>(host.nbytes()) != bytes) {
    throw py::value_error("host array has " + std::to_string(host.nbytes()) + " bytes, expected " +
                          std::to_string(bytes));
  }
}

}  // namespace

void bind_memory(py::module_& m) {
  m.def("device_count", &rt::device_count, "GPUs visible to this process (0 without a GPU or driver).");
  m.def("runtime_version", &rt::runtime_version, "The CUDA runtime version convkit was built against.");
  m.def("device_description", &rt::device_description, py::call_guard<py::gil_scoped_release>());
  m.def("synchronize", &rt::synchronize, py::call_guard<py::gil_scoped_release>());
  m.def("set_allow_tf32", &rt::set_allow_tf32);
  m.def("allow_tf32", &rt::allow_tf32);

  py::class_<DeviceBuffer>(m, "DeviceBuffer")
      .def(py::init<std::int64_t>(), py::arg("bytes"), py::call_guard<py::gil_scoped_release>())
      .def_property_readonly("pointer", &DeviceBuffer::pointer)
      .def_property_readonly("bytes", &DeviceBuffer::bytes);

  m.def("copy_to_device", [](std::uintptr_t device, const py::array& host, std::int64_t bytes) {
    require_contiguous_bytes(host, bytes);
    const void* source = host.data();
    py::gil_scoped_release release;
    rt::copy_to_device(as_pointer(device), source, bytes);
  });
  m.def("copy_to_host", [](py::array& host, std::uintptr_t device, std::int64_t bytes) {
    require_contiguous_bytes(host, bytes);
    if (!host.writeable()) throw py::value_error("host array is read-only");
    void* destination = host.mutable_data();
    py::gil_scoped_release release;
    rt::copy_to_host(destination, as_pointer(device), bytes);
  });
  m.def("copy_on_device", [](std::uintptr_t destination, std::uintptr_t source, std::int64_t bytes) {
    rt::copy_on_device(as_pointer(destination), as_pointer(source), bytes);
  }, py::call_guard<py::gil_scoped_release>());
}

}  // namespace convkit::bindings::cuda
