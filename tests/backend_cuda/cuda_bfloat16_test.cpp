// bfloat16 casts on the CUDA backend: the cast kernel gives tandem's float_to_bfloat16 bits
// (numerics.h) for every float class, and reads bf16 back exactly. Label gpu.
#include <cstdint>
#include <cstring>

#include "tandem/numerics.h"
#include "test_util.h"

using namespace tandem;
using namespace tandem::test;

namespace {

float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

}  // namespace

// x (fp32) -> bf16 (output y) -> fp32 (output z), on every 4099th float bit pattern plus the
// hand-worked edges of tests/backend/bfloat16_test.cpp.
TEST(CudaBfloat16, CastBothWaysMatchesTheRule) {
  SKIP_WITHOUT_CUDA();
  std::vector<float> xs = {1.00390625f, 1.01171875f, -1.01171875f, INFINITY, -INFINITY,
                           from_bits(0x7f7fffffu), from_bits(0x7f800001u), from_bits(0xffc00000u),
                           from_bits(0x00018000u), -0.f};
  for (uint64_t u = 0; u <= 0xffffffffull; u += 4099) xs.push_back(from_bits(uint32_t(u)));
  const int64_t n = int64_t(xs.size());
  NetBuilder b;
  TensorId x = b.input("x", {n});
  TensorId y = b.tensor("y", {n}, DataType::kBFloat16);
  TensorId z = b.tensor("z", {n});
  b.layer("to_bf16", LayerKind::kCast, {x}, {y}, CastParams{DataType::kBFloat16});
  b.layer("to_fp32", LayerKind::kCast, {y}, {z}, CastParams{DataType::kFloat});
  b.output(y);
  b.output(z);
  TensorMap out = make_cuda_executor(b.n)->run({{"x", host("x", {n}, xs)}});
  ASSERT_EQ(out.at("y").type, DataType::kBFloat16);
  const std::vector<uint16_t> yb = values<uint16_t>(out.at("y"));
  const std::vector<uint32_t> zb = values<uint32_t>(out.at("z"));
  size_t wrong = 0;
  for (int64_t i = 0; i < n; ++i) {
    const uint16_t want = float_to_bfloat16(xs[size_t(i)]);
    if ((yb[size_t(i)] != want || zb[size_t(i)] != uint32_t(want) << 16) && wrong++ < 5)
      ADD_FAILURE() << "x bits 0x" << std::hex << values<uint32_t>(host("x", {1}, {xs[size_t(i)]}))[0] << ": got 0x"
                    << yb[size_t(i)] << ", want 0x" << want;
  }
  EXPECT_EQ(wrong, 0u);
  EXPECT_EQ(yb[0], 0x3f80);  // 1 + 1/256: the tie goes to the even 1.0
  EXPECT_EQ(yb[1], 0x3f82);  // 1 + 3/256: the tie goes to the even 1.015625
}

// A bf16 graph input cast to fp32 and to int32 (truncation toward zero, as every float cast).
TEST(CudaBfloat16, Bf16InputCasts) {
  SKIP_WITHOUT_CUDA();
  NetBuilder b;
  TensorId x = b.input("x", {4}, DataType::kBFloat16);
  TensorId f = b.tensor("f", {4});
  TensorId i = b.tensor("i", {4}, DataType::kInt32);
  b.layer("to_fp32", LayerKind::kCast, {x}, {f}, CastParams{DataType::kFloat});
  b.layer("to_int32", LayerKind::kCast, {x}, {i}, CastParams{DataType::kInt32});
  b.output(f);
  b.output(i);
  // 0x3fc0 = 1.5, 0xc0a0 = -5, 0x4049 = 3.140625, 0x3f82 = 1.015625.
  TensorMap out = make_cuda_executor(b.n)->run(
      {{"x", host_t<uint16_t>("x", DataType::kBFloat16, {4}, {0x3fc0, 0xc0a0, 0x4049, 0x3f82})}});
  EXPECT_EQ(values(out.at("f")), (std::vector<float>{1.5f, -5.f, 3.140625f, 1.015625f}));
  EXPECT_EQ(values<int32_t>(out.at("i")), (std::vector<int32_t>{1, -5, 3, 1}));
}
