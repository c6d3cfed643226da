#include <pybind11/pybind11.h>

#include <cstdint>

#include "bindings/module.h"
#include "core/workspace.h"

namespace convkit::bindings {

namespace py = pybind11;

void bind_workspace(py::module_& m) {
  m.attr("default_workspace_limit") = kDefaultWorkspaceLimit;
  m.def("workspace_limit", &workspace_limit);
  m.def("set_workspace_limit", &set_workspace_limit, py::arg("bytes"));
  // A kernel's scratch over the limit surfaces as MemoryError with the bytes needed and the limit. The
  // drivers throw only outside OpenMP regions (run_parallel carries a worker's exception out) and the
  // binding has taken the GIL back by the time the translator runs.
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const WorkspaceLimitError& e) {
      PyErr_SetString(PyExc_MemoryError, e.what());
    }
  });
}

}  // namespace convkit::bindings
