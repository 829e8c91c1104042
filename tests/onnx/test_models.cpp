// Golden layer counts for the real PP-OCR models, derived by hand from their ONNX op counts and
// the mapping rules (docs/onnx-import.md). The models come from scripts/fetch-data.sh.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "model_builder.h"
#include "tandem/onnx.h"

using namespace tandem;

namespace {
std::map<std::string, int> kinds(const Network& n) {
  std::map<std::string, int> m;
  for (const auto& l : n.layers) ++m[std::string(to_string(l.kind))];
  return m;
}
}  // namespace

// ch_PP-OCRv4_det_infer.onnx (opset 11, input 'x'), ONNX node counts:
//   342 Constant, 89 Add, 86 Mul, 62 Conv, 24 Div, 24 Clip, 12 Relu, 10 HardSigmoid,
//   10 GlobalAveragePool, 6 Resize, 3 BatchNormalization, 2 ConvTranspose, 1 Sigmoid, 1 Concat.
// Mapping:
//   Conv -> Convolution                                 62
//   ConvTranspose (no output_padding) -> Deconvolution   2
//   BatchNormalization (constant params) -> Scale        3
//   Clip 24 + Relu 12 + HardSigmoid 10 + Sigmoid 1 -> Activation 47
//   GlobalAveragePool -> Reduce(AVG)                    10
//   Resize -> Resize                                     6
//   Concat -> Concatenation                              1
//   Add 89 + Mul 86 + Div 24 -> ElementWise            199
//   Constant nodes: no layer by themselves; each distinct Constant value used as an operand of
//   Add/Mul/Div becomes one Constant layer: 154 (counted in the ONNX file: 154 uses, 154 distinct);
//   each such use whose rank is below 4 gets a broadcast Shuffle: 152 (2 of them are already 4-D).
//   Nothing is folded (no Shape subgraphs); the Constant nodes are not listed as folded.
//   Total 62+2+3+47+10+6+1+199+154+152 = 636.
TEST(OnnxModels, DetGolden) {
  const std::string path = test::models_dir() + "/ch_PP-OCRv4_det_infer.onnx";
  ASSERT_TRUE(std::filesystem::exists(path)) << path << " missing: run scripts/fetch-data.sh";
  ImportOptions opt;
  opt.shapes.push_back(parse_shape_arg("x:1x3x640x640"));
  Network n = import_onnx(path, opt);
  const std::map<std::string, int> expect = {
      {"Convolution", 62}, {"Deconvolution", 2}, {"Scale", 3},   {"Activation", 47}, {"Reduce", 10},
      {"Resize", 6},       {"Concatenation", 1}, {"ElementWise", 199}, {"Constant", 154}, {"Shuffle", 152}};
  EXPECT_EQ(kinds(n), expect);
  EXPECT_EQ(n.layers.size(), 636u);
  EXPECT_TRUE(n.model.folded_nodes.empty());
  ASSERT_EQ(n.outputs.size(), 1u);
  EXPECT_EQ(n.tensors[n.outputs[0]].name, "sigmoid_0.tmp_0");
  EXPECT_EQ(n.tensors[n.outputs[0]].dims, (Dims{1, 1, 640, 640}));
  EXPECT_EQ(n.layers[0].name, "p2o.Conv.0");
  // Re-running shape inference over the IR reproduces every tensor's dims and type.
  Network copy = n;
  for (auto& t : copy.tensors)
    if (t.producer >= 0) t.dims.clear();
  infer_shapes(copy);
  for (size_t i = 0; i < n.tensors.size(); ++i) {
    EXPECT_EQ(copy.tensors[i].dims, n.tensors[i].dims) << n.tensors[i].name;
    EXPECT_EQ(copy.tensors[i].type, n.tensors[i].type) << n.tensors[i].name;
  }
}

// ch_ppocr_mobile_v2.0_cls_infer.onnx (opset 9, input 'x'), ONNX node counts:
//   250 Constant, 53 Conv, 35 BatchNormalization, 27 Mul, 26 Add, 18 Div, 18 Clip, 15 Relu,
//   10 GlobalAveragePool, 9 HardSigmoid, 3 Cast, 1 each of Softmax, Slice, Shape, Reshape,
//   MaxPool, MatMul, Concat.
// Mapping:
//   Conv -> Convolution 53; BatchNormalization -> Scale 35
//   Clip 18 + Relu 15 + HardSigmoid 9 -> Activation 42
//   Mul 27 + Add 26 + Div 18 -> ElementWise 71; GlobalAveragePool -> Reduce 10; MaxPool -> Pooling 1
//   MatMul -> MatrixMultiply 1 (its constant B fc_0.w_0 -> Constant)
//   Constant layers: 37 distinct Constant operands of Add/Mul/Div + fc_0.w_0 = 38
//   Shuffle: 37 broadcast Shuffles (all 37 operands have rank < 4) + Reshape 1
//            + Softmax at opset 9: flatten Shuffle and reshape-back Shuffle 2 = 40
//   SoftMax 1
//   The shape subgraph Shape -> Cast -> Slice -> Cast/Cast -> Concat (6 nodes, the Reshape's
//   target shape) folds: no layers, listed in folded_nodes. (The third Cast sits on a constant.)
//   Total 53+35+42+71+10+1+1+38+40+1 = 292.
TEST(OnnxModels, ClsGolden) {
  const std::string path = test::models_dir() + "/ch_ppocr_mobile_v2.0_cls_infer.onnx";
  ASSERT_TRUE(std::filesystem::exists(path)) << path << " missing: run scripts/fetch-data.sh";
  ImportOptions opt;
  opt.shapes.push_back(parse_shape_arg("x:1x3x48x192"));
  Network n = import_onnx(path, opt);
  const std::map<std::string, int> expect = {
      {"Convolution", 53}, {"Scale", 35},   {"Activation", 42},    {"ElementWise", 71}, {"Reduce", 10},
      {"Pooling", 1},      {"MatrixMultiply", 1}, {"Constant", 38}, {"Shuffle", 40},     {"SoftMax", 1}};
  EXPECT_EQ(kinds(n), expect);
  EXPECT_EQ(n.layers.size(), 292u);
  EXPECT_EQ(n.model.folded_nodes.size(), 6u);
  ASSERT_EQ(n.outputs.size(), 1u);
  EXPECT_EQ(n.tensors[n.outputs[0]].name, "softmax_0.tmp_0");
  EXPECT_EQ(n.tensors[n.outputs[0]].dims, (Dims{1, 2}));
}

TEST(OnnxModels, RecImports) {
  const std::string path = test::models_dir() + "/ch_PP-OCRv4_rec_infer.onnx";
  ASSERT_TRUE(std::filesystem::exists(path)) << path << " missing: run scripts/fetch-data.sh";
  ImportOptions opt;
  opt.shapes.push_back(parse_shape_arg("x:1x3x48x320"));
  Network n = import_onnx(path, opt);
  EXPECT_EQ(n.tensors[n.outputs[0]].dims, (Dims{1, 40, 6625}));
  EXPECT_FALSE(n.model.folded_nodes.empty());
}

TEST(OnnxModels, InspectCliJson) {
  const std::string path = test::models_dir() + "/ch_ppocr_mobile_v2.0_cls_infer.onnx";
  std::string out;
  ASSERT_EQ(test::run_cli("inspect " + path + " --shape x:1x3x48x192 --json", &out), 0) << out;
  EXPECT_NE(out.find("\"layers_by_kind\""), std::string::npos);
  EXPECT_NE(out.find("\"folded_nodes\""), std::string::npos);
  EXPECT_NE(out.find("\"softmax_0.tmp_0\""), std::string::npos);
  ASSERT_EQ(test::run_cli("inspect " + path + " --shape x:1x3x48x192", &out), 0) << out;
  EXPECT_NE(out.find("p2o.Conv.0"), std::string::npos);
}
