// Options shared by `tandem calibrate`, `tandem compare` and `tandem export qdq`: the model and
// shapes, the plan options, and where calibration / comparison data comes from.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "plan_cli.h"
#include "tandem/onnx.h"
#include "tandem/plan.h"
#include "tandem/quant.h"

namespace tandem::cli {

// The model, its shapes and the plan options: plan_cli.h's PlanArgs (as `tandem plan`).
using ModelArgs = PlanArgs;
inline void add_model_args(CLI::App* sub, ModelArgs& a) { add_plan_args(sub, a); }
inline Network load_network(const ModelArgs& a) { return load_plan_network(a); }
inline Plan make_plan_from(const Network& net, const ModelArgs& a) { return make_plan(net, plan_options_from(a)); }

// Where the data comes from: images, .npy files, or seeded random data; batched as options.h's
// BatchArgs says (the same names and defaults in calibrate, compare, build and build-dla).
struct DataArgs {
  std::string dir;                  // images
  std::vector<std::string> npy;     // name=file
  int synthetic = 0;                // calibrate --synthetic N: --random-input --num-batches N
  float lo = 0.f, hi = 1.f;         // pixel range, and the random data range
  std::string resize = "letterbox", order = "nchw", dtype = "fp32";
  std::vector<float> mean, std;
  int max_images = 0;
  std::string input;
  uint64_t seed = 0;
  std::vector<float> input_scale;   // --input-scale LO HI (same as --range LO --range-hi HI)
  BatchArgs b;
};

inline void add_image_args(CLI::App* sub, DataArgs& d) {
  sub->add_option("--input", d.input, "the model input the images feed (default: the only one)");
  sub->add_option("--resize", d.resize, "letterbox | linear")->capture_default_str();
  add_order_option(sub, d.order);
  auto* lo = sub->add_option("--range", d.lo, "pixel 0 maps to this value (and the random data's low end)")->capture_default_str();
  auto* hi = sub->add_option("--range-hi", d.hi, "pixel 255 maps to this value (and the random data's high end)")->capture_default_str();
  sub->add_option("--input-scale", d.input_scale, "LO HI: the same as --range LO --range-hi HI (build's spelling)")
      ->expected(2)->excludes(lo)->excludes(hi);
  sub->add_option("--mean", d.mean, "per-channel mean subtracted after --range scaling")->delimiter(',');
  sub->add_option("--std", d.std, "per-channel std dividing after the mean")->delimiter(',');
  sub->add_option("--dtype", d.dtype, "input data type: fp32 | fp16 | int8 | uint8")->capture_default_str();
  sub->add_option("--max-images", d.max_images, "use at most N images (0: all)");
  sub->add_option("--seed", d.seed, "seed of the random data (--random-input)")->capture_default_str();
}

// The data source group: images, .npy files, or seeded random data (the same names everywhere),
// and how they are batched (options.h's BatchArgs).
struct SourceArgs {
  bool random = false;
};
inline void add_data_source_args(CLI::App* sub, DataArgs& d, SourceArgs& s, const char* what,
                                 int default_random_batches = kDefaultRandomBatches) {
  add_calib_dir_option(sub, d.dir, what);
  sub->add_option("--calib-npy,--calibration-npy,--data-npy", d.npy, "NAME=FILE.npy per input, [M, ...] samples (repeatable)");
  sub->add_flag("--random-input,--synthetic-calibration", s.random, "seeded random data in [--range, --range-hi] (--seed)");
  add_batch_args(sub, d.b, default_random_batches);
}

// Checks a calibration cache against the model before it is reused: it must give a scale to every
// tensor this plan's INT8 layers touch, and a header naming a true algorithm (MinMaxCalibration,
// LegacyCalibration) must match `algorithm` when one is given. Returns "" or the reason.
inline std::string cache_mismatch(const Network& net, const Plan& plan, const CalibrationCache& c,
                                  const CalibAlgorithm* algorithm) {
  const auto have = c.scale_map();
  std::vector<std::string> missing;
  const auto want = int8_tensors(net, plan_precisions(plan));
  for (const auto& t : want)
    if (!have.count(t)) missing.push_back(t);
  if (!missing.empty())
    return "it has no scale for " + std::to_string(missing.size()) + " of the " + std::to_string(want.size()) +
           " tensors this model's INT8 layers touch (first: '" + missing[0] + "'): it was made for another model or plan";
  if (algorithm && c.algorithm != "EntropyCalibration2" && c.algorithm != cache_algorithm_name(*algorithm))
    return "its header says " + c.algorithm + ", not " + std::string(cache_algorithm_name(*algorithm)) + " (--algorithm " +
           std::string(to_string(*algorithm)) + ")";
  return "";
}

// One warning line (and up to 5 tensors) when INT8 range tying coarsened ranges more than 4x:
// a tied range that large rounds the small tensor's values to a few levels (an SE gate, say).
inline void print_coarsened(const std::vector<RangeChange>& c, FILE* to) {
  if (c.empty()) return;
  std::fprintf(to, "warning: INT8 range tying (Concat, ElementWise, Pooling rules) coarsens %zu ranges more than 4x:", c.size());
  for (size_t i = 0; i < c.size() && i < 5; ++i)
    std::fprintf(to, "%s '%s' %.4g -> %.4g", i ? "," : "", c[i].tensor.c_str(), double(c[i].before), double(c[i].after));
  std::fprintf(to, "%s\n", c.size() > 5 ? ", ..." : "");
}

// The batcher of the data group: one source, --batch-size samples a batch, --num-batches batches
// (random data: exactly; files: at most).
inline std::unique_ptr<Batcher> make_batcher_from(const DataArgs& d, const Network& net, bool random) {
  check_batch_args(d.b);
  auto specs = input_specs(net);
  const float lo = d.input_scale.size() == 2 ? d.input_scale[0] : d.lo;
  const float hi = d.input_scale.size() == 2 ? d.input_scale[1] : d.hi;
  LastBatch last;
  if (!parse_last_batch(d.b.last_batch, &last)) throw Error("--last-batch: '" + d.b.last_batch + "' is not drop | keep | pad");
  int sources = (!d.dir.empty()) + (!d.npy.empty()) + random;
  if (sources != 1) throw Error("give exactly one data source: --calib-dir, --calib-npy, or --random-input");
  if (random) return make_synthetic_batcher(specs, d.b.batch_size, d.b.random_batches(), lo, hi, d.seed);
  auto at_most = [&](std::unique_ptr<Batcher> b) {
    if (d.b.num_batches > 0 && d.b.num_batches < b->num_batches()) b = limit_batches(std::move(b), d.b.num_batches);
    return b;
  };
  if (!d.npy.empty()) {
    std::vector<std::pair<std::string, std::string>> files;
    for (auto& s : d.npy) {
      size_t eq = s.find('=');
      if (eq == std::string::npos) {
        if (specs.size() != 1) throw Error("'" + s + "': name the input as NAME=FILE.npy (the model has several inputs)");
        files.emplace_back(specs[0].name, s);
      } else {
        files.emplace_back(s.substr(0, eq), s.substr(eq + 1));
      }
    }
    return at_most(make_npy_batcher(files, specs, d.b.batch_size, last));
  }
  ImageBatcherOptions o;
  o.dir = d.dir;
  const std::string order = lower(d.order);
  o.input = d.input;
  if (!parse_resize_method(d.resize, &o.resize)) throw Error("--resize: '" + d.resize + "' is not letterbox | linear");
  if (order != "nchw" && order != "nhwc") throw Error("--order: '" + d.order + "' is not nchw | nhwc");
  o.nchw = order == "nchw";
  o.bgr = d.b.channels == "bgr";
  o.lo = lo;
  o.hi = hi;
  o.mean = d.mean;
  o.std = d.std;
  if (!parse_data_type(d.dtype, &o.type)) throw Error("--dtype: unknown data type '" + d.dtype + "'");
  o.last = last;
  o.max_images = d.max_images;
  // Channels from the input's dims (1 or 3).
  for (auto& s : specs)
    if ((o.input.empty() || s.name == o.input) && s.dims.size() == 4) o.channels = int(o.nchw ? s.dims[1] : s.dims[3]);
  return at_most(make_image_batcher(o, specs, d.b.batch_size));
}

}  // namespace tandem::cli
