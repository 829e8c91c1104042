// Regressions found by the differential test against ONNX Runtime (scripts/differential.sh,
// docs/reliability.md): oneDNN 2.6 computes two eltwise post-ops of one algorithm with
// different parameters wrongly, so a convolution followed by LeakyReLU + ReLU, or by two Elus
// with different alphas, must not fuse both. Hand-worked values, fused and unfused.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "tandem/runtime.h"

using namespace tandem;

namespace {

// x [1,1,1,4] -> 1x1 conv (weight 1, no bias) -> act1 -> act2 -> y.
Network conv_two_acts(ActivationParams a1, ActivationParams a2) {
  Network n;
  TensorId x = n.add_tensor({"x", DataType::kFloat, {1, 1, 1, 4}});
  n.tensors[x].is_input = true;
  n.inputs.push_back(x);
  Weights w;
  w.name = "w";
  w.dims = {1, 1, 1, 1};
  w.bytes.resize(4);
  const float one = 1.f;
  std::memcpy(w.bytes.data(), &one, 4);
  ConvolutionParams p;
  p.kernel = {1, 1};
  p.stride = {1, 1};
  p.pre_padding = {0, 0};
  p.post_padding = {0, 0};
  p.dilation = {1, 1};
  p.out_maps = 1;
  p.kernel_weights = n.add_weights(std::move(w));
  TensorId c = n.add_tensor({"c", DataType::kFloat, {1, 1, 1, 4}});
  TensorId h = n.add_tensor({"h", DataType::kFloat, {1, 1, 1, 4}});
  TensorId y = n.add_tensor({"y", DataType::kFloat, {1, 1, 1, 4}});
  n.add_layer({"conv", LayerKind::kConvolution, {x}, {c}, p});
  n.add_layer({"act1", LayerKind::kActivation, {c}, {h}, a1});
  n.add_layer({"act2", LayerKind::kActivation, {h}, {y}, a2});
  n.tensors[y].is_output = true;
  n.outputs.push_back(y);
  return n;
}

std::vector<float> run(const Network& n, bool fuse) {
  HostTensor x = HostTensor::zeros("x", DataType::kFloat, {1, 1, 1, 4});
  const float v[4] = {-2.f, -0.5f, 0.5f, 2.f};
  std::memcpy(x.data.data(), v, sizeof v);
  ExecOptions o;
  o.fuse = fuse;
  auto out = make_cpu_executor(n, o)->run({{"x", x}});
  const HostTensor& y = out.at("y");
  return {y.f32(), y.f32() + y.count()};
}

}  // namespace

TEST(FusionRegression, LeakyReluThenReluZeroesNegatives) {
  Network n = conv_two_acts({ActivationType::kLeakyRelu, 0.1f, 0.f}, {ActivationType::kRelu, 0.f, 0.f});
  for (bool fuse : {true, false}) {
    auto y = run(n, fuse);
    const std::vector<float> want = {0.f, 0.f, 0.5f, 2.f};
    for (int i = 0; i < 4; ++i) EXPECT_FLOAT_EQ(y[i], want[i]) << "fuse=" << fuse << " element " << i;
  }
}

TEST(FusionRegression, TwoElusKeepTheirOwnAlphas) {
  Network n = conv_two_acts({ActivationType::kElu, 0.5f, 0.f}, {ActivationType::kElu, 1.5f, 0.f});
  for (bool fuse : {true, false}) {
    auto y = run(n, fuse);
    const float xs[4] = {-2.f, -0.5f, 0.5f, 2.f};
    for (int i = 0; i < 4; ++i) {
      float h = xs[i] >= 0 ? xs[i] : 0.5f * (std::exp(xs[i]) - 1.f);
      float want = h >= 0 ? h : 1.5f * (std::exp(h) - 1.f);
      EXPECT_NEAR(y[i], want, 1e-6f) << "fuse=" << fuse << " element " << i;
    }
  }
}
