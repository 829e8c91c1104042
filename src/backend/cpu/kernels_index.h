// Internal to the CPU backend: plain-loop kernels of the index and sampling layers
// (kernels_index.cpp, kernels_grid_sample.cpp), reached from make_ref_kernel.
#pragma once

#include "kernels.h"

namespace tandem::cpu {

// Gather in TensorRT's ELEMENT or ND mode (the DEFAULT mode is make_ref_kernel's own).
Kernel make_gather_mode_kernel(const Network& net, const Layer& l);
// Scatter, TopK, Einsum, GridSample, RoiAlign.
Kernel make_index_kernel(const Network& net, const Layer& l);
Kernel make_grid_sample_kernel(const Network& net, const Layer& l);
Kernel make_roi_align_kernel(const Network& net, const Layer& l);

}  // namespace tandem::cpu
