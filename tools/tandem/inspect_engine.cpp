// tandem inspect model.engine [--json]: what an engine records, as TensorRT's engine inspector and
// `trtexec --dumpLayerInfo` show it. Only recorded facts are printed; what format 1 does not
// keep (a device key for the tactics, per-layer tactics) is printed as absent, never guessed.
// The JSON keys are documented in docs/engine-format.md ("tandem inspect on an engine").
#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "inspect.h"
#include "tandem/engine.h"

namespace tandem::cli {

namespace {

using nlohmann::json;

// "TNDMENGN", the first 8 bytes of every engine file (src/engine/format.cpp, kMagic).
constexpr char kEngineMagic[8] = {'T', 'N', 'D', 'M', 'E', 'N', 'G', 'N'};

// What a layer's weights take in the file: encoding 1 (INT8 per output channel) keeps one byte
// per element plus one f32 scale per channel; encoding 0 keeps the raw bytes.
struct WeightsUse {
  WeightsId id;
  bool int8 = false;
  uint64_t stored_bytes = 0;
};

std::vector<WeightsId> layer_weights(const Layer& l) {
  std::vector<WeightsId> ids;
  auto add = [&](WeightsId w) {
    if (w >= 0) ids.push_back(w);
  };
  if (const auto* c = std::get_if<ConvolutionParams>(&l.params)) {
    add(c->kernel_weights);
    add(c->bias_weights);
  } else if (const auto* s = std::get_if<ScaleParams>(&l.params)) {
    add(s->scale);
    add(s->shift);
    add(s->power);
  } else if (const auto* k = std::get_if<ConstantParams>(&l.params)) {
    add(k->weights);
  }
  return ids;
}

WeightsUse weights_use(const EngineContents& e, WeightsId id, const std::set<WeightsId>& int8) {
  const Weights& w = e.network.weights[id];
  WeightsUse u{id};
  u.int8 = int8.count(id) > 0;
  u.stored_bytes = u.int8 ? uint64_t(w.count()) + uint64_t(w.dims.empty() ? 0 : w.dims[0]) * 4 : w.bytes.size();
  return u;
}

// fused_with per layer name, from the META fusions the passes recorded ("A + B" folds B into A;
// "A + B (activation fused by the backend)" keeps both layers and runs them as one). Matched
// against the engine's own layer names, longest first, so names with spaces are safe.
std::map<std::string, std::vector<std::string>> fused_with(const EngineContents& e) {
  static const std::string kMarkSuffix = " (activation fused by the backend)";
  std::vector<std::string> names;
  for (const Layer& l : e.network.layers) names.push_back(l.name);
  std::sort(names.begin(), names.end(), [](const auto& a, const auto& b) { return a.size() > b.size(); });
  std::map<std::string, std::vector<std::string>> out;
  for (const std::string& f : e.meta.fusions) {
    for (const std::string& n : names) {
      if (f.size() <= n.size() + 3 || f.compare(0, n.size() + 3, n + " + ") != 0) continue;
      std::string other = f.substr(n.size() + 3);
      const bool mark = other.size() > kMarkSuffix.size() &&
                        other.compare(other.size() - kMarkSuffix.size(), kMarkSuffix.size(), kMarkSuffix) == 0;
      if (mark) other.resize(other.size() - kMarkSuffix.size());
      out[n].push_back(other);
      if (mark) out[other].push_back(n);
      break;
    }
  }
  return out;
}

json scale_json(const EngineContents& e, const std::string& tensor) {
  auto it = e.scales.find(tensor);
  return it == e.scales.end() ? json(nullptr) : json(it->second);
}

json tensor_json(const EngineContents& e, TensorId t) {
  const Tensor& x = e.network.tensors[t];
  return json{{"name", x.name}, {"type", std::string(to_string(x.type))}, {"shape", x.dims},
              {"int8_scale", scale_json(e, x.name)}};
}

// "all" / "partial" / "none": how many of the layer's input and output tensors have a scale.
std::string scales_state(const EngineContents& e, const Layer& l) {
  size_t have = 0, total = 0;
  for (const auto* v : {&l.inputs, &l.outputs})
    for (TensorId t : *v) {
      ++total;
      have += e.scales.count(e.network.tensors[t].name);
    }
  return have == 0 ? "none" : have == total ? "all" : "partial";
}

json io_json(const EngineContents& e, const std::vector<TensorId>& ids, const std::vector<TensorFormat>& formats) {
  json a = json::array();
  for (size_t i = 0; i < ids.size(); ++i) {
    json j = tensor_json(e, ids[i]);
    j["format"] = {{"type", std::string(to_string(formats[i].type))},
                   {"layout", std::string(to_string(formats[i].layout))}};
    a.push_back(std::move(j));
  }
  return a;
}

json header_json(const EngineContents& e, const std::string& path) {
  const auto& m = e.meta;
  const Plan& p = e.plan;
  std::error_code ec;
  json h{{"path", path}, {"file_bytes", std::filesystem::file_size(path, ec)}, {"format_version", m.format_version},
         {"tool_version", m.tool_version}, {"created_utc", m.created_utc}, {"model_path", m.model_path},
         {"model_sha256", m.model_sha256}, {"target", m.target}, {"dla_core", p.dla_core}, {"backend", m.backend},
         {"device_key", m.tactics_device_key.empty() ? json(nullptr) : json(m.tactics_device_key)}, {"fusions", m.fusions}};
  h["options"] = m.options_json.empty() ? json::object() : json::parse(m.options_json);
  h["tactics"] = json::array();
  for (const Tactic& t : e.tactics)
    h["tactics"].push_back({{"signature", t.signature}, {"name", t.name}, {"time_ms", t.time_ms}});
  int dla = 0;
  for (const auto& l : p.layers) dla += l.device == Device::kDLA;
  h["plan"] = {{"case", std::string(to_string(p.plan_case))}, {"strategy", std::string(to_string(p.strategy))},
               {"default_device", std::string(to_string(p.default_device))}, {"gpu_fallback", p.gpu_fallback},
               {"fp16", p.fp16}, {"int8", p.int8}, {"fp8", p.fp8}, {"optimization_level", p.optimization_level},
               {"dla_precision", std::string(to_string(p.check_precision))}, {"dla_layers", dla},
               {"gpu_layers", int(p.layers.size()) - dla}, {"dla_regions", p.dla_region_count()},
               {"crossing_bytes", p.crossing_bytes()}, {"warnings", p.warnings}};
  h["inputs"] = io_json(e, e.network.inputs, e.input_formats);
  h["outputs"] = io_json(e, e.network.outputs, e.output_formats);
  return h;
}

json layer_json(const EngineContents& e, size_t i, const std::set<WeightsId>& int8,
                const std::map<std::string, std::vector<std::string>>& fused) {
  const Layer& l = e.network.layers[i];
  const LayerPlacement& pl = e.plan.layers[i];
  json j{{"index", i}, {"name", l.name}, {"kind", std::string(to_string(l.kind))},
         {"device", std::string(to_string(pl.device))}, {"precision", std::string(to_string(pl.precision))},
         {"region", pl.region >= 0 ? json(pl.region) : json(nullptr)}, {"reason", pl.reason},
         {"onnx_node", l.onnx_node}, {"onnx_op", l.onnx_op}, {"params", layer_params_text(e.network, l)},
         {"tactic", nullptr}, {"int8_scales", scales_state(e, l)}};
  j["inputs"] = json::array();
  for (TensorId t : l.inputs) j["inputs"].push_back(tensor_json(e, t));
  j["outputs"] = json::array();
  for (TensorId t : l.outputs) j["outputs"].push_back(tensor_json(e, t));
  auto f = fused.find(l.name);
  j["fused_with"] = f == fused.end() ? std::vector<std::string>{} : f->second;
  j["weights"] = json::array();
  uint64_t total = 0;
  for (WeightsId id : layer_weights(l)) {
    const WeightsUse u = weights_use(e, id, int8);
    const Weights& w = e.network.weights[id];
    j["weights"].push_back({{"name", w.name}, {"type", std::string(to_string(w.type))}, {"shape", w.dims},
                            {"encoding", u.int8 ? "int8_per_channel" : "raw"}, {"bytes", u.stored_bytes}});
    total += u.stored_bytes;
  }
  j["weight_bytes"] = total;
  return j;
}

json engine_json(const EngineContents& e, const std::string& path) {
  const std::set<WeightsId> int8(e.int8_weights.begin(), e.int8_weights.end());
  const auto fused = fused_with(e);
  json j;
  j["schema"] = "tandem/inspect-engine/v1";  // key names shared by every tandem JSON document (docs/json.md)
  j["engine"] = header_json(e, path);
  j["layers"] = json::array();
  for (size_t i = 0; i < e.network.layers.size(); ++i) j["layers"].push_back(layer_json(e, i, int8, fused));
  uint64_t wbytes = 0;
  for (size_t id = 0; id < e.network.weights.size(); ++id) wbytes += weights_use(e, WeightsId(id), int8).stored_bytes;
  std::map<std::string, int> by_precision;
  for (const auto& l : e.plan.layers) ++by_precision[std::string(to_string(l.precision))];
  j["summary"] = {{"layers", e.network.layers.size()}, {"tensors", e.network.tensors.size()},
                  {"weights", e.network.weights.size()}, {"weight_bytes", wbytes},
                  {"int8_weights", e.int8_weights.size()}, {"scales", e.scales.size()},
                  {"layers_by_precision", by_precision}};
  return j;
}

std::string tensor_text(const json& t) {
  std::vector<int64_t> d = t["shape"];
  return fmt::format("{} [{} {}]", t["name"].get<std::string>(), dims_to_string(d), t["type"].get<std::string>());
}

void print_header(const json& h) {
  fmt::print("engine      {} ({} bytes)\n", h["path"].get<std::string>(), h["file_bytes"].get<uint64_t>());
  fmt::print("format      {} (tandem {}, created {})\n", h["format_version"].get<uint32_t>(),
             h["tool_version"].get<std::string>(), h["created_utc"].get<std::string>());
  fmt::print("model       {} sha256 {}\n", h["model_path"].get<std::string>(), h["model_sha256"].get<std::string>());
  fmt::print("target      {}, DLA core {}\nbackend     {}\n", h["target"].get<std::string>(), h["dla_core"].get<int>(),
             h["backend"].get<std::string>());
  if (h["device_key"].is_null())
    fmt::print("device key  not recorded (tactics not timed, or an engine from before tandem recorded it)\n");
  else
    fmt::print("device key  {}\n", h["device_key"].get<std::string>());
  if (h["tactics"].empty()) fmt::print("tactic      none recorded\n");
  for (const auto& t : h["tactics"])
    fmt::print("tactic      {} ({:.3f} ms) for {}\n", t["name"].get<std::string>(), t["time_ms"].get<double>(),
               t["signature"].get<std::string>());
  const json& p = h["plan"];
  std::vector<std::string> prec;
  for (const char* k : {"fp16", "int8", "fp8"})
    if (p[k].get<bool>()) prec.push_back(k);
  fmt::print("plan        {}, strategy {}, default {}, gpu fallback {}, precisions {}, optimization level {}\n",
             p["case"].get<std::string>(), p["strategy"].get<std::string>(), p["default_device"].get<std::string>(),
             p["gpu_fallback"].get<bool>() ? "on" : "off", prec.empty() ? "fp32" : fmt::format("{}", fmt::join(prec, "+")),
             p["optimization_level"].get<int>());
  fmt::print("placement   {} DLA layers in {} regions, {} GPU layers, {} bytes cross devices\n",
             p["dla_layers"].get<int>(), p["dla_regions"].get<int>(), p["gpu_layers"].get<int>(),
             p["crossing_bytes"].get<int64_t>());
  fmt::print("options     {}\n", h["options"].dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  for (const char* io : {"inputs", "outputs"})
    for (const auto& t : h[io]) {
      const json& s = t["int8_scale"];
      fmt::print("{:<12}{} as {} {}{}\n", std::string(io).substr(0, std::strlen(io) - 1), tensor_text(t),
                 t["format"]["type"].get<std::string>(), t["format"]["layout"].get<std::string>(),
                 s.is_null() ? "" : fmt::format(", int8 scale {}", s.get<float>()));
    }
  {
    const auto all = h["fusions"].get<std::vector<std::string>>();
    const size_t shown = std::min<size_t>(all.size(), 10);  // the rows say what fused with what
    fmt::print("fusions     {}{}{}{}\n", all.size(), all.empty() ? "" : ": ",
               fmt::join(all.begin(), all.begin() + std::ptrdiff_t(shown), "; "),
               shown < all.size() ? fmt::format("; ... ({} more; --json lists all)", all.size() - shown) : "");
  }
  for (const auto& w : p["warnings"]) fmt::print("warning     {}\n", w.get<std::string>());
}

void print_text(const json& j) {
  print_header(j["engine"]);
  const json& s = j["summary"];
  fmt::print("layers      {} ({} weights, {} bytes stored, {} INT8-encoded; {} tensor scales)\n\n",
             s["layers"].get<size_t>(), s["weights"].get<size_t>(), s["weight_bytes"].get<uint64_t>(),
             s["int8_weights"].get<size_t>(), s["scales"].get<size_t>());
  fmt::print("{:>4}  {:<40} {:<14} {:<6} {:<6} {:<50} {:<50} {:<30} {:<7} {:>10} {}\n", "#", "name", "kind", "device",
             "prec", "inputs", "outputs", "fused with", "tactic", "w bytes", "int8 scales");
  for (const auto& l : j["layers"]) {
    std::vector<std::string> ins, outs;
    for (const auto& t : l["inputs"]) ins.push_back(tensor_text(t));
    for (const auto& t : l["outputs"]) outs.push_back(tensor_text(t));
    const auto fw = l["fused_with"].get<std::vector<std::string>>();
    fmt::print("{:>4}  {:<40} {:<14} {:<6} {:<6} {:<50} {:<50} {:<30} {:<7} {:>10} {}\n", l["index"].get<size_t>(),
               l["name"].get<std::string>(), l["kind"].get<std::string>(), l["device"].get<std::string>(),
               l["precision"].get<std::string>(), ins.empty() ? "-" : fmt::format("{}", fmt::join(ins, ", ")),
               fmt::format("{}", fmt::join(outs, ", ")), fw.empty() ? "-" : fmt::format("{}", fmt::join(fw, ", ")),
               "-", l["weight_bytes"].get<uint64_t>(), l["int8_scales"].get<std::string>());
  }
  fmt::print("\ntactic: format {} records tactics for the whole network (see 'tactic' above), none per layer\n",
             j["engine"]["format_version"].get<uint32_t>());
}

}  // namespace

bool has_engine_magic(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char head[sizeof kEngineMagic] = {};
  return in.read(head, sizeof head) && std::memcmp(head, kEngineMagic, sizeof head) == 0;
}

void inspect_engine(const std::string& path, bool as_json) {
  const auto engine = Engine::load(path);  // every check of the loader; one Error line when corrupt
  engine->check_weights();                 // and the weights' checksum, which load leaves to first use
  const json j = engine_json(engine->contents(), path);
  if (as_json) std::cout << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  else print_text(j);
}

}  // namespace tandem::cli
