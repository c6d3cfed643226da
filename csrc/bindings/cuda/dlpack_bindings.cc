// DLPack capsules for convkit.Tensor (`__dlpack__`) and from other libraries (`convkit.from_dlpack`).
//
// Export: the capsule's context keeps the exporting Tensor's memory owner alive (a Python reference) and
// the shape; the consumer calls the deleter when done, or the capsule's destructor does if it was never
// consumed. Import: the capsule is renamed "used_dltensor" (the protocol's rule) and a DLPackKeeper
// calls the producer's deleter when the last convkit reference goes.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

#include "bindings/cuda/dlpack.h"
#include "bindings/cuda/module.h"

namespace convkit::bindings::cuda {
namespace py = pybind11;

namespace {

constexpr const char* kCapsuleName = "dltensor";
constexpr const char* kUsedCapsuleName = "used_dltensor";

struct ExportContext {
  dlpack::ManagedTensor managed{};
  std::vector<std::int64_t> shape;
  py::object owner;
};

void delete_export(dlpack::ManagedTensor* managed) {
  py::gil_scoped_acquire gil;  // consumers may call the deleter from any thread
  delete static_cast<ExportContext*>(managed->manager_ctx);
}

// An unconsumed capsule frees its tensor; a consumed one ("used_dltensor") belongs to its consumer.
void capsule_destructor(PyObject* capsule) {
  if (PyCapsule_IsValid(capsule, kCapsuleName)) {
    auto* managed = static_cast<dlpack::ManagedTensor*>(PyCapsule_GetPointer(capsule, kCapsuleName));
    if (managed != nullptr && managed->deleter != nullptr) managed->deleter(managed);
  }
}

dlpack::DataType data_type_of(const std::string& dtype) {
  if (dtype == "float32") return {dlpack::kFloat, 32, 1};
  if (dtype == "float64") return {dlpack::kFloat, 64, 1};
  if (dtype == "int64") return {dlpack::kInt, 64, 1};
  if (dtype == "uint8") return {dlpack::kUInt, 8, 1};
  throw py::type_error("DLPack export supports float32, float64, int64 and uint8, got " + dtype);
}

std::string dtype_name(const dlpack::DataType& t) {
  if (t.lanes != 1) return "vector of " + std::to_string(t.lanes) + " lanes";
  const std::string bits = std::to_string(t.bits);
  switch (t.code) {
    case dlpack::kFloat: return "float" + bits;
    case dlpack::kInt: return "int" + bits;
    case dlpack::kUInt: return "uint" + bits;
    default: return "type code " + std::to_string(t.code) + " (" + bits + " bits)";
  }
}

// Owns an imported tensor: the producer's deleter runs when this goes.
class DLPackKeeper {
 public:
  explicit DLPackKeeper(dlpack::ManagedTensor* managed) : managed_(managed) {}
  ~DLPackKeeper() {
    if (managed_ != nullptr && managed_->deleter != nullptr) managed_->deleter(managed_);
  }
  DLPackKeeper(const DLPackKeeper&) = delete;
  DLPackKeeper& operator=(const DLPackKeeper&) = delete;

 private:
  dlpack::ManagedTensor* managed_;
};

py::object to_dlpack(py::object owner, std::uintptr_t pointer, std::vector<std::int64_t> shape,
                     const std::string& dtype, int device_id) {
  auto* context = new ExportContext;
  context->shape = std::move(shape);
  context->owner = std::move(owner);
  dlpack::Tensor& t = context->managed.dl_tensor;
  t.data = reinterpret_cast<void*>(pointer);
  t.device = {dlpack::kCUDA, device_id};
  t.ndim = static_cast<std::int32_t>(context->shape.size());
  try {
    t.dtype = data_type_of(dtype);
  } catch (...) {
    delete context;
    throw;
  }
  t.shape = context->shape.data();
  t.strides = nullptr;  // C-contiguous
  t.byte_offset = 0;
  context->managed.manager_ctx = context;
  context->managed.deleter = delete_export;
  PyObject* capsule = PyCapsule_New(&context->managed, kCapsuleName, capsule_destructor);
  if (capsule == nullptr) {
    delete context;
    throw py::error_already_set();
  }
  return py::reinterpret_steal<py::object>(capsule);
}

// (pointer, shape, strides or None, dtype name, device type, device id, keeper) of a "dltensor" capsule,
// which is marked consumed.
py::tuple from_dlpack_capsule(const py::object& capsule) {
  if (!PyCapsule_IsValid(capsule.ptr(), kCapsuleName)) {
    throw py::value_error("expected an unconsumed DLPack capsule named 'dltensor' (each capsule can be used once)");
  }
  auto* managed = static_cast<dlpack::ManagedTensor*>(PyCapsule_GetPointer(capsule.ptr(), kCapsuleName));
  if (PyCapsule_SetName(capsule.ptr(), kUsedCapsuleName) != 0) throw py::error_already_set();
  auto keeper = std::make_unique<DLPackKeeper>(managed);
  const dlpack::Tensor& t = managed->dl_tensor;
  std::vector<std::int64_t> shape(t.shape, t.shape + t.ndim);
  py::object strides = py::none();
  if (t.strides != nullptr) strides = py::cast(std::vector<std::int64_t>(t.strides, t.strides + t.ndim));
  const auto address = reinterpret_cast<std::uintptr_t>(t.data) + static_cast<std::uintptr_t>(t.byte_offset);
  return py::make_tuple(address, py::tuple(py::cast(shape)), strides, dtype_name(t.dtype), t.device.device_type,
                        t.device.device_id, py::cast(std::move(keeper)));
}

}  // namespace

void bind_dlpack(py::module_& m) {
  py::class_<DLPackKeeper>(m, "DLPackKeeper");
  m.def("to_dlpack", &to_dlpack, py::arg("owner"), py::arg("pointer"), py::arg("shape"), py::arg("dtype"),
        py::arg("device_id"));
  m.def("from_dlpack_capsule", &from_dlpack_capsule, py::arg("capsule"));
}

}  // namespace convkit::bindings::cuda
