// The CUDA executor's convolutions (cuDNN, 1x1 as cuBLASLt GEMMs, own depthwise) and real-FP16 layers.
#include <climits>
#include <cstdio>

#include "backend/cuda/executor_impl.h"

namespace tandem {
namespace cuda_exec {

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
    const int64_t segs = cuda::spatial_reduce_h_segments(xd[0], xd[2] * xd[3], xd[1]);
    const size_t part_off = segs > 1 ? reserve_scratch(size_t(xd[0] * segs * xd[1]) * sizeof(float)) : 0;
    add_step(L.name, [=, this](cudaStream_t s) {
      float* part = segs > 1 ? static_cast<float*>(scratch_at(part_off)) : nullptr;
      cuda::spatial_reduce_h(op, at(x), y, xd[0], xd[2] * xd[3], xd[1], segs, part, s);
    });
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

// TensorRT's residual fusion: a real FP16 convolution whose output is read only by the next step,
// a real FP16 Sum with another half value z of its shape (and, if the step after is a ReLU that
// alone reads the sum, that ReLU), computes act(conv + bias + z) in FP32 and rounds once (cuDNN's
// z input with alpha2 = 1, or cuBLASLt's C with beta = 1); the add and ReLU steps launch nothing.
// Their output is then written one or two steps early: it must not overlap the convolution's
// input, and z only as z itself (in place: each element of z is read once, by the epilogue that
// writes the same element), since lower()'s arena may reuse memory that dies at the convolution
// or at the add. TANDEM_CUDA_FUSE_RESIDUAL=0 turns it off.
bool CudaExecutorImpl::residual_after_conv(const Layer& L, Residual* r, bool check_memory) const {
  const char* env = std::getenv("TANDEM_CUDA_FUSE_RESIDUAL");
  if ((env && std::string(env) == "0") || keep_all_ || opt_.observe_tensor || !opt_.fuse) return false;
  const size_t k = size_t(cur_step_ - graph_.steps.data());
  const TensorId yt = L.outputs[0];
  if (!cur_step_->epilogue.empty() || cur_step_->outputs.size() != 1 || cur_step_->outputs[0] != yt ||
      cur_step_->inputs.empty() || net_.tensors[size_t(yt)].is_output || k + 1 >= graph_.steps.size())
    return false;
  auto readers = [&](TensorId t) {
    int n = 0;
    for (const Layer& l : net_.layers) n += int(std::count(l.inputs.begin(), l.inputs.end(), t));
    return n;
  };
  auto plain_half = [&](const ExecStep& s, LayerKind kind) {  // a real FP16 layer alone, one half output
    return s.kind == StepKind::kLayer && s.epilogue.empty() && net_.layers[size_t(s.layer)].kind == kind &&
           s.outputs.size() == 1 && graph_.values[size_t(s.outputs[0])].float_as_half() &&
           !graph_.values[size_t(s.outputs[0])].half_of_int8();
  };
  const ExecStep& add = graph_.steps[k + 1];
  if (!plain_half(add, LayerKind::kElementWise) || readers(yt) != 1 || add.inputs.size() != 2 ||
      net_.layers[size_t(add.layer)].as<ElementWiseParams>().op != ElementWiseOp::kSum)
    return false;
  const int yi = add.inputs[0] == yt ? 0 : add.inputs[1] == yt ? 1 : -1;
  if (yi < 0 || add.inputs[size_t(1 - yi)] == yt) return false;
  const ValueId zv = add.inputs[size_t(1 - yi)];
  const ExecValue &Y = graph_.values[size_t(yt)], &Z = graph_.values[size_t(zv)];
  if (!Y.float_as_half() || !Z.float_as_half() || Z.half_of_int8() || Z.dims != Y.dims || Z.layout != Y.layout ||
      graph_.values[size_t(add.outputs[0])].dims != Y.dims || !ptr_[size_t(zv)])
    return false;
  r->z = DPtr{ptr_[size_t(zv)], SIZE_MAX};
  r->out = add.outputs[0];
  r->relu = false;
  if (k + 2 < graph_.steps.size()) {
    const ExecStep& act = graph_.steps[k + 2];
    const TensorId s = add.outputs[0];
    if (plain_half(act, LayerKind::kActivation) && act.inputs.size() == 1 && act.inputs[0] == s &&
        readers(s) == 1 && !net_.tensors[size_t(s)].is_output &&
        net_.layers[size_t(act.layer)].as<ActivationParams>().type == ActivationType::kRelu &&
        graph_.values[size_t(act.outputs[0])].dims == Y.dims)
      r->out = act.outputs[0], r->relu = true;
  }
  if (!check_memory) return true;
  const size_t ybytes = size_t(volume(Y.dims)) * sizeof(__half);
  auto overlap = [](const void* a, size_t an, const void* b, size_t bn) {
    const char *p = static_cast<const char*>(a), *q = static_cast<const char*>(b);
    return p < q + bn && q < p + an;
  };
  const ValueId xv = cur_step_->inputs[0];
  const void* x = ptr_[size_t(xv)];
  const size_t xbytes = size_t(volume(graph_.values[size_t(xv)].dims)) * sizeof(__half);
  auto writable = [&](ValueId out) {
    return ptr_[size_t(out)] && !overlap(ptr_[size_t(out)], ybytes, x, xbytes) &&
           (ptr_[size_t(out)] == ptr_[size_t(zv)] || !overlap(ptr_[size_t(out)], ybytes, ptr_[size_t(zv)], ybytes));
  };
  if (writable(r->out)) return true;
  if (!r->relu || !writable(add.outputs[0])) return false;
  r->out = add.outputs[0], r->relu = false;  // the add alone
  return true;
}

// Before any step is built: a residual output (residual_after_conv) that lower()'s arena placed
// over memory dying at the convolution (its input) or partly over z gets memory of its own,
// placed by liveness as the arena places values (first fit, biggest first, over the steps from
// the convolution to its last reader), so that where the arena happened to put it does not
// refuse the fusion; the same for the residual joins of INT8 plans (residual_join). Costs device
// memory: reported in arena_bytes().
void CudaExecutorImpl::relocate_residual_outputs() {
  const size_t ns = graph_.steps.size();
  std::vector<int> last(graph_.values.size(), -1);
  for (size_t s = 0; s < ns; ++s)
    for (const std::vector<ValueId>* vs : {&graph_.steps[s].inputs, &graph_.steps[s].outputs})
      for (ValueId v : *vs) last[size_t(graph_.root(v))] = std::max(last[size_t(graph_.root(v))], int(s));
  for (TensorId t : net_.outputs) last[size_t(graph_.root(t))] = INT_MAX;
  struct Block {
    ValueId v;
    int first, last;
    size_t bytes, off;
  };
  std::vector<Block> blocks;
  for (size_t k = 0; k < ns; ++k) {
    const ExecStep& st = graph_.steps[k];
    if (st.kind != StepKind::kLayer || net_.layers[size_t(st.layer)].kind != LayerKind::kConvolution ||
        st.outputs.empty() || !graph_.values[size_t(st.outputs[0])].float_as_half())
      continue;
    cur_step_ = &st;
    Residual want, fits;
    const Layer& L = net_.layers[size_t(st.layer)];
    if (!residual_after_conv(L, &want, false) || (residual_after_conv(L, &fits, true) && fits.out == want.out)) continue;
    const ValueId v = graph_.root(want.out);
    if (graph_.values[size_t(v)].offset < 0) continue;  // not in the arena
    blocks.push_back({v, int(k), last[size_t(v)], size_t(graph_.values[size_t(v)].bytes + 255) / 256 * 256, 0});
  }
  cur_step_ = nullptr;
  // The residual join's early outputs (residual_join): the activation's and the codes.
  // With conv_join_i8 they are written at the INT8 convolution before the join (step k - 1): then
  // also where the arena put them over that convolution's input.
  const char* conv_join = std::getenv("TANDEM_CUDA_INT8_CONV_JOIN");
  auto over_conv_input = [&](size_t k, const ResidualJoin& j) {
    if (k == 0 || (conv_join && std::string(conv_join) == "0")) return false;
    const ExecStep& c = graph_.steps[k - 1];
    if (c.kind != StepKind::kLayer || c.inputs.empty() || c.outputs.empty() || (c.outputs[0] != j.a && c.outputs[0] != j.z))
      return false;
    const char* x = static_cast<const char*>(ptr_[size_t(c.inputs[0])]);
    const size_t xn = size_t(graph_.values[size_t(c.inputs[0])].bytes);
    for (ValueId w : {j.out, j.codes}) {
      const char* p = w >= 0 ? static_cast<const char*>(ptr_[size_t(w)]) : nullptr;
      if (p && x && p < x + xn && x < p + size_t(graph_.values[size_t(w)].bytes)) return true;
    }
    return false;
  };
  for (size_t k = 0; k < ns; ++k) {
    ResidualJoin j;
    if (!residual_join(k, &j, false)) continue;
    const bool early = over_conv_input(k, j);
    if (!early && residual_join(k, &j, true)) continue;
    for (ValueId w : {j.out, j.codes}) {
      const ValueId v = w >= 0 ? graph_.root(w) : -1;
      if (v < 0 || v == graph_.root(graph_.steps[k].outputs[0]) || graph_.values[size_t(v)].offset < 0) continue;
      blocks.push_back({v, int(k) - (early ? 1 : 0), last[size_t(v)],
                        size_t(graph_.values[size_t(v)].bytes + 255) / 256 * 256, 0});
    }
  }
  std::stable_sort(blocks.begin(), blocks.end(), [](const Block& a, const Block& b) { return a.bytes > b.bytes; });
  size_t top = 0;
  for (size_t i = 0; i < blocks.size(); ++i) {
    std::vector<std::pair<size_t, size_t>> busy;
    for (size_t j = 0; j < i; ++j)
      if (!(blocks[j].last < blocks[i].first || blocks[i].last < blocks[j].first))
        busy.push_back({blocks[j].off, blocks[j].off + blocks[j].bytes});
    std::sort(busy.begin(), busy.end());
    size_t off = 0;
    for (const auto& [b, e] : busy) {
      if (off + blocks[i].bytes <= b) break;
      off = std::max(off, e);
    }
    blocks[i].off = off;
    top = std::max(top, off + blocks[i].bytes);
  }
  if (blocks.empty()) return;
  char* pool = static_cast<char*>(dalloc(top));
  arena_bytes_ += top;
  for (const Block& b : blocks) ptr_[size_t(b.v)] = pool + b.off;
  for (size_t v = 0; v < graph_.values.size(); ++v)
    if (graph_.values[v].alias_of >= 0) ptr_[v] = ptr_[size_t(graph_.values[v].alias_of)];
}

// Whether real FP16 convolutions apply an epilogue of tandem's kernel to their FP32 accumulator
// (prepare_conv_f32acc_h); TANDEM_CUDA_F32ACC=0: to the half output, as before 2026-12-01 (one
// rounding more, for comparison).
bool CudaExecutorImpl::f32acc_epilogues() const {
  const char* env = std::getenv("TANDEM_CUDA_F32ACC");
  return !(env && std::string(env) == "0");
}

// Mean device time of 5 launches of once() (which returns false when it cannot run), ms; -1: it cannot.
float CudaExecutorImpl::time_launch(const std::function<bool()>& once) {
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

float CudaExecutorImpl::time_with_workspace(size_t ws, const std::function<bool(void*)>& once) {
  void* wsp = nullptr;
  if (ws) CK(cudaMalloc(&wsp, ws));
  const float t = time_launch([&] { return once(wsp); });
  if (wsp) CK(cudaFree(wsp));
  return t;
}

// What the residual add (+ ReLU) costs as the separate half steps it replaces (ms, 5 runs on the
// real buffers): the other side of the residual tactic's timing.
float CudaExecutorImpl::time_residual_apart(const Residual& r, TensorId yt) {
  const Dims& yd = net_.tensors[size_t(yt)].dims;
  const Shape s = half_strides(yt, yd), sd = yd.size() == 4 ? to_nhwc_order(shape_of(yd, where_)) : shape_of(yd, where_);
  cuda::PwChain relu{};
  relu.n_ops = 1;
  relu.ops[0] = {cuda::PwKind::kActivation, ActivationType::kRelu, ElementWiseOp::kSum, 0.f, 0.f};
  void* y = ptr_[size_t(yt)];
  void* out = ptr_[size_t(r.out)];
  const void* z = at(r.z);
  const int64_t n = volume(yd);
  return time_launch([&] {
    cuda::binary_h(ElementWiseOp::kSum, false, y, s, z, s, out, sd, stream_);
    if (r.relu) cuda::pointwise_chain_h(relu, out, out, n, stream_);
    return true;
  });
}

// A 1x1, stride-1, unpadded convolution of an NHWC half value is the GEMM
// Y[rows, K] = X[rows, C] W[K, C]^T with rows = N * H * W (cuBLASLt, column-major:
// Y^T = op_T(W as C x K) X^T); the descriptors and cuBLASLt's first heuristic choice (null: none).
// d_f32: Y (and C) in FP32, the accumulator unrounded for tandem's epilogue kernel.
std::shared_ptr<MatmulDescs> CudaExecutorImpl::conv_gemm_descs(int64_t rows, int64_t C, int64_t K,
                                                              cublasLtEpilogue_t epilogue, const void* bias_h,
                                                              bool d_f32) {
  auto D = std::make_shared<MatmulDescs>();
  D->d_f32 = d_f32;
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
  CK(cublasLtMatrixLayoutCreate(&D->c, d_f32 ? CUDA_R_32F : CUDA_R_16F, uint64_t(K), uint64_t(rows), K));
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

// Mean of 5 runs of the GEMM on the layer's real buffers (contents irrelevant), ms; with z, the
// residual form (C = z, beta = 1).
float CudaExecutorImpl::time_conv_gemm(const MatmulDescs& D, const void* wdev, const void* x, void* y, const void* z) {
  const float one = 1.f, beta = z ? 1.f : 0.f;
  const void* c = z ? z : y;
  return time_launch([&] {
    return cublasLtMatmul(lt_, D.op, &one, wdev, D.a, x, D.b, &beta, c, D.c, y, D.c, &D.algo, lt_workspace_,
                          lt_workspace_bytes_, stream_) == CUBLAS_STATUS_SUCCESS;
  });
}

// The GEMM with an FP32 D into a temporary buffer and the epilogue kernel that rounds it to half
// into y: the whole step, timed as one (mean of 5 runs, ms; -1: it cannot run).
float CudaExecutorImpl::time_conv_gemm_f32acc(const MatmulDescs& D, const void* wdev, const void* x, void* y,
                                              const float* bdev, int64_t K, const cuda::PwChain& epi) {
  size_t n = 0;
  CK(cublasLtMatrixLayoutGetAttribute(D.c, CUBLASLT_MATRIX_LAYOUT_COLS, &n, sizeof(n), nullptr));
  n *= size_t(K);
  void* acc = nullptr;
  CK(cudaMalloc(&acc, n * sizeof(float)));
  const float one = 1.f, zero = 0.f;
  const float ms = time_launch([&] {
    if (cublasLtMatmul(lt_, D.op, &one, wdev, D.a, x, D.b, &zero, acc, D.c, acc, D.c, &D.algo, lt_workspace_,
                       lt_workspace_bytes_, stream_) != CUBLAS_STATUS_SUCCESS)
      return false;
    cuda::bias_chain_f2h(static_cast<const float*>(acc), y, bdev, K, 1, epi, int64_t(n), stream_);
    return true;
  });
  CK(cudaFree(acc));
  return ms;
}

// The GEMM form of a 1x1 convolution, then bias, activation and chain by the epilogue kernel; with
// res, the residual form: D = act(W X + z + bias) with the whole epilogue in cuBLASLt's.
void CudaExecutorImpl::build_conv_gemm_h(const Layer& L, int64_t rows, int64_t C, int64_t K, const void* wdev,
                                         const float* bdev, std::shared_ptr<MatmulDescs> D, float time_ms,
                                         bool epilogue_in_gemm, const Residual* res) {
  // The epilogue: the fused activation (op 0) and chain, as build_convolution_h.
  const LayerId aid = res ? -1 : fused_activation();
  int act = -1;
  float aa = 0, ab = 0;
  TensorId out = res ? res->out : L.outputs[0];
  if (aid >= 0) {
    const auto& A = net_.layers[aid].as<ActivationParams>();
    act = int(A.type), aa = A.alpha, ab = A.beta;
    out = net_.layers[aid].outputs[0];
  }
  cuda::PwChain epi = res ? cuda::PwChain{} : conv_epilogue(act, aa, ab, &out);
  if (epi.n_ops > 0) cur_kind_ += "+PointwiseChain" + std::to_string(epi.n_ops);
  if (res) cur_kind_ += std::string("+ResidualAdd") + (res->relu ? "+Relu" : "");
  if (epi.n_ops == 0 && act >= 0) epi.n_ops = 1, epi.ops[0] = {cuda::PwKind::kActivation, ActivationType(act), ElementWiseOp::kSum, aa, ab};
  void* y = ptr_[out];
  const DPtr x = in(L.inputs[0]);
  const int64_t n = rows * K;
  // An epilogue of tandem's kernel reads the FP32 accumulator (D in FP32, in the scratch buffer)
  // and rounds once: a half D would round before the bias and chain (build_convolution_h).
  const bool f32acc = !epilogue_in_gemm && !res && (bdev || epi.n_ops > 0) && f32acc_epilogues();
  if (f32acc && !D->d_f32) D = conv_gemm_descs(rows, C, K, CUBLASLT_EPILOGUE_DEFAULT, nullptr, true);
  if (!D) unsupported(L, "cuBLASLt found no FP16 algorithm with an FP32 output for the 1x1 convolution");
  mm_descs_.push_back(D);
  const DPtr acc = f32acc ? scr(reserve_scratch(size_t(n) * sizeof(float))) : DPtr{y, SIZE_MAX};
  const DPtr z = res ? res->z : acc;
  const float beta = res ? 1.f : 0.f;
  const std::string lname = L.name;
  void* wsp = lt_workspace_;
  const size_t wsz = lt_workspace_bytes_;
  add_step(L.name, [=, this](cudaStream_t s) {
    const float one = 1.f;
    ck(cublasLtMatmul(lt_, D->op, &one, wdev, D->a, at(x), D->b, &beta, at(z), D->c, at(acc), D->c, &D->algo, wsp,
                      wsz, s),
       "cublasLtMatmul", "layer '" + lname + "'");
    if (f32acc) cuda::bias_chain_f2h(atf<const float>(acc), y, bdev, K, 1, epi, n, s);
    else if (!epilogue_in_gemm && (bdev || epi.n_ops > 0)) cuda::bias_chain_h(y, bdev, K, 1, epi, n, s);
  });
  std::ostringstream key;
  key << "Convolution|rows=" << rows << "|C=" << C << "|k=1x1|K=" << K << "|fp16|nhwc" << (res ? "|residual" : "");
  std::string tactic = epilogue_in_gemm ? "cublaslt_gemm_fp16_nhwc+epilogue:heuristic0"
                       : f32acc         ? "cublaslt_gemm_fp16_nhwc_f32acc+epilogue_kernel:heuristic0"
                                        : "cublaslt_gemm_fp16_nhwc:heuristic0";
  if (res) tactic += res->relu ? "+residual_relu" : "+residual";
  tactics_.push_back({L.name, "Convolution", key.str(), tactic, 0, time_ms, 0});
}

// The half NHWC descriptors of a real FP16 convolution (tensor-op math), its output size checked.
std::shared_ptr<ConvDescs> CudaExecutorImpl::conv_descs_h(const Layer& L, const Dims& xd, const Dims& yd, int64_t K,
                                                          int64_t G, int kh, int kw, cudnnDataType_t type) {
  const auto& P = L.as<ConvolutionParams>();
  auto get = [](const Dims& d, size_t k, int64_t def) { return d.size() > k ? d[k] : def; };
  auto D = std::make_shared<ConvDescs>();
  conv_descs_.push_back(D);
  CK(cudnnCreateTensorDescriptor(&D->x));
  CK(cudnnCreateTensorDescriptor(&D->y));
  CK(cudnnCreateTensorDescriptor(&D->b));
  CK(cudnnCreateFilterDescriptor(&D->w));
  CK(cudnnCreateConvolutionDescriptor(&D->conv));
  CK(cudnnSetTensor4dDescriptor(D->x, CUDNN_TENSOR_NHWC, type, int(xd[0]), int(xd[1]), int(xd[2]), int(xd[3])));
  CK(cudnnSetTensor4dDescriptor(D->y, CUDNN_TENSOR_NHWC, type, int(yd[0]), int(yd[1]), int(yd[2]), int(yd[3])));
  CK(cudnnSetTensor4dDescriptor(D->b, CUDNN_TENSOR_NHWC, type, 1, int(K), 1, 1));
  CK(cudnnSetFilter4dDescriptor(D->w, type, CUDNN_TENSOR_NHWC, int(K), int(xd[1] / G), kh, kw));
  CK(cudnnSetConvolution2dDescriptor(D->conv, int(get(P.pre_padding, 0, 0)), int(get(P.pre_padding, 1, 0)),
                                     int(get(P.stride, 0, 1)), int(get(P.stride, 1, 1)), int(get(P.dilation, 0, 1)),
                                     int(get(P.dilation, 1, 1)), CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  CK(cudnnSetConvolutionGroupCount(D->conv, int(G)));
  CK(cudnnSetConvolutionMathType(D->conv, CUDNN_TENSOR_OP_MATH));
  int n_, c_, h_, w_;
  CK(cudnnGetConvolution2dForwardOutputDim(D->conv, D->x, D->w, &n_, &c_, &h_, &w_));
  if (n_ != yd[0] || c_ != yd[1] || h_ != yd[2] || w_ != yd[3])
    unsupported(L, "cuDNN output " + join_dims(Dims{n_, c_, h_, w_}) + " differs from the network's " + join_dims(yd));
  return D;
}

// Real FP16 convolution: cuDNN on half NHWC tensors, FP32 accumulation, tensor-op math; the
// weights rounded to half once and stored KRSC; bias, activation and point-wise chain in the
// epilogue (cuDNN's fused bias+ReLU/identity where it runs, else tandem's half epilogue kernel),
// or the residual add (+ ReLU) of the next steps (residual_after_conv) through cuDNN's z input.
// The weights once, in the forms the routes read: KCRS -> KRSC half (cuDNN's NHWC filter), the
// bias rounded to the half grid as the emulation rounds it, in FP32 and in half.
ConvWeightsH CudaExecutorImpl::upload_conv_weights_h(LayerId id, const Layer& L, int64_t K, int64_t cg, int kh, int kw) {
  const auto& P = L.as<ConvolutionParams>();
  ConvWeightsH W;
  std::vector<float> wv = weights_f32(P.kernel_weights, "kernel");
  if (int64_t(wv.size()) != K * cg * kh * kw)
    unsupported(L, "kernel holds " + std::to_string(wv.size()) + " values, expected " + std::to_string(K * cg * kh * kw));
  W.wh.resize(wv.size());
  for (int64_t k = 0; k < K; ++k)
    for (int64_t c = 0; c < cg; ++c)
      for (int64_t r = 0; r < int64_t(kh) * kw; ++r)
        W.wh[size_t((k * kh * kw + r) * cg + c)] = __float2half_rn(wv[size_t((k * cg + c) * kh * kw + r)]);
  W.w = upload_half(W.wh);
  W.bias.assign(size_t(K), 0.f);
  if (P.bias_weights >= 0) {
    W.bias = weights_f32(P.bias_weights, "bias");
    if (int64_t(W.bias.size()) != K) unsupported(L, "bias size differs from the output maps");
    round_weights(id, W.bias, 1, true, 1);
    W.b = upload_f32(W.bias);
  }
  W.b_half = upload_half(to_half(W.bias, Dims{K}, false));
  return W;
}

// The tactic record of a convolution on cuDNN's legacy half path (key ends |fp16|nhwc[|residual]).
void CudaExecutorImpl::record_conv_tactic_h(const Layer& L, const Dims& xd, const Dims& yd, int64_t G,
                                            cudnnConvolutionFwdAlgo_t algo, const std::string& epilogue,
                                            const char* residual, float ms, size_t ws) {
  std::string key = conv_tactic_key(L.as<ConvolutionParams>(), xd, yd, G, false);
  key = key.substr(0, key.rfind("|fp32")) + "|fp16|nhwc" + (*residual ? "|residual" : "");
  tactics_.push_back({L.name, "Convolution", key,
                      std::string("cudnn_fwd_fp16_nhwc:") + fwd_algo_name(int(algo)) + epilogue + residual,
                      int64_t(algo), ms, ws});
}

// A real FP16 convolution's epilogue: the fused activation (op 0 when present) and the absorbed
// chain (none with the residual form, whose ReLU cuDNN's call applies).
CudaExecutorImpl::ConvEpilogueH CudaExecutorImpl::conv_epilogue_h(bool residual, const Residual& res, TensorId yt) {
  ConvEpilogueH e;
  const LayerId aid = residual ? -1 : fused_activation();
  e.act = residual && res.relu ? int(ActivationType::kRelu) : -1;
  float aa = 0, ab = 0;
  e.out = residual ? res.out : yt;
  if (aid >= 0) {
    const auto& A = net_.layers[aid].as<ActivationParams>();
    e.act = int(A.type), aa = A.alpha, ab = A.beta;
    e.out = net_.layers[aid].outputs[0];
  }
  e.epi = residual ? cuda::PwChain{} : conv_epilogue(e.act, aa, ab, &e.out);
  e.has_chain = e.epi.n_ops > 0;
  if (!e.has_chain && e.act >= 0)
    e.epi.n_ops = 1, e.epi.ops[0] = {cuda::PwKind::kActivation, ActivationType(e.act), ElementWiseOp::kSum, aa, ab};
  return e;
}

void CudaExecutorImpl::build_convolution_h(LayerId id, const Layer& L) {
  const auto& P = L.as<ConvolutionParams>();
  const TensorId xt = L.inputs[0], yt = L.outputs[0];
  const Dims xd = net_.tensors[xt].dims, yd = net_.tensors[yt].dims;
  auto get = [](const Dims& d, size_t k, int64_t def) { return d.size() > k ? d[k] : def; };
  const int kh = int(P.kernel[0]), kw = int(P.kernel[1]);
  const int64_t C = xd[1], K = P.out_maps > 0 ? P.out_maps : yd[1], G = std::max<int64_t>(1, P.groups), cg = C / G;
  const ConvWeightsH W = upload_conv_weights_h(id, L, K, cg, kh, kw);
  const void *wdev = W.w, *bdev_h = W.b_half;
  const float* bdev = W.b;
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
  std::shared_ptr<ConvDescs> D = conv_descs_h(L, xd, yd, K, G, kh, kw);
  const cudnnConvolutionFwdAlgoPerf_t best = pick_fwd_algo(L, *D, true);
  const cudnnConvolutionFwdAlgo_t algo = best.algo;
  CK(cudnnSetConvolutionMathType(D->conv, best.mathType));
  const size_t ws = best.memory, ws_off = reserve_scratch(ws);
  CK(cudnnCreateActivationDescriptor(&D->act));
  const DPtr x = in(xt);
  // The fused call y = act(conv(x) + alpha2 * z + bias); z = y with alpha2 = 0 when no residual.
  auto fused_call = [=, this](void* y, const DPtr& z, float alpha2, void* wsp, cudaStream_t s) {
    const float one = 1.f;
    return cudnnConvolutionBiasActivationForward(cudnn_, &one, D->x, at(x), D->w, wdev, D->conv, algo, wsp, ws, &alpha2,
                                                 D->y, at(z), D->b, bdev_h, D->act, D->y, y);
  };
  float conv_ms = copt_.time_tactics ? best.time : -1.f;
  Residual res;
  const bool res_found = residual_after_conv(L, &res, true);
  // cuDNN takes z with ReLU, or with identity in its implicit-precomp GEMM algorithm only.
  bool residual = res_found && (res.relu || algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM);
  // Timed, the residual form against the convolution plus the separate add (+ ReLU) steps; the
  // GEMM then competes with the cheaper of the two (vs_gemm_ms).
  const float apart_ms = res_found && copt_.time_tactics ? time_residual_apart(res, yt) : 0.f;
  if (residual) {
    CK(cudnnSetActivationDescriptor(D->act, res.relu ? CUDNN_ACTIVATION_RELU : CUDNN_ACTIVATION_IDENTITY,
                                    CUDNN_NOT_PROPAGATE_NAN, 0.0));
    const float t = time_with_workspace(
        ws, [&](void* wsp) { return fused_call(ptr_[res.out], res.z, 1.f, wsp, stream_) == CUDNN_STATUS_SUCCESS; });
    residual = t >= 0.f && (!copt_.time_tactics || t < best.time + apart_ms);  // not for this algorithm, or slower
    if (copt_.time_tactics && residual) conv_ms = t;
  }
  float vs_gemm_ms = res_found && !residual && copt_.time_tactics ? best.time + apart_ms : conv_ms;
  const ConvEpilogueH E = conv_epilogue_h(residual, res, yt);
  const cuda::PwChain epi = E.epi;
  const TensorId out = E.out;
  const bool has_chain = E.has_chain;
  // cuDNN's fused call computes bias + ReLU/identity only: never with a chain (which may start
  // with an activation that is not the fused one, act < 0).
  const bool relu = E.act == int(ActivationType::kRelu) && !has_chain;
  const bool identity_ok = E.act < 0 && !has_chain && algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM;
  auto fused_ok = std::make_shared<bool>(relu || identity_ok);
  CK(cudnnSetActivationDescriptor(D->act, relu ? CUDNN_ACTIVATION_RELU : CUDNN_ACTIVATION_IDENTITY, CUDNN_NOT_PROPAGATE_NAN, 0.0));
  // An epilogue the fused call cannot take reads the FP32 accumulator: in one kernel of cuDNN's
  // graph API where an engine takes it and it times faster (prepare_conv_graph_h), else in two
  // passes (prepare_conv_f32acc_h).
  // A depthwise one the fused call takes (bias + ReLU) competes with them too, timed: the legacy
  // call is slow for depthwise shapes (mobilenet_v3_large b32, H200: 0.15-0.43 ms per layer).
  const bool depthwise = G > 1 && G == C && K == C;
  auto legacy = [&](void* wsp) { return fused_call(ptr_[out], DPtr{ptr_[out], SIZE_MAX}, 0.f, wsp, stream_) == CUDNN_STATUS_SUCCESS; };
  const bool time_legacy = depthwise && !residual && *fused_ok && x.off == SIZE_MAX && f32acc_epilogues();
  const float legacy_ms = time_legacy && copt_.time_tactics && graph_fusion_mode() != 0 ? time_with_workspace(ws, legacy) : -1.f;
  const bool f32acc = (!residual && (bdev || epi.n_ops > 0) && !*fused_ok && f32acc_epilogues()) || legacy_ms >= 0.f;
  ConvF32Acc f32;
  ConvGraphRoute graph;
  auto drop_f32_weights = [&] {  // the two-pass route lost: its float copy of the weights goes
    if (f32.w) release_upload(f32.w, W.wh.size() * sizeof(float));
    f32.w = nullptr;
  };
  auto drop_alternatives = [&] {  // another route won: the two-pass and graph routes' uploads go
    drop_f32_weights();
    if (graph.conv) release_upload(graph.consts, graph.conv->constants().size() * sizeof(float));
    graph = ConvGraphRoute{};
  };
  if (f32acc) {
    void* xp = x.off == SIZE_MAX ? at(x) : nullptr;
    f32 = prepare_conv_f32acc_h(L, W.wh, xd, yd, K, G, kh, kw, xp, bdev, epi, ptr_[out]);
    graph = prepare_conv_graph_h(L, xd, yd, K, G, kh, kw, xp, wdev, bdev ? W.bias : std::vector<float>{}, epi, ptr_[out],
                                 f32.ms);
    if (graph.conv) drop_f32_weights();
    vs_gemm_ms = (graph.conv ? graph.ms : f32.ms) + (res_found ? apart_ms : 0.f);
  }
  const bool try_gemm = copt_.fp16_pointwise_gemm == 1 || (copt_.fp16_pointwise_gemm < 0 && copt_.time_tactics);
  if (pointwise && try_gemm && x.off == SIZE_MAX) {
    // Bias (+ReLU) in cuBLASLt's epilogue when that is the whole of the step's: the GEMM's time
    // then includes it, as cuDNN's fused bias+ReLU does (a separate pass would go untimed).
    const bool has_bias = bdev != nullptr;
    // The residual form (C = z, beta = 1) only with the whole epilogue in cuBLASLt's.
    const cublasLtEpilogue_t lt_epi = !res_found ? gemm_epilogue(has_bias)
                                      : res.relu ? (has_bias ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_RELU)
                                                 : (has_bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT);
    std::shared_ptr<MatmulDescs> G2 = lt_epi != CUBLASLT_EPILOGUE_DEFAULT ? conv_gemm_descs(rows, C, K, lt_epi, bdev_h) : nullptr;
    const bool in_gemm = G2 != nullptr || (res_found && !has_bias && !res.relu);
    // Bias or chain by tandem's kernel: from an FP32 D, timed with it (the whole step).
    const bool gemm_f32acc = !in_gemm && !res_found && (has_bias || epi.n_ops > 0) && f32acc_epilogues();
    if (!G2 && (!res_found || in_gemm)) G2 = conv_gemm_descs(rows, C, K, CUBLASLT_EPILOGUE_DEFAULT, nullptr, gemm_f32acc);
    // On the real buffers: the step's input and its final output (the epilogue is point-wise).
    void* gy = res_found ? ptr_[res.out] : ptr_[size_t(cur_step_->outputs[0])];
    const float gemm_ms = !G2           ? -1.f
                          : gemm_f32acc ? time_conv_gemm_f32acc(*G2, wdev, at(x), gy, bdev, K, epi)
                                        : time_conv_gemm(*G2, wdev, at(x), gy, res_found ? at(res.z) : nullptr);
    // Against cuDNN with the residual (timed with it), or without (the add then runs apart, untimed).
    if (gemm_ms >= 0 && (gemm_ms < vs_gemm_ms || copt_.fp16_pointwise_gemm == 1)) {
      if (res_found) mark_residual_fused(res);
      drop_alternatives();
      return build_conv_gemm_h(L, rows, C, K, wdev, bdev, G2, gemm_ms, in_gemm, res_found ? &res : nullptr);
    }
  }
  if (has_chain) cur_kind_ += "+PointwiseChain" + std::to_string(epi.n_ops);
  // The depthwise alternatives against the legacy fused call: the fastest of the three routes.
  const float alt_ms = graph.conv ? graph.ms : f32.ms;
  const bool keep_legacy = legacy_ms >= 0.f && !(alt_ms >= 0.f && alt_ms < legacy_ms);
  if (f32acc && depthwise && own_depthwise_h(L, wdev, xd, yd, kh, kw, bdev, epi, out, keep_legacy ? legacy_ms : alt_ms))
    return drop_alternatives();
  if (keep_legacy) drop_alternatives();
  if (graph.conv) return add_conv_graph_h(L, graph, xd, yd, G, wdev, epi, out);
  if (f32acc && !keep_legacy) return add_conv_f32acc_h(L, f32, xd, yd, K, G, bdev, epi, out);
  if (residual) cur_kind_ += std::string("+ResidualAdd") + (res.relu ? "+Relu" : ""), mark_residual_fused(res);
  void* y = ptr_[out];
  const int64_t n = volume(yd);
  const std::string lname = L.name;  // (captured: L is not)
  const DPtr z = residual ? res.z : DPtr{y, SIZE_MAX};
  const float alpha2 = residual ? 1.f : 0.f;
  add_step(L.name, [=, this](cudaStream_t s) {
    if (*fused_ok) {
      cudnnStatus_t st = fused_call(y, z, alpha2, ws ? scratch_at(ws_off) : nullptr, s);
      if (st == CUDNN_STATUS_SUCCESS) return;
      if (residual) ck(st, "cudnnConvolutionBiasActivationForward", "layer '" + lname + "' (residual add)");
      *fused_ok = false;  // not for this algorithm: the unfused path from now on
    }
    const float one = 1.f, zero = 0.f;
    void* wsp = ws ? scratch_at(ws_off) : nullptr;
    ck(cudnnConvolutionForward(cudnn_, &one, D->x, at(x), D->w, wdev, D->conv, algo, wsp, ws, &zero, D->y, y),
       "cudnnConvolutionForward", "layer '" + lname + "'");
    if (bdev || epi.n_ops > 0) cuda::bias_chain_h(y, bdev, K, 1, epi, n, s);
  });
  const std::string epi_tag = has_chain ? "+epilogue_chain" + std::to_string(epi.n_ops) : *fused_ok ? "+cudnn_bias_act" : "+bias_act_kernel";
  record_conv_tactic_h(L, xd, yd, G, algo, epi_tag, residual ? (res.relu ? "+residual_relu" : "+residual") : "", conv_ms, ws);
}

// A real FP16 convolution whose epilogue cuDNN's fused call cannot take (a point-wise chain, an
// activation other than ReLU, a bias without the implicit-precomp algorithm) keeps its FP32
// accumulator for tandem's epilogue kernel, which rounds to half once, as the emulation's fused
// block and TensorRT's fused kernels do: writing the convolution in half first rounds twice, and
// downstream INT8 layers turn that into flipped codes (det's build-dla engine). cuDNN's legacy API
// has no half-in, FP32-out configuration, so the half input is widened to float and the
// convolution runs in FP32 with tensor-op math on the half-rounded weights: TF32 keeps a half's
// 10-bit significand, so the products are exact and summed in FP32, as the half path's are.
// Chooses the algorithm (cudnnFind or the heuristic) and times the whole step (widen, convolve,
// epilogue) on the real input and output; x null: the input lives in the scratch buffer, which
// exists only once every step is built (cuDNN's time alone then).
ConvF32Acc CudaExecutorImpl::prepare_conv_f32acc_h(const Layer& L, const std::vector<__half>& wh, const Dims& xd,
                                                  const Dims& yd, int64_t K, int64_t G, int kh, int kw, void* x,
                                                  const float* bdev, const cuda::PwChain& epi, void* y) {
  ConvF32Acc r;
  r.D = conv_descs_h(L, xd, yd, K, G, kh, kw, CUDNN_DATA_FLOAT);
  const cudnnConvolutionFwdAlgoPerf_t best = pick_fwd_algo(L, *r.D, true);
  r.algo = best.algo;
  CK(cudnnSetConvolutionMathType(r.D->conv, best.mathType));
  r.ws = best.memory;
  std::vector<float> w32(wh.size());
  for (size_t i = 0; i < wh.size(); ++i) w32[i] = __half2float(wh[i]);
  r.w = upload_f32(w32);
  if (!copt_.time_tactics) return r;
  r.ms = best.time;
  if (!x) return r;
  const int64_t nx = volume(xd), ny = volume(yd);
  void *x32 = nullptr, *y32 = nullptr, *wsp = nullptr;
  CK(cudaMalloc(&x32, size_t(nx) * sizeof(float)));
  CK(cudaMalloc(&y32, size_t(ny) * sizeof(float)));
  if (r.ws) CK(cudaMalloc(&wsp, r.ws));
  const float one = 1.f, zero = 0.f;
  const float t = time_launch([&] {
    cuda::convert(x, true, true, x32, false, true, nx, 1, 1, stream_);
    if (cudnnConvolutionForward(cudnn_, &one, r.D->x, x32, r.D->w, r.w, r.D->conv, r.algo, wsp, r.ws, &zero, r.D->y,
                                y32) != CUDNN_STATUS_SUCCESS)
      return false;
    cuda::bias_chain_f2h(static_cast<const float*>(y32), y, bdev, K, 1, epi, ny, stream_);
    return true;
  });
  for (void* p : {x32, y32, wsp})
    if (p) CK(cudaFree(p));
  if (t >= 0.f) r.ms = t;
  return r;
}

// The step of prepare_conv_f32acc_h's route: widen the input (scratch), convolve into an FP32
// accumulator (scratch), bias + activation + chain rounding once into the half output.
void CudaExecutorImpl::add_conv_f32acc_h(const Layer& L, const ConvF32Acc& r, const Dims& xd, const Dims& yd,
                                         int64_t K, int64_t G, const float* bdev, const cuda::PwChain& epi,
                                         TensorId out) {
  const int64_t nx = volume(xd), ny = volume(yd);
  const size_t x_off = reserve_scratch(size_t(nx) * sizeof(float)), acc_off = reserve_scratch(size_t(ny) * sizeof(float));
  const size_t ws_off = reserve_scratch(r.ws);
  const DPtr x = in(L.inputs[0]);
  void* y = ptr_[out];
  const std::string lname = L.name;
  const ConvF32Acc c = r;
  add_step(L.name, [=, this](cudaStream_t s) {
    const float one = 1.f, zero = 0.f;
    void* x32 = scratch_at(x_off);
    float* acc = static_cast<float*>(scratch_at(acc_off));
    cuda::convert(at(x), true, true, x32, false, true, nx, 1, 1, s);
    ck(cudnnConvolutionForward(cudnn_, &one, c.D->x, x32, c.D->w, c.w, c.D->conv, c.algo,
                               c.ws ? scratch_at(ws_off) : nullptr, c.ws, &zero, c.D->y, acc),
       "cudnnConvolutionForward", "layer '" + lname + "' (FP32 accumulator of a real FP16 convolution)");
    cuda::bias_chain_f2h(acc, y, bdev, K, 1, epi, ny, s);
  });
  const auto& P = L.as<ConvolutionParams>();
  std::string key = conv_tactic_key(P, xd, yd, G, false);
  key = key.substr(0, key.rfind("|fp32")) + "|fp16|nhwc|f32acc";
  const std::string tactic = std::string("cudnn_fwd_fp16_nhwc_f32acc:") + fwd_algo_name(int(c.algo)) +
                             "+epilogue_chain" + std::to_string(epi.n_ops);
  tactics_.push_back({L.name, "Convolution", key, tactic, int64_t(c.algo), c.ms, c.ws});
}

// Runs each of conv's finalized plans on the layer's buffers (a zeroed temporary input of x_bytes
// where x is null: the contents do not change the time; the largest plan's workspace), timed
// unless CudaOptions::time_tactics is off (then the first plan that runs). Returns the chosen
// plan (-1: none ran) and its time in *ms.
int CudaExecutorImpl::time_graph_plans(CudnnFusedConv& conv, const void* x, size_t x_bytes, const void* w, void* y,
                                       const float* consts, float* ms) {
  void *xt = nullptr, *wsp = nullptr;
  size_t ws = 0;
  for (int i = 0; i < conv.plans(); ++i) ws = std::max(ws, conv.plan_info(i).workspace);
  if (!x) {
    CK(cudaMalloc(&xt, x_bytes));
    CK(cudaMemset(xt, 0, x_bytes));
  }
  if (ws) CK(cudaMalloc(&wsp, ws));
  const void* xr = x ? x : xt;
  int best = -1;
  *ms = -1.f;
  for (int i = 0; i < conv.plans() && (copt_.time_tactics || best < 0); ++i) {
    auto once = [&] { return conv.run(i, xr, w, y, consts, wsp) == CUDNN_STATUS_SUCCESS; };
    const float t = copt_.time_tactics ? time_launch(once) : (once() ? 0.f : -1.f);
    if (t >= 0.f && (best < 0 || t < *ms)) best = i, *ms = t;
  }
  CK(cudaStreamSynchronize(stream_));
  for (void* p : {xt, wsp})
    if (p) CK(cudaFree(p));
  return best;
}

// The one-kernel form of prepare_conv_f32acc_h's route: cuDNN's graph API fuses the convolution
// (half in, FP32 accumulator in a virtual tensor), bias and epilogue and rounds to half once
// (CudnnFusedConv). Up to kGraphPlans engine configurations of cuDNN's heuristics are finalized
// (runtime fusion engines compile with NVRTC here) and timed on the layer's buffers (a temporary
// input where it lives in the scratch buffer, which does not exist yet); the fastest is kept
// when it beats the two-pass route's time (two_pass_ms). TANDEM_CUDA_GRAPH_FUSION=1: whenever
// one finalizes and runs; 0: never. TANDEM_CUDA_GRAPH_FUSION_LOG=1 prints why a convolution
// keeps the two-pass route (stderr).
ConvGraphRoute CudaExecutorImpl::prepare_conv_graph_h(const Layer& L, const Dims& xd, const Dims& yd, int64_t K,
                                                      int64_t G, int kh, int kw, void* x, const void* wdev,
                                                      const std::vector<float>& bias, const cuda::PwChain& epi,
                                                      void* y, float two_pass_ms) {
  constexpr int kGraphPlans = 3;
  ConvGraphRoute r;
  const int mode = graph_fusion_mode();
  if (mode == 0) return r;
  const char* log_env = std::getenv("TANDEM_CUDA_GRAPH_FUSION_LOG");
  auto keep_two_pass = [&](const std::string& why) {
    if (log_env && std::string(log_env) == "1")
      std::fprintf(stderr, "tandem cuda: layer '%s': cuDNN graph fusion not taken: %s\n", L.name.c_str(), why.c_str());
    return ConvGraphRoute{};
  };
  const auto& P = L.as<ConvolutionParams>();
  auto get = [](const Dims& d, size_t k, int64_t def) { return d.size() > k ? d[k] : def; };
  FusedConvSpec s;
  s.n = xd[0], s.c = xd[1], s.h = xd[2], s.w = xd[3], s.k = K, s.oh = yd[2], s.ow = yd[3], s.groups = G;
  s.kernel[0] = kh, s.kernel[1] = kw;
  for (size_t d = 0; d < 2; ++d) {
    s.stride[d] = get(P.stride, d, 1);
    s.pad[d] = get(P.pre_padding, d, 0);
    s.dilation[d] = get(P.dilation, d, 1);
  }
  s.bias = bias;
  s.chain = epi;
  auto conv = std::make_shared<CudnnFusedConv>();
  std::string why;
  if (!conv->prepare(s, &why)) return keep_two_pass(why);
  // Plans are finalized once per graph structure (NVRTC compiles the runtime fusion ones: ~0.2 s
  // each); convolutions of the same structure share them and time them on their own buffers.
  auto [known, fresh] = graph_plans_.try_emplace(conv->signature());
  if (fresh) {
    if (conv->make_plans(cudnn_, kGraphPlans, copt_.max_workspace, &why, plan_cache_) > 0) known->second.first = conv;
    known->second.second = why;
  }
  if (!known->second.first) return keep_two_pass(known->second.second);
  if (!fresh) conv->share_plans(*known->second.first);
  const float* consts = conv->constants().empty() ? nullptr : upload_f32(conv->constants());
  float best_ms = -1.f;
  const int best = time_graph_plans(*conv, x, size_t(volume(xd)) * sizeof(__half), wdev, y, consts, &best_ms);
  std::ostringstream slower;
  if (best >= 0 && mode != 1 && copt_.time_tactics && two_pass_ms >= 0.f && best_ms >= two_pass_ms)
    slower << "engine " << conv->plan_info(best).engine << " " << best_ms << " ms, two passes " << two_pass_ms << " ms";
  if (best < 0 || !slower.str().empty()) {
    if (consts) release_upload(consts, conv->constants().size() * sizeof(float));
    return keep_two_pass(best < 0 ? "no plan ran" : slower.str());
  }
  fused_convs_.push_back(conv);
  r.conv = conv;
  r.plan = best;
  r.consts = consts;
  r.ms = copt_.time_tactics ? best_ms : -1.f;
  r.two_pass_ms = two_pass_ms;
  return r;
}

// The step of prepare_conv_graph_h's route: one cuDNN graph execution.
void CudaExecutorImpl::add_conv_graph_h(const Layer& L, const ConvGraphRoute& r, const Dims& xd, const Dims& yd,
                                        int64_t G, const void* wdev, const cuda::PwChain& epi, TensorId out) {
  const FusedConvPlanInfo info = r.conv->plan_info(r.plan);
  const int plan = r.plan;
  const size_t ws = info.workspace, ws_off = reserve_scratch(ws);
  const DPtr x = in(L.inputs[0]);
  void* y = ptr_[out];
  CudnnFusedConv* conv = r.conv.get();
  const float* consts = r.consts;
  const std::string lname = L.name;
  add_step(L.name, [=, this](cudaStream_t) {
    ck(conv->run(plan, at(x), wdev, y, consts, ws ? scratch_at(ws_off) : nullptr), "cudnnBackendExecute",
       "layer '" + lname + "' (fused cuDNN graph of a real FP16 convolution)");
  });
  std::string key = conv_tactic_key(L.as<ConvolutionParams>(), xd, yd, G, false);
  key = key.substr(0, key.rfind("|fp32")) + "|fp16|nhwc|graph";
  std::string tactic = "cudnn_graph_fp16_nhwc:engine" + std::to_string(info.engine) +
                       (info.runtime_compiled ? "+runtime_fusion" : "") + "+epilogue_chain" + std::to_string(epi.n_ops) +
                       ":heuristic" + std::to_string(plan);
  if (r.ms >= 0.f && r.two_pass_ms >= 0.f) tactic += " (two-pass f32acc " + std::to_string(r.two_pass_ms) + " ms)";
  tactics_.push_back({L.name, "Convolution", key, tactic, info.engine, r.ms, ws});
}

// A real FP16 depthwise convolution with an epilogue cuDNN's fused call cannot take: tandem's direct
// half kernel (bias and chain on the FP32 sum, one rounding; no widened copy of the input) when it
// times faster than the FP32-accumulator route's whole step (cudnn_ms), or when tactics are not
// timed (CudaOptions::own_depthwise: 1 always, 0 never); true: taken.
bool CudaExecutorImpl::own_depthwise_h(const Layer& L, const void* wdev, const Dims& xd, const Dims& yd, int kh,
                                       int kw, const float* bdev, const cuda::PwChain& epi, TensorId out,
                                       float cudnn_ms) {
  if (copt_.own_depthwise == 0) return false;
  const auto& P = L.as<ConvolutionParams>();
  auto get = [](const Dims& d, size_t k, int64_t def) { return int(d.size() > k ? d[k] : def); };
  const cuda::DwConv q{int(xd[0]),         int(xd[1]),         int(xd[2]),           int(xd[3]),
                       int(yd[2]),         int(yd[3]),         kh,                   kw,
                       get(P.stride, 0, 1), get(P.stride, 1, 1), get(P.pre_padding, 0, 0), get(P.pre_padding, 1, 0),
                       get(P.dilation, 0, 1), get(P.dilation, 1, 1)};
  const DPtr x = in(L.inputs[0]);
  void* y = ptr_[out];
  float own_ms = -1.f;
  if (copt_.time_tactics && copt_.own_depthwise != 1) {
    if (x.off != SIZE_MAX) return false;  // the scratch buffer does not exist yet: cannot time
    own_ms = time_launch([&] {
      cuda::depthwise_h(q, at(x), wdev, bdev, epi, y, stream_);
      return true;
    });
    if (cudnn_ms >= 0.f && own_ms >= cudnn_ms) return false;
  }
  add_step(L.name, [=, this](cudaStream_t s) { cuda::depthwise_h(q, at(x), wdev, bdev, epi, y, s); });
  std::string key = conv_tactic_key(P, xd, yd, xd[1], false);
  key = key.substr(0, key.rfind("|fp32")) + "|fp16|nhwc|f32acc";
  std::string tactic = "tandem_depthwise_direct_fp16_nhwc+epilogue_chain" + std::to_string(epi.n_ops);
  if (own_ms >= 0.f) tactic += " (cudnn f32acc " + std::to_string(cudnn_ms) + " ms)";
  tactics_.push_back({L.name, "Convolution", key, tactic, 1000, own_ms, 0});
  return true;
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

}  // namespace cuda_exec
}  // namespace tandem
