// The CPU executor keeps convolution chains in oneDNN's layout (channels-last on AVX-512 cores,
// nChw8c/16c elsewhere): which values plan_layouts keeps, and that the results agree with the
// plain reference loops whatever this CPU picks.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>

#include "../../src/backend/cpu/kernels.h"
#include "tandem/lower.h"
#include "tandem/runtime.h"

using namespace tandem;

namespace {

struct Net {
  Network n;
  TensorId tensor(const std::string& name, Dims d) { return n.add_tensor({name, DataType::kFloat, std::move(d)}); }
  WeightsId weights(const std::string& name, Dims d, int seed) {
    Weights w;
    w.name = name;
    w.dims = std::move(d);
    std::vector<float> v(size_t(volume(w.dims)));
    for (size_t i = 0; i < v.size(); ++i) v[i] = float(int((i * 37 + size_t(seed) * 11) % 17) - 8) / 16.f;
    w.bytes.resize(v.size() * 4);
    std::memcpy(w.bytes.data(), v.data(), w.bytes.size());
    return n.add_weights(std::move(w));
  }
  TensorId conv(const std::string& name, TensorId x, int64_t k_out, int64_t k, int64_t groups) {
    const Dims d = n.tensors[x].dims;
    ConvolutionParams p;
    p.kernel = {k, k};
    p.stride = {1, 1};
    p.pre_padding = {k / 2, k / 2};
    p.post_padding = {k / 2, k / 2};
    p.dilation = {1, 1};
    p.groups = groups;
    p.out_maps = k_out;
    p.kernel_weights = weights(name + "_w", {k_out, d[1] / groups, k, k}, int(k_out + k));
    p.bias_weights = weights(name + "_b", {k_out}, 3);
    TensorId y = tensor(name, {d[0], k_out, d[2], d[3]});
    n.add_layer({name, LayerKind::kConvolution, {x}, {y}, p});
    return y;
  }
  TensorId scalar(const std::string& name, float v) {
    TensorId t = tensor(name, {1, 1, 1, 1});
    Weights w;
    w.name = name + "_w";
    w.dims = {1, 1, 1, 1};
    w.bytes.resize(4);
    std::memcpy(w.bytes.data(), &v, 4);
    n.add_layer({name + "_c", LayerKind::kConstant, {}, {t}, ConstantParams{n.add_weights(std::move(w))}});
    return t;
  }
  TensorId eltwise(const std::string& name, ElementWiseOp op, TensorId a, TensorId b) {
    TensorId y = tensor(name, volume(n.tensors[a].dims) > 1 ? n.tensors[a].dims : n.tensors[b].dims);
    n.add_layer({name, LayerKind::kElementWise, {a, b}, {y}, ElementWiseParams{op}});
    return y;
  }
};

// x [1, 16, 12, 12] (the network input) -> c1, a 3x3 convolution to `channels`.
TensorId conv_from_input(Net& b, int64_t channels) {
  const TensorId x = b.tensor("x", {1, 16, 12, 12});
  b.n.tensors[x].is_input = true;
  b.n.inputs.push_back(x);
  return b.conv("c1", x, channels, 3, 1);
}

// A per-channel Scale's weights, not representable in half.
ScaleParams half_inexact_scale(Net& b, int64_t channels) {
  ScaleParams sp;
  sp.scale = b.weights("bn_s", {channels}, 4);
  sp.shift = b.weights("bn_b", {channels}, 6);
  for (int64_t c = 0; c < channels; ++c) {
    b.n.weights[size_t(sp.scale)].f32()[c] = 0.1f + 0.013f * float(c);
    b.n.weights[size_t(sp.shift)].f32()[c] = 0.3f - 0.021f * float(c);
  }
  return sp;
}

// A 1x1 convolution that copies its input: one-hot weights, no bias (exact in any order).
TensorId copying_conv(Net& b, const std::string& name, TensorId x, int64_t channels) {
  const TensorId y = b.conv(name, x, channels, 1, 1);
  const auto& p = b.n.layers.back().as<ConvolutionParams>();
  for (int64_t k = 0; k < channels; ++k) {
    b.n.weights[size_t(p.bias_weights)].f32()[k] = 0.f;
    for (int64_t c = 0; c < channels; ++c) b.n.weights[size_t(p.kernel_weights)].f32()[k * channels + c] = k == c ? 1.f : 0.f;
  }
  return y;
}

struct Model {
  Network net;
  TensorId c1, affine, c2, sum, c3, pooled, y;
};

// x [1,16,24,24] -> c1 3x3 (32) -> * 0.5 + 0.25 -> c2 3x3 depthwise -> + c1's affine output
// (residual) -> c3 1x1 (16) -> max pool 2x2 -> y. Only the pooling reads c3 (plain loops).
Model model() {
  Net b;
  Model m;
  TensorId x = b.tensor("x", {1, 16, 24, 24});
  b.n.tensors[x].is_input = true;
  b.n.inputs.push_back(x);
  m.c1 = b.conv("c1", x, 32, 3, 1);
  TensorId s = b.eltwise("mul", ElementWiseOp::kProd, m.c1, b.scalar("half", 0.5f));
  m.affine = b.eltwise("add", ElementWiseOp::kSum, s, b.scalar("quarter", 0.25f));
  m.c2 = b.conv("c2", m.affine, 32, 3, 32);
  m.sum = b.eltwise("residual", ElementWiseOp::kSum, m.c2, m.affine);
  m.c3 = b.conv("c3", m.sum, 16, 1, 1);
  m.pooled = b.tensor("y", {1, 16, 12, 12});
  PoolingParams pp;
  pp.type = PoolingType::kMax;
  pp.window = {2, 2};
  pp.stride = {2, 2};
  pp.pre_padding = {0, 0};
  pp.post_padding = {0, 0};
  b.n.add_layer({"pool", LayerKind::kPooling, {m.c3}, {m.pooled}, pp});
  m.y = m.pooled;
  b.n.tensors[m.y].is_output = true;
  b.n.outputs.push_back(m.y);
  m.net = std::move(b.n);
  return m;
}

}  // namespace

TEST(CpuLayouts, ConvolutionChainsKeepTheirLayoutUntilAPlainReader) {
  const Model m = model();
  const ExecGraph g = lower(m.net, Numerics{}, cpu_lower_policy(ExecOptions{}, false));
  for (int block : {cpu::kNhwcBlock, 16, 8}) {
    const std::vector<char> keep = cpu::plan_layouts(m.net, g, block);
    // The affine block runs in c1's epilogue: its output is c1's step output.
    EXPECT_TRUE(keep[size_t(m.affine)]) << "block " << block;
    EXPECT_TRUE(keep[size_t(m.c2)]) << "block " << block;
    EXPECT_TRUE(keep[size_t(m.sum)]) << "block " << block;
    EXPECT_FALSE(keep[size_t(m.c3)]) << "block " << block << ": read by the plain pooling loop";
    EXPECT_FALSE(keep[size_t(m.y)]) << "block " << block << ": a network output";
  }
  // 16 channels after c3 would fit a block of 16 but not the pooling; 32-channel values fit
  // every block; nothing is kept with block 0.
  for (char k : cpu::plan_layouts(m.net, g, 0)) EXPECT_FALSE(k);
}

TEST(CpuLayouts, ResultsAgreeWithThePlainReferenceInEveryLayout) {
  const Model m = model();
  HostTensor x = HostTensor::zeros("x", DataType::kFloat, {1, 16, 24, 24});
  for (int64_t i = 0; i < x.count(); ++i) x.f32()[i] = std::sin(float(i) * 0.37f);
  ExecOptions ref;
  ref.reference_kernels = true;
  const HostTensor want = make_cpu_executor(m.net, ref)->run({{"x", x}}).at("y");
  // Not all zeros or a copy of the input: the max pool of real values.
  EXPECT_GT(std::fabs(want.f32()[0]) + std::fabs(want.f32()[100]), 0.f);
  // This CPU's choice (unset), and the ones other x86-64 CPUs make (AVX2: nChw8c).
  for (const char* layout : {"", "nhwc", "8", "16", "plain"}) {
    if (*layout) setenv("TANDEM_CPU_CHAIN_LAYOUT", layout, 1);
    const HostTensor got = make_cpu_executor(m.net, ExecOptions{})->run({{"x", x}}).at("y");
    unsetenv("TANDEM_CPU_CHAIN_LAYOUT");
    ASSERT_EQ(got.count(), want.count());
    double worst = 0;
    for (int64_t i = 0; i < got.count(); ++i) worst = std::max(worst, double(std::fabs(got.f32()[i] - want.f32()[i])));
    EXPECT_LT(worst, 1e-4) << "layout '" << layout << "' (this CPU's: code " << cpu::dnnl_conv_block() << ")";
  }
}

TEST(CpuLayouts, UnknownChainLayoutIsAnErrorNamingTheVariable) {
  setenv("TANDEM_CPU_CHAIN_LAYOUT", "nchw", 1);
  try {
    make_cpu_executor(model().net, ExecOptions{});
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("TANDEM_CPU_CHAIN_LAYOUT='nchw'"), std::string::npos) << e.what();
  }
  unsetenv("TANDEM_CPU_CHAIN_LAYOUT");
}

// Emulated FP16 layers keep convolution layouts too, but a value written by a plain-only step
// (pooling) and rounded in place after it stays plain: the in-place rounding step follows its
// producer's layout, it does not choose one (a bug that read a plain pooling output as NHWC).
TEST(CpuLayouts, InPlaceRoundingFollowsItsProducersLayout) {
  Net b;
  TensorId x = b.tensor("x", {1, 16, 24, 24});
  b.n.tensors[x].is_input = true;
  b.n.inputs.push_back(x);
  TensorId c1 = b.conv("c1", x, 32, 3, 1);
  TensorId pooled = b.tensor("pooled", {1, 32, 12, 12});
  PoolingParams pp;
  pp.type = PoolingType::kMax;
  pp.window = {2, 2};
  pp.stride = {2, 2};
  pp.pre_padding = {0, 0};
  pp.post_padding = {0, 0};
  b.n.add_layer({"pool", LayerKind::kPooling, {c1}, {pooled}, pp});
  TensorId c2 = b.conv("c2", pooled, 32, 3, 1);
  TensorId y = b.conv("c3", c2, 16, 1, 1);
  b.n.tensors[y].is_output = true;
  b.n.outputs.push_back(y);
  ExecOptions opt;
  opt.numerics.layer_precision.assign(b.n.layers.size(), Precision::kFP16);
  const ExecGraph g = lower(b.n, opt.numerics, cpu_lower_policy(opt, false));
  for (int block : {cpu::kNhwcBlock, 16, 8}) {
    const std::vector<char> keep = cpu::plan_layouts(b.n, g, block);
    // Channels-last: the pooling has a channels-last loop, so both sides of it stay NHWC.
    const bool nhwc = block == cpu::kNhwcBlock;
    EXPECT_EQ(bool(keep[size_t(c1)]), nhwc) << "block " << block << ": read by the pooling loop (on the grid: no copy)";
    EXPECT_EQ(bool(keep[size_t(pooled)]), nhwc) << "block " << block << ": written by the pooling loop";
    EXPECT_TRUE(keep[size_t(c2)]) << "block " << block;
  }
  HostTensor in = HostTensor::zeros("x", DataType::kFloat, {1, 16, 24, 24});
  for (int64_t i = 0; i < in.count(); ++i) in.f32()[i] = std::sin(float(i) * 0.37f);
  setenv("TANDEM_CPU_CHAIN_LAYOUT", "plain", 1);
  const HostTensor want = make_cpu_executor(b.n, opt)->run({{"x", in}}).at("c3");
  for (const char* layout : {"nhwc", "8", "16"}) {
    setenv("TANDEM_CPU_CHAIN_LAYOUT", layout, 1);
    const HostTensor got = make_cpu_executor(b.n, opt)->run({{"x", in}}).at("c3");
    double worst = 0, biggest = 0;
    for (int64_t i = 0; i < got.count(); ++i) {
      worst = std::max(worst, double(std::fabs(got.f32()[i] - want.f32()[i])));
      biggest = std::max(biggest, double(std::fabs(want.f32()[i])));
    }
    // FP16 steps: a different summation order may flip a rounding, one half step at most.
    EXPECT_LE(worst, biggest / 512) << "layout " << layout;
    EXPECT_GT(biggest, 0.5);
  }
  unsetenv("TANDEM_CPU_CHAIN_LAYOUT");
}

namespace {

struct Neck {
  Network net;
  TensorId c1, pooled, gated, up, up2, cat, y;
};

// A detection neck: x [1,16,16,16] -> c1 3x3 -> squeeze-excitation (global average pool, 1x1
// conv, HardSigmoid, c1 * gate broadcast over H and W) -> nearest x2 -> concatenated with c1
// upsampled -> 1x1 conv -> y. With channels-last chains every 16x16 and 32x32 value stays
// channels-last (no plain reader); the pooled 1x1 values are the same bytes either way.
Neck neck() {
  Net b;
  Neck m;
  TensorId x = b.tensor("x", {1, 16, 16, 16});
  b.n.tensors[x].is_input = true;
  b.n.inputs.push_back(x);
  m.c1 = b.conv("c1", x, 16, 3, 1);
  m.pooled = b.tensor("gap", {1, 16, 1, 1});
  b.n.add_layer({"gap", LayerKind::kReduce, {m.c1}, {m.pooled}, ReduceParams{ReduceOp::kAvg, 0b1100u, true}});
  TensorId se = b.conv("se", m.pooled, 16, 1, 1);
  TensorId gate = b.tensor("gate", {1, 16, 1, 1});
  b.n.add_layer({"hsig", LayerKind::kActivation, {se}, {gate}, ActivationParams{ActivationType::kHardSigmoid, 0.2f, 0.5f}});
  m.gated = b.eltwise("gated", ElementWiseOp::kProd, m.c1, gate);
  ResizeParams rp;
  rp.scales = {1.f, 1.f, 2.f, 2.f};
  m.up = b.tensor("up", {1, 16, 32, 32});
  b.n.add_layer({"resize", LayerKind::kResize, {m.gated}, {m.up}, rp});
  m.up2 = b.tensor("up2", {1, 16, 32, 32});
  b.n.add_layer({"resize2", LayerKind::kResize, {m.c1}, {m.up2}, rp});
  m.cat = b.tensor("cat", {1, 32, 32, 32});
  b.n.add_layer({"concat", LayerKind::kConcatenation, {m.up, m.up2}, {m.cat}, ConcatenationParams{1}});
  m.y = b.conv("y", m.cat, 16, 1, 1);
  b.n.tensors[m.y].is_output = true;
  b.n.outputs.push_back(m.y);
  m.net = std::move(b.n);
  return m;
}

}  // namespace

TEST(CpuLayouts, ANeckStaysChannelsLastThroughPoolingResizeAndConcat) {
  const Neck m = neck();
  const ExecGraph g = lower(m.net, Numerics{}, cpu_lower_policy(ExecOptions{}, false));
  const std::vector<char> nhwc = cpu::plan_layouts(m.net, g, cpu::kNhwcBlock);
  for (TensorId t : {m.c1, m.gated, m.up, m.up2, m.cat}) EXPECT_TRUE(nhwc[size_t(t)]) << m.net.tensors[t].name;
  // Blocked layouts (AVX2 CPUs) keep the gathers plain: so does everything they read.
  const std::vector<char> blocked = cpu::plan_layouts(m.net, g, 16);
  for (TensorId t : {m.c1, m.gated, m.up, m.cat}) EXPECT_FALSE(blocked[size_t(t)]) << m.net.tensors[t].name;

  HostTensor x = HostTensor::zeros("x", DataType::kFloat, {1, 16, 16, 16});
  for (int64_t i = 0; i < x.count(); ++i) x.f32()[i] = std::sin(float(i) * 0.37f);
  ExecOptions ref;
  ref.reference_kernels = true;
  const HostTensor want = make_cpu_executor(m.net, ref)->run({{"x", x}}).at("y");
  EXPECT_GT(std::fabs(want.f32()[0]) + std::fabs(want.f32()[1000]), 0.f);
  for (const char* layout : {"nhwc", "16", "plain"}) {
    setenv("TANDEM_CPU_CHAIN_LAYOUT", layout, 1);
    const HostTensor got = make_cpu_executor(m.net, ExecOptions{})->run({{"x", x}}).at("y");
    unsetenv("TANDEM_CPU_CHAIN_LAYOUT");
    ASSERT_EQ(got.count(), want.count());
    double worst = 0;
    for (int64_t i = 0; i < got.count(); ++i) worst = std::max(worst, double(std::fabs(got.f32()[i] - want.f32()[i])));
    EXPECT_LT(worst, 1e-4) << "layout '" << layout << "'";
  }
}

// Average pooling with padding (counting it or not) in the channels-last loop: its window clip
// and count as the plain loop's, against the reference in every layout.
TEST(CpuLayouts, ChannelsLastAveragePoolingCountsAsThePlainLoop) {
  for (bool exclude : {true, false}) {
    Net b;
    TensorId x = b.tensor("x", {1, 16, 9, 11});
    b.n.tensors[x].is_input = true;
    b.n.inputs.push_back(x);
    TensorId c1 = b.conv("c1", x, 32, 3, 1);
    TensorId pooled = b.tensor("pooled", {1, 32, 5, 6});
    PoolingParams pp;
    pp.type = PoolingType::kAverage;
    pp.window = {3, 3};
    pp.stride = {2, 2};
    pp.pre_padding = {1, 1};
    pp.post_padding = {1, 1};
    pp.average_count_excludes_padding = exclude;
    b.n.add_layer({"pool", LayerKind::kPooling, {c1}, {pooled}, pp});
    TensorId y = b.conv("c2", pooled, 16, 1, 1);
    b.n.tensors[y].is_output = true;
    b.n.outputs.push_back(y);
    const ExecGraph g = lower(b.n, Numerics{}, cpu_lower_policy(ExecOptions{}, false));
    EXPECT_TRUE(cpu::plan_layouts(b.n, g, cpu::kNhwcBlock)[size_t(pooled)]);
    HostTensor in = HostTensor::zeros("x", DataType::kFloat, {1, 16, 9, 11});
    for (int64_t i = 0; i < in.count(); ++i) in.f32()[i] = std::sin(float(i) * 0.37f);
    ExecOptions ref;
    ref.reference_kernels = true;
    const HostTensor want = make_cpu_executor(b.n, ref)->run({{"x", in}}).at("c2");
    for (const char* layout : {"nhwc", "16", "plain"}) {
      setenv("TANDEM_CPU_CHAIN_LAYOUT", layout, 1);
      const HostTensor got = make_cpu_executor(b.n, ExecOptions{})->run({{"x", in}}).at("c2");
      unsetenv("TANDEM_CPU_CHAIN_LAYOUT");
      double worst = 0;
      for (int64_t i = 0; i < got.count(); ++i) worst = std::max(worst, double(std::fabs(got.f32()[i] - want.f32()[i])));
      EXPECT_LT(worst, 1e-4) << "layout '" << layout << "', exclude padding " << exclude;
    }
  }
}

namespace {

// One Scale over x of dims d (channel_axis 1, or 3 for the channels-last form) with per-channel
// scale and shift (and power 2 when `power`), or uniform ones.
Network scale_net(const Dims& d, int channel_axis, ScaleMode mode, bool power) {
  Net b;
  TensorId x = b.tensor("x", d);
  b.n.tensors[x].is_input = true;
  b.n.inputs.push_back(x);
  const int64_t c = mode == ScaleMode::kUniform ? 1 : d[size_t(channel_axis)];
  ScaleParams p;
  p.mode = mode;
  p.channel_axis = channel_axis;
  p.scale = b.weights("s", {c}, 1);
  p.shift = b.weights("b", {c}, 2);
  if (power) p.power = b.weights("p", {c}, 5);
  TensorId y = b.tensor("y", d);
  b.n.tensors[y].is_output = true;
  b.n.outputs.push_back(y);
  b.n.add_layer({"scale", LayerKind::kScale, {x}, {y}, p});
  return std::move(b.n);
}

}  // namespace

// The channels-last Scale (a BatchNormalization after a deconvolution keeps the chain
// channels-last) is the plain Scale with its channel axis last: the same bits, element by element.
TEST(CpuLayouts, ChannelsLastScaleComputesThePlainScalesBits) {
  const Dims plain{2, 24, 5, 7}, nhwc{2, 5, 7, 24};
  for (ScaleMode mode : {ScaleMode::kChannel, ScaleMode::kUniform})
    for (bool power : {false, true}) {
      const Network a = scale_net(plain, 1, mode, power), b = scale_net(nhwc, 3, mode, power);
      std::vector<float> x(size_t(volume(plain))), xt(x.size()), y(x.size()), yt(x.size());
      for (size_t i = 0; i < x.size(); ++i) x[i] = 0.25f + std::fabs(std::sin(float(i) * 0.37f)) * 3.f;  // power: a positive base
      auto at = [&](int64_t n, int64_t c, int64_t p) { return size_t((n * 35 + p) * 24 + c); };
      for (int64_t n = 0; n < 2; ++n)
        for (int64_t c = 0; c < 24; ++c)
          for (int64_t p = 0; p < 35; ++p) xt[at(n, c, p)] = x[size_t((n * 24 + c) * 35 + p)];
      cpu::make_ref_kernel(a, a.layers[0], a.weights)({x.data()}, {y.data()});
      cpu::make_ref_kernel(b, b.layers[0], b.weights)({xt.data()}, {yt.data()});
      int differ = 0;
      for (int64_t n = 0; n < 2; ++n)
        for (int64_t c = 0; c < 24; ++c)
          for (int64_t p = 0; p < 35; ++p)
            differ += std::memcmp(&y[size_t((n * 24 + c) * 35 + p)], &yt[at(n, c, p)], sizeof(float)) != 0;
      EXPECT_EQ(differ, 0) << (mode == ScaleMode::kUniform ? "uniform" : "channel") << (power ? " with power" : "");
      EXPECT_NE(y[0], x[0]);
    }
}

// conv -> Scale (per channel; FP32 with a power of 1, which no convolution folds, then FP16 with
// its weights rounded to half) -> conv: the Scale
// keeps the convolutions' channels-last layout, and computes exactly what the plain reference
// does. Both convolutions are exact in any summation order (dyadic inputs and weights; the second
// one copies its input: one-hot 1x1 weights, no bias), so the output is the Scale's, bit for bit.
TEST(CpuLayouts, AScaleBetweenConvolutionsStaysChannelsLast) {
  Net b;
  const TensorId c1 = conv_from_input(b, 24);
  ScaleParams sp = half_inexact_scale(b, 24);
  sp.power = b.weights("bn_p", {24}, 1);
  for (int64_t c = 0; c < 24; ++c) b.n.weights[size_t(sp.power)].f32()[c] = 1.f;
  const TensorId bn = b.tensor("bn", {1, 24, 12, 12});
  b.n.add_layer({"bn", LayerKind::kScale, {c1}, {bn}, sp});
  const TensorId y = copying_conv(b, "c2", bn, 24);
  b.n.tensors[y].is_output = true;
  b.n.outputs.push_back(y);
  const ExecGraph g = lower(b.n, Numerics{}, cpu_lower_policy(ExecOptions{}, false));
  const std::vector<char> nhwc = cpu::plan_layouts(b.n, g, cpu::kNhwcBlock);
  EXPECT_TRUE(nhwc[size_t(c1)]);
  EXPECT_TRUE(nhwc[size_t(bn)]);
  HostTensor in = HostTensor::zeros("x", DataType::kFloat, {1, 16, 12, 12});
  for (int64_t i = 0; i < in.count(); ++i) in.f32()[i] = float(int((i * 7) % 13) - 6) / 8.f;
  std::vector<float> fp32_out;
  for (Precision scale_precision : {Precision::kFP32, Precision::kFP16}) {
    ExecOptions opt;
    opt.numerics.layer_precision.assign(b.n.layers.size(), Precision::kFP32);
    opt.numerics.layer_precision[1] = scale_precision;  // layers: c1, bn, c2
    ExecOptions ref = opt;
    ref.reference_kernels = true;
    const HostTensor want = make_cpu_executor(b.n, ref)->run({{"x", in}}).at("c2");
    for (const char* layout : {"nhwc", "16", "plain"}) {
      setenv("TANDEM_CPU_CHAIN_LAYOUT", layout, 1);
      const HostTensor got = make_cpu_executor(b.n, opt)->run({{"x", in}}).at("c2");
      unsetenv("TANDEM_CPU_CHAIN_LAYOUT");
      ASSERT_EQ(got.count(), want.count());
      int differ = 0;
      for (int64_t i = 0; i < got.count(); ++i) differ += got.f32()[i] != want.f32()[i];
      EXPECT_EQ(differ, 0) << "layout '" << layout << "', Scale " << to_string(scale_precision);
    }
    // The FP16 Scale's weights are rounded to half: its results are not the FP32 Scale's.
    if (scale_precision == Precision::kFP32) fp32_out.assign(want.f32(), want.f32() + want.count());
    else EXPECT_NE(std::memcmp(fp32_out.data(), want.f32(), fp32_out.size() * 4), 0);
  }
}

// conv -> FP16 Scale (per channel, no power) -> FP16 + per-channel constant -> FP16 per-channel
// constant - x -> FP16 x * per-channel constant -> conv, channels-last: each point-wise layer with
// its FP16 rounding as one fused pass over rows of channels (chain_fused.h: the channels' factors
// repeated), the same bits as the plain reference. The second convolution copies its input
// (one-hot 1x1 weights, no bias), so the output is the last layer's, bit for bit.
TEST(CpuLayouts, ChannelsLastPerChannelLayersWithRoundingsEqualTheReference) {
  Net b;
  const TensorId c1 = conv_from_input(b, 24);
  ScaleParams sp = half_inexact_scale(b, 24);
  const TensorId bn = b.tensor("bn", {1, 24, 12, 12});
  b.n.add_layer({"bn", LayerKind::kScale, {c1}, {bn}, sp});
  auto per_channel = [&](const std::string& name, float base) {
    const TensorId t = b.tensor(name, {1, 24, 1, 1});
    const WeightsId w = b.weights(name + "_w", {1, 24, 1, 1}, 9);
    for (int64_t c = 0; c < 24; ++c) b.n.weights[size_t(w)].f32()[c] = base + 0.0371f * float(c);
    b.n.add_layer({name + "_c", LayerKind::kConstant, {}, {t}, ConstantParams{w}});
    return t;
  };
  auto eltwise = [&](const std::string& name, ElementWiseOp op, TensorId l, TensorId r) {
    const TensorId t = b.tensor(name, {1, 24, 12, 12});
    b.n.add_layer({name, LayerKind::kElementWise, {l, r}, {t}, ElementWiseParams{op}});
    return t;
  };
  const TensorId add = eltwise("add", ElementWiseOp::kSum, bn, per_channel("g1", 0.11f));
  const TensorId sub = eltwise("sub", ElementWiseOp::kSub, per_channel("g2", -0.7f), add);
  const TensorId mul = eltwise("mul", ElementWiseOp::kProd, sub, per_channel("g3", 0.9f));
  const TensorId y = copying_conv(b, "c2", mul, 24);
  b.n.tensors[y].is_output = true;
  b.n.outputs.push_back(y);
  HostTensor in = HostTensor::zeros("x", DataType::kFloat, {1, 16, 12, 12});
  for (int64_t i = 0; i < in.count(); ++i) in.f32()[i] = float(int((i * 7) % 13) - 6) / 8.f;
  ExecOptions opt;
  opt.numerics.layer_precision.assign(b.n.layers.size(), Precision::kFP16);
  opt.numerics.layer_precision.front() = opt.numerics.layer_precision.back() = Precision::kFP32;  // c1, c2
  ExecOptions ref = opt;
  ref.reference_kernels = true;
  const HostTensor want = make_cpu_executor(b.n, ref)->run({{"x", in}}).at("c2");
  setenv("TANDEM_CPU_CHAIN_LAYOUT", "nhwc", 1);
  auto ex = make_cpu_executor(b.n, opt);
  unsetenv("TANDEM_CPU_CHAIN_LAYOUT");
  const HostTensor got = ex->run({{"x", in}}).at("c2");
  ASSERT_EQ(got.count(), want.count());
  int differ = 0;
  for (int64_t i = 0; i < got.count(); ++i) differ += std::memcmp(&got.f32()[i], &want.f32()[i], 4) != 0;
  EXPECT_EQ(differ, 0);
  // Each point-wise layer ran with its rounding inside (one step each, not a layer and a Round).
  std::set<std::string> rounded_inside;
  for (const StepTime& s : ex->profile(1))
    if (s.kind == "Scale+Round" || s.kind == "ElementWise+Round") rounded_inside.insert(s.layer);
  EXPECT_EQ(rounded_inside, (std::set<std::string>{"bn", "add", "sub", "mul"}));
}
