// Shared helpers of the Python module: argument conversion (shapes, names, dtypes), NumPy <->
// HostTensor, and the Python data batcher behind tandem's C++ Batcher interface.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <exception>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tandem/builder.h"
#include "tandem/dla.h"
#include "tandem/network.h"
#include "tandem/onnx.h"
#include "tandem/plan.h"
#include "tandem/quant.h"
#include "tandem/runtime.h"
#include "tandem/types.h"

namespace tandem::py_binding {
namespace py = pybind11;

// ---- arguments ------------------------------------------------------------------------------
// trtutils' shapes: [(name, (dims...))], or {name: dims}; dims may also be "1x3x640x640".
std::vector<std::pair<std::string, Dims>> shapes_arg(const py::object& shapes);
// A path argument (str or os.PathLike).
std::string path_arg(const py::handle& p, const char* what);
std::string path_arg_or_empty(const py::object& p, const char* what);  // None -> ""
// Shape-value inputs fixed at import (ImportOptions::input_values; CLI --input-value):
// {name: values}, [(name, values)] or "name:V1,V2".
std::vector<std::pair<std::string, std::vector<int64_t>>> input_values_arg(const py::object& values);
// The model imported with the caller's shapes and shape-value inputs (input_values).
Network import_model(const std::string& onnx, const py::object& shapes, const py::object& input_values = py::none());
// A device or precision argument: "gpu"/"dla", "fp16"/"int8"/..., or an object whose str() or
// .name names it (TensorRT's DeviceType.DLA, DataType.HALF). None -> false.
bool device_arg(const py::handle& v, const char* what, Device* out);
bool precision_arg(const py::handle& v, const char* what, Precision* out);
// [(layer index or name, value)] -> [(layer name, value)]; None values are skipped (as trtutils).
std::vector<std::pair<std::string, Device>> layer_device_arg(const py::object& v, const Network* net);
std::vector<std::pair<std::string, Precision>> layer_precision_arg(const py::object& v, const Network* net);
// Whether the list refers to layers by index (then the network is needed to name them).
bool refers_by_index(const py::object& v);

// The plan options shared by plan, calibrate, compare and the exports.
struct PlanArgs {
  std::string strategy = "seed", target = "orin", precision = "int8";
  int max_chunks = 1, min_layers = 20, max_regions = 0, dla_core = 0, optimization_level = 3;
  bool fp8 = false, verbose = false;
  py::object layer_device = py::none(), layer_precision = py::none();
};
PlanOptions plan_options(const PlanArgs& a, const Network& net);
DlaOptions dla_options(const std::string& target, const std::string& precision);

// ---- NumPy ----------------------------------------------------------------------------------
py::dtype numpy_dtype(DataType t);
DataType data_type_of(const py::dtype& d, const std::string& what);
// Copies a NumPy array (cast to `type` when given) into a HostTensor named `name`.
HostTensor to_host(const py::handle& a, const std::string& name, const DataType* type);
// Moves the tensor into a NumPy array without copying its data.
py::array to_numpy(HostTensor&& t);
// Parses JSON text into Python objects (json.loads).
py::object json_loads(const std::string& text);

// ---- Python data batchers -----------------------------------------------------------------------
// Owns the Python batcher; dropping the last reference takes the GIL. Holds the first exception
// the Python code raised, rethrown to the caller once the C++ call returns.
struct PyObjectHolder {
  py::object obj;
  std::exception_ptr error;
  explicit PyObjectHolder(py::object o) : obj(std::move(o)) {}
  ~PyObjectHolder();
};
// A factory for BuildOptions::batcher / calibrate(): the object is a trtutils-style batcher
// (get_next_batch() -> ndarray | dict | None, batch_size, num_batches) or any iterable of
// batches (ndarray for a single-input model, dict {name: ndarray}, or a list in input order).
// One pass is read from Python (under the GIL) and kept; reset() replays it, so single-pass
// trtutils batchers serve both calibration passes.
std::unique_ptr<Batcher> make_py_batcher(std::shared_ptr<PyObjectHolder> h, const std::vector<InputSpec>& inputs);
// Rethrows the Python batcher's own exception when it caused the failure (call with the GIL).
void rethrow_batcher_error(const std::shared_ptr<PyObjectHolder>& h);

// ---- module parts ------------------------------------------------------------------------------
void bind_build(py::module_& m);   // py_build.cpp: batchers, calibrate, compare, build_engine, build_dla_engine
void bind_engine(py::module_& m);  // py_engine.cpp: Engine

}  // namespace tandem::py_binding
