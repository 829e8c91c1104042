// Internal to the backends: the built-in CPU backend and the CUDA support table, which the
// registry (registry.cpp) and the CUDA plugin (cuda/plugin.cpp) share.
#pragma once

#include "tandem/backend.h"

namespace tandem::backend_detail {

// The CPU backend (src/backend/cpu/cpu_backend.cpp): always built in.
const Backend& cpu_backend();

// The CUDA backend's answer to supports(), without a device (src/backend/cuda/support.cpp).
Support cuda_layer_support(const Network& net, LayerId id, Precision precision, BackendLayout layout);

}  // namespace tandem::backend_detail
