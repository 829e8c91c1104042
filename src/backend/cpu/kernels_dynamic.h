// Internal to the CPU backend: the plain-loop kernels of the layers with a data-dependent output
// shape (kernels_dynamic.cpp), reached from make_ref_kernel.
#pragma once

#include "kernels.h"

namespace tandem::cpu {

// NonZero, NMS.
Kernel make_dynamic_kernel(const Network& net, const Layer& l);

}  // namespace tandem::cpu
