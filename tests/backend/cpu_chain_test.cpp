// CPU point-wise chains (kernels_chain.cpp) and the one-gather nearest Resize: hand-worked values,
// and fused == unfused bit for bit (a chain changes no value, only the passes over memory).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "tandem/lower.h"
#include "tandem/runtime.h"

using namespace tandem;

namespace {

struct Net {
  Network n;
  TensorId tensor(const std::string& name, Dims d) { return n.add_tensor({name, DataType::kFloat, std::move(d)}); }
  TensorId input(const std::string& name, Dims d) {
    TensorId t = tensor(name, std::move(d));
    n.tensors[t].is_input = true;
    n.inputs.push_back(t);
    return t;
  }
  WeightsId weights(const std::string& name, Dims d, std::vector<float> v) {
    Weights w;
    w.name = name;
    w.dims = std::move(d);
    w.bytes.resize(v.size() * 4);
    std::memcpy(w.bytes.data(), v.data(), w.bytes.size());
    return n.add_weights(std::move(w));
  }
  TensorId scalar(const std::string& name, float v) {
    TensorId t = tensor(name, {1, 1, 1, 1});
    n.add_layer({name + "_const", LayerKind::kConstant, {}, {t}, ConstantParams{weights(name + "_w", {1, 1, 1, 1}, {v})}});
    return t;
  }
  TensorId eltwise(const std::string& name, ElementWiseOp op, TensorId a, TensorId b) {
    TensorId y = tensor(name, n.tensors[a].dims.size() == 4 && volume(n.tensors[a].dims) > 1 ? n.tensors[a].dims : n.tensors[b].dims);
    n.add_layer({name, LayerKind::kElementWise, {a, b}, {y}, ElementWiseParams{op}});
    return y;
  }
  TensorId act(const std::string& name, ActivationParams p, TensorId x) {
    TensorId y = tensor(name, n.tensors[x].dims);
    n.add_layer({name, LayerKind::kActivation, {x}, {y}, p});
    return y;
  }
  // 1x1 convolution, C -> C channels, weight w on the diagonal, bias b.
  TensorId conv1x1(const std::string& name, TensorId x, float w, float b) {
    const Dims d = n.tensors[x].dims;
    const int64_t C = d[1];
    std::vector<float> k(size_t(C * C), 0.f);
    for (int64_t c = 0; c < C; ++c) k[size_t(c * C + c)] = w;
    ConvolutionParams p;
    p.kernel = {1, 1};
    p.stride = {1, 1};
    p.pre_padding = {0, 0};
    p.post_padding = {0, 0};
    p.dilation = {1, 1};
    p.out_maps = C;
    p.kernel_weights = weights(name + "_w", {C, C, 1, 1}, k);
    p.bias_weights = weights(name + "_b", {C}, std::vector<float>(size_t(C), b));
    TensorId y = tensor(name, d);
    n.add_layer({name, LayerKind::kConvolution, {x}, {y}, p});
    return y;
  }
  void output(TensorId t) {
    n.tensors[t].is_output = true;
    n.outputs.push_back(t);
  }
};

// conv (x * 1 + 0.5) -> PP-OCR's decomposed hard-swish t * clip(t + 3, 0, 6) / 6 -> * 0.5 -> + 0.25
// (PP-LCNetV3's learnable affine block), then a chain not after a convolution: 1 - v, ReLU, + its
// input. Every link is a separate layer.
Network hard_swish_net(Dims d) {
  Net b;
  TensorId x = b.input("x", d);
  TensorId t = b.conv1x1("conv", x, 1.f, 0.5f);
  TensorId a = b.eltwise("add3", ElementWiseOp::kSum, t, b.scalar("three", 3.f));
  TensorId c = b.act("clip", {ActivationType::kClip, 0.f, 6.f}, a);
  TensorId m = b.eltwise("mul", ElementWiseOp::kProd, t, c);
  TensorId h = b.eltwise("div6", ElementWiseOp::kDiv, m, b.scalar("six", 6.f));
  TensorId s = b.eltwise("affine_mul", ElementWiseOp::kProd, h, b.scalar("half", 0.5f));
  TensorId u = b.eltwise("affine_add", ElementWiseOp::kSum, s, b.scalar("quarter", 0.25f));
  TensorId v = b.eltwise("one_minus", ElementWiseOp::kSub, b.scalar("one", 1.f), u);
  TensorId r = b.act("relu", {ActivationType::kRelu, 0.f, 0.f}, v);
  TensorId y = b.eltwise("plus_input", ElementWiseOp::kSum, r, v);
  b.output(y);
  return b.n;
}

float hand_value(float x) {
  const float t = x + 0.5f;
  const float h = t * std::min(std::max(t + 3.f, 0.f), 6.f) / 6.f;
  const float u = h * 0.5f + 0.25f;
  const float v = 1.f - u;
  return std::max(v, 0.f) + v;
}

std::vector<float> run(const Network& n, const std::vector<float>& xs, bool fuse) {
  HostTensor x = HostTensor::zeros("x", DataType::kFloat, n.tensors[n.inputs[0]].dims);
  std::memcpy(x.data.data(), xs.data(), xs.size() * 4);
  ExecOptions o;
  o.fuse = fuse;
  auto out = make_cpu_executor(n, o)->run({{"x", x}});
  const HostTensor& y = out.at(n.tensors[n.outputs[0]].name);
  return {y.f32(), y.f32() + y.count()};
}

// TANDEM_CPU_HARDSWISH=chain while alive: written-out hard-swish after a convolution stays in
// the chain (the layers' own rounding) instead of oneDNN's hardswish post-op.
struct HardSwishInChain {
  HardSwishInChain() { setenv("TANDEM_CPU_HARDSWISH", "chain", 1); }
  ~HardSwishInChain() { unsetenv("TANDEM_CPU_HARDSWISH"); }
};

size_t bits_differ(const std::vector<float>& a, const std::vector<float>& b) {
  size_t n = 0;
  for (size_t i = 0; i < a.size(); ++i) n += std::memcmp(&a[i], &b[i], 4) != 0;
  return n;
}
float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  float m = 0.f;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

}  // namespace

TEST(CpuChains, HardSwishAffineChainHandWorked) {
  const HardSwishInChain exact;
  const Network n = hard_swish_net({1, 1, 1, 4});
  // The lowering puts add3 .. one_minus in the convolution's epilogue (v has two readers: the
  // chain stops there) and relu + plus_input (v is that chain's input) in one chain step: 2 steps.
  const ExecGraph g = lower(n, Numerics{}, cpu_lower_policy(ExecOptions{}, false));
  EXPECT_EQ(g.steps.size(), 2u) << describe(n, g);
  // x = -4: t = -3.5, clip(-0.5) = 0 -> h = -0 -> u = 0.25, v = 0.75, y = 1.5;
  // x = 0.5: t = 1, h = 4/6, u = 7/12, v = 5/12, y = 10/12;
  // x = 3: t = 3.5, clip = 6, h = 3.5, u = 2, v = -1, y = -1.
  const std::vector<float> xs = {-4.f, 0.5f, 3.f, -1.f};
  const std::vector<float> got = run(n, xs, true);
  EXPECT_FLOAT_EQ(got[0], 1.5f);
  EXPECT_FLOAT_EQ(got[1], 10.f / 12.f);
  EXPECT_FLOAT_EQ(got[2], -1.f);
  for (size_t i = 0; i < xs.size(); ++i) EXPECT_EQ(got[i], hand_value(xs[i])) << "element " << i;
}

TEST(CpuChains, FusedEqualsUnfusedBitForBitOnALargeTensor) {
  // 1x8x96x96: several blocks per thread and the OpenMP path of the chain.
  const Network n = hard_swish_net({1, 8, 96, 96});
  std::vector<float> xs(8 * 96 * 96);
  for (size_t i = 0; i < xs.size(); ++i) xs[i] = -6.f + 12.f * float((i * 7919) % 10007) / 10007.f;
  const std::vector<float> plain = run(n, xs, false);
  {
    const HardSwishInChain exact;
    const std::vector<float> fused = run(n, xs, true);
    ASSERT_EQ(fused.size(), plain.size());
    EXPECT_EQ(bits_differ(fused, plain), 0u);
    EXPECT_EQ(fused[5], hand_value(xs[5]));
  }
  // By default the hard-swish runs as oneDNN's post-op: rounded differently, within a few ulp
  // of values below 10 (|y| <= 6 here).
  const std::vector<float> post_op = run(n, xs, true);
  EXPECT_GT(bits_differ(post_op, plain), 0u);
  EXPECT_LE(max_abs_diff(post_op, plain), 4e-6f);
}

TEST(CpuResize, NearestIsOneGatherOverEveryAxis) {
  // 1x1x2x3 -> 1x1x4x5, nearest, asymmetric, floor: rows {0,0,1,1}, columns floor(j * 3/5) =
  // {0,0,1,1,2}.
  Net b;
  TensorId x = b.input("x", {1, 1, 2, 3});
  TensorId y = b.tensor("y", {1, 1, 4, 5});
  ResizeParams p;
  p.mode = ResizeMode::kNearest;
  p.transform = ResizeCoordinateTransform::kAsymmetric;
  p.rounding = ResizeRounding::kFloor;
  b.n.add_layer({"resize", LayerKind::kResize, {x}, {y}, p});
  b.output(y);
  const std::vector<float> got = run(b.n, {1, 2, 3, 4, 5, 6}, true);
  const std::vector<float> want = {1, 1, 2, 2, 3, 1, 1, 2, 2, 3, 4, 4, 5, 5, 6, 4, 4, 5, 5, 6};
  EXPECT_EQ(got, want);
}

TEST(CpuChains, HardSigmoidTimesInputChainEqualsUnfusedBitForBit) {
  // x -> HardSigmoid(0.2, 0.5) -> * x -> - 0.75: alpha * x + beta must not become an FMA in the
  // chain kernel (cloned per instruction set) when the layer's own kernel rounds twice.
  Net b;
  TensorId x = b.input("x", {1, 8, 64, 64});
  TensorId h = b.act("hsig", {ActivationType::kHardSigmoid, 0.2f, 0.5f}, x);
  TensorId m = b.eltwise("mul", ElementWiseOp::kProd, h, x);
  TensorId y = b.eltwise("sub", ElementWiseOp::kSub, m, b.scalar("c", 0.75f));
  b.output(y);
  const ExecGraph g = lower(b.n, Numerics{}, cpu_lower_policy(ExecOptions{}, false));
  ASSERT_EQ(g.steps.size(), 1u) << describe(b.n, g);
  EXPECT_EQ(g.steps[0].kind, StepKind::kPointwiseChain);
  std::vector<float> xs(8 * 64 * 64);
  for (size_t i = 0; i < xs.size(); ++i) xs[i] = -4.f + 8.f * float((i * 7919) % 10007) / 10007.f + 1e-3f * float(i % 7);
  const std::vector<float> fused = run(b.n, xs, true), plain = run(b.n, xs, false);
  size_t differ = 0;
  for (size_t i = 0; i < fused.size(); ++i) differ += std::memcmp(&fused[i], &plain[i], 4) != 0;
  EXPECT_EQ(differ, 0u);
  // Hand-worked: x = 1: hsig = 0.7, * 1 = 0.7, - 0.75 = -0.05 (in float).
  const std::vector<float> one = run(b.n, std::vector<float>(xs.size(), 1.f), true);
  EXPECT_FLOAT_EQ(one[0], (0.2f * 1.f + 0.5f) * 1.f - 0.75f);
}

// PP-LCNetV3's block: conv -> * 0.5 + 0.25 (a chain) -> hard-swish reading that output twice,
// then * 2 - 1 (a second chain whose input is the first one's output). The CPU lowering runs
// both in the convolution's epilogue (conv_chain_capture: the second chain captures its input
// after the first); a backend without it (LowerPolicy default) keeps two steps.
TEST(CpuChains, ConvTakesASecondChainReadingTheFirstOnesOutput) {
  Net b;
  TensorId x = b.input("x", {1, 8, 40, 40});
  TensorId t = b.conv1x1("conv", x, 1.f, 0.5f);
  TensorId s = b.eltwise("affine_mul", ElementWiseOp::kProd, t, b.scalar("half", 0.5f));
  TensorId u = b.eltwise("affine_add", ElementWiseOp::kSum, s, b.scalar("quarter", 0.25f));
  TensorId a = b.eltwise("add3", ElementWiseOp::kSum, u, b.scalar("three", 3.f));
  TensorId c = b.act("clip", {ActivationType::kClip, 0.f, 6.f}, a);
  TensorId m = b.eltwise("mul", ElementWiseOp::kProd, u, c);
  TensorId h = b.eltwise("div6", ElementWiseOp::kDiv, m, b.scalar("six", 6.f));
  TensorId w = b.eltwise("affine2_mul", ElementWiseOp::kProd, h, b.scalar("two", 2.f));
  TensorId y = b.eltwise("affine2_sub", ElementWiseOp::kSub, w, b.scalar("one", 1.f));
  b.output(y);
  const ExecGraph g = lower(b.n, Numerics{}, cpu_lower_policy(ExecOptions{}, false));
  ASSERT_EQ(g.steps.size(), 1u) << describe(b.n, g);
  EXPECT_EQ(g.steps[0].epilogue.size(), 8u);
  EXPECT_EQ(g.steps[0].chain_input_at, 2);
  LowerPolicy two_chains;
  two_chains.pointwise_chains = true;
  EXPECT_EQ(lower(b.n, Numerics{}, two_chains).steps.size(), 2u);
  std::vector<float> xs(8 * 40 * 40);
  for (size_t i = 0; i < xs.size(); ++i) xs[i] = -9.f + 16.f * float((i * 7919) % 10007) / 10007.f;
  const std::vector<float> plain = run(b.n, xs, false);
  {
    // The chain captures its input after * 0.5 + 0.25 (binary post-ops, exact) and computes the
    // hard-swish as the layers do: the same bits.
    const HardSwishInChain exact;
    EXPECT_EQ(bits_differ(run(b.n, xs, true), plain), 0u);
    // Hand-worked: x = 1.5: t = 2, u = 1.25, clip(4.25) = 4.25, 1.25 * 4.25 = 5.3125, / 6, * 2 - 1;
    // x = -6: t = -5.5, u = -2.5, clip(0.5) = 0.5, -1.25 / 6, * 2 - 1.
    EXPECT_EQ(run(b.n, std::vector<float>(xs.size(), 1.5f), true)[0], 5.3125f / 6.f * 2.f - 1.f);
    EXPECT_EQ(run(b.n, std::vector<float>(xs.size(), -6.f), true)[7], -1.25f / 6.f * 2.f - 1.f);
  }
  // Default: the whole epilogue as oneDNN post-ops (binary * + hardswish + binary * -): only the
  // hardswish rounds differently.
  EXPECT_LE(max_abs_diff(run(b.n, xs, true), plain), 4e-6f);
}
