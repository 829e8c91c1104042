// One summary line shared by build, build-dla, run and bench: the engine's layers per device and
// precision, and what the build passes did to the planned layers (the reason the counts differ
// from `tandem plan`, which counts the imported layers before the passes).
#pragma once

#include <fmt/format.h>

#include <string>

#include "tandem/engine.h"

namespace tandem::cli {

// "planned 292 layers (27 DLA, 265 GPU) -> 220 engine layers (18 DLA: 17 INT8, 0 FP16; 202 GPU):
// 37 folded to constants, 35 merged into the layer before them (BN/Scale into the convolution),
// ...". Each fold, drop or merge the passes recorded removed one planned layer; a merged layer ran
// on the device of the layer it merged into.
// planned_dla >= 0 (build: BuildResult::planned_dla_layers) adds the planned layers' devices.
inline std::string engine_layers_summary(const Engine& e, int planned_dla = -1) {
  const Network& net = e.network();
  const Plan& plan = e.plan();
  int dla = 0, gpu = 0, dla_int8 = 0, dla_fp16 = 0;
  for (const auto& l : plan.layers) {
    if (l.device == Device::kDLA) {
      ++dla;
      dla_int8 += l.precision == Precision::kINT8;
      dla_fp16 += l.precision == Precision::kFP16;
    } else {
      ++gpu;
    }
  }
  static const std::string kMark = "(activation fused by the backend)";
  int folded = 0, dropped = 0, merged = 0, merged_dla = 0, act = 0;
  for (const auto& f : e.metadata().fusions) {
    if (f.rfind("fold ", 0) == 0) {
      ++folded;
    } else if (f.rfind("drop ", 0) == 0) {
      ++dropped;
    } else if (f.find(kMark) != std::string::npos) {
      ++act;
    } else {
      ++merged;
      // "A + B": B merged into A; A's device, longest matching name first.
      size_t best = 0;
      bool on_dla = false;
      for (size_t i = 0; i < net.layers.size() && i < plan.layers.size(); ++i) {
        const std::string& n = net.layers[i].name;
        if (n.size() > best && f.size() > n.size() + 3 && f.compare(0, n.size() + 3, n + " + ") == 0) {
          best = n.size();
          on_dla = plan.layers[i].device == Device::kDLA;
        }
      }
      merged_dla += on_dla;
    }
  }
  const int removed = folded + dropped + merged;
  const int planned = dla + gpu + removed;
  std::string s = fmt::format("planned {} layers{} -> {} engine layers ({} DLA: {} INT8, {} FP16; {} GPU)", planned,
                              planned_dla >= 0 ? fmt::format(" ({} DLA, {} GPU)", planned_dla, planned - planned_dla) : "",
                              dla + gpu, dla, dla_int8, dla_fp16, gpu);
  if (removed + act == 0) return s + ": the build passes changed no layer";
  std::string why;
  auto add = [&](int n, const char* what) {
    if (n > 0) why += fmt::format("{}{} {}", why.empty() ? "" : ", ", n, what);
  };
  add(folded, "folded to constants");
  add(dropped, "Identity-like layers dropped");
  if (merged > 0)
    why += fmt::format("{}{} merged into the layer before them ({} of them into DLA layers; BN/Scale into the convolution)",
                       why.empty() ? "" : ", ", merged, merged_dla);
  add(act, "activations run fused with their producer (still counted)");
  return s + ": " + why + "; `tandem inspect ENGINE` lists each";
}

}  // namespace tandem::cli
