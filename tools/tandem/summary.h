// One summary line shared by build, build-dla, run and bench: the engine's layers per device and
// precision, and what the build passes did to the planned layers (the reason the counts differ
// from `tandem plan`, which counts the imported layers before the passes).
#pragma once

#include <fmt/format.h>

#include <string>

#include "tandem/engine.h"

namespace tandem::cli {

inline std::string engine_layers_summary(const Engine& e) {
  int dla = 0, gpu = 0, dla_int8 = 0, dla_fp16 = 0;
  for (const auto& l : e.plan().layers) {
    if (l.device == Device::kDLA) {
      ++dla;
      dla_int8 += l.precision == Precision::kINT8;
      dla_fp16 += l.precision == Precision::kFP16;
    } else {
      ++gpu;
    }
  }
  int folded = 0, dropped = 0, merged = 0, act = 0;
  for (const auto& f : e.metadata().fusions) {
    if (f.rfind("fold ", 0) == 0) ++folded;
    else if (f.rfind("drop ", 0) == 0) ++dropped;
    else if (f.find("(activation fused by the backend)") != std::string::npos) ++act;
    else ++merged;
  }
  std::string s = fmt::format("engine layers: {} DLA ({} INT8, {} FP16), {} GPU", dla, dla_int8, dla_fp16, gpu);
  if (folded + dropped + merged + act == 0) return s + "; the build passes changed no planned layer";
  return s + fmt::format("; planned layers -> engine layers: {} folded to constants, {} Identity-like dropped, "
                         "{} merged (BN/Scale into the convolution), {} activations fused by the backend "
                         "(`tandem inspect ENGINE` lists each)", folded, dropped, merged, act);
}

}  // namespace tandem::cli
