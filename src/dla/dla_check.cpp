// can_run_on_dla: the seed's chunking (trtutils builder/_dla.py), offline, plus its reports.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "tandem/dla.h"

namespace tandem {

int DlaReport::dla_layer_count() const {
  int n = 0;
  for (const auto& s : layers) n += s.ok ? 1 : 0;
  return n;
}

int DlaReport::dla_chunk_count() const {
  int n = 0;
  for (const auto& c : chunks) n += (c.on_dla && !c.layers.empty()) ? 1 : 0;
  return n;
}

namespace {
std::string_view py_bool(bool b) { return b ? "True" : "False"; }
}  // namespace

DlaReport can_run_on_dla(const Network& net, const DlaOptions& opt) {
  DlaReport r;
  r.target = opt.target;
  r.precision = opt.precision;
  r.layers.reserve(net.layers.size());
  // Same state machine as the seed: maximal runs of equal verdict, in network order.
  bool last_dla = false;
  Chunk cur;
  cur.start = 0;
  const int n = static_cast<int>(net.layers.size());
  for (int idx = 0; idx < n; ++idx) {
    Support s = check_layer(net, idx, opt);
    const bool dla = s.ok;
    if (!dla) r.full_dla = false;
    if (dla != last_dla && !cur.layers.empty()) {
      cur.end = idx - 1;
      cur.on_dla = last_dla;
      r.chunks.push_back(std::move(cur));
      cur = Chunk{};
      cur.layers = {idx};
      cur.start = idx;
    } else {
      cur.layers.push_back(idx);
    }
    last_dla = dla;
    if (opt.verbose_layers) {
      const Layer& l = net.layers[idx];
      const std::string_view prec =
          l.outputs.empty() ? "FLOAT" : data_type_info(net.tensors[l.outputs[0]].type).trt_name;
      std::fprintf(stderr, "Layer %d: %s, %s, %.*s, %s\n", idx, l.name.c_str(),
                   std::string(layer_kind_info(l.kind).trt_type).c_str(), int(prec.size()),
                   prec.data(), l.onnx_node.c_str());
      if (s.reason.empty())
        std::fprintf(stderr, "\tDLA: %s\n", py_bool(dla).data());
      else
        std::fprintf(stderr, "\tDLA: %s (%s)\n", py_bool(dla).data(), s.reason.c_str());
    }
    r.layers.push_back(std::move(s));
  }
  cur.end = n - 1;
  cur.on_dla = last_dla;
  r.chunks.push_back(std::move(cur));
  if (opt.verbose_chunks) {
    std::fprintf(stderr, "Found %zu Chunks of Layers\n", r.chunks.size());
    for (size_t i = 0; i < r.chunks.size(); ++i) {
      const Chunk& c = r.chunks[i];
      std::fprintf(stderr, "\tChunk %zu: [%d - %d], %zu layers, %s\n", i, c.start, c.end,
                   c.layers.size(), c.on_dla ? "DLA" : "GPU");
    }
  }
  return r;
}

namespace {
double percent(const DlaReport& r) {
  return r.layers.empty() ? 0.0 : 100.0 * r.dla_layer_count() / double(r.layers.size());
}
}  // namespace

std::string dla_report_text(const Network& net, const DlaReport& r, const std::string& model) {
  const DlaTargetInfo& T = dla_target_info(r.target);
  std::string o;
  o += fmt::format("Fully DLA Compatible: {}, Layers: {} / {} ({:.2f} % Compatible)\n",
                   py_bool(r.full_dla), r.dla_layer_count(), r.layers.size(), percent(r));
  o += fmt::format("Model: {}\nTarget: {}, TensorRT {}, precision: {}\n\n", model, T.name,
                   T.tensorrt, to_string(r.precision));
  size_t wname = 4, wtype = 4;
  for (const auto& l : net.layers) {
    wname = std::max(wname, l.name.size());
    wtype = std::max(wtype, layer_kind_info(l.kind).trt_type.size());
  }
  o += fmt::format("{:>5}  {:<{}}  {:<{}}  {:<3}  {}\n", "idx", "name", wname, "type", wtype, "DLA",
                   "reason");
  for (size_t i = 0; i < r.layers.size(); ++i) {
    const Layer& l = net.layers[i];
    o += fmt::format("{:>5}  {:<{}}  {:<{}}  {:<3}  {}\n", i, l.name, wname,
                     layer_kind_info(l.kind).trt_type, wtype, r.layers[i].ok ? "yes" : "no",
                     r.layers[i].reason);
  }
  o += fmt::format("\nChunks: {}\n", r.chunks.size());
  o += fmt::format("{:>5}  {:>5}  {:>5}  {:>5}  {}\n", "chunk", "start", "end", "size", "device");
  for (size_t i = 0; i < r.chunks.size(); ++i) {
    const Chunk& c = r.chunks[i];
    o += fmt::format("{:>5}  {:>5}  {:>5}  {:>5}  {}\n", i, c.start, c.end, c.layers.size(),
                     c.on_dla ? "DLA" : "GPU");
  }
  const int need = r.dla_chunk_count();
  o += fmt::format("\nDLA loadables needed: {} (limit {} per core: {})\n", need,
                   T.max_loadables_per_core,
                   need <= T.max_loadables_per_core ? "within limit" : "EXCEEDS limit");
  return o;
}

std::string dla_report_json(const Network& net, const DlaReport& r, const std::string& model) {
  const DlaTargetInfo& T = dla_target_info(r.target);
  nlohmann::ordered_json j;
  j["schema"] = "tandem/dla-check/v1";  // key names shared by every tandem JSON document (docs/json.md)
  j["model"] = model;
  j["target"] = T.name;
  j["tensorrt"] = T.tensorrt;
  j["dla_precision"] = to_string(r.precision);
  j["full_dla"] = r.full_dla;
  j["dla_layers"] = r.dla_layer_count();
  j["gpu_layers"] = int(r.layers.size()) - r.dla_layer_count();
  j["total_layers"] = r.layers.size();
  j["percent_compatible"] = std::round(percent(r) * 100.0) / 100.0;
  auto& layers = j["layers"] = nlohmann::ordered_json::array();
  for (size_t i = 0; i < r.layers.size(); ++i) {
    const Layer& l = net.layers[i];
    nlohmann::ordered_json e;
    e["index"] = i;
    e["name"] = l.name;
    e["kind"] = to_string(l.kind);
    e["trt_type"] = layer_kind_info(l.kind).trt_type;
    e["onnx_node"] = l.onnx_node;
    e["dla"] = r.layers[i].ok;
    e["reason"] = r.layers[i].reason;
    e["int8_equal_ranges"] = r.layers[i].int8_equal_ranges;
    layers.push_back(std::move(e));
  }
  auto& chunks = j["chunks"] = nlohmann::ordered_json::array();
  for (size_t i = 0; i < r.chunks.size(); ++i) {
    const Chunk& c = r.chunks[i];
    chunks.push_back({{"index", i},
                      {"start", c.start},
                      {"end", c.end},
                      {"size", c.layers.size()},
                      {"device", c.on_dla ? "DLA" : "GPU"}});
  }
  j["loadables"] = {{"needed", r.dla_chunk_count()},
                    {"limit_per_core", T.max_loadables_per_core},
                    {"within_limit", r.dla_chunk_count() <= T.max_loadables_per_core}};
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace tandem
