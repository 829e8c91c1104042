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

// --input-value NAME:V1,V2,... (repeatable): an int32/int64 input's values fixed at import, as
// TensorRT fixes a shape-tensor input's values in the optimization profile (trtexec --shapes).
// Not split at commas: the values are comma-separated.
inline CLI::Option* add_input_value_option(CLI::App* sub, std::vector<std::string>& values) {
  return sub->add_option("--input-value", values,
                         "fix an int32/int64 input's values at import NAME:V1,V2,... (repeatable; a shape-value "
                         "input, as TensorRT's shape-tensor inputs: every run must give these values)")
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

// --backend: where the command computes (run, bench: the engine; calibrate, build-dla: the FP32
// reference runs; compare: the reference and the plan's emulated numerics). One name and help
// text everywhere; docs/cli.md, "Running and benchmarking".
inline CLI::Option* add_backend_option(CLI::App* sub, std::string& backend) {
  return sub->add_option("--backend", backend, "cpu | cuda: where it computes (cuda needs a CUDA build and a GPU)")
      ->capture_default_str();
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

// -w/--workspace: GPU workspace in GiB, trtutils' unit (build_engine's workspace=4.0), the same in
// build, build-dla and export trtexec. A K/M/G suffix gives another unit (`-w 512M`). trtexec's
// MiB spelling is --memPoolSize=workspace:N; a bare number this large is a MiB value typed here.
constexpr double kDefaultWorkspaceGiB = 4.0;
constexpr double kLargestBareWorkspaceGiB = 256.0;
inline CLI::Option* add_workspace_option(CLI::App* sub, std::string& workspace) {
  return sub->add_option("-w,--workspace", workspace,
                         "GPU workspace in GiB (trtutils' unit; suffix K/M/G for another: 512M); default 4");
}
// GiB from a --workspace value ("4", "0.5", "512M", "2G"); throws naming the option.
inline double workspace_gib(const std::string& value) {
  std::string num = value;
  double per_gib = 1;  // units of the suffix in one GiB
  const char u = num.empty() ? '\0' : num.back();
  const bool suffixed = u == 'K' || u == 'k' || u == 'M' || u == 'm' || u == 'G' || u == 'g';
  if (u == 'K' || u == 'k') per_gib = 1024.0 * 1024;
  else if (u == 'M' || u == 'm') per_gib = 1024;
  if (suffixed) num.pop_back();
  char* end = nullptr;
  const double v = std::strtod(num.c_str(), &end);
  if (num.empty() || !end || *end || !(v > 0))
    throw Error("--workspace '" + value + "': expected a positive size in GiB (or with a K/M/G suffix)");
  if (!suffixed && v >= kLargestBareWorkspaceGiB)
    throw Error("--workspace " + value + ": the unit is GiB (as trtutils' and build's -w); for MiB write " + value +
                "M or trtexec's --memPoolSize=workspace:" + value);
  return v / per_gib;
}
// -w/--workspace and --memPoolSize=workspace:N (MiB) name the same pool: one of them.
inline double workspace_gib(const std::string& workspace, double mem_pool_workspace_mib) {
  if (!workspace.empty() && mem_pool_workspace_mib > 0)
    throw Error("--workspace and --memPoolSize=workspace:N both set the workspace: give one");
  if (mem_pool_workspace_mib > 0) return mem_pool_workspace_mib / 1024.0;
  return workspace.empty() ? kDefaultWorkspaceGiB : workspace_gib(workspace);
}

// How calibration data is batched and read, shared by calibrate, compare, build and build-dla with
// trtutils' defaults (ImageBatcher and SyntheticBatcher: batch_size=8, num_batches=10; images
// read by cv2.imread, hence BGR; a partial last batch dropped).
constexpr int kDefaultRandomBatches = 10;
struct BatchArgs {
  int batch_size = 8;
  int num_batches = 0;  // random data: this many (0: default_random); files: at most this many (0: all)
  std::string channels = "bgr", last_batch = "drop";
  // compare: 1 (8 inputs), as each input runs the emulated numerics, ~10x a reference run.
  int default_random = kDefaultRandomBatches;
  int random_batches() const { return num_batches > 0 ? num_batches : default_random; }
};
inline void add_batch_args(CLI::App* sub, BatchArgs& b, int default_random = kDefaultRandomBatches) {
  b.default_random = default_random;
  sub->add_option("--batch-size,--bs", b.batch_size, "samples per batch (trtutils' default)")->capture_default_str();
  sub->add_option("--num-batches,--count", b.num_batches,
                  "random data: this many batches (default " + std::to_string(default_random) +
                      "); images/.npy: at most this many (default all)");
  sub->add_option("--channels", b.channels, "channel order of images: bgr (OpenCV's, as trtutils) | rgb")
      ->capture_default_str();
  sub->add_option("--last-batch", b.last_batch, "partial last batch: drop (as trtutils) | keep | pad")
      ->capture_default_str();
}
inline void check_batch_args(const BatchArgs& b) {
  if (b.batch_size < 1) throw Error("--batch-size " + std::to_string(b.batch_size) + ": must be >= 1");
  if (b.num_batches < 0) throw Error("--num-batches " + std::to_string(b.num_batches) + ": must be >= 0");
  if (b.channels != "rgb" && b.channels != "bgr") throw Error("--channels: '" + b.channels + "' is not bgr | rgb");
  if (b.last_batch != "drop" && b.last_batch != "keep" && b.last_batch != "pad")
    throw Error("--last-batch: '" + b.last_batch + "' is not drop | keep | pad");
}

// "cannot write PATH: No such file or directory" (errno's reason).
inline std::string os_reason(int err) { return std::strerror(err); }

}  // namespace tandem::cli
