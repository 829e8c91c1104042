// Lowering: a Network plus its numerics -> an ExecGraph, the one description both executors turn
// into kernels. Decided here, once, for every backend: which layers fuse into which (as the
// backend's LowerPolicy allows), where an emulated precision rounds values (explicit steps),
// which layers are views (aliases, no step), and where every value lives in one arena
// (liveness-based, reused once dead). Pure C++: no CUDA, no oneDNN.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "tandem/network.h"
#include "tandem/runtime.h"

namespace tandem {

// How a value's elements are laid out in memory: kLinear (row-major, NCHW for 4-d tensors), or
// kNHWC (channels-last) for the 4-d half values of a backend with LowerPolicy::fp16_nhwc. The
// property lives on the graph so that a backend choosing another layout says so here, not
// inside a kernel.
enum class ValueLayout : uint8_t { kLinear, kNHWC, kBlocked };
const char* to_string(ValueLayout l);

// ValueId: index into ExecGraph::values. The first values are the network's tensors
// (ValueId == TensorId); rounded copies made by kRound steps follow.
using ValueId = int;

struct ExecValue {
  std::string name;        // the tensor's name; rounded copies: "<tensor>@<layer>"
  DataType type = DataType::kFloat;
  Dims dims;
  // The grid the values lie on: kFP32 (or kUnset) for full precision, kINT8 / kFP16 for values
  // an emulated layer rounded or a native FP16 layer computed.
  Precision precision = Precision::kUnset;
  // How the elements are stored: `type`, or kHalf for a float value computed by a native FP16
  // layer (LowerPolicy::fp16_native) or converted for one.
  DataType storage = DataType::kFloat;
  // A float value stored as half (a native FP16 layer's), as opposed to a tensor of type kHalf.
  bool float_as_half() const { return type == DataType::kFloat && storage == DataType::kHalf; }
  // A float value stored as int8 codes q (LowerPolicy::int8_native): its elements are q * int8_scale.
  bool int8_codes() const { return type == DataType::kFloat && storage == DataType::kInt8; }
  // int8_codes(), or half_of_int8(): the tensor's per-tensor INT8 scale.
  float int8_scale = 0.f;
  // A float value an INT8 layer writes as half, already rounded to its INT8 grid (its readers are
  // native FP16 layers: LowerPolicy::int8_native), so that no round or convert step follows it.
  bool half_of_int8() const { return float_as_half() && int8_scale > 0.f; }
  ValueLayout layout = ValueLayout::kLinear;
  TensorId tensor = -1;    // the network tensor it is (rounded copies: the tensor they copy)
  bool constant = false;   // produced by a Constant layer: evaluated once, outside the arena
  ValueId alias_of = -1;   // a view: shares the memory of this value (resolved to the root)
  bool materialized = false;  // has memory (arena, constant store or an alias)
  int64_t bytes = 0;       // volume * element size (+ 8: the extent of a data-dependent value)
  // >= 0: a data-dependent network output (NonZero, NMS; include/tandem/network.h): dims are its
  // bound, its producer writes the real extent along this axis after the elements.
  int data_dependent_axis = -1;
  int64_t offset = -1;     // in the arena; -1: not in the arena (constant, alias, never used)
};

// Something a step computes after its primary layer, in the same kernel.
enum class EpilogueKind : uint8_t {
  kScale,        // a Scale folded into the convolution's weights and bias
  kActivation,   // an Activation layer
  kHardSwish,    // x * HardSigmoid(x) (alpha 1/6, beta 1/2): layers = {HardSigmoid, Prod}
  kElementWise,  // an ElementWise of the running value with a scalar or the chain's input
};
// Where the other operand of a kElementWise epilogue comes from.
enum class EpilogueOperand : uint8_t {
  kNone,              // not an ElementWise
  kScalarRight,       // value op scalar
  kScalarLeft,        // scalar op value
  kChainInputRight,   // value op chain input
  kChainInputLeft,    // chain input op value
};
struct Epilogue {
  EpilogueKind kind = EpilogueKind::kActivation;
  std::vector<LayerId> layers;  // the layers it absorbs (one, or two for kHardSwish)
  EpilogueOperand operand = EpilogueOperand::kNone;
  float scalar = 0.f;           // kScalar*: the one-value constant
};

enum class StepKind : uint8_t {
  kLayer,           // the primary layer, then its epilogue
  kPointwiseChain,  // point-wise layers in one pass: epilogue[0] is the first layer
  kRound,           // the numerics of an emulated layer: round a value (see Rounding). With
                    // LowerPolicy::fp16_native, a kFp16 round whose output is stored otherwise
                    // than its input (half <-> float, NHWC <-> linear) is a convert step.
};
enum class Rounding : uint8_t {
  kFp16,           // to the nearest half (round to nearest even)
  kInt8,           // fake quantization: clamp(rne(x / scale), -128, 127) * scale
  kInt8PerChannel, // weights used as a tensor: symmetric per channel, max|w| / 127
};
const char* to_string(StepKind k);
const char* to_string(Rounding r);

struct ExecStep {
  StepKind kind = StepKind::kLayer;
  // kLayer: the primary layer; kPointwiseChain: the first layer; kRound: the emulated layer
  // whose input or output it rounds.
  LayerId layer = -1;
  Precision precision = Precision::kUnset;  // the layer's numerics (its weights are rounded so)
  // What the kernels read and write: a layer's inputs (rounded copies substituted) and its
  // final outputs (after the epilogue: the last absorbed layer's outputs).
  std::vector<ValueId> inputs, outputs;
  std::vector<Epilogue> epilogue;
  // kLayer with kChainInput* operands, and kPointwiseChain: the chain input is the running value
  // before epilogue[chain_input_at] (0: the primary layer's output, or the chain's input).
  int chain_input_at = 0;
  // kRound: inputs[0] -> outputs[0] (the same value: in place).
  Rounding rounding = Rounding::kFp16;
  float scale = 0.f;                   // kInt8
  int64_t channels = 0, inner = 1;     // kInt8PerChannel: channel c = (i / inner) % channels
};

struct ExecGraph {
  std::vector<ExecValue> values;
  std::vector<ExecStep> steps;                 // execution order
  std::vector<LayerId> constants;          // Constant layers, evaluated once at compile
  std::vector<TensorId> inputs, outputs;   // the network's
  int64_t arena_bytes = 0;
  // The step that computes each layer (-1: a Constant, a view, or absorbed: see absorbed_into).
  std::vector<int> step_of_layer;
  std::vector<int> absorbed_into;          // layer -> the step whose epilogue holds it (-1: none)
  // The root value whose memory v uses (itself unless v is a view).
  ValueId root(ValueId v) const { return values[size_t(v)].alias_of >= 0 ? values[size_t(v)].alias_of : v; }
};

// What a backend can fuse, and how it lays out memory.
struct LowerPolicy {
  bool fuse = true;      // false: no epilogues, no chains (ExecOptions::fuse, off with keep_all)
  bool keep_all = false; // every network tensor materialized and kept to the end of the run
  // Convolution / Deconvolution epilogues.
  bool conv_fold_scale = false;   // a following Scale (uniform/channel on axis 1, no power)
  bool conv_hard_swish = false;   // t * HardSigmoid(t) after the convolution
  int conv_max_activations = 0;   // how many Activation layers in a row (-1: no limit)
  // Whether `next` can follow `chain` in one convolution's epilogue (e.g. oneDNN's post-op
  // rules); unset: always.
  std::function<bool(const Network&, const std::vector<Epilogue>& chain, const Epilogue& next)> conv_can_append;
  // Chains of point-wise layers (Activation; ElementWise of the running value with a one-value
  // constant or with the chain's input) in one kernel, at most max_pointwise_ops long; a chain
  // reading a convolution's output alone runs in that convolution's epilogue.
  bool pointwise_chains = false;
  int max_pointwise_ops = 8;
  // A convolution whose epilogue already ends in a chain that does not read its chain input may
  // take a second chain reading that chain's output (chain_input_at moves to where the second
  // chain starts: PP-LCNetV3's conv -> * s + b -> hard-swish -> * s + b). FP32 steps only; the
  // entries before chain_input_at may then be element-wise links too.
  bool conv_chain_capture = false;
  bool alias_views = true;   // Identity and transpose-free Shuffle share their input's memory
  // Emulated (INT8/FP16) layers fuse with layers of the same precision as TensorRT fuses them:
  // the block computes in FP32 inside and rounds once, at its output. FP16 blocks fuse across any
  // tensor; INT8 blocks only across Numerics::unquantized tensors (every quantized tensor keeps
  // its rounding), and an INT8 convolution folds no Scale (the float arithmetic stays that of the
  // Q/DQ export). Unset: emulated layers never fuse (each rounds its own inputs and outputs).
  bool fuse_emulated = false;
  // An emulated value that every reader rounds to the same grid (FP16, or INT8 with its one
  // scale) and that is no network output is rounded in place once, right after its producer
  // (where the producer's step applies it), instead of into a copy per reader: the same bits.
  bool round_in_place = false;
  // With fuse_emulated: an INT8 convolution takes an FP16 point-wise chain reading its output
  // alone (scalar affine, written-out hard-swish) into its epilogue, as TensorRT's INT8
  // Conv + activation layer: the chain runs on the dequantized accumulator and the step
  // requantizes once to the chain output's INT8 grid (no INT8 and FP16 rounding of the
  // convolution's output, no FP16 rounding of the chain's). Only onto a per-tensor grid.
  bool int8_conv_fp16_chain = false;
  // Real FP16 (GPU). FP16 layers this accepts compute in half precision: their float outputs are
  // stored as half (ExecValue::storage), they fuse with each other as FP32 layers do, and a value
  // crossing between half and float storage gets one convert step before its first consumer
  // that needs it (shared by later ones). A layer writing a network output, or with keep_all,
  // is never native. Unset: every FP16 layer is emulated (the CPU backend's lowering).
  std::function<bool(const Network&, LayerId)> fp16_native;
  bool fp16_nhwc = false;    // 4-d half values channels-last (when C > 1 and H * W > 1)
  // Real INT8 (GPU). Layers this accepts can read and write int8 codes: a float value with a
  // per-tensor scale whose producer and consumers all do, standing alone (no epilogue, not
  // absorbed), is stored as codes (ExecValue::int8_codes, channels-last when 4-d as half is),
  // so no round or convert step sits between them. The producer requantizes (an INT8 layer's
  // output rounding; an FP16 activation's output only when every consumer is INT8, which would
  // round it to that grid anyway), an INT8 consumer reads the codes as its rounded input, a
  // native FP16 activation reads q * scale rounded to half. Also: an INT8 convolution's output
  // read only by native FP16 layers is written as half already on its INT8 grid
  // (ExecValue::half_of_int8), and an INT8 convolution's float or half input becomes codes in
  // one step (a round step whose output is stored as codes, shared by every such reader) instead
  // of a float copy; from a half input, and the half outputs, only with int8_half_boundaries.
  // Unset: the CPU backend's lowering.
  std::function<bool(const Network&, LayerId)> int8_native;
  bool int8_half_boundaries = false;
  int64_t alignment = 64;    // of every arena block (bytes; blocks are at least this big)
};

// Throws Error naming the layer or tensor when the numerics cannot be honoured (FP8; an INT8
// layer's float tensor without a positive scale; more precisions than layers).
ExecGraph lower(const Network& net, const Numerics& numerics, const LowerPolicy& policy);

// One line per step ("conv [Convolution] +relu -> y"), for tests and debugging.
std::string describe(const Network& net, const ExecGraph& g);

}  // namespace tandem
