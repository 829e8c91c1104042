// A persistent cache of cuDNN execution plans, for the runtime-fusion engines whose plans compile
// their kernel with NVRTC when finalized (~0.2 s each; cudnn_fused_conv.cpp): a finalized plan's
// JSON serialization (cuDNN's CUDNN_ATTR_EXECUTION_PLAN_JSON_REPRESENTATION) is written once and
// restored by later executor compiles on the same device, cuDNN and driver. Plain C++, no CUDA or
// cuDNN header: the files and folders are tested without a GPU (tests/backend). Internal to
// src/backend/cuda (docs/cuda-backend.md, "cuDNN plan cache").
#pragma once

#include <cstdint>
#include <string>

namespace tandem {
namespace cuda_exec {

// Process-wide counters since start: lookups that restored a plan (hits), lookups that did not
// (misses: no entry, or one that was refused), entries refused (corrupt, truncated, another
// key's, or cuDNN refused to restore them; each is also a miss), entries written (stores).
struct PlanCacheStats {
  int64_t hits = 0, misses = 0, rejected = 0, stores = 0;
};
PlanCacheStats plan_cache_stats();
enum class PlanCacheEvent { kHit, kMiss, kRejected, kStore };
void count_plan_cache(PlanCacheEvent e);

// The folder of one device's plans, <cache folder>/cudnn-plans/<device with every character
// outside [A-Za-z0-9._-] as '_'> (the cache folder: tandem/cache_dir.h's rule); "" when the cache
// is off (TANDEM_CUDNN_PLAN_CACHE=off or 0) or no cache folder is set. device: what makes a plan
// of one machine unusable on another (GPU, compute capability, cuDNN, driver).
std::string plan_cache_folder(const std::string& device);
// The entry of a key in a folder: <folder>/<XXH3-128 of the key, 32 hex digits>.plan.
std::string plan_cache_path(const std::string& folder, const std::string& key);

// An entry file: the line "tandem-cudnn-plan 1", the key (one line), "<bytes> <XXH3-64 of the
// payload, 16 hex digits>", then the payload (cuDNN's JSON) and nothing after it.
enum class PlanEntry { kAbsent, kRefused, kFound };
// kFound with the payload in *plan when the file is whole and holds this key; kAbsent when there
// is no file; kRefused for anything else (never throws).
PlanEntry read_plan_entry(const std::string& path, const std::string& key, std::string* plan);
// Writes the entry under a temporary name in its folder (created if missing) and renames it into
// place, so a reader sees the old file or the whole new one. False on any failure (a key holding
// a newline, an empty payload, an unwritable folder), leaving no temporary file.
bool write_plan_entry(const std::string& path, const std::string& key, const std::string& plan);

}  // namespace cuda_exec
}  // namespace tandem
