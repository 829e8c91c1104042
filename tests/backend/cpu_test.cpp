// CPU backend: small synthetic networks with hand-worked expectations.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>

#include "tandem/numerics.h"
#include "tandem/runtime.h"

using namespace tandem;

namespace {

struct Builder {
  Network n;
  TensorId input(const std::string& name, Dims d, DataType t = DataType::kFloat) {
    TensorId id = n.add_tensor({name, t, std::move(d)});
    n.tensors[id].is_input = true;
    n.inputs.push_back(id);
    return id;
  }
  TensorId tensor(const std::string& name, Dims d, DataType t = DataType::kFloat) {
    return n.add_tensor({name, t, std::move(d)});
  }
  LayerId layer(const std::string& name, LayerKind k, std::vector<TensorId> in, std::vector<TensorId> out,
                LayerParams p = NoParams{}) {
    return n.add_layer({name, k, std::move(in), std::move(out), std::move(p)});
  }
  WeightsId weights(const std::string& name, Dims d, std::vector<float> v) {
    Weights w;
    w.name = name;
    w.dims = std::move(d);
    w.bytes.resize(v.size() * 4);
    std::memcpy(w.bytes.data(), v.data(), w.bytes.size());
    return n.add_weights(std::move(w));
  }
  TensorId constant(const std::string& name, Dims d, std::vector<float> v) {
    TensorId t = tensor(name, d);
    layer(name + "_const", LayerKind::kConstant, {}, {t}, ConstantParams{weights(name + "_w", d, std::move(v))});
    return t;
  }
  void output(TensorId t) {
    n.tensors[t].is_output = true;
    n.outputs.push_back(t);
  }
};

HostTensor tensor_of(const std::string& name, Dims d, std::vector<float> v) {
  HostTensor t = HostTensor::zeros(name, DataType::kFloat, std::move(d));
  std::memcpy(t.data.data(), v.data(), v.size() * 4);
  return t;
}
std::vector<float> values(const HostTensor& t) { return std::vector<float>(t.f32(), t.f32() + t.count()); }

TensorMap run1(const Network& n, const HostTensor& x, const ExecOptions& opt = {}) {
  auto ex = make_cpu_executor(n, opt);
  TensorMap in;
  in[x.name] = x;
  return ex->run(in);
}

void expect_near(const std::vector<float>& got, const std::vector<float>& want, float tol = 1e-5f) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], tol) << "at " << i;
}

// 2x2 conv, one output channel, on a 1x1x3x3 input (the INT8 worked example below).
Builder conv2x2(std::vector<float> w, std::vector<float> bias = {}) {
  Builder b;
  TensorId x = b.input("x", {1, 1, 3, 3});
  TensorId y = b.tensor("y", {1, 1, 2, 2});
  ConvolutionParams p;
  p.kernel = {2, 2};
  p.stride = {1, 1};
  p.pre_padding = {0, 0};
  p.post_padding = {0, 0};
  p.dilation = {1, 1};
  p.out_maps = 1;
  p.kernel_weights = b.weights("w", {1, 1, 2, 2}, std::move(w));
  if (!bias.empty()) p.bias_weights = b.weights("b", {1}, std::move(bias));
  b.layer("conv", LayerKind::kConvolution, {x}, {y}, p);
  return b;
}

}  // namespace

TEST(CpuBackend, Conv2x2Fp32) {
  Builder b = conv2x2({1, 2, 3, 4}, {0.5f});
  b.output(1);
  // y00 = 1*1 + 2*2 + 4*3 + 5*4 + 0.5 = 37.5, y01 = 2+6+15+24+.5 = 47.5,
  // y10 = 4+10+21+32+.5 = 67.5, y11 = 5+12+24+36+.5 = 77.5
  auto out = run1(b.n, tensor_of("x", {1, 1, 3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9}));
  expect_near(values(out["y"]), {37.5f, 47.5f, 67.5f, 77.5f});
}

TEST(CpuBackend, ConvScaleReluFusesToTheSameResult) {
  for (bool fuse : {true, false}) {
    Builder b = conv2x2({1, -2, 3, -4}, {0.5f});
    TensorId s = b.tensor("s", {1, 1, 2, 2});
    TensorId r = b.tensor("r", {1, 1, 2, 2});
    ScaleParams sp;
    sp.mode = ScaleMode::kChannel;
    sp.scale = b.weights("sc", {1}, {2.f});
    sp.shift = b.weights("sh", {1}, {1.f});
    b.layer("scale", LayerKind::kScale, {1}, {s}, sp);
    b.layer("relu", LayerKind::kActivation, {s}, {r}, ActivationParams{ActivationType::kRelu});
    b.output(r);
    ExecOptions opt;
    opt.fuse = fuse;
    // conv: y00 = 1-4+12-20+.5 = -10.5, y01 = 2-6+15-24+.5 = -12.5, y10 = 4-10+21-32+.5 = -16.5,
    // y11 = 5-12+24-36+.5 = -18.5; *2+1 -> all negative -> relu 0. Use x negated to get positives.
    auto out = run1(b.n, tensor_of("x", {1, 1, 3, 3}, {-1, -2, -3, -4, -5, -6, -7, -8, -9}), opt);
    // -x: conv = 11.5-... : y00 = -(1-4+12-20)+.5 = 11.5 -> 24; y01 = 13.5 -> 28; y10 = 17.5 -> 36;
    // y11 = 19.5 -> 40
    expect_near(values(out["r"]), {24.f, 28.f, 36.f, 40.f});
  }
}

TEST(CpuBackend, Int8ConvHandWorked) {
  // Weights w = [1.984375, -0.5, 0.1, 0.0234375]; per-channel scale = max|w|/127 = 1/64:
  //   w/scale = [127, -32, 6.4, 1.5] -> round half even [127, -32, 6, 2]
  //   -> w' = [1.984375, -0.5, 0.09375, 0.03125].
  // Input x (scale 0.25): x/0.25 = [1.5, -2.4, 4.4, 3.6, 2.5, -0.8, 8, 160, 2]
  //   -> [2, -2, 4, 4, 2, -1, 8, 127 (clamped), 2] -> x' = [.5, -.5, 1, 1, .5, -.25, 2, 31.75, .5].
  // Conv (no bias):
  //   y00 = .5*1.984375 + (-.5)(-.5) + 1*.09375 + .5*.03125       =  1.3515625
  //   y01 = -.5*1.984375 + 1*(-.5) + .5*.09375 + (-.25)*.03125    = -1.453125
  //   y10 = 1*1.984375 + .5*(-.5) + 2*.09375 + 31.75*.03125       =  2.9140625
  //   y11 = .5*1.984375 + (-.25)(-.5) + 31.75*.09375 + .5*.03125  =  4.109375
  // Output scale 0.5: [2.703, -2.906, 5.828, 8.219] -> [3, -3, 6, 8] -> [1.5, -1.5, 3, 4].
  Builder b = conv2x2({1.984375f, -0.5f, 0.1f, 0.0234375f});
  b.output(1);
  ExecOptions opt;
  opt.numerics.layer_precision = {Precision::kINT8};
  opt.numerics.tensor_scales = {{"x", 0.25f}, {"y", 0.5f}};
  auto out = run1(b.n, tensor_of("x", {1, 1, 3, 3}, {0.375f, -0.6f, 1.1f, 0.9f, 0.625f, -0.2f, 2.f, 40.f, 0.5f}), opt);
  expect_near(values(out["y"]), {1.5f, -1.5f, 3.f, 4.f}, 0.f);
  // The FP32 run of the same network differs (sanity: emulation did something).
  auto ref = run1(b.n, tensor_of("x", {1, 1, 3, 3}, {0.375f, -0.6f, 1.1f, 0.9f, 0.625f, -0.2f, 2.f, 40.f, 0.5f}));
  EXPECT_GT(std::fabs(values(ref["y"])[3] - 4.f), 0.5f);
}

TEST(CpuBackend, Int8LayerWithoutScaleIsAnErrorNamingTheTensor) {
  Builder b = conv2x2({1, 1, 1, 1});
  b.output(1);
  ExecOptions opt;
  opt.numerics.layer_precision = {Precision::kINT8};
  opt.numerics.tensor_scales = {{"x", 0.25f}};
  try {
    make_cpu_executor(b.n, opt);
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "tensor 'y' (output of INT8 layer 'conv') has no INT8 scale");
  }
}

TEST(CpuBackend, Fp16Numerics) {
  EXPECT_EQ(round_to_fp16(2049.f), 2048.f);   // tie -> even mantissa
  EXPECT_EQ(round_to_fp16(2051.f), 2052.f);   // tie -> even mantissa
  EXPECT_EQ(round_to_fp16(1.f + 1.f / 4096), 1.f);
  EXPECT_EQ(round_to_fp16(70000.f), INFINITY);
  EXPECT_EQ(round_to_fp16(-0.1f), -0.0999755859375f);
  EXPECT_EQ(round_to_fp16(1e-7f), 1.1920928955078125e-07f);  // subnormal half 2^-23
  EXPECT_EQ(fake_quant_int8(0.375f, 0.25f), 0.5f);
  EXPECT_EQ(fake_quant_int8(0.625f, 0.25f), 0.5f);
  EXPECT_EQ(fake_quant_int8(-100.f, 0.25f), -32.f);       // activations saturate at -128
  EXPECT_EQ(fake_quant_int8(100.f, 0.25f), 31.75f);        // and at +127
  EXPECT_EQ(fake_quant_int8_weight(-100.f, 0.25f), -31.75f);  // weights stay symmetric
  EXPECT_EQ(fake_quant_int8_weight(100.f, 0.25f), 31.75f);
  // An FP16 Sum layer: 1 + 1e-4 -> inputs 1 and 1.0001659e-4 -> 1.0001 -> rounds to 1.
  Builder b;
  TensorId x = b.input("x", {2});
  TensorId c = b.constant("c", {2}, {1e-4f, 3.f});
  TensorId y = b.tensor("y", {2});
  b.layer("add", LayerKind::kElementWise, {x, c}, {y}, ElementWiseParams{ElementWiseOp::kSum});
  b.output(y);
  ExecOptions opt;
  opt.numerics.layer_precision = {Precision::kUnset, Precision::kFP16};
  auto out = run1(b.n, tensor_of("x", {2}, {1.f, 2046.f}), opt);
  expect_near(values(out["y"]), {1.f, 2048.f}, 0.f);  // 2049 -> 2048
}

TEST(CpuBackend, ElementWiseBroadcastAndComparison) {
  Builder b;
  TensorId x = b.input("x", {2, 3});
  TensorId c = b.constant("c", {1, 3}, {10, 20, 30});
  TensorId y = b.tensor("y", {2, 3});
  TensorId g = b.tensor("g", {2, 3}, DataType::kBool);
  b.layer("add", LayerKind::kElementWise, {x, c}, {y}, ElementWiseParams{ElementWiseOp::kSum});
  b.layer("gt", LayerKind::kElementWise, {y, c}, {g}, ElementWiseParams{ElementWiseOp::kGreater});
  b.output(y);
  b.output(g);
  auto out = run1(b.n, tensor_of("x", {2, 3}, {1, -2, 3, -4, 5, -6}));
  expect_near(values(out["y"]), {11, 18, 33, 6, 25, 24});
  EXPECT_EQ(out["g"].data, (std::vector<uint8_t>{1, 0, 1, 0, 1, 0}));
}

TEST(CpuBackend, SoftMaxReduceShuffleSliceConcatGather) {
  Builder b;
  TensorId x = b.input("x", {1, 2, 3});
  TensorId sm = b.tensor("sm", {1, 2, 3});
  b.layer("sm", LayerKind::kSoftMax, {x}, {sm}, SoftMaxParams{1u << 2});
  TensorId rd = b.tensor("rd", {1, 2, 1});
  b.layer("rd", LayerKind::kReduce, {x}, {rd}, ReduceParams{ReduceOp::kSum, 1u << 2, true});
  TensorId tr = b.tensor("tr", {3, 2});
  ShuffleParams sp;
  sp.first_transpose = {0, 2, 1};
  sp.reshape = Dims{3, 2};
  b.layer("tr", LayerKind::kShuffle, {x}, {tr}, sp);
  TensorId sl = b.tensor("sl", {1, 2, 2});
  b.layer("sl", LayerKind::kSlice, {x}, {sl}, SliceParams{{0, 0, 2}, {1, 2, 2}, {1, 1, -2}});
  TensorId cc = b.tensor("cc", {1, 2, 5});
  b.layer("cc", LayerKind::kConcatenation, {x, sl}, {cc}, ConcatenationParams{2});
  Weights idx;
  idx.name = "idx";
  idx.type = DataType::kInt64;
  idx.dims = {2};
  int64_t iv[2] = {2, -3};
  idx.bytes.assign(reinterpret_cast<uint8_t*>(iv), reinterpret_cast<uint8_t*>(iv) + 16);
  TensorId it = b.tensor("it", {2}, DataType::kInt64);
  b.layer("idx", LayerKind::kConstant, {}, {it}, ConstantParams{b.n.add_weights(idx)});
  TensorId ga = b.tensor("ga", {1, 2, 2});
  b.layer("ga", LayerKind::kGather, {x, it}, {ga}, GatherParams{2});
  for (TensorId t : {sm, rd, tr, sl, cc, ga}) b.output(t);
  auto out = run1(b.n, tensor_of("x", {1, 2, 3}, {1, 2, 3, 4, 5, 6}));
  float e1 = std::exp(1.f), e2 = std::exp(2.f), s = 1 + e1 + e2;
  expect_near(values(out["sm"]), {1 / s, e1 / s, e2 / s, 1 / s, e1 / s, e2 / s});
  expect_near(values(out["rd"]), {6, 15});
  expect_near(values(out["tr"]), {1, 4, 2, 5, 3, 6});
  expect_near(values(out["sl"]), {3, 1, 6, 4});
  expect_near(values(out["cc"]), {1, 2, 3, 3, 1, 4, 5, 6, 6, 4});
  expect_near(values(out["ga"]), {3, 1, 6, 4});
}

TEST(CpuBackend, PoolingResizeMatMul) {
  Builder b;
  TensorId x = b.input("x", {1, 1, 2, 2});
  PoolingParams ap;
  ap.type = PoolingType::kAverage;
  ap.window = {2, 2};
  ap.stride = {1, 1};
  ap.pre_padding = {1, 1};
  ap.post_padding = {0, 0};
  ap.average_count_excludes_padding = true;
  TensorId av = b.tensor("av", {1, 1, 2, 2});
  b.layer("av", LayerKind::kPooling, {x}, {av}, ap);
  ap.average_count_excludes_padding = false;
  TensorId ai = b.tensor("ai", {1, 1, 2, 2});
  b.layer("ai", LayerKind::kPooling, {x}, {ai}, ap);
  ResizeParams rp;
  rp.mode = ResizeMode::kNearest;
  rp.scales = {1, 1, 2, 2};
  TensorId up = b.tensor("up", {1, 1, 4, 4});
  b.layer("up", LayerKind::kResize, {x}, {up}, rp);
  rp.mode = ResizeMode::kLinear;
  rp.transform = ResizeCoordinateTransform::kAlignCorners;
  rp.scales = {};
  TensorId li = b.tensor("li", {1, 1, 3, 3});
  b.layer("li", LayerKind::kResize, {x}, {li}, rp);
  TensorId mm = b.tensor("mm", {1, 1, 2, 2});
  b.layer("mm", LayerKind::kMatrixMultiply, {x, x}, {mm}, MatrixMultiplyParams{MatrixOp::kNone, MatrixOp::kTranspose});
  for (TensorId t : {av, ai, up, li, mm}) b.output(t);
  auto out = run1(b.n, tensor_of("x", {1, 1, 2, 2}, {1, 2, 3, 4}));
  expect_near(values(out["av"]), {1, 1.5f, 2, 2.5f});
  expect_near(values(out["ai"]), {0.25f, 0.75f, 1, 2.5f});
  expect_near(values(out["up"]), {1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4});
  expect_near(values(out["li"]), {1, 1.5f, 2, 2, 2.5f, 3, 3, 3.5f, 4});
  // x * x^T = [[1*1+2*2, 1*3+2*4], [3*1+4*2, 9+16]]
  expect_near(values(out["mm"]), {5, 11, 11, 25});
}

TEST(CpuBackend, ArenaReusesBuffersAndRunIsRepeatable) {
  // A chain of 6 sigmoids: at most two intermediates are live at once.
  Builder b;
  TensorId t = b.input("x", {1, 4, 8, 8});
  for (int i = 0; i < 6; ++i) {
    TensorId o = b.tensor("t" + std::to_string(i), {1, 4, 8, 8});
    b.layer("s" + std::to_string(i), LayerKind::kActivation, {t}, {o}, ActivationParams{ActivationType::kSigmoid});
    t = o;
  }
  b.output(t);
  auto ex = make_cpu_executor(b.n);
  HostTensor x = HostTensor::zeros("x", DataType::kFloat, {1, 4, 8, 8});
  TensorMap in{{"x", x}};
  float v = 0.f;
  for (int i = 0; i < 6; ++i) v = 1.f / (1.f + std::exp(-v));
  for (int rep = 0; rep < 2; ++rep) EXPECT_NEAR(ex->run(in)["t5"].f32()[17], v, 1e-6f);
  auto all = make_cpu_executor(b.n, {}, true);
  all->run(in);
  EXPECT_EQ(all->all_tensors().size(), 7u);
}

TEST(CpuBackend, BadInputsNameTheInput) {
  Builder b = conv2x2({1, 1, 1, 1});
  b.output(1);
  auto ex = make_cpu_executor(b.n);
  auto msg = [&](const TensorMap& in) {
    try {
      ex->run(in);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_EQ(msg({}), "missing input 'x' (1x1x3x3 fp32)");
  EXPECT_EQ(msg({{"x", HostTensor::zeros("x", DataType::kFloat, {1, 1, 3, 4})}}),
            "input 'x': expected shape 1x1x3x3, got 1x1x3x4");
  EXPECT_EQ(msg({{"x", HostTensor::zeros("x", DataType::kInt64, {1, 1, 3, 3})}}),
            "input 'x': expected fp32, got int64");
}

TEST(CpuBackend, DeconvolutionMatchesNaive) {
  // ConvTranspose 1x2x2x2 -> 1x3x3x3, stride 2, pad 1/1 top-left, weights [C=2, K=3, 2, 2].
  Builder b;
  TensorId x = b.input("x", {1, 2, 2, 2});
  TensorId y = b.tensor("y", {1, 3, 2, 2});
  ConvolutionParams p;
  p.kernel = {2, 2};
  p.stride = {2, 2};
  p.pre_padding = {1, 1};
  p.post_padding = {1, 1};
  p.dilation = {1, 1};
  p.out_maps = 3;
  std::vector<float> w(2 * 3 * 4);
  for (size_t i = 0; i < w.size(); ++i) w[i] = float(i % 7) - 3.f;
  p.kernel_weights = b.weights("w", {2, 3, 2, 2}, w);
  b.layer("deconv", LayerKind::kDeconvolution, {x}, {y}, p);
  b.output(y);
  std::vector<float> xv = {1, 2, 3, 4, -1, 0.5f, 2, -2};
  // Naive: full output 4x4 (=(2-1)*2+2), then crop 1 from each side -> 2x2.
  std::vector<float> full(3 * 16, 0.f);
  for (int c = 0; c < 2; ++c)
    for (int k = 0; k < 3; ++k)
      for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 2; ++j)
          for (int a = 0; a < 2; ++a)
            for (int bb = 0; bb < 2; ++bb)
              full[k * 16 + (i * 2 + a) * 4 + (j * 2 + bb)] += xv[c * 4 + i * 2 + j] * w[((c * 3 + k) * 2 + a) * 2 + bb];
  std::vector<float> want;
  for (int k = 0; k < 3; ++k)
    for (int i = 1; i < 3; ++i)
      for (int j = 1; j < 3; ++j) want.push_back(full[k * 16 + i * 4 + j]);
  auto out = run1(b.n, tensor_of("x", {1, 2, 2, 2}, xv));
  expect_near(values(out["y"]), want);
}

TEST(CpuBackend, MatMulBothTransposedAndBatchBroadcast) {
  // A stored [3, 2] used as A^T [2, 3]; B stored [4, 3] used as B^T [3, 4].
  Builder b;
  TensorId a = b.input("a", {3, 2});
  TensorId w = b.constant("w", {4, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
  TensorId y = b.tensor("y", {2, 4});
  b.layer("mm", LayerKind::kMatrixMultiply, {a, w}, {y}, MatrixMultiplyParams{MatrixOp::kTranspose, MatrixOp::kTranspose});
  b.output(y);
  std::vector<float> av = {1, -1, 2, 0.5f, -3, 2};
  std::vector<float> want;
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 4; ++j) {
      float s = 0;
      for (int k = 0; k < 3; ++k) s += av[k * 2 + i] * float(j * 3 + k + 1);
      want.push_back(s);
    }
  auto out = run1(b.n, tensor_of("a", {3, 2}, av));
  expect_near(values(out["y"]), want);
}

// An FP16 Conv + Scale + ReLU block rounds once, at its output (TensorRT's fused FP16 kernel; the
// Scale folded into the weights before they are rounded). u = 2^-10, the FP16 step at 1; bias
// and shift 0.625u each (exact in FP16). Fused: 1 + 1.25u -> 1 + u. Unfused (fuse off): the
// convolution's 1 + 0.625u rounds to 1 + u first, + 0.625u = 1 + 1.625u -> 1 + 2u.
TEST(CpuBackend, Fp16ConvBlockRoundsOnceAtItsOutput) {
  const float u = 1.f / 1024.f;
  for (bool fuse : {true, false}) {
    Builder b = conv2x2({1, 0, 0, 0}, {0.625f * u});
    TensorId s = b.tensor("s", {1, 1, 2, 2}), r = b.tensor("r", {1, 1, 2, 2});
    ScaleParams sp;
    sp.mode = ScaleMode::kUniform;
    sp.scale = b.weights("sc", {1}, {1.f});
    sp.shift = b.weights("sh", {1}, {0.625f * u});
    b.layer("scale", LayerKind::kScale, {1}, {s}, sp);
    b.layer("relu", LayerKind::kActivation, {s}, {r}, ActivationParams{ActivationType::kRelu});
    b.output(r);
    ExecOptions opt;
    opt.fuse = fuse;
    opt.numerics.layer_precision = {Precision::kFP16, Precision::kFP16, Precision::kFP16};
    auto out = run1(b.n, tensor_of("x", {1, 1, 3, 3}, std::vector<float>(9, 1.f)), opt);
    const float want = fuse ? 1.f + u : 1.f + 2 * u;
    expect_near(values(out["r"]), {want, want, want, want}, 0.f);
  }
}

// An emulated step applies the output rounding that follows it (the kRound step of lowering)
// itself: as the last link of its chain, or after its kernel. The same bits as running every
// round step on its own (TANDEM_CPU_ROUND_STEPS=separate), in fewer steps.
TEST(CpuBackend, RoundingInsideTheProducerEqualsSeparateRoundSteps) {
  Builder b;
  const Dims d = {1, 8, 20, 20};
  TensorId x = b.input("x", d);
  ConvolutionParams p;
  p.kernel = {3, 3};
  p.stride = {1, 1};
  p.pre_padding = {1, 1};
  p.post_padding = {1, 1};
  p.dilation = {1, 1};
  p.out_maps = 8;
  std::vector<float> w(8 * 8 * 9), bias(8);
  for (size_t i = 0; i < w.size(); ++i) w[i] = 0.05f * float(int((i * 37) % 23) - 11);
  for (size_t i = 0; i < bias.size(); ++i) bias[i] = 0.01f * float(i);
  p.kernel_weights = b.weights("w", {8, 8, 3, 3}, w);
  p.bias_weights = b.weights("b", {8}, bias);
  TensorId c = b.tensor("c", d), r = b.tensor("r", d), m = b.tensor("m", d), a = b.tensor("a", d), y = b.tensor("y", d);
  b.layer("conv", LayerKind::kConvolution, {x}, {c}, p);                                                // FP16
  b.layer("relu", LayerKind::kActivation, {c}, {r}, ActivationParams{ActivationType::kRelu});          // FP16
  TensorId k = b.constant("k", {1}, {0.3f}), h = b.constant("h", {1}, {-0.2f});
  b.layer("mul", LayerKind::kElementWise, {r, k}, {m}, ElementWiseParams{ElementWiseOp::kProd});      // INT8
  b.layer("add", LayerKind::kElementWise, {m, h}, {a}, ElementWiseParams{ElementWiseOp::kSum});       // INT8
  b.layer("sm", LayerKind::kSoftMax, {a}, {y}, SoftMaxParams{});                                       // FP16
  b.output(y);
  ExecOptions opt;
  const Precision F = Precision::kFP16, I = Precision::kINT8, U = Precision::kUnset;
  opt.numerics.layer_precision = {F, F, U, U, I, I, F};  // conv relu k h mul add sm
  opt.numerics.tensor_scales = {{"r", 0.05f}, {"k", 0.003f}, {"h", 0.002f}, {"a", 0.04f}};
  opt.numerics.unquantized = {"m"};
  HostTensor in = HostTensor::zeros("x", DataType::kFloat, d);
  for (int64_t i = 0; i < in.count(); ++i) in.f32()[i] = -2.f + 4.f * float((i * 7919) % 10007) / 10007.f;
  auto run = [&](bool separate, size_t* steps) {
    if (separate) setenv("TANDEM_CPU_ROUND_STEPS", "separate", 1);
    auto ex = make_cpu_executor(b.n, opt);
    unsetenv("TANDEM_CPU_ROUND_STEPS");
    *steps = ex->profile(1).size();
    return values(ex->run({{"x", in}})["y"]);
  };
  size_t merged_steps = 0, separate_steps = 0;
  const std::vector<float> merged = run(false, &merged_steps), separate = run(true, &separate_steps);
  ASSERT_EQ(merged.size(), separate.size());
  size_t differ = 0;
  for (size_t i = 0; i < merged.size(); ++i) differ += std::memcmp(&merged[i], &separate[i], 4) != 0;
  EXPECT_EQ(differ, 0u);
  // round x (in place: its one reader rounds it); conv+relu (+round r to FP16, + round r in
  // place as INT8: mul, its one reader, would round it so) with the mul+add chain after it in its
  // pass (+round a as INT8, + round a in place as FP16 for sm; the executor's conv_tail);
  // softmax (+round y): 3 steps merged, 9 separate.
  EXPECT_EQ(merged_steps, 3u);
  EXPECT_EQ(separate_steps, 9u);
  // Every output is a softmax over channels rounded to FP16.
  for (size_t i = 0; i < merged.size(); i += 97) EXPECT_EQ(merged[i], round_to_fp16(merged[i]));
}
