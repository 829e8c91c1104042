// The helpers every module shares (numerics, op semantics, broadcasting, constant origin), with
// hand-worked values: a change to any of them changes the numerics of every backend.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "tandem/broadcast.h"
#include "tandem/constant_origin.h"
#include "tandem/numerics.h"
#include "tandem/op_semantics.h"

using namespace tandem;

TEST(Numerics, HalfConversionRoundsToNearestEven) {
  EXPECT_EQ(float_to_half(1.f), 0x3c00);
  EXPECT_EQ(float_to_half(-0.f), 0x8000);
  EXPECT_EQ(float_to_half(65504.f), 0x7bff);                 // largest half
  EXPECT_EQ(float_to_half(65519.f), 0x7bff);                 // below the halfway point to 65536
  EXPECT_EQ(float_to_half(65520.f), 0x7c00);                 // halfway: rounds to even = inf
  EXPECT_EQ(float_to_half(2049.f), float_to_half(2048.f));   // tie -> even mantissa
  EXPECT_EQ(float_to_half(2051.f), float_to_half(2052.f));
  EXPECT_EQ(float_to_half(std::ldexp(1.f, -24)), 0x0001);    // smallest subnormal
  EXPECT_EQ(float_to_half(std::ldexp(1.f, -25)), 0x0000);    // tie between 0 and 2^-24 -> 0
  EXPECT_EQ(float_to_half(std::ldexp(3.f, -25)), 0x0002);    // 1.5 ulp -> 2 (even)
  EXPECT_EQ(float_to_half(INFINITY), 0x7c00);
  EXPECT_TRUE(std::isnan(half_to_float(float_to_half(NAN))));
  EXPECT_EQ(half_to_float(0x0001), std::ldexp(1.f, -24));
  EXPECT_EQ(half_to_float(0x7bff), 65504.f);
  EXPECT_EQ(half_to_float(0xc000), -2.f);
  EXPECT_EQ(round_to_fp16(0.1f), 0.0999755859375f);
}

TEST(Numerics, PerChannelWeightsAllZeroChannelGetsScaleOne) {
  // Two channels of two values: {0, 0} and {1, -2}. Channel 1: scale 2/127; 1 / (2/127) = 63.5
  // rounds half to even to 64; -2 -> -127.
  const float w[] = {0.f, 0.f, 1.f, -2.f};
  const ChannelLayout layout{1, 2, 2};
  const std::vector<float> scales = int8_weight_scales(w, layout);
  ASSERT_EQ(scales.size(), 2u);
  EXPECT_EQ(scales[0], 1.f);
  EXPECT_EQ(scales[1], 2.f / 127.f);
  int8_t q[4];
  quantize_int8_weights(w, layout, scales, q);
  EXPECT_EQ(q[0], 0);
  EXPECT_EQ(q[1], 0);
  EXPECT_EQ(q[2], 64);
  EXPECT_EQ(q[3], -127);
  float back[4];
  dequantize_int8_weights(q, layout, scales, back);
  EXPECT_EQ(back[2], 64.f * (2.f / 127.f));
  float fq[4] = {0.f, 0.f, 1.f, -2.f};
  EXPECT_EQ(fake_quant_int8_weights(fq, layout), scales);
  EXPECT_EQ(fq[2], back[2]);
  EXPECT_EQ(fq[3], -2.f);
}

TEST(Numerics, ChannelLayoutAlongAnAxis) {
  const ChannelLayout c = channel_layout({4, 3, 2, 5}, 1);  // deconvolution [C, K/g, kh, kw]
  EXPECT_EQ(c.blocks, 4);
  EXPECT_EQ(c.channels, 3);
  EXPECT_EQ(c.inner, 10);
}

TEST(Numerics, ActivationsSaturateAtMinus128AndBiasJoinsTheAccumulator) {
  EXPECT_EQ(fake_quant_int8(-100.f, 0.25f), -32.f);
  EXPECT_EQ(fake_quant_int8_weight(-100.f, 0.25f), -31.75f);
  EXPECT_EQ(quantize_int8_weight(0.375f, 0.25f), 2);  // 1.5 -> 2 (even)
  // Scale 0.5 * 0.25 = 0.125: 0.3 / 0.125 = 2.4 -> 2 -> 0.25.
  EXPECT_EQ(fake_quant_int32_bias(0.3f, 0.5f, 0.25f), 0.25f);
  EXPECT_EQ(fake_quant_int32_bias(0.3f, 0.f, 0.25f), 0.3f);  // no scale: unchanged
}

TEST(Numerics, ActivationIntegersRoundHalfEvenAndSaturate) {
  EXPECT_EQ(quantize_int8(1.5f, 1.f), 2);    // ties to even
  EXPECT_EQ(quantize_int8(2.5f, 1.f), 2);
  EXPECT_EQ(quantize_int8(-2.5f, 1.f), -2);
  EXPECT_EQ(quantize_int8(-200.f, 1.f), -128);  // activations reach -128, weights stop at -127
  EXPECT_EQ(quantize_int8_weight(-200.f, 1.f), -127);
  EXPECT_EQ(quantize_int8(200.f, 1.f), 127);
  EXPECT_EQ(quantize_int8(3.f, 0.f), 0);     // no scale: 0
  EXPECT_EQ(quantize_int8(0.74f, 0.5f), 1);  // 1.48 -> 1
}

TEST(OpSemantics, HandWorkedValues) {
  EXPECT_EQ(ops::activation(ActivationType::kClip, 7.f, -1.f, 6.f), 6.f);
  EXPECT_EQ(ops::activation(ActivationType::kLeakyRelu, -2.f, 0.1f, 0.f), -0.2f);
  EXPECT_EQ(ops::activation(ActivationType::kHardSigmoid, 1.f, 0.2f, 0.5f), 0.7f);
  EXPECT_EQ(ops::elementwise(ElementWiseOp::kFloorDiv, -7.f, 2.f), -4.f);
  EXPECT_EQ(ops::elementwise_integral_div(-7.0, 2.0), -3.0);
  EXPECT_EQ(ops::elementwise(ElementWiseOp::kGreater, 2.0, 1.0), 1.0);
  EXPECT_EQ(ops::elementwise(ElementWiseOp::kXor, 0.f, 3.f), 1.f);
  EXPECT_EQ(ops::unary(UnaryOp::kRound, 2.5f), 2.f);
  EXPECT_EQ(ops::unary(UnaryOp::kRound, -3.5f), -4.f);
  EXPECT_EQ(ops::unary(UnaryOp::kSign, -0.f), 0.f);
  EXPECT_EQ(ops::reduce_finish(ReduceOp::kAvg, ops::reduce_combine(ReduceOp::kAvg, 1.0, 2.0), 2), 1.5);
  EXPECT_EQ(ops::reduce_combine(ReduceOp::kMax, ops::reduce_identity<float>(ReduceOp::kMax), -5.f), -5.f);
  EXPECT_EQ(ops::pool_finish(PoolingType::kAverage, 6.f, 4), 1.5f);
  // std::max semantics: a NaN second operand loses, a NaN first operand wins.
  EXPECT_EQ(ops::elementwise(ElementWiseOp::kMax, 1.f, NAN), 1.f);
  EXPECT_TRUE(std::isnan(ops::elementwise(ElementWiseOp::kMax, NAN, 1.f)));
}

TEST(Broadcast, DimsStridesAndSourceIndex) {
  EXPECT_EQ(broadcast_dims({3, 1, 5}, {4, 1}), (Dims{3, 4, 5}));
  EXPECT_EQ(broadcast_dims({}, {2, 3}), (Dims{2, 3}));
  EXPECT_FALSE(broadcast_dims({2, 3}, {3, 2}).has_value());
  EXPECT_EQ(dense_strides({2, 3, 4}), (Strides{12, 4, 1}));
  EXPECT_EQ(broadcast_strides({4, 1}, {3, 4, 5}), (Strides{0, 1, 0}));
  EXPECT_EQ(broadcast_source_index({1, 3}, {2, 3}), (std::vector<int64_t>{0, 1, 2, 0, 1, 2}));
  EXPECT_EQ(broadcast_source_index({2, 1}, {2, 3}), (std::vector<int64_t>{0, 0, 0, 1, 1, 1}));
}

namespace {

// x (input); c = Constant -> r = Shuffle(reshape) -> i = Identity -> t = Shuffle(transpose);
// s = x + i.
struct ConstantChain {
  Network n;
  TensorId x, c, r, i, t, s;
  WeightsId w;
  ConstantChain() {
    x = n.add_tensor({"x", DataType::kFloat, {1, 6}});
    n.tensors[x].is_input = true;
    n.inputs.push_back(x);
    Weights wt;
    wt.name = "w";
    wt.dims = {2, 3};
    wt.bytes.assign(24, 0);
    w = n.add_weights(wt);
    c = n.add_tensor({"c", DataType::kFloat, {2, 3}});
    r = n.add_tensor({"r", DataType::kFloat, {1, 6}});
    i = n.add_tensor({"i", DataType::kFloat, {1, 6}});
    t = n.add_tensor({"t", DataType::kFloat, {6, 1}});
    s = n.add_tensor({"s", DataType::kFloat, {1, 6}});
    n.add_layer({"const", LayerKind::kConstant, {}, {c}, ConstantParams{w}});
    ShuffleParams reshape;
    reshape.reshape = Dims{1, 6};
    n.add_layer({"reshape", LayerKind::kShuffle, {c}, {r}, reshape});
    n.add_layer({"identity", LayerKind::kIdentity, {r}, {i}});
    ShuffleParams transpose;
    transpose.first_transpose = {1, 0};
    n.add_layer({"transpose", LayerKind::kShuffle, {i}, {t}, transpose});
    n.add_layer({"add", LayerKind::kElementWise, {x, i}, {s}, ElementWiseParams{ElementWiseOp::kSum}});
    n.tensors[s].is_output = true;
    n.outputs.push_back(s);
    n.verify();
  }
};

}  // namespace

TEST(ConstantOrigin, ThroughReshapesAndIdentities) {
  ConstantChain g;
  const auto o = constant_origin(g.n, g.i);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->constant, 0);
  EXPECT_EQ(o->weights, g.w);
  EXPECT_FALSE(o->transposed);
  const auto ot = constant_origin(g.n, g.t);
  ASSERT_TRUE(ot.has_value());
  EXPECT_TRUE(ot->transposed);
  EXPECT_FALSE(is_constant_tensor(g.n, g.x));   // a network input
  EXPECT_FALSE(is_constant_tensor(g.n, g.s));   // computed from an input
  EXPECT_FALSE(is_constant_tensor(g.n, -1));
  EXPECT_TRUE(is_constant_view_layer(g.n, 2));  // the Identity
  EXPECT_FALSE(is_constant_view_layer(g.n, 4));  // the ElementWise
}
