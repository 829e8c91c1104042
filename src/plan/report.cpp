// Plan reports: text table and JSON (schema in docs/planning.md).
#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "tandem/plan.h"

namespace tandem {

namespace {
std::string flags(const Plan& p) {
  std::string s;
  if (p.int8) s += "INT8";
  if (p.fp16) s += s.empty() ? "FP16" : " + FP16";
  if (p.fp8) s += s.empty() ? "FP8" : " + FP8";
  return s;
}
}  // namespace

std::string plan_report_text(const Network& net, const Plan& plan, const std::string& model) {
  const DlaTargetInfo& T = dla_target_info(plan.target);
  std::string o;
  o += fmt::format("Model: {}\n", model);
  o += fmt::format("Strategy: {}, target: {}, TensorRT {}, DLA check precision: {}\n",
                   to_string(plan.strategy), T.name, T.tensorrt, to_string(plan.check_precision));
  o += fmt::format(
      "Case: {} (default device {}, GPU fallback {}, DLA core {}, {}, optimization level {})\n",
      to_string(plan.plan_case), to_string(plan.default_device), plan.gpu_fallback ? "on" : "off",
      plan.dla_core, flags(plan), plan.optimization_level);
  int dla = 0;
  for (const auto& p : plan.layers) dla += p.device == Device::kDLA ? 1 : 0;
  o += fmt::format("Layers on DLA: {} / {}\n", dla, plan.layers.size());
  for (const auto& w : plan.warnings) o += fmt::format("warning: {}\n", w);
  size_t wname = 4, wtype = 4;
  for (const auto& l : net.layers) {
    wname = std::max(wname, l.name.size());
    wtype = std::max(wtype, layer_kind_info(l.kind).trt_type.size());
  }
  o += fmt::format("\n{:>5}  {:<{}}  {:<{}}  {:<6}  {:<9}  {:>6}  {}\n", "idx", "name", wname, "type",
                   wtype, "device", "precision", "region", "reason");
  for (size_t i = 0; i < plan.layers.size(); ++i) {
    const auto& p = plan.layers[i];
    const Layer& l = net.layers[i];
    o += fmt::format("{:>5}  {:<{}}  {:<{}}  {:<6}  {:<9}  {:>6}  {}\n", i, l.name, wname,
                     layer_kind_info(l.kind).trt_type, wtype, to_string(p.device),
                     to_string(p.precision), p.region >= 0 ? std::to_string(p.region) : "-",
                     p.reason);
  }
  o += fmt::format("\nRegions: {} DLA loadables (limit {} per core), {} candidates\n",
                   plan.dla_region_count(), T.max_loadables_per_core, plan.regions.size());
  o += fmt::format("{:>6}  {:>5}  {:>5}  {:>5}  {:<6}  {}\n", "region", "start", "end", "size",
                   "device", "reason");
  for (size_t i = 0; i < plan.regions.size(); ++i) {
    const Region& r = plan.regions[i];
    o += fmt::format("{:>6}  {:>5}  {:>5}  {:>5}  {:<6}  {}\n", i, r.start, r.end, r.layers.size(),
                     r.on_dla ? "DLA" : "GPU", r.reason);
  }
  o += fmt::format("\nBoundary traffic: {} tensors, {} bytes\n", plan.crossings.size(),
                   plan.crossing_bytes());
  for (const auto& c : plan.crossings)
    o += fmt::format("  {} {} -> {} {} bytes\n", net.tensors[c.tensor].name, to_string(c.from),
                     to_string(c.to), c.bytes);
  return o;
}

std::string plan_report_json(const Network& net, const Plan& plan, const std::string& model) {
  const DlaTargetInfo& T = dla_target_info(plan.target);
  nlohmann::ordered_json j;
  j["schema"] = "tandem/plan/v1";  // key names shared by every tandem JSON document (docs/json.md)
  j["model"] = model;
  j["strategy"] = to_string(plan.strategy);
  j["target"] = T.name;
  j["tensorrt"] = T.tensorrt;
  j["dla_precision"] = to_string(plan.check_precision);
  j["case"] = to_string(plan.plan_case);
  j["default_device"] = to_string(plan.default_device);
  j["gpu_fallback"] = plan.gpu_fallback;
  j["dla_core"] = plan.dla_core;
  j["fp16"] = plan.fp16;
  j["int8"] = plan.int8;
  j["fp8"] = plan.fp8;
  j["optimization_level"] = plan.optimization_level;
  int dla = 0;
  for (const auto& p : plan.layers) dla += p.device == Device::kDLA;
  j["dla_layers"] = dla;
  j["gpu_layers"] = int(plan.layers.size()) - dla;
  j["total_layers"] = plan.layers.size();
  j["warnings"] = plan.warnings;
  auto& layers = j["layers"] = nlohmann::ordered_json::array();
  for (size_t i = 0; i < plan.layers.size(); ++i) {
    const auto& p = plan.layers[i];
    const Layer& l = net.layers[i];
    layers.push_back({{"index", i},
                      {"name", l.name},
                      {"kind", to_string(l.kind)},
                      {"trt_type", layer_kind_info(l.kind).trt_type},
                      {"device", to_string(p.device)},
                      {"precision", to_string(p.precision)},
                      {"region", p.region >= 0 ? nlohmann::ordered_json(p.region) : nlohmann::ordered_json(nullptr)},
                      {"reason", p.reason}});
  }
  auto& regions = j["regions"] = nlohmann::ordered_json::array();
  for (size_t i = 0; i < plan.regions.size(); ++i) {
    const Region& r = plan.regions[i];
    regions.push_back({{"index", i},
                       {"start", r.start},
                       {"end", r.end},
                       {"size", r.layers.size()},
                       {"device", r.on_dla ? "DLA" : "GPU"},
                       {"layers", r.layers},
                       {"reason", r.reason}});
  }
  j["loadables"] = {{"needed", plan.dla_region_count()}, {"limit_per_core", T.max_loadables_per_core}};
  auto& cr = j["crossings"] = nlohmann::ordered_json::array();
  for (const auto& c : plan.crossings)
    cr.push_back({{"tensor", net.tensors[c.tensor].name},
                  {"shape", net.tensors[c.tensor].dims},
                  {"from", to_string(c.from)},
                  {"to", to_string(c.to)},
                  {"bytes", c.bytes}});
  j["crossing_bytes"] = plan.crossing_bytes();
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace tandem
