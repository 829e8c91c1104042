// bfloat16: the conversion rule (numerics.h, hand-worked bit patterns), the DataType table entry,
// and Cast to and from bf16 on the CPU backend (the one kernel that computes with the type).
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "tandem/dla.h"
#include "tandem/numerics.h"
#include "tandem/runtime.h"

using namespace tandem;

namespace {

uint32_t bits(float f) { return std::bit_cast<uint32_t>(f); }
float from_bits(uint32_t u) { return std::bit_cast<float>(u); }

}  // namespace

TEST(Bfloat16, RoundsToNearestEven) {
  // bf16 keeps 7 mantissa bits: between 1 and 2 the grid is 1/128 = 0.0078125.
  // 1.00390625 = 1 + 1/256 is the tie between 1.0 (0x3f80) and 1.0078125 (0x3f81): even -> 1.0.
  EXPECT_EQ(float_to_bfloat16(1.00390625f), 0x3f80);
  // 1.01171875 = 1 + 3/256 is the tie between 1.0078125 (0x3f81) and 1.015625 (0x3f82): even -> 0x3f82.
  EXPECT_EQ(float_to_bfloat16(1.01171875f), 0x3f82);
  EXPECT_EQ(bfloat16_to_float(0x3f82), 1.015625f);
  // Just above the first tie rounds up; just below the second rounds down.
  EXPECT_EQ(float_to_bfloat16(from_bits(0x3f808001u)), 0x3f81);
  EXPECT_EQ(float_to_bfloat16(from_bits(0x3f817fffu)), 0x3f81);
  // Negative values round by magnitude the same way.
  EXPECT_EQ(float_to_bfloat16(-1.00390625f), 0xbf80);
  EXPECT_EQ(float_to_bfloat16(-1.01171875f), 0xbf82);
  // A carry through the mantissa into the exponent: 1.99609375 + a bit -> 2.0 (0x4000).
  EXPECT_EQ(float_to_bfloat16(from_bits(0x3fffc001u)), 0x4000);
  // ONNX 1.12's test_cast_FLOAT_to_BFLOAT16 input 0x3ef5eeb0: its dropped bits 0xeeb0 are more
  // than half, so round-to-nearest gives 0x3ef6 where the test data's truncation has 0x3ef5.
  EXPECT_EQ(float_to_bfloat16(from_bits(0x3ef5eeb0u)), 0x3ef6);
}

TEST(Bfloat16, InfinitiesOverflowNanAndSubnormals) {
  EXPECT_EQ(float_to_bfloat16(INFINITY), 0x7f80);
  EXPECT_EQ(float_to_bfloat16(-INFINITY), 0xff80);
  // The largest finite bf16 is 0x7f7f (3.3895314e38); FLT_MAX (0x7f7fffff) is past its half ulp.
  EXPECT_EQ(float_to_bfloat16(from_bits(0x7f7f0000u)), 0x7f7f);
  EXPECT_EQ(float_to_bfloat16(from_bits(0x7f7fffffu)), 0x7f80);
  // NaN stays NaN with its sign; a payload only in the dropped bits gets the quiet bit, not inf.
  EXPECT_EQ(float_to_bfloat16(from_bits(0x7fc00000u)), 0x7fc0);
  EXPECT_EQ(float_to_bfloat16(from_bits(0xffc00000u)), 0xffc0);
  EXPECT_EQ(float_to_bfloat16(from_bits(0x7f800001u)), 0x7fc0);
  EXPECT_EQ(float_to_bfloat16(from_bits(0x7fffffffu)), 0x7fff);
  EXPECT_TRUE(std::isnan(bfloat16_to_float(0x7fc0)));
  // Subnormals keep the same rule: 0x00018000 is a tie between 0x0001 and 0x0002 -> 0x0002;
  // 0x00008000 a tie between 0 and 0x0001 -> +0.
  EXPECT_EQ(float_to_bfloat16(from_bits(0x00010000u)), 0x0001);
  EXPECT_EQ(float_to_bfloat16(from_bits(0x00018000u)), 0x0002);
  EXPECT_EQ(float_to_bfloat16(from_bits(0x00008000u)), 0x0000);
  EXPECT_EQ(float_to_bfloat16(-0.f), 0x8000);
}

TEST(Bfloat16, EveryBf16RoundTripsExactly) {
  for (uint32_t b = 0; b <= 0xffffu; ++b) {
    const float f = bfloat16_to_float(uint16_t(b));
    EXPECT_EQ(bits(f), b << 16);
    const bool nan = (b & 0x7f80u) == 0x7f80u && (b & 0x7fu);
    if (nan) {
      ASSERT_EQ(float_to_bfloat16(f), uint16_t(b | 0x40u)) << std::hex << b;  // quieted
    } else {
      ASSERT_EQ(float_to_bfloat16(f), b) << std::hex << b;
    }
  }
}

TEST(Bfloat16, DataTypeTable) {
  EXPECT_EQ(to_string(DataType::kBFloat16), "bf16");
  EXPECT_EQ(data_type_info(DataType::kBFloat16).trt_name, "BF16");
  EXPECT_EQ(element_size(DataType::kBFloat16), 2u);
  for (const char* s : {"bf16", "bfloat16"}) {
    DataType t = DataType::kFloat;
    EXPECT_TRUE(parse_data_type(s, &t)) << s;
    EXPECT_EQ(t, DataType::kBFloat16) << s;
  }
}

// x (fp32) -> Cast bf16 -> y (bf16 output) -> Cast fp32 -> z: the kernel stores float_to_bfloat16
// and reads bfloat16_to_float.
TEST(Bfloat16, CpuCastBothWays) {
  Network n;
  auto add = [&](const char* name, DataType t) { return n.add_tensor({name, t, Dims{6}}); };
  const TensorId x = add("x", DataType::kFloat), y = add("y", DataType::kBFloat16), z = add("z", DataType::kFloat);
  n.tensors[x].is_input = true;
  n.inputs.push_back(x);
  n.add_layer({"to_bf16", LayerKind::kCast, {x}, {y}, CastParams{DataType::kBFloat16}});
  n.add_layer({"to_fp32", LayerKind::kCast, {y}, {z}, CastParams{DataType::kFloat}});
  for (TensorId t : {y, z}) {
    n.tensors[t].is_output = true;
    n.outputs.push_back(t);
  }
  const std::vector<float> xs = {1.00390625f, 1.01171875f, -3.f, INFINITY, NAN, from_bits(0x7f7fffffu)};
  HostTensor in = HostTensor::zeros("x", DataType::kFloat, {6});
  std::memcpy(in.data.data(), xs.data(), 24);
  TensorMap out = make_cpu_executor(n, {})->run({{"x", in}});
  const HostTensor& yb = out.at("y");
  ASSERT_EQ(yb.type, DataType::kBFloat16);
  std::vector<uint16_t> got(6);
  std::memcpy(got.data(), yb.data.data(), 12);
  EXPECT_EQ(got, (std::vector<uint16_t>{0x3f80, 0x3f82, 0xc040, 0x7f80, 0x7fc0, 0x7f80}));
  const float* zf = out.at("z").f32();
  EXPECT_EQ(zf[0], 1.f);
  EXPECT_EQ(zf[1], 1.015625f);
  EXPECT_EQ(zf[2], -3.f);
  EXPECT_EQ(zf[3], INFINITY);
  EXPECT_TRUE(std::isnan(zf[4]));
  EXPECT_EQ(zf[5], INFINITY);
}

// The DLA verdict: no bf16 on the DLA (it computes FP16 and INT8 only), with the tensor named.
TEST(Bfloat16, DlaRefusesBf16Tensors) {
  Network n;
  const TensorId x = n.add_tensor({"x", DataType::kBFloat16, Dims{1, 8, 4, 4}});
  const TensorId y = n.add_tensor({"y", DataType::kBFloat16, Dims{1, 8, 16, 1}});
  n.tensors[x].is_input = true;
  n.inputs.push_back(x);
  ShuffleParams p;
  p.reshape = Dims{1, 8, 16, 1};
  n.add_layer({"reshape", LayerKind::kShuffle, {x}, {y}, p});
  n.tensors[y].is_output = true;
  n.outputs.push_back(y);
  for (DlaPrecision precision : {DlaPrecision::kFp16, DlaPrecision::kInt8}) {
    DlaOptions o;
    o.precision = precision;
    const Support s = check_layer(n, 0, o);
    EXPECT_FALSE(s.ok);
    EXPECT_NE(s.reason.find("'x' is bf16; DLA runs FP16 and INT8 only"), std::string::npos) << s.reason;
  }
}
