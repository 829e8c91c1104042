// How many products per second one core's AVX2 instructions give, for the question of
// docs/cpu-backend.md ("Exact sums"): could an integer kernel of tandem's own sum INT8 codes
// exactly faster than oneDNN's FP32 convolutions over them on a CPU without VNNI?
//   - Fp32Fma: vfmadd231ps, 8 products each (the FP32-sum path's arithmetic).
//   - Int16Madd: vpmaddwd + vpaddd, 16 products (int16 codes; exact into int32).
//   - Int8SignTrick: vpsignb twice, vpmaddubsw, vpmaddwd (by ones), vpaddd: 32 products, exact
//     because the u8 operand is |q_x| <= 128 and the s8 operand q_w carries q_x's sign, so each
//     int16 pair sum is at most 2 * 128 * 127 = 32512 (no saturation).
// Twelve independent accumulators, operands in registers: the instructions' issue rate alone, an
// upper bound for a kernel that must also load and broadcast its operands. items/s = products/s.
#include <benchmark/benchmark.h>
#include <immintrin.h>

namespace {

constexpr int kAccumulators = 12;

__attribute__((target("avx2,fma"))) void Fp32Fma(benchmark::State& state) {
  __m256 acc[kAccumulators];
  __m256 a = _mm256_set1_ps(1.0001f);
  const __m256 b = _mm256_set1_ps(0.9999f);
  for (int i = 0; i < kAccumulators; ++i) acc[i] = _mm256_set1_ps(float(i));
  for (auto _ : state) {
    for (int rep = 0; rep < 1024; ++rep) {
#pragma GCC unroll 12
      for (int i = 0; i < kAccumulators; ++i) acc[i] = _mm256_fmadd_ps(a, b, acc[i]);
      __asm__ volatile("" : "+x"(a));  // not hoisted out of the loop
    }
  }
  for (int i = 0; i < kAccumulators; ++i) benchmark::DoNotOptimize(acc[i]);
  state.SetItemsProcessed(state.iterations() * 1024 * kAccumulators * 8);
}

__attribute__((target("avx2"))) void Int16Madd(benchmark::State& state) {
  __m256i acc[kAccumulators];
  __m256i a = _mm256_set1_epi16(3);
  const __m256i b = _mm256_set1_epi16(-5);
  for (int i = 0; i < kAccumulators; ++i) acc[i] = _mm256_set1_epi32(i);
  for (auto _ : state) {
    for (int rep = 0; rep < 1024; ++rep) {
#pragma GCC unroll 12
      for (int i = 0; i < kAccumulators; ++i) acc[i] = _mm256_add_epi32(acc[i], _mm256_madd_epi16(a, b));
      __asm__ volatile("" : "+x"(a));
    }
  }
  for (int i = 0; i < kAccumulators; ++i) benchmark::DoNotOptimize(acc[i]);
  state.SetItemsProcessed(state.iterations() * 1024 * kAccumulators * 16);
}

__attribute__((target("avx2"))) void Int8SignTrick(benchmark::State& state) {
  __m256i acc[kAccumulators];
  __m256i x = _mm256_set1_epi8(-3), w = _mm256_set1_epi8(5);
  const __m256i ones = _mm256_set1_epi16(1);
  for (int i = 0; i < kAccumulators; ++i) acc[i] = _mm256_set1_epi32(i);
  for (auto _ : state) {
    for (int rep = 0; rep < 1024; ++rep) {
#pragma GCC unroll 12
      for (int i = 0; i < kAccumulators; ++i) {
        const __m256i pairs = _mm256_maddubs_epi16(_mm256_sign_epi8(x, x), _mm256_sign_epi8(w, x));
        acc[i] = _mm256_add_epi32(acc[i], _mm256_madd_epi16(pairs, ones));
        __asm__ volatile("" : "+x"(w));
      }
      __asm__ volatile("" : "+x"(x));
    }
  }
  for (int i = 0; i < kAccumulators; ++i) benchmark::DoNotOptimize(acc[i]);
  state.SetItemsProcessed(state.iterations() * 1024 * kAccumulators * 32);
}

}  // namespace

BENCHMARK(Fp32Fma);
BENCHMARK(Int16Madd);
BENCHMARK(Int8SignTrick);
BENCHMARK_MAIN();
