// One real FP16 or INT8 convolution and its whole epilogue as ONE cuDNN kernel, through cuDNN's
// graph (backend) API: convolution forward (half NHWC input, half KRSC filter, FP32 accumulation;
// or int8 codes, INT32 accumulation) into an FP32 virtual tensor, then point-wise operations in
// FP32 (the INT8 dequantizing scale, bias, the activation and point-wise chain, the INT8
// requantization), then one rounding into the half or int8 NHWC output. The kernels come
// from cuDNN's engines (runtime fusion ones compile with NVRTC when a plan is finalized).
// Internal to src/backend/cuda (docs/cuda-backend.md, Numerics and Tactics).
#pragma once
#include <cudnn.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backend/cuda/kernels.h"

namespace tandem {
namespace cuda_exec {

// What the convolution reads and writes (all NHWC, the filter KRSC).
enum class FusedConvData {
  kHalf,       // half x and w, FP32 sums, y = half(v)
  kInt8Codes,  // int8 codes x and w, INT32 sums, y = the int8 code of v on the grid of y_scale
  kInt8ToHalf  // int8 codes x and w, INT32 sums, y = half(q * y_scale), q that code (half_of_int8)
};

// What the fused kernel computes: v = chain(conv(x, w) * alpha + bias), alpha (INT8 only: s_x *
// s_w[k], dequantizing the integer sums) and the bias optional, x0 of the chain (PwChain::x0_at)
// counted from the value after the bias; then y from v as `data` says. The code of v on a grid is
// the emulation's clamp(rne(v / y_scale), -128, 127) (tandem/numerics.h fake_quant_int8), spelled
// out in point-wise operations so that it does not depend on how cuDNN converts float to int8.
struct FusedConvSpec {
  FusedConvData data = FusedConvData::kHalf;
  std::vector<float> alpha;  // K values (INT8: required)
  float y_scale = 0.f;       // kInt8Codes, kInt8ToHalf
  // kInt8Codes, kInt8ToHalf: x and w are half tensors holding the int8 codes (exact in half) and
  // the sums are FP32 on FP16 tensor cores instead of INT32: exact integers while every partial
  // sum stays below 2^24 in magnitude, which the caller checks (int8_half_sums_exact).
  bool half_sums = false;
  int64_t n = 0, c = 0, h = 0, w = 0;  // input (NCHW extents; NHWC in memory)
  int64_t k = 0, oh = 0, ow = 0;       // output maps and size
  int64_t groups = 1;
  int64_t kernel[2] = {1, 1}, stride[2] = {1, 1}, pad[2] = {0, 0}, dilation[2] = {1, 1};
  std::vector<float> bias;  // K values (empty: none)
  cuda::PwChain chain{};
  // kInt8ToHalf only: the residual join of the steps after the convolution in the same kernel
  // (the executor's conv_join_i8): a = half(q * y_scale) is not written but joined with the
  // half operand z of y's shape and layout: y = half(act(half(a + z))) (act none or ReLU) is
  // written as half, and with `codes` also clamp(rne(y / codes_scale), -128, 127) as int8, the
  // join kernel's arithmetic (add_act_codes_h). The roundings to half are virtual half tensors of
  // the graph; whether an engine honours them is what the executor's tests check bit for bit.
  struct Join {
    bool on = false, relu = false, codes = false;
    float codes_scale = 0.f;
  } join;
};

// One engine configuration of the graph that cuDNN finalized into a plan.
struct FusedConvPlanInfo {
  int64_t engine = -1;     // cuDNN's global engine index
  size_t workspace = 0;    // bytes
  bool runtime_compiled = false;
  bool tensor_core = false;  // cuDNN's numerical note: the engine computes on tensor cores
};

class CudnnFusedConv {
 public:
  // Maps the spec to cuDNN point-wise operations and constant operands. False, with the reason in
  // *why, when a link of the epilogue has no exact cuDNN point-wise form.
  bool prepare(const FusedConvSpec& spec, std::string* why);
  // The graph's structure (data kind, shapes, geometry, operations with their exact parameters,
  // operand slots): convolutions with equal signatures run the same plans on their own pointers
  // (share_plans). With the INT8 sums' type (make_plans' choice) it determines the graph, and is
  // the plan cache's key with the device and the engine configuration.
  const std::string& signature() const { return signature_; }
  // The constant operands' values (alpha, the bias, then one K-vector per distinct scalar of the
  // chain and the requantization),
  // each padded to 256 bytes: upload them and pass the device copy to run().
  const std::vector<float>& constants() const { return constants_; }
  // Builds the operation graph and finalizes up to max_plans engine configurations, in the order
  // of cuDNN's heuristics (mode A, then FALLBACK when none of A's finalizes), skipping those that
  // reduce precision (INT8: or sum inexactly) or need more than max_workspace bytes; INT8 graphs
  // with the sums as INT32, else as FP32. Returns how many; *why says why none. plan_cache: the
  // device's folder of the persistent plan cache (plan_cache.h; "" off): a runtime-compiled
  // engine's plan is restored from there when an entry of its key exists (no NVRTC), else
  // finalized and written there.
  int make_plans(cudnnHandle_t handle, int max_plans, size_t max_workspace, std::string* why,
                 const std::string& plan_cache = "");
  // Takes the plans another convolution of the same signature() finalized.
  void share_plans(const CudnnFusedConv& other) { plans_ = other.plans_; }
  int plans() const { return plans_ ? int(plans_->plans.size()) : 0; }
  const FusedConvPlanInfo& plan_info(int i) const { return plans_->infos[size_t(i)]; }
  // Runs plan i on the handle's stream. consts: the device copy of constants(); workspace:
  // plan_info(i).workspace bytes (null when 0).
  cudnnStatus_t run(int i, const void* x, const void* w, void* y, const float* consts, void* workspace);
  // The join's operands (FusedConvSpec::join): z, read, and the codes, written (null without
  // join.codes); bound by every later run().
  void bind_join(const void* z, void* codes) { join_z_ = z, join_codes_ = codes; }

 private:
  // One point-wise operation, kept until the graph is assembled (the last one writes the half output).
  struct Op {
    cudnnPointwiseMode_t mode;
    int64_t x, b, y;  // value uids; b < 0: unary
    double param;     // ELU alpha, swish beta
  };
  // The descriptors of one graph and its finalized plans (shared by equal signatures).
  struct Plans {
    cudnnHandle_t handle = nullptr;
    std::vector<cudnnBackendDescriptor_t> owned;  // tensors, descriptors, operations, the graph
    cudnnBackendDescriptor_t graph = nullptr;
    std::vector<cudnnBackendDescriptor_t> plans;
    std::vector<FusedConvPlanInfo> infos;
    ~Plans();
  };
  bool add_chain(const FusedConvSpec& s, std::string* why);
  void add_requantize(const FusedConvSpec& s, int64_t* v);
  int64_t constant(float v, int64_t k);
  int64_t vector_constant(const std::vector<float>& values);
  int64_t virtual_value(cudnnDataType_t type = CUDNN_DATA_FLOAT);
  void add_join(const FusedConvSpec& s, int64_t v);
  void pointwise(cudnnPointwiseMode_t mode, int64_t x, int64_t b, int64_t y, double param = 0);
  bool build_graph(Plans& p, std::string* why);
  cudnnBackendDescriptor_t tensor(Plans& p, int64_t uid, cudnnDataType_t type, const int64_t dims[4],
                                  const int64_t strides[4], bool is_virtual);
  cudnnBackendDescriptor_t value(int64_t uid) const;
  bool try_plans(Plans& p, cudnnBackendHeurMode_t mode, int max_plans, size_t max_workspace, std::string* why);
  cudnnBackendDescriptor_t finalize_plan(Plans& p, cudnnBackendDescriptor_t cfg, int64_t engine, bool runtime_compiled);
  void release_pack();

  FusedConvSpec spec_;
  std::string signature_;
  std::vector<Op> pending_;
  std::vector<float> constants_;
  std::vector<int64_t> constant_uids_;
  int64_t next_virtual_ = 0, stride_ = 0;  // stride_: floats per constant slot
  bool int32_sums_ = true;                  // INT8: the convolution's output tensor is INT32 (else FP32)
  std::string plan_cache_;                  // make_plans' plan cache folder ("" off)
  std::vector<std::pair<int64_t, cudnnBackendDescriptor_t>> values_;  // uid -> tensor, while building
  std::vector<int64_t> half_virtuals_;  // virtual values stored as half (the join's roundings)
  const void* join_z_ = nullptr;
  void* join_codes_ = nullptr;
  std::shared_ptr<Plans> plans_;
  // The last variant pack and the pointers it binds (rebuilt when they change).
  cudnnBackendDescriptor_t pack_ = nullptr;
  std::vector<void*> pack_ptrs_;

 public:
  CudnnFusedConv() = default;
  ~CudnnFusedConv() { release_pack(); }
  CudnnFusedConv(const CudnnFusedConv&) = delete;
  CudnnFusedConv& operator=(const CudnnFusedConv&) = delete;
};

// How a real FP16 convolution's epilogue maps to the graph (TANDEM_CUDA_GRAPH_FUSION): -1 timed
// against the two-pass route (default), 0 off (the two-pass route), 1 whenever a plan finalizes.
int graph_fusion_mode();
// The same for a real INT8 convolution against the im2col + cuBLASLt GEMM + epilogue route
// (TANDEM_CUDA_INT8_GRAPH): -1 timed (default), 0 off, 1 whenever a plan finalizes and runs.
int int8_graph_mode();
// A real INT8 convolution's sums on FP16 tensor cores (FusedConvSpec::half_sums;
// TANDEM_CUDA_INT8_HALF_SUMS): -1 (unset) tried for narrow inputs (codes of C % 16 != 0
// channels: a stem), timed against the other routes; 2 ("all") tried for every convolution where
// exact, timed; 0 off; 1 wherever exact, untimed (tests). TANDEM_CUDA_INT8_GRAPH=0 (the GEMM
// route alone) leaves it out too, except with 1.
int int8_half_sums_mode();

}  // namespace cuda_exec
}  // namespace tandem
