// INT8 calibration: batchers (where calibration data comes from), calibrators (entropy, min-max,
// percentile on |x| histograms), DLA range tying, TensorRT-compatible calibration caches, and the
// calibrate() driver the engine builder calls. See docs/quantization.md.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tandem/network.h"
#include "tandem/plan.h"
#include "tandem/runtime.h"

namespace tandem {

// ============================== Batchers ==============================================
// A source of calibration batches: every model input, by name, per batch. Re-iterable (reset()).
class Batcher {
 public:
  virtual ~Batcher() = default;
  virtual int batch_size() const = 0;
  virtual int num_batches() const = 0;  // batches one pass yields
  // Fills *out with one tensor per input (dims [B, ...]; B may be smaller for a kept partial
  // last batch). Returns false once the pass is over.
  virtual bool next(TensorMap* out) = 0;
  virtual void reset() = 0;  // start the pass again (same data, same order)
};

// What a batcher must produce for one model input. dims include the batch dim; dims[0] is the
// model's batch (the batcher uses its own batch size for dim 0).
struct InputSpec {
  std::string name;
  Dims dims;
  DataType type = DataType::kFloat;
};
// The data inputs of a network, as InputSpecs: every input but the shape-value inputs fixed at
// import (ModelInfo::input_values), which take no data (the backends feed their fixed values).
std::vector<InputSpec> input_specs(const Network& net);

// Seeded uniform random data in [lo, hi] for every input (deterministic for a seed).
std::unique_ptr<Batcher> make_synthetic_batcher(std::vector<InputSpec> inputs, int batch_size,
                                                int num_batches, float lo = 0.f, float hi = 1.f,
                                                uint64_t seed = 0);

enum class ResizeMethod : uint8_t { kLetterbox, kLinear };
enum class LastBatch : uint8_t { kKeep, kPad, kDrop };  // what happens to a partial last batch
bool parse_resize_method(std::string_view s, ResizeMethod* out);  // "letterbox" | "linear"
bool parse_last_batch(std::string_view s, LastBatch* out);        // "keep" | "pad" | "drop"
std::string_view to_string(LastBatch b);

struct ImageBatcherOptions {
  std::string dir;           // .jpg/.jpeg/.png in any letter case, not recursive, sorted by name
  std::string input;         // the model input fed ("" = the only input)
  int height = 0, width = 0;  // 0: taken from the input's dims
  int channels = 3;           // 3 or 1
  bool nchw = true;           // false: NHWC
  bool bgr = false;           // channel order (stb decodes RGB)
  ResizeMethod resize = ResizeMethod::kLetterbox;  // letterbox pads with 114 (as cv2ext)
  float lo = 0.f, hi = 1.f;   // pixel 0..255 maps linearly to [lo, hi]
  std::vector<float> mean, std;  // optional, per channel, applied after scaling: (v - m) / s
  DataType type = DataType::kFloat;
  LastBatch last = LastBatch::kKeep;  // kPad repeats the last image
  int max_images = 0;                 // 0: all
  int threads = 0;                    // decode threads; 0: hardware concurrency
};
// Throws Error naming the folder when it is missing or has no usable image; next() throws
// Error naming an image that cannot be decoded.
std::unique_ptr<Batcher> make_image_batcher(const ImageBatcherOptions& opt,
                                            const std::vector<InputSpec>& inputs, int batch_size);

// One or more .npy files per input, concatenated along dim 0 and split into batches. Each file
// holds [M, ...] with the input's non-batch dims and dtype. Throws Error naming the file on a
// shape/dtype mismatch, and when inputs disagree on the sample count or one has no file.
std::unique_ptr<Batcher> make_npy_batcher(
    const std::vector<std::pair<std::string, std::string>>& files,  // (input name, path)
    const std::vector<InputSpec>& inputs, int batch_size, LastBatch last = LastBatch::kKeep);

// At most n batches of another batcher (n >= 1).
std::unique_ptr<Batcher> limit_batches(std::unique_ptr<Batcher> inner, int n);

// ============================== Calibrators ===========================================
enum class CalibAlgorithm : uint8_t { kEntropy, kMinMax, kPercentile };
std::string_view to_string(CalibAlgorithm a);                   // "entropy" ...
bool parse_calib_algorithm(std::string_view s, CalibAlgorithm* out);
// The header word TensorRT uses: EntropyCalibration2, MinMaxCalibration; percentile has no
// TensorRT calibrator and is written as LegacyCalibration (TensorRT's quantile calibrator).
// calibrate() writes EntropyCalibration2 whatever the algorithm unless asked for this true name:
// trtexec's calibrator is an IInt8EntropyCalibrator2 and skips a cache of another algorithm.
std::string_view cache_algorithm_name(CalibAlgorithm a);
// The smallest scale calibrate() writes (an all-zero tensor); a cache line with scale 0 is read
// as this scale, since a zero scale cannot quantize anything.
inline constexpr float kMinCalibrationScale = 1e-8f;

// A histogram of |x| over [0, max_abs] in `bins` equal bins (values above max_abs go to the last).
struct Histogram {
  std::vector<double> counts;
  double max_abs = 0;  // upper edge of the last bin
  double bin_width() const { return counts.empty() ? 0 : max_abs / double(counts.size()); }
  void init(int bins, double max_abs);
  // Counts the finite |x[i]| (NaN and inf are skipped): bin floor(|x| x bins / max_abs) computed
  // in double, the last bin for everything at or above its lower edge. Vectorized; the same
  // counts as the one-value-at-a-time definition (tests/quant/test_calibrator.cpp checks it).
  void add(const float* x, size_t n);
};
// The largest finite |x[i]| (0 when there is none): calibration's first pass, per tensor.
float max_abs_finite(const float* x, size_t n);

// EntropyCalibration2-style threshold (pytorch-quantization's reference algorithm):
// bins[0] := bins[1]; for i in [start_bin, bins]: P = bins[0..i) with the tail mass added to
// P[i-1], Q = bins[0..i) merged into `levels` groups (mass spread evenly over each group's
// non-empty bins); KL(P||Q); the LAST i with the smallest KL wins; returns i (a bin count).
int entropy_threshold_bin(const std::vector<double>& counts, int levels = 128, int start_bin = 128);
// Range (amax) from a histogram: entropy -> (i + 0.5) x bin width for the chosen bin count i
// (EntropyCalibration2's threshold); percentile -> lower edge of the bin where the cumulative
// count reaches p% (pytorch-quantization, ONNX Runtime).
double entropy_amax(const Histogram& h, int levels = 128, int start_bin = 128);
double percentile_amax(const Histogram& h, double percentile);

// ============================== Range tying ===========================================
// DLA/TensorRT INT8 range rules, for layers whose precision is INT8: Concatenation inputs and
// output share one range; ElementWise inputs (less constant operands) are equal; Pooling input
// and output are equal. Groups connect transitively (union-find). As TensorRT, a pooling output
// takes its input's range and Concat inputs take the output's: each group gets the largest range
// of its other members (all members if none). Tensors without a range are left out of a group.
// Returns the tied map (name -> range); tying a tied map changes nothing.
std::map<std::string, float> tie_ranges(const Network& net,
                                        const std::vector<Precision>& layer_precision,
                                        std::map<std::string, float> ranges);
// Ranges that grew more than `factor` times from `before` to `after` (by tying), largest first.
struct RangeChange {
  std::string tensor;
  float before = 0, after = 0;
};
std::vector<RangeChange> coarsened_ranges(const std::map<std::string, float>& before,
                                          const std::map<std::string, float>& after, float factor = 4.f);

// ============================== Calibration cache ======================================
struct CalibrationCache {
  int trt_version = 8600;                  // TRT-<version>-...; JetPack 6 (TensorRT 8.6)
  std::string algorithm = "EntropyCalibration2";
  std::vector<std::pair<std::string, float>> scales;  // in file order; scale = range / 127
  int zero_scales = 0;  // lines with scale 0, read as kMinCalibrationScale
  std::map<std::string, float> scale_map() const;
};
std::string scale_to_hex(float scale);  // 8 lowercase hex digits of the float32 bits
// Parses text; `source` names the file in errors ("<source>:<line>: ..."). Names may contain ':'
// (split at the last colon, as trtexec). Throws Error (exit code 2) on the first bad line.
CalibrationCache parse_calibration_cache(std::string_view text, const std::string& source);
CalibrationCache read_calibration_cache(const std::string& path);
std::string format_calibration_cache(const CalibrationCache& c);
void write_calibration_cache(const std::string& path, const CalibrationCache& c);  // atomic

// ============================== Driver =================================================
struct CalibrateOptions {
  CalibAlgorithm algorithm = CalibAlgorithm::kEntropy;
  double percentile = 99.99;
  int bins = 2048;
  int threads = 0;            // workers (one-thread executors, one sample each at a time); 0: all cores
  bool all_tensors = true;    // ranges for every float tensor (as TensorRT's cache); false: only
                              // tensors that INT8 layers read or write
  bool progress = true;       // progress bar on stderr when it is a terminal
  int trt_version = 8600;
  std::string cache_path;     // "" : no cache; else read it (unless recalibrate) or write it
  bool recalibrate = false;
  bool true_header = false;   // header names the algorithm used (default: EntropyCalibration2)
  // Where the FP32 reference runs: "cpu" (one-thread workers, as above) or "cuda" (one executor
  // on the GPU, its tensors copied to the host for the statistics; the ranges equal the CPU's up
  // to FP32 summation order). An unavailable backend throws the registry's one line.
  std::string backend = "cpu";
};

struct CalibrationResult {
  std::map<std::string, float> ranges;  // after tying (amax; symmetric [-amax, amax])
  std::map<std::string, float> untied;  // the calibrated ranges before tying
  std::map<std::string, float> scales;  // range / 127
  CalibrationCache cache;               // what was (or would be) written
  bool from_cache = false;              // true: read from cache_path, no data was run
  bool from_model = false;              // true: the model's Q/DQ scales (explicit quantization)
  int batches = 0, samples = 0;
  int tied_tensors = 0;                 // tensors whose range changed through tying
  // Where a calibration's time went (0 when no data was run): the FP32 runs and the per-tensor
  // statistics (max |x|, histograms), CPU seconds summed over the workers (--backend cuda: the
  // one worker's wall-clock, statistics on all threads after each run); the thresholds from
  // the histograms, wall-clock.
  double run_seconds = 0, statistics_seconds = 0, threshold_seconds = 0;
};

// Two passes over the batcher (reset between): pass 1 runs the FP32 reference (CPU backend,
// unfused, one thread per worker, samples spread over opt.threads workers) and records max|x|
// per tensor; pass 2 (entropy, percentile) fills 2048-bin |x| histograms over [0, that max], so
// binning depends neither on batch order nor on the split over workers. Each tensor is read as
// soon as it is computed (ExecOptions::observe_tensor), not kept. Then ranges, tying
// for the plan's INT8 layers, the cache (written when cache_path is set). With an existing cache
// and !recalibrate, the cache is used and the batcher is not touched.
CalibrationResult calibrate(const Network& net, const Plan& plan, Batcher& batcher,
                            const CalibrateOptions& opt);

// Explicit quantization: the scales a Q/DQ model carries (Network::model.qdq_scales), extended
// through Shuffle and Identity layers (a reshape keeps a per-tensor scale) to the tensors the
// importer made around them. Empty for a model without Q/DQ pairs. calibrate() returns these
// (from_model) instead of running data or reading a cache, as TensorRT ignores the calibrator of
// an explicitly quantized network; with a cache_path that does not exist yet (or recalibrate)
// they are written there as a TensorRT calibration cache.
std::map<std::string, float> model_scales(const Network& net);

// Per-layer precisions of a plan, as the executor wants them.
std::vector<Precision> plan_precisions(const Plan& plan);
// The tensors that INT8 layers read or write (float tensors only), by name, less the fused ones.
std::vector<std::string> int8_tensors(const Network& net, const std::vector<Precision>& prec);
// Tensors inside an INT8 block TensorRT fuses into one layer (Conv/Deconv -> BN as a Scale ->
// ReLU/Clip/LeakyReLU/Sigmoid/Tanh, each link the only reader): never quantized.
std::vector<std::string> fused_int8_tensors(const Network& net, const std::vector<Precision>& prec);
// Constant B operands of INT8 MatrixMultiply layers, quantized per output channel: name -> axis.
std::map<std::string, int> per_channel_weights(const Network& net, const std::vector<Precision>& prec);
// Numerics for the executor: the plan's precisions and tied scales from a scale map, the fused
// tensors (unquantized) and the per-channel weights.
// Throws Error naming the first tensor an INT8 layer touches that has no scale.
Numerics make_numerics(const Network& net, const Plan& plan,
                       const std::map<std::string, float>& scales);

// ============================== Comparison ==========================================
// Error statistics of one tensor over all compared samples (`tandem compare`, the Python
// module's compare): errors, cosine over everything and the worst per-sample cosine, and for
// classifiers ([rows, classes] outputs) the top-1 agreement.
struct ErrorStats {
  double dot = 0, n1 = 0, n2 = 0, sum_abs = 0, max_abs = 0, max_ref = 0, min_cos = 1;
  int64_t count = 0, top1_agree = 0, top1_total = 0;
  double cosine() const;
  double mean_abs() const { return count ? sum_abs / double(count) : 0.0; }
  // Adds one sample; tensors that are not fp32 of the same size are ignored.
  void add(const HostTensor& ref, const HostTensor& got, bool classifier);
};
// A [rows, classes >= 2] fp32 tensor: top-1 agreement is meaningful for it.
bool looks_like_classifier(const Tensor& t);

// An executor of `net` on the backend called `name` ("cpu": make_cpu_executor). Throws Error
// "--backend NAME: <the registry's reason>" when the backend is unknown or not available here
// (the CUDA plugin, a library or the GPU missing), before anything is compiled.
std::unique_ptr<Executor> make_backend_executor(const std::string& name, const Network& net, const ExecOptions& opt,
                                                bool keep_all = false);
// The same check alone, for a command to fail before it reads any data.
void require_backend(const std::string& name);

// Splits a batch along dim 0 into pieces of the model's batch (the last piece padded by
// repeating its last sample). Used when the batcher's batch differs from the model's.
std::vector<TensorMap> split_batch(const TensorMap& batch, const std::vector<InputSpec>& inputs);

// A one-line progress bar on stderr ("label [#####.....] 3/8 1.2 s", redrawn in place); silent
// when stderr is not a terminal or when disabled, so a pipe, a log file or --json output never
// holds it.
class ProgressBar {
 public:
  ProgressBar(std::string label, int total, bool enabled = true);
  ~ProgressBar();
  void step(int n = 1);
  void done();

 private:
  std::string label_;
  int total_, count_ = 0;
  bool enabled_, finished_ = false;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace tandem
