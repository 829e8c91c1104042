// A small hand-built network for engine tests: conv -> scale(BN) -> relu -> identity -> output,
// plus a constant added elementwise. Uses every part of the format that matters.
#pragma once

#include <cstring>
#include <random>

#include "tandem/engine.h"
#include "tandem/network.h"

namespace tandem::test {

inline WeightsId add_f32(Network& net, const std::string& name, Dims dims, std::mt19937& rng, float lo = -1, float hi = 1) {
  Weights w;
  w.name = name;
  w.type = DataType::kFloat;
  w.dims = dims;
  w.bytes.resize(size_t(volume(dims)) * 4);
  std::uniform_real_distribution<float> d(lo, hi);
  for (int64_t i = 0; i < volume(dims); ++i) w.f32()[i] = d(rng);
  return net.add_weights(std::move(w));
}

inline Network small_network(int c_in = 3, int k = 8, int hw = 8) {
  std::mt19937 rng(42);
  Network net;
  Tensor x{"x", DataType::kFloat, {1, c_in, hw, hw}, -1, true, false};
  TensorId tx = net.add_tensor(x);
  net.inputs.push_back(tx);
  auto t = [&](const std::string& n, Dims d) { return net.add_tensor(Tensor{n, DataType::kFloat, d}); };
  Dims od = {1, k, hw, hw};
  TensorId c_out = t("conv_out", od), s_out = t("bn_out", od), r_out = t("relu_out", od), i_out = t("id_out", od),
           k_out = t("const_out", {1, k, 1, 1}), y = t("y", od);
  ConvolutionParams cp;
  cp.kernel = {3, 3}; cp.stride = {1, 1}; cp.pre_padding = {1, 1}; cp.post_padding = {1, 1}; cp.dilation = {1, 1};
  cp.out_maps = k;
  cp.kernel_weights = add_f32(net, "conv.w", {k, c_in, 3, 3}, rng);
  cp.bias_weights = add_f32(net, "conv.b", {k}, rng);
  net.add_layer(Layer{"conv", LayerKind::kConvolution, {tx}, {c_out}, cp, "conv", "Conv"});
  ScaleParams sp;
  sp.mode = ScaleMode::kChannel;
  sp.scale = add_f32(net, "bn.scale", {k}, rng, 0.5f, 1.5f);
  sp.shift = add_f32(net, "bn.shift", {k}, rng);
  net.add_layer(Layer{"bn", LayerKind::kScale, {c_out}, {s_out}, sp, "bn", "BatchNormalization"});
  net.add_layer(Layer{"relu", LayerKind::kActivation, {s_out}, {r_out}, ActivationParams{}, "relu", "Relu"});
  net.add_layer(Layer{"id", LayerKind::kIdentity, {r_out}, {i_out}, NoParams{}, "id", "Identity"});
  ConstantParams kp;
  kp.weights = add_f32(net, "k", {1, k, 1, 1}, rng);
  net.add_layer(Layer{"k", LayerKind::kConstant, {}, {k_out}, kp, "", ""});
  net.add_layer(Layer{"add", LayerKind::kElementWise, {i_out, k_out}, {y}, ElementWiseParams{ElementWiseOp::kSum}, "add", "Add"});
  net.tensors[y].is_output = true;
  net.outputs.push_back(y);
  net.verify();
  return net;
}

inline Plan all_gpu_plan(const Network& net) {
  Plan p;
  p.plan_case = Plan::Case::kNoDla;
  p.layers.resize(net.layers.size());
  return p;
}

inline EngineContents small_contents() {
  EngineContents e;
  e.network = small_network();
  e.plan = all_gpu_plan(e.network);
  e.plan.layers[0] = LayerPlacement{Device::kDLA, Precision::kINT8, 0, "dla chunk"};
  e.plan.regions.push_back(Region{{0}, 0, 0, true, "largest"});
  e.plan.crossings.push_back(Crossing{e.network.find_tensor("conv_out"), Device::kDLA, Device::kGPU, 512});
  e.plan.warnings.push_back("a warning");
  e.scales = {{"x", 0.01f}, {"conv_out", 0.05f}};
  e.input_formats = {TensorFormat{"x", DataType::kFloat, TensorLayout::kNCHW}};
  e.output_formats = {TensorFormat{"y", DataType::kHalf, TensorLayout::kNHWC}};
  e.tactics = {Tactic{"network:abc", "cpu.threads=2", 1.5}};
  e.int8_weights = {0};
  e.meta.tool_version = TANDEM_VERSION;
  e.meta.model_path = "small.onnx";
  e.meta.model_sha256 = std::string(64, 'a');
  e.meta.target = "orin";
  e.meta.backend = "cpu";
  e.meta.options_json = "{\"fp16\":true}";
  e.meta.created_utc = "2026-11-26T00:00:00Z";
  e.meta.fusions = {"conv + bn"};
  return e;
}

}  // namespace tandem::test
