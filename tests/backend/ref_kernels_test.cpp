// The plain-loop reference kernels of Convolution, Deconvolution and MatrixMultiply
// (ExecOptions::reference_kernels) against a hand-worked value and against oneDNN (the default
// CPU path) on shapes that exercise groups, dilation, asymmetric padding, bias, transposes and
// batch broadcasting.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "tandem/runtime.h"

using namespace tandem;

namespace {

struct Net {
  Network n;
  std::mt19937 rng{7};
  std::vector<float> random(int64_t count) {
    std::uniform_real_distribution<float> u(-1.f, 1.f);
    std::vector<float> v(static_cast<size_t>(count));
    for (float& x : v) x = u(rng);
    return v;
  }
  TensorId input(const std::string& name, Dims d) {
    TensorId id = n.add_tensor({name, DataType::kFloat, std::move(d)});
    n.tensors[id].is_input = true;
    n.inputs.push_back(id);
    return id;
  }
  TensorId output(const std::string& name, Dims d) {
    TensorId id = n.add_tensor({name, DataType::kFloat, std::move(d)});
    n.tensors[id].is_output = true;
    n.outputs.push_back(id);
    return id;
  }
  WeightsId weights(const std::string& name, Dims d, std::vector<float> v) {
    Weights w;
    w.name = name;
    w.dims = std::move(d);
    w.bytes.resize(v.size() * 4);
    std::memcpy(w.bytes.data(), v.data(), w.bytes.size());
    return n.add_weights(std::move(w));
  }
};

HostTensor host(const std::string& name, const Dims& d, const std::vector<float>& v) {
  HostTensor t = HostTensor::zeros(name, DataType::kFloat, d);
  std::memcpy(t.data.data(), v.data(), v.size() * 4);
  return t;
}

std::vector<float> run(const Network& n, const TensorMap& in, bool reference) {
  ExecOptions o;
  o.reference_kernels = reference;
  const TensorMap out = make_cpu_executor(n, o)->run(in);
  const HostTensor& y = out.at(n.tensors[n.outputs[0]].name);
  return std::vector<float>(y.f32(), y.f32() + y.count());
}

// Reference and oneDNN agree within float accumulation error; returns the reference's output.
std::vector<float> expect_reference_matches_onednn(Net& b) {
  TensorMap in;
  for (TensorId t : b.n.inputs) in[b.n.tensors[t].name] = host(b.n.tensors[t].name, b.n.tensors[t].dims, b.random(volume(b.n.tensors[t].dims)));
  const std::vector<float> ref = run(b.n, in, true), dnnl = run(b.n, in, false);
  EXPECT_EQ(ref.size(), dnnl.size());
  for (size_t i = 0; i < ref.size() && i < dnnl.size(); ++i)
    EXPECT_NEAR(ref[i], dnnl[i], 1e-4f * (1.f + std::fabs(ref[i]))) << "element " << i;
  return ref;
}

struct ConvShape {
  int64_t n, c, h, w, k, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, groups;
  bool bias;
};

int64_t conv_out(int64_t in, int64_t k, int64_t s, int64_t d, int64_t pre, int64_t post) {
  return (in + pre + post - ((k - 1) * d + 1)) / s + 1;
}
int64_t deconv_out(int64_t in, int64_t k, int64_t s, int64_t d, int64_t pre, int64_t post) {
  return (in - 1) * s + (k - 1) * d + 1 - pre - post;
}

void build_conv(Net& b, const ConvShape& s, LayerKind kind) {
  const bool de = kind == LayerKind::kDeconvolution;
  auto out = de ? deconv_out : conv_out;
  const int64_t oh = out(s.h, s.kh, s.sh, s.dh, s.pt, s.pb), ow = out(s.w, s.kw, s.sw, s.dw, s.pl, s.pr);
  ConvolutionParams p;
  p.kernel = {s.kh, s.kw};
  p.stride = {s.sh, s.sw};
  p.dilation = {s.dh, s.dw};
  p.pre_padding = {s.pt, s.pl};
  p.post_padding = {s.pb, s.pr};
  p.groups = s.groups;
  p.out_maps = s.k;
  const Dims wd = de ? Dims{s.c, s.k / s.groups, s.kh, s.kw} : Dims{s.k, s.c / s.groups, s.kh, s.kw};
  p.kernel_weights = b.weights("w", wd, b.random(volume(wd)));
  if (s.bias) p.bias_weights = b.weights("b", {s.k}, b.random(s.k));
  TensorId x = b.input("x", {s.n, s.c, s.h, s.w});
  TensorId y = b.output("y", {s.n, s.k, oh, ow});
  b.n.add_layer({"conv", kind, {x}, {y}, p});
  b.n.verify();
}

}  // namespace

TEST(ReferenceKernels, ConvolutionHandWorked) {
  // x = 1..9 (3x3), w = [[1, 0], [0, -1]], bias 0.5, stride 1, no padding:
  // y[i, j] = x[i, j] - x[i + 1, j + 1] + 0.5 = -4 + 0.5 everywhere.
  Net b;
  ConvolutionParams p;
  p.kernel = {2, 2};
  p.stride = {1, 1};
  p.dilation = {1, 1};
  p.pre_padding = {0, 0};
  p.post_padding = {0, 0};
  p.out_maps = 1;
  p.kernel_weights = b.weights("w", {1, 1, 2, 2}, {1, 0, 0, -1});
  p.bias_weights = b.weights("b", {1}, {0.5f});
  TensorId x = b.input("x", {1, 1, 3, 3});
  TensorId y = b.output("y", {1, 1, 2, 2});
  b.n.add_layer({"conv", LayerKind::kConvolution, {x}, {y}, p});
  TensorMap in;
  in["x"] = host("x", {1, 1, 3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  EXPECT_EQ(run(b.n, in, true), std::vector<float>(4, -3.5f));
}

TEST(ReferenceKernels, DeconvolutionHandWorked) {
  // x = [1, 2] (1x2), w = [1, 10] (1x2), stride 2: y = [1, 10, 2, 20], plus bias 1.
  Net b;
  ConvolutionParams p;
  p.kernel = {1, 2};
  p.stride = {1, 2};
  p.dilation = {1, 1};
  p.pre_padding = {0, 0};
  p.post_padding = {0, 0};
  p.out_maps = 1;
  p.kernel_weights = b.weights("w", {1, 1, 1, 2}, {1, 10});
  p.bias_weights = b.weights("b", {1}, {1});
  TensorId x = b.input("x", {1, 1, 1, 2});
  TensorId y = b.output("y", {1, 1, 1, 4});
  b.n.add_layer({"deconv", LayerKind::kDeconvolution, {x}, {y}, p});
  TensorMap in;
  in["x"] = host("x", {1, 1, 1, 2}, {1, 2});
  EXPECT_EQ(run(b.n, in, true), (std::vector<float>{2, 11, 3, 21}));
}

TEST(ReferenceKernels, MatrixMultiplyHandWorked) {
  // A = [[1, 2], [3, 4]], B^T with B = [[5, 6], [7, 8]]: A * B^T = [[17, 23], [39, 53]].
  Net b;
  TensorId a = b.input("a", {2, 2});
  TensorId bt = b.input("b", {2, 2});
  TensorId y = b.output("y", {2, 2});
  b.n.add_layer({"mm", LayerKind::kMatrixMultiply, {a, bt}, {y}, MatrixMultiplyParams{MatrixOp::kNone, MatrixOp::kTranspose}});
  TensorMap in;
  in["a"] = host("a", {2, 2}, {1, 2, 3, 4});
  in["b"] = host("b", {2, 2}, {5, 6, 7, 8});
  EXPECT_EQ(run(b.n, in, true), (std::vector<float>{17, 23, 39, 53}));
}

TEST(ReferenceKernels, ConvolutionMatchesOneDnn) {
  const ConvShape shapes[] = {
      {1, 3, 7, 6, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, true},    // same padding, bias
      {2, 4, 9, 8, 6, 3, 2, 2, 1, 2, 1, 2, 0, 1, 1, 2, false},   // groups, dilation, stride, asymmetric pads
      {1, 6, 5, 5, 6, 3, 3, 1, 2, 1, 1, 1, 1, 0, 1, 6, true},    // depthwise
  };
  for (const ConvShape& s : shapes) {
    Net b;
    build_conv(b, s, LayerKind::kConvolution);
    SCOPED_TRACE(dims_to_string(b.n.tensors[b.n.inputs[0]].dims));
    expect_reference_matches_onednn(b);
  }
}

TEST(ReferenceKernels, DeconvolutionMatchesOneDnn) {
  const ConvShape shapes[] = {
      {1, 3, 4, 5, 2, 2, 2, 2, 2, 1, 1, 0, 0, 0, 0, 1, true},    // the PP-OCR det upsampling shape
      {2, 4, 5, 4, 6, 3, 3, 2, 1, 1, 2, 1, 0, 1, 1, 2, false},   // groups, dilation, pads
      {1, 4, 3, 3, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 4, true},    // depthwise
  };
  for (const ConvShape& s : shapes) {
    Net b;
    build_conv(b, s, LayerKind::kDeconvolution);
    SCOPED_TRACE(dims_to_string(b.n.tensors[b.n.inputs[0]].dims));
    expect_reference_matches_onednn(b);
  }
}

TEST(ReferenceKernels, MatrixMultiplyMatchesOneDnn) {
  struct Case { Dims a, b, out; MatrixOp op0, op1; };
  const Case cases[] = {
      {{3, 5}, {5, 4}, {3, 4}, MatrixOp::kNone, MatrixOp::kNone},
      {{5, 3}, {4, 5}, {3, 4}, MatrixOp::kTranspose, MatrixOp::kTranspose},
      {{2, 1, 3, 5}, {1, 3, 5, 4}, {2, 3, 3, 4}, MatrixOp::kNone, MatrixOp::kNone},      // batch broadcast
      {{2, 3, 3, 5}, {1, 1, 4, 5}, {2, 3, 3, 4}, MatrixOp::kNone, MatrixOp::kTranspose},  // B shared
  };
  for (const Case& c : cases) {
    Net b;
    TensorId a = b.input("a", c.a);
    TensorId bb = b.input("b", c.b);
    TensorId y = b.output("y", c.out);
    b.n.add_layer({"mm", LayerKind::kMatrixMultiply, {a, bb}, {y}, MatrixMultiplyParams{c.op0, c.op1}});
    b.n.verify();
    SCOPED_TRACE(dims_to_string(c.a) + " x " + dims_to_string(c.b));
    expect_reference_matches_onednn(b);
  }
}
