// tandem export qdq: the model with QuantizeLinear/DequantizeLinear pairs carrying the INT8 scales
// of a calibration cache (explicit quantization for TensorRT 10+ and ONNX Runtime).
#include <cstdio>
#include <nlohmann/json.hpp>

#include "export_command.h"
#include "quant_cli.h"
#include "tandem/qdq.h"

namespace {
using namespace tandem;
using namespace tandem::cli;

struct QdqArgs {
  ModelArgs m;
  std::string cache, out;
  int opset = 13;
  bool json = false;
};

// --json: the tandem/export/v1 document (docs/json.md) with what the Q/DQ export did.
void print_qdq_json(const QdqArgs& a, const QdqExportReport& r, int retied) {
  nlohmann::ordered_json j;
  j["schema"] = "tandem/export/v1";  // key names shared by every tandem JSON document (docs/json.md)
  j["format"] = "qdq";
  j["model"] = a.m.model;
  j["output"] = a.out;
  j["cache"] = a.cache;
  j["int8_layers"] = r.int8_layers;
  j["activation_qdq_pairs"] = r.activations;
  j["weight_dq"] = r.weights;
  j["opset"] = r.to_opset;
  j["from_opset"] = r.from_opset;
  j["rewritten_nodes"] = r.converted_nodes;
  j["retied_scales"] = retied;
  j["unquantized_tensors"] = r.skipped;
  j["notes"] = r.notes;
  std::printf("%s\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
}

int run_qdq(const QdqArgs& a) {
  Network net = load_network(a.m);
  Plan plan = make_plan_from(net, a.m);
  CalibrationCache c = read_calibration_cache(a.cache);
  if (const std::string why = cache_mismatch(net, plan, c, nullptr); !why.empty())
    throw Error(a.cache + ": not used: " + why + " (calibrate with the same model and plan options)");
  const std::map<std::string, float> cached = c.scale_map();
  Numerics n = make_numerics(net, plan, cached);
  // A cache calibrated for another plan is tied for that plan's INT8 layers: tying it again for
  // this plan changes scales, and the Q/DQ model is then not what `compare` measured.
  int retied = 0;
  for (auto& [name, sc] : n.tensor_scales)
    if (auto it = cached.find(name); it != cached.end() && it->second != sc) ++retied;
  if (retied > 0)
    std::fprintf(stderr, "warning: %d of %zu INT8 scales changed by tying for this plan: %s was calibrated for "
                 "another plan (calibrate with the same plan options)\n", retied, n.tensor_scales.size(), a.cache.c_str());
  QdqExportOptions o;
  o.opset = a.opset;
  QdqExportReport r = export_qdq(a.m.model, a.out, net, n, o);
  if (a.json) {
    print_qdq_json(a, r, retied);
    return 0;
  }
  std::printf("wrote %s: %d INT8 layers, %d activation Q/DQ pairs, %d per-channel weight DQ, opset %d",
              a.out.c_str(), r.int8_layers, r.activations, r.weights, r.to_opset);
  if (r.from_opset != r.to_opset) std::printf(" (from %d, %d nodes rewritten)", r.from_opset, r.converted_nodes);
  std::printf("\n");
  if (!r.skipped.empty()) {
    std::printf("note: %zu INT8 tensors have no ONNX name (made by the importer) and stay unquantized:", r.skipped.size());
    for (size_t i = 0; i < r.skipped.size() && i < 5; ++i) std::printf(" %s", r.skipped[i].c_str());
    std::printf("%s\n", r.skipped.size() > 5 ? " ..." : "");
  }
  for (const auto& s : r.notes)
    if (s.rfind("opset raised", 0) != 0) std::printf("note: %s\n", s.c_str());
  return 0;
}

RegisterExport reg("qdq", [](CLI::App& exp) {
  auto* sub = exp.add_subcommand("qdq", "ONNX model with Q/DQ pairs from a calibration cache (INT8 layers of the plan)");
  auto a = std::make_shared<QdqArgs>();
  add_model_args(sub, a->m);
  add_calib_cache_option(sub, a->cache, "calibration cache with the INT8 scales")->required();
  sub->add_option("-o,--output", a->out, "Q/DQ model to write")->required();
  sub->add_option("--opset", a->opset, "opset of the output (>= 13)")->capture_default_str();
  sub->add_flag("--json", a->json, "a JSON summary on stdout (docs/json.md)");
  return std::function<int()>([a] { return run_qdq(*a); });
});

}  // namespace
