// The cache folder rule (tandem/cache_dir.h).
#include "tandem/cache_dir.h"

#include <cstdlib>
#include <filesystem>

#include "tandem/types.h"

namespace tandem {

namespace fs = std::filesystem;

std::string resolve_cache_dir(const std::string& dir) {
  if (!dir.empty()) return dir;
  if (const char* e = std::getenv("TANDEM_CACHE_DIR"); e && *e) return e;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return (fs::path(x) / "tandem").string();
  if (const char* h = std::getenv("HOME"); h && *h) return (fs::path(h) / ".cache" / "tandem").string();
  throw Error("engine cache: no cache folder: set --cache-dir, TANDEM_CACHE_DIR, XDG_CACHE_HOME or HOME");
}

}  // namespace tandem
