// tandem cache list | clear: the engine cache (and the CUDA backend's cuDNN plan cache beside it).
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <ctime>

#include "command.h"
#include "tandem/engine.h"

namespace tandem::cli {
namespace {

struct CacheArgs {
  std::string dir;
  bool json = false;
};

RegisterCommand reg(70, "cache", [](CLI::App& app) {
  auto a = std::make_shared<CacheArgs>();
  auto* sub = app.add_subcommand("cache", "the engine cache: list | clear");
  sub->require_subcommand(1);
  auto* list = sub->add_subcommand("list", "list cached engines");
  auto* clear = sub->add_subcommand("clear", "remove every cached engine and the cuDNN plan cache");
  for (auto* s : {list, clear})
    s->add_option("--cache-dir", a->dir, "cache folder (default: $TANDEM_CACHE_DIR, $XDG_CACHE_HOME/tandem, ~/.cache/tandem)");
  list->add_flag("--json", a->json, "one JSON document on stdout");
  return std::function<int()>([a, clear] {
    std::string dir = resolve_cache_dir(a->dir);
    if (clear->parsed()) {
      size_t n = clear_engine_cache(a->dir), plans = clear_plan_cache(a->dir);
      std::printf("removed %zu cached engine%s and %zu cuDNN plan file%s from %s\n", n, n == 1 ? "" : "s", plans,
                  plans == 1 ? "" : "s", dir.c_str());
      return 0;
    }
    auto entries = list_engine_cache(a->dir);
    const PlanCacheSummary plans = summarize_plan_cache(a->dir);
    if (a->json) {
      nlohmann::ordered_json j;
      j["schema"] = "tandem/cache-list/v1";  // key names shared by every tandem JSON document (docs/json.md)
      j["cache_dir"] = dir;
      j["engines"] = nlohmann::ordered_json::array();
      for (const auto& e : entries)
        j["engines"].push_back({{"key", e.key}, {"path", e.path}, {"bytes", e.bytes}, {"mtime", e.mtime},
                     {"model", e.meta.model_path}, {"model_sha256", e.meta.model_sha256},
                     {"tool_version", e.meta.tool_version}, {"target", e.meta.target}});
      j["cudnn_plans"] = {{"files", plans.files}, {"bytes", plans.bytes}};
      std::printf("%s\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
      return 0;
    }
    std::printf("engine cache: %s (%zu engine%s)\n", dir.c_str(), entries.size(), entries.size() == 1 ? "" : "s");
    uint64_t total = 0;
    for (const auto& e : entries) {
      char when[32];
      std::time_t t = e.mtime;
      std::strftime(when, sizeof when, "%Y-%m-%d %H:%M", std::gmtime(&t));
      std::printf("  %s  %8.2f MiB  %s  %s%s\n", e.key.c_str(), double(e.bytes) / (1 << 20), when,
                  e.meta.tool_version.empty() ? "(unreadable)" : e.meta.model_path.c_str(),
                  e.meta.tool_version.empty() ? "" : fmt::format(" (tandem {}, {})", e.meta.tool_version, e.meta.target).c_str());
      total += e.bytes;
    }
    if (!entries.empty()) std::printf("  total %.2f MiB\n", double(total) / (1 << 20));
    if (plans.files)
      std::printf("cuDNN plan cache: %zu file%s, %.2f MiB (cudnn-plans/)\n", plans.files, plans.files == 1 ? "" : "s",
                  double(plans.bytes) / (1 << 20));
    return 0;
  });
});

}  // namespace
}  // namespace tandem::cli
