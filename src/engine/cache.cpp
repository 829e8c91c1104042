// Engine cache folder and the timing cache.
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/internal.h"
#include "engine/json_fields.h"
#include "tandem/backend.h"
#include "tandem/engine.h"

namespace tandem {

namespace fs = std::filesystem;
using engine_detail::json_integer;

std::vector<CacheEntry> list_engine_cache(const std::string& dir) {
  std::vector<CacheEntry> out;
  fs::path d = fs::path(resolve_cache_dir(dir)) / "engines";
  std::error_code ec;
  if (!fs::exists(d, ec)) return out;
  for (const auto& de : fs::directory_iterator(d, ec)) {
    if (!de.is_regular_file() || de.path().extension() != ".engine") continue;
    CacheEntry c;
    c.key = de.path().stem().string();
    c.path = de.path().string();
    c.bytes = de.file_size(ec);
    struct stat st {};
    if (::stat(c.path.c_str(), &st) == 0) c.mtime = st.st_mtime;
    try {
      c.meta = read_engine_metadata(c.path);
    } catch (const Error&) {
    }
    out.push_back(std::move(c));
  }
  std::sort(out.begin(), out.end(), [](const CacheEntry& a, const CacheEntry& b) { return a.mtime > b.mtime; });
  return out;
}

size_t clear_engine_cache(const std::string& dir) {
  fs::path d = fs::path(resolve_cache_dir(dir)) / "engines";
  std::error_code ec;
  size_t n = 0;
  if (!fs::exists(d, ec)) return 0;
  for (const auto& de : fs::directory_iterator(d, ec)) {
    const auto ext = de.path().extension();
    if (ext == ".engine") {
      // Take the entry's lock so a build writing it is not cut short.
      engine_detail::FileLock lock((d / (de.path().stem().string() + ".lock")).string());
      if (fs::remove(de.path(), ec)) ++n;
    }
  }
  for (const auto& de : fs::directory_iterator(d, ec))
    if (de.path().extension() == ".lock" || de.path().string().find(".tmp.") != std::string::npos) fs::remove(de.path(), ec);
  return n;
}

// The folder's name is the CUDA backend's (src/backend/cuda/plan_cache.cpp); the engine library
// only counts and removes its files, so it needs no CUDA.
PlanCacheSummary summarize_plan_cache(const std::string& dir) {
  PlanCacheSummary s;
  std::error_code ec;
  const fs::path d = fs::path(resolve_cache_dir(dir)) / "cudnn-plans";
  if (!fs::exists(d, ec)) return s;
  for (auto it = fs::recursive_directory_iterator(d, ec); !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
    if (it->is_regular_file(ec)) ++s.files, s.bytes += it->file_size(ec);
  return s;
}

size_t clear_plan_cache(const std::string& dir) {
  const size_t n = summarize_plan_cache(dir).files;
  std::error_code ec;
  fs::remove_all(fs::path(resolve_cache_dir(dir)) / "cudnn-plans", ec);
  return n;
}

// ---- Timing cache -------------------------------------------------------------------------------
// The CPU backend names its device (src/backend/cpu/cpu_backend.cpp): the engine needs no oneDNN header.
std::string host_device_key() { return find_backend("cpu").device_key(); }

namespace {
constexpr const char* kTimingFormat = "tandem-timing-cache";
constexpr int kTimingVersion = 1;

TimingCache parse_timing(const std::string& path, const std::string& text) {
  TimingCache tc;
  try {
    auto j = nlohmann::json::parse(text);
    if (j.at("format").get<std::string>() != kTimingFormat)
      throw Error(fmt::format("{}: not a tandem timing cache", path));
    if (const int version = json_integer<int>(j, "version", path); version != kTimingVersion)
      throw Error(fmt::format("{}: timing cache version {} (this tandem reads {})", path, version, kTimingVersion));
    tc.device_key = j.at("device").get<std::string>();
    for (auto& [sig, e] : j.at("entries").items()) {
      Tactic t;
      t.signature = sig;
      t.name = e.at("tactic").get<std::string>();
      t.time_ms = e.at("time_ms").get<double>();
      tc.entries[sig] = t;
    }
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("{}: bad timing cache: {}", path, e.what()));
  }
  return tc;
}

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}
}  // namespace

TimingCache TimingCache::read(const std::string& path, const std::string& device_key, bool ignore_mismatch) {
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    TimingCache tc;
    tc.device_key = device_key;
    return tc;
  }
  TimingCache tc = parse_timing(path, slurp(path));
  if (tc.device_key != device_key) {
    if (!ignore_mismatch)
      throw Error(fmt::format("{}: timing cache is from another device ('{}'; this one is '{}'); "
                              "pass --ignore-timing-mismatch to use it anyway", path, tc.device_key, device_key));
    tc.device_key = device_key;  // adopted: written back under this device's key
  }
  return tc;
}

void TimingCache::merge_write(const std::string& path) const {
  engine_detail::FileLock lock(path + ".lock");
  std::map<std::string, Tactic> merged;
  std::error_code ec;
  if (fs::exists(path, ec)) {
    try {
      TimingCache old = parse_timing(path, slurp(path));
      if (old.device_key == device_key) merged = old.entries;
    } catch (const Error&) {
      // A corrupt file is replaced by ours.
    }
  }
  for (const auto& [k, v] : entries) merged[k] = v;
  nlohmann::json j;
  j["format"] = kTimingFormat;
  j["version"] = kTimingVersion;
  j["device"] = device_key;
  nlohmann::json es = nlohmann::json::object();
  for (const auto& [k, v] : merged) es[k] = {{"tactic", v.name}, {"time_ms", v.time_ms}};
  j["entries"] = es;
  std::string text = j.dump(1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  engine_detail::write_file_atomic(path, text.data(), text.size());
}

}  // namespace tandem
