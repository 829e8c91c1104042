// Tensor names as TensorRT's ONNX parser gives them: `(Unnamed Layer* N) [Kind]_output` for the
// tensors the parser makes (Constant layers, helper layers), N the layer's index in the network,
// counting the layers the parser adds for nodes tandem folds. Checked against a cache TensorRT
// wrote, and against the parser's rules read from onnx-tensorrt (docs/quantization.md, point 3).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "model_builder.h"
#include "tandem/onnx.h"

using namespace tandem;
using tandem::test::ModelBuilder;

namespace {

// Float tensors in network order (inputs, then each layer's outputs): the names, in order, that
// a calibration cache of the network lists.
std::vector<std::string> float_tensor_names(const Network& n) {
  std::vector<std::string> names;
  for (TensorId t : n.inputs) names.push_back(n.tensors[t].name);
  for (const Layer& l : n.layers)
    for (TensorId t : l.outputs)
      if (n.tensors[t].type == DataType::kFloat) names.push_back(n.tensors[t].name);
  return names;
}

void conv(ModelBuilder& b, const std::string& in, const std::string& out, const std::string& name, int64_t k,
          int64_t c, int64_t ks) {
  b.init(name + ".weight", {k, c, ks, ks}, std::vector<float>(size_t(k * c * ks * ks), 0.1f));
  b.init(name + ".bias", {k}, std::vector<float>(size_t(k), 0.f));
  b.node("Conv", {in, name + ".weight", name + ".bias"}, {out}, "/" + name + "/Conv");
}

void maxpool(ModelBuilder& b, const std::string& in, const std::string& out, const std::string& name) {
  auto& n = b.node("MaxPool", {in}, {out}, "/" + name + "/MaxPool");
  ModelBuilder::attr_ints(n, "kernel_shape", {2, 2});
  ModelBuilder::attr_ints(n, "strides", {2, 2});
}

void gemm(ModelBuilder& b, const std::string& in, const std::string& out, const std::string& name, int64_t n_out,
          int64_t n_in) {
  b.init(name + ".weight", {n_out, n_in}, std::vector<float>(size_t(n_out * n_in), 0.1f));
  b.init(name + ".bias", {n_out}, std::vector<float>(size_t(n_out), 0.f));
  auto& g = b.node("Gemm", {in, name + ".weight", name + ".bias"}, {out}, "/" + name + "/Gemm");
  ModelBuilder::attr_i(g, "transB", 1);
}

}  // namespace

// A TRT-8510-EntropyCalibration2 cache published with its PyTorch model (an MNIST network:
// conv1, relu1, bn1, mp1, conv2 (+bn2, folded by the exporter), relu2, mp2, reshape(-1, C),
// fc1 (Gemm), relu3, fc2 (Gemm) -> y; "case 1" of the cache file quoted in
// docs/quantization.md): its first 20 lines name these tensors in this order. The Gemm
// weights and biases are Constant layers whose outputs keep the default name, and the numbers
// count every layer from the first convolution (layer 0).
TEST(TrtNames, GemmNetworkNamedAsTheTrt8510Cache) {
  ModelBuilder b(13);
  b.input("x", {1, 1, 8, 8}).output("y");
  conv(b, "x", "/conv1/Conv_output_0", "conv1", 2, 1, 3);
  b.node("Relu", {"/conv1/Conv_output_0"}, {"/relu1/Relu_output_0"}, "/relu1/Relu");
  for (const char* p : {"scale", "bias", "mean", "var"}) b.init(std::string("bn1.") + p, {2}, {1.f, 1.f});
  b.node("BatchNormalization", {"/relu1/Relu_output_0", "bn1.scale", "bn1.bias", "bn1.mean", "bn1.var"},
         {"/bn1/BatchNormalization_output_0"}, "/bn1/BatchNormalization");
  maxpool(b, "/bn1/BatchNormalization_output_0", "/mp1/MaxPool_output_0", "mp1");
  conv(b, "/mp1/MaxPool_output_0", "/conv2/Conv_output_0", "conv2", 4, 2, 2);
  b.node("Relu", {"/conv2/Conv_output_0"}, {"/relu2/Relu_output_0"}, "/relu2/Relu");
  maxpool(b, "/relu2/Relu_output_0", "/mp2/MaxPool_output_0", "mp2");
  b.init_i64("/Constant_output_0", {2}, {-1, 4});
  b.node("Reshape", {"/mp2/MaxPool_output_0", "/Constant_output_0"}, {"/Reshape_output_0"}, "/Reshape");
  gemm(b, "/Reshape_output_0", "/fc1/Gemm_output_0", "fc1", 3, 4);
  b.node("Relu", {"/fc1/Gemm_output_0"}, {"/relu3/Relu_output_0"}, "/relu3/Relu");
  gemm(b, "/relu3/Relu_output_0", "y", "fc2", 2, 3);
  Network n = import_onnx(b.write("mnist_like.onnx"));
  const std::vector<std::string> cache_lines = {
      "x", "/conv1/Conv_output_0", "/relu1/Relu_output_0", "/bn1/BatchNormalization_output_0",
      "/mp1/MaxPool_output_0", "/conv2/Conv_output_0", "/relu2/Relu_output_0", "/mp2/MaxPool_output_0",
      "/Reshape_output_0", "(Unnamed Layer* 8) [Constant]_output", "(Unnamed Layer* 9) [Matrix Multiply]_output",
      "(Unnamed Layer* 10) [Constant]_output", "(Unnamed Layer* 11) [Shuffle]_output", "/fc1/Gemm_output_0",
      "/relu3/Relu_output_0", "(Unnamed Layer* 14) [Constant]_output", "(Unnamed Layer* 15) [Matrix Multiply]_output",
      "(Unnamed Layer* 16) [Constant]_output", "(Unnamed Layer* 17) [Shuffle]_output", "y"};
  EXPECT_EQ(float_tensor_names(n), cache_lines);
  // The Constant layers themselves are named after the weights (ImporterContext::registerLayer).
  EXPECT_EQ(n.layers[8].name, "fc1.weight");
  EXPECT_EQ(n.layers[8].kind, LayerKind::kConstant);
}

// cls's reshape before its FC: Shape -> Cast -> Slice -> Cast, Constant -> Cast, Concat ->
// Reshape. tandem folds the shape computation; TensorRT 8.6's parser adds a layer for each of
// Shape, Cast, Slice, Cast, Cast and Concat, and a Constant layer for the Constant node's value
// (convertToTensor), 7 layers in all, before the Reshape's Shuffle: the FC's weights are layer 8.
TEST(TrtNames, FoldedShapeNodesCountAsTheParsersLayers) {
  ModelBuilder b(9);
  b.input("x", {1, 4, 1, 1}).output("y");
  b.node("Shape", {"x"}, {"s"}, "shape");
  ModelBuilder::attr_i(b.node("Cast", {"s"}, {"s32"}, "cast0"), "to", onnx::TensorProto::INT32);
  auto& sl = b.node("Slice", {"s32"}, {"n"}, "slice");
  ModelBuilder::attr_ints(sl, "axes", {0});
  ModelBuilder::attr_ints(sl, "starts", {0});
  ModelBuilder::attr_ints(sl, "ends", {1});
  ModelBuilder::attr_i(b.node("Cast", {"n"}, {"n64"}, "cast1"), "to", onnx::TensorProto::INT64);
  auto& c = b.node("Constant", {}, {"minus_one"});
  auto* t = c.add_attribute();
  t->set_name("value");
  t->set_type(onnx::AttributeProto::TENSOR);
  t->mutable_t()->set_data_type(onnx::TensorProto::INT32);
  t->mutable_t()->add_dims(1);
  t->mutable_t()->add_int32_data(-1);
  t->mutable_t()->set_name("minus_one");
  ModelBuilder::attr_i(b.node("Cast", {"minus_one"}, {"m64"}, "cast2"), "to", onnx::TensorProto::INT64);
  ModelBuilder::attr_i(b.node("Concat", {"n64", "m64"}, {"shape"}, "concat"), "axis", 0);
  b.node("Reshape", {"x", "shape"}, {"flat"}, "reshape");
  b.init("W", {4, 2}, std::vector<float>(8, 0.5f));
  b.node("MatMul", {"flat", "W"}, {"y"}, "fc");
  Network n = import_onnx(b.write("folded_shape.onnx"));
  ASSERT_EQ(n.model.folded_nodes.size(), 6u);
  ASSERT_EQ(n.layers.size(), 3u);  // Shuffle, Constant, MatrixMultiply
  EXPECT_EQ(n.layers[1].name, "W");
  EXPECT_EQ(n.tensors[n.layers[1].outputs[0]].name, "(Unnamed Layer* 8) [Constant]_output");
}

// The import order is the parser's depth-first post-order (onnx-tensorrt toposort.hpp), which
// decides the numbers when the file's order is not topological: the Add's inputs are visited in
// input order, so `p` (node 2) comes before `q` (node 1).
TEST(TrtNames, ImportOrderIsTheParsersDepthFirstOrder) {
  ModelBuilder b(13);
  b.input("x", {1, 2}).output("y");
  b.node("Add", {"p", "q"}, {"y"}, "add");
  b.node("Relu", {"x"}, {"q"}, "relu_q");
  b.node("Sigmoid", {"x"}, {"p"}, "sigmoid_p");
  Network n = import_onnx(b.write("unordered.onnx"));
  ASSERT_EQ(n.layers.size(), 3u);
  EXPECT_EQ(n.layers[0].name, "sigmoid_p");
  EXPECT_EQ(n.layers[1].name, "relu_q");
  EXPECT_EQ(n.layers[2].name, "add");
}
