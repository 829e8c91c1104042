// The fused chain run with AVX-512F (+ F16C): 16 floats per vector, tails by mask registers.
// Compiled with -mavx512f -mf16c (CMakeLists.txt) and called only where the CPU has both
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
  // rne(fl(x / scale)), the code fake_quant_int8 rounds before its clamp (the IEEE division: a
  // multiply by fl(1 / scale) with a check that it rounds the same measured slower here).
  static V int8_code(V x, V scale) {
    return _mm512_roundscale_ps(_mm512_div_ps(x, scale), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
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
