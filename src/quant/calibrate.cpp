// The calibration driver: FP32 reference runs -> per-tensor ranges -> tying -> cache.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <numeric>

#include "tandem/quant.h"

namespace tandem {

std::map<std::string, float> model_scales(const Network& net) {
  std::map<std::string, float> s = net.model.qdq_scales;
  if (s.empty()) return s;
  // Weights used as tensors (Constant layers) without a Q/DQ of their own, e.g. per-channel
  // MatMul weights: max |x| / 127, what calibration gives them (exact on dequantized weights).
  for (const Layer& L : net.layers) {
    if (L.kind != LayerKind::kConstant || L.outputs.empty()) continue;
    const Tensor& T = net.tensors[L.outputs[0]];
    const WeightsId w = L.as<ConstantParams>().weights;
    if (T.type != DataType::kFloat || w < 0 || s.count(T.name)) continue;
    float m = 0.f;
    for (int64_t i = 0; i < net.weights[w].count(); ++i) m = std::max(m, std::fabs(float(net.weights[w].at(i))));
    s[T.name] = m > 0.f ? m / 127.f : kMinCalibrationScale;
  }
  for (bool changed = true; changed;) {  // both directions through reshapes, to a fixed point
    changed = false;
    for (const Layer& L : net.layers) {
      if ((L.kind != LayerKind::kShuffle && L.kind != LayerKind::kIdentity) || L.inputs.empty() || L.outputs.empty()) continue;
      const std::string& a = net.tensors[L.inputs[0]].name;
      const std::string& b = net.tensors[L.outputs[0]].name;
      if (net.tensors[L.inputs[0]].type != DataType::kFloat) continue;
      if (s.count(a) && !s.count(b)) changed |= s.emplace(b, s[a]).second;
      else if (s.count(b) && !s.count(a)) changed |= s.emplace(a, s[b]).second;
    }
  }
  return s;
}

namespace {

// Ranges after tying, with the untied originals and the scales (range / 127).
void finish_ranges(const Network& net, const std::vector<Precision>& prec,
                   std::map<std::string, float> ranges, CalibrationResult& res) {
  std::map<std::string, float> tied = tie_ranges(net, prec, ranges);
  for (auto& [n, r] : tied)
    if (r != ranges[n]) ++res.tied_tensors;
  res.ranges = tied;
  res.untied = std::move(ranges);
  for (auto& [n, r] : tied) res.scales[n] = r / 127.f;
}

// Explicit quantization: the model's own Q/DQ scales, written as a cache when one is asked for
// (for an implicitly quantized build, trtexec --calib).
CalibrationResult scales_from_model(const Network& net, const std::vector<Precision>& prec,
                                    const CalibrateOptions& opt) {
  CalibrationResult res;
  res.from_model = true;
  std::map<std::string, float> given = model_scales(net), ranges;
  for (auto& [n, s] : given) ranges[n] = s * 127.f;
  finish_ranges(net, prec, std::move(ranges), res);
  for (auto& [n, s] : given)
    if (res.ranges[n] == s * 127.f) res.scales[n] = s;
  res.cache.trt_version = opt.trt_version;
  for (const auto& t : net.tensors)
    if (auto it = res.scales.find(t.name); it != res.scales.end()) res.cache.scales.emplace_back(t.name, it->second);
  if (!opt.cache_path.empty() && (opt.recalibrate || !std::filesystem::exists(opt.cache_path)))
    write_calibration_cache(opt.cache_path, res.cache);
  return res;
}

CalibrationResult scales_from_cache(const Network& net, const std::vector<Precision>& prec,
                                    const CalibrateOptions& opt) {
  CalibrationResult res;
  res.cache = read_calibration_cache(opt.cache_path);
  res.from_cache = true;
  std::map<std::string, float> ranges;
  for (auto& [n, s] : res.cache.scales) ranges[n] = s * 127.f;
  finish_ranges(net, prec, std::move(ranges), res);
  for (auto& [n, s] : res.cache.scales)  // keep the cache's exact scales where untied
    if (res.ranges[n] == s * 127.f) res.scales[n] = s;
  return res;
}

// Tensors to calibrate, in network order (inputs first).
std::vector<TensorId> tensors_to_track(const Network& net, const std::vector<Precision>& prec,
                                       bool all_tensors) {
  std::vector<TensorId> tracked;
  std::vector<char> want(net.tensors.size(), 0);
  if (all_tensors) {
    for (size_t t = 0; t < net.tensors.size(); ++t) want[t] = net.tensors[t].type == DataType::kFloat;
  } else {
    for (const std::string& n : int8_tensors(net, prec)) want[net.find_tensor(n)] = 1;
  }
  for (TensorId t : net.inputs)
    if (want[t]) { tracked.push_back(t); want[t] = 0; }
  for (auto& L : net.layers)
    for (TensorId t : L.outputs)
      if (t >= 0 && want[t]) { tracked.push_back(t); want[t] = 0; }
  return tracked;
}

// What the FP32 reference runs collect per tracked tensor: max |x| (pass 0) and, for the
// histogram algorithms, a histogram over [0, max] (pass 1; constants keep their max).
struct Statistics {
  std::vector<double> amax;
  std::vector<Histogram> hist;
};

// The tracked tensors of one run, found once per run in the executor's kept tensors (or the
// inputs); the buffers live across runs (no allocation per batch).
struct RunTensors {
  std::vector<const float*> data;  // per tracked tensor; null: not produced, or not fp32
  std::vector<size_t> count;
  std::vector<size_t> order;       // tracked indices, largest tensor first (set on the first run)
};

void find_run_tensors(const Network& net, const TensorMap& all, const TensorMap& piece,
                      const std::vector<TensorId>& tracked, RunTensors& rt) {
  rt.data.assign(tracked.size(), nullptr);
  rt.count.assign(tracked.size(), 0);
  for (size_t k = 0; k < tracked.size(); ++k) {
    const std::string& name = net.tensors[tracked[k]].name;
    auto it = all.find(name);
    if (it == all.end()) {
      it = piece.find(name);
      if (it == piece.end()) continue;
    }
    if (it->second.type != DataType::kFloat) continue;
    rt.data[k] = it->second.f32();
    rt.count[k] = size_t(it->second.count());
  }
  if (rt.order.empty()) {
    rt.order.resize(tracked.size());
    std::iota(rt.order.begin(), rt.order.end(), size_t(0));
    std::stable_sort(rt.order.begin(), rt.order.end(),
                     [&](size_t x, size_t y) { return rt.count[x] > rt.count[y]; });
  }
}

// One run's statistics: pass 0 takes max |x|, pass 1 adds to the histograms. One tensor per
// task on OpenMP's threads, the executor's own team (a second pool would compete with its
// spinning workers for the cores), largest first so that the threads finish together. A
// constant is the same in every run: its max is taken once.
void add_run_statistics(const RunTensors& rt, const std::vector<TensorId>& tracked,
                        const std::vector<char>& is_const, int pass, bool first_run, int team,
                        Statistics& st) {
  const long n = long(rt.order.size());
#pragma omp parallel for schedule(dynamic, 1) num_threads(team)
  for (long j = 0; j < n; ++j) {
    const size_t k = rt.order[size_t(j)];
    const float* x = rt.data[k];
    if (!x) continue;
    const bool constant = is_const[size_t(tracked[k])] != 0;
    if (pass == 0 && (first_run || !constant))
      st.amax[k] = std::max(st.amax[k], double(max_abs_finite(x, rt.count[k])));
    else if (pass == 1 && !constant)
      st.hist[k].add(x, rt.count[k]);
  }
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Two passes over the batcher, each an FP32 run per sample with every tensor kept. Both passes
// are needed for TensorRT's binning: the histogram spans [0, the max over ALL the data], which
// only the first pass knows (docs/quantization.md, "Calibration speed").
Statistics collect_statistics(const Network& net, Batcher& batcher, const CalibrateOptions& opt,
                              const std::vector<TensorId>& tracked, const std::vector<char>& is_const,
                              CalibrationResult& res) {
  ExecOptions eo;
  eo.threads = opt.threads;
  auto exec = make_cpu_executor(net, eo, /*keep_all=*/true);
  const std::vector<InputSpec> specs = input_specs(net);
  const bool need_hist = opt.algorithm != CalibAlgorithm::kMinMax;
  const int passes = need_hist ? 2 : 1;
  const int team = opt.threads > 0 ? opt.threads : omp_get_max_threads();
  Statistics st;
  st.amax.assign(tracked.size(), 0.0);
  st.hist.resize(need_hist ? tracked.size() : 0);
  RunTensors rt;
  // One step per sample and pass (a batch of 8 images is several seconds of det).
  const int64_t model_batch = specs.empty() || specs[0].dims.empty() ? 1 : std::max<int64_t>(1, specs[0].dims[0]);
  const int pieces = int((batcher.batch_size() + model_batch - 1) / model_batch);
  ProgressBar bar(passes == 2 ? "calibrate (2 passes)" : "calibrate", passes * batcher.num_batches() * pieces,
                  opt.progress);
  TensorMap batch;
  for (int pass = 0; pass < passes; ++pass) {
    batcher.reset();
    if (pass == 1)
      for (size_t k = 0; k < tracked.size(); ++k) st.hist[k].init(opt.bins, st.amax[k]);
    int batches = 0, samples = 0;
    while (batcher.next(&batch)) {
      ++batches;
      samples += batch.empty() ? 0 : int(batch.begin()->second.dims.empty() ? 1 : batch.begin()->second.dims[0]);
      for (const TensorMap& piece : split_batch(batch, specs)) {
        auto t0 = std::chrono::steady_clock::now();
        exec->run(piece);
        res.run_seconds += seconds_since(t0);
        t0 = std::chrono::steady_clock::now();
        const bool first_run = rt.order.empty();
        find_run_tensors(net, exec->all_tensors(), piece, tracked, rt);
        add_run_statistics(rt, tracked, is_const, pass, first_run, team, st);
        res.statistics_seconds += seconds_since(t0);
        bar.step();
      }
    }
    if (batches == 0) throw Error("calibration: the batcher yielded no batch");
    res.batches = batches;
    res.samples = samples;
  }
  bar.done();
  return st;
}

// The algorithm's range per tracked tensor (histograms in parallel, one tensor per task).
std::vector<double> ranges_from_statistics(const Statistics& st, const CalibrateOptions& opt,
                                           const std::vector<TensorId>& tracked,
                                           const std::vector<char>& is_const) {
  if (opt.algorithm == CalibAlgorithm::kMinMax) return st.amax;
  std::vector<double> range(tracked.size(), 0.0);
  const int team = opt.threads > 0 ? opt.threads : omp_get_max_threads();
  const long n = long(tracked.size());
#pragma omp parallel for schedule(dynamic, 1) num_threads(team)
  for (long k = 0; k < n; ++k) {
    if (is_const[size_t(tracked[size_t(k)])]) range[size_t(k)] = st.amax[size_t(k)];
    else if (opt.algorithm == CalibAlgorithm::kEntropy) range[size_t(k)] = entropy_amax(st.hist[size_t(k)]);
    else range[size_t(k)] = percentile_amax(st.hist[size_t(k)], opt.percentile);
  }
  return range;
}

}  // namespace

CalibrationResult calibrate(const Network& net, const Plan& plan, Batcher& batcher,
                            const CalibrateOptions& opt) {
  const std::vector<Precision> prec = plan_precisions(plan);
  if (!net.model.qdq_scales.empty()) return scales_from_model(net, prec, opt);
  if (!opt.cache_path.empty() && !opt.recalibrate && std::filesystem::exists(opt.cache_path))
    return scales_from_cache(net, prec, opt);

  CalibrationResult res;
  const std::vector<TensorId> tracked = tensors_to_track(net, prec, opt.all_tensors);
  std::vector<char> is_const(net.tensors.size(), 0);
  for (auto& L : net.layers)
    if (L.kind == LayerKind::kConstant)
      for (TensorId t : L.outputs) is_const[t] = 1;
  const Statistics st = collect_statistics(net, batcher, opt, tracked, is_const, res);
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<double> range = ranges_from_statistics(st, opt, tracked, is_const);
  res.threshold_seconds = seconds_since(t0);

  std::map<std::string, float> ranges;
  for (size_t k = 0; k < tracked.size(); ++k) {
    float r = float(range[k]);
    if (!(r > 0.f)) r = kMinCalibrationScale * 127.f;  // an all-zero tensor: a tiny, valid scale
    ranges[net.tensors[tracked[k]].name] = r;
  }
  finish_ranges(net, prec, ranges, res);
  res.cache.trt_version = opt.trt_version;
  // trtexec (IInt8EntropyCalibrator2) skips a cache headed by another algorithm and calibrates on
  // random data instead (NVIDIA/TensorRT#1378); the header word does not change the scales' meaning.
  res.cache.algorithm = std::string(cache_algorithm_name(opt.true_header ? opt.algorithm : CalibAlgorithm::kEntropy));
  for (TensorId t : tracked) res.cache.scales.emplace_back(net.tensors[t].name, res.scales[net.tensors[t].name]);
  if (!opt.cache_path.empty()) write_calibration_cache(opt.cache_path, res.cache);
  return res;
}

}  // namespace tandem
