// Mapping, naming, folding and shape tests on small generated models.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "model_builder.h"
#include "tandem/onnx.h"

using namespace tandem;
using tandem::test::ModelBuilder;

namespace {
int count(const Network& n, LayerKind k) {
  int c = 0;
  for (const auto& l : n.layers) c += l.kind == k;
  return c;
}
}  // namespace

TEST(OnnxImport, ConvBnReluMapsAndKeepsNames) {
  ModelBuilder b(13);
  b.input("x", {1, 3, 8, 8}).output("y");
  b.init("w", {4, 3, 3, 3}, std::vector<float>(108, 0.1f)).init("bias", {4}, {1, 2, 3, 4});
  b.init("s", {4}, {1, 1, 1, 1}).init("bb", {4}, {0, 0, 0, 0}).init("m", {4}, {0, 0, 0, 0}).init("v", {4}, {1, 1, 1, 1});
  auto& c = b.node("Conv", {"x", "w", "bias"}, {"c"}, "conv0");
  ModelBuilder::attr_ints(c, "pads", {1, 1, 1, 1});
  b.node("BatchNormalization", {"c", "s", "bb", "m", "v"}, {"bn"}, "bn0");
  b.node("Relu", {"bn"}, {"y"});  // unnamed node: the parser's "node_of_<output>"
  Network n = import_onnx(b.write("convbn.onnx"));
  ASSERT_EQ(n.layers.size(), 3u);
  EXPECT_EQ(n.layers[0].kind, LayerKind::kConvolution);
  EXPECT_EQ(n.layers[0].name, "conv0");
  EXPECT_EQ(n.layers[1].kind, LayerKind::kScale);
  EXPECT_EQ(n.layers[2].name, "node_of_y");
  EXPECT_EQ(n.tensors[n.layers[0].outputs[0]].name, "c");
  EXPECT_EQ(n.tensors[n.layers[0].outputs[0]].dims, (Dims{1, 4, 8, 8}));
  const auto& p = n.layers[0].as<ConvolutionParams>();
  EXPECT_EQ(p.out_maps, 4);
  EXPECT_EQ(n.weights[p.kernel_weights].name, "w");
  EXPECT_EQ(n.weights[p.bias_weights].name, "bias");
  const auto& s = n.layers[1].as<ScaleParams>();
  EXPECT_NEAR(n.weights[s.scale].at(0), 1.0 / std::sqrt(1.0 + 1e-5), 1e-6);
  EXPECT_EQ(n.outputs.size(), 1u);
  EXPECT_EQ(n.tensors[n.outputs[0]].name, "y");
}

TEST(OnnxImport, InitializerOperandBecomesConstantAndBroadcastShuffle) {
  ModelBuilder b(13);
  b.input("x", {1, 2, 4, 4}).output("y");
  b.init("k", {2, 1, 1}, {2, 3});
  b.node("Mul", {"x", "k"}, {"y"}, "mul0");
  Network n = import_onnx(b.write("mulconst.onnx"));
  ASSERT_EQ(n.layers.size(), 3u);
  EXPECT_EQ(n.layers[0].kind, LayerKind::kConstant);
  EXPECT_EQ(n.layers[0].name, "k");
  // TensorRT's parser names the layer after the initializer; its output keeps the default name.
  EXPECT_EQ(n.tensors[n.layers[0].outputs[0]].name, "(Unnamed Layer* 0) [Constant]_output");
  EXPECT_EQ(n.layers[1].kind, LayerKind::kShuffle);
  EXPECT_EQ(n.layers[1].name, "(Unnamed Layer* 1) [Shuffle]");
  EXPECT_EQ(n.tensors[n.layers[1].outputs[0]].dims, (Dims{1, 2, 1, 1}));
  EXPECT_EQ(n.layers[2].kind, LayerKind::kElementWise);
  EXPECT_EQ(n.layers[2].name, "mul0");
  EXPECT_EQ(n.layers[2].onnx_op, "Mul");
}

TEST(OnnxImport, HardSwishSplitSoftmaxGemm) {
  ModelBuilder b(11);
  b.input("x", {2, 6}).output("a").output("s0").output("s1").output("sm").output("g");
  b.node("HardSwish", {"x"}, {"a"}, "hs");
  auto& sp = b.node("Split", {"x"}, {"s0", "s1"}, "split");
  ModelBuilder::attr_i(sp, "axis", 1);
  ModelBuilder::attr_ints(sp, "split", {2, 4});
  b.node("Softmax", {"x"}, {"sm"}, "softmax");
  b.init("W", {6, 3}, std::vector<float>(18, 0.5f)).init("C", {3}, {1, 2, 3});
  auto& g = b.node("Gemm", {"x", "W", "C"}, {"g"}, "gemm");
  ModelBuilder::attr_f(g, "alpha", 2.f);
  Network n = import_onnx(b.write("misc.onnx"));
  const LayerId hs = n.find_layer("hs");
  ASSERT_GE(hs, 1);
  EXPECT_EQ(n.layers[hs].kind, LayerKind::kElementWise);
  EXPECT_EQ(n.layers[hs - 1].as<ActivationParams>().type, ActivationType::kHardSigmoid);
  EXPECT_NEAR(n.layers[hs - 1].as<ActivationParams>().alpha, 1.f / 6.f, 1e-7);
  const TensorId s1 = n.find_tensor("s1");
  ASSERT_GE(s1, 0);
  EXPECT_EQ(n.tensors[s1].dims, (Dims{2, 4}));
  EXPECT_EQ(n.layers[n.tensors[s1].producer].as<SliceParams>().start, (Dims{0, 2}));
  EXPECT_EQ(count(n, LayerKind::kSlice), 2);
  // opset 11 Softmax: Shuffle -> SoftMax -> Shuffle; the last one carries the node name.
  const LayerId sm = n.find_layer("softmax");
  ASSERT_GE(sm, 2);
  EXPECT_EQ(n.layers[sm].kind, LayerKind::kShuffle);
  EXPECT_EQ(n.layers[sm - 1].kind, LayerKind::kSoftMax);
  EXPECT_EQ(n.layers[sm - 2].kind, LayerKind::kShuffle);
  const LayerId gm = n.find_layer("gemm");
  ASSERT_GE(gm, 0);
  EXPECT_EQ(n.layers[gm].as<ElementWiseParams>().op, ElementWiseOp::kSum);
  EXPECT_EQ(n.tensors[n.find_tensor("g")].dims, (Dims{2, 3}));
  EXPECT_EQ(count(n, LayerKind::kMatrixMultiply), 1);
}

TEST(OnnxImport, ShapeSubgraphFoldsIntoReshape) {
  ModelBuilder b(13);
  b.input("x", {1, 3, 4, 5}).output("y");
  b.node("Shape", {"x"}, {"sh"}, "shape0");
  b.init_i64("idx", {}, {0});
  b.node("Gather", {"sh", "idx"}, {"n"}, "gather0");
  b.init_i64("ax", {1}, {0});
  b.node("Unsqueeze", {"n", "ax"}, {"n1"}, "unsq0");
  b.init_i64("m1", {1}, {-1});
  b.node("Concat", {"n1", "m1"}, {"shape"}, "concat0").add_attribute()->CopyFrom([] {
    onnx::AttributeProto a; a.set_name("axis"); a.set_type(onnx::AttributeProto::INT); a.set_i(0); return a; }());
  b.node("Reshape", {"x", "shape"}, {"y"}, "reshape0");
  Network n = import_onnx(b.write("fold.onnx"));
  ASSERT_EQ(n.layers.size(), 1u);
  EXPECT_EQ(n.layers[0].kind, LayerKind::kShuffle);
  EXPECT_EQ(n.tensors[n.outputs[0]].dims, (Dims{1, 60}));
  EXPECT_EQ(n.model.folded_nodes, (std::vector<std::string>{"shape0", "gather0", "unsq0", "concat0"}));
}

TEST(OnnxImport, NodesOutOfOrderAreSorted) {
  ModelBuilder b(13);
  b.input("x", {1, 4}).output("z");
  b.node("Relu", {"y"}, {"z"}, "second");
  b.node("Sigmoid", {"x"}, {"y"}, "first");
  Network n = import_onnx(b.write("order.onnx"));
  ASSERT_EQ(n.layers.size(), 2u);
  EXPECT_EQ(n.layers[0].name, "first");
  EXPECT_EQ(n.layers[1].name, "second");
}

TEST(OnnxImport, ShapesOptionHooksAndVerify) {
  ModelBuilder b(13);
  b.input("x", {-1, 3, -1, -1}).output("y");
  auto& r = b.node("Resize", {"x", "", "sc"}, {"y"}, "up");
  ModelBuilder::attr_s(r, "mode", "nearest");
  ModelBuilder::attr_s(r, "coordinate_transformation_mode", "asymmetric");
  ModelBuilder::attr_s(r, "nearest_mode", "floor");
  b.init("sc", {4}, {1, 1, 2, 2});
  ImportOptions opt;
  opt.shapes.push_back(parse_shape_arg("x:2x3x10x12"));
  int hook_calls = 0;
  opt.hooks.push_back([&](Network& n) { ++hook_calls; n.layers[0].name = "renamed"; });
  Network n = import_onnx(b.write("resize.onnx"), opt);
  EXPECT_EQ(hook_calls, 1);
  EXPECT_EQ(n.layers[0].name, "renamed");
  EXPECT_EQ(n.tensors[n.outputs[0]].dims, (Dims{2, 3, 20, 24}));
  const auto& p = n.layers[0].as<ResizeParams>();
  EXPECT_EQ(p.transform, ResizeCoordinateTransform::kAsymmetric);
  EXPECT_EQ(p.rounding, ResizeRounding::kFloor);
  // A hook that breaks an invariant is caught by verify().
  opt.hooks = {[](Network& n) { n.layers[0].inputs.clear(); }};
  EXPECT_THROW(import_onnx(b.write("resize.onnx"), opt), Error);
}

TEST(OnnxImport, ExternalDataInsideTheFolder) {
  ModelBuilder b(13);
  b.input("x", {1, 4}).output("y");
  auto* t = b.proto().mutable_graph()->add_initializer();
  t->set_name("k");
  t->set_data_type(onnx::TensorProto::FLOAT);
  t->add_dims(4);
  t->set_data_location(onnx::TensorProto::EXTERNAL);
  auto* kv = t->add_external_data(); kv->set_key("location"); kv->set_value("ext/k.bin");
  kv = t->add_external_data(); kv->set_key("offset"); kv->set_value("4");
  b.node("Add", {"x", "k"}, {"y"}, "add");
  const float v[5] = {0, 1, 2, 3, 4};
  test::write_bytes("extok/ext/k.bin", std::string(reinterpret_cast<const char*>(v), sizeof v));
  Network n = import_onnx(b.write("extok/model.onnx"));
  const auto& w = n.weights[n.layers[0].as<ConstantParams>().weights];
  EXPECT_EQ(w.at(0), 1.0);
  EXPECT_EQ(w.at(3), 4.0);
}

TEST(OnnxImport, ParseShapeArg) {
  EXPECT_EQ(parse_shape_arg("x:1x3x640x640"), (std::pair<std::string, Dims>{"x", {1, 3, 640, 640}}));
  EXPECT_EQ(parse_shape_arg("in:0:1,2"), (std::pair<std::string, Dims>{"in:0", {1, 2}}));
  EXPECT_EQ(parse_shape_arg("x:0"), (std::pair<std::string, Dims>{"x", {0}}));  // an empty tensor
  for (const char* bad : {"x", "x:", ":1x2", "x:1xx2", "x:1x-2", "x:abc", "x:99999999999999999999"})
    EXPECT_THROW(parse_shape_arg(bad), Error) << bad;
}

TEST(OnnxImport, ReadTensorProto) {
  onnx::TensorProto t;
  t.set_name("input_0");
  t.set_data_type(onnx::TensorProto::FLOAT);
  t.add_dims(2);
  t.add_dims(2);
  for (float f : {1.f, 2.f, 3.f, 4.f}) t.add_float_data(f);
  HostTensor h = read_tensor_proto(test::write_bytes("t.pb", t.SerializeAsString()));
  EXPECT_EQ(h.name, "input_0");
  EXPECT_EQ(h.dims, (Dims{2, 2}));
  EXPECT_EQ(h.f32()[3], 4.f);
  // A real conformance input.
  const std::string p = "/usr/share/libonnx-testdata/data/node/test_relu/test_data_set_0/input_0.pb";
  ASSERT_TRUE(std::ifstream(p)) << p << " is missing: run scripts/setup.sh (libonnx-testdata)";
  HostTensor r = read_tensor_proto(p);
  EXPECT_EQ(r.dims, (Dims{3, 4, 5}));
  EXPECT_EQ(r.data.size(), 60u * 4);
  EXPECT_THROW(read_tensor_proto(test::write_bytes("bad.pb", std::string("\x0a\xff\xff", 3))), Error);
}

TEST(OnnxImport, InitializerListedAsInputIsAConstant) {
  ModelBuilder b(13);
  b.input("x", {1, 4}).input("k", {4}).output("y");  // old exporters list initializers as inputs
  b.init("k", {4}, {1, 2, 3, 4});
  b.node("Add", {"x", "k"}, {"y"}, "add");
  Network n = import_onnx(b.write("initinput.onnx"));
  ASSERT_EQ(n.inputs.size(), 1u);
  EXPECT_EQ(n.tensors[n.inputs[0]].name, "x");
  EXPECT_EQ(n.layers[0].kind, LayerKind::kConstant);
  EXPECT_EQ(n.layers[0].name, "k");
}

TEST(OnnxImport, ExternalDataBeyondTheFileIsAnError) {
  ModelBuilder b(13);
  b.input("x", {1, 4}).output("y");
  auto* t = b.proto().mutable_graph()->add_initializer();
  t->set_name("k");
  t->set_data_type(onnx::TensorProto::FLOAT);
  t->add_dims(4);
  t->set_data_location(onnx::TensorProto::EXTERNAL);
  auto* kv = t->add_external_data(); kv->set_key("location"); kv->set_value("k.bin");
  kv = t->add_external_data(); kv->set_key("offset"); kv->set_value("8");
  b.node("Add", {"x", "k"}, {"y"}, "add");
  test::write_bytes("extshort/k.bin", std::string(16, '\0'));
  try {
    import_onnx(b.write("extshort/model.onnx"));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("initializer 'k': external data offset 8"), std::string::npos) << e.what();
  }
}
