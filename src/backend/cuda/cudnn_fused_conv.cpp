// cuDNN graph (backend) API: one real FP16 convolution and its epilogue as one kernel
// (cudnn_fused_conv.h). The descriptors are cuDNN's C backend API (cudnn_graph.h); no frontend.
#include "backend/cuda/cudnn_fused_conv.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "backend/cuda/plan_cache.h"

namespace tandem {
namespace cuda_exec {

namespace {

// Tensor unique ids: the operands the caller binds, the constant slots, FP32 intermediates.
constexpr int64_t kUidX = 1, kUidW = 2, kUidY = 3, kUidConst0 = 100, kUidVirtual0 = 1000;
constexpr int64_t kUidJoinZ = 4, kUidJoinCodes = 5;  // FusedConvSpec::join's operands
constexpr int64_t kAlignment = 16;  // bytes: every bound pointer is at least 256-aligned

bool ok(cudnnStatus_t s) { return s == CUDNN_STATUS_SUCCESS; }

cudnnBackendDescriptor_t create(cudnnBackendDescriptorType_t type) {
  cudnnBackendDescriptor_t d = nullptr;
  return ok(cudnnBackendCreateDescriptor(type, &d)) ? d : nullptr;
}

// A scalar attribute of a point-wise descriptor: cuDNN documents them as double and float; try both.
bool set_scalar(cudnnBackendDescriptor_t d, cudnnBackendAttributeName_t name, double v) {
  if (ok(cudnnBackendSetAttribute(d, name, CUDNN_TYPE_DOUBLE, 1, &v))) return true;
  const float f = float(v);
  return ok(cudnnBackendSetAttribute(d, name, CUDNN_TYPE_FLOAT, 1, &f));
}

// cuDNN's binary point-wise mode for an element-wise op; false: none.
bool binary_mode(ElementWiseOp op, cudnnPointwiseMode_t* mode) {
  switch (op) {
    case ElementWiseOp::kSum: *mode = CUDNN_POINTWISE_ADD; return true;
    case ElementWiseOp::kProd: *mode = CUDNN_POINTWISE_MUL; return true;
    case ElementWiseOp::kMax: *mode = CUDNN_POINTWISE_MAX; return true;
    case ElementWiseOp::kMin: *mode = CUDNN_POINTWISE_MIN; return true;
    case ElementWiseOp::kSub: *mode = CUDNN_POINTWISE_SUB; return true;
    case ElementWiseOp::kDiv: *mode = CUDNN_POINTWISE_DIV; return true;
    case ElementWiseOp::kPow: *mode = CUDNN_POINTWISE_POW; return true;
    case ElementWiseOp::kFloorDiv: case ElementWiseOp::kAnd: case ElementWiseOp::kOr: case ElementWiseOp::kXor:
    case ElementWiseOp::kEqual: case ElementWiseOp::kGreater: case ElementWiseOp::kLess:
      return false;
  }
  return false;
}

bool commutative(ElementWiseOp op) {
  return op == ElementWiseOp::kSum || op == ElementWiseOp::kProd || op == ElementWiseOp::kMax ||
         op == ElementWiseOp::kMin;
}

// An engine configuration's knob choices as "type=value,..." (in cuDNN's order); false when
// cuDNN does not answer.
bool knob_choices(cudnnBackendDescriptor_t cfg, std::string* out) {
  std::vector<cudnnBackendDescriptor_t> knobs(CUDNN_KNOB_TYPE_COUNTS, nullptr);
  bool good = true;
  for (auto& k : knobs) good = good && (k = create(CUDNN_BACKEND_KNOB_CHOICE_DESCRIPTOR)) != nullptr;
  int64_t n = 0;
  good = good && ok(cudnnBackendGetAttribute(cfg, CUDNN_ATTR_ENGINECFG_KNOB_CHOICES, CUDNN_TYPE_BACKEND_DESCRIPTOR,
                                             int64_t(knobs.size()), &n, knobs.data())) &&
         n >= 0 && n <= int64_t(knobs.size());
  std::ostringstream s;
  for (int64_t i = 0; good && i < n; ++i) {
    cudnnBackendKnobType_t type = CUDNN_KNOB_TYPE_COUNTS;
    int64_t value = 0, got = 0;
    good = ok(cudnnBackendGetAttribute(knobs[size_t(i)], CUDNN_ATTR_KNOB_CHOICE_KNOB_TYPE, CUDNN_TYPE_KNOB_TYPE, 1, &got, &type)) &&
           ok(cudnnBackendGetAttribute(knobs[size_t(i)], CUDNN_ATTR_KNOB_CHOICE_KNOB_VALUE, CUDNN_TYPE_INT64, 1, &got, &value));
    s << (i ? "," : "") << int(type) << "=" << value;
  }
  for (auto k : knobs)
    if (k) cudnnBackendDestroyDescriptor(k);
  if (good) *out = s.str();
  return good;
}

// A finalized plan's JSON serialization (runtime-fusion engines only); empty when cuDNN gives none.
std::string plan_json(cudnnBackendDescriptor_t plan) {
  int64_t n = 0;
  if (!ok(cudnnBackendGetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_JSON_REPRESENTATION, CUDNN_TYPE_CHAR, 0, &n, nullptr)) ||
      n <= 0)
    return {};
  std::string json(size_t(n), '\0');
  int64_t got = 0;
  if (!ok(cudnnBackendGetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_JSON_REPRESENTATION, CUDNN_TYPE_CHAR, n, &got,
                                   json.data())) ||
      got <= 0 || got > n)
    return {};
  json.resize(size_t(got));
  return json;
}

// The global index of the engine a finalized plan runs; -1 when cuDNN does not say.
int64_t plan_engine(cudnnBackendDescriptor_t plan) {
  cudnnBackendDescriptor_t cfg = create(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR);
  cudnnBackendDescriptor_t engine = create(CUDNN_BACKEND_ENGINE_DESCRIPTOR);
  int64_t n = 0, index = -1;
  const bool good =
      cfg && engine &&
      ok(cudnnBackendGetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &n, &cfg)) &&
      ok(cudnnBackendGetAttribute(cfg, CUDNN_ATTR_ENGINECFG_ENGINE, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &n, &engine)) &&
      ok(cudnnBackendGetAttribute(engine, CUDNN_ATTR_ENGINE_GLOBAL_INDEX, CUDNN_TYPE_INT64, 1, &n, &index));
  if (engine) cudnnBackendDestroyDescriptor(engine);
  if (cfg) cudnnBackendDestroyDescriptor(cfg);
  return good ? index : -1;
}

// A plan restored from its JSON serialization on the handle's device (no NVRTC); null when cuDNN
// refuses it (another cuDNN or device: CUDNN_STATUS_SERIALIZATION_VERSION_MISMATCH; a damaged text).
cudnnBackendDescriptor_t plan_from_json(cudnnHandle_t handle, const std::string& json) {
  cudnnBackendDescriptor_t plan = create(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR);
  if (!plan) return nullptr;
  const bool good =
      ok(cudnnBackendSetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_JSON_REPRESENTATION, CUDNN_TYPE_CHAR,
                                  int64_t(json.size()), json.data())) &&
      ok(cudnnBackendSetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle)) &&
      ok(cudnnBackendFinalize(plan));
  if (good) return plan;
  cudnnBackendDestroyDescriptor(plan);
  return nullptr;
}

}  // namespace

namespace {
int mode_of(const char* variable) {
  const char* env = std::getenv(variable);
  if (!env) return -1;
  const std::string v(env);
  return v == "0" ? 0 : v == "1" ? 1 : -1;
}
}  // namespace

int graph_fusion_mode() { return mode_of("TANDEM_CUDA_GRAPH_FUSION"); }
int int8_graph_mode() { return mode_of("TANDEM_CUDA_INT8_GRAPH"); }
int int8_half_sums_mode() {
  const char* env = std::getenv("TANDEM_CUDA_INT8_HALF_SUMS");
  return env && std::string(env) == "all" ? 2 : mode_of("TANDEM_CUDA_INT8_HALF_SUMS");
}

CudnnFusedConv::Plans::~Plans() {
  for (cudnnBackendDescriptor_t d : plans) cudnnBackendDestroyDescriptor(d);
  if (graph) cudnnBackendDestroyDescriptor(graph);
  for (auto it = owned.rbegin(); it != owned.rend(); ++it) cudnnBackendDestroyDescriptor(*it);
}

void CudnnFusedConv::release_pack() {
  if (pack_) cudnnBackendDestroyDescriptor(pack_);
  pack_ = nullptr;
  pack_ptrs_.clear();
}

cudnnBackendDescriptor_t CudnnFusedConv::tensor(Plans& p, int64_t uid, cudnnDataType_t type, const int64_t dims[4],
                                                const int64_t strides[4], bool is_virtual) {
  cudnnBackendDescriptor_t t = create(CUDNN_BACKEND_TENSOR_DESCRIPTOR);
  if (!t) return nullptr;
  p.owned.push_back(t);
  const bool v = is_virtual;
  const bool good = ok(cudnnBackendSetAttribute(t, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &type)) &&
                    ok(cudnnBackendSetAttribute(t, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, dims)) &&
                    ok(cudnnBackendSetAttribute(t, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, strides)) &&
                    ok(cudnnBackendSetAttribute(t, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid)) &&
                    ok(cudnnBackendSetAttribute(t, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &kAlignment)) &&
                    ok(cudnnBackendSetAttribute(t, CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &v)) &&
                    ok(cudnnBackendFinalize(t));
  if (!good) return nullptr;
  values_.push_back({uid, t});
  return t;
}

cudnnBackendDescriptor_t CudnnFusedConv::value(int64_t uid) const {
  for (const auto& [u, t] : values_)
    if (u == uid) return t;
  return nullptr;
}

// A K-vector constant operand holding v in every channel (shared by equal scalars); its uid.
int64_t CudnnFusedConv::constant(float v, int64_t k) {
  for (size_t i = 0; i < constant_uids_.size(); ++i) {
    const float* slot = &constants_[size_t(constant_uids_[i] - kUidConst0) * size_t(stride_)];
    bool same = true;
    for (int64_t c = 0; c < k && same; ++c) same = slot[c] == v;
    if (same) return constant_uids_[i];
  }
  const int64_t uid = kUidConst0 + int64_t(constant_uids_.size());
  constants_.resize(constants_.size() + size_t(stride_), 0.f);
  std::fill(constants_.end() - stride_, constants_.end() - (stride_ - k), v);
  constant_uids_.push_back(uid);
  return uid;
}

// A K-vector constant operand holding per-channel values; its uid.
int64_t CudnnFusedConv::vector_constant(const std::vector<float>& values) {
  const int64_t uid = kUidConst0 + int64_t(constant_uids_.size());
  constants_.resize(constants_.size() + size_t(stride_), 0.f);
  std::copy(values.begin(), values.end(), constants_.end() - stride_);
  constant_uids_.push_back(uid);
  return uid;
}

int64_t CudnnFusedConv::virtual_value(cudnnDataType_t type) {
  const int64_t uid = kUidVirtual0 + next_virtual_++;
  if (type == CUDNN_DATA_HALF) half_virtuals_.push_back(uid);
  return uid;
}

// Records one point-wise op on values x (and b) into a new FP32 value y (assembled in build()).
void CudnnFusedConv::pointwise(cudnnPointwiseMode_t mode, int64_t x, int64_t b, int64_t y, double param) {
  pending_.push_back({mode, x, b, y, param});
}

// The chain as cuDNN point-wise ops on FP32 values (op_semantics.h's arithmetic); false: a link
// with no exact point-wise form.
bool CudnnFusedConv::add_chain(const FusedConvSpec& s, std::string* why) {
  int64_t v = kUidVirtual0;  // the convolution's FP32 output
  next_virtual_ = 1;
  auto step = [&](cudnnPointwiseMode_t mode, int64_t b, double p0 = 0) {
    const int64_t y = virtual_value();
    pointwise(mode, v, b, y, p0);
    v = y;
  };
  if (!s.alpha.empty()) step(CUDNN_POINTWISE_MUL, vector_constant(s.alpha));  // INT32 sums -> real values
  if (!s.bias.empty()) step(CUDNN_POINTWISE_ADD, vector_constant(s.bias));
  int64_t x0 = v;
  const cuda::PwChain& c = s.chain;
  for (int i = 0; i < c.n_ops; ++i) {
    if (i == c.x0_at) x0 = v;
    const cuda::PwOp& o = c.ops[i];
    switch (o.kind) {
      case cuda::PwKind::kActivation: {
        // SiLU (x * sigmoid(x), the chain's input times its sigmoid) is one op: SWISH_FWD.
        const cuda::PwOp* next = i + 1 < c.n_ops ? &c.ops[i + 1] : nullptr;
        const bool silu = o.act == ActivationType::kSigmoid && next && c.x0_at == i && next->op == ElementWiseOp::kProd &&
                          (next->kind == cuda::PwKind::kChainInputRight || next->kind == cuda::PwKind::kChainInputLeft);
        if (silu) {
          step(CUDNN_POINTWISE_SWISH_FWD, -1, 1.0);
          ++i;
          break;
        }
        switch (o.act) {
          case ActivationType::kRelu: step(CUDNN_POINTWISE_RELU_FWD, -1); break;
          case ActivationType::kSigmoid: step(CUDNN_POINTWISE_SIGMOID_FWD, -1); break;
          case ActivationType::kTanh: step(CUDNN_POINTWISE_TANH_FWD, -1); break;
          case ActivationType::kElu: step(CUDNN_POINTWISE_ELU_FWD, -1, o.a); break;
          case ActivationType::kGeluErf: step(CUDNN_POINTWISE_GELU_FWD, -1); break;
          case ActivationType::kGeluTanh: step(CUDNN_POINTWISE_GELU_APPROX_TANH_FWD, -1); break;
          case ActivationType::kClip:  // min(max(x, alpha), beta)
            step(CUDNN_POINTWISE_MAX, constant(o.a, s.k));
            step(CUDNN_POINTWISE_MIN, constant(o.b, s.k));
            break;
          case ActivationType::kHardSigmoid:  // max(0, min(1, alpha * x + beta))
            step(CUDNN_POINTWISE_MUL, constant(o.a, s.k));
            step(CUDNN_POINTWISE_ADD, constant(o.b, s.k));
            step(CUDNN_POINTWISE_MIN, constant(1.f, s.k));
            step(CUDNN_POINTWISE_MAX, constant(0.f, s.k));
            break;
          case ActivationType::kLeakyRelu: case ActivationType::kSelu: case ActivationType::kSoftplus:
          case ActivationType::kSoftsign: case ActivationType::kThresholdedRelu: case ActivationType::kScaledTanh:
            *why = "activation " + std::to_string(int(o.act)) + " has no exact cuDNN point-wise form here";
            return false;
        }
        break;
      }
      case cuda::PwKind::kScalarRight: case cuda::PwKind::kScalarLeft: {
        cudnnPointwiseMode_t mode;
        if (!binary_mode(o.op, &mode)) {
          *why = "element-wise op " + std::to_string(int(o.op)) + " has no cuDNN point-wise form";
          return false;
        }
        if (o.kind == cuda::PwKind::kScalarLeft && !commutative(o.op)) {
          if (o.op != ElementWiseOp::kSub) {
            *why = "a scalar on the left of a non-commutative op";
            return false;
          }
          step(CUDNN_POINTWISE_NEG, -1);  // a - v == (-v) + a exactly
          mode = CUDNN_POINTWISE_ADD;
        }
        step(mode, constant(o.a, s.k));
        break;
      }
      case cuda::PwKind::kChainInputRight: case cuda::PwKind::kChainInputLeft: {
        cudnnPointwiseMode_t mode;
        if (!binary_mode(o.op, &mode)) {
          *why = "element-wise op " + std::to_string(int(o.op)) + " has no cuDNN point-wise form";
          return false;
        }
        const int64_t y = virtual_value();
        if (o.kind == cuda::PwKind::kChainInputRight) pointwise(mode, v, x0, y);
        else pointwise(mode, x0, v, y);
        v = y;
        break;
      }
    }
  }
  add_requantize(s, &v);
  if (s.join.on) {
    if (s.data != FusedConvData::kInt8ToHalf) {
      *why = "a residual join needs the convolution's half value on its grid";
      return false;
    }
    add_join(s, v);
    return true;
  }
  if (pending_.empty()) step(CUDNN_POINTWISE_IDENTITY, -1);
  pending_.back().y = kUidY;  // the last op writes the output: the one rounding (or exact: a code)
  return true;
}

// INT8 outputs: v's code on the grid of y_scale, clamp(rne(v / y_scale), -128, 127), as an FP32
// value that is an integer (then the store to int8 is exact whatever cuDNN's conversion rounds
// like), or that code times y_scale (kInt8ToHalf; the store rounds it to half, as the epilogue
// kernel's __float2half_rn(q * y_scale)). rne: clamped first (the bounds are integers, so the
// order does not matter), then t + 1.5 * 2^23 - 1.5 * 2^23: FP32 addition rounds half to even, and
// every t in [-128, 127] lands in [2^23, 2^24), where the FP32 grid is the integers.
void CudnnFusedConv::add_requantize(const FusedConvSpec& s, int64_t* v) {
  auto step = [&](cudnnPointwiseMode_t mode, int64_t b) {
    const int64_t y = virtual_value();
    pointwise(mode, *v, b, y);
    *v = y;
  };
  constexpr float kRoundingShift = 12582912.f;  // 1.5 * 2^23
  switch (s.data) {
    case FusedConvData::kHalf: return;
    case FusedConvData::kInt8Codes: case FusedConvData::kInt8ToHalf:
      step(CUDNN_POINTWISE_DIV, constant(s.y_scale, s.k));
      step(CUDNN_POINTWISE_MAX, constant(-128.f, s.k));
      step(CUDNN_POINTWISE_MIN, constant(127.f, s.k));
      step(CUDNN_POINTWISE_ADD, constant(kRoundingShift, s.k));
      step(CUDNN_POINTWISE_SUB, constant(kRoundingShift, s.k));
      if (s.data == FusedConvData::kInt8ToHalf) step(CUDNN_POINTWISE_MUL, constant(s.y_scale, s.k));
      return;
  }
}

// The residual join after v = q * y_scale (add_requantize's last value): a = half(v), the sum
// half(a + z), y = half(act(sum)) written to Y and, with join.codes, y's codes (add_requantize's
// arithmetic on the grid of codes_scale) to the codes operand. Each half(.) is a virtual half
// tensor: the graph's way to say "rounded to half here".
void CudnnFusedConv::add_join(const FusedConvSpec& s, int64_t v) {
  half_virtuals_.push_back(v);
  const int64_t sum = virtual_value(CUDNN_DATA_HALF);
  pointwise(CUDNN_POINTWISE_ADD, v, kUidJoinZ, sum);
  int64_t y = sum;
  if (s.join.relu) {
    y = virtual_value(CUDNN_DATA_HALF);
    pointwise(CUDNN_POINTWISE_RELU_FWD, sum, -1, y);
  }
  pointwise(CUDNN_POINTWISE_IDENTITY, y, -1, kUidY);
  if (!s.join.codes) return;
  FusedConvSpec codes = s;
  codes.data = FusedConvData::kInt8Codes, codes.y_scale = s.join.codes_scale;
  add_requantize(codes, &y);
  pending_.back().y = kUidJoinCodes;
}

bool CudnnFusedConv::prepare(const FusedConvSpec& s, std::string* why) {
  spec_ = s;
  stride_ = (s.k + 63) / 64 * 64;  // each constant slot 256-byte aligned
  if (!add_chain(s, why)) return false;
  std::ostringstream sig;
  sig << "data=" << int(s.data) << "|x=" << s.n << "x" << s.c << "x" << s.h << "x" << s.w << "|k=" << s.k << "x" << s.oh << "x" << s.ow
      << "|g=" << s.groups << "|r=" << s.kernel[0] << "x" << s.kernel[1] << "|s=" << s.stride[0] << "x" << s.stride[1]
      << "|p=" << s.pad[0] << "x" << s.pad[1] << "|d=" << s.dilation[0] << "x" << s.dilation[1]
      << "|consts=" << constant_uids_.size() << (s.half_sums ? "|half_sums" : "");
  if (s.join.on) {
    sig << "|join" << (s.join.relu ? ",relu" : "") << (s.join.codes ? ",codes" : "") << "|half";
    for (int64_t v : half_virtuals_) sig << ":" << v;
  }
  sig << "|ops";
  // The parameters (ELU alpha, swish beta) are attributes of the graph: exact (hexadecimal), so
  // that graphs differing in them never share plans.
  for (const Op& o : pending_) sig << ":" << int(o.mode) << "," << o.x << "," << o.b << "," << o.y << "," << std::hexfloat << o.param << std::defaultfloat;
  signature_ = sig.str();
  return true;
}

// The tensors, the convolution and point-wise operations and the operation graph, owned by p.
bool CudnnFusedConv::build_graph(Plans& p, std::string* why) {
  const FusedConvSpec& s = spec_;
  values_.clear();
  const int64_t cg = s.c / s.groups;
  const int64_t xd[4] = {s.n, s.c, s.h, s.w}, xs[4] = {s.h * s.w * s.c, 1, s.w * s.c, s.c};
  const int64_t wd[4] = {s.k, cg, s.kernel[0], s.kernel[1]},
                ws[4] = {s.kernel[0] * s.kernel[1] * cg, 1, s.kernel[1] * cg, cg};
  const int64_t yd[4] = {s.n, s.k, s.oh, s.ow}, ys[4] = {s.oh * s.ow * s.k, 1, s.ow * s.k, s.k};
  const int64_t kd[4] = {1, s.k, 1, 1}, ks[4] = {s.k, 1, s.k, s.k};
  const bool int8 = s.data != FusedConvData::kHalf, int_sums = int8 && !s.half_sums;
  const cudnnDataType_t in_type = int_sums ? CUDNN_DATA_INT8 : CUDNN_DATA_HALF;
  const cudnnDataType_t out_type = s.data == FusedConvData::kInt8Codes ? CUDNN_DATA_INT8 : CUDNN_DATA_HALF;
  bool good = tensor(p, kUidX, in_type, xd, xs, false) && tensor(p, kUidW, in_type, wd, ws, false) &&
              tensor(p, kUidY, out_type, yd, ys, false);
  if (s.join.on) good = good && tensor(p, kUidJoinZ, CUDNN_DATA_HALF, yd, ys, false);
  if (s.join.on && s.join.codes) good = good && tensor(p, kUidJoinCodes, CUDNN_DATA_INT8, yd, ys, false);
  for (int64_t uid : constant_uids_) good = good && tensor(p, uid, CUDNN_DATA_FLOAT, kd, ks, false);
  for (int64_t v = kUidVirtual0; v < kUidVirtual0 + next_virtual_; ++v) {
    bool used = v == kUidVirtual0;  // the convolution's output; then those the ops read or write
    for (const Op& o : pending_) used = used || o.x == v || o.b == v || o.y == v;
    // INT8: the integer sums as INT32 (cuDNN's int8 fusion samples), or FP32 where that is refused
    const bool int32_acc = v == kUidVirtual0 && int_sums && int32_sums_;
    const bool half = std::find(half_virtuals_.begin(), half_virtuals_.end(), v) != half_virtuals_.end();
    const cudnnDataType_t type = int32_acc ? CUDNN_DATA_INT32 : half ? CUDNN_DATA_HALF : CUDNN_DATA_FLOAT;
    if (used) good = good && tensor(p, v, type, yd, ys, true);
  }
  if (!good) {
    *why = "cuDNN refused a tensor descriptor";
    return false;
  }
  // The convolution: cross-correlation, FP32 compute (INT8: INT32, exact integer sums; INT8 with
  // half_sums: FP32, exact integers below 2^24); symmetric padding (the executor's geometry).
  cudnnBackendDescriptor_t conv = create(CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR);
  if (conv) p.owned.push_back(conv);
  const cudnnDataType_t f32 = CUDNN_DATA_FLOAT, compute = int_sums ? CUDNN_DATA_INT32 : CUDNN_DATA_FLOAT;
  const cudnnConvolutionMode_t cross = CUDNN_CROSS_CORRELATION;
  const int64_t dims = 2;
  good = conv && ok(cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &compute)) &&
         ok(cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_CONV_MODE, CUDNN_TYPE_CONVOLUTION_MODE, 1, &cross)) &&
         ok(cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, CUDNN_TYPE_INT64, 1, &dims)) &&
         ok(cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_DILATIONS, CUDNN_TYPE_INT64, 2, s.dilation)) &&
         ok(cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, CUDNN_TYPE_INT64, 2, s.stride)) &&
         ok(cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, CUDNN_TYPE_INT64, 2, s.pad)) &&
         ok(cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, CUDNN_TYPE_INT64, 2, s.pad)) &&
         ok(cudnnBackendFinalize(conv));
  cudnnBackendDescriptor_t fprop = create(CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR);
  if (fprop) p.owned.push_back(fprop);
  const float alpha = 1.f, beta = 0.f;
  cudnnBackendDescriptor_t x = value(kUidX), w = value(kUidW), acc = value(kUidVirtual0);
  good = good && fprop &&
         ok(cudnnBackendSetAttribute(fprop, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x)) &&
         ok(cudnnBackendSetAttribute(fprop, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &w)) &&
         ok(cudnnBackendSetAttribute(fprop, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &acc)) &&
         ok(cudnnBackendSetAttribute(fprop, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &conv)) &&
         ok(cudnnBackendSetAttribute(fprop, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA, CUDNN_TYPE_FLOAT, 1, &alpha)) &&
         ok(cudnnBackendSetAttribute(fprop, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA, CUDNN_TYPE_FLOAT, 1, &beta)) &&
         ok(cudnnBackendFinalize(fprop));
  if (!good) {
    *why = "cuDNN refused the convolution operation";
    return false;
  }
  std::vector<cudnnBackendDescriptor_t> ops = {fprop};
  for (const Op& o : pending_) {
    cudnnBackendDescriptor_t pw = create(CUDNN_BACKEND_POINTWISE_DESCRIPTOR);
    if (pw) p.owned.push_back(pw);
    good = pw && ok(cudnnBackendSetAttribute(pw, CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &o.mode)) &&
           ok(cudnnBackendSetAttribute(pw, CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, 1, &f32));
    if (good && o.mode == CUDNN_POINTWISE_ELU_FWD) good = set_scalar(pw, CUDNN_ATTR_POINTWISE_ELU_ALPHA, o.param);
    if (good && o.mode == CUDNN_POINTWISE_SWISH_FWD) good = set_scalar(pw, CUDNN_ATTR_POINTWISE_SWISH_BETA, o.param);
    good = good && ok(cudnnBackendFinalize(pw));
    cudnnBackendDescriptor_t op = good ? create(CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR) : nullptr;
    if (op) p.owned.push_back(op);
    cudnnBackendDescriptor_t tx = value(o.x), tb = o.b >= 0 ? value(o.b) : nullptr, ty = value(o.y);
    good = op && tx && ty && (o.b < 0 || tb) &&
           ok(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &pw)) &&
           ok(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_POINTWISE_XDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &tx)) &&
           (!tb || ok(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_POINTWISE_BDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &tb))) &&
           ok(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_POINTWISE_YDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &ty)) &&
           ok(cudnnBackendFinalize(op));
    if (!good) {
      *why = "cuDNN refused point-wise mode " + std::to_string(int(o.mode));
      return false;
    }
    ops.push_back(op);
  }
  p.graph = create(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
  good = p.graph &&
         ok(cudnnBackendSetAttribute(p.graph, CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR,
                                     int64_t(ops.size()), ops.data())) &&
         ok(cudnnBackendSetAttribute(p.graph, CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &p.handle));
  const cudnnStatus_t fin = good ? cudnnBackendFinalize(p.graph) : CUDNN_STATUS_BAD_PARAM;
  if (!ok(fin)) {
    *why = std::string("cuDNN refused the operation graph: ") + cudnnGetErrorString(fin);
    return false;
  }
  return true;
}

// The heuristics' engine configurations of one mode, finalized into plans until max_plans.
bool CudnnFusedConv::try_plans(Plans& p, cudnnBackendHeurMode_t mode, int max_plans, size_t max_workspace,
                               std::string* why) {
  cudnnBackendDescriptor_t heur = create(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
  if (!heur) return false;
  int64_t count = 0;
  bool good = ok(cudnnBackendSetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &p.graph)) &&
              ok(cudnnBackendSetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode)) &&
              ok(cudnnBackendFinalize(heur)) &&
              ok(cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &count, nullptr));
  std::vector<cudnnBackendDescriptor_t> cfgs;
  for (int64_t i = 0; good && i < count; ++i) {
    cfgs.push_back(create(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR));
    good = cfgs.back() != nullptr;
  }
  int64_t got = 0;
  good = good && count > 0 &&
         ok(cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, count, &got, cfgs.data()));
  int tried = 0, refused = 0, reduced = 0, too_big = 0;
  for (int64_t i = 0; good && i < got && int(p.plans.size()) < max_plans; ++i) {
    ++tried;
    cudnnBackendDescriptor_t engine = create(CUDNN_BACKEND_ENGINE_DESCRIPTOR);
    int64_t n = 0, index = -1;
    cudnnBackendNumericalNote_t notes[CUDNN_NUMERICAL_NOTE_TYPE_COUNT];
    cudnnBackendBehaviorNote_t behavior[CUDNN_BEHAVIOR_NOTE_TYPE_COUNT];
    int64_t n_notes = 0, n_behavior = 0;
    const bool described =
        engine && ok(cudnnBackendGetAttribute(cfgs[size_t(i)], CUDNN_ATTR_ENGINECFG_ENGINE, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &n, &engine)) &&
        ok(cudnnBackendGetAttribute(engine, CUDNN_ATTR_ENGINE_GLOBAL_INDEX, CUDNN_TYPE_INT64, 1, &n, &index)) &&
        ok(cudnnBackendGetAttribute(engine, CUDNN_ATTR_ENGINE_NUMERICAL_NOTE, CUDNN_TYPE_NUMERICAL_NOTE,
                                    CUDNN_NUMERICAL_NOTE_TYPE_COUNT, &n_notes, notes));
    if (described && !ok(cudnnBackendGetAttribute(engine, CUDNN_ATTR_ENGINE_BEHAVIOR_NOTE, CUDNN_TYPE_BEHAVIOR_NOTE,
                                                  CUDNN_BEHAVIOR_NOTE_TYPE_COUNT, &n_behavior, behavior)))
      n_behavior = 0;
    if (engine) cudnnBackendDestroyDescriptor(engine);
    // Half sums or half-converted inputs would round inside the convolution: not the one rounding.
    bool lossy = !described;
    for (int64_t k = 0; k < n_notes; ++k)
      lossy = lossy || notes[k] == CUDNN_NUMERICAL_NOTE_REDUCED_PRECISION_REDUCTION ||
              notes[k] == CUDNN_NUMERICAL_NOTE_DOWN_CONVERT_INPUTS;
    // INT8: the integer sums must be exact (no FFT or Winograd transforms in floating point).
    for (int64_t k = 0; k < n_notes && spec_.data != FusedConvData::kHalf; ++k)
      lossy = lossy || notes[k] == CUDNN_NUMERICAL_NOTE_FFT || notes[k] == CUDNN_NUMERICAL_NOTE_WINOGRAD ||
              notes[k] == CUDNN_NUMERICAL_NOTE_WINOGRAD_TILE_4x4 || notes[k] == CUDNN_NUMERICAL_NOTE_WINOGRAD_TILE_6x6 ||
              notes[k] == CUDNN_NUMERICAL_NOTE_WINOGRAD_TILE_13x13;
    if (lossy) {
      ++reduced;
      continue;
    }
    bool runtime_compiled = false, tensor_core = false;
    for (int64_t k = 0; k < n_notes; ++k) tensor_core = tensor_core || notes[k] == CUDNN_NUMERICAL_NOTE_TENSOR_CORE;
    for (int64_t k = 0; k < n_behavior; ++k) runtime_compiled = runtime_compiled || behavior[k] == CUDNN_BEHAVIOR_NOTE_RUNTIME_COMPILATION;
    cudnnBackendDescriptor_t plan = finalize_plan(p, cfgs[size_t(i)], index, runtime_compiled);
    int64_t ws = 0;
    const bool finalized =
        plan && ok(cudnnBackendGetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64, 1, &n, &ws));
    if (!finalized || size_t(ws) > max_workspace) {
      ++(finalized ? too_big : refused);
      if (plan) cudnnBackendDestroyDescriptor(plan);
      continue;
    }
    p.plans.push_back(plan);
    p.infos.push_back({index, size_t(ws), runtime_compiled, tensor_core});
  }
  for (cudnnBackendDescriptor_t c : cfgs)
    if (c) cudnnBackendDestroyDescriptor(c);
  cudnnBackendDestroyDescriptor(heur);
  if (p.plans.empty())
    *why += std::string(why->empty() ? "" : "; ") + (mode == CUDNN_HEUR_MODE_A ? "heuristics A" : "fallback") + ": " +
            std::to_string(count) + " configurations, " + std::to_string(tried) + " tried, " +
            std::to_string(refused) + " not finalized, " + std::to_string(reduced) + " reduced precision, " +
            std::to_string(too_big) + " over the workspace cap";
  return !p.plans.empty();
}

// One engine configuration finalized into a plan (null: cuDNN refused it). A runtime-compiled
// engine's plan goes through the plan cache (plan_cache_): restored from its JSON when an entry
// of its key (the device folder, signature(), the sums' type, the engine and its knob choices)
// exists and cuDNN accepts it for that engine; else finalized (NVRTC compiles its kernel) and
// its JSON written for the next compile. A configuration whose knobs cuDNN does not report is
// finalized and not cached.
cudnnBackendDescriptor_t CudnnFusedConv::finalize_plan(Plans& p, cudnnBackendDescriptor_t cfg, int64_t engine,
                                                       bool runtime_compiled) {
  std::string key, path, knobs;
  if (runtime_compiled && !plan_cache_.empty() && knob_choices(cfg, &knobs)) {
    key = std::filesystem::path(plan_cache_).filename().string() + "|" + signature_ +
          "|sums=" + (spec_.data == FusedConvData::kHalf || spec_.half_sums ? "fp32" : int32_sums_ ? "int32" : "fp32") +
          "|engine=" + std::to_string(engine) + "|knobs=" + knobs;
    path = plan_cache_path(plan_cache_, key);
    std::string json;
    const PlanEntry entry = read_plan_entry(path, key, &json);
    if (entry == PlanEntry::kFound) {
      cudnnBackendDescriptor_t plan = plan_from_json(p.handle, json);
      if (plan && plan_engine(plan) == engine) {
        count_plan_cache(PlanCacheEvent::kHit);
        return plan;
      }
      if (plan) cudnnBackendDestroyDescriptor(plan);
    }
    if (entry != PlanEntry::kAbsent) count_plan_cache(PlanCacheEvent::kRejected);
    count_plan_cache(PlanCacheEvent::kMiss);
  }
  cudnnBackendDescriptor_t plan = create(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR);
  const bool finalized =
      plan && ok(cudnnBackendSetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &p.handle)) &&
      ok(cudnnBackendSetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &cfg)) &&
      ok(cudnnBackendFinalize(plan));
  if (!finalized) {
    if (plan) cudnnBackendDestroyDescriptor(plan);
    return nullptr;
  }
  if (!path.empty() && write_plan_entry(path, key, plan_json(plan))) count_plan_cache(PlanCacheEvent::kStore);
  return plan;
}

int CudnnFusedConv::make_plans(cudnnHandle_t handle, int max_plans, size_t max_workspace, std::string* why,
                               const std::string& plan_cache) {
  plan_cache_ = plan_cache;
  auto attempt = [&] {
    auto p = std::make_shared<Plans>();
    p->handle = handle;
    if (!build_graph(*p, why)) return false;
    if (!try_plans(*p, CUDNN_HEUR_MODE_A, max_plans, max_workspace, why))
      try_plans(*p, CUDNN_HEUR_MODE_FALLBACK, max_plans, max_workspace, why);
    if (!p->plans.empty()) plans_ = p;
    return !p->plans.empty();
  };
  int32_sums_ = true;
  if (!attempt() && spec_.data != FusedConvData::kHalf && !spec_.half_sums) {
    *why += " (INT32 sums); with FP32 sums: ";
    int32_sums_ = false;
    attempt();
  }
  return plans();
}

cudnnStatus_t CudnnFusedConv::run(int i, const void* x, const void* w, void* y, const float* consts,
                                  void* workspace) {
  std::vector<int64_t> uids = {kUidX, kUidW, kUidY};
  std::vector<void*> ptrs = {const_cast<void*>(x), const_cast<void*>(w), y};
  if (spec_.join.on) uids.push_back(kUidJoinZ), ptrs.push_back(const_cast<void*>(join_z_));
  if (spec_.join.on && spec_.join.codes) uids.push_back(kUidJoinCodes), ptrs.push_back(join_codes_);
  for (int64_t uid : constant_uids_) {
    uids.push_back(uid);
    ptrs.push_back(const_cast<float*>(consts) + (uid - kUidConst0) * stride_);
  }
  ptrs.push_back(workspace);  // (the key of the cached pack only)
  if (!pack_ || ptrs != pack_ptrs_) {
    release_pack();
    pack_ = create(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
    if (!pack_) return CUDNN_STATUS_ALLOC_FAILED;
    const cudnnStatus_t st = [&] {
      cudnnStatus_t s = cudnnBackendSetAttribute(pack_, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64,
                                                 int64_t(uids.size()), uids.data());
      if (ok(s)) s = cudnnBackendSetAttribute(pack_, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR,
                                              int64_t(uids.size()), ptrs.data());
      if (ok(s)) s = cudnnBackendSetAttribute(pack_, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &workspace);
      if (ok(s)) s = cudnnBackendFinalize(pack_);
      return s;
    }();
    if (!ok(st)) {
      release_pack();
      return st;
    }
    pack_ptrs_ = ptrs;
  }
  return cudnnBackendExecute(plans_->handle, plans_->plans[size_t(i)], pack_);
}

}  // namespace cuda_exec
}  // namespace tandem
