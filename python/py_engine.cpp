// tandem.Engine: load an engine file and run it on NumPy arrays (trtutils' TRTEngine, on tandem's
// CPU or CUDA backend).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <random>

#include "common.h"
#include "tandem/engine.h"

namespace tandem::py_binding {
namespace {

Dims io_dims(const Dims& d, TensorLayout l) {
  if (l == TensorLayout::kNHWC && d.size() == 4) return {d[0], d[2], d[3], d[1]};
  return d;
}

class PyEngine {
 public:
  PyEngine(const py::object& path, std::string backend, int threads, bool warmup, int warmup_iterations)
      : backend_(std::move(backend)) {
    const std::string p = path_arg(path, "engine_path");
    {
      py::gil_scoped_release rel;
      engine_ = Engine::load(p);
      ctx_ = engine_->create_context(threads, backend_);
    }
    if (warmup)
      for (int i = 0; i < warmup_iterations; ++i) mock_execute();
  }

  const Engine& engine() const { return *engine_; }
  const std::string& backend() const { return backend_; }

  std::vector<std::string> input_names() const {
    std::vector<std::string> v;
    for (auto& f : engine_->input_formats()) v.push_back(f.name);
    return v;
  }
  std::vector<std::string> output_names() const {
    std::vector<std::string> v;
    for (auto& f : engine_->output_formats()) v.push_back(f.name);
    return v;
  }
  std::vector<std::vector<int64_t>> input_shapes() const {
    std::vector<std::vector<int64_t>> v;
    const Network& net = engine_->network();
    for (size_t i = 0; i < net.inputs.size(); ++i)
      v.push_back(io_dims(net.tensors[net.inputs[i]].dims, engine_->input_formats()[i].layout));
    return v;
  }
  std::vector<std::vector<int64_t>> output_shapes() const {
    std::vector<std::vector<int64_t>> v;
    const Network& net = engine_->network();
    for (size_t i = 0; i < net.outputs.size(); ++i)
      v.push_back(io_dims(net.tensors[net.outputs[i]].dims, engine_->output_formats()[i].layout));
    return v;
  }
  py::list dtypes(const std::vector<TensorFormat>& f) const {
    py::list l;
    for (auto& x : f) l.append(numpy_dtype(x.type));
    return l;
  }
  py::list spec(bool inputs) const {
    py::list l;
    auto names = inputs ? input_names() : output_names();
    auto shapes = inputs ? input_shapes() : output_shapes();
    const auto& f = inputs ? engine_->input_formats() : engine_->output_formats();
    for (size_t i = 0; i < names.size(); ++i)
      l.append(py::make_tuple(names[i], py::tuple(py::cast(shapes[i])), numpy_dtype(f[i].type)));
    return l;
  }

  // {name: array} (or a list in input order) -> {name: array}.
  py::dict run(const py::object& data) {
    TensorMap in = inputs_of(data);
    TensorMap out;
    {
      py::gil_scoped_release rel;
      out = ctx_->run(in);
    }
    py::dict d;
    for (const auto& name : output_names()) {
      auto it = out.find(name);
      if (it != out.end()) d[py::str(name)] = to_numpy(std::move(it->second));
    }
    return d;
  }

  // trtutils' execute: a list of arrays in input order -> a list in output order.
  py::list execute(const py::object& data) {
    py::dict d = run(data);
    py::list l;
    for (const auto& name : output_names()) l.append(d[py::str(name)]);
    return l;
  }

  // Seeded random inputs in the engine's input formats (as `tandem bench`: floats in [0, 1)).
  py::list get_random_input(bool fresh) {
    if (random_.empty() || fresh) {
      random_.clear();
      std::mt19937 rng{uint32_t(seed_++)};
      auto shapes = input_shapes();
      const auto& fmts = engine_->input_formats();
      const auto& fixed = engine_->network().model.input_values;
      for (size_t i = 0; i < fmts.size(); ++i) {
        if (auto v = fixed.find(fmts[i].name); v != fixed.end()) {  // a shape-value input: its fixed values
          random_.push_back(input_values_tensor(fmts[i].name, fmts[i].type, shapes[i], v->second));
          continue;
        }
        HostTensor h = HostTensor::zeros(fmts[i].name, fmts[i].type, shapes[i]);
        std::uniform_real_distribution<float> u(0.f, 1.f);
        for (int64_t k = 0; k < h.count(); ++k) {
          switch (fmts[i].type) {
            case DataType::kFloat: h.f32()[k] = u(rng); break;
            case DataType::kUInt8: h.data[size_t(k)] = uint8_t(rng() & 0xff); break;
            case DataType::kInt8: h.data[size_t(k)] = uint8_t(int8_t(int(rng() % 255) - 127)); break;
            case DataType::kHalf:
            case DataType::kInt32:
            case DataType::kInt64:
            case DataType::kBool:
            case DataType::kBFloat16: break;
          }
        }
        random_.push_back(std::move(h));
      }
    }
    py::list l;
    for (const HostTensor& h : random_) {
      HostTensor c = h;
      l.append(to_numpy(std::move(c)));
    }
    return l;
  }

  void mock_execute() {
    if (random_.empty()) get_random_input(false);
    TensorMap in;
    for (const HostTensor& h : random_) in[h.name] = h;
    py::gil_scoped_release rel;
    ctx_->run(in);
  }

  // Latency over `iterations` runs after `warmup_iterations` (host wall clock, seconds, as
  // trtutils' benchmark_engine; milliseconds too).
  py::dict benchmark(int iterations, int warmup_iterations, const py::object& data) {
    if (iterations < 1) throw Error("iterations: must be >= 1");
    TensorMap in;
    if (data.is_none()) {
      if (random_.empty()) get_random_input(false);
      for (const HostTensor& h : random_) in[h.name] = h;
    } else {
      in = inputs_of(data);
    }
    std::vector<double> t(static_cast<size_t>(iterations), 0.0);
    {
      py::gil_scoped_release rel;
      for (int i = 0; i < warmup_iterations; ++i) ctx_->run(in);
      for (int i = 0; i < iterations; ++i) {
        auto t0 = std::chrono::steady_clock::now();
        ctx_->run(in);
        t[size_t(i)] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      }
    }
    std::vector<double> s = t;
    std::sort(s.begin(), s.end());
    const size_t n = s.size();
    const double mean = std::accumulate(s.begin(), s.end(), 0.0) / double(n);
    double ss = 0;
    for (double x : s) ss += (x - mean) * (x - mean);
    const double sd = n > 1 ? std::sqrt(ss / double(n - 1)) : 0.0;
    auto pct = [&](double p) {
      double idx = p / 100.0 * double(n - 1);
      size_t lo = size_t(std::floor(idx)), hi = std::min(n - 1, lo + 1);
      return s[lo] + (s[hi] - s[lo]) * (idx - double(lo));
    };
    py::dict lat;
    lat["raw"] = t;
    lat["mean"] = mean;
    lat["median"] = pct(50);
    lat["min"] = s.front();
    lat["max"] = s.back();
    lat["std"] = sd;
    lat["ci95"] = 1.96 * sd / std::sqrt(double(n));
    lat["p90"] = pct(90);
    lat["p99"] = pct(99);
    py::dict d;
    d["latency"] = lat;
    d["throughput"] = mean > 0 ? 1.0 / mean : 0.0;
    d["iterations"] = iterations;
    d["backend"] = backend_;
    return d;
  }

 private:
  std::shared_ptr<const Engine> engine_;
  std::unique_ptr<ExecutionContext> ctx_;
  std::string backend_;
  std::vector<HostTensor> random_;
  uint64_t seed_ = 0;

  TensorMap inputs_of(const py::object& data) {
    const auto& fmts = engine_->input_formats();
    const auto shapes = input_shapes();
    TensorMap in;
    auto add = [&](size_t i, const py::handle& a) {
      HostTensor t = to_host(a, fmts[i].name, nullptr);
      if (t.type != fmts[i].type)
        throw Error("input '" + fmts[i].name + "': wants " + std::string(to_string(fmts[i].type)) + ", the array is " +
                    std::string(to_string(t.type)));
      if (t.dims != shapes[i])
        throw Error("input '" + fmts[i].name + "': wants shape " + dims_to_string(shapes[i]) + ", the array has " +
                    dims_to_string(t.dims));
      in[fmts[i].name] = std::move(t);
    };
    if (py::isinstance<py::dict>(data)) {
      py::dict d = py::reinterpret_borrow<py::dict>(data);
      for (auto [k, v] : d) {
        std::string name = py::str(k);
        size_t i = 0;
        while (i < fmts.size() && fmts[i].name != name) ++i;
        if (i == fmts.size()) throw Error("the engine has no input '" + name + "'");
        add(i, v);
      }
      const auto& fixed = engine_->network().model.input_values;  // shape-value inputs: the backend feeds them
      for (auto& f : fmts)
        if (!in.count(f.name) && !fixed.count(f.name)) throw Error("missing input '" + f.name + "'");
    } else if (py::isinstance<py::list>(data) || py::isinstance<py::tuple>(data)) {
      py::sequence seq = py::reinterpret_borrow<py::sequence>(data);
      if (py::len(seq) != fmts.size())
        throw Error("got " + std::to_string(py::len(seq)) + " arrays, the engine has " + std::to_string(fmts.size()) +
                    " inputs");
      for (size_t i = 0; i < fmts.size(); ++i) add(i, seq[i]);
    } else {
      if (fmts.size() != 1) throw Error("the engine has several inputs: pass {name: array} or a list");
      add(0, data);
    }
    return in;
  }
};

}  // namespace

void bind_engine(py::module_& m) {
  py::class_<PyEngine>(m, "Engine", "An engine file (tandem build / build-dla), run on NumPy arrays.")
      .def(py::init<const py::object&, std::string, int, bool, int>(), py::arg("engine_path"),
           py::arg("backend") = "cpu", py::arg("threads") = 0, py::kw_only(), py::arg("warmup") = false,
           py::arg("warmup_iterations") = 5,
           "Loads the engine and creates an execution context on the backend: 'cpu', or 'cuda' in a CUDA build "
           "with a GPU.")
      .def("run", &PyEngine::run, py::arg("inputs"),
           "{name: ndarray} (or a list in input order) -> {name: ndarray}, in the engine's IO formats.")
      .def("__call__", &PyEngine::run, py::arg("inputs"))
      .def("execute", &PyEngine::execute, py::arg("data"), "trtutils' execute: [ndarray] -> [ndarray] in output order.")
      .def("get_random_input", &PyEngine::get_random_input, py::arg("new") = false)
      .def("mock_execute", &PyEngine::mock_execute)
      .def("benchmark", &PyEngine::benchmark, py::arg("iterations") = 1000, py::arg("warmup_iterations") = 50,
           py::arg("inputs") = py::none(),
           "Latency in seconds (raw, mean, median, min, max, std, ci95, p90, p99) and throughput in runs/s.")
      .def_property_readonly("name", [](const PyEngine& e) { return e.engine().name(); })
      .def_property_readonly("backend", &PyEngine::backend)
      .def_property_readonly("input_names", &PyEngine::input_names)
      .def_property_readonly("output_names", &PyEngine::output_names)
      .def_property_readonly("input_shapes", &PyEngine::input_shapes)
      .def_property_readonly("output_shapes", &PyEngine::output_shapes)
      .def_property_readonly("input_dtypes", [](const PyEngine& e) { return e.dtypes(e.engine().input_formats()); })
      .def_property_readonly("output_dtypes", [](const PyEngine& e) { return e.dtypes(e.engine().output_formats()); })
      .def_property_readonly("input_spec", [](const PyEngine& e) { return e.spec(true); })
      .def_property_readonly("output_spec", [](const PyEngine& e) { return e.spec(false); })
      .def_property_readonly("batch_size", [](const PyEngine& e) {
        auto s = e.input_shapes();
        return s.empty() || s[0].empty() ? int64_t(-1) : s[0][0];
      })
      .def_property_readonly("dla_layers", [](const PyEngine& e) { return e.engine().dla_layer_count(); })
      .def_property_readonly("emulation_note", [](const PyEngine& e) { return e.engine().emulation_note(e.backend()); })
      .def_property_readonly("plan", [](const PyEngine& e) {
        return json_loads(plan_report_json(e.engine().network(), e.engine().plan(), e.engine().metadata().model_path));
      }, "The plan the engine was built with (as `tandem plan --json`).");
}

}  // namespace tandem::py_binding
