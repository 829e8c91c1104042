// The folder tandem keeps its caches in: engines and the timing cache (src/engine), the CUDA
// backend's cuDNN execution plans (src/backend/cuda/plan_cache.h). In tandem_ir, so that the CUDA
// plugin, which links no engine code, resolves it by the same rule.
#pragma once

#include <string>

namespace tandem {

// dir when not empty; else TANDEM_CACHE_DIR, else $XDG_CACHE_HOME/tandem, else ~/.cache/tandem.
// Throws Error when none of them is set.
std::string resolve_cache_dir(const std::string& dir);

}  // namespace tandem
