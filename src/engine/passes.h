// Build-time graph passes, run on the network and its plan together so the plan stays consistent:
// layers and tensors keep their names, a fused layer keeps its main layer's name, device and
// precision, and nothing is fused across a GPU/DLA (or DLA region) boundary.
//
//  - drop Identity (ONNX Identity/Dropout) layers whose input and output types agree, unless the
//    output is a network output;
//  - fold Scale (BatchNormalization) into the convolution before it: W'[k] = W[k] * s[k],
//    b'[k] = b[k] * s[k] + t[k]; an INT8 convolution is then quantized from the fused weights,
//    as TensorRT and the DLA do;
//  - fold constants: a layer whose inputs all come from Constant layers becomes a Constant (its
//    value computed once with the CPU backend, in FP32);
//  - mark activations that follow a convolution on the same device and precision: the CPU
//    backend fuses them itself (oneDNN post-ops); the marks are recorded in the metadata.
// Dead Constant layers, unused tensors and unused weights are removed; crossings are recomputed.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "tandem/network.h"
#include "tandem/plan.h"

namespace tandem::engine_detail {

struct PassOptions {
  bool drop_identity = true;
  bool fold_scale = true;
  bool fold_constants = true;
  bool mark_activations = true;
};

struct PassReport {
  std::vector<std::string> fusions;  // "conv + bn", "conv + relu (backend)", "drop id", ...
  int dropped = 0, folded_scales = 0, folded_constants = 0, marked = 0;
};

// Rewrites net and plan in place. plan.layers must be indexed by net's layer ids.
PassReport run_passes(Network& net, Plan& plan, const PassOptions& opt = {});

// Recomputes plan.crossings from the placements (bytes at the producer's precision).
void recompute_crossings(const Network& net, Plan& plan);

}  // namespace tandem::engine_detail
