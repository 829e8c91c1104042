// Real INT8 convolutions: int8 codes, exact integer sums, tandem's own requantization.
//
// The input lies on its per-tensor INT8 grid (the lowering rounded it), so its codes
// q = rne(x / s) are exact; the weights are the per-output-channel codes of tandem/numerics.h.
// The sum over the kernel window of q * w is computed exactly, in one of two ways that give the
// same integers:
//   - kVnni: oneDNN's s8 x s8 -> s32 convolution on a CPU whose effective oneDNN ISA has VNNI
//     (vpdpbusd adds four u8 x s8 products into int32 with no intermediate saturation). Without
//     VNNI oneDNN sums pairs in int16 (vpmaddubsw), which saturates, and halves s8 weights: not
//     exact, so never used there.
//   - kFp32: oneDNN's FP32 convolution over the codes as floats. Every partial sum is an integer
//     of magnitude <= 128 * sum_i |w[k][i]|; while that is <= 2^24 every float sum is exact, in
//     any order, on any ISA.
// A layer runs for real only where that bound holds (int8_conv_exact), whichever way is used, so
// that the choice of layers, and with it every result, is the same on every x86-64. Then
// y = post_ops(float(acc) * alpha[k] + bias[k]) (alpha = s_in * s_w[k] * folded Scale factor),
// compiled with -ffp-contract=off (CMakeLists.txt), so it rounds the same on every ISA.
#include <omp.h>
#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>

#include "kernels.h"
#include "tandem/op_semantics.h"

namespace tandem::cpu {

namespace {

using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

dnnl::engine& int8_engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

// Where element (n, c, pixel p) of a [N, C, P] tensor lies in the layout of block code `block`.
struct LayoutIndex {
  int64_t C, P;
  int block;
  int64_t operator()(int64_t n, int64_t c, int64_t p) const {
    if (block == kNhwcBlock) return (n * P + p) * C + c;
    if (block == 8 || block == 16) return ((n * (C / block) + c / block) * P + p) * block + c % block;
    return (n * C + c) * P + p;
  }
};

bool cpu_has_vnni() {
  const unsigned isa = unsigned(dnnl::get_effective_cpu_isa());
  // VNNI bits of oneDNN's ISA masks (dnnl_types.h): avx512_core_vnni 0x40 (and everything above
  // it: bf16, amx), avx2_vnni 0x400.
  return (isa & 0x40u) != 0 || (isa & 0x400u) != 0;
}

// Post-ops over one row of values, in tandem's own float arithmetic.
void apply_post_ops(const std::vector<PostOp>& post_ops, float* v, int64_t n) {
  for (const PostOp& p : post_ops) {
    if (p.kind == PostOp::kHardSwish) {
      for (int64_t i = 0; i < n; ++i)
        v[i] = ops::elementwise(ElementWiseOp::kProd, v[i],
                                ops::activation(ActivationType::kHardSigmoid, v[i], 1.f / 6.f, 0.5f));
      continue;
    }
    const ActivationParams& a = p.act;
    switch (a.type) {
      case ActivationType::kRelu:
        for (int64_t i = 0; i < n; ++i) v[i] = ops::activation(ActivationType::kRelu, v[i], 0.f, 0.f);
        break;
      case ActivationType::kClip:
        for (int64_t i = 0; i < n; ++i) v[i] = ops::activation(ActivationType::kClip, v[i], a.alpha, a.beta);
        break;
      case ActivationType::kLeakyRelu: case ActivationType::kHardSigmoid: case ActivationType::kSigmoid:
      case ActivationType::kTanh: case ActivationType::kElu: case ActivationType::kSelu:
      case ActivationType::kSoftplus: case ActivationType::kSoftsign: case ActivationType::kGeluErf:
      case ActivationType::kGeluTanh: case ActivationType::kThresholdedRelu: case ActivationType::kScaledTanh:
        for (int64_t i = 0; i < n; ++i) v[i] = apply_activation(a, v[i]);
        break;
    }
  }
}

// The primitive computing the integer sums: s8 codes -> s32 (kVnni) or integer-valued f32 ->
// f32 (kFp32), both NHWC, weights in oneDNN's preferred layout, no bias, no scales, no post-ops.
struct SumPrimitive {
  dnnl::convolution_forward prim;
  dnnl::memory src, wei, dst;
};

SumPrimitive make_sum_primitive(const ConvSpec& s, Int8ConvPath path) {
  const auto& p = s.layer->as<ConvolutionParams>();
  const Dims& id = s.in_dims;
  const Dims& od = s.out_dims;
  const int64_t g = std::max<int64_t>(1, p.groups), K = od[1], C = id[1];
  const dt act = path == Int8ConvPath::kVnni ? dt::s8 : dt::f32;
  const dt acc = path == Int8ConvPath::kVnni ? dt::s32 : dt::f32;
  dnnl::memory::dims strides, dil, pl, pr;
  for (size_t i = 0; i < 2; ++i) {
    const int64_t st = p.stride.empty() ? 1 : p.stride[i], d = p.dilation.empty() ? 1 : p.dilation[i];
    const int64_t a = p.pre_padding.empty() ? 0 : p.pre_padding[i], ek = (p.kernel[i] - 1) * d + 1;
    strides.push_back(st);
    dil.push_back(d - 1);
    pl.push_back(a);
    pr.push_back((od[2 + i] - 1) * st + ek - id[2 + i] - a);
  }
  dnnl::memory::desc src_md({id[0], C, id[2], id[3]}, act, tag::nhwc);
  dnnl::memory::desc dst_md({od[0], K, od[2], od[3]}, acc, tag::nhwc);
  const dnnl::memory::dims wd = g > 1 ? dnnl::memory::dims{g, K / g, C / g, p.kernel[0], p.kernel[1]}
                                      : dnnl::memory::dims{K, C, p.kernel[0], p.kernel[1]};
  dnnl::memory::desc w_user_md(wd, act, g > 1 ? tag::goihw : tag::oihw);
  dnnl::memory::desc w_any_md(wd, act, tag::any);
  dnnl::convolution_forward::primitive_desc pd(
      dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, src_md,
                                      w_any_md, dst_md, strides, dil, pl, pr),
      int8_engine());
  auto& eng = int8_engine();
  SumPrimitive r{dnnl::convolution_forward(pd), dnnl::memory(src_md, eng, nullptr), dnnl::memory(pd.weights_desc(), eng),
                 dnnl::memory(dst_md, eng, nullptr)};
  // The weights reorder once into the primitive's layout (oneDNN adds its s8 compensation there).
  dnnl::stream st(eng);
  if (path == Int8ConvPath::kVnni) {
    std::vector<int8_t> codes(s.kernel_codes);
    dnnl::memory user(w_user_md, eng, codes.data());
    dnnl::reorder(user, r.wei).execute(st, user, r.wei);
  } else {
    std::vector<float> codes(s.kernel_codes.begin(), s.kernel_codes.end());
    dnnl::memory user(w_user_md, eng, codes.data());
    dnnl::reorder(user, r.wei).execute(st, user, r.wei);
  }
  st.wait();
  return r;
}

// The hot loops are cloned per instruction set (AVX-512, AVX2, baseline; GCC picks at load time),
// as kernels_chain.cpp's: IEEE multiplies, adds and int -> float conversions round the same at
// every width, and no FMA contraction happens (CMakeLists.txt), so every clone gives the same bits.
#if defined(__clang__)
#define TANDEM_INT8_CLONES
#else
#define TANDEM_INT8_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#endif

// q = rne(x * (1 / scale)) over n values on the grid of `scale` (x = fl(q * scale), |q| <= 128):
// x * fl(1 / scale) is within 3 * 128 * 2^-24 of q, far from a rounding midpoint, so this is
// exactly quantize_int8's rne(x / scale) there, at a multiply's cost. Clamped to [-128, 127]
// first (the bounds are integers: the same as clamping after rounding), then rounded half to
// even by adding and subtracting 1.5 * 2^23 (exact for |r| <= 2^22 in the default rounding mode).
TANDEM_INT8_CLONES
void codes_s8(const float* x, int8_t* q, int64_t n, float inv_scale) {
  constexpr float kRoundMagic = 12582912.f;
  for (int64_t i = 0; i < n; ++i) {
    const float r = std::min(127.f, std::max(-128.f, x[i] * inv_scale));
    q[i] = int8_t(int32_t((r + kRoundMagic) - kRoundMagic));
  }
}
TANDEM_INT8_CLONES
void codes_f32(const float* x, float* q, int64_t n, float inv_scale) {
  constexpr float kRoundMagic = 12582912.f;
  for (int64_t i = 0; i < n; ++i) {
    const float r = std::min(127.f, std::max(-128.f, x[i] * inv_scale));
    q[i] = (r + kRoundMagic) - kRoundMagic;
  }
}
void codes(const float* x, int8_t* q, int64_t n, float inv_scale) { codes_s8(x, q, n, inv_scale); }
void codes(const float* x, float* q, int64_t n, float inv_scale) { codes_f32(x, q, n, inv_scale); }

// v[j][k] = float(acc[j][k]) * alpha[k] (+ bias[k]) for np pixels of K channels.
TANDEM_INT8_CLONES
void dequantize_s32(const int32_t* acc, float* v, int64_t np, int64_t K, const float* alpha, const float* bias) {
  for (int64_t j = 0; j < np; ++j) {
    const int32_t* a = acc + j * K;
    float* row = v + j * K;
    for (int64_t k = 0; k < K; ++k) row[k] = float(a[k]) * alpha[k];
    if (bias)
      for (int64_t k = 0; k < K; ++k) row[k] = row[k] + bias[k];
  }
}
TANDEM_INT8_CLONES
void dequantize_f32(const float* acc, float* v, int64_t np, int64_t K, const float* alpha, const float* bias) {
  for (int64_t j = 0; j < np; ++j) {
    const float* a = acc + j * K;
    float* row = v + j * K;
    for (int64_t k = 0; k < K; ++k) row[k] = a[k] * alpha[k];
    if (bias)
      for (int64_t k = 0; k < K; ++k) row[k] = row[k] + bias[k];
  }
}
void dequantize(const int32_t* acc, float* v, int64_t np, int64_t K, const float* alpha, const float* bias) {
  dequantize_s32(acc, v, np, K, alpha, bias);
}
void dequantize(const float* acc, float* v, int64_t np, int64_t K, const float* alpha, const float* bias) {
  dequantize_f32(acc, v, np, K, alpha, bias);
}

constexpr int64_t kRun = 64;  // pixels per run of a non-NHWC layout

// The common epilogue in one pass: y = fake_quant_int8(float(acc) * alpha[k] (+ bias[k]), s_out)
// (no post-ops, the chain only the step's output rounding). Clamping before the rounding equals
// fake_quant_int8's clamp after it for every finite value (the bounds are integers), and the
// magic-number rounding is its nearbyint there (with the sign of r, so that -0.3 gives -0 as
// nearbyint does).
template <class Acc>
inline void dequantize_round_body(const Acc* acc, float* v, int64_t n_vals, int64_t K, const float* alpha,
                                  const float* bias, float out_scale) {
  constexpr float kRoundMagic = 12582912.f;
  for (int64_t j = 0; j < n_vals; j += K) {
    const Acc* a = acc + j;
    float* row = v + j;
    if (bias)
      for (int64_t k = 0; k < K; ++k) {
        const float t = float(a[k]) * alpha[k] + bias[k];
        const float r = std::min(127.f, std::max(-128.f, t / out_scale));
        row[k] = std::copysign((r + kRoundMagic) - kRoundMagic, r) * out_scale;
      }
    else
      for (int64_t k = 0; k < K; ++k) {
        const float t = float(a[k]) * alpha[k];
        const float r = std::min(127.f, std::max(-128.f, t / out_scale));
        row[k] = std::copysign((r + kRoundMagic) - kRoundMagic, r) * out_scale;
      }
  }
}
#if defined(__clang__)
#define TANDEM_INT8_FLAT_CLONES
#else
#define TANDEM_INT8_FLAT_CLONES [[gnu::flatten]] TANDEM_INT8_CLONES
#endif
TANDEM_INT8_FLAT_CLONES
void dequantize_round_s32(const int32_t* acc, float* v, int64_t n, int64_t K, const float* alpha, const float* bias,
                          float out_scale) {
  dequantize_round_body(acc, v, n, K, alpha, bias, out_scale);
}
TANDEM_INT8_FLAT_CLONES
void dequantize_round_f32(const float* acc, float* v, int64_t n, int64_t K, const float* alpha, const float* bias,
                          float out_scale) {
  dequantize_round_body(acc, v, n, K, alpha, bias, out_scale);
}
void dequantize_round(const int32_t* acc, float* v, int64_t n, int64_t K, const float* alpha, const float* bias,
                      float out_scale) {
  dequantize_round_s32(acc, v, n, K, alpha, bias, out_scale);
}
void dequantize_round(const float* acc, float* v, int64_t n, int64_t K, const float* alpha, const float* bias,
                      float out_scale) {
  dequantize_round_f32(acc, v, n, K, alpha, bias, out_scale);
}

// x (float, on the grid of `scale`, in layout `block`) -> codes q (NHWC, int8 or float).
template <class Code>
void quantize_to_nhwc(const float* x, Code* q, const Dims& d, int block, float scale) {
  const int64_t N = d[0], C = d[1], P = d[2] * d[3];
  const float inv_scale = 1.f / scale;
  if (block == kNhwcBlock) {  // the same order: flat blocks
    constexpr int64_t kBlock = 16384;
    const int64_t n = N * P * C, blocks = (n + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (n >= 65536)
    for (int64_t b = 0; b < blocks; ++b) codes(x + b * kBlock, q + b * kBlock, std::min(kBlock, n - b * kBlock), inv_scale);
    return;
  }
  // Other layouts: runs of kRun pixels of one image; channel c of pixel p0 + j is at
  // at(n, c, p0) + j * pixel_stride in every layout (plain 1, nChw8c/16c the block).
  const LayoutIndex at{C, P, block};
  const int64_t pixel_stride = block == 8 || block == 16 ? block : 1, runs = (P + kRun - 1) / kRun;
#pragma omp parallel for schedule(static) if (N * P * C >= 65536)
  for (int64_t r = 0; r < N * runs; ++r) {
    const int64_t n = r / runs, p0 = (r % runs) * kRun, m = std::min(kRun, P - p0);
    float run[kRun];
    Code code_run[kRun];
    Code* out = q + (n * P + p0) * C;
    for (int64_t c = 0; c < C; ++c) {
      const float* src = x + at(n, c, p0);
      for (int64_t j = 0; j < m; ++j) run[j] = src[j * pixel_stride];
      codes(run, code_run, m, inv_scale);
      for (int64_t j = 0; j < m; ++j) out[j * C + c] = code_run[j];
    }
  }
}

// acc (NHWC sums) -> y = chain(post_ops(float(acc) * alpha[k] + bias[k])) in layout `block`, a
// few pixels' channels at a time (post-ops and chain links are per element: the same values as
// passes of their own over y, without those passes).
template <class Acc>
void requantize_from_nhwc(const Acc* acc, float* y, const Dims& d, int block, const std::vector<float>& alpha,
                          const std::vector<float>& bias, const std::vector<PostOp>& post_ops,
                          const std::vector<ChainLink>& chain) {
  constexpr int64_t kChunkFloats = 16384;
  const int64_t N = d[0], K = d[1], P = d[2] * d[3], pixels = N * P;
  const int64_t per_chunk = std::max<int64_t>(1, kChunkFloats / K), chunks = (pixels + per_chunk - 1) / per_chunk;
  const LayoutIndex at{K, P, block};
  const int64_t pixel_stride = block == 8 || block == 16 ? block : 1;
  const bool has_bias = !bias.empty();
  const bool round_only = post_ops.empty() && chain.size() == 1 && chain[0].kind == ChainLink::kRoundInt8;
#pragma omp parallel for schedule(static) if (pixels * K >= 65536)
  for (int64_t ch = 0; ch < chunks; ++ch) {
    const int64_t p0 = ch * per_chunk, np = std::min(per_chunk, pixels - p0), n_vals = np * K;
    static thread_local std::vector<float> local;  // other layouts: the chunk, then scattered
    float* v = y + p0 * K;                          // NHWC: in place
    if (block != kNhwcBlock) {
      if (local.size() < size_t(n_vals)) local.resize(size_t(n_vals));
      v = local.data();
    }
    if (round_only) {
      dequantize_round(acc + p0 * K, v, n_vals, K, alpha.data(), has_bias ? bias.data() : nullptr, chain[0].scalar);
    } else {
      dequantize(acc + p0 * K, v, np, K, alpha.data(), has_bias ? bias.data() : nullptr);
      apply_post_ops(post_ops, v, n_vals);
      // Below 65536 values apply_chain opens no parallel region of its own.
      if (!chain.empty()) apply_chain(chain, v, v, n_vals);
    }
    if (block != kNhwcBlock)  // per channel, runs of pixels within one image
      for (int64_t j0 = 0; j0 < np;) {
        const int64_t n = (p0 + j0) / P, p = (p0 + j0) % P, m = std::min(np - j0, P - p);
        for (int64_t k = 0; k < K; ++k) {
          float* dst = y + at(n, k, p);
          for (int64_t j = 0; j < m; ++j) dst[j * pixel_stride] = v[(j0 + j) * K + k];
        }
        j0 += m;
      }
  }
}

}  // namespace

Int8ConvPath int8_conv_path() {
  const char* env = std::getenv("TANDEM_CPU_INT8");
  const std::string v = env ? env : "";
  if (v.empty()) return cpu_has_vnni() ? Int8ConvPath::kVnni : Int8ConvPath::kFp32;
  if (v == "emulate") return Int8ConvPath::kEmulate;
  if (v == "fp32") return Int8ConvPath::kFp32;
  if (v == "vnni") {
    if (!cpu_has_vnni())
      throw Error("TANDEM_CPU_INT8=vnni: oneDNN's effective ISA on this CPU has no VNNI (its int8 sums would saturate)");
    return Int8ConvPath::kVnni;
  }
  throw Error("TANDEM_CPU_INT8='" + v + "': expected vnni, fp32 or emulate");
}

bool int8_conv_exact(const std::vector<int8_t>& codes, int64_t out_channels) {
  if (out_channels <= 0 || int64_t(codes.size()) % out_channels) return false;
  const int64_t inner = int64_t(codes.size()) / out_channels;
  for (int64_t k = 0; k < out_channels; ++k) {
    int64_t l1 = 0;
    for (int64_t i = 0; i < inner; ++i) l1 += std::abs(int64_t(codes[size_t(k * inner + i)]));
    if (128 * l1 > (int64_t(1) << 24)) return false;
  }
  return true;
}

Kernel make_conv_int8_kernel(const ConvSpec& s, Int8ConvPath path) {
  const Layer& l = *s.layer;
  if (path == Int8ConvPath::kEmulate || s.in_scale <= 0.f)
    throw Error("layer '" + l.name + "': real INT8 convolution without a path or input scale (internal)");
  auto prim = std::make_shared<SumPrimitive>(make_sum_primitive(s, path));
  auto scratch = s.scratch ? s.scratch : std::make_shared<ConvScratch>();
  const size_t q_floats = size_t(volume(s.in_dims)) + 16, acc_floats = size_t(volume(s.out_dims)) + 16;
  if (scratch->src.size() < q_floats) scratch->src.resize(q_floats);
  if (scratch->dst.size() < acc_floats) scratch->dst.resize(acc_floats);
  const Dims in_dims = s.in_dims, out_dims = s.out_dims;
  const int src_block = s.src_block, dst_block = s.dst_block;
  const float in_scale = s.in_scale;
  const std::vector<float> alpha = s.alpha, bias = s.bias;
  const std::vector<PostOp> post_ops = s.post_ops;
  const std::vector<ChainLink> chain = s.chain;
  auto stream = std::make_shared<dnnl::stream>(int8_engine());
  return [=](const std::vector<void*>& in, const std::vector<void*>& out) {
    const float* x = static_cast<const float*>(in[0]);
    float* y = static_cast<float*>(out[0]);
    void* q = scratch->src.data();
    void* acc = scratch->dst.data();
    if (path == Int8ConvPath::kVnni) quantize_to_nhwc(x, static_cast<int8_t*>(q), in_dims, src_block, in_scale);
    else quantize_to_nhwc(x, static_cast<float*>(q), in_dims, src_block, in_scale);
    prim->src.set_data_handle(q);
    prim->dst.set_data_handle(acc);
    prim->prim.execute(*stream, {{DNNL_ARG_SRC, prim->src}, {DNNL_ARG_WEIGHTS, prim->wei}, {DNNL_ARG_DST, prim->dst}});
    stream->wait();
    if (path == Int8ConvPath::kVnni)
      requantize_from_nhwc(static_cast<const int32_t*>(acc), y, out_dims, dst_block, alpha, bias, post_ops, chain);
    else requantize_from_nhwc(static_cast<const float*>(acc), y, out_dims, dst_block, alpha, bias, post_ops, chain);
  };
}

}  // namespace tandem::cpu
