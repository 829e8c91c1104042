#include "tandem/network.h"
#include "tandem/numerics.h"

#include <array>
#include <cmath>
#include <cstring>
#include <fmt/format.h>

namespace tandem {

namespace {
// Indexed by LayerKind. Keep in the enum's order.
constexpr std::array<LayerKindInfo, kLayerKindCount> kLayerKinds = {{
    {"Convolution", "CONVOLUTION", "Convolution", 1, 1},
    {"Deconvolution", "DECONVOLUTION", "Deconvolution", 1, 1},
    {"Pooling", "POOLING", "Pooling", 1, 1},
    {"Activation", "ACTIVATION", "Activation", 1, 1},
    {"ElementWise", "ELEMENTWISE", "ElementWise", 2, 2},
    {"Scale", "SCALE", "Scale", 1, 1},
    {"Concatenation", "CONCATENATION", "Concatenation", 1, -1},
    {"Resize", "RESIZE", "Resize", 1, 1},
    {"Shuffle", "SHUFFLE", "Shuffle", 1, 1},
    {"Slice", "SLICE", "Slice", 1, 1},
    {"SoftMax", "SOFTMAX", "Softmax", 1, 1},
    {"Reduce", "REDUCE", "Reduce", 1, 1},
    {"MatrixMultiply", "MATRIX_MULTIPLY", "Matrix Multiply", 2, 2},
    {"Unary", "UNARY", "Unary", 1, 1},
    {"Constant", "CONSTANT", "Constant", 0, 0},
    {"ParametricReLU", "PARAMETRIC_RELU", "Parametric ReLU", 2, 2},
    {"LRN", "LRN", "LRN", 1, 1},
    {"Gather", "GATHER", "Gather", 2, 2},
    {"Identity", "IDENTITY", "Identity", 1, 1},
    {"Cast", "CAST", "Cast", 1, 1},
    {"Normalization", "NORMALIZATION", "Normalization", 3, 3},
    {"Select", "SELECT", "Select", 3, 3},
    {"Scatter", "SCATTER", "Scatter", 3, 3},
    {"TopK", "TOPK", "TopK", 1, 1},
    {"Einsum", "EINSUM", "Einsum", 1, 2},
    {"GridSample", "GRID_SAMPLE", "GridSample", 2, 2},
    {"RoiAlign", "PLUGIN_V3", "PluginV3", 3, 3},  // the parser's ROIAlign_TRT plugin layer
    {"NonZero", "NON_ZERO", "NonZero", 1, 1, 1},  // [rank, count]: the count is data-dependent
    {"NMS", "NMS", "NMS", 5, 5, 0},               // [selected, 3]: importers give all 5 inputs
}};

template <class T>
constexpr size_t variant_index() {
  return LayerParams(T{}).index();
}
}  // namespace

const LayerKindInfo& layer_kind_info(LayerKind k) { return kLayerKinds[static_cast<size_t>(k)]; }

size_t params_index_for(LayerKind k) {
  switch (k) {
    case LayerKind::kConvolution:
    case LayerKind::kDeconvolution: return variant_index<ConvolutionParams>();
    case LayerKind::kPooling: return variant_index<PoolingParams>();
    case LayerKind::kActivation: return variant_index<ActivationParams>();
    case LayerKind::kElementWise: return variant_index<ElementWiseParams>();
    case LayerKind::kScale: return variant_index<ScaleParams>();
    case LayerKind::kConcatenation: return variant_index<ConcatenationParams>();
    case LayerKind::kResize: return variant_index<ResizeParams>();
    case LayerKind::kShuffle: return variant_index<ShuffleParams>();
    case LayerKind::kSlice: return variant_index<SliceParams>();
    case LayerKind::kSoftMax: return variant_index<SoftMaxParams>();
    case LayerKind::kReduce: return variant_index<ReduceParams>();
    case LayerKind::kMatrixMultiply: return variant_index<MatrixMultiplyParams>();
    case LayerKind::kUnary: return variant_index<UnaryParams>();
    case LayerKind::kConstant: return variant_index<ConstantParams>();
    case LayerKind::kLRN: return variant_index<LRNParams>();
    case LayerKind::kGather: return variant_index<GatherParams>();
    case LayerKind::kCast: return variant_index<CastParams>();
    case LayerKind::kNormalization: return variant_index<NormalizationParams>();
    case LayerKind::kScatter: return variant_index<ScatterParams>();
    case LayerKind::kTopK: return variant_index<TopKParams>();
    case LayerKind::kEinsum: return variant_index<EinsumParams>();
    case LayerKind::kGridSample: return variant_index<GridSampleParams>();
    case LayerKind::kRoiAlign: return variant_index<RoiAlignParams>();
    case LayerKind::kNMS: return variant_index<NMSParams>();
    case LayerKind::kNonZero:
    case LayerKind::kParametricReLU:
    case LayerKind::kIdentity:
    case LayerKind::kSelect: return variant_index<NoParams>();
  }
  return variant_index<NoParams>();
}

std::string_view to_string(ActivationType v) {
  switch (v) {
    case ActivationType::kRelu: return "RELU";
    case ActivationType::kSigmoid: return "SIGMOID";
    case ActivationType::kTanh: return "TANH";
    case ActivationType::kLeakyRelu: return "LEAKY_RELU";
    case ActivationType::kClip: return "CLIP";
    case ActivationType::kHardSigmoid: return "HARD_SIGMOID";
    case ActivationType::kElu: return "ELU";
    case ActivationType::kSelu: return "SELU";
    case ActivationType::kSoftplus: return "SOFTPLUS";
    case ActivationType::kSoftsign: return "SOFTSIGN";
    case ActivationType::kGeluErf: return "GELU_ERF";
    case ActivationType::kGeluTanh: return "GELU_TANH";
    case ActivationType::kThresholdedRelu: return "THRESHOLDED_RELU";
    case ActivationType::kScaledTanh: return "SCALED_TANH";
  }
  return "?";
}

std::string_view to_string(ElementWiseOp v) {
  switch (v) {
    case ElementWiseOp::kSum: return "SUM";
    case ElementWiseOp::kProd: return "PROD";
    case ElementWiseOp::kMax: return "MAX";
    case ElementWiseOp::kMin: return "MIN";
    case ElementWiseOp::kSub: return "SUB";
    case ElementWiseOp::kDiv: return "DIV";
    case ElementWiseOp::kPow: return "POW";
    case ElementWiseOp::kFloorDiv: return "FLOOR_DIV";
    case ElementWiseOp::kAnd: return "AND";
    case ElementWiseOp::kOr: return "OR";
    case ElementWiseOp::kXor: return "XOR";
    case ElementWiseOp::kEqual: return "EQUAL";
    case ElementWiseOp::kGreater: return "GREATER";
    case ElementWiseOp::kLess: return "LESS";
  }
  return "?";
}

std::string_view to_string(UnaryOp v) {
  switch (v) {
    case UnaryOp::kExp: return "EXP";
    case UnaryOp::kLog: return "LOG";
    case UnaryOp::kSqrt: return "SQRT";
    case UnaryOp::kRecip: return "RECIP";
    case UnaryOp::kAbs: return "ABS";
    case UnaryOp::kNeg: return "NEG";
    case UnaryOp::kSin: return "SIN";
    case UnaryOp::kCos: return "COS";
    case UnaryOp::kTan: return "TAN";
    case UnaryOp::kSinh: return "SINH";
    case UnaryOp::kCosh: return "COSH";
    case UnaryOp::kAsin: return "ASIN";
    case UnaryOp::kAcos: return "ACOS";
    case UnaryOp::kAtan: return "ATAN";
    case UnaryOp::kAsinh: return "ASINH";
    case UnaryOp::kAcosh: return "ACOSH";
    case UnaryOp::kAtanh: return "ATANH";
    case UnaryOp::kCeil: return "CEIL";
    case UnaryOp::kFloor: return "FLOOR";
    case UnaryOp::kErf: return "ERF";
    case UnaryOp::kNot: return "NOT";
    case UnaryOp::kSign: return "SIGN";
    case UnaryOp::kRound: return "ROUND";
  }
  return "?";
}

std::string_view to_string(PoolingType v) {
  switch (v) {
    case PoolingType::kMax: return "MAX";
    case PoolingType::kAverage: return "AVERAGE";
  }
  return "?";
}

std::string_view to_string(ReduceOp v) {
  switch (v) {
    case ReduceOp::kSum: return "SUM";
    case ReduceOp::kProd: return "PROD";
    case ReduceOp::kMax: return "MAX";
    case ReduceOp::kMin: return "MIN";
    case ReduceOp::kAvg: return "AVG";
  }
  return "?";
}

std::string_view to_string(ScaleMode v) {
  switch (v) {
    case ScaleMode::kUniform: return "UNIFORM";
    case ScaleMode::kChannel: return "CHANNEL";
    case ScaleMode::kElementwise: return "ELEMENTWISE";
  }
  return "?";
}

std::string_view to_string(ResizeMode v) {
  switch (v) {
    case ResizeMode::kNearest: return "NEAREST";
    case ResizeMode::kLinear: return "LINEAR";
    case ResizeMode::kCubic: return "CUBIC";
  }
  return "?";
}

std::string_view to_string(ResizeCoordinateTransform v) {
  switch (v) {
    case ResizeCoordinateTransform::kAlignCorners: return "ALIGN_CORNERS";
    case ResizeCoordinateTransform::kAsymmetric: return "ASYMMETRIC";
    case ResizeCoordinateTransform::kHalfPixel: return "HALF_PIXEL";
  }
  return "?";
}

std::string_view to_string(ResizeSelector v) {
  switch (v) {
    case ResizeSelector::kFormula: return "FORMULA";
    case ResizeSelector::kUpper: return "UPPER";
  }
  return "?";
}

std::string_view to_string(ResizeRounding v) {
  switch (v) {
    case ResizeRounding::kHalfUp: return "HALF_UP";
    case ResizeRounding::kHalfDown: return "HALF_DOWN";
    case ResizeRounding::kFloor: return "FLOOR";
    case ResizeRounding::kCeil: return "CEIL";
  }
  return "?";
}

std::string_view to_string(SliceMode v) {
  switch (v) {
    case SliceMode::kDefault: return "DEFAULT";
    case SliceMode::kWrap: return "WRAP";
    case SliceMode::kClamp: return "CLAMP";
    case SliceMode::kFill: return "FILL";
    case SliceMode::kReflect: return "REFLECT";
  }
  return "?";
}

std::string_view to_string(GatherMode v) {
  switch (v) {
    case GatherMode::kDefault: return "DEFAULT";
    case GatherMode::kElement: return "ELEMENT";
    case GatherMode::kND: return "ND";
  }
  return "?";
}

std::string_view to_string(ScatterMode v) {
  switch (v) {
    case ScatterMode::kElement: return "ELEMENT";
    case ScatterMode::kND: return "ND";
  }
  return "?";
}

std::string_view to_string(ScatterReduction v) {
  switch (v) {
    case ScatterReduction::kNone: return "NONE";
    case ScatterReduction::kAdd: return "ADD";
    case ScatterReduction::kMul: return "MUL";
    case ScatterReduction::kMax: return "MAX";
    case ScatterReduction::kMin: return "MIN";
  }
  return "?";
}

std::string_view to_string(TopKOp v) {
  switch (v) {
    case TopKOp::kMax: return "MAX";
    case TopKOp::kMin: return "MIN";
  }
  return "?";
}

// ---- Weights --------------------------------------------------------------------------------
const float* Weights::f32() const {
  if (type != DataType::kFloat) throw Error(fmt::format("weights '{}' are {}, not fp32", name, to_string(type)));
  return reinterpret_cast<const float*>(bytes.data());
}
float* Weights::f32() {
  if (type != DataType::kFloat) throw Error(fmt::format("weights '{}' are {}, not fp32", name, to_string(type)));
  return reinterpret_cast<float*>(bytes.data());
}

double Weights::at(int64_t i) const {
  const uint8_t* p = bytes.data() + i * element_size(type);
  switch (type) {
    case DataType::kFloat: { float v; std::memcpy(&v, p, 4); return v; }
    case DataType::kHalf: { uint16_t h; std::memcpy(&h, p, 2); return half_to_float(h); }
    case DataType::kInt8: return static_cast<int8_t>(*p);
    case DataType::kUInt8: return *p;
    case DataType::kInt32: { int32_t v; std::memcpy(&v, p, 4); return v; }
    case DataType::kInt64: { int64_t v; std::memcpy(&v, p, 8); return static_cast<double>(v); }
    case DataType::kBool: return *p ? 1.0 : 0.0;
    case DataType::kBFloat16: { uint16_t b; std::memcpy(&b, p, 2); return bfloat16_to_float(b); }
  }
  return 0;
}

// ---- Network --------------------------------------------------------------------------------
TensorId Network::add_tensor(Tensor t) {
  tensors.push_back(std::move(t));
  return static_cast<TensorId>(tensors.size() - 1);
}

WeightsId Network::add_weights(Weights w) {
  weights.push_back(std::move(w));
  return static_cast<WeightsId>(weights.size() - 1);
}

LayerId Network::add_layer(Layer l) {
  const auto id = static_cast<LayerId>(layers.size());
  for (TensorId t : l.outputs) {
    if (t >= 0 && t < static_cast<TensorId>(tensors.size())) tensors[t].producer = id;
  }
  layers.push_back(std::move(l));
  return id;
}

TensorId Network::find_tensor(std::string_view name) const {
  for (size_t i = 0; i < tensors.size(); ++i)
    if (tensors[i].name == name) return static_cast<TensorId>(i);
  return -1;
}

LayerId Network::find_layer(std::string_view name) const {
  for (size_t i = 0; i < layers.size(); ++i)
    if (layers[i].name == name) return static_cast<LayerId>(i);
  return -1;
}

std::vector<std::vector<LayerId>> Network::consumers() const {
  std::vector<std::vector<LayerId>> c(tensors.size());
  for (size_t i = 0; i < layers.size(); ++i)
    for (TensorId t : layers[i].inputs)
      if (t >= 0 && t < static_cast<TensorId>(tensors.size())) c[t].push_back(static_cast<LayerId>(i));
  return c;
}

int data_dependent_axis(const Network& net, TensorId t) {
  if (t < 0 || t >= static_cast<TensorId>(net.tensors.size())) return -1;
  const LayerId p = net.tensors[size_t(t)].producer;
  if (p < 0 || p >= static_cast<LayerId>(net.layers.size())) return -1;
  const Layer& l = net.layers[size_t(p)];
  return !l.outputs.empty() && l.outputs[0] == t ? layer_kind_info(l.kind).data_dependent_axis : -1;
}

int64_t data_extent_offset(const Dims& bound, DataType type) {
  return volume(bound) * static_cast<int64_t>(element_size(type));
}

int64_t stored_bytes(const Network& net, TensorId t) {
  const Tensor& tt = net.tensors[size_t(t)];
  return data_extent_offset(tt.dims, tt.type) + (data_dependent_axis(net, t) >= 0 ? int64_t(sizeof(int64_t)) : 0);
}

Dims data_dependent_dims(const Dims& bound, int axis, DataType type, const void* buffer, const std::string& tensor) {
  int64_t extent = 0;
  std::memcpy(&extent, static_cast<const uint8_t*>(buffer) + data_extent_offset(bound, type), sizeof extent);
  if (axis < 0 || axis >= static_cast<int>(bound.size()) || extent < 0 || extent > bound[size_t(axis)])
    throw Error(fmt::format("tensor '{}': data-dependent extent {} outside [0, {}] along axis {} (bound {})", tensor,
                            extent, axis >= 0 && axis < int(bound.size()) ? bound[size_t(axis)] : 0, axis,
                            dims_to_string(bound)));
  Dims d = bound;
  d[size_t(axis)] = extent;
  return d;
}

// An empty tensor (a 0 extent, TensorRT's "empty tensor") has no values, so there is nothing to
// compute from or into it: it is a network input, a network output or a Constant's output, and no
// layer reads it (the importer folds every layer whose outputs are all empty into a Constant).
// The executors rely on this: no kernel ever sees an empty tensor.
static void verify_empty_tensors(const Network& net) {
  for (const Layer& l : net.layers) {
    for (TensorId t : l.inputs)
      if (volume(net.tensors[size_t(t)].dims) == 0)
        throw Error(fmt::format("layer '{}' ({}): reads the empty tensor '{}' (dims {}); empty tensors may only be "
                                "network inputs, network outputs or Constant outputs that no layer reads",
                                l.name, to_string(l.kind), net.tensors[size_t(t)].name,
                                dims_to_string(net.tensors[size_t(t)].dims)));
    if (l.kind == LayerKind::kConstant) continue;
    for (TensorId t : l.outputs)
      if (volume(net.tensors[size_t(t)].dims) == 0)
        throw Error(fmt::format("layer '{}' ({}): writes the empty tensor '{}' (dims {}); only a Constant may",
                                l.name, to_string(l.kind), net.tensors[size_t(t)].name,
                                dims_to_string(net.tensors[size_t(t)].dims)));
  }
}

void Network::verify() const {
  const auto nt = static_cast<TensorId>(tensors.size());
  std::vector<char> defined(tensors.size(), 0);
  for (TensorId t : inputs) {
    if (t < 0 || t >= nt) throw Error(fmt::format("network: input id {} out of range", t));
    if (tensors[t].producer != -1) throw Error(fmt::format("network: input '{}' has a producer", tensors[t].name));
    defined[t] = 1;
  }
  for (size_t li = 0; li < layers.size(); ++li) {
    const Layer& l = layers[li];
    const auto& info = layer_kind_info(l.kind);
    const int n_in = static_cast<int>(l.inputs.size());
    if (n_in < info.min_inputs || (info.max_inputs >= 0 && n_in > info.max_inputs))
      throw Error(fmt::format("layer '{}' ({}): {} inputs, expected {}..{}", l.name, info.name, n_in,
                              info.min_inputs, info.max_inputs));
    if (l.params.index() != params_index_for(l.kind))
      throw Error(fmt::format("layer '{}' ({}): parameters of the wrong kind", l.name, info.name));
    for (TensorId t : l.inputs) {
      if (t < 0 || t >= nt) throw Error(fmt::format("layer '{}': input id {} out of range", l.name, t));
      if (!defined[t])
        throw Error(fmt::format("layer '{}': input '{}' is used before it is produced", l.name, tensors[t].name));
      if (data_dependent_axis(*this, t) >= 0)
        throw Error(fmt::format("layer '{}': input '{}' has a data-dependent shape ({} '{}'); tandem supports "
                                "these only as network outputs", l.name, tensors[t].name,
                                to_string(layers[size_t(tensors[t].producer)].kind), layers[size_t(tensors[t].producer)].name));
    }
    if (l.outputs.empty()) throw Error(fmt::format("layer '{}': no outputs", l.name));
    for (TensorId t : l.outputs) {
      if (t < 0 || t >= nt) throw Error(fmt::format("layer '{}': output id {} out of range", l.name, t));
      if (defined[t]) throw Error(fmt::format("layer '{}': tensor '{}' is produced twice", l.name, tensors[t].name));
      if (tensors[t].producer != static_cast<LayerId>(li))
        throw Error(fmt::format("layer '{}': tensor '{}' names another producer", l.name, tensors[t].name));
      defined[t] = 1;
    }
    auto check_w = [&](WeightsId w, const char* what) {
      if (w < -1 || w >= static_cast<WeightsId>(weights.size()))
        throw Error(fmt::format("layer '{}': {} weights id {} out of range", l.name, what, w));
    };
    if (auto* c = std::get_if<ConvolutionParams>(&l.params)) {
      check_w(c->kernel_weights, "kernel");
      check_w(c->bias_weights, "bias");
      if (c->kernel_weights < 0) throw Error(fmt::format("layer '{}': no kernel weights", l.name));
    } else if (auto* s = std::get_if<ScaleParams>(&l.params)) {
      check_w(s->shift, "shift"); check_w(s->scale, "scale"); check_w(s->power, "power");
    } else if (auto* k = std::get_if<ConstantParams>(&l.params)) {
      check_w(k->weights, "constant");
      if (k->weights < 0) throw Error(fmt::format("layer '{}': constant without weights", l.name));
    }
  }
  for (TensorId t : outputs) {
    if (t < 0 || t >= nt) throw Error(fmt::format("network: output id {} out of range", t));
    if (!defined[t]) throw Error(fmt::format("network: output '{}' is never produced", tensors[t].name));
  }
  for (TensorId t = 0; t < nt; ++t) {
    if (!defined[t]) continue;
    for (int64_t d : tensors[t].dims)
      if (d < 0)
        throw Error(fmt::format("tensor '{}': dims {} are not static", tensors[t].name, dims_to_string(tensors[t].dims)));
  }
  verify_empty_tensors(*this);
}

}  // namespace tandem
