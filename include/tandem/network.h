// The IR: a network of TensorRT-style layers over tensors, in topological order.
// Plain data: vectors and integer ids. verify() checks the invariants.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "tandem/types.h"
#include "tandem/weight_bytes.h"

namespace tandem {

// ---- Layer kinds: follow TensorRT's LayerType taxonomy -----------------------------------
enum class LayerKind : uint8_t {
  kConvolution,
  kDeconvolution,
  kPooling,
  kActivation,
  kElementWise,
  kScale,
  kConcatenation,
  kResize,
  kShuffle,
  kSlice,
  kSoftMax,
  kReduce,
  kMatrixMultiply,
  kUnary,
  kConstant,
  kParametricReLU,
  kLRN,
  kGather,
  kIdentity,
  kCast,
  kNormalization,
  kSelect,
  kScatter,
  kTopK,
  kEinsum,
  kGridSample,
  kRoiAlign,
  kNonZero,
  kNMS,
};
inline constexpr int kLayerKindCount = 29;

struct LayerKindInfo {
  std::string_view name;      // "Convolution"
  std::string_view trt_type;  // "CONVOLUTION", as TensorRT's LayerType prints
  std::string_view trt_label; // "Convolution": TensorRT's default names, "(Unnamed Layer* N) [Label]"
  int min_inputs;
  int max_inputs;  // -1: any number
  // >= 0: the layer computes, as it runs, the extent of its output 0 along this axis (NonZero,
  // NMS: TensorRT's data-dependent shapes, reported through IOutputAllocator). See
  // data_dependent_axis() below.
  int data_dependent_axis = -1;
};
const LayerKindInfo& layer_kind_info(LayerKind k);
inline std::string_view to_string(LayerKind k) { return layer_kind_info(k).name; }

// ---- Per-kind parameter enums ------------------------------------------------------------
enum class ActivationType : uint8_t {
  kRelu, kSigmoid, kTanh, kLeakyRelu, kClip, kHardSigmoid, kElu, kSelu, kSoftplus, kSoftsign,
  kGeluErf, kGeluTanh, kThresholdedRelu, kScaledTanh
};
inline constexpr int kActivationTypeCount = 14;
enum class ElementWiseOp : uint8_t {
  kSum, kProd, kMax, kMin, kSub, kDiv, kPow, kFloorDiv, kAnd, kOr, kXor, kEqual, kGreater, kLess
};
inline constexpr int kElementWiseOpCount = 14;
enum class UnaryOp : uint8_t {
  kExp, kLog, kSqrt, kRecip, kAbs, kNeg, kSin, kCos, kTan, kSinh, kCosh, kAsin, kAcos, kAtan,
  kAsinh, kAcosh, kAtanh, kCeil, kFloor, kErf, kNot, kSign, kRound
};
inline constexpr int kUnaryOpCount = 23;
enum class PoolingType : uint8_t { kMax, kAverage };
inline constexpr int kPoolingTypeCount = 2;
enum class ReduceOp : uint8_t { kSum, kProd, kMax, kMin, kAvg };
inline constexpr int kReduceOpCount = 5;
enum class ScaleMode : uint8_t { kUniform, kChannel, kElementwise };
enum class ResizeMode : uint8_t { kNearest, kLinear, kCubic };
enum class ResizeCoordinateTransform : uint8_t { kAlignCorners, kAsymmetric, kHalfPixel };
enum class ResizeSelector : uint8_t { kFormula, kUpper };
enum class ResizeRounding : uint8_t { kHalfUp, kHalfDown, kFloor, kCeil };
enum class SliceMode : uint8_t { kDefault, kWrap, kClamp, kFill, kReflect };
enum class MatrixOp : uint8_t { kNone, kTranspose };
// TensorRT's GatherMode: kDefault = ONNX Gather, kElement = GatherElements, kND = GatherND.
enum class GatherMode : uint8_t { kDefault, kElement, kND };
inline constexpr int kGatherModeCount = 3;
// TensorRT's ScatterMode: kElement = ScatterElements, kND = ScatterND.
enum class ScatterMode : uint8_t { kElement, kND };
inline constexpr int kScatterModeCount = 2;
// How ScatterElements combines an update with the existing value (ONNX `reduction`). TensorRT's
// IScatterLayer overwrites (kNone); the parser runs the others as NVIDIA's ScatterElements plugin.
enum class ScatterReduction : uint8_t { kNone, kAdd, kMul, kMax, kMin };
inline constexpr int kScatterReductionCount = 5;
enum class TopKOp : uint8_t { kMax, kMin };
// How pooling/convolution output size rounds (ONNX ceil_mode=1 -> kExplicitRoundUp).
enum class PaddingMode : uint8_t { kExplicitRoundDown, kExplicitRoundUp };

std::string_view to_string(ActivationType v);
std::string_view to_string(ElementWiseOp v);
std::string_view to_string(UnaryOp v);
std::string_view to_string(PoolingType v);
std::string_view to_string(ReduceOp v);
std::string_view to_string(ScaleMode v);
std::string_view to_string(ResizeMode v);
std::string_view to_string(ResizeCoordinateTransform v);
std::string_view to_string(ResizeSelector v);
std::string_view to_string(ResizeRounding v);
std::string_view to_string(SliceMode v);
std::string_view to_string(GatherMode v);
std::string_view to_string(ScatterMode v);
std::string_view to_string(ScatterReduction v);
std::string_view to_string(TopKOp v);

// ---- Weights: constant data owned by the network, referred to by id -----------------------
struct Weights {
  std::string name;  // initializer name, or a generated one
  DataType type = DataType::kFloat;
  Dims dims;
  WeightBytes bytes;  // little-endian, dense, row-major; a loaded engine's are views into its file

  int64_t count() const { return volume(dims); }
  const float* f32() const;  // requires type == kFloat
  float* f32();
  // Value i converted to double, whatever the type (for shapes, scalars, tests).
  double at(int64_t i) const;
};
using WeightsId = int;  // index into Network::weights; -1 = none

// ---- Per-kind parameters (one struct per kind that has any) --------------------------------
// Convolution and Deconvolution. Input 0 is data; weights live inside the layer, as in TensorRT.
struct ConvolutionParams {
  Dims kernel;        // {kh, kw}
  Dims stride;        // {sh, sw}
  Dims pre_padding;   // {top, left}
  Dims post_padding;  // {bottom, right}
  Dims dilation;      // {dh, dw}
  int64_t groups = 1;
  int64_t out_maps = 0;
  WeightsId kernel_weights = -1;  // conv: [K, C/g, kh, kw]; deconv: [C, K/g, kh, kw]
  WeightsId bias_weights = -1;    // [K] or -1
};
struct PoolingParams {
  PoolingType type = PoolingType::kMax;
  Dims window, stride, pre_padding, post_padding;
  bool average_count_excludes_padding = true;  // ONNX count_include_pad=0
  PaddingMode padding_mode = PaddingMode::kExplicitRoundDown;
};
struct ActivationParams {
  ActivationType type = ActivationType::kRelu;
  float alpha = 0.f;  // leaky slope, clip min, hard-sigmoid alpha, elu alpha, ...
  float beta = 0.f;   // clip max, hard-sigmoid beta, ...
};
struct ElementWiseParams {
  ElementWiseOp op = ElementWiseOp::kSum;
};
// out = (in * scale + shift) ^ power, per mode; channel_axis counts from 0 (NCHW: 1).
struct ScaleParams {
  ScaleMode mode = ScaleMode::kChannel;
  WeightsId shift = -1, scale = -1, power = -1;
  int channel_axis = 1;
};
struct ConcatenationParams {
  int axis = 1;
};
struct ResizeParams {
  ResizeMode mode = ResizeMode::kNearest;
  ResizeCoordinateTransform transform = ResizeCoordinateTransform::kAsymmetric;
  ResizeSelector selector = ResizeSelector::kFormula;
  ResizeRounding rounding = ResizeRounding::kFloor;
  std::vector<float> scales;  // one per dim; empty when output_dims was given
  Dims output_dims;           // set when the ONNX model gave sizes
  float cubic_coeff = -0.75f;
};
// Shuffle = transpose, then reshape, then transpose (TensorRT's IShuffleLayer).
struct ShuffleParams {
  std::vector<int> first_transpose;   // empty: identity
  std::optional<Dims> reshape;        // resolved, static dims (no 0 / -1)
  std::vector<int> second_transpose;  // empty: identity
};
struct SliceParams {
  Dims start, size, stride;
  SliceMode mode = SliceMode::kDefault;
  float fill_value = 0.f;  // kFill
};
struct SoftMaxParams {
  uint32_t axes = 1u << 1;  // bitmask, one bit set
};
struct ReduceParams {
  ReduceOp op = ReduceOp::kAvg;
  uint32_t axes = 0;  // bitmask
  bool keep_dims = true;
};
struct MatrixMultiplyParams {
  MatrixOp op0 = MatrixOp::kNone, op1 = MatrixOp::kNone;
};
struct UnaryParams {
  UnaryOp op = UnaryOp::kAbs;
};
struct ConstantParams {
  WeightsId weights = -1;
};
struct LRNParams {
  int64_t window = 5;
  float alpha = 1e-4f, beta = 0.75f, k = 1.f;
};
// IGatherLayer. kElement: output dims = indices dims, out[i..] = data[i.. with axis -> index].
// kND: the last indices dim indexes the data dims after the first nb_elementwise_dims (batch) dims.
struct GatherParams {
  int axis = 0;
  GatherMode mode = GatherMode::kDefault;
  int nb_elementwise_dims = 0;  // kND: ONNX batch_dims
};
// IScatterLayer: inputs data, indices, updates; output = data with updates written at indices.
struct ScatterParams {
  ScatterMode mode = ScatterMode::kElement;
  int axis = 0;  // kElement
  ScatterReduction reduction = ScatterReduction::kNone;
};
// ITopKLayer: the k largest (kMax) or smallest (kMin) along one axis, sorted; outputs values and
// int32 indices (ties: the lower index first, as ONNX).
struct TopKParams {
  TopKOp op = TopKOp::kMax;
  int64_t k = 1;
  uint32_t axes = 0;  // bitmask, one bit set
};
// IEinsumLayer: explicit-mode equation of lowercase letters ("ij,jk->ik"), no ellipsis.
struct EinsumParams {
  std::string equation;
};
// IGridSampleLayer: input [N,C,H,W], grid [N,Ho,Wo,2] of (x, y) in [-1, 1] -> [N,C,Ho,Wo].
// sample_mode: what out-of-bounds samples read (kFill: zeros, kClamp: border, kReflect).
struct GridSampleParams {
  ResizeMode interpolation = ResizeMode::kLinear;
  bool align_corners = false;
  SliceMode sample_mode = SliceMode::kFill;
};
// RoiAlign (ONNX RoiAlign; TensorRT runs it as NVIDIA's ROIAlign_TRT plugin, a PLUGIN_V3 layer):
// inputs X [N,C,H,W], rois [R,4] (x1, y1, x2, y2), batch indices [R] -> [R, C, out_h, out_w].
struct RoiAlignParams {
  bool max_mode = false;     // ONNX mode "max" (else "avg")
  bool half_pixel = true;    // coordinate_transformation_mode half_pixel (else output_half_pixel)
  int64_t out_h = 1, out_w = 1;
  int64_t sampling_ratio = 0;  // 0: adaptive, ceil(roi size / output size)
  float spatial_scale = 1.f;
};
// INonZeroLayer has no parameters: input of any type [d0..dr-1] -> int64 [r, bound = volume]
// of the non-zero elements' coordinates, one column each in row-major order, a data-dependent
// extent along axis 1 (TensorRT's indices type kINT64, as ONNX's).
// INMSLayer: inputs boxes [B, N, 4], scores [B, N, C] (TensorRT's layout: the importer transposes
// ONNX's [B, C, N]), max output boxes per class (int32/int64 scalar), IoU threshold and score
// threshold (float scalars) -> selected indices int64 [bound, 3] of (batch, class, box), a
// data-dependent extent along axis 0. center_sizes: boxes are (x_center, y_center, width, height)
// (BoundingBoxFormat::kCENTER_SIZES), else any two diagonal corners (kCORNER_PAIRS).
struct NMSParams {
  bool center_sizes = false;
};
struct CastParams {
  DataType to = DataType::kFloat;
};
// LayerNormalization / InstanceNormalization / GroupNormalization: inputs x, scale, bias.
struct NormalizationParams {
  uint32_t axes = 0;  // bitmask of normalised axes
  float epsilon = 1e-5f;
  int64_t groups = 1;
};
struct NoParams {};

using LayerParams =
    std::variant<NoParams, ConvolutionParams, PoolingParams, ActivationParams, ElementWiseParams,
                 ScaleParams, ConcatenationParams, ResizeParams, ShuffleParams, SliceParams,
                 SoftMaxParams, ReduceParams, MatrixMultiplyParams, UnaryParams, ConstantParams,
                 LRNParams, GatherParams, CastParams, NormalizationParams, ScatterParams,
                 TopKParams, EinsumParams, GridSampleParams, RoiAlignParams, NMSParams>;

// ---- Tensors and layers ----------------------------------------------------------------------
using TensorId = int;
using LayerId = int;

struct Tensor {
  std::string name;
  DataType type = DataType::kFloat;
  Dims dims;                // static after shape resolution
  LayerId producer = -1;    // -1: network input
  bool is_input = false;
  bool is_output = false;
};

struct Layer {
  std::string name;  // TensorRT's ONNX parser naming (see docs/onnx-import.md)
  LayerKind kind = LayerKind::kIdentity;
  std::vector<TensorId> inputs;
  std::vector<TensorId> outputs;
  LayerParams params;
  std::string onnx_node;  // name of the ONNX node it came from ("" for generated)
  std::string onnx_op;    // its op_type

  template <class P> const P& as() const { return std::get<P>(params); }
  template <class P> P& as() { return std::get<P>(params); }
};

struct ModelInfo {
  int64_t ir_version = 0;
  std::vector<std::pair<std::string, int64_t>> opsets;  // (domain, version)
  std::string producer_name, producer_version;
  std::string path;
  std::vector<std::string> folded_nodes;  // ONNX nodes folded to constants at import
  // Explicit quantization (QuantizeLinear -> DequantizeLinear pairs, removed at import): tensor
  // name -> scale (range / 127), the role of a calibration cache. Empty for other models.
  std::map<std::string, float> qdq_scales;
  // Shape-value inputs (ImportOptions::input_values): input name -> the values fixed at import,
  // which every run must be given (check_input_values, tandem/host_tensor.h).
  std::map<std::string, std::vector<int64_t>> input_values;
};

class Network {
 public:
  std::vector<Tensor> tensors;
  std::vector<Layer> layers;  // topological order
  std::vector<Weights> weights;
  std::vector<TensorId> inputs;
  std::vector<TensorId> outputs;
  ModelInfo model;

  TensorId add_tensor(Tensor t);
  WeightsId add_weights(Weights w);
  // Appends a layer; sets producer of each output. Returns its id.
  LayerId add_layer(Layer l);
  TensorId find_tensor(std::string_view name) const;  // -1 if absent
  LayerId find_layer(std::string_view name) const;    // -1 if absent
  // consumers()[t] = layers reading tensor t, in order.
  std::vector<std::vector<LayerId>> consumers() const;

  // Throws Error naming the first broken invariant: ids in range, each tensor produced once,
  // inputs produced before use (topological order), arities per LayerKindInfo, params variant
  // matching kind, weights ids valid, static dims, empty tensors (a 0) only unread inputs/outputs/Constants.
  void verify() const;
};

// The params alternative a kind must carry (for verify and builders).
size_t params_index_for(LayerKind k);

// ---- Data-dependent output shapes (NonZero, NMS) ------------------------------------------------
// A kind with LayerKindInfo::data_dependent_axis >= 0 writes output 0 of a shape known only when it
// runs. The tensor's dims are a static upper bound; along that one axis the layer computes the
// real extent. Its buffer holds the real shape's elements packed row-major at the start, then, at
// byte data_extent_offset(), the extent as one int64. Such a tensor may only be a network output
// (verify() refuses a reader): the executors return it in its real shape.
// -1: t's shape is static; else the axis whose extent its producer computes.
int data_dependent_axis(const Network& net, TensorId t);
// Byte offset of the extent in a data-dependent buffer: the bound's volume * element size.
int64_t data_extent_offset(const Dims& bound, DataType type);
// Bytes a backend allocates for tensor t: its elements, plus the int64 extent when data-dependent.
int64_t stored_bytes(const Network& net, TensorId t);
// The real dims of a data-dependent buffer: `bound` with dims[axis] = the extent stored after the
// elements. Throws Error naming `tensor` if the extent lies outside [0, bound[axis]].
Dims data_dependent_dims(const Dims& bound, int axis, DataType type, const void* buffer,
                         const std::string& tensor);

}  // namespace tandem
