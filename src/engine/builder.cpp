// build_engine / build_dla_engine: ONNX -> plan -> calibration -> passes -> tactics -> engine file.
#include "tandem/builder.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <random>
#include <set>
#include <thread>

#include "engine/internal.h"
#include "engine/passes.h"
#include "tandem/backend.h"
#include "tandem/dla.h"
#include "tandem/engine.h"
#include "tandem/onnx.h"
#include "tandem/quant.h"
#include "tandem/runtime.h"

namespace tandem {

namespace fs = std::filesystem;

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void log(const BuildOptions& o, const std::string& s) {
  if (o.verbose) std::fprintf(stderr, "%s\n", s.c_str());
}

std::string utc_now() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

bool is_image(const fs::path& p) {
  std::string e = p.extension().string();
  for (auto& c : e) c = char(std::tolower(static_cast<unsigned char>(c)));
  return e == ".jpg" || e == ".jpeg" || e == ".png";
}

// Digest of what calibration reads (file names and contents, or the caller's batcher id), for the
// cache key.
std::string calibration_digest(const BuildOptions& o) {
  std::string d;
  const auto& c = o.calibration;
  if (o.batcher) {
    d += "batcher:" + o.batcher_id + "\n";
  } else {
    if (!c.images_dir.empty()) {
      std::vector<fs::path> files;
      for (const auto& de : fs::directory_iterator(c.images_dir))
        if (de.is_regular_file() && is_image(de.path())) files.push_back(de.path());
      std::sort(files.begin(), files.end());
      for (const auto& f : files) d += f.filename().string() + ":" + sha256_file_hex(f.string()) + "\n";
    }
    if (!c.npy.empty()) d += "npy:" + sha256_file_hex(c.npy) + "\n";
  }
  // A calibration cache defines the scales only when no data is given (else the data does, and
  // the cache is what the first build wrote from it).
  if (!c.any() && !o.batcher && !o.calibration_cache.empty() && fs::exists(o.calibration_cache))
    d += "calibration-cache:" + sha256_file_hex(o.calibration_cache) + "\n";
  return sha256_hex(d.data(), d.size());
}

std::string cache_key(const std::string& model_sha, const BuildOptions& o) {
  std::string k = fmt::format("tandem-engine-cache\ntool:{}\nformat:{}\nmodel:{}\noptions:{}\ncalibration:{}\ntarget:{}/cpu\n",
                              TANDEM_VERSION, kEngineFormatVersion, model_sha, canonical_options(o),
                              calibration_digest(o), to_string(o.target));
  return sha256_hex(k.data(), k.size()).substr(0, 32);
}

// ---- Plans -------------------------------------------------------------------------------------------
Precision default_gpu_precision(const Layer& l, const BuildOptions& o) {
  bool compute = l.kind == LayerKind::kConvolution || l.kind == LayerKind::kDeconvolution ||
                 l.kind == LayerKind::kMatrixMultiply;
  if (o.int8 && compute) return Precision::kINT8;
  if (o.fp16 || o.int8 || o.fp8) {
    if (l.kind == LayerKind::kConstant || l.kind == LayerKind::kShuffle || l.kind == LayerKind::kGather ||
        l.kind == LayerKind::kCast || l.kind == LayerKind::kSlice || l.kind == LayerKind::kConcatenation)
      return Precision::kUnset;
    return Precision::kFP16;
  }
  return Precision::kUnset;
}

// trtutils' build_engine placement: default device for every layer, per-layer overrides, DLA
// layers checked (with gpu_fallback a failing layer goes to the GPU with a warning, else error).
Plan plan_build(const Network& net, const BuildOptions& o, std::vector<std::string>* warnings) {
  Plan plan;
  plan.gpu_fallback = o.gpu_fallback;
  plan.default_device = o.default_device;
  plan.dla_core = std::max(0, o.dla_core);
  plan.target = o.target;
  plan.fp16 = o.fp16 || o.int8 || o.fp8;
  plan.int8 = o.int8;
  plan.fp8 = o.fp8;
  plan.optimization_level = o.optimization_level;
  plan.check_precision = o.int8 ? DlaPrecision::kInt8 : DlaPrecision::kFp16;
  plan.layers.resize(net.layers.size());
  std::map<std::string, Device> dev_over(o.layer_device.begin(), o.layer_device.end());
  std::map<std::string, Precision> prec_over(o.layer_precision.begin(), o.layer_precision.end());
  for (const auto& [n, d] : o.layer_device)
    if (net.find_layer(n) < 0) throw Error(fmt::format("--layer-device: no layer named '{}'", n));
  for (const auto& [n, d] : o.layer_precision)
    if (net.find_layer(n) < 0) throw Error(fmt::format("--layer-precision: no layer named '{}'", n));
  DlaOptions dopt;
  dopt.target = o.target;
  dopt.precision = o.int8 ? DlaPrecision::kInt8 : DlaPrecision::kFp16;
  int dla = 0;
  for (size_t i = 0; i < net.layers.size(); ++i) {
    const Layer& l = net.layers[i];
    auto& p = plan.layers[i];
    Device want = o.default_device;
    p.reason = "default device";
    if (auto it = dev_over.find(l.name); it != dev_over.end()) { want = it->second; p.reason = "--layer-device"; }
    if (want == Device::kDLA) {
      Support s = check_layer(net, LayerId(i), dopt);
      if (!s.ok) {
        std::string msg = fmt::format("layer '{}' ({}) cannot run on the DLA: {}", l.name, to_string(l.kind), s.reason);
        if (!o.gpu_fallback) throw Error(msg + " (pass --gpu-fallback to run it on the GPU)");
        warnings->push_back(msg + "; GPU fallback");
        want = Device::kGPU;
        p.reason = "GPU fallback: " + s.reason;
      }
    }
    p.device = want;
    if (auto it = prec_over.find(l.name); it != prec_over.end()) {
      p.precision = it->second;
    } else if (want == Device::kDLA) {
      p.precision = o.int8 ? Precision::kINT8 : Precision::kFP16;
    } else {
      p.precision = default_gpu_precision(l, o);
    }
    if (want == Device::kDLA) {
      ++dla;
      if (p.precision != Precision::kINT8 && p.precision != Precision::kFP16)
        throw Error(fmt::format("layer '{}': the DLA runs only fp16 or int8, not {}", l.name, to_string(p.precision)));
    }
  }
  plan.plan_case = dla == 0 ? Plan::Case::kNoDla : dla == int(net.layers.size()) ? Plan::Case::kFullDla : Plan::Case::kMixed;
  // Regions: maximal runs of consecutive DLA layers (one loadable each).
  for (size_t i = 0; i < net.layers.size();) {
    if (plan.layers[i].device != Device::kDLA) { ++i; continue; }
    Region g;
    g.start = int(i);
    while (i < net.layers.size() && plan.layers[i].device == Device::kDLA) {
      plan.layers[i].region = int(plan.regions.size());
      g.layers.push_back(LayerId(i));
      ++i;
    }
    g.end = int(i) - 1;
    g.reason = "consecutive DLA layers";
    plan.regions.push_back(std::move(g));
  }
  engine_detail::recompute_crossings(net, plan);
  return plan;
}

// ---- Calibration --------------------------------------------------------------------------------------
std::unique_ptr<Batcher> make_batcher(const Network& net, const BuildOptions& o, std::vector<std::string>* warnings) {
  auto specs = input_specs(net);
  if (o.batcher) {
    auto b = o.batcher(specs);
    if (!b) throw Error("calibration: the caller's batcher factory returned no batcher");
    return b;
  }
  const auto& c = o.calibration;
  if (!c.synthetic && !c.any() && warnings)
    warnings->push_back(fmt::format("INT8 without calibration data or cache: synthetic data in [{}, {}] is used; "
                                    "scales will not be accurate", c.range_lo, c.range_hi));
  return files_batcher(c, o.threads)(specs);
}

// Calibration runs when an INT8 layer or INT8 IO needs scales, and also when the INT8 flag is on
// and a cache was asked for: TensorRT (and trtutils) calibrate whenever INT8 is enabled.
bool needs_calibration(const BuildOptions& o, const Plan& plan) {
  for (const auto& l : plan.layers)
    if (l.precision == Precision::kINT8) return true;
  for (const auto* v : {&o.input_formats, &o.output_formats})
    for (const auto& f : *v)
      if (f.type == DataType::kInt8) return true;
  if (!o.calibration_cache.empty()) {
    if (!o.int8)
      throw Error(fmt::format("--calibration-cache {}: nothing to calibrate: no layer runs in INT8 (pass --int8)",
                              o.calibration_cache));
    return true;
  }
  return false;
}

// ---- Tactics -----------------------------------------------------------------------------------------
std::string network_signature(const Network& net, const Plan& plan) {
  auto bytes = engine_detail::serialize_network(net);
  for (const auto& l : plan.layers) bytes.push_back(uint8_t(l.precision));
  return "network:" + sha256_hex(bytes.data(), bytes.size()).substr(0, 24);
}

TensorMap random_inputs(const Network& net, const std::map<std::string, float>& scales) {
  TensorMap m;
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> d(0.f, 1.f);
  for (TensorId t : net.inputs) {
    const Tensor& x = net.tensors[t];
    HostTensor h = HostTensor::zeros(x.name, x.type, x.dims);
    if (x.type == DataType::kFloat)
      for (int64_t i = 0; i < h.count(); ++i) h.f32()[i] = d(rng);
    auto fixed = net.model.input_values.find(x.name);  // a shape-value input: its values
    if (fixed != net.model.input_values.end()) h = input_values_tensor(x.name, x.type, x.dims, fixed->second);
    m[x.name] = std::move(h);
  }
  return m;
}

// The backend that tactics are timed on and recorded for (meta.backend, meta.tactics_device_key):
// the CPU backend, whose one real choice is its thread count.
const Backend& timing_backend() { return find_backend("cpu"); }

// Times each thread count on the timing backend (median of runs).
Tactic choose_tactic(const Network& net, const Numerics& num, const std::string& sig, int level, const BuildOptions& o) {
  int hw = int(std::max(1u, std::thread::hardware_concurrency()));
  std::vector<int> cands = {hw};
  if (hw > 1) cands.push_back(1);
  if (hw > 2) cands.push_back(hw / 2);
  if (o.threads > 0) cands = {o.threads};
  // Level 1-3: one timed run per candidate; 4-5: a warm-up and three (median).
  int runs = level >= 4 ? 3 : 1;
  auto inputs = random_inputs(net, num.tensor_scales);
  Tactic best{sig, "", 1e300};
  for (int th : cands) {
    ExecOptions eo;
    eo.threads = th;
    eo.numerics = num;
    auto ex = timing_backend().compile(net, eo, false);
    if (level >= 4) ex->run(inputs);  // warm-up
    std::vector<double> ts;
    for (int r = 0; r < runs; ++r) {
      double t0 = now_s();
      ex->run(inputs);
      ts.push_back((now_s() - t0) * 1e3);
    }
    std::sort(ts.begin(), ts.end());
    double med = ts[ts.size() / 2];
    log(o, fmt::format("  tactic cpu.threads={}: {:.3f} ms", th, med));
    if (med < best.time_ms) best = Tactic{sig, fmt::format("cpu.threads={}", th), med};
  }
  return best;
}

std::string timing_cache_path(const BuildOptions& o) {
  if (o.timing_cache.empty()) return "";
  if (o.timing_cache == "global") return (fs::path(resolve_cache_dir(o.cache_dir)) / "timing.cache").string();
  return o.timing_cache;
}

// ---- IO formats ------------------------------------------------------------------------------------------
// What the first (last) layers consume (produce) without any conversion.
bool native_format(const Network& net, const Plan& plan, TensorId t, bool input, const TensorFormat& f) {
  if (f.layout != TensorLayout::kNCHW) return false;
  if (f.type == net.tensors[t].type) return true;
  std::vector<LayerId> layers;
  if (input) {
    auto cons = net.consumers();
    layers = cons[t];
  } else if (net.tensors[t].producer >= 0) {
    layers = {net.tensors[t].producer};
  }
  if (layers.empty()) return false;
  for (LayerId l : layers) {
    Precision p = plan.layers[l].precision;
    if (!((f.type == DataType::kInt8 && p == Precision::kINT8) || (f.type == DataType::kHalf && p == Precision::kFP16)))
      return false;
  }
  return true;
}

std::vector<TensorFormat> io_formats(const Network& net, const Plan& plan, const std::vector<TensorId>& ids,
                                     const std::vector<TensorFormat>& asked, bool input, const BuildOptions& o,
                                     const std::map<std::string, float>& scales) {
  const char* what = input ? "input" : "output";
  for (const auto& f : asked) {
    bool found = false;
    for (TensorId t : ids) found = found || net.tensors[t].name == f.name;
    if (!found) throw Error(fmt::format("--{}-format: the network has no {} named '{}'", what, what, f.name));
  }
  std::vector<TensorFormat> out;
  for (TensorId t : ids) {
    const Tensor& x = net.tensors[t];
    TensorFormat f{x.name, x.type, TensorLayout::kNCHW};
    for (const auto& a : asked)
      if (a.name == x.name) f = a;
    if (f.type != x.type && x.type != DataType::kFloat)
      throw Error(fmt::format("{} '{}' is {}: only fp32 tensors can change type at the engine boundary", what, x.name, to_string(x.type)));
    if (f.layout == TensorLayout::kNHWC && x.dims.size() != 4)
      throw Error(fmt::format("{} '{}': NHWC needs a 4-D tensor, it is {}", what, x.name, dims_to_string(x.dims)));
    if (f.type == DataType::kInt8 && !scales.count(x.name))
      throw Error(fmt::format("{} '{}': int8 IO needs a calibrated scale for the tensor (build with --int8 and calibration data)", what, x.name));
    if (o.direct_io && !native_format(net, plan, t, input, f))
      throw Error(fmt::format("direct IO: {} '{}' asked as {} {} but the engine's {} layer works in {} {}; "
                              "that needs a reformat, which direct IO forbids",
                              what, x.name, to_string(f.type), to_string(f.layout), input ? "first" : "last",
                              to_string(x.type), "nchw"));
    out.push_back(f);
  }
  return out;
}

void check_model_path(const std::string& p) {
  std::error_code ec;
  if (!fs::exists(p, ec)) throw Error(fmt::format("{}: no such ONNX model", p));
  if (fs::is_directory(p, ec)) throw Error(fmt::format("{}: is a folder, not an ONNX model", p));
  if (fs::path(p).extension() != ".onnx") throw Error(fmt::format("{}: expected a .onnx file", p));
}

void copy_atomic(const std::string& from, const std::string& to) {
  auto bytes = engine_detail::read_file_bytes(from);
  engine_detail::write_file_atomic(to, bytes.data(), bytes.size());
}

// build_dla_engine's plan (the seed's or the graph strategy), with trtutils' verbose output.
Plan plan_dla_build(const Network& net, const BuildOptions& o) {
  PlanOptions po;
  po.strategy = o.strategy;
  po.dla.target = o.target;
  po.dla.precision = o.dla_precision;
  po.dla.verbose_layers = po.dla.verbose_chunks = o.verbose;
  po.max_chunks = o.max_chunks;
  po.min_layers = o.min_layers;
  po.dla_core = std::max(0, o.dla_core);
  po.optimization_level = o.optimization_level;
  po.fp8 = o.fp8;
  po.layer_device = o.layer_device;
  po.layer_precision = o.layer_precision;
  Plan plan = make_plan(net, po);
  // No DLA layer kept: trtutils still builds with FP16 and INT8 allowed (and calibrates), so the
  // builder chooses per layer as `build --fp16 --int8` does; an explicit per-layer precision stays.
  if (plan.plan_case == Plan::Case::kNoDla) {
    for (size_t i = 0; i < net.layers.size(); ++i) {
      auto& p = plan.layers[i];
      if (p.precision != Precision::kUnset) continue;
      p.precision = default_gpu_precision(net.layers[i], o);
      if (p.precision != Precision::kUnset)
        p.reason += fmt::format(" ({} chosen by the builder: FP16 and INT8 allowed)", to_string(p.precision));
    }
  }
  if (o.verbose) {
    std::fprintf(stderr, "Model can run fully on DLA: %s\n", plan.plan_case == Plan::Case::kFullDla ? "True" : "False");
    for (size_t i = 0; i < net.layers.size(); ++i) {
      const auto& p = plan.layers[i];
      std::fprintf(stderr, "Layer %zu: %s, %s, %s\n", i, net.layers[i].name.c_str(),
                   p.device == Device::kDLA ? "DLA" : "GPU",
                   p.precision == Precision::kUnset ? "unset (FP32 data movement)" : std::string(to_string(p.precision)).c_str());
    }
  }
  return plan;
}

// INT8 calibration of the built network's tensors; empty when nothing needs scales.
std::map<std::string, float> calibrate_for_build(const Network& net, const Plan& plan, const BuildOptions& o,
                                                 std::vector<std::string>* warnings) {
  if (!needs_calibration(o, plan)) return {};
  double tc = now_s();
  if (!net.model.qdq_scales.empty()) {  // explicit quantization: no calibration (TensorRT's rule)
    std::map<std::string, float> s = model_scales(net);
    log(o, fmt::format("calibration: none, {} scales from the model's Q/DQ nodes", s.size()));
    return s;
  }
  bool have_cache = !o.calibration_cache.empty() && fs::exists(o.calibration_cache);
  auto batcher = make_batcher(net, o, have_cache ? nullptr : warnings);
  CalibrateOptions co;
  co.threads = o.threads;
  co.backend = o.calibration_backend;
  co.algorithm = o.calibration_algorithm;
  co.cache_path = o.calibration_cache;
  co.progress = o.verbose;
  co.trt_version = dla_target_info(o.target).calibration_version;
  CalibrationResult cr = calibrate(net, plan, *batcher, co);
  log(o, fmt::format("calibration: {} tensors, {} ({:.2f} s)", cr.scales.size(),
                     cr.from_cache ? "from " + o.calibration_cache : fmt::format("{} batches", cr.batches), now_s() - tc));
  return cr.scales;
}

// Weights read only by INT8 convolutions are stored quantized (per output channel).
std::vector<WeightsId> int8_weight_ids(const Network& net, const Plan& plan) {
  std::map<WeightsId, bool> all_int8;
  auto mark = [&](WeightsId w, bool q) {
    if (w < 0) return;
    auto it = all_int8.find(w);
    all_int8[w] = (it == all_int8.end() ? true : it->second) && q;
  };
  for (size_t i = 0; i < net.layers.size(); ++i) {
    const Layer& l = net.layers[i];
    if (auto* c = std::get_if<ConvolutionParams>(&l.params)) {
      mark(c->kernel_weights, l.kind == LayerKind::kConvolution && plan.layers[i].precision == Precision::kINT8);
      mark(c->bias_weights, false);
    } else if (auto* s = std::get_if<ScaleParams>(&l.params)) {
      mark(s->scale, false); mark(s->shift, false); mark(s->power, false);
    } else if (auto* k = std::get_if<ConstantParams>(&l.params)) {
      mark(k->weights, false);
    }
  }
  std::vector<WeightsId> out;
  for (const auto& [w, q] : all_int8)
    if (q && net.weights[w].type == DataType::kFloat) out.push_back(w);
  return out;
}

// The tactic for this network and plan, through the timing cache; *device: where it was timed.
Tactic tactic_for_build(const Network& net, const Plan& plan, const Numerics& num, const BuildOptions& o,
                        std::string* device) {
  std::string sig = network_signature(net, plan);
  if (o.optimization_level <= 0) return Tactic{sig, "cpu.threads=default", 0};
  std::string tpath = timing_cache_path(o);
  std::string dev = timing_backend().device_key();
  *device = dev;
  TimingCache tcache;
  tcache.device_key = dev;
  if (!tpath.empty()) tcache = TimingCache::read(tpath, dev, o.ignore_timing_mismatch);
  if (auto it = tcache.entries.find(sig); it != tcache.entries.end()) {
    *device = tcache.device_key;
    log(o, fmt::format("timing cache hit: {} -> {} ({:.3f} ms)", sig, it->second.name, it->second.time_ms));
    return it->second;
  }
  double tt = now_s();
  Tactic tactic = choose_tactic(net, num, sig, o.optimization_level, o);
  log(o, fmt::format("timing: {} -> {} ({:.3f} ms; timed in {:.2f} s)", sig, tactic.name, tactic.time_ms, now_s() - tt));
  if (!tpath.empty()) {
    tcache.entries[sig] = tactic;
    tcache.merge_write(tpath);
  }
  return tactic;
}

BuildResult do_build(const std::string& onnx, const std::string& output, const BuildOptions& o,
                     const std::string& model_sha, bool dla_build) {
  BuildResult res;
  double t0 = now_s();
  ImportOptions io;
  io.shapes = o.shapes;
  io.input_values = o.input_values;
  for (const auto& h : o.hooks) io.hooks.push_back(h.fn);
  Network net = import_onnx(onnx, io);
  log(o, fmt::format("imported {}: {} layers, {} tensors ({:.2f} s)", onnx, net.layers.size(), net.tensors.size(), now_s() - t0));
  std::string why = cpu_unsupported_reason(net);
  if (!why.empty()) throw Error(fmt::format("{}: no implementation for a layer: {}", onnx, why));

  Plan plan = dla_build ? plan_dla_build(net, o) : plan_build(net, o, &res.warnings);
  for (auto& l : plan.layers)
    if (l.precision == Precision::kFP8) {
      l.precision = Precision::kFP16;
      l.reason += " (fp8 emulated as fp16 on the CPU backend)";
    }
  {
    int dla_n = 0, regions = 0;
    for (const auto& l : plan.layers) dla_n += l.device == Device::kDLA;
    for (const auto& g : plan.regions) regions += g.on_dla && !g.layers.empty();
    log(o, fmt::format("plan: {} DLA layers, {} GPU layers, {} DLA regions", dla_n, int(plan.layers.size()) - dla_n, regions));
    res.planned_dla_layers = dla_n;
  }

  // Calibration runs on the imported network, so names match TensorRT's calibration cache.
  std::map<std::string, float> calib_scales = calibrate_for_build(net, plan, o, &res.warnings);
  bool any_int8 = false;
  for (const auto& l : plan.layers) any_int8 = any_int8 || l.precision == Precision::kINT8;

  EngineContents e;
  if (o.passes) {
    auto rep = engine_detail::run_passes(net, plan);
    e.meta.fusions = rep.fusions;
    log(o, fmt::format("passes: {} scale folds, {} identities dropped, {} constants folded, {} activation marks",
                       rep.folded_scales, rep.dropped, rep.folded_constants, rep.marked));
  }
  Numerics num;
  num.layer_precision.reserve(plan.layers.size());
  for (const auto& l : plan.layers) num.layer_precision.push_back(l.precision);
  if (any_int8) num = make_numerics(net, plan, calib_scales);
  std::map<std::string, float> scales = num.tensor_scales;
  auto add_io_scale = [&](const std::vector<TensorFormat>& fs_) {
    for (const auto& f : fs_)
      if (f.type == DataType::kInt8 && !scales.count(f.name) && calib_scales.count(f.name)) scales[f.name] = calib_scales[f.name];
  };
  add_io_scale(o.input_formats);
  add_io_scale(o.output_formats);
  e.input_formats = io_formats(net, plan, net.inputs, o.input_formats, true, o, scales);
  e.output_formats = io_formats(net, plan, net.outputs, o.output_formats, false, o, scales);
  e.int8_weights = int8_weight_ids(net, plan);
  e.tactics.push_back(tactic_for_build(net, plan, num, o, &e.meta.tactics_device_key));
  for (const auto& l : plan.layers) (l.device == Device::kDLA ? res.dla_layers : res.gpu_layers)++;

  e.network = std::move(net);
  e.plan = std::move(plan);
  e.scales = std::move(scales);
  e.meta.tool_version = TANDEM_VERSION;
  e.meta.model_path = onnx;
  e.meta.model_sha256 = model_sha;
  e.meta.target = std::string(to_string(o.target));
  e.meta.backend = timing_backend().name();
  e.meta.options_json = canonical_options(o);
  e.meta.created_utc = utc_now();
  for (auto& w : e.plan.warnings) res.warnings.push_back(w);
  auto bytes = serialize_engine(e);
  engine_detail::write_file_atomic(output, bytes.data(), bytes.size());
  res.engine_bytes = bytes.size();
  res.engine_path = output;
  return res;
}

BuildResult build_any(const std::string& onnx, const std::string& output, const BuildOptions& o, bool dla) {
  double t0 = now_s();
  validate(o);
  check_model_path(onnx);
  if (output.empty()) throw Error("build: no output path (-o)");
  std::string model_sha = sha256_file_hex(onnx);
  BuildResult res;
  if (!o.cache) {
    res = do_build(onnx, output, o, model_sha, dla);
  } else {
    BuildOptions key_opt = o;
    std::string key = cache_key(model_sha, key_opt) + (dla ? "d" : "g");
    fs::path dir = fs::path(resolve_cache_dir(o.cache_dir)) / "engines";
    std::string entry = (dir / (key + ".engine")).string();
    engine_detail::FileLock lock((dir / (key + ".lock")).string());
    bool hit = false;
    std::error_code ec;
    if (fs::exists(entry, ec)) {
      try {
        auto bytes = engine_detail::read_file_bytes(entry);
        deserialize_engine(bytes.data(), bytes.size(), entry);  // validate before use
        engine_detail::write_file_atomic(output, bytes.data(), bytes.size());
        hit = true;
        res.engine_bytes = bytes.size();
        res.engine_path = output;
      } catch (const Error& err) {
        std::fprintf(stderr, "engine cache: bad entry, rebuilding: %s\n", err.what());
      }
    }
    if (hit) {
      std::fprintf(stderr, "engine cache hit: %s\n", key.c_str());
      auto e = Engine::load(output);
      for (const auto& l : e->plan().layers) (l.device == Device::kDLA ? res.dla_layers : res.gpu_layers)++;
    } else {
      std::fprintf(stderr, "engine cache miss: %s\n", key.c_str());
      res = do_build(onnx, output, o, model_sha, dla);
      copy_atomic(output, entry);
    }
    res.cache_hit = hit;
    res.cache_key = key;
  }
  res.seconds = now_s() - t0;
  for (const auto& w : res.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
  return res;
}

}  // namespace

void validate(const BuildOptions& o) {
  if (o.optimization_level < 0 || o.optimization_level > 5)
    throw Error(fmt::format("--optimization-level {}: must be in 0..5", o.optimization_level));
  if (!(o.workspace_gib > 0)) throw Error(fmt::format("--workspace {}: must be > 0 GiB", o.workspace_gib));
  if (o.dla_core < -1 || o.dla_core > 1) throw Error(fmt::format("--dla-core {}: must be 0 or 1", o.dla_core));
  if (o.device < 0) throw Error(fmt::format("--device {}: must be >= 0", o.device));
  const auto& c = o.calibration;
  int sources = !c.images_dir.empty() + !c.npy.empty() + c.synthetic;
  if (sources > 1) throw Error("calibration: give one of --calibration-dir, --calibration-npy, --synthetic-calibration");
  if (c.batch_size < 1) throw Error(fmt::format("--batch-size {}: must be >= 1", c.batch_size));
  if (c.num_batches < 1) throw Error(fmt::format("--num-batches {}: must be >= 1", c.num_batches));
  if (c.max_images < 0) throw Error(fmt::format("--max-images {}: must be >= 0", c.max_images));
  if (c.order != "NCHW" && c.order != "NHWC" && c.order != "nchw" && c.order != "nhwc")
    throw Error(fmt::format("--data-order {}: must be NCHW or NHWC", c.order));
  if (c.resize_method != "letterbox" && c.resize_method != "linear")
    throw Error(fmt::format("--resize-method {}: must be letterbox or linear", c.resize_method));
  if (!(c.range_lo < c.range_hi)) throw Error(fmt::format("--input-scale {} {}: low must be below high", c.range_lo, c.range_hi));
  std::error_code ec;
  if (!c.images_dir.empty() && !fs::is_directory(c.images_dir, ec))
    throw Error(fmt::format("--calibration-dir {}: no such folder", c.images_dir));
  if (!c.npy.empty() && !fs::is_regular_file(c.npy, ec)) throw Error(fmt::format("--calibration-npy {}: no such file", c.npy));
  if (!o.calibration_cache.empty() && fs::is_directory(o.calibration_cache, ec))
    throw Error(fmt::format("--calibration-cache {}: is a folder", o.calibration_cache));
  if (!o.timing_cache.empty() && o.timing_cache != "global" && fs::is_directory(o.timing_cache, ec))
    throw Error(fmt::format("--timing-cache {}: is a folder (give a file path or 'global')", o.timing_cache));
  for (const auto& [n, d] : o.shapes) {
    if (n.empty()) throw Error("--shape: empty input name");
    for (auto x : d)
      if (x < 0) throw Error(fmt::format("--shape {}:{}: dims must not be negative", n, dims_to_string(d)));  // 0: empty
  }
  std::set<std::string> seen;
  for (const auto* v : {&o.input_formats, &o.output_formats})
    for (const auto& f : *v) {
      if (!seen.insert(f.name).second) throw Error(fmt::format("tensor format for '{}' given twice", f.name));
      if (f.type != DataType::kFloat && f.type != DataType::kHalf && f.type != DataType::kInt8 && f.type != DataType::kUInt8)
        throw Error(fmt::format("tensor format '{}': type {} is not fp32, fp16, int8 or uint8", f.name, to_string(f.type)));
    }
  std::set<std::string> hook_names;
  for (const auto& h : o.hooks) {
    if (h.name.empty() || !h.fn) throw Error("hooks: every hook needs a name and a function");
    if (!hook_names.insert(h.name).second) throw Error(fmt::format("hooks: two hooks named '{}'", h.name));
  }
  if (o.default_device == Device::kDLA && !(o.fp16 || o.int8 || o.fp8))
    throw Error("--default-device dla: the DLA runs fp16 or int8 only; pass --fp16 or --int8");
  for (const auto& [n, p] : o.layer_precision)
    if (n.empty()) throw Error("--layer-precision: empty layer name");
  if (o.threads < 0) throw Error(fmt::format("--threads {}: must be >= 0", o.threads));
  if (o.cache && o.batcher && o.batcher_id.empty())
    throw Error("engine cache with a caller's batcher: set batcher_id to name the calibration data (it keys the cache)");
  if (!o.profiling_verbosity.empty() && o.profiling_verbosity != "layer_names_only" &&
      o.profiling_verbosity != "detailed" && o.profiling_verbosity != "none")
    throw Error(fmt::format("--profiling-verbosity {}: must be layer_names_only, detailed or none", o.profiling_verbosity));
  if (o.tiling_optimization_level < -1 || o.tiling_optimization_level > 3)
    throw Error(fmt::format("--tiling-optimization-level {}: must be 0..3 (none, fast, moderate, full)", o.tiling_optimization_level));
  if (o.tiling_l2_cache_limit < -1)
    throw Error(fmt::format("--tiling-l2-cache-limit {}: must be >= 0 bytes", o.tiling_l2_cache_limit));
}

std::string canonical_options(const BuildOptions& o) {
  nlohmann::json j;  // std::map-backed: keys sorted
  j["default_device"] = std::string(to_string(o.default_device));
  j["dla_core"] = o.dla_core;
  j["gpu_fallback"] = o.gpu_fallback;
  j["max_chunks"] = o.max_chunks;
  j["min_layers"] = o.min_layers;
  j["strategy"] = std::string(to_string(o.strategy));
  j["target"] = std::string(to_string(o.target));
  nlohmann::json lp = nlohmann::json::array(), ld = nlohmann::json::array();
  for (const auto& [n, p] : o.layer_precision) lp.push_back({n, std::string(to_string(p))});
  for (const auto& [n, d] : o.layer_device) ld.push_back({n, std::string(to_string(d))});
  j["layer_precision"] = lp;
  j["layer_device"] = ld;
  j["fp16"] = o.fp16;
  j["int8"] = o.int8;
  j["fp8"] = o.fp8;
  j["workspace_gib"] = o.workspace_gib;
  j["optimization_level"] = o.optimization_level;
  j["direct_io"] = o.direct_io;
  j["prefer_precision_constraints"] = o.prefer_precision_constraints;
  j["reject_empty_algorithms"] = o.reject_empty_algorithms;
  j["ignore_timing_mismatch"] = o.ignore_timing_mismatch;
  nlohmann::json sh = nlohmann::json::array();
  for (const auto& [n, d] : o.shapes) sh.push_back({n, dims_to_string(d)});
  j["shapes"] = sh;
  if (!o.input_values.empty()) j["input_values"] = o.input_values;  // absent when none: old cache keys stay
  auto fmts = [](const std::vector<TensorFormat>& v) {
    nlohmann::json a = nlohmann::json::array();
    for (const auto& f : v) a.push_back({f.name, std::string(to_string(f.type)), std::string(to_string(f.layout))});
    return a;
  };
  j["input_formats"] = fmts(o.input_formats);
  j["output_formats"] = fmts(o.output_formats);
  nlohmann::json hooks = nlohmann::json::array();
  for (const auto& h : o.hooks) hooks.push_back(h.name);
  j["hooks"] = hooks;
  const auto& c = o.calibration;
  j["calibration"] = {{"source", !c.images_dir.empty() ? "images" : !c.npy.empty() ? "npy" : c.synthetic ? "synthetic" : "none"},
                      {"batch_size", c.batch_size}, {"num_batches", c.num_batches}, {"max_images", c.max_images},
                      {"order", c.order}, {"resize_method", c.resize_method}, {"range", {c.range_lo, c.range_hi}},
                      {"channels", c.bgr ? "bgr" : "rgb"}, {"last_batch", std::string(to_string(c.last))}};
  if (o.batcher) j["calibration"]["source"] = "batcher:" + o.batcher_id;
  j["profiling_verbosity"] = o.profiling_verbosity;
  j["tiling_optimization_level"] = o.tiling_optimization_level;
  j["tiling_l2_cache_limit"] = o.tiling_l2_cache_limit;
  j["calibration_cache"] = !o.calibration_cache.empty();
  j["passes"] = o.passes;
  // Keys only when not the default, so engine cache keys of earlier builds stay valid.
  if (o.dla_precision != DlaPrecision::kInt8) j["dla_precision"] = std::string(to_string(o.dla_precision));
  if (o.calibration_algorithm != CalibAlgorithm::kEntropy)
    j["calibration_algorithm"] = std::string(to_string(o.calibration_algorithm));
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

BatcherFactory batcher_for(std::shared_ptr<Batcher> batcher) {
  return [batcher](const std::vector<InputSpec>&) -> std::unique_ptr<Batcher> {
    // The caller keeps ownership; calibration borrows it for the build.
    struct Borrowed final : Batcher {
      std::shared_ptr<Batcher> b;
      explicit Borrowed(std::shared_ptr<Batcher> x) : b(std::move(x)) {}
      int batch_size() const override { return b->batch_size(); }
      int num_batches() const override { return b->num_batches(); }
      bool next(TensorMap* out) override { return b->next(out); }
      void reset() override { b->reset(); }
    };
    if (!batcher) throw Error("calibration: batcher_for() was given no batcher");
    return std::make_unique<Borrowed>(batcher);
  };
}

BatcherFactory files_batcher(const CalibrationData& c, int threads) {
  return [c, threads](const std::vector<InputSpec>& specs) -> std::unique_ptr<Batcher> {
    if (!c.images_dir.empty()) {
      ImageBatcherOptions io;
      io.dir = c.images_dir;
      io.nchw = c.order == "NCHW" || c.order == "nchw";
      if (!parse_resize_method(c.resize_method, &io.resize)) throw Error("--resize-method: " + c.resize_method);
      io.lo = c.range_lo;
      io.hi = c.range_hi;
      io.bgr = c.bgr;
      io.last = c.last;
      io.max_images = c.max_images;
      io.threads = threads;
      for (const auto& s : specs)
        if (s.dims.size() == 4) io.channels = int(io.nchw ? s.dims[1] : s.dims[3]);
      return make_image_batcher(io, specs, c.batch_size);
    }
    if (!c.npy.empty()) {
      if (specs.size() != 1) throw Error("--calibration-npy: the model has several inputs; use the API's npy batcher per input");
      return make_npy_batcher({{specs[0].name, c.npy}}, specs, c.batch_size, c.last);
    }
    return make_synthetic_batcher(specs, c.batch_size, c.num_batches, c.range_lo, c.range_hi, 0);
  };
}

BuildResult build_engine(const std::string& onnx_path, const std::string& output, const BuildOptions& opt) {
  return build_any(onnx_path, output, opt, false);
}

BuildResult build_dla_engine(const std::string& onnx_path, const std::string& output, BuildOptions opt) {
  opt.fp16 = true;
  opt.int8 = true;
  opt.default_device = Device::kDLA;
  opt.gpu_fallback = true;
  if (opt.dla_core < 0) opt.dla_core = 0;
  return build_any(onnx_path, output, opt, true);
}

}  // namespace tandem
