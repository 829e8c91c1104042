// Export patterns of torchvision classifiers and YOLOv5/v8 (opsets 11-17), built small, and a
// mutation fuzz: a damaged model must give an Error, never a crash.
#include <gtest/gtest.h>

#include <random>

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
void attr_axis(onnx::NodeProto& n, int64_t a) { ModelBuilder::attr_i(n, "axis", a); }
}  // namespace

// ConvNeXt block (opset 17): LayerNormalization, Erf-GELU, Permute, Linear via MatMul + Add.
TEST(OnnxPatterns, ConvNeXtBlock) {
  ModelBuilder b(17);
  b.input("x", {1, 8, 4, 4}).output("y");
  b.init("dw", {8, 1, 7, 7}, std::vector<float>(8 * 49, 0.01f));
  auto& c = b.node("Conv", {"x", "dw"}, {"c"}, "/dwconv/Conv");
  ModelBuilder::attr_i(c, "group", 8);
  ModelBuilder::attr_ints(c, "pads", {3, 3, 3, 3});
  auto& t = b.node("Transpose", {"c"}, {"t"}, "/Transpose");
  ModelBuilder::attr_ints(t, "perm", {0, 2, 3, 1});
  b.init("g", {8}, std::vector<float>(8, 1.f)).init("bt", {8}, std::vector<float>(8, 0.f));
  b.node("LayerNormalization", {"t", "g", "bt"}, {"ln"}, "/norm/LayerNormalization");
  b.init("W1", {8, 32}, std::vector<float>(256, 0.1f)).init("b1", {32}, std::vector<float>(32, 0.f));
  b.node("MatMul", {"ln", "W1"}, {"m1"}, "/pwconv1/MatMul");
  b.node("Add", {"b1", "m1"}, {"a1"}, "/pwconv1/Add");
  b.init("sqrt2", {}, {1.41421356f}).init("one", {}, {1.f}).init("half", {}, {0.5f});
  b.node("Div", {"a1", "sqrt2"}, {"d"}, "/act/Div");
  b.node("Erf", {"d"}, {"e"}, "/act/Erf");
  b.node("Add", {"e", "one"}, {"e1"}, "/act/Add");
  b.node("Mul", {"a1", "e1"}, {"m"}, "/act/Mul");
  b.node("Mul", {"m", "half"}, {"gelu"}, "/act/Mul_1");
  b.init("W2", {32, 8}, std::vector<float>(256, 0.1f));
  b.node("MatMul", {"gelu", "W2"}, {"m2"}, "/pwconv2/MatMul");
  auto& t2 = b.node("Transpose", {"m2"}, {"t2"}, "/Transpose_1");
  ModelBuilder::attr_ints(t2, "perm", {0, 3, 1, 2});
  b.node("Add", {"x", "t2"}, {"y"}, "/Add");
  Network n = import_onnx(b.write("convnext.onnx"));
  EXPECT_EQ(count(n, LayerKind::kNormalization), 1);
  EXPECT_EQ(count(n, LayerKind::kUnary), 1);
  EXPECT_EQ(count(n, LayerKind::kMatrixMultiply), 2);
  EXPECT_EQ(n.tensors[n.find_tensor("m1")].dims, (Dims{1, 4, 4, 32}));
  EXPECT_EQ(n.tensors[n.outputs[0]].dims, (Dims{1, 8, 4, 4}));
  // Bias [32] added to [1,4,4,32]: Constant + Shuffle [1,1,1,32] + ElementWise.
  const LayerId add = n.find_layer("/pwconv1/Add");
  ASSERT_GE(add, 0);
  EXPECT_EQ(n.tensors[n.layers[add].inputs[0]].dims, (Dims{1, 1, 1, 32}));
}

// YOLOv8 head pieces (opset 17): Split, Reshape/Transpose/Softmax DFL, dynamic-export shape
// arithmetic folded, Concat, Sigmoid, Resize with scales, MaxPool SPPF.
TEST(OnnxPatterns, YoloV8Head) {
  ModelBuilder b(17);
  b.input("images", {-1, 3, -1, -1}).output("out");
  b.init("w", {68, 3, 1, 1}, std::vector<float>(68 * 3, 0.1f));
  b.node("Conv", {"images", "w"}, {"feat"}, "/model.22/cv2/Conv");
  auto& mp = b.node("MaxPool", {"feat"}, {"mp"}, "/model.9/m/MaxPool");
  ModelBuilder::attr_ints(mp, "kernel_shape", {5, 5});
  ModelBuilder::attr_ints(mp, "pads", {2, 2, 2, 2});
  ModelBuilder::attr_ints(mp, "strides", {1, 1});
  auto& up = b.node("Resize", {"mp", "", "sc"}, {"up"}, "/model.10/Resize");
  ModelBuilder::attr_s(up, "mode", "nearest");
  ModelBuilder::attr_s(up, "coordinate_transformation_mode", "asymmetric");
  ModelBuilder::attr_s(up, "nearest_mode", "floor");
  b.init("sc", {4}, {1, 1, 2, 2});
  auto& ap = b.node("AveragePool", {"up"}, {"down"}, "/down/AveragePool");
  ModelBuilder::attr_ints(ap, "kernel_shape", {2, 2});
  ModelBuilder::attr_ints(ap, "strides", {2, 2});
  // Dynamic export: the flatten target comes from Shape -> Gather -> Unsqueeze -> Concat.
  b.node("Shape", {"down"}, {"sh"}, "/model.22/Shape");
  b.init_i64("i0", {}, {0});
  b.node("Gather", {"sh", "i0"}, {"n"}, "/model.22/Gather");
  b.init_i64("ax0", {1}, {0});
  b.node("Unsqueeze", {"n", "ax0"}, {"n1"}, "/model.22/Unsqueeze");
  b.init_i64("c68", {1}, {68});
  b.init_i64("m1", {1}, {-1});
  attr_axis(b.node("Concat", {"n1", "c68", "m1"}, {"shape"}, "/model.22/Concat"), 0);
  b.node("Reshape", {"down", "shape"}, {"flat"}, "/model.22/Reshape");
  b.init_i64("split", {2}, {64, 4});
  auto& sp = b.node("Split", {"flat", "split"}, {"box", "cls"}, "/model.22/Split");
  attr_axis(sp, 1);
  b.init_i64("dfl", {4}, {1, 4, 16, -1});
  b.node("Reshape", {"box", "dfl"}, {"box4"}, "/model.22/dfl/Reshape");
  auto& tr = b.node("Transpose", {"box4"}, {"boxt"}, "/model.22/dfl/Transpose");
  ModelBuilder::attr_ints(tr, "perm", {0, 2, 1, 3});
  attr_axis(b.node("Softmax", {"boxt"}, {"sm"}, "/model.22/dfl/Softmax"), 1);
  b.init("proj", {1, 16, 1, 1}, std::vector<float>(16, 1.f));
  b.node("Conv", {"sm", "proj"}, {"dflc"}, "/model.22/dfl/conv/Conv");
  b.init_i64("s3", {3}, {1, 4, -1});
  b.node("Reshape", {"dflc", "s3"}, {"boxes"}, "/model.22/dfl/Reshape_1");
  b.node("Sigmoid", {"cls"}, {"prob"}, "/model.22/Sigmoid");
  attr_axis(b.node("Concat", {"boxes", "prob"}, {"out"}, "/model.22/Concat_5"), 1);
  ImportOptions opt;
  opt.shapes.push_back(parse_shape_arg("images:1x3x32x32"));
  Network n = import_onnx(b.write("yolov8.onnx"), opt);
  EXPECT_EQ(n.tensors[n.outputs[0]].dims, (Dims{1, 8, 1024}));
  EXPECT_EQ(n.model.folded_nodes.size(), 4u);
  EXPECT_EQ(count(n, LayerKind::kSlice), 2);
  EXPECT_EQ(count(n, LayerKind::kSoftMax), 1);
  EXPECT_EQ(n.layers[n.find_layer("/model.10/Resize")].as<ResizeParams>().scales, (std::vector<float>{1, 1, 2, 2}));
  EXPECT_EQ(n.layers[n.find_layer("/model.22/Split")].kind, LayerKind::kSlice);
  EXPECT_EQ(n.layers[n.find_layer("/model.22/Split_0")].kind, LayerKind::kSlice);
}

// MobileNetV3 / EfficientNet / ShuffleNet / SqueezeNet / DenseNet pieces at opset 11-13.
TEST(OnnxPatterns, ClassifierPieces) {
  ModelBuilder b(11);
  b.input("x", {1, 4, 8, 8}).output("logits");
  b.node("HardSwish", {"x"}, {"hs"}, "hs");                         // mobilenet v3 (opset 14 op; accepted)
  b.node("GlobalAveragePool", {"hs"}, {"gap"}, "gap");
  b.init("w", {4, 4, 1, 1}, std::vector<float>(16, 0.1f));
  b.node("Conv", {"gap", "w"}, {"se"}, "se");
  b.node("HardSigmoid", {"se"}, {"hsig"}, "hsig");
  b.node("Mul", {"hs", "hsig"}, {"scaled"}, "scale");               // squeeze-excite
  b.node("Sigmoid", {"scaled"}, {"sg"}, "sg");
  b.node("Mul", {"scaled", "sg"}, {"silu"}, "silu");               // efficientnet SiLU stays 2 layers
  b.init_i64("s5", {5}, {1, 2, 2, 8, 8});
  b.node("Reshape", {"silu", "s5"}, {"r5"}, "shuffle_reshape");     // shufflenet channel shuffle
  auto& t = b.node("Transpose", {"r5"}, {"t5"}, "shuffle_transpose");
  ModelBuilder::attr_ints(t, "perm", {0, 2, 1, 3, 4});
  b.init_i64("s4", {4}, {1, 4, 8, 8});
  b.node("Reshape", {"t5"}, {"r4"}, "shuffle_back").add_input("s4");
  attr_axis(b.node("Concat", {"r4", "x"}, {"cat"}, "dense_concat"), 1);  // densenet / squeezenet fire
  auto& mp = b.node("MaxPool", {"cat"}, {"mp"}, "pool");
  ModelBuilder::attr_ints(mp, "kernel_shape", {3, 3});
  ModelBuilder::attr_ints(mp, "strides", {2, 2});
  ModelBuilder::attr_i(mp, "ceil_mode", 1);                        // squeezenet
  b.node("Dropout", {"mp"}, {"dr"}, "dropout");
  b.node("Flatten", {"dr"}, {"flat"}, "flatten");
  b.init("fc.w", {10, 128}, std::vector<float>(1280, 0.01f)).init("fcb", {10}, std::vector<float>(10, 0.f));
  auto& g = b.node("Gemm", {"flat", "fc.w", "fcb"}, {"logits"}, "fc");
  ModelBuilder::attr_i(g, "transB", 1);
  Network n = import_onnx(b.write("classifier.onnx"));
  EXPECT_EQ(n.tensors[n.find_tensor("mp")].dims, (Dims{1, 8, 4, 4}));  // ceil: (8-3+1)/2+1 = 4
  EXPECT_EQ(n.tensors[n.outputs[0]].dims, (Dims{1, 10}));
  EXPECT_EQ(n.layers[n.find_layer("silu")].kind, LayerKind::kElementWise);
  EXPECT_EQ(n.layers[n.find_layer("gap")].kind, LayerKind::kReduce);
  EXPECT_EQ(n.layers[n.find_layer("dropout")].kind, LayerKind::kIdentity);
  EXPECT_EQ(n.layers[n.find_layer("fc")].as<ElementWiseParams>().op, ElementWiseOp::kSum);
}

// Any damage of a valid model: an Error naming the file, or a network that passes verify()
// (ids in range, topological order, static positive dims), never a crash.
TEST(OnnxPatterns, MutationFuzz) {
  ModelBuilder b(13);
  b.input("x", {1, 3, 8, 8}).output("y");
  b.init("w", {4, 3, 3, 3}, std::vector<float>(108, 0.1f));
  auto& c = b.node("Conv", {"x", "w"}, {"c"}, "conv");
  ModelBuilder::attr_ints(c, "pads", {1, 1, 1, 1});
  b.init_i64("shape", {2}, {1, -1});
  b.node("Reshape", {"c", "shape"}, {"r"}, "reshape");
  b.init_i64("st", {1}, {0}).init_i64("en", {1}, {10});
  b.node("Slice", {"r", "st", "en"}, {"y"}, "slice");
  const std::string good = b.proto().SerializeAsString();
  ASSERT_NO_THROW(import_onnx(test::write_bytes("fuzz.onnx", good)).verify()) << "the undamaged model must import";
  std::mt19937 rng(7);
  int errors = 0, ok = 0;
  for (int i = 0; i < 2000; ++i) {
    std::string bad = good;
    const int flips = 1 + static_cast<int>(rng() % 3);
    for (int f = 0; f < flips; ++f) bad[rng() % bad.size()] = static_cast<char>(rng());
    const std::string p = test::write_bytes("fuzz.onnx", bad);
    Network n;
    try {
      n = import_onnx(p);
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("fuzz.onnx"), std::string::npos) << "iteration " << i << ": " << e.what();
      ++errors;
      continue;
    }
    EXPECT_NO_THROW(n.verify()) << "iteration " << i << ": the importer returned a network that fails verify()";
    ++ok;
  }
  // Both outcomes occur (a single changed byte often lands in a float of a weight).
  EXPECT_GT(errors, 100);
  EXPECT_GT(ok, 100);
}
