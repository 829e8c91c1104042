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

// Where the data comes from: images, .npy files, or seeded random data.
struct DataArgs {
  std::string dir;                  // images
  std::vector<std::string> npy;     // name=file
  int synthetic = 0;                // batches (calibrate) / samples (compare) of random data
  float lo = 0.f, hi = 1.f;         // pixel range, and the random data range
  std::string resize = "letterbox", order = "nchw", channels_order = "rgb", dtype = "fp32", last = "keep";
  std::vector<float> mean, std;
  int max_images = 0;
  std::string input;
  uint64_t seed = 0;
};

inline void add_image_args(CLI::App* sub, DataArgs& d) {
  sub->add_option("--input", d.input, "the model input the images feed (default: the only one)");
  sub->add_option("--resize", d.resize, "letterbox | linear")->capture_default_str();
  sub->add_option("--order", d.order, "nchw | nhwc")->capture_default_str();
  sub->add_option("--channels", d.channels_order, "rgb | bgr")->capture_default_str();
  sub->add_option("--range", d.lo, "pixel 0 maps to this value")->capture_default_str();
  sub->add_option("--range-hi", d.hi, "pixel 255 maps to this value")->capture_default_str();
  sub->add_option("--mean", d.mean, "per-channel mean subtracted after --range scaling")->delimiter(',');
  sub->add_option("--std", d.std, "per-channel std dividing after the mean")->delimiter(',');
  sub->add_option("--dtype", d.dtype, "input data type: fp32 | fp16 | int8 | uint8")->capture_default_str();
  sub->add_option("--last-batch", d.last, "partial last batch: keep | pad | drop")->capture_default_str();
  sub->add_option("--max-images", d.max_images, "use at most N images (0: all)");
  sub->add_option("--seed", d.seed, "seed of --synthetic / --random-input data")->capture_default_str();
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

inline std::unique_ptr<Batcher> make_batcher_from(const DataArgs& d, const Network& net, int batch_size,
                                                  int random_batches) {
  auto specs = input_specs(net);
  LastBatch last;
  if (!parse_last_batch(d.last, &last)) throw Error("--last-batch: '" + d.last + "' is not keep | pad | drop");
  int sources = (!d.dir.empty()) + (!d.npy.empty()) + (random_batches > 0);
  if (sources != 1) throw Error("give exactly one data source: an image folder, --calib-npy/--data-npy files, or random data");
  if (random_batches > 0) return make_synthetic_batcher(specs, batch_size, random_batches, d.lo, d.hi, d.seed);
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
    return make_npy_batcher(files, specs, batch_size, last);
  }
  ImageBatcherOptions o;
  o.dir = d.dir;
  o.input = d.input;
  if (!parse_resize_method(d.resize, &o.resize)) throw Error("--resize: '" + d.resize + "' is not letterbox | linear");
  if (d.order != "nchw" && d.order != "nhwc" && d.order != "NCHW" && d.order != "NHWC") throw Error("--order: '" + d.order + "' is not nchw | nhwc");
  o.nchw = d.order == "nchw" || d.order == "NCHW";
  if (d.channels_order != "rgb" && d.channels_order != "bgr") throw Error("--channels: '" + d.channels_order + "' is not rgb | bgr");
  o.bgr = d.channels_order == "bgr";
  o.lo = d.lo;
  o.hi = d.hi;
  o.mean = d.mean;
  o.std = d.std;
  if (!parse_data_type(d.dtype, &o.type)) throw Error("--dtype: unknown data type '" + d.dtype + "'");
  o.last = last;
  o.max_images = d.max_images;
  // Channels from the input's dims (1 or 3).
  for (auto& s : specs)
    if ((o.input.empty() || s.name == o.input) && s.dims.size() == 4) o.channels = int(o.nchw ? s.dims[1] : s.dims[3]);
  return make_image_batcher(o, specs, batch_size);
}

}  // namespace tandem::cli
