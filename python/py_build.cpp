// Data batchers (Python objects behind tandem's C++ Batcher; tandem's own image and synthetic
// batchers for Python), calibrate, compare, build_engine and build_dla_engine.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "common.h"

namespace tandem::py_binding {
namespace {

std::string dims_or_any_batch(const Dims& d) {
  Dims x = d;
  std::string s = dims_to_string(x);
  if (!x.empty()) s = "N" + s.substr(s.find('x') == std::string::npos ? s.size() : s.find('x'));
  return s;
}

// ---- the Python batcher ----------------------------------------------------------------------
class PyBatcher : public Batcher {
 public:
  PyBatcher(std::shared_ptr<PyObjectHolder> h, std::vector<InputSpec> inputs) : h_(std::move(h)), specs_(std::move(inputs)) {}
  int batch_size() const override {
    drain();
    return bs_;
  }
  int num_batches() const override {
    drain();
    return int(batches_.size());
  }
  bool next(TensorMap* out) override {
    drain();
    if (pos_ >= batches_.size()) return false;
    *out = batches_[pos_++];
    return true;
  }
  void reset() override {
    drain();
    pos_ = 0;
  }

 private:
  std::shared_ptr<PyObjectHolder> h_;
  std::vector<InputSpec> specs_;
  mutable std::vector<TensorMap> batches_;
  mutable bool drained_ = false;
  mutable int bs_ = 0;
  size_t pos_ = 0;

  HostTensor convert(const py::handle& a, const InputSpec& s, size_t k) const {
    HostTensor t = to_host(a, s.name, &s.type);
    bool ok = t.dims.size() == s.dims.size() && !t.dims.empty() && t.dims[0] >= 1;
    for (size_t i = 1; ok && i < t.dims.size(); ++i) ok = t.dims[i] == s.dims[i];
    if (!ok)
      throw Error("data_batcher: batch " + std::to_string(k) + ", input '" + s.name + "': shape " +
                  dims_to_string(t.dims) + ", the model wants " + dims_or_any_batch(s.dims) + " (N: any batch)");
    return t;
  }

  void add(const py::handle& b) const {
    const size_t k = batches_.size();
    TensorMap m;
    if (py::isinstance<py::dict>(b)) {
      py::dict d = py::reinterpret_borrow<py::dict>(b);
      for (const InputSpec& s : specs_) {
        if (!d.contains(s.name)) throw Error("data_batcher: batch " + std::to_string(k) + " has no input '" + s.name + "'");
        m[s.name] = convert(d[py::str(s.name)], s, k);
      }
      for (auto [key, v] : d)
        if (!m.count(py::str(key).cast<std::string>()))
          throw Error("data_batcher: batch " + std::to_string(k) + ": the model has no input '" +
                      py::str(key).cast<std::string>() + "'");
    } else if ((py::isinstance<py::list>(b) || py::isinstance<py::tuple>(b)) && specs_.size() > 1) {
      py::sequence seq = py::reinterpret_borrow<py::sequence>(b);
      if (py::len(seq) != specs_.size())
        throw Error("data_batcher: batch " + std::to_string(k) + " holds " + std::to_string(py::len(seq)) +
                    " arrays, the model has " + std::to_string(specs_.size()) + " inputs");
      for (size_t i = 0; i < specs_.size(); ++i) m[specs_[i].name] = convert(seq[i], specs_[i], k);
    } else {
      if (specs_.size() != 1)
        throw Error("data_batcher: batch " + std::to_string(k) + " is one array, the model has " +
                    std::to_string(specs_.size()) + " inputs: give a dict {name: array}");
      m[specs_[0].name] = convert(b, specs_[0], k);
    }
    int64_t n = -1;
    for (auto& [name, t] : m) {
      if (n >= 0 && t.dims[0] != n)
        throw Error("data_batcher: batch " + std::to_string(k) + ": inputs disagree on the batch size");
      n = t.dims[0];
    }
    if (bs_ <= 0) bs_ = int(n);
    batches_.push_back(std::move(m));
  }

  // Reads one pass from Python (with the GIL) and keeps it.
  void drain() const {
    if (drained_) return;
    drained_ = true;
    py::gil_scoped_acquire gil;
    try {
      py::object o = h_->obj;
      int limit = -1;
      auto int_attr = [&](const char* name) -> int {
        if (!py::hasattr(o, name)) return -1;
        py::object v = o.attr(name);
        if (PyCallable_Check(v.ptr())) v = v();
        return py::isinstance<py::int_>(v) ? v.cast<int>() : -1;
      };
      if (py::hasattr(o, "get_next_batch")) {  // trtutils' AbstractBatcher
        bs_ = std::max(0, int_attr("batch_size"));
        limit = int_attr("num_batches");
        while (limit < 0 || int(batches_.size()) < limit) {
          py::object b = o.attr("get_next_batch")();
          if (b.is_none()) break;
          add(b);
        }
      } else if (py::isinstance<py::array>(o) || py::isinstance<py::dict>(o)) {
        add(o);  // one batch
      } else {
        for (auto b : py::iter(o)) add(b);
      }
    } catch (py::error_already_set& e) {
      h_->error = std::current_exception();
      throw Error(std::string("data_batcher: ") + e.what());
    }
    if (batches_.empty()) throw Error("data_batcher: no batches (the batcher was empty or already consumed)");
  }
};

// tandem's C++ batchers (images, synthetic) for Python, with trtutils' batcher methods.
struct CppBatcher {
  std::unique_ptr<Batcher> b;
  std::vector<InputSpec> specs;
  py::object next_batch() {
    TensorMap m;
    bool more;
    {
      py::gil_scoped_release rel;
      more = b->next(&m);
    }
    if (!more) return py::none();
    if (m.size() == 1) return to_numpy(std::move(m.begin()->second));
    py::dict d;
    for (auto& [name, t] : m) d[py::str(name)] = to_numpy(std::move(t));
    return d;
  }
};

// trtutils' (H, W, C) shape, dtype and order -> the one input a batcher feeds.
std::vector<InputSpec> hwc_spec(const py::object& shape, const py::object& dtype, const std::string& order, int batch) {
  std::vector<int64_t> hwc;
  for (auto v : shape) hwc.push_back(v.cast<int64_t>());
  if (hwc.size() != 3) throw Error("shape: expected (height, width, channels), as trtutils' batchers");
  if (order != "NCHW" && order != "NHWC" && order != "nchw" && order != "nhwc")
    throw Error("order: '" + order + "' is not NCHW | NHWC");
  const bool nchw = order == "NCHW" || order == "nchw";
  InputSpec s;
  s.name = "input";
  s.type = data_type_of(py::dtype::from_args(dtype), "dtype");
  s.dims = nchw ? Dims{batch, hwc[2], hwc[0], hwc[1]} : Dims{batch, hwc[0], hwc[1], hwc[2]};
  return {s};
}

std::unique_ptr<Batcher> no_data() {
  struct NoData : Batcher {
    int batch_size() const override { return 1; }
    int num_batches() const override { return 0; }
    bool next(TensorMap*) override { return false; }
    void reset() override {}
  };
  return std::make_unique<NoData>();
}

// ---- build options ----------------------------------------------------------------------------
std::vector<TensorFormat> formats_arg(const py::object& v, const char* what) {
  std::vector<TensorFormat> out;
  if (v.is_none()) return out;
  for (auto item : v) {
    if (py::isinstance<py::str>(item)) {
      out.push_back(parse_tensor_format(item.cast<std::string>()));
      continue;
    }
    // (name, dtype, layout) as trtutils' (name, DataType, TensorFormat); dtype/layout as words.
    std::string spec;
    for (auto part : item) {
      std::string w;
      if (py::isinstance<py::str>(part)) {
        w = part.cast<std::string>();
      } else {
        try {
          w = std::string(to_string(data_type_of(py::dtype::from_args(py::reinterpret_borrow<py::object>(part)), what)));
        } catch (...) {
          w = py::str(py::hasattr(part, "name") ? part.attr("name") : part).cast<std::string>();
        }
      }
      if (auto dot = w.rfind('.'); dot != std::string::npos && !spec.empty()) w = w.substr(dot + 1);
      std::string lw = w;
      for (char& c : lw) c = char(std::tolower(static_cast<unsigned char>(c)));
      if (!spec.empty()) {
        if (lw == "half") lw = "fp16";
        if (lw == "float") lw = "fp32";
        if (lw == "linear") lw = "nchw";
        if (lw == "hwc") lw = "nhwc";
        w = lw;
      }
      spec += (spec.empty() ? "" : ":") + w;
    }
    out.push_back(parse_tensor_format(spec));
  }
  return out;
}

struct BuildArgs {
  // Every argument starts as None (a default py::object is a null handle, not None).
  py::object onnx = py::none();
  py::object output = py::none();
  py::object default_device = py::none();
  py::object dla_core = py::none();
  py::object calibration_cache = py::none();
  py::object data_batcher = py::none();
  py::object layer_precision = py::none();
  py::object layer_device = py::none();
  py::object shapes = py::none();
  py::object input_values = py::none();
  py::object input_tensor_formats = py::none();
  py::object output_tensor_formats = py::none();
  py::object hooks = py::none();
  py::object profiling_verbosity = py::none();
  py::object tiling_optimization_level = py::none();
  py::object tiling_l2_cache_limit = py::none();
  py::object device = py::none();
  py::object timing_cache = py::none();
  py::object fp16 = py::none();
  py::object fp8 = py::none();
  py::object int8 = py::none();
  py::object cache = py::none();
  py::object verbose = py::none();
  py::object cache_dir = py::none();
  py::object batcher_id = py::none();
  double workspace = 4.0;
  int optimization_level = 3, max_chunks = 1, min_layers = 20, threads = 0;
  bool gpu_fallback = false, direct_io = false, prefer_precision_constraints = false, reject_empty_algorithms = false,
       ignore_timing_mismatch = false, passes = true;
  std::string strategy = "seed", target = "orin";
};

bool truthy(const py::object& v) { return !v.is_none() && py::bool_(v); }

py::dict run_build(const BuildArgs& a, bool dla) {
  const std::string onnx = path_arg(a.onnx, "onnx");
  const std::string output = path_arg(a.output, dla ? "output_path" : "output");
  if (truthy(a.hooks))
    throw Error("hooks: Python hooks are not supported (tandem's hooks edit its C++ Network: use the C++ API's "
                "BuildOptions::hooks)");
  BuildOptions o;
  if (!dla && !a.default_device.is_none()) device_arg(a.default_device, "default_device", &o.default_device);
  if (!a.dla_core.is_none()) o.dla_core = a.dla_core.cast<int>();
  o.gpu_fallback = a.gpu_fallback;
  o.max_chunks = a.max_chunks;
  o.min_layers = a.min_layers;
  if (!parse_strategy(a.strategy, &o.strategy)) throw Error("strategy: '" + a.strategy + "' is not seed | graph");
  if (!parse_dla_target(a.target, &o.target)) throw Error("target: unknown DLA target '" + a.target + "' (orin | xavier)");
  o.fp16 = truthy(a.fp16);
  o.fp8 = truthy(a.fp8);
  o.int8 = truthy(a.int8);
  o.workspace_gib = a.workspace;
  o.optimization_level = a.optimization_level;
  o.direct_io = a.direct_io;
  o.prefer_precision_constraints = a.prefer_precision_constraints;
  o.reject_empty_algorithms = a.reject_empty_algorithms;
  o.ignore_timing_mismatch = a.ignore_timing_mismatch;
  if (!a.device.is_none()) o.device = a.device.cast<int>();
  o.shapes = shapes_arg(a.shapes);
  o.input_values = input_values_arg(a.input_values);
  o.input_formats = formats_arg(a.input_tensor_formats, "input_tensor_formats");
  o.output_formats = formats_arg(a.output_tensor_formats, "output_tensor_formats");
  o.calibration_cache = path_arg_or_empty(a.calibration_cache, "calibration_cache");
  if (!a.profiling_verbosity.is_none()) {
    std::string s = py::str(py::hasattr(a.profiling_verbosity, "name") && !py::isinstance<py::str>(a.profiling_verbosity)
                                ? a.profiling_verbosity.attr("name")
                                : a.profiling_verbosity);
    for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
    o.profiling_verbosity = s;
  }
  if (!a.tiling_optimization_level.is_none()) {
    py::object t = a.tiling_optimization_level;
    o.tiling_optimization_level = py::hasattr(t, "value") && !py::isinstance<py::int_>(t) ? t.attr("value").cast<int>() : t.cast<int>();
  }
  if (!a.tiling_l2_cache_limit.is_none()) o.tiling_l2_cache_limit = a.tiling_l2_cache_limit.cast<int64_t>();
  if (!a.timing_cache.is_none()) {
    if (py::isinstance<py::bool_>(a.timing_cache)) {
      if (a.timing_cache.cast<bool>()) o.timing_cache = "global";
    } else {
      o.timing_cache = path_arg(a.timing_cache, "timing_cache");
    }
  }
  o.cache = truthy(a.cache);
  o.cache_dir = path_arg_or_empty(a.cache_dir, "cache_dir");
  o.passes = a.passes;
  o.threads = a.threads;
  o.verbose = truthy(a.verbose);
  // Layer lists by index need the network's layer names (trtutils indexes TensorRT's layers).
  if (refers_by_index(a.layer_device) || refers_by_index(a.layer_precision)) {
    Network net = import_model(onnx, a.shapes, a.input_values);
    o.layer_device = layer_device_arg(a.layer_device, &net);
    o.layer_precision = layer_precision_arg(a.layer_precision, &net);
  } else {
    o.layer_device = layer_device_arg(a.layer_device, nullptr);
    o.layer_precision = layer_precision_arg(a.layer_precision, nullptr);
  }
  std::shared_ptr<PyObjectHolder> holder;
  if (!a.data_batcher.is_none()) {
    holder = std::make_shared<PyObjectHolder>(a.data_batcher);
    o.batcher = [holder](const std::vector<InputSpec>& specs) { return make_py_batcher(holder, specs); };
    if (!a.batcher_id.is_none()) o.batcher_id = py::str(a.batcher_id);
    else if (o.cache) throw Error("cache: with a Python data_batcher, give batcher_id naming the data (it keys the engine cache)");
  }
  BuildResult r;
  try {
    py::gil_scoped_release rel;
    r = dla ? build_dla_engine(onnx, output, o) : build_engine(onnx, output, o);
  } catch (const Error&) {
    rethrow_batcher_error(holder);
    throw;
  }
  for (const auto& w : r.warnings) PyErr_WarnEx(PyExc_UserWarning, w.c_str(), 1);
  py::dict d;
  d["engine_path"] = r.engine_path;
  d["cache_hit"] = r.cache_hit;
  d["cache_key"] = r.cache_key;
  d["seconds"] = r.seconds;
  d["dla_layers"] = r.dla_layers;
  d["gpu_layers"] = r.gpu_layers;
  d["engine_bytes"] = r.engine_bytes;
  d["warnings"] = r.warnings;
  return d;
}

// compare's per-output statistics: the same as `tandem compare --json`.
using Acc = ErrorStats;

#define TANDEM_PLAN_KWARGS                                                                              \
  py::arg("strategy") = "seed", py::arg("target") = "orin", py::arg("precision") = "int8",              \
      py::arg("max_chunks") = 1, py::arg("min_layers") = 20, py::arg("max_regions") = 0,                \
      py::arg("dla_core") = 0, py::arg("optimization_level") = 3, py::arg("fp8") = false,               \
      py::arg("layer_device") = py::none(), py::arg("layer_precision") = py::none(), py::arg("verbose") = py::none()

PlanArgs make_plan_args(const std::string& strategy, const std::string& target, const std::string& precision,
                        int max_chunks, int min_layers, int max_regions, int dla_core, int optimization_level, bool fp8,
                        const py::object& layer_device, const py::object& layer_precision, const py::object& verbose) {
  PlanArgs a;
  a.strategy = strategy, a.target = target, a.precision = precision;
  a.max_chunks = max_chunks, a.min_layers = min_layers, a.max_regions = max_regions, a.dla_core = dla_core;
  a.optimization_level = optimization_level, a.fp8 = fp8, a.verbose = truthy(verbose);
  a.layer_device = layer_device, a.layer_precision = layer_precision;
  return a;
}

py::dict ranges_dict(const std::map<std::string, float>& m) {
  py::dict d;
  for (auto& [k, v] : m) d[py::str(k)] = v;
  return d;
}

}  // namespace

std::unique_ptr<Batcher> make_py_batcher(std::shared_ptr<PyObjectHolder> h, const std::vector<InputSpec>& inputs) {
  return std::make_unique<PyBatcher>(std::move(h), inputs);
}

void rethrow_batcher_error(const std::shared_ptr<PyObjectHolder>& h) {
  if (h && h->error) {
    std::exception_ptr e = h->error;
    h->error = nullptr;
    std::rethrow_exception(e);
  }
}

void bind_build(py::module_& m) {
  py::class_<CppBatcher>(m, "Batcher", "One of tandem's C++ batchers, with trtutils' batcher methods.")
      .def_property_readonly("batch_size", [](const CppBatcher& b) { return b.b->batch_size(); })
      .def_property_readonly("num_batches", [](const CppBatcher& b) { return b.b->num_batches(); })
      .def("get_next_batch", &CppBatcher::next_batch, "The next batch (ndarray), or None when the pass is over.")
      .def("reset", [](CppBatcher& b) { b.b->reset(); }, "Start the pass again (same data, same order).")
      .def("__iter__", [](CppBatcher& b) {
        b.b->reset();
        py::list out;
        for (py::object x = b.next_batch(); !x.is_none(); x = b.next_batch()) out.append(x);
        b.b->reset();
        return py::iter(out);
      });

  m.def(
      "ImageBatcher",
      [](const py::object& image_dir, const py::object& shape, const py::object& dtype, int batch_size,
         const std::string& order, const py::object& max_images, const std::string& resize_method,
         const std::pair<float, float>& input_scale, const std::string& channels, const std::string& last_batch,
         const py::object& mean, const py::object& std_, int threads, const py::object& verbose) {
        (void)verbose;
        auto specs = hwc_spec(shape, dtype, order, batch_size);
        ImageBatcherOptions o;
        o.dir = path_arg(image_dir, "image_dir");
        o.nchw = order == "NCHW" || order == "nchw";
        o.channels = int(o.nchw ? specs[0].dims[1] : specs[0].dims[3]);
        o.height = int(o.nchw ? specs[0].dims[2] : specs[0].dims[1]);
        o.width = int(o.nchw ? specs[0].dims[3] : specs[0].dims[2]);
        if (!parse_resize_method(resize_method, &o.resize))
          throw Error("resize_method: '" + resize_method + "' is not letterbox | linear");
        o.lo = input_scale.first, o.hi = input_scale.second;
        if (channels != "bgr" && channels != "rgb") throw Error("channels: '" + channels + "' is not bgr | rgb");
        o.bgr = channels == "bgr";
        if (!parse_last_batch(last_batch, &o.last)) throw Error("last_batch: '" + last_batch + "' is not drop | keep | pad");
        if (!mean.is_none()) o.mean = mean.cast<std::vector<float>>();
        if (!std_.is_none()) o.std = std_.cast<std::vector<float>>();
        o.type = specs[0].type;
        o.max_images = max_images.is_none() ? 0 : max_images.cast<int>();
        o.threads = threads;
        CppBatcher b;
        b.specs = specs;
        b.b = make_image_batcher(o, specs, batch_size);
        return b;
      },
      py::arg("image_dir"), py::arg("shape"), py::arg("dtype") = py::dtype("float32"), py::arg("batch_size") = 8,
      py::arg("order") = "NCHW", py::arg("max_images") = py::none(), py::arg("resize_method") = "letterbox",
      py::arg("input_scale") = std::pair<float, float>(0.f, 1.f), py::kw_only(), py::arg("channels") = "bgr",
      py::arg("last_batch") = "drop", py::arg("mean") = py::none(), py::arg("std") = py::none(), py::arg("threads") = 0,
      py::arg("verbose") = py::none(),
      "trtutils' ImageBatcher (shape is (H, W, C)): images of a folder, BGR and the partial last batch dropped "
      "as trtutils does, decoded by tandem (the CLI's image batcher).");

  m.def(
      "SyntheticBatcher",
      [](const py::object& shape, const py::object& dtype, int batch_size, int num_batches,
         const std::pair<float, float>& data_range, const std::string& order, uint64_t seed, const py::object& verbose) {
        (void)verbose;
        if (num_batches < 1) throw Error("num_batches: must be >= 1");
        CppBatcher b;
        b.specs = hwc_spec(shape, dtype, order, batch_size);
        b.b = make_synthetic_batcher(b.specs, batch_size, num_batches, data_range.first, data_range.second, seed);
        return b;
      },
      py::arg("shape"), py::arg("dtype") = py::dtype("float32"), py::arg("batch_size") = 8, py::arg("num_batches") = 10,
      py::arg("data_range") = std::pair<float, float>(0.f, 1.f), py::arg("order") = "NCHW", py::kw_only(),
      py::arg("seed") = 0, py::arg("verbose") = py::none(),
      "trtutils' SyntheticBatcher (shape is (H, W, C)), seeded: the same seed gives the same data.");

  m.def(
      "calibrate",
      [](const py::object& onnx, const py::object& data_batcher, const py::object& calibration_cache,
         const py::object& shapes, const py::object& input_values,
         const std::string& algorithm, double percentile, int bins, int num_batches,
         int trt_version, int threads, bool recalibrate, bool int8_tensors_only, bool true_header, bool progress,
         const std::string& strategy, const std::string& target, const std::string& precision, int max_chunks,
         int min_layers, int max_regions, int dla_core, int optimization_level, bool fp8,
         const py::object& layer_device, const py::object& layer_precision, const py::object& verbose) {
        CalibrateOptions co;
        if (!parse_calib_algorithm(algorithm, &co.algorithm))
          throw Error("algorithm: unknown algorithm '" + algorithm + "' (entropy | minmax | percentile)");
        if (!(percentile > 0 && percentile <= 100)) throw Error("percentile: must be in (0, 100]");
        co.percentile = percentile;
        co.bins = bins;
        co.threads = threads;
        co.progress = progress;
        co.cache_path = path_arg_or_empty(calibration_cache, "calibration_cache");
        co.recalibrate = recalibrate;
        co.all_tensors = !int8_tensors_only;
        // (CalibrateOptions::true_header and CalibrationResult::untied: set and read where this
        // tandem has them.)
        [&](auto& c) {
          if constexpr (requires { c.true_header; }) c.true_header = true_header;
        }(co);
        PlanArgs pa = make_plan_args(strategy, target, precision, max_chunks, min_layers, max_regions, dla_core,
                                     optimization_level, fp8, layer_device, layer_precision, verbose);
        Network net = import_model(path_arg(onnx, "onnx"), shapes, input_values);
        PlanOptions po = plan_options(pa, net);
        std::shared_ptr<PyObjectHolder> holder;
        if (!data_batcher.is_none()) holder = std::make_shared<PyObjectHolder>(data_batcher);
        const bool cached = !co.cache_path.empty() && std::filesystem::exists(co.cache_path) && !recalibrate;
        if (!holder && !cached)
          throw Error("data_batcher: calibration needs data (or an existing calibration_cache)");
        CalibrationResult r;
        try {
          py::gil_scoped_release rel;
          Plan plan = make_plan(net, po);
          co.trt_version = trt_version > 0 ? trt_version : dla_target_info(plan.target).calibration_version;
          std::unique_ptr<Batcher> b = holder && !cached ? make_py_batcher(holder, input_specs(net)) : no_data();
          if (holder && !cached && num_batches > 0 && num_batches < b->num_batches())
            b = limit_batches(std::move(b), num_batches);
          r = calibrate(net, plan, *b, co);
        } catch (const Error&) {
          rethrow_batcher_error(holder);
          throw;
        }
        py::dict d;
        d["scales"] = ranges_dict(r.scales);
        d["ranges"] = ranges_dict(r.ranges);
        d["untied"] = [&](const auto& res) {
          if constexpr (requires { res.untied; }) return ranges_dict(res.untied);
          else return ranges_dict(res.ranges);
        }(r);
        d["from_cache"] = r.from_cache;
        d["batches"] = r.batches;
        d["samples"] = r.samples;
        d["tied_tensors"] = r.tied_tensors;
        d["cache"] = py::bytes(format_calibration_cache(r.cache));
        return d;
      },
      py::arg("onnx"), py::arg("data_batcher") = py::none(), py::arg("calibration_cache") = py::none(), py::kw_only(),
      py::arg("shapes") = py::none(), py::arg("input_values") = py::none(),
      py::arg("algorithm") = "entropy", py::arg("percentile") = 99.99,
      py::arg("bins") = 2048, py::arg("num_batches") = 0, py::arg("trt_version") = 0, py::arg("threads") = 0,
      py::arg("recalibrate") = false, py::arg("int8_tensors_only") = false, py::arg("true_header") = false,
      py::arg("progress") = false, TANDEM_PLAN_KWARGS,
      "`tandem calibrate`: INT8 ranges from a data batcher; writes the TensorRT calibration cache when "
      "calibration_cache is given (and reuses it when it exists, unless recalibrate).");

  m.def(
      "compare",
      [](const py::object& onnx, const py::object& data_batcher, const py::object& calibration_cache,
         const py::object& shapes, const py::object& input_values,
         const std::string& algorithm, int threads, const std::string& strategy,
         const std::string& target, const std::string& precision, int max_chunks, int min_layers, int max_regions,
         int dla_core, int optimization_level, bool fp8, const py::object& layer_device,
         const py::object& layer_precision, const py::object& verbose) {
        const std::string model = path_arg(onnx, "onnx");
        const std::string cache = path_arg_or_empty(calibration_cache, "calibration_cache");
        CalibAlgorithm alg;
        if (!parse_calib_algorithm(algorithm, &alg)) throw Error("algorithm: unknown algorithm '" + algorithm + "'");
        PlanArgs pa = make_plan_args(strategy, target, precision, max_chunks, min_layers, max_regions, dla_core,
                                     optimization_level, fp8, layer_device, layer_precision, verbose);
        Network net = import_model(model, shapes, input_values);
        PlanOptions po = plan_options(pa, net);
        if (data_batcher.is_none()) throw Error("data_batcher: compare needs inputs to run");
        auto holder = std::make_shared<PyObjectHolder>(data_batcher);
        std::vector<Acc> acc(net.outputs.size());
        int samples = 0, n_int8 = 0, n_fp16 = 0;
        std::string scale_source;
        try {
          py::gil_scoped_release rel;
          Plan plan = make_plan(net, po);
          const std::vector<InputSpec> specs = input_specs(net);
          auto batcher = make_py_batcher(holder, specs);
          const std::vector<Precision> prec = plan_precisions(plan);
          std::map<std::string, float> scales;
          if (!cache.empty()) {
            scales = read_calibration_cache(cache).scale_map();
            scale_source = "cache " + cache;
          } else if (!int8_tensors(net, prec).empty()) {
            CalibrateOptions co;
            co.algorithm = alg;
            co.threads = threads;
            co.progress = false;
            scales = calibrate(net, plan, *batcher, co).scales;
            scale_source = std::string(to_string(alg)) + " calibration on the compared inputs";
          } else {
            scale_source = "none needed (no INT8 layer)";
          }
          for (Precision p : prec) n_int8 += p == Precision::kINT8, n_fp16 += p == Precision::kFP16;
          ExecOptions ro;
          ro.threads = threads;
          ExecOptions eo = ro;
          eo.numerics = make_numerics(net, plan, scales);
          auto ref = make_cpu_executor(net, ro);
          auto emu = make_cpu_executor(net, eo);
          batcher->reset();
          TensorMap batch;
          while (batcher->next(&batch)) {
            for (const TensorMap& piece : split_batch(batch, specs)) {
              TensorMap r = ref->run(piece);
              TensorMap e = emu->run(piece);
              for (size_t k = 0; k < net.outputs.size(); ++k) {
                const Tensor& t = net.tensors[net.outputs[k]];
                acc[k].add(r.at(t.name), e.at(t.name), looks_like_classifier(t));
              }
              ++samples;
            }
          }
        } catch (const Error&) {
          rethrow_batcher_error(holder);
          throw;
        }
        py::dict d;
        d["model"] = model;
        d["samples"] = samples;
        d["int8_layers"] = n_int8;
        d["fp16_layers"] = n_fp16;
        d["scales"] = scale_source;
        py::list outs;
        for (size_t k = 0; k < net.outputs.size(); ++k) {
          const Tensor& t = net.tensors[net.outputs[k]];
          const Acc& s = acc[k];
          py::dict o;
          o["name"] = t.name;
          o["shape"] = dims_to_string(t.dims);
          o["max_abs_error"] = s.max_abs;
          o["mean_abs_error"] = s.mean_abs();
          o["cosine"] = s.cosine();
          o["min_sample_cosine"] = s.min_cos;
          if (s.top1_total) o["top1_agreement"] = double(s.top1_agree) / double(s.top1_total);
          outs.append(o);
        }
        d["outputs"] = outs;
        return d;
      },
      py::arg("onnx"), py::arg("data_batcher"), py::arg("calibration_cache") = py::none(), py::kw_only(),
      py::arg("shapes") = py::none(), py::arg("input_values") = py::none(),
      py::arg("algorithm") = "entropy", py::arg("threads") = 0, TANDEM_PLAN_KWARGS,
      "`tandem compare` (output level): FP32 reference against the plan's numerics on the batcher's inputs. "
      "Without a cache, calibrates on the compared inputs. The per-layer ranking stays in the CLI.");

  m.def(
      "build_engine",
      [](py::object onnx, py::object output, py::object default_device, double workspace, py::object dla_core,
         py::object calibration_cache, py::object data_batcher, py::object layer_precision, py::object layer_device,
         py::object shapes, py::object input_values,
         py::object input_tensor_formats, py::object output_tensor_formats, py::object hooks,
         int optimization_level, py::object profiling_verbosity, py::object tiling_optimization_level,
         py::object tiling_l2_cache_limit, py::object device, py::object timing_cache, bool gpu_fallback,
         bool direct_io, bool prefer_precision_constraints, bool reject_empty_algorithms, bool ignore_timing_mismatch,
         py::object fp16, py::object fp8, py::object int8, py::object cache, py::object verbose, std::string target,
         py::object cache_dir, py::object batcher_id, bool passes, int threads) {
        BuildArgs a;
        a.onnx = onnx, a.output = output, a.default_device = default_device, a.workspace = workspace;
        a.dla_core = dla_core, a.calibration_cache = calibration_cache, a.data_batcher = data_batcher;
        a.layer_precision = layer_precision, a.layer_device = layer_device, a.shapes = shapes;
        a.input_values = input_values;
        a.input_tensor_formats = input_tensor_formats, a.output_tensor_formats = output_tensor_formats;
        a.hooks = hooks, a.optimization_level = optimization_level, a.profiling_verbosity = profiling_verbosity;
        a.tiling_optimization_level = tiling_optimization_level, a.tiling_l2_cache_limit = tiling_l2_cache_limit;
        a.device = device, a.timing_cache = timing_cache, a.gpu_fallback = gpu_fallback, a.direct_io = direct_io;
        a.prefer_precision_constraints = prefer_precision_constraints;
        a.reject_empty_algorithms = reject_empty_algorithms, a.ignore_timing_mismatch = ignore_timing_mismatch;
        a.fp16 = fp16, a.fp8 = fp8, a.int8 = int8, a.cache = cache, a.verbose = verbose, a.target = target;
        a.cache_dir = cache_dir, a.batcher_id = batcher_id, a.passes = passes, a.threads = threads;
        return run_build(a, false);
      },
      py::arg("onnx"), py::arg("output"), py::arg("default_device") = "gpu", py::arg("workspace") = 4.0,
      py::arg("dla_core") = py::none(), py::arg("calibration_cache") = py::none(), py::arg("data_batcher") = py::none(),
      py::arg("layer_precision") = py::none(), py::arg("layer_device") = py::none(), py::arg("shapes") = py::none(),
      py::arg("input_values") = py::none(),
      py::arg("input_tensor_formats") = py::none(), py::arg("output_tensor_formats") = py::none(),
      py::arg("hooks") = py::none(), py::arg("optimization_level") = 3, py::arg("profiling_verbosity") = py::none(),
      py::arg("tiling_optimization_level") = py::none(), py::arg("tiling_l2_cache_limit") = py::none(),
      py::arg("device") = py::none(), py::kw_only(), py::arg("timing_cache") = py::none(),
      py::arg("gpu_fallback") = false, py::arg("direct_io") = false, py::arg("prefer_precision_constraints") = false,
      py::arg("reject_empty_algorithms") = false, py::arg("ignore_timing_mismatch") = false,
      py::arg("fp16") = py::none(), py::arg("fp8") = py::none(), py::arg("int8") = py::none(),
      py::arg("cache") = py::none(), py::arg("verbose") = py::none(), py::arg("target") = "orin",
      py::arg("cache_dir") = py::none(), py::arg("batcher_id") = py::none(), py::arg("passes") = true,
      py::arg("threads") = 0,
      "trtutils' build_engine: builds and writes a tandem engine file. Returns a summary dict.");

  m.def(
      "build_dla_engine",
      [](py::object onnx, py::object output_path, py::object data_batcher, py::object dla_core, int max_chunks,
         int min_layers, double workspace, py::object calibration_cache, py::object timing_cache, py::object shapes,
         py::object input_values,
         py::object input_tensor_formats, py::object output_tensor_formats, py::object hooks, int optimization_level,
         bool direct_io, bool prefer_precision_constraints, bool reject_empty_algorithms, bool ignore_timing_mismatch,
         py::object fp8, py::object cache, py::object verbose, std::string strategy, std::string target,
         py::object profiling_verbosity, py::object tiling_optimization_level, py::object tiling_l2_cache_limit,
         py::object device, py::object cache_dir, py::object batcher_id, bool passes, int threads) {
        BuildArgs a;
        a.onnx = onnx, a.output = output_path, a.data_batcher = data_batcher, a.dla_core = dla_core;
        a.max_chunks = max_chunks, a.min_layers = min_layers, a.workspace = workspace;
        a.calibration_cache = calibration_cache, a.timing_cache = timing_cache, a.shapes = shapes;
        a.input_values = input_values;
        a.input_tensor_formats = input_tensor_formats, a.output_tensor_formats = output_tensor_formats;
        a.hooks = hooks, a.optimization_level = optimization_level, a.direct_io = direct_io;
        a.prefer_precision_constraints = prefer_precision_constraints;
        a.reject_empty_algorithms = reject_empty_algorithms, a.ignore_timing_mismatch = ignore_timing_mismatch;
        a.fp8 = fp8, a.cache = cache, a.verbose = verbose, a.strategy = strategy, a.target = target;
        a.profiling_verbosity = profiling_verbosity, a.tiling_optimization_level = tiling_optimization_level;
        a.tiling_l2_cache_limit = tiling_l2_cache_limit, a.device = device;
        a.cache_dir = cache_dir, a.batcher_id = batcher_id, a.passes = passes, a.threads = threads;
        a.default_device = a.fp16 = a.int8 = py::none();
        return run_build(a, true);
      },
      py::arg("onnx"), py::arg("output_path"), py::arg("data_batcher") = py::none(), py::arg("dla_core") = py::none(),
      py::arg("max_chunks") = 1, py::arg("min_layers") = 20, py::arg("workspace") = 4.0,
      py::arg("calibration_cache") = py::none(), py::arg("timing_cache") = py::none(), py::arg("shapes") = py::none(),
      py::arg("input_values") = py::none(),
      py::arg("input_tensor_formats") = py::none(), py::arg("output_tensor_formats") = py::none(),
      py::arg("hooks") = py::none(), py::arg("optimization_level") = 3, py::kw_only(), py::arg("direct_io") = false,
      py::arg("prefer_precision_constraints") = false, py::arg("reject_empty_algorithms") = false,
      py::arg("ignore_timing_mismatch") = false, py::arg("fp8") = py::none(), py::arg("cache") = py::none(),
      py::arg("verbose") = py::none(), py::arg("strategy") = "seed", py::arg("target") = "orin",
      py::arg("profiling_verbosity") = py::none(), py::arg("tiling_optimization_level") = py::none(),
      py::arg("tiling_l2_cache_limit") = py::none(), py::arg("device") = py::none(), py::arg("cache_dir") = py::none(),
      py::arg("batcher_id") = py::none(), py::arg("passes") = true, py::arg("threads") = 0,
      "trtutils' build_dla_engine: the largest DLA chunks on the DLA in INT8 (calibrated with data_batcher), "
      "the rest on the GPU in FP16. Returns a summary dict.");
}

}  // namespace tandem::py_binding
