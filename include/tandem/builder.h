// Building engines: ONNX -> (hooks, shapes) -> plan -> calibration -> passes -> engine file.
// One options struct for both entry points; build_dla_engine is build_engine with the seed's DLA
// defaults (INT8 + FP16, default device DLA, chunked plan, GPU fallback).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tandem/network.h"
#include "tandem/plan.h"
#include "tandem/quant.h"
#include "tandem/types.h"

namespace tandem {

// Layout of an engine input or output as the caller sees it.
enum class TensorLayout : uint8_t { kNCHW, kNHWC };
std::string_view to_string(TensorLayout l);
bool parse_tensor_layout(std::string_view s, TensorLayout* out);

// The data type and layout an engine accepts (input) or returns (output) for one tensor.
// Conversions to and from the network's own type (fp32, NCHW) happen inside the engine at run
// time; INT8 uses the calibrated scale of that tensor (x = q * scale), UINT8 is value-preserving.
struct TensorFormat {
  std::string name;
  DataType type = DataType::kFloat;  // kFloat, kHalf, kInt8 or kUInt8
  TensorLayout layout = TensorLayout::kNCHW;
};
// "name:fp16:nhwc" / "name:int8" (layout defaults to nchw). Throws Error on a bad spec.
TensorFormat parse_tensor_format(const std::string& spec);

// A user callback that edits the imported network before analysis (API only). The name goes into
// the engine cache key: two different hooks must have different names.
struct BuildHook {
  std::string name;
  std::function<void(Network&)> fn;
};

// A caller's data batcher (trtutils' `data_batcher`): given the model's inputs (every input, by
// name, with its dims), returns the Batcher that feeds calibration. Any class implementing
// tandem::Batcher (quant.h) works; batcher_for() wraps one that already exists.
using BatcherFactory = std::function<std::unique_ptr<Batcher>(const std::vector<InputSpec>& inputs)>;
BatcherFactory batcher_for(std::shared_ptr<Batcher> batcher);

// Where calibration data comes from (trtutils' data batcher options). At most one source.
struct CalibrationData {
  std::string images_dir;   // folder of .jpg/.jpeg/.png (ImageBatcher)
  std::string npy;          // one .npy with the whole calibration set, batch on axis 0
  bool synthetic = false;   // SyntheticBatcher: uniform in [range_lo, range_hi]
  int batch_size = 8;
  int num_batches = 10;     // synthetic only
  int max_images = 0;       // 0: all
  std::string order = "NCHW";             // NCHW | NHWC
  std::string resize_method = "letterbox";  // letterbox | linear
  float range_lo = 0.f, range_hi = 1.f;   // input_scale / data_range
  // trtutils' ImageBatcher reads with OpenCV (BGR) and drops a partial last batch.
  bool bgr = true;
  LastBatch last = LastBatch::kDrop;
  bool any() const { return !images_dir.empty() || !npy.empty() || synthetic; }
};
// The batcher the files of `c` describe (the CLI's batchers go through this too).
BatcherFactory files_batcher(const CalibrationData& c, int threads = 0);

struct BuildOptions {
  // Devices and DLA (the seed's build_engine and build_dla_engine).
  Device default_device = Device::kGPU;
  int dla_core = -1;           // -1: not set (0 is used when a layer lands on the DLA)
  bool gpu_fallback = false;
  int max_chunks = 1;          // build-dla: <= 0 takes every chunk
  int min_layers = 20;         // build-dla: <= 0 accepts every chunk
  Strategy strategy = Strategy::kSeed;
  DlaTarget target = DlaTarget::kOrin;
  // build-dla: precision of the DLA layers (as `plan --precision`); fp16 needs no calibration.
  DlaPrecision dla_precision = DlaPrecision::kInt8;
  // INT8 calibration algorithm (entropy: trtutils' and trtexec's EntropyCalibration2).
  CalibAlgorithm calibration_algorithm = CalibAlgorithm::kEntropy;
  std::vector<std::pair<std::string, Precision>> layer_precision;  // by TensorRT layer name
  std::vector<std::pair<std::string, Device>> layer_device;
  // Precision flags. Any of them enables fp16 (as trtutils does).
  bool fp16 = false, int8 = false, fp8 = false;
  // Memory and builder behaviour.
  double workspace_gib = 4.0;
  int optimization_level = 3;  // 0..5; 0 skips tactic timing
  bool direct_io = false;
  bool prefer_precision_constraints = false;
  bool reject_empty_algorithms = false;
  bool ignore_timing_mismatch = false;
  int device = 0;              // CUDA device index (recorded; the CPU backend ignores it)
  // Inputs.
  std::vector<std::pair<std::string, Dims>> shapes;
  // Shape-value inputs fixed at import (ImportOptions::input_values; --input-value NAME:V,...).
  std::vector<std::pair<std::string, std::vector<int64_t>>> input_values;
  std::vector<TensorFormat> input_formats, output_formats;
  std::vector<BuildHook> hooks;
  // Calibration: a TensorRT calibration cache (read when it exists, written after calibrating)
  // and/or a data source.
  std::string calibration_cache;
  CalibrationData calibration;
  // A caller's batcher takes precedence over `calibration`. With the engine cache on, batcher_id
  // must name the data (it goes into the cache key in place of the files' digest).
  BatcherFactory batcher;
  std::string batcher_id;
  // Recorded in the engine and exported to trtexec (TensorRT's builder config; no effect on the
  // CPU backend). profiling_verbosity: "" | layer_names_only | detailed | none;
  // tiling_optimization_level: -1 unset, 0..3 (none, fast, moderate, full);
  // tiling_l2_cache_limit: bytes, -1 unset.
  std::string profiling_verbosity;
  int tiling_optimization_level = -1;
  int64_t tiling_l2_cache_limit = -1;
  // Timing cache: "" none, "global" the one in the cache folder, else a path.
  std::string timing_cache;
  // Engine cache.
  bool cache = false;
  std::string cache_dir;       // "" -> TANDEM_CACHE_DIR, $XDG_CACHE_HOME/tandem, ~/.cache/tandem
  // Build-time passes (fold constants, fuse BN/Scale into conv, drop Identity).
  bool passes = true;
  int threads = 0;             // CPU threads for calibration and timing; 0: backend default
  bool verbose = false;
  // Where calibration's FP32 reference runs (CalibrateOptions::backend): "cpu" | "cuda" (build-dla
  // --backend). Not part of the engine cache key: the scales agree up to FP32 summation order.
  std::string calibration_backend = "cpu";
};

// Throws Error with one line naming the first bad option.
void validate(const BuildOptions& opt);

struct BuildResult {
  std::string engine_path;
  bool cache_hit = false;
  std::string cache_key;       // hex; empty when the cache was off
  double seconds = 0;
  int dla_layers = 0, gpu_layers = 0;  // in the engine, after the build passes
  int planned_dla_layers = -1;         // in the plan, before the passes (-1: engine cache hit)
  size_t engine_bytes = 0;
  std::vector<std::string> warnings;
};

// Builds and writes the engine file at `output` (atomically). Throws Error on failure.
BuildResult build_engine(const std::string& onnx_path, const std::string& output,
                         const BuildOptions& opt);
// The seed's build_dla_engine: fp16 + int8 (+ fp8 if asked), default device DLA, dla_core 0 if
// unset, gpu_fallback, seed chunking with max_chunks / min_layers.
BuildResult build_dla_engine(const std::string& onnx_path, const std::string& output,
                             BuildOptions opt);

// The options that define an engine, canonically serialized (JSON text, sorted keys); output
// path, cache folder and verbosity are left out. Part of the engine cache key and the metadata.
std::string canonical_options(const BuildOptions& opt);

}  // namespace tandem
