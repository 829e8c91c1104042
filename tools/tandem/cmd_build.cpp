// tandem build / build-dla: the seed's build_engine and build_dla_engine.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>

#include "command.h"
#include "options.h"
#include "summary.h"
#include "tandem/engine.h"
#include "tandem/builder.h"
#include "tandem/dla.h"
#include "tandem/onnx.h"

namespace tandem::cli {
namespace {

struct BuildArgs {
  std::string model, output;
  std::vector<std::string> shapes, input_formats, output_formats, layer_precision, layer_device;
  std::vector<std::string> input_values;  // --input-value NAME:V1,V2,...
  std::string default_device = "gpu", strategy = "seed", target = "orin", workspace;
  BatchArgs batch;     // --batch-size, --num-batches, --channels, --last-batch (options.h: shared)
  uint64_t seed = 0;   // of --random-input
  std::vector<float> input_scale;
  std::optional<float> range_lo, range_hi;
  std::string precision = "int8", algorithm = "entropy", mem_pool;
  bool recalibrate = false, fp16_flag = false, int8_flag = false, gpu_fallback_noop = false;
  bool json = false;  // --json: the tandem/build/v1 document instead of the two summary lines
  BuildOptions o;
};

std::pair<std::string, std::string> split_last(const std::string& s, const char* opt) {
  auto p = s.rfind(':');
  if (p == std::string::npos || p == 0 || p + 1 == s.size())
    throw Error(fmt::format("{} '{}': expected LAYER:VALUE", opt, s));
  return {s.substr(0, p), s.substr(p + 1)};
}

void add_common(CLI::App* sub, BuildArgs& a, bool dla) {
  auto& o = a.o;
  sub->add_option("model", a.model, "model.onnx")->required();
  sub->add_option("-o,--output,--saveEngine", a.output, "engine file to write")->required();
  add_shape_option(sub, a.shapes);
  add_input_value_option(sub, a.input_values);
  add_workspace_option(sub, a.workspace);  // recorded; the CPU backend plans its own arena
  sub->add_option("--memPoolSize,--mem-pool-size", a.mem_pool, "trtexec spelling: workspace:N (MiB, or suffix K/M/G)");
  add_calib_cache_option(sub, o.calibration_cache, "TensorRT calibration cache: reused if it exists (--recalibrate: not), written after calibrating",
                         "", false);
  add_recalibrate_flag(sub, a.recalibrate);
  add_calib_dir_option(sub, o.calibration.images_dir);
  sub->add_option("--calib-npy,--calibration-npy", o.calibration.npy, "one .npy of calibration samples [M, ...] for the only input");
  sub->add_flag("--random-input,--synthetic-calibration", o.calibration.synthetic, "seeded random calibration data in [--range, --range-hi]");
  sub->add_option("--seed", a.seed, "seed of the random data (--random-input)")->capture_default_str();
  add_batch_args(sub, a.batch);
  sub->add_option("--max-images", o.calibration.max_images, "use at most N calibration images (0: all)")->capture_default_str();
  add_order_option(sub, o.calibration.order);
  sub->add_option("--resize,--resize-method", o.calibration.resize_method, "letterbox | linear (as in calibrate and compare)")->capture_default_str();
  // The same spelling as calibrate and compare: pixel 0 -> --range, pixel 255 -> --range-hi.
  auto* lo = sub->add_option("--range", a.range_lo, "pixel 0 maps to this value (as in calibrate and compare; default 0)");
  auto* hi = sub->add_option("--range-hi", a.range_hi, "pixel 255 maps to this value (as in calibrate and compare; default 1)");
  sub->add_option("--input-scale", a.input_scale, "LO HI: the same as --range LO --range-hi HI (trtutils' input_scale)")
      ->expected(2)->excludes(lo)->excludes(hi);
  sub->add_option("--algorithm", a.algorithm, "calibration algorithm: entropy | minmax | percentile")->capture_default_str();
  sub->add_option("--timing-cache,--tc", o.timing_cache, "timing cache file, or 'global' (the one in the cache folder)");
  sub->add_option("--input-format", a.input_formats, "NAME:TYPE[:LAYOUT], TYPE fp32|fp16|int8|uint8, LAYOUT nchw|nhwc (repeatable)");
  sub->add_option("--output-format", a.output_formats, "NAME:TYPE[:LAYOUT] (repeatable)");
  sub->add_option("--optimization-level", o.optimization_level, "0..5; 0 skips tactic timing")->capture_default_str();
  sub->add_option("--profiling-verbosity", o.profiling_verbosity,
                  "layer_names_only | detailed | none (recorded; exported as trtexec --profilingVerbosity)");
  sub->add_option("--tiling-optimization-level", o.tiling_optimization_level,
                  "0..3 (recorded; exported as trtexec --tilingOptimizationLevel, TensorRT 10.8+)");
  sub->add_option("--tiling-l2-cache-limit", o.tiling_l2_cache_limit,
                  "bytes (recorded; exported as trtexec --l2LimitForTiling, TensorRT 10.8+)");
  sub->add_flag("--direct-io", o.direct_io, "fail instead of converting IO formats inside the engine");
  sub->add_flag("--prefer-precision-constraints", o.prefer_precision_constraints, "(recorded; tandem always obeys per-layer precisions)");
  sub->add_flag("--reject-empty-algorithms", o.reject_empty_algorithms, "fail when a layer has no implementation");
  sub->add_flag("--ignore-timing-mismatch", o.ignore_timing_mismatch, "use a timing cache made on another device");
  sub->add_flag("--fp8", o.fp8, "allow FP8 (emulated as FP16 on the CPU backend)");
  sub->add_option("--dla-core,--useDLACore", o.dla_core, "DLA core (0 or 1)");
  sub->add_option("--layer-precision", a.layer_precision, "LAYER:fp32|fp16|int8|fp8 (repeatable)");
  sub->add_option("--layer-device", a.layer_device, "LAYER:gpu|dla (repeatable)");
  sub->add_option("--target", a.target, "DLA target: orin | xavier")->capture_default_str();
  sub->add_option("--device", o.device, "CUDA device index (recorded)")->capture_default_str();
  sub->add_flag("--cache", o.cache, "use the engine cache (keyed by model content + options + tool version)");
  sub->add_option("--cache-dir", o.cache_dir, "engine cache folder (default: $TANDEM_CACHE_DIR, $XDG_CACHE_HOME/tandem, ~/.cache/tandem)");
  sub->add_flag("--no-passes", [&o](int64_t) { o.passes = false; }, "skip build-time passes (BN folding, Identity removal, constant folding)");
  sub->add_option("--threads", o.threads, "CPU threads for calibration and timing (0: all)")->capture_default_str();
  sub->add_flag("-v,--verbose", o.verbose, "log each build stage");
  sub->add_flag("--json", a.json, "one JSON document on stdout (docs/json.md)");
  if (dla) {
    sub->add_option("--max-chunks", o.max_chunks, "DLA chunks to keep (<= 0: all)")->capture_default_str();
    sub->add_option("--min-layers", o.min_layers, "smallest DLA chunk kept (<= 0: any)")->capture_default_str();
    sub->add_option("--strategy", a.strategy, "plan strategy: seed | graph")->capture_default_str();
    auto* prec = sub->add_option("--precision", a.precision, "precision of the DLA layers: int8 | fp16 (as plan --precision)")
                     ->capture_default_str();
    sub->add_flag("--fp16", a.fp16_flag, "trtexec spelling of --precision fp16")->excludes(prec);
    sub->add_flag("--int8", a.int8_flag, "trtexec spelling of --precision int8")->excludes(prec)->excludes("--fp16");
    sub->add_flag("--allowGPUFallback,--gpu-fallback", a.gpu_fallback_noop, "always on in build-dla (accepted for trtexec's spelling)");
    add_backend_option(sub, o.calibration_backend);  // calibration's FP32 reference runs
  } else {
    sub->add_option("--default-device,-d", a.default_device, "gpu | dla")->capture_default_str();
    sub->add_flag("--gpu-fallback,--allowGPUFallback", o.gpu_fallback, "run layers the DLA cannot run on the GPU");
    sub->add_flag("--fp16", o.fp16, "allow FP16");
    sub->add_flag("--int8", o.int8, "allow INT8 (calibrated)");
  }
}

// The shared batching group onto CalibrationData. --num-batches caps files (images: the first
// N x batch-size images; .npy: a caller's batcher keyed by the file's digest) and counts random
// batches; a --seed other than the library's 0 makes a caller's seeded batcher.
void set_batching(const BuildArgs& a, BuildOptions& o) {
  check_batch_args(a.batch);
  auto& c = o.calibration;
  c.batch_size = a.batch.batch_size;
  c.bgr = a.batch.channels == "bgr";
  parse_last_batch(a.batch.last_batch, &c.last);
  c.num_batches = a.batch.random_batches();
  const int cap = a.batch.num_batches;
  if (cap > 0 && !c.images_dir.empty())
    c.max_images = c.max_images > 0 ? std::min(c.max_images, cap * c.batch_size) : cap * c.batch_size;
  if (cap > 0 && !c.npy.empty()) {
    const CalibrationData files = c;
    o.batcher = [files, cap, threads = o.threads](const std::vector<InputSpec>& specs) {
      auto b = files_batcher(files, threads)(specs);
      return cap < b->num_batches() ? limit_batches(std::move(b), cap) : std::move(b);
    };
    const bool there = std::filesystem::is_regular_file(c.npy);  // else validate() names the file
    o.batcher_id = fmt::format("npy:{}:first {} batches", there ? sha256_file_hex(c.npy) : c.npy, cap);
  }
  if (c.synthetic && a.seed != 0) {
    o.batcher = [c, seed = a.seed](const std::vector<InputSpec>& specs) {
      return make_synthetic_batcher(specs, c.batch_size, c.num_batches, c.range_lo, c.range_hi, seed);
    };
    o.batcher_id = fmt::format("synthetic:seed {}", a.seed);
  }
}

BuildOptions finish(BuildArgs& a, bool dla) {
  BuildOptions o = a.o;
  for (auto& s : a.shapes) o.shapes.push_back(parse_shape_arg(s));
  for (auto& s : a.input_values) o.input_values.push_back(parse_input_value_arg(s));
  for (auto& s : a.input_formats) o.input_formats.push_back(parse_tensor_format(s));
  for (auto& s : a.output_formats) o.output_formats.push_back(parse_tensor_format(s));
  for (auto& s : a.layer_precision) {
    auto [n, v] = split_last(s, "--layer-precision");
    Precision p;
    if (!parse_precision(v, &p)) throw Error(fmt::format("--layer-precision '{}': '{}' is not fp32 | fp16 | int8 | fp8", s, v));
    o.layer_precision.emplace_back(n, p);
  }
  for (auto& s : a.layer_device) {
    auto [n, v] = split_last(s, "--layer-device");
    Device d;
    if (!parse_device(v, &d)) throw Error(fmt::format("--layer-device '{}': '{}' is not gpu | dla", s, v));
    o.layer_device.emplace_back(n, d);
  }
  if (!parse_dla_target(a.target, &o.target)) throw Error(fmt::format("--target: unknown DLA target '{}' (orin | xavier)", a.target));
  if (dla) {
    if (!parse_strategy(a.strategy, &o.strategy)) throw Error(fmt::format("--strategy: '{}' is not seed | graph", a.strategy));
  } else if (!parse_device(a.default_device, &o.default_device)) {
    throw Error(fmt::format("--default-device: '{}' is not gpu | dla", a.default_device));
  }
  if (!a.input_scale.empty()) { o.calibration.range_lo = a.input_scale[0]; o.calibration.range_hi = a.input_scale[1]; }
  if (a.range_lo) o.calibration.range_lo = *a.range_lo;
  if (a.range_hi) o.calibration.range_hi = *a.range_hi;
  if (!parse_calib_algorithm(a.algorithm, &o.calibration_algorithm))
    throw Error(fmt::format("--algorithm: '{}' is not entropy | minmax | percentile", a.algorithm));
  if (dla) {
    const std::string p = a.fp16_flag ? "fp16" : a.int8_flag ? "int8" : a.precision;
    if (!parse_dla_precision(p, &o.dla_precision)) throw Error(fmt::format("--precision: '{}' is not int8 | fp16", p));
  }
  {
    const std::string ord = lower(o.calibration.order);
    if (ord != "nchw" && ord != "nhwc") throw Error(fmt::format("--order: '{}' is not nchw | nhwc", o.calibration.order));
    o.calibration.order = ord == "nchw" ? "NCHW" : "NHWC";
  }
  o.workspace_gib = workspace_gib(a.workspace, a.mem_pool.empty() ? -1 : mem_pool_mib(a.mem_pool, "workspace", {"workspace"}));
  if (a.recalibrate && !o.calibration_cache.empty() && std::filesystem::exists(o.calibration_cache)) {
    // Calibrate again: the build writes the new cache in place of the old one.
    std::error_code ec;
    std::filesystem::remove(o.calibration_cache, ec);
    if (ec) throw Error(fmt::format("cannot replace {}: {}", o.calibration_cache, ec.message()));
  }
  set_batching(a, o);
  return o;
}

// --json: the tandem/build/v1 document (docs/json.md); counts as the two text lines give them.
int report_json(const BuildResult& r, const std::string& command, const std::string& model) {
  const auto engine = Engine::load(r.engine_path);
  int dla_int8 = 0, dla_fp16 = 0;
  for (const auto& l : engine->plan().layers)
    if (l.device == Device::kDLA) {
      dla_int8 += l.precision == Precision::kINT8;
      dla_fp16 += l.precision == Precision::kFP16;
    }
  nlohmann::ordered_json j;
  j["schema"] = "tandem/build/v1";  // key names shared by every tandem JSON document (docs/json.md)
  j["command"] = command;
  j["model"] = model;
  j["engine"] = r.engine_path;
  j["engine_bytes"] = r.engine_bytes;
  j["seconds"] = r.seconds;
  j["cache"] = r.cache_key.empty() ? nlohmann::ordered_json(nullptr)
                                   : nlohmann::ordered_json{{"key", r.cache_key}, {"hit", r.cache_hit}};
  j["dla_layers"] = r.dla_layers;
  j["gpu_layers"] = r.gpu_layers;
  j["total_layers"] = r.dla_layers + r.gpu_layers;
  j["dla_int8_layers"] = dla_int8;
  j["dla_fp16_layers"] = dla_fp16;
  j["planned_dla_layers"] = r.planned_dla_layers >= 0 ? nlohmann::ordered_json(r.planned_dla_layers)
                                                      : nlohmann::ordered_json(nullptr);
  j["summary"] = engine_layers_summary(*engine, r.planned_dla_layers);
  j["warnings"] = r.warnings;
  std::printf("%s\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  return 0;
}

int report(const BuildResult& r) {
  std::printf("%s: %d DLA layers, %d GPU layers, %.2f MiB, %.2f s%s\n", r.engine_path.c_str(), r.dla_layers, r.gpu_layers,
              double(r.engine_bytes) / (1 << 20), r.seconds,
              r.cache_key.empty() ? "" : (r.cache_hit ? " (engine cache hit)" : " (engine cache miss, stored)"));
  std::printf("%s\n", engine_layers_summary(*Engine::load(r.engine_path), r.planned_dla_layers).c_str());
  return 0;
}

// A calibration cache made for another model or plan surfaces as a missing scale: name the cache
// and the way out in the same line.
BuildResult checked_build(const BuildArgs& a, const BuildOptions& o, bool dla) {
  try {
    return dla ? build_dla_engine(a.model, a.output, o) : build_engine(a.model, a.output, o);
  } catch (const Error& e) {
    const std::string what = e.what();
    if (!o.calibration_cache.empty() && what.rfind("no INT8 scale for tensor", 0) == 0)
    {
      const size_t b = what.find("tensor '"), end = what.find(" (read or written");
      throw Error(fmt::format("{}: not reused: it has no scale for {} (an INT8 layer's); it was made for another model "
                              "or plan; --recalibrate calibrates again and overwrites it", o.calibration_cache,
                              what.substr(b, end == std::string::npos ? std::string::npos : end - b)), e.exit_code());
    }
    throw;
  }
}

RegisterCommand reg_build(50, "build", [](CLI::App& app) {
  auto a = std::make_shared<BuildArgs>();
  auto* sub = app.add_subcommand("build", "build an engine from an ONNX model (trtutils build_engine)");
  add_common(sub, *a, false);
  return std::function<int()>([a] {
    BuildOptions o = finish(*a, false);
    const BuildResult r = checked_build(*a, o, false);
    return a->json ? report_json(r, "build", a->model) : report(r);
  });
});

RegisterCommand reg_build_dla(51, "build-dla", [](CLI::App& app) {
  auto a = std::make_shared<BuildArgs>();
  auto* sub = app.add_subcommand("build-dla",
                                 "build an engine with the largest DLA chunks on the DLA in INT8 (--precision fp16: FP16), the rest on the GPU "
                                 "in FP16 "
                                 "(trtutils build_dla_engine)");
  add_common(sub, *a, true);
  return std::function<int()>([a] {
    BuildOptions o = finish(*a, true);
    require_backend(o.calibration_backend);  // before the model and the data are read
    const BuildResult r = checked_build(*a, o, true);
    return a->json ? report_json(r, "build-dla", a->model) : report(r);
  });
});

}  // namespace
}  // namespace tandem::cli
