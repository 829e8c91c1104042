// Empty tensors (a 0 extent; TensorRT's "empty tensors", NvInfer.h): src/onnx/empty_tensors.cpp
// folds every layer whose outputs are all empty into an empty Constant, Concat drops empty inputs,
// and a layer that would compute values from an empty tensor is one import error naming its node.
// Network::verify() pins the result: no layer reads or (but a Constant) writes an empty tensor.
#include <gtest/gtest.h>

#include <cstring>

#include "model_builder.h"
#include "tandem/lower.h"
#include "tandem/npy.h"
#include "tandem/onnx.h"
#include "tandem/runtime.h"

using namespace tandem;
using tandem::test::ModelBuilder;

namespace {

HostTensor floats(const std::string& name, Dims d, const std::vector<float>& v) {
  HostTensor t = HostTensor::zeros(name, DataType::kFloat, std::move(d));
  std::memcpy(t.data.data(), v.data(), v.size() * sizeof(float));
  return t;
}

std::vector<float> values_of(const HostTensor& t) { return std::vector<float>(t.f32(), t.f32() + t.count()); }

int count_kind(const Network& n, LayerKind k) {
  int c = 0;
  for (const Layer& l : n.layers) c += l.kind == k;
  return c;
}

std::string import_error(const std::string& path, const ImportOptions& opt = {}) {
  try {
    import_onnx(path, opt);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

// y = x[:, 5:7] is [4, 0] (starts past the end, as test_slice_start_out_of_bounds); z = Concat(y, x)
// along axis 1 is x itself: the Slice becomes an empty Constant, the Concat reads x alone.
TEST(OnnxEmptyTensors, EmptySliceFoldsToAnEmptyConstantAndConcatDropsIt) {
  ModelBuilder b(13);
  b.input("x", {4, 3}).output("y").output("z");
  b.init_i64("starts", {1}, {5}).init_i64("ends", {1}, {7}).init_i64("axes", {1}, {1});
  b.node("Slice", {"x", "starts", "ends", "axes"}, {"y"}, "slice");
  auto& c = b.node("Concat", {"y", "x"}, {"z"}, "concat");
  ModelBuilder::attr_i(c, "axis", 1);
  const Network n = import_onnx(b.write("empty_slice.onnx"));
  const TensorId y = n.find_tensor("y");
  ASSERT_GE(y, 0);
  EXPECT_EQ(n.tensors[size_t(y)].dims, (Dims{4, 0}));
  const Layer& py = n.layers[size_t(n.tensors[size_t(y)].producer)];
  EXPECT_EQ(py.kind, LayerKind::kConstant);
  EXPECT_EQ(py.onnx_node, "slice");  // the empty Constant keeps the node it replaces
  EXPECT_EQ(n.weights[size_t(py.as<ConstantParams>().weights)].bytes.size(), 0u);
  EXPECT_EQ(count_kind(n, LayerKind::kSlice), 0);
  const Layer& cat = n.layers[size_t(n.tensors[size_t(n.find_tensor("z"))].producer)];
  ASSERT_EQ(cat.kind, LayerKind::kConcatenation);
  EXPECT_EQ(cat.inputs, (std::vector<TensorId>{n.find_tensor("x")}));

  const std::vector<float> xv = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  TensorMap in;
  in["x"] = floats("x", {4, 3}, xv);
  const TensorMap out = make_cpu_executor(n)->run(in);
  EXPECT_EQ(out.at("y").dims, (Dims{4, 0}));
  EXPECT_EQ(out.at("y").data.size(), 0u);
  EXPECT_EQ(out.at("z").dims, (Dims{4, 3}));
  EXPECT_EQ(values_of(out.at("z")), xv);
}

// An input fixed to 0x3 (a declared 0 is dynamic; --shape x:0x3 fixes it), reshaped to 3x0 with
// allowzero (as test_reshape_allowzero_reordered): the input stays, unread; the output is an empty
// Constant; a run takes 0 bytes and returns the empty shape.
TEST(OnnxEmptyTensors, EmptyInputThroughReshape) {
  ModelBuilder b(14);
  b.input("x", {-1, 3}).output("y");
  b.init_i64("shape", {2}, {3, 0});
  auto& r = b.node("Reshape", {"x", "shape"}, {"y"}, "reshape");
  ModelBuilder::attr_i(r, "allowzero", 1);
  ImportOptions opt;
  opt.shapes = {{"x", {0, 3}}};
  const Network n = import_onnx(b.write("empty_reshape.onnx"), opt);
  ASSERT_EQ(n.inputs.size(), 1u);
  EXPECT_EQ(n.tensors[size_t(n.inputs[0])].dims, (Dims{0, 3}));
  ASSERT_EQ(n.outputs.size(), 1u);
  EXPECT_EQ(n.tensors[size_t(n.outputs[0])].dims, (Dims{3, 0}));
  EXPECT_EQ(count_kind(n, LayerKind::kShuffle), 0);
  ASSERT_EQ(n.layers.size(), 1u);
  EXPECT_EQ(n.layers[0].kind, LayerKind::kConstant);

  // Lowering: no step; the empty input has an arena block of its own (0 bytes, one aligned block),
  // the empty Constant is evaluated at compile like any constant.
  const ExecGraph g = lower(n, Numerics{}, LowerPolicy{});
  EXPECT_TRUE(g.steps.empty());
  const ExecValue& xv = g.values[size_t(n.inputs[0])];
  EXPECT_EQ(xv.bytes, 0);
  EXPECT_TRUE(xv.materialized);
  EXPECT_EQ(xv.offset, 0);
  EXPECT_EQ(g.arena_bytes, LowerPolicy{}.alignment);
  EXPECT_EQ(g.constants, (std::vector<LayerId>{0}));

  TensorMap in;
  in["x"] = HostTensor::zeros("x", DataType::kFloat, {0, 3});
  const TensorMap out = make_cpu_executor(n)->run(in);
  EXPECT_EQ(out.at("y").dims, (Dims{3, 0}));
  EXPECT_EQ(out.at("y").type, DataType::kFloat);
  EXPECT_EQ(out.at("y").data.size(), 0u);
  // The input's shape is still checked: a non-empty x is refused.
  in["x"] = HostTensor::zeros("x", DataType::kFloat, {1, 3});
  EXPECT_THROW(make_cpu_executor(n)->run(in), Error);
}

// The same model through the CLI: an engine built with --shape x:0x3, run on a 0x3 .npy, writes a
// 3x0 .npy (the engine format and `tandem run` carry empty tensors).
TEST(OnnxEmptyTensors, EngineBuildAndRunWriteAnEmptyNpy) {
  ModelBuilder b(14);
  b.input("x", {-1, 3}).output("y");
  b.init_i64("shape", {2}, {3, 0});
  auto& r = b.node("Reshape", {"x", "shape"}, {"y"}, "reshape");
  ModelBuilder::attr_i(r, "allowzero", 1);
  const std::string model = b.write("empty_cli.onnx"), dir = test::temp_dir();
  write_npy(dir + "/empty_x.npy", HostTensor::zeros("x", DataType::kFloat, {0, 3}));
  std::string out;
  ASSERT_EQ(test::run_cli("build '" + model + "' --shape x:0x3 -o '" + dir + "/empty.engine'", &out), 0) << out;
  ASSERT_EQ(test::run_cli("run '" + dir + "/empty.engine' --input x='" + dir + "/empty_x.npy' --output-dir '" + dir +
                              "/empty_out'", &out), 0) << out;
  const HostTensor y = read_npy(dir + "/empty_out/y.npy");
  EXPECT_EQ(y.dims, (Dims{3, 0}));
  EXPECT_EQ(y.type, DataType::kFloat);
  EXPECT_EQ(y.data.size(), 0u);
}

// ReduceSum over the empty axis 0 of a 0x3 input is [0, 0, 0] in ONNX: a value computed from an
// empty tensor, which tandem refuses at import, naming the node.
TEST(OnnxEmptyTensors, NonEmptyOutputFromAnEmptyInputIsAnImportError) {
  ModelBuilder b(13);
  b.input("x", {-1, 3}).output("y");
  b.init_i64("axes", {1}, {0});
  auto& s = b.node("ReduceSum", {"x", "axes"}, {"y"}, "sum");
  ModelBuilder::attr_i(s, "keepdims", 0);
  ImportOptions opt;
  opt.shapes = {{"x", {0, 3}}};
  const std::string e = import_error(b.write("empty_reduce.onnx"), opt);
  EXPECT_NE(e.find("empty_reduce.onnx: node 'sum' (ReduceSum): reads the empty tensor 'x' (dims 0x3)"), std::string::npos) << e;
  EXPECT_NE(e.find("computes nothing from an empty tensor"), std::string::npos) << e;
}

// --shape accepts a 0 (an empty tensor) and still refuses a negative dim.
TEST(OnnxEmptyTensors, ShapeArgumentAcceptsZero) {
  EXPECT_EQ(parse_shape_arg("x:0x3").second, (Dims{0, 3}));
  EXPECT_THROW(parse_shape_arg("x:-1x3"), Error);
}

// The IR's invariant, on hand-built networks: an empty tensor read by a layer, or written by a
// layer other than a Constant, is refused by verify() with the layer's name.
TEST(OnnxEmptyTensors, VerifyRefusesLayersOnEmptyTensors) {
  auto base = [] {
    Network n;
    Tensor x;
    x.name = "x";
    x.dims = {0, 3};
    x.is_input = true;
    n.inputs.push_back(n.add_tensor(x));
    return n;
  };
  {
    Network n = base();
    Tensor y;
    y.name = "y";
    y.dims = {0, 3};
    Layer relu;
    relu.name = "relu";
    relu.kind = LayerKind::kActivation;
    relu.params = ActivationParams{};
    relu.inputs = {n.inputs[0]};
    relu.outputs = {n.add_tensor(y)};
    n.add_layer(relu);
    n.outputs.push_back(relu.outputs[0]);
    try {
      n.verify();
      FAIL() << "verify accepted a layer reading an empty tensor";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("layer 'relu' (Activation): reads the empty tensor 'x' (dims 0x3)"),
                std::string::npos) << e.what();
    }
  }
  {  // an empty input, and an empty Constant as the output: valid
    Network n = base();
    Weights w;
    w.name = "w";
    w.dims = {3, 0};
    Tensor y;
    y.name = "y";
    y.dims = {3, 0};
    Layer c;
    c.name = "c";
    c.kind = LayerKind::kConstant;
    c.params = ConstantParams{n.add_weights(w)};
    c.outputs = {n.add_tensor(y)};
    n.add_layer(c);
    n.outputs.push_back(c.outputs[0]);
    EXPECT_NO_THROW(n.verify());
  }
}
