// DLA capability: can a layer run on the DLA, and why not. Offline, from NVIDIA's documented
// rules (sources and implementation notes in docs/dla-rules-impl.md); no TensorRT needed.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tandem/constant_origin.h"
#include "tandem/network.h"

namespace tandem {

enum class DlaTarget : uint8_t { kOrin, kXavier };
enum class DlaPrecision : uint8_t { kInt8, kFp16 };
std::string_view to_string(DlaTarget t);
std::string_view to_string(DlaPrecision p);
bool parse_dla_target(std::string_view s, DlaTarget* out);       // "orin" | "xavier"
bool parse_dla_precision(std::string_view s, DlaPrecision* out);  // "int8" | "fp16"

// Every answer carries its reason: for "no", the layer, the parameter, its value and the limit
// (several failures are joined with "; "). For "yes", reason may hold a note (e.g. "INT8 runs as
// FP16 inside DLA").
struct Support {
  bool ok = true;
  std::string reason;
  // INT8 on DLA needs equal dynamic ranges on the inputs (ElementWise), on inputs and output
  // (Concatenation) or on input and output (Pooling): the planner/calibrator must unify them.
  bool int8_equal_ranges = false;
};

// The rule behind int8_equal_ranges, for any INT8 layer (on the DLA or not: TensorRT ties these
// ranges on the GPU too): the tensors of one layer that must share one dynamic range, and which
// of them take it from the others (TensorRT sets a pooling output from its input and a Concat's
// inputs from its output). Fewer than two tensors: no rule. The DLA check sets
// int8_equal_ranges from it; calibration (tie_ranges) unifies the ranges it names.
struct Int8RangeTie {
  std::vector<TensorId> tensors;
  std::vector<TensorId> derived;  // members whose range is set from the others (not sources)
};
Int8RangeTie int8_equal_range_tensors(const Network& net, const Layer& layer);

// Numeric limits and op sets of one DLA generation + TensorRT version. Every field names its
// source key (docs/dla-rules-impl.md, "Sources") in dla_rules.cpp, where the two tables live.
struct DlaLimits {
  // general (S1, S6)
  int64_t max_batch;  // product of the dims before CHW
  int64_t max_dim;    // each non-batch dim
  // Convolution / FullyConnected (S5, S8)
  int64_t conv_kernel_max, conv_stride_max, conv_pad_max, conv_dilation_max, conv_out_maps_max,
      conv_groups_max;
  int cbuf_banks;  // numConvBufBankAllotted
  // Deconvolution (S5, S8, S9)
  int64_t deconv_kernel_max, deconv_stride_max;
  std::vector<int64_t> deconv_long_sizes;      // 1xN / Nx1 kernels and strides also allowed
  int64_t deconv_square_off_lo, deconv_square_off_hi;  // square kernels/strides disabled
  int64_t deconv_channels_max;
  // Pooling (S5)
  int64_t pool_window_max, pool_stride_max, pool_pad_max;
  bool pool_avg_exclusive_padding;  // false on Xavier: inclusive padding only
  // Activation (S1, S5, S8, S9)
  uint32_t activations;  // bitmask over ActivationType
  double clip_max_lo, clip_max_hi;
  // ElementWise / Comparison (S1, S5, S10, S16)
  uint32_t elementwise_ops;  // bitmask over ElementWiseOp (arithmetic)
  uint32_t comparison_ops;   // bitmask over ElementWiseOp (kEqual, kGreater, kLess)
  // Unary (S5)
  uint32_t unary_ops;  // bitmask over UnaryOp
  // LRN (S5)
  std::vector<int64_t> lrn_windows;
  // Resize (S5)
  int64_t resize_nearest_max, resize_linear_max;
  // SoftMax (S5, S9)
  bool softmax;
  int64_t softmax_accurate_max, softmax_optimized_max;
  // Shuffle, Reduce (S10 operator matrix; Shuffle precision unverified)
  bool shuffle;
  // false: a reshape Shuffle directly connected to a Slice or Concat is split off the DLA
  // subgraph (TensorRT's DLA validation on Orin, S16 ultralytics#18012)
  bool reshape_beside_slice_concat;
  uint32_t reduce_ops;  // bitmask over ReduceOp
};

// Facts that hold for one DLA generation / TensorRT version. One place per target.
struct DlaTargetInfo {
  DlaTarget target;
  std::string_view name;             // "orin"
  std::string_view tensorrt;         // "8.6 (JetPack 6, DLA 3.14)"
  int trt_version;                   // 8602: default --trt-version for exports
  int calibration_version;           // 8600: the calibration cache header number
  int max_loadables_per_core;        // 16
  int cores;                         // DLA cores per SoC (2)
  int64_t max_batch;                 // 4096
  int64_t max_dim;                   // 8192
  bool has_layer_device_types_flag;  // trtexec --layerDeviceTypes exists
  DlaLimits limits;
};
const DlaTargetInfo& dla_target_info(DlaTarget t);

struct DlaOptions {
  DlaTarget target = DlaTarget::kOrin;
  DlaPrecision precision = DlaPrecision::kInt8;
  bool verbose_layers = false;  // log each layer's verdict to stderr (the seed's verbose_layers)
  bool verbose_chunks = false;  // log the chunk list to stderr (the seed's verbose_chunks)
};

// One layer's verdict against the rules for a target and precision.
Support check_layer(const Network& net, LayerId layer, const DlaOptions& opt);

// is_constant_tensor (a Constant layer, possibly through Shuffle/Identity views): in
// tandem/constant_origin.h, included above.

// trtutils' chunk tuple: (layers, start, end, on_dla). Zero layers: one chunk ([], 0, -1, false).
struct Chunk {
  std::vector<LayerId> layers;
  int start = 0;
  int end = -1;
  bool on_dla = false;
};

struct DlaReport {
  DlaTarget target = DlaTarget::kOrin;
  DlaPrecision precision = DlaPrecision::kInt8;
  bool full_dla = true;
  std::vector<Chunk> chunks;
  std::vector<Support> layers;  // per layer, indexed by LayerId
  int dla_layer_count() const;
  int dla_chunk_count() const;  // = DLA loadables this chunking needs
};

// The seed's can_run_on_dla, done offline. Does not mutate anything. Logs to stderr when the
// verbose options ask for it.
DlaReport can_run_on_dla(const Network& net, const DlaOptions& opt = {});

// Reports for `tandem dla-check` (schema in docs/dla-rules-impl.md). model: the path shown.
std::string dla_report_text(const Network& net, const DlaReport& r, const std::string& model);
std::string dla_report_json(const Network& net, const DlaReport& r, const std::string& model);

}  // namespace tandem
