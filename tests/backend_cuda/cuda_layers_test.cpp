// Per-layer tests of the CUDA backend against hand-worked numbers on tiny networks.
// Label gpu: skipped with a clear message where no CUDA device is present.
#include <cmath>
#include <random>

#include "test_util.h"

using namespace tandem;
using namespace tandem::test;

namespace {

std::vector<float> iota(int n, float start = 0.f) {
  std::vector<float> v(n);
  for (int i = 0; i < n; ++i) v[i] = start + float(i);
  return v;
}

ConvolutionParams conv_params(Dims k, Dims s, Dims pre, Dims post, int64_t maps, WeightsId w,
                              WeightsId b = -1, int64_t groups = 1) {
  ConvolutionParams p;
  p.kernel = k;
  p.stride = s;
  p.pre_padding = pre;
  p.post_padding = post;
  p.dilation = {1, 1};
  p.out_maps = maps;
  p.kernel_weights = w;
  p.bias_weights = b;
  p.groups = groups;
  return p;
}

}  // namespace

TEST(CudaBackend, Available) {
  std::string why;
  bool ok = cuda_available(&why);
  if (!ok) {
    EXPECT_NE(why.find("no CUDA device"), std::string::npos);
    GTEST_SKIP() << why << ": skipped";
  }
}

TEST(CudaConv, ValidBias) {
  SKIP_WITHOUT_CUDA();
  NetBuilder b;
  TensorId x = b.input("x", {1, 1, 3, 3});
  TensorId y = b.tensor("y", {1, 1, 2, 2});
  b.layer("conv", LayerKind::kConvolution, {x}, {y},
          conv_params({2, 2}, {1, 1}, {0, 0}, {0, 0}, 1, b.weights("w", {1, 1, 2, 2}, {1, 1, 1, 1}),
                      b.weights("b", {1}, {1})));
  b.output(y);
  auto ex = make_cuda_executor(b.n, {}, CudaOptions{});
  auto out = ex->run({{"x", host("x", {1, 1, 3, 3}, iota(9, 1))}});
  expect_near(values(out.at("y")), {13, 17, 25, 29});
  ASSERT_EQ(ex->tactics().size(), 1u);
  EXPECT_EQ(ex->tactics()[0].tactic.rfind("cudnn_fwd:", 0), 0u) << ex->tactics()[0].tactic;
  EXPECT_GE(ex->tactics()[0].time_ms, 0.f);
  EXPECT_NE(ex->tactics()[0].key.find("Convolution|x=1x1x3x3"), std::string::npos);
  EXPECT_NE(ex->device_key().find("sm_"), std::string::npos);
}

TEST(CudaConv, PadStride) {
  SKIP_WITHOUT_CUDA();
  NetBuilder b;
  TensorId x = b.input("x", {1, 1, 3, 3});
  TensorId y = b.tensor("y", {1, 1, 2, 2});
  b.layer("conv", LayerKind::kConvolution, {x}, {y},
          conv_params({3, 3}, {2, 2}, {1, 1}, {1, 1}, 1, b.weights("w", {1, 1, 3, 3}, std::vector<float>(9, 1.f))));
  b.output(y);
  expect_near(run1(b.n, {{"x", host("x", {1, 1, 3, 3}, iota(9, 1))}}), {12, 16, 24, 28});
}

TEST(CudaConv, FusedReluAndHardSigmoid) {
  SKIP_WITHOUT_CUDA();
  {
    NetBuilder b;
    TensorId x = b.input("x", {1, 1, 3, 3});
    TensorId c = b.tensor("c", {1, 1, 3, 3});
    TensorId y = b.tensor("y", {1, 1, 3, 3});
    b.layer("conv", LayerKind::kConvolution, {x}, {c},
            conv_params({1, 1}, {1, 1}, {0, 0}, {0, 0}, 1, b.weights("w", {1, 1, 1, 1}, {-1}), b.weights("b", {1}, {5})));
    b.layer("relu", LayerKind::kActivation, {c}, {y}, ActivationParams{ActivationType::kRelu});
    b.output(y);
    auto ex = make_cuda_executor(b.n, {}, CudaOptions{});
    auto out = ex->run({{"x", host("x", {1, 1, 3, 3}, iota(9, 1))}});
    expect_near(values(out.at("y")), {4, 3, 2, 1, 0, 0, 0, 0, 0});
    EXPECT_NE(ex->tactics()[0].tactic.find("relu"), std::string::npos) << ex->tactics()[0].tactic;
  }
  {
    NetBuilder b;
    TensorId x = b.input("x", {1, 1, 1, 5});
    TensorId c = b.tensor("c", {1, 1, 1, 5});
    TensorId y = b.tensor("y", {1, 1, 1, 5});
    b.layer("conv", LayerKind::kConvolution, {x}, {c},
            conv_params({1, 1}, {1, 1}, {0, 0}, {0, 0}, 1, b.weights("w", {1, 1, 1, 1}, {1})));
    b.layer("hs", LayerKind::kActivation, {c}, {y}, ActivationParams{ActivationType::kHardSigmoid, 0.2f, 0.5f});
    b.output(y);
    expect_near(run1(b.n, {{"x", host("x", {1, 1, 1, 5}, {-5, -1, 0, 1, 5})}}), {0, 0.3f, 0.5f, 0.7f, 1});
  }
}

TEST(CudaConv, AsymmetricPadding) {
  SKIP_WITHOUT_CUDA();
  for (int post_first = 0; post_first < 2; ++post_first) {
    NetBuilder b;
    TensorId x = b.input("x", {1, 1, 1, 3});
    TensorId y = b.tensor("y", {1, 1, 1, 3});
    Dims pre = post_first ? Dims{0, 0} : Dims{0, 1}, post = post_first ? Dims{0, 1} : Dims{0, 0};
    b.layer("conv", LayerKind::kConvolution, {x}, {y},
            conv_params({1, 2}, {1, 1}, pre, post, 1, b.weights("w", {1, 1, 1, 2}, {1, 1})));
    b.output(y);
    auto got = run1(b.n, {{"x", host("x", {1, 1, 1, 3}, {1, 2, 3})}});
    if (post_first) expect_near(got, {3, 5, 3});
    else expect_near(got, {1, 3, 5});
  }
}

TEST(CudaConv, Depthwise) {
  SKIP_WITHOUT_CUDA();
  NetBuilder b;
  TensorId x = b.input("x", {1, 2, 2, 2});
  TensorId y = b.tensor("y", {1, 2, 1, 1});
  b.layer("dw", LayerKind::kConvolution, {x}, {y},
          conv_params({2, 2}, {1, 1}, {0, 0}, {0, 0}, 2,
                      b.weights("w", {2, 1, 2, 2}, {1, 1, 1, 1, 2, 2, 2, 2}), -1, 2));
  b.output(y);
  expect_near(run1(b.n, {{"x", host("x", {1, 2, 2, 2}, {1, 1, 1, 1, 2, 2, 2, 2})}}), {4, 16});
}

// A larger grouped, strided convolution against a naive loop (layout and algorithm check).
TEST(CudaConv, RandomAgainstNaive) {
  SKIP_WITHOUT_CUDA();
  const int N = 1, C = 8, H = 17, W = 19, K = 16, G = 2, kh = 3, kw = 3, s = 2, p = 1;
  const int OH = (H + 2 * p - kh) / s + 1, OW = (W + 2 * p - kw) / s + 1;
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> xv(N * C * H * W), wv(K * (C / G) * kh * kw), bv(K);
  for (auto& v : xv) v = u(rng);
  for (auto& v : wv) v = u(rng);
  for (auto& v : bv) v = u(rng);
  NetBuilder b;
  TensorId x = b.input("x", {N, C, H, W});
  TensorId y = b.tensor("y", {N, K, OH, OW});
  b.layer("conv", LayerKind::kConvolution, {x}, {y},
          conv_params({kh, kw}, {s, s}, {p, p}, {p, p}, K, b.weights("w", {K, C / G, kh, kw}, wv),
                      b.weights("b", {K}, bv), G));
  b.output(y);
  auto got = run1(b.n, {{"x", host("x", {N, C, H, W}, xv)}});
  std::vector<float> want(size_t(N) * K * OH * OW);
  for (int k = 0; k < K; ++k) {
    int g = k / (K / G);
    for (int oh = 0; oh < OH; ++oh)
      for (int ow = 0; ow < OW; ++ow) {
        double acc = bv[k];
        for (int c = 0; c < C / G; ++c)
          for (int i = 0; i < kh; ++i)
            for (int j = 0; j < kw; ++j) {
              int hh = oh * s - p + i, ww = ow * s - p + j;
              if (hh < 0 || hh >= H || ww < 0 || ww >= W) continue;
              acc += double(xv[((g * (C / G) + c) * H + hh) * W + ww]) * wv[((k * (C / G) + c) * kh + i) * kw + j];
            }
        want[(k * OH + oh) * OW + ow] = float(acc);
      }
  }
  expect_near(got, want, 1e-4f);
}

// Depthwise convolutions through cuDNN and through tandem's direct kernel, with a fused
// activation (Clip = ReLU6), against a naive loop.
TEST(CudaConv, DepthwiseBothTacticsAgainstNaive) {
  SKIP_WITHOUT_CUDA();
  struct Cfg { int C, H, W, k, s, p; };
  for (Cfg c : {Cfg{24, 17, 15, 3, 2, 1}, Cfg{16, 20, 20, 5, 1, 2}}) {
    const int OH = (c.H + 2 * c.p - c.k) / c.s + 1, OW = (c.W + 2 * c.p - c.k) / c.s + 1;
    std::mt19937 rng(5);
    std::uniform_real_distribution<float> u(-1, 1);
    std::vector<float> xv(c.C * c.H * c.W), wv(c.C * c.k * c.k), bv(c.C);
    for (auto& v : xv) v = u(rng) * 4;
    for (auto& v : wv) v = u(rng);
    for (auto& v : bv) v = u(rng);
    std::vector<float> want(size_t(c.C) * OH * OW);
    for (int ch = 0; ch < c.C; ++ch)
      for (int oh = 0; oh < OH; ++oh)
        for (int ow = 0; ow < OW; ++ow) {
          double acc = bv[ch];
          for (int i = 0; i < c.k; ++i)
            for (int j = 0; j < c.k; ++j) {
              int hh = oh * c.s - c.p + i, ww = ow * c.s - c.p + j;
              if (hh < 0 || hh >= c.H || ww < 0 || ww >= c.W) continue;
              acc += double(xv[(ch * c.H + hh) * c.W + ww]) * wv[(ch * c.k + i) * c.k + j];
            }
          want[(ch * OH + oh) * OW + ow] = std::min(std::max(float(acc), 0.f), 6.f);
        }
    for (int own = 0; own < 2; ++own) {
      NetBuilder b;
      TensorId x = b.input("x", {1, c.C, c.H, c.W});
      TensorId t = b.tensor("t", {1, c.C, OH, OW});
      TensorId y = b.tensor("y", {1, c.C, OH, OW});
      b.layer("dw", LayerKind::kConvolution, {x}, {t},
              conv_params({c.k, c.k}, {c.s, c.s}, {c.p, c.p}, {c.p, c.p}, c.C,
                          b.weights("w", {c.C, 1, c.k, c.k}, wv), b.weights("b", {c.C}, bv), c.C));
      b.layer("relu6", LayerKind::kActivation, {t}, {y}, ActivationParams{ActivationType::kClip, 0.f, 6.f});
      b.output(y);
      CudaOptions co;
      co.own_depthwise = own;
      auto ex = make_cuda_executor(b.n, {}, co);
      auto got = values(ex->run({{"x", host("x", {1, c.C, c.H, c.W}, xv)}}).at("y"));
      SCOPED_TRACE(ex->tactics()[0].tactic);
      EXPECT_EQ(ex->tactics()[0].tactic.find("tandem_depthwise") != std::string::npos, own == 1);
      expect_near(got, want, 1e-4f);
    }
  }
}

TEST(CudaDeconv, Stride2) {
  SKIP_WITHOUT_CUDA();
  {
    NetBuilder b;
    TensorId x = b.input("x", {1, 1, 2, 2});
    TensorId y = b.tensor("y", {1, 1, 4, 4});
    b.layer("up", LayerKind::kDeconvolution, {x}, {y},
            conv_params({2, 2}, {2, 2}, {0, 0}, {0, 0}, 1, b.weights("w", {1, 1, 2, 2}, {1, 1, 1, 1}), b.weights("b", {1}, {0.5f})));
    b.output(y);
    expect_near(run1(b.n, {{"x", host("x", {1, 1, 2, 2}, {1, 2, 3, 4})}}),
                {1.5, 1.5, 2.5, 2.5, 1.5, 1.5, 2.5, 2.5, 3.5, 3.5, 4.5, 4.5, 3.5, 3.5, 4.5, 4.5});
  }
  {
    NetBuilder b;
    TensorId x = b.input("x", {1, 1, 1, 1});
    TensorId y = b.tensor("y", {1, 1, 2, 2});
    b.layer("up", LayerKind::kDeconvolution, {x}, {y},
            conv_params({2, 2}, {2, 2}, {0, 0}, {0, 0}, 1, b.weights("w", {1, 1, 2, 2}, {1, 2, 3, 4})));
    b.output(y);
    expect_near(run1(b.n, {{"x", host("x", {1, 1, 1, 1}, {2})}}), {2, 4, 6, 8});
  }
  {  // padding 1 crops the full 5x5 output to 3x3
    NetBuilder b;
    TensorId x = b.input("x", {1, 1, 2, 2});
    TensorId y = b.tensor("y", {1, 1, 3, 3});
    b.layer("up", LayerKind::kDeconvolution, {x}, {y},
            conv_params({3, 3}, {2, 2}, {1, 1}, {1, 1}, 1, b.weights("w", {1, 1, 3, 3}, std::vector<float>(9, 1.f))));
    b.output(y);
    expect_near(run1(b.n, {{"x", host("x", {1, 1, 2, 2}, {1, 1, 1, 1})}}), {1, 2, 1, 2, 4, 2, 1, 2, 1});
  }
}

TEST(CudaPooling, MaxAvgPadCeil) {
  SKIP_WITHOUT_CUDA();
  auto pool = [](PoolingType t, Dims w, Dims s, Dims pre, Dims post, bool excl, Dims xd, Dims yd,
                 std::vector<float> xv) {
    NetBuilder b;
    TensorId x = b.input("x", xd);
    TensorId y = b.tensor("y", yd);
    PoolingParams p;
    p.type = t, p.window = w, p.stride = s, p.pre_padding = pre, p.post_padding = post;
    p.average_count_excludes_padding = excl;
    b.layer("pool", LayerKind::kPooling, {x}, {y}, p);
    b.output(y);
    return run1(b.n, {{"x", host("x", xd, xv)}});
  };
  expect_near(pool(PoolingType::kMax, {2, 2}, {2, 2}, {0, 0}, {0, 0}, true, {1, 1, 4, 4}, {1, 1, 2, 2}, iota(16)), {5, 7, 13, 15});
  expect_near(pool(PoolingType::kAverage, {2, 2}, {2, 2}, {0, 0}, {0, 0}, true, {1, 1, 4, 4}, {1, 1, 2, 2}, iota(16)),
              {2.5, 4.5, 10.5, 12.5});
  expect_near(pool(PoolingType::kAverage, {3, 3}, {1, 1}, {1, 1}, {1, 1}, true, {1, 1, 2, 2}, {1, 1, 2, 2}, {1, 2, 3, 4}),
              {2.5, 2.5, 2.5, 2.5});
  float f = 10.f / 9.f;
  expect_near(pool(PoolingType::kAverage, {3, 3}, {1, 1}, {1, 1}, {1, 1}, false, {1, 1, 2, 2}, {1, 1, 2, 2}, {1, 2, 3, 4}),
              {f, f, f, f});
  expect_near(pool(PoolingType::kMax, {2, 2}, {2, 2}, {0, 0}, {1, 1}, true, {1, 1, 3, 3}, {1, 1, 2, 2}, iota(9, 1)), {5, 6, 8, 9});
}

TEST(CudaElementWise, BroadcastAndTypes) {
  SKIP_WITHOUT_CUDA();
  {
    NetBuilder b;
    TensorId x = b.input("a", {1, 2, 1, 3});
    TensorId z = b.input("b", {1, 1, 2, 1});
    TensorId y = b.tensor("y", {1, 2, 2, 3});
    b.layer("add", LayerKind::kElementWise, {x, z}, {y}, ElementWiseParams{ElementWiseOp::kSum});
    b.output(y);
    expect_near(run1(b.n, {{"a", host("a", {1, 2, 1, 3}, iota(6, 1))}, {"b", host("b", {1, 1, 2, 1}, {10, 20})}}),
                {11, 12, 13, 21, 22, 23, 14, 15, 16, 24, 25, 26});
  }
  {
    NetBuilder b;
    TensorId x = b.input("a", {4});
    TensorId z = b.input("b", {1});
    TensorId y = b.tensor("y", {4}, DataType::kBool);
    b.layer("gt", LayerKind::kElementWise, {x, z}, {y}, ElementWiseParams{ElementWiseOp::kGreater});
    b.output(y);
    auto ex = make_cuda_executor(b.n);
    auto out = ex->run({{"a", host("a", {4}, {1, 5, 3, 7})}, {"b", host("b", {1}, {4})}});
    EXPECT_EQ(values<uint8_t>(out.at("y")), (std::vector<uint8_t>{0, 1, 0, 1}));
  }
  {
    NetBuilder b;
    TensorId x = b.input("a", {2}, DataType::kInt64);
    TensorId z = b.input("b", {2}, DataType::kInt64);
    TensorId y = b.tensor("y", {2}, DataType::kInt64);
    TensorId q = b.tensor("q", {2}, DataType::kInt64);
    b.layer("add", LayerKind::kElementWise, {x, z}, {y}, ElementWiseParams{ElementWiseOp::kSum});
    b.layer("fdiv", LayerKind::kElementWise, {x, z}, {q}, ElementWiseParams{ElementWiseOp::kFloorDiv});
    b.output(y);
    b.output(q);
    auto ex = make_cuda_executor(b.n);
    auto out = ex->run({{"a", host_t<int64_t>("a", DataType::kInt64, {2}, {-7, 7})},
                        {"b", host_t<int64_t>("b", DataType::kInt64, {2}, {2, 2})}});
    EXPECT_EQ(values<int64_t>(out.at("y")), (std::vector<int64_t>{-5, 9}));
    EXPECT_EQ(values<int64_t>(out.at("q")), (std::vector<int64_t>{-4, 3}));
  }
  {
    NetBuilder b;
    TensorId x = b.input("a", {2});
    TensorId z = b.input("b", {2});
    TensorId y = b.tensor("y", {2});
    TensorId p = b.tensor("p", {2});
    b.layer("pow", LayerKind::kElementWise, {x, z}, {y}, ElementWiseParams{ElementWiseOp::kPow});
    b.layer("prelu", LayerKind::kParametricReLU, {z, x}, {p});
    b.output(y);
    b.output(p);
    auto ex = make_cuda_executor(b.n);
    auto out = ex->run({{"a", host("a", {2}, {2, 3})}, {"b", host("b", {2}, {3, -2})}});
    expect_near(values(out.at("y")), {8, 1.f / 9.f});
    expect_near(values(out.at("p")), {3, -6});
  }
}

TEST(CudaActivation, AllTypes) {
  SKIP_WITHOUT_CUDA();
  std::vector<float> x = {-2, -0.5f, 0, 0.5f, 2};
  struct Case { ActivationType t; float a, b; std::vector<float> want; };
  std::vector<Case> cases = {
      {ActivationType::kRelu, 0, 0, {0, 0, 0, 0.5f, 2}},
      {ActivationType::kLeakyRelu, 0.1f, 0, {-0.2f, -0.05f, 0, 0.5f, 2}},
      {ActivationType::kClip, -1, 1, {-1, -0.5f, 0, 0.5f, 1}},
      {ActivationType::kHardSigmoid, 0.2f, 0.5f, {0.1f, 0.4f, 0.5f, 0.6f, 0.9f}},
      {ActivationType::kSigmoid, 0, 0, {0.11920292f, 0.37754067f, 0.5f, 0.62245933f, 0.88079708f}},
      {ActivationType::kTanh, 0, 0, {-0.96402758f, -0.46211716f, 0, 0.46211716f, 0.96402758f}},
      {ActivationType::kElu, 1, 0, {-0.86466472f, -0.39346934f, 0, 0.5f, 2}},
      {ActivationType::kSoftsign, 0, 0, {-2.f / 3, -1.f / 3, 0, 1.f / 3, 2.f / 3}},
      {ActivationType::kGeluErf, 0, 0, {-0.04550026f, -0.15426877f, 0, 0.34573123f, 1.95449974f}},
  };
  for (const auto& c : cases) {
    NetBuilder b;
    TensorId in = b.input("x", {5});
    TensorId y = b.tensor("y", {5});
    b.layer("act", LayerKind::kActivation, {in}, {y}, ActivationParams{c.t, c.a, c.b});
    b.output(y);
    SCOPED_TRACE(std::string(to_string(c.t)));
    expect_near(run1(b.n, {{"x", host("x", {5}, x)}}), c.want, 1e-5f);
  }
}

// LearnableAffineBlock (x * 2 + 1) then hard-swish as TensorRT's parser spells it
// (t * clip(t + 3, 0, 6) / 6): two point-wise chains, one kernel each.
TEST(CudaFusion, PointwiseChains) {
  SKIP_WITHOUT_CUDA();
  NetBuilder b;
  TensorId x = b.input("x", {5});
  auto c = [&](const std::string& n, float v) { return b.constant(n, DataType::kFloat, {1}, b.weights(n + "w", {1}, {v})); };
  TensorId two = c("two", 2), one = c("one", 1), three = c("three", 3), six = c("six", 6);
  TensorId t0 = b.tensor("t0", {5}), t = b.tensor("t", {5}), u = b.tensor("u", {5}), v = b.tensor("v", {5}),
           w = b.tensor("w", {5}), y = b.tensor("y", {5});
  b.layer("mul", LayerKind::kElementWise, {x, two}, {t0}, ElementWiseParams{ElementWiseOp::kProd});
  b.layer("add", LayerKind::kElementWise, {t0, one}, {t}, ElementWiseParams{ElementWiseOp::kSum});
  b.layer("add3", LayerKind::kElementWise, {t, three}, {u}, ElementWiseParams{ElementWiseOp::kSum});
  b.layer("clip", LayerKind::kActivation, {u}, {v}, ActivationParams{ActivationType::kClip, 0.f, 6.f});
  b.layer("prod", LayerKind::kElementWise, {t, v}, {w}, ElementWiseParams{ElementWiseOp::kProd});
  b.layer("div", LayerKind::kElementWise, {w, six}, {y}, ElementWiseParams{ElementWiseOp::kDiv});
  b.output(y);
  std::vector<float> want = {0, -1.f / 3, 2.f / 3, 3, 9};
  for (int fuse = 0; fuse < 2; ++fuse) {
    CudaOptions co;
    co.fuse_pointwise = fuse == 1;
    auto ex = make_cuda_executor(b.n, {}, co);
    expect_near(values(ex->run({{"x", host("x", {5}, {-4, -1, 0, 1, 4})}}).at("y")), want);
    auto steps = ex->profile(1);
    if (fuse) {
      ASSERT_EQ(steps.size(), 2u);
      EXPECT_EQ(steps[0].kind, "PointwiseChain2");
      EXPECT_EQ(steps[1].kind, "PointwiseChain4");
    } else {
      EXPECT_EQ(steps.size(), 6u);
    }
  }
}

// A chain reading a convolution's output runs in the convolution's epilogue (also after a fused
// activation), and a chain that uses its own input (hard-swish) after that.
TEST(CudaFusion, ConvEpilogueChains) {
  SKIP_WITHOUT_CUDA();
  {
    NetBuilder b;
    TensorId x = b.input("x", {1, 1, 1, 5});
    auto c = [&](const std::string& n, float v) { return b.constant(n, DataType::kFloat, {1, 1, 1, 1}, b.weights(n + "w", {1, 1, 1, 1}, {v})); };
    TensorId two = c("two", 2), one = c("one", 1), three = c("three", 3), six = c("six", 6);
    Dims d = {1, 1, 1, 5};
    TensorId t0 = b.tensor("t0", d), t1 = b.tensor("t1", d), t = b.tensor("t", d), u = b.tensor("u", d),
             v = b.tensor("v", d), w = b.tensor("w", d), y = b.tensor("y", d);
    b.layer("conv", LayerKind::kConvolution, {x}, {t0},
            conv_params({1, 1}, {1, 1}, {0, 0}, {0, 0}, 1, b.weights("cw", {1, 1, 1, 1}, {1}), b.weights("cb", {1}, {0.5f})));
    b.layer("mul", LayerKind::kElementWise, {t0, two}, {t1}, ElementWiseParams{ElementWiseOp::kProd});
    b.layer("add", LayerKind::kElementWise, {one, t1}, {t}, ElementWiseParams{ElementWiseOp::kSum});
    b.layer("add3", LayerKind::kElementWise, {t, three}, {u}, ElementWiseParams{ElementWiseOp::kSum});
    b.layer("clip", LayerKind::kActivation, {u}, {v}, ActivationParams{ActivationType::kClip, 0.f, 6.f});
    b.layer("prod", LayerKind::kElementWise, {v, t}, {w}, ElementWiseParams{ElementWiseOp::kProd});
    b.layer("div", LayerKind::kElementWise, {w, six}, {y}, ElementWiseParams{ElementWiseOp::kDiv});
    b.output(y);
    std::vector<float> want = {0, -1.f / 3, 2.f / 3, 3, 9};
    for (int fuse = 0; fuse < 2; ++fuse) {
      CudaOptions co;
      co.fuse_pointwise = fuse == 1;
      auto ex = make_cuda_executor(b.n, {}, co);
      expect_near(values(ex->run({{"x", host("x", d, {-4.5f, -1.5f, -0.5f, 0.5f, 3.5f})}}).at("y")), want);
      auto steps = ex->profile(1);
      if (fuse) {
        ASSERT_EQ(steps.size(), 2u);
        EXPECT_EQ(steps[0].kind, "Convolution+PointwiseChain2");
        EXPECT_EQ(steps[1].kind, "PointwiseChain4");
        EXPECT_NE(ex->tactics()[0].tactic.find("epilogue_chain2"), std::string::npos) << ex->tactics()[0].tactic;
      } else {
        EXPECT_EQ(steps.size(), 7u);
      }
    }
  }
  {
    NetBuilder b;
    Dims d = {1, 1, 1, 2};
    TensorId x = b.input("x", d);
    TensorId two = b.constant("two", DataType::kFloat, {1}, b.weights("tw", {1}, {2}));
    TensorId one = b.constant("one", DataType::kFloat, {1}, b.weights("ow", {1}, {1}));
    TensorId t0 = b.tensor("t0", d), r = b.tensor("r", d), t1 = b.tensor("t1", d), y = b.tensor("y", d);
    b.layer("conv", LayerKind::kConvolution, {x}, {t0},
            conv_params({1, 1}, {1, 1}, {0, 0}, {0, 0}, 1, b.weights("cw", {1, 1, 1, 1}, {1})));
    b.layer("relu", LayerKind::kActivation, {t0}, {r}, ActivationParams{ActivationType::kRelu});
    b.layer("mul", LayerKind::kElementWise, {r, two}, {t1}, ElementWiseParams{ElementWiseOp::kProd});
    b.layer("add", LayerKind::kElementWise, {t1, r}, {y}, ElementWiseParams{ElementWiseOp::kSum});
    b.output(y);
    auto ex = make_cuda_executor(b.n, {}, CudaOptions{});
    expect_near(values(ex->run({{"x", host("x", d, {-1, 2})}}).at("y")), {0, 6});  // relu(x) * 2 + relu(x)
    EXPECT_EQ(ex->profile(1).size(), 1u);
  }
}

TEST(CudaScale, ChannelWithPower) {
  SKIP_WITHOUT_CUDA();
  NetBuilder b;
  TensorId x = b.input("x", {1, 2, 1, 2});
  TensorId y = b.tensor("y", {1, 2, 1, 2});
  ScaleParams p;
  p.mode = ScaleMode::kChannel;
  p.scale = b.weights("s", {2}, {2, 3});
  p.shift = b.weights("t", {2}, {1, -1});
  p.power = b.weights("p", {2}, {1, 2});
  b.layer("scale", LayerKind::kScale, {x}, {y}, p);
  b.output(y);
  expect_near(run1(b.n, {{"x", host("x", {1, 2, 1, 2}, {1, 2, 3, 4})}}), {3, 5, 64, 121});
}

TEST(CudaReduce, AvgMaxProd) {
  SKIP_WITHOUT_CUDA();
  auto red = [](ReduceOp op, uint32_t axes, Dims yd) {
    NetBuilder b;
    TensorId x = b.input("x", {1, 2, 2, 2});
    TensorId y = b.tensor("y", yd);
    b.layer("r", LayerKind::kReduce, {x}, {y}, ReduceParams{op, axes, true});
    b.output(y);
    return run1(b.n, {{"x", host("x", {1, 2, 2, 2}, iota(8, 1))}});
  };
  expect_near(red(ReduceOp::kAvg, 0b1100, {1, 2, 1, 1}), {2.5, 6.5});
  expect_near(red(ReduceOp::kMax, 0b0010, {1, 1, 2, 2}), {5, 6, 7, 8});
  expect_near(red(ReduceOp::kProd, 0b1000, {1, 2, 2, 1}), {2, 12, 30, 56});
  expect_near(red(ReduceOp::kSum, 0b1111, {1, 1, 1, 1}), {36});
}

TEST(CudaResize, NearestAndLinear) {
  SKIP_WITHOUT_CUDA();
  auto rs = [](ResizeMode m, ResizeCoordinateTransform t, Dims xd, Dims yd, std::vector<float> scales,
               std::vector<float> xv) {
    NetBuilder b;
    TensorId x = b.input("x", xd);
    TensorId y = b.tensor("y", yd);
    ResizeParams p;
    p.mode = m, p.transform = t, p.scales = scales;
    p.rounding = ResizeRounding::kFloor;
    b.layer("rs", LayerKind::kResize, {x}, {y}, p);
    b.output(y);
    return run1(b.n, {{"x", host("x", xd, xv)}});
  };
  expect_near(rs(ResizeMode::kNearest, ResizeCoordinateTransform::kAsymmetric, {1, 1, 2, 2}, {1, 1, 4, 4}, {1, 1, 2, 2}, {1, 2, 3, 4}),
              {1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4});
  expect_near(rs(ResizeMode::kLinear, ResizeCoordinateTransform::kHalfPixel, {1, 1, 1, 2}, {1, 1, 1, 4}, {1, 1, 1, 2}, {1, 2}),
              {1, 1.25f, 1.75f, 2});
  expect_near(rs(ResizeMode::kLinear, ResizeCoordinateTransform::kAlignCorners, {1, 1, 1, 2}, {1, 1, 1, 3}, {}, {1, 2}),
              {1, 1.5f, 2});
}

TEST(CudaConcat, Axes) {
  SKIP_WITHOUT_CUDA();
  {
    NetBuilder b;
    TensorId x = b.input("a", {1, 1, 2});
    TensorId z = b.input("b", {1, 2, 2});
    TensorId y = b.tensor("y", {1, 3, 2});
    b.layer("cat", LayerKind::kConcatenation, {x, z}, {y}, ConcatenationParams{1});
    b.output(y);
    expect_near(run1(b.n, {{"a", host("a", {1, 1, 2}, {1, 2})}, {"b", host("b", {1, 2, 2}, {3, 4, 5, 6})}}), {1, 2, 3, 4, 5, 6});
  }
  {
    NetBuilder b;
    TensorId x = b.input("a", {1, 2, 1});
    TensorId z = b.input("b", {1, 2, 2});
    TensorId y = b.tensor("y", {1, 2, 3});
    b.layer("cat", LayerKind::kConcatenation, {x, z}, {y}, ConcatenationParams{2});
    b.output(y);
    expect_near(run1(b.n, {{"a", host("a", {1, 2, 1}, {1, 2})}, {"b", host("b", {1, 2, 2}, {3, 4, 5, 6})}}), {1, 3, 4, 2, 5, 6});
  }
}

TEST(CudaSlice, StridedFillReverse) {
  SKIP_WITHOUT_CUDA();
  auto sl = [](Dims xd, std::vector<float> xv, Dims start, Dims size, Dims stride, SliceMode m, float fill) {
    NetBuilder b;
    TensorId x = b.input("x", xd);
    TensorId y = b.tensor("y", size);
    SliceParams p;
    p.start = start, p.size = size, p.stride = stride, p.mode = m, p.fill_value = fill;
    b.layer("sl", LayerKind::kSlice, {x}, {y}, p);
    b.output(y);
    return run1(b.n, {{"x", host("x", xd, xv)}});
  };
  expect_near(sl({1, 1, 4, 4}, iota(16), {0, 0, 1, 0}, {1, 1, 2, 2}, {1, 1, 2, 3}, SliceMode::kDefault, 0), {4, 7, 12, 15});
  expect_near(sl({1, 1, 1, 3}, {1, 2, 3}, {0, 0, 0, -1}, {1, 1, 1, 5}, {1, 1, 1, 1}, SliceMode::kFill, 9), {9, 1, 2, 3, 9});
  expect_near(sl({1, 1, 1, 3}, {1, 2, 3}, {0, 0, 0, 2}, {1, 1, 1, 3}, {1, 1, 1, -1}, SliceMode::kDefault, 0), {3, 2, 1});
}

TEST(CudaShuffle, TransposeReshape) {
  SKIP_WITHOUT_CUDA();
  auto sh = [](ShuffleParams p, Dims yd) {
    NetBuilder b;
    TensorId x = b.input("x", {1, 2, 3});
    TensorId y = b.tensor("y", yd);
    b.layer("sh", LayerKind::kShuffle, {x}, {y}, p);
    b.output(y);
    return run1(b.n, {{"x", host("x", {1, 2, 3}, iota(6))}});
  };
  ShuffleParams a;
  a.first_transpose = {0, 2, 1};
  a.reshape = Dims{6};
  expect_near(sh(a, {6}), {0, 3, 1, 4, 2, 5});
  ShuffleParams c;
  c.reshape = Dims{1, 3, 2};
  c.second_transpose = {0, 2, 1};
  expect_near(sh(c, {1, 2, 3}), {0, 2, 4, 1, 3, 5});
  ShuffleParams d;
  d.first_transpose = {0, 2, 1};
  d.reshape = Dims{1, 2, 3};
  d.second_transpose = {0, 2, 1};
  expect_near(sh(d, {1, 3, 2}), {0, 4, 3, 2, 1, 5});
  ShuffleParams e;
  e.reshape = Dims{3, 2};
  expect_near(sh(e, {3, 2}), iota(6));
}

TEST(CudaSoftMax, Axis) {
  SKIP_WITHOUT_CUDA();
  NetBuilder b;
  TensorId x = b.input("x", {1, 2, 2});
  TensorId y = b.tensor("y", {1, 2, 2});
  b.layer("sm", LayerKind::kSoftMax, {x}, {y}, SoftMaxParams{1u << 1});
  b.output(y);
  float l3 = std::log(3.f);
  expect_near(run1(b.n, {{"x", host("x", {1, 2, 2}, {0, 0, l3, 0})}}), {0.25f, 0.5f, 0.75f, 0.5f});
}

TEST(CudaMatMul, PlainTransposedBatched) {
  SKIP_WITHOUT_CUDA();
  auto mm = [](Dims ad, std::vector<float> av, MatrixOp oa, Dims bd, std::vector<float> bv, MatrixOp ob, Dims yd) {
    NetBuilder b;
    TensorId x = b.input("a", ad);
    TensorId w = b.constant("b", DataType::kFloat, bd, b.weights("bw", bd, bv));
    TensorId y = b.tensor("y", yd);
    b.layer("mm", LayerKind::kMatrixMultiply, {x, w}, {y}, MatrixMultiplyParams{oa, ob});
    b.output(y);
    return run1(b.n, {{"a", host("a", ad, av)}});
  };
  std::vector<float> want = {58, 64, 139, 154};
  expect_near(mm({2, 3}, {1, 2, 3, 4, 5, 6}, MatrixOp::kNone, {3, 2}, {7, 8, 9, 10, 11, 12}, MatrixOp::kNone, {2, 2}), want);
  expect_near(mm({3, 2}, {1, 4, 2, 5, 3, 6}, MatrixOp::kTranspose, {3, 2}, {7, 8, 9, 10, 11, 12}, MatrixOp::kNone, {2, 2}), want);
  expect_near(mm({2, 3}, {1, 2, 3, 4, 5, 6}, MatrixOp::kNone, {2, 3}, {7, 9, 11, 8, 10, 12}, MatrixOp::kTranspose, {2, 2}), want);
  expect_near(mm({2, 2, 3}, {1, 2, 3, 4, 5, 6, 2, 4, 6, 8, 10, 12}, MatrixOp::kNone, {3, 2}, {7, 8, 9, 10, 11, 12},
                 MatrixOp::kNone, {2, 2, 2}),
              {58, 64, 139, 154, 116, 128, 278, 308});
}

TEST(CudaMatMul, RandomAgainstNaive) {
  SKIP_WITHOUT_CUDA();
  const int M = 33, K = 47, N = 29;
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> av(M * K), bv(K * N);
  for (auto& v : av) v = u(rng);
  for (auto& v : bv) v = u(rng);
  NetBuilder b;
  TensorId x = b.input("a", {M, K});
  TensorId z = b.input("b", {K, N});
  TensorId y = b.tensor("y", {M, N});
  b.layer("mm", LayerKind::kMatrixMultiply, {x, z}, {y}, MatrixMultiplyParams{});
  b.output(y);
  auto got = run1(b.n, {{"a", host("a", {M, K}, av)}, {"b", host("b", {K, N}, bv)}});
  std::vector<float> want(M * N);
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j) {
      double acc = 0;
      for (int k = 0; k < K; ++k) acc += double(av[i * K + k]) * bv[k * N + j];
      want[i * N + j] = float(acc);
    }
  expect_near(got, want, 1e-5f);  // FP32, TF32 off: far under TF32's ~1e-3
}

TEST(CudaGather, Int32Int64) {
  SKIP_WITHOUT_CUDA();
  {
    NetBuilder b;
    TensorId x = b.input("x", {1, 3, 2});
    TensorId i = b.constant("i", DataType::kInt32, {2}, b.weights_t<int32_t>("iw", DataType::kInt32, {2}, {2, 0}));
    TensorId y = b.tensor("y", {1, 2, 2});
    b.layer("g", LayerKind::kGather, {x, i}, {y}, GatherParams{1});
    b.output(y);
    expect_near(run1(b.n, {{"x", host("x", {1, 3, 2}, iota(6, 1))}}), {5, 6, 1, 2});
  }
  {
    NetBuilder b;
    TensorId x = b.input("x", {1, 3, 2});
    TensorId i = b.constant("i", DataType::kInt64, {1}, b.weights_t<int64_t>("iw", DataType::kInt64, {1}, {-1}));
    TensorId y = b.tensor("y", {1, 1, 2});
    b.layer("g", LayerKind::kGather, {x, i}, {y}, GatherParams{1});
    b.output(y);
    expect_near(run1(b.n, {{"x", host("x", {1, 3, 2}, iota(6, 1))}}), {5, 6});
  }
}

TEST(CudaCastSelectUnary, Values) {
  SKIP_WITHOUT_CUDA();
  NetBuilder b;
  TensorId x = b.input("x", {3});
  TensorId xi = b.tensor("xi", {3}, DataType::kInt32);
  b.layer("cast", LayerKind::kCast, {x}, {xi}, CastParams{DataType::kInt32});
  TensorId c = b.input("c", {3}, DataType::kBool);
  TensorId ten = b.constant("ten", DataType::kFloat, {1}, b.weights("tw", {1}, {10}));
  TensorId sel = b.tensor("sel", {3});
  b.layer("select", LayerKind::kSelect, {c, x, ten}, {sel});
  TensorId sq = b.tensor("abs", {3});
  b.layer("abs", LayerKind::kUnary, {x}, {sq}, UnaryParams{UnaryOp::kAbs});
  TensorId ex = b.tensor("exp", {3});
  b.layer("exp", LayerKind::kUnary, {sq}, {ex}, UnaryParams{UnaryOp::kSqrt});
  TensorId id = b.tensor("id", {3});
  b.layer("identity", LayerKind::kIdentity, {x}, {id});
  b.output(xi);
  b.output(sel);
  b.output(ex);
  b.output(id);
  auto e = make_cuda_executor(b.n);
  auto out = e->run({{"x", host("x", {3}, {1.7f, -4.f, 9.f})},
                     {"c", host_t<uint8_t>("c", DataType::kBool, {3}, {1, 0, 1})}});
  EXPECT_EQ(values<int32_t>(out.at("xi")), (std::vector<int32_t>{1, -4, 9}));
  expect_near(values(out.at("sel")), {1.7f, 10, 9});
  expect_near(values(out.at("exp")), {std::sqrt(1.7f), 2, 3});
  expect_near(values(out.at("id")), {1.7f, -4, 9});
}

TEST(CudaNormalization, Instance) {
  SKIP_WITHOUT_CUDA();
  NetBuilder b;
  TensorId x = b.input("x", {1, 1, 2, 2});
  TensorId s = b.constant("s", DataType::kFloat, {1, 1, 1, 1}, b.weights("sw", {1, 1, 1, 1}, {2}));
  TensorId t = b.constant("t", DataType::kFloat, {1, 1, 1, 1}, b.weights("tw", {1, 1, 1, 1}, {1}));
  TensorId y = b.tensor("y", {1, 1, 2, 2});
  NormalizationParams p;
  p.axes = 0b1100;
  p.epsilon = 1e-5f;
  b.layer("in", LayerKind::kNormalization, {x, s, t}, {y}, p);
  b.output(y);
  float r = 1.f / std::sqrt(1.25f + 1e-5f);
  expect_near(run1(b.n, {{"x", host("x", {1, 1, 2, 2}, {1, 2, 3, 4})}}),
              {-1.5f * r * 2 + 1, -0.5f * r * 2 + 1, 0.5f * r * 2 + 1, 1.5f * r * 2 + 1}, 1e-5f);
}

TEST(CudaNumerics, Fp16AndInt8Emulation) {
  SKIP_WITHOUT_CUDA();
  NetBuilder b;
  TensorId x = b.input("x", {2});
  TensorId y = b.tensor("y", {2});
  b.layer("relu", LayerKind::kActivation, {x}, {y}, ActivationParams{ActivationType::kRelu});
  b.output(y);
  ExecOptions o;
  o.numerics.layer_precision = {Precision::kFP16};
  expect_near(run1(b.n, {{"x", host("x", {2}, {0.1f, 3.f})}}, o), {0.0999755859375f, 3.f}, 1e-7f);
  o.numerics.layer_precision = {Precision::kINT8};
  o.numerics.tensor_scales = {{"x", 0.1f}, {"y", 0.1f}};
  expect_near(run1(b.n, {{"x", host("x", {2}, {0.26f, -0.3f})}}, o), {0.3f, 0.f}, 1e-6f);
  o.numerics.tensor_scales = {{"x", 0.1f}};
  EXPECT_THROW(make_cuda_executor(b.n, o), Error);  // y has no scale
}

TEST(CudaExecutor, ErrorsNameTheLayerAndInput) {
  SKIP_WITHOUT_CUDA();
  NetBuilder b;
  TensorId x = b.input("x", {1, 1, 2, 2});
  TensorId y = b.tensor("y", {1, 1, 4, 4});
  ResizeParams p;
  p.mode = ResizeMode::kCubic;
  b.layer("my_cubic_resize", LayerKind::kResize, {x}, {y}, p);
  b.output(y);
  try {
    make_cuda_executor(b.n);
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("my_cubic_resize"), std::string::npos) << e.what();
  }
  NetBuilder c;
  TensorId cx = c.input("the_input", {2});
  TensorId cy = c.tensor("y", {2});
  c.layer("relu", LayerKind::kActivation, {cx}, {cy}, ActivationParams{});
  c.output(cy);
  auto ex = make_cuda_executor(c.n);
  try {
    ex->run({});
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("the_input"), std::string::npos) << e.what();
  }
  EXPECT_THROW(ex->run({{"the_input", host("the_input", {3}, {1, 2, 3})}}), Error);
}

TEST(CudaExecutor, ArenaReuseGraphKeepAll) {
  SKIP_WITHOUT_CUDA();
  NetBuilder b;
  Dims d = {1, 16, 64, 64};
  TensorId cur = b.input("x", d);
  for (int i = 0; i < 8; ++i) {
    TensorId nx = b.tensor("t" + std::to_string(i), d);
    b.layer("act" + std::to_string(i), LayerKind::kActivation, {cur}, {nx},
            ActivationParams{ActivationType::kLeakyRelu, 0.5f});
    cur = nx;
  }
  b.output(cur);
  int64_t n = volume(d);
  size_t bytes = size_t(n) * 4;
  auto ex = make_cuda_executor(b.n, {}, CudaOptions{});
  EXPECT_LE(ex->arena_bytes(), 3 * bytes) << "liveness planning should reuse buffers";
  std::vector<float> xv(n, -1.f), xv2(n, 2.f);
  auto o1 = values(ex->run({{"x", host("x", d, xv)}}).at("t7"));
  EXPECT_TRUE(ex->using_cuda_graph());
  auto o2 = values(ex->run({{"x", host("x", d, xv2)}}).at("t7"));
  EXPECT_FLOAT_EQ(o1[123], -1.f / 256.f);
  EXPECT_FLOAT_EQ(o2[123], 2.f);
  auto times = ex->time_device(5);
  EXPECT_EQ(times.size(), 5u);
  auto all = make_cuda_executor(b.n, {}, true);
  all->run({{"x", host("x", d, xv)}});
  ASSERT_TRUE(all->all_tensors().count("t3"));
  EXPECT_FLOAT_EQ(values(all->all_tensors().at("t3"))[7], -1.f / 16.f);
}
