// Histogram calibrators (entropy, percentile) and DLA range tying.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <numeric>

#include "tandem/constant_origin.h"
#include "tandem/dla.h"
#include "tandem/quant.h"

namespace tandem {

std::string_view to_string(CalibAlgorithm a) {
  switch (a) {
    case CalibAlgorithm::kEntropy: return "entropy";
    case CalibAlgorithm::kMinMax: return "minmax";
    case CalibAlgorithm::kPercentile: return "percentile";
  }
  return "?";
}

bool parse_calib_algorithm(std::string_view s, CalibAlgorithm* out) {
  if (s == "entropy" || s == "entropy2") *out = CalibAlgorithm::kEntropy;
  else if (s == "minmax" || s == "max") *out = CalibAlgorithm::kMinMax;
  else if (s == "percentile") *out = CalibAlgorithm::kPercentile;
  else return false;
  return true;
}

std::string_view cache_algorithm_name(CalibAlgorithm a) {
  switch (a) {
    case CalibAlgorithm::kEntropy: return "EntropyCalibration2";
    case CalibAlgorithm::kMinMax: return "MinMaxCalibration";
    case CalibAlgorithm::kPercentile: return "LegacyCalibration";
  }
  return "EntropyCalibration2";
}

void Histogram::init(int bins, double max) {
  counts.assign(std::max(bins, 1), 0.0);
  max_abs = max;
}

namespace {
// GCC builds these loops once per instruction set and picks one at load time (the build is not
// -march=native); clang compiles them once. Each clone computes exactly what the scalar
// definition does: |x| widened to double, one double product, truncation.
#if defined(__GNUC__) && !defined(__clang__)
#define TANDEM_STATS_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define TANDEM_STATS_CLONES
#endif

// The bin of each |x[i]| (Histogram::add's definition), or `nb` (a slot that is thrown away) for
// a non-finite value. min(pos, nb - 1) then truncation is "the last bin from its lower edge on",
// as nb - 1 is an integer. Branch-free, so the loop vectorizes (with -fno-trapping-math, set for
// this file in CMakeLists.txt: GCC keeps the selects as branches otherwise).
TANDEM_STATS_CLONES
void histogram_bins(const float* x, size_t n, double inv, int nb, int32_t* bin) {
  const double top = double(nb - 1), skip = double(nb);
  for (size_t i = 0; i < n; ++i) {
    const double a = std::fabs(double(x[i]));
    const double pos = a < HUGE_VAL ? std::min(a * inv, top) : skip;  // inf and NaN fail a < inf
    bin[i] = static_cast<int32_t>(pos);
  }
}

// Largest finite |x| as float bits: for non-negative floats the bit patterns order as integers,
// and every finite one is below the bits of infinity. (Signed ints: GCC 12 vectorizes this
// reduction, not its unsigned twin.)
TANDEM_STATS_CLONES
int32_t max_abs_bits(const float* x, size_t n) {
  int32_t m = 0;
  for (size_t i = 0; i < n; ++i) {
    int32_t u;
    std::memcpy(&u, x + i, 4);
    u &= 0x7fffffff;
    u = u < 0x7f800000 ? u : 0;
    m = u > m ? u : m;
  }
  return m;
}
}  // namespace

float max_abs_finite(const float* x, size_t n) {
  const int32_t bits = max_abs_bits(x, n);
  float m;
  std::memcpy(&m, &bits, 4);
  return m;
}

void Histogram::add(const float* x, size_t n) {
  const int nb = static_cast<int>(counts.size());
  if (max_abs <= 0) {  // everything is zero (or the tensor was all zero in pass 1)
    counts[0] += double(n);
    return;
  }
  const double inv = double(nb) / max_abs;
  // Four interleaved integer sub-histograms: a run of equal values (the zeros after a ReLU) then
  // increments four counters in turn instead of waiting on one. Merged every 2^30 values, before
  // a uint32 counter could overflow. Per thread, reused: no allocation per call.
  constexpr size_t kChunk = 1024, kMerge = size_t(1) << 30;
  const size_t stride = size_t(nb) + 1;  // + the slot of non-finite values
  thread_local std::vector<uint32_t> sub;
  thread_local std::vector<int32_t> bins;
  sub.assign(4 * stride, 0u);
  bins.resize(kChunk);
  for (size_t start = 0; start < n; start += kMerge) {
    const size_t end = std::min(n, start + kMerge);
    for (size_t i0 = start; i0 < end; i0 += kChunk) {
      const size_t m = std::min(kChunk, end - i0);
      histogram_bins(x + i0, m, inv, nb, bins.data());
      size_t i = 0;
      for (; i + 4 <= m; i += 4) {
        ++sub[size_t(bins[i])];
        ++sub[stride + size_t(bins[i + 1])];
        ++sub[2 * stride + size_t(bins[i + 2])];
        ++sub[3 * stride + size_t(bins[i + 3])];
      }
      for (; i < m; ++i) ++sub[size_t(bins[i])];
    }
    for (int b = 0; b < nb; ++b) {
      uint32_t* s = sub.data() + b;
      counts[size_t(b)] += double(uint64_t(s[0]) + s[stride] + s[2 * stride] + s[3 * stride]);
      s[0] = s[stride] = s[2 * stride] = s[3 * stride] = 0;
    }
  }
}

int entropy_threshold_bin(const std::vector<double>& counts_in, int levels, int start_bin) {
  const int n = static_cast<int>(counts_in.size());
  if (n == 0) return 0;
  if (n <= start_bin) return n;
  std::vector<double> bins = counts_in;
  if (n > 1) bins[0] = bins[1];  // suppress the spike of exact zeros (ReLU outputs)
  // Prefix sums make each candidate O(levels) instead of O(i) (the definition is in the header):
  // with P_j, Q_j unnormalised (sum P = total, sum Q = sum(bins[0..i)) = qsum),
  //   KL(P||Q) = (sum P log P - sum P log Q) / total + log(qsum / total),
  // sum P log P = prefix of b log b plus the last bin with the tail, and sum P log Q runs over the
  // levels: each level's Q is constant (mass / non-empty bins) over its non-empty bins.
  std::vector<double> pb(n + 1, 0.0), pblogb(n + 1, 0.0), pnz(n + 1, 0.0);
  for (int j = 0; j < n; ++j) {
    pb[j + 1] = pb[j] + bins[j];
    pnz[j + 1] = pnz[j] + (bins[j] > 0 ? 1 : 0);
    pblogb[j + 1] = pblogb[j] + (bins[j] > 0 ? bins[j] * std::log(bins[j]) : 0.0);
  }
  const double total = pb[n];
  if (total <= 0) return n;
  double best = INFINITY;
  int best_i = n;
  for (int i = start_bin; i <= n; ++i) {
    const double tail = total - pb[i];
    if (tail > 0 && bins[i - 1] == 0) continue;  // P[i-1] > 0 where Q[i-1] = 0: infinite
    const double qsum = pb[i];
    if (qsum <= 0) continue;
    const double plast = bins[i - 1] + tail;
    double plogp = pblogb[i - 1] + (plast > 0 ? plast * std::log(plast) : 0.0);
    double plogq = 0;
    double q_last = 0;
    const int g_last = static_cast<int>((int64_t(i - 1) * levels) / i);
    for (int g = 0; g < levels; ++g) {
      // bins j with floor(j * levels / i) == g: j in [ceil(g i / levels), ceil((g + 1) i / levels))
      int lo = static_cast<int>((int64_t(g) * i + levels - 1) / levels);
      int hi = static_cast<int>((int64_t(g + 1) * i + levels - 1) / levels);
      hi = std::min(hi, i);
      if (hi <= lo) continue;
      double mass = pb[hi] - pb[lo], nz = pnz[hi] - pnz[lo];
      if (nz <= 0 || mass <= 0) continue;
      double q = mass / nz;
      plogq += mass * std::log(q);
      if (g == g_last) q_last = q;
    }
    if (tail > 0) plogq += tail * std::log(q_last);
    double kl = (plogp - plogq) / total + std::log(qsum / total);
    // '<=' (with a rounding tolerance): the last argmin wins, as the reference implementation.
    if (kl <= best + 1e-12) {
      best = std::min(best, kl);
      best_i = i;
    }
  }
  return best_i;
}

double entropy_amax(const Histogram& h, int levels, int start_bin) {
  if (h.max_abs <= 0) return 0;
  int i = entropy_threshold_bin(h.counts, levels, start_bin);
  // The middle of the first bin left out, as EntropyCalibration2 does: NVIDIA's GTC 2017 talk
  // ("8-bit Inference with TensorRT", slide "Calibration: pseudo-code") sets
  // threshold = (m + 0.5) * bin width, and TensorRT-written caches decode to exactly (k + 0.5) / 2048
  // of the maximum (tests/quant/test_calibrator.cpp holds such lines as facts).
  return (i + 0.5) * h.bin_width();
}

double percentile_amax(const Histogram& h, double percentile) {
  if (h.max_abs <= 0) return 0;
  double total = std::accumulate(h.counts.begin(), h.counts.end(), 0.0);
  if (total <= 0) return 0;
  double target = total * std::clamp(percentile, 0.0, 100.0) / 100.0;
  double cum = 0;
  // The lower edge of the bin where the CDF reaches p, as pytorch-quantization
  // (calib/histogram.py, _compute_amax_percentile: bin_edges[searchsorted(cdf, p)]) and ONNX
  // Runtime (quantization/calibrate.py, HistogramCollector.compute_percentile) both do.
  for (size_t i = 0; i < h.counts.size(); ++i) {
    cum += h.counts[i];
    if (cum >= target) return double(i) * h.bin_width();
  }
  return h.max_abs;
}

// ---- tying -------------------------------------------------------------------------------
namespace {
struct UnionFind {
  std::vector<int> parent;
  explicit UnionFind(int n) : parent(n) { std::iota(parent.begin(), parent.end(), 0); }
  int find(int x) {
    while (parent[x] != x) x = parent[x] = parent[parent[x]];
    return x;
  }
  void unite(int a, int b) { parent[find(a)] = find(b); }
};
}  // namespace

std::map<std::string, float> tie_ranges(const Network& net,
                                        const std::vector<Precision>& prec,
                                        std::map<std::string, float> ranges) {
  const int nt = static_cast<int>(net.tensors.size());
  UnionFind uf(nt);
  // Tensors whose range TensorRT sets from another one: a pooling output from its input, a
  // Concat input from the Concat's output (TensorRT samples/common: "Pooling must have the same
  // input and output scales"; the DLA concatenation requires equal input/output scales). A group
  // takes the largest range of its other members, the sources.
  std::vector<char> derived(nt, 0);
  auto has = [&](TensorId t) { return ranges.count(net.tensors[t].name) > 0; };
  auto tie_all = [&](const std::vector<TensorId>& ts) {
    int first = -1;
    for (TensorId t : ts) {
      if (t < 0 || !has(t)) continue;
      if (first < 0) first = t;
      else uf.unite(t, first);
    }
  };
  for (size_t l = 0; l < net.layers.size(); ++l) {
    if (l >= prec.size() || prec[l] != Precision::kINT8) continue;
    const Int8RangeTie tie = int8_equal_range_tensors(net, net.layers[l]);  // the DLA rules' rule
    tie_all(tie.tensors);
    for (TensorId t : tie.derived)
      if (t >= 0) derived[size_t(t)] = 1;
  }
  // Per group: the largest range of its sources; a group of derived tensors only (a cycle of
  // rules) falls back to the largest range of all.
  std::vector<float> source_max(nt, -1.f), any_max(nt, 0.f);
  for (int t = 0; t < nt; ++t)
    if (has(t)) {
      const int r = uf.find(t);
      const float v = ranges[net.tensors[t].name];
      any_max[r] = std::max(any_max[r], v);
      if (!derived[t]) source_max[r] = std::max(source_max[r], v);
    }
  for (int t = 0; t < nt; ++t)
    if (has(t)) {
      const int r = uf.find(t);
      ranges[net.tensors[t].name] = source_max[r] >= 0.f ? source_max[r] : any_max[r];
    }
  return ranges;
}

std::vector<RangeChange> coarsened_ranges(const std::map<std::string, float>& before,
                                          const std::map<std::string, float>& after, float factor) {
  std::vector<RangeChange> out;
  for (const auto& [name, b] : before) {
    auto it = after.find(name);
    if (it != after.end() && b > 0.f && it->second > factor * b) out.push_back({name, b, it->second});
  }
  std::stable_sort(out.begin(), out.end(), [](const RangeChange& x, const RangeChange& y) {
    return x.after / x.before > y.after / y.before;
  });
  return out;
}

std::vector<Precision> plan_precisions(const Plan& plan) {
  std::vector<Precision> p;
  p.reserve(plan.layers.size());
  for (auto& l : plan.layers) p.push_back(l.precision);
  return p;
}

namespace {
// Activations TensorRT runs inside the convolution before it requantizes (Layer Fusion Catalog:
// convolution + ReLU / Clip / other pointwise activations; the DLA's SDP applies them in-line).
bool fuses_into_conv(const Layer& l) {
  if (l.kind != LayerKind::kActivation) return false;
  switch (l.as<ActivationParams>().type) {
    case ActivationType::kRelu: case ActivationType::kClip: case ActivationType::kLeakyRelu:
    case ActivationType::kSigmoid: case ActivationType::kTanh:
      return true;
    case ActivationType::kHardSigmoid: case ActivationType::kElu: case ActivationType::kSelu:
    case ActivationType::kSoftplus: case ActivationType::kSoftsign: case ActivationType::kGeluErf:
    case ActivationType::kGeluTanh: case ActivationType::kThresholdedRelu: case ActivationType::kScaledTanh:
      return false;
  }
  return false;
}
}  // namespace

std::vector<std::string> fused_int8_tensors(const Network& net, const std::vector<Precision>& prec) {
  auto int8 = [&](LayerId l) { return l >= 0 && size_t(l) < prec.size() && prec[l] == Precision::kINT8; };
  const auto consumers = net.consumers();
  std::vector<std::string> out;
  for (LayerId id = 0; id < LayerId(net.layers.size()); ++id) {
    const Layer& L = net.layers[id];
    if ((L.kind != LayerKind::kConvolution && L.kind != LayerKind::kDeconvolution) || !int8(id)) continue;
    // Conv -> [BatchNormalization as a Scale] -> [activation]: each link is the only reader of the
    // tensor before it, so TensorRT builds one layer and requantizes its last output only.
    TensorId t = L.outputs[0];
    bool scale_seen = false;
    for (;;) {
      const Tensor& T = net.tensors[t];
      if (T.is_output || consumers[t].size() != 1 || !int8(consumers[t][0])) break;
      const Layer& C = net.layers[consumers[t][0]];
      const bool bn = !scale_seen && C.kind == LayerKind::kScale && C.inputs[0] == t &&
                      C.as<ScaleParams>().mode != ScaleMode::kElementwise;
      if (!bn && !fuses_into_conv(C)) break;
      out.push_back(T.name);
      t = C.outputs[0];
      if (!bn) break;  // the activation ends the block
      scale_seen = true;
    }
  }
  return out;
}

std::map<std::string, int> per_channel_weights(const Network& net, const std::vector<Precision>& prec) {
  std::map<std::string, int> out;
  for (size_t l = 0; l < net.layers.size() && l < prec.size(); ++l) {
    const Layer& L = net.layers[l];
    if (prec[l] != Precision::kINT8 || L.kind != LayerKind::kMatrixMultiply || L.inputs.size() < 2) continue;
    const TensorId b = L.inputs[1];
    const int rank = int(net.tensors[b].dims.size());
    if (rank < 2 || net.tensors[b].type != DataType::kFloat || !is_constant_tensor(net, b)) continue;
    // B is [..., K, N] (or [..., N, K] transposed): the output channel is N.
    out[net.tensors[b].name] = L.as<MatrixMultiplyParams>().op1 == MatrixOp::kNone ? rank - 1 : rank - 2;
  }
  return out;
}

std::vector<std::string> int8_tensors(const Network& net, const std::vector<Precision>& prec) {
  std::vector<char> seen(net.tensors.size(), 0);
  for (const std::string& n : fused_int8_tensors(net, prec)) seen[net.find_tensor(n)] = 1;
  std::vector<std::string> out;
  for (size_t l = 0; l < net.layers.size() && l < prec.size(); ++l) {
    if (prec[l] != Precision::kINT8) continue;
    const Layer& L = net.layers[l];
    for (auto* ts : {&L.inputs, &L.outputs})
      for (TensorId t : *ts) {
        if (t < 0 || seen[t] || net.tensors[t].type != DataType::kFloat) continue;
        seen[t] = 1;
        out.push_back(net.tensors[t].name);
      }
  }
  return out;
}

Numerics make_numerics(const Network& net, const Plan& plan,
                       const std::map<std::string, float>& scales) {
  Numerics n;
  n.layer_precision = plan_precisions(plan);
  for (std::string& t : fused_int8_tensors(net, n.layer_precision)) n.unquantized.insert(std::move(t));
  n.per_channel_axis = per_channel_weights(net, n.layer_precision);
  // A cache written before Constant outputs took TensorRT's names (`(Unnamed Layer* N)
  // [Constant]_output`) lists them under the weights' ONNX name: the same tensor.
  std::map<std::string, float> given = scales;
  for (const Layer& L : net.layers) {
    if (L.kind != LayerKind::kConstant || L.outputs.empty()) continue;
    const WeightsId w = L.as<ConstantParams>().weights;
    auto old = w >= 0 ? scales.find(net.weights[w].name) : scales.end();
    if (old != scales.end()) given.emplace(net.tensors[L.outputs[0]].name, old->second);
  }
  std::map<std::string, float> ranges;
  for (auto& [k, s] : given) ranges[k] = s * 127.f;
  ranges = tie_ranges(net, n.layer_precision, std::move(ranges));
  for (const std::string& t : int8_tensors(net, n.layer_precision)) {
    auto it = ranges.find(t);
    if (it == ranges.end())
      throw Error("no INT8 scale for tensor '" + t + "' (read or written by an INT8 layer); " +
                  "recalibrate or add it to the cache");
    auto orig = given.find(t);
    n.tensor_scales[t] = (orig != given.end() && orig->second * 127.f == it->second)
                             ? orig->second
                             : it->second / 127.f;
  }
  return n;
}

}  // namespace tandem
