// Real INT8 convolutions on the CPU (kernels_int8.cpp) against the reference: exact integer sums
// of the input's and the weights' codes (int64, computed here), dequantized as tandem defines it
// (float(acc) * (s_in * s_w[k]) + bias on the int32 grid, then the activation and the output's
// fake quantization). Every path (TANDEM_CPU_INT8=vnni where oneDNN has VNNI, fp32) must give
// exactly those bits, in every layout a CPU keeps convolution chains in; the FP32 emulation
// (TANDEM_CPU_INT8=emulate) differs from them by the rounding of its float sums only.
// ctest runs this binary a second time with ONEDNN_MAX_CPU_ISA=AVX2 (oneDNN as on a CPU without
// VNNI): the same expected bits, so results agree across instruction sets.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "../../src/backend/cpu/kernels.h"
#include "tandem/numerics.h"
#include "tandem/runtime.h"

using namespace tandem;

namespace {

struct EnvVar {  // sets a variable for one scope
  std::string name;
  EnvVar(const std::string& n, const std::string& v) : name(n) { setenv(n.c_str(), v.c_str(), 1); }
  ~EnvVar() { unsetenv(name.c_str()); }
};

uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// Two INT8 convolutions in a row, then y2 + y2 in FP32 (so that y1 and y2 are kept in the
// layout the CPU keeps convolution chains in; x and the output stay plain):
// x [1, C, H, W] -> conv1 (+ ReLU) -> y1 [1, K, OH, OW] -> conv2 (same kernel and groups, stride
// 1, K -> K) -> y2 -> out = y2 + y2. Every tensor but the one inside conv1 + ReLU has a scale.
struct ConvCase {
  int64_t N = 1, C = 8, K = 16, H = 12, W = 10, kernel = 3, stride = 1, pad = 1, groups = 1;
  float x_scale = 0.05f, y_scale = 0.08f, y2_scale = 0.3f;
  bool relu = true;
  float weight_magnitude = 0.3f;
  Network net;
  std::vector<float> w, bias, w2, bias2, x;
  int64_t OH() const { return (H + 2 * pad - kernel) / stride + 1; }
  int64_t OW() const { return (W + 2 * pad - kernel) / stride + 1; }

  static void fill(std::vector<float>& v, size_t n, int64_t K, float magnitude, size_t seed) {
    v.resize(n);
    // Deterministic, varied: per-channel maxima differ.
    for (size_t i = 0; i < n; ++i)
      v[i] = magnitude * float(int((i * 7919 + seed) % 41) - 20) / 20.f * (1.f + float(int64_t(i) % K) / float(K));
  }
  ConvolutionParams params(int64_t k_out, int64_t cin, int64_t st, const std::string& tag) {
    ConvolutionParams p;
    p.kernel = {kernel, kernel};
    p.stride = {st, st};
    p.pre_padding = {pad, pad};
    p.post_padding = {pad, pad};
    p.dilation = {1, 1};
    p.out_maps = k_out;
    p.groups = groups;
    p.kernel_weights = add_weights("w" + tag, {k_out, cin / groups, kernel, kernel}, tag == "1" ? w : w2);
    p.bias_weights = add_weights("b" + tag, {k_out}, tag == "1" ? bias : bias2);
    return p;
  }
  void build() {
    fill(w, size_t(K * (C / groups) * kernel * kernel), K, weight_magnitude, 13);
    fill(w2, size_t(K * (K / groups) * kernel * kernel), K, weight_magnitude, 29);
    for (int64_t k = 0; k < K; ++k) bias.push_back(0.37f * float(int(k % 5) - 2)), bias2.push_back(-0.21f * float(k % 3));
    x.resize(size_t(N * C * H * W));
    // Inputs beyond the grid's range too (they clamp to -128 / 127).
    for (size_t i = 0; i < x.size(); ++i) x[i] = x_scale * float(int((i * 104729 + 7) % 301) - 150) * 0.9f;
    const Dims yd = {N, K, OH(), OW()};
    const TensorId tx = net.add_tensor({"x", DataType::kFloat, {N, C, H, W}});
    net.tensors[tx].is_input = true;
    net.inputs.push_back(tx);
    const TensorId tc = net.add_tensor({"c", DataType::kFloat, yd});
    net.add_layer({"conv1", LayerKind::kConvolution, {tx}, {tc}, params(K, C, stride, "1")});
    TensorId y1 = tc;
    if (relu) {
      y1 = net.add_tensor({"y1", DataType::kFloat, yd});
      net.add_layer({"relu", LayerKind::kActivation, {tc}, {y1}, ActivationParams{ActivationType::kRelu}});
    }
    const TensorId y2 = net.add_tensor({"y2", DataType::kFloat, yd}), out = net.add_tensor({"out", DataType::kFloat, yd});
    net.add_layer({"conv2", LayerKind::kConvolution, {y1}, {y2}, params(K, K, 1, "2")});
    net.add_layer({"add", LayerKind::kElementWise, {y2, y2}, {out}, ElementWiseParams{ElementWiseOp::kSum}});
    net.tensors[out].is_output = true;
    net.outputs.push_back(out);
  }
  WeightsId add_weights(const std::string& name, Dims d, const std::vector<float>& v) {
    Weights wt;
    wt.name = name;
    wt.dims = std::move(d);
    wt.bytes.resize(v.size() * 4);
    std::memcpy(wt.bytes.data(), v.data(), wt.bytes.size());
    return net.add_weights(std::move(wt));
  }
  ExecOptions options() const {
    ExecOptions opt;
    opt.threads = 2;
    opt.numerics.layer_precision.assign(net.layers.size(), Precision::kINT8);
    opt.numerics.layer_precision.back() = Precision::kUnset;  // add: FP32
    opt.numerics.tensor_scales = {{"x", x_scale}, {"c", y_scale}, {"y1", y_scale}, {"y2", y2_scale}};
    // Convolution + ReLU as one INT8 block (TensorRT's fusion): c is not rounded.
    if (relu) opt.numerics.unquantized.insert("c");
    return opt;
  }
  // The executor's output and its profile's kinds.
  std::vector<float> run(std::vector<std::string>* kinds = nullptr) const {
    auto ex = make_cpu_executor(net, options());
    HostTensor t = HostTensor::zeros("x", DataType::kFloat, {N, C, H, W});
    std::memcpy(t.data.data(), x.data(), x.size() * 4);
    TensorMap out = ex->run({{"x", t}});
    if (kinds)
      for (const StepTime& s : ex->profile(1)) kinds->push_back(s.kind);
    const HostTensor& y = out.at("out");
    return std::vector<float>(y.f32(), y.f32() + y.count());
  }

  // One convolution by the reference: exact sums of codes, tandem's dequantization, the optional
  // ReLU, the output's rounding.
  std::vector<float> reference_conv(const std::vector<float>& in, int64_t cin, int64_t h, int64_t wd, float in_scale,
                                    const std::vector<float>& wt, const std::vector<float>& b, int64_t st, bool act,
                                    float out_scale) const {
    const int64_t cg = cin / groups, kg = K / groups, inner = cg * kernel * kernel;
    const int64_t oh = (h + 2 * pad - kernel) / st + 1, ow = (wd + 2 * pad - kernel) / st + 1;
    const ChannelLayout wl{1, K, inner};
    const std::vector<float> ws = int8_weight_scales(wt.data(), wl);
    std::vector<int8_t> wq(wt.size());
    quantize_int8_weights(wt.data(), wl, ws, wq.data());
    std::vector<int> xq(in.size());
    for (size_t i = 0; i < in.size(); ++i) xq[i] = quantize_int8(in[i], in_scale);
    std::vector<float> y(size_t(N * K * oh * ow));
    for (int64_t nk = 0; nk < N * K; ++nk) {
      const int64_t n = nk / K, k = nk % K, g = k / kg;
      const float alpha = in_scale * ws[size_t(k)];
      const float bq = fake_quant_int32_bias(b[size_t(k)], in_scale, ws[size_t(k)]);
      for (int64_t oy = 0; oy < oh; ++oy)
        for (int64_t ox = 0; ox < ow; ++ox) {
          int64_t acc = 0;
          for (int64_t c = 0; c < cg; ++c)
            for (int64_t ky = 0; ky < kernel; ++ky)
              for (int64_t kx = 0; kx < kernel; ++kx) {
                const int64_t iy = oy * st - pad + ky, ix = ox * st - pad + kx;
                if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
                acc += int64_t(xq[size_t((((n * cin) + g * cg + c) * h + iy) * wd + ix)]) *
                       int64_t(wq[size_t(((k * cg + c) * kernel + ky) * kernel + kx)]);
              }
          float v = float(acc) * alpha;
          v = v + bq;
          if (act) v = v > 0.f ? v : 0.f;
          y[size_t(((n * K + k) * oh + oy) * ow + ox)] = fake_quant_int8(v, out_scale);
        }
    }
    return y;
  }
  std::vector<float> expected() const {
    const std::vector<float> y1 = reference_conv(x, C, H, W, x_scale, w, bias, stride, relu, y_scale);
    std::vector<float> y2 = reference_conv(y1, K, OH(), OW(), y_scale, w2, bias2, 1, false, y2_scale);
    for (float& v : y2) v = v + v;
    return y2;
  }
};

bool has_vnni_path() {  // the default path, with no TANDEM_CPU_INT8 set
  return cpu::int8_conv_path() == cpu::Int8ConvPath::kVnni;
}

// The paths this CPU can run exactly.
std::vector<std::string> exact_paths() {
  std::vector<std::string> p = {"fp32"};
  if (has_vnni_path()) p.push_back("vnni");
  return p;
}

size_t count_differences(const std::vector<float>& a, const std::vector<float>& b, size_t* first) {
  size_t n = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i)
    if (bits(a[i]) != bits(b[i]) && n++ == 0) *first = i;
  return n + (a.size() != b.size() ? 1 : 0);
}

void expect_exact_in_every_path_and_layout(const ConvCase& c, const std::string& what) {
  const std::vector<float> want = c.expected();
  for (const std::string& path : exact_paths())
    for (const char* layout : {"nhwc", "16", "8", "plain"}) {
      EnvVar p("TANDEM_CPU_INT8", path), l("TANDEM_CPU_CHAIN_LAYOUT", layout);
      std::vector<std::string> kinds;
      const std::vector<float> got = c.run(&kinds);
      int real = 0;
      for (const std::string& k : kinds) real += k.rfind("Convolution(int8)", 0) == 0;
      EXPECT_EQ(real, 2) << what << ", path " << path << ": not both convolutions ran real INT8";
      size_t first = 0;
      const size_t n = count_differences(got, want, &first);
      EXPECT_EQ(n, 0u) << what << ", path " << path << ", layout " << layout << ": first at " << first << ": "
                       << got[first] << " vs " << want[first];
    }
}

}  // namespace

TEST(CpuInt8, PathFollowsTheIsaAndTheSwitch) {
  const char* max_isa = std::getenv("ONEDNN_MAX_CPU_ISA");
  // ctest's second run caps oneDNN at AVX2 (no VNNI): then the exact FP32 path is the default and
  // forcing the VNNI path is an error naming the switch.
  if (max_isa && std::string(max_isa) == "AVX2") {
    EXPECT_FALSE(has_vnni_path());
    EnvVar p("TANDEM_CPU_INT8", "vnni");
    try {
      cpu::int8_conv_path();
      FAIL() << "expected an Error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("TANDEM_CPU_INT8=vnni"), std::string::npos) << e.what();
    }
  }
  EnvVar bad("TANDEM_CPU_INT8", "int4");
  EXPECT_THROW(cpu::int8_conv_path(), Error);
}

TEST(CpuInt8, ConvolutionEqualsExactIntegerSums) {
  ConvCase c;
  c.build();
  expect_exact_in_every_path_and_layout(c, "3x3 8->16");
}

TEST(CpuInt8, StridedGroupedAndPointwiseConvolutionsEqualExactIntegerSums) {
  ConvCase dw;  // depthwise, stride 2, a batch of 2
  dw.N = 2;
  dw.C = dw.K = dw.groups = 16;
  dw.stride = 2;
  dw.build();
  expect_exact_in_every_path_and_layout(dw, "depthwise 3x3 stride 2");
  ConvCase pw;  // 1x1, no activation (conv1's output rounds on c's grid), 40 channels
  pw.C = 24;
  pw.K = 40;
  pw.kernel = 1;
  pw.pad = 0;
  pw.relu = false;
  pw.build();
  expect_exact_in_every_path_and_layout(pw, "1x1 24->40");
}

// The emulation sums the same products in float: results differ by that rounding only, which can
// move an output across a rounding boundary of its grid by at most one step.
TEST(CpuInt8, EmulationDiffersBySummationRoundingOnly) {
  ConvCase c;
  c.C = 32;
  c.build();
  const std::vector<float> want = c.expected();
  EnvVar p("TANDEM_CPU_INT8", "emulate");
  std::vector<std::string> kinds;
  const std::vector<float> emulated = c.run(&kinds);
  for (const std::string& k : kinds) EXPECT_EQ(k.find("(int8)"), std::string::npos) << k;
  ASSERT_EQ(emulated.size(), want.size());
  size_t differ = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    // out = 2 * y2: one step of y2's grid, unless conv1's moved step carries on.
    EXPECT_LE(std::fabs(emulated[i] - want[i]), 2 * c.y2_scale * 1.0001f) << "at " << i;
    differ += emulated[i] != want[i];
  }
  EXPECT_LT(differ, want.size() / 50) << "more than 2% of the outputs moved: not summation rounding";
}

// Weights whose codes could make a sum exceed 2^24 (where FP32 sums stop being exact) keep the
// emulation in every path, so that the set of real INT8 layers is the same on every CPU.
TEST(CpuInt8, LayersBeyondTheExactBoundStayEmulatedInEveryPath) {
  // 3x3 over 256 channels: 2304 products; every weight at its channel's maximum (code +-127):
  // 128 * 2304 * 127 = 37.5M > 2^24.
  std::vector<int8_t> big(size_t(2 * 2304), 127);
  EXPECT_FALSE(cpu::int8_conv_exact(big, 2));
  std::vector<int8_t> small(size_t(2 * 1032), -127);  // 128 * 1032 * 127 = 16,777,216 = 2^24
  EXPECT_TRUE(cpu::int8_conv_exact(small, 2));
  small[0] = -127, small.push_back(1), small.push_back(1);  // 1033 per channel: one more code
  EXPECT_FALSE(cpu::int8_conv_exact(small, 2));
  ConvCase c;
  c.C = 256;
  c.K = 4;
  c.H = c.W = 5;
  c.weight_magnitude = 1.f;
  c.build();
  for (float& v : c.w) v = v < 0 ? -1.f : 1.f;  // conv1: every code +-127
  c.net.weights[size_t(c.net.layers[0].as<ConvolutionParams>().kernel_weights)].bytes.assign(
      reinterpret_cast<const uint8_t*>(c.w.data()), reinterpret_cast<const uint8_t*>(c.w.data() + c.w.size()));
  std::vector<float> first;
  for (const std::string& path : exact_paths()) {
    EnvVar p("TANDEM_CPU_INT8", path);
    std::vector<std::string> kinds;
    const std::vector<float> got = c.run(&kinds);
    int real = 0;  // conv2 (4 channels) runs real INT8, conv1 cannot
    for (const std::string& k : kinds) real += k.rfind("Convolution(int8)", 0) == 0;
    EXPECT_EQ(real, 1) << path;
    if (first.empty()) first = got;
    size_t at = 0;
    EXPECT_EQ(count_differences(got, first, &at), 0u) << path;
  }
}
