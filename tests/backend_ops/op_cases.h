// The grid of small networks of the cross-backend op test: for every LayerKind, one-layer networks
// over its parameters (kernel sizes, strides, pads, groups, dilations, broadcast shapes, axes,
// every value of its operation enum) and data types. backend_ops.h runs them.
#pragma once

#include <cstring>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "tandem/network.h"
#include "tandem/onnx.h"

namespace tandem::ops_test {

// How the test fills one input: uniform in [lo, hi]; away_from_zero: |x| in [0.5, hi] with a
// random sign (divisors, reciprocals); integers: uniform integers in [lo, hi]; bool: 0 or 1.
struct InputRange {
  double lo = -2, hi = 2;
  bool away_from_zero = false;
};

struct OpCase {
  LayerKind kind = LayerKind::kIdentity;
  std::string label;  // parameters, e.g. "k3 s2 p1 g2 d1 bias"
  Network net;        // the layer under test (op_layer), its Constant producers, inputs, outputs
  LayerId op_layer = -1;
  std::map<std::string, InputRange> ranges;  // network input name -> how to fill it
};

// Builds one case: inputs, constants and one layer whose output dims come from infer_shapes.
class CaseBuilder {
 public:
  CaseBuilder(LayerKind kind, std::string label) {
    c_.kind = kind;
    c_.label = std::move(label);
    seed_ = std::hash<std::string>{}(std::string(to_string(kind)) + c_.label);
  }
  TensorId input(const std::string& name, Dims dims, DataType type = DataType::kFloat, InputRange r = {}) {
    TensorId id = c_.net.add_tensor({name, type, std::move(dims)});
    c_.net.tensors[id].is_input = true;
    c_.net.inputs.push_back(id);
    c_.ranges[name] = r;
    return id;
  }
  // Random weights in [lo, hi] (FP32), deterministic per case.
  WeightsId weights(const std::string& name, Dims dims, double lo = -0.5, double hi = 0.5) {
    Weights w;
    w.name = name;
    w.type = DataType::kFloat;
    w.dims = std::move(dims);
    std::mt19937 rng(uint32_t(seed_ + c_.net.weights.size() * 7919));
    std::uniform_real_distribution<float> u{float(lo), float(hi)};
    std::vector<float> v(size_t(volume(w.dims)));
    for (float& x : v) x = u(rng);
    w.bytes.resize(v.size() * 4);
    std::memcpy(w.bytes.data(), v.data(), w.bytes.size());
    return c_.net.add_weights(std::move(w));
  }
  template <class T>
  WeightsId weights_of(const std::string& name, DataType type, Dims dims, const std::vector<T>& v) {
    Weights w;
    w.name = name;
    w.type = type;
    w.dims = std::move(dims);
    w.bytes.resize(v.size() * sizeof(T));
    std::memcpy(w.bytes.data(), v.data(), w.bytes.size());
    return c_.net.add_weights(std::move(w));
  }
  TensorId constant(const std::string& name, WeightsId w) {
    const Weights& ws = c_.net.weights[size_t(w)];
    TensorId t = c_.net.add_tensor({name, ws.type, ws.dims});
    add(name + "_const", LayerKind::kConstant, {}, {t}, ConstantParams{w});
    return t;
  }
  // The layer under test, with `outputs` outputs named y0, y1, ... (dims inferred in finish()).
  void op(LayerParams params, std::vector<TensorId> inputs, int outputs = 1) {
    std::vector<TensorId> outs;
    for (int i = 0; i < outputs; ++i) outs.push_back(c_.net.add_tensor({"y" + std::to_string(i), DataType::kFloat, {1}}));
    c_.op_layer = add("op", c_.kind, std::move(inputs), outs, std::move(params));
  }
  OpCase finish() {
    infer_shapes(c_.net);
    for (TensorId t : c_.net.layers[size_t(c_.op_layer)].outputs) {
      c_.net.tensors[t].is_output = true;
      c_.net.outputs.push_back(t);
    }
    c_.net.verify();
    return std::move(c_);
  }

 private:
  LayerId add(const std::string& name, LayerKind k, std::vector<TensorId> in, std::vector<TensorId> out, LayerParams p) {
    Layer l;
    l.name = name;
    l.kind = k;
    l.inputs = std::move(in);
    l.outputs = std::move(out);
    l.params = std::move(p);
    return c_.net.add_layer(std::move(l));
  }
  OpCase c_;
  size_t seed_ = 0;
};

// Values of each operation enum, counted through its to_string table ("?" past the last), so a
// value added to the enum without a case here is seen by the coverage test.
template <class E>
std::vector<E> all_values() {
  std::vector<E> v;
  for (int i = 0; i < 256 && to_string(E(i)) != "?"; ++i) v.push_back(E(i));
  return v;
}

inline std::string dims_label(const Dims& d) {
  std::string s;
  for (int64_t x : d) s += (s.empty() ? "" : "x") + std::to_string(x);
  return s;
}

// ---- One generator per kind ----------------------------------------------------------------------

inline void convolution_cases(std::vector<OpCase>& out) {
  for (int64_t k : {1, 3, 5})
    for (int64_t s : {1, 2})
      for (int64_t pad : {0, 1, 2})
        for (int64_t g : {1, 2, 4})
          for (int64_t d : {1, 2}) {
            if (k == 1 && pad > 1) continue;
            if ((k - 1) * d + 1 > 8 + 2 * pad) continue;  // the dilated kernel must fit the padded 9x8 input
            const bool bias = (k + s + pad + g + d) % 2 == 0;
            CaseBuilder b(LayerKind::kConvolution, "k" + std::to_string(k) + " s" + std::to_string(s) + " p" +
                                                      std::to_string(pad) + " g" + std::to_string(g) + " d" +
                                                      std::to_string(d) + (bias ? " bias" : ""));
            TensorId x = b.input("x", {1, 4, 9, 8});
            ConvolutionParams p;
            p.kernel = {k, k};
            p.stride = {s, s};
            p.pre_padding = {pad, pad};
            p.post_padding = {pad, pad};
            p.dilation = {d, d};
            p.groups = g;
            p.out_maps = 8;
            p.kernel_weights = b.weights("w", {8, 4 / g, k, k});
            if (bias) p.bias_weights = b.weights("b", {8});
            b.op(p, {x});
            out.push_back(b.finish());
          }
  // Asymmetric padding, rectangular kernels, 1-D and 3-D.
  struct Shape {
    std::string label;
    Dims x, kernel, stride, pre, post, dil;
  };
  for (const Shape& sh : std::vector<Shape>{
           {"asym pads 3x3", {1, 4, 7, 7}, {3, 3}, {2, 1}, {0, 1}, {2, 0}, {1, 1}},
           {"rect 1x3", {2, 4, 6, 9}, {1, 3}, {1, 2}, {0, 1}, {0, 1}, {1, 1}},
           {"1-d k3", {2, 4, 11}, {3}, {2}, {1}, {1}, {1}},
           {"3-d k2", {1, 4, 4, 5, 6}, {2, 2, 2}, {1, 1, 2}, {0, 1, 0}, {1, 0, 0}, {1, 1, 1}}}) {
    CaseBuilder b(LayerKind::kConvolution, sh.label);
    TensorId x = b.input("x", sh.x);
    ConvolutionParams p;
    p.kernel = sh.kernel;
    p.stride = sh.stride;
    p.pre_padding = sh.pre;
    p.post_padding = sh.post;
    p.dilation = sh.dil;
    p.out_maps = 6;
    Dims wd = {6, 4};
    wd.insert(wd.end(), sh.kernel.begin(), sh.kernel.end());
    p.kernel_weights = b.weights("w", wd);
    p.bias_weights = b.weights("b", {6});
    b.op(p, {x});
    out.push_back(b.finish());
  }
}

inline void deconvolution_cases(std::vector<OpCase>& out) {
  for (int64_t k : {1, 2, 3, 4})
    for (int64_t s : {1, 2, 3})
      for (int64_t pad : {0, 1})
        for (int64_t g : {1, 2})
          for (int64_t d : {1, 2}) {
            if (pad >= (k - 1) * d + 1) continue;  // the output would lose more than the kernel adds
            const bool bias = (k + s + g) % 2 == 1;
            CaseBuilder b(LayerKind::kDeconvolution, "k" + std::to_string(k) + " s" + std::to_string(s) + " p" +
                                                        std::to_string(pad) + " g" + std::to_string(g) + " d" +
                                                        std::to_string(d) + (bias ? " bias" : ""));
            TensorId x = b.input("x", {1, 4, 5, 6});
            ConvolutionParams p;
            p.kernel = {k, k};
            p.stride = {s, s};
            p.pre_padding = {pad, pad};
            p.post_padding = {pad, 0};
            p.dilation = {d, d};
            p.groups = g;
            p.out_maps = 6;
            p.kernel_weights = b.weights("w", {4, 6 / g, k, k});
            if (bias) p.bias_weights = b.weights("b", {6});
            b.op(p, {x});
            out.push_back(b.finish());
          }
}

inline void pooling_cases(std::vector<OpCase>& out) {
  for (PoolingType type : all_values<PoolingType>())
    for (int64_t w : {1, 2, 3})
      for (int64_t s : {1, 2})
        for (int64_t pad : {0, 1})
          for (bool exclude : {true, false})
            for (PaddingMode mode : {PaddingMode::kExplicitRoundDown, PaddingMode::kExplicitRoundUp}) {
              if (pad >= w || (type == PoolingType::kMax && !exclude)) continue;
              CaseBuilder b(LayerKind::kPooling, std::string(to_string(type)) + " w" + std::to_string(w) + " s" +
                                                    std::to_string(s) + " p" + std::to_string(pad) +
                                                    (exclude ? "" : " count-pad") +
                                                    (mode == PaddingMode::kExplicitRoundUp ? " ceil" : ""));
              TensorId x = b.input("x", {2, 3, 7, 8});
              PoolingParams p;
              p.type = type;
              p.window = {w, w};
              p.stride = {s, s};
              p.pre_padding = {pad, pad};
              p.post_padding = {pad, pad};
              p.average_count_excludes_padding = exclude;
              p.padding_mode = mode;
              b.op(p, {x});
              out.push_back(b.finish());
            }
  for (PoolingType type : all_values<PoolingType>()) {  // 1-D and asymmetric
    CaseBuilder b(LayerKind::kPooling, std::string(to_string(type)) + " 1-d w3 s2 asym");
    TensorId x = b.input("x", {2, 3, 10});
    PoolingParams p;
    p.type = type;
    p.window = {3};
    p.stride = {2};
    p.pre_padding = {1};
    p.post_padding = {0};
    b.op(p, {x});
    out.push_back(b.finish());
  }
}

// alpha and beta of each activation as network.h defines them; a new type fails to compile here.
inline std::vector<std::pair<float, float>> activation_params(ActivationType t) {
  switch (t) {
    case ActivationType::kRelu: case ActivationType::kSigmoid: case ActivationType::kTanh:
    case ActivationType::kSoftsign: case ActivationType::kGeluErf: case ActivationType::kGeluTanh:
      return {{0.f, 0.f}};
    case ActivationType::kLeakyRelu: return {{0.1f, 0.f}, {2.f, 0.f}};
    case ActivationType::kClip: return {{-0.5f, 0.75f}, {0.f, 6.f}};
    case ActivationType::kHardSigmoid: return {{0.2f, 0.5f}, {1.f / 6, 0.5f}};
    case ActivationType::kElu: return {{1.f, 0.f}, {0.3f, 0.f}};
    case ActivationType::kSelu: return {{1.67326319f, 1.05070102f}};
    case ActivationType::kSoftplus: return {{1.f, 1.f}, {0.5f, 2.f}};
    case ActivationType::kThresholdedRelu: return {{0.3f, 0.f}, {-0.5f, 0.f}};
    case ActivationType::kScaledTanh: return {{1.5f, 0.5f}};
  }
  return {};
}

inline void activation_cases(std::vector<OpCase>& out) {
  for (ActivationType t : all_values<ActivationType>())
    for (auto [alpha, beta] : activation_params(t))
      for (const Dims& d : {Dims{2, 3, 4, 5}, Dims{7, 13}}) {
        CaseBuilder b(LayerKind::kActivation, std::string(to_string(t)) + " a" + std::to_string(alpha).substr(0, 5) +
                                                  " b" + std::to_string(beta).substr(0, 5) + " " + dims_label(d));
        TensorId x = b.input("x", d, DataType::kFloat, {-4, 4});
        b.op(ActivationParams{t, alpha, beta}, {x});
        out.push_back(b.finish());
      }
}

// Input types and ranges of each element-wise op; a new op fails to compile here.
struct ElementWiseSpec {
  DataType in = DataType::kFloat;
  InputRange a{-2, 2}, b{-2, 2};
  bool int32_too = false;  // also run on int32 inputs
};
inline ElementWiseSpec elementwise_spec(ElementWiseOp op) {
  switch (op) {
    case ElementWiseOp::kSum: case ElementWiseOp::kProd: case ElementWiseOp::kMax: case ElementWiseOp::kMin:
    case ElementWiseOp::kSub:
      return {DataType::kFloat, {-2, 2}, {-2, 2}, true};
    case ElementWiseOp::kDiv: case ElementWiseOp::kFloorDiv:
      return {DataType::kFloat, {-4, 4}, {0.5, 2, true}, false};
    case ElementWiseOp::kPow: return {DataType::kFloat, {0.1, 2}, {-2, 2}, false};
    case ElementWiseOp::kAnd: case ElementWiseOp::kOr: case ElementWiseOp::kXor:
      return {DataType::kBool, {0, 1}, {0, 1}, false};
    case ElementWiseOp::kEqual: case ElementWiseOp::kGreater: case ElementWiseOp::kLess:
      return {DataType::kFloat, {-2, 2}, {-2, 2}, true};
  }
  return {};
}

inline void elementwise_cases(std::vector<OpCase>& out) {
  const std::vector<std::pair<Dims, Dims>> shapes = {
      {{2, 3, 4, 5}, {2, 3, 4, 5}}, {{2, 3, 4, 5}, {1, 3, 1, 1}}, {{2, 1, 4, 1}, {1, 3, 1, 5}},
      {{1, 1, 1, 1}, {2, 3, 4, 5}}, {{6, 7}, {6, 1}}};
  for (ElementWiseOp op : all_values<ElementWiseOp>()) {
    const ElementWiseSpec spec = elementwise_spec(op);
    std::vector<DataType> types = {spec.in};
    if (spec.int32_too) types.push_back(DataType::kInt32);
    for (DataType t : types)
      for (const auto& [da, db] : shapes) {
        CaseBuilder b(LayerKind::kElementWise, std::string(to_string(op)) + " " + std::string(to_string(t)) + " " +
                                                   dims_label(da) + " & " + dims_label(db));
        InputRange ra = spec.a, rb = spec.b;
        if (t == DataType::kInt32 && op == ElementWiseOp::kEqual) ra = rb = {-1, 1};  // some equal pairs
        TensorId a = b.input("a", da, t, ra);
        TensorId c = b.input("b", db, t, rb);
        b.op(ElementWiseParams{op}, {a, c});
        out.push_back(b.finish());
      }
  }
  // One operand a constant (the fused "point-wise with a constant" path of the backends).
  for (ElementWiseOp op : {ElementWiseOp::kSum, ElementWiseOp::kProd, ElementWiseOp::kMax, ElementWiseOp::kDiv}) {
    CaseBuilder b(LayerKind::kElementWise, std::string(to_string(op)) + " with a constant [1,3,1,1]");
    TensorId a = b.input("a", {2, 3, 4, 5});
    TensorId c = b.constant("c", b.weights("cw", {1, 3, 1, 1}, 0.5, 1.5));
    b.op(ElementWiseParams{op}, {a, c});
    out.push_back(b.finish());
  }
}

inline void scale_cases(std::vector<OpCase>& out) {
  const Dims d = {2, 3, 4, 5};
  for (ScaleMode mode : all_values<ScaleMode>())
    for (int parts : {1, 3, 7}) {  // bit 1: shift, bit 2: scale, bit 4: power
      CaseBuilder b(LayerKind::kScale, std::string(to_string(mode)) + (parts & 1 ? " shift" : "") +
                                           (parts & 2 ? " scale" : "") + (parts & 4 ? " power" : ""));
      // Power needs a positive base: inputs in [0.5, 2], shift >= 0 and scale > 0.
      TensorId x = b.input("x", d, DataType::kFloat, parts & 4 ? InputRange{0.5, 2} : InputRange{});
      const Dims wd = mode == ScaleMode::kUniform ? Dims{1} : mode == ScaleMode::kChannel ? Dims{3} : Dims{3, 4, 5};
      ScaleParams p;
      p.mode = mode;
      p.channel_axis = 1;
      if (parts & 1) p.shift = b.weights("shift", wd, parts & 4 ? 0.0 : -1.0, 1.0);
      if (parts & 2) p.scale = b.weights("scale", wd, 0.5, 2.0);
      if (parts & 4) p.power = b.weights("power", wd, 0.5, 2.0);
      b.op(p, {x});
      out.push_back(b.finish());
    }
}

inline void concatenation_cases(std::vector<OpCase>& out) {
  for (DataType t : {DataType::kFloat, DataType::kInt32, DataType::kBool})
    for (int axis = 0; axis < 4; ++axis)
      for (int n : {1, 2, 3}) {
        if (t != DataType::kFloat && n != 2) continue;
        CaseBuilder b(LayerKind::kConcatenation, std::string(to_string(t)) + " axis" + std::to_string(axis) + " x" +
                                                     std::to_string(n));
        std::vector<TensorId> ins;
        for (int i = 0; i < n; ++i) {
          Dims d = {2, 3, 4, 5};
          d[size_t(axis)] += i;
          ins.push_back(b.input("x" + std::to_string(i), d, t, t == DataType::kBool ? InputRange{0, 1} : InputRange{-9, 9}));
        }
        b.op(ConcatenationParams{axis}, ins);
        out.push_back(b.finish());
      }
}

inline void resize_cases(std::vector<OpCase>& out) {
  for (ResizeMode mode : all_values<ResizeMode>())
    for (ResizeCoordinateTransform tr : all_values<ResizeCoordinateTransform>())
      for (ResizeRounding rounding : all_values<ResizeRounding>())
        for (ResizeSelector sel : all_values<ResizeSelector>())
          for (const std::vector<float>& scales : {std::vector<float>{1, 1, 2, 2}, std::vector<float>{1, 1, 0.5f, 1.5f}}) {
            if (mode != ResizeMode::kNearest && rounding != ResizeRounding::kFloor) continue;  // rounding: nearest only
            if (sel == ResizeSelector::kUpper && tr != ResizeCoordinateTransform::kHalfPixel) continue;
            CaseBuilder b(LayerKind::kResize, std::string(to_string(mode)) + " " + std::string(to_string(tr)) + " " +
                                                  std::string(to_string(rounding)) + " " + std::string(to_string(sel)) +
                                                  " scales " + std::to_string(scales[2]).substr(0, 3) + "," +
                                                  std::to_string(scales[3]).substr(0, 3));
            TensorId x = b.input("x", {1, 2, 6, 5});
            ResizeParams p;
            p.mode = mode;
            p.transform = tr;
            p.selector = sel;
            p.rounding = rounding;
            p.scales = scales;
            b.op(p, {x});
            out.push_back(b.finish());
          }
  CaseBuilder b(LayerKind::kResize, "LINEAR HALF_PIXEL output dims 1x2x9x4");
  TensorId x = b.input("x", {1, 2, 6, 5});
  ResizeParams p;
  p.mode = ResizeMode::kLinear;
  p.transform = ResizeCoordinateTransform::kHalfPixel;
  p.output_dims = {1, 2, 9, 4};
  b.op(p, {x});
  out.push_back(b.finish());
}

inline void shuffle_cases(std::vector<OpCase>& out) {
  struct S {
    std::string label;
    std::vector<int> first;
    std::optional<Dims> reshape;
    std::vector<int> second;
  };
  for (DataType t : {DataType::kFloat, DataType::kInt32})
    for (const S& s : std::vector<S>{{"transpose 0231", {0, 2, 3, 1}, std::nullopt, {}},
                                     {"transpose 3120", {3, 1, 2, 0}, std::nullopt, {}},
                                     {"reshape 6x20", {}, Dims{6, 20}, {}},
                                     {"transpose+reshape", {0, 2, 1, 3}, Dims{2, 4, 15}, {}},
                                     {"reshape+transpose", {}, Dims{6, 4, 5}, {2, 0, 1}},
                                     {"all three", {1, 0, 2, 3}, Dims{3, 2, 20}, {1, 2, 0}}}) {
      CaseBuilder b(LayerKind::kShuffle, std::string(to_string(t)) + " " + s.label);
      TensorId x = b.input("x", {2, 3, 4, 5}, t, {-9, 9});
      ShuffleParams p;
      p.first_transpose = s.first;
      p.reshape = s.reshape;
      p.second_transpose = s.second;
      b.op(p, {x});
      out.push_back(b.finish());
    }
}

inline void slice_cases(std::vector<OpCase>& out) {
  struct S {
    std::string label;
    Dims start, size, stride;
  };
  const std::vector<S> in_bounds = {{"middle", {0, 1, 1, 0}, {2, 2, 2, 5}, {1, 1, 1, 1}},
                                    {"stride 2", {0, 0, 0, 1}, {1, 3, 2, 2}, {1, 1, 2, 2}},
                                    {"negative stride", {1, 2, 3, 4}, {2, 3, 4, 5}, {-1, -1, -1, -1}},
                                    {"stride 3 one dim", {0, 0, 1, 0}, {2, 3, 1, 5}, {1, 1, 3, 1}}};
  for (DataType t : {DataType::kFloat, DataType::kInt32})
    for (const S& s : in_bounds) {
      CaseBuilder b(LayerKind::kSlice, std::string(to_string(t)) + " DEFAULT " + s.label);
      TensorId x = b.input("x", {2, 3, 4, 5}, t, {-9, 9});
      b.op(SliceParams{s.start, s.size, s.stride, SliceMode::kDefault, 0.f}, {x});
      out.push_back(b.finish());
    }
  // Out-of-bounds reads: what each mode is for.
  for (SliceMode mode : all_values<SliceMode>()) {
    if (mode == SliceMode::kDefault) continue;
    CaseBuilder b(LayerKind::kSlice, std::string(to_string(mode)) + " out of bounds");
    TensorId x = b.input("x", {1, 2, 4, 5});
    b.op(SliceParams{{0, 0, -2, -1}, {1, 2, 8, 9}, {1, 1, 1, 1}, mode, 0.25f}, {x});
    out.push_back(b.finish());
  }
}

inline void softmax_cases(std::vector<OpCase>& out) {
  for (int axis = 0; axis < 4; ++axis) {
    CaseBuilder b(LayerKind::kSoftMax, "axis " + std::to_string(axis));
    TensorId x = b.input("x", {2, 3, 4, 5}, DataType::kFloat, {-6, 6});
    b.op(SoftMaxParams{1u << axis}, {x});
    out.push_back(b.finish());
  }
}

inline void reduce_cases(std::vector<OpCase>& out) {
  for (ReduceOp op : all_values<ReduceOp>())
    for (uint32_t axes : {0b0010u, 0b1100u, 0b1111u, 0b0101u})
      for (bool keep : {true, false}) {
        CaseBuilder b(LayerKind::kReduce, std::string(to_string(op)) + " axes 0x" + std::to_string(axes) +
                                              (keep ? " keep" : ""));
        // Products of up to 120 values: inputs near 1 keep them finite and meaningful.
        TensorId x = b.input("x", {2, 3, 4, 5}, DataType::kFloat, op == ReduceOp::kProd ? InputRange{0.8, 1.25} : InputRange{});
        b.op(ReduceParams{op, axes, keep}, {x});
        out.push_back(b.finish());
      }
}

inline void matrix_multiply_cases(std::vector<OpCase>& out) {
  struct S {
    Dims a, b;  // before transposition
  };
  for (MatrixOp op0 : {MatrixOp::kNone, MatrixOp::kTranspose})
    for (MatrixOp op1 : {MatrixOp::kNone, MatrixOp::kTranspose})
      for (const S& s : std::vector<S>{{{4, 5}, {5, 3}}, {{2, 4, 5}, {2, 5, 3}}, {{2, 4, 5}, {1, 5, 3}}, {{1, 2, 3, 17}, {2, 1, 17, 6}}})
        for (bool constant_b : {false, true}) {
          Dims a = s.a, bd = s.b;
          const size_t r = a.size();
          if (op0 == MatrixOp::kTranspose) std::swap(a[r - 1], a[r - 2]);
          if (op1 == MatrixOp::kTranspose) std::swap(bd[r - 1], bd[r - 2]);
          CaseBuilder b(LayerKind::kMatrixMultiply, std::string(op0 == MatrixOp::kTranspose ? "T " : "N ") +
                                                        (op1 == MatrixOp::kTranspose ? "T " : "N ") + dims_label(a) +
                                                        " @ " + dims_label(bd) + (constant_b ? " const B" : ""));
          TensorId x = b.input("a", a);
          TensorId y = constant_b ? b.constant("b", b.weights("bw", bd)) : b.input("b", bd);
          b.op(MatrixMultiplyParams{op0, op1}, {x, y});
          out.push_back(b.finish());
        }
}

// Input type and domain of each unary op; a new op fails to compile here.
inline std::pair<DataType, InputRange> unary_input(UnaryOp op) {
  switch (op) {
    case UnaryOp::kLog: case UnaryOp::kSqrt: return {DataType::kFloat, {0.05, 4}};
    case UnaryOp::kRecip: return {DataType::kFloat, {0.25, 4, true}};
    case UnaryOp::kAsin: case UnaryOp::kAcos: case UnaryOp::kAtanh: return {DataType::kFloat, {-0.95, 0.95}};
    case UnaryOp::kAcosh: return {DataType::kFloat, {1.01, 4}};
    case UnaryOp::kTan: return {DataType::kFloat, {-1.4, 1.4}};
    case UnaryOp::kNot: return {DataType::kBool, {0, 1}};
    case UnaryOp::kExp: case UnaryOp::kAbs: case UnaryOp::kNeg: case UnaryOp::kSin: case UnaryOp::kCos:
    case UnaryOp::kSinh: case UnaryOp::kCosh: case UnaryOp::kAtan: case UnaryOp::kAsinh: case UnaryOp::kCeil:
    case UnaryOp::kFloor: case UnaryOp::kErf: case UnaryOp::kSign: case UnaryOp::kRound:
      return {DataType::kFloat, {-3, 3}};
  }
  return {};
}

inline void unary_cases(std::vector<OpCase>& out) {
  for (UnaryOp op : all_values<UnaryOp>()) {
    auto [type, range] = unary_input(op);
    std::vector<DataType> types = {type};
    if (op == UnaryOp::kAbs || op == UnaryOp::kNeg || op == UnaryOp::kSign) types.push_back(DataType::kInt32);
    for (DataType t : types)
      for (const Dims& d : {Dims{2, 3, 4, 5}, Dims{31}}) {
        CaseBuilder b(LayerKind::kUnary, std::string(to_string(op)) + " " + std::string(to_string(t)) + " " + dims_label(d));
        TensorId x = b.input("x", d, t, t == DataType::kInt32 ? InputRange{-9, 9} : range);
        b.op(UnaryParams{op}, {x});
        out.push_back(b.finish());
      }
  }
}

inline void constant_cases(std::vector<OpCase>& out) {
  // The Constant layer is the one under test: its output is the network's output, added to an input
  // so that the network has one (a network without inputs is not what the backends run).
  for (const Dims& d : {Dims{1}, Dims{2, 3, 4, 5}}) {
    CaseBuilder b(LayerKind::kConstant, "fp32 " + dims_label(d));
    b.input("unused", {1});
    b.op(ConstantParams{b.weights("w", d, -3, 3)}, {});
    out.push_back(b.finish());
  }
  CaseBuilder b(LayerKind::kConstant, "int32 2x3");
  b.input("unused", {1});
  b.op(ConstantParams{b.weights_of<int32_t>("w", DataType::kInt32, {2, 3}, {-3, -1, 0, 2, 7, 100})}, {});
  out.push_back(b.finish());
}

inline void parametric_relu_cases(std::vector<OpCase>& out) {
  for (const Dims& slope : {Dims{1, 3, 1, 1}, Dims{1, 1, 1, 1}, Dims{2, 3, 4, 5}, Dims{1, 1, 4, 5}})
    for (bool constant_slope : {true, false}) {
      CaseBuilder b(LayerKind::kParametricReLU, "slope " + dims_label(slope) + (constant_slope ? " const" : ""));
      TensorId x = b.input("x", {2, 3, 4, 5});
      TensorId s = constant_slope ? b.constant("slope", b.weights("sw", slope, -0.5, 1.5)) : b.input("slope", slope, DataType::kFloat, {-0.5, 1.5});
      b.op(LayerParams{NoParams{}}, {x, s});
      out.push_back(b.finish());
    }
}

inline void lrn_cases(std::vector<OpCase>& out) {
  for (int64_t window : {1, 3, 5})
    for (auto [alpha, beta, k] : std::vector<std::tuple<float, float, float>>{{1e-4f, 0.75f, 1.f}, {0.5f, 0.5f, 2.f}}) {
      CaseBuilder b(LayerKind::kLRN, "window " + std::to_string(window) + " alpha " + std::to_string(alpha).substr(0, 6));
      TensorId x = b.input("x", {2, 7, 4, 5});
      b.op(LRNParams{window, alpha, beta, k}, {x});
      out.push_back(b.finish());
    }
}

inline void gather_cases(std::vector<OpCase>& out) {
  for (DataType idx_type : {DataType::kInt32, DataType::kInt64})
    for (int axis = 0; axis < 4; ++axis)
      for (const Dims& idx : {Dims{}, Dims{3}, Dims{2, 2}}) {
        const Dims d = {2, 3, 4, 5};
        CaseBuilder b(LayerKind::kGather, std::string(to_string(idx_type)) + " axis " + std::to_string(axis) +
                                              " indices [" + dims_label(idx) + "]");
        TensorId x = b.input("x", d);
        // Indices in range, some negative (counted from the end), as ONNX allows.
        TensorId i = b.input("i", idx, idx_type, {double(-d[size_t(axis)]), double(d[size_t(axis)] - 1)});
        b.op(GatherParams{axis}, {x, i});
        out.push_back(b.finish());
      }
  // TensorRT's ELEMENT (GatherElements) and ND (GatherND) modes.
  for (int axis = 0; axis < 3; ++axis) {
    const Dims d = {3, 4, 5};
    Dims idx = d;
    idx[size_t(axis)] = 2;
    CaseBuilder b(LayerKind::kGather, "ELEMENT axis " + std::to_string(axis));
    TensorId x = b.input("x", d);
    TensorId i = b.input("i", idx, DataType::kInt64, {double(-d[size_t(axis)]), double(d[size_t(axis)] - 1)});
    b.op(GatherParams{axis, GatherMode::kElement, 0}, {x, i});
    out.push_back(b.finish());
  }
  for (int batch = 0; batch < 2; ++batch) {
    CaseBuilder b(LayerKind::kGather, "ND batch_dims " + std::to_string(batch));
    TensorId x = b.input("x", {3, 3, 4});
    TensorId i = b.input("i", batch ? Dims{3, 2, 1} : Dims{2, 2}, DataType::kInt32, {-3, 2});
    b.op(GatherParams{0, GatherMode::kND, batch}, {x, i});
    out.push_back(b.finish());
  }
  CaseBuilder b(LayerKind::kGather, "int32 data, constant indices");
  TensorId x = b.input("x", {4, 6}, DataType::kInt32, {-9, 9});
  TensorId i = b.constant("i", b.weights_of<int32_t>("iw", DataType::kInt32, {2}, {3, 0}));
  b.op(GatherParams{1}, {x, i});
  out.push_back(b.finish());
}

inline void identity_cases(std::vector<OpCase>& out) {
  for (DataType t : {DataType::kFloat, DataType::kInt32, DataType::kBool, DataType::kInt64}) {
    CaseBuilder b(LayerKind::kIdentity, std::string(to_string(t)));
    TensorId x = b.input("x", {2, 3, 4}, t, t == DataType::kBool ? InputRange{0, 1} : InputRange{-9, 9});
    b.op(LayerParams{NoParams{}}, {x});
    out.push_back(b.finish());
  }
}

inline void cast_cases(std::vector<OpCase>& out) {
  const std::vector<DataType> types = {DataType::kFloat, DataType::kInt32, DataType::kInt64, DataType::kBool,
                                       DataType::kUInt8, DataType::kInt8, DataType::kHalf};
  for (DataType from : types)
    for (DataType to : types) {
      if (from == to || from == DataType::kHalf || from == DataType::kUInt8 || from == DataType::kInt8) continue;
      CaseBuilder b(LayerKind::kCast, std::string(to_string(from)) + " -> " + std::string(to_string(to)));
      // Within every target's range; no .5 fractions (truncation vs rounding is not what is compared).
      InputRange r = from == DataType::kBool ? InputRange{0, 1} : InputRange{0, 100};
      TensorId x = b.input("x", {3, 17}, from, r);
      b.op(CastParams{to}, {x});
      out.push_back(b.finish());
    }
}

inline void normalization_cases(std::vector<OpCase>& out) {
  struct S {
    std::string label;
    uint32_t axes;
    int64_t groups;
    Dims param;
  };
  for (const S& s : std::vector<S>{{"instance", 0b1100, 1, {1, 4, 1, 1}},
                                   {"layer last axis", 0b1000, 1, {1, 1, 1, 5}},
                                   {"layer last two axes", 0b1100, 1, {1, 1, 3, 5}},
                                   {"layer C,H,W", 0b1110, 1, {1, 4, 3, 5}},
                                   {"group 2", 0b1100, 2, {1, 4, 1, 1}},
                                   {"group 4", 0b1100, 4, {1, 4, 1, 1}}}) {
    CaseBuilder b(LayerKind::kNormalization, s.label);
    TensorId x = b.input("x", {2, 4, 3, 5}, DataType::kFloat, {-3, 5});
    TensorId sc = b.constant("scale", b.weights("sw", s.param, 0.5, 1.5));
    TensorId bi = b.constant("bias", b.weights("bw", s.param, -1, 1));
    b.op(NormalizationParams{s.axes, 1e-5f, s.groups}, {x, sc, bi});
    out.push_back(b.finish());
  }
}

inline void select_cases(std::vector<OpCase>& out) {
  for (DataType t : {DataType::kFloat, DataType::kInt32})
    for (const auto& [dc, da, db] : std::vector<std::tuple<Dims, Dims, Dims>>{
             {{2, 3, 4}, {2, 3, 4}, {2, 3, 4}}, {{1, 3, 1}, {2, 3, 4}, {2, 1, 4}}, {{2, 3, 4}, {1, 1, 1}, {2, 3, 1}}}) {
      CaseBuilder b(LayerKind::kSelect, std::string(to_string(t)) + " " + dims_label(dc) + " ? " + dims_label(da) +
                                            " : " + dims_label(db));
      TensorId c = b.input("cond", dc, DataType::kBool, {0, 1});
      TensorId x = b.input("a", da, t, {-9, 9});
      TensorId y = b.input("b", db, t, {-9, 9});
      b.op(LayerParams{NoParams{}}, {c, x, y});
      out.push_back(b.finish());
    }
}

inline void scatter_cases(std::vector<OpCase>& out) {
  for (ScatterReduction r : all_values<ScatterReduction>())
    for (int axis = 0; axis < 2; ++axis) {
      CaseBuilder b(LayerKind::kScatter, "ELEMENT axis " + std::to_string(axis) + " " + std::string(to_string(r)));
      TensorId x = b.input("x", {4, 5});
      TensorId i = b.input("i", {3, 2}, DataType::kInt64, {-4, 3});
      TensorId u = b.input("u", {3, 2});
      b.op(ScatterParams{ScatterMode::kElement, axis, r}, {x, i, u});
      out.push_back(b.finish());
    }
  CaseBuilder b(LayerKind::kScatter, "ND rows");
  TensorId x = b.input("x", {4, 3, 2});
  TensorId i = b.input("i", {2, 2}, DataType::kInt32, {-3, 2});
  TensorId u = b.input("u", {2, 2});
  b.op(ScatterParams{ScatterMode::kND, 0, ScatterReduction::kNone}, {x, i, u});
  out.push_back(b.finish());
}

inline void topk_cases(std::vector<OpCase>& out) {
  for (TopKOp op : all_values<TopKOp>())
    for (int axis = 0; axis < 3; ++axis)
      for (int64_t k : {1, 3}) {
        CaseBuilder b(LayerKind::kTopK, std::string(to_string(op)) + " axis " + std::to_string(axis) + " k " + std::to_string(k));
        TensorId x = b.input("x", {3, 4, 5}, DataType::kFloat, {-9, 9});
        b.op(TopKParams{op, k, 1u << axis}, {x}, 2);
        out.push_back(b.finish());
      }
}

inline void einsum_cases(std::vector<OpCase>& out) {
  for (const auto& [eq, a, bd] : std::vector<std::tuple<std::string, Dims, Dims>>{
           {"ij,jk->ik", {3, 4}, {4, 5}}, {"bij,bjk->bik", {2, 3, 4}, {2, 4, 5}}, {"i,i->", {7}, {7}},
           {"ij->ji", {3, 4}, {}}, {"ii->i", {4, 4}, {}}, {"bij->b", {2, 3, 4}, {}}}) {
    CaseBuilder b(LayerKind::kEinsum, eq);
    std::vector<TensorId> ins = {b.input("a", a)};
    if (!bd.empty()) ins.push_back(b.input("b", bd));
    b.op(EinsumParams{eq}, ins);
    out.push_back(b.finish());
  }
}

inline void grid_sample_cases(std::vector<OpCase>& out) {
  for (ResizeMode m : all_values<ResizeMode>())
    for (SliceMode sm : {SliceMode::kFill, SliceMode::kClamp, SliceMode::kReflect})
      for (bool align : {false, true}) {
        CaseBuilder b(LayerKind::kGridSample, std::string(to_string(m)) + " " + std::string(to_string(sm)) +
                                                  (align ? " align_corners" : ""));
        TensorId x = b.input("x", {2, 3, 4, 5});
        TensorId g = b.input("grid", {2, 3, 6, 2}, DataType::kFloat, {-1.3, 1.3});  // some outside [-1, 1]
        b.op(GridSampleParams{m, align, sm}, {x, g});
        out.push_back(b.finish());
      }
}

inline void roi_align_cases(std::vector<OpCase>& out) {
  for (bool max_mode : {false, true})
    for (bool half_pixel : {false, true}) {
      CaseBuilder b(LayerKind::kRoiAlign, std::string(max_mode ? "max" : "avg") + (half_pixel ? " half_pixel" : ""));
      TensorId x = b.input("x", {2, 3, 8, 8});
      TensorId r = b.constant("rois", b.weights_of<float>("rw", DataType::kFloat, {3, 4},
                                                          {0, 0, 7, 7, 1.5f, 2, 5, 6.5f, -2, 3, 10, 4}));
      TensorId i = b.constant("bi", b.weights_of<int64_t>("iw", DataType::kInt64, {3}, {0, 1, 1}));
      b.op(RoiAlignParams{max_mode, half_pixel, 2, 3, 0, 1.f}, {x, r, i});
      out.push_back(b.finish());
    }
}

// NonZero over integer, bool and float inputs (integers in [-1, 1]: about a third are zero).
inline void nonzero_cases(std::vector<OpCase>& out) {
  for (DataType t : {DataType::kInt32, DataType::kInt64, DataType::kInt8, DataType::kBool, DataType::kFloat})
    for (const Dims& d : {Dims{7}, Dims{3, 5}, Dims{2, 3, 4}}) {
      CaseBuilder b(LayerKind::kNonZero, std::string(to_string(t)) + " " + dims_to_string(d));
      TensorId x = b.input("x", d, t, {-1, 1});
      b.op(NoParams{}, {x});
      out.push_back(b.finish());
    }
}

// NMS over random boxes (corner pairs in [0, 4], or centers and sizes) and scores; max boxes per
// class a constant (a tight bound) or the box count; thresholds as constants.
inline void nms_cases(std::vector<OpCase>& out) {
  for (bool center : {false, true})
    for (int64_t max_boxes : {int64_t(2), int64_t(20)})
      for (float iou : {0.f, 0.3f}) {
        CaseBuilder b(LayerKind::kNMS, std::string(center ? "center_sizes" : "corner_pairs") + " max " +
                                           std::to_string(max_boxes) + " iou " + std::to_string(iou));
        TensorId boxes = b.input("boxes", {2, 12, 4}, DataType::kFloat, {0, 4});
        TensorId scores = b.input("scores", {2, 12, 3}, DataType::kFloat, {-0.5, 1});
        TensorId m = b.constant("max", b.weights_of<int64_t>("mw", DataType::kInt64, {1}, {max_boxes}));
        TensorId i = b.constant("iou", b.weights_of<float>("iw", DataType::kFloat, {1}, {iou}));
        TensorId sc = b.constant("score", b.weights_of<float>("sw", DataType::kFloat, {1}, {0.f}));
        b.op(NMSParams{center}, {boxes, scores, m, i, sc});
        out.push_back(b.finish());
      }
}

// Every case of one kind. A kind without a case here fails to compile (-Werror=switch), and a
// kind whose generator yields nothing fails EveryLayerKindHasCases.
inline std::vector<OpCase> cases_for(LayerKind kind) {
  std::vector<OpCase> out;
  switch (kind) {
    case LayerKind::kConvolution: convolution_cases(out); break;
    case LayerKind::kDeconvolution: deconvolution_cases(out); break;
    case LayerKind::kPooling: pooling_cases(out); break;
    case LayerKind::kActivation: activation_cases(out); break;
    case LayerKind::kElementWise: elementwise_cases(out); break;
    case LayerKind::kScale: scale_cases(out); break;
    case LayerKind::kConcatenation: concatenation_cases(out); break;
    case LayerKind::kResize: resize_cases(out); break;
    case LayerKind::kShuffle: shuffle_cases(out); break;
    case LayerKind::kSlice: slice_cases(out); break;
    case LayerKind::kSoftMax: softmax_cases(out); break;
    case LayerKind::kReduce: reduce_cases(out); break;
    case LayerKind::kMatrixMultiply: matrix_multiply_cases(out); break;
    case LayerKind::kUnary: unary_cases(out); break;
    case LayerKind::kConstant: constant_cases(out); break;
    case LayerKind::kParametricReLU: parametric_relu_cases(out); break;
    case LayerKind::kLRN: lrn_cases(out); break;
    case LayerKind::kGather: gather_cases(out); break;
    case LayerKind::kIdentity: identity_cases(out); break;
    case LayerKind::kCast: cast_cases(out); break;
    case LayerKind::kNormalization: normalization_cases(out); break;
    case LayerKind::kSelect: select_cases(out); break;
    case LayerKind::kScatter: scatter_cases(out); break;
    case LayerKind::kTopK: topk_cases(out); break;
    case LayerKind::kEinsum: einsum_cases(out); break;
    case LayerKind::kGridSample: grid_sample_cases(out); break;
    case LayerKind::kRoiAlign: roi_align_cases(out); break;
    case LayerKind::kNonZero: nonzero_cases(out); break;
    case LayerKind::kNMS: nms_cases(out); break;
  }
  return out;
}

}  // namespace tandem::ops_test
