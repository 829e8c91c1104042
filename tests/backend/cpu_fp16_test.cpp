// The CPU backend's vectorised FP16 rounding (fp16_round.cpp, F16C) and INT8 fake quantization
// (AVX) against the scalar round_to_fp16 / fake_quant_int8 they replace: the same bits for every
// float class (normals, rounding ties, overflow, half and float subnormals, signed zeros,
// infinities, NaNs with payloads); plain kernels that round their output block by block against
// separate rounding steps.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <set>
#include <vector>

#include "../../src/backend/cpu/kernels.h"
#include "../common/net_builder.h"
#include "tandem/numerics.h"
#include "tandem/runtime.h"

using namespace tandem;

namespace {

uint32_t bits(float f) { return std::bit_cast<uint32_t>(f); }
float from_bits(uint32_t u) { return std::bit_cast<float>(u); }

}  // namespace

TEST(CpuFp16Rounding, VectorisedEqualsScalarBitForBit) {
  std::vector<float> xs;
  // Every 997th bit pattern (4.3M values: all exponents, both signs, NaN payloads) ...
  for (uint64_t u = 0; u <= 0xffffffffull; u += 997) xs.push_back(from_bits(uint32_t(u)));
  // ... and the edges: ties at the half grid, the overflow boundary (65504 stays, 65520 -> inf),
  // the smallest half subnormal and half of it (a tie to zero), signed zeros, infinities, NaNs.
  for (float f : {1.f + 1.f / 2048.f, 1.f + 3.f / 2048.f, 65504.f, 65519.99f, 65520.f, 5.9604645e-8f,
                  2.9802322e-8f, 2.9802326e-8f, 0.f, -0.f, 1e-40f, -1e-40f})
    for (float s : {1.f, -1.f}) xs.push_back(f * s);
  for (uint32_t u : {0x7f800000u, 0xff800000u, 0x7fc00000u, 0xffc00001u, 0x7f800001u, 0x7fbfffffu})
    xs.push_back(from_bits(u));
  std::vector<float> fast = xs, slow = xs;
  cpu::round_fp16(fast.data(), int64_t(fast.size()));
  cpu::round_fp16(slow.data(), int64_t(slow.size()), false);
  size_t differ = 0, first = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    if (bits(fast[i]) != bits(slow[i]) && differ++ == 0) first = i;
  }
  EXPECT_EQ(differ, 0u) << "first at x bits 0x" << std::hex << bits(xs[first]) << ": 0x" << bits(fast[first])
                        << " vs 0x" << bits(slow[first]);
  // Hand-worked: 1 + 1/2048 is the tie between 1 and 1 + 1/1024: even -> 1; 65520 -> inf.
  EXPECT_EQ(round_to_fp16(1.f + 1.f / 2048.f), 1.f);
  EXPECT_EQ(bits(round_to_fp16(65520.f)), 0x7f800000u);
}

TEST(CpuInt8FakeQuant, VectorisedEqualsScalarBitForBit) {
  std::vector<float> xs;
  for (uint64_t u = 0; u <= 0xffffffffull; u += 9973) xs.push_back(from_bits(uint32_t(u)));
  // Ties of x / scale (2.5 -> 2, 3.5 -> 4, -2.5 -> -2), the clamps (127 and -128, not -127),
  // signed zeros, infinities, NaNs.
  for (float f : {0.125f, 0.375f, -0.125f, 15.875f, 16.f, 100.f, -16.f, -16.0625f, -100.f, 0.f, -0.f})
    xs.push_back(f);
  for (uint32_t u : {0x7f800000u, 0xff800000u, 0x7fc00000u, 0xffc00001u}) xs.push_back(from_bits(u));
  // Every half-integer tie k + 0.5 of x / scale and the floats around it, a dense sweep of the
  // clamp's range, scales whose reciprocal is not normal.
  for (float scale : {0.05f, 0.125f, 1.f / 127.f, 3.7e-3f, 0.0473f, 1.f / 3.f, 0.1f, 7.3f, 1e-30f, 3e38f, 1e-39f}) {
    std::vector<float> around = xs;
    for (int k = -131; k <= 131; ++k) {
      float x = (float(k) + 0.5f) * scale;
      for (int step = 0; step < 6; ++step) x = std::nextafter(x, -INFINITY);
      for (int step = 0; step < 13; ++step, x = std::nextafter(x, INFINITY)) around.push_back(x);
    }
    for (int i = 0; i < 200003; ++i) around.push_back(scale * (-131.f + 262.f * float((int64_t(i) * 7919) % 200003) / 200003.f));
    std::vector<float> fast = around, slow = around;
    cpu::fake_quant_int8_array(fast.data(), int64_t(fast.size()), scale);
    cpu::fake_quant_int8_array(slow.data(), int64_t(slow.size()), scale, false);
    size_t differ = 0, first = 0;
    for (size_t i = 0; i < around.size(); ++i)
      if (bits(fast[i]) != bits(slow[i]) && differ++ == 0) first = i;
    EXPECT_EQ(differ, 0u) << "scale " << scale << ", first at x bits 0x" << std::hex << bits(around[first]);
  }
  // Hand-worked, scale 0.125: 0.3125 / 0.125 = 2.5 -> 2 (even) -> 0.25; 16.0 -> 128 -> 127 -> 15.875;
  // -16.0625 -> -128.5 -> -128 -> -16.
  std::vector<float> v = {0.3125f, 16.f, -16.0625f, 0.f, 0.f, 0.f, 0.f, 0.f};
  cpu::fake_quant_int8_array(v.data(), int64_t(v.size()), 0.125f);
  EXPECT_EQ(v[0], 0.25f);
  EXPECT_EQ(v[1], 15.875f);
  EXPECT_EQ(v[2], -16.f);
}

// A chain's last roundings and the codes of their result in one pass (round_to_codes: what an
// INT8 writer stores for INT8 readers) give the codes of the links computed one after the other
// (round_to_fp16, fake_quant_int8, then the code of that grid value): every tie of x / scale and
// its neighbours, values beyond the clamp and half's range, signed zeros, infinities, NaNs (-128,
// as the code of a NaN is), with and without the FP16 rounding first.
TEST(CpuRoundToCodes, FusedEqualsTheRoundingsThenTheCodes) {
  for (float scale : {0.05f, 0.0473f, 1.f / 3.f, 7.3f, 0.0078125f}) {
    std::vector<float> xs;
    for (int k = -131; k <= 131; ++k) {
      float x = (float(k) + 0.5f) * scale;
      for (int step = 0; step < 4; ++step) x = std::nextafter(x, -INFINITY);
      for (int step = 0; step < 9; ++step, x = std::nextafter(x, INFINITY)) xs.push_back(x);
    }
    for (int i = 0; i < 50021; ++i) xs.push_back(scale * (-140.f + 280.f * float((int64_t(i) * 7919) % 50021) / 50021.f));
    for (uint32_t u : {0x7f800000u, 0xff800000u, 0x7fc00000u, 0xffc00001u, 0x80000000u, 0x00000000u, 0x477ff001u, 0xc77ff001u})
      xs.push_back(from_bits(u));
    for (bool fp16_first : {false, true}) {
      std::vector<int8_t> fused(xs.size()), want(xs.size());
      cpu::round_to_codes(xs.data(), fused.data(), int64_t(xs.size()), scale, fp16_first);
      std::vector<float> rounded = xs;
      if (fp16_first) cpu::round_fp16(rounded.data(), int64_t(rounded.size()), false);
      cpu::fake_quant_int8_array(rounded.data(), int64_t(rounded.size()), scale, false);
      cpu::int8_codes(rounded.data(), want.data(), int64_t(rounded.size()), 1.f / scale, cpu::SimdLevel::kBaseline);
      size_t differ = 0, first = 0;
      for (size_t i = 0; i < xs.size(); ++i)
        if (fused[i] != want[i] && differ++ == 0) first = i;
      EXPECT_EQ(differ, 0u) << "scale " << scale << (fp16_first ? ", fp16 first" : "") << ", first at x bits 0x" << std::hex
                            << bits(xs[first]) << ": " << std::dec << int(fused[first]) << " vs " << int(want[first]);
    }
  }
  // Hand-worked, scale 0.125: 0.3125 -> 2.5 -> 2 (even); 16.0 -> 128 -> 127; -16.0625 -> -128.5 -> -128;
  // a NaN -> -128; 0.30004 rounds to half 0.300048828125 first, still code 2.
  const std::vector<float> x = {0.3125f, 16.f, -16.0625f, std::nanf(""), 0.30004f, 0.f, -0.f, 1.f};
  std::vector<int8_t> q(x.size());
  cpu::round_to_codes(x.data(), q.data(), int64_t(x.size()), 0.125f, true);
  EXPECT_EQ(std::vector<int>(q.begin(), q.end()), (std::vector<int>{2, 127, -128, -128, 2, 0, 0, 8}));
}

// A chain's rounding link (an emulated step's output rounding run inside the chain, block by
// block) gives the bits of the chain followed by the scalar rounding, whichever clone of the
// chain block the CPU runs and whether it has F16C / AVX (the block functions dispatch; the
// scalar path is the reference).
TEST(CpuRoundLink, ChainWithRoundingEqualsChainThenScalarRounding) {
  std::vector<float> xs(40000);  // several chain blocks and a tail
  for (size_t i = 0; i < xs.size(); ++i) xs[i] = -9.f + 18.f * float((i * 7919) % 10007) / 10007.f + 1e-4f * float(i % 13);
  cpu::ChainLink act;
  act.kind = cpu::ChainLink::kActivation;
  act.act = {ActivationType::kClip, 0.f, 6.f};
  cpu::ChainLink mul;
  mul.kind = cpu::ChainLink::kScalarRight;
  mul.op = ElementWiseOp::kProd;
  mul.scalar = 0.1666f;
  for (cpu::ChainLink::Kind kind : {cpu::ChainLink::kRoundFp16, cpu::ChainLink::kRoundInt8}) {
    cpu::ChainLink round;
    round.kind = kind;
    round.scalar = 0.0078125f;
    std::vector<float> fused(xs.size()), want(xs.size());
    cpu::apply_chain({act, mul, round}, xs.data(), fused.data(), int64_t(xs.size()));
    cpu::apply_chain({act, mul}, xs.data(), want.data(), int64_t(xs.size()));
    for (float& v : want) v = kind == cpu::ChainLink::kRoundFp16 ? round_to_fp16(v) : fake_quant_int8(v, 0.0078125f);
    size_t differ = 0;
    for (size_t i = 0; i < xs.size(); ++i) differ += bits(fused[i]) != bits(want[i]);
    EXPECT_EQ(differ, 0u) << (kind == cpu::ChainLink::kRoundFp16 ? "fp16" : "int8");
  }
  // Hand-worked: x = 1 -> clip 1 -> * 0.1666 -> fp16: 0.1666 lies between the halves
  // 1364 * 2^-13 = 0.16650390625 and 1365 * 2^-13 = 0.1666259765625 (0.1666 * 8192 = 1364.79):
  // the second.
  std::vector<float> one(8, 1.f);
  cpu::ChainLink r16;
  r16.kind = cpu::ChainLink::kRoundFp16;
  cpu::apply_chain({act, mul, r16}, one.data(), one.data(), 8);
  EXPECT_EQ(one[0], 0.1666259765625f);
}

// A costly activation reading FP16- or INT8-rounded values looks its result up in a table of
// every value on that grid (prepare_chain): the same bits as computing it, for every half bit
// pattern (signed zeros, subnormals, infinities, NaNs), every INT8 code, and floats rounded first.
TEST(CpuActivationTable, ActivationAfterRoundingEqualsComputedBitForBit) {
  std::vector<float> xs;
  for (uint32_t h = 0; h < 65536; ++h) xs.push_back(half_to_float(uint16_t(h)));
  for (int i = 0; i < 30011; ++i) xs.push_back(-20.f + 40.f * float((int64_t(i) * 7919) % 30011) / 30011.f + 1e-5f * float(i % 11));
  cpu::ChainLink r16;
  r16.kind = cpu::ChainLink::kRoundFp16;
  for (ActivationParams a : {ActivationParams{ActivationType::kSigmoid, 0.f, 0.f}, ActivationParams{ActivationType::kTanh, 0.f, 0.f},
                             ActivationParams{ActivationType::kElu, 0.7f, 0.f}, ActivationParams{ActivationType::kGeluErf, 0.f, 0.f},
                             ActivationParams{ActivationType::kSoftplus, 0.f, 0.f}}) {
    cpu::ChainLink act;
    act.kind = cpu::ChainLink::kActivation;
    act.act = a;
    const std::vector<cpu::ChainLink> computed = {r16, act};  // one follower: no grid lookup
    std::vector<cpu::ChainLink> looked_up = computed;
    cpu::prepare_chain(looked_up, int64_t(xs.size()));
    ASSERT_NE(looked_up[1].table, nullptr) << int(a.type);
    std::vector<float> want(xs.size()), got(xs.size());
    cpu::apply_chain(computed, xs.data(), want.data(), int64_t(xs.size()));
    cpu::apply_chain(looked_up, xs.data(), got.data(), int64_t(xs.size()));
    size_t differ = 0;
    for (size_t i = 0; i < xs.size(); ++i) differ += bits(got[i]) != bits(want[i]);
    EXPECT_EQ(differ, 0u) << "activation type " << int(a.type);
  }
  // The same after an INT8 rounding (the DLA's INT8 sigmoid of det's head): every code, -0
  // (tanh keeps its sign), a NaN passed through, values beyond the clamp.
  std::vector<float> ys = xs;
  ys.insert(ys.end(), {-0.f, 0.f, std::nanf(""), -std::nanf(""), 1e30f, -1e30f, -0.001f});
  cpu::ChainLink r8;
  r8.kind = cpu::ChainLink::kRoundInt8;
  r8.scalar = 0.0473f;
  for (ActivationType type : {ActivationType::kSigmoid, ActivationType::kTanh, ActivationType::kGeluTanh}) {
    cpu::ChainLink act;
    act.kind = cpu::ChainLink::kActivation;
    act.act = {type, 0.f, 0.f};
    const std::vector<cpu::ChainLink> computed = {r8, act};
    std::vector<cpu::ChainLink> looked_up = computed;
    cpu::prepare_chain(looked_up, int64_t(ys.size()));
    ASSERT_NE(looked_up[1].table, nullptr);
    EXPECT_EQ(looked_up[1].table_scale, 0.0473f);
    std::vector<float> want(ys.size()), got(ys.size());
    cpu::apply_chain(computed, ys.data(), want.data(), int64_t(ys.size()));
    cpu::apply_chain(looked_up, ys.data(), got.data(), int64_t(ys.size()));
    size_t differ = 0;
    for (size_t i = 0; i < ys.size(); ++i) differ += bits(got[i]) != bits(want[i]);
    EXPECT_EQ(differ, 0u) << "int8, activation type " << int(type);
  }
  // Hand-worked: sigmoid(0) = 0.5 exactly; a ReLU (cheap) keeps no table; without the rounding
  // before it the activation is computed.
  cpu::ChainLink sig;
  sig.kind = cpu::ChainLink::kActivation;
  sig.act = {ActivationType::kSigmoid, 0.f, 0.f};
  std::vector<cpu::ChainLink> links = {r16, sig};
  cpu::prepare_chain(links, 8);
  std::vector<float> zero(8, 0.f);
  cpu::apply_chain(links, zero.data(), zero.data(), 8);
  EXPECT_EQ(zero[0], 0.5f);
  cpu::ChainLink relu = sig;
  relu.act.type = ActivationType::kRelu;
  std::vector<cpu::ChainLink> cheap = {r16, relu}, unrounded = {sig, r16};
  cpu::prepare_chain(cheap, 8);
  cpu::prepare_chain(unrounded, 8);
  EXPECT_EQ(cheap[1].table, nullptr);
  EXPECT_EQ(unrounded[0].table, nullptr);
}

namespace {
cpu::ChainLink link(cpu::ChainLink::Kind kind, ElementWiseOp op = ElementWiseOp::kSum, float scalar = 0.f) {
  cpu::ChainLink l;
  l.kind = kind, l.op = op, l.scalar = scalar;
  return l;
}
cpu::ChainLink activation_link(ActivationType type, float alpha = 0.f, float beta = 0.f) {
  cpu::ChainLink l;
  l.kind = cpu::ChainLink::kActivation, l.act = {type, alpha, beta};
  return l;
}
// Every half bit pattern, floats between them and beyond half's range, both zeros, both
// infinities, NaNs of both signs with payloads, and values beyond an INT8 grid's clamp.
std::vector<float> grid_probe_values() {
  std::vector<float> xs;
  for (uint32_t h = 0; h < 65536; ++h) xs.push_back(half_to_float(uint16_t(h)));
  for (int i = 0; i < 40009; ++i) xs.push_back(-12.f + 24.f * float((int64_t(i) * 7919) % 40009) / 40009.f + 3e-6f * float(i % 13));
  for (uint32_t u : {0x7fc00001u, 0xffc12345u, 0x7f800001u, 0x00000001u, 0x80000001u, 0x477ff000u, 0x477ff001u})
    xs.push_back(from_bits(u));
  xs.insert(xs.end(), {-0.f, 0.f, 1e30f, -1e30f, -0.001f, 70000.f, -70000.f});
  return xs;
}
}  // namespace

// A rounding followed by links that read nothing from before it becomes one lookup in a table of
// the links' result for every value of the rounding's grid (prepare_chain's kGridLookup): the same
// bits as the links computed, for PP-LCNetV3's FP16 block epilogue (affine, hard-swish written
// out reading its input twice, affine, FP16 then INT8 for an INT8 reader) and for INT8 chains
// (a block holding a NaN computes the links instead).
TEST(CpuGridLookup, LookedUpEqualsComputedBitForBit) {
  using K = cpu::ChainLink;
  const std::vector<float> xs = grid_probe_values();
  const int64_t n = int64_t(xs.size());
  const std::vector<cpu::ChainLink> fp16_block = {
      link(K::kRoundFp16), link(K::kScalarRight, ElementWiseOp::kProd, 1.0371f), link(K::kScalarRight, ElementWiseOp::kSum, -0.0625f),
      link(K::kRoundFp16), link(K::kCaptureInput), link(K::kScalarRight, ElementWiseOp::kSum, 3.f),
      activation_link(ActivationType::kClip, 0.f, 6.f), link(K::kChainInputLeft, ElementWiseOp::kProd),
      link(K::kScalarRight, ElementWiseOp::kDiv, 6.f), link(K::kRoundFp16), link(K::kScalarRight, ElementWiseOp::kProd, 0.93f),
      link(K::kScalarRight, ElementWiseOp::kSum, 0.011f), link(K::kRoundFp16), link(K::kRoundInt8, ElementWiseOp::kSum, 0.0391f)};
  const std::vector<cpu::ChainLink> int8_block = {
      link(K::kScalarRight, ElementWiseOp::kProd, 0.5f), link(K::kRoundInt8, ElementWiseOp::kSum, 0.0473f),
      link(K::kScalarRight, ElementWiseOp::kProd, 1.7f), link(K::kScalarLeft, ElementWiseOp::kSub, 0.25f),
      link(K::kRoundInt8, ElementWiseOp::kSum, 0.0311f), activation_link(ActivationType::kSigmoid), link(K::kRoundInt8, ElementWiseOp::kSum, 0.0078125f)};
  struct Case {
    const char* name;
    std::vector<cpu::ChainLink> links;
    size_t lookup_at;
    float table_scale, final_int8_scale;
  };
  for (const Case& c : {Case{"fp16 block", fp16_block, 0, 0.f, 0.0391f}, Case{"int8 block", int8_block, 1, 0.0473f, 0.0078125f}}) {
    std::vector<cpu::ChainLink> looked_up = c.links;
    cpu::prepare_chain(looked_up, n);
    ASSERT_EQ(looked_up.size(), c.lookup_at + 1) << c.name;
    ASSERT_EQ(looked_up.back().kind, K::kGridLookup) << c.name;
    EXPECT_EQ(looked_up.back().table_scale, c.table_scale) << c.name;
    EXPECT_EQ(cpu::chain_final_int8_scale(looked_up), c.final_int8_scale) << c.name;
    std::vector<float> want(xs.size()), got(xs.size());
    cpu::apply_chain(c.links, xs.data(), want.data(), n);
    cpu::apply_chain(looked_up, xs.data(), got.data(), n);
    size_t differ = 0, first = 0;
    for (size_t i = 0; i < xs.size(); ++i)
      if (bits(got[i]) != bits(want[i]) && differ++ == 0) first = i;
    EXPECT_EQ(differ, 0u) << c.name << ": first at x bits 0x" << std::hex << bits(xs[first]) << ": 0x" << bits(got[first])
                          << " vs 0x" << bits(want[first]);
  }
  // The INT8 block against scalar arithmetic (numerics.h's fake_quant_int8): the lookup's codes and
  // the vectorised roundings against the reference, not only against each other.
  {
    std::vector<cpu::ChainLink> looked_up = int8_block;
    cpu::prepare_chain(looked_up, n);
    std::vector<float> got(xs.size());
    cpu::apply_chain(looked_up, xs.data(), got.data(), n);
    size_t differ = 0;
    for (size_t i = 0; i < xs.size(); ++i) {
      float v = fake_quant_int8(xs[i] * 0.5f, 0.0473f);
      v = fake_quant_int8(0.25f - v * 1.7f, 0.0311f);
      v = fake_quant_int8(cpu::apply_activation({ActivationType::kSigmoid, 0.f, 0.f}, v), 0.0078125f);
      differ += bits(got[i]) != bits(v) && !(std::isnan(got[i]) && std::isnan(v));
    }
    EXPECT_EQ(differ, 0u) << "int8 block against scalar arithmetic";
  }
  // Hand-worked, the INT8 block: x = 1 -> * 0.5 = 0.5 -> code rne(0.5 / 0.0473 = 10.57) = 11 ->
  // 11 * 0.0473 = 0.5203 -> * 1.7 = 0.88451 -> 0.25 - 0.88451 = -0.63451 -> code rne(-20.40) = -20
  // -> -0.622 -> sigmoid 0.34934 -> code rne(44.716) = 45 -> 45 / 128 = 0.3515625.
  std::vector<cpu::ChainLink> looked_up = int8_block;
  cpu::prepare_chain(looked_up, 16);
  std::vector<float> one(16, 1.f);
  cpu::apply_chain(looked_up, one.data(), one.data(), 16);
  EXPECT_EQ(one[0], 0.3515625f);
  // Not looked up: a link reading the chain input captured before the rounding; one follower only;
  // an FP16 grid over fewer values than a table's worth.
  std::vector<cpu::ChainLink> reads_before = {link(K::kCaptureInput), link(K::kRoundFp16), link(K::kScalarRight, ElementWiseOp::kSum, 1.f),
                                              link(K::kChainInputRight, ElementWiseOp::kProd), link(K::kRoundFp16)};
  std::vector<cpu::ChainLink> one_follower = {link(K::kRoundInt8, ElementWiseOp::kSum, 0.05f), link(K::kScalarRight, ElementWiseOp::kSum, 1.f)};
  std::vector<cpu::ChainLink> small = fp16_block;
  cpu::prepare_chain(reads_before, n);
  cpu::prepare_chain(one_follower, n);
  cpu::prepare_chain(small, cpu::kGridLookupMinValues - 1);
  for (const auto* links : {&reads_before, &one_follower, &small})
    for (const cpu::ChainLink& l : *links) EXPECT_NE(l.kind, K::kGridLookup);
  // The lookup keeps the chain's last INT8 grid for readers of codes; none without one.
  EXPECT_EQ(cpu::chain_final_int8_scale(reads_before), 0.f);
  EXPECT_EQ(cpu::chain_final_int8_scale(one_follower), 0.f);
}

namespace {

// Inputs x1 and x2 of dims d: values spread over [-3, 3) (not on the half grid).
TensorMap spread_inputs(const Dims& d) {
  TensorMap in;
  for (const char* name : {"x1", "x2"}) {
    HostTensor t = HostTensor::zeros(name, DataType::kFloat, d);
    for (int64_t i = 0; i < t.count(); ++i)
      t.f32()[i] = -3.f + 6.f * float((i * (name[1] == '1' ? 7919 : 104729)) % 10007) / 10007.f + 1e-5f * float(i % 7);
    in[name] = t;
  }
  return in;
}

// A per-channel constant g [1, 8, 1, 1].
TensorId gate_constant(test::NetBuilder& b) {
  std::vector<float> gate(8);
  for (size_t i = 0; i < gate.size(); ++i) gate[i] = 0.3f + 0.1137f * float(i);
  return b.constant("g", DataType::kFloat, {1, 8, 1, 1}, gate.data());
}

}  // namespace

// Emulated FP16 element-wise (same shapes, and a per-channel broadcast), nearest Resize and
// Concatenation layers round their output block by block inside their kernel
// (make_ref_kernel_rounding), and rounded copies of inputs copy and round block by block: the
// same bits as separate rounding steps (TANDEM_CPU_ROUND_STEPS=separate) and as the reference
// kernels, including a Concatenation rounded to FP16 and then in place to the INT8 grid of its
// reader. Sizes span several blocks and the parallel paths.
TEST(CpuRoundedPlainKernels, RoundingInsideEqualsSeparateRoundSteps) {
  test::NetBuilder b;
  const Dims d = {1, 8, 40, 36}, up = {1, 8, 80, 72}, cat = {1, 16, 80, 72};
  const TensorId x1 = b.input("x1", d), x2 = b.input("x2", d);
  const TensorId g = gate_constant(b);
  Network& n = b.n;
  const TensorId a = n.add_tensor({"a", DataType::kFloat, d}), m = n.add_tensor({"m", DataType::kFloat, d});
  const TensorId u = n.add_tensor({"u", DataType::kFloat, up}), c = n.add_tensor({"c", DataType::kFloat, cat});
  const TensorId y = n.add_tensor({"y", DataType::kFloat, cat});
  n.add_layer({"add", LayerKind::kElementWise, {x1, x2}, {a}, ElementWiseParams{ElementWiseOp::kSum}});
  n.add_layer({"mul", LayerKind::kElementWise, {a, g}, {m}, ElementWiseParams{ElementWiseOp::kProd}});
  ResizeParams rp;
  rp.scales = {1.f, 1.f, 2.f, 2.f};
  n.add_layer({"up", LayerKind::kResize, {m}, {u}, rp});
  n.add_layer({"cat", LayerKind::kConcatenation, {u, u}, {c}, ConcatenationParams{1}});
  n.add_layer({"sq", LayerKind::kElementWise, {c, c}, {y}, ElementWiseParams{ElementWiseOp::kProd}});
  n.tensors[y].is_output = true;
  n.outputs.push_back(y);
  ExecOptions opt;
  opt.threads = 2;
  const Precision F = Precision::kFP16, I = Precision::kINT8, U = Precision::kUnset;
  opt.numerics.layer_precision = {U, F, F, F, F, I};  // g add mul up cat sq
  opt.numerics.tensor_scales = {{"c", 0.05f}, {"y", 0.2f}};
  const TensorMap in = spread_inputs(d);
  auto run = [&](bool separate, bool reference, std::vector<std::string>* kinds) {
    if (separate) setenv("TANDEM_CPU_ROUND_STEPS", "separate", 1);
    ExecOptions o = opt;
    o.reference_kernels = reference;
    auto ex = make_cpu_executor(n, o);
    unsetenv("TANDEM_CPU_ROUND_STEPS");
    for (const StepTime& s : ex->profile(1)) kinds->push_back(s.kind);
    const HostTensor out = ex->run(in).at("y");
    return std::vector<float>(out.f32(), out.f32() + out.count());
  };
  std::vector<std::string> inside, separate, reference;
  const std::vector<float> got = run(false, false, &inside), want = run(true, false, &separate),
                           ref = run(false, true, &reference);
  ASSERT_EQ(got.size(), want.size());
  ASSERT_EQ(got.size(), ref.size());
  size_t differ = 0, differ_ref = 0;
  for (size_t i = 0; i < got.size(); ++i) differ += bits(got[i]) != bits(want[i]), differ_ref += bits(got[i]) != bits(ref[i]);
  EXPECT_EQ(differ, 0u);
  EXPECT_EQ(differ_ref, 0u);
  // The layers ran with their roundings inside: add and mul one FP16 rounding each, cat FP16
  // then INT8 in place (sq reads c on its grid), sq its own INT8 output rounding; up moves values
  // on the FP16 grid: none.
  int rounded_inside = 0;
  for (const std::string& k : inside) rounded_inside += k.find("+Round") != std::string::npos;
  EXPECT_EQ(rounded_inside, 4);
  EXPECT_LT(inside.size(), separate.size());
  for (size_t i = 0; i < got.size(); i += 101) EXPECT_EQ(got[i], fake_quant_int8(got[i], 0.2f));
}

// Non-commutative element-wise layers with their roundings inside (the op and its roundings as one
// fused run, chain_fused.h): a per-channel operand on the left and on the right, and same shapes;
// FP16 and INT8 outputs. The same bits as the reference kernels.
TEST(CpuRoundedPlainKernels, FusedOpAndRoundingsEqualTheReference) {
  test::NetBuilder b;
  const Dims d = {1, 8, 80, 72};  // rows of 5,760 values: a block of 4,096 and a partial one
  const TensorId x1 = b.input("x1", d), x2 = b.input("x2", d);
  const TensorId g = gate_constant(b);
  Network& n = b.n;
  const TensorId l = n.add_tensor({"l", DataType::kFloat, d}), r = n.add_tensor({"r", DataType::kFloat, d});
  const TensorId q = n.add_tensor({"q", DataType::kFloat, d}), y = n.add_tensor({"y", DataType::kFloat, d});
  n.add_layer({"g_minus", LayerKind::kElementWise, {g, x1}, {l}, ElementWiseParams{ElementWiseOp::kSub}});
  n.add_layer({"minus_g", LayerKind::kElementWise, {x2, g}, {r}, ElementWiseParams{ElementWiseOp::kDiv}});
  n.add_layer({"quot", LayerKind::kElementWise, {l, r}, {q}, ElementWiseParams{ElementWiseOp::kDiv}});
  n.add_layer({"diff", LayerKind::kElementWise, {q, l}, {y}, ElementWiseParams{ElementWiseOp::kSub}});
  n.tensors[y].is_output = true;
  n.outputs.push_back(y);
  ExecOptions opt;
  opt.threads = 2;
  const Precision F = Precision::kFP16, I = Precision::kINT8, U = Precision::kUnset;
  opt.numerics.layer_precision = {U, F, I, F, I};  // g g_minus minus_g quot diff
  opt.numerics.tensor_scales = {{"x2", 0.03f}, {"g", 0.01f}, {"r", 0.05f}, {"l", 0.05f}, {"q", 0.1f}, {"y", 0.2f}};
  const TensorMap in = spread_inputs(d);
  auto run = [&](bool reference) {
    ExecOptions o = opt;
    o.reference_kernels = reference;
    const HostTensor out = make_cpu_executor(n, o)->run(in).at("y");
    return std::vector<float>(out.f32(), out.f32() + out.count());
  };
  const std::vector<float> got = run(false), ref = run(true);
  ASSERT_EQ(got.size(), ref.size());
  size_t differ = 0;
  for (size_t i = 0; i < got.size(); ++i) differ += bits(got[i]) != bits(ref[i]);
  EXPECT_EQ(differ, 0u);
}

// Point-wise chain steps that follow one another run as one pass (TANDEM_CPU_CHAIN_MERGE): an FP16
// hard-swish spelled out (+3, clip, * x, / 6; one chain step, rounded to FP16 and then in place to
// the INT8 grid its reader reads), then an INT8 scale and an INT8 shift (a chain step each, with
// their INT8 output roundings: the DLA's scale and shift after det's hard-swish), then an FP32
// ReLU. The same bits as the steps run apart and as the reference kernels, in fewer steps.
TEST(CpuChainMerge, FollowingChainStepsRunInOnePassWithTheSameBits) {
  test::NetBuilder b;
  const Dims d = {1, 16, 48, 40};
  const TensorId x = b.input("x", d);
  const float k3 = 3.f, k6 = 6.f, ks = 0.731f, kb = -0.377f;
  const TensorId c3 = b.constant("c3", DataType::kFloat, {1, 1, 1, 1}, &k3);
  const TensorId c6 = b.constant("c6", DataType::kFloat, {1, 1, 1, 1}, &k6);
  const TensorId cs = b.constant("cs", DataType::kFloat, {1, 1, 1, 1}, &ks);
  const TensorId cb = b.constant("cb", DataType::kFloat, {1, 1, 1, 1}, &kb);
  Network& n = b.n;
  auto t = [&](const char* name) { return n.add_tensor({name, DataType::kFloat, d}); };
  const TensorId a = t("a"), cl = t("cl"), p = t("p"), hs = t("hs"), sc = t("sc"), sh = t("sh"), y = t("y");
  n.add_layer({"add3", LayerKind::kElementWise, {x, c3}, {a}, ElementWiseParams{ElementWiseOp::kSum}});
  n.add_layer({"clip", LayerKind::kActivation, {a}, {cl}, ActivationParams{ActivationType::kClip, 0.f, 6.f}});
  n.add_layer({"mulx", LayerKind::kElementWise, {x, cl}, {p}, ElementWiseParams{ElementWiseOp::kProd}});
  n.add_layer({"div6", LayerKind::kElementWise, {p, c6}, {hs}, ElementWiseParams{ElementWiseOp::kDiv}});
  n.add_layer({"scale", LayerKind::kElementWise, {hs, cs}, {sc}, ElementWiseParams{ElementWiseOp::kProd}});
  n.add_layer({"shift", LayerKind::kElementWise, {sc, cb}, {sh}, ElementWiseParams{ElementWiseOp::kSum}});
  n.add_layer({"relu", LayerKind::kActivation, {sh}, {y}, ActivationParams{ActivationType::kRelu, 0.f, 0.f}});
  n.tensors[y].is_output = true;
  n.outputs.push_back(y);
  ExecOptions opt;
  opt.threads = 2;
  const Precision F = Precision::kFP16, I = Precision::kINT8, U = Precision::kUnset, X = Precision::kFP32;
  opt.numerics.layer_precision = {U, U, U, U, F, F, F, F, I, I, X};  // 4 constants, then the layers in order
  opt.numerics.tensor_scales = {{"hs", 0.05f}, {"sc", 0.03f}, {"sh", 0.025f}, {"cs", 0.01f}, {"cb", 0.004f}};
  TensorMap in;
  HostTensor xt = HostTensor::zeros("x", DataType::kFloat, d);
  for (int64_t i = 0; i < xt.count(); ++i) xt.f32()[i] = -5.f + 10.f * float((i * 7919) % 10007) / 10007.f + 1e-5f * float(i % 7);
  in["x"] = xt;
  auto run = [&](bool merge, size_t* steps) {
    if (!merge) setenv("TANDEM_CPU_CHAIN_MERGE", "off", 1);
    auto ex = make_cpu_executor(n, opt);
    unsetenv("TANDEM_CPU_CHAIN_MERGE");
    *steps = ex->profile(1).size();
    const HostTensor out = ex->run(in).at("y");
    return std::vector<float>(out.f32(), out.f32() + out.count());
  };
  size_t merged_steps = 0, apart_steps = 0;
  const std::vector<float> got = run(true, &merged_steps), apart = run(false, &apart_steps);
  ASSERT_EQ(got.size(), apart.size());
  size_t differ = 0, nonzero = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    differ += bits(got[i]) != bits(apart[i]);
    nonzero += got[i] != 0.f;
  }
  EXPECT_EQ(differ, 0u);
  EXPECT_GT(nonzero, got.size() / 4);
  EXPECT_LT(merged_steps, apart_steps);
  // The output is on shift's INT8 grid, then ReLU'd: every value a multiple of its scale.
  for (size_t i = 0; i < got.size(); i += 97) EXPECT_EQ(got[i], fake_quant_int8(got[i], 0.025f));
}

// A chain over values an INT8 rounding (then perhaps an FP16 one) wrote: det's FP16 bias add +
// sigmoid after its INT8 deconvolution. Looked up per code (every code, -0; a block with a NaN
// computes), the same bits as computed, whatever the grid's values look like after the FP16
// rounding; without a known grid, or with a scale whose codes half cannot keep apart, computed.
TEST(CpuCodedChain, ChainOverAnInt8GridEqualsComputedBitForBit) {
  cpu::ChainLink add, sigmoid, r16;
  add.kind = cpu::ChainLink::kScalarRight;
  add.op = ElementWiseOp::kSum;
  add.scalar = -1.37f;
  sigmoid.kind = cpu::ChainLink::kActivation;
  sigmoid.act = {ActivationType::kSigmoid, 0.f, 0.f};
  r16.kind = cpu::ChainLink::kRoundFp16;
  const std::vector<cpu::ChainLink> links = {add, sigmoid, r16};
  for (float scale : {0.0473f, 3.1e-6f, 2.9f})
    for (bool then_fp16 : {false, true}) {
      // The grid's values as the producer's roundings wrote them: 9 blocks of codes in any order,
      // -0, and one block with a NaN.
      cpu::ChainLink r8;
      r8.kind = cpu::ChainLink::kRoundInt8;
      r8.scalar = scale;
      std::vector<cpu::ChainLink> rounding = {r8};
      if (then_fp16) rounding.push_back(r16);
      std::vector<float> x(10 * 1024);
      for (size_t i = 0; i < x.size(); ++i) x[i] = float(int((i * 7919) % 256) - 128) * scale;
      x[5] = -0.f;
      x[9 * 1024 + 3] = std::nanf("");
      cpu::apply_chain(rounding, x.data(), x.data(), int64_t(x.size()));
      std::vector<float> want(x.size()), got(x.size());
      cpu::make_chain_kernel(links, int64_t(x.size()))({x.data()}, {want.data()});
      cpu::make_chain_kernel(links, int64_t(x.size()), {scale, then_fp16})({x.data()}, {got.data()});
      size_t differ = 0;
      for (size_t i = 0; i < x.size(); ++i) differ += bits(got[i]) != bits(want[i]);
      EXPECT_EQ(differ, 0u) << "scale " << scale << (then_fp16 ? ", then FP16" : "");
      std::set<uint32_t> distinct;
      for (float v : want) distinct.insert(bits(v));
      if (scale == 0.0473f) EXPECT_GT(distinct.size(), 100u);  // not a constant map
    }
}
