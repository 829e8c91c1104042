// The CUDA executor's deconvolutions and matrix multiplies (cuDNN backward data, cuBLASLt).
#include "backend/cuda/executor_impl.h"

namespace tandem {
namespace cuda_exec {

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
}  // namespace cuda_exec
}  // namespace tandem
