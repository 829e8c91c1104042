// NonZero and NMS, the layers whose output shape depends on the data, with hand-worked values:
// the kernels (on the CPU backend; compiled again with TANDEM_TEST_CUDA for the CUDA backend, label
// gpu), the static bound and the extent the executors return, and (CPU build only) the importer's
// rules and an engine's run returning the real shape.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "../common/net_builder.h"
#include "tandem/runtime.h"
#include "tandem/shape_inference.h"
#ifdef TANDEM_TEST_CUDA
#include "tandem/cuda.h"
#else
#include <filesystem>

#include "model_builder.h"
#include "tandem/builder.h"
#include "tandem/engine.h"
#include "tandem/npy.h"
#include "tandem/onnx.h"
#endif

using namespace tandem;

namespace {

struct Net : test::NetBuilder {
  TensorId layer(LayerKind k, LayerParams p, std::vector<TensorId> ins) {
    Layer l;
    l.name = "op";
    l.kind = k;
    l.inputs = std::move(ins);
    l.params = std::move(p);
    l.outputs = {n.add_tensor({"y", DataType::kInt64, {1}})};
    n.add_layer(l);
    infer_shapes(n);
    n.tensors[l.outputs[0]].is_output = true;
    n.outputs.push_back(l.outputs[0]);
    n.verify();
    return l.outputs[0];
  }
  HostTensor run(const TensorMap& in) {
#ifdef TANDEM_TEST_CUDA
    return make_cuda_executor(n)->run(in).at("y");
#else
    return make_cpu_executor(n)->run(in).at("y");
#endif
  }
};

template <class T>
HostTensor host(const std::string& name, DataType t, Dims d, const std::vector<T>& v) {
  HostTensor h = HostTensor::zeros(name, t, std::move(d));
  std::memcpy(h.data.data(), v.data(), v.size() * sizeof(T));
  return h;
}

std::vector<int64_t> values(const HostTensor& h) {
  EXPECT_EQ(h.type, DataType::kInt64);
  std::vector<int64_t> v(size_t(h.count()));
  if (!v.empty()) std::memcpy(v.data(), h.data.data(), v.size() * sizeof(int64_t));  // no memcpy from null
  return v;
}

class DynamicShapes : public ::testing::Test {
 protected:
  void SetUp() override {
#ifdef TANDEM_TEST_CUDA
    std::string why;
    if (!cuda_available(&why)) GTEST_SKIP() << why << ": skipped";
#endif
  }
};

// [[1, 0, 3], [0, 0, -2]]: non-zero at (0,0), (0,2), (1,2); the bound is [2, 6].
TEST_F(DynamicShapes, NonZeroCoordinatesInRowMajorOrder) {
  Net b;
  const TensorId x = b.input("x", {2, 3}, DataType::kInt32);
  const TensorId y = b.layer(LayerKind::kNonZero, NoParams{}, {x});
  EXPECT_EQ(b.n.tensors[y].dims, (Dims{2, 6}));
  EXPECT_EQ(data_dependent_axis(b.n, y), 1);
  const HostTensor out = b.run({{"x", host<int32_t>("x", DataType::kInt32, {2, 3}, {1, 0, 3, 0, 0, -2})}});
  EXPECT_EQ(out.dims, (Dims{2, 3}));
  EXPECT_EQ(values(out), (std::vector<int64_t>{0, 0, 1, 0, 2, 2}));
}

// -0.0 is zero, NaN is not; none non-zero gives [rank, 0].
TEST_F(DynamicShapes, NonZeroFloatSignAndNaNAndNone) {
  Net b;
  const TensorId x = b.input("x", {4});
  b.layer(LayerKind::kNonZero, NoParams{}, {x});
  const float nan = std::numeric_limits<float>::quiet_NaN();
  HostTensor out = b.run({{"x", host<float>("x", DataType::kFloat, {4}, {-0.f, nan, 0.f, 2.5f})}});
  EXPECT_EQ(out.dims, (Dims{1, 2}));
  EXPECT_EQ(values(out), (std::vector<int64_t>{1, 3}));
  out = b.run({{"x", host<float>("x", DataType::kFloat, {4}, {0.f, -0.f, 0.f, 0.f})}});
  EXPECT_EQ(out.dims, (Dims{1, 0}));
  EXPECT_TRUE(out.data.empty());
}

// Boxes (y1, x1, y2, x2): A = [0, 0, 1, 1] score 0.9, B = [0, 0.5, 1, 1.5] score 0.8 (A and B
// overlap on x in [0.5, 1], y in [0, 1]: intersection 0.5, union 1 + 1 - 0.5 = 1.5, IoU 1/3),
// C = [5, 5, 6, 6] score 0.95 (overlaps nothing).
struct ThreeBoxes {
  Net b;
  TensorId y = -1;
  explicit ThreeBoxes(bool center_sizes = false) {
    const TensorId boxes = b.input("boxes", {1, 3, 4});
    const TensorId scores = b.input("scores", {1, 3, 1});
    const TensorId max = b.input("max", {1}, DataType::kInt64);
    const TensorId iou = b.input("iou", {});
    const TensorId score = b.input("score", {});
    y = b.layer(LayerKind::kNMS, NMSParams{center_sizes}, {boxes, scores, max, iou, score});
  }
  std::vector<int64_t> run(float iou, float score_threshold = 0.f, int64_t max = 3, bool center_sizes = false) {
    const std::vector<float> corners = {0, 0, 1, 1, 0, 0.5f, 1, 1.5f, 5, 5, 6, 6};
    // The same boxes as (x_center, y_center, width, height).
    const std::vector<float> centers = {0.5f, 0.5f, 1, 1, 1.f, 0.5f, 1, 1, 5.5f, 5.5f, 1, 1};
    TensorMap in = {{"boxes", host<float>("boxes", DataType::kFloat, {1, 3, 4}, center_sizes ? centers : corners)},
                    {"scores", host<float>("scores", DataType::kFloat, {1, 3, 1}, {0.9f, 0.8f, 0.95f})},
                    {"max", host<int64_t>("max", DataType::kInt64, {1}, {max})},
                    {"iou", host<float>("iou", DataType::kFloat, {}, {iou})},
                    {"score", host<float>("score", DataType::kFloat, {}, {score_threshold})}};
    const HostTensor out = b.run(in);
    EXPECT_EQ(out.dims.size(), 2u);
    EXPECT_EQ(out.dims.back(), 3);
    return values(out);
  }
};

TEST_F(DynamicShapes, NmsSuppressesByIouComputedByHand) {
  ThreeBoxes t;
  EXPECT_EQ(t.b.n.tensors[t.y].dims, (Dims{3, 3}));  // runtime max boxes: 1 batch * 1 class * 3 boxes
  // IoU(A, B) = 1/3 > 0.3: B suppressed. C first (the highest score), then A.
  EXPECT_EQ(t.run(0.3f), (std::vector<int64_t>{0, 0, 2, 0, 0, 0}));
  // 1/3 <= 0.34: all three, by score.
  EXPECT_EQ(t.run(0.34f), (std::vector<int64_t>{0, 0, 2, 0, 0, 0, 0, 0, 1}));
  // Score threshold 0.85: B (0.8) is no candidate; a score must exceed the threshold (0.9 > 0.9 is false).
  EXPECT_EQ(t.run(0.34f, 0.85f), (std::vector<int64_t>{0, 0, 2, 0, 0, 0}));
  EXPECT_EQ(t.run(0.34f, 0.9f), (std::vector<int64_t>{0, 0, 2}));
  // Max boxes per class 1 (a run-time input), and 0.
  EXPECT_EQ(t.run(0.34f, 0.f, 1), (std::vector<int64_t>{0, 0, 2}));
  EXPECT_EQ(t.run(0.34f, 0.f, 0), (std::vector<int64_t>{}));
}

TEST_F(DynamicShapes, NmsCenterSizesGiveTheSameBoxes) {
  ThreeBoxes t(true);
  EXPECT_EQ(t.run(0.3f, 0.f, 3, true), (std::vector<int64_t>{0, 0, 2, 0, 0, 0}));
  EXPECT_EQ(t.run(0.34f, 0.f, 3, true), (std::vector<int64_t>{0, 0, 2, 0, 0, 0, 0, 0, 1}));
}

// Two batch items, two classes, equal scores: rows by batch, then class; ties take the lower box
// index first. Identical boxes (IoU 1) suppress each other; a constant max boxes of 1 makes the
// bound 2 * 2 * 1 = 4 rows.
TEST_F(DynamicShapes, NmsOrderTiesAndConstantBound) {
  Net b;
  const TensorId boxes = b.input("boxes", {2, 2, 4});
  const TensorId scores = b.input("scores", {2, 2, 2});
  const int64_t one = 1;
  const float zero = 0.f, half = 0.5f;
  const TensorId max = b.constant("max", DataType::kInt64, {1}, &one);
  const TensorId iou = b.constant("iou", DataType::kFloat, {1}, &half);
  const TensorId score = b.constant("score", DataType::kFloat, {1}, &zero);
  const TensorId y = b.layer(LayerKind::kNMS, NMSParams{}, {boxes, scores, max, iou, score});
  EXPECT_EQ(b.n.tensors[y].dims, (Dims{4, 3}));
  // Batch 0: two identical boxes; class 0 scores 0.5, 0.5 (tie: box 0), class 1 scores 0.2, 0.7.
  // Batch 1: class 0 scores 0 (not above 0: none), class 1 scores 0.3, 0.3 (tie: box 0).
  const HostTensor out = b.run(
      {{"boxes", host<float>("boxes", DataType::kFloat, {2, 2, 4}, {0, 0, 2, 2, 0, 0, 2, 2, 0, 0, 1, 1, 3, 3, 4, 4})},
       {"scores", host<float>("scores", DataType::kFloat, {2, 2, 2}, {0.5f, 0.2f, 0.5f, 0.7f, 0, 0.3f, 0, 0.3f})}});
  EXPECT_EQ(out.dims, (Dims{3, 3}));
  EXPECT_EQ(values(out), (std::vector<int64_t>{0, 0, 0, 0, 1, 1, 1, 1, 0}));
}

// A data-dependent tensor has no readers: verify() says which tensor and which layer made it.
TEST_F(DynamicShapes, VerifyRefusesAReader) {
  Net b;
  const TensorId x = b.input("x", {3}, DataType::kInt32);
  const TensorId y = b.layer(LayerKind::kNonZero, NoParams{}, {x});
  Layer id;
  id.name = "reader";
  id.kind = LayerKind::kIdentity;
  id.inputs = {y};
  id.outputs = {b.n.add_tensor({"z", DataType::kInt64, {1, 3}})};
  b.n.add_layer(id);
  try {
    b.n.verify();
    FAIL() << "verify() accepted a reader of a data-dependent tensor";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("layer 'reader': input 'y' has a data-dependent shape (NonZero 'op')"),
              std::string::npos)
        << e.what();
  }
}

#ifndef TANDEM_TEST_CUDA
// ---- import ---------------------------------------------------------------------------------------
test::ModelBuilder nms_model(bool with_max) {
  test::ModelBuilder m(11);
  m.input("boxes", {1, 3, 4}).input("scores", {1, 1, 3});
  std::vector<std::string> in = {"boxes", "scores"};
  if (with_max) {
    m.init_i64("max", {1}, {2});
    in.push_back("max");
  }
  m.node("NonMaxSuppression", in, {"sel"}, "nms");
  m.output("sel");
  return m;
}

TEST(DynamicShapesImport, AReaderIsOneErrorNamingBothNodes) {
  test::ModelBuilder m(13);
  m.input("x", {2, 3});
  m.node("NonZero", {"x"}, {"nz"}, "find");
  auto& t = m.node("Transpose", {"nz"}, {"t"}, "flip");
  test::ModelBuilder::attr_ints(t, "perm", {1, 0});
  m.output("t");
  const std::string path = m.write("nonzero_reader.onnx");
  try {
    import_onnx(path);
    FAIL() << "imported a reader of NonZero's output";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), path + ": node 'flip' (Transpose): consumes the data-dependent output of NonZero "
                                           "'find'; tandem supports these only as network outputs");
  }
}

// Absent thresholds become constants (IoU 0, score -inf); a constant max boxes bounds the rows.
TEST(DynamicShapesImport, NmsDefaultsAndBound) {
  const Network net = import_onnx(nms_model(true).write("nms_defaults.onnx"));
  const TensorId sel = net.find_tensor("sel");
  ASSERT_GE(sel, 0);
  EXPECT_EQ(net.tensors[sel].dims, (Dims{2, 3}));  // 1 * 1 * min(3, 2)
  EXPECT_EQ(net.tensors[sel].type, DataType::kInt64);
  EXPECT_EQ(data_dependent_axis(net, sel), 0);
  const Layer& l = net.layers[size_t(net.tensors[sel].producer)];
  EXPECT_EQ(l.kind, LayerKind::kNMS);
  ASSERT_EQ(l.inputs.size(), 5u);
  EXPECT_EQ(net.tensors[l.inputs[1]].dims, (Dims{1, 3, 1}));  // scores transposed to [B, N, C]
  // Boxes far apart: IoU 0 never exceeds 0; scores -1, 2, 0.5: every box is a candidate (-1 too).
  TensorMap in = {{"boxes", host<float>("boxes", DataType::kFloat, {1, 3, 4}, {0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5})},
                  {"scores", host<float>("scores", DataType::kFloat, {1, 1, 3}, {-1.f, 2.f, 0.5f})}};
  const HostTensor out = make_cpu_executor(net)->run(in).at("sel");
  EXPECT_EQ(out.dims, (Dims{2, 3}));
  EXPECT_EQ(values(out), (std::vector<int64_t>{0, 0, 1, 0, 0, 2}));
  // No max_output_boxes_per_class: ONNX's 0, no box is ever selected: the empty [0, 3] constant.
  const Network none = import_onnx(nms_model(false).write("nms_no_max.onnx"));
  const TensorId empty = none.find_tensor("sel");
  ASSERT_GE(empty, 0);
  EXPECT_EQ(none.tensors[size_t(empty)].dims, (Dims{0, 3}));
  EXPECT_EQ(none.layers[size_t(none.tensors[size_t(empty)].producer)].kind, LayerKind::kConstant);
  const HostTensor none_out = make_cpu_executor(none)->run(in).at("sel");
  EXPECT_EQ(none_out.dims, (Dims{0, 3}));
  EXPECT_EQ(none_out.type, DataType::kInt64);
}

// NonZero of a constant is folded at import: a constant of the exact shape, nothing data-dependent.
TEST(DynamicShapesImport, NonZeroOfAConstantFolds) {
  test::ModelBuilder m(13);
  m.input("x", {1, 2});
  m.init("c", {2, 2}, {0, 3, 4, 0});
  m.node("NonZero", {"c"}, {"nz"}, "find");
  test::ModelBuilder::attr_i(m.node("Cast", {"nz"}, {"f"}, "to_float"), "to", 1);
  m.node("Add", {"x", "f"}, {"y"}, "add");
  m.output("y");
  const Network net = import_onnx(m.write("nonzero_const.onnx"));
  const HostTensor y = make_cpu_executor(net)->run({{"x", host<float>("x", DataType::kFloat, {1, 2}, {10, 20})}}).at("y");
  ASSERT_EQ(y.dims, (Dims{2, 2}));  // coordinates (0, 1) and (1, 0): [[0, 1], [1, 0]] + [10, 20]
  EXPECT_EQ(std::vector<float>(y.f32(), y.f32() + 4), (std::vector<float>{10, 21, 11, 20}));
}

// An engine built from the model returns the real shape through its ExecutionContext.
TEST(DynamicShapesImport, EngineRunReturnsTheRealShape) {
  const std::string onnx = nms_model(true).write("nms_engine.onnx");
  const std::string path = test::temp_dir() + "/nms.engine";
  BuildOptions opt;
  opt.optimization_level = 0;
  build_engine(onnx, path, opt);
  auto engine = Engine::load(path);
  auto ctx = engine->create_context();
  TensorMap in = {{"boxes", host<float>("boxes", DataType::kFloat, {1, 3, 4}, {0, 0, 1, 1, 0, 0, 1, 1, 4, 4, 5, 5})},
                  {"scores", host<float>("scores", DataType::kFloat, {1, 1, 3}, {0.9f, 0.8f, 0.7f})}};
  const HostTensor out = ctx->run(in).at("sel");
  EXPECT_EQ(out.dims, (Dims{2, 3}));  // box 1 equals box 0 (IoU 1 > 0): suppressed
  EXPECT_EQ(values(out), (std::vector<int64_t>{0, 0, 0, 0, 0, 2}));
  in["scores"] = host<float>("scores", DataType::kFloat, {1, 1, 3}, {0.9f, -1.f, -1.f});  // no threshold: all candidates
  EXPECT_EQ(ctx->run(in).at("sel").dims, (Dims{2, 3}));
  std::filesystem::remove(path);
}

// tandem run writes the real shape: NonZero of [[0, 5], [7, 0]] is [2, 2], not the bound [2, 4].
TEST(DynamicShapesImport, CliRunWritesTheRealShape) {
  test::ModelBuilder m(13);
  m.input("x", {2, 2});
  m.node("NonZero", {"x"}, {"nz"}, "find");
  m.output("nz");
  const std::string model = m.write("nonzero_cli.onnx");
  const std::string dir = test::temp_dir() + "/nonzero_cli";
  write_npy(dir + "_x.npy", host<float>("x", DataType::kFloat, {2, 2}, {0, 5, 7, 0}));
  std::string out;
  ASSERT_EQ(test::run_cli("run " + model + " --input x=" + dir + "_x.npy --output-dir " + dir, &out), 0) << out;
  const HostTensor y = read_npy(dir + "/nz.npy");
  EXPECT_EQ(y.dims, (Dims{2, 2}));
  EXPECT_EQ(values(y), (std::vector<int64_t>{0, 1, 1, 0}));
}
#endif

}  // namespace
