// The CUDA executor's class and the helpers its parts share (executor*.cpp; docs/cuda-backend.md).
// Internal to src/backend/cuda: nothing outside the plugin includes it.
#pragma once
#include <cublasLt.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <sstream>

#include "backend/cuda/cudnn_fused_conv.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/kernels_index.h"
#include "backend/cuda/plan_cache.h"
#include "tandem/cuda.h"
#include "tandem/broadcast.h"
#include "tandem/lower.h"
#include "tandem/numerics.h"

namespace tandem {
namespace cuda_exec {

using cuda::Shape;

// ---- error checking --------------------------------------------------------------------------
[[noreturn]] inline void fail(const std::string& where, const std::string& what) {
  throw Error("cuda backend: " + where + ": " + what);
}
inline void ck(cudaError_t e, const char* expr, const std::string& where) {
  if (e != cudaSuccess) fail(where, std::string(expr) + ": " + cudaGetErrorString(e));
}
inline void ck(cudnnStatus_t e, const char* expr, const std::string& where) {
  if (e != CUDNN_STATUS_SUCCESS) fail(where, std::string(expr) + ": " + cudnnGetErrorString(e));
}
inline void ck(cublasStatus_t e, const char* expr, const std::string& where) {
  if (e != CUBLAS_STATUS_SUCCESS) fail(where, std::string(expr) + ": cublas status " + std::to_string(int(e)));
}
#define CK(expr) ck((expr), #expr, where_)
#define CKW(expr, where) ck((expr), #expr, (where))

// ---- shapes ----------------------------------------------------------------------------------
inline Shape shape_of(const Dims& d, const std::string& where) {
  if (d.size() > size_t(cuda::kMaxRank)) fail(where, "rank " + std::to_string(d.size()) + " exceeds 8");
  Shape s;
  s.rank = int(d.size());
  for (size_t k = 0; k < d.size(); ++k) s.d[k] = d[k];
  if (s.rank == 0) {  // scalars: one axis of 1
    s.rank = 1;
    s.d[0] = 1;
  }
  return s;
}
// Strides of `in` broadcast (numpy rules, right-aligned) to `out` (tandem/broadcast.h), as a
// Shape over out's rank; an error names `where` when in does not broadcast to out.
inline Shape bcast_strides(const Dims& in, const Dims& out, const std::string& where) {
  if (in.size() > out.size()) fail(where, "input rank exceeds output rank in broadcast");
  const size_t off = out.size() - in.size();
  for (size_t k = 0; k < in.size(); ++k)
    if (in[k] != out[k + off] && in[k] != 1)
      fail(where, "cannot broadcast " + dims_to_string(in) + " to " + dims_to_string(out));
  const Strides st = broadcast_strides(in, out);
  Shape s = shape_of(out, where);
  for (size_t k = 0; k < out.size(); ++k) s.d[k] = st[k];
  if (out.empty()) s.d[0] = 0;
  return s;
}
inline int dt_of(DataType t) { return int(t); }  // cuda::Dt lists the types in DataType's order
static_assert(int(DataType::kBFloat16) == cuda::kBF16 && kDataTypeCount == cuda::kBF16 + 1,
              "cuda::Dt (kernels.h) must list every DataType in the enum's order");
inline int ctz(uint32_t m) {
  int k = 0;
  while (m && !(m & 1u)) m >>= 1, ++k;
  return k;
}
inline std::string join_dims(const Dims& d) { return dims_to_string(d); }

// And, Or, Xor: bool operands, the logic kernel.
inline bool is_logic_op(ElementWiseOp op) {
  switch (op) {
    case ElementWiseOp::kAnd: case ElementWiseOp::kOr: case ElementWiseOp::kXor:
      return true;
    case ElementWiseOp::kSum: case ElementWiseOp::kProd: case ElementWiseOp::kMax: case ElementWiseOp::kMin:
    case ElementWiseOp::kSub: case ElementWiseOp::kDiv: case ElementWiseOp::kPow: case ElementWiseOp::kFloorDiv:
    case ElementWiseOp::kEqual: case ElementWiseOp::kGreater: case ElementWiseOp::kLess:
      return false;
  }
  return false;
}

// ---- small RAII for cuDNN descriptors ----------------------------------------------------------
struct ConvDescs {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr, b = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  cudnnActivationDescriptor_t act = nullptr;
  ~ConvDescs() {
    if (x) cudnnDestroyTensorDescriptor(x);
    if (y) cudnnDestroyTensorDescriptor(y);
    if (b) cudnnDestroyTensorDescriptor(b);
    if (w) cudnnDestroyFilterDescriptor(w);
    if (conv) cudnnDestroyConvolutionDescriptor(conv);
    if (act) cudnnDestroyActivationDescriptor(act);
  }
};
struct MatmulDescs {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
  bool d_f32 = false;  // C and D are FP32 (the accumulator for tandem's epilogue kernel), else half
  ~MatmulDescs() {
    if (op) cublasLtMatmulDescDestroy(op);
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (c) cublasLtMatrixLayoutDestroy(c);
  }
};

// The FP32-accumulator route of a real FP16 convolution (build_convolution_h): cuDNN's FP32
// convolution of the half input widened to float, then tandem's epilogue kernel rounding once.
struct ConvF32Acc {
  std::shared_ptr<ConvDescs> D;  // FP32 NHWC descriptors
  cudnnConvolutionFwdAlgo_t algo{};
  size_t ws = 0;
  const float* w = nullptr;  // the half-rounded weights widened to float, KRSC
  float ms = -1.f;           // the whole step (widen, convolve, epilogue), when timed
};

// The one-kernel route of a real FP16 convolution whose epilogue cuDNN's legacy fused call cannot
// take: cuDNN's graph API (cudnn_fused_conv.h), one plan kept.
// A real FP16 convolution's weights as its routes read them (upload_conv_weights_h).
struct ConvWeightsH {
  std::vector<__half> wh;            // KRSC half, host copy (the two-pass route widens it)
  const void* w = nullptr;           // its device copy
  std::vector<float> bias;           // K values on the half grid (zeros when the layer has none)
  const float* b = nullptr;          // device FP32 bias, null when the layer has none
  const void* b_half = nullptr;      // device half bias (cuDNN's fused call)
};

struct ConvGraphRoute {
  std::shared_ptr<CudnnFusedConv> conv;  // null: not taken
  const float* consts = nullptr;         // the device copy of conv->constants()
  int plan = 0;                          // which of conv's plans (in the heuristics' order) runs
  float ms = -1.f;                       // the fused step, when timed
  float two_pass_ms = -1.f;              // the FP32-accumulator route's time it beat
};

inline const char* fwd_algo_name(int a) {
  static const char* n[] = {"IMPLICIT_GEMM", "IMPLICIT_PRECOMP_GEMM", "GEMM", "DIRECT", "FFT",
                            "FFT_TILING", "WINOGRAD", "WINOGRAD_NONFUSED"};
  return a >= 0 && a < 8 ? n[a] : "?";
}
inline const char* bwd_algo_name(int a) {
  static const char* n[] = {"ALGO_0", "ALGO_1", "FFT", "FFT_TILING", "WINOGRAD", "WINOGRAD_NONFUSED"};
  return a >= 0 && a < 6 ? n[a] : "?";
}

class CudaExecutorImpl;

// Whether the CUDA backend reads and writes int8 codes for a layer (LowerPolicy::int8_native;
// the lowering adds the precision rules): a 2D convolution with its weights in the layer (INT8:
// build_convolution_i8), or a one-input activation (INT8 or native FP16: build_activation_i8).
inline bool native_int8_layer(const Network& net, LayerId id) {
  const Layer& L = net.layers[size_t(id)];
  if (L.inputs.size() != 1 || L.outputs.size() != 1 || net.tensors[size_t(L.inputs[0])].type != DataType::kFloat)
    return false;
  const Dims& xd = net.tensors[size_t(L.inputs[0])].dims;
  const Dims& yd = net.tensors[size_t(L.outputs[0])].dims;
  if (L.kind == LayerKind::kActivation) return xd == yd;
  if (L.kind != LayerKind::kConvolution) return false;
  const auto& P = L.as<ConvolutionParams>();
  const int64_t G = std::max<int64_t>(1, P.groups);
  return P.kernel.size() == 2 && P.kernel_weights >= 0 && xd.size() == 4 && yd.size() == 4 && xd[1] % G == 0 &&
         yd[1] % G == 0;
}

// Whether the CUDA backend computes an FP16 layer for real in half precision
// (LowerPolicy::fp16_native): the layers with half kernels here, in the shapes those take.
// Anything else in an FP16 engine is emulated (FP32 arithmetic on rounded values).
inline bool native_fp16_layer(const Network& net, LayerId id) {
  const Layer& L = net.layers[size_t(id)];
  if (L.inputs.empty() || L.outputs.size() != 1) return false;
  for (TensorId t : L.inputs)
    if (net.tensors[size_t(t)].type != DataType::kFloat || net.tensors[size_t(t)].dims.size() > size_t(cuda::kMaxRank))
      return false;
  const Dims& xd = net.tensors[size_t(L.inputs[0])].dims;
  const Dims& yd = net.tensors[size_t(L.outputs[0])].dims;
  auto get = [](const Dims& d, size_t k, int64_t def) { return d.size() > k ? d[k] : def; };
  if (L.kind == LayerKind::kConvolution) {
    const auto& P = L.as<ConvolutionParams>();
    if (L.inputs.size() != 1 || P.kernel.size() != 2 || xd.size() != 4 || yd.size() != 4) return false;
    const int64_t G = std::max<int64_t>(1, P.groups);
    if (xd[1] % G) return false;
    // Symmetric pre-padding must give the output size (no explicitly padded copy in half).
    auto out_size = [&](size_t k) {
      int64_t d = get(P.dilation, k, 1), kk = P.kernel[k];
      return (xd[2 + k] + 2 * get(P.pre_padding, k, 0) - (d * (kk - 1) + 1)) / get(P.stride, k, 1) + 1;
    };
    return out_size(0) == yd[2] && out_size(1) == yd[3];
  }
  if (L.kind == LayerKind::kPooling)
    return L.as<PoolingParams>().window.size() == 2 && xd.size() == 4;
  if (L.kind == LayerKind::kActivation) return L.inputs.size() == 1;
  if (L.kind == LayerKind::kElementWise) {
    const ElementWiseOp op = L.as<ElementWiseParams>().op;
    const bool arith = op == ElementWiseOp::kSum || op == ElementWiseOp::kProd || op == ElementWiseOp::kMax ||
                       op == ElementWiseOp::kMin || op == ElementWiseOp::kSub || op == ElementWiseOp::kDiv;
    // A 4-d operand is channels-last: only into a 4-d output (strides permuted alike).
    const bool layouts = yd.size() == 4 || (net.tensors[size_t(L.inputs[0])].dims.size() != 4 &&
                                            net.tensors[size_t(L.inputs[1])].dims.size() != 4);
    return arith && L.inputs.size() == 2 && layouts;
  }
  if (L.kind == LayerKind::kReduce) {
    const ReduceOp op = L.as<ReduceParams>().op;
    return xd.size() == 4 && L.as<ReduceParams>().axes == 0b1100u && op != ReduceOp::kProd;
  }
  if (L.kind == LayerKind::kMatrixMultiply) {
    // Rank <= 3: a 4-d half value is channels-last, not a batch of matrices.
    const Dims& bd = net.tensors[size_t(L.inputs[1])].dims;
    return L.inputs.size() == 2 && xd.size() >= 2 && xd.size() <= 3 && bd.size() >= 2 && bd.size() <= 3;
  }
  if (L.kind == LayerKind::kConcatenation) return true;
  return false;
}
// A 4-d half value is channels-last in memory (the CUDA policy's fp16_nhwc).
inline bool is_nhwc(const ExecValue& v) { return v.float_as_half() && v.dims.size() == 4; }
// Logical NCHW coordinates in NHWC's physical order.
inline Shape to_nhwc_order(Shape s) {
  if (s.rank != 4) return s;
  Shape p = s;
  p.d[1] = s.d[2], p.d[2] = s.d[3], p.d[3] = s.d[1];
  return p;
}
// Floats as half (round to nearest even); 4-d NCHW data permuted to NHWC when nhwc.
inline std::vector<__half> to_half(const std::vector<float>& v, const Dims& d, bool nhwc) {
  std::vector<__half> h(v.size());
  if (!nhwc || d.size() != 4) {
    for (size_t i = 0; i < v.size(); ++i) h[i] = __float2half_rn(v[i]);
    return h;
  }
  const int64_t C = d[1], HW = d[2] * d[3];
  for (int64_t n = 0; n < d[0]; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t p = 0; p < HW; ++p) h[size_t((n * HW + p) * C + c)] = __float2half_rn(v[size_t((n * C + c) * HW + p)]);
  return h;
}

// One launched step: a layer (or a fused pair), its launch closure.
struct LaunchStep {
  std::string layer;
  std::string kind;
  std::function<void(cudaStream_t)> launch;
};

class CudaExecutorImpl final : public CudaExecutor {
 public:
  CudaExecutorImpl(const Network& net, const ExecOptions& opt, const CudaOptions& copt,
                   bool keep_all)
      : net_(net), opt_(opt), copt_(copt), keep_all_(keep_all) {
    where_ = "init";
    // ExecOptions::emulate_numerics (compare): FP16/INT8 layers as the CPU emulates them.
    if (opt_.emulate_numerics) copt_.real_fp16 = copt_.real_int8 = false;
    CK(cudaSetDevice(copt_.device));
    CK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    CK(cudnnCreate(&cudnn_));
    CK(cudnnSetStream(cudnn_, stream_));
    CK(cublasLtCreate(&lt_));
    CK(cudaEventCreate(&ev0_));
    CK(cudaEventCreate(&ev1_));
    CK(cudaEventCreate(&ev_h2d_));
    CK(cudaEventCreate(&ev_d2h_));
    compile();
  }
  ~CudaExecutorImpl() override {
    if (graph_exec_) cudaGraphExecDestroy(graph_exec_);
    fused_convs_.clear();  // cuDNN graph plans, before their handle
    graph_plans_.clear();
    for (void* p : allocations_) cudaFree(p);
    if (ev0_) cudaEventDestroy(ev0_);
    if (ev1_) cudaEventDestroy(ev1_);
    if (ev_h2d_) cudaEventDestroy(ev_h2d_);
    if (ev_d2h_) cudaEventDestroy(ev_d2h_);
    if (lt_) cublasLtDestroy(lt_);
    if (cudnn_) cudnnDestroy(cudnn_);
    if (stream_) cudaStreamDestroy(stream_);
    for (PinnedBuffer* b : {&pinned_in_, &pinned_out_, &pinned_observed_})
      if (b->p) cudaFreeHost(b->p);
  }

  TensorMap run(const TensorMap& inputs) override {
    where_ = "run";
    CK(cudaSetDevice(copt_.device));
    // The split: ev_h2d_ | uploads | ev0_ | launches | ev1_ | downloads | ev_d2h_.
    CK(cudaEventRecord(ev_h2d_, stream_));
    upload_inputs(inputs);
    CK(cudaEventRecord(ev0_, stream_));
    launch_all();
    CK(cudaEventRecord(ev1_, stream_));
    const std::vector<size_t> out_at = download(net_.outputs, pinned_out_);
    // Read back besides the outputs: what the observer is given, or every tensor for keep_all.
    std::vector<TensorId> extra;
    if (opt_.observe_tensor) extra = observed_tensors();
    else if (keep_all_)
      for (TensorId t = 0; t < TensorId(net_.tensors.size()); ++t)
        if (ptr_[t]) extra.push_back(t);
    const std::vector<size_t> extra_at = download(extra, pinned_observed_);
    CK(cudaEventRecord(ev_d2h_, stream_));
    CK(cudaStreamSynchronize(stream_));
    CK(cudaGetLastError());
    CK(cudaEventElapsedTime(&last_ms_, ev0_, ev1_));
    float h2d = 0, d2h = 0;
    CK(cudaEventElapsedTime(&h2d, ev_h2d_, ev0_));
    CK(cudaEventElapsedTime(&d2h, ev1_, ev_d2h_));
    split_ = RunSplit{h2d, last_ms_, d2h, true};
    TensorMap out;
    for (size_t i = 0; i < net_.outputs.size(); ++i)
      out[net_.tensors[net_.outputs[i]].name] = host_copy(net_.outputs[i], pinned_out_.at(out_at[i]));
    if (keep_all_) all_.clear();
    for (size_t i = 0; i < extra.size(); ++i) {
      const char* h = pinned_observed_.at(extra_at[i]);
      if (opt_.observe_tensor) opt_.observe_tensor(extra[i], h);
      if (keep_all_) all_[net_.tensors[extra[i]].name] = host_copy(extra[i], h);
    }
    if (copt_.cuda_graph && !graph_tried_) try_capture();
    return out;
  }

  const TensorMap& all_tensors() const override { return all_; }
  std::string backend_name() const override { return "cuda"; }
  const std::vector<TacticRecord>& tactics() const override { return tactics_; }
  std::string device_key() const override { return device_key_; }
  size_t arena_bytes() const override { return arena_bytes_; }
  size_t weight_bytes() const override { return weight_bytes_; }
  bool using_cuda_graph() const override { return graph_exec_ != nullptr; }
  float last_run_ms() const override { return last_ms_; }
  RunSplit last_run_split() const override { return split_; }

  std::vector<StepTime> profile(int iters) override {
    where_ = "profile";
    if (iters < 1) fail(where_, "iterations " + std::to_string(iters) + " must be >= 1");
    CK(cudaSetDevice(copt_.device));
    std::vector<cudaEvent_t> ev(steps_.size() + 1);
    for (auto& e : ev) CK(cudaEventCreate(&e));
    std::vector<StepTime> out(steps_.size());
    for (size_t i = 0; i < steps_.size(); ++i) out[i].layer = steps_[i].layer, out[i].kind = steps_[i].kind;
    for (int it = 0; it < iters; ++it) {
      CK(cudaEventRecord(ev[0], stream_));
      for (size_t i = 0; i < steps_.size(); ++i) {
        steps_[i].launch(stream_);
        CK(cudaEventRecord(ev[i + 1], stream_));
      }
      CK(cudaEventSynchronize(ev.back()));
      for (size_t i = 0; i < steps_.size(); ++i) {
        float ms = 0;
        CK(cudaEventElapsedTime(&ms, ev[i], ev[i + 1]));
        out[i].ms += ms / float(iters);
      }
    }
    for (auto& e : ev) cudaEventDestroy(e);
    return out;
  }

  std::vector<float> time_device(int iters) override {
    where_ = "time_device";
    CK(cudaSetDevice(copt_.device));
    std::vector<float> ts;
    for (int i = 0; i < iters; ++i) {
      CK(cudaEventRecord(ev0_, stream_));
      launch_all();
      CK(cudaEventRecord(ev1_, stream_));
      CK(cudaEventSynchronize(ev1_));
      float ms = 0;
      CK(cudaEventElapsedTime(&ms, ev0_, ev1_));
      ts.push_back(ms);
    }
    CK(cudaGetLastError());
    return ts;
  }

 private:
  // ---- host copies -----------------------------------------------------------------------------
  // Page-locked host memory, grown on demand and reused by every run: cudaMemcpyAsync from and to
  // it is a DMA on the context's stream (pageable memory would go through a driver bounce buffer).
  struct PinnedBuffer {
    char* p = nullptr;
    size_t bytes = 0;
    char* at(size_t off) const { return p + off; }
  };
  void reserve_pinned(PinnedBuffer& b, size_t bytes) {
    if (bytes <= b.bytes) return;
    if (b.p) CK(cudaFreeHost(b.p));
    b.p = nullptr;
    b.bytes = 0;
    CK(cudaMallocHost(reinterpret_cast<void**>(&b.p), bytes));
    b.bytes = bytes;
  }
  // Offsets of `ts` in one staging buffer (each 256-byte aligned), and the buffer reserved.
  std::vector<size_t> stage_layout(const std::vector<TensorId>& ts, PinnedBuffer& b) {
    std::vector<size_t> at(ts.size());
    size_t total = 0;
    for (size_t i = 0; i < ts.size(); ++i) {
      at[i] = total;
      total += (size_t(stored_bytes(net_, ts[i])) + 255) / 256 * 256;
    }
    reserve_pinned(b, std::max<size_t>(total, 256));
    return at;
  }
  // Checks each input, copies it into the pinned staging buffer and queues its upload.
  void upload_inputs(const TensorMap& inputs) {
    check_input_values(net_.model.input_values, inputs, "cuda backend");
    const std::vector<size_t> at = stage_layout(net_.inputs, pinned_in_);
    for (size_t i = 0; i < net_.inputs.size(); ++i) {
      const TensorId t = net_.inputs[i];
      const Tensor& tt = net_.tensors[t];
      auto it = inputs.find(tt.name);
      auto fixed = net_.model.input_values.find(tt.name);  // a shape-value input may be left out: its values are fixed
      if (it == inputs.end() && fixed == net_.model.input_values.end())
        throw Error("cuda backend: missing input '" + tt.name + "'");
      const HostTensor fixed_values =
          it == inputs.end() ? input_values_tensor(tt.name, tt.type, tt.dims, fixed->second) : HostTensor{};
      const HostTensor& h = it != inputs.end() ? it->second : fixed_values;
      if (h.dims != tt.dims || h.type != tt.type)
        throw Error("cuda backend: input '" + tt.name + "' is " + std::string(to_string(h.type)) +
                    " " + join_dims(h.dims) + ", expected " + std::string(to_string(tt.type)) +
                    " " + join_dims(tt.dims));
      if (h.data.size() != bytes_of(t))
        throw Error("cuda backend: input '" + tt.name + "' holds " + std::to_string(h.data.size()) +
                    " bytes, expected " + std::to_string(bytes_of(t)));
      if (h.data.empty() || !ptr_[t]) continue;
      std::memcpy(pinned_in_.at(at[i]), h.data.data(), h.data.size());
      CK(cudaMemcpyAsync(ptr_[t], pinned_in_.at(at[i]), h.data.size(), cudaMemcpyHostToDevice, stream_));
    }
  }
  // Queues the downloads of `ts` into `b` (read after the stream is synchronized).
  std::vector<size_t> download(const std::vector<TensorId>& ts, PinnedBuffer& b) {
    const std::vector<size_t> at = stage_layout(ts, b);
    for (size_t i = 0; i < ts.size(); ++i)
      if (bytes_of(ts[i]) && ptr_[ts[i]])  // a data-dependent output with its extent after the elements
        CK(cudaMemcpyAsync(b.at(at[i]), ptr_[ts[i]], size_t(stored_bytes(net_, ts[i])), cudaMemcpyDeviceToHost, stream_));
    return at;
  }
  HostTensor host_copy(TensorId t, const char* staged) const {
    const Tensor& tt = net_.tensors[t];
    HostTensor h;
    h.name = tt.name;
    h.type = tt.type;
    h.dims = tt.dims;
    const int dd_axis = data_dependent_axis(net_, t);
    if (dd_axis >= 0 && ptr_[t]) {  // the real shape's elements, packed at the start
      h.dims = data_dependent_dims(tt.dims, dd_axis, tt.type, staged, tt.name);
      h.data.assign(staged, staged + volume(h.dims) * int64_t(element_size(tt.type)));
      return h;
    }
    h.data.resize(bytes_of(t));
    if (!h.data.empty() && ptr_[t]) std::memcpy(h.data.data(), staged, h.data.size());
    else std::fill(h.data.begin(), h.data.end(), uint8_t(0));
    return h;
  }
  // ExecOptions::observe_tensor: the network tensors the observer is given after each run (every
  // materialized one: the lowering keeps them all, as keep_all). A value a real FP16 layer stores
  // as half or channels-last is not the tensor's linear FP32 form: not observed (calibration
  // runs FP32 numerics, where there is none).
  const std::vector<TensorId>& observed_tensors() {
    if (!observed_ready_) {
      for (TensorId t = 0; t < TensorId(net_.tensors.size()); ++t) {
        const ExecValue& v = graph_.values[size_t(t)];
        if (ptr_[t] && v.storage == v.type && v.layout == ValueLayout::kLinear) observed_.push_back(t);
      }
      observed_ready_ = true;
    }
    return observed_;
  }

  // ---- compile ---------------------------------------------------------------------------------
  struct Residual;  // (defined with DPtr, below)
  void compile();
  LowerPolicy cuda_policy() const;
  void upload_constants();
  void bind_arena();
  void build_step(const ExecStep& st);
  void build_round(const ExecStep& st);
  void build_convert(const ExecStep& st);
  void build_chain(const ExecStep& st);
  void build_native_fp16(LayerId id, const Layer& L);
  void build_convolution_h(LayerId id, const Layer& L);
  ConvWeightsH upload_conv_weights_h(LayerId id, const Layer& L, int64_t K, int64_t cg, int kh, int kw);
  void record_conv_tactic_h(const Layer& L, const Dims& xd, const Dims& yd, int64_t G, cudnnConvolutionFwdAlgo_t algo,
                            const std::string& epilogue, const char* residual, float ms, size_t ws);
  std::shared_ptr<MatmulDescs> conv_gemm_descs(int64_t rows, int64_t C, int64_t K,
                                               cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_DEFAULT,
                                               const void* bias_h = nullptr, bool d_f32 = false);
  cublasLtEpilogue_t gemm_epilogue(bool has_bias) const;
  float time_conv_gemm(const MatmulDescs& D, const void* wdev, const void* x, void* y, const void* z = nullptr);
  float time_conv_gemm_f32acc(const MatmulDescs& D, const void* wdev, const void* x, void* y, const float* bdev,
                              int64_t K, const cuda::PwChain& epi);
  std::shared_ptr<ConvDescs> conv_descs_h(const Layer& L, const Dims& xd, const Dims& yd, int64_t K, int64_t G, int kh,
                                          int kw, cudnnDataType_t type = CUDNN_DATA_HALF);
  bool f32acc_epilogues() const;
  bool own_depthwise_h(const Layer& L, const void* wdev, const Dims& xd, const Dims& yd, int kh, int kw,
                       const float* bdev, const cuda::PwChain& epi, TensorId out, float cudnn_ms);
  ConvF32Acc prepare_conv_f32acc_h(const Layer& L, const std::vector<__half>& wh, const Dims& xd, const Dims& yd,
                                   int64_t K, int64_t G, int kh, int kw, void* x, const float* bdev,
                                   const cuda::PwChain& epi, void* y);
  void add_conv_f32acc_h(const Layer& L, const ConvF32Acc& r, const Dims& xd, const Dims& yd, int64_t K, int64_t G,
                         const float* bdev, const cuda::PwChain& epi, TensorId out);
  int time_graph_plans(CudnnFusedConv& conv, const void* x, size_t x_bytes, const void* w, void* y,
                       const float* consts, float* ms);
  ConvGraphRoute prepare_conv_graph_h(const Layer& L, const Dims& xd, const Dims& yd, int64_t K, int64_t G, int kh,
                                      int kw, void* x, const void* wdev, const std::vector<float>& bias,
                                      const cuda::PwChain& epi, void* y, float two_pass_ms);
  void add_conv_graph_h(const Layer& L, const ConvGraphRoute& r, const Dims& xd, const Dims& yd, int64_t G,
                        const void* wdev, const cuda::PwChain& epi, TensorId out);
  void build_conv_gemm_h(const Layer& L, int64_t rows, int64_t C, int64_t K, const void* wdev, const float* bdev,
                         std::shared_ptr<MatmulDescs> D, float time_ms, bool epilogue_in_gemm = false,
                         const Residual* res = nullptr);
  void build_concat_h(const Layer& L);
  // The residual add (+ ReLU) a real FP16 convolution takes into its epilogue (docs/cuda-backend.md).
  bool residual_after_conv(const Layer& L, Residual* r, bool check_memory) const;
  void relocate_residual_outputs();
  void mark_residual_fused(const Residual& r) {
    const size_t k = size_t(cur_step_ - graph_.steps.data());
    fused_away_[k + 1] = 1;
    if (r.relu) fused_away_[k + 2] = 1;
  }
  float time_launch(const std::function<bool()>& once);
  // time_launch with a temporary workspace of ws bytes (the scratch buffer exists only once every
  // step is built).
  float time_with_workspace(size_t ws, const std::function<bool(void*)>& once);
  struct ConvEpilogueH {
    cuda::PwChain epi{};
    TensorId out = -1;   // the last absorbed layer's output (the step's)
    int act = -1;        // the fused activation's ActivationType; -1: none
    bool has_chain = false;
  };
  ConvEpilogueH conv_epilogue_h(bool residual, const Residual& res, TensorId yt);
  // The end of a residual block of an INT8 plan: the FP16 sum, its activation and the codes of
  // the result for the next INT8 convolutions, in one kernel (residual_join).
  struct ResidualJoin {
    size_t step = 0;              // the sum's step
    ValueId a = -1, z = -1;       // its half operands
    ValueId out = -1;             // the half value written: the activation's output, or the sum
    ValueId codes = -1;           // the codes written (a round step's output); -1: none
    int later_steps = 0;          // the steps after the sum's that launch nothing (1 or 2)
    cuda::PwChain act{};          // the activation (n_ops 0: none)
  };
  bool residual_join(size_t k, ResidualJoin* j, bool check_memory) const;
  void build_residual_join(const ResidualJoin& j);
  // A ReLU over codes, the max pooling after it and the codes of the pooled value, as one
  // pooling over the codes (maxpool_over_codes).
  struct PoolOverCodes {
    size_t step = 0;          // the activation's step; the pooling's and the round step follow
    ValueId x = -1, codes = -1;
    LayerId pool = -1;
    cuda::PwChain act{};
  };
  bool maxpool_over_codes(size_t k, PoolOverCodes* f) const;
  void build_maxpool_over_codes(const PoolOverCodes& f);
  float time_residual_apart(const Residual& r, TensorId yt);
  // Real INT8 (CudaOptions::real_int8): convolutions on int8 codes with int32 sums.
  float int8_grid_scale(ValueId v) const;
  void pad_narrow_codes();
  int64_t codes_channels(ValueId v, int64_t c) const {
    const auto it = padded_codes_.find(v);
    return it == padded_codes_.end() ? c : it->second;
  }
  bool build_int8(LayerId id, const Layer& L);
  cuda::PwChain step_chain(TensorId* out);
  void build_convolution_i8(LayerId id, const Layer& L, float x_scale);
  bool build_int8_codes_step(const ExecStep& st, const Layer& L);
  void build_quantize_codes(const ExecStep& st);
  void build_activation_i8(const ExecStep& st, const Layer& L);
  std::shared_ptr<MatmulDescs> int8_gemm_descs(int64_t rows, int64_t kc, int64_t k_out, const void* wq, float* ms,
                                               int* pick);
  // The one-kernel route of a real INT8 convolution (cuDNN's graph API, cudnn_fused_conv.h).
  // join: the residual join's operands (s.join on) bound before the plans are timed.
  ConvGraphRoute prepare_conv_graph_i8(const Layer& L, const FusedConvSpec& s, const void* x, const void* w, void* y,
                                       float gemm_route_ms, const cuda::TiledJoin* join = nullptr);
  float time_int8_gemm_route(const std::function<void(const int8_t*, int8_t*, int32_t*, cudaStream_t)>& route,
                             const void* codes, size_t x_bytes, size_t col_bytes, size_t acc_bytes);
  Shape half_strides(TensorId t, const Dims& od) const;
  cuda::PwOp pw_op(const Epilogue& e) const;
  LayerId fused_activation() const;
  cuda::PwChain conv_epilogue(int act, float aa, float ab, TensorId* out) const;
  void build_layer(LayerId id);
  void build_dense_layer(LayerId id, const Layer& L);
  void build_reshaping_layer(LayerId id, const Layer& L);
  void build_other_layer(LayerId id, const Layer& L);
  void build_convolution(LayerId id, const Layer& L);
  cudnnConvolutionFwdAlgoPerf_t pick_fwd_algo(const Layer& L, const ConvDescs& D, bool tensor_ops);
  struct DPtr;
  bool own_depthwise_wins(const cuda::DwConv& q, const DPtr& x, const float* w, const float* b, float* y, int act,
                          float aa, float ab, float cudnn_ms, float* own_ms);
  void build_deconvolution(LayerId id, const Layer& L);
  void build_matmul(LayerId id, const Layer& L);
  void build_shuffle(LayerId id, const Layer& L);
  void validate_run();
  void try_capture();
  void launch_all() {
    if (graph_exec_) {
      CK(cudaGraphLaunch(graph_exec_, stream_));
      return;
    }
    for (auto& s : steps_) s.launch(stream_);
  }

  size_t bytes_of(TensorId t) const {
    const Tensor& tt = net_.tensors[t];
    return size_t(volume(tt.dims)) * element_size(tt.type);
  }
  void* dalloc(size_t bytes) {
    void* p = nullptr;
    if (bytes == 0) bytes = 256;
    CK(cudaMalloc(&p, bytes));
    allocations_.push_back(p);
    return p;
  }
  void* upload_half(const std::vector<__half>& v) {
    void* p = dalloc(v.size() * sizeof(__half));
    CK(cudaMemcpy(p, v.data(), v.size() * sizeof(__half), cudaMemcpyHostToDevice));
    weight_bytes_ += v.size() * sizeof(__half);
    return p;
  }
  // The value a layer reads for input tensor t (a rounded or converted copy, or t).
  const ExecValue& read_value(TensorId t) const {
    auto it = in_override_.find(t);
    return graph_.values[size_t(it != in_override_.end() ? it->second : t)];
  }
  // Frees an upload (dalloc) that no step reads after all.
  void release_upload(const void* p, size_t bytes) {
    auto it = std::find(allocations_.begin(), allocations_.end(), p);
    if (it == allocations_.end()) return;
    CK(cudaFree(*it));
    allocations_.erase(it);
    weight_bytes_ -= bytes;
  }
  float* upload_f32(const std::vector<float>& v) {
    float* p = static_cast<float*>(dalloc(v.size() * sizeof(float)));
    CK(cudaMemcpy(p, v.data(), v.size() * sizeof(float), cudaMemcpyHostToDevice));
    weight_bytes_ += v.size() * sizeof(float);
    return p;
  }
  std::vector<float> weights_f32(WeightsId w, const std::string& what) const {
    if (w < 0 || w >= WeightsId(net_.weights.size())) fail(where_, "missing " + what + " weights");
    const Weights& W = net_.weights[w];
    std::vector<float> v(size_t(W.count()));
    for (size_t i = 0; i < v.size(); ++i) v[i] = float(W.at(int64_t(i)));
    return v;
  }
  Precision precision_of(LayerId id) const {
    const auto& lp = opt_.numerics.layer_precision;
    return size_t(id) < lp.size() ? lp[id] : Precision::kUnset;
  }
  // Weights rounded as the layer's numerics ask (FP16: to half; INT8: per output channel).
  void round_weights(LayerId id, std::vector<float>& w, int64_t channels, bool channel_major,
                     int64_t inner_channels);
  // INT8: the bias joins the integer accumulator, quantized to int32 with scale s_in * s_w[k]
  // (as the CPU backend; w is the kernel before rounding, laid out as for round_weights).
  void quantize_bias(LayerId id, const Layer& L, const std::vector<float>& w, int64_t channels,
                     bool channel_major, int64_t inner, std::vector<float>& bias) const;
  // The device pointer a layer reads for input tensor t (numerics may substitute a rounded copy;
  // scratch exists only after compile: closures resolve a DPtr at launch with at()).
  struct DPtr {
    void* p = nullptr;
    size_t off = SIZE_MAX;
  };
  DPtr in(TensorId t) const {
    auto it = in_override_.find(t);
    if (it != in_override_.end()) return DPtr{ptr_[it->second], SIZE_MAX};
    return DPtr{ptr_[t], SIZE_MAX};
  }
  struct Residual {
    DPtr z;             // the other operand of the add (half, the convolution output's layout)
    TensorId out = -1;  // what the step writes: the add's output, or the ReLU's after it
    bool relu = false;
  };
  DPtr scr(size_t off) const { return DPtr{nullptr, off}; }
  void* at(const DPtr& d) const { return d.off == SIZE_MAX ? d.p : scratch_at(d.off); }
  template <class T> T* atf(const DPtr& d) const { return static_cast<T*>(at(d)); }
  // The INT8 graph route's step (prepare_conv_graph_i8 took it).
  struct Int8GraphStep {
    DPtr x, xq;  // the input (float or codes) and its codes
    int64_t c = 0;  // the codes' channels
    bool x_codes = false;
    float x_scale = 0.f;
    const void* w = nullptr;  // the filter the graph reads (int8 KRSC, or half codes with half_sums)
    void* y = nullptr;
    std::string key;
  };
  // tandem's tiled direct kernel for narrow inputs (cuda::conv_tiled_i8).
  struct Int8Tiled {
    cuda::ConvI8 q;
    DPtr x, xq;
    bool x_codes = false;
    float x_scale = 0.f;
    const float *alpha = nullptr, *bias = nullptr;
    cuda::PwChain chain{};
    int8_t* yq = nullptr;
    void* yh = nullptr;
    float y_scale = 0.f;
    std::string key;
  };
  bool conv_tiled_i8(const Layer& L, const Int8Tiled& a, const std::vector<int8_t>& wq,
                     const std::function<float()>& gemm_ms);
  int32_t* tiled_weights(const cuda::ConvI8& q, const std::vector<int8_t>& wq, size_t* bytes);
  // tandem's implicit-GEMM kernel (cuda::conv_igemm_i8) over the [K, kc] KRSC codes w: its time
  // on the layer's buffers (ms; -1: it cannot run), and its step.
  static constexpr float kIgemmForced = -2.f;
  float igemm_i8(const Layer& L, const Int8Tiled& a, const void* w, bool fits, const std::function<float()>& gemm_ms,
                 float* vs);
  float time_igemm_i8(const Int8Tiled& a, const void* w);
  void add_direct_i8(const Layer& L, const Int8Tiled& a, const void* w, float* y);
  void add_igemm_i8(const Layer& L, const Int8Tiled& a, const void* w, float ms, float other_ms);
  // Where the fused convolution + join of conv_join_i8 runs the implicit GEMM: its time (-1: not).
  float time_igemm_join_i8(const Int8Tiled& a, const void* w, const cuda::TiledJoin& tj);
  // The INT8 convolution built last (writing half on its grid), for conv_join_i8: its tiled
  // kernels' arguments, its codes, and its cuDNN graph spec (graph.k == 0: no graph route).
  struct LastInt8Conv {
    Int8Tiled a;
    std::vector<int8_t> wq;
    FusedConvSpec graph;
  };
  std::unique_ptr<LastInt8Conv> last_i8_conv_;
  void conv_join_i8(size_t k);
  enum class JoinKernel { kTiled, kIgemm, kGraph };  // conv_tiled_i8, conv_igemm_i8, a cuDNN graph
  struct JoinPick {
    const void* w = nullptr;  // the fused kernel's weights (null: not fused)
    JoinKernel kernel = JoinKernel::kTiled;
    ConvGraphRoute graph;     // kGraph: the route (its plan, constants)
    float ms = -1.f, apart_ms = -1.f;
  };
  JoinPick pick_conv_join_i8(const LastInt8Conv& last, const Layer& L, const cuda::TiledJoin& tj, int mode,
                             bool tiled_ok, bool ig_ok, bool graph_ok, size_t n);
  JoinPick graph_join_i8(const LastInt8Conv& last, const Layer& L, const cuda::TiledJoin& tj, float beat_ms);
  void add_conv_graph_i8(const Layer& L, const FusedConvSpec& gs, const ConvGraphRoute& r, const Int8GraphStep& a);
  // The FP16 tensor-core route of an INT8 convolution (FusedConvSpec::half_sums); false: not taken.
  bool conv_half_sums_i8(const Layer& L, FusedConvSpec gs, const std::vector<int8_t>& wq, Int8GraphStep a,
                         float beat_ms);
  // Scratch: one buffer shared by all layers (they run one after another on one stream).
  size_t reserve_scratch(size_t bytes) {
    size_t off = scratch_cursor_;
    scratch_cursor_ += (bytes + 255) / 256 * 256;
    scratch_need_ = std::max(scratch_need_, scratch_cursor_);
    return off;
  }
  void* scratch_at(size_t off) const { return static_cast<char*>(scratch_) + off; }
  void add_step(const std::string& layer, std::function<void(cudaStream_t)> f) {
    steps_.push_back({layer, cur_kind_, std::move(f)});
  }
  [[noreturn]] void unsupported(const Layer& L, const std::string& what) const {
    fail("layer '" + L.name + "' (" + std::string(to_string(L.kind)) + ")", what);
  }
  void require_float(const Layer& L, TensorId t) const {
    if (net_.tensors[t].type != DataType::kFloat)
      unsupported(L, "tensor '" + net_.tensors[t].name + "' is " +
                         std::string(to_string(net_.tensors[t].type)) + ", only fp32 is supported here");
  }

  const Network net_;  // a copy: the executor outlives the caller's network
  ExecOptions opt_;
  CudaOptions copt_;
  bool keep_all_;
  std::string where_;

  cudaStream_t stream_ = nullptr;
  cudnnHandle_t cudnn_ = nullptr;
  cublasLtHandle_t lt_ = nullptr;
  cudaEvent_t ev0_ = nullptr, ev1_ = nullptr;
  cudaEvent_t ev_h2d_ = nullptr, ev_d2h_ = nullptr;  // before the uploads, after the downloads
  RunSplit split_;
  cudaGraphExec_t graph_exec_ = nullptr;
  bool graph_tried_ = false;
  std::string graph_note_;

  std::vector<void*> allocations_;
  ExecGraph graph_;                         // what lower() decided
  const ExecStep* cur_step_ = nullptr;      // the step being built
  std::vector<void*> ptr_;                  // device pointer per value (null: elided / empty)
  std::map<TensorId, ValueId> in_override_;  // step being built: tensor -> its rounded copy
  char* arena_ = nullptr;
  size_t arena_bytes_ = 0, weight_bytes_ = 0;
  void* scratch_ = nullptr;
  size_t scratch_need_ = 0, scratch_cursor_ = 0;
  void* lt_workspace_ = nullptr;
  size_t lt_workspace_bytes_ = size_t(32) << 20;

  std::vector<LaunchStep> steps_;
  std::vector<char> fused_away_;  // per graph step: its layers run in an earlier step's epilogue
  std::map<ValueId, int64_t> padded_codes_;  // codes values stored with this many channels (pad_narrow_codes)
  std::string cur_kind_;
  std::vector<std::shared_ptr<ConvDescs>> conv_descs_;
  std::vector<std::shared_ptr<MatmulDescs>> mm_descs_;
  std::vector<std::shared_ptr<CudnnFusedConv>> fused_convs_;  // the cuDNN graph kernels the steps run
  // Per graph structure (CudnnFusedConv::signature): the convolution that finalized its plans, or
  // null and why none finalized.
  std::map<std::string, std::pair<std::shared_ptr<CudnnFusedConv>, std::string>> graph_plans_;
  std::string plan_cache_;  // the device's folder of the cuDNN plan cache ("" off; plan_cache.h)
  std::vector<TacticRecord> tactics_;
  std::string device_key_;
  TensorMap all_;
  float last_ms_ = 0.f;
  PinnedBuffer pinned_in_, pinned_out_, pinned_observed_;  // staging of inputs, outputs, observed/kept tensors
  std::vector<TensorId> observed_;
  bool observed_ready_ = false;
};

// The timing cache's key of a convolution: shapes, geometry, groups and math mode.
inline std::string conv_tactic_key(const ConvolutionParams& P, const Dims& xd, const Dims& yd, int64_t G, bool tf32) {
  auto get = [](const Dims& d, size_t k, int64_t def) { return d.size() > k ? d[k] : def; };
  std::ostringstream key;
  key << "Convolution|x=" << join_dims(xd) << "|y=" << join_dims(yd) << "|k=" << int(P.kernel[0]) << "x"
      << int(P.kernel[1]) << "|s=" << int(get(P.stride, 0, 1)) << "x" << int(get(P.stride, 1, 1))
      << "|p=" << get(P.pre_padding, 0, 0) << "," << get(P.pre_padding, 1, 0) << "," << get(P.post_padding, 0, 0) << ","
      << get(P.post_padding, 1, 0) << "|d=" << int(get(P.dilation, 0, 1)) << "x" << int(get(P.dilation, 1, 1))
      << "|g=" << G << "|fp32" << (tf32 ? "|tf32" : "");
  return key.str();
}

// 2D pooling geometry of an NCHW input (nc = N * C).
inline cuda::Pool2d pool2d_of(const PoolingParams& P, const Dims& xd, const Dims& yd) {
  cuda::Pool2d p{};
  p.nc = int(xd[0] * xd[1]);
  p.h = int(xd[2]), p.w = int(xd[3]), p.oh = int(yd[2]), p.ow = int(yd[3]);
  p.kh = int(P.window[0]), p.kw = int(P.window[1]);
  p.sh = P.stride.size() == 2 ? int(P.stride[0]) : 1;
  p.sw = P.stride.size() == 2 ? int(P.stride[1]) : 1;
  p.ph = P.pre_padding.size() == 2 ? int(P.pre_padding[0]) : 0;
  p.pw = P.pre_padding.size() == 2 ? int(P.pre_padding[1]) : 0;
  p.hp = int(xd[2] + (P.post_padding.size() == 2 ? P.post_padding[0] : 0));
  p.wp = int(xd[3] + (P.post_padding.size() == 2 ? P.post_padding[1] : 0));
  p.max = P.type == PoolingType::kMax;
  p.exclude_pad = P.average_count_excludes_padding;
  return p;
}

}  // namespace cuda_exec
}  // namespace tandem
