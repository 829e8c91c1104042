// The fused chain run with AVX-512F (+ F16C): 16 floats per vector, tails by mask registers.
// Compiled with -mavx512f -mf16c (CMakeLists.txt; AVX-512F has its own FMA) and called only where the CPU has both
// (kernels_chain.cpp); everything here is in an anonymous namespace or the one entry point.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12's AVX-512 headers (fp16_round.cpp)
#endif
#include <immintrin.h>

#include "chain_fused.h"

namespace tandem::cpu::fused {
namespace {

struct Avx512 {
  using V = __m512;
  using M = __mmask16;
  static constexpr int64_t kWidth = 16;
  static constexpr int kGroup = 8;  // 8 values + 8 chain inputs of 32 registers
  static M mask(int64_t rem) { return rem >= 16 ? M(0xffff) : rem <= 0 ? M(0) : M((1u << rem) - 1u); }
  static V load(const float* p, M k) { return _mm512_maskz_loadu_ps(k, p); }
  static void store(float* p, V v, M k) { _mm512_mask_storeu_ps(p, k, v); }
  static V load_s32(const int32_t* p, M k) { return _mm512_cvtepi32_ps(_mm512_maskz_loadu_epi32(k, p)); }
  // Codes of values already clamped to [-128, 127]: vcvtps2dq (half to even), then bytes.
  static void store_codes(int8_t* q, V c, M k, int64_t) { _mm512_mask_cvtsepi32_storeu_epi8(q, k, _mm512_cvtps_epi32(c)); }
  static V set1(float f) { return _mm512_set1_ps(f); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static V sub(V a, V b) { return _mm512_sub_ps(a, b); }
  static V div(V a, V b) { return _mm512_div_ps(a, b); }
  static V max_of(V a, V b) { return _mm512_max_ps(b, a); }
  static V min_of(V a, V b) { return _mm512_min_ps(b, a); }
  // x > 0 ? x : 0 (NaN gives 0, -0 gives +0): vmaxps(x, 0).
  static V relu(V x) { return _mm512_max_ps(x, _mm512_setzero_ps()); }
  // x >= 0 ? x : slope * x (NaN: slope * NaN).
  static V leaky_relu(V x, V slope) {
    const M keep = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GE_OQ);
    return _mm512_mask_blend_ps(keep, _mm512_mul_ps(slope, x), x);
  }
  // round_fp16_avx512 (fp16_round.cpp) on one vector.
  static V round_fp16(V x) {
    const V r = _mm512_cvtph_ps(_mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT));
    const M is_nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
    const __m512i nan_bits = _mm512_or_si512(_mm512_set1_epi32(0x7fc00000),
                                             _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(int32_t(0x80000000u))));
    return _mm512_mask_blend_ps(is_nan, r, _mm512_castsi512_ps(nan_bits));
  }
  // fl(x / c) for a constant c without the division where that provably gives the same float
  // (recip = fl(1 / c); c within [2^-20, 2^20] in magnitude, recip normal: kernels_chain.cpp).
  // q1 is q0 = fl(x * recip) corrected once by its remainder (Markstein); it is fl(x / c) exactly
  // where the remainder of q1, e1 = x - q1 * c (one FMA: exact where q1 is within an ulp of x / c,
  // and too large to pass otherwise), is below half an ulp of q1 times |c| (a quarter at a power
  // of two, where the ulp below is half): then x / c lies strictly inside q1's rounding interval.
  // |q1| within [2^-60, 2^60] keeps every quantity normal; a zero x gives q0 (its sign). A vector
  // with any other lane (a tie, an infinity, a NaN, out of range) divides.
  static V div_by_constant(V x, V c, V recip) {
    const V q0 = _mm512_mul_ps(x, recip);
    const V q1 = _mm512_fmadd_ps(_mm512_fnmadd_ps(q0, c, x), recip, q0);
    const V e1 = _mm512_fnmadd_ps(q1, c, x);
    const __m512i bits = _mm512_castps_si512(q1);
    const __m512i exponent = _mm512_and_si512(bits, _mm512_set1_epi32(0x7f800000));
    V half_ulp = _mm512_castsi512_ps(_mm512_sub_epi32(exponent, _mm512_set1_epi32(24 << 23)));
    const M power_of_two = _mm512_testn_epi32_mask(bits, _mm512_set1_epi32(0x007fffff));
    half_ulp = _mm512_mask_mul_ps(half_ulp, power_of_two, half_ulp, _mm512_set1_ps(0.5f));
    const V aq = _mm512_abs_ps(q1);
    const M zero = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_EQ_OQ);
    const M ok = _mm512_cmp_ps_mask(_mm512_abs_ps(e1), _mm512_mul_ps(half_ulp, _mm512_abs_ps(c)), _CMP_LT_OQ) &
                 _mm512_cmp_ps_mask(aq, _mm512_set1_ps(0x1p-60f), _CMP_GE_OQ) &
                 _mm512_cmp_ps_mask(aq, _mm512_set1_ps(0x1p60f), _CMP_LE_OQ);
    if (M(ok | zero) == M(0xffff)) return _mm512_mask_blend_ps(zero, q1, q0);
    return _mm512_div_ps(x, c);
  }
  // rne(fl(x / scale)), the code fake_quant_int8 rounds before its clamp.
  static V int8_code_divide(V x, V scale) {
    return _mm512_roundscale_ps(_mm512_div_ps(x, scale), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }
  // The same without the division where that provably gives the same integer: q0 = fl(x * recip)
  // (recip = fl(1 / scale), both normal) lies within |x / scale| * 2^-22.4 of fl(x / scale) (three
  // roundings of relative 2^-24 at most), so where the nearest half-integer is further from q0
  // than |q0| * 2^-20 both round to the same integer, with the same sign of a zero. q0 - k is
  // exact for |q0| < 2^24, and 0.5 - |q0 - k| exact where it matters (Sterbenz); from |q0| >= 256
  // on, both clamp alike. A vector with any other lane (near a tie, a NaN) divides. vdivps was
  // most of an INT8 rounding's time.
  static V int8_code(V x, V scale, V recip) {
    const V q0 = _mm512_mul_ps(x, recip);
    const V k = _mm512_roundscale_ps(q0, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const V aq = _mm512_abs_ps(q0);
    const V gap = _mm512_sub_ps(_mm512_set1_ps(0.5f), _mm512_abs_ps(_mm512_sub_ps(q0, k)));
    const M safe = _mm512_cmp_ps_mask(gap, _mm512_mul_ps(aq, _mm512_set1_ps(0x1p-20f)), _CMP_GT_OQ) |
                   _mm512_cmp_ps_mask(aq, _mm512_set1_ps(256.f), _CMP_GE_OQ);
    if (safe == M(0xffff)) return k;
    return int8_code_divide(x, scale);
  }
  // fake_quant_int8_avx512 (fp16_round.cpp) from the code: the clamps in its operand order, the
  // same multiply.
  static V fake_quant_int8(V, V q, V scale) {
    q = _mm512_min_ps(_mm512_set1_ps(127.f), q);
    q = _mm512_max_ps(_mm512_set1_ps(-128.f), q);
    return _mm512_mul_ps(q, scale);
  }
};

#include "chain_fused_body.h"

}  // namespace

void run_avx512(const Run& r) { run_body<Avx512>(r); }

}  // namespace tandem::cpu::fused
