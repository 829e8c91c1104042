// DLA capability: can a layer run on the DLA, and why not. Offline, from NVIDIA's documented
// rules (docs/dla-rules.md); no TensorRT needed.
#pragma once

#include <string>
#include <vector>

#include "tandem/network.h"

namespace tandem {

enum class DlaTarget : uint8_t { kOrin, kXavier };
enum class DlaPrecision : uint8_t { kInt8, kFp16 };
std::string_view to_string(DlaTarget t);
std::string_view to_string(DlaPrecision p);
bool parse_dla_target(std::string_view s, DlaTarget* out);
bool parse_dla_precision(std::string_view s, DlaPrecision* out);

// Every answer carries its reason: for "no", the parameter, its value and the limit.
struct Support {
  bool ok = true;
  std::string reason;  // empty when ok, unless a note applies (e.g. "INT8 runs as FP16 inside DLA")
};

// Facts that hold for one DLA generation / TensorRT version. One place per target.
struct DlaTargetInfo {
  DlaTarget target;
  std::string_view name;             // "orin"
  std::string_view tensorrt;         // "8.6 (JetPack 6)"
  int calibration_version;           // 8600: the calibration cache header number
  int max_loadables_per_core;        // 16
  int64_t max_batch;                 // 4096
  int64_t max_dim;                   // 8192
  bool has_layer_device_types_flag;  // trtexec --layerDeviceTypes exists
};
const DlaTargetInfo& dla_target_info(DlaTarget t);

struct DlaOptions {
  DlaTarget target = DlaTarget::kOrin;
  DlaPrecision precision = DlaPrecision::kInt8;
  bool verbose_layers = false;  // log each layer's verdict (the seed's verbose_layers)
  bool verbose_chunks = false;  // log the chunk list (the seed's verbose_chunks)
};

// One layer's verdict against the rules for a target and precision.
Support check_layer(const Network& net, LayerId layer, const DlaOptions& opt);

// trtutils' chunk tuple: (layers, start, end, on_dla). Zero layers: one chunk ([], 0, -1, false).
struct Chunk {
  std::vector<LayerId> layers;
  int start = 0;
  int end = -1;
  bool on_dla = false;
};

struct DlaReport {
  bool full_dla = true;
  std::vector<Chunk> chunks;
  std::vector<Support> layers;  // per layer, indexed by LayerId
  int dla_layer_count() const;
};

// The seed's can_run_on_dla, done offline. Does not mutate anything.
DlaReport can_run_on_dla(const Network& net, const DlaOptions& opt = {});

}  // namespace tandem
