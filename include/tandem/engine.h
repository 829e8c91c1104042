// The engine: a self-contained, immutable, versioned file (docs/engine-format.md) and its runtime.
// Engine::load once; create_context() per thread; contexts of one engine may run concurrently.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tandem/builder.h"
#include "tandem/cache_dir.h"
#include "tandem/network.h"
#include "tandem/plan.h"
#include "tandem/runtime.h"

namespace tandem {

inline constexpr uint32_t kEngineFormatVersion = 4;  // 2: Gather modes; Scatter, TopK, Einsum, GridSample. 3: XXH3 section checksums. 4: NonZero, NMS (NMSParams)

// A tactic chosen at build time (also what the timing cache stores).
struct Tactic {
  std::string signature;  // what was timed ("network:<hash>", or a layer signature)
  std::string name;       // "cpu.threads=2"
  double time_ms = 0;     // measured median; 0 when not timed
};

struct EngineMetadata {
  std::string tool_version;
  uint32_t format_version = kEngineFormatVersion;
  std::string model_path;    // as given at build time
  std::string model_sha256;  // hex
  std::string target;        // "orin" / "xavier"
  std::string backend;       // "cpu"
  std::string options_json;  // canonical_options()
  std::string created_utc;
  std::vector<std::string> fusions;  // "conv_1 + bn_1" and the like
  // The device the tactics were timed on (host_device_key(), or the timing cache's); empty when
  // nothing was timed (optimization level 0) and in engines built before it was recorded.
  std::string tactics_device_key;
};

// All the parts of an engine, in memory. What the builder writes and the loader reads.
struct EngineContents {
  EngineMetadata meta;
  Network network;
  Plan plan;
  std::map<std::string, float> scales;  // tensor name -> scale (range / 127)
  std::vector<TensorFormat> input_formats, output_formats;  // one per network input / output
  std::vector<Tactic> tactics;
  // Weights stored pre-quantized (int8 + per-output-channel fp32 scales) by WeightsId; in memory
  // they are dequantized back to fp32, bit-compatible with the executor's own quantization.
  std::vector<WeightsId> int8_weights;
};

// Serialize to the file format (the bytes of an engine file).
std::vector<uint8_t> serialize_engine(const EngineContents& e);
// Parse bytes; `name` is used in error messages ("<name>: section NETW: ..."). Throws Error.
// keep_alive: the owner of `data` (a mapped file): the weights become views into data, which
// stays valid while they live, instead of copies.
EngineContents deserialize_engine(const uint8_t* data, size_t size, const std::string& name,
                                  std::shared_ptr<const void> keep_alive = nullptr);
// Reads only the header and the metadata section (for `cache list`).
EngineMetadata read_engine_metadata(const std::string& path);
// Writes atomically (temp + rename).
void write_engine_file(const std::string& path, const EngineContents& e);

class ExecutionContext;

class Engine : public std::enable_shared_from_this<Engine> {
 public:
  static std::shared_ptr<const Engine> load(const std::string& path);
  static std::shared_ptr<const Engine> from_contents(EngineContents c, std::string name);

  const EngineContents& contents() const { return c_; }
  const Network& network() const { return c_.network; }
  const Plan& plan() const { return c_.plan; }
  const EngineMetadata& metadata() const { return c_.meta; }
  const std::string& name() const { return name_; }
  const std::vector<TensorFormat>& input_formats() const { return c_.input_formats; }
  const std::vector<TensorFormat>& output_formats() const { return c_.output_formats; }
  int dla_layer_count() const;
  // The numerics the executor runs with (plan precisions + calibrated scales).
  Numerics numerics() const;
  // Non-empty when DLA layers run emulated on the host: one line to show the user.
  std::string emulation_note() const;
  // threads 0: the engine's tuned tactic, else the backend default.
  // backend: "cpu" (always built) or "cuda" (when this tandem was built with CUDA and a GPU is
  // present); anything else, or cuda without a GPU, is an Error saying why.
  std::unique_ptr<ExecutionContext> create_context(int threads = 0, const std::string& backend = "cpu") const;
  // Non-empty when DLA layers run emulated on the host: one line naming the backend used.
  std::string emulation_note(const std::string& backend_name) const;
  // load() checks every section of the file but the weights' bytes, whose checksum it leaves to
  // their first use, so that loading maps the file without reading all of it: this checks it
  // (once; every call after a mismatch throws the same Error). Contexts call it when created.
  void check_weights() const;

 private:
  struct WeightsCheck;
  EngineContents c_;
  std::string name_;
  std::shared_ptr<WeightsCheck> weights_check_;  // null: nothing left to check
};

// One per thread: owns an executor and its buffers; converts IO formats around it.
class ExecutionContext {
 public:
  ExecutionContext(std::shared_ptr<const Engine> engine, int threads, const std::string& backend = "cpu");
  // Inputs in the engine's input formats; outputs in its output formats (a data-dependent output
  // in its real shape: Executor::run).
  TensorMap run(const TensorMap& inputs);
  const Engine& engine() const { return *engine_; }
  std::string backend_name() const;
  // The executor's time split of the last run() (the IO format conversions around it are not in
  // it), and its per-step profile (Executor::last_run_split, Executor::profile).
  RunSplit last_run_split() const;
  std::vector<StepTime> profile(int iters);

 private:
  std::shared_ptr<const Engine> engine_;
  std::unique_ptr<Executor> exec_;
};

// Converts between the network's fp32 NCHW tensor and an IO format (used by ExecutionContext).
HostTensor to_network_format(const HostTensor& in, const TensorFormat& f, float scale);
HostTensor from_network_format(const HostTensor& out, const TensorFormat& f, float scale);

// ---- Engine cache -------------------------------------------------------------------------------
// resolve_cache_dir (tandem/cache_dir.h): the folder; engines live in its engines/.
struct CacheEntry {
  std::string key;
  std::string path;
  uint64_t bytes = 0;
  int64_t mtime = 0;
  EngineMetadata meta;  // empty tool_version when unreadable
};
std::vector<CacheEntry> list_engine_cache(const std::string& dir);
// Removes every cached engine (and lock files); returns how many engines were removed.
size_t clear_engine_cache(const std::string& dir);
// The CUDA backend's cuDNN plan cache in the same folder (<dir>/cudnn-plans, one file per plan):
// how many files and bytes it holds, and removing it (returns how many files were removed).
struct PlanCacheSummary {
  size_t files = 0;
  uint64_t bytes = 0;
};
PlanCacheSummary summarize_plan_cache(const std::string& dir);
size_t clear_plan_cache(const std::string& dir);

// ---- Timing cache -------------------------------------------------------------------------------
// This machine's device key: "cpu:<model name>:<cores>:onednn-<ver>" (a CUDA backend uses
// "cuda:<gpu name>:sm<xy>:cudnn-<ver>").
std::string host_device_key();
struct TimingCache {
  std::string device_key;
  std::map<std::string, Tactic> entries;  // by signature
  // Throws Error naming the file for a foreign device unless ignore_mismatch; an absent file
  // gives an empty cache for this device.
  static TimingCache read(const std::string& path, const std::string& device_key,
                          bool ignore_mismatch);
  // Merges with what is on disk now (under a lock; our entries win) and writes atomically.
  void merge_write(const std::string& path) const;
};

// Small helpers shared by the builder, cache and CLI.
std::string sha256_hex(const void* data, size_t n);
std::string sha256_file_hex(const std::string& path);
uint64_t fnv1a64(const void* data, size_t n, uint64_t h = 0xcbf29ce484222325ull);
// The engine file's section and section-table checksum: XXH3 64 (xxHash), ~20x faster than
// FNV-1a on the megabytes of weights every load checks.
uint64_t section_checksum(const void* data, size_t n);

}  // namespace tandem
