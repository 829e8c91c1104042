// tandem compare: FP32 reference vs the plan's numerics (INT8 / FP16 emulation of DLA layers).
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <exception>
#include <mutex>
#include <thread>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "command.h"
#include "quant_cli.h"

namespace {
using namespace tandem;
using namespace tandem::cli;

using Acc = ErrorStats;

struct CompareArgs {
  ModelArgs m;
  DataArgs d;
  SourceArgs src;
  bool per_layer = false, json = false, quiet = false, recalibrate = false;
  int top = 15, threads = 0;
  double atol = -1, rtol = -1, min_cosine = -2;
  std::string cache, algorithm = "entropy", method = "trace", backend = "cpu";
};

// The layers whose reduced precision costs the most, worst first, at most --top.
struct LayerCost {
  LayerId layer;
  double cost, cos_in, cos_out;
};

std::vector<LayerCost> rank_layers(const CompareArgs& a, const Network& net, const std::vector<Precision>& prec,
                                   const std::vector<Acc>& tensor_acc, const ExecOptions& ro, const Numerics& numerics,
                                   const std::vector<TensorMap>& inputs, const std::vector<TensorMap>& ref_outputs,
                                   int reduced_layers) {
  std::vector<LayerCost> costs;
  if (a.method == "trace") {
    // The cosine a layer loses: min cosine of its inputs minus the cosine of its output.
    for (size_t l = 0; l < net.layers.size(); ++l) {
      if (prec[l] != Precision::kINT8 && prec[l] != Precision::kFP16) continue;
      const Layer& L = net.layers[l];
      double cin = 1;
      for (TensorId t : L.inputs)
        if (t >= 0 && tensor_acc[t].count) cin = std::min(cin, tensor_acc[t].cosine());
      double cout = 1;
      for (TensorId t : L.outputs)
        if (tensor_acc[t].count) cout = std::min(cout, tensor_acc[t].cosine());
      costs.push_back({LayerId(l), cin - cout, cin, cout});
    }
  } else {
    // One layer at its reduced precision, every other layer FP32: 1 - output cosine.
    ProgressBar bar("per-layer", reduced_layers, !a.quiet && !a.json);
    for (size_t l = 0; l < net.layers.size(); ++l) {
      if (prec[l] != Precision::kINT8 && prec[l] != Precision::kFP16) continue;
      ExecOptions one = ro;
      one.numerics.layer_precision.assign(net.layers.size(), Precision::kUnset);
      one.numerics.layer_precision[l] = prec[l];
      // As in the plan: inside a fused block the tensor stays FP32, FC weights per channel.
      one.numerics.unquantized = numerics.unquantized;
      one.numerics.per_channel_axis = numerics.per_channel_axis;
      for (TensorId t : net.layers[l].inputs)
        if (t >= 0 && numerics.tensor_scales.count(net.tensors[t].name)) one.numerics.tensor_scales[net.tensors[t].name] = numerics.tensor_scales.at(net.tensors[t].name);
      for (TensorId t : net.layers[l].outputs)
        if (numerics.tensor_scales.count(net.tensors[t].name)) one.numerics.tensor_scales[net.tensors[t].name] = numerics.tensor_scales.at(net.tensors[t].name);
      auto ex = make_backend_executor(a.backend, net, one, false);
      Acc acc;
      for (size_t s = 0; s < inputs.size(); ++s) {
        TensorMap o = ex->run(inputs[s]);
        for (TensorId t : net.outputs) acc.add(ref_outputs[s].at(net.tensors[t].name), o.at(net.tensors[t].name), false);
      }
      costs.push_back({LayerId(l), 1 - acc.cosine(), 1, acc.cosine()});
      bar.step();
    }
  }
  std::stable_sort(costs.begin(), costs.end(), [](const LayerCost& x, const LayerCost& y) { return x.cost > y.cost; });
  if (int(costs.size()) > a.top) costs.resize(std::max(0, a.top));
  return costs;
}

// What the comparison measured, for the verdict and the reports.
struct CompareReport {
  const Network& net;
  const Plan& plan;
  const std::vector<Precision>& prec;
  const std::vector<Acc>& out_acc;
  const std::vector<LayerCost>& costs;
  const std::vector<RangeChange>& coarse;
  const std::string& scale_source;
  int samples, n_int8, n_fp16;
};

bool thresholds_given(const CompareArgs& a) { return a.atol >= 0 || a.rtol >= 0 || a.min_cosine > -2; }

std::vector<std::string> threshold_failures(const CompareArgs& a, const CompareReport& r) {
  std::vector<std::string> failures;
  const bool tol = a.atol >= 0 || a.rtol >= 0;
  for (size_t k = 0; k < r.net.outputs.size(); ++k) {
    const std::string& name = r.net.tensors[r.net.outputs[k]].name;
    const Acc& s = r.out_acc[k];
    const double atol = std::max(0.0, a.atol), rtol = std::max(0.0, a.rtol);
    if (tol && s.max_abs > atol + rtol * s.max_ref)
      failures.push_back(fmt::format("output '{}': max |error| {:.6g} > atol {:.6g} + rtol {:.6g} x max |ref| {:.6g}", name,
                                     s.max_abs, atol, rtol, s.max_ref));
    if (a.min_cosine > -2 && s.cosine() < a.min_cosine)
      failures.push_back(fmt::format("output '{}': cosine {:.6f} < --min-cosine {:.6g}", name, s.cosine(), a.min_cosine));
  }
  return failures;
}

// The tandem/compare/v1 document (docs/json.md).
void print_compare_json(const CompareArgs& a, const CompareReport& r, const std::vector<std::string>& failures) {
  const Network& net = r.net;
  nlohmann::ordered_json j;
  j["schema"] = "tandem/compare/v1";  // key names shared by every tandem JSON document (docs/json.md)
  if (thresholds_given(a)) {
    j["passed"] = failures.empty();
    j["failures"] = failures;
  }
  j["model"] = a.m.model;
  j["samples"] = r.samples;
  j["int8_layers"] = r.n_int8;
  j["fp16_layers"] = r.n_fp16;
  j["scales"] = r.scale_source;
  j["ranges_coarsened_4x_by_tying"] = nlohmann::ordered_json::array();
  for (const RangeChange& c : r.coarse)
    j["ranges_coarsened_4x_by_tying"].push_back({{"tensor", c.tensor}, {"before", c.before}, {"after", c.after}});
  j["outputs"] = nlohmann::ordered_json::array();
  for (size_t k = 0; k < net.outputs.size(); ++k) {
    const Tensor& t = net.tensors[net.outputs[k]];
    const Acc& s = r.out_acc[k];
    nlohmann::ordered_json o = {{"name", t.name}, {"shape", t.dims}, {"type", std::string(to_string(t.type))},
                                {"max_abs_error", s.max_abs}, {"mean_abs_error", s.mean_abs()}, {"cosine", s.cosine()},
                                {"min_sample_cosine", s.min_cos}};
    if (s.top1_total) o["top1_agreement"] = double(s.top1_agree) / s.top1_total;
    j["outputs"].push_back(o);
  }
  if (a.per_layer) {
    j["per_layer_method"] = a.method;
    j["per_layer"] = nlohmann::ordered_json::array();
    for (const auto& c : r.costs)
      j["per_layer"].push_back({{"name", net.layers[c.layer].name}, {"kind", std::string(to_string(net.layers[c.layer].kind))},
                                {"precision", std::string(to_string(r.prec[c.layer]))}, {"cost", c.cost},
                                {"input_cosine", c.cos_in}, {"output_cosine", c.cos_out}});
  }
  std::printf("%s\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
}

void print_compare_text(const CompareArgs& a, const CompareReport& r, const std::vector<std::string>& failures) {
  const Network& net = r.net;
  const Plan& plan = r.plan;
  std::printf("compare %s: FP32 reference vs plan numerics (%d INT8, %d FP16 layers emulated), %d inputs\n",
              a.m.model.c_str(), r.n_int8, r.n_fp16, r.samples);
  {
    // The same counts as `tandem plan`: DLA layers whose precision is unset move data in FP32.
    int dla = 0, dla_int8 = 0, dla_fp16 = 0;
    for (size_t l = 0; l < plan.layers.size(); ++l)
      if (plan.layers[l].device == Device::kDLA) {
        ++dla;
        dla_int8 += r.prec[l] == Precision::kINT8;
        dla_fp16 += r.prec[l] == Precision::kFP16;
      }
    std::printf("plan: %d DLA layers (%d INT8, %d FP16, %d unset: FP32 data movement), %d GPU layers\n", dla, dla_int8,
                dla_fp16, dla - dla_int8 - dla_fp16, int(plan.layers.size()) - dla);
  }
  std::printf("INT8 scales: %s\n\n", r.scale_source.c_str());
  std::printf("%-32s %-16s %12s %12s %10s %10s %8s\n", "output", "shape", "max_abs", "mean_abs", "cosine", "min_cos", "top1");
  for (size_t k = 0; k < net.outputs.size(); ++k) {
    const Tensor& t = net.tensors[net.outputs[k]];
    const Acc& s = r.out_acc[k];
    char top1[32] = "-";
    if (s.top1_total) std::snprintf(top1, sizeof top1, "%.1f%%", 100.0 * s.top1_agree / s.top1_total);
    std::printf("%-32s %-16s %12.6g %12.6g %10.6f %10.6f %8s\n", t.name.c_str(), dims_to_string(t.dims).c_str(),
                s.max_abs, s.mean_abs(), s.cosine(), s.min_cos, top1);
  }
  if (a.per_layer) {
    std::printf("\nlayers whose reduced precision costs the most (%s):\n", a.method == "trace"
                ? "trace: min input cosine - output cosine" : "isolate: 1 - output cosine with only this layer reduced");
    std::printf("%-4s %-44s %-14s %-6s %12s %10s\n", "#", "layer", "kind", "prec", "cost", "out_cos");
    int i = 0;
    for (const auto& c : r.costs)
      std::printf("%-4d %-44s %-14s %-6s %12.6g %10.6f\n", ++i, net.layers[c.layer].name.c_str(),
                  std::string(to_string(net.layers[c.layer].kind)).c_str(), std::string(to_string(r.prec[c.layer])).c_str(),
                  c.cost, c.cos_out);
  }
  if (thresholds_given(a) && failures.empty()) std::printf("\nthresholds passed\n");
}

// What the compared runs accumulate: per output, per tensor (--per-layer trace), and the inputs
// with their reference outputs (--per-layer-method isolate).
struct CompareRuns {
  std::vector<Acc> out_acc, tensor_acc;
  std::vector<TensorMap> inputs, ref_outputs;
  int samples = 0;
};

// One worker of the plain comparison: a one-thread reference and plan executor, made on the
// worker's thread.
struct CompareWorker {
  std::unique_ptr<Executor> ref, emu;
};

// The plain comparison (no --per-layer): the inputs of each batch spread over `workers` workers,
// one input each at a time. Two one-thread executors keep 2 cores busy with no barrier between
// steps, where one two-thread executor waits on each step's parallel region (a time slice each
// when other processes load the machine). The outputs are added in input order afterwards, so
// the figures do not depend on the number of workers.
void compare_in_parallel(const CompareArgs& a, const Network& net, const ExecOptions& ro, const ExecOptions& eo,
                         Batcher& batcher, int workers, ProgressBar& bar, CompareRuns& cr) {
  const auto specs = input_specs(net);
  std::vector<CompareWorker> pool(size_t(std::max(1, workers)));
  TensorMap batch;
  while (batcher.next(&batch)) {
    const std::vector<TensorMap> pieces = split_batch(batch, specs);
    std::vector<std::pair<TensorMap, TensorMap>> outs(pieces.size());
    std::atomic<size_t> next{0};
    std::mutex m;
    std::exception_ptr error;
    auto work = [&](CompareWorker& w) {
      try {
        if (!w.ref) {
          ExecOptions r1 = ro, e1 = eo;
          r1.threads = e1.threads = 1;
          w.ref = make_backend_executor(a.backend, net, r1);
          w.emu = make_backend_executor(a.backend, net, e1);
        }
        for (size_t i; (i = next.fetch_add(1)) < pieces.size();) {
          outs[i] = {w.ref->run(pieces[i]), w.emu->run(pieces[i])};
          std::lock_guard<std::mutex> lock(m);
          bar.step();
        }
      } catch (...) {
        std::lock_guard<std::mutex> lock(m);
        if (!error) error = std::current_exception();
        next = pieces.size();
      }
    };
    std::vector<std::thread> threads;
    for (size_t k = 1; k < std::min(pool.size(), pieces.size()); ++k) threads.emplace_back(work, std::ref(pool[k]));
    work(pool[0]);
    for (auto& t : threads) t.join();
    if (error) std::rethrow_exception(error);
    for (const auto& [r, e] : outs) {
      for (size_t k = 0; k < net.outputs.size(); ++k) {
        const Tensor& t = net.tensors[net.outputs[k]];
        cr.out_acc[k].add(r.at(t.name), e.at(t.name), looks_like_classifier(t));
      }
      ++cr.samples;
    }
  }
}

// --per-layer: one input at a time through two executors that keep every tensor (trace) or
// keep the inputs and reference outputs for the isolated runs (isolate).
void compare_per_layer(const CompareArgs& a, const Network& net, const ExecOptions& ro, const ExecOptions& eo,
                       Batcher& batcher, ProgressBar& bar, CompareRuns& cr) {
  const bool keep = a.method == "trace";
  auto ref = make_backend_executor(a.backend, net, ro, keep);
  auto emu = make_backend_executor(a.backend, net, eo, keep);
  const auto specs = input_specs(net);
  TensorMap batch;
  while (batcher.next(&batch)) {
    for (const TensorMap& piece : split_batch(batch, specs)) {
      TensorMap r = ref->run(piece);
      TensorMap e = emu->run(piece);
      for (size_t k = 0; k < net.outputs.size(); ++k) {
        const Tensor& t = net.tensors[net.outputs[k]];
        cr.out_acc[k].add(r.at(t.name), e.at(t.name), looks_like_classifier(t));
      }
      if (keep) {
        const TensorMap& ra = ref->all_tensors();
        const TensorMap& ea = emu->all_tensors();
        for (size_t t = 0; t < net.tensors.size(); ++t) {
          auto x = ra.find(net.tensors[t].name), y = ea.find(net.tensors[t].name);
          if (x != ra.end() && y != ea.end()) cr.tensor_acc[t].add(x->second, y->second, false);
        }
      } else {
        cr.inputs.push_back(piece);
        cr.ref_outputs.push_back(std::move(r));
      }
      ++cr.samples;
      bar.step();
    }
  }
}

RegisterCommand reg(41, "compare", [](CLI::App& app) {
  auto* sub = app.add_subcommand(
      "compare", "Compare the FP32 reference with the plan's numerics (DLA INT8/FP16 emulated on the CPU, or the GPU with --backend cuda)");
  auto a = std::make_shared<CompareArgs>();
  add_model_args(sub, a->m);
  add_data_source_args(sub, a->d, a->src, "input", 1);  // random: 1 batch, 8 inputs
  add_image_args(sub, a->d);
  add_calib_cache_option(sub, a->cache, "calibration cache with the INT8 scales (default: calibrate on the compared inputs)");
  add_recalibrate_flag(sub, a->recalibrate)->description("ignore --calib: calibrate on the compared inputs");
  sub->add_option("--atol", a->atol, "fail (exit 1) when an output's max |ref - plan| exceeds atol + rtol x max |ref|");
  sub->add_option("--rtol", a->rtol, "relative part of the --atol test (default 0 when --atol is given)");
  sub->add_option("--min-cosine", a->min_cosine, "fail (exit 1) when an output's cosine similarity is below this");
  sub->add_option("--algorithm", a->algorithm, "calibration algorithm when there is no --cache")->capture_default_str();
  sub->add_flag("--per-layer", a->per_layer, "rank the layers whose reduced precision costs the most");
  sub->add_option("--per-layer-method", a->method, "trace: per-tensor cosine along the network; isolate: one layer reduced at a time")->capture_default_str();
  sub->add_option("--top", a->top, "layers listed with --per-layer")->capture_default_str();
  sub->add_option("--threads", a->threads, "CPU threads (0: all)");
  add_backend_option(sub, a->backend);
  sub->add_flag("--json", a->json, "one JSON document on stdout");
  sub->add_flag("--quiet,-q", a->quiet, "no progress bar");
  return std::function<int()>([a] {
    if (a->method != "trace" && a->method != "isolate") throw Error("--per-layer-method: '" + a->method + "' is not trace | isolate");
    require_backend(a->backend);  // before the model and the data are read
    Network net = load_network(a->m);
    Plan plan = make_plan_from(net, a->m);
    std::vector<Precision> prec = plan_precisions(plan);
    auto specs = input_specs(net);
    // The inputs in batches as calibrate reads them (the same defaults), each compared on its own.
    auto batcher = make_batcher_from(a->d, net, a->src.random);

    // Scales: from the cache, or calibrated on the same inputs.
    std::map<std::string, float> scales;
    std::map<std::string, float> untied;  // ranges before this plan's tying
    std::string scale_source;
    if (a->recalibrate) a->cache.clear();
    if (!a->cache.empty()) {
      CalibrationCache c = read_calibration_cache(a->cache);
      const std::string why = cache_mismatch(net, plan, c, nullptr);
      if (!why.empty()) throw Error(a->cache + ": not used: " + why + " (--recalibrate calibrates on the compared inputs)");
      scales = c.scale_map();
      scale_source = "cache " + a->cache;
      if (c.zero_scales > 0)
        scale_source += " (" + std::to_string(c.zero_scales) + " lines with scale 0 read as 1e-08)";
    } else if (!int8_tensors(net, prec).empty()) {
      CalibrateOptions co;
      if (!parse_calib_algorithm(a->algorithm, &co.algorithm)) throw Error("--algorithm: unknown algorithm '" + a->algorithm + "'");
      co.threads = a->threads;
      co.backend = a->backend;
      co.progress = !a->quiet && !a->json;
      CalibrationResult r = calibrate(net, plan, *batcher, co);
      scales = r.scales;
      untied = r.untied;
      scale_source = r.from_model ? "the model's Q/DQ nodes" : std::string(to_string(co.algorithm)) + " calibration on the compared inputs";
    } else {
      scale_source = "none needed (no INT8 layer)";
    }
    Numerics numerics = make_numerics(net, plan, scales);
    if (!a->cache.empty())
      for (auto& [n, sc] : scales) untied[n] = sc * 127.f;
    std::map<std::string, float> tied;
    for (auto& [n, sc] : numerics.tensor_scales) tied[n] = sc * 127.f;
    const std::vector<RangeChange> coarse = coarsened_ranges(untied, tied);
    if (!a->json) print_coarsened(coarse, stderr);
    int n_int8 = 0, n_fp16 = 0;
    for (Precision p : prec) { n_int8 += p == Precision::kINT8; n_fp16 += p == Precision::kFP16; }

    ExecOptions ro;
    ro.threads = a->threads;
    ExecOptions eo = ro;
    eo.numerics = numerics;
    eo.emulate_numerics = true;  // the GPU runs the CPU's emulation: the same figures (the CPU ignores it)
    CompareRuns cr;
    cr.out_acc.resize(net.outputs.size());
    cr.tensor_acc.resize(a->per_layer && a->method == "trace" ? net.tensors.size() : 0);
    batcher->reset();
    {
      // One step per compared input: a batch of det is several seconds.
      const int64_t model_batch = specs.empty() || specs[0].dims.empty() ? 1 : std::max<int64_t>(1, specs[0].dims[0]);
      ProgressBar bar("compare", int(batcher->num_batches() * ((batcher->batch_size() + model_batch - 1) / model_batch)),
                      !a->quiet && !a->json);
      if (a->per_layer) compare_per_layer(*a, net, ro, eo, *batcher, bar, cr);
      else {
        // CPU: one-thread workers on every core; a device backend: one pair of executors.
        const int workers = a->backend != "cpu" ? 1 : a->threads > 0 ? a->threads : int(std::max(1u, std::thread::hardware_concurrency()));
        compare_in_parallel(*a, net, ro, eo, *batcher, workers, bar, cr);
      }
    }
    const int samples = cr.samples;
    std::vector<Acc>& out_acc = cr.out_acc;
    if (samples == 0) throw Error("compare: no input");

    // Per-layer ranking.
    std::vector<LayerCost> costs;
    if (a->per_layer) costs = rank_layers(*a, net, prec, cr.tensor_acc, ro, numerics, cr.inputs, cr.ref_outputs, n_int8 + n_fp16);

    const CompareReport rep{net, plan, prec, out_acc, costs, coarse, scale_source, samples, n_int8, n_fp16};
    // Thresholds (as polygraphy run's --atol/--rtol): one line per failing output, exit 1.
    const std::vector<std::string> failures = threshold_failures(*a, rep);
    if (a->json) print_compare_json(*a, rep, failures);
    else print_compare_text(*a, rep, failures);
    for (const auto& f : failures) std::fprintf(stderr, "tandem: compare failed: %s\n", f.c_str());
    return failures.empty() ? 0 : 1;
  });
});

}  // namespace
