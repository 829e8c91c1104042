// Explicit quantization (issue 16, section 2): `export qdq` of det and cls re-imported gives the
// same plan and, on the CPU backend, the same outputs bit for bit as the original model with the
// scales it was exported from (the calibration cache); the Q/DQ model needs no calibration.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "../onnx/model_builder.h"
#include "tandem/builder.h"
#include "tandem/engine.h"
#include "tandem/onnx.h"
#include "tandem/plan.h"
#include "tandem/qdq.h"
#include "tandem/quant.h"
#include "tandem/runtime.h"

using namespace tandem;
namespace fs = std::filesystem;

namespace {
const std::string kSrc = TANDEM_SOURCE_DIR;
const std::string kCls = kSrc + "/.data/models/ch_ppocr_mobile_v2.0_cls_infer.onnx";
const std::string kDet = kSrc + "/.data/models/ch_PP-OCRv4_det_infer.onnx";

std::string tmp(const std::string& name) {
  std::string d = ::testing::TempDir() + "tandem_qdq_import_" + name;
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

// Original + scales vs its Q/DQ export re-imported: plans (text and JSON reports) and outputs.
void round_trip(const std::string& model, const Dims& dims, const PlanOptions& po, const std::string& name) {
  ImportOptions io;
  io.shapes = {{"x", dims}};
  Network net = import_onnx(model, io);
  EXPECT_TRUE(net.model.qdq_scales.empty());
  Plan plan = make_plan(net, po);
  auto batcher = make_synthetic_batcher(input_specs(net), int(dims[0]), 2, -1.f, 1.f, 7);
  CalibrateOptions co;
  co.progress = false;
  CalibrationResult cal = calibrate(net, plan, *batcher, co);
  Numerics num = make_numerics(net, plan, cal.scales);
  const std::string dir = tmp(name);
  QdqExportReport rep = export_qdq(model, dir + "/qdq.onnx", net, num);
  EXPECT_TRUE(rep.skipped.empty());

  Network net2 = import_onnx(dir + "/qdq.onnx", io);
  EXPECT_EQ(net2.model.qdq_scales.empty(), rep.activations == 0);
  Plan plan2 = make_plan(net2, po);
  if (net2.layers.size() == net.layers.size()) {
    for (size_t i = 0; i < net.layers.size(); ++i) {
      EXPECT_EQ(net2.layers[i].name, net.layers[i].name) << i;
      EXPECT_EQ(net2.layers[i].kind, net.layers[i].kind) << i;
    }
    EXPECT_EQ(plan_report_json(net2, plan2, "m"), plan_report_json(net, plan, "m"));
    EXPECT_EQ(plan_precisions(plan2), plan_precisions(plan));
  } else {
    // cls is opset 9: the export raises it to 13 (per-axis DequantizeLinear), and its final
    // Softmax then imports as TensorRT imports an opset-13 Softmax (SoftMax + Shuffle instead of
    // Shuffle + SoftMax + Shuffle): one Shuffle less, on the GPU. Every other layer matches.
    EXPECT_EQ(net2.layers.size() + 1, net.layers.size());
    size_t unmatched = 0;
    for (size_t i = 0; i < net2.layers.size(); ++i) {
      const Layer& L = net2.layers[i];
      const LayerId j = net.find_layer(L.name);
      if (j < 0 || net.layers[j].kind != L.kind) {
        ++unmatched;
        EXPECT_TRUE(L.onnx_op == "Softmax" || L.onnx_op.empty()) << L.name;
        continue;
      }
      EXPECT_EQ(plan2.layers[i].device, plan.layers[j].device) << L.name;
      EXPECT_EQ(plan2.layers[i].precision, plan.layers[j].precision) << L.name;
    }
    EXPECT_LE(unmatched, 2u);
    EXPECT_EQ(plan2.dla_region_count(), plan.dla_region_count());
    EXPECT_EQ(plan2.crossings.size(), plan.crossings.size());
    EXPECT_EQ(plan2.crossing_bytes(), plan.crossing_bytes());
  }

  // No calibration data: the model's scales (an empty batcher would fail if it were run).
  auto none = make_synthetic_batcher(input_specs(net2), int(dims[0]), 1);
  CalibrationResult cal2 = calibrate(net2, plan2, *none, co);
  EXPECT_EQ(cal2.from_model, !net2.model.qdq_scales.empty());
  Numerics num2 = make_numerics(net2, plan2, cal2.scales);
  EXPECT_EQ(num2.tensor_scales.size(), num.tensor_scales.size());
  for (const auto& [t, sc] : num.tensor_scales) {
    auto it = num2.tensor_scales.find(t);
    EXPECT_TRUE(it != num2.tensor_scales.end() && it->second == sc) << name << ": scale of " << t << " " << sc << " vs "
                                                                     << (it == num2.tensor_scales.end() ? -1.f : it->second);
  }
  EXPECT_EQ(num2.unquantized, num.unquantized);
  EXPECT_EQ(num2.per_channel_axis, num.per_channel_axis);

  TensorMap in;
  batcher->reset();
  ASSERT_TRUE(batcher->next(&in));
  ExecOptions e1, e2;
  e1.numerics = num;
  e2.numerics = num2;
  TensorMap a = make_cpu_executor(net, e1)->run(in), b = make_cpu_executor(net2, e2)->run(in);
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [n, t] : a) {
    const HostTensor& u = b.at(n);
    ASSERT_EQ(u.data.size(), t.data.size()) << n;
    size_t diff = 0;
    for (int64_t i = 0; i < t.count(); ++i) diff += std::memcmp(&t.f32()[i], &u.f32()[i], 4) != 0;
    EXPECT_EQ(diff, 0u) << name << ": output " << n << " differs in " << diff << " of " << t.count() << " elements";
  }
  std::printf("%s: %d INT8 layers, %d activation Q/DQ pairs, %d per-channel weights; plans equal%s, outputs bit-exact\n",
              name.c_str(), rep.int8_layers, rep.activations, rep.weights,
              net2.layers.size() == net.layers.size() ? "" : " but for the opset-13 Softmax's Shuffle");
}

PlanOptions all_chunks() {
  PlanOptions po;
  po.max_chunks = 0;
  po.min_layers = 0;
  return po;
}
}  // namespace

TEST(QdqImport, ClsSeedAndAllChunksRoundTrip) {
  if (!fs::exists(kCls)) FAIL() << "model missing: " << kCls << " (run scripts/fetch-data.sh)";
  round_trip(kCls, {1, 3, 48, 192}, PlanOptions{}, "cls_seed");
  round_trip(kCls, {1, 3, 48, 192}, all_chunks(), "cls_all");
}

TEST(QdqImport, DetAllChunksRoundTrip) {
  if (!fs::exists(kDet)) FAIL() << "model missing: " << kDet << " (run scripts/fetch-data.sh)";
  round_trip(kDet, {1, 3, 640, 640}, all_chunks(), "det_all");
}

// The acceptance as the issue words it: the engine built from the Q/DQ export (no calibration)
// runs bit for bit as the engine built from the original model plus the calibration cache.
TEST(QdqImport, ClsEngineFromQdqEqualsEngineFromCache) {
  if (!fs::exists(kCls)) FAIL() << "model missing: " << kCls << " (run scripts/fetch-data.sh)";
  const std::string dir = tmp("engine");
  ImportOptions io;
  io.shapes = {{"x", {1, 3, 48, 192}}};
  Network net = import_onnx(kCls, io);
  Plan plan = make_plan(net, PlanOptions{});  // build_dla_engine's defaults: the seed, 1 chunk, 20 layers
  auto batcher = make_synthetic_batcher(input_specs(net), 1, 2, -1.f, 1.f, 3);
  CalibrateOptions co;
  co.progress = false;
  co.cache_path = dir + "/cls.cache";
  CalibrationResult cal = calibrate(net, plan, *batcher, co);
  export_qdq(kCls, dir + "/qdq.onnx", net, make_numerics(net, plan, cal.scales));

  BuildOptions o;
  o.shapes = io.shapes;
  o.optimization_level = 0;
  o.calibration_cache = dir + "/cls.cache";
  build_dla_engine(kCls, dir + "/a.engine", o);
  o.calibration_cache.clear();
  build_dla_engine(dir + "/qdq.onnx", dir + "/b.engine", o);
  auto a = Engine::load(dir + "/a.engine"), b = Engine::load(dir + "/b.engine");
  EXPECT_EQ(a->dla_layer_count(), b->dla_layer_count());
  EXPECT_EQ(a->numerics().tensor_scales, b->numerics().tensor_scales);
  TensorMap in;
  batcher->reset();
  ASSERT_TRUE(batcher->next(&in));
  TensorMap ya = a->create_context()->run(in), yb = b->create_context()->run(in);
  ASSERT_EQ(ya.size(), yb.size());
  for (const auto& [n, t] : ya) {
    const HostTensor& u = yb.at(n);
    ASSERT_EQ(u.data.size(), t.data.size()) << n;
    EXPECT_EQ(std::memcmp(u.data.data(), t.data.data(), t.data.size()), 0) << "output " << n;
  }
}

// A layer the Q/DQ model does not quantize runs FP16 on the DLA (TensorRT builds it in float);
// the quantized one runs INT8 with the model's scales, and no calibration is needed.
TEST(QdqImport, PlanFollowsTheModelsQuantization) {
  using tandem::test::ModelBuilder;
  ModelBuilder b(13);
  b.input("x", {1, 4, 8, 8}).output("y");
  b.init("sx", {}, {0.02f}).init("s1", {}, {0.05f}).init("sw", {4}, {0.01f, 0.01f, 0.02f, 0.02f});
  b.init("w2", {4, 4, 1, 1}, std::vector<float>(16, 0.25f));
  auto i8 = [&](const std::string& name, const std::vector<int64_t>& dims, const std::vector<int8_t>& v) {
    auto* t = b.proto().mutable_graph()->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::INT8);
    for (int64_t d : dims) t->add_dims(d);
    t->set_raw_data(std::string(reinterpret_cast<const char*>(v.data()), v.size()));
  };
  i8("z", {}, {0});
  i8("zw", {4}, {0, 0, 0, 0});
  std::vector<int8_t> q(16);
  for (int i = 0; i < 16; ++i) q[size_t(i)] = int8_t(i % 4 == 0 ? 127 : i * 3 - 20);
  i8("w1_quantized", {4, 4, 1, 1}, q);
  b.node("QuantizeLinear", {"x", "sx", "z"}, {"xq"}, "xQ");
  b.node("DequantizeLinear", {"xq", "sx", "z"}, {"x_dequantized"}, "xDQ");
  auto& dw = b.node("DequantizeLinear", {"w1_quantized", "sw", "zw"}, {"w1"}, "wDQ");
  ModelBuilder::attr_i(dw, "axis", 0);
  b.node("Conv", {"x_dequantized", "w1"}, {"c1_prequant"}, "conv1");
  b.node("QuantizeLinear", {"c1_prequant", "s1", "z"}, {"c1q"}, "c1Q");
  b.node("DequantizeLinear", {"c1q", "s1", "z"}, {"c1"}, "c1DQ");
  b.node("Conv", {"c1", "w2"}, {"c2"}, "conv2");
  b.node("Relu", {"c2"}, {"y"}, "relu2");
  Network net = import_onnx(b.write("qdq_plan.onnx"));
  ASSERT_EQ(net.layers.size(), 3u);
  Plan plan = make_plan(net, PlanOptions{});
  ASSERT_EQ(plan.plan_case, Plan::Case::kFullDla);
  EXPECT_EQ(plan.layers[0].precision, Precision::kINT8);  // conv1: input, weights and output quantized
  EXPECT_EQ(plan.layers[1].precision, Precision::kFP16);  // conv2 + relu: not quantized in the model
  EXPECT_EQ(plan.layers[2].precision, Precision::kFP16);
  EXPECT_NE(plan.layers[1].reason.find("not quantized in the Q/DQ model"), std::string::npos);
  auto none = make_synthetic_batcher(input_specs(net), 1, 1);
  CalibrateOptions co;
  co.progress = false;
  CalibrationResult cal = calibrate(net, plan, *none, co);
  EXPECT_TRUE(cal.from_model);
  Numerics num = make_numerics(net, plan, cal.scales);
  EXPECT_EQ(num.tensor_scales, (std::map<std::string, float>{{"x", 0.02f}, {"c1", 0.05f}}));
}
