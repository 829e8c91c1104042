// A small network builder for the lowering tests: 4-element float tensors unless told otherwise.
#pragma once
#include <cstring>
#include <string>
#include <vector>

#include "tandem/network.h"

namespace tandem::lower_test {

struct Net {
  Network n;
  TensorId input(const std::string& name, Dims d = {1, 1, 1, 4}) {
    TensorId t = n.add_tensor({name, DataType::kFloat, d});
    n.tensors[size_t(t)].is_input = true;
    n.inputs.push_back(t);
    return t;
  }
  TensorId tensor(const std::string& name, Dims d = {1, 1, 1, 4}) { return n.add_tensor({name, DataType::kFloat, d}); }
  void output(TensorId t) {
    n.tensors[size_t(t)].is_output = true;
    n.outputs.push_back(t);
  }
  WeightsId weights(const std::string& name, Dims d, std::vector<float> v) {
    Weights w;
    w.name = name;
    w.dims = d;
    w.bytes.resize(v.size() * 4);
    std::memcpy(w.bytes.data(), v.data(), w.bytes.size());
    return n.add_weights(std::move(w));
  }
  TensorId scalar(const std::string& name, float v) {
    TensorId t = tensor(name, {1});
    n.add_layer({name, LayerKind::kConstant, {}, {t}, ConstantParams{weights(name + "_w", {1}, {v})}});
    return t;
  }
  LayerId conv(const std::string& name, TensorId x, TensorId y) {
    ConvolutionParams p;
    p.kernel = {1, 1};
    p.stride = {1, 1};
    p.pre_padding = {0, 0};
    p.post_padding = {0, 0};
    p.dilation = {1, 1};
    p.out_maps = 1;
    p.kernel_weights = weights(name + "_w", {1, 1, 1, 1}, {1.f});
    return n.add_layer({name, LayerKind::kConvolution, {x}, {y}, p});
  }
  LayerId scale(const std::string& name, TensorId x, TensorId y) {
    ScaleParams sp;
    sp.mode = ScaleMode::kUniform;
    sp.scale = weights(name + "_s", {1}, {2.f});
    sp.shift = weights(name + "_t", {1}, {1.f});
    return n.add_layer({name, LayerKind::kScale, {x}, {y}, sp});
  }
  LayerId act(const std::string& name, TensorId x, TensorId y, ActivationType t, float a = 0, float b = 0) {
    return n.add_layer({name, LayerKind::kActivation, {x}, {y}, ActivationParams{t, a, b}});
  }
  LayerId elt(const std::string& name, TensorId a, TensorId b, TensorId y, ElementWiseOp op) {
    return n.add_layer({name, LayerKind::kElementWise, {a, b}, {y}, ElementWiseParams{op}});
  }
};

// An 8 -> 8 channel 1x1 convolution with zero weights (the lowering looks at shapes, not values).
inline void add_conv8(Network& n, const std::string& name, TensorId in, TensorId out) {
  Weights w;
  w.name = name + "_w";
  w.dims = {8, 8, 1, 1};
  w.bytes.assign(64 * 4, 0);
  ConvolutionParams p;
  p.kernel = {1, 1};
  p.stride = {1, 1};
  p.pre_padding = p.post_padding = {0, 0};
  p.dilation = {1, 1};
  p.out_maps = 8;
  p.kernel_weights = n.add_weights(std::move(w));
  n.add_layer({name, LayerKind::kConvolution, {in}, {out}, p});
}

}  // namespace tandem::lower_test
