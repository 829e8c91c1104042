// Small helpers to build synthetic networks for DLA and planner tests.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include "tandem/dla.h"
#include "tandem/network.h"

namespace tandem::testing {

struct NetBuilder {
  Network net;

  TensorId input(const std::string& name, Dims dims, DataType type = DataType::kFloat) {
    Tensor t;
    t.name = name;
    t.dims = std::move(dims);
    t.type = type;
    t.is_input = true;
    TensorId id = net.add_tensor(t);
    net.inputs.push_back(id);
    return id;
  }
  void output(TensorId t) {
    net.tensors[t].is_output = true;
    net.outputs.push_back(t);
  }

  // Adds a layer with one output of the given dims (type = type of the first input, or FP32).
  TensorId layer(LayerKind kind, const std::string& name, std::vector<TensorId> ins, Dims out,
                 LayerParams params = NoParams{}) {
    Tensor t;
    t.name = name + "_out";
    t.dims = std::move(out);
    t.type = ins.empty() ? DataType::kFloat : net.tensors[ins[0]].type;
    TensorId o = net.add_tensor(t);
    Layer l;
    l.name = name;
    l.kind = kind;
    l.inputs = std::move(ins);
    l.outputs = {o};
    l.params = std::move(params);
    net.add_layer(std::move(l));
    return o;
  }
  LayerId last() const { return static_cast<LayerId>(net.layers.size()) - 1; }

  WeightsId weights(const std::string& name, Dims dims, float value = 1.f) {
    Weights w;
    w.name = name;
    w.dims = dims;
    w.type = DataType::kFloat;
    w.bytes.resize(static_cast<size_t>(volume(dims)) * 4);
    float* p = reinterpret_cast<float*>(w.bytes.data());
    for (int64_t i = 0; i < volume(dims); ++i) p[i] = value;
    return net.add_weights(std::move(w));
  }

  TensorId constant(const std::string& name, Dims dims, float value = 1.f) {
    ConstantParams p;
    p.weights = weights(name + "_w", dims, value);
    return layer(LayerKind::kConstant, name, {}, dims, p);
  }

  static int64_t conv_out(int64_t in, int64_t k, int64_t s, int64_t pre, int64_t post, int64_t d) {
    return (in + pre + post - ((k - 1) * d + 1)) / s + 1;
  }

  TensorId conv(TensorId x, const std::string& name, int64_t out_maps, Dims k, Dims s = {1, 1},
                Dims pad = {0, 0}, int64_t groups = 1, Dims dil = {1, 1}) {
    const Dims& in = net.tensors[x].dims;
    ConvolutionParams p;
    p.kernel = k;
    p.stride = s;
    p.pre_padding = pad;
    p.post_padding = pad;
    p.dilation = dil;
    p.groups = groups;
    p.out_maps = out_maps;
    p.kernel_weights = weights(name + "_k", {out_maps, in[1] / groups, k[0], k[1]}, 0.01f);
    Dims out = {in[0], out_maps, conv_out(in[2], k[0], s[0], pad[0], pad[0], dil[0]),
                conv_out(in[3], k[1], s[1], pad[1], pad[1], dil[1])};
    return layer(LayerKind::kConvolution, name, {x}, out, p);
  }

  TensorId deconv(TensorId x, const std::string& name, int64_t out_maps, Dims k, Dims s,
                  Dims pad = {0, 0}, int64_t groups = 1, Dims dil = {1, 1}) {
    const Dims& in = net.tensors[x].dims;
    ConvolutionParams p;
    p.kernel = k;
    p.stride = s;
    p.pre_padding = pad;
    p.post_padding = pad;
    p.dilation = dil;
    p.groups = groups;
    p.out_maps = out_maps;
    p.kernel_weights = weights(name + "_k", {in[1], out_maps / groups, k[0], k[1]}, 0.01f);
    Dims out = {in[0], out_maps, (in[2] - 1) * s[0] + k[0] - 2 * pad[0],
                (in[3] - 1) * s[1] + k[1] - 2 * pad[1]};
    return layer(LayerKind::kDeconvolution, name, {x}, out, p);
  }

  TensorId relu(TensorId x, const std::string& name) {
    return act(x, name, ActivationType::kRelu);
  }
  TensorId act(TensorId x, const std::string& name, ActivationType t, float a = 0, float b = 0) {
    ActivationParams p;
    p.type = t;
    p.alpha = a;
    p.beta = b;
    return layer(LayerKind::kActivation, name, {x}, net.tensors[x].dims, p);
  }
  TensorId eltwise(TensorId a, TensorId b, const std::string& name, ElementWiseOp op = ElementWiseOp::kSum) {
    ElementWiseParams p;
    p.op = op;
    Dims d = net.tensors[a].dims;
    const Dims& db = net.tensors[b].dims;
    if (d.size() == db.size())
      for (size_t i = 0; i < d.size(); ++i) d[i] = std::max(d[i], db[i]);
    return layer(LayerKind::kElementWise, name, {a, b}, d, p);
  }
  TensorId gather(TensorId x, const std::string& name) {
    TensorId idx = constant(name + "_idx", {1});
    net.tensors[idx].type = DataType::kInt32;
    return layer(LayerKind::kGather, name, {x, idx}, net.tensors[x].dims, GatherParams{});
  }
  TensorId concat(std::vector<TensorId> ins, const std::string& name, int axis = 1) {
    Dims d = net.tensors[ins[0]].dims;
    d[axis] = 0;
    for (TensorId t : ins) d[axis] += net.tensors[t].dims[axis];
    ConcatenationParams p;
    p.axis = axis;
    return layer(LayerKind::kConcatenation, name, ins, d, p);
  }
};

}  // namespace tandem::testing
