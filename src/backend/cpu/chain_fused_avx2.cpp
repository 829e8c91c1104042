// The fused chain run with AVX2 (+ F16C): 8 floats per vector, tails by vmaskmovps. Compiled with
// -mavx2 -mf16c (CMakeLists.txt) and called only where the CPU has both (cpu_vectors()).
// Selects are bitwise (and / andnot / or), as in fp16_round.cpp: GCC 12 may turn vblendvps with a
// compare mask into a branch per lane.
#include <immintrin.h>

#include "chain_fused.h"

namespace tandem::cpu::fused {
namespace {

struct Avx2 {
  using V = __m256;
  // A vector's lanes: all (plain loads and stores; vmaskmovps stores are slow on some CPUs, AMD's
  // among them) or the first few (a tail: masked).
  struct M {
    __m256i lanes;
    bool full;
  };
  static constexpr int64_t kWidth = 8;
  static constexpr int kGroup = 4;  // 4 values + 4 chain inputs of 16 registers
  static M mask(int64_t rem) {
    const int32_t n = rem >= 8 ? 8 : rem <= 0 ? 0 : int32_t(rem);
    return {_mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)), n == 8};
  }
  static V load(const float* p, M k) { return k.full ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, k.lanes); }
  static void store(float* p, V v, M k) {
    if (k.full) return _mm256_storeu_ps(p, v);
    _mm256_maskstore_ps(p, k.lanes, v);
  }
  static V load_s32(const int32_t* p, M k) {
    return _mm256_cvtepi32_ps(k.full ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)) : _mm256_maskload_epi32(p, k.lanes));
  }
  // Codes of values already clamped to [-128, 127]: vcvtps2dq (half to even), packed to bytes;
  // a partial vector's bytes through a buffer.
  static void store_codes(int8_t* q, V c, M, int64_t rem) {
    if (rem <= 0) return;
    const __m256i d = _mm256_cvtps_epi32(c);
    const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(d), _mm256_extracti128_si256(d, 1));
    const __m128i b = _mm_packs_epi16(w, w);
    if (rem >= 8) return _mm_storel_epi64(reinterpret_cast<__m128i*>(q), b);
    alignas(16) int8_t bytes[16];
    _mm_store_si128(reinterpret_cast<__m128i*>(bytes), b);
    for (int64_t j = 0; j < rem; ++j) q[j] = bytes[j];
  }
  static V set1(float f) { return _mm256_set1_ps(f); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static V sub(V a, V b) { return _mm256_sub_ps(a, b); }
  static V div(V a, V b) { return _mm256_div_ps(a, b); }
  static V max_of(V a, V b) { return _mm256_max_ps(b, a); }
  static V min_of(V a, V b) { return _mm256_min_ps(b, a); }
  static V select(V when, V yes, V no) { return _mm256_or_ps(_mm256_and_ps(when, yes), _mm256_andnot_ps(when, no)); }
  static V relu(V x) { return _mm256_max_ps(x, _mm256_setzero_ps()); }
  static V leaky_relu(V x, V slope) {
    return select(_mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GE_OQ), x, _mm256_mul_ps(slope, x));
  }
  // round_fp16_f16c (fp16_round.cpp) on one vector.
  static V round_fp16(V x) {
    const V r = _mm256_cvtph_ps(_mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT));
    const V nan_out = _mm256_or_ps(_mm256_castsi256_ps(_mm256_set1_epi32(0x7fc00000)),
                                   _mm256_and_ps(x, _mm256_castsi256_ps(_mm256_set1_epi32(int32_t(0x80000000u)))));
    return select(_mm256_cmp_ps(x, x, _CMP_UNORD_Q), nan_out, r);
  }
  // The code as chain_fused_avx512.cpp computes it.
  static V int8_code(V x, V scale) {
    return _mm256_round_ps(_mm256_div_ps(x, scale), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }
  // fake_quant_int8_avx (fp16_round.cpp) from the code.
  static V fake_quant_int8(V, V q, V scale) {
    q = _mm256_min_ps(_mm256_set1_ps(127.f), q);
    q = _mm256_max_ps(_mm256_set1_ps(-128.f), q);
    return _mm256_mul_ps(q, scale);
  }
};

#include "chain_fused_body.h"

}  // namespace

void run_avx2(const Run& r) { run_body<Avx2>(r); }

}  // namespace tandem::cpu::fused
