// tandem dla-check: which layers can run on the DLA, why not, and the seed's chunks.
#include <cstdio>
#include <memory>

#include "command.h"
#include "options.h"
#include "tandem/dla.h"
#include "tandem/onnx.h"

namespace {
using namespace tandem;

struct DlaCheckArgs {
  std::string model;
  std::vector<std::string> shapes, input_values;
  std::string target = "orin", precision = "int8";
  bool verbose_layers = false, verbose_chunks = false, verbose = false, json = false, fail_if_not_full = false;
};

int run(const DlaCheckArgs& a) {
  DlaOptions o;
  if (!parse_dla_target(a.target, &o.target))
    throw Error("--target: unknown DLA target '" + a.target + "' (orin | xavier)");
  if (!parse_dla_precision(a.precision, &o.precision))
    throw Error("--precision: unknown precision '" + a.precision + "' (int8 | fp16)");
  o.verbose_layers = a.verbose_layers || a.verbose;
  o.verbose_chunks = a.verbose_chunks || a.verbose;
  ImportOptions io;
  for (const auto& s : a.shapes) io.shapes.push_back(parse_shape_arg(s));
  for (const auto& s : a.input_values) io.input_values.push_back(parse_input_value_arg(s));
  const Network net = import_onnx(a.model, io);  // shapes (and hooks) applied before the check
  const DlaReport r = can_run_on_dla(net, o);
  const std::string out = a.json ? dla_report_json(net, r, a.model) : dla_report_text(net, r, a.model);
  std::fwrite(out.data(), 1, out.size(), stdout);
  if (a.fail_if_not_full) {
    if (!r.full_dla) {
      std::fprintf(stderr, "tandem: dla-check: %zu of %zu layers cannot run on the DLA (--fail-if-not-full)\n",
                   r.layers.size() - size_t(r.dla_layer_count()), r.layers.size());
      return 1;
    }
  }
  return 0;
}

tandem::cli::RegisterCommand reg(20, "dla-check", [](CLI::App& app) {
  auto* sub = app.add_subcommand("dla-check", "Which layers can run on the DLA, and why not (offline NVIDIA rules)");
  auto a = std::make_shared<DlaCheckArgs>();
  sub->add_option("model", a->model, "model.onnx")->required();
  tandem::cli::add_shape_option(sub, a->shapes);
  tandem::cli::add_input_value_option(sub, a->input_values);
  sub->add_option("--target", a->target, "DLA target: orin (TensorRT 8.6, JetPack 6) | xavier (TensorRT 8.5, JetPack 5.1)")
      ->capture_default_str();
  sub->add_option("--precision", a->precision, "precision of the check: int8 | fp16")->capture_default_str();
  sub->add_flag("--verbose-layers", a->verbose_layers, "log each layer's verdict to stderr");
  sub->add_flag("--verbose-chunks", a->verbose_chunks, "log the chunk list to stderr");
  sub->add_flag("-v,--verbose", a->verbose, "both: --verbose-layers --verbose-chunks");
  sub->add_flag("--fail-if-not-full", a->fail_if_not_full, "exit 1 when any layer cannot run on the DLA");
  sub->add_flag("--json", a->json, "one JSON document on stdout (docs/json.md)");
  return std::function<int()>([a] { return run(*a); });
});

}  // namespace
