// Ops decomposed at import into existing layers (src/onnx/ops_decomposed.cpp): hand-worked values
// on the CPU backend (ties and wrap-arounds the node tests do not all cover), folding of constant
// inputs, layer naming, and one-line errors naming the node.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "model_builder.h"
#include "tandem/onnx.h"
#include "tandem/runtime.h"

using namespace tandem;
using tandem::test::ModelBuilder;

namespace {

HostTensor floats(const std::string& name, Dims d, const std::vector<float>& v) {
  HostTensor t = HostTensor::zeros(name, DataType::kFloat, d);
  std::memcpy(t.data.data(), v.data(), v.size() * 4);
  return t;
}

std::vector<double> values(const HostTensor& t) {
  std::vector<double> v;
  for (int64_t i = 0; i < t.count(); ++i) {
    switch (t.type) {
      case DataType::kFloat: v.push_back(t.f32()[i]); break;
      case DataType::kInt64: v.push_back(double(reinterpret_cast<const int64_t*>(t.data.data())[i])); break;
      case DataType::kInt32: v.push_back(reinterpret_cast<const int32_t*>(t.data.data())[i]); break;
      case DataType::kBool: case DataType::kUInt8: v.push_back(t.data[i]); break;
      case DataType::kInt8: v.push_back(reinterpret_cast<const int8_t*>(t.data.data())[i]); break;
      case DataType::kHalf: ADD_FAILURE() << "fp16 output"; break;
      case DataType::kBFloat16: ADD_FAILURE() << "bf16 output"; break;
    }
  }
  return v;
}

TensorMap run_cpu(const Network& n, const HostTensor& x) {
  TensorMap in;
  in[x.name] = x;
  return make_cpu_executor(n)->run(in);
}

std::string import_error(const std::string& path) {
  try {
    import_onnx(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(OnnxDecomposed, ArgMaxArgMinFirstAndLastIndexOnTies) {
  ModelBuilder b(13);
  b.input("x", {2, 4}).output("first").output("last").output("min").output("hard");
  auto& a = b.node("ArgMax", {"x"}, {"first"}, "amax");
  ModelBuilder::attr_i(a, "axis", 1);
  ModelBuilder::attr_i(a, "keepdims", 0);
  auto& l = b.node("ArgMax", {"x"}, {"last"}, "amax_last");
  ModelBuilder::attr_i(l, "axis", 1);
  ModelBuilder::attr_i(l, "select_last_index", 1);
  auto& m = b.node("ArgMin", {"x"}, {"min"}, "amin");
  ModelBuilder::attr_i(m, "axis", 0);
  b.node("Hardmax", {"x"}, {"hard"}, "hmax");
  Network n = import_onnx(b.write("argmax.onnx"));
  EXPECT_EQ(n.tensors[n.find_tensor("first")].type, DataType::kInt64);
  EXPECT_EQ(n.tensors[n.find_tensor("first")].dims, (Dims{2}));
  EXPECT_EQ(n.tensors[n.find_tensor("last")].dims, (Dims{2, 1}));
  TensorMap out = run_cpu(n, floats("x", {2, 4}, {1, 3, 3, 0, 5, 5, -1, 5}));
  EXPECT_EQ(values(out["first"]), (std::vector<double>{1, 0}));
  EXPECT_EQ(values(out["last"]), (std::vector<double>{2, 3}));
  EXPECT_EQ(values(out["min"]), (std::vector<double>{0, 0, 1, 0}));
  EXPECT_EQ(values(out["hard"]), (std::vector<double>{0, 1, 0, 0, 1, 0, 0, 0}));  // the first max only
}

TEST(OnnxDecomposed, PointwiseOpsHandWorked) {
  ModelBuilder b(13);
  b.input("x", {6}).output("shrink").output("celu").output("inf").output("posinf").output("nan");
  auto& s = b.node("Shrink", {"x"}, {"shrink"}, "shr");
  ModelBuilder::attr_f(s, "lambd", 1.5f);
  ModelBuilder::attr_f(s, "bias", 0.5f);
  auto& c = b.node("Celu", {"x"}, {"celu"}, "celu0");
  ModelBuilder::attr_f(c, "alpha", 2.f);
  b.node("IsInf", {"x"}, {"inf"}, "isinf");
  auto& p = b.node("IsInf", {"x"}, {"posinf"}, "isposinf");
  ModelBuilder::attr_i(p, "detect_negative", 0);
  b.node("IsNaN", {"x"}, {"nan"}, "isnan");
  Network n = import_onnx(b.write("pointwise.onnx"));
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  TensorMap out = run_cpu(n, floats("x", {6}, {-2.f, -1.f, 3.f, inf, -inf, nan}));
  const std::vector<double> sh = values(out["shrink"]);
  EXPECT_EQ(sh[0], -1.5);  // -2 < -1.5: x + bias
  EXPECT_EQ(sh[1], 0.0);   // |x| <= lambd
  EXPECT_EQ(sh[2], 2.5);   // 3 > 1.5: x - bias
  const std::vector<double> ce = values(out["celu"]);
  EXPECT_NEAR(ce[0], 2.0 * (std::exp(-1.0) - 1.0), 1e-6);  // alpha (exp(x / alpha) - 1)
  EXPECT_NEAR(ce[1], 2.0 * (std::exp(-0.5) - 1.0), 1e-6);
  EXPECT_EQ(ce[2], 3.0);
  EXPECT_EQ(values(out["inf"]), (std::vector<double>{0, 0, 0, 1, 1, 0}));
  EXPECT_EQ(values(out["posinf"]), (std::vector<double>{0, 0, 0, 1, 0, 0}));
  EXPECT_EQ(values(out["nan"]), (std::vector<double>{0, 0, 0, 0, 0, 1}));
  // The layers of one node: the last carries the node name, the others TensorRT's default names.
  const LayerId shr = n.find_layer("shr");
  ASSERT_GE(shr, 0);
  EXPECT_EQ(n.layers[shr].kind, LayerKind::kSelect);
  int of_node = 0;
  for (const Layer& l : n.layers) {
    if (l.onnx_node != "shr") continue;
    ++of_node;
    if (&l != &n.layers[shr]) {
      EXPECT_EQ(l.name.rfind("(Unnamed Layer* ", 0), 0u) << l.name;
    }
  }
  EXPECT_EQ(of_node, 6);  // Less, Greater, Sum, Sub, Select, Select
}

TEST(OnnxDecomposed, ReduceCompositesHandWorked) {
  ModelBuilder b(18);
  b.input("x", {2, 2}).output("l1").output("l2").output("ss").output("ls").output("lse");
  b.init_i64("axes", {1}, {1});
  b.node("ReduceL1", {"x", "axes"}, {"l1"});
  b.node("ReduceL2", {"x", "axes"}, {"l2"});
  b.node("ReduceSumSquare", {"x", "axes"}, {"ss"});
  b.node("ReduceLogSum", {"x", "axes"}, {"ls"});
  auto& e = b.node("ReduceLogSumExp", {"x", "axes"}, {"lse"});
  ModelBuilder::attr_i(e, "keepdims", 0);
  Network n = import_onnx(b.write("reduce.onnx"));
  EXPECT_EQ(n.tensors[n.find_tensor("l1")].dims, (Dims{2, 1}));
  EXPECT_EQ(n.tensors[n.find_tensor("lse")].dims, (Dims{2}));
  TensorMap out = run_cpu(n, floats("x", {2, 2}, {3, -4, 1, 2}));
  EXPECT_EQ(values(out["l1"]), (std::vector<double>{7, 3}));
  EXPECT_EQ(values(out["l2"]), (std::vector<double>{5, std::sqrt(5.f)}));
  EXPECT_EQ(values(out["ss"]), (std::vector<double>{25, 5}));
  EXPECT_NEAR(values(out["ls"])[1], std::log(3.0), 1e-6);
  EXPECT_NEAR(values(out["lse"])[0], std::log(std::exp(3.0) + std::exp(-4.0)), 1e-5);
}

TEST(OnnxDecomposed, OneHotWrapsNegativeIndicesAndDropsOutOfRange) {
  ModelBuilder b(11);
  b.input("i", {4}).output("y");
  b.init("depth", {}, {3}).init("vals", {2}, {-1, 7});
  auto& o = b.node("OneHot", {"i", "depth", "vals"}, {"y"}, "oh");
  ModelBuilder::attr_i(o, "axis", 0);
  Network n = import_onnx(b.write("onehot.onnx"));
  EXPECT_EQ(n.tensors[n.find_tensor("y")].dims, (Dims{3, 4}));
  TensorMap out = run_cpu(n, floats("i", {4}, {0, -1, 2, 5}));  // float indices, as ONNX allows
  // Column k is index k: 0 -> row 0, -1 -> row 2, 2 -> row 2, 5 -> none.
  EXPECT_EQ(values(out["y"]), (std::vector<double>{7, -1, -1, -1, -1, -1, -1, -1, -1, 7, 7, -1}));
}

TEST(OnnxDecomposed, ConstantInputsFold) {
  ModelBuilder b(14);
  b.input("x", {2, 3}).output("y");
  b.init("m", {2, 3}, {1, 2, 3, 4, 5, 6});
  b.init_i64("k", {}, {1});
  auto& t = b.node("Trilu", {"m", "k"}, {"tri"}, "tri0");
  ModelBuilder::attr_i(t, "upper", 0);
  b.node("EyeLike", {"m"}, {"eye"}, "eye0");
  b.init_i64("idx", {2}, {1, -1});
  b.init("depth", {}, {3}).init("vals", {2}, {0, 5});
  b.node("OneHot", {"idx", "depth", "vals"}, {"oh"}, "oh0");
  b.node("Add", {"tri", "eye"}, {"s"}, "add0");
  b.node("Add", {"s", "oh"}, {"s2"}, "add1");
  b.node("Add", {"x", "s2"}, {"y"}, "add2");
  Network n = import_onnx(b.write("fold_decomposed.onnx"));
  EXPECT_EQ(n.model.folded_nodes, (std::vector<std::string>{"tri0", "eye0", "oh0", "add0", "add1"}));
  ASSERT_EQ(n.layers.size(), 2u);  // Constant s2 + Add
  // tril k=1 of m: [[1,2,0],[4,5,6]]; + eye [[1,0,0],[0,1,0]]; + onehot [[0,5,0],[0,0,5]].
  TensorMap out = run_cpu(n, floats("x", {2, 3}, {0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(values(out["y"]), (std::vector<double>{2, 7, 0, 4, 6, 11}));
}

TEST(OnnxDecomposed, ErrorsNameTheNode) {
  {
    ModelBuilder b(13);
    b.input("i", {4}).input("d", {}).output("y");
    b.init("vals", {2}, {0, 1});
    b.node("OneHot", {"i", "d", "vals"}, {"y"}, "oh");
    const std::string msg = import_error(b.write("onehot_depth.onnx"));
    EXPECT_NE(msg.find("node 'oh' (OneHot): input 'd' (depth) must be a constant"), std::string::npos) << msg;
  }
  {
    ModelBuilder b(13);
    b.input("x", {2, 3, 4}).output("y");
    b.node("EyeLike", {"x"}, {"y"}, "eye");
    const std::string msg = import_error(b.write("eyelike_3d.onnx"));
    EXPECT_NE(msg.find("node 'eye' (EyeLike): input rank 3 is not supported (2-D only)"), std::string::npos) << msg;
  }
  {
    ModelBuilder b(13);
    b.input("x", {4}).output("y");
    auto& c = b.node("Celu", {"x"}, {"y"}, "celu");
    ModelBuilder::attr_f(c, "alpha", 0.f);
    const std::string msg = import_error(b.write("celu_alpha0.onnx"));
    EXPECT_NE(msg.find("node 'celu' (Celu): alpha 0 is not supported"), std::string::npos) << msg;
  }
  {
    ModelBuilder b(14);
    b.input("x", {300}).output("y");
    b.init_i64("axis", {}, {0});
    b.node("CumSum", {"x", "axis"}, {"y"}, "cs");
    const std::string msg = import_error(b.write("cumsum_long.onnx"));
    EXPECT_NE(msg.find("node 'cs' (CumSum): axis length 300 is over 256"), std::string::npos) << msg;
  }
}

// ONNX's CumSum node tests all feed double inputs (an importer limit), so the values are checked here.
TEST(OnnxDecomposed, CumSumSequentialSumsExclusiveReverse) {
  ModelBuilder b(14);
  b.input("x", {2, 3}).output("inc").output("exc").output("rev").output("rev_exc");
  b.init_i64("axis1", {}, {1});
  b.init_i64("axis0", {1}, {-2});
  b.node("CumSum", {"x", "axis1"}, {"inc"}, "cs");
  auto& e = b.node("CumSum", {"x", "axis1"}, {"exc"});
  ModelBuilder::attr_i(e, "exclusive", 1);
  auto& r = b.node("CumSum", {"x", "axis0"}, {"rev"});
  ModelBuilder::attr_i(r, "reverse", 1);
  auto& re = b.node("CumSum", {"x", "axis1"}, {"rev_exc"});
  ModelBuilder::attr_i(re, "reverse", 1);
  ModelBuilder::attr_i(re, "exclusive", 1);
  Network n = import_onnx(b.write("cumsum.onnx"));
  const LayerId cs = n.find_layer("cs");
  ASSERT_GE(cs, 0);
  EXPECT_EQ(n.layers[cs].kind, LayerKind::kConcatenation);
  // 1e8 + 1 - 1e8 in fp32 is 0 summed in order (1e8 + 1 rounds to 1e8): the sequential order.
  TensorMap out = run_cpu(n, floats("x", {2, 3}, {1e8f, 1, -1e8f, 1, 2, 3}));
  EXPECT_EQ(values(out["inc"]), (std::vector<double>{1e8, 1e8, 0, 1, 3, 6}));
  EXPECT_EQ(values(out["exc"]), (std::vector<double>{0, 1e8, 1e8, 0, 1, 3}));
  // Reversed, 1 + 1e8 and 3 - 1e8 round back to +-1e8 in fp32 (spacing 8 there).
  EXPECT_EQ(values(out["rev"]), (std::vector<double>{1e8, 3, -1e8, 1, 2, 3}));
  EXPECT_EQ(values(out["rev_exc"]), (std::vector<double>{-1e8, -1e8, 0, 5, 3, 0}));
}
