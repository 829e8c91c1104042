// tandem calibrate: INT8 ranges from data, written as a TensorRT calibration cache.
#include <fmt/format.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <filesystem>

#include "command.h"
#include "quant_cli.h"
#include "tandem/dla.h"

namespace {
using namespace tandem;
using namespace tandem::cli;

// The tandem/calibrate/v1 document (docs/json.md): the cache written or reused and the data it came from.
template <class Args>
void print_calibrate_json(const Args& a, const Network& net, const Plan& plan, const CalibrationResult& r,
                          const CalibrateOptions& co) {
  const float lo = a.d.input_scale.size() == 2 ? a.d.input_scale[0] : a.d.lo;
  const float hi = a.d.input_scale.size() == 2 ? a.d.input_scale[1] : a.d.hi;
  nlohmann::ordered_json data;
  if (r.from_cache) data = nullptr;
  else if (!a.d.dir.empty()) data = {{"source", "images"}, {"dir", a.d.dir}, {"range", {lo, hi}}};
  else if (!a.d.npy.empty()) data = {{"source", "npy"}, {"files", a.d.npy}};
  else data = {{"source", "random"}, {"range", {lo, hi}}, {"seed", a.d.seed}};
  nlohmann::ordered_json j;
  j["schema"] = "tandem/calibrate/v1";  // key names shared by every tandem JSON document (docs/json.md)
  j["model"] = a.m.model;
  j["cache"] = a.out;
  j["reused"] = r.from_cache;
  j["algorithm"] = std::string(to_string(co.algorithm));
  j["cache_header"] = fmt::format("TRT-{}-{}", r.cache.trt_version, r.cache.algorithm);
  j["tensors"] = r.cache.scales.size();
  j["int8_tensors"] = int8_tensors(net, plan_precisions(plan)).size();
  j["batches"] = r.batches;
  j["samples"] = r.samples;
  j["tied_tensors"] = r.tied_tensors;
  j["zero_scales"] = r.cache.zero_scales;
  j["data"] = data;
  std::printf("%s\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
}

RegisterCommand reg(40, "calibrate", [](CLI::App& app) {
  auto* sub = app.add_subcommand(
      "calibrate",
      "Calibrate INT8 ranges (FP32 reference runs on the CPU, or the GPU with --backend cuda) and write a TensorRT calibration cache");
  struct Args {
    ModelArgs m;
    DataArgs d;
    SourceArgs src;
    std::string algorithm = "entropy", out, backend = "cpu";
    double percentile = 99.99;
    int trt_version = 0, threads = 0;
    bool recalibrate = false, quiet = false, int8_only = false, true_header = false, json = false;
  };
  auto a = std::make_shared<Args>();
  add_model_args(sub, a->m);
  add_data_source_args(sub, a->d, a->src, "calibration");
  sub->add_option("--synthetic", a->d.synthetic, "N batches of seeded random data: the same as --random-input --num-batches N");
  add_image_args(sub, a->d);
  sub->add_option("--algorithm", a->algorithm, "entropy | minmax | percentile")->capture_default_str();
  sub->add_option("--percentile", a->percentile, "percentile of |x| for --algorithm percentile")->capture_default_str();
  sub->add_option("--trt-version", a->trt_version, "cache header version (default: the target's, 8600 for orin)");
  sub->add_option("--threads", a->threads, "CPU threads (0: all)");
  add_backend_option(sub, a->backend);
  add_calib_cache_option(sub, a->out, "calibration cache to write (or to reuse after checking it fits the model)", "-o,--output,")
      ->required();
  add_recalibrate_flag(sub, a->recalibrate);
  sub->add_flag("--int8-tensors-only", a->int8_only, "only the tensors INT8 layers touch (default: every float tensor)");
  sub->add_flag("--true-header", a->true_header,
                "name the algorithm used in the cache header (MinMaxCalibration, LegacyCalibration); "
                "default EntropyCalibration2, the only header trtexec's calibrator accepts");
  sub->add_flag("--quiet,-q", a->quiet, "no progress bar, no summary");
  sub->add_flag("--json", a->json, "one JSON document on stdout instead of the summary (docs/json.md)");
  return std::function<int()>([a] {
    CalibrateOptions co;
    if (!parse_calib_algorithm(a->algorithm, &co.algorithm))
      throw Error("--algorithm: unknown algorithm '" + a->algorithm + "' (entropy | minmax | percentile)");
    if (!(a->percentile > 0 && a->percentile <= 100)) throw Error("--percentile must be in (0, 100]");
    if (a->d.synthetic > 0 && a->d.b.num_batches > 0)
      throw Error("--synthetic N is --random-input --num-batches N: give one of --synthetic and --num-batches");
    co.percentile = a->percentile;
    co.threads = a->threads;
    co.progress = !a->quiet && !a->json;
    co.cache_path = a->out;
    co.recalibrate = a->recalibrate;
    co.all_tensors = !a->int8_only;
    co.true_header = a->true_header;
    co.backend = a->backend;
    require_backend(a->backend);  // before the model and the data are read
    Network net = load_network(a->m);
    Plan plan = make_plan_from(net, a->m);
    co.trt_version = a->trt_version > 0 ? a->trt_version : dla_target_info(plan.target).calibration_version;
    std::unique_ptr<Batcher> batcher;
    bool cached = std::filesystem::exists(a->out) && !a->recalibrate;
    if (cached) {
      // Reuse only a cache made for this model (and this algorithm, where the header tells).
      const std::string why = cache_mismatch(net, plan, read_calibration_cache(a->out), &co.algorithm);
      if (!why.empty()) throw Error(a->out + ": not reused: " + why + "; --recalibrate overwrites it");
    }
    if (!cached) {
      DataArgs d = a->d;
      if (d.synthetic > 0) d.b.num_batches = d.synthetic;
      batcher = make_batcher_from(d, net, a->src.random || d.synthetic > 0);
    }
    struct NoData : Batcher {
      int batch_size() const override { return 1; }
      int num_batches() const override { return 0; }
      bool next(TensorMap*) override { return false; }
      void reset() override {}
    } none;
    CalibrationResult r = calibrate(net, plan, batcher ? *batcher : none, co);
    if (a->json) {
      print_calibrate_json(*a, net, plan, r, co);
      return 0;
    }
    if (!a->quiet) {
      size_t int8 = int8_tensors(net, plan_precisions(plan)).size();
      if (r.from_cache)
        std::printf("used existing cache %s (%zu tensors, TRT-%d-%s); --recalibrate to calibrate again\n",
                    a->out.c_str(), r.cache.scales.size(), r.cache.trt_version, r.cache.algorithm.c_str());
      else
        std::printf("calibrated %zu tensors (%zu read or written by INT8 layers) with %s on %d batches (%d samples); "
                    "%d ranges changed by DLA tying\nwrote %s (TRT-%d-%s)\n",
                    r.cache.scales.size(), int8, std::string(to_string(co.algorithm)).c_str(), r.batches, r.samples,
                    r.tied_tensors, a->out.c_str(), r.cache.trt_version, r.cache.algorithm.c_str());
      if (!r.from_cache)
        std::printf("time: FP32 runs %.2f s, statistics %.2f s, thresholds %.2f s\n", r.run_seconds,
                    r.statistics_seconds, r.threshold_seconds);
      if (!r.from_cache && co.algorithm != CalibAlgorithm::kEntropy && !co.true_header)
        std::printf("note: the header says EntropyCalibration2 although %s chose the scales: trtexec "
                    "(IInt8EntropyCalibrator2) skips a cache of another algorithm; --true-header writes %s\n",
                    std::string(to_string(co.algorithm)).c_str(),
                    std::string(cache_algorithm_name(co.algorithm)).c_str());
      if (!r.from_cache) print_coarsened(coarsened_ranges(r.untied, r.ranges), stdout);
      if (r.cache.zero_scales > 0)
        std::printf("note: %d cache lines have scale 0; read as %g\n", r.cache.zero_scales, double(kMinCalibrationScale));
    }
    return 0;
  });
});

}  // namespace
