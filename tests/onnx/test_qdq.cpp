// QuantizeLinear / DequantizeLinear import (explicit quantization, docs/onnx-import.md).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "model_builder.h"
#include "tandem/onnx.h"
#include "tandem/runtime.h"

using namespace tandem;
using tandem::test::ModelBuilder;

namespace {
void init_i8(ModelBuilder& b, const std::string& name, const std::vector<int64_t>& dims, const std::vector<int8_t>& v) {
  auto* t = b.proto().mutable_graph()->add_initializer();
  t->set_name(name);
  t->set_data_type(onnx::TensorProto::INT8);
  for (int64_t d : dims) t->add_dims(d);
  t->set_raw_data(std::string(reinterpret_cast<const char*>(v.data()), v.size()));
}
void init_u8(ModelBuilder& b, const std::string& name, uint8_t v) {
  auto* t = b.proto().mutable_graph()->add_initializer();
  t->set_name(name);
  t->set_data_type(onnx::TensorProto::UINT8);
  t->set_raw_data(std::string(1, char(v)));
}

// x -> Q/DQ (edge) -> Conv(W = DQ(int8, per channel)) -> y_prequant -> Q/DQ -> y, as `export qdq`.
ModelBuilder qdq_conv(float in_scale = 0.5f, int8_t zp = 0) {
  ModelBuilder b(13);
  b.input("x", {1, 2, 4, 4}).output("y");
  b.init("sx", {}, {in_scale}).init("sy", {}, {0.25f}).init("sw", {3}, {0.01f, 0.02f, 0.03f});
  init_i8(b, "zx", {}, {zp});
  init_i8(b, "zy", {}, {0});
  init_i8(b, "zw", {3}, {0, 0, 0});
  std::vector<int8_t> q(3 * 2 * 1 * 1);
  for (size_t i = 0; i < q.size(); ++i) q[i] = int8_t(int(i) * 25 - 64);
  q[0] = 127;
  init_i8(b, "w_quantized", {3, 2, 1, 1}, q);
  b.node("QuantizeLinear", {"x", "sx", "zx"}, {"x_q"}, "x_Q");
  b.node("DequantizeLinear", {"x_q", "sx", "zx"}, {"x_dequantized"}, "x_DQ");
  auto& dw = b.node("DequantizeLinear", {"w_quantized", "sw", "zw"}, {"w"}, "w_DQ");
  ModelBuilder::attr_i(dw, "axis", 0);
  b.node("Conv", {"x_dequantized", "w"}, {"y_prequant"}, "conv0");
  b.node("QuantizeLinear", {"y_prequant", "sy", "zy"}, {"y_q"}, "y_Q");
  b.node("DequantizeLinear", {"y_q", "sy", "zy"}, {"y"}, "y_DQ");
  return b;
}
}  // namespace

TEST(OnnxQdq, PairsDisappearScalesBecomeTensorScales) {
  Network n = import_onnx(qdq_conv().write("qdq_conv.onnx"));
  ASSERT_EQ(n.layers.size(), 1u);  // the Conv alone: no Q/DQ layers, weights folded
  EXPECT_EQ(n.layers[0].kind, LayerKind::kConvolution);
  EXPECT_EQ(n.layers[0].name, "conv0");
  EXPECT_EQ(n.tensors[n.layers[0].inputs[0]].name, "x");   // an edge Q/DQ keeps the producer's name
  EXPECT_EQ(n.tensors[n.layers[0].outputs[0]].name, "y");  // t_prequant -> Q -> DQ -> t: t
  EXPECT_EQ(n.model.qdq_scales, (std::map<std::string, float>{{"x", 0.5f}, {"y", 0.25f}}));
  // Weights: q * s per output channel in float, and the emulation's per-channel round trip
  // (scale max|w| / 127) gives the same scale and values back, bit for bit.
  const Weights& w = n.weights[n.layers[0].as<ConvolutionParams>().kernel_weights];
  EXPECT_EQ(w.name, "w");
  ASSERT_EQ(w.count(), 6);
  const float sw[3] = {0.01f, 0.02f, 0.03f};
  for (int k = 0; k < 3; ++k) {
    float m = 0.f;
    for (int i = 0; i < 2; ++i) m = std::max(m, std::fabs(w.f32()[k * 2 + i]));
    const float s = m / 127.f;
    for (int i = 0; i < 2; ++i) {
      const float v = w.f32()[k * 2 + i];
      const int q = k * 2 + i == 0 ? 127 : (k * 2 + i) * 25 - 64;
      EXPECT_EQ(v, float(q) * sw[k]);
      if (k == 0) EXPECT_EQ(fake_quant_int8_weight(v, s), v);
    }
  }
}

TEST(OnnxQdq, BadQdqIsOneLineNamingFileAndNode) {
  auto expect_error = [](ModelBuilder b, const std::string& file, const std::string& what) {
    const std::string path = b.write(file);
    try {
      import_onnx(path);
      ADD_FAILURE() << "no error for " << file;
    } catch (const Error& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find(path + ": node '"), std::string::npos) << m;
      EXPECT_NE(m.find(what), std::string::npos) << m;
      EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    }
  };
  expect_error(qdq_conv(0.5f, 3), "zp.onnx", "node 'x_Q' (QuantizeLinear): zero point 3 is not 0");
  expect_error(qdq_conv(-1.f), "neg.onnx", "node 'x_Q' (QuantizeLinear): scale -1 is not a positive number");
  {  // uint8 zero point on a Q -> DQ pair: TensorRT quantizes to int8 only
    ModelBuilder b(13);
    b.input("x", {1, 4}).output("y").init("s", {}, {0.1f});
    init_u8(b, "z", 0);
    b.node("QuantizeLinear", {"x", "s", "z"}, {"q"}, "q0");
    b.node("DequantizeLinear", {"q", "s", "z"}, {"d"}, "d0");
    b.node("Relu", {"d"}, {"y"}, "relu");
    expect_error(b, "u8.onnx", "node 'q0' (QuantizeLinear): zero point type uint8 is not supported");
  }
  {  // per-axis scale on an activation
    ModelBuilder b(13);
    b.input("x", {1, 2}).output("y").init("s", {2}, {0.1f, 0.2f});
    init_i8(b, "z", {2}, {0, 0});
    auto& q = b.node("QuantizeLinear", {"x", "s", "z"}, {"q"}, "q0");
    ModelBuilder::attr_i(q, "axis", 1);
    auto& d = b.node("DequantizeLinear", {"q", "s", "z"}, {"d"}, "d0");
    ModelBuilder::attr_i(d, "axis", 1);
    b.node("Relu", {"d"}, {"y"}, "relu");
    expect_error(b, "axis.onnx", "node 'q0' (QuantizeLinear): per-axis scale on an activation");
  }
  {  // a DQ whose scale differs from its Q's
    ModelBuilder b(13);
    b.input("x", {1, 4}).output("y").init("s", {}, {0.1f}).init("s2", {}, {0.2f});
    init_i8(b, "z", {}, {0});
    b.node("QuantizeLinear", {"x", "s", "z"}, {"q"}, "q0");
    b.node("DequantizeLinear", {"q", "s2", "z"}, {"y"}, "d0");
    expect_error(b, "differ.onnx", "node 'd0' (DequantizeLinear): scale differs from its QuantizeLinear's");
  }
}

TEST(OnnxQdq, StandaloneQuantizeIsComputed) {
  // The quantized side is a graph output: ONNX arithmetic as layers (uint8, zero point 128).
  ModelBuilder b(13);
  b.input("x", {1, 4}).output("y").init("s", {}, {0.5f});
  init_u8(b, "z", 128);
  b.node("QuantizeLinear", {"x", "s", "z"}, {"y"}, "q0");
  Network n = import_onnx(b.write("standalone_q.onnx"));
  EXPECT_TRUE(n.model.qdq_scales.empty());
  EXPECT_EQ(n.tensors[n.outputs[0]].type, DataType::kUInt8);
  EXPECT_EQ(n.layers.back().kind, LayerKind::kCast);
  EXPECT_EQ(n.layers.back().name, "q0");
}

TEST(OnnxQdq, QdqOnAConstantFoldsAndKeepsItsName) {
  // c -> Q -> DQ -> c_dequantized -> Mul: the constant becomes q * s under its own name.
  ModelBuilder b(13);
  b.input("x", {1, 3}).output("y").init("c", {3}, {0.3f, -1.f, 0.26f}).init("s", {}, {1.f / 127.f});
  init_i8(b, "z", {}, {0});
  b.node("QuantizeLinear", {"c", "s", "z"}, {"c_q"}, "c_Q");
  b.node("DequantizeLinear", {"c_q", "s", "z"}, {"c_dequantized"}, "c_DQ");
  b.node("Mul", {"x", "c_dequantized"}, {"y"}, "mul");
  Network n = import_onnx(b.write("qdq_const.onnx"));
  // The Constant layer is named after the value, its output as TensorRT names it; the scale is
  // known under both names.
  const LayerId kl = n.find_layer("c");
  ASSERT_GE(kl, 0);
  const Layer& k = n.layers[kl];
  ASSERT_EQ(k.kind, LayerKind::kConstant);
  const std::string& t = n.tensors[k.outputs[0]].name;
  EXPECT_EQ(t, "(Unnamed Layer* 0) [Constant]_output");
  EXPECT_EQ(n.model.qdq_scales.at("c"), 1.f / 127.f);
  EXPECT_EQ(n.model.qdq_scales.at(t), 1.f / 127.f);
  const Weights& w = n.weights[k.as<ConstantParams>().weights];
  EXPECT_EQ(w.f32()[1], fake_quant_int8(-1.f, 1.f / 127.f));
  EXPECT_EQ(w.f32()[2], fake_quant_int8(0.26f, 1.f / 127.f));
}

TEST(OnnxQdq, FloatWeightsThroughPerAxisQdqFold) {
  // ModelOpt / pytorch-quantization style: float weights -> Q(axis 0) -> DQ(axis 0) -> Conv.
  ModelBuilder b(13);
  b.input("x", {1, 2, 4, 4}).output("y");
  b.init("w", {2, 2, 1, 1}, {0.5f, -0.26f, 1.0f, 0.1f}).init("sw", {2}, {0.5f / 127.f, 1.0f / 127.f});
  b.init("sx", {}, {0.1f});
  init_i8(b, "zw", {2}, {0, 0});
  init_i8(b, "zx", {}, {0});
  auto& q = b.node("QuantizeLinear", {"w", "sw", "zw"}, {"wq"}, "wQ");
  ModelBuilder::attr_i(q, "axis", 0);
  auto& d = b.node("DequantizeLinear", {"wq", "sw", "zw"}, {"wd"}, "wDQ");
  ModelBuilder::attr_i(d, "axis", 0);
  b.node("QuantizeLinear", {"x", "sx", "zx"}, {"xq"}, "xQ");
  b.node("DequantizeLinear", {"xq", "sx", "zx"}, {"xd"}, "xDQ");
  b.node("Conv", {"xd", "wd"}, {"y"}, "conv");
  Network n = import_onnx(b.write("qdq_float_weights.onnx"));
  ASSERT_EQ(n.layers.size(), 1u);
  EXPECT_EQ(n.model.qdq_scales, (std::map<std::string, float>{{"x", 0.1f}}));
  const Weights& w = n.weights[n.layers[0].as<ConvolutionParams>().kernel_weights];
  EXPECT_EQ(w.name, "w");  // the Q was the float weights' only reader: the folded value keeps the name
  EXPECT_EQ(w.f32()[0], 127.f * (0.5f / 127.f));
  EXPECT_EQ(w.f32()[1], std::nearbyint(-0.26f / (0.5f / 127.f)) * (0.5f / 127.f));
  EXPECT_EQ(w.f32()[3], std::nearbyint(0.1f / (1.0f / 127.f)) * (1.0f / 127.f));
}
