#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <iterator>
#include <random>

#include "tandem/quant.h"

using namespace tandem;

static int entropy_reference(const std::vector<double>& counts, int levels = 128, int start = 128);
static int entropy_reference_bin(const std::vector<double>& counts) { return entropy_reference(counts); }

TEST(Entropy, FarOutlierIsCut) {
  // Body: bins 0..127 with alternating counts 100 / 1100; one outlier in bin 2047.
  // - Threshold i = 128: each of the 128 levels holds exactly one bin, so Q equals the body
  //   exactly; the only difference is the outlier mass (1 count in ~76800) clipped into P[127]:
  //   KL ~ 1e-5.
  // - 128 < i < 2048: bin i-1 is empty, so Q[i-1] = 0 while P[i-1] holds the clipped outlier:
  //   KL = infinity.
  // - i = 2048 (keep everything): 16 bins per level, so each level averages 8 pairs of
  //   100 / 1100 into 600 and Q loses the alternation: KL ~ 0.4.
  // So the best threshold is 128 bins: amax = (128 + 0.5) * bin_width (EntropyCalibration2's
  // threshold is the middle of the first bin left out), and the outlier is cut.
  std::vector<double> c(2048, 0.0);
  for (int j = 0; j < 128; ++j) c[j] = (j % 2) ? 1100 : 100;
  c[2047] = 1;
  EXPECT_EQ(entropy_threshold_bin(c), 128);
  Histogram h;
  h.init(2048, 20.48);  // bin width 0.01
  h.counts = c;
  EXPECT_NEAR(entropy_amax(h), 1.285, 1e-9);
}

// ---- Facts from caches TensorRT wrote (values typed in here, not copied files) ------------------
// A scale line decodes to amax = scale * 127. For a tensor whose maximum |x| is 1 (an image in
// [0, 1], a sigmoid output), EntropyCalibration2's amax is (k + 0.5) / 2048 for the chosen bin count
// k: the scales below are bit for bit float(float((k + 0.5) / 2048) / 127).
namespace {
float hex_scale(const char* hex) {
  return parse_calibration_cache(std::string("TRT-8601-EntropyCalibration2\nt: ") + hex + "\n", "fact")
      .scales[0].second;
}
std::string amax_hex(double amax) { return scale_to_hex(float(amax) / 127.f); }
}  // namespace

TEST(TensorRTCaches, LinesAreHalfBinThresholds) {
  // TRT-8601-EntropyCalibration2, YOLOv8 with inputs in [0, 1], published in
  // https://github.com/ultralytics/ultralytics/issues/14121 (comment of 2024-07-30):
  //   images: 3b66eddc   169: 3c010a14   180: 3c00f9f4   (172 and 190 are also 3c010a14)
  EXPECT_NEAR(double(hex_scale("3b66eddc")) * 127 * 2048, 916.5, 1e-4);
  EXPECT_NEAR(double(hex_scale("3c010a14")) * 127 * 2048, 2048.5, 1e-4);  // full range + half a bin
  EXPECT_NEAR(double(hex_scale("3c00f9f4")) * 127 * 2048, 2047.5, 1e-4);
  EXPECT_EQ(amax_hex(916.5 / 2048), "3b66eddc");
  EXPECT_EQ(amax_hex(2048.5 / 2048), "3c010a14");
  EXPECT_EQ(amax_hex(2047.5 / 2048), "3c00f9f4");
  // TRT-8600-EntropyCalibration2, NVIDIA-AI-IOT/cuDLA-samples data/model/qat2ptq.cache (YOLOv5,
  // input in [0, 1]): images: 3c00f9f4, the same 2047.5 / 2048.
  EXPECT_NEAR(double(hex_scale("3c00f9f4")) * 127, 0.99976, 1e-5);
}

namespace {
// A histogram whose entropy argmin is exactly k bins: the body (bins 0..k-1) is constant within
// each of the 128 levels k bins merge into, alternating 100 / 1100 from level to level, so at i = k
// the merged Q equals P except for one outlier count in the last bin; any other i either breaks
// the levels (a smaller i also piles the body's tail into P[i-1]) or has an empty P[i-1] with a
// tail (infinite), and i = 2048 averages the alternation away.
std::vector<double> argmin_at(int k) {
  std::vector<double> c(2048, 0.0);
  for (int j = 0; j < k; ++j) c[j] = ((int64_t(j) * 128 / k) % 2) ? 1100 : 100;
  c[2047] += 1;
  return c;
}
}  // namespace

TEST(TensorRTCaches, EntropyChoosesTheSameHalfBin) {
  // Given such histograms over [0, 1] (max |x| = 1), tandem writes exactly the lines of the
  // TensorRT caches above.
  for (auto [k, hex] : {std::pair{916, "3b66eddc"}, std::pair{2047, "3c00f9f4"}}) {
    Histogram h;
    h.init(2048, 1.0);
    h.counts = argmin_at(k);
    EXPECT_EQ(entropy_threshold_bin(h.counts), k);
    EXPECT_EQ(entropy_threshold_bin(h.counts), entropy_reference_bin(h.counts));
    EXPECT_EQ(amax_hex(entropy_amax(h)), hex) << "k = " << k;
  }
  // A flat histogram keeps the whole range: 2048.5 / 2048, TensorRT's 3c010a14.
  Histogram flat;
  flat.init(2048, 1.0);
  flat.counts.assign(2048, 50.0);
  EXPECT_EQ(amax_hex(entropy_amax(flat)), "3c010a14");
}

// The definition, computed directly (O(i) per candidate), to check the prefix-sum version.
static int entropy_reference(const std::vector<double>& counts, int levels, int start) {
  const int n = int(counts.size());
  std::vector<double> bins = counts;
  bins[0] = bins[1];
  double best = INFINITY;
  int best_i = n;
  for (int i = start; i <= n; ++i) {
    std::vector<double> p(bins.begin(), bins.begin() + i), q(i, 0.0), gm(levels, 0.0), gn(levels, 0.0);
    for (int j = i; j < n; ++j) p[i - 1] += bins[j];
    for (int j = 0; j < i; ++j)
      if (bins[j] > 0) { gm[j * levels / i] += bins[j]; gn[j * levels / i] += 1; }
    for (int j = 0; j < i; ++j)
      if (bins[j] > 0) q[j] = gm[j * levels / i] / gn[j * levels / i];
    double ps = 0, qs = 0, kl = 0;
    for (int j = 0; j < i; ++j) { ps += p[j]; qs += q[j]; }
    for (int j = 0; j < i; ++j) {
      if (p[j] <= 0) continue;
      if (q[j] <= 0) { kl = INFINITY; break; }
      kl += p[j] / ps * std::log((p[j] / ps) / (q[j] / qs));
    }
    if (kl <= best + 1e-12) { best = std::min(best, kl); best_i = i; }
  }
  return best_i;
}

TEST(Entropy, MatchesTheDirectDefinition) {
  std::mt19937 rng(3);
  for (int trial = 0; trial < 6; ++trial) {
    std::vector<double> c(2048, 0.0);
    std::exponential_distribution<double> e(1.0 / (40 + 60 * trial));
    for (int k = 0; k < 50000; ++k) {
      int b = int(e(rng));
      if (b < 2048) c[b] += 1;
    }
    if (trial % 2) c[2047] += 3;  // an outlier
    EXPECT_EQ(entropy_threshold_bin(c), entropy_reference(c)) << "trial " << trial;
  }
}

TEST(Entropy, KeepsTheFullRangeWhenNothingIsGainedByClipping) {
  // A flat histogram over all 2048 bins: every level spreads its mass evenly, Q == P at i = 2048
  // (KL = 0), while any smaller i piles the tail into the last bin. The last argmin is 2048.
  std::vector<double> c(2048, 50.0);
  EXPECT_EQ(entropy_threshold_bin(c), 2048);
}

TEST(Entropy, GaussianClipsTheTail) {
  std::mt19937 rng(1);
  std::normal_distribution<float> n(0.f, 1.f);
  std::vector<float> x(200000);
  for (auto& v : x) v = n(rng);
  x[0] = 40.f;  // a single far outlier sets the histogram range
  Histogram h;
  h.init(2048, 40.0);
  h.add(x.data(), x.size());
  double amax = entropy_amax(h);
  EXPECT_GT(amax, 2.0);
  EXPECT_LT(amax, 8.0);
}

TEST(MinMaxPercentile, KnownData) {
  // 1..10000 (and their negatives): max |x| = 10000, the 99.99th percentile of |x| ~ 9999.
  std::vector<float> x;
  for (int i = 1; i <= 10000; ++i) { x.push_back(float(i)); x.push_back(-float(i)); }
  Histogram h;
  h.init(2048, 10000.0);
  h.add(x.data(), x.size());
  // The lower edge of the bin holding the percentile (pytorch-quantization, ONNX Runtime):
  // 9999 lies in bin floor(9999 / (10000 / 2048)) = 2047, whose lower edge is 2047 * 4.8828125.
  double p = percentile_amax(h, 99.99);
  EXPECT_NEAR(p, 2047 * h.bin_width(), 1e-9);
  EXPECT_LE(p, 9999.0);
  EXPECT_GE(p, 9999.0 - h.bin_width());           // within one bin below
  EXPECT_NEAR(percentile_amax(h, 50.0), 5000.0, h.bin_width() + 1e-6);
  EXPECT_NEAR(percentile_amax(h, 100.0), 2047 * h.bin_width(), 1e-6);  // as the references
  double total = 0;
  for (double v : h.counts) total += v;
  EXPECT_EQ(total, 20000.0);
}

namespace {
// x -> concat(a = relu(x), b = x * 3 via scale) and a pooling after: to check tying.
Network concat_net(Precision p) {
  Network net;
  auto T = [&](const char* n) {
    Tensor t;
    t.name = n;
    t.dims = {1, 2, 2, 2};
    return net.add_tensor(t);
  };
  TensorId x = T("x"), a = T("a"), b = T("b"), c = T("c"), d = T("d"), e = T("e");
  net.tensors[x].is_input = true;
  net.inputs = {x};
  net.tensors[c].dims = {1, 4, 2, 2};
  net.tensors[d].dims = {1, 4, 1, 1};
  net.tensors[e].dims = {1, 4, 1, 1};
  Layer l1; l1.name = "relu"; l1.kind = LayerKind::kActivation; l1.params = ActivationParams{};
  l1.inputs = {x}; l1.outputs = {a}; net.add_layer(l1);
  Layer l2; l2.name = "neg"; l2.kind = LayerKind::kUnary; l2.params = UnaryParams{UnaryOp::kNeg};
  l2.inputs = {x}; l2.outputs = {b}; net.add_layer(l2);
  Layer l3; l3.name = "cat"; l3.kind = LayerKind::kConcatenation; l3.params = ConcatenationParams{1};
  l3.inputs = {a, b}; l3.outputs = {c}; net.add_layer(l3);
  Layer l4; l4.name = "pool"; l4.kind = LayerKind::kPooling;
  PoolingParams pp; pp.window = {2, 2}; pp.stride = {2, 2}; pp.pre_padding = {0, 0}; pp.post_padding = {0, 0};
  l4.params = pp; l4.inputs = {c}; l4.outputs = {d}; net.add_layer(l4);
  Layer l5; l5.name = "sum"; l5.kind = LayerKind::kElementWise; l5.params = ElementWiseParams{};
  l5.inputs = {d, d}; l5.outputs = {e}; net.add_layer(l5);
  net.outputs = {e};
  net.tensors[e].is_output = true;
  (void)p;
  return net;
}
}  // namespace

TEST(Tying, ConcatPoolElementwise) {
  Network net = concat_net(Precision::kINT8);
  std::vector<Precision> prec(net.layers.size(), Precision::kINT8);
  std::map<std::string, float> r = {{"x", 2.f}, {"a", 1.f}, {"b", 3.f}, {"c", 2.5f}, {"d", 0.5f}, {"e", 7.f}};
  auto t = tie_ranges(net, prec, r);
  // As TensorRT: Concat inputs take the output's range and the pooling output its input's, so
  // a, b (inputs), c (output) and d (pooling output) all get c's 2.5: a is coarsened (1 -> 2.5),
  // b clipped (3 -> 2.5); the group's value comes from its source c, not the largest member b.
  EXPECT_EQ(t["a"], 2.5f);
  EXPECT_EQ(t["b"], 2.5f);
  EXPECT_EQ(t["c"], 2.5f);
  EXPECT_EQ(t["d"], 2.5f);
  EXPECT_EQ(t["x"], 2.f);
  EXPECT_EQ(t["e"], 7.f);
  EXPECT_EQ(tie_ranges(net, prec, t), t);  // tying a tied map changes nothing
  auto coarse = coarsened_ranges(r, t, 2.f);
  ASSERT_EQ(coarse.size(), 2u);  // d 0.5 -> 2.5 (5x), a 1 -> 2.5 (2.5x)
  EXPECT_EQ(coarse[0].tensor, "d");
  EXPECT_EQ(coarse[1].tensor, "a");
  EXPECT_EQ(coarsened_ranges(r, t).size(), 1u);  // more than 4x: d only
  // Only INT8 layers tie: with the concat in FP16 nothing of a / b / c changes.
  prec[2] = Precision::kFP16;
  auto u = tie_ranges(net, prec, r);
  EXPECT_EQ(u["a"], 1.f);
  EXPECT_EQ(u["b"], 3.f);
  EXPECT_EQ(u["c"], 2.5f);
  EXPECT_EQ(u["d"], 2.5f);  // pooling still gives d its input's range
}

TEST(Tying, PoolingOutputFromItsInputEvenWhenLarger) {
  // A pooling output calibrated larger than its input (it cannot be, but a cache may say so)
  // still takes the input's range: the input is the source.
  Network net = concat_net(Precision::kINT8);
  std::vector<Precision> prec(net.layers.size(), Precision::kUnset);
  prec[3] = Precision::kINT8;  // the pooling only
  auto t = tie_ranges(net, prec, {{"c", 2.f}, {"d", 5.f}});
  EXPECT_EQ(t["c"], 2.f);
  EXPECT_EQ(t["d"], 2.f);
}

TEST(Tying, ElementWiseWithAConstantIsNotTied) {
  // y = x * c with c a Constant (through a reshape): TensorRT makes this a Scale layer, so c keeps
  // its own range; tying it to x (range 50) would round c = 1/6 to 0 with scale 50/127.
  Network net;
  auto T = [&](const char* n, Dims d) {
    Tensor t;
    t.name = n;
    t.dims = d;
    return net.add_tensor(t);
  };
  TensorId x = T("x", {1, 2, 1, 1}), c0 = T("c0", {2}), c = T("c", {1, 2, 1, 1}), y = T("y", {1, 2, 1, 1});
  net.tensors[x].is_input = true;
  net.inputs = {x};
  Weights w;
  w.name = "w";
  w.dims = {2};
  w.bytes.assign(8, 0);
  WeightsId wi = net.add_weights(w);
  Layer k; k.name = "const"; k.kind = LayerKind::kConstant; k.params = ConstantParams{wi}; k.outputs = {c0}; net.add_layer(k);
  Layer r; r.name = "reshape"; r.kind = LayerKind::kShuffle; ShuffleParams sp; sp.reshape = Dims{1, 2, 1, 1};
  r.params = sp; r.inputs = {c0}; r.outputs = {c}; net.add_layer(r);
  Layer m; m.name = "mul"; m.kind = LayerKind::kElementWise; m.params = ElementWiseParams{ElementWiseOp::kProd};
  m.inputs = {x, c}; m.outputs = {y}; net.add_layer(m);
  std::vector<Precision> prec = {Precision::kUnset, Precision::kUnset, Precision::kINT8};
  auto t = tie_ranges(net, prec, {{"x", 50.f}, {"c", 1.f / 6}, {"y", 8.f}});
  EXPECT_EQ(t["x"], 50.f);
  EXPECT_EQ(t["c"], 1.f / 6);
}

TEST(Tying, NumericsNeedsEveryInt8Tensor) {
  Network net = concat_net(Precision::kINT8);
  Plan plan;
  plan.layers.resize(net.layers.size());
  for (auto& l : plan.layers) l.precision = Precision::kINT8;
  std::map<std::string, float> s = {{"x", 2.f / 127}, {"a", 1.f / 127}, {"b", 3.f / 127}, {"c", 2.5f / 127},
                                    {"d", 0.5f / 127}, {"e", 7.f / 127}};
  Numerics n = make_numerics(net, plan, s);
  EXPECT_EQ(n.tensor_scales.at("x"), 2.f / 127);  // untied scales stay bit exact
  EXPECT_FLOAT_EQ(n.tensor_scales.at("a"), 2.5f / 127);
  EXPECT_FLOAT_EQ(n.tensor_scales.at("d"), 2.5f / 127);
  s.erase("b");
  try {
    make_numerics(net, plan, s);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'b'"), std::string::npos);
  }
}

TEST(Names, AlgorithmsAndHeaders) {
  CalibAlgorithm a;
  ASSERT_TRUE(parse_calib_algorithm("percentile", &a));
  EXPECT_EQ(a, CalibAlgorithm::kPercentile);
  EXPECT_FALSE(parse_calib_algorithm("kl", &a));
  EXPECT_EQ(cache_algorithm_name(CalibAlgorithm::kEntropy), "EntropyCalibration2");
  EXPECT_EQ(cache_algorithm_name(CalibAlgorithm::kMinMax), "MinMaxCalibration");
}

// ---- the vectorized statistics against their one-value-at-a-time definitions --------------
namespace {
// Histogram::add as defined in quant.h, one value at a time (the loop the driver ran before it
// was vectorized).
std::vector<double> histogram_reference(const std::vector<float>& x, int nb, double max_abs) {
  std::vector<double> c(size_t(nb), 0.0);
  if (max_abs <= 0) {
    c[0] = double(x.size());
    return c;
  }
  const double inv = double(nb) / max_abs;
  for (float v : x) {
    const double a = std::fabs(double(v));
    if (!std::isfinite(a)) continue;
    const double pos = a * inv;
    c[pos >= double(nb - 1) ? size_t(nb - 1) : size_t(pos)] += 1.0;
  }
  return c;
}

// Values that sit on and next to every bin edge, zeros runs, negatives, inf, NaN, denormals,
// values above max_abs, plus random ones; n is not a multiple of any vector or chunk length.
std::vector<float> awkward_values(int nb, double max_abs, size_t n_random, uint32_t seed) {
  std::vector<float> x;
  for (int k = 0; k <= nb + 2; ++k) {
    const float edge = float(double(k) * max_abs / nb);
    x.push_back(edge);
    x.push_back(-std::nextafter(edge, 0.f));
    x.push_back(std::nextafter(edge, INFINITY));
  }
  for (int i = 0; i < 37; ++i) x.push_back(0.f);
  const float odd[] = {INFINITY, -INFINITY, NAN, -NAN, 1e-45f, -1e-40f, 3e38f, -3e38f, float(max_abs), float(2 * max_abs)};
  x.insert(x.end(), std::begin(odd), std::end(odd));
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.f, float(max_abs) / 3);
  for (size_t i = 0; i < n_random; ++i) x.push_back(i % 5 == 0 ? 0.f : g(rng));
  return x;
}
}  // namespace

TEST(Histogram, VectorizedAddCountsAsTheDefinition) {
  for (int nb : {2048, 7, 1}) {
    for (double max_abs : {1.0, 2.7182818284590451, 1e-3, 0.0}) {
      const std::vector<float> x = awkward_values(nb, max_abs > 0 ? max_abs : 1.0, 5003, uint32_t(nb));
      Histogram h;
      h.init(nb, max_abs);
      h.add(x.data(), x.size());
      h.add(x.data() + 1, 3);  // a second call adds to the counts
      std::vector<double> want = histogram_reference(x, nb, max_abs);
      const std::vector<double> more = histogram_reference({x.begin() + 1, x.begin() + 4}, nb, max_abs);
      for (int b = 0; b < nb; ++b) want[size_t(b)] += more[size_t(b)];
      ASSERT_EQ(h.counts.size(), want.size());
      for (int b = 0; b < nb; ++b)
        ASSERT_EQ(h.counts[size_t(b)], want[size_t(b)]) << "bins " << nb << ", max " << max_abs << ", bin " << b;
    }
  }
  // Hand-worked: 4 bins over [0, 2]: 0.5 is bin 1's lower edge, 1.99 and 5 land in bin 3,
  // inf and NaN are not counted.
  Histogram h;
  h.init(4, 2.0);
  const float v[] = {0.f, 0.49f, 0.5f, -0.5f, 1.99f, 5.f, INFINITY, NAN};
  h.add(v, 8);
  EXPECT_EQ(h.counts, (std::vector<double>{2, 2, 0, 2}));
}

TEST(Histogram, MaxAbsFiniteSkipsInfAndNaN) {
  for (uint32_t seed : {1u, 2u, 3u}) {
    const std::vector<float> x = awkward_values(2048, 4.0, 999 + seed, seed);
    double want = 0;
    for (float v : x)
      if (std::isfinite(v)) want = std::max(want, std::fabs(double(v)));
    EXPECT_EQ(double(max_abs_finite(x.data(), x.size())), want);  // 3e38
    std::vector<float> small(x.begin() + 40, x.begin() + 61);  // 21 values, no inf / NaN / 3e38
    double want_small = 0;
    for (float v : small) want_small = std::max(want_small, std::fabs(double(v)));
    EXPECT_EQ(double(max_abs_finite(small.data(), small.size())), want_small);
  }
  const float v[] = {-2.5f, NAN, 1.f, -INFINITY};
  EXPECT_EQ(max_abs_finite(v, 4), 2.5f);
  EXPECT_EQ(max_abs_finite(v, 0), 0.f);
  const float none[] = {NAN, INFINITY};
  EXPECT_EQ(max_abs_finite(none, 2), 0.f);
}
