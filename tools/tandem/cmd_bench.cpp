// tandem bench model.engine: latency statistics as trtutils' benchmark_engine reports them.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <numeric>
#include <map>
#include <random>

#include "command.h"
#include "options.h"
#include "run_io.h"
#include "summary.h"
#include "tandem/engine.h"
#include "tandem/npy.h"

namespace tandem::cli {

namespace {
Dims engine_input_dims(const Engine& e, size_t i);
TensorMap random_engine_inputs(const Engine& e, uint64_t seed);
}  // namespace

// `tandem run model.engine`: inputs in the engine's input formats (.npy), outputs in its output
// formats, one .npy per output. Says when DLA layers ran emulated. --random-input draws what
// `tandem run model.onnx` draws for the same --seed (run_io.h), so an engine and its model see the
// same data.
int run_engine_file(const std::string& engine_path, const std::vector<std::string>& shapes,
                    const std::vector<std::string>& inputs, bool random_input, uint64_t seed,
                    const std::string& output_dir, int threads, const std::string& backend, bool json) {
  if (output_dir.empty()) throw Error("--output-dir is required");
  if (!shapes.empty()) throw Error("--shape: an engine's input shapes are fixed at build time (rebuild with --shape)");
  auto engine = Engine::load(engine_path);
  std::map<std::string, std::string> files;
  for (const auto& a : inputs) {
    auto eq = a.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == a.size()) throw Error("--input '" + a + "': expected NAME=FILE.npy");
    files[a.substr(0, eq)] = a.substr(eq + 1);
  }
  const auto& formats = engine->input_formats();
  for (const auto& given : files) {  // not a structured binding: clang 14 cannot capture one in a lambda
    const std::string& name = given.first;
    if (std::none_of(formats.begin(), formats.end(), [&](const TensorFormat& f) { return f.name == name; }))
      throw Error(fmt::format("--input {}={}: the engine has no input '{}'", name, given.second, name));
  }
  const auto& fixed = engine->network().model.input_values;  // shape-value inputs: given or fed by the backend
  std::mt19937_64 rng(seed);
  TensorMap in;
  for (size_t i = 0; i < formats.size(); ++i) {
    const TensorFormat& f = formats[i];
    const Dims want = engine_input_dims(*engine, i);
    auto it = files.find(f.name);
    if (it == files.end()) {
      if (fixed.count(f.name)) continue;
      if (!random_input)
        throw Error(fmt::format("missing input '{}' ({} {} {}): pass --input {}=FILE.npy or --random-input", f.name,
                                dims_to_string(want), to_string(f.type), to_string(f.layout), f.name));
      in[f.name] = random_run_tensor({f.name, f.type, want}, rng);
      continue;
    }
    HostTensor t = read_npy(it->second);
    if (t.type != f.type)
      throw Error(fmt::format("{}: input '{}' wants {}, the file holds {}", it->second, f.name, to_string(f.type), to_string(t.type)));
    if (t.dims != want)
      throw Error(fmt::format("{}: input '{}' wants shape {} ({}), the file holds {}", it->second, f.name,
                              dims_to_string(want), to_string(f.layout), dims_to_string(t.dims)));
    t.name = f.name;
    in[f.name] = std::move(t);
  }
  auto ctx = engine->create_context(threads, backend);
  TensorMap out = ctx->run(in);
  std::vector<std::string> paths = write_run_outputs(out, output_dir);
  print_run_report(engine_path, ctx->backend_name(), out, paths, engine_layers_summary(*engine),
                   engine->emulation_note(backend), json);
  return 0;
}

namespace {

constexpr int kNoProfile = std::numeric_limits<int>::min();  // --profile not given

struct BenchArgs {
  std::string engine;
  int iterations = 100, warmup = 10, threads = 0;
  double warmup_ms = -1, duration_s = 0;
  std::string backend = "cpu";
  bool json = false;
  std::vector<std::string> inputs;
  int profile_top = kNoProfile;  // 0: every step in the table; N: the N slowest
  bool separate_profile_run = false;  // trtexec's spelling; the profile is always a run of its own
};

// A figure rounded to 3 significant digits, printed without an exponent ("1230", "1.23",
// "0.00123"): what the text report shows. JSON carries the unrounded values.
std::string sig3(double v) {
  if (v == 0 || !std::isfinite(v)) return fmt::format("{}", v);
  int mag = int(std::floor(std::log10(std::fabs(v))));
  const double unit = std::pow(10.0, mag - 2);
  const double r = std::round(v / unit) * unit;
  mag = int(std::floor(std::log10(std::fabs(r))));  // 9.996 -> 10.0
  return fmt::format("{:.{}f}", r, std::max(0, 2 - mag));
}

// The medians of the host-to-device / compute / device-to-host parts over the timed runs.
struct SplitMedians {
  double h2d = 0, compute = 0, d2h = 0;
  bool device_copies = false;
};

// The per-step profile, slowest first, with the steps' total.
struct Profile {
  int iterations = 0;
  std::vector<StepTime> steps;
  double total_ms = 0;
};

Profile run_profile(ExecutionContext& ctx, int iterations) {
  Profile p;
  p.iterations = iterations;
  p.steps = ctx.profile(iterations);
  std::stable_sort(p.steps.begin(), p.steps.end(), [](const StepTime& a, const StepTime& b) { return a.ms > b.ms; });
  for (const StepTime& st : p.steps) p.total_ms += st.ms;
  return p;
}

double percent_of(double part, double total) { return total > 0 ? 100.0 * part / total : 0.0; }

nlohmann::ordered_json split_json(const SplitMedians& s) {
  return {{"h2d", s.h2d}, {"compute", s.compute}, {"d2h", s.d2h}};
}

nlohmann::ordered_json profile_json(const Profile& p) {
  nlohmann::ordered_json steps = nlohmann::ordered_json::array();
  for (const StepTime& st : p.steps)
    steps.push_back({{"layer", st.layer}, {"kind", st.kind}, {"ms", st.ms}, {"percent", percent_of(st.ms, p.total_ms)}});
  return {{"iterations", p.iterations}, {"total_ms", p.total_ms}, {"steps", std::move(steps)}};
}

void print_split(const SplitMedians& s, const std::string& backend, int iterations) {
  if (s.device_copies) {
    std::printf("split ms (median of %d runs): host-to-device %s  compute %s  device-to-host %s\n", iterations,
                sig3(s.h2d).c_str(), sig3(s.compute).c_str(), sig3(s.d2h).c_str());
  } else {
    std::printf("split ms (median of %d runs): compute %s (the %s backend copies nothing to or from a device)\n",
                iterations, sig3(s.compute).c_str(), backend.c_str());
  }
}

// The table: the `top` slowest steps (0: all), then one line for the rest and the total.
void print_profile(const Profile& p, int top, const SplitMedians& s) {
  const size_t shown = top > 0 ? std::min(p.steps.size(), size_t(top)) : p.steps.size();
  std::printf("profile: %zu steps, mean of %d runs, slowest first%s\n", p.steps.size(), p.iterations,
              shown < p.steps.size() ? fmt::format(" (top {}; --profile 0 lists all)", shown).c_str() : "");
  size_t kind_w = 4;
  for (size_t i = 0; i < shown; ++i) kind_w = std::max(kind_w, p.steps[i].kind.size());
  std::printf("%10s %6s  %-*s  %s\n", "ms", "%", int(kind_w), "kind", "layer");
  for (size_t i = 0; i < shown; ++i) {
    const StepTime& st = p.steps[i];
    std::printf("%10s %6s  %-*s  %s\n", sig3(st.ms).c_str(), sig3(percent_of(st.ms, p.total_ms)).c_str(), int(kind_w),
                st.kind.c_str(), st.layer.c_str());
  }
  if (shown < p.steps.size()) {
    double rest = 0;
    for (size_t i = shown; i < p.steps.size(); ++i) rest += p.steps[i].ms;
    std::printf("%10s %6s  (%zu more steps)\n", sig3(rest).c_str(), sig3(percent_of(rest, p.total_ms)).c_str(),
                p.steps.size() - shown);
  }
  std::printf("%10s %6s  total of the steps (compute median of the timed runs: %s ms)\n", sig3(p.total_ms).c_str(), "100",
              sig3(s.compute).c_str());
}

// The dims an engine input takes, in its IO layout.
Dims engine_input_dims(const Engine& e, size_t i) {
  Dims d = e.network().tensors[e.network().inputs[i]].dims;
  if (e.input_formats()[i].layout == TensorLayout::kNHWC && d.size() == 4) d = {d[0], d[2], d[3], d[1]};
  return d;
}

// Seeded random inputs in the engine's input formats (floats uniform in [0, 1)).
TensorMap random_engine_inputs(const Engine& e, uint64_t seed) {
  TensorMap m;
  std::mt19937 rng{uint32_t(seed)};
  const Network& net = e.network();
  for (size_t i = 0; i < net.inputs.size(); ++i) {
    const TensorFormat& f = e.input_formats()[i];
    if (net.model.input_values.count(f.name)) continue;  // a shape-value input: the backend feeds its fixed values
    HostTensor h = HostTensor::zeros(f.name, f.type, engine_input_dims(e, i));
    std::uniform_real_distribution<float> u(0.f, 1.f);
    for (int64_t k = 0; k < h.count(); ++k) {
      switch (f.type) {
        case DataType::kFloat: h.f32()[k] = u(rng); break;
        case DataType::kUInt8: h.data[k] = uint8_t(rng() & 0xff); break;
        case DataType::kInt8: h.data[k] = uint8_t(int8_t(int(rng() % 255) - 127)); break;
        case DataType::kHalf:  // zeros
        case DataType::kInt32:
        case DataType::kInt64:
        case DataType::kBool:
        case DataType::kBFloat16: break;
      }
    }
    m[f.name] = std::move(h);
  }
  return m;
}

struct Metric {
  double min, max, mean, median, p90, p95, p99, std, ci95;
};
Metric metric(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  Metric m{};
  size_t n = v.size();
  m.min = v.front();
  m.max = v.back();
  m.mean = std::accumulate(v.begin(), v.end(), 0.0) / double(n);
  m.median = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
  auto pct = [&](double p) {  // linear interpolation, as numpy.percentile
    double idx = p / 100.0 * double(n - 1);
    size_t lo = size_t(std::floor(idx)), hi = std::min(n - 1, lo + 1);
    return v[lo] + (v[hi] - v[lo]) * (idx - double(lo));
  };
  m.p90 = pct(90);
  m.p95 = pct(95);
  m.p99 = pct(99);
  double ss = 0;
  for (double x : v) ss += (x - m.mean) * (x - m.mean);
  m.std = n > 1 ? std::sqrt(ss / double(n - 1)) : 0.0;
  m.ci95 = 1.96 * m.std / std::sqrt(double(n));
  return m;
}

RegisterCommand reg(61, "bench", [](CLI::App& app) {
  auto a = std::make_shared<BenchArgs>();
  auto* sub = app.add_subcommand("bench", "benchmark an engine: latency min/median/mean/p90/p95/p99/max and throughput");
  sub->add_option("engine", a->engine, "model.engine")->required();
  sub->add_option("--iterations,-i", a->iterations, "timed runs")->capture_default_str();
  auto* wu = sub->add_option("--warmup,--warmup-iterations", a->warmup, "untimed runs first")->capture_default_str();
  sub->add_option("--duration", a->duration_s, "trtexec spelling: keep timing runs until this many seconds passed (and --iterations ran)");
  sub->add_option("--warmUp", a->warmup_ms, "trtexec spelling: untimed runs for this many ms first (at least one run)")->excludes(wu);
  sub->add_option("--threads", a->threads, "CPU threads (0: the engine's tuned tactic)")->capture_default_str();
  sub->add_option("--input", a->inputs, "NAME=FILE.npy (default: random data in the engine's input formats)");
  sub->add_flag("--json", a->json, "one JSON document on stdout");
  add_backend_option(sub, a->backend);
  sub->add_option("--profile,--dumpProfile", a->profile_top,
                  "per-layer profile after the timed runs: the N slowest steps (--profile alone: 20; 0: all)")
      ->expected(0, 1)
      ->default_str("20");
  sub->add_flag("--separateProfileRun", a->separate_profile_run,
                "trtexec's spelling, accepted: the profile always runs after the timed runs, never inside them");
  return std::function<int()>([a] {
    if (a->iterations < 1) throw Error(fmt::format("--iterations {}: must be >= 1", a->iterations));
    if (a->duration_s < 0) throw Error(fmt::format("--duration {}: must be >= 0 seconds", a->duration_s));
    if (a->warmup < 0) throw Error(fmt::format("--warmup {}: must be >= 0", a->warmup));
    if (a->profile_top != kNoProfile && a->profile_top < 0) throw Error(fmt::format("--profile {}: must be >= 0 (0: every step)", a->profile_top));
    using clock = std::chrono::steady_clock;
    auto t0 = clock::now();
    auto engine = Engine::load(a->engine);
    double load_ms = std::chrono::duration<double, std::milli>(clock::now() - t0).count();
    // Load leaves the weights' checksum to the first context (docs/engine-format.md): shown apart.
    const auto t1 = clock::now();
    engine->check_weights();
    const double check_ms = std::chrono::duration<double, std::milli>(clock::now() - t1).count();
    auto ctx = engine->create_context(a->threads, a->backend);
    TensorMap inputs = random_engine_inputs(*engine, 0);
    for (const auto& s : a->inputs) {
      auto p = s.find('=');
      if (p == std::string::npos) throw Error(fmt::format("--input '{}': expected NAME=FILE.npy", s));
      HostTensor h = read_npy(s.substr(p + 1));
      h.name = s.substr(0, p);
      if (!inputs.count(h.name)) throw Error(fmt::format("--input '{}': the engine has no input '{}'", s, h.name));
      inputs[h.name] = std::move(h);
    }
    if (a->warmup_ms >= 0) {
      a->warmup = 0;
      const auto w0 = clock::now();
      do {
        ctx->run(inputs);
        ++a->warmup;
      } while (std::chrono::duration<double, std::milli>(clock::now() - w0).count() < a->warmup_ms);
    } else {
      for (int i = 0; i < a->warmup; ++i) ctx->run(inputs);
    }
    std::vector<double> ms, h2d, compute, d2h;
    ms.reserve(size_t(a->iterations));
    const auto t_start = clock::now();
    for (int i = 0; i < a->iterations ||
                    std::chrono::duration<double>(clock::now() - t_start).count() < a->duration_s; ++i) {
      auto s = clock::now();
      ctx->run(inputs);
      ms.push_back(std::chrono::duration<double, std::milli>(clock::now() - s).count());
      const RunSplit sp = ctx->last_run_split();
      h2d.push_back(sp.h2d_ms);
      compute.push_back(sp.compute_ms);
      d2h.push_back(sp.d2h_ms);
    }
    a->iterations = int(ms.size());
    Metric m = metric(ms);
    const SplitMedians split{metric(h2d).median, metric(compute).median, metric(d2h).median,
                             ctx->last_run_split().device_copies};
    // After the timed runs, in runs of its own (trtexec's --separateProfileRun is how it works).
    Profile prof;
    if (a->profile_top != kNoProfile) prof = run_profile(*ctx, a->iterations);
    int64_t batch = 1;
    if (!engine->network().inputs.empty()) {
      const Dims& d = engine->network().tensors[engine->network().inputs[0]].dims;
      if (!d.empty()) batch = d[0];
    }
    double throughput = m.mean > 0 ? double(batch) * 1000.0 / m.mean : 0;
    std::string note = engine->emulation_note(a->backend);
    if (a->json) {
      nlohmann::ordered_json j;
      j["schema"] = "tandem/bench/v1";  // key names shared by every tandem JSON document (docs/json.md)
      j["engine"] = a->engine;
      j["backend"] = ctx->backend_name();
      j["iterations"] = a->iterations;
      j["warmup"] = a->warmup;
      j["batch"] = batch;
      j["load_ms"] = load_ms;
      j["weights_checksum_ms"] = check_ms;
      j["latency_ms"] = {{"min", m.min}, {"median", m.median}, {"mean", m.mean}, {"p90", m.p90}, {"p95", m.p95}, {"p99", m.p99},
                         {"max", m.max}, {"std", m.std}, {"ci95", m.ci95}};
      j["throughput_per_s"] = throughput;
      j["split_ms"] = split_json(split);
      j["device_copies"] = split.device_copies;
      if (!split.device_copies)
        j["split_note"] = fmt::format("the {} backend copies nothing to or from a device: h2d and d2h are 0", ctx->backend_name());
      if (a->profile_top != kNoProfile) j["profile"] = profile_json(prof);
      j["dla_layers"] = engine->dla_layer_count();
      uint64_t wbytes = 0, qbytes = 0;
      for (const auto& w : engine->network().weights) wbytes += w.bytes.size();
      for (WeightsId id : engine->contents().int8_weights) qbytes += engine->network().weights[id].bytes.size();
      j["weights_fp32_bytes"] = wbytes;          // in memory, after passes
      j["weights_int8_stored"] = qbytes;         // of which stored as int8 (a quarter of that on disk)
      j["engine_file_bytes"] = std::filesystem::file_size(a->engine);
      j["dla_emulated"] = engine->dla_layer_count() > 0;
      if (!note.empty()) j["note"] = note;
      std::printf("%s\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    } else {
      std::printf("engine: %s (backend %s, load %s ms; the weights' checksum %s ms at the first context)\n", a->engine.c_str(),
                  ctx->backend_name().c_str(), sig3(load_ms).c_str(), sig3(check_ms).c_str());
      std::printf("iterations: %d (warmup %d), batch %lld\n", a->iterations, a->warmup, (long long)batch);
      std::printf("latency ms: min %s  median %s  mean %s  p90 %s  p95 %s  p99 %s  max %s  (std %s, ci95 %s)\n",
                  sig3(m.min).c_str(), sig3(m.median).c_str(), sig3(m.mean).c_str(), sig3(m.p90).c_str(),
                  sig3(m.p95).c_str(), sig3(m.p99).c_str(), sig3(m.max).c_str(), sig3(m.std).c_str(), sig3(m.ci95).c_str());
      std::printf("throughput: %s inferences/s\n", sig3(throughput).c_str());
      print_split(split, ctx->backend_name(), a->iterations);
      if (a->profile_top != kNoProfile) print_profile(prof, a->profile_top, split);
      std::printf("%s\n", engine_layers_summary(*engine).c_str());
      if (!note.empty()) std::printf("%s\n", note.c_str());
    }
    return 0;
  });
});

}  // namespace
}  // namespace tandem::cli
