// The plan: which device and precision each layer gets. A pure function of the network and
// options (no CUDA, no protobuf).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "tandem/dla.h"
#include "tandem/network.h"

namespace tandem {

enum class Device : uint8_t { kGPU, kDLA };
// kUnset: no precision constraint (the seed leaves Constant, Shuffle and "tile" layers unset).
enum class Precision : uint8_t { kUnset, kFP32, kFP16, kINT8, kFP8 };
std::string_view to_string(Device d);
std::string_view to_string(Precision p);
bool parse_device(std::string_view s, Device* out);
bool parse_precision(std::string_view s, Precision* out);

enum class Strategy : uint8_t { kSeed, kGraph };
std::string_view to_string(Strategy s);
bool parse_strategy(std::string_view s, Strategy* out);

struct LayerPlacement {
  Device device = Device::kGPU;
  Precision precision = Precision::kUnset;
  int region = -1;     // index into Plan::regions when on the DLA, else -1
  std::string reason;  // why this device
};

// A set of layers that becomes one DLA loadable (seed: a chunk; graph: a connected region).
struct Region {
  std::vector<LayerId> layers;
  int start = 0, end = -1;  // seed: index range; graph: min/max layer id
  bool on_dla = true;
  std::string reason;       // why kept or demoted
};

// A tensor crossing between GPU and DLA.
struct Crossing {
  TensorId tensor;
  Device from, to;
  int64_t bytes;  // at the producer's precision
};

struct PlanOptions {
  Strategy strategy = Strategy::kSeed;
  DlaOptions dla;           // target, precision of the check (INT8 by default)
  int max_chunks = 1;       // <= 0: all
  int min_layers = 20;      // <= 0: accept all
  int dla_core = 0;
  int optimization_level = 3;  // 0..5
  bool fp8 = false;
  // Per-layer overrides by TensorRT layer name (validated: unknown names are an error).
  std::vector<std::pair<std::string, Device>> layer_device;
  std::vector<std::pair<std::string, Precision>> layer_precision;
};

struct Plan {
  enum class Case : uint8_t { kFullDla, kNoDla, kMixed };
  Case plan_case = Case::kMixed;
  bool gpu_fallback = true;
  Device default_device = Device::kGPU;
  int dla_core = 0;
  DlaTarget target = DlaTarget::kOrin;
  Strategy strategy = Strategy::kSeed;
  bool fp16 = true, int8 = true, fp8 = false;
  int optimization_level = 3;
  std::vector<LayerPlacement> layers;  // indexed by LayerId
  std::vector<Region> regions;
  std::vector<Crossing> crossings;
  std::vector<std::string> warnings;
  int64_t crossing_bytes() const;
};

// Throws Error on bad options (negative dla_core, optimization level outside 0..5, unknown
// layer name in an override).
Plan make_plan(const Network& net, const PlanOptions& opt);

}  // namespace tandem
