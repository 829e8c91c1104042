// The plan: which device and precision each layer gets. A pure function of the network and
// options (no CUDA, no protobuf). Strategies and exports: docs/planning.md.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tandem/dla.h"
#include "tandem/network.h"

namespace tandem {

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
// Plan::regions also lists the candidates that were demoted (on_dla false), with the reason.
struct Region {
  std::vector<LayerId> layers;
  int start = 0, end = -1;  // seed: index range; graph: min/max layer id
  bool on_dla = true;
  std::string reason;       // why kept or demoted
};

// A tensor crossing between GPU and DLA (network inputs read by DLA layers count as GPU -> DLA).
struct Crossing {
  TensorId tensor;
  Device from, to;
  int64_t bytes;  // at the producer's precision (INT8 1 B, FP16 2 B, unset: the tensor's type)
};

struct PlanOptions {
  Strategy strategy = Strategy::kSeed;
  DlaOptions dla;              // target, precision of the check (INT8 by default)
  int max_chunks = 1;          // seed: <= 0 means all
  int min_layers = 20;         // <= 0: accept all
  int max_regions = 0;         // graph: <= 0 means the target's loadables per core (16)
  int dla_core = 0;            // 0 .. cores-1 of the target
  int optimization_level = 3;  // 0..5
  bool fp8 = false;
  // Per-layer overrides by TensorRT layer name (validated: unknown names are an error), applied
  // after the strategy: a layer forced to DLA must pass check_layer, else it stays on the GPU
  // with a warning.
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
  DlaPrecision check_precision = DlaPrecision::kInt8;
  Strategy strategy = Strategy::kSeed;
  bool fp16 = true, int8 = true, fp8 = false;
  int optimization_level = 3;
  std::vector<LayerPlacement> layers;  // indexed by LayerId
  std::vector<Region> regions;
  std::vector<Crossing> crossings;
  std::vector<std::string> warnings;
  DlaReport report;  // the capability analysis the plan was made from
  int64_t crossing_bytes() const;
  int dla_region_count() const;
};
std::string_view to_string(Plan::Case c);  // "full-dla" | "no-dla" | "mixed"

// Throws Error (exit code 2) on bad options: negative dla_core or >= the target's cores,
// optimization level outside 0..5, unknown layer name in an override.
Plan make_plan(const Network& net, const PlanOptions& opt);

// ---- Reports and exports (docs/planning.md) --------------------------------------------------
std::string plan_report_text(const Network& net, const Plan& plan, const std::string& model);
std::string plan_report_json(const Network& net, const Plan& plan, const std::string& model);

struct TrtexecOptions {
  std::string onnx;              // --onnx
  std::string save_engine;       // --saveEngine ("" -> <onnx stem>.engine)
  std::string calib;             // --calib
  std::string timing_cache;      // --timingCacheFile
  int trt_version = 0;           // 8500 | 8600 | 10000; 0 = the target's TensorRT
  double workspace_mib = 4096;   // the seed's 4 GiB
  double dla_sram_mib = 0;       // 0: not given (TensorRT default)
  double dla_local_dram_mib = 0;
  double dla_global_dram_mib = 0;
  std::string input_io_formats;   // trtexec spec, passed through
  std::string output_io_formats;
  bool direct_io = false;
  bool explicit_shapes = false;   // emit --shapes from the network inputs (the user gave --shape)
  std::string profiling_verbosity;  // --profilingVerbosity: layer_names_only | detailed | none ("": detailed)
  // --exportLayerInfo: trtexec writes the engine's layers (IEngineInspector JSON) here, the input
  // of `tandem verify-layers`. "": <engine stem>.layers.json; "-": not emitted.
  std::string export_layer_info;
  int tiling_optimization_level = -1;  // --tilingOptimizationLevel (TensorRT 10.8+), -1: not given
  int64_t tiling_l2_cache_limit = -1;  // --l2LimitForTiling in bytes (TensorRT 10.8+), -1: not given
};
// Lines: "# note: ..." comments, then the command (one flag per line, joined by " \").
std::string trtexec_command(const Network& net, const Plan& plan, const TrtexecOptions& opt);
// Quotes a layer name for --layerPrecisions/--layerDeviceTypes when it has special characters.
std::string trtexec_layer_name(const std::string& name);

// Graphviz picture: layers coloured by device, DLA regions as clusters.
std::string plan_dot(const Network& net, const Plan& plan, const std::string& title);

// The collapsed view (`export dot --view regions`): one box per DLA region and per GPU span (a
// maximal run of consecutive GPU layers, in layer order), edges labelled with the tensors that
// cross between boxes and their shapes. Readable for a 600-layer model.
struct PlanGroups {
  struct Group {
    Device device = Device::kGPU;
    int region = -1;             // DLA: the plan's region index (-1: a DLA layer outside any region)
    std::vector<LayerId> layers;  // in layer order
  };
  std::vector<Group> groups;
  std::vector<int> group_of;  // indexed by LayerId
};
PlanGroups plan_groups(const Plan& plan);
std::string plan_dot_regions(const Network& net, const Plan& plan, const std::string& title);

}  // namespace tandem
