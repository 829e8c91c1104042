// The CUDA executor: compile once (memory plan, weight upload, tactic choice), run many times.
// See docs/cuda-backend.md for the supported layers, the memory plan and the numerics.
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

#include "backend/cuda/kernels.h"
#include "backend/cuda/kernels_index.h"
#include "tandem/cuda.h"
#include "tandem/broadcast.h"
#include "tandem/lower.h"
#include "tandem/numerics.h"

namespace tandem {
namespace {

using cuda::Shape;

// ---- error checking --------------------------------------------------------------------------
[[noreturn]] void fail(const std::string& where, const std::string& what) {
  throw Error("cuda backend: " + where + ": " + what);
}
void ck(cudaError_t e, const char* expr, const std::string& where) {
  if (e != cudaSuccess) fail(where, std::string(expr) + ": " + cudaGetErrorString(e));
}
void ck(cudnnStatus_t e, const char* expr, const std::string& where) {
  if (e != CUDNN_STATUS_SUCCESS) fail(where, std::string(expr) + ": " + cudnnGetErrorString(e));
}
void ck(cublasStatus_t e, const char* expr, const std::string& where) {
  if (e != CUBLAS_STATUS_SUCCESS) fail(where, std::string(expr) + ": cublas status " + std::to_string(int(e)));
}
#define CK(expr) ck((expr), #expr, where_)
#define CKW(expr, where) ck((expr), #expr, (where))

// ---- shapes ----------------------------------------------------------------------------------
Shape shape_of(const Dims& d, const std::string& where) {
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
Shape bcast_strides(const Dims& in, const Dims& out, const std::string& where) {
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
int dt_of(DataType t) { return int(t); }
int ctz(uint32_t m) {
  int k = 0;
  while (m && !(m & 1u)) m >>= 1, ++k;
  return k;
}
std::string join_dims(const Dims& d) { return dims_to_string(d); }

// And, Or, Xor: bool operands, the logic kernel.
bool is_logic_op(ElementWiseOp op) {
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
  ~MatmulDescs() {
    if (op) cublasLtMatmulDescDestroy(op);
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (c) cublasLtMatrixLayoutDestroy(c);
  }
};

const char* fwd_algo_name(int a) {
  static const char* n[] = {"IMPLICIT_GEMM", "IMPLICIT_PRECOMP_GEMM", "GEMM", "DIRECT", "FFT",
                            "FFT_TILING", "WINOGRAD", "WINOGRAD_NONFUSED"};
  return a >= 0 && a < 8 ? n[a] : "?";
}
const char* bwd_algo_name(int a) {
  static const char* n[] = {"ALGO_0", "ALGO_1", "FFT", "FFT_TILING", "WINOGRAD", "WINOGRAD_NONFUSED"};
  return a >= 0 && a < 6 ? n[a] : "?";
}

class CudaExecutorImpl;

// Whether the CUDA backend reads and writes int8 codes for a layer (LowerPolicy::int8_native;
// the lowering adds the precision rules): a 2D convolution with its weights in the layer (INT8:
// build_convolution_i8), or a one-input activation (INT8 or native FP16: build_activation_i8).
bool native_int8_layer(const Network& net, LayerId id) {
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
bool native_fp16_layer(const Network& net, LayerId id) {
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
bool is_nhwc(const ExecValue& v) { return v.float_as_half() && v.dims.size() == 4; }
// Logical NCHW coordinates in NHWC's physical order.
Shape to_nhwc_order(Shape s) {
  if (s.rank != 4) return s;
  Shape p = s;
  p.d[1] = s.d[2], p.d[2] = s.d[3], p.d[3] = s.d[1];
  return p;
}
// Floats as half (round to nearest even); 4-d NCHW data permuted to NHWC when nhwc.
std::vector<__half> to_half(const std::vector<float>& v, const Dims& d, bool nhwc) {
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
      total += (bytes_of(ts[i]) + 255) / 256 * 256;
    }
    reserve_pinned(b, std::max<size_t>(total, 256));
    return at;
  }
  // Checks each input, copies it into the pinned staging buffer and queues its upload.
  void upload_inputs(const TensorMap& inputs) {
    const std::vector<size_t> at = stage_layout(net_.inputs, pinned_in_);
    for (size_t i = 0; i < net_.inputs.size(); ++i) {
      const TensorId t = net_.inputs[i];
      const Tensor& tt = net_.tensors[t];
      auto it = inputs.find(tt.name);
      if (it == inputs.end()) throw Error("cuda backend: missing input '" + tt.name + "'");
      const HostTensor& h = it->second;
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
      if (bytes_of(ts[i]) && ptr_[ts[i]])
        CK(cudaMemcpyAsync(b.at(at[i]), ptr_[ts[i]], bytes_of(ts[i]), cudaMemcpyDeviceToHost, stream_));
    return at;
  }
  HostTensor host_copy(TensorId t, const char* staged) const {
    const Tensor& tt = net_.tensors[t];
    HostTensor h;
    h.name = tt.name;
    h.type = tt.type;
    h.dims = tt.dims;
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
  std::shared_ptr<MatmulDescs> conv_gemm_descs(int64_t rows, int64_t C, int64_t K,
                                               cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_DEFAULT,
                                               const void* bias_h = nullptr);
  cublasLtEpilogue_t gemm_epilogue(bool has_bias) const;
  float time_conv_gemm(const MatmulDescs& D, const void* wdev, const void* x, void* y);
  void build_conv_gemm_h(const Layer& L, int64_t rows, int64_t C, int64_t K, const void* wdev, const float* bdev,
                         std::shared_ptr<MatmulDescs> D, float time_ms, bool epilogue_in_gemm = false);
  void build_concat_h(const Layer& L);
  // Real INT8 (CudaOptions::real_int8): convolutions on int8 codes with int32 sums.
  float int8_grid_scale(ValueId v) const;
  bool build_int8(LayerId id, const Layer& L);
  cuda::PwChain step_chain(TensorId* out);
  void build_convolution_i8(LayerId id, const Layer& L, float x_scale);
  bool build_int8_codes_step(const ExecStep& st, const Layer& L);
  void build_quantize_codes(const ExecStep& st);
  void build_activation_i8(const ExecStep& st, const Layer& L);
  std::shared_ptr<MatmulDescs> int8_gemm_descs(int64_t rows, int64_t kc, int64_t k_out, const void* wq, float* ms,
                                               int* pick);
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
  DPtr scr(size_t off) const { return DPtr{nullptr, off}; }
  void* at(const DPtr& d) const { return d.off == SIZE_MAX ? d.p : scratch_at(d.off); }
  template <class T> T* atf(const DPtr& d) const { return static_cast<T*>(at(d)); }
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
  std::string cur_kind_;
  std::vector<std::shared_ptr<ConvDescs>> conv_descs_;
  std::vector<std::shared_ptr<MatmulDescs>> mm_descs_;
  std::vector<TacticRecord> tactics_;
  std::string device_key_;
  TensorMap all_;
  float last_ms_ = 0.f;
  PinnedBuffer pinned_in_, pinned_out_, pinned_observed_;  // staging of inputs, outputs, observed/kept tensors
  std::vector<TensorId> observed_;
  bool observed_ready_ = false;
};

void CudaExecutorImpl::compile() {
  where_ = "compile";
  net_.verify();
  cudaDeviceProp prop{};
  CK(cudaGetDeviceProperties(&prop, copt_.device));
  int rt = 0;
  cudaRuntimeGetVersion(&rt);
  device_key_ = std::string(prop.name) + "|sm_" + std::to_string(prop.major) +
                std::to_string(prop.minor) + "|cuda " + std::to_string(rt) + "|cudnn " +
                std::to_string(cudnnGetVersion()) + "|cublasLt " +
                std::to_string(cublasLtGetVersion()) + (copt_.allow_tf32 ? "|tf32" : "|fp32");
  // Fusion, numerics steps, views and the arena: decided by lower() (FP8 layers fail there,
  // naming the layer).
  try {
    graph_ = lower(net_, opt_.numerics, cuda_policy());
  } catch (const Error& e) {
    fail("compile", e.what());
  }
  for (TensorId t = 0; t < TensorId(net_.tensors.size()); ++t)
    if (volume(net_.tensors[t].dims) >= (int64_t(1) << 31))
      fail("tensor '" + net_.tensors[t].name + "'", "2^31 elements or more: the kernels index with 32 bits");
  ptr_.assign(graph_.values.size(), nullptr);
  upload_constants();
  bind_arena();
  lt_workspace_ = dalloc(lt_workspace_bytes_);
  for (const ExecStep& st : graph_.steps) {
    where_ = "layer '" + net_.layers[st.layer].name + "'";
    build_step(st);
  }
  cur_step_ = nullptr;
  where_ = "compile";
  scratch_ = dalloc(scratch_need_);
  validate_run();
}

// What the CUDA backend fuses: a convolution with one activation (cuDNN's fused conv+bias+ReLU,
// or conv then one bias+activation kernel), and point-wise chains (CudaOptions::fuse_pointwise),
// in a convolution's epilogue when they read its output alone. ExecOptions::fuse off (and
// keep_all) fuses nothing.
LowerPolicy CudaExecutorImpl::cuda_policy() const {
  LowerPolicy p;
  p.fuse = opt_.fuse;
  p.keep_all = keep_all_ || bool(opt_.observe_tensor);  // the observer reads every tensor after the run
  p.conv_fold_scale = false;
  p.conv_hard_swish = false;
  p.conv_max_activations = 1;
  p.pointwise_chains = copt_.fuse_pointwise;
  p.max_pointwise_ops = cuda::kMaxPwOps;
  p.alias_views = true;
  p.alignment = 256;
  if (copt_.real_fp16) {
    p.fp16_native = native_fp16_layer;
    p.fp16_nhwc = true;
  }
  if (copt_.real_int8) {
    p.int8_native = native_int8_layer;  // int8 codes between real INT8 layers
    // Half <-> INT8 boundaries without float steps (docs/cuda-backend.md); TANDEM_CUDA_INT8_HALF_IO=0
    // turns them off (to measure what they save).
    const char* e = std::getenv("TANDEM_CUDA_INT8_HALF_IO");
    p.int8_half_boundaries = !(e && std::string(e) == "0");
  }
  return p;
}

// Constants: uploaded once into their own buffers (weights).
void CudaExecutorImpl::upload_constants() {
  for (LayerId id : graph_.constants) {
    const Layer& L = net_.layers[id];
    where_ = "layer '" + L.name + "'";
    const auto& P = L.as<ConstantParams>();
    if (P.weights < 0 || P.weights >= WeightsId(net_.weights.size()))
      unsupported(L, "constant without weights");
    const Weights& W = net_.weights[P.weights];
    TensorId t = L.outputs[0];
    const Tensor& T = net_.tensors[t];
    if (W.count() != volume(T.dims))
      unsupported(L, "weights hold " + std::to_string(W.count()) + " values for a " +
                         join_dims(T.dims) + " tensor");
    if (graph_.values[size_t(t)].float_as_half()) {  // read only by native FP16 layers
      ptr_[t] = upload_half(to_half(weights_f32(P.weights, "constant"), T.dims, true));
      continue;
    }
    void* p = dalloc(bytes_of(t));
    if (W.type == T.type) {
      CK(cudaMemcpy(p, W.bytes.data(), bytes_of(t), cudaMemcpyHostToDevice));
    } else if (T.type == DataType::kFloat) {
      std::vector<float> v = weights_f32(P.weights, "constant");
      CK(cudaMemcpy(p, v.data(), bytes_of(t), cudaMemcpyHostToDevice));
    } else {
      unsupported(L, "constant weights of type " + std::string(to_string(W.type)) +
                         " for a tensor of type " + std::string(to_string(T.type)));
    }
    weight_bytes_ += bytes_of(t);
    ptr_[t] = p;
  }
}

// Activations and rounded copies: the one arena lowering planned; views share their root's
// memory; empty values have no pointer.
void CudaExecutorImpl::bind_arena() {
  arena_bytes_ = size_t(graph_.arena_bytes);
  arena_ = static_cast<char*>(dalloc(arena_bytes_));
  CK(cudaMemset(arena_, 0, arena_bytes_));  // profile() and time_device() before any run read zeros
  for (size_t v = 0; v < graph_.values.size(); ++v)
    if (graph_.values[v].offset >= 0 && graph_.values[v].bytes > 0) ptr_[v] = arena_ + graph_.values[v].offset;
  for (size_t v = 0; v < graph_.values.size(); ++v)
    if (graph_.values[v].alias_of >= 0) ptr_[v] = ptr_[size_t(graph_.values[v].alias_of)];
}

// One link of a point-wise chain as the kernels take it.
cuda::PwOp CudaExecutorImpl::pw_op(const Epilogue& e) const {
  const Layer& L = net_.layers[e.layers[0]];
  if (e.kind == EpilogueKind::kActivation) {
    const auto& P = L.as<ActivationParams>();
    return {cuda::PwKind::kActivation, P.type, ElementWiseOp::kSum, P.alpha, P.beta};
  }
  const ElementWiseOp op = L.as<ElementWiseParams>().op;
  const ActivationType none = ActivationType::kRelu;  // unused by element-wise links
  switch (e.operand) {
    case EpilogueOperand::kScalarRight: return {cuda::PwKind::kScalarRight, none, op, e.scalar, 0.f};
    case EpilogueOperand::kScalarLeft: return {cuda::PwKind::kScalarLeft, none, op, e.scalar, 0.f};
    case EpilogueOperand::kChainInputRight: return {cuda::PwKind::kChainInputRight, none, op, 0.f, 0.f};
    case EpilogueOperand::kChainInputLeft: return {cuda::PwKind::kChainInputLeft, none, op, 0.f, 0.f};
    case EpilogueOperand::kNone: break;
  }
  fail(where_, "layer '" + L.name + "' is no point-wise chain link");
}

// The activation fused into the convolution being built (-1: none): the epilogue's only entry,
// or its first when a chain follows it.
LayerId CudaExecutorImpl::fused_activation() const {
  const auto& e = cur_step_->epilogue;
  if (e.empty() || e[0].kind != EpilogueKind::kActivation) return -1;
  return (e.size() == 1 || cur_step_->chain_input_at == 1) ? e[0].layers[0] : -1;
}

// The epilogue of a conv/deconv: its fused activation and absorbed chain (n_ops 0: no chain).
cuda::PwChain CudaExecutorImpl::conv_epilogue(int act, float aa, float ab, TensorId* out) const {
  cuda::PwChain e{};
  const auto& epi = cur_step_->epilogue;
  if (epi.size() < 2) return e;
  int k = 0;
  if (act >= 0) e.ops[k++] = {cuda::PwKind::kActivation, ActivationType(act), ElementWiseOp::kSum, aa, ab};
  e.x0_at = k;
  for (size_t i = size_t(cur_step_->chain_input_at); i < epi.size(); ++i) e.ops[k++] = pw_op(epi[i]);
  e.n_ops = k;
  *out = cur_step_->outputs[0];
  return e;
}

void CudaExecutorImpl::build_step(const ExecStep& st) {
  cur_step_ = &st;
  in_override_.clear();
  scratch_cursor_ = 0;
  const Layer& L = net_.layers[st.layer];
  cur_kind_ = std::string(to_string(L.kind));
  switch (st.kind) {
    case StepKind::kRound: build_round(st); return;
    case StepKind::kPointwiseChain: build_chain(st); return;
    case StepKind::kLayer: break;
  }
  if (fused_activation() >= 0) cur_kind_ += "+Activation";
  for (size_t i = 0; i < L.inputs.size() && i < st.inputs.size(); ++i)
    if (st.inputs[i] != L.inputs[i]) in_override_[L.inputs[i]] = st.inputs[i];
  if (build_int8_codes_step(st, L)) return;
  if (!st.outputs.empty() && graph_.values[size_t(st.outputs[0])].float_as_half()) {
    cur_kind_ += "(fp16)";
    build_native_fp16(st.layer, L);
    return;
  }
  if (copt_.real_int8 && precision_of(st.layer) == Precision::kINT8 && build_int8(st.layer, L)) return;
  build_layer(st.layer);
}

// Point-wise layers in one kernel, at the first layer's place.
void CudaExecutorImpl::build_chain(const ExecStep& st) {
  const Layer& L = net_.layers[st.layer];
  cur_kind_ = "PointwiseChain" + std::to_string(st.epilogue.size());
  cuda::PwChain c{};
  c.x0_at = 0;
  c.n_ops = int(st.epilogue.size());
  for (size_t k = 0; k < st.epilogue.size(); ++k) c.ops[k] = pw_op(st.epilogue[k]);
  const float* x = static_cast<const float*>(ptr_[st.inputs[0]]);
  float* y = static_cast<float*>(ptr_[st.outputs[0]]);
  int64_t n = volume(graph_.values[st.outputs[0]].dims);
  if (!x || !y) fail(where_, "point-wise chain without buffers");
  if (graph_.values[size_t(st.outputs[0])].float_as_half()) {
    cur_kind_ += "(fp16)";
    add_step(L.name, [=](cudaStream_t s) { cuda::pointwise_chain_h(c, x, y, n, s); });
    return;
  }
  add_step(L.name, [=](cudaStream_t s) { cuda::pointwise_chain(c, x, y, n, s); });
}

// FP16 / INT8 layers: float inputs rounded into copies, outputs rounded in place.
void CudaExecutorImpl::build_round(const ExecStep& st) {
  if (graph_.values[size_t(st.inputs[0])].storage != graph_.values[size_t(st.outputs[0])].storage) {
    build_convert(st);
    return;
  }
  const float* x = static_cast<const float*>(ptr_[st.inputs[0]]);
  float* dst = static_cast<float*>(ptr_[st.outputs[0]]);
  if (!x || !dst) return;  // empty
  const bool in_place = st.inputs[0] == st.outputs[0];
  const int64_t n = volume(graph_.values[st.inputs[0]].dims);
  const Rounding r = st.rounding;
  const float scale = st.scale;
  const int64_t channels = st.channels, inner = st.inner;
  add_step(net_.layers[st.layer].name + (in_place ? ":round_out" : ":round_in"),
           [x, dst, n, r, scale, channels, inner](cudaStream_t s) {
             switch (r) {
               case Rounding::kFp16: cuda::round_fp16(x, dst, n, s); return;
               case Rounding::kInt8: cuda::fake_quant(x, dst, n, scale, s); return;
               case Rounding::kInt8PerChannel: cuda::fake_quant_channels(x, dst, n, channels, inner, s); return;
             }
           });
}

// Real FP16: a value converted between float (linear) and half (NHWC when 4-d) storage.
void CudaExecutorImpl::build_convert(const ExecStep& st) {
  const ExecValue& from = graph_.values[size_t(st.inputs[0])];
  const ExecValue& to = graph_.values[size_t(st.outputs[0])];
  if (to.int8_codes()) return build_quantize_codes(st);
  const void* x = ptr_[size_t(st.inputs[0])];
  void* y = ptr_[size_t(st.outputs[0])];
  if (!x || !y) return;  // empty
  const int64_t n = volume(to.dims);
  const bool four = to.dims.size() == 4;
  const int64_t c = four ? to.dims[1] : 1, hw = four ? to.dims[2] * to.dims[3] : 1;
  const bool xh = from.storage == DataType::kHalf, yh = to.storage == DataType::kHalf;
  const bool xn = is_nhwc(from), yn = is_nhwc(to);
  cur_kind_ = yh ? "ConvertToFP16" : "ConvertToFP32";
  add_step(net_.layers[st.layer].name + (yh ? ":to_fp16(" : ":to_fp32(") + from.name + ")",
           [=](cudaStream_t s) { cuda::convert(x, xh, xn, y, yh, yn, n, c, hw, s); });
}

// Where output channel k's weights lie: channel_major [K, rest]; else [C, K/g, inner] (deconv).
ChannelLayout weight_layout(int64_t n, int64_t channels, bool channel_major, int64_t inner) {
  return channel_major ? ChannelLayout{1, channels, n / channels} : ChannelLayout{n / (channels * inner), channels, inner};
}

void CudaExecutorImpl::round_weights(LayerId id, std::vector<float>& w, int64_t channels,
                                     bool channel_major, int64_t inner) {
  Precision p = precision_of(id);
  if (p == Precision::kFP16) {
    for (float& v : w) v = round_to_fp16(v);
  } else if (p == Precision::kINT8) {
    // Symmetric per output channel (tandem/numerics.h).
    fake_quant_int8_weights(w.data(), weight_layout(int64_t(w.size()), channels, channel_major, inner));
  }
}

void CudaExecutorImpl::quantize_bias(LayerId id, const Layer& L, const std::vector<float>& w,
                                     int64_t channels, bool channel_major, int64_t inner,
                                     std::vector<float>& bias) const {
  if (precision_of(id) != Precision::kINT8 || int64_t(bias.size()) != channels) return;
  const std::string& in = net_.tensors[L.inputs[0]].name;
  auto it = opt_.numerics.tensor_scales.find(in);
  if (it == opt_.numerics.tensor_scales.end() || opt_.numerics.unquantized.count(in)) return;
  const std::vector<float> w_scales =
      int8_weight_scales(w.data(), weight_layout(int64_t(w.size()), channels, channel_major, inner));
  for (int64_t k = 0; k < channels; ++k)
    bias[size_t(k)] = fake_quant_int32_bias(bias[size_t(k)], it->second, w_scales[size_t(k)]);
}

// The timing cache's key of a convolution: shapes, geometry, groups and math mode.
std::string conv_tactic_key(const ConvolutionParams& P, const Dims& xd, const Dims& yd, int64_t G, bool tf32) {
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
cuda::Pool2d pool2d_of(const PoolingParams& P, const Dims& xd, const Dims& yd) {
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

// ---- per-layer builders -----------------------------------------------------------------------
void CudaExecutorImpl::build_layer(LayerId id) {
  const Layer& L = net_.layers[id];
  if (cuda::is_index_layer(L)) {  // issue 16's index and sampling layers (index_layers.cpp)
    std::vector<const void*> ins;
    std::vector<void*> outs;
    for (TensorId t : L.inputs) ins.push_back(at(in(t)));
    for (TensorId t : L.outputs) outs.push_back(ptr_[t]);
    add_step(L.name, cuda::index_layer_launch(net_, L, std::move(ins), std::move(outs)));
    return;
  }
  switch (L.kind) {
    case LayerKind::kConvolution: build_convolution(id, L); break;
    case LayerKind::kDeconvolution: build_deconvolution(id, L); break;
    case LayerKind::kMatrixMultiply: build_matmul(id, L); break;
    case LayerKind::kShuffle: build_shuffle(id, L); break;
    case LayerKind::kConstant: break;  // uploaded by upload_constants
    case LayerKind::kPooling: case LayerKind::kActivation: case LayerKind::kParametricReLU:
    case LayerKind::kElementWise: case LayerKind::kScale: case LayerKind::kConcatenation:
      build_dense_layer(id, L);
      break;
    case LayerKind::kResize: case LayerKind::kSlice: case LayerKind::kSoftMax: case LayerKind::kReduce:
    case LayerKind::kUnary:
      build_reshaping_layer(id, L);
      break;
    case LayerKind::kLRN: case LayerKind::kGather: case LayerKind::kIdentity: case LayerKind::kCast:
    case LayerKind::kSelect: case LayerKind::kNormalization:
      build_other_layer(id, L);
      break;
    case LayerKind::kScatter: case LayerKind::kTopK: case LayerKind::kEinsum: case LayerKind::kGridSample:
    case LayerKind::kRoiAlign:
      break;  // built above (is_index_layer)
  }
}

// Pooling, activations, element-wise, Scale, concatenation.
void CudaExecutorImpl::build_dense_layer(LayerId id, const Layer& L) {
  const auto& T = net_.tensors;
  auto dims = [&](TensorId t) -> const Dims& { return T[t].dims; };
  TensorId out = L.outputs.empty() ? -1 : L.outputs[0];
  const std::string w = where_;
  (void)id;
  switch (L.kind) {
    case LayerKind::kPooling: {
      const auto& P = L.as<PoolingParams>();
      require_float(L, L.inputs[0]);
      const Dims& xd = dims(L.inputs[0]);
      const Dims& yd = dims(out);
      if (P.window.size() != 2 || (xd.size() != 4))
        unsupported(L, "only 2D pooling over NCHW is supported (window rank " +
                           std::to_string(P.window.size()) + ", input " + join_dims(xd) + ")");
      const cuda::Pool2d p = pool2d_of(P, xd, yd);
      DPtr x = in(L.inputs[0]);
      float* y = static_cast<float*>(ptr_[out]);
      add_step(L.name, [this, p, x, y](cudaStream_t s) { cuda::pooling2d(p, atf<float>(x), y, s); });
      break;
    }
    case LayerKind::kActivation: {
      const auto& P = L.as<ActivationParams>();
      require_float(L, L.inputs[0]);
      DPtr x = in(L.inputs[0]);
      float* y = static_cast<float*>(ptr_[out]);
      int64_t n = volume(dims(out));
      const ActivationType type = P.type;
      float a = P.alpha, b = P.beta;
      add_step(L.name, [=, this](cudaStream_t s) { cuda::activation(type, a, b, atf<float>(x), y, n, s); });
      break;
    }
    case LayerKind::kParametricReLU:
    case LayerKind::kElementWise: {
      const bool prelu = L.kind == LayerKind::kParametricReLU;
      const ElementWiseOp op = prelu ? ElementWiseOp::kSum : L.as<ElementWiseParams>().op;
      DataType dt = T[L.inputs[0]].type;
      if (T[L.inputs[1]].type != dt)
        unsupported(L, "inputs of different types (" + std::string(to_string(dt)) + ", " +
                           std::string(to_string(T[L.inputs[1]].type)) + ")");
      const bool logic = !prelu && is_logic_op(op);
      if (logic ? dt != DataType::kBool
                : (dt != DataType::kFloat && dt != DataType::kInt32 && dt != DataType::kInt64))
        unsupported(L, "element-wise " + std::string(to_string(op)) +
                           " on " + std::string(to_string(dt)) + " is not supported");
      if (!prelu && op == ElementWiseOp::kPow && dt != DataType::kFloat) unsupported(L, "integer Pow");
      const Dims& od = dims(out);
      Shape sa = bcast_strides(dims(L.inputs[0]), od, w), sb = bcast_strides(dims(L.inputs[1]), od, w);
      Shape sd = shape_of(od, w);
      DPtr a = in(L.inputs[0]), b = in(L.inputs[1]);
      void* y = ptr_[out];
      int d = dt_of(dt);
      add_step(L.name, [=, this](cudaStream_t s) { cuda::binary(op, prelu, d, at(a), sa, at(b), sb, y, sd, s); });
      break;
    }
    case LayerKind::kScale: {
      const auto& P = L.as<ScaleParams>();
      require_float(L, L.inputs[0]);
      const Dims& xd = dims(L.inputs[0]);
      int64_t C = 1, inner = 1;
      int axis = P.channel_axis < 0 ? P.channel_axis + int(xd.size()) : P.channel_axis;
      if (P.mode == ScaleMode::kChannel) {
        if (axis < 0 || axis >= int(xd.size())) unsupported(L, "channel axis out of range");
        C = xd[axis];
        for (size_t k = axis + 1; k < xd.size(); ++k) inner *= xd[k];
      } else if (P.mode == ScaleMode::kElementwise) {
        C = 1;
        for (size_t k = 1; k < xd.size(); ++k) C *= xd[k];
      }
      auto upload = [&](WeightsId wid, const char* what) -> float* {
        if (wid < 0) return nullptr;
        std::vector<float> v = weights_f32(wid, what);
        if (int64_t(v.size()) != C) unsupported(L, std::string(what) + " has " + std::to_string(v.size()) + " values, expected " + std::to_string(C));
        if (precision_of(id) == Precision::kFP16) round_weights(id, v, 1, true, 1);
        return upload_f32(v);
      };
      const float* shift = upload(P.shift, "shift");
      const float* scl = upload(P.scale, "scale");
      const float* power = upload(P.power, "power");
      DPtr x = in(L.inputs[0]);
      float* y = static_cast<float*>(ptr_[out]);
      int64_t n = volume(xd);
      int mode = int(P.mode);
      add_step(L.name, [=, this](cudaStream_t s) { cuda::scale(atf<float>(x), y, n, mode, C, inner, shift, scl, power, s); });
      break;
    }
    case LayerKind::kConcatenation: {
      const Dims& od = dims(out);
      int axis = L.as<ConcatenationParams>().axis;
      if (axis < 0) axis += int(od.size());
      if (axis < 0 || axis >= int(od.size())) unsupported(L, "axis out of range");
      size_t es = element_size(T[out].type);
      int64_t outer = 1, inner = 1;
      for (int k = 0; k < axis; ++k) outer *= od[k];
      for (size_t k = axis + 1; k < od.size(); ++k) inner *= od[k];
      int64_t acc = 0;
      char* y = static_cast<char*>(ptr_[out]);
      for (TensorId t : L.inputs) {
        if (T[t].type != T[out].type) unsupported(L, "inputs of different types");
        int64_t len = dims(t)[axis];
        size_t width = size_t(len * inner) * es, dpitch = size_t(od[axis] * inner) * es;
        char* dst = y + size_t(acc * inner) * es;
        DPtr x = in(t);
        if (width > 0)
          add_step(L.name, [=, this](cudaStream_t s) {
            cudaMemcpy2DAsync(dst, dpitch, at(x), width, width, size_t(outer), cudaMemcpyDeviceToDevice, s);
          });
        acc += len;
      }
      if (acc != od[axis]) unsupported(L, "input extents do not add up to the output's");
      break;
    }
    case LayerKind::kConvolution: case LayerKind::kDeconvolution:
    case LayerKind::kMatrixMultiply: case LayerKind::kShuffle: case LayerKind::kConstant:
    case LayerKind::kSlice: case LayerKind::kSoftMax: case LayerKind::kReduce:
    case LayerKind::kUnary: case LayerKind::kLRN: case LayerKind::kGather:
    case LayerKind::kIdentity: case LayerKind::kCast: case LayerKind::kSelect:
    case LayerKind::kNormalization:
    case LayerKind::kResize: case LayerKind::kScatter: case LayerKind::kTopK: case LayerKind::kEinsum:
    case LayerKind::kGridSample: case LayerKind::kRoiAlign:
      break;  // built by build_layer or another group
  }
}

// Resize, slice, softmax, reduce, unary.
void CudaExecutorImpl::build_reshaping_layer(LayerId id, const Layer& L) {
  const auto& T = net_.tensors;
  auto dims = [&](TensorId t) -> const Dims& { return T[t].dims; };
  TensorId out = L.outputs.empty() ? -1 : L.outputs[0];
  const std::string w = where_;
  (void)id;
  switch (L.kind) {
    case LayerKind::kResize: {
      const auto& P = L.as<ResizeParams>();
      require_float(L, L.inputs[0]);
      if (P.mode == ResizeMode::kCubic) unsupported(L, "cubic resize is not supported");
      const Dims& xd = dims(L.inputs[0]);
      const Dims& yd = dims(out);
      size_t r = xd.size();
      if (r < 2 || yd.size() != r) unsupported(L, "resize needs rank >= 2 and equal ranks");
      for (size_t k = 0; k + 2 < r; ++k)
        if (xd[k] != yd[k]) unsupported(L, "resize of an outer axis (" + std::to_string(k) + ") is not supported");
      cuda::Resize2d p{};
      p.outer = 1;
      for (size_t k = 0; k + 2 < r; ++k) p.outer *= xd[k];
      p.ih = xd[r - 2], p.iw = xd[r - 1], p.oh = yd[r - 2], p.ow = yd[r - 1];
      bool has_scales = P.scales.size() == r;
      p.scale_h = has_scales ? P.scales[r - 2] : float(p.oh) / float(p.ih);
      p.scale_w = has_scales ? P.scales[r - 1] : float(p.ow) / float(p.iw);
      p.len_h = has_scales ? float(double(p.ih) * P.scales[r - 2]) : float(p.oh);
      p.len_w = has_scales ? float(double(p.iw) * P.scales[r - 1]) : float(p.ow);
      p.mode = P.mode, p.transform = P.transform, p.selector = P.selector, p.rounding = P.rounding;
      DPtr x = in(L.inputs[0]);
      float* y = static_cast<float*>(ptr_[out]);
      add_step(L.name, [=, this](cudaStream_t s) { cuda::resize2d(p, atf<float>(x), y, s); });
      break;
    }
    case LayerKind::kSlice: {
      const auto& P = L.as<SliceParams>();
      const Dims& xd = dims(L.inputs[0]);
      const Dims& yd = dims(out);
      size_t r = xd.size();
      if (P.start.size() != r || P.stride.size() != r || yd.size() != r)
        unsupported(L, "start/stride rank differs from the input's");
      size_t es = element_size(T[out].type);
      DPtr x = in(L.inputs[0]);
      void* y = ptr_[out];
      bool in_range = true;
      for (size_t k = 0; k < r; ++k) {
        int64_t lo = P.start[k], hi = P.start[k] + (yd[k] - 1) * P.stride[k];
        if (yd[k] > 0 && (std::min(lo, hi) < 0 || std::max(lo, hi) >= xd[k])) in_range = false;
      }
      if (P.mode == SliceMode::kDefault || in_range) {
        if (!in_range) unsupported(L, "slice reads outside the input (mode default)");
        Dims st = dense_strides(xd);
        int64_t base = 0;
        Shape ss = shape_of(yd, w);
        for (size_t k = 0; k < r; ++k) {
          base += P.start[k] * st[k];
          ss.d[k] = st[k] * P.stride[k];
        }
        Shape sd = shape_of(yd, w);
        int e = int(es);
        add_step(L.name, [=, this](cudaStream_t s) { cuda::strided_copy(at(x), base, ss, y, sd, e, s); });
      } else {
        Shape sin = shape_of(xd, w), sstart = shape_of(P.start, w), sstep = shape_of(P.stride, w),
              sout = shape_of(yd, w);
        SliceMode mode = P.mode;
        int d = dt_of(T[out].type), e = int(es);
        float fill = P.fill_value;
        add_step(L.name, [=, this](cudaStream_t s) {
          cuda::slice_mode(at(x), sin, sstart, sstep, y, sout, mode, fill, d, e, s);
        });
      }
      break;
    }
    case LayerKind::kSoftMax: {
      require_float(L, L.inputs[0]);
      const Dims& xd = dims(L.inputs[0]);
      uint32_t axes = L.as<SoftMaxParams>().axes;
      int axis = ctz(axes);
      if (axes == 0 || (axes & (axes - 1)) || axis >= int(xd.size())) unsupported(L, "softmax needs exactly one axis");
      int64_t outer = 1, inner = 1;
      for (int k = 0; k < axis; ++k) outer *= xd[k];
      for (size_t k = axis + 1; k < xd.size(); ++k) inner *= xd[k];
      int64_t len = xd[axis];
      DPtr x = in(L.inputs[0]);
      float* y = static_cast<float*>(ptr_[out]);
      add_step(L.name, [=, this](cudaStream_t s) { cuda::softmax(atf<float>(x), y, outer, len, inner, s); });
      break;
    }
    case LayerKind::kReduce: {
      const auto& P = L.as<ReduceParams>();
      require_float(L, L.inputs[0]);
      const Dims& xd = dims(L.inputs[0]);
      Dims st = dense_strides(xd);
      Dims kd, ks, rd, rs;
      for (size_t k = 0; k < xd.size(); ++k) {
        if (P.axes & (1u << k)) rd.push_back(xd[k]), rs.push_back(st[k]);
        else kd.push_back(xd[k]), ks.push_back(st[k]);
      }
      if (kd.empty()) kd = {1}, ks = {0};
      if (rd.empty()) rd = {1}, rs = {0};
      Shape skd = shape_of(kd, w), sks = shape_of(ks, w), srd = shape_of(rd, w), srs = shape_of(rs, w);
      const ReduceOp op = P.op;
      DPtr x = in(L.inputs[0]);
      float* y = static_cast<float*>(ptr_[out]);
      add_step(L.name, [=, this](cudaStream_t s) { cuda::reduce(op, atf<float>(x), y, skd, sks, srd, srs, s); });
      break;
    }
    case LayerKind::kUnary: {
      const UnaryOp op = L.as<UnaryParams>().op;
      DataType dt = T[L.inputs[0]].type;
      bool is_not = L.as<UnaryParams>().op == UnaryOp::kNot;
      if (is_not ? dt != DataType::kBool : dt != DataType::kFloat)
        unsupported(L, "unary " + std::string(to_string(op)) + " on " + std::string(to_string(dt)));
      DPtr x = in(L.inputs[0]);
      void* y = ptr_[out];
      int64_t n = volume(dims(out));
      int d = dt_of(dt);
      add_step(L.name, [=, this](cudaStream_t s) { cuda::unary(op, d, at(x), y, n, s); });
      break;
    }
    case LayerKind::kConvolution: case LayerKind::kDeconvolution:
    case LayerKind::kMatrixMultiply: case LayerKind::kShuffle: case LayerKind::kConstant:
    case LayerKind::kPooling: case LayerKind::kActivation: case LayerKind::kParametricReLU:
    case LayerKind::kElementWise: case LayerKind::kScale: case LayerKind::kConcatenation:
    case LayerKind::kLRN: case LayerKind::kGather:
    case LayerKind::kIdentity: case LayerKind::kCast: case LayerKind::kSelect:
    case LayerKind::kNormalization: case LayerKind::kScatter: case LayerKind::kTopK:
    case LayerKind::kEinsum: case LayerKind::kGridSample: case LayerKind::kRoiAlign:
      break;  // built by build_layer or another group
  }
}

// LRN, gather, identity/cast, select, normalization.
void CudaExecutorImpl::build_other_layer(LayerId id, const Layer& L) {
  const auto& T = net_.tensors;
  auto dims = [&](TensorId t) -> const Dims& { return T[t].dims; };
  TensorId out = L.outputs.empty() ? -1 : L.outputs[0];
  const std::string w = where_;
  (void)id;
  switch (L.kind) {
    case LayerKind::kLRN: {
      const auto& P = L.as<LRNParams>();
      require_float(L, L.inputs[0]);
      const Dims& xd = dims(L.inputs[0]);
      if (xd.size() < 2) unsupported(L, "LRN needs rank >= 2");
      int64_t hw = 1;
      for (size_t k = 2; k < xd.size(); ++k) hw *= xd[k];
      int64_t nb = xd[0], c = xd[1];
      DPtr x = in(L.inputs[0]);
      float* y = static_cast<float*>(ptr_[out]);
      int win = int(P.window);
      float a = P.alpha, b = P.beta, k = P.k;
      add_step(L.name, [=, this](cudaStream_t s) { cuda::lrn(atf<float>(x), y, nb, c, hw, win, a, b, k, s); });
      break;
    }
    case LayerKind::kGather: {
      const Dims& xd = dims(L.inputs[0]);
      int axis = L.as<GatherParams>().axis;
      if (L.as<GatherParams>().mode != GatherMode::kDefault) unsupported(L, "Gather ELEMENT/ND modes have no CUDA kernel yet");
      if (axis < 0) axis += int(xd.size());
      if (axis < 0 || axis >= int(xd.size())) unsupported(L, "axis out of range");
      DataType it = T[L.inputs[1]].type;
      if (it != DataType::kInt32 && it != DataType::kInt64) unsupported(L, "indices must be int32 or int64");
      int64_t outer = 1, inner = 1;
      for (int k = 0; k < axis; ++k) outer *= xd[k];
      for (size_t k = axis + 1; k < xd.size(); ++k) inner *= xd[k];
      int64_t nidx = volume(dims(L.inputs[1]));
      if (outer * nidx * inner != volume(dims(out))) unsupported(L, "output size does not match data and indices");
      int64_t len = xd[axis];
      bool i64 = it == DataType::kInt64;
      int es = int(element_size(T[out].type));
      DPtr x = in(L.inputs[0]), idx = in(L.inputs[1]);
      void* y = ptr_[out];
      add_step(L.name, [=, this](cudaStream_t s) { cuda::gather(at(x), at(idx), i64, y, outer, len, nidx, inner, es, s); });
      break;
    }
    case LayerKind::kIdentity:
    case LayerKind::kCast: {
      DataType from = T[L.inputs[0]].type, to = T[out].type;
      DPtr x = in(L.inputs[0]);
      void* y = ptr_[out];
      int64_t n = volume(dims(out));
      if (n != volume(dims(L.inputs[0]))) unsupported(L, "input and output sizes differ");
      if (from == to) {
        size_t bytes = bytes_of(out);
        if (bytes) add_step(L.name, [=, this](cudaStream_t s) { cudaMemcpyAsync(y, at(x), bytes, cudaMemcpyDeviceToDevice, s); });
      } else {
        int f = dt_of(from), t = dt_of(to);
        add_step(L.name, [=, this](cudaStream_t s) { cuda::cast(f, t, at(x), y, n, s); });
      }
      break;
    }
    case LayerKind::kSelect: {
      if (T[L.inputs[0]].type != DataType::kBool) unsupported(L, "condition must be bool");
      if (T[L.inputs[1]].type != T[L.inputs[2]].type) unsupported(L, "branches of different types");
      const Dims& od = dims(out);
      Shape sc = bcast_strides(dims(L.inputs[0]), od, w), sa = bcast_strides(dims(L.inputs[1]), od, w),
            sb = bcast_strides(dims(L.inputs[2]), od, w), sd = shape_of(od, w);
      DPtr c = in(L.inputs[0]), a = in(L.inputs[1]), b = in(L.inputs[2]);
      void* y = ptr_[out];
      int es = int(element_size(T[out].type));
      add_step(L.name, [=, this](cudaStream_t s) {
        cuda::select(atf<uint8_t>(c), sc, at(a), sa, at(b), sb, y, sd, es, s);
      });
      break;
    }
    case LayerKind::kNormalization: {
      const auto& P = L.as<NormalizationParams>();
      require_float(L, L.inputs[0]);
      const Dims& xd = dims(L.inputs[0]);
      int r = int(xd.size());
      uint32_t axes = P.axes;
      int a0 = ctz(axes);
      if (axes == 0 || a0 >= r || axes != (((r >= 32) ? 0xffffffffu : ((1u << r) - 1u)) & ~((1u << a0) - 1u)))
        unsupported(L, "normalized axes must be the trailing axes");
      int64_t rows = 1, len = 1;
      for (int k = 0; k < a0; ++k) rows *= xd[k];
      for (int k = a0; k < r; ++k) len *= xd[k];
      if (P.groups > 1) {
        if (a0 != 2 || r < 3 || xd[1] % P.groups) unsupported(L, "group normalization needs NC... input with C divisible by groups");
        rows = xd[0] * P.groups;
        len = volume(xd) / rows;
      }
      Shape sd = shape_of(xd, w);
      Shape ss{}, bs{};
      DPtr sc{}, bi{};
      bool has_s = L.inputs.size() > 1, has_b = L.inputs.size() > 2;
      if (has_s) require_float(L, L.inputs[1]), ss = bcast_strides(dims(L.inputs[1]), xd, w), sc = in(L.inputs[1]);
      if (has_b) require_float(L, L.inputs[2]), bs = bcast_strides(dims(L.inputs[2]), xd, w), bi = in(L.inputs[2]);
      size_t stats = reserve_scratch(size_t(rows) * 2 * sizeof(float));
      DPtr x = in(L.inputs[0]);
      float* y = static_cast<float*>(ptr_[out]);
      float eps = P.epsilon;
      add_step(L.name, [=, this](cudaStream_t s) {
        cuda::normalization(atf<float>(x), y, rows, len, eps, has_s ? atf<float>(sc) : nullptr, ss,
                            has_b ? atf<float>(bi) : nullptr, bs, sd,
                            static_cast<float*>(scratch_at(stats)), s);
      });
      break;
    }
    case LayerKind::kConvolution: case LayerKind::kDeconvolution:
    case LayerKind::kMatrixMultiply: case LayerKind::kShuffle: case LayerKind::kConstant:
    case LayerKind::kPooling: case LayerKind::kActivation: case LayerKind::kParametricReLU:
    case LayerKind::kElementWise: case LayerKind::kScale: case LayerKind::kConcatenation:
    case LayerKind::kResize: case LayerKind::kSlice: case LayerKind::kSoftMax:
    case LayerKind::kReduce: case LayerKind::kUnary: case LayerKind::kScatter: case LayerKind::kTopK:
    case LayerKind::kEinsum: case LayerKind::kGridSample: case LayerKind::kRoiAlign:
      break;  // built by build_layer or another group
  }
}

// ---- real FP16 layers (native_fp16_layer): half values, NHWC when 4-d ----------------------------
// Element strides of input t broadcast to od, in od's physical order (NHWC when od is a 4-d half
// value: every native layer's output is).
Shape CudaExecutorImpl::half_strides(TensorId t, const Dims& od) const {
  const ExecValue& v = read_value(t);
  Shape s = bcast_strides(v.dims, od, where_);
  if (is_nhwc(v) && od.size() == 4) {
    const Dims& d = v.dims;
    const int64_t st[4] = {d[1] * d[2] * d[3], 1, d[3] * d[1], d[1]};
    for (int k = 0; k < 4; ++k) s.d[k] = d[size_t(k)] == 1 ? 0 : st[k];
  }
  return od.size() == 4 ? to_nhwc_order(s) : s;
}

void CudaExecutorImpl::build_native_fp16(LayerId id, const Layer& L) {
  const TensorId out = L.outputs[0];
  const Dims& od = net_.tensors[out].dims;
  void* y = ptr_[out];
  const int64_t n = volume(od);
  DPtr x = in(L.inputs[0]);
  const Dims& xd = net_.tensors[L.inputs[0]].dims;
  if (L.kind == LayerKind::kConvolution) return build_convolution_h(id, L);
  if (L.kind == LayerKind::kMatrixMultiply) return build_matmul(id, L);
  if (L.kind == LayerKind::kConcatenation) return build_concat_h(L);
  if (L.kind == LayerKind::kPooling) {
    cuda::Pool2d p = pool2d_of(L.as<PoolingParams>(), xd, od);
    p.nc = int(xd[0]);
    const int64_t c = xd[1];
    add_step(L.name, [=, this](cudaStream_t s) { cuda::pooling2d_nhwc_h(p, c, at(x), y, s); });
  } else if (L.kind == LayerKind::kActivation) {
    const auto& P = L.as<ActivationParams>();
    cuda::PwChain c{};
    c.n_ops = 1;
    c.ops[0] = {cuda::PwKind::kActivation, P.type, ElementWiseOp::kSum, P.alpha, P.beta};
    add_step(L.name, [=, this](cudaStream_t s) { cuda::pointwise_chain_h(c, at(x), y, n, s); });
  } else if (L.kind == LayerKind::kElementWise) {
    const ElementWiseOp op = L.as<ElementWiseParams>().op;
    Shape sa = half_strides(L.inputs[0], od), sb = half_strides(L.inputs[1], od);
    Shape sd = od.size() == 4 ? to_nhwc_order(shape_of(od, where_)) : shape_of(od, where_);
    DPtr b = in(L.inputs[1]);
    if (cuda::binary_h_path(op, sa, sb, sd) == cuda::BinaryHalfPath::kGeneral) cur_kind_ += ":strided";
    add_step(L.name, [=, this](cudaStream_t s) { cuda::binary_h(op, false, at(x), sa, at(b), sb, y, sd, s); });
  } else if (L.kind == LayerKind::kReduce) {
    const ReduceOp op = L.as<ReduceParams>().op;
    add_step(L.name, [=, this](cudaStream_t s) { cuda::spatial_reduce_h(op, at(x), y, xd[0], xd[2] * xd[3], xd[1], s); });
  } else {
    unsupported(L, "no FP16 kernel for this layer kind (native_fp16_layer disagrees with build_native_fp16)");
  }
}

// Concatenation of half values: one 2-D copy per input along the axis in physical order.
void CudaExecutorImpl::build_concat_h(const Layer& L) {
  const TensorId out = L.outputs[0];
  const Dims& od = net_.tensors[out].dims;
  int axis = L.as<ConcatenationParams>().axis;
  if (axis < 0) axis += int(od.size());
  if (axis < 0 || axis >= int(od.size())) unsupported(L, "axis out of range");
  Dims pd = od;
  int pa = axis;
  if (od.size() == 4) {
    pd = {od[0], od[2], od[3], od[1]};
    static const int kPhysical[4] = {0, 3, 1, 2};
    pa = kPhysical[axis];
  }
  int64_t outer = 1, inner = 1;
  for (int k = 0; k < pa; ++k) outer *= pd[size_t(k)];
  for (size_t k = size_t(pa) + 1; k < pd.size(); ++k) inner *= pd[k];
  const size_t es = sizeof(__half);
  char* y = static_cast<char*>(ptr_[out]);
  int64_t acc = 0;
  for (TensorId t : L.inputs) {
    const int64_t len = net_.tensors[t].dims[size_t(axis)];
    const size_t width = size_t(len * inner) * es, dpitch = size_t(pd[size_t(pa)] * inner) * es;
    char* dst = y + size_t(acc * inner) * es;
    DPtr x = in(t);
    if (width > 0)
      add_step(L.name, [=, this](cudaStream_t s) {
        cudaMemcpy2DAsync(dst, dpitch, at(x), width, width, size_t(outer), cudaMemcpyDeviceToDevice, s);
      });
    acc += len;
  }
  if (acc != od[size_t(axis)]) unsupported(L, "input extents do not add up to the output's");
}

// A 1x1, stride-1, unpadded convolution of an NHWC half value is the GEMM
// Y[rows, K] = X[rows, C] W[K, C]^T with rows = N * H * W (cuBLASLt, column-major:
// Y^T = op_T(W as C x K) X^T); the descriptors and cuBLASLt's first heuristic choice (null: none).
std::shared_ptr<MatmulDescs> CudaExecutorImpl::conv_gemm_descs(int64_t rows, int64_t C, int64_t K,
                                                              cublasLtEpilogue_t epilogue, const void* bias_h) {
  auto D = std::make_shared<MatmulDescs>();
  CK(cublasLtMatmulDescCreate(&D->op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  CK(cublasLtMatmulDescSetAttribute(D->op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
  CK(cublasLtMatmulDescSetAttribute(D->op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
  // cuBLASLt's epilogue: the bias (one per output channel = per row of the K x rows result, half
  // like the result) and ReLU applied to the FP32 accumulator before the one rounding to half.
  if (epilogue != CUBLASLT_EPILOGUE_DEFAULT) {
    CK(cublasLtMatmulDescSetAttribute(D->op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof(epilogue)));
    if (bias_h) {
      const cudaDataType_t bt = CUDA_R_16F;
      CK(cublasLtMatmulDescSetAttribute(D->op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bt, sizeof(bt)));
      CK(cublasLtMatmulDescSetAttribute(D->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias_h, sizeof(bias_h)));
    }
  }
  CK(cublasLtMatrixLayoutCreate(&D->a, CUDA_R_16F, uint64_t(C), uint64_t(K), C));
  CK(cublasLtMatrixLayoutCreate(&D->b, CUDA_R_16F, uint64_t(C), uint64_t(rows), C));
  CK(cublasLtMatrixLayoutCreate(&D->c, CUDA_R_16F, uint64_t(K), uint64_t(rows), K));
  cublasLtMatmulPreference_t pref;
  CK(cublasLtMatmulPreferenceCreate(&pref));
  size_t wsb = lt_workspace_bytes_;
  CK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &wsb, sizeof(wsb)));
  cublasLtMatmulHeuristicResult_t res{};
  int got = 0;
  cublasStatus_t hs = cublasLtMatmulAlgoGetHeuristic(lt_, D->op, D->a, D->b, D->c, D->c, pref, 1, &res, &got);
  cublasLtMatmulPreferenceDestroy(pref);
  if (hs != CUBLAS_STATUS_SUCCESS || got == 0 || res.workspaceSize > lt_workspace_bytes_) return nullptr;
  D->algo = res.algo;
  return D;
}

// The cuBLASLt epilogue that does the whole of the step's own (the bias, then at most a ReLU;
// folded Scales are in the weights), or DEFAULT when tandem's epilogue kernel must run after.
cublasLtEpilogue_t CudaExecutorImpl::gemm_epilogue(bool has_bias) const {
  int ops = 0;
  for (const Epilogue& e : cur_step_->epilogue) ops += e.kind != EpilogueKind::kScale;
  const LayerId aid = fused_activation();
  const bool relu = aid >= 0 && net_.layers[size_t(aid)].as<ActivationParams>().type == ActivationType::kRelu;
  if (ops == 0) return has_bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT;
  if (ops == 1 && relu) return has_bias ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_RELU;
  return CUBLASLT_EPILOGUE_DEFAULT;
}

// Mean of 5 runs of the GEMM on the layer's real buffers (contents irrelevant), ms.
float CudaExecutorImpl::time_conv_gemm(const MatmulDescs& D, const void* wdev, const void* x, void* y) {
  const float one = 1.f, zero = 0.f;
  auto once = [&] {
    return cublasLtMatmul(lt_, D.op, &one, wdev, D.a, x, D.b, &zero, y, D.c, y, D.c, &D.algo, lt_workspace_,
                          lt_workspace_bytes_, stream_) == CUBLAS_STATUS_SUCCESS;
  };
  if (!once()) return -1.f;
  CK(cudaEventRecord(ev0_, stream_));
  for (int r = 0; r < 5; ++r) once();
  CK(cudaEventRecord(ev1_, stream_));
  CK(cudaEventSynchronize(ev1_));
  CK(cudaGetLastError());
  float ms = 0;
  CK(cudaEventElapsedTime(&ms, ev0_, ev1_));
  return ms / 5;
}

// The GEMM form of a 1x1 convolution, then bias, activation and chain by the epilogue kernel.
void CudaExecutorImpl::build_conv_gemm_h(const Layer& L, int64_t rows, int64_t C, int64_t K, const void* wdev,
                                         const float* bdev, std::shared_ptr<MatmulDescs> D, float time_ms,
                                         bool epilogue_in_gemm) {
  mm_descs_.push_back(D);
  // The epilogue: the fused activation (op 0) and chain, as build_convolution_h.
  const LayerId aid = fused_activation();
  int act = -1;
  float aa = 0, ab = 0;
  TensorId out = L.outputs[0];
  if (aid >= 0) {
    const auto& A = net_.layers[aid].as<ActivationParams>();
    act = int(A.type), aa = A.alpha, ab = A.beta;
    out = net_.layers[aid].outputs[0];
  }
  cuda::PwChain epi = conv_epilogue(act, aa, ab, &out);
  if (epi.n_ops > 0) cur_kind_ += "+PointwiseChain" + std::to_string(epi.n_ops);
  if (epi.n_ops == 0 && act >= 0) epi.n_ops = 1, epi.ops[0] = {cuda::PwKind::kActivation, ActivationType(act), ElementWiseOp::kSum, aa, ab};
  void* y = ptr_[out];
  const DPtr x = in(L.inputs[0]);
  const int64_t n = rows * K;
  const std::string lname = L.name;
  void* wsp = lt_workspace_;
  const size_t wsz = lt_workspace_bytes_;
  add_step(L.name, [=, this](cudaStream_t s) {
    const float one = 1.f, zero = 0.f;
    ck(cublasLtMatmul(lt_, D->op, &one, wdev, D->a, at(x), D->b, &zero, y, D->c, y, D->c, &D->algo, wsp, wsz, s),
       "cublasLtMatmul", "layer '" + lname + "'");
    if (!epilogue_in_gemm && (bdev || epi.n_ops > 0)) cuda::bias_chain_h(y, bdev, K, 1, epi, n, s);
  });
  std::ostringstream key;
  key << "Convolution|rows=" << rows << "|C=" << C << "|k=1x1|K=" << K << "|fp16|nhwc";
  const char* tactic = epilogue_in_gemm ? "cublaslt_gemm_fp16_nhwc+epilogue:heuristic0" : "cublaslt_gemm_fp16_nhwc:heuristic0";
  tactics_.push_back({L.name, "Convolution", key.str(), tactic, 0, time_ms, 0});
}

// Real FP16 convolution: cuDNN on half NHWC tensors, FP32 accumulation, tensor-op math; the
// weights rounded to half once and stored KRSC; bias, activation and point-wise chain in the
// epilogue (cuDNN's fused bias+ReLU/identity where it runs, else tandem's half epilogue kernel).
void CudaExecutorImpl::build_convolution_h(LayerId id, const Layer& L) {
  const auto& P = L.as<ConvolutionParams>();
  const TensorId xt = L.inputs[0], yt = L.outputs[0];
  const Dims xd = net_.tensors[xt].dims, yd = net_.tensors[yt].dims;
  auto get = [](const Dims& d, size_t k, int64_t def) { return d.size() > k ? d[k] : def; };
  const int kh = int(P.kernel[0]), kw = int(P.kernel[1]);
  const int64_t C = xd[1], K = P.out_maps > 0 ? P.out_maps : yd[1], G = std::max<int64_t>(1, P.groups), cg = C / G;
  std::vector<float> wv = weights_f32(P.kernel_weights, "kernel");
  if (int64_t(wv.size()) != K * cg * kh * kw)
    unsupported(L, "kernel holds " + std::to_string(wv.size()) + " values, expected " + std::to_string(K * cg * kh * kw));
  std::vector<__half> wh(wv.size());  // KCRS -> KRSC (cuDNN's NHWC filter)
  for (int64_t k = 0; k < K; ++k)
    for (int64_t c = 0; c < cg; ++c)
      for (int64_t r = 0; r < int64_t(kh) * kw; ++r)
        wh[size_t((k * kh * kw + r) * cg + c)] = __float2half_rn(wv[size_t((k * cg + c) * kh * kw + r)]);
  const void* wdev = upload_half(wh);
  std::vector<float> bv(size_t(K), 0.f);
  if (P.bias_weights >= 0) {
    bv = weights_f32(P.bias_weights, "bias");
    if (int64_t(bv.size()) != K) unsupported(L, "bias size differs from the output maps");
    round_weights(id, bv, 1, true, 1);  // FP16: the bias on the half grid, as the emulation
  }
  const float* bdev = P.bias_weights >= 0 ? upload_f32(bv) : nullptr;
  const void* bdev_h = upload_half(to_half(bv, Dims{K}, false));
  // A 1x1 convolution of a 1x1 map (squeeze-excitation) is a small GEMM: cuBLASLt, not cuDNN.
  // Any other 1x1, stride-1, unpadded one: the GEMM when it times faster than cuDNN's best.
  const bool pointwise = kh == 1 && kw == 1 && G == 1 && xd[2] == yd[2] && xd[3] == yd[3] &&
                         get(P.pre_padding, 0, 0) == 0 && get(P.pre_padding, 1, 0) == 0;
  const int64_t rows = xd[0] * xd[2] * xd[3];
  if (pointwise && xd[2] * xd[3] == 1) {
    std::shared_ptr<MatmulDescs> G1 = conv_gemm_descs(rows, C, K);
    if (!G1) unsupported(L, "cuBLASLt found no FP16 algorithm for the 1x1 convolution");
    return build_conv_gemm_h(L, rows, C, K, wdev, bdev, G1, -1.f);
  }
  auto D = std::make_shared<ConvDescs>();
  conv_descs_.push_back(D);
  CK(cudnnCreateTensorDescriptor(&D->x));
  CK(cudnnCreateTensorDescriptor(&D->y));
  CK(cudnnCreateTensorDescriptor(&D->b));
  CK(cudnnCreateFilterDescriptor(&D->w));
  CK(cudnnCreateConvolutionDescriptor(&D->conv));
  CK(cudnnSetTensor4dDescriptor(D->x, CUDNN_TENSOR_NHWC, CUDNN_DATA_HALF, int(xd[0]), int(C), int(xd[2]), int(xd[3])));
  CK(cudnnSetTensor4dDescriptor(D->y, CUDNN_TENSOR_NHWC, CUDNN_DATA_HALF, int(yd[0]), int(yd[1]), int(yd[2]), int(yd[3])));
  CK(cudnnSetTensor4dDescriptor(D->b, CUDNN_TENSOR_NHWC, CUDNN_DATA_HALF, 1, int(K), 1, 1));
  CK(cudnnSetFilter4dDescriptor(D->w, CUDNN_DATA_HALF, CUDNN_TENSOR_NHWC, int(K), int(cg), kh, kw));
  CK(cudnnSetConvolution2dDescriptor(D->conv, int(get(P.pre_padding, 0, 0)), int(get(P.pre_padding, 1, 0)),
                                     int(get(P.stride, 0, 1)), int(get(P.stride, 1, 1)), int(get(P.dilation, 0, 1)),
                                     int(get(P.dilation, 1, 1)), CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  CK(cudnnSetConvolutionGroupCount(D->conv, int(G)));
  CK(cudnnSetConvolutionMathType(D->conv, CUDNN_TENSOR_OP_MATH));
  int n_, c_, h_, w_;
  CK(cudnnGetConvolution2dForwardOutputDim(D->conv, D->x, D->w, &n_, &c_, &h_, &w_));
  if (n_ != yd[0] || c_ != yd[1] || h_ != yd[2] || w_ != yd[3])
    unsupported(L, "cuDNN output " + join_dims(Dims{n_, c_, h_, w_}) + " differs from the network's " + join_dims(yd));
  const cudnnConvolutionFwdAlgoPerf_t best = pick_fwd_algo(L, *D, true);
  const bool try_gemm = copt_.fp16_pointwise_gemm == 1 || (copt_.fp16_pointwise_gemm < 0 && copt_.time_tactics);
  if (pointwise && try_gemm && in(xt).off == SIZE_MAX) {
    // Bias (+ReLU) in cuBLASLt's epilogue when that is the whole of the step's: the GEMM's time
    // then includes it, as cuDNN's fused bias+ReLU does (a separate pass would go untimed).
    const cublasLtEpilogue_t lt_epi = gemm_epilogue(bdev != nullptr);
    std::shared_ptr<MatmulDescs> G2 = lt_epi != CUBLASLT_EPILOGUE_DEFAULT ? conv_gemm_descs(rows, C, K, lt_epi, bdev_h) : nullptr;
    const bool in_gemm = G2 != nullptr;
    if (!G2) G2 = conv_gemm_descs(rows, C, K);
    // On the real buffers: the step's input and its final output (the epilogue is point-wise).
    const float gemm_ms = G2 ? time_conv_gemm(*G2, wdev, at(in(xt)), ptr_[size_t(cur_step_->outputs[0])]) : -1.f;
    if (gemm_ms >= 0 && (gemm_ms < best.time || copt_.fp16_pointwise_gemm == 1))
      return build_conv_gemm_h(L, rows, C, K, wdev, bdev, G2, gemm_ms, in_gemm);
  }
  const cudnnConvolutionFwdAlgo_t algo = best.algo;
  CK(cudnnSetConvolutionMathType(D->conv, best.mathType));
  const size_t ws = best.memory, ws_off = reserve_scratch(ws);
  // Epilogue: the fused activation (op 0 when present) and the absorbed chain.
  const LayerId aid = fused_activation();
  int act = -1;
  float aa = 0, ab = 0;
  TensorId out = yt;
  if (aid >= 0) {
    const auto& A = net_.layers[aid].as<ActivationParams>();
    act = int(A.type), aa = A.alpha, ab = A.beta;
    out = net_.layers[aid].outputs[0];
  }
  cuda::PwChain epi = conv_epilogue(act, aa, ab, &out);
  const bool has_chain = epi.n_ops > 0;
  if (has_chain) cur_kind_ += "+PointwiseChain" + std::to_string(epi.n_ops);
  if (!has_chain && act >= 0) epi.n_ops = 1, epi.ops[0] = {cuda::PwKind::kActivation, ActivationType(act), ElementWiseOp::kSum, aa, ab};
  const bool relu = act == int(ActivationType::kRelu) && !has_chain;
  // cuDNN's fused call computes bias + ReLU/identity only: never with a chain (which may start
  // with an activation that is not the fused one, act < 0).
  const bool identity_ok = act < 0 && !has_chain && algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM;
  auto fused_ok = std::make_shared<bool>(relu || identity_ok);
  CK(cudnnCreateActivationDescriptor(&D->act));
  CK(cudnnSetActivationDescriptor(D->act, relu ? CUDNN_ACTIVATION_RELU : CUDNN_ACTIVATION_IDENTITY, CUDNN_NOT_PROPAGATE_NAN, 0.0));
  void* y = ptr_[out];
  const int64_t n = volume(yd);
  const DPtr x = in(xt);
  const std::string lname = L.name;
  add_step(L.name, [=, this](cudaStream_t s) {
    const float one = 1.f, zero = 0.f;
    void* wsp = ws ? scratch_at(ws_off) : nullptr;
    if (*fused_ok) {
      cudnnStatus_t st = cudnnConvolutionBiasActivationForward(cudnn_, &one, D->x, at(x), D->w, wdev, D->conv, algo, wsp,
                                                               ws, &zero, D->y, y, D->b, bdev_h, D->act, D->y, y);
      if (st == CUDNN_STATUS_SUCCESS) return;
      *fused_ok = false;  // not for this algorithm: the unfused path from now on
    }
    ck(cudnnConvolutionForward(cudnn_, &one, D->x, at(x), D->w, wdev, D->conv, algo, wsp, ws, &zero, D->y, y),
       "cudnnConvolutionForward", "layer '" + lname + "'");
    if (bdev || epi.n_ops > 0) cuda::bias_chain_h(y, bdev, K, 1, epi, n, s);
  });
  std::string key = conv_tactic_key(P, xd, yd, G, false);
  key = key.substr(0, key.rfind("|fp32")) + "|fp16|nhwc";
  std::string tactic = std::string("cudnn_fwd_fp16_nhwc:") + fwd_algo_name(int(algo)) +
                       (has_chain ? "+epilogue_chain" + std::to_string(epi.n_ops)
                                  : *fused_ok ? "+cudnn_bias_act" : "+bias_act_kernel");
  tactics_.push_back({L.name, "Convolution", key, tactic, int64_t(algo), copt_.time_tactics ? best.time : -1.f, ws});
}

// Depthwise: times tandem's direct kernel (5 runs) against cuDNN's best; true: take the direct one.
bool CudaExecutorImpl::own_depthwise_wins(const cuda::DwConv& q, const DPtr& x, const float* w, const float* b,
                                          float* y, int act, float aa, float ab, float cudnn_ms, float* own_ms) {
  if (copt_.own_depthwise == 1 || !copt_.time_tactics) return true;
  if (x.off != SIZE_MAX) return false;
  const float* xs = static_cast<const float*>(x.p);
  cuda::depthwise_conv(q, xs, w, b, y, act, aa, ab, stream_);
  CK(cudaEventRecord(ev0_, stream_));
  for (int r = 0; r < 5; ++r) cuda::depthwise_conv(q, xs, w, b, y, act, aa, ab, stream_);
  CK(cudaEventRecord(ev1_, stream_));
  CK(cudaEventSynchronize(ev1_));
  CK(cudaGetLastError());
  float ms = 0;
  CK(cudaEventElapsedTime(&ms, ev0_, ev1_));
  *own_ms = ms / 5;
  return *own_ms < cudnn_ms;
}

// cuDNN's forward algorithm: every one timed (cudnnFind) or the heuristic's order; the first that
// succeeds within the workspace cap, and without tensor-op math unless TF32 is allowed.
cudnnConvolutionFwdAlgoPerf_t CudaExecutorImpl::pick_fwd_algo(const Layer& L, const ConvDescs& D, bool tensor_ops) {
  cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
  int got = 0;
  if (copt_.time_tactics)
    CK(cudnnFindConvolutionForwardAlgorithm(cudnn_, D.x, D.w, D.conv, D.y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &got, perf));
  else
    CK(cudnnGetConvolutionForwardAlgorithm_v7(cudnn_, D.x, D.w, D.conv, D.y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &got, perf));
  int pick = -1;
  for (int i = 0; i < got && pick < 0; ++i) {
    if (perf[i].status != CUDNN_STATUS_SUCCESS || perf[i].memory > copt_.max_workspace) continue;
    if (!tensor_ops && perf[i].mathType == CUDNN_TENSOR_OP_MATH) continue;
    if (!tensor_ops && perf[i].mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION) continue;
    pick = i;
  }
  if (pick < 0) unsupported(L, "cuDNN found no usable forward algorithm");
  return perf[pick];
}

// Convolution through cuDNN. Asymmetric padding: symmetric pre-padding when the output size
// agrees (zero padding beyond the input contributes nothing), else an explicitly padded copy.
void CudaExecutorImpl::build_convolution(LayerId id, const Layer& L) {
  const auto& P = L.as<ConvolutionParams>();
  TensorId xt = L.inputs[0], yt = L.outputs[0];
  require_float(L, xt);
  if (L.inputs.size() > 1) unsupported(L, "kernel weights given as a tensor input are not supported");
  Dims xd = net_.tensors[xt].dims, yd = net_.tensors[yt].dims;
  if (P.kernel.size() != 2 || xd.size() != 4)
    unsupported(L, "only 2D convolution over NCHW is supported (kernel rank " + std::to_string(P.kernel.size()) + ")");
  auto get = [](const Dims& d, size_t k, int64_t def) { return d.size() > k ? d[k] : def; };
  int kh = int(P.kernel[0]), kw = int(P.kernel[1]);
  int sh = int(get(P.stride, 0, 1)), sw = int(get(P.stride, 1, 1));
  int dh = int(get(P.dilation, 0, 1)), dw = int(get(P.dilation, 1, 1));
  int pt = int(get(P.pre_padding, 0, 0)), pl = int(get(P.pre_padding, 1, 0));
  int pb = int(get(P.post_padding, 0, 0)), pr = int(get(P.post_padding, 1, 0));
  int64_t C = xd[1], K = P.out_maps > 0 ? P.out_maps : yd[1], G = std::max<int64_t>(1, P.groups);
  std::vector<float> wv = weights_f32(P.kernel_weights, "kernel");
  if (int64_t(wv.size()) != K * (C / G) * kh * kw)
    unsupported(L, "kernel holds " + std::to_string(wv.size()) + " values, expected " + std::to_string(K * (C / G) * kh * kw));
  const std::vector<float> w_orig = wv;
  round_weights(id, wv, K, true, 1);
  const float* wdev = upload_f32(wv);
  const float* bdev = nullptr;
  if (P.bias_weights >= 0) {
    std::vector<float> bv = weights_f32(P.bias_weights, "bias");
    if (int64_t(bv.size()) != K) unsupported(L, "bias size differs from the output maps");
    if (precision_of(id) == Precision::kFP16) round_weights(id, bv, 1, true, 1);
    quantize_bias(id, L, w_orig, K, true, 1, bv);
    bdev = upload_f32(bv);
  }
  auto D = std::make_shared<ConvDescs>();
  conv_descs_.push_back(D);
  const std::string w = where_;
  // Explicit padding if symmetric pre-padding does not give the output size.
  auto out_size = [](int64_t in, int pad, int k, int s, int d) { return (in + 2 * pad - (d * (k - 1) + 1)) / s + 1; };
  bool explicit_pad = out_size(xd[2], pt, kh, sh, dh) != yd[2] || out_size(xd[3], pl, kw, sw, dw) != yd[3];
  DPtr x = in(xt);
  const DPtr x_orig = x;
  const int orig_pt = pt, orig_pl = pl;
  Dims xpd = xd;
  size_t pad_off = 0;
  if (explicit_pad) {
    xpd = {xd[0], xd[1], xd[2] + pt + pb, xd[3] + pl + pr};
    pad_off = reserve_scratch(size_t(volume(xpd)) * 4);
    Shape sin = shape_of(xd, w), sstart = shape_of(Dims{0, 0, -pt, -pl}, w),
          sstep = shape_of(Dims{1, 1, 1, 1}, w), sout = shape_of(xpd, w);
    add_step(L.name + ":pad", [=, this](cudaStream_t s) {
      cuda::slice_mode(at(x), sin, sstart, sstep, scratch_at(pad_off), sout, SliceMode::kFill, 0.f, cuda::kF32, 4, s);
    });
    x = scr(pad_off);
    pt = pb = pl = pr = 0;
  }
  CK(cudnnCreateTensorDescriptor(&D->x));
  CK(cudnnCreateTensorDescriptor(&D->y));
  CK(cudnnCreateTensorDescriptor(&D->b));
  CK(cudnnCreateFilterDescriptor(&D->w));
  CK(cudnnCreateConvolutionDescriptor(&D->conv));
  CK(cudnnSetTensor4dDescriptor(D->x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, int(xpd[0]), int(xpd[1]), int(xpd[2]), int(xpd[3])));
  CK(cudnnSetTensor4dDescriptor(D->y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, int(yd[0]), int(yd[1]), int(yd[2]), int(yd[3])));
  CK(cudnnSetTensor4dDescriptor(D->b, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, int(K), 1, 1));
  CK(cudnnSetFilter4dDescriptor(D->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, int(K), int(C / G), kh, kw));
  CK(cudnnSetConvolution2dDescriptor(D->conv, pt, pl, sh, sw, dh, dw, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  CK(cudnnSetConvolutionGroupCount(D->conv, int(G)));
  cudnnMathType_t math = copt_.allow_tf32 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH;
  CK(cudnnSetConvolutionMathType(D->conv, math));
  int n_, c_, h_, w_;
  CK(cudnnGetConvolution2dForwardOutputDim(D->conv, D->x, D->w, &n_, &c_, &h_, &w_));
  if (n_ != yd[0] || c_ != yd[1] || h_ != yd[2] || w_ != yd[3])
    unsupported(L, "cuDNN output " + join_dims(Dims{n_, c_, h_, w_}) + " differs from the network's " + join_dims(yd));
  // Tactic: time every algorithm (cudnnFind) or take the heuristic's first pick.
  const cudnnConvolutionFwdAlgoPerf_t best = pick_fwd_algo(L, *D, copt_.allow_tf32);
  cudnnConvolutionFwdAlgo_t algo = best.algo;
  CK(cudnnSetConvolutionMathType(D->conv, best.mathType));
  size_t ws = best.memory;
  size_t ws_off = reserve_scratch(ws);
  // Fused activation.
  LayerId aid = fused_activation();
  int act = -1;
  float aa = 0, ab = 0;
  TensorId out = yt;
  bool cudnn_fused = false;
  cuda::PwChain epi{};
  if (aid >= 0) {
    const auto& A = net_.layers[aid].as<ActivationParams>();
    act = int(A.type), aa = A.alpha, ab = A.beta;
    out = net_.layers[aid].outputs[0];
  }
  epi = conv_epilogue(act, aa, ab, &out);
  const bool has_chain = epi.n_ops > 0;
  if (has_chain) cur_kind_ += "+PointwiseChain" + std::to_string(epi.n_ops);
  if (aid >= 0 && !has_chain) {
    const auto& A = net_.layers[aid].as<ActivationParams>();
    if (A.type == ActivationType::kRelu) {
      cudnn_fused = true;
      CK(cudnnCreateActivationDescriptor(&D->act));
      CK(cudnnSetActivationDescriptor(D->act, CUDNN_ACTIVATION_RELU, CUDNN_NOT_PROPAGATE_NAN, 0.0));
      if (!bdev) bdev = upload_f32(std::vector<float>(size_t(K), 0.f));
    }
  }
  float* y = static_cast<float*>(ptr_[out]);
  int64_t n = volume(yd), inner = yd[2] * yd[3];
  std::string lname = L.name;
  // Depthwise: tandem's direct kernel when it is faster than cuDNN's best (timed here).
  bool is_dw = G > 1 && G == C && K == C;
  bool use_own = false;
  float own_ms = -1.f;
  if (is_dw && copt_.own_depthwise != 0) {
    cuda::DwConv q{int(xd[0]), int(C), int(xd[2]), int(xd[3]), int(yd[2]), int(yd[3]), kh, kw, sh, sw,
                   orig_pt, orig_pl, dh, dw};
    use_own = own_depthwise_wins(q, x_orig, wdev, bdev, y, act, aa, ab, best.time, &own_ms);
    if (use_own) {
      if (explicit_pad) steps_.pop_back();  // the kernel pads by bounds checks
      add_step(L.name, [=, this](cudaStream_t s) {
        cuda::depthwise_conv(q, atf<float>(x_orig), wdev, bdev, y, has_chain ? -1 : act, aa, ab, s);
        if (has_chain) cuda::bias_chain(y, nullptr, K, inner, epi, n, s);
      });
    }
  }
  auto fused_ok = std::make_shared<bool>(cudnn_fused);
  if (!use_own) add_step(L.name, [=, this](cudaStream_t s) {
    const float one = 1.f, zero = 0.f;
    void* wsp = ws ? scratch_at(ws_off) : nullptr;
    if (*fused_ok) {
      cudnnStatus_t st = cudnnConvolutionBiasActivationForward(
          cudnn_, &one, D->x, at(x), D->w, wdev, D->conv, algo, wsp, ws, &zero, D->y, y, D->b, bdev,
          D->act, D->y, y);
      if (st == CUDNN_STATUS_SUCCESS) return;
      *fused_ok = false;  // not supported for this algorithm: the unfused path from now on
    }
    ck(cudnnConvolutionForward(cudnn_, &one, D->x, at(x), D->w, wdev, D->conv, algo, wsp, ws, &zero, D->y, y),
       "cudnnConvolutionForward", "layer '" + lname + "'");
    if (has_chain) cuda::bias_chain(y, bdev, K, inner, epi, n, s);
    else if (bdev || act >= 0) cuda::bias_activation(y, bdev, K, inner, act, aa, ab, n, s);
  });
  const std::string key = conv_tactic_key(P, xd, yd, G, copt_.allow_tf32);
  std::string tactic = std::string("cudnn_fwd:") + fwd_algo_name(int(algo));
  if (has_chain) tactic += "+epilogue_chain" + std::to_string(epi.n_ops);
  else if (aid >= 0) tactic += cudnn_fused ? "+cudnn_bias_relu" : "+bias_act_kernel";
  if (use_own) {
    tactic = std::string("tandem_depthwise_direct") + (aid >= 0 ? "+act" : "") +
             (own_ms >= 0 ? " (cudnn " + std::string(fwd_algo_name(int(algo))) + " " +
                                std::to_string(best.time) + " ms)" : "");
    tactics_.push_back({L.name, "Convolution", key, tactic, 1000, own_ms, 0});
    return;
  }
  tactics_.push_back({L.name, "Convolution", key, tactic, int64_t(algo),
                      copt_.time_tactics ? best.time : -1.f, ws});
}

// ---- real INT8 ------------------------------------------------------------------------------
// An INT8 layer's float input that lies on a per-tensor INT8 grid (the last rounding of its
// memory before the step being built was a kInt8 round step: a rounded copy, or its producer's
// output rounded in place) is exactly q * scale with q = clamp(rne(x / scale), -128, 127): its
// int8 codes are recovered exactly and the layer runs on them. Returns that scale; 0 when the
// value is on no such grid (unquantized, FP16-rounded, half, FP32).
float CudaExecutorImpl::int8_grid_scale(ValueId v) const {
  const ExecValue& ev = graph_.values[size_t(v)];
  if (ev.type != DataType::kFloat || ev.storage != DataType::kFloat) return 0.f;
  float scale = 0.f;
  for (const ExecStep* s = graph_.steps.data(); s < cur_step_; ++s)
    if (s->kind == StepKind::kRound && !s->outputs.empty() && graph_.root(s->outputs[0]) == graph_.root(v))
      scale = s->rounding == Rounding::kInt8 ? s->scale : 0.f;
  return std::isfinite(scale) && scale > 0.f ? scale : 0.f;
}

// The INT8 layers that run for real: 2D convolutions over NCHW float values whose input is on an
// INT8 grid and whose output is stored as float. Anything else stays emulated (false).
bool CudaExecutorImpl::build_int8(LayerId id, const Layer& L) {
  if (L.kind != LayerKind::kConvolution || L.inputs.size() != 1 || L.outputs.size() != 1) return false;
  const auto& P = L.as<ConvolutionParams>();
  const Dims& xd = net_.tensors[size_t(L.inputs[0])].dims;
  const Dims& yd = net_.tensors[size_t(L.outputs[0])].dims;
  if (P.kernel.size() != 2 || xd.size() != 4 || yd.size() != 4 || net_.tensors[size_t(L.inputs[0])].type != DataType::kFloat)
    return false;
  const int64_t G = std::max<int64_t>(1, P.groups), K = yd[1];
  if (xd[1] % G || K % G) return false;
  for (ValueId o : cur_step_->outputs)
    if (graph_.values[size_t(o)].storage != DataType::kFloat && !graph_.values[size_t(o)].int8_codes() &&
        !graph_.values[size_t(o)].half_of_int8())
      return false;
  const ExecValue& xv = graph_.values[size_t(cur_step_->inputs[0])];
  const float x_scale = xv.int8_codes() ? xv.int8_scale : int8_grid_scale(cur_step_->inputs[0]);
  if (x_scale <= 0.f) return false;
  cur_kind_ += "(int8)";
  build_convolution_i8(id, L, x_scale);
  return true;
}

// The step's epilogue as one chain (its fused activation first) and the tensor it ends in.
cuda::PwChain CudaExecutorImpl::step_chain(TensorId* out) {
  const LayerId aid = fused_activation();
  int act = -1;
  float aa = 0, ab = 0;
  *out = net_.layers[size_t(cur_step_->layer)].outputs[0];
  if (aid >= 0) {
    const auto& A = net_.layers[size_t(aid)].as<ActivationParams>();
    act = int(A.type), aa = A.alpha, ab = A.beta;
    *out = net_.layers[size_t(aid)].outputs[0];
  }
  cuda::PwChain epi = conv_epilogue(act, aa, ab, out);
  if (epi.n_ops > 0) cur_kind_ += "+PointwiseChain" + std::to_string(epi.n_ops);
  if (epi.n_ops == 0 && act >= 0)
    epi.n_ops = 1, epi.ops[0] = {cuda::PwKind::kActivation, ActivationType(act), ElementWiseOp::kSum, aa, ab};
  return epi;
}

// cuBLASLt INT8 GEMM, int32 sums: C[k_out, rows] = W[k_out, kc] * X[rows, kc]^T in cuBLAS's
// column-major terms (A = the weights, transposed; B = the int8 rows; "TN", which the INT8
// tensor-core kernels take); kc and k_out are multiples of 16. The heuristic's candidates are
// timed on scratch buffers of the real size (time_tactics) and the fastest kept; null: none.
std::shared_ptr<MatmulDescs> CudaExecutorImpl::int8_gemm_descs(int64_t rows, int64_t kc, int64_t k_out,
                                                               const void* wq, float* ms, int* pick) {
  auto D = std::make_shared<MatmulDescs>();
  CK(cublasLtMatmulDescCreate(&D->op, CUBLAS_COMPUTE_32I, CUDA_R_32I));
  const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  CK(cublasLtMatmulDescSetAttribute(D->op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
  CK(cublasLtMatmulDescSetAttribute(D->op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
  CK(cublasLtMatrixLayoutCreate(&D->a, CUDA_R_8I, uint64_t(kc), uint64_t(k_out), kc));
  CK(cublasLtMatrixLayoutCreate(&D->b, CUDA_R_8I, uint64_t(kc), uint64_t(rows), kc));
  CK(cublasLtMatrixLayoutCreate(&D->c, CUDA_R_32I, uint64_t(k_out), uint64_t(rows), k_out));
  cublasLtMatmulPreference_t pref;
  CK(cublasLtMatmulPreferenceCreate(&pref));
  size_t wsb = lt_workspace_bytes_;
  CK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &wsb, sizeof(wsb)));
  cublasLtMatmulHeuristicResult_t res[8] = {};
  int got = 0;
  cublasStatus_t hs = cublasLtMatmulAlgoGetHeuristic(lt_, D->op, D->a, D->b, D->c, D->c, pref, 8, res, &got);
  cublasLtMatmulPreferenceDestroy(pref);
  if (hs != CUBLAS_STATUS_SUCCESS || got == 0) return nullptr;
  *pick = -1;
  *ms = -1.f;
  void *b = nullptr, *c = nullptr;
  if (copt_.time_tactics && got > 1) {
    CK(cudaMalloc(&b, size_t(rows * kc)));
    CK(cudaMalloc(&c, size_t(rows * k_out) * 4));
    CK(cudaMemsetAsync(b, 0, size_t(rows * kc), stream_));
  }
  for (int i = 0; i < got; ++i) {
    if (res[i].state != CUBLAS_STATUS_SUCCESS || res[i].workspaceSize > lt_workspace_bytes_) continue;
    if (!b) {  // untimed: the heuristic's first usable pick
      *pick = i;
      break;
    }
    const int32_t one = 1, zero = 0;
    auto once = [&] {
      return cublasLtMatmul(lt_, D->op, &one, wq, D->a, b, D->b, &zero, c, D->c, c, D->c, &res[i].algo, lt_workspace_,
                            lt_workspace_bytes_, stream_) == CUBLAS_STATUS_SUCCESS;
    };
    if (!once()) continue;
    CK(cudaEventRecord(ev0_, stream_));
    for (int r = 0; r < 3; ++r) once();
    CK(cudaEventRecord(ev1_, stream_));
    CK(cudaEventSynchronize(ev1_));
    float t = 0;
    CK(cudaEventElapsedTime(&t, ev0_, ev1_));
    if (*pick < 0 || t / 3 < *ms) *pick = i, *ms = t / 3;
  }
  if (b) cudaFree(b);
  if (c) cudaFree(c);
  CK(cudaGetLastError());
  if (*pick < 0) return nullptr;
  D->algo = res[*pick].algo;
  return D;
}

// A real INT8 convolution. The input's codes (NHWC int8), then for groups == 1 a cuBLASLt INT8
// GEMM (1x1 stride-1 unpadded with C % 16 == 0: over the codes directly; else over their
// im2col) with int32 sums, and the epilogue y = chain(sum * s_x * s_w[k] + bias[k]) writing the
// float NCHW value the next step reads. Grouped (depthwise) convolutions, and any shape cuBLASLt
// offers no algorithm for, run tandem's direct int8 kernel. Weights: the per-output-channel
// codes and scales of tandem/numerics.h, the bias on the int32 grid (s_x * s_w[k]), as the
// emulation, which sums the same products in float.
void CudaExecutorImpl::build_convolution_i8(LayerId id, const Layer& L, float x_scale) {
  const auto& P = L.as<ConvolutionParams>();
  const Dims xd = net_.tensors[size_t(L.inputs[0])].dims, yd = net_.tensors[size_t(L.outputs[0])].dims;
  auto get = [](const Dims& d, size_t k, int64_t def) { return d.size() > k ? d[k] : def; };
  const int kh = int(P.kernel[0]), kw = int(P.kernel[1]);
  const int64_t N = xd[0], C = xd[1], H = xd[2], W = xd[3], K = yd[1], OH = yd[2], OW = yd[3];
  const int64_t G = std::max<int64_t>(1, P.groups), Cg = C / G, inner = Cg * kh * kw;
  std::vector<float> wv = weights_f32(P.kernel_weights, "kernel");
  if (int64_t(wv.size()) != K * inner)
    unsupported(L, "kernel holds " + std::to_string(wv.size()) + " values, expected " + std::to_string(K * inner));
  const ChannelLayout wl{1, K, inner};
  const std::vector<float> ws = int8_weight_scales(wv.data(), wl);
  std::vector<int8_t> wq(wv.size());
  quantize_int8_weights(wv.data(), wl, ws, wq.data());
  std::vector<float> alpha(static_cast<size_t>(K)), bias;
  for (int64_t k = 0; k < K; ++k) alpha[size_t(k)] = x_scale * ws[size_t(k)];
  if (P.bias_weights >= 0) {
    bias = weights_f32(P.bias_weights, "bias");
    if (int64_t(bias.size()) != K) unsupported(L, "bias size differs from the output maps");
    quantize_bias(id, L, wv, K, true, 1, bias);
  }
  const float* alpha_dev = upload_f32(alpha);
  const float* bias_dev = bias.empty() ? nullptr : upload_f32(bias);
  TensorId out = -1;
  const cuda::PwChain chain = step_chain(&out);
  float* y = static_cast<float*>(ptr_[size_t(out)]);
  // int8-stored input and output (LowerPolicy::int8_native): codes read and written directly.
  const bool x_codes = graph_.values[size_t(cur_step_->inputs[0])].int8_codes();
  int8_t* yq = graph_.values[size_t(out)].int8_codes() ? static_cast<int8_t*>(ptr_[size_t(out)]) : nullptr;
  void* yh = graph_.values[size_t(out)].half_of_int8() ? ptr_[size_t(out)] : nullptr;  // half on the INT8 grid
  const float y_scale = yq || yh ? graph_.values[size_t(out)].int8_scale : 0.f;
  const DPtr x = in(L.inputs[0]);
  const int sh = int(get(P.stride, 0, 1)), sw = int(get(P.stride, 1, 1)), dh = int(get(P.dilation, 0, 1)),
            dw = int(get(P.dilation, 1, 1)), ph = int(get(P.pre_padding, 0, 0)), pw = int(get(P.pre_padding, 1, 0));
  const std::string key = conv_tactic_key(P, xd, yd, G, false) + "|int8";
  const int64_t rows = N * OH * OW, kc = inner, kc_pad = (kc + 15) / 16 * 16, k_pad = (K + 15) / 16 * 16;
  const bool direct_gemm = kh == 1 && kw == 1 && sh == 1 && sw == 1 && ph == 0 && pw == 0 && OH == H && OW == W &&
                           C % 16 == 0;
  std::shared_ptr<MatmulDescs> D;
  float ms = -1.f;
  int pick = -1;
  const void* wg = nullptr;
  if (G == 1 && rows * kc_pad < (int64_t(1) << 31) && rows * k_pad < (int64_t(1) << 31)) {
    // [k_pad, kc_pad] codes, columns in KRSC order (the im2col's), zeros in the padding.
    std::vector<int8_t> wk(size_t(k_pad * kc_pad), 0);
    for (int64_t k = 0; k < K; ++k)
      for (int64_t c = 0; c < C; ++c)
        for (int r = 0; r < kh; ++r)
          for (int s = 0; s < kw; ++s)
            wk[size_t(k * kc_pad + (r * kw + s) * C + c)] = wq[size_t(((k * C + c) * kh + r) * kw + s)];
    void* p = dalloc(wk.size());
    CK(cudaMemcpy(p, wk.data(), wk.size(), cudaMemcpyHostToDevice));
    weight_bytes_ += wk.size();
    wg = p;
    D = int8_gemm_descs(rows, kc_pad, k_pad, wg, &ms, &pick);
  }
  const DPtr xq = x_codes ? x : scr(reserve_scratch(size_t(N * H * W * C)));
  if (!D) {  // grouped, or no INT8 GEMM for this shape: the direct kernel
    void* wd = dalloc(wq.size());
    CK(cudaMemcpy(wd, wq.data(), wq.size(), cudaMemcpyHostToDevice));
    weight_bytes_ += wq.size();
    const int8_t* w8 = static_cast<const int8_t*>(wd);
    const cuda::ConvI8 q{int(N), int(C), int(H), int(W), int(K), int(OH), int(OW), kh, kw, sh, sw, ph, pw, dh, dw, int(G)};
    add_step(L.name, [=, this](cudaStream_t s) {
      if (!x_codes) cuda::quantize_nhwc_i8(atf<float>(x), atf<int8_t>(xq), N, C, H * W, x_scale, s);
      cuda::conv_direct_i8(q, atf<int8_t>(xq), w8, alpha_dev, bias_dev, chain, y, yq, yh, y_scale, s);
    });
    tactics_.push_back({L.name, "Convolution", key, "tandem_int8_direct", 1001, -1.f, 0});
    return;
  }
  mm_descs_.push_back(D);
  const DPtr col = direct_gemm ? xq : scr(reserve_scratch(size_t(rows * kc_pad)));
  const size_t acc_off = reserve_scratch(size_t(rows * k_pad) * 4);
  const cuda::Im2col ic{int(N), int(H), int(W), int(C), int(OH), int(OW), kh, kw, sh, sw, ph, pw, dh, dw, int(kc_pad)};
  const std::string lname = L.name;
  add_step(L.name, [=, this](cudaStream_t s) {
    int32_t* acc = static_cast<int32_t*>(scratch_at(acc_off));
    if (!x_codes) cuda::quantize_nhwc_i8(atf<float>(x), atf<int8_t>(xq), N, C, H * W, x_scale, s);
    if (!direct_gemm) cuda::im2col_i8(ic, atf<int8_t>(xq), atf<int8_t>(col), s);
    const int32_t one = 1, zero = 0;
    ck(cublasLtMatmul(lt_, D->op, &one, wg, D->a, at(col), D->b, &zero, acc, D->c, acc, D->c, &D->algo,
                      lt_workspace_, lt_workspace_bytes_, s),
       "cublasLtMatmul", "layer '" + lname + "'");
    if (yq || yh) {
      cuda::int8_epilogue_codes(acc, k_pad, rows, K, alpha_dev, bias_dev, chain, y_scale, yq, yh, s);
    } else {
      cuda::int8_epilogue_nchw(acc, k_pad, N, K, OH * OW, alpha_dev, bias_dev, chain, y, s);
    }
  });
  const std::string tactic = std::string("cublaslt_int8_gemm") + (direct_gemm ? "_nhwc" : "_im2col") +
                             ":heuristic" + std::to_string(pick);
  tactics_.push_back({L.name, "Convolution", key, tactic, pick, ms, 0});
}

// A step reading or writing int8 codes (LowerPolicy::int8_native: native_int8_layer): an INT8
// convolution (build_int8), or an activation over codes. False: the step touches no codes.
bool CudaExecutorImpl::build_int8_codes_step(const ExecStep& st, const Layer& L) {
  bool codes = false;  // (a half value on an INT8 grid is read as any half value)
  for (ValueId v : st.inputs) codes = codes || graph_.values[size_t(v)].int8_codes();
  for (ValueId v : st.outputs)
    codes = codes || graph_.values[size_t(v)].int8_codes() || graph_.values[size_t(v)].half_of_int8();
  if (!codes) return false;
  if (L.kind == LayerKind::kActivation) {
    build_activation_i8(st, L);
    return true;
  }
  if (precision_of(st.layer) != Precision::kINT8 || !build_int8(st.layer, L))
    fail(where_, "a step over int8-stored values that no INT8 kernel runs (native_int8_layer and build_int8 disagree)");
  return true;
}

// The codes an INT8 convolution reads (a round step into a value stored as codes): from float
// NCHW (a transposing tile when the codes are channels-last), or elementwise from a value in
// the codes' layout (half channels-last, or float where both are linear).
void CudaExecutorImpl::build_quantize_codes(const ExecStep& st) {
  const ExecValue& from = graph_.values[size_t(st.inputs[0])];
  const ExecValue& to = graph_.values[size_t(st.outputs[0])];
  const void* x = ptr_[size_t(st.inputs[0])];
  int8_t* q = static_cast<int8_t*>(ptr_[size_t(st.outputs[0])]);
  if (!x || !q) return;  // empty
  const float scale = to.int8_scale;
  const int64_t n = volume(to.dims);
  const bool half = from.storage == DataType::kHalf;
  cur_kind_ = half ? "QuantizeFP16" : "QuantizeFP32";
  const std::string name = net_.layers[st.layer].name + ":to_int8(" + from.name + ")";
  if (!half && from.layout == ValueLayout::kLinear && to.layout == ValueLayout::kNHWC) {
    const int64_t b = to.dims[0], c = to.dims[1], hw = to.dims[2] * to.dims[3];
    const float* xf = static_cast<const float*>(x);
    add_step(name, [=](cudaStream_t s) { cuda::quantize_nhwc_i8(xf, q, b, c, hw, scale, s); });
    return;
  }
  if (from.layout != to.layout || (!half && from.storage != DataType::kFloat))
    fail(where_, "codes of '" + from.name + "': no kernel from its storage and layout");
  add_step(name, [=](cudaStream_t s) { cuda::quantize_codes_i8(x, half, q, n, scale, s); });
}

// An INT8 or native FP16 activation over int8 codes (same layout in and out: channels-last as
// the lowering stores both), writing codes on its output's grid or (FP16) half.
void CudaExecutorImpl::build_activation_i8(const ExecStep& st, const Layer& L) {
  const ExecValue& xv = graph_.values[size_t(st.inputs[0])];
  const ExecValue& yv = graph_.values[size_t(st.outputs[0])];
  const bool fp16 = precision_of(st.layer) == Precision::kFP16;
  if (!xv.int8_codes() || !(yv.int8_codes() || (fp16 && yv.float_as_half())) || xv.layout != yv.layout)
    fail(where_, "an activation over int8 codes must write codes or (FP16) half in the same layout");
  const auto& A = L.as<ActivationParams>();
  cuda::PwChain c{};
  c.n_ops = 1;
  c.ops[0] = {cuda::PwKind::kActivation, A.type, ElementWiseOp::kSum, A.alpha, A.beta};
  const int8_t* x = static_cast<const int8_t*>(ptr_[size_t(st.inputs[0])]);
  void* y = ptr_[size_t(st.outputs[0])];
  const float xs = xv.int8_scale, ys = yv.int8_codes() ? yv.int8_scale : 0.f;
  int8_t* yq = yv.int8_codes() ? static_cast<int8_t*>(y) : nullptr;
  const int64_t n = volume(yv.dims);
  cur_kind_ += yq ? "(int8)" : "(int8->fp16)";
  add_step(L.name, [=](cudaStream_t s) { cuda::activation_codes_i8(x, xs, fp16, c, yq, ys, y, n, s); });
}

// Deconvolution = cuDNN backward-data. Padding other than symmetric: full output, then crop.
void CudaExecutorImpl::build_deconvolution(LayerId id, const Layer& L) {
  const auto& P = L.as<ConvolutionParams>();
  TensorId xt = L.inputs[0], yt = L.outputs[0];
  require_float(L, xt);
  if (L.inputs.size() > 1) unsupported(L, "kernel weights given as a tensor input are not supported");
  Dims xd = net_.tensors[xt].dims, yd = net_.tensors[yt].dims;
  if (P.kernel.size() != 2 || xd.size() != 4) unsupported(L, "only 2D deconvolution over NCHW is supported");
  auto get = [](const Dims& d, size_t k, int64_t def) { return d.size() > k ? d[k] : def; };
  int kh = int(P.kernel[0]), kw = int(P.kernel[1]);
  int sh = int(get(P.stride, 0, 1)), sw = int(get(P.stride, 1, 1));
  int dh = int(get(P.dilation, 0, 1)), dw = int(get(P.dilation, 1, 1));
  int pt = int(get(P.pre_padding, 0, 0)), pl = int(get(P.pre_padding, 1, 0));
  int pb = int(get(P.post_padding, 0, 0)), pr = int(get(P.post_padding, 1, 0));
  int64_t C = xd[1], K = P.out_maps > 0 ? P.out_maps : yd[1], G = std::max<int64_t>(1, P.groups);
  std::vector<float> wv = weights_f32(P.kernel_weights, "kernel");
  if (int64_t(wv.size()) != C * (K / G) * kh * kw) unsupported(L, "kernel size differs from [C, K/g, kh, kw]");
  const std::vector<float> w_orig = wv;
  round_weights(id, wv, K / G, false, int64_t(kh) * kw);
  const float* wdev = upload_f32(wv);
  const float* bdev = nullptr;
  if (P.bias_weights >= 0) {
    std::vector<float> bv = weights_f32(P.bias_weights, "bias");
    if (int64_t(bv.size()) != K) unsupported(L, "bias size differs from the output maps");
    if (precision_of(id) == Precision::kFP16) round_weights(id, bv, 1, true, 1);
    if (G == 1) quantize_bias(id, L, w_orig, K, false, int64_t(kh) * kw, bv);
    bdev = upload_f32(bv);
  }
  const std::string w = where_;
  auto full = [](int64_t in, int pad, int k, int s, int d) { return (in - 1) * s - 2 * pad + d * (k - 1) + 1; };
  bool direct = pt == pb && pl == pr && full(xd[2], pt, kh, sh, dh) == yd[2] && full(xd[3], pl, kw, sw, dw) == yd[3];
  Dims fd = yd;
  if (!direct) {
    fd = {yd[0], yd[1], full(xd[2], 0, kh, sh, dh), full(xd[3], 0, kw, sw, dw)};
    if (pt + yd[2] > fd[2] || pl + yd[3] > fd[3]) unsupported(L, "output padding beyond the full deconvolution is not supported");
  }
  auto D = std::make_shared<ConvDescs>();
  conv_descs_.push_back(D);
  CK(cudnnCreateTensorDescriptor(&D->x));
  CK(cudnnCreateTensorDescriptor(&D->y));
  CK(cudnnCreateFilterDescriptor(&D->w));
  CK(cudnnCreateConvolutionDescriptor(&D->conv));
  CK(cudnnSetTensor4dDescriptor(D->x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, int(xd[0]), int(xd[1]), int(xd[2]), int(xd[3])));
  CK(cudnnSetTensor4dDescriptor(D->y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, int(fd[0]), int(fd[1]), int(fd[2]), int(fd[3])));
  CK(cudnnSetFilter4dDescriptor(D->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, int(C), int(K / G), kh, kw));
  CK(cudnnSetConvolution2dDescriptor(D->conv, direct ? pt : 0, direct ? pl : 0, sh, sw, dh, dw, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  CK(cudnnSetConvolutionGroupCount(D->conv, int(G)));
  CK(cudnnSetConvolutionMathType(D->conv, copt_.allow_tf32 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH));
  cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
  int got = 0;
  if (copt_.time_tactics)
    CK(cudnnFindConvolutionBackwardDataAlgorithm(cudnn_, D->w, D->x, D->conv, D->y, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &got, perf));
  else
    CK(cudnnGetConvolutionBackwardDataAlgorithm_v7(cudnn_, D->w, D->x, D->conv, D->y, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &got, perf));
  int pick = -1;
  for (int i = 0; i < got && pick < 0; ++i) {
    if (perf[i].status != CUDNN_STATUS_SUCCESS || perf[i].memory > copt_.max_workspace) continue;
    if (!copt_.allow_tf32 && (perf[i].mathType == CUDNN_TENSOR_OP_MATH || perf[i].mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION)) continue;
    pick = i;
  }
  if (pick < 0) unsupported(L, "cuDNN found no usable backward-data algorithm");
  cudnnConvolutionBwdDataAlgo_t algo = perf[pick].algo;
  CK(cudnnSetConvolutionMathType(D->conv, perf[pick].mathType));
  size_t ws = perf[pick].memory;
  size_t ws_off = reserve_scratch(ws);
  size_t full_off = direct ? 0 : reserve_scratch(size_t(volume(fd)) * 4);
  LayerId aid = fused_activation();
  int act = -1;
  float aa = 0, ab = 0;
  TensorId out = yt;
  if (aid >= 0) {
    const auto& A = net_.layers[aid].as<ActivationParams>();
    act = int(A.type), aa = A.alpha, ab = A.beta;
    out = net_.layers[aid].outputs[0];
  }
  const cuda::PwChain epi = conv_epilogue(act, aa, ab, &out);
  const bool has_chain = epi.n_ops > 0;
  if (has_chain) cur_kind_ += "+PointwiseChain" + std::to_string(epi.n_ops);
  float* y = static_cast<float*>(ptr_[out]);
  int64_t n = volume(yd), inner = yd[2] * yd[3];
  DPtr x = in(xt);
  Dims fst = dense_strides(fd);
  int64_t base = pt * fst[2] + pl * fst[3];
  Shape cs = shape_of(fst, w), cd = shape_of(yd, w);
  std::string lname = L.name;
  add_step(L.name, [=, this](cudaStream_t s) {
    const float one = 1.f, zero = 0.f;
    void* wsp = ws ? scratch_at(ws_off) : nullptr;
    float* dst = direct ? y : static_cast<float*>(scratch_at(full_off));
    ck(cudnnConvolutionBackwardData(cudnn_, &one, D->w, wdev, D->x, at(x), D->conv, algo, wsp, ws, &zero, D->y, dst),
       "cudnnConvolutionBackwardData", "layer '" + lname + "'");
    if (!direct) cuda::strided_copy(dst, base, cs, y, cd, 4, s);
    if (has_chain) cuda::bias_chain(y, bdev, K, inner, epi, n, s);
    else if (bdev || act >= 0) cuda::bias_activation(y, bdev, K, inner, act, aa, ab, n, s);
  });
  std::ostringstream key;
  key << "Deconvolution|x=" << join_dims(xd) << "|y=" << join_dims(yd) << "|k=" << kh << "x" << kw << "|s=" << sh << "x" << sw
      << "|p=" << pt << "," << pl << "," << pb << "," << pr << "|d=" << dh << "x" << dw << "|g=" << G << "|fp32"
      << (copt_.allow_tf32 ? "|tf32" : "");
  std::string tactic = std::string("cudnn_bwd_data:") + bwd_algo_name(int(algo)) +
                       (has_chain ? "+epilogue_chain" + std::to_string(epi.n_ops) : aid >= 0 ? "+bias_act_kernel" : "");
  tactics_.push_back({L.name, "Deconvolution", key.str(), tactic, int64_t(algo),
                      copt_.time_tactics ? perf[pick].time : -1.f, ws});
}

// MatrixMultiply through cuBLASLt. Row-major C[M,N] = op(A) op(B) is computed as the
// column-major C^T = op(B)^T op(A)^T: the operands swap places and keep their storage.
void CudaExecutorImpl::build_matmul(LayerId id, const Layer& L) {
  const auto& P = L.as<MatrixMultiplyParams>();
  TensorId at_ = L.inputs[0], bt_ = L.inputs[1], ct = L.outputs[0];
  require_float(L, at_);
  require_float(L, bt_);
  Dims ad = net_.tensors[at_].dims, bd = net_.tensors[bt_].dims, cd = net_.tensors[ct].dims;
  if (ad.size() < 2 || bd.size() < 2 || cd.size() < 2) unsupported(L, "matrix multiply needs rank >= 2 operands");
  bool ta = P.op0 == MatrixOp::kTranspose, tb = P.op1 == MatrixOp::kTranspose;
  int64_t M = ta ? ad[ad.size() - 1] : ad[ad.size() - 2];
  int64_t K = ta ? ad[ad.size() - 2] : ad[ad.size() - 1];
  int64_t Kb = tb ? bd[bd.size() - 1] : bd[bd.size() - 2];
  int64_t N = tb ? bd[bd.size() - 2] : bd[bd.size() - 1];
  if (K != Kb || cd[cd.size() - 2] != M || cd[cd.size() - 1] != N)
    unsupported(L, "shapes " + join_dims(ad) + " x " + join_dims(bd) + " -> " + join_dims(cd) + " do not agree");
  int64_t batch = volume(cd) / (M * N);
  auto batch_of = [&](const Dims& d) { return volume(d) / (d[d.size() - 1] * d[d.size() - 2]); };
  int64_t ba = batch_of(ad), bb = batch_of(bd);
  auto check_batch = [&](const Dims& d, int64_t b) {
    if (b == 1) return;
    if (b != batch) unsupported(L, "batch broadcast other than all-or-one is not supported");
    size_t off = cd.size() - d.size();
    for (size_t k = 0; k + 2 < d.size(); ++k)
      if (d[k] != cd[k + off]) unsupported(L, "batch broadcast other than all-or-one is not supported");
  };
  check_batch(ad, ba);
  check_batch(bd, bb);
  auto D = std::make_shared<MatmulDescs>();
  mm_descs_.push_back(D);
  // Real FP16: half operands and result, FP32 accumulation and scaling (tensor cores).
  const bool half = graph_.values[size_t(ct)].float_as_half();
  const cudaDataType_t dt = half ? CUDA_R_16F : CUDA_R_32F;
  cublasComputeType_t ctype = copt_.allow_tf32 && !half ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  CK(cublasLtMatmulDescCreate(&D->op, ctype, CUDA_R_32F));
  cublasOperation_t opa = tb ? CUBLAS_OP_T : CUBLAS_OP_N;  // Lt's A is our B
  cublasOperation_t opb = ta ? CUBLAS_OP_T : CUBLAS_OP_N;  // Lt's B is our A
  CK(cublasLtMatmulDescSetAttribute(D->op, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof(opa)));
  CK(cublasLtMatmulDescSetAttribute(D->op, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof(opb)));
  // Storage (column-major views of row-major buffers): rows = last dim, cols = second-last.
  uint64_t b_rows = uint64_t(bd.back()), b_cols = uint64_t(bd[bd.size() - 2]);
  uint64_t a_rows = uint64_t(ad.back()), a_cols = uint64_t(ad[ad.size() - 2]);
  CK(cublasLtMatrixLayoutCreate(&D->a, dt, b_rows, b_cols, int64_t(b_rows)));
  CK(cublasLtMatrixLayoutCreate(&D->b, dt, a_rows, a_cols, int64_t(a_rows)));
  CK(cublasLtMatrixLayoutCreate(&D->c, dt, uint64_t(N), uint64_t(M), N));
  if (batch > 1) {
    int32_t bc = int32_t(batch);
    int64_t sa = bb == 1 ? 0 : int64_t(b_rows * b_cols), sb = ba == 1 ? 0 : int64_t(a_rows * a_cols), sc = M * N;
    CK(cublasLtMatrixLayoutSetAttribute(D->a, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &bc, sizeof(bc)));
    CK(cublasLtMatrixLayoutSetAttribute(D->a, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &sa, sizeof(sa)));
    CK(cublasLtMatrixLayoutSetAttribute(D->b, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &bc, sizeof(bc)));
    CK(cublasLtMatrixLayoutSetAttribute(D->b, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &sb, sizeof(sb)));
    CK(cublasLtMatrixLayoutSetAttribute(D->c, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &bc, sizeof(bc)));
    CK(cublasLtMatrixLayoutSetAttribute(D->c, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &sc, sizeof(sc)));
  }
  cublasLtMatmulPreference_t pref;
  CK(cublasLtMatmulPreferenceCreate(&pref));
  size_t wsb = lt_workspace_bytes_;
  CK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &wsb, sizeof(wsb)));
  cublasLtMatmulHeuristicResult_t res[8];
  int got = 0;
  cublasStatus_t hs = cublasLtMatmulAlgoGetHeuristic(lt_, D->op, D->a, D->b, D->c, D->c, pref, 8, res, &got);
  cublasLtMatmulPreferenceDestroy(pref);
  if (hs != CUBLAS_STATUS_SUCCESS || got == 0) unsupported(L, "cuBLASLt found no algorithm");
  // Time the candidates on the real buffers (inputs hold whatever the arena holds: timing only).
  int pick = 0;
  float best = -1.f;
  const void* A = in(at_).off == SIZE_MAX ? ptr_[at_] : nullptr;
  const void* B = in(bt_).off == SIZE_MAX ? ptr_[bt_] : nullptr;
  void* Cp = ptr_[ct];
  if (copt_.time_tactics && got > 1 && A && B) {
    const float one = 1.f, zero = 0.f;
    for (int i = 0; i < got; ++i) {
      if (res[i].state != CUBLAS_STATUS_SUCCESS) continue;
      float tot = 0;
      bool ok = true;
      for (int rep = 0; rep < 4 && ok; ++rep) {
        CK(cudaEventRecord(ev0_, stream_));
        ok = cublasLtMatmul(lt_, D->op, &one, B, D->a, A, D->b, &zero, Cp, D->c, Cp, D->c, &res[i].algo,
                            lt_workspace_, lt_workspace_bytes_, stream_) == CUBLAS_STATUS_SUCCESS;
        CK(cudaEventRecord(ev1_, stream_));
        CK(cudaEventSynchronize(ev1_));
        float ms = 0;
        CK(cudaEventElapsedTime(&ms, ev0_, ev1_));
        if (rep > 0) tot += ms;
      }
      if (ok && (best < 0 || tot / 3 < best)) best = tot / 3, pick = i;
    }
  }
  D->algo = res[pick].algo;
  DPtr a = in(at_), b = in(bt_);
  std::string lname = L.name;
  void* c = Cp;
  void* wsp = lt_workspace_;
  size_t wsz = lt_workspace_bytes_;
  add_step(L.name, [=, this](cudaStream_t s) {
    const float one = 1.f, zero = 0.f;
    ck(cublasLtMatmul(lt_, D->op, &one, at(b), D->a, at(a), D->b, &zero, c, D->c, c, D->c, &D->algo, wsp, wsz, s),
       "cublasLtMatmul", "layer '" + lname + "'");
  });
  std::ostringstream key;
  key << "MatrixMultiply|a=" << join_dims(ad) << (ta ? "T" : "") << "|b=" << join_dims(bd) << (tb ? "T" : "")
      << (half ? "|fp16" : "|fp32") << (copt_.allow_tf32 && !half ? "|tf32" : "");
  tactics_.push_back({L.name, "MatrixMultiply", key.str(), "cublaslt:heuristic" + std::to_string(pick), int64_t(pick),
                      best, res[pick].workspaceSize});
}

// Shuffle = transpose, reshape (free: dense row-major), transpose.
void CudaExecutorImpl::build_shuffle(LayerId id, const Layer& L) {
  const auto& P = L.as<ShuffleParams>();
  TensorId xt = L.inputs[0], yt = L.outputs[0];
  const std::string w = where_;
  Dims d0 = net_.tensors[xt].dims;
  auto permute = [&](const Dims& d, const std::vector<int>& perm) {
    if (perm.size() != d.size()) unsupported(L, "permutation rank differs from the input's");
    Dims r(d.size());
    for (size_t k = 0; k < d.size(); ++k) r[k] = d[perm[k]];
    return r;
  };
  Dims d1 = P.first_transpose.empty() ? d0 : permute(d0, P.first_transpose);
  Dims d2 = P.reshape ? *P.reshape : d1;
  if (volume(d2) != volume(d1)) unsupported(L, "reshape changes the element count");
  Dims d3 = P.second_transpose.empty() ? d2 : permute(d2, P.second_transpose);
  if (d3 != net_.tensors[yt].dims)
    unsupported(L, "result " + join_dims(d3) + " differs from the output " + join_dims(net_.tensors[yt].dims));
  int es = int(element_size(net_.tensors[yt].type));
  DPtr x = in(xt);
  void* y = ptr_[yt];
  auto transpose_step = [&](const Dims& src, const std::vector<int>& perm, std::function<const void*()> from, void* to) {
    Dims st = dense_strides(src);
    Dims out = permute(src, perm);
    Shape ss = shape_of(out, w), sd = shape_of(out, w);
    for (size_t k = 0; k < perm.size(); ++k) ss.d[k] = st[perm[k]];
    return std::make_tuple(ss, sd);
  };
  bool t1 = !P.first_transpose.empty(), t2 = !P.second_transpose.empty();
  if (!t1 && !t2) {
    size_t bytes = bytes_of(yt);
    if (bytes) add_step(L.name, [=, this](cudaStream_t s) { cudaMemcpyAsync(y, at(x), bytes, cudaMemcpyDeviceToDevice, s); });
    return;
  }
  DPtr mid = x;
  if (t1) {
    auto [ss, sd] = transpose_step(d0, P.first_transpose, nullptr, nullptr);
    DPtr dst = t2 ? scr(reserve_scratch(bytes_of(yt))) : DPtr{y, SIZE_MAX};
    add_step(L.name, [=, this](cudaStream_t s) { cuda::strided_copy(at(x), 0, ss, at(dst), sd, es, s); });
    mid = dst;
  }
  if (t2) {
    auto [ss, sd] = transpose_step(d2, P.second_transpose, nullptr, nullptr);
    add_step(L.name, [=, this](cudaStream_t s) { cuda::strided_copy(at(mid), 0, ss, y, sd, es, s); });
  }
  (void)id;
}

// The first run is eager, layer by layer, with a check after each launch: an error names its layer.
void CudaExecutorImpl::validate_run() {
  for (auto& s : steps_) {
    where_ = "layer '" + s.layer + "'";
    s.launch(stream_);
    CK(cudaGetLastError());
  }
  where_ = "compile";
  CK(cudaStreamSynchronize(stream_));
  CK(cudaGetLastError());
}

void CudaExecutorImpl::try_capture() {
  graph_tried_ = true;
  cudaGraph_t g = nullptr;
  if (cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal) != cudaSuccess) {
    cudaGetLastError();
    graph_note_ = "begin capture failed";
    return;
  }
  bool ok = true;
  try {
    for (auto& s : steps_) s.launch(stream_);
  } catch (const Error& e) {
    ok = false;
    graph_note_ = e.what();
  }
  cudaError_t e = cudaStreamEndCapture(stream_, &g);
  if (!ok || e != cudaSuccess || !g) {
    cudaGetLastError();
    if (g) cudaGraphDestroy(g);
    if (graph_note_.empty()) graph_note_ = "capture failed";
    return;
  }
  if (cudaGraphInstantiate(&graph_exec_, g, 0) != cudaSuccess) {
    cudaGetLastError();
    graph_exec_ = nullptr;
    graph_note_ = "instantiate failed";
  }
  cudaGraphDestroy(g);
}

}  // namespace

bool cuda_available(std::string* why) {
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess || n == 0) {
    if (why) *why = std::string("no CUDA device: cudaGetDeviceCount: ") + (e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
    cudaGetLastError();
    return false;
  }
  return true;
}

std::unique_ptr<CudaExecutor> make_cuda_executor(const Network& net, const ExecOptions& opt,
                                                 const CudaOptions& cuda_opt, bool keep_all) {
  std::string why;
  if (!cuda_available(&why)) throw Error("cuda backend: " + why);
  return std::make_unique<CudaExecutorImpl>(net, opt, cuda_opt, keep_all);
}

std::unique_ptr<Executor> make_cuda_executor(const Network& net, const ExecOptions& opt, bool keep_all) {
  return make_cuda_executor(net, opt, CudaOptions{}, keep_all);
}

}  // namespace tandem
