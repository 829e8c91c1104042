// Options shared by `tandem plan` and `tandem export trtexec|dot`: the model, its shapes and the
// plan options. Parsing errors throw tandem::Error (one line, exit code 2).
#pragma once

#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>
#include <vector>

#include "options.h"
#include "tandem/onnx.h"
#include "tandem/plan.h"

namespace tandem::cli {

struct PlanArgs {
  std::string model;
  std::vector<std::string> shapes, input_values;
  std::string target = "orin", precision = "int8", strategy = "seed";
  int max_chunks = 1, min_layers = 20, max_regions = 0, dla_core = 0, optimization_level = 3;
  bool fp8 = false, verbose = false, fp16_flag = false, int8_flag = false;
  CLI::Option* precision_opt = nullptr;
  std::vector<std::string> layer_device, layer_precision;
  CLI::Option* max_chunks_opt = nullptr;  // graph: --max-chunks caps the regions only when given
};

inline void add_plan_args(CLI::App* sub, PlanArgs& a) {
  sub->add_option("model", a.model, "model.onnx")->required();
  add_shape_option(sub, a.shapes);
  add_input_value_option(sub, a.input_values);
  sub->add_option("--target", a.target, "DLA target: orin | xavier")->capture_default_str();
  a.precision_opt = sub->add_option("--precision", a.precision, "DLA precision: int8 | fp16")->capture_default_str();
  sub->add_flag("--fp16", a.fp16_flag, "trtexec spelling of --precision fp16")->excludes(a.precision_opt);
  sub->add_flag("--int8", a.int8_flag, "trtexec spelling of --precision int8")->excludes(a.precision_opt)->excludes("--fp16");
  sub->add_option("--strategy", a.strategy, "seed | graph")->capture_default_str();
  a.max_chunks_opt = sub->add_option("--max-chunks", a.max_chunks,
                  "seed: DLA chunks to take, largest first (<= 0: all); graph: cap on DLA regions")
      ->capture_default_str();
  sub->add_option("--min-layers", a.min_layers, "smallest DLA chunk/region kept (<= 0: any)")->capture_default_str();
  sub->add_option("--dla-core,--useDLACore", a.dla_core, "DLA core (0 .. cores-1)")->capture_default_str();
  sub->add_option("--optimization-level", a.optimization_level, "builder optimization level 0..5")->capture_default_str();
  sub->add_flag("--fp8", a.fp8, "allow FP8 on the GPU (as the seed's fp8)");
  sub->add_flag("-v,--verbose", a.verbose, "log the DLA check's layers and chunks to stderr (the seed's verbose)");
  sub->add_option("--layer-device", a.layer_device, "NAME:gpu|dla (repeatable)")->allow_extra_args(false);
  sub->add_option("--layer-precision", a.layer_precision, "NAME:fp16|int8|fp32 (repeatable)")->allow_extra_args(false);
}

inline std::pair<std::string, std::string> split_last_colon(const std::string& s, const char* opt) {
  const auto c = s.rfind(':');
  if (c == std::string::npos || c == 0 || c + 1 == s.size())
    throw Error(std::string(opt) + " '" + s + "': expected NAME:VALUE");
  return {s.substr(0, c), s.substr(c + 1)};
}

inline PlanOptions plan_options_from(const PlanArgs& a) {
  PlanOptions po;
  if (!parse_strategy(a.strategy, &po.strategy))
    throw Error("--strategy: unknown strategy '" + a.strategy + "' (seed | graph)");
  if (!parse_dla_target(a.target, &po.dla.target))
    throw Error("--target: unknown DLA target '" + a.target + "' (orin | xavier)");
  const std::string precision = a.fp16_flag ? "fp16" : a.int8_flag ? "int8" : a.precision;
  if (!parse_dla_precision(precision, &po.dla.precision))
    throw Error("--precision: unknown precision '" + precision + "' (int8 | fp16)");
  po.max_chunks = a.max_chunks;
  po.min_layers = a.min_layers;
  if (po.strategy == Strategy::kGraph && a.max_chunks_opt && a.max_chunks_opt->count() > 0)
    po.max_regions = a.max_chunks;
  po.dla_core = a.dla_core;
  po.optimization_level = a.optimization_level;
  po.fp8 = a.fp8;
  po.dla.verbose_layers = po.dla.verbose_chunks = a.verbose;
  for (const auto& s : a.layer_device) {
    auto [name, v] = split_last_colon(s, "--layer-device");
    Device d;
    if (!parse_device(v, &d)) throw Error("--layer-device '" + s + "': device must be gpu or dla");
    po.layer_device.emplace_back(name, d);
  }
  for (const auto& s : a.layer_precision) {
    auto [name, v] = split_last_colon(s, "--layer-precision");
    Precision p;
    if (!parse_precision(v, &p) || p == Precision::kFP8)
      throw Error("--layer-precision '" + s + "': precision must be fp16, int8 or fp32");
    po.layer_precision.emplace_back(name, p);
  }
  return po;
}

// The plan's warnings on stderr; a plan with no DLA layer always gets one loud line.
inline void print_plan_warnings(const Network& net, const Plan& plan) {
  for (const auto& w : plan.warnings) std::fprintf(stderr, "tandem: warning: %s\n", w.c_str());
  int dla = 0;
  for (const auto& l : plan.layers) dla += l.device == Device::kDLA;
  bool said = false;
  for (const auto& w : plan.warnings) said |= w.find("DLA") != std::string::npos && w.find("no ") != std::string::npos;
  if (dla == 0 && !said)
    std::fprintf(stderr, "tandem: warning: the plan has no DLA layer: all %zu layers run on the GPU "
                 "(try --strategy graph or a smaller --min-layers)\n", net.layers.size());
}

inline Network load_plan_network(const PlanArgs& a) {
  ImportOptions io;
  for (const auto& s : a.shapes) io.shapes.push_back(parse_shape_arg(s));
  for (const auto& s : a.input_values) io.input_values.push_back(parse_input_value_arg(s));
  return import_onnx(a.model, io);
}

}  // namespace tandem::cli
