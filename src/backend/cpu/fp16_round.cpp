// FP16 rounding and INT8 fake quantization of float arrays (the kRound steps of emulated layers).
//
// FP16: F16C's vcvtps2ph /
// vcvtph2ps, 8 values per instruction, where the CPU has them (runtime check), else the scalar
// round_to_fp16. Both give the same bits: round to nearest even with an explicit rounding
// immediate (MXCSR's mode is not used), overflow to infinity, half subnormals kept, float
// subnormals to signed zero; NaN lanes are rewritten to round_to_fp16's quiet NaN (the hardware
// keeps payload bits, the scalar code does not). Intel SDM, VCVTPS2PH; tests/backend/cpu_fp16_test.cpp.
//
// INT8: fake_quant_int8 (numerics.h) 8 values at a time with AVX: the same IEEE division,
// vroundps with round-to-nearest-even (nearbyint in the default rounding mode), the clamps as
// vminps / vmaxps with the bound first (a NaN passes through, as in the scalar code), the same
// multiply: the same bits.
#include <cpuid.h>
// GCC 12's AVX-512 intrinsics start from _mm512_undefined_*(), which -Wmaybe-uninitialized
// reports inside its own header (a known false positive of that release).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "kernels.h"
#include "parallel.h"
#include "tandem/numerics.h"

namespace tandem::cpu {

namespace {

constexpr float kRoundMagic = 12582912.f;  // 1.5 * 2^23: adding and subtracting it rounds to an integer

// The code q = rne(v * fl(1 / scale)) is exact for values v = fl(q * scale) (|q| <= 128: v *
// fl(1 / scale) lies within 3 * 128 * 2^-24 of q, far from a midpoint), clamped first, rounded
// half to even by adding and subtracting 1.5 * 2^23; -0 has its own entry (256).
bool lookup_grid_codes_scalar(const float* table, float scale, const float* x, float* y, int64_t n) {
  bool nan = false;
  for (int64_t i = 0; i < n; ++i) nan = nan || x[i] != x[i];
  if (nan) return false;
  const float inv = 1.f / scale;
  for (int64_t i = 0; i < n; ++i) {
    const float r = std::min(127.f, std::max(-128.f, x[i] * inv));
    uint32_t u = 0;
    std::memcpy(&u, &x[i], sizeof u);
    y[i] = table[u == 0x80000000u ? 256 : int32_t((r + kRoundMagic) - kRoundMagic) + 128];
  }
  return true;
}

// The codes a chain's last roundings give (codes_s8 of fake_quant_int8 of the value, perhaps
// rounded to half first), computed as those functions compute them.
void round_to_codes_scalar(const float* x, int8_t* q, int64_t n, float scale, bool fp16_first) {
  constexpr float kMagic = 12582912.f;
  const float inv = 1.f / scale;
  for (int64_t i = 0; i < n; ++i) {
    const float v = fake_quant_int8(fp16_first ? round_to_fp16(x[i]) : x[i], scale);
    const float r = std::min(127.f, std::max(-128.f, v * inv));
    q[i] = int8_t(int32_t((r + kMagic) - kMagic));
  }
}

__attribute__((target("avx,f16c"))) void round_fp16_f16c(float* y, int64_t n) {
  const __m256 quiet_nan = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fc00000));
  const __m256 sign_mask = _mm256_castsi256_ps(_mm256_set1_epi32(int32_t(0x80000000u)));
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 x = _mm256_loadu_ps(y + i);
    const __m256 r = _mm256_cvtph_ps(_mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT));
    // NaN lanes: x compared with itself is unordered exactly for NaN.
    const __m256 is_nan = _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
    const __m256 nan_out = _mm256_or_ps(quiet_nan, _mm256_and_ps(x, sign_mask));
    // A bitwise select, not vblendvps: GCC 12 turns that intrinsic with a compare mask into a
    // branch per lane (measured: 55% of an FP16-emulated cls engine's time).
    _mm256_storeu_ps(y + i, _mm256_or_ps(_mm256_andnot_ps(is_nan, r), _mm256_and_ps(is_nan, nan_out)));
  }
  for (; i < n; ++i) y[i] = round_to_fp16(y[i]);
}

// The same 16 values per instruction where the CPU has AVX-512: vcvtps2ph / vcvtph2ps round the
// same at every width; NaN lanes selected by a mask register (no blend-to-branch trap here).
__attribute__((target("avx512f"))) void round_fp16_avx512(float* y, int64_t n) {
  const __m512i quiet_nan = _mm512_set1_epi32(0x7fc00000), sign_mask = _mm512_set1_epi32(int32_t(0x80000000u));
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 x = _mm512_loadu_ps(y + i);
    const __m512 r = _mm512_cvtph_ps(_mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT));
    const __mmask16 is_nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
    const __m512 nan_out = _mm512_castsi512_ps(_mm512_or_si512(quiet_nan, _mm512_and_si512(_mm512_castps_si512(x), sign_mask)));
    _mm512_storeu_ps(y + i, _mm512_mask_blend_ps(is_nan, r, nan_out));
  }
  if (i < n) round_fp16_f16c(y + i, n - i);
}

// fake_quant_int8_avx 16 values at a time: the same division, vrndscaleps to nearest even (what
// vroundps $8 does), the clamps in the same operand order, the same multiply.
__attribute__((target("avx512f"))) void fake_quant_int8_avx512(float* y, int64_t n, float scale);

__attribute__((target("avx"))) void fake_quant_int8_avx(float* y, int64_t n, float scale) {
  const __m256 s = _mm256_set1_ps(scale), hi = _mm256_set1_ps(127.f), lo = _mm256_set1_ps(-128.f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 q = _mm256_round_ps(_mm256_div_ps(_mm256_loadu_ps(y + i), s), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    // vminps(a, b) is a < b ? a : b, so min(hi, q) is q > hi ? hi : q, NaN passing as q (the
    // scalar clamp's order); likewise max(lo, q). No vblendvps (see round_fp16_f16c).
    q = _mm256_min_ps(hi, q);
    q = _mm256_max_ps(lo, q);
    _mm256_storeu_ps(y + i, _mm256_mul_ps(q, s));
  }
  for (; i < n; ++i) y[i] = fake_quant_int8(y[i], scale);
}

__attribute__((target("avx512f"))) void fake_quant_int8_avx512(float* y, int64_t n, float scale) {
  const __m512 s = _mm512_set1_ps(scale), hi = _mm512_set1_ps(127.f), lo = _mm512_set1_ps(-128.f);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m512 q = _mm512_roundscale_ps(_mm512_div_ps(_mm512_loadu_ps(y + i), s), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    q = _mm512_min_ps(hi, q);
    q = _mm512_max_ps(lo, q);
    _mm512_storeu_ps(y + i, _mm512_mul_ps(q, s));
  }
  if (i < n) fake_quant_int8_avx(y + i, n - i, scale);
}

__attribute__((target("avx2,f16c"))) void lookup_fp16_table_avx2(const float* table, const float* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT);
    _mm256_storeu_ps(y + i, _mm256_i32gather_ps(table, _mm256_cvtepu16_epi32(h), 4));
  }
  for (; i < n; ++i) y[i] = table[float_to_half(x[i])];
}

// The same 16 at a time: vcvtps2ph, zero-extended to 32-bit indices, one gather.
__attribute__((target("avx512f"))) void lookup_fp16_table_avx512(const float* table, const float* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256i h = _mm512_cvtps_ph(_mm512_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT);
    _mm512_storeu_ps(y + i, _mm512_i32gather_ps(_mm512_cvtepu16_epi32(h), table, 4));
  }
  if (i < n) lookup_fp16_table_avx2(table, x + i, y + i, n - i);
}

// Whether one of n floats is a NaN (the lookups' blocks holding one compute instead).
__attribute__((target("avx512f"))) bool has_nan_avx512(const float* x, int64_t n) {
  __mmask16 nan = 0;
  for (int64_t i = 0; i + 16 <= n; i += 16) nan |= _mm512_cmp_ps_mask(_mm512_loadu_ps(x + i), _mm512_loadu_ps(x + i), _CMP_UNORD_Q);
  for (int64_t i = n / 16 * 16; i < n; ++i) nan |= x[i] != x[i];
  return nan != 0;
}
__attribute__((target("avx2"))) bool has_nan_avx2(const float* x, int64_t n) {
  __m256 nan = _mm256_setzero_ps();
  for (int64_t i = 0; i + 8 <= n; i += 8) nan = _mm256_or_ps(nan, _mm256_cmp_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(x + i), _CMP_UNORD_Q));
  bool any = _mm256_movemask_ps(nan) != 0;
  for (int64_t i = n / 8 * 8; i < n; ++i) any = any || x[i] != x[i];
  return any;
}

// lookup_int8_grid_avx512's index, 8 at a time (the -0 select as and / andnot / or: see round_fp16_f16c).
__attribute__((target("avx2"))) bool lookup_int8_grid_avx2(const float* table, float scale, const float* x, float* y, int64_t n) {
  const __m256 s = _mm256_set1_ps(scale), hi = _mm256_set1_ps(127.f), lo = _mm256_set1_ps(-128.f);
  const __m256i bias = _mm256_set1_epi32(128), minus_zero = _mm256_set1_epi32(int32_t(0x80000000u)),
                at_minus_zero = _mm256_set1_epi32(256);
  if (has_nan_avx2(x, n)) return false;
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 q = _mm256_round_ps(_mm256_div_ps(_mm256_loadu_ps(x + i), s), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    q = _mm256_max_ps(lo, _mm256_min_ps(hi, q));
    const __m256i is_minus_zero = _mm256_cmpeq_epi32(_mm256_castps_si256(q), minus_zero);
    const __m256i idx = _mm256_or_si256(_mm256_andnot_si256(is_minus_zero, _mm256_add_epi32(_mm256_cvtps_epi32(q), bias)),
                                        _mm256_and_si256(is_minus_zero, at_minus_zero));
    _mm256_storeu_ps(y + i, _mm256_i32gather_ps(table, idx, 4));
  }
  for (; i < n; ++i) {
    const float q = std::min(127.f, std::max(-128.f, std::nearbyint(x[i] / scale)));
    y[i] = table[std::signbit(q) && q == 0.f ? 256 : int32_t(q) + 128];
  }
  return true;
}

// The index of fake_quant_int8's code: q = clamp(rne(x / scale)) as fake_quant_int8_avx512 computes
// it (the same division, the clamps in the same operand order), q + 128, and 256 for q = -0 (which fake_quant_int8 keeps:
// -0 * scale = -0). False, nothing written, where the block holds a NaN.
__attribute__((target("avx512f"))) bool lookup_int8_grid_avx512(const float* table, float scale, const float* x, float* y, int64_t n) {
  const __m512 s = _mm512_set1_ps(scale), hi = _mm512_set1_ps(127.f), lo = _mm512_set1_ps(-128.f);
  const __m512i bias = _mm512_set1_epi32(128), minus_zero = _mm512_set1_epi32(int32_t(0x80000000u)),
                at_minus_zero = _mm512_set1_epi32(256);
  if (has_nan_avx512(x, n)) return false;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m512 q = _mm512_roundscale_ps(_mm512_div_ps(_mm512_loadu_ps(x + i), s), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    q = _mm512_max_ps(lo, _mm512_min_ps(hi, q));
    const __m512i qi = _mm512_castps_si512(q);
    __m512i idx = _mm512_add_epi32(_mm512_cvtps_epi32(q), bias);
    idx = _mm512_mask_blend_epi32(_mm512_cmpeq_epi32_mask(qi, minus_zero), idx, at_minus_zero);
    _mm512_storeu_ps(y + i, _mm512_i32gather_ps(idx, table, 4));
  }
  for (; i < n; ++i) {
    const float q = std::min(127.f, std::max(-128.f, std::nearbyint(x[i] / scale)));
    y[i] = table[std::signbit(q) && q == 0.f ? 256 : int32_t(q) + 128];
  }
  return true;
}

// lookup_grid_codes, 16 or 8 at a time: the same multiply, clamps, rounding by the magic number
// (add, subtract: exact in the default rounding mode), -0 by its bits.
__attribute__((target("avx512f"))) bool lookup_grid_codes_avx512(const float* table, float scale, const float* x, float* y,
                                                                 int64_t n) {
  if (has_nan_avx512(x, n)) return false;
  const __m512 inv = _mm512_set1_ps(1.f / scale), hi = _mm512_set1_ps(127.f), lo = _mm512_set1_ps(-128.f),
               magic = _mm512_set1_ps(kRoundMagic);
  const __m512i bias = _mm512_set1_epi32(128), minus_zero = _mm512_set1_epi32(int32_t(0x80000000u)),
                at_minus_zero = _mm512_set1_epi32(256);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 v = _mm512_loadu_ps(x + i);
    const __m512 r = _mm512_min_ps(hi, _mm512_max_ps(lo, _mm512_mul_ps(v, inv)));
    __m512i idx = _mm512_add_epi32(_mm512_cvtps_epi32(_mm512_sub_ps(_mm512_add_ps(r, magic), magic)), bias);
    idx = _mm512_mask_blend_epi32(_mm512_cmpeq_epi32_mask(_mm512_castps_si512(v), minus_zero), idx, at_minus_zero);
    _mm512_storeu_ps(y + i, _mm512_i32gather_ps(idx, table, 4));
  }
  return i == n || lookup_grid_codes_scalar(table, scale, x + i, y + i, n - i);
}

__attribute__((target("avx2"))) bool lookup_grid_codes_avx2(const float* table, float scale, const float* x, float* y,
                                                            int64_t n) {
  if (has_nan_avx2(x, n)) return false;
  const __m256 inv = _mm256_set1_ps(1.f / scale), hi = _mm256_set1_ps(127.f), lo = _mm256_set1_ps(-128.f),
               magic = _mm256_set1_ps(kRoundMagic);
  const __m256i bias = _mm256_set1_epi32(128), minus_zero = _mm256_set1_epi32(int32_t(0x80000000u)),
                at_minus_zero = _mm256_set1_epi32(256);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    const __m256 r = _mm256_min_ps(hi, _mm256_max_ps(lo, _mm256_mul_ps(v, inv)));
    const __m256i code = _mm256_add_epi32(_mm256_cvtps_epi32(_mm256_sub_ps(_mm256_add_ps(r, magic), magic)), bias);
    const __m256i is_minus_zero = _mm256_cmpeq_epi32(_mm256_castps_si256(v), minus_zero);
    const __m256i idx = _mm256_or_si256(_mm256_andnot_si256(is_minus_zero, code), _mm256_and_si256(is_minus_zero, at_minus_zero));
    _mm256_storeu_ps(y + i, _mm256_i32gather_ps(table, idx, 4));
  }
  return i == n || lookup_grid_codes_scalar(table, scale, x + i, y + i, n - i);
}

// round_to_codes, 16 or 8 at a time: FP16 rounding (vcvtps2ph / vcvtph2ps), fake_quant_int8's
// division and rounding, then codes_s8's clamps (max first: a NaN gives -128, as there) and packing.
__attribute__((target("avx512f"))) void round_to_codes_avx512(const float* x, int8_t* q, int64_t n, float scale,
                                                             bool fp16_first) {
  const __m512 s = _mm512_set1_ps(scale), hi = _mm512_set1_ps(127.f), lo = _mm512_set1_ps(-128.f);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m512 v = _mm512_loadu_ps(x + i);
    if (fp16_first) v = _mm512_cvtph_ps(_mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
    const __m512 r = _mm512_roundscale_ps(_mm512_div_ps(v, s), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512 c = _mm512_min_ps(_mm512_max_ps(r, lo), hi);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + i), _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(c)));
  }
  round_to_codes_scalar(x + i, q + i, n - i, scale, fp16_first);
}

__attribute__((target("avx2,f16c"))) void round_to_codes_avx2(const float* x, int8_t* q, int64_t n, float scale,
                                                              bool fp16_first) {
  const __m256 s = _mm256_set1_ps(scale), hi = _mm256_set1_ps(127.f), lo = _mm256_set1_ps(-128.f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_loadu_ps(x + i);
    if (fp16_first) v = _mm256_cvtph_ps(_mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
    const __m256 r = _mm256_round_ps(_mm256_div_ps(v, s), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m256i c = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(r, lo), hi));
    // 8 int32 in [-128, 127] -> 8 bytes: pack to 16 bits within lanes, join the lanes, pack to 8.
    const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(c), _mm256_extracti128_si256(c, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(q + i), _mm_packs_epi16(w, w));
  }
  round_to_codes_scalar(x + i, q + i, n - i, scale, fp16_first);
}

bool has_avx2() {
  static const bool yes = __builtin_cpu_supports("avx2");
  return yes;
}

bool has_avx512f() {
  static const bool yes = __builtin_cpu_supports("avx512f") && !isa_capped_below_avx512();
  return yes;
}

bool has_avx() {
  static const bool yes = __builtin_cpu_supports("avx");
  return yes;
}

bool has_f16c() {
  // CPUID leaf 1, ECX bit 29 (clang's __builtin_cpu_supports has no "f16c"); "avx" includes the
  // OS's saving of the YMM registers.
  static const bool yes = [] {
    unsigned a = 0, b = 0, c = 0, d = 0;
    return __builtin_cpu_supports("avx") && __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C) != 0;
  }();
  return yes;
}

}  // namespace

bool isa_capped_below_avx512() {
  static const bool capped = [] {
    const char* v = std::getenv("ONEDNN_MAX_CPU_ISA");
    std::string isa = v ? v : "";
    for (char& c : isa) c = char(std::toupper(static_cast<unsigned char>(c)));
    return isa == "SSE41" || isa == "AVX" || isa == "AVX2" || isa == "AVX2_VNNI" || isa == "AVX2_VNNI_2";
  }();
  return capped;
}

CpuVectors cpu_vectors() {
  static const CpuVectors v = has_avx512f() && has_f16c() ? CpuVectors::kAvx512
                              : has_avx2() && has_f16c()  ? CpuVectors::kAvx2
                                                          : CpuVectors::kNone;
  return v;
}

void round_fp16_block(float* y, int64_t n) {
  if (has_avx512f() && has_f16c()) return round_fp16_avx512(y, n);
  if (has_f16c()) return round_fp16_f16c(y, n);
  for (int64_t i = 0; i < n; ++i) y[i] = round_to_fp16(y[i]);
}

void lookup_fp16_table(const float* table, const float* x, float* y, int64_t n) {
  if (has_avx512f() && has_f16c()) return lookup_fp16_table_avx512(table, x, y, n);
  if (has_avx2() && has_f16c()) return lookup_fp16_table_avx2(table, x, y, n);
  for (int64_t i = 0; i < n; ++i) y[i] = table[float_to_half(x[i])];
}

void round_to_codes(const float* x, int8_t* q, int64_t n, float scale, bool fp16_first) {
  if (has_avx512f() && has_f16c()) return round_to_codes_avx512(x, q, n, scale, fp16_first);
  if (has_avx2() && has_f16c()) return round_to_codes_avx2(x, q, n, scale, fp16_first);
  round_to_codes_scalar(x, q, n, scale, fp16_first);
}

bool lookup_grid_codes(const float* table, float scale, const float* x, float* y, int64_t n) {
  if (has_avx512f()) return lookup_grid_codes_avx512(table, scale, x, y, n);
  if (has_avx2()) return lookup_grid_codes_avx2(table, scale, x, y, n);
  return lookup_grid_codes_scalar(table, scale, x, y, n);
}

bool lookup_int8_grid(const float* table, float scale, const float* x, float* y, int64_t n) {
  if (has_avx512f()) return lookup_int8_grid_avx512(table, scale, x, y, n);
  if (has_avx2()) return lookup_int8_grid_avx2(table, scale, x, y, n);
  for (int64_t i = 0; i < n; ++i)
    if (x[i] != x[i]) return false;
  // The scalar loop computes fake_quant_int8's q exactly as the AVX and AVX-512 roundings do.
  for (int64_t i = 0; i < n; ++i) {
    const float q = std::min(127.f, std::max(-128.f, std::nearbyint(x[i] / scale)));
    y[i] = table[std::signbit(q) && q == 0.f ? 256 : int32_t(q) + 128];
  }
  return true;
}

void fake_quant_int8_block(float* y, int64_t n, float scale) {
  if (has_avx512f()) return fake_quant_int8_avx512(y, n, scale);
  if (has_avx()) return fake_quant_int8_avx(y, n, scale);
  for (int64_t i = 0; i < n; ++i) y[i] = fake_quant_int8(y[i], scale);
}

void round_fp16(float* y, int64_t n, bool allow_simd) {
  if (allow_simd && has_f16c()) {
    // Large arrays on the thread team, in 8-aligned chunks.
    const int64_t chunk = 16384;
    const int64_t chunks = (n + chunk - 1) / chunk;
    parallel_for(chunks, n >= 4 * chunk, [&](int64_t c) { round_fp16_block(y + c * chunk, std::min(chunk, n - c * chunk)); });
    return;
  }
  for (int64_t i = 0; i < n; ++i) y[i] = round_to_fp16(y[i]);
}

void fake_quant_int8_array(float* y, int64_t n, float scale, bool allow_simd) {
  if (allow_simd && has_avx()) {
    const int64_t chunk = 16384;
    const int64_t chunks = (n + chunk - 1) / chunk;
    parallel_for(chunks, n >= 4 * chunk,
                 [&](int64_t c) { fake_quant_int8_block(y + c * chunk, std::min(chunk, n - c * chunk), scale); });
    return;
  }
  for (int64_t i = 0; i < n; ++i) y[i] = fake_quant_int8(y[i], scale);
}

}  // namespace tandem::cpu
