// The CUDA executor's real INT8 layers: int8 codes, cuBLASLt INT8 GEMMs, requantizing epilogues.
#include <cstdio>

#include "backend/cuda/executor_impl.h"
#include "backend/cuda/kernels_igemm.h"

namespace tandem {
namespace cuda_exec {

namespace {

// KCRS int8 codes -> [rows][row_stride] with columns in KRSC order ((r, s, c), channels fastest: the
// im2col's, and cuDNN's NHWC filter when row_stride = kh * kw * c), zeros in the padding.
std::vector<int8_t> krsc_codes(const std::vector<int8_t>& kcrs, int64_t K, int64_t C, int kh, int kw, int64_t rows,
                               int64_t row_stride) {
  std::vector<int8_t> out(size_t(rows * row_stride), 0);
  for (int64_t k = 0; k < K; ++k)
    for (int64_t c = 0; c < C; ++c)
      for (int r = 0; r < kh; ++r)
        for (int s = 0; s < kw; ++s)
          out[size_t(k * row_stride + (r * kw + s) * C + c)] = kcrs[size_t(((k * C + c) * kh + r) * kw + s)];
  return out;
}

// KCRS float weights of c input channels -> cp channels, zeros after the c real ones (for padded
// codes, pad_narrow_codes: the zero channels add nothing to the sums, nor to max|w|). Weights of
// another size are returned as they are (the caller's size check names them).
std::vector<float> pad_input_channels(std::vector<float> w, int64_t k, int64_t c, int64_t cp, int64_t rs) {
  if (cp == c || int64_t(w.size()) != k * c * rs) return w;
  std::vector<float> out(size_t(k * cp * rs), 0.f);
  for (int64_t o = 0; o < k; ++o)
    std::copy_n(w.begin() + (o * c) * rs, c * rs, out.begin() + (o * cp) * rs);
  return out;
}

// Whether FP32 sums of an INT8 convolution's products are its exact integer sums whatever the
// order (conv_half_sums_i8): every partial sum of output channel k is at most 128 * sum_j
// |q_w[k][j]| in magnitude (|q_x| <= 128), which must stay below 2^24 (FP32 integers are exact
// up to there).
bool int8_half_sums_exact(const std::vector<int8_t>& wq, int64_t k_out, int64_t inner) {
  for (int64_t k = 0; k < k_out; ++k) {
    int64_t s = 0;
    for (int64_t j = 0; j < inner; ++j) s += std::abs(int(wq[size_t(k * inner + j)]));
    if (128 * s >= (int64_t(1) << 24)) return false;
  }
  return true;
}

// TANDEM_CUDA_INT8_IGEMM: unset (-1) timed, 0 off, 1 always where it applies.
int int8_igemm_mode() {
  const char* env = std::getenv("TANDEM_CUDA_INT8_IGEMM");
  return !env ? -1 : std::string(env) == "0" ? 0 : std::string(env) == "1" ? 1 : -1;
}

// The cuDNN graph's spec (cudnn_fused_conv.h) of an INT8 convolution of geometry q writing codes
// (codes) or half on its grid, with its dequantizing alpha, bias and epilogue chain.
FusedConvSpec int8_graph_spec(const cuda::ConvI8& q, bool codes, const std::vector<float>& alpha,
                              const std::vector<float>& bias, const cuda::PwChain& chain, float y_scale) {
  FusedConvSpec g;
  g.data = codes ? FusedConvData::kInt8Codes : FusedConvData::kInt8ToHalf;
  g.n = q.n, g.c = q.c, g.h = q.h, g.w = q.w, g.k = q.k, g.oh = q.oh, g.ow = q.ow;
  g.kernel[0] = q.kh, g.kernel[1] = q.kw, g.stride[0] = q.sh, g.stride[1] = q.sw, g.pad[0] = q.ph, g.pad[1] = q.pw;
  g.dilation[0] = q.dh, g.dilation[1] = q.dw;
  g.alpha = alpha, g.bias = bias, g.chain = chain, g.y_scale = y_scale;
  return g;
}

// TANDEM_CUDA_LOG_TACTICS=1: why a tandem INT8 kernel won or lost its timing, one line each (stderr).
void log_tactic(const std::string& layer, const char* what, float ms, float other_ms, const char* other) {
  static const bool on = [] {
    const char* e = std::getenv("TANDEM_CUDA_LOG_TACTICS");
    return e && e[0] == '1';
  }();
  if (on)
    std::fprintf(stderr, "[tandem tactics] %s: %s %.4f ms vs %s %.4f ms: %s\n", layer.c_str(), what, double(ms), other,
                 double(other_ms), ms >= 0.f && (other_ms < 0.f || ms < other_ms) ? "taken" : "not taken");
}

}  // namespace

// cuDNN's INT8 graph kernel and im2col's 4-byte path need C % 4 == 0, which a stem's RGB input
// (C = 3) is not. The codes of a float value made by one round step and read only by ungrouped
// INT8 convolutions are therefore stored with their channels padded to a multiple of 4 (zeros;
// the convolutions take zero weights for them, build_convolution_i8: the same sums), in memory
// of their own (the arena planned C channels). TANDEM_CUDA_INT8_PAD_CODES=0: as planned; =N (a
// multiple of 4): padded to a multiple of N (cuDNN's INT8 kernels for C = 4 are slow: see
// docs/benchmarks.md).
void CudaExecutorImpl::pad_narrow_codes() {
  const char* env = std::getenv("TANDEM_CUDA_INT8_PAD_CODES");
  const int64_t multiple = env ? std::atoll(env) : 4;
  if (!copt_.real_int8 || multiple <= 0 || multiple % 4) return;
  for (size_t k = 0; k < graph_.steps.size(); ++k) {
    const ExecStep& r = graph_.steps[k];
    if (r.kind != StepKind::kRound || r.inputs.size() != 1 || r.outputs.size() != 1) continue;
    const ValueId v = r.outputs[0];
    const ExecValue &codes = graph_.values[size_t(v)], &from = graph_.values[size_t(r.inputs[0])];
    if (!codes.int8_codes() || codes.layout != ValueLayout::kNHWC || codes.dims[1] % 4 == 0 ||
        from.storage != DataType::kFloat || from.layout != ValueLayout::kLinear || !ptr_[size_t(v)])
      continue;
    int readers = 0;
    bool convs = true;
    for (size_t s = k + 1; s < graph_.steps.size(); ++s) {
      const ExecStep& st = graph_.steps[s];
      if (std::find(st.inputs.begin(), st.inputs.end(), v) == st.inputs.end()) continue;
      const Layer& L = net_.layers[size_t(st.layer)];
      ++readers;
      convs = convs && st.kind == StepKind::kLayer && st.inputs.size() == 1 && L.kind == LayerKind::kConvolution &&
              precision_of(st.layer) == Precision::kINT8 && L.as<ConvolutionParams>().groups <= 1;
    }
    if (readers == 0 || !convs) continue;
    const int64_t cp = (codes.dims[1] + multiple - 1) / multiple * multiple;
    const size_t bytes = size_t(codes.dims[0] * cp * codes.dims[2] * codes.dims[3]);
    ptr_[size_t(v)] = dalloc(bytes);
    arena_bytes_ += int64_t(bytes);
    padded_codes_[v] = cp;
  }
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
// float NCHW value the next step reads (or its codes, or half on its grid). Where the output is
// codes or half, the same in ONE cuDNN graph kernel when it times faster (prepare_conv_graph_i8).
// Grouped (depthwise) convolutions, and any shape cuBLASLt offers no algorithm for, run tandem's
// direct int8 kernel. Weights: the per-output-channel
// codes and scales of tandem/numerics.h, the bias on the int32 grid (s_x * s_w[k]), as the
// emulation, which sums the same products in float.
void CudaExecutorImpl::build_convolution_i8(LayerId id, const Layer& L, float x_scale) {
  const auto& P = L.as<ConvolutionParams>();
  const Dims xd = net_.tensors[size_t(L.inputs[0])].dims, yd = net_.tensors[size_t(L.outputs[0])].dims;
  auto get = [](const Dims& d, size_t k, int64_t def) { return d.size() > k ? d[k] : def; };
  const int kh = int(P.kernel[0]), kw = int(P.kernel[1]);
  // C: the channels of the codes read (padded codes: zeros after xd[1], and zero weights for them)
  const int64_t C = codes_channels(cur_step_->inputs[0], xd[1]);
  const int64_t N = xd[0], H = xd[2], W = xd[3], K = yd[1], OH = yd[2], OW = yd[3];
  const int64_t G = std::max<int64_t>(1, P.groups), Cg = C / G, inner = Cg * kh * kw;
  std::vector<float> wv = pad_input_channels(weights_f32(P.kernel_weights, "kernel"), K, xd[1], C, kh * kw);
  if (int64_t(wv.size()) != K * inner)
    unsupported(L, "kernel holds " + std::to_string(wv.size()) + " values, expected " + std::to_string(K * inner));
  auto upload_bytes = [this](const std::vector<int8_t>& v) {
    void* p = dalloc(v.size());
    CK(cudaMemcpy(p, v.data(), v.size(), cudaMemcpyHostToDevice));
    weight_bytes_ += v.size();
    return static_cast<const void*>(p);
  };
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
  const std::string key = conv_tactic_key(P, xd, yd, G, false) + "|int8" + (C != xd[1] ? "|c" + std::to_string(C) : "");
  const int64_t rows = N * OH * OW, kc = inner, kc_pad = (kc + 15) / 16 * 16, k_pad = (K + 15) / 16 * 16;
  const bool direct_gemm = kh == 1 && kw == 1 && sh == 1 && sw == 1 && ph == 0 && pw == 0 && OH == H && OW == W &&
                           C % 16 == 0;
  std::shared_ptr<MatmulDescs> D;
  float ms = -1.f;
  int pick = -1;
  const void* wg = nullptr;
  if (G == 1 && rows * kc_pad < (int64_t(1) << 31) && rows * k_pad < (int64_t(1) << 31)) {
    // [k_pad, kc_pad] codes, columns in KRSC order (the im2col's), zeros in the padding.
    const std::vector<int8_t> wk = krsc_codes(wq, K, C, kh, kw, k_pad, kc_pad);
    wg = upload_bytes(wk);
    D = int8_gemm_descs(rows, kc_pad, k_pad, wg, &ms, &pick);
  }
  const DPtr xq = x_codes ? x : scr(reserve_scratch(size_t(N * H * W * C)));
  const cuda::Im2col ic{int(N), int(H), int(W), int(C), int(OH), int(OW), kh, kw, sh, sw, ph, pw, dh, dw, int(kc_pad)};
  const std::string lname = L.name;
  // The GEMM route on given codes, im2col and int32 buffers (the step's, or timing temporaries).
  auto gemm_route = [=, this](const int8_t* codes, int8_t* col, int32_t* acc, cudaStream_t s) {
    if (!direct_gemm) cuda::im2col_i8(ic, codes, col, s);
    const int32_t one = 1, zero = 0;
    ck(cublasLtMatmul(lt_, D->op, &one, wg, D->a, direct_gemm ? codes : col, D->b, &zero, acc, D->c, acc, D->c,
                      &D->algo, lt_workspace_, lt_workspace_bytes_, s),
       "cublasLtMatmul", "layer '" + lname + "'");
    if (yq || yh) {
      cuda::int8_epilogue_codes(acc, k_pad, rows, K, alpha_dev, bias_dev, chain, y_scale, yq, yh, s);
    } else {
      cuda::int8_epilogue_nchw(acc, k_pad, N, K, OH * OW, alpha_dev, bias_dev, chain, y, s);
    }
  };
  const size_t col_bytes = direct_gemm ? 0 : size_t(rows * kc_pad), acc_bytes = size_t(rows * k_pad) * 4;

  // Narrow inputs (a stem): tandem's tiled direct kernel where it beats the GEMM route.
  const Int8Tiled tiled{{int(N), int(C), int(H), int(W), int(K), int(OH), int(OW), kh, kw, sh, sw, ph, pw, dh, dw, 1},
                        x, xq, x_codes, x_scale, alpha_dev, bias_dev, chain, yq, yh, y_scale, key};
  auto gemm_ms = [&] {
    return D ? time_int8_gemm_route(gemm_route, x_codes ? at(x) : nullptr, size_t(N * H * W * C), col_bytes, acc_bytes)
             : -1.f;
  };
  // The cuDNN graph's spec of this convolution (groups 1, symmetric padding: the graph's geometry).
  const bool symmetric = get(P.post_padding, 0, ph) == ph && get(P.post_padding, 1, pw) == pw;
  auto graph_spec = [&] { return int8_graph_spec(tiled.q, yq != nullptr, alpha, bias, chain, y_scale); };
  if (G == 1 && (yq || yh) && conv_tiled_i8(L, tiled, wq, gemm_ms)) return;
  if (yh && G == 1) last_i8_conv_ = std::make_unique<LastInt8Conv>(LastInt8Conv{tiled, wq, {}});
  if (yh && G == 1 && symmetric && K % 4 == 0 && C % 4 == 0) last_i8_conv_->graph = graph_spec();
  float ig_vs = -1.f;  // (the implicit GEMM's time below, and the GEMM route's it beat)
  const float ig_ms = igemm_i8(L, tiled, wg, G == 1 && wg && kc == kc_pad && K == k_pad, gemm_ms, &ig_vs);
  if (ig_ms == kIgemmForced) return add_igemm_i8(L, tiled, wg, -1.f, -1.f);
  // The one-kernel routes (cuDNN's graph API): int8 NHWC codes in and out (or half on the grid),
  // no im2col, no int32 round trip; the sums on INT8 tensor cores, or on FP16 ones where that is
  // exact (half_sums: tried for narrow inputs, where cuDNN's INT8 kernels are slow). Symmetric
  // padding only (the graph's geometry). The fastest of the routes is kept.
  const int graph_mode = int8_graph_mode(), hs_mode = int8_half_sums_mode();
  const bool graph_ok = G == 1 && (yq || yh) && symmetric && K % 4 == 0;
  const bool try_int8 = graph_mode != 0 && graph_ok && C % 4 == 0;
  // (TANDEM_CUDA_INT8_GRAPH=0, the GEMM route alone, leaves out both graph routes unless forced)
  const bool try_half = hs_mode != 0 && (graph_mode != 0 || hs_mode == 1) && graph_ok && (hs_mode != -1 || C % 16 != 0) &&
                        int8_half_sums_exact(wq, K, kc);
  if (try_int8 || try_half) {
    const bool timed = copt_.time_tactics && ((try_int8 && graph_mode != 1) || (try_half && hs_mode != 1));
    const float gemm_ms = D && timed ? time_int8_gemm_route(gemm_route, x_codes ? at(x) : nullptr,
                                                            size_t(N * H * W * C), col_bytes, acc_bytes)
                                     : -1.f;
    const FusedConvSpec gs = graph_spec();
    Int8GraphStep a{x, xq, C, x_codes, x_scale, nullptr, yq ? static_cast<void*>(yq) : yh, key};
    ConvGraphRoute r;
    if (try_int8) {
      // KRSC codes: the GEMM's matrix when it has no column padding, else a copy of its own.
      a.w = wg && kc == kc_pad ? wg : upload_bytes(krsc_codes(wq, K, C, kh, kw, K, kc));
      r = prepare_conv_graph_i8(L, gs, x_codes ? at(x) : nullptr, a.w, a.y, ig_ms >= 0.f ? ig_ms : D ? gemm_ms : -1.f);
      if (ig_ms >= 0.f) log_tactic(L.name, "tandem_int8_igemm", ig_ms, r.conv ? r.ms : -1.f, "cudnn_graph_int8");
      if (!r.conv && a.w != wg) release_upload(a.w, size_t(K * kc));
    }
    const float beat_ms = r.conv ? r.ms : ig_ms >= 0.f ? ig_ms : D ? gemm_ms : -1.f;  // < 0: nothing to beat
    if (try_half && (!r.conv || r.ms >= 0.f || hs_mode == 1) && conv_half_sums_i8(L, gs, wq, a, beat_ms)) {
      if (r.conv) release_upload(r.consts, r.conv->constants().size() * sizeof(float));
      if (r.conv && a.w != wg) release_upload(a.w, size_t(K * kc));
      if (wg) release_upload(wg, size_t(k_pad * kc_pad));
      return;
    }
    if (r.conv) {
      if (wg && wg != a.w) release_upload(wg, size_t(k_pad * kc_pad));
      return add_conv_graph_i8(L, gs, r, a);
    }
  }
  if (ig_ms >= 0.f) return add_igemm_i8(L, tiled, wg, ig_ms, ig_vs);

  if (!D) {  // grouped, or no INT8 GEMM for this shape: the direct kernel
    Int8Tiled d = tiled;
    d.q.groups = int(G);
    return add_direct_i8(L, d, upload_bytes(wq), y);
  }
  mm_descs_.push_back(D);
  const DPtr col = direct_gemm ? xq : scr(reserve_scratch(col_bytes));
  const size_t acc_off = reserve_scratch(acc_bytes);
  add_step(L.name, [=, this](cudaStream_t s) {
    if (!x_codes) cuda::quantize_nhwc_i8(atf<float>(x), atf<int8_t>(xq), N, C, H * W, x_scale, s);
    gemm_route(atf<int8_t>(xq), atf<int8_t>(col), static_cast<int32_t*>(scratch_at(acc_off)), s);
  });
  const std::string tactic = std::string("cublaslt_int8_gemm") + (direct_gemm ? "_nhwc" : "_im2col") +
                             ":heuristic" + std::to_string(pick);
  tactics_.push_back({L.name, "Convolution", key, tactic, pick, ms, 0});
}

// The direct kernel's step (grouped convolutions, or no INT8 GEMM for the shape): w the KCRS
// codes, y the float output where neither codes nor half are written.
void CudaExecutorImpl::add_direct_i8(const Layer& L, const Int8Tiled& a, const void* w, float* y) {
  const int8_t* w8 = static_cast<const int8_t*>(w);
  const cuda::ConvI8 q = a.q;
  add_step(L.name, [=, this](cudaStream_t s) {
    if (!a.x_codes) cuda::quantize_nhwc_i8(atf<float>(a.x), atf<int8_t>(a.xq), q.n, q.c, q.h * q.w, a.x_scale, s);
    cuda::conv_direct_i8(q, atf<int8_t>(a.xq), w8, a.alpha, a.bias, a.chain, y, a.yq, a.yh, a.y_scale, s);
  });
  tactics_.push_back({L.name, "Convolution", a.key, "tandem_int8_direct", 1001, -1.f, 0});
}

// Whether tandem's implicit GEMM (cuda::conv_igemm_i8) runs an INT8 convolution writing codes or
// half, over the GEMM route's [K, kc] codes w (`fits`: groups 1, no padding in them): its time
// when it beats the GEMM route (gemm_ms(); *vs: that time), which the graph routes must then
// beat; kIgemmForced with TANDEM_CUDA_INT8_IGEMM=1; -1 not taken. Left out where a test forces a
// graph route or the GEMM route alone (TANDEM_CUDA_INT8_GRAPH=0 or 1, HALF_SUMS=1).
float CudaExecutorImpl::igemm_i8(const Layer& L, const Int8Tiled& a, const void* w, bool fits,
                                 const std::function<float()>& gemm_ms, float* vs) {
  const int mode = int8_igemm_mode();
  if (mode == 0 || !fits || (!a.yq && !a.yh) || !cuda::conv_igemm_i8_supported(a.q)) return -1.f;
  if (mode == 1) return kIgemmForced;
  if (int8_graph_mode() != -1 || int8_half_sums_mode() == 1 || !copt_.time_tactics || (*vs = gemm_ms()) < 0.f)
    return -1.f;
  const float ms = time_igemm_i8(a, w);
  log_tactic(L.name, "tandem_int8_igemm", ms, *vs, "cublaslt_int8_gemm route");
  return ms >= 0.f && ms < *vs ? ms : -1.f;
}

// The implicit GEMM's time on the layer's buffers (its input codes, or zeros in a temporary where
// they are made in the step; its output).
float CudaExecutorImpl::time_igemm_i8(const Int8Tiled& a, const void* w) {
  const cuda::ConvI8& q = a.q;
  void* xt = nullptr;
  if (!a.x_codes) {
    CK(cudaMalloc(&xt, size_t(q.n) * q.h * q.w * q.c));
    CK(cudaMemset(xt, 0, size_t(q.n) * q.h * q.w * q.c));
  }
  const int8_t* x = a.x_codes ? atf<int8_t>(a.x) : static_cast<const int8_t*>(xt);
  const float ms = time_launch([&] {
    return cuda::conv_igemm_i8(q, x, static_cast<const int8_t*>(w), a.alpha, a.bias, a.chain, a.yq, a.yh, a.y_scale,
                               stream_);
  });
  CK(cudaStreamSynchronize(stream_));
  if (xt) CK(cudaFree(xt));
  return ms;
}

void CudaExecutorImpl::add_igemm_i8(const Layer& L, const Int8Tiled& a, const void* w, float ms, float other_ms) {
  const int8_t* w8 = static_cast<const int8_t*>(w);
  const cuda::ConvI8 q = a.q;
  add_step(L.name, [=, this](cudaStream_t s) {
    if (!a.x_codes) cuda::quantize_nhwc_i8(atf<float>(a.x), atf<int8_t>(a.xq), q.n, q.c, q.h * q.w, a.x_scale, s);
    cuda::conv_igemm_i8(q, atf<int8_t>(a.xq), w8, a.alpha, a.bias, a.chain, a.yq, a.yh, a.y_scale, s);
  });
  tactics_.push_back({L.name, "Convolution", a.key + "|igemm",
                      "tandem_int8_igemm" + (other_ms >= 0.f ? " (gemm route " + std::to_string(other_ms) + " ms)"
                                                              : std::string()),
                      1004, ms, 0});
}

// The filter of cuda::conv_tiled_i8 on the device: [kh][kw][c / 4][K] words of 4 codes (channel
// 4 * cw + i in byte i), from the KCRS codes; *bytes: its size.
int32_t* CudaExecutorImpl::tiled_weights(const cuda::ConvI8& q, const std::vector<int8_t>& wq, size_t* bytes) {
  const int64_t c4 = q.c / 4, K = q.k;
  std::vector<int32_t> w(size_t(q.kh * q.kw * c4 * K), 0);
  for (int64_t k = 0; k < K; ++k)
    for (int64_t c = 0; c < q.c; ++c)
      for (int r = 0; r < q.kh; ++r)
        for (int s = 0; s < q.kw; ++s) {
          const uint32_t byte = uint8_t(wq[size_t(((k * q.c + c) * q.kh + r) * q.kw + s)]);
          w[size_t(((r * q.kw + s) * c4 + c / 4) * K + k)] |= int32_t(byte << (8 * (c % 4)));
        }
  *bytes = w.size() * sizeof(int32_t);
  int32_t* wdev = static_cast<int32_t*>(dalloc(*bytes));
  CK(cudaMemcpy(wdev, w.data(), *bytes, cudaMemcpyHostToDevice));
  weight_bytes_ += *bytes;
  return wdev;
}

// An INT8 convolution writing half on its grid (step k, just built) whose value only the residual
// join of step k + 1 reads (residual_join): the two as one kernel, tandem's implicit GEMM
// (cuda::conv_igemm_i8, c % 64 == 0), the tiled tensor-core kernel (cuda::conv_tiled_i8), each
// with a TiledJoin, or cuDNN's graph kernel with the join's operations after the convolution's
// (FusedConvSpec::join; groups 1, C % 4 == 0, the join's activation none or one ReLU; only when
// asked for, as it runs slower on every ResNet-50 layer measured): the
// convolution's codes as its GEMM and graph routes compute them, then add_act_codes_h's
// arithmetic on the half value q * s_y it never writes: the join's outputs bit for bit.
// Replaces the step just built when the fastest times faster than that step (its tactic's time)
// plus the join kernel (timed on their buffers), or always with TANDEM_CUDA_INT8_CONV_JOIN=1 (the
// implicit GEMM where TANDEM_CUDA_INT8_IGEMM=1, else the tiled kernel where it applies) or
// =graph (the cuDNN graph where a plan finalizes); =0 off. The join's outputs are written one step
// earlier, so they must not overlap the convolution's input (relocate_residual_outputs gives them
// memory of their own where the arena put them there).
void CudaExecutorImpl::conv_join_i8(size_t k) {
  const char* env = std::getenv("TANDEM_CUDA_INT8_CONV_JOIN");
  const std::string setting = env ? env : "";
  const int mode = !env ? -1 : setting == "0" ? 0 : setting == "1" ? 1 : setting == "graph" ? 2 : -1;
  std::unique_ptr<LastInt8Conv> last = std::move(last_i8_conv_);
  ResidualJoin j;
  if (mode == 0 || !last || k + 1 >= graph_.steps.size() || !residual_join(k + 1, &j, true)) return;
  const Int8Tiled& a = last->a;
  const cuda::ConvI8& q = a.q;
  const bool tiled_ok = mode != 2 && q.c % 4 == 0 && q.k % 64 == 0 && cuda::conv_tiled_i8_smem(q) <= 48 * 1024 &&
                        cuda::conv_tiled_i8_join_supported();
  cuda::TiledJoin probe;
  probe.act = j.act;
  const bool ig_ok = mode != 2 && int8_igemm_mode() != 0 && cuda::conv_igemm_i8_supported(q) &&
                     cuda::conv_igemm_i8_epilogue_ok(a.chain, &probe);
  const bool act_relu = j.act.n_ops == 1 && j.act.ops[0].kind == cuda::PwKind::kActivation &&
                        j.act.ops[0].act == ActivationType::kRelu;
  // The graph is asked for alone: on ResNet-50 at batch 256 (H200, cuDNN 9.19) its kernels run
  // 2.5-5x slower than the convolution step + join kernel, and their NVRTC compiles cost ~20 s.
  const bool graph_ok = mode == 2 && last->graph.k > 0 && int8_graph_mode() != 0 && (j.act.n_ops == 0 || act_relu);
  if (!a.yh || q.groups != 1 || (!tiled_ok && !ig_ok && !graph_ok)) return;
  const ValueId out = graph_.steps[k].outputs[0];
  if (ptr_[size_t(out)] != a.yh || (j.a != out && j.z != out) || net_.tensors[size_t(graph_.values[size_t(out)].tensor)].is_output)
    return;
  int readers = 0;
  for (const ExecStep& st : graph_.steps) readers += int(std::count(st.inputs.begin(), st.inputs.end(), out));
  const void* z = ptr_[size_t(j.a == out ? j.z : j.a)];
  void* y = ptr_[size_t(j.out)];
  int8_t* codes = j.codes >= 0 ? static_cast<int8_t*>(ptr_[size_t(j.codes)]) : nullptr;
  const size_t n = size_t(q.n) * q.oh * q.ow * q.k, x_bytes = size_t(q.n) * q.h * q.w * q.c;
  auto overlap = [](const void* p, size_t pn, const void* r, size_t rn) {
    const char *u = static_cast<const char*>(p), *v = static_cast<const char*>(r);
    return u < v + rn && v < u + pn;
  };
  const void* x = a.x_codes ? at(a.x) : nullptr;  // (codes in scratch: no overlap)
  if (readers != 1 || (x && (overlap(y, n * 2, x, x_bytes) || (codes && overlap(codes, n, x, x_bytes))))) return;
  const cuda::TiledJoin tj{z, y, codes, j.codes >= 0 ? graph_.values[size_t(j.codes)].int8_scale : 0.f, j.act};
  const Layer& L = net_.layers[size_t(graph_.steps[k].layer)];
  const JoinPick pick = pick_conv_join_i8(*last, L, tj, mode, tiled_ok, ig_ok, graph_ok, n);
  if (!pick.w) return;
  steps_.pop_back();
  fused_away_[k + 1] = 1;
  for (int i = 1; i <= j.later_steps; ++i) fused_away_[k + 1 + size_t(i)] = 1;
  cur_kind_ += "+ResidualJoin";
  const JoinKernel kernel = pick.kernel;
  const void* w = pick.w;
  TacticRecord t = tactics_.back();
  tactics_.pop_back();
  if (kernel == JoinKernel::kGraph) {
    const FusedConvPlanInfo info = pick.graph.conv->plan_info(pick.graph.plan);
    const size_t ws_off = reserve_scratch(info.workspace);
    CudnnFusedConv* conv = pick.graph.conv.get();
    const float* consts = pick.graph.consts;
    const int plan = pick.graph.plan;
    const std::string lname = L.name;
    add_step(L.name, [=, this](cudaStream_t s) {
      if (!a.x_codes) cuda::quantize_nhwc_i8(atf<float>(a.x), atf<int8_t>(a.xq), q.n, q.c, q.h * q.w, a.x_scale, s);
      ck(conv->run(plan, at(a.xq), w, tj.y, consts, info.workspace ? scratch_at(ws_off) : nullptr),
         "cudnnBackendExecute", "layer '" + lname + "' (cuDNN graph of an INT8 convolution and its residual join)");
    });
    t.tactic = "cudnn_graph_int8_nhwc:engine" + std::to_string(info.engine) + (info.runtime_compiled ? "+runtime_fusion" : "") +
               (info.tensor_core ? "+tensor_core" : "") + "+residual_join:heuristic" + std::to_string(plan) +
               (pick.ms >= 0.f ? " (" + t.tactic + " + join " + std::to_string(pick.apart_ms) + " ms)" : std::string());
    t.key = a.key + "|graph|join", t.tactic_id = info.engine, t.workspace = info.workspace;
  } else {
    const bool igemm = kernel == JoinKernel::kIgemm;
    add_step(L.name, [=, this](cudaStream_t s) {
      if (!a.x_codes) cuda::quantize_nhwc_i8(atf<float>(a.x), atf<int8_t>(a.xq), q.n, q.c, q.h * q.w, a.x_scale, s);
      if (igemm) {
        cuda::conv_igemm_i8(q, atf<int8_t>(a.xq), static_cast<const int8_t*>(w), a.alpha, a.bias, a.chain, nullptr, a.yh,
                            a.y_scale, s, &tj);
      } else {
        cuda::conv_tiled_i8(q, atf<int8_t>(a.xq), static_cast<const int32_t*>(w), a.alpha, a.bias, a.chain, nullptr,
                            a.yh, a.y_scale, s, &tj);
      }
    });
    t.tactic = std::string(igemm ? "tandem_int8_igemm+residual_join" : "tandem_int8_tiled_mma+residual_join") +
               (pick.ms >= 0.f ? " (" + t.tactic + " + join " + std::to_string(pick.apart_ms) + " ms)" : std::string());
    t.key = a.key + (igemm ? "|igemm|join" : "|tiled|join"), t.tactic_id = igemm ? 1005 : 1003, t.workspace = 0;
  }
  t.time_ms = pick.ms;
  tactics_.push_back(t);
}

// The cuDNN graph kernel of the convolution and its residual join (FusedConvSpec::join) on the
// join's buffers, over a KRSC copy of the codes: taken when a plan runs faster than beat_ms (< 0:
// whenever one runs); w null: not taken (nothing kept). Measured on ResNet-50 at batch 256 (H200,
// cuDNN 9.19, 2026-12-03): 3.97 ms for layer1's 1x1 conv3 against 0.82 ms for its step + join
// kernel, 1.0 against 0.22 ms in layer3 (docs/benchmarks.md), hence asked for only.
CudaExecutorImpl::JoinPick CudaExecutorImpl::graph_join_i8(const LastInt8Conv& last, const Layer& L,
                                                           const cuda::TiledJoin& tj, float beat_ms) {
  const Int8Tiled& a = last.a;
  const cuda::ConvI8& q = a.q;
  FusedConvSpec g = last.graph;
  g.join.on = true;
  g.join.relu = tj.act.n_ops == 1;
  g.join.codes = tj.q != nullptr;
  g.join.codes_scale = tj.q_scale;
  const int64_t kc = int64_t(q.kh) * q.kw * q.c;
  const std::vector<int8_t> wk = krsc_codes(last.wq, q.k, q.c, q.kh, q.kw, q.k, kc);
  void* w = dalloc(wk.size());
  CK(cudaMemcpy(w, wk.data(), wk.size(), cudaMemcpyHostToDevice));
  weight_bytes_ += wk.size();
  JoinPick pick;
  pick.kernel = JoinKernel::kGraph;
  pick.graph = prepare_conv_graph_i8(L, g, a.x_codes ? at(a.x) : nullptr, w, tj.y, beat_ms, &tj);
  if (!pick.graph.conv) {
    release_upload(w, wk.size());
    return JoinPick{};
  }
  pick.w = w;
  pick.ms = pick.graph.ms;
  return pick;
}

// conv_join_i8's choice: the fused kernel (its weights uploaded; w null: none, nothing kept) and
// its time against the convolution step plus the join kernel (mode -1), or the forced one (1:
// the implicit GEMM or the tiled kernel; 2: the cuDNN graph, whenever a plan runs).
CudaExecutorImpl::JoinPick CudaExecutorImpl::pick_conv_join_i8(const LastInt8Conv& last, const Layer& L,
                                                               const cuda::TiledJoin& tj, int mode, bool tiled_ok,
                                                               bool ig_ok, bool graph_ok, size_t n) {
  // (the cuDNN graph only when asked for: conv_join_i8)
  const Int8Tiled& a = last.a;
  const std::vector<int8_t>& wq = last.wq;
  const cuda::ConvI8& q = a.q;
  const void* x = a.x_codes ? at(a.x) : nullptr;
  JoinPick none, tiled, ig;
  if (mode == 2) return graph_ok ? graph_join_i8(last, L, tj, -1.f) : none;
  if (mode == -1 && (!copt_.time_tactics || tactics_.empty() || tactics_.back().time_ms < 0.f || !x)) return none;
  const size_t w_bytes = size_t(q.k) * q.kh * q.kw * q.c;
  size_t t_bytes = 0;
  if (ig_ok) {
    std::vector<int8_t> wk = krsc_codes(wq, q.k, q.c, q.kh, q.kw, q.k, int64_t(q.kh) * q.kw * q.c);
    void* p = dalloc(w_bytes);
    CK(cudaMemcpy(p, wk.data(), w_bytes, cudaMemcpyHostToDevice));
    weight_bytes_ += w_bytes;
    ig.w = p, ig.kernel = JoinKernel::kIgemm;
  }
  if (tiled_ok && (mode == -1 || !ig_ok || int8_igemm_mode() != 1)) tiled.w = tiled_weights(q, wq, &t_bytes);
  if (mode == 1) {
    if (ig.w && tiled.w) release_upload(ig.w, w_bytes), ig.w = nullptr;
    return ig.w ? ig : tiled;
  }
  const cuda::PwChain act = tj.act;
  const float join_ms = time_launch([&] {
    cuda::add_act_codes_h(a.yh, tj.z, act, tj.y, tj.q, tj.q_scale, int64_t(n), stream_);
    return true;
  });
  const int8_t* xc = static_cast<const int8_t*>(x);
  if (tiled.w)
    tiled.ms = time_launch([&] {
      return cuda::conv_tiled_i8(q, xc, static_cast<const int32_t*>(tiled.w), a.alpha, a.bias, a.chain, nullptr, a.yh,
                                 a.y_scale, stream_, &tj);
    });
  if (ig.w)
    ig.ms = time_launch([&] {
      return cuda::conv_igemm_i8(q, xc, static_cast<const int8_t*>(ig.w), a.alpha, a.bias, a.chain, nullptr, a.yh,
                                 a.y_scale, stream_, &tj);
    });
  CK(cudaStreamSynchronize(stream_));
  const float apart_ms = join_ms < 0.f ? -1.f : tactics_.back().time_ms + join_ms;
  const std::string& layer = tactics_.back().layer;
  if (tiled.w) log_tactic(layer, "tandem_int8_tiled_mma+residual_join", tiled.ms, apart_ms, "step + join kernel");
  if (ig.w) log_tactic(layer, "tandem_int8_igemm+residual_join", ig.ms, apart_ms, "step + join kernel");
  // The faster candidate that beats the two launches.
  JoinPick* best = nullptr;
  for (JoinPick* p : {&ig, &tiled})
    if (p->w && p->ms >= 0.f && apart_ms >= 0.f && p->ms < apart_ms && (!best || p->ms < best->ms)) best = p;
  if (ig.w && best != &ig) release_upload(ig.w, w_bytes);
  if (tiled.w && best != &tiled) release_upload(tiled.w, t_bytes);
  JoinPick chosen = best ? *best : none;
  chosen.apart_ms = apart_ms;
  return chosen;
}

// tandem's tiled direct INT8 convolution for narrow inputs (cuda::conv_tiled_i8: the input patch
// and the filter in shared memory, dp4a, exact int32 sums, the GEMM route's epilogue arithmetic),
// taken when it runs faster than the GEMM route (gemm_ms(); < 0: none) or with
// TANDEM_CUDA_INT8_TILED=1; =0 off. False: not taken (nothing added).
bool CudaExecutorImpl::conv_tiled_i8(const Layer& L, const Int8Tiled& a, const std::vector<int8_t>& wq,
                                     const std::function<float()>& gemm_ms) {
  const char* env = std::getenv("TANDEM_CUDA_INT8_TILED");
  const int mode = !env ? -1 : std::string(env) == "0" ? 0 : std::string(env) == "1" ? 1 : -1;
  const cuda::ConvI8& q = a.q;
  // (narrow inputs only; not where a test forces one of the graph routes)
  if (mode == 0 || q.c % 4 || q.c > 16 || q.k % 64 || cuda::conv_tiled_i8_smem(q) > 48 * 1024 ||
      (mode == -1 && (int8_graph_mode() == 1 || int8_half_sums_mode() == 1)))
    return false;
  size_t bytes = 0;
  int32_t* wdev = tiled_weights(q, wq, &bytes);
  const int8_t* xc = a.x_codes ? atf<int8_t>(a.x) : nullptr;
  float ms = -1.f, other = -1.f;
  if (mode == -1 && copt_.time_tactics && (other = gemm_ms()) >= 0.f) {
    void* xt = nullptr;
    if (!xc) CK(cudaMalloc(&xt, size_t(q.n) * q.h * q.w * q.c));
    if (xt) CK(cudaMemset(xt, 0, size_t(q.n) * q.h * q.w * q.c));
    ms = time_launch([&] {
      return cuda::conv_tiled_i8(q, xc ? xc : static_cast<int8_t*>(xt), wdev, a.alpha, a.bias, a.chain, a.yq, a.yh,
                                 a.y_scale, stream_);
    });
    CK(cudaStreamSynchronize(stream_));
    if (xt) CK(cudaFree(xt));
  }
  if (mode == -1 && other >= 0.f && (ms < 0.f || ms >= other)) {
    release_upload(wdev, bytes);
    return false;
  }
  add_step(L.name, [=, this](cudaStream_t s) {
    if (!a.x_codes) cuda::quantize_nhwc_i8(atf<float>(a.x), atf<int8_t>(a.xq), q.n, q.c, q.h * q.w, a.x_scale, s);
    cuda::conv_tiled_i8(q, atf<int8_t>(a.xq), wdev, a.alpha, a.bias, a.chain, a.yq, a.yh, a.y_scale, s);
  });
  tactics_.push_back({L.name, "Convolution", a.key + "|tiled", "tandem_int8_tiled_dp4a" +
                      (ms >= 0.f ? " (im2col/gemm route " + std::to_string(other) + " ms)" : std::string()),
                      1002, ms, 0});
  return true;
}

// The step of an INT8 convolution's cuDNN graph route (prepare_conv_graph_i8 or conv_half_sums_i8
// took it): the input's codes where it is float, with half_sums their half copy, then the graph.
void CudaExecutorImpl::add_conv_graph_i8(const Layer& L, const FusedConvSpec& gs, const ConvGraphRoute& r,
                                         const Int8GraphStep& a) {
  const FusedConvPlanInfo info = r.conv->plan_info(r.plan);
  const size_t ws_off = reserve_scratch(info.workspace);
  const int64_t N = gs.n, H = gs.h, W = gs.w, C = a.c, ch = gs.c;
  const size_t xh_off = gs.half_sums ? reserve_scratch(size_t(N * H * W * ch) * sizeof(__half)) : 0;
  CudnnFusedConv* conv = r.conv.get();
  const float* consts = r.consts;
  const int plan = r.plan;
  const bool half = gs.half_sums;
  const std::string lname = L.name;
  add_step(L.name, [=, this](cudaStream_t s) {
    if (!a.x_codes) cuda::quantize_nhwc_i8(atf<float>(a.x), atf<int8_t>(a.xq), N, C, H * W, a.x_scale, s);
    if (half) cuda::codes_to_half_i8(atf<int8_t>(a.xq), N * H * W, C, ch, scratch_at(xh_off), s);
    ck(conv->run(plan, half ? scratch_at(xh_off) : at(a.xq), a.w, a.y, consts,
                 info.workspace ? scratch_at(ws_off) : nullptr),
       "cudnnBackendExecute", "layer '" + lname + "' (fused cuDNN graph of a real INT8 convolution)");
  });
  std::string tactic = std::string(half ? "cudnn_graph_int8_half_sums_nhwc:engine" : "cudnn_graph_int8_nhwc:engine") +
                       std::to_string(info.engine) + (info.runtime_compiled ? "+runtime_fusion" : "") +
                       (info.tensor_core ? "+tensor_core" : "") + "+epilogue_chain" + std::to_string(gs.chain.n_ops) +
                       (gs.data == FusedConvData::kInt8Codes ? "+requantize" : "+half_on_grid") + ":heuristic" +
                       std::to_string(plan);
  if (r.ms >= 0.f && r.two_pass_ms >= 0.f) tactic += " (beat " + std::to_string(r.two_pass_ms) + " ms)";
  tactics_.push_back({L.name, "Convolution", a.key + (half ? "|graph|half_sums" : "|graph"), tactic, info.engine, r.ms,
                      info.workspace});
}

// An INT8 convolution's sums on FP16 tensor cores: the codes as half (exact: |q| <= 128), the
// filter's codes as half, FP32 accumulation. Every product is an integer of magnitude <= 128 *
// 127 and, with int8_half_sums_exact's bound, every partial sum an integer below 2^24 in
// magnitude, in whatever order and grouping the kernel adds them (split-K, tensor-core
// accumulation that aligns or truncates addends below the largest one's ulp, which is <= 1
// there): the FP32 sums equal the INT32 sums exactly, so the epilogue (alpha, bias, chain,
// requantization, the same point-wise operations as the INT8 graph's) gets the same values.
// Engines that transform the operands (FFT, Winograd) or reduce in half are skipped (try_plans).
// Channels are padded to 8 (zeros) for the half kernels. Taken when it beats beat_ms (< 0: no
// time to beat) including the codes -> half pass, or always with TANDEM_CUDA_INT8_HALF_SUMS=1.
bool CudaExecutorImpl::conv_half_sums_i8(const Layer& L, FusedConvSpec gs, const std::vector<int8_t>& wq,
                                         Int8GraphStep a, float beat_ms) {
  const int64_t C = gs.c, ch = (C + 7) / 8 * 8, K = gs.k, kh = gs.kernel[0], kw = gs.kernel[1];
  const int64_t pixels = gs.n * gs.h * gs.w;
  std::vector<__half> wh(size_t(K * kh * kw * ch), __float2half(0.f));
  for (int64_t k = 0; k < K; ++k)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t r = 0; r < kh; ++r)
        for (int64_t s = 0; s < kw; ++s)
          wh[size_t(((k * kh + r) * kw + s) * ch + c)] = __float2half(float(wq[size_t(((k * C + c) * kh + r) * kw + s)]));
  void* wdev = dalloc(wh.size() * sizeof(__half));
  CK(cudaMemcpy(wdev, wh.data(), wh.size() * sizeof(__half), cudaMemcpyHostToDevice));
  weight_bytes_ += wh.size() * sizeof(__half);
  float convert_ms = 0.f;
  if (beat_ms >= 0.f && copt_.time_tactics) {  // the codes -> half pass, which the graph's time leaves out
    void *q = nullptr, *h = nullptr;
    CK(cudaMalloc(&q, size_t(pixels * C)));
    CK(cudaMalloc(&h, size_t(pixels * ch) * sizeof(__half)));
    CK(cudaMemset(q, 0, size_t(pixels * C)));
    convert_ms = time_launch([&] {
      cuda::codes_to_half_i8(static_cast<const int8_t*>(q), pixels, C, ch, h, stream_);
      return true;
    });
    CK(cudaStreamSynchronize(stream_));
    CK(cudaFree(q));
    CK(cudaFree(h));
  }
  gs.c = ch, gs.half_sums = true;
  const ConvGraphRoute r =
      prepare_conv_graph_i8(L, gs, nullptr, wdev, a.y, beat_ms >= 0.f ? std::max(beat_ms - convert_ms, 1e-6f) : -1.f);
  if (!r.conv) {
    release_upload(wdev, wh.size() * sizeof(__half));
    return false;
  }
  a.w = wdev;
  add_conv_graph_i8(L, gs, r, a);
  return true;
}

// What the im2col + cuBLASLt GEMM + epilogue route of an INT8 convolution takes (ms, 5 runs):
// on the step's own codes when they live in the arena (codes), else on a temporary copy (zeros:
// the time does not depend on the values), with temporaries for the im2col and the int32 sums
// (scratch does not exist yet). The input's quantize pass is left out: both routes have it.
float CudaExecutorImpl::time_int8_gemm_route(
    const std::function<void(const int8_t*, int8_t*, int32_t*, cudaStream_t)>& route, const void* codes,
    size_t x_bytes, size_t col_bytes, size_t acc_bytes) {
  void *xt = nullptr, *col = nullptr, *acc = nullptr;
  if (!codes) {
    CK(cudaMalloc(&xt, x_bytes));
    CK(cudaMemset(xt, 0, x_bytes));
  }
  if (col_bytes) CK(cudaMalloc(&col, col_bytes));
  CK(cudaMalloc(&acc, acc_bytes));
  const int8_t* x = static_cast<const int8_t*>(codes ? codes : xt);
  const float ms = time_launch([&] {
    route(x, static_cast<int8_t*>(col), static_cast<int32_t*>(acc), stream_);
    return true;
  });
  CK(cudaStreamSynchronize(stream_));
  for (void* p : {xt, col, acc})
    if (p) CK(cudaFree(p));
  return ms;
}

// A real INT8 convolution as one cuDNN graph kernel (CudnnFusedConv, int8 data): up to
// kGraphPlans engine configurations of cuDNN's heuristics are finalized once per graph structure
// (shared with the FP16 graphs' map: the signature names the data) and timed on the layer's
// buffers (a temporary input where the codes live in the scratch buffer); the fastest is kept
// when it beats the GEMM route's time (gemm_route_ms; < 0: nothing to beat). TANDEM_CUDA_INT8_GRAPH
// =1: whenever one finalizes and runs; 0: never (the caller). TANDEM_CUDA_GRAPH_FUSION_LOG=1
// prints why a convolution keeps the GEMM route (stderr).
ConvGraphRoute CudaExecutorImpl::prepare_conv_graph_i8(const Layer& L, const FusedConvSpec& s, const void* x,
                                                       const void* w, void* y, float gemm_route_ms,
                                                       const cuda::TiledJoin* join) {
  constexpr int kGraphPlans = 3;
  const char* log_env = std::getenv("TANDEM_CUDA_GRAPH_FUSION_LOG");
  auto keep_gemm = [&](const std::string& why) {
    if (log_env && std::string(log_env) == "1")
      std::fprintf(stderr, "tandem cuda: layer '%s': INT8 cuDNN graph not taken: %s\n", L.name.c_str(), why.c_str());
    return ConvGraphRoute{};
  };
  auto conv = std::make_shared<CudnnFusedConv>();
  std::string why;
  if (!conv->prepare(s, &why)) return keep_gemm(why);
  auto [known, fresh] = graph_plans_.try_emplace(conv->signature());
  if (fresh) {
    if (conv->make_plans(cudnn_, kGraphPlans, copt_.max_workspace, &why, plan_cache_) > 0) known->second.first = conv;
    known->second.second = why;
  }
  if (!known->second.first) return keep_gemm(known->second.second);
  if (!fresh) conv->share_plans(*known->second.first);
  if (join) conv->bind_join(join->z, join->q);
  const float* consts = upload_f32(conv->constants());  // alpha at least
  float best_ms = -1.f;
  const int best = time_graph_plans(*conv, x, size_t(s.n * s.h * s.w * s.c) * (s.half_sums ? sizeof(__half) : 1), w,
                                    y, consts, &best_ms);
  std::ostringstream slower;
  const bool forced = (s.half_sums ? int8_half_sums_mode() : int8_graph_mode()) == 1;
  if (best >= 0 && !forced && copt_.time_tactics && gemm_route_ms >= 0.f && best_ms >= gemm_route_ms)
    slower << "engine " << conv->plan_info(best).engine << (s.half_sums ? " (half sums) " : " ") << best_ms
           << " ms, the route to beat " << gemm_route_ms << " ms";
  if (best < 0 || !slower.str().empty()) {
    release_upload(consts, conv->constants().size() * sizeof(float));
    return keep_gemm(best < 0 ? "no plan ran" : slower.str());
  }
  fused_convs_.push_back(conv);
  ConvGraphRoute r;
  r.conv = conv;
  r.plan = best;
  r.consts = consts;
  r.ms = copt_.time_tactics ? best_ms : -1.f;
  r.two_pass_ms = gemm_route_ms;
  return r;
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
  if (const int64_t cp = codes_channels(st.outputs[0], 0); cp > 0) {  // padded codes (pad_narrow_codes)
    const int64_t b = to.dims[0], c = to.dims[1], hw = to.dims[2] * to.dims[3];
    const float* xf = static_cast<const float*>(x);
    cur_kind_ += "Padded";
    add_step(name, [=](cudaStream_t s) { cuda::quantize_nhwc_pad_i8(xf, q, b, c, cp, hw, scale, s); });
    return;
  }
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

// The end of a residual block in an INT8 plan (`tandem build --int8` ResNets): a real FP16 Sum
// (step k) of two dense half values of its shape and layout (an INT8 convolution's half on its
// grid and the block's input, typically), then, each optional, a real FP16 activation that alone
// reads the sum (step k + 1) and the round step after it that makes the codes of the result for
// the next INT8 convolutions. One kernel (add_act_codes_h) computes the same arithmetic element
// by element, so the later steps launch nothing. Their outputs are written one or two steps
// early: with check_memory, only where they do not overlap a or z other than as that value itself
// (in place), which relocate_residual_outputs ensures where the arena placed them otherwise.
// TANDEM_CUDA_FUSE_JOIN=0 turns it off.
bool CudaExecutorImpl::residual_join(size_t k, ResidualJoin* j, bool check_memory) const {
  const char* env = std::getenv("TANDEM_CUDA_FUSE_JOIN");
  if ((env && std::string(env) == "0") || keep_all_ || opt_.observe_tensor || !opt_.fuse || !copt_.real_int8)
    return false;
  const ExecStep& add = graph_.steps[k];
  auto plain_half = [&](const ExecStep& s, LayerKind kind, size_t inputs) {  // a real FP16 layer alone
    return s.kind == StepKind::kLayer && s.epilogue.empty() && net_.layers[size_t(s.layer)].kind == kind &&
           s.inputs.size() == inputs && s.outputs.size() == 1 && graph_.values[size_t(s.outputs[0])].float_as_half() &&
           !graph_.values[size_t(s.outputs[0])].half_of_int8() && ptr_[size_t(s.outputs[0])];
  };
  if (!plain_half(add, LayerKind::kElementWise, 2) ||
      net_.layers[size_t(add.layer)].as<ElementWiseParams>().op != ElementWiseOp::kSum)
    return false;
  const ExecValue& S = graph_.values[size_t(add.outputs[0])];
  for (ValueId v : add.inputs) {
    const ExecValue& X = graph_.values[size_t(v)];
    if (!X.float_as_half() || X.dims != S.dims || X.layout != S.layout || !ptr_[size_t(v)]) return false;
  }
  *j = ResidualJoin{};
  j->step = k, j->a = add.inputs[0], j->z = add.inputs[1], j->out = add.outputs[0];
  size_t next = k + 1;
  const TensorId sum = net_.layers[size_t(add.layer)].outputs[0];
  if (next < graph_.steps.size() && plain_half(graph_.steps[next], LayerKind::kActivation, 1) &&
      graph_.steps[next].inputs[0] == j->out && sum == j->out && !net_.tensors[size_t(sum)].is_output &&
      net_.consumers()[size_t(sum)].size() == 1 && graph_.values[size_t(graph_.steps[next].outputs[0])].dims == S.dims &&
      graph_.values[size_t(graph_.steps[next].outputs[0])].layout == S.layout) {
    const auto& P = net_.layers[size_t(graph_.steps[next].layer)].as<ActivationParams>();
    j->act.n_ops = 1;
    j->act.ops[0] = {cuda::PwKind::kActivation, P.type, ElementWiseOp::kSum, P.alpha, P.beta};
    j->out = graph_.steps[next].outputs[0];
    ++next;
  }
  if (next < graph_.steps.size()) {
    const ExecStep& r = graph_.steps[next];
    if (r.kind == StepKind::kRound && r.inputs.size() == 1 && r.inputs[0] == j->out && r.outputs.size() == 1 &&
        graph_.values[size_t(r.outputs[0])].int8_codes() && graph_.values[size_t(r.outputs[0])].layout == S.layout &&
        graph_.values[size_t(r.outputs[0])].dims == S.dims && ptr_[size_t(r.outputs[0])]) {
      j->codes = r.outputs[0];
      ++next;
    }
  }
  j->later_steps = int(next - k - 1);
  // Nothing to save (the sum alone), or no INT8 plan's join (FP16 plans have their residual
  // fusion, residual_after_conv): an operand written by an INT8 convolution, or codes made.
  const bool int8_join = graph_.values[size_t(j->a)].half_of_int8() || graph_.values[size_t(j->z)].half_of_int8() ||
                         j->codes >= 0;
  if (j->later_steps == 0 || !int8_join) return false;
  if (!check_memory) return true;
  const size_t hbytes = size_t(volume(S.dims)) * sizeof(__half);
  auto overlap = [](const void* p, size_t pn, const void* q, size_t qn) {
    const char *a = static_cast<const char*>(p), *b = static_cast<const char*>(q);
    return a < b + qn && b < a + pn;
  };
  for (ValueId in : {j->a, j->z}) {
    const void* x = ptr_[size_t(in)];
    if (j->out != add.outputs[0] && ptr_[size_t(j->out)] != x && overlap(ptr_[size_t(j->out)], hbytes, x, hbytes))
      return false;
    if (j->codes >= 0 && overlap(ptr_[size_t(j->codes)], size_t(volume(S.dims)), x, hbytes)) return false;
  }
  return true;
}

// The residual join's kernel at the sum's step; the activation and round steps after it are
// marked fused away (they launch nothing).
void CudaExecutorImpl::build_residual_join(const ResidualJoin& j) {
  const void* a = ptr_[size_t(j.a)];
  const void* z = ptr_[size_t(j.z)];
  void* y = ptr_[size_t(j.out)];
  int8_t* q = j.codes >= 0 ? static_cast<int8_t*>(ptr_[size_t(j.codes)]) : nullptr;
  const float q_scale = j.codes >= 0 ? graph_.values[size_t(j.codes)].int8_scale : 0.f;
  const int64_t n = volume(graph_.values[size_t(j.out)].dims);
  const cuda::PwChain act = j.act;
  for (int i = 1; i <= j.later_steps; ++i) fused_away_[j.step + size_t(i)] = 1;
  cur_kind_ += std::string("(fp16)") + (act.n_ops ? "+Activation" : "") + (q ? "+Codes" : "");
  add_step(net_.layers[size_t(graph_.steps[j.step].layer)].name,
           [=](cudaStream_t s) { cuda::add_act_codes_h(a, z, act, y, q, q_scale, n, s); });
}

// A ResNet stem's tail in an INT8 plan: an FP16 ReLU over an INT8 convolution's codes writing
// half (step k), a max pooling of that half value alone (k + 1), and the round step making the
// pooled value's codes (k + 2), which nothing else reads. The ReLU on the half grid is
// non-decreasing in the code, so the pooled value is that of the window's largest code: one
// pooling over the codes (maxpool_act_codes_i8) gives the same codes, and the two half values
// are never written. TANDEM_CUDA_FUSE_POOL=0 turns it off.
bool CudaExecutorImpl::maxpool_over_codes(size_t k, PoolOverCodes* f) const {
  const char* env = std::getenv("TANDEM_CUDA_FUSE_POOL");
  if ((env && std::string(env) == "0") || keep_all_ || opt_.observe_tensor || !opt_.fuse || k + 2 >= graph_.steps.size())
    return false;
  const ExecStep &act = graph_.steps[k], &pool = graph_.steps[k + 1], &round = graph_.steps[k + 2];
  auto nhwc = [&](ValueId v) { return graph_.values[size_t(v)].layout == ValueLayout::kNHWC; };
  auto read_by = [&](ValueId v) {  // the steps reading v
    int n = 0;
    for (const ExecStep& s : graph_.steps) n += int(std::count(s.inputs.begin(), s.inputs.end(), v));
    return n;
  };
  if (act.kind != StepKind::kLayer || !act.epilogue.empty() || act.inputs.size() != 1 || act.outputs.size() != 1 ||
      net_.layers[size_t(act.layer)].kind != LayerKind::kActivation ||
      net_.layers[size_t(act.layer)].as<ActivationParams>().type != ActivationType::kRelu ||
      precision_of(act.layer) != Precision::kFP16 || !graph_.values[size_t(act.inputs[0])].int8_codes() ||
      !graph_.values[size_t(act.outputs[0])].float_as_half() || !nhwc(act.inputs[0]) || !nhwc(act.outputs[0]))
    return false;
  if (pool.kind != StepKind::kLayer || !pool.epilogue.empty() || pool.inputs.size() != 1 || pool.outputs.size() != 1 ||
      pool.inputs[0] != act.outputs[0] || net_.layers[size_t(pool.layer)].kind != LayerKind::kPooling ||
      net_.layers[size_t(pool.layer)].as<PoolingParams>().type != PoolingType::kMax ||
      net_.layers[size_t(pool.layer)].as<PoolingParams>().window.size() != 2 ||
      !graph_.values[size_t(pool.outputs[0])].float_as_half() || !nhwc(pool.outputs[0]) || read_by(act.outputs[0]) != 1)
    return false;
  if (round.kind != StepKind::kRound || round.inputs.size() != 1 || round.outputs.size() != 1 ||
      round.inputs[0] != pool.outputs[0] || !graph_.values[size_t(round.outputs[0])].int8_codes() ||
      !nhwc(round.outputs[0]) || read_by(pool.outputs[0]) != 1 || !ptr_[size_t(round.outputs[0])])
    return false;
  for (ValueId v : {act.outputs[0], pool.outputs[0]})
    if (net_.tensors[size_t(graph_.values[size_t(v)].tensor)].is_output) return false;
  *f = PoolOverCodes{};
  f->step = k, f->x = act.inputs[0], f->codes = round.outputs[0], f->pool = pool.layer;
  f->act.n_ops = 1;
  f->act.ops[0] = {cuda::PwKind::kActivation, ActivationType::kRelu, ElementWiseOp::kSum, 0.f, 0.f};
  return true;
}

// The pooling over codes at the activation's step; the pooling and round steps launch nothing.
// The codes are written two steps early: where the arena put them over the input codes (which
// die at the activation), they get memory of their own.
void CudaExecutorImpl::build_maxpool_over_codes(const PoolOverCodes& f) {
  const Layer& P = net_.layers[size_t(f.pool)];
  const Dims &xd = net_.tensors[size_t(P.inputs[0])].dims, &yd = net_.tensors[size_t(P.outputs[0])].dims;
  cuda::Pool2d p = pool2d_of(P.as<PoolingParams>(), xd, yd);
  p.nc = int(xd[0]);
  const int64_t c = xd[1], x_bytes = volume(xd), y_bytes = volume(yd);
  const char* x = static_cast<const char*>(ptr_[size_t(f.x)]);
  const char* y0 = static_cast<const char*>(ptr_[size_t(f.codes)]);
  if (y0 < x + x_bytes && x < y0 + y_bytes) {
    ptr_[size_t(f.codes)] = dalloc(size_t(y_bytes));
    arena_bytes_ += size_t(y_bytes);
  }
  const int8_t* xq = reinterpret_cast<const int8_t*>(x);
  int8_t* y = static_cast<int8_t*>(ptr_[size_t(f.codes)]);
  const float xs = graph_.values[size_t(f.x)].int8_scale, ys = graph_.values[size_t(f.codes)].int8_scale;
  const cuda::PwChain act = f.act;
  fused_away_[f.step + 1] = fused_away_[f.step + 2] = 1;
  cur_kind_ = "Activation+MaxPool(int8)";
  add_step(net_.layers[size_t(graph_.steps[f.step].layer)].name,
           [=](cudaStream_t s) { cuda::maxpool_act_codes_i8(p, c, xq, xs, act, y, ys, s); });
}

// Deconvolution = cuDNN backward-data. Padding other than symmetric: full output, then crop.
}  // namespace cuda_exec
}  // namespace tandem
