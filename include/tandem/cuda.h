// The GPU backend: runs a Network on one NVIDIA GPU with cuDNN (convolution, deconvolution),
// cuBLASLt (matrix multiply) and tandem's own CUDA kernels (everything else).
// No CUDA header is included here: the library hides CUDA entirely (docs/cuda-backend.md).
// These functions live in tandem_backend_cuda, which ships inside the plugin libtandem_cuda.so:
// the CLI, the engine and the Python module reach them through the registry
// (tandem/backend.h: find_backend("cuda")); only the GPU tests and tandem_cuda_bench link them.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tandem/runtime.h"

namespace tandem {

// True when a CUDA device can be opened. When false and `why` is given, it says why
// ("no CUDA device: cudaGetDeviceCount: ...").
bool cuda_available(std::string* why = nullptr);

// GPU-specific options (ExecOptions carries the portable ones).
struct CudaOptions {
  int device = 0;
  // FP32 layers use TF32 tensor cores (cuDNN CUDNN_TENSOR_OP_MATH, cuBLASLt
  // CUBLAS_COMPUTE_32F_FAST_TF32). Off by default: FP32 is exact FP32 (FMA kernels only), so the
  // backend agrees with the CPU reference to ~1e-6 relative.
  bool allow_tf32 = false;
  // Capture the steady-state launch sequence in a CUDA graph after the first run, and replay it.
  bool cuda_graph = true;
  // Time every cuDNN algorithm at compile (cudnnFind*); false: take cuDNN's heuristic first pick.
  bool time_tactics = true;
  // Depthwise convolutions (groups == input == output channels): -1 times cuDNN's best algorithm
  // against tandem's direct kernel at compile and keeps the faster; 0: cuDNN; 1: tandem's kernel.
  int own_depthwise = -1;
  // Fuse chains of point-wise layers (activations, element-wise ops with a one-value constant or
  // with the chain's own input, e.g. hard-swish) into one kernel each.
  bool fuse_pointwise = true;
  // Upper bound for one layer's cuDNN workspace (bytes).
  size_t max_workspace = size_t(256) << 20;
  // FP16 layers (ExecOptions::numerics) compute for real in half precision where the backend
  // can (tensor-core convolutions and matrix multiplies, channels-last, FP32 accumulation);
  // false: every FP16 layer is emulated (FP32 arithmetic on rounded values, as the CPU backend).
  bool real_fp16 = true;
  // Real FP16 1x1, stride-1, unpadded convolutions: -1 times cuBLASLt's GEMM (the NHWC value is
  // a [N*H*W, C] matrix) against cuDNN's best and keeps the faster (cuDNN when time_tactics is
  // off); 0: cuDNN; 1: the GEMM. Those of a 1x1 map always run as the GEMM.
  int fp16_pointwise_gemm = -1;
  // INT8 convolutions (ExecOptions::numerics) whose input lies on its INT8 grid run for real on
  // int8 codes (cuBLASLt INT8 tensor-core GEMMs, int32 sums; grouped ones in tandem's direct
  // int8 kernel); false: every INT8 layer is emulated (FP32 arithmetic on rounded values).
  bool real_int8 = true;
};

// One tactic choice made at compile: what the engine's timing cache stores per layer.
struct TacticRecord {
  std::string layer;     // layer name
  std::string kind;      // "Convolution", "Deconvolution", "MatrixMultiply"
  std::string key;       // layer signature: shapes, params and data type (stable across runs)
  std::string tactic;    // "cudnn_fwd:IMPLICIT_PRECOMP_GEMM+fused_relu", "cublaslt:heuristic0"
  int64_t tactic_id = -1;   // the library's algorithm number
  float time_ms = -1.f;     // measured time of the chosen tactic; -1: not timed
  size_t workspace = 0;     // bytes
};

// Adds what the CUDA executor knows beyond the Executor interface.
class CudaExecutor : public Executor {
 public:
  // The tactics chosen at compile, in layer order.
  virtual const std::vector<TacticRecord>& tactics() const = 0;
  // Device name, compute capability and library versions: the timing cache's device key.
  virtual std::string device_key() const = 0;
  // Bytes of the activation arena (liveness-planned) and of the uploaded weights.
  virtual size_t arena_bytes() const = 0;
  virtual size_t weight_bytes() const = 0;
  // Whether run() replays a CUDA graph (false before the first run or when capture failed).
  virtual bool using_cuda_graph() const = 0;
  // Time of the last run's launch sequence (after the uploads, before the downloads), ms: the
  // compute part of last_run_split().
  virtual float last_run_ms() const = 0;
  // Runs the device work only (no host copies) `iters` times and returns each time in ms:
  // for benchmarks. Inputs are whatever the last run() uploaded (zeros before any run).
  virtual std::vector<float> time_device(int iters) = 0;
};

// Compiles `net` for the GPU: plans memory, uploads weights, chooses tactics. Throws Error
// naming the layer for a layer kind, data type or parameter the backend does not support, and
// Error when no device is available.
std::unique_ptr<CudaExecutor> make_cuda_executor(const Network& net, const ExecOptions& opt,
                                                 const CudaOptions& cuda_opt,
                                                 bool keep_all = false);
std::unique_ptr<Executor> make_cuda_executor(const Network& net, const ExecOptions& opt = {},
                                             bool keep_all = false);

}  // namespace tandem
