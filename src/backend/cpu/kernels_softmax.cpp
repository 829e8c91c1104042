// SoftMax on the CPU: the same bits on every x86-64.
//
// One definition of the arithmetic, whatever the layout and the instruction set:
//   m = max of the row;  e_i = exp_nonpositive(x_i - m);  sum = 16 interleaved partial sums in
//   double (lane k adds e_i for i = k mod 16, in order), combined lane 0 first;  y_i = e_i * float(1 / sum).
// exp_nonpositive is a Cephes-style expf (range reduction by ln 2 split in two constants, a
// degree-6 polynomial, the power of two put in the exponent bits): plain float operations with
// no FMA contraction (CMakeLists: -ffp-contract=off; -fno-trapping-math lets its selects vectorize), so the AVX-512, AVX2 and baseline builds
// of it below round identically. std::exp would be a libm call per element: PP-OCR rec's final
// 40 x 6625 SoftMax spent 0.9 ms there, single-threaded.
// Accuracy: within 2 ulp of the correctly rounded exp on [-87, 0] (tests/backend/cpu_softmax_test.cpp);
// below -87 it returns 0 (exp(-87) ~ 1.6e-38 is near the smallest normal float; every row's sum
// is at least 1, so no output moves), and a -inf input (a mask) gives exactly 0.
#include <bit>
#include <cstdint>
#include <limits>

#include "kernels.h"
#include "parallel.h"

namespace tandem::cpu {

namespace {

constexpr int kLanes = 16;

[[gnu::always_inline]] inline float exp_nonpositive(float x) {
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;  // ln 2 = hi + lo
  constexpr float kRoundMagic = 12582912.f;                          // 1.5 * 2^23
  const bool underflows = x < -87.f;  // exp(x) below the smallest normal float: 0 (NaN passes)
  x = underflows ? -87.f : x;
  // n = round-to-nearest-even(x * log2 e) by the magic-number addition (|x log2 e| < 2^22).
  const float t = x * kLog2e + kRoundMagic;
  const float n = t - kRoundMagic;
  const int32_t ni = std::bit_cast<int32_t>(t) - 0x4B400000;
  const float r = (x - n * kLn2Hi) - n * kLn2Lo;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float er = (p * (r * r) + r) + 1.f;
  const float s = std::bit_cast<float>((ni + 127) << 23);  // 2^n, n in [-126, 0]
  return underflows ? 0.f : er * s;
}

// One contiguous row (stride 1) or one strided column (stride = inner), in the order above.
[[gnu::always_inline]] inline void softmax_line(const float* x, float* y, int64_t n, int64_t stride) {
  float lane_max[kLanes];
  for (float& v : lane_max) v = -std::numeric_limits<float>::infinity();
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int k = 0; k < kLanes; ++k) {
      const float v = x[(i + k) * stride];
      lane_max[k] = v > lane_max[k] ? v : lane_max[k];
    }
  for (; i < n; ++i) lane_max[i % kLanes] = x[i * stride] > lane_max[i % kLanes] ? x[i * stride] : lane_max[i % kLanes];
  float m = lane_max[0];
  for (int k = 1; k < kLanes; ++k) m = lane_max[k] > m ? lane_max[k] : m;
  for (i = 0; i < n; ++i) y[i * stride] = exp_nonpositive(x[i * stride] - m);
  double acc[kLanes] = {};
  i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int k = 0; k < kLanes; ++k) acc[k] += double(y[(i + k) * stride]);
  for (; i < n; ++i) acc[i % kLanes] += double(y[i * stride]);
  double sum = acc[0];
  for (int k = 1; k < kLanes; ++k) sum += acc[k];
  const float inv = float(1.0 / sum);
  for (i = 0; i < n; ++i) y[i * stride] *= inv;
}

using LineFn = void (*)(const float*, float*, int64_t, int64_t);

// Stride 1 spelled as a constant, so that the contiguous case vectorizes.
#define TANDEM_SOFTMAX_LINE(name, attributes)                                        \
  attributes void name(const float* x, float* y, int64_t n, int64_t stride) {        \
    if (stride == 1)                                                                 \
      softmax_line(x, y, n, 1);                                                      \
    else                                                                             \
      softmax_line(x, y, n, stride);                                                 \
  }
TANDEM_SOFTMAX_LINE(softmax_line_baseline, )
TANDEM_SOFTMAX_LINE(softmax_line_avx2, __attribute__((target("avx2"))))
TANDEM_SOFTMAX_LINE(softmax_line_avx512, __attribute__((target("avx512f"))))
#undef TANDEM_SOFTMAX_LINE

LineFn line_function(SimdLevel level) {
  static const bool avx512 = __builtin_cpu_supports("avx512f"), avx2 = __builtin_cpu_supports("avx2");
  switch (level) {
    case SimdLevel::kBest:
      return avx512 ? softmax_line_avx512 : avx2 ? softmax_line_avx2 : softmax_line_baseline;
    case SimdLevel::kAvx2: return avx2 ? softmax_line_avx2 : softmax_line_baseline;
    case SimdLevel::kBaseline: return softmax_line_baseline;
  }
  return softmax_line_baseline;
}

}  // namespace

void softmax_float(const float* x, float* y, int64_t outer, int64_t n, int64_t inner, SimdLevel level) {
  const LineFn line = line_function(level);
  const int64_t lines = outer * inner;
  // A thread per line is only worth it with enough elements per thread.
  parallel_for(lines, lines > 1 && lines * n >= 32768, [&](int64_t l) {
    const int64_t o = l / inner, j = l % inner;
    const int64_t base = o * n * inner + j;
    line(x + base, y + base, n, inner);
  });
}

Kernel make_softmax(const Network& net, const Layer& l) {
  const uint32_t axes = l.as<SoftMaxParams>().axes;
  const Tensor& t = net.tensors[size_t(l.inputs[0])];
  int axis = 0;
  while (axis < 31 && !(axes & (1u << axis))) ++axis;
  int64_t outer = 1, n = t.dims.empty() ? 1 : t.dims[size_t(axis)], inner = 1;
  for (int i = 0; i < axis; ++i) outer *= t.dims[size_t(i)];
  for (size_t i = size_t(axis) + 1; i < t.dims.size(); ++i) inner *= t.dims[i];
  return [=](const std::vector<void*>& in, const std::vector<void*>& out) {
    softmax_float(static_cast<const float*>(in[0]), static_cast<float*>(out[0]), outer, n, inner, SimdLevel::kBest);
  };
}

}  // namespace tandem::cpu
