// The calibration driver: FP32 reference runs -> per-tensor ranges -> tying -> cache.
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <exception>
#include <mutex>
#include <numeric>
#include <thread>

#include "tandem/backend.h"
#include "tandem/quant.h"

namespace tandem {

void require_backend(const std::string& name) {
  const std::vector<std::string> names = backend_names();
  if (std::find(names.begin(), names.end(), name) == names.end())
    throw Error("--backend '" + name + "': expected cpu or cuda");
  const Availability a = find_backend(name).availability();
  if (!a.ok) throw Error("--backend " + name + ": " + a.reason);
}

std::unique_ptr<Executor> make_backend_executor(const std::string& name, const Network& net, const ExecOptions& opt,
                                                bool keep_all) {
  if (name == "cpu") return make_cpu_executor(net, opt, keep_all);
  require_backend(name);
  return find_backend(name).compile(net, opt, keep_all);
}

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

// Receives each tensor from the executor right after the step that completes it
// (ExecOptions::observe_tensor) and adds it to the statistics of the pass: max |x| (pass 0) or
// the histogram (pass 1). The tensor is then still in cache, and the executor needs neither
// keep_all's arena (every tensor alive to the end) nor its copies of every tensor. A constant is
// the same in every run: its max is taken once.
class StatisticsCollector {
 public:
  StatisticsCollector(const Network& net, const std::vector<TensorId>& tracked, const std::vector<char>& is_const)
      : net_(net), is_const_(is_const), slot_(net.tensors.size(), -1) {
    for (size_t k = 0; k < tracked.size(); ++k) slot_[size_t(tracked[k])] = int(k);
    st_.amax.assign(tracked.size(), 0.0);
  }
  // Pass 1 bins over [0, max over all the data]: the max of every worker's pass 0.
  void start_histograms(int bins, const std::vector<double>& amax) {
    st_.hist.resize(amax.size());
    for (size_t k = 0; k < amax.size(); ++k) st_.hist[k].init(bins, amax[k]);
  }
  void start_run(int pass) {
    pass_ = pass;
    first_run_ = runs_++ == 0;
  }
  void observe(TensorId t, const void* data) {
    const auto t0 = std::chrono::steady_clock::now();
    add(t, data);
    seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  // A device backend's run delivers every tensor at its end: their statistics in parallel, one
  // tensor per task (each tensor has its own slot: no two tasks write the same statistics).
  void observe_all(const std::vector<std::pair<TensorId, const void*>>& delivered, int team) {
    const auto t0 = std::chrono::steady_clock::now();
    const long n = long(delivered.size());
#pragma omp parallel for schedule(dynamic, 1) num_threads(team)
    for (long i = 0; i < n; ++i) add(delivered[size_t(i)].first, delivered[size_t(i)].second);
    seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  const Statistics& statistics() const { return st_; }
  double seconds() const { return seconds_; }  // spent in the statistics so far

 private:
  void add(TensorId t, const void* data) {
    const int k = t >= 0 && size_t(t) < slot_.size() ? slot_[size_t(t)] : -1;
    if (k < 0 || net_.tensors[size_t(t)].type != DataType::kFloat) return;
    const float* x = static_cast<const float*>(data);
    const size_t n = size_t(volume(net_.tensors[size_t(t)].dims));
    const bool constant = is_const_[size_t(t)] != 0;
    if (pass_ == 0 && (first_run_ || !constant))
      st_.amax[size_t(k)] = std::max(st_.amax[size_t(k)], double(max_abs_finite(x, n)));
    else if (pass_ == 1 && !constant)
      st_.hist[size_t(k)].add(x, n);
  }

  const Network& net_;
  const std::vector<char>& is_const_;
  std::vector<int> slot_;  // TensorId -> tracked index (-1: not tracked)
  Statistics st_;
  int pass_ = 0, runs_ = 0;
  bool first_run_ = true;
  double seconds_ = 0;
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// One calibration worker: a one-thread, unfused FP32 executor whose tensors go to the worker's
// own statistics. Workers take whole samples: on 2 cores two of them keep both busy with no
// barrier between steps, where one two-thread executor waits on every step's parallel region (a
// time slice each when other processes load the machine). Every worker computes with one thread,
// so the ranges do not depend on the thread count either.
// A device backend (--backend cuda): one worker whose executor hands over every tensor at the
// end of its run (from its pinned host buffer, valid until the next run); the statistics then
// run on `team` threads, one tensor per task.
struct CalibrationWorker {
  StatisticsCollector collector;
  std::unique_ptr<Executor> exec;
  std::vector<std::pair<TensorId, const void*>> delivered;  // device backends: this run's tensors
  double seconds = 0;  // in run(), statistics included
  CalibrationWorker(const Network& net, const std::vector<TensorId>& tracked, const std::vector<char>& is_const)
      : collector(net, tracked, is_const) {}
  void run(const Network& net, const TensorMap& piece, int pass, const std::string& backend, int team) {
    const auto t0 = std::chrono::steady_clock::now();
    if (!exec) {  // built on the worker's thread, in parallel with the others
      ExecOptions eo;
      eo.threads = 1;
      eo.fuse = false;  // every tracked tensor must be computed
      if (backend == "cpu") eo.observe_tensor = [this](TensorId t, const void* data) { collector.observe(t, data); };
      else eo.observe_tensor = [this](TensorId t, const void* data) { delivered.emplace_back(t, data); };
      exec = make_backend_executor(backend, net, eo);
    }
    collector.start_run(pass);
    delivered.clear();
    exec->run(piece);  // CPU: the statistics are taken inside, step by step
    if (!delivered.empty()) collector.observe_all(delivered, team);
    seconds += seconds_since(t0);
  }
};

// Runs every piece once, spread over the workers (each takes the next piece not taken).
void run_pieces(const Network& net, const std::vector<TensorMap>& pieces, int pass, const CalibrateOptions& opt,
                std::vector<std::unique_ptr<CalibrationWorker>>& workers, ProgressBar& bar) {
  const int team = opt.threads > 0 ? opt.threads : omp_get_max_threads();  // device backends' statistics
  std::atomic<size_t> next{0};
  std::mutex bar_mutex;
  std::exception_ptr error;
  auto work = [&](CalibrationWorker& w) {
    try {
      for (size_t i; (i = next.fetch_add(1)) < pieces.size();) {
        w.run(net, pieces[i], pass, opt.backend, team);
        std::lock_guard<std::mutex> lock(bar_mutex);
        bar.step();
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(bar_mutex);
      if (!error) error = std::current_exception();
      next = pieces.size();
    }
  };
  const size_t used = std::min(workers.size(), pieces.size());
  std::vector<std::thread> threads;
  for (size_t k = 1; k < used; ++k) threads.emplace_back(work, std::ref(*workers[k]));
  work(*workers[0]);
  for (auto& t : threads) t.join();
  if (error) std::rethrow_exception(error);
}

// Two passes over the batcher, each an FP32 run per sample, unfused so that every tensor
// exists. Both passes are needed for TensorRT's binning: the histogram spans [0, the max over
// ALL the data], which only the first pass knows (docs/quantization.md, "Calibration speed").
// The workers' statistics merge exactly: maxima, and histogram counts that are integers.
Statistics collect_statistics(const Network& net, Batcher& batcher, const CalibrateOptions& opt,
                              const std::vector<TensorId>& tracked, const std::vector<char>& is_const,
                              CalibrationResult& res) {
  const bool need_hist = opt.algorithm != CalibAlgorithm::kMinMax;
  const int passes = need_hist ? 2 : 1;
  const std::vector<InputSpec> specs = input_specs(net);
  // One step per sample and pass (a batch of 8 images is several seconds of det).
  const int64_t model_batch = specs.empty() || specs[0].dims.empty() ? 1 : std::max<int64_t>(1, specs[0].dims[0]);
  const int pieces = int((batcher.batch_size() + model_batch - 1) / model_batch);
  // A device backend: one executor (one GPU, one stream) takes every sample.
  const int n_workers = opt.backend != "cpu" ? 1 : std::max(1, std::min(opt.threads > 0 ? opt.threads : omp_get_max_threads(),
                                                                       std::max(1, batcher.num_batches() * pieces)));
  std::vector<std::unique_ptr<CalibrationWorker>> workers;
  for (int k = 0; k < n_workers; ++k) workers.push_back(std::make_unique<CalibrationWorker>(net, tracked, is_const));
  ProgressBar bar(passes == 2 ? "calibrate (2 passes)" : "calibrate", passes * batcher.num_batches() * pieces,
                  opt.progress);
  Statistics st;
  st.amax.assign(tracked.size(), 0.0);
  TensorMap batch;
  for (int pass = 0; pass < passes; ++pass) {
    batcher.reset();
    if (pass == 1)
      for (auto& w : workers) w->collector.start_histograms(opt.bins, st.amax);
    int batches = 0, samples = 0;
    while (batcher.next(&batch)) {
      ++batches;
      samples += batch.empty() ? 0 : int(batch.begin()->second.dims.empty() ? 1 : batch.begin()->second.dims[0]);
      run_pieces(net, split_batch(batch, specs), pass, opt, workers, bar);
    }
    if (batches == 0) throw Error("calibration: the batcher yielded no batch");
    res.batches = batches;
    res.samples = samples;
    if (pass == 0)
      for (auto& w : workers)
        for (size_t k = 0; k < tracked.size(); ++k) st.amax[k] = std::max(st.amax[k], w->collector.statistics().amax[k]);
  }
  bar.done();
  if (need_hist) {
    st.hist = workers[0]->collector.statistics().hist;
    for (size_t w = 1; w < workers.size(); ++w)
      for (size_t k = 0; k < tracked.size(); ++k)
        for (size_t b = 0; b < st.hist[k].counts.size(); ++b) st.hist[k].counts[b] += workers[w]->collector.statistics().hist[k].counts[b];
  }
  // Times summed over the workers: CPU seconds, not wall-clock.
  for (auto& w : workers) {
    res.statistics_seconds += w->collector.seconds();
    res.run_seconds += w->seconds - w->collector.seconds();
  }
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
