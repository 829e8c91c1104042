// What the CUDA backend can run, answered from the layer alone: no device, no CUDA header, no
// CUDA library. Compiled into the registry (tandem_backend) and into the plugin.
// It mirrors the checks of CudaExecutorImpl::build_layer and build_convolution /
// build_deconvolution / build_matmul / build_shuffle (executor.cpp) that depend on the network
// only; what depends on the device (cuDNN finding an algorithm, memory) is known at compile.
#include <string>

#include "backend/registry_internal.h"

namespace tandem::backend_detail {

namespace {

std::string layer_where(const Layer& l) {
  return "layer '" + l.name + "' (" + std::string(to_string(l.kind)) + ")";
}

// Collects the first reason a layer is refused; "" while everything is accepted.
struct Checker {
  const Network& net;
  const Layer& l;
  std::string why;

  void refuse(const std::string& what) {
    if (why.empty()) why = layer_where(l) + ": " + what + " (CUDA backend)";
  }
  const Dims& dims(TensorId t) const { return net.tensors[t].dims; }
  DataType type(TensorId t) const { return net.tensors[t].type; }
  void require_float(TensorId t) {
    if (type(t) != DataType::kFloat)
      refuse("tensor '" + net.tensors[t].name + "' is " + std::string(to_string(type(t))) +
             ", only fp32 is supported here");
  }
};

void check_convolution(Checker& c, bool deconv) {
  const auto& p = c.l.as<ConvolutionParams>();
  c.require_float(c.l.inputs[0]);
  if (c.l.inputs.size() > 1) c.refuse("kernel weights given as a tensor input are not supported");
  if (deconv) {  // executor_gemm.cpp: 2-D, and 3-D through cuDNN's Nd descriptors
    const size_t ns = p.kernel.size();
    if (ns < 2 || ns > 3 || c.dims(c.l.inputs[0]).size() != ns + 2)
      c.refuse("only 2D and 3D deconvolution over NC(D)HW is supported (kernel rank " + std::to_string(ns) + ")");
    return;
  }
  if (p.kernel.size() != 2 || c.dims(c.l.inputs[0]).size() != 4)
    c.refuse("only 2D convolution over NCHW is supported (kernel rank " + std::to_string(p.kernel.size()) + ")");
}

void check_matmul(Checker& c) {
  c.require_float(c.l.inputs[0]);
  c.require_float(c.l.inputs[1]);
  const Dims& a = c.dims(c.l.inputs[0]);
  const Dims& b = c.dims(c.l.inputs[1]);
  const Dims& y = c.dims(c.l.outputs[0]);
  if (a.size() < 2 || b.size() < 2 || y.size() < 2) c.refuse("matrix multiply needs rank >= 2 operands");
}

void check_elementwise(Checker& c) {
  DataType dt = c.type(c.l.inputs[0]);
  if (c.type(c.l.inputs[1]) != dt) {
    c.refuse("inputs of different types (" + std::string(to_string(dt)) + ", " +
             std::string(to_string(c.type(c.l.inputs[1]))) + ")");
    return;
  }
  if (c.l.kind == LayerKind::kParametricReLU) {
    if (dt != DataType::kFloat && dt != DataType::kInt32 && dt != DataType::kInt64)
      c.refuse("PReLU on " + std::string(to_string(dt)) + " is not supported");
    return;
  }
  ElementWiseOp op = c.l.as<ElementWiseParams>().op;
  bool logic = op == ElementWiseOp::kAnd || op == ElementWiseOp::kOr || op == ElementWiseOp::kXor;
  bool ok = logic ? dt == DataType::kBool
                  : (dt == DataType::kFloat || dt == DataType::kInt32 || dt == DataType::kInt64);
  if (!ok) c.refuse("element-wise " + std::string(to_string(op)) + " on " + std::string(to_string(dt)) + " is not supported");
  if (op == ElementWiseOp::kPow && dt != DataType::kFloat) c.refuse("integer Pow");
}

void check_resize(Checker& c) {
  c.require_float(c.l.inputs[0]);
  if (c.l.as<ResizeParams>().mode == ResizeMode::kCubic) c.refuse("cubic resize is not supported");
  const Dims& x = c.dims(c.l.inputs[0]);
  const Dims& y = c.dims(c.l.outputs[0]);
  if (x.size() < 2 || y.size() != x.size()) {
    c.refuse("resize needs rank >= 2 and equal ranks");
    return;
  }
  for (size_t k = 0; k + 2 < x.size(); ++k)
    if (x[k] != y[k]) c.refuse("resize of an outer axis (" + std::to_string(k) + ") is not supported");
}

void check_softmax(Checker& c) {
  c.require_float(c.l.inputs[0]);
  uint32_t axes = c.l.as<SoftMaxParams>().axes;
  int axis = 0;
  while (axis < 32 && !(axes & (1u << axis))) ++axis;
  if (axes == 0 || (axes & (axes - 1)) || axis >= int(c.dims(c.l.inputs[0]).size()))
    c.refuse("softmax needs exactly one axis");
}

void check_normalization(Checker& c) {
  const auto& p = c.l.as<NormalizationParams>();
  for (TensorId t : c.l.inputs) c.require_float(t);
  const Dims& x = c.dims(c.l.inputs[0]);
  int r = int(x.size());
  int a0 = 0;
  while (a0 < 32 && !(p.axes & (1u << a0))) ++a0;
  uint32_t trailing = ((r >= 32) ? 0xffffffffu : ((1u << r) - 1u)) & ~((a0 >= 32) ? 0xffffffffu : ((1u << a0) - 1u));
  if (p.axes == 0 || a0 >= r || p.axes != trailing) c.refuse("normalized axes must be the trailing axes");
  if (p.groups > 1 && (a0 != 2 || r < 3 || x[1] % p.groups))
    c.refuse("group normalization needs NC... input with C divisible by groups");
}

// Issue 16's index and sampling layers (kernels_index.cu, index_layers.cpp): Gather ELEMENT/ND
// and Scatter over any element type (reductions: fp32, int32, int64), TopK over fp32/int32/int64,
// Einsum (up to 4 inputs), GridSample and RoiAlign in fp32 over 4-D NCHW; ranks up to 8.
void check_index_layer(Checker& c) {
  const Layer& l = c.l;
  for (TensorId t : l.inputs)
    if (c.dims(t).size() > 8) c.refuse("rank " + std::to_string(c.dims(t).size()) + " above 8");
  auto index_type = [&](TensorId t) {
    if (c.type(t) != DataType::kInt32 && c.type(t) != DataType::kInt64) c.refuse("indices must be int32 or int64");
  };
  auto int_or_float = [&](TensorId t) {
    const DataType dt = c.type(t);
    return dt == DataType::kFloat || dt == DataType::kInt32 || dt == DataType::kInt64;
  };
  switch (l.kind) {
    case LayerKind::kGather:
      if (l.as<GatherParams>().mode == GatherMode::kElement && c.dims(l.inputs[0]).size() != c.dims(l.inputs[1]).size())
        c.refuse("GatherElements needs indices of the data's rank");
      break;
    case LayerKind::kScatter:
      index_type(l.inputs[1]);
      if (l.as<ScatterParams>().reduction != ScatterReduction::kNone && !int_or_float(l.inputs[0]))
        c.refuse("scatter reductions on " + std::string(to_string(c.type(l.inputs[0]))) + " (fp32, int32 or int64 only)");
      break;
    case LayerKind::kTopK:
      if (!int_or_float(l.inputs[0]) || l.outputs.size() != 2 || c.type(l.outputs[0]) != c.type(l.inputs[0]))
        c.refuse("TopK over " + std::string(to_string(c.type(l.inputs[0]))) + " (fp32, int32 or int64 only)");
      else index_type(l.outputs[1]);
      break;
    case LayerKind::kEinsum:
      if (l.inputs.size() > 4) c.refuse("Einsum of " + std::to_string(l.inputs.size()) + " inputs (at most 4)");
      for (TensorId t : l.inputs) c.require_float(t);
      break;
    case LayerKind::kGridSample:
    case LayerKind::kRoiAlign:
      c.require_float(l.inputs[0]);
      c.require_float(l.inputs[1]);
      if (c.dims(l.inputs[0]).size() != 4) c.refuse("only 4-D NCHW input is supported");
      if (l.kind == LayerKind::kRoiAlign) index_type(l.inputs[2]);
      break;
    case LayerKind::kConvolution: case LayerKind::kDeconvolution: case LayerKind::kMatrixMultiply:
    case LayerKind::kShuffle: case LayerKind::kConstant: case LayerKind::kPooling: case LayerKind::kActivation:
    case LayerKind::kParametricReLU: case LayerKind::kElementWise: case LayerKind::kScale:
    case LayerKind::kConcatenation: case LayerKind::kResize: case LayerKind::kSlice: case LayerKind::kSoftMax:
    case LayerKind::kReduce: case LayerKind::kUnary: case LayerKind::kLRN: case LayerKind::kIdentity:
    case LayerKind::kCast: case LayerKind::kSelect: case LayerKind::kNormalization:
    case LayerKind::kNonZero: case LayerKind::kNMS:
      break;
  }
}

void check_kind(Checker& c) {
  const Layer& l = c.l;
  switch (l.kind) {
    case LayerKind::kConvolution: check_convolution(c, false); break;
    case LayerKind::kDeconvolution: check_convolution(c, true); break;
    case LayerKind::kMatrixMultiply: check_matmul(c); break;
    case LayerKind::kPooling: {
      c.require_float(l.inputs[0]);
      const auto& p = l.as<PoolingParams>();
      // 2-D: kernels.cu's pool2d; 1-D and 3-D: kernels_index.cu's pool3d.
      const size_t r = p.window.size();
      if (r < 1 || r > 3 || c.dims(l.inputs[0]).size() != 2 + r)
        c.refuse("pooling needs 1 to 3 spatial axes over N, C (window rank " + std::to_string(r) + ")");
      break;
    }
    case LayerKind::kActivation: c.require_float(l.inputs[0]); break;
    case LayerKind::kParametricReLU:
    case LayerKind::kElementWise: check_elementwise(c); break;
    case LayerKind::kScale: c.require_float(l.inputs[0]); break;
    case LayerKind::kConcatenation:
      for (TensorId t : l.inputs)
        if (c.type(t) != c.type(l.outputs[0])) c.refuse("inputs of different types");
      break;
    case LayerKind::kResize: check_resize(c); break;
    case LayerKind::kSoftMax: check_softmax(c); break;
    case LayerKind::kNormalization: check_normalization(c); break;
    case LayerKind::kReduce: {  // fp32 (kernels.cu reduce), int32/int64 (reduce_int)
      const DataType dt = c.type(l.inputs[0]);
      if (dt != DataType::kInt32 && dt != DataType::kInt64) c.require_float(l.inputs[0]);
      if ((dt == DataType::kInt32 || dt == DataType::kInt64) && c.type(l.outputs[0]) != dt)
        c.refuse("integer output type differs from the input's");
      break;
    }
    case LayerKind::kLRN: c.require_float(l.inputs[0]); break;
    case LayerKind::kUnary: {
      UnaryOp op = l.as<UnaryParams>().op;
      DataType dt = c.type(l.inputs[0]);
      if (op == UnaryOp::kNot ? dt != DataType::kBool : dt != DataType::kFloat)
        c.refuse("unary " + std::string(to_string(op)) + " on " + std::string(to_string(dt)));
      break;
    }
    case LayerKind::kGather: {
      DataType it = c.type(l.inputs[1]);
      if (it != DataType::kInt32 && it != DataType::kInt64) c.refuse("indices must be int32 or int64");
      if (l.as<GatherParams>().mode != GatherMode::kDefault) check_index_layer(c);
      break;
    }
    case LayerKind::kScatter:
    case LayerKind::kTopK:
    case LayerKind::kEinsum:
    case LayerKind::kGridSample:
    case LayerKind::kRoiAlign:
      check_index_layer(c);
      break;
    case LayerKind::kNonZero:  // kernels_dynamic.cu: any element type, rank up to 8
      if (c.dims(l.inputs[0]).size() > 8) c.refuse("NonZero input rank above 8");
      break;
    case LayerKind::kNMS:  // kernels_dynamic.cu; types and shapes checked by shape inference
      c.require_float(l.inputs[0]);
      c.require_float(l.inputs[1]);
      break;
    case LayerKind::kSelect:
      if (c.type(l.inputs[0]) != DataType::kBool) c.refuse("condition must be bool");
      if (c.type(l.inputs[1]) != c.type(l.inputs[2])) c.refuse("branches of different types");
      break;
    // Data movement of any element type (strided copies, casts between every pair of types).
    case LayerKind::kShuffle:
    case LayerKind::kSlice:
    case LayerKind::kConstant:
    case LayerKind::kIdentity:
    case LayerKind::kCast:
      break;
  }
}

}  // namespace

Support cuda_layer_support(const Network& net, LayerId id, Precision precision, BackendLayout layout) {
  if (id < 0 || size_t(id) >= net.layers.size())
    return {false, "layer id " + std::to_string(id) + " is outside the network (" +
                       std::to_string(net.layers.size()) + " layers)"};
  const Layer& l = net.layers[size_t(id)];
  switch (precision) {
    case Precision::kFP8:
      return {false, layer_where(l) + ": FP8 numerics are not supported by the CUDA backend"};
    case Precision::kUnset:
    case Precision::kFP32:
    case Precision::kFP16:  // FP16 and INT8: computed in FP32 with rounding/quantization steps
    case Precision::kINT8:
      break;
  }
  switch (layout) {
    case BackendLayout::kNHWC:
      return {false, layer_where(l) + ": the CUDA backend computes in the network's linear (NCHW) layout only"};
    case BackendLayout::kLinear:
      break;
  }
  Checker c{net, l, ""};
  check_kind(c);
  // 3-D deconvolution: FP32 only (no FP16/INT8 rounding steps are written for it).
  if (l.kind == LayerKind::kDeconvolution && l.as<ConvolutionParams>().kernel.size() == 3 &&
      precision != Precision::kFP32 && precision != Precision::kUnset)
    c.refuse("3D deconvolution runs in FP32 only (precision " + std::string(to_string(precision)) + ")");
  if (!c.why.empty()) return {false, c.why};
  return {true, ""};
}

}  // namespace tandem::backend_detail
