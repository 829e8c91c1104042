// The `tandem` Python module: the argument helpers, tandem.Error, the DLA check, the plan and the
// exports. Batchers, calibration and the builders live in py_build.cpp, Engine in py_engine.cpp.
#include <unistd.h>

#include <cctype>
#include <cstring>
#include <functional>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>

#include "common.h"
#include "tandem/qdq.h"

namespace tandem::py_binding {

// ---- arguments ------------------------------------------------------------------------------
std::string path_arg(const py::handle& p, const char* what) {
  if (py::isinstance<py::str>(p)) return p.cast<std::string>();
  if (py::hasattr(p, "__fspath__")) return p.attr("__fspath__")().cast<std::string>();
  throw Error(std::string(what) + ": expected a path (str or os.PathLike), got " +
              py::str(py::type::handle_of(p).attr("__name__")).cast<std::string>());
}

std::string path_arg_or_empty(const py::object& p, const char* what) {
  return p.is_none() ? std::string() : path_arg(p, what);
}

static Dims dims_arg(const py::handle& d, const std::string& name) {
  if (py::isinstance<py::str>(d)) return parse_shape_arg(name + ":" + d.cast<std::string>()).second;
  Dims out;
  try {
    for (auto v : d) out.push_back(v.cast<int64_t>());
  } catch (const py::error_already_set&) {
    throw Error("shapes: input '" + name + "': dims must be a sequence of integers");
  } catch (const py::cast_error&) {
    throw Error("shapes: input '" + name + "': dims must be a sequence of integers");
  }
  return out;
}

std::vector<std::pair<std::string, Dims>> shapes_arg(const py::object& shapes) {
  std::vector<std::pair<std::string, Dims>> out;
  if (shapes.is_none()) return out;
  if (py::isinstance<py::dict>(shapes)) {
    for (auto [k, v] : shapes.cast<py::dict>()) {
      std::string name = py::str(k);
      out.emplace_back(name, dims_arg(v, name));
    }
    return out;
  }
  if (py::isinstance<py::str>(shapes)) {  // one "name:1x3x640x640"
    out.push_back(parse_shape_arg(shapes.cast<std::string>()));
    return out;
  }
  for (auto item : shapes) {
    if (py::isinstance<py::str>(item)) {
      out.push_back(parse_shape_arg(item.cast<std::string>()));
      continue;
    }
    py::sequence pair = py::reinterpret_borrow<py::sequence>(item);
    if (!py::isinstance<py::sequence>(item) || py::len(pair) != 2)
      throw Error("shapes: each entry must be (name, dims), e.g. ('x', (1, 3, 640, 640))");
    std::string name = py::str(pair[0]);
    out.emplace_back(name, dims_arg(pair[1], name));
  }
  return out;
}

std::vector<std::pair<std::string, std::vector<int64_t>>> input_values_arg(const py::object& values) {
  std::vector<std::pair<std::string, std::vector<int64_t>>> out;
  if (values.is_none()) return out;
  if (py::isinstance<py::str>(values)) {
    out.push_back(parse_input_value_arg(values.cast<std::string>()));
    return out;
  }
  auto one = [&](const py::handle& name, const py::handle& v) {
    const std::string n = py::str(name).cast<std::string>();
    try {
      out.emplace_back(n, v.cast<std::vector<int64_t>>());
    } catch (const py::cast_error&) {
      throw Error("input_values: input '" + n + "': values must be a sequence of integers");
    }
  };
  if (py::isinstance<py::dict>(values)) {
    for (auto [k, v] : values.cast<py::dict>()) one(k, v);
    return out;
  }
  for (auto item : values) {
    if (py::isinstance<py::str>(item)) {
      out.push_back(parse_input_value_arg(item.cast<std::string>()));
      continue;
    }
    py::sequence pair = item.cast<py::sequence>();
    if (py::len(pair) != 2) throw Error("input_values: each entry must be (name, values), e.g. ('shape', (3, -1))");
    one(pair[0], pair[1]);
  }
  return out;
}

Network import_model(const std::string& onnx, const py::object& shapes, const py::object& input_values) {
  ImportOptions io;
  io.shapes = shapes_arg(shapes);
  io.input_values = input_values_arg(input_values);
  py::gil_scoped_release rel;
  return import_onnx(onnx, io);
}

// "DeviceType.DLA" -> "dla", "DataType.HALF" -> "half", "fp16" -> "fp16".
static std::string enum_word(const py::handle& v) {
  std::string s = py::hasattr(v, "name") && !py::isinstance<py::str>(v) ? py::str(v.attr("name")).cast<std::string>()
                                                                       : py::str(v).cast<std::string>();
  if (auto dot = s.rfind('.'); dot != std::string::npos) s = s.substr(dot + 1);
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool device_arg(const py::handle& v, const char* what, Device* out) {
  if (v.is_none()) return false;
  std::string s = enum_word(v);
  if (!parse_device(s, out)) throw Error(std::string(what) + ": '" + s + "' is not gpu | dla");
  return true;
}

bool precision_arg(const py::handle& v, const char* what, Precision* out) {
  if (v.is_none()) return false;
  std::string s = enum_word(v);
  // TensorRT's DataType names: FLOAT, HALF, INT8, FP8.
  if (s == "float" || s == "float32") s = "fp32";
  if (s == "half" || s == "float16") s = "fp16";
  if (!parse_precision(s, out)) throw Error(std::string(what) + ": '" + s + "' is not fp32 | fp16 | int8 | fp8");
  return true;
}

bool refers_by_index(const py::object& v) {
  if (v.is_none()) return false;
  for (auto item : v) {
    py::sequence pair = py::reinterpret_borrow<py::sequence>(item);
    if (py::len(pair) == 2 && py::isinstance<py::int_>(pair[0])) return true;
  }
  return false;
}

static std::string layer_name(const py::handle& key, const Network* net, const char* what) {
  if (py::isinstance<py::int_>(key)) {
    int64_t i = key.cast<int64_t>();
    if (!net || i < 0 || i >= int64_t(net->layers.size()))
      throw Error(std::string(what) + ": layer index " + std::to_string(i) + " is out of range (" +
                  std::to_string(net ? net->layers.size() : 0) + " layers)");
    return net->layers[size_t(i)].name;
  }
  return py::str(key);
}

template <class T, class F>
static std::vector<std::pair<std::string, T>> layer_list(const py::object& v, const Network* net, const char* what, F parse) {
  std::vector<std::pair<std::string, T>> out;
  if (v.is_none()) return out;
  for (auto item : v) {
    if (!py::isinstance<py::sequence>(item) || py::isinstance<py::str>(item) ||
        py::len(py::reinterpret_borrow<py::sequence>(item)) != 2)
      throw Error(std::string(what) + ": each entry must be (layer index or name, value)");
    py::sequence pair = py::reinterpret_borrow<py::sequence>(item);
    T val;
    if (!parse(pair[1], what, &val)) continue;  // None: leave the layer as it is (trtutils)
    out.emplace_back(layer_name(pair[0], net, what), val);
  }
  return out;
}

std::vector<std::pair<std::string, Device>> layer_device_arg(const py::object& v, const Network* net) {
  return layer_list<Device>(v, net, "layer_device", device_arg);
}
std::vector<std::pair<std::string, Precision>> layer_precision_arg(const py::object& v, const Network* net) {
  return layer_list<Precision>(v, net, "layer_precision", precision_arg);
}

DlaOptions dla_options(const std::string& target, const std::string& precision) {
  DlaOptions o;
  if (!parse_dla_target(target, &o.target)) throw Error("target: unknown DLA target '" + target + "' (orin | xavier)");
  if (!parse_dla_precision(precision, &o.precision))
    throw Error("precision: unknown precision '" + precision + "' (int8 | fp16)");
  return o;
}

PlanOptions plan_options(const PlanArgs& a, const Network& net) {
  PlanOptions po;
  if (!parse_strategy(a.strategy, &po.strategy)) throw Error("strategy: unknown strategy '" + a.strategy + "' (seed | graph)");
  po.dla = dla_options(a.target, a.precision);
  po.dla.verbose_layers = po.dla.verbose_chunks = a.verbose;
  po.max_chunks = a.max_chunks;
  po.min_layers = a.min_layers;
  po.max_regions = a.max_regions;
  po.dla_core = a.dla_core;
  po.optimization_level = a.optimization_level;
  po.fp8 = a.fp8;
  po.layer_device = layer_device_arg(a.layer_device, &net);
  po.layer_precision = layer_precision_arg(a.layer_precision, &net);
  return po;
}

// ---- NumPy ----------------------------------------------------------------------------------
py::dtype numpy_dtype(DataType t) {
  switch (t) {
    case DataType::kFloat: return py::dtype("float32");
    case DataType::kHalf: return py::dtype("float16");
    case DataType::kInt8: return py::dtype("int8");
    case DataType::kUInt8: return py::dtype("uint8");
    case DataType::kInt32: return py::dtype("int32");
    case DataType::kInt64: return py::dtype("int64");
    case DataType::kBool: return py::dtype("bool");
    case DataType::kBFloat16: throw Error("bf16 tensors have no NumPy dtype (numpy has no bfloat16)");
  }
  return py::dtype("float32");
}

DataType data_type_of(const py::dtype& d, const std::string& what) {
  const char k = d.kind();
  const auto n = d.itemsize();
  if (k == 'f' && n == 4) return DataType::kFloat;
  if (k == 'f' && n == 2) return DataType::kHalf;
  if (k == 'i' && n == 1) return DataType::kInt8;
  if (k == 'u' && n == 1) return DataType::kUInt8;
  if (k == 'i' && n == 4) return DataType::kInt32;
  if (k == 'i' && n == 8) return DataType::kInt64;
  if (k == 'b') return DataType::kBool;
  throw Error(what + ": NumPy dtype " + py::str(py::object(d)).cast<std::string>() +
              " is not one tandem runs (float32, float16, int8, uint8, int32, int64, bool)");
}

HostTensor to_host(const py::handle& a, const std::string& name, const DataType* type) {
  py::module_ np = py::module_::import("numpy");
  py::array arr = type ? np.attr("ascontiguousarray")(a, numpy_dtype(*type)).cast<py::array>()
                       : np.attr("ascontiguousarray")(a).cast<py::array>();
  HostTensor t;
  t.name = name;
  t.type = data_type_of(arr.dtype(), name);
  for (py::ssize_t i = 0; i < arr.ndim(); ++i) t.dims.push_back(int64_t(arr.shape(i)));
  t.data.resize(size_t(arr.nbytes()));
  if (!t.data.empty()) std::memcpy(t.data.data(), arr.data(), t.data.size());
  return t;
}

py::array to_numpy(HostTensor&& t) {
  auto* owned = new HostTensor(std::move(t));
  py::capsule free_when_done(owned, [](void* p) { delete static_cast<HostTensor*>(p); });
  std::vector<py::ssize_t> shape(owned->dims.begin(), owned->dims.end());
  return py::array(numpy_dtype(owned->type), shape, owned->data.data(), free_when_done);
}

py::object json_loads(const std::string& text) { return py::module_::import("json").attr("loads")(text); }

// ---- DLA check ------------------------------------------------------------------------------
namespace {

// A layer in can_run_on_dla's chunks: what trtutils' ILayer offers (name, type) plus the verdict.
struct PyLayer {
  int index = 0;
  std::string name, type, onnx_node, reason;
  bool dla = false;
};

py::tuple chunks_tuple(const Network& net, const DlaReport& r) {
  py::list chunks;
  for (const Chunk& c : r.chunks) {
    py::list layers;
    for (LayerId id : c.layers) {
      PyLayer l;
      l.index = id;
      l.name = net.layers[size_t(id)].name;
      l.type = std::string(layer_kind_info(net.layers[size_t(id)].kind).trt_type);
      l.onnx_node = net.layers[size_t(id)].onnx_node;
      l.dla = r.layers[size_t(id)].ok;
      l.reason = r.layers[size_t(id)].reason;
      layers.append(py::cast(l));
    }
    chunks.append(py::make_tuple(layers, c.start, c.end, c.on_dla));
  }
  return py::make_tuple(r.full_dla, chunks);
}

py::object report_as(const std::string& format, const std::function<std::string()>& text,
                     const std::function<std::string()>& json) {
  if (format == "dict") return json_loads(json());
  if (format == "json") return py::str(json());
  if (format == "text") return py::str(text());
  throw Error("format: '" + format + "' is not dict | json | text");
}

PlanArgs plan_args(const std::string& strategy, const std::string& target, const std::string& precision,
                   int max_chunks, int min_layers, int max_regions, int dla_core, int optimization_level, bool fp8,
                   const py::object& layer_device, const py::object& layer_precision, const py::object& verbose) {
  PlanArgs a;
  a.strategy = strategy;
  a.target = target;
  a.precision = precision;
  a.max_chunks = max_chunks;
  a.min_layers = min_layers;
  a.max_regions = max_regions;
  a.dla_core = dla_core;
  a.optimization_level = optimization_level;
  a.fp8 = fp8;
  a.verbose = !verbose.is_none() && py::bool_(verbose);
  a.layer_device = layer_device;
  a.layer_precision = layer_precision;
  return a;
}

Plan plan_of(const Network& net, const PlanArgs& a) {
  PlanOptions po = plan_options(a, net);
  py::gil_scoped_release rel;
  Plan p = make_plan(net, po);
  for (const auto& w : p.warnings) std::fprintf(stderr, "tandem: warning: %s\n", w.c_str());
  return p;
}

void write_text_atomic(const std::string& path, const std::string& data) {
  namespace fs = std::filesystem;
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw Error("cannot write '" + tmp + "'");
    f.write(data.data(), static_cast<std::streamsize>(data.size()));
    if (!f) throw Error("cannot write '" + tmp + "'");
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    throw Error("cannot rename onto '" + path + "'");
  }
}

int trt_version_arg(const py::object& v) {
  if (v.is_none()) return 0;
  if (py::isinstance<py::int_>(v)) {
    int x = v.cast<int>();
    if (x == 8500 || x == 8600 || x == 10000) return x;
    if (x == 10) return 10000;
  } else {
    std::string s = py::str(v);
    if (s == "8.5") return 8500;
    if (s == "8.6") return 8600;
    if (s == "10") return 10000;
  }
  throw Error("trt_version: '" + py::str(v).cast<std::string>() + "' is not 8.5, 8.6 or 10");
}

// The plan keyword arguments every analysis function takes, in one place.
#define TANDEM_PLAN_KWARGS                                                                              \
  py::arg("strategy") = "seed", py::arg("target") = "orin", py::arg("precision") = "int8",              \
      py::arg("max_chunks") = 1, py::arg("min_layers") = 20, py::arg("max_regions") = 0,                \
      py::arg("dla_core") = 0, py::arg("optimization_level") = 3, py::arg("fp8") = false,               \
      py::arg("layer_device") = py::none(), py::arg("layer_precision") = py::none(), py::arg("verbose") = py::none()

}  // namespace

PyObjectHolder::~PyObjectHolder() {
  if (!Py_IsInitialized()) {
    obj.release();  // interpreter gone: leak rather than touch it
    return;
  }
  py::gil_scoped_acquire gil;
  obj = py::object();
  error = nullptr;
}

}  // namespace tandem::py_binding

using namespace tandem;
using namespace tandem::py_binding;

PYBIND11_MODULE(tandem, m) {
  m.doc() = "tandem: trtutils' can_run_on_dla / build_dla_engine / build_engine and an engine runner, "
            "offline (no TensorRT, no Jetson). See docs/python.md.";
  m.attr("__version__") = TANDEM_VERSION;

  static py::exception<tandem::Error> error(m, "Error", PyExc_RuntimeError);
  error.doc() = "A tandem error: one line naming the file, node or option at fault (as the CLI prints it).";
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const tandem::Error& e) {
      py::object inst = py::handle(error.ptr())(e.what());
      inst.attr("exit_code") = e.exit_code();
      PyErr_SetObject(error.ptr(), inst.ptr());
    }
  });

  py::class_<PyLayer>(m, "Layer", "A layer of a can_run_on_dla chunk (trtutils' chunks hold TensorRT ILayers).")
      .def_readonly("index", &PyLayer::index)
      .def_readonly("name", &PyLayer::name)
      .def_readonly("type", &PyLayer::type, "TensorRT's LayerType name, e.g. 'CONVOLUTION'")
      .def_readonly("onnx_node", &PyLayer::onnx_node)
      .def_readonly("dla", &PyLayer::dla, "can it run on the DLA")
      .def_readonly("reason", &PyLayer::reason, "why not (or a note)")
      .def("__repr__", [](const PyLayer& l) {
        return "<tandem.Layer " + std::to_string(l.index) + " " + l.type + " '" + l.name + "' dla=" +
               (l.dla ? "True" : "False") + ">";
      })
      .def("__eq__", [](const PyLayer& a, const PyLayer& b) { return a.index == b.index && a.name == b.name; });

  m.def(
      "can_run_on_dla",
      [](const py::object& onnx, const py::object& shapes, const py::object& input_values,
         const std::string& target, const std::string& precision,
         const py::object& verbose_layers, const py::object& verbose_chunks) {
        DlaOptions o = dla_options(target, precision);
        o.verbose_layers = !verbose_layers.is_none() && py::bool_(verbose_layers);
        o.verbose_chunks = !verbose_chunks.is_none() && py::bool_(verbose_chunks);
        Network net = import_model(path_arg(onnx, "onnx"), shapes, input_values);
        DlaReport r;
        {
          py::gil_scoped_release rel;
          r = can_run_on_dla(net, o);
        }
        return chunks_tuple(net, r);
      },
      py::arg("onnx"), py::kw_only(), py::arg("shapes") = py::none(), py::arg("input_values") = py::none(),
      py::arg("target") = "orin",
      py::arg("precision") = "int8", py::arg("verbose_layers") = py::none(), py::arg("verbose_chunks") = py::none(),
      "trtutils' can_run_on_dla: (full_dla, [(layers, start, end, on_dla), ...]).");

  m.def(
      "dla_check",
      [](const py::object& onnx, const py::object& shapes, const py::object& input_values,
         const std::string& target, const std::string& precision,
         const std::string& format) {
        DlaOptions o = dla_options(target, precision);
        const std::string model = path_arg(onnx, "onnx");
        Network net = import_model(model, shapes, input_values);
        DlaReport r;
        {
          py::gil_scoped_release rel;
          r = can_run_on_dla(net, o);
        }
        return report_as(format, [&] { return dla_report_text(net, r, model); },
                         [&] { return dla_report_json(net, r, model); });
      },
      py::arg("onnx"), py::kw_only(), py::arg("shapes") = py::none(), py::arg("input_values") = py::none(),
      py::arg("target") = "orin",
      py::arg("precision") = "int8", py::arg("format") = "dict",
      "`tandem dla-check`: the per-layer report as a dict (the CLI's --json), 'json' text or 'text'.");

  m.def(
      "plan",
      [](const py::object& onnx, const py::object& shapes, const py::object& input_values,
         const std::string& format, const std::string& strategy,
         const std::string& target, const std::string& precision, int max_chunks, int min_layers, int max_regions,
         int dla_core, int optimization_level, bool fp8, const py::object& layer_device,
         const py::object& layer_precision, const py::object& verbose) {
        const std::string model = path_arg(onnx, "onnx");
        PlanArgs a = plan_args(strategy, target, precision, max_chunks, min_layers, max_regions, dla_core,
                               optimization_level, fp8, layer_device, layer_precision, verbose);
        Network net = import_model(model, shapes, input_values);
        Plan p = plan_of(net, a);
        return report_as(format, [&] { return plan_report_text(net, p, model); },
                         [&] { return plan_report_json(net, p, model); });
      },
      py::arg("onnx"), py::kw_only(), py::arg("shapes") = py::none(), py::arg("input_values") = py::none(),
      py::arg("format") = "dict", TANDEM_PLAN_KWARGS,
      "`tandem plan`: device and precision per layer, regions, crossings (dict as --json, 'json' or 'text').");

  m.def(
      "export_trtexec",
      [](const py::object& onnx, const py::object& shapes, const py::object& input_values,
         const py::object& output, const py::object& calib,
         const py::object& save_engine, const py::object& timing_cache, const py::object& trt_version,
         double workspace, double dla_sram, double dla_local_dram, double dla_global_dram,
         const std::string& input_io_formats, const std::string& output_io_formats, bool direct_io,
         const py::object& profiling_verbosity, int tiling_optimization_level, int64_t tiling_l2_cache_limit,
         const std::string& strategy, const std::string& target, const std::string& precision, int max_chunks,
         int min_layers, int max_regions, int dla_core, int optimization_level, bool fp8,
         const py::object& layer_device, const py::object& layer_precision, const py::object& verbose) {
        TrtexecOptions t;
        t.onnx = path_arg(onnx, "onnx");
        t.calib = path_arg_or_empty(calib, "calib");
        t.save_engine = path_arg_or_empty(save_engine, "save_engine");
        t.timing_cache = path_arg_or_empty(timing_cache, "timing_cache");
        t.trt_version = trt_version_arg(trt_version);
        t.workspace_mib = workspace;
        t.dla_sram_mib = dla_sram;
        t.dla_local_dram_mib = dla_local_dram;
        t.dla_global_dram_mib = dla_global_dram;
        t.input_io_formats = input_io_formats;
        t.output_io_formats = output_io_formats;
        t.direct_io = direct_io;
        if (!profiling_verbosity.is_none()) {
          t.profiling_verbosity = py::str(profiling_verbosity);
          if (t.profiling_verbosity != "layer_names_only" && t.profiling_verbosity != "detailed" &&
              t.profiling_verbosity != "none")
            throw Error("profiling_verbosity: '" + t.profiling_verbosity + "' is not layer_names_only | detailed | none");
        }
        t.tiling_optimization_level = tiling_optimization_level;
        t.tiling_l2_cache_limit = tiling_l2_cache_limit;
        t.explicit_shapes = !shapes.is_none();
        PlanArgs a = plan_args(strategy, target, precision, max_chunks, min_layers, max_regions, dla_core,
                               optimization_level, fp8, layer_device, layer_precision, verbose);
        Network net = import_model(t.onnx, shapes, input_values);
        Plan p = plan_of(net, a);
        const std::string cmd = trtexec_command(net, p, t);
        if (!output.is_none()) write_text_atomic(path_arg(output, "output"), "#!/bin/sh\n" + cmd);
        return cmd;
      },
      py::arg("onnx"), py::kw_only(), py::arg("shapes") = py::none(), py::arg("input_values") = py::none(),
      py::arg("output") = py::none(),
      py::arg("calib") = py::none(), py::arg("save_engine") = py::none(), py::arg("timing_cache") = py::none(),
      py::arg("trt_version") = py::none(), py::arg("workspace") = 4096.0, py::arg("dla_sram") = 0.0,
      py::arg("dla_local_dram") = 0.0, py::arg("dla_global_dram") = 0.0, py::arg("input_io_formats") = "",
      py::arg("output_io_formats") = "", py::arg("direct_io") = false, py::arg("profiling_verbosity") = py::none(),
      py::arg("tiling_optimization_level") = -1, py::arg("tiling_l2_cache_limit") = -1, TANDEM_PLAN_KWARGS,
      "`tandem export trtexec`: the trtexec command line that builds this plan with TensorRT (workspace in MiB). "
      "With output, also writes it as a shell script.");

  m.def(
      "export_dot",
      [](const py::object& onnx, const py::object& shapes, const py::object& input_values,
         const py::object& output, const std::string& strategy,
         const std::string& target, const std::string& precision, int max_chunks, int min_layers, int max_regions,
         int dla_core, int optimization_level, bool fp8, const py::object& layer_device,
         const py::object& layer_precision, const py::object& verbose) {
        const std::string model = path_arg(onnx, "onnx");
        PlanArgs a = plan_args(strategy, target, precision, max_chunks, min_layers, max_regions, dla_core,
                               optimization_level, fp8, layer_device, layer_precision, verbose);
        Network net = import_model(model, shapes, input_values);
        Plan p = plan_of(net, a);
        const std::string text = plan_dot(net, p, std::filesystem::path(model).filename().string());
        if (!output.is_none()) write_text_atomic(path_arg(output, "output"), text);
        return text;
      },
      py::arg("onnx"), py::kw_only(), py::arg("shapes") = py::none(), py::arg("input_values") = py::none(),
      py::arg("output") = py::none(),
      TANDEM_PLAN_KWARGS, "`tandem export dot`: the plan as Graphviz text (written to output when given).");

  m.def(
      "export_qdq",
      [](const py::object& onnx, const py::object& calibration_cache, const py::object& output,
         const py::object& shapes, const py::object& input_values,
         int opset, const std::string& strategy, const std::string& target,
         const std::string& precision, int max_chunks, int min_layers, int max_regions, int dla_core,
         int optimization_level, bool fp8, const py::object& layer_device, const py::object& layer_precision,
         const py::object& verbose) {
        const std::string model = path_arg(onnx, "onnx");
        const std::string cache = path_arg(calibration_cache, "calibration_cache");
        const std::string out = path_arg(output, "output");
        PlanArgs a = plan_args(strategy, target, precision, max_chunks, min_layers, max_regions, dla_core,
                               optimization_level, fp8, layer_device, layer_precision, verbose);
        Network net = import_model(model, shapes, input_values);
        Plan p = plan_of(net, a);
        QdqExportReport r;
        int retied = 0;
        size_t scales = 0;
        {
          py::gil_scoped_release rel;
          const std::map<std::string, float> cached = read_calibration_cache(cache).scale_map();
          Numerics n = make_numerics(net, p, cached);
          for (auto& [name, sc] : n.tensor_scales)
            if (auto it = cached.find(name); it != cached.end() && it->second != sc) ++retied;
          scales = n.tensor_scales.size();
          QdqExportOptions o;
          o.opset = opset;
          r = export_qdq(model, out, net, n, o);
        }
        if (retied > 0)
          PyErr_WarnEx(PyExc_UserWarning,
                       (std::to_string(retied) + " of " + std::to_string(scales) + " INT8 scales changed by tying for "
                        "this plan: " + cache + " was calibrated for another plan (calibrate with the same plan options)")
                           .c_str(),
                       1);
        py::dict d;
        d["output"] = out;
        d["int8_layers"] = r.int8_layers;
        d["activations"] = r.activations;
        d["weights"] = r.weights;
        d["from_opset"] = r.from_opset;
        d["to_opset"] = r.to_opset;
        d["converted_nodes"] = r.converted_nodes;
        d["skipped"] = r.skipped;
        d["notes"] = r.notes;
        d["retied_scales"] = retied;
        return d;
      },
      py::arg("onnx"), py::arg("calibration_cache"), py::arg("output"), py::kw_only(), py::arg("shapes") = py::none(),
      py::arg("input_values") = py::none(),
      py::arg("opset") = 13, TANDEM_PLAN_KWARGS,
      "`tandem export qdq`: the ONNX model with Q/DQ pairs carrying the cache's INT8 scales for the plan's "
      "INT8 layers. Returns a summary dict.");

  bind_build(m);
  bind_engine(m);
}
