#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bindings/module.h"
#include "core/cpu_features.h"
#include "core/threading.h"
#include "kernels/registry.h"

namespace convkit::bindings {

namespace py = pybind11;

void bind_runtime(py::module_& m) {
  m.attr("__version__") = CONVKIT_VERSION;
#if defined(__clang__)
  m.attr("compiler") = "clang " __clang_version__;
#elif defined(__GNUC__)
  m.attr("compiler") = "gcc " __VERSION__;
#else
  m.attr("compiler") = "unknown";
#endif
  m.attr("openmp") = openmp_enabled();
  m.def("hardware_threads", &hardware_threads);
  m.def("get_num_threads", &num_threads);
  m.def("set_num_threads", &set_num_threads, py::arg("n"));
  m.def("single_threaded_after_fork", &single_threaded_after_fork);
  m.def("cpu_features", &cpu_feature_summary);
  m.def("select_kernel", &select_kernel, py::arg("name"));
  m.def("list_kernels", [] {
    py::list out;
    for (const KernelInfo& k : list_kernels()) {
      py::dict d;
      d["name"] = k.name;
      d["family"] = k.family;
      d["dtype"] = k.dtype;
      d["isa"] = k.isa;
      d["available"] = k.available;
      d["selected"] = k.selected;
      out.append(d);
    }
    return out;
  });
}

}  // namespace convkit::bindings
