// The cuDNN plan cache's folders and entry files (plan_cache.h). No CUDA here.
#include "backend/cuda/plan_cache.h"

#include <unistd.h>

#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

// Header-only (inlined), as src/engine/hash.cpp uses it: nothing more to load at run time.
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "tandem/cache_dir.h"
#include "tandem/types.h"

namespace tandem {
namespace cuda_exec {

namespace fs = std::filesystem;

namespace {

constexpr const char* kMagic = "tandem-cudnn-plan 1";
constexpr uintmax_t kMaxEntryBytes = uintmax_t(64) << 20;  // larger files are not plans of ours

std::atomic<int64_t> g_hits{0}, g_misses{0}, g_rejected{0}, g_stores{0};

std::string hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016" PRIx64, v);
  return buf;
}

}  // namespace

PlanCacheStats plan_cache_stats() { return {g_hits.load(), g_misses.load(), g_rejected.load(), g_stores.load()}; }

void count_plan_cache(PlanCacheEvent e) {
  switch (e) {
    case PlanCacheEvent::kHit: ++g_hits; return;
    case PlanCacheEvent::kMiss: ++g_misses; return;
    case PlanCacheEvent::kRejected: ++g_rejected; return;
    case PlanCacheEvent::kStore: ++g_stores; return;
  }
}

std::string plan_cache_folder(const std::string& device) {
  if (const char* env = std::getenv("TANDEM_CUDNN_PLAN_CACHE")) {
    const std::string v(env);
    if (v == "off" || v == "0") return "";
  }
  std::string root;
  try {
    root = resolve_cache_dir("");
  } catch (const Error&) {
    return "";  // no cache folder: plans are finalized every time, as without the cache
  }
  std::string name = device;
  for (char& c : name) {
    const bool keep = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
                      c == '_' || c == '-';
    if (!keep) c = '_';
  }
  if (name.empty() || name == "." || name == "..") name = "device";
  return (fs::path(root) / "cudnn-plans" / name).string();
}

std::string plan_cache_path(const std::string& folder, const std::string& key) {
  const XXH128_hash_t h = XXH3_128bits(key.data(), key.size());
  return (fs::path(folder) / (hex64(h.high64) + hex64(h.low64) + ".plan")).string();
}

PlanEntry read_plan_entry(const std::string& path, const std::string& key, std::string* plan) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (ec || !fs::exists(st)) return PlanEntry::kAbsent;
  const uintmax_t size = fs::file_size(path, ec);
  if (ec || !fs::is_regular_file(st) || size > kMaxEntryBytes) return PlanEntry::kRefused;
  std::ifstream f(path, std::ios::binary);
  if (!f) return PlanEntry::kRefused;
  std::string magic, stored_key, sizes;
  if (!std::getline(f, magic) || magic != kMagic || !std::getline(f, stored_key) || stored_key != key ||
      !std::getline(f, sizes))
    return PlanEntry::kRefused;
  std::istringstream line(sizes);
  uint64_t bytes = 0;
  std::string sum;
  if (!(line >> bytes >> sum) || sum.size() != 16 || bytes == 0 || bytes > kMaxEntryBytes) return PlanEntry::kRefused;
  std::string payload(size_t(bytes), '\0');
  if (!f.read(payload.data(), std::streamsize(bytes)) || f.peek() != std::char_traits<char>::eof())
    return PlanEntry::kRefused;  // truncated, or bytes after the payload
  if (hex64(XXH3_64bits(payload.data(), payload.size())) != sum) return PlanEntry::kRefused;
  *plan = std::move(payload);
  return PlanEntry::kFound;
}

bool write_plan_entry(const std::string& path, const std::string& key, const std::string& plan) {
  if (plan.empty() || key.find('\n') != std::string::npos || key.find('\r') != std::string::npos) return false;
  std::error_code ec;
  const fs::path target(path);
  fs::create_directories(target.parent_path(), ec);
  if (ec) return false;
  static std::atomic<uint64_t> serial{0};
  const fs::path tmp = target.string() + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(serial++);
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f << kMagic << '\n' << key << '\n' << plan.size() << ' ' << hex64(XXH3_64bits(plan.data(), plan.size())) << '\n';
    f.write(plan.data(), std::streamsize(plan.size()));
    f.flush();
    if (!f) {
      f.close();
      fs::remove(tmp, ec);
      return false;
    }
  }
  fs::rename(tmp, target, ec);
  if (ec) {
    fs::remove(tmp, ec);
    return false;
  }
  return true;
}

}  // namespace cuda_exec
}  // namespace tandem
