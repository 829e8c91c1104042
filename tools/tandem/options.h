// One option group per concept, shared by every command (docs/cli.md lists them): the same long
// and short names, units, defaults and meaning everywhere, with the old per-command spellings and
// trtexec's spellings as aliases. Parsing errors throw tandem::Error (one line, exit code 2).
#pragma once

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "tandem/types.h"

namespace tandem::cli {

// -s/--shape NAME:DIMS (repeatable); trtexec's --shapes=x:1x3x48x192,y:1x2 is several shapes.
inline CLI::Option* add_shape_option(CLI::App* sub, std::vector<std::string>& shapes) {
  return sub->add_option("-s,--shape,--shapes", shapes,
                         "input shape NAME:1x3x640x640 (repeatable; comma-separated list as trtexec's --shapes)")
      ->delimiter(',')
      ->allow_extra_args(false);
}

// Calibration images: --calib-dir (aliases --calibration-dir, --cd, --data).
inline CLI::Option* add_calib_dir_option(CLI::App* sub, std::string& dir, const char* what = "calibration") {
  return sub->add_option("--calib-dir,--calibration-dir,--cd,--data", dir,
                         std::string("folder of ") + what + " images (.jpg .jpeg .png)");
}

// Calibration cache: --calib (trtexec's spelling; aliases --calibration-cache, --cc, --cache).
// `extra` adds command-specific spellings in front (calibrate: "-o,--output,").
inline CLI::Option* add_calib_cache_option(CLI::App* sub, std::string& path, const std::string& help,
                                           const std::string& extra = "", bool cache_alias = true) {
  return sub->add_option(extra + "--calib,--calibration-cache,--cc" + (cache_alias ? ",--cache" : ""), path, help);
}

// --recalibrate: never reuse an existing calibration cache.
inline CLI::Option* add_recalibrate_flag(CLI::App* sub, bool& flag) {
  return sub->add_flag("--recalibrate", flag, "calibrate again even when the calibration cache exists (and overwrite it)");
}

// Layout of calibration/comparison data: --order (alias --data-order), nchw | nhwc, any case.
inline CLI::Option* add_order_option(CLI::App* sub, std::string& order) {
  return sub->add_option("--order,--data-order", order, "data layout: nchw | nhwc (any case)")->capture_default_str();
}

inline std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// trtexec's --memPoolSize=workspace:N[,dlaSRAM:N,...]: N in MiB unless suffixed K, M or G.
// Returns MiB for `pool`, or -1 when the spec does not name it. Throws on a malformed spec.
inline double mem_pool_mib(const std::string& spec, const std::string& pool,
                           const std::vector<std::string>& known) {
  double found = -1;
  size_t b = 0;
  while (b <= spec.size()) {
    size_t e = spec.find(',', b);
    if (e == std::string::npos) e = spec.size();
    const std::string item = spec.substr(b, e - b);
    b = e + 1;
    if (item.empty()) continue;
    const size_t c = item.find(':');
    if (c == std::string::npos || c == 0 || c + 1 == item.size())
      throw Error("--memPoolSize '" + spec + "': expected POOL:SIZE[K|M|G], e.g. workspace:1024");
    const std::string name = item.substr(0, c);
    std::string num = item.substr(c + 1);
    double mult = 1;
    const char u = num.back();
    if (u == 'K' || u == 'k') mult = 1.0 / 1024, num.pop_back();
    else if (u == 'M' || u == 'm') num.pop_back();
    else if (u == 'G' || u == 'g') mult = 1024, num.pop_back();
    char* end = nullptr;
    const double v = std::strtod(num.c_str(), &end);
    if (num.empty() || !end || *end || !(v > 0))
      throw Error("--memPoolSize '" + spec + "': size '" + item.substr(c + 1) + "' is not a positive number");
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      std::string list;
      for (const auto& k : known) list += (list.empty() ? "" : " | ") + k;
      throw Error("--memPoolSize '" + spec + "': pool '" + name + "' does not apply here (" + list + ")");
    }
    if (name == pool) found = v * mult;
  }
  return found;
}

// "cannot write PATH: No such file or directory" (errno's reason).
inline std::string os_reason(int err) { return std::strerror(err); }

}  // namespace tandem::cli
