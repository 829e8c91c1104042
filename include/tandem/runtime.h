// Execution: host tensors in, host tensors out. The CPU backend is the reference oracle;
// layers planned for the DLA run with DLA numerics (INT8/FP16 emulation) on the host backend.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "tandem/host_tensor.h"
#include "tandem/network.h"
#include "tandem/numerics.h"  // the numerics the emulation runs (round_to_fp16, fake_quant_int8, ...)

namespace tandem {


// Numerics per layer. Empty precisions: everything FP32 (the reference).
// INT8 layers: weights quantized per output channel (symmetric, [-127, 127]), activations per
// tensor with the scale from tensor_scales (round half to even, clamp [-128, 127]); FP16 layers:
// inputs, weights and outputs rounded to FP16. A tensor an INT8 layer touches without a scale is
// an error, except the tensors listed in unquantized.
struct Numerics {
  std::vector<Precision> layer_precision;        // indexed by LayerId; kUnset = FP32
  std::map<std::string, float> tensor_scales;    // tensor name -> scale (range / 127)
  // Tensors left in FP32 between INT8 layers that TensorRT fuses into one (the inside of a
  // Conv + BN (+ activation) block): neither the producer's output nor the consumer's input.
  std::set<std::string> unquantized;
  // Constant weights read by INT8 layers that quantize them per output channel (FC / MatMul B):
  // tensor name -> channel axis; scale max|w| / 127 per channel, as convolution weights.
  std::map<std::string, int> per_channel_axis;
};

struct ExecOptions {
  int threads = 0;  // 0: the backend's default (OpenMP's: all cores)
  Numerics numerics;
  // Fuse what the backend's LowerPolicy allows (include/tandem/lower.h; CPU: Scale folded into
  // convolutions, activations and hard-swish as oneDNN post-ops; CUDA: one activation per
  // convolution and point-wise chains). Off when keep_all is asked (every tensor must exist).
  // Layers with emulated numerics fuse only with layers of their precision, and only where the
  // policy says so (LowerPolicy::fuse_emulated: the CPU's, as TensorRT fuses FP16 and INT8 blocks).
  bool fuse = true;
  // Plain-loop kernels for every layer (no oneDNN, no fusion): the CPU reference that the
  // cross-backend op test compares every backend with. CPU backend only; slow.
  bool reference_kernels = false;
  // Device backends (CUDA): run FP16 and INT8 layers emulated (FP32 arithmetic on rounded values)
  // instead of real half / int8 kernels: what `tandem compare --backend cuda` runs. The CUDA
  // lowering rounds at every emulated layer, so its figures are those of the CPU's unfused
  // emulation (TANDEM_CPU_EMULATED_FUSION=off) up to FP32 summation order. The CPU always emulates.
  bool emulate_numerics = false;
  // Calibration's hook: during run(), called with each materialized network tensor (by TensorId,
  // linear, in its own type). CPU: as soon as it is complete (the inputs and constants first,
  // then each step's outputs and their views right after the step), so the statistics read a
  // tensor while it is in cache and nothing needs keep_all's copies. CUDA: every tensor is kept
  // on the device to the end of the run (keep_all's lowering), copied into one reused pinned host
  // buffer after the launches, then observed in TensorId order; `data` stays valid until the
  // next run() (calibration takes the statistics after run(), in parallel over tensors). Values
  // stay in linear layouts when set. Unset: not called, and nothing is copied.
  std::function<void(TensorId, const void* data)> observe_tensor;
};

// Where the time of the last run() went, in milliseconds. A device backend (CUDA) measures each
// part with events on its stream: host-to-device copies of the inputs, the launch sequence, and
// device-to-host copies of the outputs. A host backend (CPU) copies nothing to a device: it
// reports the step loop as compute, 0 for both copies, and device_copies false, so that a report
// can say "no device copies" instead of printing zeros as if they were measured.
struct RunSplit {
  double h2d_ms = 0;
  double compute_ms = 0;
  double d2h_ms = 0;
  bool device_copies = false;
};

// The time of one step of the executor's step list (a layer, a fused group, a numerics rounding
// step, or a point-wise chain): what a per-layer profile lists.
struct StepTime {
  std::string layer;  // the step's layer (the CPU names a fused step's layers joined by " + ")
  std::string kind;   // the layer kind's name, with what the backend fused ("Convolution+Activation")
  float ms = 0.f;     // mean over the profiled iterations
};

// Compiled once per network; run() may be called many times. One ExecutionContext per thread.
class Executor {
 public:
  virtual ~Executor() = default;
  // Missing or mis-shaped inputs throw Error naming the input. A data-dependent output (NonZero,
  // NMS: data_dependent_axis in tandem/network.h) comes back in its real shape, not its bound.
  virtual TensorMap run(const TensorMap& inputs) = 0;
  // The split of the last run() (all zeros before the first).
  virtual RunSplit last_run_split() const = 0;
  // Runs the steps `iters` times (>= 1) on what the last run() left in the buffers (zeros
  // before the first), timing each step: one entry per step, in execution order.
  // The CUDA backend launches eagerly (no graph) with events between the steps.
  virtual std::vector<StepTime> profile(int iters) = 0;
  // Every tensor of the network after a run (for calibration and per-layer comparison).
  // Empty unless keep_all was asked at creation.
  virtual const TensorMap& all_tensors() const = 0;
  virtual std::string backend_name() const = 0;
};

// The CPU backend (oneDNN + plain loops, FP32). Compiles once: checks support and numerics,
// fuses, plans one arena for all intermediate tensors (reused once dead), creates every oneDNN
// primitive and reorders weights. The Network may be destroyed afterwards.
// Throws Error naming the layer or tensor it cannot run (see cpu_unsupported_reason).
std::unique_ptr<Executor> make_cpu_executor(const Network& net, const ExecOptions& opt = {},
                                            bool keep_all = false);

// The lowering policy the CPU backend compiles with (include tandem/lower.h to use it): lower()
// with it gives the ExecGraph whose steps the CPU executor runs and profile() lists.
struct LowerPolicy;
LowerPolicy cpu_lower_policy(const ExecOptions& opt, bool keep_all);

// "" when the CPU backend runs every layer of net; else why not, naming the first layer it
// cannot run (e.g. "layer 'conv1' (Convolution): input 'x' is fp16, the CPU backend computes
// Convolution in fp32 only").
std::string cpu_unsupported_reason(const Network& net);

// Peak resident set size of this process in KiB (getrusage), for benchmarks.
int64_t peak_rss_kib();

}  // namespace tandem
