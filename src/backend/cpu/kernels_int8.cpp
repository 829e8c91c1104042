// Real INT8 convolutions and deconvolutions: int8 codes, exact integer sums, tandem's own
// requantization.
//
// The input lies on its per-tensor INT8 grid (the lowering rounded it), so its codes
// q = rne(x / s) are exact; the weights are the per-output-channel codes of tandem/numerics.h.
// The sum of q * w over the kernel window (deconvolution: over the input pixels and taps that
// land on an output pixel) is computed exactly, in one of two ways that give the same integers:
//   - kVnni: oneDNN's s8 x s8 -> s32 (de)convolution on a CPU whose effective oneDNN ISA has VNNI
//     (vpdpbusd adds four u8 x s8 products into int32 with no intermediate saturation). Without
//     VNNI oneDNN sums pairs in int16 (vpmaddubsw), which saturates, and halves s8 weights: not
//     exact, so never used there.
//   - kFp32: oneDNN's FP32 (de)convolution over the codes as floats. Every partial sum is an
//     integer of magnitude <= 128 * (sum of |w| over output channel k's weights); while that is
//     <= 2^24 every float sum is exact, in any order, on any ISA.
// A layer runs for real only where that bound holds (int8_conv_exact, int8_deconv_exact),
// whichever way is used, so that the choice of layers, and with it every result, is the same on
// every x86-64. Then
// y = post_ops(float(acc) * alpha[k] + bias[k]) (alpha = s_in * s_w[k] * folded Scale factor),
// compiled with -ffp-contract=off (CMakeLists.txt), so it rounds the same on every ISA.
#include <immintrin.h>
#include <omp.h>
#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <numeric>
#include <string>
#include <type_traits>

#include "kernels.h"
#include "parallel.h"
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
  // Channel c of pixel p + j lies at (*this)(n, c, p) + j * pixel_stride() (within one image).
  int64_t pixel_stride() const { return block == kNhwcBlock ? C : block == 8 || block == 16 ? block : 1; }
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
  dnnl::primitive prim;
  dnnl::memory src, wei, dst;
  dnnl::memory::desc scratchpad;  // with a user scratchpad (several threads run it at once)
};

// A 2-D (de)convolution's strides, dilations (oneDNN's: minus one) and paddings; the right
// padding makes the output size come out as the tensor says. top_pad >= 0 replaces the layer's
// top padding (a block of rows: its own top edge).
struct SumGeometry {
  dnnl::memory::dims strides, dil, pl, pr;
};
SumGeometry sum_geometry(const ConvSpec& s, bool deconv, int64_t top_pad = -1) {
  const auto& p = s.layer->as<ConvolutionParams>();
  SumGeometry geo;
  for (size_t i = 0; i < 2; ++i) {
    const int64_t st = p.stride.empty() ? 1 : p.stride[i], d = p.dilation.empty() ? 1 : p.dilation[i];
    int64_t a = p.pre_padding.empty() ? 0 : p.pre_padding[i];
    if (i == 0 && top_pad >= 0) a = top_pad;
    const int64_t ek = (p.kernel[i] - 1) * d + 1;
    const int64_t in = s.in_dims[2 + i], out = s.out_dims[2 + i];
    geo.strides.push_back(st);
    geo.dil.push_back(d - 1);
    geo.pl.push_back(a);
    geo.pr.push_back(deconv ? (in - 1) * st + ek - a - out : (out - 1) * st + ek - in - a);
  }
  return geo;
}

// The weight codes as stored, in oneDNN's logical order (g,) o, i, kh, kw: a convolution's
// [K, C/g, kh, kw] is that order; a deconvolution's [C, K/g, kh, kw] is g, i, o, kh, kw in
// memory, described by strides.
dnnl::memory::desc stored_weights_desc(const ConvSpec& s, bool deconv, dt type) {
  const auto& p = s.layer->as<ConvolutionParams>();
  const int64_t g = std::max<int64_t>(1, p.groups), o = s.out_dims[1] / g, i = s.in_dims[1] / g;
  const int64_t kh = p.kernel[0], kw = p.kernel[1], ksz = kh * kw;
  dnnl::memory::dims dims = {o, i, kh, kw};
  dnnl::memory::dims strides = deconv ? dnnl::memory::dims{ksz, o * ksz, kw, 1} : dnnl::memory::dims{i * ksz, ksz, kw, 1};
  if (g > 1) {
    dims.insert(dims.begin(), g);
    strides.insert(strides.begin(), o * i * ksz);
  }
  return dnnl::memory::desc(dims, type, strides);
}

// The layouts the integer sums read their codes in and write their sums in. The int8 kernels:
// channels-last both (oneDNN runs mixed layouts only in its reference kernel there). The FP32
// path, whose float sums are exact in any order, follows what oneDNN's FP32 kernels run fast on
// this CPU: the input's and output's own layout where they share one (no transposition); the
// blocked layout oneDNN prefers (nChw8c on AVX2: its channels-last FP32 kernels are slower there,
// and plain ones are im2col + GEMM) where each group's channels fill its blocks (or the layer is
// depthwise: its jit kernels); a stem (a few input channels, groups 1) reads plain codes and
// writes blocked sums (oneDNN's first-convolution jit kernel); a pointwise convolution whose
// channels do not fill blocks runs plain (a GEMM, no im2col); else channels-last.
struct SumLayouts {
  int src, dst;
};
SumLayouts sum_layouts(Int8ConvPath path, const ConvSpec& s) {
  if (path == Int8ConvPath::kVnni) return {kNhwcBlock, kNhwcBlock};
  if (s.src_block == s.dst_block && s.src_block != 0) return {s.src_block, s.src_block};
  const int preferred = dnnl_conv_block();
  if (preferred != 8 && preferred != 16) return {kNhwcBlock, kNhwcBlock};
  const auto& p = s.layer->as<ConvolutionParams>();
  const int64_t g = std::max<int64_t>(1, p.groups), C = s.in_dims[1], K = s.out_dims[1];
  const bool depthwise = g == C && g == K;
  const bool fills = ((C / g) % preferred == 0 && (K / g) % preferred == 0) || (depthwise && C % preferred == 0);
  if (fills) return {preferred, preferred};
  const bool conv = s.layer->kind == LayerKind::kConvolution;
  // The input fills its blocks and is kept in them: the sums in blocks too, the last one padded
  // (oneDNN pads the output channels; requantize reads the real ones).
  if (conv && g == 1 && C % preferred == 0 && s.src_block == preferred) return {preferred, preferred};
  if (conv && g == 1 && C <= 4 && K % preferred == 0) return {0, preferred};
  auto ones = [](const std::vector<int64_t>& v, int64_t one) {
    return std::all_of(v.begin(), v.end(), [one](int64_t x) { return x == one; });
  };
  const bool pointwise = conv && g == 1 && ones(p.kernel, 1) && ones(p.stride, 1) && ones(p.dilation, 1) &&
                         ones(p.pre_padding, 0) && ones(p.post_padding, 0);
  return pointwise ? SumLayouts{0, 0} : SumLayouts{kNhwcBlock, kNhwcBlock};
}
dnnl::memory::desc layout_desc(const Dims& d, dt type, int block) {
  const tag t = block == 16 ? tag::nChw16c : block == 8 ? tag::nChw8c : block == kNhwcBlock ? tag::nhwc : tag::nchw;
  return dnnl::memory::desc({d[0], d[1], d[2], d[3]}, type, t);
}

SumPrimitive make_sum_primitive(const ConvSpec& s, Int8ConvPath path, bool user_scratchpad = false,
                                int64_t top_pad = -1) {
  const bool deconv = s.layer->kind == LayerKind::kDeconvolution;
  const dt act = path == Int8ConvPath::kVnni ? dt::s8 : dt::f32;
  const dt acc = path == Int8ConvPath::kVnni ? dt::s32 : dt::f32;
  const SumGeometry geo = sum_geometry(s, deconv, top_pad);
  const SumLayouts layout = sum_layouts(path, s);
  const dnnl::memory::desc src_md = layout_desc(s.in_dims, act, layout.src), dst_md = layout_desc(s.out_dims, acc, layout.dst);
  const dnnl::memory::desc w_user_md = stored_weights_desc(s, deconv, act);
  const dnnl::memory::desc w_any_md(w_user_md.dims(), act, tag::any);
  auto& eng = int8_engine();
  const auto prop = dnnl::prop_kind::forward_inference;
  dnnl::primitive prim;
  dnnl::memory::desc w_md, scratchpad_md;
  dnnl::primitive_attr attr;
  if (user_scratchpad) attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  if (deconv) {
    dnnl::deconvolution_forward::primitive_desc pd(
        dnnl::deconvolution_forward::desc(prop, dnnl::algorithm::deconvolution_direct, src_md, w_any_md, dst_md,
                                          geo.strides, geo.dil, geo.pl, geo.pr),
        attr, eng);
    prim = dnnl::deconvolution_forward(pd);
    w_md = pd.weights_desc();
    scratchpad_md = pd.scratchpad_desc();
  } else {
    dnnl::convolution_forward::primitive_desc pd(
        dnnl::convolution_forward::desc(prop, dnnl::algorithm::convolution_direct, src_md, w_any_md, dst_md,
                                        geo.strides, geo.dil, geo.pl, geo.pr),
        attr, eng);
    prim = dnnl::convolution_forward(pd);
    w_md = pd.weights_desc();
    scratchpad_md = pd.scratchpad_desc();
  }
  SumPrimitive r{prim, dnnl::memory(src_md, eng, nullptr), dnnl::memory(w_md, eng), dnnl::memory(dst_md, eng, nullptr),
                 user_scratchpad ? scratchpad_md : dnnl::memory::desc()};
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
// The same, with every call inside inlined into each clone (a template body shared by two of them).
#if defined(__clang__)
#define TANDEM_INT8_FLAT_CLONES
#else
#define TANDEM_INT8_FLAT_CLONES [[gnu::flatten]] TANDEM_INT8_CLONES
#endif

// q = rne(x * (1 / scale)) over n values on the grid of `scale` (x = fl(q * scale), |q| <= 128):
// x * fl(1 / scale) is within 3 * 128 * 2^-24 of q, far from a rounding midpoint, so this is
// exactly quantize_int8's rne(x / scale) there, at a multiply's cost. Clamped to [-128, 127]
// first (the bounds are integers: the same as clamping after rounding), then rounded half to
// even by adding and subtracting 1.5 * 2^23 (exact for |r| <= 2^22 in the default rounding mode).
TANDEM_INT8_CLONES
void codes_s8_loop(const float* x, int8_t* q, int64_t n, float inv_scale) {
  constexpr float kRoundMagic = 12582912.f;
  for (int64_t i = 0; i < n; ++i) {
    const float r = std::min(127.f, std::max(-128.f, x[i] * inv_scale));
    q[i] = int8_t(int32_t((r + kRoundMagic) - kRoundMagic));
  }
}
// The same with AVX-512 (the compilers' clones of the loop above blend and pack 8 lanes at a
// time): vmaxps(r, -128) returns its second operand for a NaN r, as std::max(-128.f, r) does,
// then vminps with 127, vcvtps2dq (round half to even, the default MXCSR mode, as the magic
// number) and vpmovsdb (the value is within [-128, 127] already): the same codes.
__attribute__((target("avx512f"))) void codes_s8_avx512(const float* x, int8_t* q, int64_t n, float inv_scale) {
  const __m512 inv = _mm512_set1_ps(inv_scale), lo = _mm512_set1_ps(-128.f), hi = _mm512_set1_ps(127.f);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 r = _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(_mm512_loadu_ps(x + i), inv), lo), hi);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + i), _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(r)));
  }
  codes_s8_loop(x + i, q + i, n - i, inv_scale);
}
bool cpu_has_avx512f() {
  static const bool yes = __builtin_cpu_supports("avx512f") && !isa_capped_below_avx512();
  return yes;
}
void codes_s8(const float* x, int8_t* q, int64_t n, float inv_scale) {
  if (cpu_has_avx512f()) return codes_s8_avx512(x, q, n, inv_scale);
  codes_s8_loop(x, q, n, inv_scale);
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
// The same for rows of few channels (K < 64) as one flat loop over whole periods of the channels'
// alpha and bias (repeated to ~256 values): the same operations on each element, without a loop
// per pixel (a one-channel deconvolution's was a loop of one).
template <class Acc>
inline void dequantize_periodic_body(const Acc* acc, float* v, int64_t np, int64_t K, const float* alpha,
                                     const float* bias) {
  constexpr int64_t kPeriodMax = 256 + 63;
  float al[kPeriodMax], bi[kPeriodMax];
  const int64_t L = std::max<int64_t>(1, 256 / K) * K, n = np * K;
  for (int64_t i = 0; i < L; ++i) al[i] = alpha[i % K], bi[i] = bias ? bias[i % K] : 0.f;
  for (int64_t at = 0; at < n; at += L) {
    const int64_t m = std::min(L, n - at);
    const Acc* a = acc + at;
    float* row = v + at;
    for (int64_t i = 0; i < m; ++i) row[i] = float(a[i]) * al[i];
    if (bias)
      for (int64_t i = 0; i < m; ++i) row[i] = row[i] + bi[i];
  }
}
TANDEM_INT8_FLAT_CLONES
void dequantize_periodic_s32(const int32_t* acc, float* v, int64_t np, int64_t K, const float* alpha, const float* bias) {
  dequantize_periodic_body(acc, v, np, K, alpha, bias);
}
TANDEM_INT8_FLAT_CLONES
void dequantize_periodic_f32(const float* acc, float* v, int64_t np, int64_t K, const float* alpha, const float* bias) {
  dequantize_periodic_body(acc, v, np, K, alpha, bias);
}

void dequantize(const int32_t* acc, float* v, int64_t np, int64_t K, const float* alpha, const float* bias) {
  if (K < 64) return dequantize_periodic_s32(acc, v, np, K, alpha, bias);
  dequantize_s32(acc, v, np, K, alpha, bias);
}
void dequantize(const float* acc, float* v, int64_t np, int64_t K, const float* alpha, const float* bias) {
  if (K < 64) return dequantize_periodic_f32(acc, v, np, K, alpha, bias);
  dequantize_f32(acc, v, np, K, alpha, bias);
}

constexpr int64_t kRun = 64;  // pixels per run when the codes change layout

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

// x (float, on the grid of `scale`, in layout `block`) -> codes q (int8 or float) in layout
// `q_block`.
template <class Code>
void quantize_codes(const float* x, Code* q, const Dims& d, int block, int q_block, float scale) {
  const int64_t N = d[0], C = d[1], P = d[2] * d[3];
  const float inv_scale = 1.f / scale;
  if (block == q_block) {  // the same order: flat blocks
    constexpr int64_t kBlock = 16384;
    const int64_t n = N * P * C, blocks = (n + kBlock - 1) / kBlock;
    parallel_for(blocks, n >= 65536,
                 [&](int64_t b) { codes(x + b * kBlock, q + b * kBlock, std::min(kBlock, n - b * kBlock), inv_scale); });
    return;
  }
  // Other layouts: runs of kRun pixels of one image, channel by channel.
  const LayoutIndex at{C, P, block}, q_at{C, P, q_block};
  const int64_t xs = at.pixel_stride(), qs = q_at.pixel_stride(), runs = (P + kRun - 1) / kRun;
  parallel_for(N * runs, N * P * C >= 65536, [&](int64_t r) {
    const int64_t n = r / runs, p0 = (r % runs) * kRun, m = std::min(kRun, P - p0);
    float run[kRun];
    Code code_run[kRun];
    for (int64_t c = 0; c < C; ++c) {
      const float* src = x + at(n, c, p0);
      for (int64_t j = 0; j < m; ++j) run[j] = src[j * xs];
      codes(run, code_run, m, inv_scale);
      Code* dst = q + q_at(n, c, p0);
      for (int64_t j = 0; j < m; ++j) dst[j * qs] = code_run[j];
    }
  });
}

// What requantization computes: y = chain(post_ops(float(acc) * alpha[k] + bias[k])).
struct Requantize {
  const float* alpha;
  const float* bias;  // null: none
  const std::vector<PostOp>& post_ops;
  const std::vector<ChainLink>& chain;
  // For codes: the chain without its last roundings (CodesTail), which run_codes fuses with them.
  const std::vector<ChainLink>& body;
  const CodesTail& tail;
  // The post-ops and the whole chain as one fused run (chain_fused.h); empty: none.
  const std::vector<fused::Op>& fused_ops;
  bool round_only() const { return post_ops.empty() && chain.size() == 1 && chain[0].kind == ChainLink::kRoundInt8; }
  // The fused run over np pixels of K channels: sums in, values (or codes) out in one pass. False
  // where there is none, or the channels' factors repeat with too long a period.
  template <class Acc>
  bool run_fused_pass(const Acc* acc, float* v, int64_t np, int64_t K, int8_t* codes, float inv_scale) const {
    constexpr int64_t kMaxPeriod = 1024;
    if (fused_ops.empty()) return false;
    const int64_t period = std::lcm(K, int64_t(128));
    if (period > kMaxPeriod) return false;
    alignas(64) float al[kMaxPeriod], bi[kMaxPeriod];
    for (int64_t i = 0; i < period; ++i) al[i] = alpha[i % K], bi[i] = bias ? bias[i % K] : 0.f;
    fused::Run r{fused_ops.data(), int(fused_ops.size()), nullptr, nullptr, v, nullptr, np * K};
    if constexpr (std::is_same_v<Acc, int32_t>) r.sums_s32 = acc;
    else r.sums_f32 = acc;
    r.alpha = al, r.bias = bias ? bi : nullptr, r.period = period, r.codes = codes, r.inv_scale = inv_scale;
    run_fused(r);
    return true;
  }
  // np pixels of K channels each, channel k's alpha[k] and bias[k] (acc may be v). Post-ops and
  // chain links are per element: the same values as passes of their own over y, without them.
  template <class Acc>
  void run(const Acc* acc, float* v, int64_t np, int64_t K) const {
    const int64_t n_vals = np * K;
    if (round_only()) return dequantize_round(acc, v, n_vals, K, alpha, bias, chain[0].scalar);
    if (run_fused_pass(acc, v, np, K, nullptr, 0.f)) return;
    dequantize(acc, v, np, K, alpha, bias);
    apply_post_ops(post_ops, v, n_vals);
    // Below 65536 values apply_chain opens no parallel region of its own.
    if (!chain.empty()) apply_chain(chain, v, v, n_vals);
  }
  // The same values' int8 codes into y (inv_scale: 1 / the last rounding's scale), v the staging
  // buffer: where the chain ends with its roundings, those and the codes in one pass.
  template <class Acc>
  void run_codes(const Acc* acc, float* v, int64_t np, int64_t K, int8_t* y, float inv_scale) const {
    const int64_t n_vals = np * K;
    if (run_fused_pass(acc, v, np, K, y, inv_scale)) return;
    if (!tail.links) {
      run(acc, v, np, K);
      return codes_s8(v, y, n_vals, inv_scale);
    }
    dequantize(acc, v, np, K, alpha, bias);
    apply_post_ops(post_ops, v, n_vals);
    if (!body.empty()) apply_chain(body, v, v, n_vals);
    round_to_codes(v, y, n_vals, tail.scale, tail.fp16_first);
  }
};

// What an INT8 kernel keeps for its requantization: the chain with ConvSpec::tail's links after it
// (prepared), alpha, bias and the post-ops, and the output the values go to (out[1] with a tail).
struct RequantizeSpec {
  std::vector<ChainLink> chain, body;
  CodesTail tail;
  std::vector<float> alpha, bias;
  std::vector<PostOp> post_ops;
  std::vector<fused::Op> fused_ops;
  size_t y_slot;
  explicit RequantizeSpec(const ConvSpec& s)
      : chain(s.chain), alpha(s.alpha), bias(s.bias), post_ops(s.post_ops), y_slot(s.tail.empty() ? 0 : 1) {
    chain.insert(chain.end(), s.tail.begin(), s.tail.end());
    prepare_chain(chain, volume(s.out_dims));
    tail = codes_tail(chain);
    body.assign(chain.begin(), chain.end() - std::ptrdiff_t(tail.links));
    fuse();
    // Padded blocks of sums (sum_layouts) run whole: their padding channels get alpha 0, bias 0.
    const size_t padded = (alpha.size() + 15) / 16 * 16;
    alpha.resize(padded, 0.f);
    if (!bias.empty()) bias.resize(padded, 0.f);
  }
  Requantize view() const {
    return {alpha.data(), bias.empty() ? nullptr : bias.data(), post_ops, chain, body, tail, fused_ops};
  }
  // The post-ops (hard-swish: x * HardSigmoid(x; 1/6, 1/2), as apply_post_ops computes it) and the
  // chain as ops of one fused run, where the CPU has the vectors and every one has a fused form.
  void fuse() {
    if (cpu_vectors() == CpuVectors::kNone) return;
    std::vector<fused::Op> ops;
    for (const PostOp& p : post_ops) {
      switch (p.kind) {
        case PostOp::kHardSwish:
          ops.push_back({fused::Form::kUnary, fused::Binary::kAdd, fused::Unary::kCapture});
          ops.push_back({fused::Form::kUnary, fused::Binary::kAdd, fused::Unary::kHardSigmoid, 1.f / 6.f, 0.5f});
          ops.push_back({fused::Form::kInputLeft, fused::Binary::kMul});
          break;
        case PostOp::kActivation:
          if (!activation_to_fused(p.act, ops.emplace_back())) return;
          break;
        case PostOp::kScalar: return;
      }
    }
    // The chain's input is the value after the post-ops.
    if (!post_ops.empty()) ops.push_back({fused::Form::kUnary, fused::Binary::kAdd, fused::Unary::kCapture});
    if (links_to_fused(chain, ops)) fused_ops = std::move(ops);
  }
};

constexpr int64_t kChunkFloats = 16384;  // values per requantized chunk (L2)

// acc (sums in layout acc_block: channels-last, or nChw8c / nChw16c: planes of P pixels x block
// channels) -> y requantized in layout y_block, a few pixels' channels of one plane at a time: in
// place where the layouts agree (acc may be y), else into a buffer, then scattered.
template <class Acc>
void requantize(const Acc* acc, int acc_block, float* y, int y_block, const Dims& d, const Requantize& rq) {
  const int64_t N = d[0], K = d[1], P = d[2] * d[3];
  // Channels of one pixel in one plane (plain sums: a plane per channel).
  const int64_t lanes = acc_block == kNhwcBlock ? K : acc_block == 0 ? 1 : acc_block;
  // Blocked sums of K channels not a multiple of the block: the last block padded (alpha and bias
  // too: RequantizeSpec), its real channels written.
  const int64_t groups = (K + lanes - 1) / lanes, planes = N * groups;
  const int64_t per_chunk = std::max<int64_t>(1, kChunkFloats / lanes), chunks = (P + per_chunk - 1) / per_chunk;
  const LayoutIndex y_at{K, P, y_block};
  const int64_t ys = y_at.pixel_stride();
  parallel_for(planes * chunks, N * P * K >= 65536, [&](int64_t item) {
    const int64_t plane = item / chunks, n = plane / groups, p0 = (item % chunks) * per_chunk;
    const int64_t np = std::min(per_chunk, P - p0), k0 = (plane % groups) * lanes, at = (plane * P + p0) * lanes;
    const Requantize part{rq.alpha + k0, rq.bias ? rq.bias + k0 : nullptr, rq.post_ops, rq.chain, rq.body, rq.tail, rq.fused_ops};
    if (acc_block == y_block) {
      part.run(acc + at, y + at, np, lanes);
      return;
    }
    static thread_local std::vector<float> local;
    if (local.size() < size_t(np * lanes)) local.resize(size_t(np * lanes));
    part.run(acc + at, local.data(), np, lanes);
    for (int64_t k = 0; k < std::min(lanes, K - k0); ++k) {
      float* dst = y + y_at(n, k0 + k, p0);
      for (int64_t j = 0; j < np; ++j) dst[j * ys] = local[size_t(j * lanes + k)];
    }
  });
}

// The same into int8 codes (Int8CodesIo::write): each chunk is requantized into a buffer, its
// chain ending in the rounding onto the grid of 1 / inv_scale, then turned into the codes a
// reader's quantizing pass would make of it (codes_s8). Sums and output channels-last.
template <class Acc>
void requantize_codes(const Acc* acc, int8_t* y, const Dims& d, const Requantize& rq, float inv_scale) {
  const int64_t N = d[0], K = d[1], P = d[2] * d[3];
  const int64_t per_chunk = std::max<int64_t>(1, kChunkFloats / K), chunks = (P + per_chunk - 1) / per_chunk;
  parallel_for(N * chunks, N * P * K >= 65536, [&](int64_t item) {
    const int64_t n = item / chunks, p0 = (item % chunks) * per_chunk, np = std::min(per_chunk, P - p0);
    const int64_t at = (n * P + p0) * K;
    static thread_local std::vector<float> local;
    if (local.size() < size_t(np * K)) local.resize(size_t(np * K));
    rq.run_codes(acc + at, local.data(), np, K, y + at, inv_scale);
  });
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

namespace {
// |q_x| <= 128 times the sum of |q_w| over one output channel's weights bounds every partial sum.
bool sums_within_fp32_integers(int64_t weight_l1) { return 128 * weight_l1 <= (int64_t(1) << 24); }
}  // namespace

bool int8_conv_exact(const std::vector<int8_t>& codes, int64_t out_channels) {
  if (out_channels <= 0 || int64_t(codes.size()) % out_channels) return false;
  const int64_t inner = int64_t(codes.size()) / out_channels;
  for (int64_t k = 0; k < out_channels; ++k) {
    int64_t l1 = 0;
    for (int64_t i = 0; i < inner; ++i) l1 += std::abs(int64_t(codes[size_t(k * inner + i)]));
    if (!sums_within_fp32_integers(l1)) return false;
  }
  return true;
}

bool int8_deconv_exact(const std::vector<int8_t>& codes, int64_t in_channels, int64_t out_channels, int64_t groups) {
  const int64_t g = std::max<int64_t>(1, groups);
  if (in_channels <= 0 || out_channels <= 0 || in_channels % g || out_channels % g ||
      int64_t(codes.size()) % (in_channels * (out_channels / g)))
    return false;
  // [C, K/g, taps]: output channel gi * K/g + j sums channel j of the C/g input channels of group gi.
  const int64_t kg = out_channels / g, cg = in_channels / g, taps = int64_t(codes.size()) / (in_channels * kg);
  for (int64_t k = 0; k < out_channels; ++k) {
    const int64_t gi = k / kg, j = k % kg;
    int64_t l1 = 0;
    for (int64_t c = gi * cg; c < (gi + 1) * cg; ++c)
      for (int64_t t = 0; t < taps; ++t) l1 += std::abs(int64_t(codes[size_t((c * kg + j) * taps + t)]));
    if (!sums_within_fp32_integers(l1)) return false;
  }
  return true;
}

namespace {
// A deconvolution whose stride exceeds its (dilated) kernel along an axis has outputs no tap
// reaches (their sums are 0). oneDNN 2.6.3's jit_deconvolution:avx512_core_vnni leaves some of
// them unwritten (an AMD Zen 5 CPU, k1 s3: stale values in the s32 sums; BackendOpsKind's
// Deconvolution case), so such layers take the FP32-sum path: the same integers, every output written.
bool deconv_has_gaps(const ConvSpec& s) {
  if (s.layer->kind != LayerKind::kDeconvolution) return false;
  const auto& p = s.layer->as<ConvolutionParams>();
  for (size_t i = 0; i < p.kernel.size(); ++i) {
    const int64_t st = p.stride.size() > i ? p.stride[i] : 1, d = p.dilation.size() > i ? p.dilation[i] : 1;
    if (st > (p.kernel[i] - 1) * d + 1) return true;
  }
  return false;
}
}  // namespace

namespace {

std::atomic<uint64_t> tiled_kernels_built{0};

// Pixels per block of a tiled pointwise convolution: its int32 sums (K per pixel) stay in L2 until
// the block is requantized. TANDEM_CPU_INT8_TILE=N overrides it (tests; 0: never tiled).
int64_t tile_pixels(int64_t K) {
  if (const char* v = std::getenv("TANDEM_CPU_INT8_TILE"); v && *v) return std::max<int64_t>(0, std::atoll(v));
  return std::clamp<int64_t>(int64_t(64 * 1024) / std::max<int64_t>(K, 1), 64, 8192);
}

bool tiles_apply(const ConvSpec& s, Int8ConvPath path) {
  const auto& p = s.layer->as<ConvolutionParams>();
  auto all = [](const Dims& d, int64_t v) {
    for (int64_t x : d)
      if (x != v) return false;
    return true;
  };
  return s.layer->kind == LayerKind::kConvolution && all(p.kernel, 1) && all(p.stride, 1) && all(p.pre_padding, 0) &&
         all(p.post_padding, 0) && all(p.dilation, 1) && std::max<int64_t>(1, p.groups) == 1 &&
         sum_layouts(path, s).src == kNhwcBlock && sum_layouts(path, s).dst == kNhwcBlock;
}

// The block's buffers, one set per thread: codes, sums, the primitive's scratchpad, and the
// block's input or output channels-last where the tensor is not.
struct TileBuffers {
  std::vector<float> codes, sums, scratchpad, staged;
  static float* at_least(std::vector<float>& v, size_t bytes) {
    if (v.size() * sizeof(float) < bytes) v.resize((bytes + sizeof(float) - 1) / sizeof(float));
    return v.data();
  }
};

// The tensors of a tiled convolution: T pixels (N images of P), C input and K output channels,
// the input's and the output's layouts.
struct TileShape {
  int64_t T, P, C, K;
  int src_block, dst_block;
};

// Pixels [p0, p0 + np) of a [N, ch, P] tensor in layout `block` <-> rows of ch channels.
void gather_pixels(const float* x, float* rows, int64_t p0, int64_t np, int64_t ch, int64_t P, int block) {
  const LayoutIndex at{ch, P, block};
  for (int64_t j = 0; j < np; ++j)
    for (int64_t c = 0; c < ch; ++c) rows[j * ch + c] = x[at((p0 + j) / P, c, (p0 + j) % P)];
}
void scatter_pixels(const float* rows, float* y, int64_t p0, int64_t np, int64_t ch, int64_t P, int block) {
  const LayoutIndex at{ch, P, block};
  for (int64_t j = 0; j < np; ++j)
    for (int64_t c = 0; c < ch; ++c) y[at((p0 + j) / P, c, (p0 + j) % P)] = rows[j * ch + c];
}

// One block of pixels [p0, p0 + np): codes of its input, the sums, the requantization.
// io.read: x holds int8 codes; io.write: y gets int8 codes (of the grid 1 / out_inv).
template <class Code, class Acc>
void run_tile(const SumPrimitive& pr, const void* xv, void* yv, int64_t p0, int64_t np, const TileShape& t,
              float inv_scale, const Requantize& rq, const Int8CodesIo& io, float out_inv) {
  static thread_local TileBuffers buf;
  static thread_local dnnl::stream stream(int8_engine());
  const int64_t C = t.C, K = t.K;
  const float* x = static_cast<const float*>(xv);
  float* y = static_cast<float*>(yv);
  Code* q = reinterpret_cast<Code*>(TileBuffers::at_least(buf.codes, size_t(np * C) * sizeof(Code)));
  Acc* acc = reinterpret_cast<Acc*>(TileBuffers::at_least(buf.sums, size_t(np * K) * sizeof(Acc)));
  float* staged = TileBuffers::at_least(buf.staged, size_t(np * std::max(C, K)) * sizeof(float));
  if (io.read) {
    q = reinterpret_cast<Code*>(const_cast<int8_t*>(static_cast<const int8_t*>(xv) + p0 * C));
  } else if (t.src_block == kNhwcBlock) {
    codes(x + p0 * C, q, np * C, inv_scale);
  } else {
    gather_pixels(x, staged, p0, np, C, t.P, t.src_block);
    codes(staged, q, np * C, inv_scale);
  }
  auto& eng = int8_engine();
  dnnl::memory src(pr.src.get_desc(), eng, q), dst(pr.dst.get_desc(), eng, acc);
  dnnl::memory scratch(pr.scratchpad, eng, TileBuffers::at_least(buf.scratchpad, pr.scratchpad.get_size() + 64));
  pr.prim.execute(stream, {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, pr.wei}, {DNNL_ARG_DST, dst}, {DNNL_ARG_SCRATCHPAD, scratch}});
  stream.wait();
  if (io.write) {
    return rq.run_codes(acc, staged, np, K, static_cast<int8_t*>(yv) + p0 * K, out_inv);
  }
  if (t.dst_block == kNhwcBlock) return rq.run(acc, y + p0 * K, np, K);
  rq.run(acc, staged, np, K);
  scatter_pixels(staged, y, p0, np, K, t.P, t.dst_block);
}

// A 1x1, stride-1, unpadded, ungrouped convolution is a matrix product over pixels, so it runs
// block by block of pixels (gathered from and scattered to tensors that are not channels-last):
// each block's codes, sums and requantization stay in cache, where the whole-tensor kernel writes
// every int32 sum to memory and reads it back (twice the memory traffic of the FP32
// convolution). The same sums and the same requantization of each element: the same bits. Threads take whole blocks; oneDNN's
// primitive runs on the calling thread inside the region (made single-threaded, with a
// scratchpad per thread). `whole` runs instead where the output overlaps the input.
Kernel make_pointwise_tiled_kernel(const ConvSpec& s, Int8ConvPath path, Kernel whole,
                                   std::shared_ptr<const Int8CodesIo> io) {
  const int64_t C = s.in_dims[1], K = s.out_dims[1], P = s.in_dims[2] * s.in_dims[3], T = s.in_dims[0] * P;
  const TileShape shape{T, P, C, K, s.src_block, s.dst_block};
  const int64_t tile = tile_pixels(K);
  if (!tiles_apply(s, path) || tile <= 0 || T < 2 * tile) return {};
  auto block_primitive = [&](int64_t np) {
    ConvSpec b = s;
    b.in_dims = {1, C, 1, np};
    b.out_dims = {1, K, 1, np};
    const int threads = omp_get_max_threads();
    omp_set_num_threads(1);  // it runs inside the blocks' region, on one thread
    auto pr = std::make_shared<const SumPrimitive>(make_sum_primitive(b, path, true));
    omp_set_num_threads(threads);
    return pr;
  };
  auto full = block_primitive(tile);
  auto tail = T % tile ? block_primitive(T % tile) : full;
  const RequantizeSpec rs(s);
  const size_t y_slot = rs.y_slot;
  const float inv_scale = 1.f / s.in_scale;
  return [=](const std::vector<void*>& in, const std::vector<void*>& out) {
    const float* x = static_cast<const float*>(in[0]);
    float* y = static_cast<float*>(out[y_slot]);
    if (y < x + T * C && x < y + T * K) return whole(in, out);  // (float extents: codes need less)
    const Requantize rq = rs.view();
    const float out_inv = io->write ? 1.f / io->write_scale : 0.f;
    const int64_t blocks = (T + tile - 1) / tile;
    parallel_for(blocks, T * K >= 65536, [&](int64_t b) {
      const int64_t p0 = b * tile, np = std::min(tile, T - p0);
      const SumPrimitive& pr = np == tile ? *full : *tail;
      if (path == Int8ConvPath::kVnni) run_tile<int8_t, int32_t>(pr, in[0], y, p0, np, shape, inv_scale, rq, *io, out_inv);
      else run_tile<float, float>(pr, in[0], y, p0, np, shape, inv_scale, rq, *io, out_inv);
    });
  };
}

// Output rows per block of a convolution run in row blocks: its int32 sums (OW * K per row) about
// 128 KiB. TANDEM_CPU_INT8_ROWS=N overrides it (tests; 0: never in row blocks).
int64_t tile_rows(int64_t row_values) {
  if (const char* v = std::getenv("TANDEM_CPU_INT8_ROWS"); v && *v) return std::max<int64_t>(0, std::atoll(v));
  return std::max<int64_t>(1, int64_t(32 * 1024) / std::max<int64_t>(row_values, 1));
}

// One block of output rows [r0, r0 + rows) of an image: the input rows it reads [in0, in0 +
// in_rows) and the primitive for that shape (its top padding where the block starts above row 0;
// its bottom padding where it ends below the last row).
struct RowBlock {
  int64_t r0, rows, in0, in_rows;
  std::shared_ptr<const SumPrimitive> pr;
};

std::vector<RowBlock> row_blocks(const ConvSpec& s, Int8ConvPath path, int64_t R) {
  const auto& p = s.layer->as<ConvolutionParams>();
  const int64_t H = s.in_dims[2], OH = s.out_dims[2], st = p.stride.empty() ? 1 : p.stride[0];
  const int64_t d = p.dilation.empty() ? 1 : p.dilation[0], pt = p.pre_padding.empty() ? 0 : p.pre_padding[0];
  const int64_t ek = (p.kernel[0] - 1) * d + 1;
  std::map<std::array<int64_t, 3>, std::shared_ptr<const SumPrimitive>> made;
  std::vector<RowBlock> blocks;
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);  // each runs inside the blocks' region, on one thread
  for (int64_t r0 = 0; r0 < OH; r0 += R) {
    const int64_t rows = std::min(R, OH - r0), start = r0 * st - pt, end = (r0 + rows - 1) * st - pt + ek;
    const int64_t in0 = std::max<int64_t>(0, start), in_rows = std::min(end, H) - in0, top = in0 - start;
    if (in_rows <= 0) {  // rows of padding alone (a padding beyond the window): the whole kernel
      omp_set_num_threads(threads);
      return {};
    }
    auto& pr = made[{rows, in_rows, top}];
    if (!pr) {
      ConvSpec b = s;
      b.in_dims = {1, s.in_dims[1], in_rows, s.in_dims[3]};
      b.out_dims = {1, s.out_dims[1], rows, s.out_dims[3]};
      pr = std::make_shared<const SumPrimitive>(make_sum_primitive(b, path, true, top));
    }
    blocks.push_back({r0, rows, in0, in_rows, pr});
  }
  omp_set_num_threads(threads);
  return blocks;
}

// A 2-D convolution with a window (3x3, depthwise, strided) on channels-last codes runs block by
// block of output rows (threads take blocks of any image): each block's int32 sums stay in cache
// until they are requantized, where the whole-tensor kernel writes every sum to memory and reads
// it back. Each block sums exactly the products the whole convolution sums for its pixels (the
// input rows its window covers; the zero padding where it covers none), and every element is
// requantized as before: the same bits. The VNNI path only (int8 codes in and out of the block).
// An input that is not channels-last is quantized whole first (into `scratch`), an output that is
// not is scattered from each block.
Kernel make_row_tiled_kernel(const ConvSpec& s, Int8ConvPath path, Kernel whole, std::shared_ptr<const Int8CodesIo> io,
                             std::shared_ptr<ConvScratch> scratch) {
  const auto& p = s.layer->as<ConvolutionParams>();
  if (s.layer->kind != LayerKind::kConvolution || p.kernel.size() != 2 || path != Int8ConvPath::kVnni ||
      sum_layouts(path, s).src != kNhwcBlock)
    return {};
  const int src_block = s.src_block, dst_block = s.dst_block;
  const Dims in_dims = s.in_dims;
  const float in_scale = s.in_scale;
  const int64_t N = s.in_dims[0], C = s.in_dims[1], H = s.in_dims[2], W = s.in_dims[3];
  const int64_t K = s.out_dims[1], OH = s.out_dims[2], OW = s.out_dims[3];
  const int64_t R = tile_rows(OW * K);
  if (R <= 0 || OH < 2 * R) return {};
  const std::vector<RowBlock> blocks = row_blocks(s, path, R);
  if (blocks.empty()) return {};
  const RequantizeSpec rs(s);
  const size_t y_slot = rs.y_slot;
  const int64_t nb = int64_t(blocks.size());
  return [=](const std::vector<void*>& in, const std::vector<void*>& out) {
    const float* x = static_cast<const float*>(in[0]);
    float* y = static_cast<float*>(out[y_slot]);
    if (y < x + N * H * W * C && x < y + N * OH * OW * K) return whole(in, out);  // (float extents)
    const Requantize rq = rs.view();
    const float out_inv = io->write ? 1.f / io->write_scale : 0.f;
    // Codes of the whole input, channels-last: the writer's, or made here first (once per input
    // row: the blocks' windows overlap).
    const int8_t* all_codes = io->read ? static_cast<const int8_t*>(in[0]) : nullptr;
    if (!all_codes) {
      int8_t* q = reinterpret_cast<int8_t*>(scratch->src.data());
      quantize_codes(x, q, in_dims, src_block, kNhwcBlock, in_scale);
      all_codes = q;
    }
    parallel_for(N * nb, N * OH * OW * K >= 65536, [&](int64_t item) {
      static thread_local TileBuffers buf;
      static thread_local dnnl::stream stream(int8_engine());
      const int64_t n = item / nb;
      const RowBlock& b = blocks[size_t(item % nb)];
      const int64_t in_at = (n * H + b.in0) * W * C, np = b.rows * OW;
      int8_t* q = const_cast<int8_t*>(all_codes + in_at);
      int32_t* acc = reinterpret_cast<int32_t*>(TileBuffers::at_least(buf.sums, size_t(np * K) * sizeof(int32_t)));
      auto& eng = int8_engine();
      const SumPrimitive& pr = *b.pr;
      dnnl::memory src(pr.src.get_desc(), eng, q), dst(pr.dst.get_desc(), eng, acc);
      dnnl::memory scratch(pr.scratchpad, eng, TileBuffers::at_least(buf.scratchpad, pr.scratchpad.get_size() + 64));
      pr.prim.execute(stream, {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, pr.wei}, {DNNL_ARG_DST, dst}, {DNNL_ARG_SCRATCHPAD, scratch}});
      stream.wait();
      const int64_t out_at = (n * OH + b.r0) * OW * K;
      if (!io->write && dst_block == kNhwcBlock) return rq.run(acc, y + out_at, np, K);
      float* staged = TileBuffers::at_least(buf.staged, size_t(np * K) * sizeof(float));
      if (io->write) return rq.run_codes(acc, staged, np, K, static_cast<int8_t*>(out[y_slot]) + out_at, out_inv);
      rq.run(acc, staged, np, K);
      scatter_pixels(staged, y, n * OH * OW + b.r0 * OW, np, K, OH * OW, dst_block);
    });
  };
}

std::atomic<uint64_t> row_tiled_kernels_built{0};

}  // namespace

Kernel make_conv_int8_kernel(const ConvSpec& s, Int8ConvPath path) {
  const Layer& l = *s.layer;
  if (path == Int8ConvPath::kVnni && deconv_has_gaps(s)) path = Int8ConvPath::kFp32;
  if (path == Int8ConvPath::kEmulate || s.in_scale <= 0.f)
    throw Error("layer '" + l.name + "': real INT8 (de)convolution without a path or input scale (internal)");
  auto prim = std::make_shared<SumPrimitive>(make_sum_primitive(s, path));
  auto scratch = s.scratch ? s.scratch : std::make_shared<ConvScratch>();
  const SumLayouts layouts = sum_layouts(path, s);
  const int q_block = layouts.src, acc_block = layouts.dst;
  const size_t q_floats = size_t(volume(s.in_dims)) + 16;
  // Blocked sums may pad the last block of output channels.
  const int64_t acc_channels = acc_block == 8 || acc_block == 16 ? (s.out_dims[1] + acc_block - 1) / acc_block * acc_block : s.out_dims[1];
  const size_t acc_floats = size_t(volume(s.out_dims) / std::max<int64_t>(1, s.out_dims[1]) * acc_channels) + 16;
  if (scratch->src.size() < q_floats) scratch->src.resize(q_floats);
  if (scratch->dst.size() < acc_floats) scratch->dst.resize(acc_floats);
  const Dims in_dims = s.in_dims, out_dims = s.out_dims;
  const int src_block = s.src_block, dst_block = s.dst_block;
  const float in_scale = s.in_scale;
  // ConvSpec::tail: its links after the chain, in the same requantize pass, written into out[1]
  // (the input was read into codes before the sums, so out[1] may reuse its memory).
  const RequantizeSpec rs(s);
  const size_t y_slot = rs.y_slot;
  const std::vector<ChainLink>& chain = rs.chain;
  auto stream = std::make_shared<dnnl::stream>(int8_engine());
  // FP32 sums in the output's own layout are written into the output and requantized in place.
  const bool sums_in_y = path == Int8ConvPath::kFp32 && acc_block == dst_block;
  auto io = s.codes_io ? s.codes_io : std::make_shared<Int8CodesIo>();
  io->can_read = path == Int8ConvPath::kVnni && src_block == kNhwcBlock && q_block == kNhwcBlock;
  io->read_scale = in_scale;
  const float final_scale = chain_final_int8_scale(chain);
  io->can_write = final_scale > 0.f && dst_block == kNhwcBlock && acc_block == kNhwcBlock;
  io->write_scale = io->can_write ? final_scale : 0.f;
  Kernel whole = [=](const std::vector<void*>& in, const std::vector<void*>& out) {
    const float* x = static_cast<const float*>(in[0]);
    float* y = static_cast<float*>(out[y_slot]);
    void* q = io->read ? in[0] : scratch->src.data();
    void* acc = sums_in_y && !io->write ? static_cast<void*>(y) : scratch->dst.data();
    if (!io->read && path == Int8ConvPath::kVnni) quantize_codes(x, static_cast<int8_t*>(q), in_dims, src_block, q_block, in_scale);
    else if (!io->read) quantize_codes(x, static_cast<float*>(q), in_dims, src_block, q_block, in_scale);
    prim->src.set_data_handle(q);
    prim->dst.set_data_handle(acc);
    prim->prim.execute(*stream, {{DNNL_ARG_SRC, prim->src}, {DNNL_ARG_WEIGHTS, prim->wei}, {DNNL_ARG_DST, prim->dst}});
    stream->wait();
    const Requantize rq = rs.view();
    int8_t* y_codes = static_cast<int8_t*>(out[y_slot]);
    if (io->write && path == Int8ConvPath::kVnni)
      requantize_codes(static_cast<const int32_t*>(acc), y_codes, out_dims, rq, 1.f / io->write_scale);
    else if (io->write) requantize_codes(static_cast<const float*>(acc), y_codes, out_dims, rq, 1.f / io->write_scale);
    else if (path == Int8ConvPath::kVnni) requantize(static_cast<const int32_t*>(acc), acc_block, y, dst_block, out_dims, rq);
    else requantize(static_cast<const float*>(acc), acc_block, y, dst_block, out_dims, rq);
  };
  if (Kernel tiled = make_pointwise_tiled_kernel(s, path, whole, io)) {
    ++tiled_kernels_built;
    return tiled;
  }
  if (Kernel rows = make_row_tiled_kernel(s, path, whole, io, scratch)) {
    ++row_tiled_kernels_built;
    return rows;
  }
  return whole;
}

void int8_codes(const float* x, int8_t* q, int64_t n, float inv_scale, SimdLevel level) {
  if (level == SimdLevel::kBest) return codes_s8(x, q, n, inv_scale);
  codes_s8_loop(x, q, n, inv_scale);
}

uint64_t int8_tiled_kernels_built() { return tiled_kernels_built.load(); }
uint64_t int8_row_tiled_kernels_built() { return row_tiled_kernels_built.load(); }

}  // namespace tandem::cpu
