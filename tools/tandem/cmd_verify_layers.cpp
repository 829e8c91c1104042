// tandem verify-layers PLAN.json LAYERS.json: compares the plan (`tandem plan --json`) with the
// layers TensorRT built on the Jetson (trtexec --exportLayerInfo, written by the command `tandem
// export trtexec` gives) and lists every planned layer TensorRT placed on another device, or ran
// at another precision where the layer information says. Format notes and sources: docs/cli.md.
#include <fmt/format.h>

#include <cerrno>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "command.h"
#include "options.h"
#include "tandem/types.h"

namespace {
using namespace tandem;
using nlohmann::json;

struct VerifyArgs {
  std::string plan, layers;
  bool warn_only = false, json = false;
};

json read_json_file(const std::string& path, const char* what) {
  errno = 0;
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(fmt::format("cannot read {}: {}", path, cli::os_reason(errno ? errno : ENOENT)));
  std::stringstream ss;
  ss << f.rdbuf();
  try {
    return json::parse(ss.str());
  } catch (const json::exception& e) {
    throw Error(fmt::format("{}: not a JSON {} ({})", path, what, e.what()));
  }
}

// One layer of the engine as TensorRT reports it.
struct EngineLayer {
  std::string name;        // as in the file: "A + B", "{ForeignNode[A...B]}"
  std::string layer_type;  // "LayerType" (detailed verbosity only)
  Device device = Device::kGPU;
  std::string precision;   // "fp32" | "fp16" | "int8" | "" (not reported)
};

// The data type in a "Format/Datatype" string ("Row major linear FP16 format", "Channel major
// INT8 format where channel % 32 == 0", "Int8 ..."): "" when it names none.
std::string format_precision(const std::string& f) {
  auto has = [&](const char* w) { return f.find(w) != std::string::npos; };
  if (has("FP32") || has("Float") || has("float")) return "fp32";
  if (has("FP16") || has("Half") || has("half")) return "fp16";
  if (has("INT8") || has("Int8") || has("int8")) return "int8";
  return "";
}

// A DLA subgraph is one "{ForeignNode[FIRST...LAST]}" layer (or "{ForeignNode[ONLY]}"); Myelin
// (GPU) subgraphs use the same name with LayerType "Myelin", so the type decides when given.
bool foreign_range(const std::string& name, std::string* first, std::string* last) {
  static const std::string kOpen = "{ForeignNode[";
  if (name.rfind(kOpen, 0) != 0 || name.size() < kOpen.size() + 2 || name.compare(name.size() - 2, 2, "]}") != 0)
    return false;
  const std::string inner = name.substr(kOpen.size(), name.size() - kOpen.size() - 2);
  const size_t dots = inner.find("...");
  *first = dots == std::string::npos ? inner : inner.substr(0, dots);
  *last = dots == std::string::npos ? inner : inner.substr(dots + 3);
  return true;
}

std::vector<EngineLayer> read_engine_layers(const std::string& path) {
  const json j = read_json_file(path, "layer information file");
  if (!j.is_object() || !j.contains("Layers") || !j["Layers"].is_array())
    throw Error(path + ": no \"Layers\" array: expected trtexec --exportLayerInfo output (IEngineInspector JSON)");
  std::vector<EngineLayer> out;
  for (size_t i = 0; i < j["Layers"].size(); ++i) {
    const json& l = j["Layers"][i];
    EngineLayer e;
    if (l.is_string()) {
      e.name = l.get<std::string>();  // --profilingVerbosity=layer_names_only
    } else if (l.is_object() && l.contains("Name") && l["Name"].is_string()) {
      e.name = l["Name"].get<std::string>();
      if (l.contains("LayerType") && l["LayerType"].is_string()) e.layer_type = l["LayerType"].get<std::string>();
      if (l.contains("Outputs") && l["Outputs"].is_array() && !l["Outputs"].empty() && l["Outputs"][0].is_object() &&
          l["Outputs"][0].contains("Format/Datatype") && l["Outputs"][0]["Format/Datatype"].is_string())
        e.precision = format_precision(l["Outputs"][0]["Format/Datatype"].get<std::string>());
    } else {
      throw Error(fmt::format("{}: Layers[{}] is neither a name nor an object with \"Name\"", path, i));
    }
    std::string first, last;
    const bool myelin = e.layer_type.find("Myelin") != std::string::npos || e.layer_type.find("myelin") != std::string::npos;
    e.device = foreign_range(e.name, &first, &last) && !myelin ? Device::kDLA : Device::kGPU;
    out.push_back(std::move(e));
  }
  return out;
}

// Layers TensorRT adds that name other layers or tensors: reformats ("Reformatting CopyNode for
// Input Tensor 0 to A + B") and the DLA transfers ("x to nvm", "y from nvm", "y copy finish").
bool skipped_engine_layer(const std::string& n) {
  auto ends = [&](const std::string& s) { return n.size() >= s.size() && n.compare(n.size() - s.size(), s.size(), s) == 0; };
  return n.rfind("Reformatting ", 0) == 0 || ends(" to nvm") || ends(" from nvm") || ends(" copy finish");
}

struct PlannedLayer {
  std::string name, device, precision;
};

std::vector<PlannedLayer> read_plan_layers(const std::string& path) {
  const json j = read_json_file(path, "plan");
  if (!j.is_object() || j.value("schema", "") != "tandem/plan/v1")
    throw Error(path + ": not a tandem plan (expected \"schema\": \"tandem/plan/v1\", from `tandem plan --json`)");
  if (!j.contains("layers") || !j["layers"].is_array()) throw Error(path + ": no \"layers\" array");
  std::vector<PlannedLayer> out;
  for (size_t i = 0; i < j["layers"].size(); ++i) {
    const json& l = j["layers"][i];
    try {
      out.push_back({l.at("name").get<std::string>(), l.at("device").get<std::string>(), l.at("precision").get<std::string>()});
    } catch (const json::exception&) {
      throw Error(fmt::format("{}: layers[{}] needs string \"name\", \"device\" and \"precision\"", path, i));
    }
  }
  return out;
}

struct Difference {
  std::string name, field, planned, engine, engine_layer;
};

struct Verdict {
  std::vector<Difference> differences;
  std::vector<std::string> absent;  // planned layers no engine layer names (folded or fused away)
  int dla_layers = 0, gpu_layers = 0;
};

// Each engine layer claims the planned layers it names: a GPU layer "A + B + C" claims A, B and C;
// a DLA "{ForeignNode[A...B]}" claims A and B, and the planned DLA layers between them in plan
// order that no GPU layer names (TensorRT lists a subgraph's first and last layer only; a planned
// GPU layer between them that no engine layer names, e.g. a constant TensorRT folded, stays
// absent rather than being guessed onto the DLA).
Verdict verify(const std::vector<PlannedLayer>& plan, const std::vector<EngineLayer>& engine) {
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < plan.size(); ++i) index.emplace(plan[i].name, i);
  std::vector<int> owner(plan.size(), -1);
  for (size_t e = 0; e < engine.size(); ++e) {
    const std::string& n = engine[e].name;
    if (engine[e].device == Device::kDLA || skipped_engine_layer(n)) continue;
    size_t b = 0;
    while (b <= n.size()) {
      size_t p = n.find(" + ", b);
      if (p == std::string::npos) p = n.size();
      if (auto it = index.find(n.substr(b, p - b)); it != index.end() && owner[it->second] < 0) owner[it->second] = int(e);
      b = p + 3;
    }
  }
  for (size_t e = 0; e < engine.size(); ++e) {
    std::string first, last;
    if (engine[e].device != Device::kDLA || !foreign_range(engine[e].name, &first, &last)) continue;
    auto a = index.find(first), z = index.find(last);
    if (a == index.end() || z == index.end()) continue;
    for (size_t i = a->second; i <= z->second; ++i)
      if (owner[i] < 0 && (i == a->second || i == z->second || plan[i].device == "DLA")) owner[i] = int(e);
  }
  Verdict v;
  for (size_t i = 0; i < plan.size(); ++i) {
    if (owner[i] < 0) {
      v.absent.push_back(plan[i].name);
      continue;
    }
    const EngineLayer& e = engine[owner[i]];
    const std::string dev(to_string(e.device));
    (e.device == Device::kDLA ? v.dla_layers : v.gpu_layers)++;
    if (dev != plan[i].device) v.differences.push_back({plan[i].name, "device", plan[i].device, dev, e.name});
    else if (!e.precision.empty() && plan[i].precision != "unset" && e.precision != plan[i].precision)
      v.differences.push_back({plan[i].name, "precision", plan[i].precision, e.precision, e.name});
  }
  return v;
}

void print_verdict(const VerifyArgs& a, size_t planned, const Verdict& v) {
  if (a.json) {
    nlohmann::ordered_json j;
    j["schema"] = "tandem/verify-layers/v1";  // key names shared by every tandem JSON document (docs/json.md)
    j["plan"] = a.plan;
    j["layer_info"] = a.layers;
    j["total_layers"] = planned;
    j["dla_layers"] = v.dla_layers;
    j["gpu_layers"] = v.gpu_layers;
    j["absent"] = v.absent;
    j["passed"] = v.differences.empty();
    j["differences"] = nlohmann::ordered_json::array();
    for (const auto& d : v.differences)
      j["differences"].push_back(
          {{"name", d.name}, {"field", d.field}, {"planned", d.planned}, {"engine", d.engine}, {"engine_layer", d.engine_layer}});
    std::printf("%s\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return;
  }
  std::printf("%zu planned layers: TensorRT ran %d on the DLA and %d on the GPU; %zu not in the engine "
              "(folded or fused away)\n", planned, v.dla_layers, v.gpu_layers, v.absent.size());
  if (v.differences.empty()) {
    std::printf("every layer TensorRT built runs where the plan put it\n");
    return;
  }
  std::printf("%zu differences:\n", v.differences.size());
  for (const auto& d : v.differences)
    std::printf("  %s: %s planned %s, TensorRT %s (engine layer '%s')\n", d.name.c_str(), d.field.c_str(),
                d.planned.c_str(), d.engine.c_str(), d.engine_layer.c_str());
}

int run(const VerifyArgs& a) {
  const std::vector<PlannedLayer> plan = read_plan_layers(a.plan);
  const std::vector<EngineLayer> engine = read_engine_layers(a.layers);
  const Verdict v = verify(plan, engine);
  print_verdict(a, plan.size(), v);
  if (v.differences.empty()) return 0;
  std::fprintf(stderr, "tandem: verify-layers: %zu layers differ from %s%s\n", v.differences.size(), a.plan.c_str(),
               a.warn_only ? " (--warn-only: exit 0)" : "");
  return a.warn_only ? 0 : 1;
}

tandem::cli::RegisterCommand reg(65, "verify-layers", [](CLI::App& app) {
  auto* sub = app.add_subcommand("verify-layers",
                                 "Compare a plan with the layers TensorRT built (trtexec --exportLayerInfo) and list "
                                 "every layer placed differently");
  auto a = std::make_shared<VerifyArgs>();
  sub->add_option("plan", a->plan, "PLAN.json: tandem plan --json")->required();
  sub->add_option("layers", a->layers, "LAYERS.json: trtexec --exportLayerInfo (--profilingVerbosity=detailed)")->required();
  sub->add_flag("--warn-only", a->warn_only, "list the differences but exit 0");
  sub->add_flag("--json", a->json, "one JSON document on stdout (docs/json.md)");
  return std::function<int()>([a] { return run(*a); });
});

}  // namespace
