// Chain links fused in registers (src/backend/cpu/chain_fused.h) against the links computed one
// by one in scalar arithmetic (ops::elementwise, ops::activation, round_to_fp16, fake_quant_int8):
// random chains of every fusable link over every float class, lengths with partial vectors. The
// ctest run Cpu.WithoutAvx512 repeats this with the AVX2 run; CpuFusedChain.IsUsedHere fails if
// neither runs on this machine.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "../../src/backend/cpu/kernels.h"
#include "tandem/numerics.h"
#include "tandem/op_semantics.h"

using namespace tandem;

namespace {

uint32_t bits(float f) { return std::bit_cast<uint32_t>(f); }

// Inputs: normals of several magnitudes, ties of the half grid and of the INT8 grids used below,
// signed zeros, subnormals, infinities, NaNs.
std::vector<float> inputs(size_t n, std::mt19937& rng) {
  std::vector<float> xs;
  std::uniform_real_distribution<float> u(-8.f, 8.f);
  const float specials[] = {0.f, -0.f, 1e-40f, -1e-40f, INFINITY, -INFINITY, NAN, -NAN, 65520.f, -65504.f,
                            1.f + 1.f / 2048.f, 2.5f * 0.05f, -3.5f * 0.05f, 0.5f * 0.0473f, 127.5f * 0.05f, 3.f, -3.f, 6.f};
  for (size_t i = 0; i < n; ++i) {
    const uint32_t pick = rng() % 16;
    if (pick == 0) xs.push_back(specials[rng() % std::size(specials)]);
    else if (pick == 1) xs.push_back(std::bit_cast<float>(uint32_t(rng())));
    else xs.push_back(u(rng) * (pick == 2 ? 1000.f : 1.f));
  }
  return xs;
}

// One random fusable link.
cpu::ChainLink random_link(std::mt19937& rng) {
  cpu::ChainLink l;
  const ElementWiseOp ops[] = {ElementWiseOp::kSum, ElementWiseOp::kProd, ElementWiseOp::kSub,
                               ElementWiseOp::kDiv, ElementWiseOp::kMax, ElementWiseOp::kMin};
  const float scalars[] = {3.f, 6.f, 0.5f, -1.25f, 0.f, 1.f / 6.f};
  switch (rng() % 10) {
    case 0: l.kind = cpu::ChainLink::kScalarRight; break;
    case 1: l.kind = cpu::ChainLink::kScalarLeft; break;
    case 2: l.kind = cpu::ChainLink::kChainInputRight; break;
    case 3: l.kind = cpu::ChainLink::kChainInputLeft; break;
    case 4: l.kind = cpu::ChainLink::kCaptureInput; return l;
    case 5: l.kind = cpu::ChainLink::kRoundFp16; return l;
    case 6: {
      const float scales[] = {0.05f, 0.0473f, 1.f / 127.f, 3e38f, 1e-39f};
      l.kind = cpu::ChainLink::kRoundInt8, l.scalar = scales[rng() % std::size(scales)];
      return l;
    }
    default: {
      const ActivationParams acts[] = {{ActivationType::kRelu, 0.f, 0.f}, {ActivationType::kLeakyRelu, 0.1f, 0.f},
                                       {ActivationType::kClip, 0.f, 6.f}, {ActivationType::kHardSigmoid, 1.f / 6.f, 0.5f}};
      l.kind = cpu::ChainLink::kActivation, l.act = acts[rng() % std::size(acts)];
      return l;
    }
  }
  l.op = ops[rng() % std::size(ops)];
  l.scalar = scalars[rng() % std::size(scalars)];
  return l;
}

// The links one by one, in scalar float arithmetic.
float reference(const std::vector<cpu::ChainLink>& links, float x) {
  float v = x, x0 = x;
  for (const cpu::ChainLink& l : links) {
    switch (l.kind) {
      case cpu::ChainLink::kScalarRight: v = ops::elementwise(l.op, v, l.scalar); break;
      case cpu::ChainLink::kScalarLeft: v = ops::elementwise(l.op, l.scalar, v); break;
      case cpu::ChainLink::kChainInputRight: v = ops::elementwise(l.op, v, x0); break;
      case cpu::ChainLink::kChainInputLeft: v = ops::elementwise(l.op, x0, v); break;
      case cpu::ChainLink::kCaptureInput: x0 = v; break;
      case cpu::ChainLink::kRoundFp16: v = round_to_fp16(v); break;
      case cpu::ChainLink::kRoundInt8: v = fake_quant_int8(v, l.scalar); break;
      case cpu::ChainLink::kActivation: v = ops::activation(l.act.type, v, l.act.alpha, l.act.beta); break;
      case cpu::ChainLink::kGridLookup: ADD_FAILURE() << "no lookups here"; break;
    }
  }
  return v;
}

}  // namespace

TEST(CpuFusedChain, IsUsedHere) {
  // Every x86-64 machine this project runs on has AVX2 and F16C; without them the links run one
  // by one and the test below compares nothing fused.
  EXPECT_NE(cpu::cpu_vectors(), cpu::CpuVectors::kNone);
}

TEST(CpuFusedChain, RandomChainsEqualTheLinksOneByOne) {
  std::mt19937 rng(20261203);
  for (int trial = 0; trial < 400; ++trial) {
    std::vector<cpu::ChainLink> links(2 + rng() % 12);
    for (cpu::ChainLink& l : links) l = random_link(rng);
    // Lengths around the vector and group sizes (partial vectors and groups), and over a block.
    const int64_t lengths[] = {1, 7, 16, 17, 127, 128, 129, 1000, 1024, 1500};
    const int64_t n = lengths[trial % std::size(lengths)];
    const std::vector<float> x = inputs(size_t(n), rng);
    std::vector<float> y(x.size()), in_place = x;
    cpu::apply_chain(links, x.data(), y.data(), n);
    cpu::apply_chain(links, in_place.data(), in_place.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      const float want = reference(links, x[size_t(i)]);
      const float got = y[size_t(i)];
      if (std::isnan(want) && std::isnan(got)) continue;  // NaN payloads are not compared
      ASSERT_EQ(bits(got), bits(want)) << "trial " << trial << ", value " << i << " (x = " << x[size_t(i)] << ", "
                                       << links.size() << " links)";
      ASSERT_EQ(bits(in_place[size_t(i)]), bits(got)) << "in place, trial " << trial << ", value " << i;
    }
  }
}

TEST(CpuFusedChain, Int8RoundingAtEveryTieEqualsFakeQuant) {
  // The fused INT8 rounding against fake_quant_int8: every half-integer tie k + 0.5 of x / scale
  // and the floats around it, for scales whose reciprocal is normal and some whose is not. (A
  // multiply by the reciprocal would not do: at 0.05, x = -6.07499981 gives
  // fl(x * fl(1 / 0.05)) = -121.5 but fl(x / 0.05) = -121.499992.)
  for (float scale : {0.05f, 0.0473f, 1.f / 127.f, 1.f / 3.f, 0.1f, 7.3f, 1e-30f, 3e38f, 1e-39f}) {
    std::vector<float> x;
    for (int k = -131; k <= 131; ++k) {
      float v = (float(k) + 0.5f) * scale;
      for (int step = 0; step < 6; ++step) v = std::nextafter(v, -INFINITY);
      // Each beside a value far from any tie (vectors mixing both).
      for (int step = 0; step < 13; ++step, v = std::nextafter(v, INFINITY)) x.push_back(v), x.push_back(float(k) * scale);
    }
    std::vector<cpu::ChainLink> links(2);
    links[0].kind = cpu::ChainLink::kRoundInt8, links[0].scalar = scale;
    links[1].kind = cpu::ChainLink::kScalarRight, links[1].op = ElementWiseOp::kProd, links[1].scalar = 1.f;
    std::vector<float> y(x.size());
    cpu::apply_chain(links, x.data(), y.data(), int64_t(x.size()));
    size_t differ = 0, first = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      const float want = fake_quant_int8(x[i], scale) * 1.f;
      if (bits(y[i]) != bits(want) && !differ++) first = i;
    }
    EXPECT_EQ(differ, 0u) << "scale " << scale << ", first at x = " << x[first];
  }
}
