// Real INT8 convolutions and deconvolutions on the CPU (kernels_int8.cpp) against the reference:
// exact integer sums of the input's and the weights' codes (int64, computed here), dequantized as
// tandem defines it
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
#include <limits>
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

// Two INT8 convolutions (or deconvolutions) in a row, then y2 + y2 in FP32 (so that y1 and y2
// are kept in the layout the CPU keeps convolution chains in; x and the output stay plain):
// x [1, C, H, W] -> conv1 (+ ReLU) -> y1 [1, K, OH, OW] -> conv2 (same kernel and groups, stride
// 1, K -> K) -> y2 [1, K, OH2, OW2] -> out = y2 + y2. Every tensor but the one inside conv1 + ReLU
// has a scale.
struct ConvCase {
  int64_t N = 1, C = 8, K = 16, H = 12, W = 10, kernel = 3, stride = 1, pad = 1, groups = 1;
  int64_t K2 = 0;  // conv2's output channels (convolutions only; 0: K)
  int64_t k2() const { return K2 > 0 ? K2 : K; }
  // C -> K 1x1 without an activation (conv1's output rounds on c's grid).
  static ConvCase pointwise(int64_t c, int64_t k) {
    ConvCase p;
    p.C = c;
    p.K = k;
    p.kernel = 1;
    p.pad = 0;
    p.relu = false;
    return p;
  }
  float x_scale = 0.05f, y_scale = 0.08f, y2_scale = 0.3f;
  bool relu = true;
  bool deconv = false;  // both layers Deconvolution (ConvTranspose), weights [C, K/g, k, k]
  float weight_magnitude = 0.3f;
  Network net;
  std::vector<float> w, bias, w2, bias2, x;
  int64_t out_size(int64_t in, int64_t st) const {
    return deconv ? (in - 1) * st - 2 * pad + kernel : (in + 2 * pad - kernel) / st + 1;
  }
  int64_t OH() const { return out_size(H, stride); }
  int64_t OW() const { return out_size(W, stride); }

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
    const Dims wd = deconv ? Dims{cin, k_out / groups, kernel, kernel} : Dims{k_out, cin / groups, kernel, kernel};
    p.kernel_weights = add_weights("w" + tag, wd, tag == "1" ? w : w2);
    p.bias_weights = add_weights("b" + tag, {k_out}, tag == "1" ? bias : bias2);
    return p;
  }
  void build() {
    fill(w, size_t(K * (C / groups) * kernel * kernel), K, weight_magnitude, 13);  // either layout
    fill(w2, size_t(k2() * (K / groups) * kernel * kernel), k2(), weight_magnitude, 29);
    for (int64_t k = 0; k < K; ++k) bias.push_back(0.37f * float(int(k % 5) - 2));
    for (int64_t k = 0; k < k2(); ++k) bias2.push_back(-0.21f * float(k % 3));
    x.resize(size_t(N * C * H * W));
    // Inputs beyond the grid's range too (they clamp to -128 / 127).
    for (size_t i = 0; i < x.size(); ++i) x[i] = x_scale * float(int((i * 104729 + 7) % 301) - 150) * 0.9f;
    const Dims yd = {N, K, OH(), OW()};
    const TensorId tx = net.add_tensor({"x", DataType::kFloat, {N, C, H, W}});
    net.tensors[tx].is_input = true;
    net.inputs.push_back(tx);
    const TensorId tc = net.add_tensor({"c", DataType::kFloat, yd});
    const LayerKind kind = deconv ? LayerKind::kDeconvolution : LayerKind::kConvolution;
    net.add_layer({"conv1", kind, {tx}, {tc}, params(K, C, stride, "1")});
    TensorId y1 = tc;
    if (relu) {
      y1 = net.add_tensor({"y1", DataType::kFloat, yd});
      net.add_layer({"relu", LayerKind::kActivation, {tc}, {y1}, ActivationParams{ActivationType::kRelu}});
    }
    // conv2 (stride 1) keeps the size unless its kernel and padding do not (a 2x2 deconvolution: + 1).
    const Dims y2d = {N, k2(), out_size(OH(), 1), out_size(OW(), 1)};
    const TensorId y2 = net.add_tensor({"y2", DataType::kFloat, y2d}), out = net.add_tensor({"out", DataType::kFloat, y2d});
    net.add_layer({"conv2", kind, {y1}, {y2}, params(k2(), K, 1, "2")});
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
  std::vector<float> run(std::vector<std::string>* kinds = nullptr, const ExecOptions* opt = nullptr) const {
    auto ex = make_cpu_executor(net, opt ? *opt : options());
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
                                    float out_scale, int64_t kout) const {
    const int64_t cg = cin / groups, kg = kout / groups, inner = cg * kernel * kernel;
    const int64_t oh = (h + 2 * pad - kernel) / st + 1, ow = (wd + 2 * pad - kernel) / st + 1;
    const ChannelLayout wl{1, kout, inner};
    const std::vector<float> ws = int8_weight_scales(wt.data(), wl);
    std::vector<int8_t> wq(wt.size());
    quantize_int8_weights(wt.data(), wl, ws, wq.data());
    std::vector<int> xq(in.size());
    for (size_t i = 0; i < in.size(); ++i) xq[i] = quantize_int8(in[i], in_scale);
    std::vector<float> y(size_t(N * kout * oh * ow));
    for (int64_t nk = 0; nk < N * kout; ++nk) {
      const int64_t n = nk / kout, k = nk % kout, g = k / kg;
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
          y[size_t(((n * kout + k) * oh + oy) * ow + ox)] = fake_quant_int8(v, out_scale);
        }
    }
    return y;
  }
  // One deconvolution by the reference: the weights' codes per output channel k = g * K/g + j
  // (channel j of every group's [C/g, K/g, k, k] block), each input code times each weight code
  // added into the output it lands on (oy = iy * st - pad + ky), in int64.
  std::vector<float> reference_deconv(const std::vector<float>& in, int64_t cin, int64_t h, int64_t wd,
                                      float in_scale, const std::vector<float>& wt, const std::vector<float>& b,
                                      int64_t st, bool act, float out_scale) const {
    const int64_t cg = cin / groups, kg = K / groups, kk = kernel * kernel;
    const int64_t oh = (h - 1) * st - 2 * pad + kernel, ow = (wd - 1) * st - 2 * pad + kernel;
    std::vector<float> ws;
    std::vector<int8_t> wq(wt.size());
    for (int64_t g = 0; g < groups; ++g) {
      const ChannelLayout wl{cg, kg, kk};
      const std::vector<float> sg = int8_weight_scales(wt.data() + g * cg * kg * kk, wl);
      quantize_int8_weights(wt.data() + g * cg * kg * kk, wl, sg, wq.data() + g * cg * kg * kk);
      ws.insert(ws.end(), sg.begin(), sg.end());
    }
    std::vector<int64_t> acc(size_t(N * K * oh * ow), 0);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = 0; c < cin; ++c)
        for (int64_t iy = 0; iy < h; ++iy)
          for (int64_t ix = 0; ix < wd; ++ix) {
            const int64_t q = quantize_int8(in[size_t(((n * cin + c) * h + iy) * wd + ix)], in_scale), g = c / cg;
            for (int64_t j = 0; j < kg; ++j)
              for (int64_t ky = 0; ky < kernel; ++ky)
                for (int64_t kx = 0; kx < kernel; ++kx) {
                  const int64_t oy = iy * st - pad + ky, ox = ix * st - pad + kx;
                  if (oy < 0 || oy >= oh || ox < 0 || ox >= ow) continue;
                  acc[size_t(((n * K + g * kg + j) * oh + oy) * ow + ox)] +=
                      q * int64_t(wq[size_t(((c * kg + j) * kernel + ky) * kernel + kx)]);
                }
          }
    std::vector<float> y(acc.size());
    for (size_t i = 0; i < y.size(); ++i) {
      const size_t k = (i / size_t(oh * ow)) % size_t(K);
      float v = float(acc[i]) * (in_scale * ws[k]);
      v = v + fake_quant_int32_bias(b[k], in_scale, ws[k]);
      if (act) v = v > 0.f ? v : 0.f;
      y[i] = fake_quant_int8(v, out_scale);
    }
    return y;
  }
  std::vector<float> reference_layer(const std::vector<float>& in, int64_t cin, int64_t h, int64_t wd,
                                     float in_scale, const std::vector<float>& wt, const std::vector<float>& b,
                                     int64_t st, bool act, float out_scale, int64_t kout) const {
    return deconv ? reference_deconv(in, cin, h, wd, in_scale, wt, b, st, act, out_scale)
                  : reference_conv(in, cin, h, wd, in_scale, wt, b, st, act, out_scale, kout);
  }
  std::vector<float> expected() const {
    const std::vector<float> y1 = reference_layer(x, C, H, W, x_scale, w, bias, stride, relu, y_scale, K);
    std::vector<float> y2 = reference_layer(y1, K, OH(), OW(), y_scale, w2, bias2, 1, false, y2_scale, k2());
    for (float& v : y2) v = v + v;
    return y2;
  }
};

// Steps that ran real INT8: "Convolution(int8)...", "Deconvolution(int8)...".
int real_int8_steps(const std::vector<std::string>& kinds) {
  int real = 0;
  for (const std::string& k : kinds) real += k.find("(int8)") != std::string::npos;
  return real;
}

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

// One run of c under the environment set now: both layers real INT8, exactly the reference's bits.
void expect_exact_run(const ConvCase& c, const std::vector<float>& want, const std::string& what) {
  std::vector<std::string> kinds;
  const std::vector<float> got = c.run(&kinds);
  EXPECT_EQ(real_int8_steps(kinds), 2) << what << ": not both layers ran real INT8";
  size_t first = 0;
  const size_t n = count_differences(got, want, &first);
  EXPECT_EQ(n, 0u) << what << ": first at " << first << ": " << got[first] << " vs " << want[first];
}

void expect_exact_in_every_path_and_layout(const ConvCase& c, const std::string& what) {
  const std::vector<float> want = c.expected();
  for (const std::string& path : exact_paths())
    for (const char* layout : {"nhwc", "16", "8", "plain"}) {
      EnvVar p("TANDEM_CPU_INT8", path), l("TANDEM_CPU_CHAIN_LAYOUT", layout);
      expect_exact_run(c, want, what + ", path " + path + ", layout " + layout);
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

// The codes of floats: the AVX-512 loop and the plain one agree on every value class (half-way
// points round to even, beyond the range clamps, infinities, NaN -> -128, -0 -> 0), with
// hand-worked values.
TEST(CpuInt8, CodesOfFloatsAreTheSameInEveryBuild) {
  std::vector<float> x = {2.5f, 3.5f, -2.5f, -3.5f, 127.5f, 128.f, -128.5f, -129.f, 0.49999997f, -0.f, 0.f,
                          std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                          std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::quiet_NaN(),
                          1e30f, -1e30f, 1e-40f, 126.5f, -127.5f};
  const std::vector<int> want = {2, 4, -2, -4, 127, 127, -128, -128, 0, 0, 0, 127, -128, -128, -128, 127, -128, 0, 126, -128};
  for (int k = -140; k <= 140; ++k) x.push_back(float(k) + 0.5f), x.push_back(float(k) * 0.37f);
  for (int i = 0; i < 1000; ++i) x.push_back(float((i * 7919) % 2001 - 1000) * 0.173f);
  for (float inv : {1.f, 0.3f, 7.25f}) {
    std::vector<int8_t> best(x.size()), plain(x.size());
    cpu::int8_codes(x.data(), best.data(), int64_t(x.size()), inv);
    cpu::int8_codes(x.data(), plain.data(), int64_t(x.size()), inv, cpu::SimdLevel::kBaseline);
    for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(int(best[i]), int(plain[i])) << "x " << x[i] << " inv " << inv;
    if (inv == 1.f)
      for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(int(best[i]), want[i]) << "x " << x[i];
  }
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
  ConvCase pw = ConvCase::pointwise(24, 40);
  pw.build();
  expect_exact_in_every_path_and_layout(pw, "1x1 24->40");
}

// Where channels do not fill oneDNN's blocks the FP32 path picks other layouts for its sums
// (kernels_int8.cpp, sum_layouts): a stem reads plain codes and writes blocked sums; a pointwise
// convolution runs plain. The same exact sums in each.
TEST(CpuInt8, StemAndPointwiseConvolutionsWithPartialBlocksEqualExactIntegerSums) {
  ConvCase stem;  // 3 channels in, stride 2: plain codes in, blocked sums out
  stem.C = 3;
  stem.K = 16;
  stem.H = stem.W = 17;
  stem.stride = 2;
  stem.build();
  expect_exact_in_every_path_and_layout(stem, "stem 3x3 3->16 stride 2");
  ConvCase pw = ConvCase::pointwise(12, 36);  // neither fills a block of 8 or 16
  pw.build();
  expect_exact_in_every_path_and_layout(pw, "1x1 12->36");
  for (int64_t kernel : {1, 3}) {  // conv2 16 -> 12: a blocked input, the sums' last block padded
    ConvCase narrow;
    narrow.K = 16;
    narrow.K2 = 12;
    narrow.kernel = kernel;
    narrow.pad = kernel / 2;
    narrow.build();
    expect_exact_in_every_path_and_layout(narrow, "8->16->12 kernel " + std::to_string(kernel));
  }
}

// A pointwise convolution in channels-last chains runs block by block of pixels (here blocks of
// 7 pixels of 2 x 11 x 9, and a shorter last block; two threads take blocks at once): the same
// exact sums and requantization as the whole tensor.
TEST(CpuInt8, PointwiseConvolutionInPixelBlocksEqualsExactIntegerSums) {
  ConvCase pw;
  pw.N = 2;
  pw.C = 24;
  pw.K = 40;
  pw.H = 11;
  pw.W = 9;
  pw.kernel = 1;
  pw.pad = 0;
  pw.build();
  EnvVar tile("TANDEM_CPU_INT8_TILE", "7");
  const uint64_t before = cpu::int8_tiled_kernels_built();
  expect_exact_in_every_path_and_layout(pw, "1x1 24->40 in blocks of 7 pixels");
  // The integer sums read channels-last codes on the VNNI path (the FP32-sum path prefers
  // oneDNN's blocked layouts where the CPU has no AVX-512: nothing to tile there).
  if (has_vnni_path()) EXPECT_GT(cpu::int8_tiled_kernels_built(), before) << "no convolution ran in blocks";
}

// A convolution with a window in channels-last chains on the VNNI path runs in blocks of output
// rows (2 or 3 rows: a shorter last block; stride 2; 5x5 with padding 2, whose first and last
// blocks carry two padded rows): the same exact sums and requantization as the whole tensor.
TEST(CpuInt8, ConvolutionsInRowBlocksEqualExactIntegerSums) {
  ConvCase c3;
  c3.build();
  ConvCase dw;
  dw.N = 2;
  dw.C = dw.K = dw.groups = 16;
  dw.stride = 2;
  dw.H = 15;
  dw.build();
  ConvCase c5;
  c5.kernel = 5;
  c5.pad = 2;
  c5.H = 13;
  c5.build();
  EnvVar layout("TANDEM_CPU_CHAIN_LAYOUT", "nhwc");
  for (const ConvCase* c : {&c3, &dw, &c5})
    for (const char* rows : {"2", "3"}) {
      EnvVar r("TANDEM_CPU_INT8_ROWS", rows);
      const uint64_t before = cpu::int8_row_tiled_kernels_built();
      const std::string what = "kernel " + std::to_string(c->kernel) + " stride " + std::to_string(c->stride) +
                               " groups " + std::to_string(c->groups) + ", rows " + rows;
      expect_exact_run(*c, c->expected(), what);
      EXPECT_EQ(cpu::int8_row_tiled_kernels_built() > before, has_vnni_path()) << what;
    }
}

// Between two real INT8 convolutions in channels-last chains on the VNNI path, y1 is stored as
// conv1's codes and conv2 sums them as they are (cpu::Int8CodesIo): the same exact sums as
// floats on the grid, in whole tensors and in pixel blocks (pointwise, blocks of 7), with and
// without the switch. Fails where no value was linked on a CPU that can.
TEST(CpuInt8, CodesBetweenConvolutionsEqualExactIntegerSums) {
  ConvCase c3;
  c3.build();
  ConvCase dw;
  dw.N = 2;
  dw.C = dw.K = dw.groups = 16;
  dw.build();
  ConvCase pw = ConvCase::pointwise(24, 40);
  pw.H = 11;
  pw.build();
  EnvVar layout("TANDEM_CPU_CHAIN_LAYOUT", "nhwc");
  for (const ConvCase* c : {&c3, &dw, &pw})
    for (const char* tile : {"0", "7"})
      for (const char* codes : {"1", "0"}) {
        EnvVar t("TANDEM_CPU_INT8_TILE", tile), k("TANDEM_CPU_INT8_CODES", codes);
        const uint64_t before = cpu::int8_codes_values_linked();
        const std::string what = "K " + std::to_string(c->K) + " kernel " + std::to_string(c->kernel) + ", tile " +
                                 tile + ", codes " + codes;
        expect_exact_run(*c, c->expected(), what);
        const bool linked = cpu::int8_codes_values_linked() > before;
        EXPECT_EQ(linked, has_vnni_path() && std::string(codes) == "1") << what;
      }
}

// An FP16 convolution (+ ReLU) before a real INT8 one writes the codes of its output's INT8 grid
// (its chain ends in that rounding) and the INT8 convolution sums them as they are: the same bits
// as floats on the grid (TANDEM_CPU_INT8_CODES=0), 3x3 and pointwise, whole and in pixel blocks.
// Fails where no value was linked on a CPU that can.
TEST(CpuInt8, CodesFromAnFp16ConvolutionEqualFloatsOnTheGrid) {
  ConvCase c3;
  c3.build();
  ConvCase pw = ConvCase::pointwise(24, 40);
  pw.H = 11;
  pw.build();
  EnvVar layout("TANDEM_CPU_CHAIN_LAYOUT", "nhwc");
  for (const ConvCase* c : {&c3, &pw}) {
    ExecOptions opt = c->options();
    opt.numerics.layer_precision[0] = Precision::kFP16;                 // conv1
    if (c->relu) opt.numerics.layer_precision[1] = Precision::kFP16;    // its ReLU
    for (const char* tile : {"0", "7"}) {
      EnvVar t("TANDEM_CPU_INT8_TILE", tile);
      std::vector<float> as_floats, as_codes;
      {
        EnvVar k("TANDEM_CPU_INT8_CODES", "0");
        as_floats = c->run(nullptr, &opt);
      }
      const uint64_t before = cpu::int8_codes_values_linked();
      std::vector<std::string> kinds;
      as_codes = c->run(&kinds, &opt);
      const std::string what = "K " + std::to_string(c->K) + " kernel " + std::to_string(c->kernel) + ", tile " + tile;
      EXPECT_EQ(cpu::int8_codes_values_linked() > before, has_vnni_path()) << what;
      EXPECT_EQ(real_int8_steps(kinds), 1) << what;
      ASSERT_EQ(as_codes.size(), as_floats.size());
      size_t differ = 0;
      for (size_t i = 0; i < as_codes.size(); ++i) differ += std::memcmp(&as_codes[i], &as_floats[i], 4) != 0;
      EXPECT_EQ(differ, 0u) << what;
      // Not all zero: the INT8 convolution's output varies.
      EXPECT_NE(*std::min_element(as_codes.begin(), as_codes.end()), *std::max_element(as_codes.begin(), as_codes.end())) << what;
    }
  }
}

TEST(CpuInt8, DeconvolutionEqualsExactIntegerSums) {
  ConvCase up;  // PP-OCR det's head: 2x2 stride 2 (no overlap), no padding
  up.deconv = true;
  up.kernel = 2;
  up.stride = 2;
  up.pad = 0;
  up.build();
  expect_exact_in_every_path_and_layout(up, "deconvolution 2x2 stride 2 8->16");
  ConvCase overlap;  // 3x3 stride 2 pad 1: 1, 2 or 4 products per output pixel per channel
  overlap.deconv = true;
  overlap.stride = 2;
  overlap.N = 2;
  overlap.build();
  expect_exact_in_every_path_and_layout(overlap, "deconvolution 3x3 stride 2 pad 1, batch 2");
  ConvCase grouped;  // 4 groups, 1x1 after a 3x3 stride-1 one, no activation
  grouped.deconv = true;
  grouped.groups = 4;
  grouped.C = 24;
  grouped.relu = false;
  grouped.build();
  expect_exact_in_every_path_and_layout(grouped, "grouped deconvolution 3x3 24->16");
}

// The emulation sums the same products in float: results differ by that rounding only, which can
// move an output across a rounding boundary of its grid by at most one step.
void expect_emulation_differs_by_summation_rounding_only(const ConvCase& c, const std::string& what) {
  const std::vector<float> want = c.expected();
  EnvVar p("TANDEM_CPU_INT8", "emulate");
  std::vector<std::string> kinds;
  const std::vector<float> emulated = c.run(&kinds);
  EXPECT_EQ(real_int8_steps(kinds), 0) << what;
  ASSERT_EQ(emulated.size(), want.size());
  size_t differ = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    // out = 2 * y2: one step of y2's grid, unless conv1's moved step carries on.
    EXPECT_LE(std::fabs(emulated[i] - want[i]), 2 * c.y2_scale * 1.0001f) << what << " at " << i;
    differ += emulated[i] != want[i];
  }
  EXPECT_LT(differ, want.size() / 50) << what << ": more than 2% of the outputs moved: not summation rounding";
}

TEST(CpuInt8, EmulationDiffersBySummationRoundingOnly) {
  ConvCase c;
  c.C = 32;
  c.build();
  expect_emulation_differs_by_summation_rounding_only(c, "convolution 3x3 32->16");
  ConvCase d;
  d.deconv = true;
  d.C = 32;
  d.stride = 2;
  d.build();
  expect_emulation_differs_by_summation_rounding_only(d, "deconvolution 3x3 stride 2 32->16");
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
  // Deconvolution codes [C, K/g, taps]: output channel k sums column k % (K/g) over its group's
  // input channels. 2 groups of 1032 input channels, 2 output channels each, 1 tap: at the bound.
  std::vector<int8_t> up(size_t(2064 * 2), -127);
  EXPECT_TRUE(cpu::int8_deconv_exact(up, 2064, 4, 2));
  EXPECT_FALSE(cpu::int8_deconv_exact(up, 2064, 2, 1));  // one group: 2064 codes per output channel
  up.resize(size_t(2066 * 2), 1);                          // 1033 input channels per group
  EXPECT_FALSE(cpu::int8_deconv_exact(up, 2066, 4, 2));
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
    // conv2 (4 channels) runs real INT8, conv1 cannot
    EXPECT_EQ(real_int8_steps(kinds), 1) << path;
    if (first.empty()) first = got;
    size_t at = 0;
    EXPECT_EQ(count_differences(got, first, &at), 0u) << path;
  }
}
