// The CUDA executor's deconvolutions and matrix multiplies (cuDNN backward data, cuBLASLt).
#include "backend/cuda/executor_impl.h"

namespace tandem {
namespace cuda_exec {

namespace {

// "a<sep>b<sep>c": a tactic key's per-axis list (the 2-D keys read as before: "3x3", "1,1,1,1").
std::string join_ints(const std::vector<int>& v, const char* sep) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? sep : "") + std::to_string(v[i]);
  return s;
}

// A dense fp32 NC... tensor descriptor of any rank (cudnnSetTensorNdDescriptor, cudnn_graph.h).
cudnnStatus_t set_dense_nd(cudnnTensorDescriptor_t d, const Dims& dims) {
  std::vector<int> n(dims.begin(), dims.end()), st(dims.size(), 1);
  for (size_t k = dims.size() - 1; k > 0; --k) st[k - 1] = st[k] * n[k];
  return cudnnSetTensorNdDescriptor(d, CUDNN_DATA_FLOAT, int(n.size()), n.data(), st.data());
}

}  // namespace

// Deconvolution = cuDNN backward data of the convolution from y to x. 2-D: the 4d descriptors;
// 3-D (FP32 only): the Nd ones (cudnnSetFilterNdDescriptor, cudnnSetConvolutionNdDescriptor).
void CudaExecutorImpl::build_deconvolution(LayerId id, const Layer& L) {
  const auto& P = L.as<ConvolutionParams>();
  TensorId xt = L.inputs[0], yt = L.outputs[0];
  require_float(L, xt);
  if (L.inputs.size() > 1) unsupported(L, "kernel weights given as a tensor input are not supported");
  Dims xd = net_.tensors[xt].dims, yd = net_.tensors[yt].dims;
  const size_t ns = P.kernel.size();  // spatial axes
  if (ns < 2 || ns > 3 || xd.size() != ns + 2)
    unsupported(L, "only 2D and 3D deconvolution over NC(D)HW is supported (kernel rank " + std::to_string(ns) + ")");
  const Precision prec = precision_of(id);
  if (ns == 3 && prec != Precision::kFP32 && prec != Precision::kUnset)
    unsupported(L, "3D deconvolution runs in FP32 only (precision " + std::string(to_string(prec)) + ")");
  auto get = [](const Dims& d, size_t k, int64_t def) { return d.size() > k ? d[k] : def; };
  std::vector<int> kern(ns), st(ns), dil(ns), pre(ns), post(ns), pads(ns);
  int64_t ksize = 1;  // kernel elements per (input map, output map)
  for (size_t a = 0; a < ns; ++a) {
    kern[a] = int(P.kernel[a]), st[a] = int(get(P.stride, a, 1)), dil[a] = int(get(P.dilation, a, 1));
    pre[a] = int(get(P.pre_padding, a, 0)), post[a] = int(get(P.post_padding, a, 0));
    ksize *= kern[a];
  }
  int64_t C = xd[1], K = P.out_maps > 0 ? P.out_maps : yd[1], G = std::max<int64_t>(1, P.groups);
  std::vector<float> wv = weights_f32(P.kernel_weights, "kernel");
  if (int64_t(wv.size()) != C * (K / G) * ksize) unsupported(L, "kernel size differs from [C, K/g, kernel...]");
  const std::vector<float> w_orig = wv;
  round_weights(id, wv, K / G, false, ksize);
  const float* wdev = upload_f32(wv);
  const float* bdev = nullptr;
  if (P.bias_weights >= 0) {
    std::vector<float> bv = weights_f32(P.bias_weights, "bias");
    if (int64_t(bv.size()) != K) unsupported(L, "bias size differs from the output maps");
    if (prec == Precision::kFP16) round_weights(id, bv, 1, true, 1);
    if (G == 1) quantize_bias(id, L, w_orig, K, false, ksize, bv);
    bdev = upload_f32(bv);
  }
  auto full = [](int64_t in, int pad, int k, int s, int d) { return (in - 1) * s - 2 * pad + d * (k - 1) + 1; };
  bool direct = true;  // symmetric padding that gives y's size: cuDNN writes y itself
  for (size_t a = 0; a < ns; ++a)
    direct = direct && pre[a] == post[a] && full(xd[2 + a], pre[a], kern[a], st[a], dil[a]) == yd[2 + a];
  Dims fd = yd;
  if (!direct) {
    for (size_t a = 0; a < ns; ++a) {
      fd[2 + a] = full(xd[2 + a], 0, kern[a], st[a], dil[a]);
      if (pre[a] + yd[2 + a] > fd[2 + a]) unsupported(L, "output padding beyond the full deconvolution is not supported");
    }
  }
  for (size_t a = 0; a < ns; ++a) pads[a] = direct ? pre[a] : 0;
  auto D = std::make_shared<ConvDescs>();
  conv_descs_.push_back(D);
  CK(cudnnCreateTensorDescriptor(&D->x));
  CK(cudnnCreateTensorDescriptor(&D->y));
  CK(cudnnCreateFilterDescriptor(&D->w));
  CK(cudnnCreateConvolutionDescriptor(&D->conv));
  if (ns == 2) {
    CK(cudnnSetTensor4dDescriptor(D->x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, int(xd[0]), int(xd[1]), int(xd[2]), int(xd[3])));
    CK(cudnnSetTensor4dDescriptor(D->y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, int(fd[0]), int(fd[1]), int(fd[2]), int(fd[3])));
    CK(cudnnSetFilter4dDescriptor(D->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, int(C), int(K / G), kern[0], kern[1]));
    CK(cudnnSetConvolution2dDescriptor(D->conv, pads[0], pads[1], st[0], st[1], dil[0], dil[1], CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  } else {
    std::vector<int> fdims = {int(C), int(K / G)};
    fdims.insert(fdims.end(), kern.begin(), kern.end());
    CK(set_dense_nd(D->x, xd));
    CK(set_dense_nd(D->y, fd));
    CK(cudnnSetFilterNdDescriptor(D->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, int(fdims.size()), fdims.data()));
    CK(cudnnSetConvolutionNdDescriptor(D->conv, int(ns), pads.data(), st.data(), dil.data(), CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  }
  const std::string w = where_;
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
  int64_t n = volume(yd), inner = 1;  // elements per (image, output map)
  for (size_t a = 0; a < ns; ++a) inner *= yd[2 + a];
  DPtr x = in(xt);
  Dims fst = dense_strides(fd);
  int64_t base = 0;  // where y starts inside the full output
  for (size_t a = 0; a < ns; ++a) base += pre[a] * fst[2 + a];
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
  std::vector<int> pre_post = pre;
  pre_post.insert(pre_post.end(), post.begin(), post.end());
  key << "Deconvolution|x=" << join_dims(xd) << "|y=" << join_dims(yd) << "|k=" << join_ints(kern, "x") << "|s=" << join_ints(st, "x")
      << "|p=" << join_ints(pre_post, ",") << "|d=" << join_ints(dil, "x") << "|g=" << G << "|fp32"
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
