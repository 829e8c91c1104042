// tandem run: execute a model on the CPU backend, .npy in, .npy out.
//   tandem run model.onnx [--shape x:1x3x640x640] (--input x=x.npy ... | --random-input [--seed N])
//              --output-dir DIR [--threads N]
// Every output becomes DIR/<sanitized output name>.npy. Bad input (missing input, mis-shaped or
// mistyped .npy, unwritable folder): one line naming the file or input, exit 2, nothing written.
//
// The pieces are separate functions so other front ends (engine files) can reuse them:
// load_run_inputs() resolves --input / --random-input against any list of expected inputs, and
// write_run_outputs() writes a TensorMap atomically.
#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <filesystem>
#include <random>

#include "command.h"
#include "options.h"
#include "run_io.h"
#include "tandem/npy.h"
#include "tandem/onnx.h"
#include "tandem/runtime.h"

namespace tandem::cli {

struct RunArgs {
  std::string model;
  std::vector<std::string> shapes;  // "name:1x3x640x640"
  std::vector<std::string> input_values;  // "name:3,4" (ONNX models; an engine keeps its own)
  std::vector<std::string> inputs;  // "name=file.npy"
  bool random_input = false;
  uint64_t seed = 0;
  std::string output_dir;
  int threads = 0;
  std::string backend = "cpu";  // engines only: cpu | cuda
  bool json = false;
};

HostTensor random_run_tensor(const InputSpec& s, std::mt19937_64& rng) {
  HostTensor t = HostTensor::zeros(s.name, s.type, s.dims);
  std::uniform_real_distribution<float> uf(-1.f, 1.f);
  std::uniform_int_distribution<int> ui(0, 9);
  for (int64_t i = 0; i < t.count(); ++i) {
    switch (s.type) {
      case DataType::kFloat: t.f32()[i] = uf(rng); break;
      case DataType::kHalf: {
        // An fp16-representable normal float (tiny values flushed to 0): its bits convert exactly.
        float f = round_to_fp16(uf(rng));
        if (std::fabs(f) < 6.103515625e-05f) f = 0.f;
        uint32_t x;
        std::memcpy(&x, &f, 4);
        uint16_t h = f == 0.f ? 0
                              : uint16_t(((x >> 16) & 0x8000u) | ((((x >> 23) & 0xffu) - 112u) << 10) | ((x >> 13) & 0x3ffu));
        std::memcpy(t.data.data() + 2 * i, &h, 2);
        break;
      }
      case DataType::kInt8: reinterpret_cast<int8_t*>(t.data.data())[i] = int8_t(ui(rng)); break;
      case DataType::kUInt8: t.data[i] = uint8_t(ui(rng)); break;
      case DataType::kInt32: reinterpret_cast<int32_t*>(t.data.data())[i] = ui(rng); break;
      case DataType::kInt64: reinterpret_cast<int64_t*>(t.data.data())[i] = ui(rng); break;
      case DataType::kBool: t.data[i] = uint8_t(ui(rng) % 2); break;
      case DataType::kBFloat16: {
        const uint16_t b = float_to_bfloat16(uf(rng));
        std::memcpy(t.data.data() + 2 * i, &b, 2);
        break;
      }
    }
  }
  return t;
}

TensorMap load_run_inputs(const std::vector<InputSpec>& specs, const std::vector<std::string>& input_args,
                          bool random_input, uint64_t seed) {
  TensorMap in;
  std::map<std::string, std::string> files;
  for (const std::string& a : input_args) {
    size_t eq = a.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == a.size())
      throw Error("--input '" + a + "': expected NAME=FILE.npy");
    files[a.substr(0, eq)] = a.substr(eq + 1);
  }
  for (const auto& [name, file] : files) {
    bool known = false;
    for (const InputSpec& s : specs) known |= s.name == name;
    if (!known) {
      std::string names;
      for (const InputSpec& s : specs) names += (names.empty() ? "" : ", ") + s.name;
      throw Error("--input " + name + "=" + file + ": the model has no input '" + name + "' (inputs: " + names + ")");
    }
  }
  std::mt19937_64 rng(seed);
  for (const InputSpec& s : specs) {
    auto it = files.find(s.name);
    if (it == files.end()) {
      if (!random_input)
        throw Error("missing input '" + s.name + "' (" + dims_to_string(s.dims) + " " + std::string(to_string(s.type)) +
                    "): pass --input " + s.name + "=FILE.npy or --random-input");
      in[s.name] = random_run_tensor(s, rng);
      continue;
    }
    HostTensor t = read_npy(it->second);
    if (t.type != s.type)
      throw Error(it->second + ": input '" + s.name + "' wants " + std::string(to_string(s.type)) + " (" +
                  npy_descr(s.type) + "), the file holds " + std::string(to_string(t.type)) + " (" + npy_descr(t.type) + ")");
    if (t.dims != s.dims)
      throw Error(it->second + ": input '" + s.name + "' wants shape " + dims_to_string(s.dims) + ", the file holds " +
                  dims_to_string(t.dims));
    t.name = s.name;
    in[s.name] = std::move(t);
  }
  return in;
}

// "a/b:0" -> "a_b_0": only [A-Za-z0-9_.-] survive; "" and "."/".." become "_".
std::string sanitize_file_name(const std::string& name) {
  std::string s;
  for (char c : name) s += (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-') ? c : '_';
  if (s.empty() || s == "." || s == "..") s = "_" + s;
  return s;
}

// All files go to temporary names first and are renamed only when all were written, so a failure
// leaves no partial set.
std::vector<std::string> write_run_outputs(const TensorMap& outputs, const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir)) throw Error(dir + ": cannot create the output folder (" + ec.message() + ")");
  if (::access(dir.c_str(), W_OK) != 0) throw Error(dir + ": the output folder is not writable");
  std::vector<std::pair<std::string, std::string>> done;  // (temp, final)
  std::map<std::string, std::string> taken;
  try {
    for (const auto& [name, t] : outputs) {
      std::string file = sanitize_file_name(name);
      if (taken.count(file)) throw Error("outputs '" + taken[file] + "' and '" + name + "' both map to " + file + ".npy");
      taken[file] = name;
      std::string final_path = (fs::path(dir) / (file + ".npy")).string();
      std::string tmp = final_path + ".part" + std::to_string(::getpid()) + ".npy";
      write_npy(tmp, t);
      done.push_back({tmp, final_path});
    }
  } catch (...) {
    for (auto& [tmp, f] : done) std::remove(tmp.c_str());
    throw;
  }
  std::vector<std::string> paths;
  for (auto& [tmp, f] : done) {
    if (std::rename(tmp.c_str(), f.c_str()) != 0) throw Error(f + ": cannot rename into place");
    paths.push_back(f);
  }
  return paths;
}

void print_run_report(const std::string& model, const std::string& backend, const TensorMap& out,
                      const std::vector<std::string>& paths, const std::string& summary, const std::string& note,
                      bool json) {
  if (!json) {
    size_t i = 0;
    for (const auto& [name, t] : out)
      std::printf("%s: %s %s -> %s\n", name.c_str(), dims_to_string(t.dims).c_str(), std::string(to_string(t.type)).c_str(),
                  paths[i++].c_str());
    if (!summary.empty()) std::printf("%s\n", summary.c_str());
    if (!note.empty()) std::printf("%s\n", note.c_str());
    return;
  }
  nlohmann::ordered_json j;
  j["schema"] = "tandem/run/v1";  // key names shared by every tandem JSON document (docs/json.md)
  j["model"] = model;
  j["backend"] = backend;
  j["outputs"] = nlohmann::ordered_json::array();
  size_t i = 0;
  for (const auto& [name, t] : out)
    j["outputs"].push_back({{"name", name}, {"shape", t.dims}, {"type", std::string(to_string(t.type))}, {"file", paths[i++]}});
  if (!summary.empty()) j["summary"] = summary;
  if (!note.empty()) j["note"] = note;
  std::printf("%s\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
}

// The whole `tandem run` for an ONNX model. Returns the exit code.
int run_onnx_model(const RunArgs& a) {
  if (a.output_dir.empty()) throw Error("--output-dir is required");
  ImportOptions io;
  for (const std::string& s : a.shapes) io.shapes.push_back(parse_shape_arg(s));
  for (const std::string& s : a.input_values) io.input_values.push_back(parse_input_value_arg(s));
  std::vector<InputSpec> specs;
  std::vector<std::string> output_names;
  std::unique_ptr<Executor> ex;
  std::map<std::string, std::vector<int64_t>> fixed;  // shape-value inputs: their values by default
  {
    Network net = import_onnx(a.model, io);  // dropped once compiled: weights live in the kernels
    fixed = net.model.input_values;
    for (TensorId t : net.inputs) specs.push_back({net.tensors[t].name, net.tensors[t].type, net.tensors[t].dims});
    ExecOptions opt;
    opt.threads = a.threads;
    ex = make_cpu_executor(net, opt);
  }
  // A shape-value input not given by --input takes the values fixed at import.
  std::vector<InputSpec> loaded, defaulted;
  for (const InputSpec& s : specs) {
    const bool given = std::any_of(a.inputs.begin(), a.inputs.end(), [&](const std::string& i) { return i.rfind(s.name + "=", 0) == 0; });
    (fixed.count(s.name) && !given ? defaulted : loaded).push_back(s);
  }
  TensorMap in = load_run_inputs(loaded, a.inputs, a.random_input, a.seed);
  for (const InputSpec& s : defaulted) in[s.name] = input_values_tensor(s.name, s.type, s.dims, fixed.at(s.name));
  TensorMap out = ex->run(in);
  std::vector<std::string> paths = write_run_outputs(out, a.output_dir);
  print_run_report(a.model, "cpu", out, paths, "", "", a.json);
  return 0;
}

// Engine files (tandem build / build-dla) run through the engine runtime: cmd_bench.cpp.
int run_engine_file(const std::string& engine, const std::vector<std::string>& shapes,
                    const std::vector<std::string>& inputs, bool random_input, uint64_t seed,
                    const std::string& output_dir, int threads, const std::string& backend, bool json);

namespace {
RegisterCommand reg(60, "run", [](CLI::App& app) {
  auto* sub = app.add_subcommand("run", "Run a model (CPU) or an engine (CPU or CUDA): .npy inputs in, one .npy per output out");
  auto args = std::make_shared<RunArgs>();
  sub->add_option("model", args->model, "model.onnx or model.engine")->required();
  add_shape_option(sub, args->shapes);
  add_input_value_option(sub, args->input_values);
  auto* in = sub->add_option("--input", args->inputs, "NAME=FILE.npy (repeatable)");
  auto* rnd = sub->add_flag("--random-input", args->random_input,
                            "Seeded random data for inputs not given: floats in [-1,1), integers in [0,10)");
  sub->add_option("--seed", args->seed, "Seed for --random-input (default 0)");
  sub->add_option("--output-dir", args->output_dir, "Folder for <output>.npy files (created)")->required();
  sub->add_option("--threads", args->threads, "CPU threads (default: all cores)")->check(CLI::NonNegativeNumber);
  add_backend_option(sub, args->backend);
  sub->add_flag("--json", args->json, "one JSON document on stdout (docs/json.md)");
  (void)in;
  (void)rnd;
  return std::function<int()>([args] {
    const bool engine = args->model.size() > 7 && args->model.compare(args->model.size() - 7, 7, ".engine") == 0;
    if (engine && !args->input_values.empty())
      throw Error(fmt::format("--input-value {}: {} is an engine; its shape-value inputs were fixed when it was built",
                              args->input_values.front(), args->model));
    if (engine)
      return run_engine_file(args->model, args->shapes, args->inputs, args->random_input, args->seed,
                             args->output_dir, args->threads, args->backend, args->json);
    if (args->backend != "cpu")
      throw Error(fmt::format("--backend {}: ONNX models run on the CPU backend; build an engine to run it on {}",
                              args->backend, args->backend));
    return run_onnx_model(*args);
  });
});
}  // namespace

}  // namespace tandem::cli
