// RandomUniformLike: the documented generator (SplitMix64, 24 bits per value, [low, high)) and its
// import as a Constant of those values; Dropout's mask and ConvTranspose's output_shape one past
// the op (the parser's output padding) with hand-worked values.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "../../src/onnx/internal.h"
#include "model_builder.h"
#include "tandem/onnx.h"
#include "tandem/runtime.h"

using namespace tandem;
using tandem::test::ModelBuilder;

TEST(RandomUniformLike, GeneratorIsDeterministicUniformAndInRange) {
  const int64_t n = 200000;
  const std::vector<float> a = onnx_detail::random_uniform_values(n, 0.f, 1.f, 0.f, false);
  EXPECT_EQ(a, onnx_detail::random_uniform_values(n, 0.f, 1.f, 0.f, false));  // same values every time
  EXPECT_NE(a, onnx_detail::random_uniform_values(n, 0.f, 1.f, 7.f, true));   // a seed changes them
  EXPECT_EQ(onnx_detail::random_uniform_values(64, 0.f, 1.f, 7.f, true),
            onnx_detail::random_uniform_values(64, 0.f, 1.f, 7.f, true));
  double sum = 0, sum2 = 0;
  for (float v : a) {
    ASSERT_GE(v, 0.f);
    ASSERT_LT(v, 1.f);
    EXPECT_EQ(v, std::ldexp(std::round(std::ldexp(v, 24)), -24));  // a multiple of 2^-24
    sum += v;
    sum2 += double(v) * v;
  }
  // Uniform on [0, 1): mean 1/2, variance 1/12; 200,000 draws put the mean within 0.0013 (2 sigma).
  const double mean = sum / n, var = sum2 / n - mean * mean;
  EXPECT_NEAR(mean, 0.5, 0.0013);
  EXPECT_NEAR(var, 1.0 / 12, 0.001);
  // [low, high): scaled, and never high even where the product rounds up to it.
  for (float v : onnx_detail::random_uniform_values(10000, -3.f, -2.f, 1.f, true)) {
    ASSERT_GE(v, -3.f);
    ASSERT_LT(v, -2.f);
  }
}

TEST(RandomUniformLike, ImportsAsAConstantOfTheGeneratorsValues) {
  ModelBuilder b(15);
  b.input("x", {2, 3});
  auto& n = b.node("RandomUniformLike", {"x"}, {"r"});
  ModelBuilder::attr_f(n, "low", 2.f);
  ModelBuilder::attr_f(n, "high", 4.f);
  ModelBuilder::attr_f(n, "seed", 5.f);
  b.node("Add", {"x", "r"}, {"y"});
  b.output("y");
  const Network net = import_onnx(b.write("random_uniform_like.onnx"));
  HostTensor x = HostTensor::zeros("x", DataType::kFloat, {2, 3});
  const TensorMap out = make_cpu_executor(net)->run({{"x", x}});
  const std::vector<float> want = onnx_detail::random_uniform_values(6, 2.f, 4.f, 5.f, true);
  const HostTensor& y = out.at("y");
  ASSERT_EQ(y.dims, (Dims{2, 3}));
  for (int i = 0; i < 6; ++i) EXPECT_EQ(y.f32()[i], want[size_t(i)]) << i;
}

TEST(RandomUniformLike, RefusesDtypeDoubleAsTheParser) {
  ModelBuilder b(15);
  b.input("x", {4});
  auto& n = b.node("RandomUniformLike", {"x"}, {"y"});
  ModelBuilder::attr_i(n, "dtype", onnx::TensorProto::DOUBLE);
  b.output("y");
  try {
    import_onnx(b.write("random_uniform_like_double.onnx"));
    FAIL() << "imported";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("dtype double is not supported"), std::string::npos) << e.what();
  }
}

// Dropout (opset 13) with its mask: ElementWise EQUAL(x, x), as the parser builds it: true
// everywhere but at a NaN.
TEST(DropoutMask, IsEqualOfTheInputWithItself) {
  ModelBuilder b(13);
  b.input("x", {4});
  b.node("Dropout", {"x"}, {"y", "mask"});
  b.output("y");
  b.output("mask");
  const Network net = import_onnx(b.write("dropout_mask.onnx"));
  HostTensor x = HostTensor::zeros("x", DataType::kFloat, {4});
  const float xs[4] = {1.5f, -2.f, 0.f, NAN};
  std::memcpy(x.data.data(), xs, 16);
  const TensorMap out = make_cpu_executor(net)->run({{"x", x}});
  ASSERT_EQ(out.at("mask").type, DataType::kBool);
  EXPECT_EQ(std::vector<uint8_t>(out.at("mask").data.begin(), out.at("mask").data.end()),
            (std::vector<uint8_t>{1, 1, 1, 0}));
  EXPECT_EQ(out.at("y").f32()[1], -2.f);
}

// ConvTranspose, 1x1x2x2 input of ones, 1x1x1x1 kernel 2, stride 2, output_shape 4x4: the
// padding-free output is 2 * (2 - 1) + 1 = 3 per axis (total padding -1), so the parser's output
// padding adds a last row and column of zeros plus the bias 0.5. output_shape 5 (total -2) needs
// negative pre-padding, which the parser refuses.
TEST(ConvTransposeOutputShape, OnePastTheOpIsOutputPadding) {
  ModelBuilder b(13);
  b.input("x", {1, 1, 2, 2});
  b.init("w", {1, 1, 1, 1}, {2.f});
  b.init("b", {1}, {0.5f});
  auto& n = b.node("ConvTranspose", {"x", "w", "b"}, {"y"});
  ModelBuilder::attr_ints(n, "strides", {2, 2});
  ModelBuilder::attr_ints(n, "output_shape", {4, 4});
  b.output("y");
  const Network net = import_onnx(b.write("convtranspose_output_shape.onnx"));
  HostTensor x = HostTensor::zeros("x", DataType::kFloat, {1, 1, 2, 2});
  for (int i = 0; i < 4; ++i) x.f32()[i] = 1.f;
  const TensorMap out = make_cpu_executor(net)->run({{"x", x}});
  const HostTensor& y = out.at("y");
  ASSERT_EQ(y.dims, (Dims{1, 1, 4, 4}));
  for (int h = 0; h < 4; ++h)
    for (int w = 0; w < 4; ++w) {
      const float want = (h < 3 && w < 3 && h % 2 == 0 && w % 2 == 0) ? 2.5f : 0.5f;
      EXPECT_EQ(y.f32()[h * 4 + w], want) << h << "," << w;
    }
  ModelBuilder r(13);
  r.input("x", {1, 1, 2, 2});
  r.init("w", {1, 1, 1, 1}, {2.f});
  auto& m = r.node("ConvTranspose", {"x", "w"}, {"y"});
  ModelBuilder::attr_ints(m, "strides", {2, 2});
  ModelBuilder::attr_ints(m, "output_shape", {5, 5});
  r.output("y");
  try {
    import_onnx(r.write("convtranspose_output_shape_5.onnx"));
    FAIL() << "imported";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("needs negative pre-padding"), std::string::npos) << e.what();
  }
}
