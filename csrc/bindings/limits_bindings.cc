// Size limits as Python sees them: the workspace limit's setting, and the exceptions of the core's size
// checks translated to what the Python layer raises for the same problems.
#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>

#include "bindings/module.h"
#include "core/workspace.h"

namespace convkit::bindings {

namespace py = pybind11;

void bind_limits(py::module_& m) {
  m.attr("default_workspace_limit") = kDefaultWorkspaceLimit;
  m.def("workspace_limit", &workspace_limit);
  m.def("set_workspace_limit", &set_workspace_limit, py::arg("bytes"));
  // A kernel's scratch over the limit surfaces as MemoryError with the bytes needed and the limit; a size
  // product that overflows int64 (core/checked_math.h) as ValueError, as the Python checks raise it (not
  // pybind11's default OverflowError). The drivers throw only outside OpenMP regions (run_parallel carries
  // a worker's exception out) and the binding has taken the GIL back by the time the translator runs.
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const WorkspaceLimitError& e) {
      PyErr_SetString(PyExc_MemoryError, e.what());
    } catch (const std::overflow_error& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    }
  });
}

}  // namespace convkit::bindings
