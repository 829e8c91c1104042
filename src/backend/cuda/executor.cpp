// The CUDA executor: compile once (memory plan, weight upload, tactic choice), run many times.
// See docs/cuda-backend.md for the supported layers, the memory plan and the numerics. The
// builders of convolutions and real-FP16 layers, real INT8 layers, and deconvolutions and
// matrix multiplies live in executor_conv.cpp, executor_int8.cpp and executor_gemm.cpp.
#include "backend/cuda/executor_impl.h"

#include <chrono>
#include <cstdio>

namespace tandem {
namespace cuda_exec {

namespace {

// TANDEM_CUDA_COMPILE_PROFILE=N: where compile() spends its time, on stderr: the phases, then the
// N slowest steps to build (tactic choice, plan building or restoring, weight preparation).
// For the engine-load goal (docs/cuda-backend.md): a diagnostic, off by default.
struct CompileProfile {
  using clock = std::chrono::steady_clock;
  int top = -1;  // -1: off
  clock::time_point t = clock::now();
  std::vector<std::pair<double, std::string>> phases, steps;
  CompileProfile() {
    if (const char* e = std::getenv("TANDEM_CUDA_COMPILE_PROFILE")) top = std::max(0, std::atoi(e));
  }
  double lap() {
    const auto now = clock::now();
    const double ms = std::chrono::duration<double, std::milli>(now - t).count();
    t = now;
    return ms;
  }
  void phase(const char* name) {
    if (top >= 0) phases.emplace_back(lap(), name);
  }
  bool on() const { return top >= 0; }
  void step(std::string name) { steps.emplace_back(lap(), std::move(name)); }
  ~CompileProfile() {
    if (top < 0) return;
    double built = 0;
    for (const auto& s : steps) built += s.first;
    for (const auto& p : phases) std::fprintf(stderr, "compile %-22s %9.2f ms\n", p.second.c_str(), p.first);
    std::fprintf(stderr, "compile %-22s %9.2f ms (%zu steps)\n", "build steps", built, steps.size());
    std::sort(steps.begin(), steps.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    for (size_t i = 0; i < steps.size() && i < size_t(top); ++i)
      std::fprintf(stderr, "  %8.2f ms  %s\n", steps[i].first, steps[i].second.c_str());
  }
};

}  // namespace

void CudaExecutorImpl::compile() {
  CompileProfile prof;
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
  // The persistent cache of cuDNN runtime-fusion plans (plan_cache.h): one folder per GPU,
  // compute capability, cuDNN and driver (a plan restores only where it was compiled).
  int driver = 0;
  cudaDriverGetVersion(&driver);
  plan_cache_ = plan_cache_folder(std::string(prop.name) + "|sm_" + std::to_string(prop.major) +
                                  std::to_string(prop.minor) + "|cudnn " + std::to_string(cudnnGetVersion()) +
                                  "|driver " + std::to_string(driver));
  // Fusion, numerics steps, views and the arena: decided by lower() (FP8 layers fail there,
  // naming the layer).
  prof.phase("device query");
  try {
    graph_ = lower(net_, opt_.numerics, cuda_policy());
  } catch (const Error& e) {
    fail("compile", e.what());
  }
  prof.phase("lower");
  for (TensorId t = 0; t < TensorId(net_.tensors.size()); ++t)
    if (volume(net_.tensors[t].dims) >= (int64_t(1) << 31))
      fail("tensor '" + net_.tensors[t].name + "'", "2^31 elements or more: the kernels index with 32 bits");
  ptr_.assign(graph_.values.size(), nullptr);
  upload_constants();
  prof.phase("upload constants");
  bind_arena();
  lt_workspace_ = dalloc(lt_workspace_bytes_);
  fused_away_.assign(graph_.steps.size(), 0);
  if (copt_.real_fp16) relocate_residual_outputs();
  pad_narrow_codes();
  prof.phase("arena");
  for (const ExecStep& st : graph_.steps) {
    if (fused_away_[size_t(&st - graph_.steps.data())]) continue;
    where_ = "layer '" + net_.layers[st.layer].name + "'";
    const size_t chosen = tactics_.size();
    build_step(st);
    if (prof.on())  // (the label only when asked for)
      prof.step(where_ + " " + cur_kind_ + (tactics_.size() > chosen ? " [" + tactics_.back().tactic + "]" : ""));
  }
  cur_step_ = nullptr;
  where_ = "compile";
  scratch_ = dalloc(scratch_need_);
  validate_run();
  prof.phase("first run");
}

// What the CUDA backend fuses: a convolution with one activation (cuDNN's fused conv+bias+ReLU,
// or conv then one bias+activation kernel), and point-wise chains (CudaOptions::fuse_pointwise),
// in a convolution's epilogue when they read its output alone. ExecOptions::fuse off (and
// keep_all) fuses nothing. Emulated layers fuse as the CPU backend's do
// (fuse_emulated).
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
  // Emulated INT8/FP16 layers fuse into blocks rounded once at their output, as the CPU backend's
  // lowering fuses them (cpu_lower_policy; docs/quantization.md, "Fused blocks"), so that both
  // backends compute the same plan with the same rounding points (issue 13).
  // TANDEM_CUDA_EMULATED_FUSION=off: every emulated layer rounds on its own (the numerics before
  // 2026-12-01, which the CPU gives with TANDEM_CPU_EMULATED_FUSION=off).
  const char* emulated_fusion = std::getenv("TANDEM_CUDA_EMULATED_FUSION");
  p.fuse_emulated = !(emulated_fusion && std::string(emulated_fusion) == "off");
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
    // An INT8 convolution takes the FP16 activation after it into its epilogue and requantizes
    // once onto the activation's grid, as the CPU's lowering (cpu_lower_policy) does: the same
    // numerics, no activation step over codes. TANDEM_CUDA_INT8_CHAIN=off: the activation stays
    // a step (the CPU's TANDEM_CPU_INT8_CHAIN=off).
    const char* chain = std::getenv("TANDEM_CUDA_INT8_CHAIN");
    p.int8_conv_fp16_chain = p.fuse_emulated && !(chain && std::string(chain) == "off");
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
    if (bytes_of(t) == 0) {  // an empty tensor (docs/onnx-import.md, "Empty tensors"): nothing to copy
      ptr_[t] = p;
      continue;
    }
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
  // A real FP16 layer's constant operand is half, as TensorRT stores an FP16 layer's constants and
  // the emulation reads it (lower() hands native links the constant unrounded).
  const ValueId y = cur_step_ && !cur_step_->outputs.empty() ? cur_step_->outputs[0] : -1;
  const bool half_link = y >= 0 && graph_.values[size_t(y)].float_as_half() && !graph_.values[size_t(y)].half_of_int8() &&
                         precision_of(e.layers[0]) == Precision::kFP16;
  const float scalar = half_link ? __half2float(__float2half_rn(e.scalar)) : e.scalar;
  switch (e.operand) {
    case EpilogueOperand::kScalarRight: return {cuda::PwKind::kScalarRight, none, op, scalar, 0.f};
    case EpilogueOperand::kScalarLeft: return {cuda::PwKind::kScalarLeft, none, op, scalar, 0.f};
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
  const size_t k = size_t(&st - graph_.steps.data());
  if (ResidualJoin j; residual_join(k, &j, true)) return build_residual_join(j);
  if (PoolOverCodes f; maxpool_over_codes(k, &f)) return build_maxpool_over_codes(f);
  last_i8_conv_.reset();
  if (build_int8_codes_step(st, L)) return conv_join_i8(k);
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
    case LayerKind::kRoiAlign: case LayerKind::kNonZero: case LayerKind::kNMS:
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
    case LayerKind::kGridSample: case LayerKind::kRoiAlign: case LayerKind::kNonZero: case LayerKind::kNMS:
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
      const DataType rt = T[L.inputs[0]].type;  // fp32, or int32/int64 (ArgMax's indices)
      const bool integer = rt == DataType::kInt32 || rt == DataType::kInt64;
      if (!integer) require_float(L, L.inputs[0]);
      if (integer && T[out].type != rt) unsupported(L, "integer output type differs from the input's");
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
      if (integer) {
        void* yi = ptr_[out];
        const bool i64 = rt == DataType::kInt64;
        add_step(L.name, [=, this](cudaStream_t s) { cuda::reduce_int(op, i64, at(x), yi, skd, sks, srd, srs, s); });
        break;
      }
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
    case LayerKind::kNonZero: case LayerKind::kNMS:
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
    case LayerKind::kNonZero: case LayerKind::kNMS:
      break;  // built by build_layer or another group
  }
}

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

}  // namespace cuda_exec

using cuda_exec::CudaExecutorImpl;


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
