// The CPU SoftMax kernel (src/backend/cpu/kernels_softmax.cpp): hand-worked values, accuracy
// against a double-precision reference, and the same bits from its AVX-512, AVX2 and baseline
// builds on this machine (results must not depend on the instruction set).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "../../src/backend/cpu/kernels.h"

using namespace tandem;
using tandem::cpu::SimdLevel;

namespace {

std::vector<float> softmax(const std::vector<float>& x, int64_t outer, int64_t n, int64_t inner, SimdLevel level) {
  std::vector<float> y(x.size());
  cpu::softmax_float(x.data(), y.data(), outer, n, inner, level);
  return y;
}

// Softmax over the middle axis in double, from the same float differences x - max as the kernel
// (that subtraction's rounding is the algorithm's, not the kernel's).
std::vector<double> reference(const std::vector<float>& x, int64_t outer, int64_t n, int64_t inner) {
  std::vector<double> y(x.size());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j = 0; j < inner; ++j) {
      auto at = [&](int64_t i) { return size_t((o * n + i) * inner + j); };
      float m = -INFINITY;
      double sum = 0;
      for (int64_t i = 0; i < n; ++i) m = std::max(m, x[at(i)]);
      for (int64_t i = 0; i < n; ++i) sum += std::exp(double(x[at(i)] - m));
      for (int64_t i = 0; i < n; ++i) y[at(i)] = std::exp(double(x[at(i)] - m)) / sum;
    }
  return y;
}

std::vector<float> random_values(size_t count, float lo, float hi, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(count);
  for (float& f : v) f = u(rng);
  return v;
}

}  // namespace

TEST(CpuSoftmax, HandWorkedValues) {
  // softmax(0, ln 3) = (1/4, 3/4); a -inf entry (a mask) gives exactly 0.
  auto y = softmax({0.f, std::log(3.f), -INFINITY}, 1, 3, 1, SimdLevel::kBest);
  EXPECT_NEAR(y[0], 0.25f, 1e-7f);
  EXPECT_NEAR(y[1], 0.75f, 1e-7f);
  EXPECT_EQ(y[2], 0.f);
  // Equal inputs share the mass equally, exactly.
  auto e = softmax(std::vector<float>(40, 7.5f), 1, 40, 1, SimdLevel::kBest);
  for (float v : e) EXPECT_EQ(v, 0.025f);
}

TEST(CpuSoftmax, WithinAFewUlpOfDoublePrecision) {
  // PP-OCR rec's shape (40 rows of 6625 classes), and a strided axis.
  struct Case { int64_t outer, n, inner; float spread; };
  for (const Case c : {Case{40, 6625, 1, 20.f}, Case{3, 37, 5, 80.f}, Case{2, 1, 3, 1.f}}) {
    auto x = random_values(size_t(c.outer * c.n * c.inner), -c.spread, c.spread, 5);
    auto y = softmax(x, c.outer, c.n, c.inner, SimdLevel::kBest);
    auto r = reference(x, c.outer, c.n, c.inner);
    double worst = 0;
    for (size_t i = 0; i < y.size(); ++i)
      if (r[i] > 1e-30) worst = std::max(worst, std::abs(double(y[i]) - r[i]) / r[i]);
    EXPECT_LT(worst, 1e-6) << c.outer << "x" << c.n << "x" << c.inner;  // float eps is 1.19e-7
  }
}

TEST(CpuSoftmax, SameBitsOnEveryInstructionSet) {
  for (int64_t n : {1, 15, 16, 17, 255, 6625})
    for (int64_t inner : {1, 3}) {
      auto x = random_values(size_t(4 * n * inner), -30.f, 30.f, unsigned(n + inner));
      x[0] = -INFINITY;
      auto best = softmax(x, 4, n, inner, SimdLevel::kBest);
      for (SimdLevel lower : {SimdLevel::kAvx2, SimdLevel::kBaseline}) {
        auto other = softmax(x, 4, n, inner, lower);
        EXPECT_EQ(std::memcmp(best.data(), other.data(), best.size() * sizeof(float)), 0)
            << "n " << n << " inner " << inner << " level " << int(lower);
      }
    }
}
