// End-to-end: the INT8 emulation on hand-worked cases, the CLI (calibrate, compare, export qdq)
// on the PP-OCR direction classifier, and the Q/DQ model in ONNX Runtime.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "tandem/npy.h"
#include "tandem/onnx.h"
#include "tandem/plan.h"
#include "tandem/qdq.h"
#include "tandem/quant.h"
#include "tandem/runtime.h"

using namespace tandem;
namespace fs = std::filesystem;

static const std::string kSrc = TANDEM_SOURCE_DIR;
static const std::string kTandem = std::string(TANDEM_BINARY_DIR) + "/tools/tandem/tandem";
static const std::string kCls = kSrc + "/.data/models/ch_ppocr_mobile_v2.0_cls_infer.onnx";
static const std::string kCalib = kSrc + "/tests/data/calib";

static std::string tmp_dir(const std::string& name) {
  std::string d = ::testing::TempDir() + "tandem_quant_e2e_" + name;
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

struct CliRun {
  int code;
  std::string out;  // stdout + stderr
};
static CliRun run(const std::string& args) {
  std::string cmd = kTandem + " " + args + " 2>&1";
  CliRun r{-1, ""};
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  int st = pclose(p);
  r.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

// ---- hand-worked emulation ---------------------------------------------------------------
static Network conv2x2_net() {
  Network net;
  Tensor x;
  x.name = "x";
  x.dims = {1, 1, 2, 2};
  x.is_input = true;
  TensorId xi = net.add_tensor(x);
  net.inputs = {xi};
  Tensor y;
  y.name = "y";
  y.dims = {1, 1, 1, 1};
  y.is_output = true;
  TensorId yi = net.add_tensor(y);
  net.outputs = {yi};
  Weights w;
  w.name = "w";
  w.dims = {1, 1, 2, 2};
  float wv[4] = {0.5f, -0.25f, 0.125f, 1.0f};
  w.bytes.resize(16);
  std::memcpy(w.bytes.data(), wv, 16);
  WeightsId wi = net.add_weights(w);
  Layer c;
  c.name = "conv";
  c.kind = LayerKind::kConvolution;
  ConvolutionParams p;
  p.kernel = {2, 2};
  p.stride = {1, 1};
  p.pre_padding = {0, 0};
  p.post_padding = {0, 0};
  p.dilation = {1, 1};
  p.out_maps = 1;
  p.kernel_weights = wi;
  c.params = p;
  c.inputs = {xi};
  c.outputs = {yi};
  net.add_layer(c);
  net.verify();

  return net;
}

TEST(Int8Emulation, Conv2x2) {
  // x = [0.3, -0.62, 1.0, 0.1] (range 1 -> scale 1/127) -> q = [38, -79, 127, 13]
  // w = [0.5, -0.25, 0.125, 1.0] (per-channel max 1 -> scale 1/127) -> q = [64, -32, 16, 127]
  //   (0.5 * 127 = 63.5 rounds half to even: 64)
  // conv = (38*64 + 79*32 + 127*16 + 13*127) / 127^2 = 8643 / 16129 = 0.535867
  // output range 1 -> q = round(0.535867 * 127) = round(68.055) = 68 -> 68 / 127.
  // The FP32 reference gives 0.15 + 0.155 + 0.125 + 0.1 = 0.53.
  Network net = conv2x2_net();
  TensorMap in;
  in["x"] = HostTensor::zeros("x", DataType::kFloat, {1, 1, 2, 2});
  float xv[4] = {0.3f, -0.62f, 1.0f, 0.1f};
  std::memcpy(in["x"].f32(), xv, 16);
  auto ref = make_cpu_executor(net)->run(in);
  EXPECT_NEAR(ref.at("y").f32()[0], 0.53f, 1e-6);

  Plan plan;
  plan.layers.resize(1);
  plan.layers[0].precision = Precision::kINT8;
  ExecOptions eo;
  eo.numerics = make_numerics(net, plan, {{"x", 1.f / 127}, {"y", 1.f / 127}});
  auto q = make_cpu_executor(net, eo)->run(in);
  EXPECT_FLOAT_EQ(q.at("y").f32()[0], 68.f / 127.f);
}

TEST(Int8Emulation, ConcatWithUnequalRangesIsTied) {
  // a (range 1) and b (range 4) concatenated: DLA ties a, b and the output to range 4, so
  // a = [0.3, 0.7] quantizes with scale 4/127: 0.3 -> round(9.525) = 10, 0.7 -> round(22.225) = 22;
  // with a's own scale (1/127) 0.3 would have been 38/127.
  Network net;
  auto T = [&](const char* n, Dims d) {
    Tensor t;
    t.name = n;
    t.dims = d;
    return net.add_tensor(t);
  };
  TensorId a = T("a", {1, 1, 1, 2}), b = T("b", {1, 1, 1, 2}), c = T("c", {1, 2, 1, 2});
  net.tensors[a].is_input = net.tensors[b].is_input = true;
  net.tensors[c].is_output = true;
  net.inputs = {a, b};
  net.outputs = {c};
  Layer l;
  l.name = "cat";
  l.kind = LayerKind::kConcatenation;
  l.params = ConcatenationParams{1};
  l.inputs = {a, b};
  l.outputs = {c};
  net.add_layer(l);
  net.verify();
  Plan plan;
  plan.layers.resize(1);
  plan.layers[0].precision = Precision::kINT8;
  Numerics n = make_numerics(net, plan, {{"a", 1.f / 127}, {"b", 4.f / 127}, {"c", 2.f / 127}});
  EXPECT_FLOAT_EQ(n.tensor_scales.at("a"), 4.f / 127);
  EXPECT_FLOAT_EQ(n.tensor_scales.at("c"), 4.f / 127);
  TensorMap in;
  in["a"] = HostTensor::zeros("a", DataType::kFloat, {1, 1, 1, 2});
  in["b"] = HostTensor::zeros("b", DataType::kFloat, {1, 1, 1, 2});
  in["a"].f32()[0] = 0.3f;
  in["a"].f32()[1] = 0.7f;
  in["b"].f32()[0] = -3.f;
  in["b"].f32()[1] = 5.f;  // clipped to the range: 127 * 4/127 = 4
  ExecOptions eo;
  eo.numerics = n;
  auto out = make_cpu_executor(net, eo)->run(in);
  const float* o = out.at("c").f32();
  const float s = 4.f / 127;
  EXPECT_FLOAT_EQ(o[0], 10 * s);
  EXPECT_FLOAT_EQ(o[1], 22 * s);
  EXPECT_FLOAT_EQ(o[2], std::nearbyint(-3.f / s) * s);
  EXPECT_FLOAT_EQ(o[3], 127 * s);
}

TEST(CalibrateDriver, MinMaxRangesAndCacheReuse) {
  Network net = conv2x2_net();
  Plan plan;
  plan.layers.resize(1);
  plan.layers[0].precision = Precision::kINT8;
  auto b = make_synthetic_batcher(input_specs(net), 2, 3, -2.f, 1.5f, 11);
  // The expected ranges: max |x| over all data, and max |conv(x)| from the FP32 reference.
  float mx = 0, my = 0;
  auto ref = make_cpu_executor(net);
  TensorMap batch;
  while (b->next(&batch))
    for (const TensorMap& piece : split_batch(batch, input_specs(net))) {
      for (int i = 0; i < 4; ++i) mx = std::max(mx, std::fabs(piece.at("x").f32()[i]));
      my = std::max(my, std::fabs(ref->run(piece).at("y").f32()[0]));
    }
  std::string cache = ::testing::TempDir() + "tandem_quant_driver.cache";
  std::remove(cache.c_str());
  CalibrateOptions co;
  co.algorithm = CalibAlgorithm::kMinMax;
  co.cache_path = cache;
  co.progress = false;
  CalibrationResult r = calibrate(net, plan, *b, co);
  EXPECT_FALSE(r.from_cache);
  EXPECT_EQ(r.batches, 3);
  EXPECT_EQ(r.samples, 6);
  EXPECT_FLOAT_EQ(r.ranges.at("x"), mx);
  EXPECT_FLOAT_EQ(r.ranges.at("y"), my);
  EXPECT_FLOAT_EQ(r.scales.at("x"), mx / 127);
  CalibrationCache c = read_calibration_cache(cache);
  EXPECT_EQ(c.algorithm, "MinMaxCalibration");
  ASSERT_EQ(c.scales.size(), 2u);
  EXPECT_EQ(c.scales[0].first, "x");
  // The cache is used instead of data (an empty batcher would fail otherwise).
  auto empty = limit_batches(make_synthetic_batcher(input_specs(net), 1, 1), 1);
  CalibrationResult r2 = calibrate(net, plan, *empty, co);
  EXPECT_TRUE(r2.from_cache);
  EXPECT_EQ(r2.scales.at("x"), c.scales[0].second);
  // Entropy with the same data gives ranges no larger than the max.
  co.algorithm = CalibAlgorithm::kEntropy;
  co.recalibrate = true;
  CalibrationResult r3 = calibrate(net, plan, *b, co);
  EXPECT_LE(r3.ranges.at("x"), mx * (1 + 1e-6));
  EXPECT_EQ(read_calibration_cache(cache).algorithm, "EntropyCalibration2");
  std::remove(cache.c_str());
}

// ---- CLI: clear errors, exit code 2 ------------------------------------------------------
class QuantCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kTandem)) FAIL() << "no CLI binary at " << kTandem;
    if (!fs::exists(kCls)) FAIL() << "model missing: " << kCls << " (scripts/fetch-data.sh)";
  }
};

TEST_F(QuantCli, FolderWithoutImages) {
  std::string d = tmp_dir("noimg");
  std::ofstream(d + "/a.txt") << "x";
  CliRun r = run("calibrate " + kCls + " --shape x:1x3x48x192 --calib-dir " + d + " -o " + d + "/c.cache --quiet");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find(d + ": no usable image"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(d + "/c.cache"));
}

TEST_F(QuantCli, UnreadableImage) {
  std::string d = tmp_dir("badimg");
  fs::copy_file(kCalib + "/text_00.png", d + "/a.png");
  std::ofstream(d + "/b.JPG") << "not a jpeg at all";
  CliRun r = run("calibrate " + kCls + " --shape x:1x3x48x192 --calib-dir " + d + " -o " + d + "/c.cache --quiet");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find(d + "/b.JPG: cannot decode image"), std::string::npos) << r.out;
}

TEST_F(QuantCli, NpyOfWrongShapeOrDtype) {
  std::string d = tmp_dir("npy");
  write_npy(d + "/shape.npy", HostTensor::zeros("x", DataType::kFloat, {2, 3, 48, 100}));
  CliRun r = run("calibrate " + kCls + " --shape x:1x3x48x192 --calib-npy x=" + d + "/shape.npy -o " + d + "/c.cache -q");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find(d + "/shape.npy: shape 2x3x48x100 does not match input 'x'"), std::string::npos) << r.out;
  write_npy(d + "/dtype.npy", HostTensor::zeros("x", DataType::kUInt8, {2, 3, 48, 192}));
  r = run("calibrate " + kCls + " --shape x:1x3x48x192 --calib-npy x=" + d + "/dtype.npy -o " + d + "/c.cache -q");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find(d + "/dtype.npy: dtype uint8 does not match input 'x'"), std::string::npos) << r.out;
}

TEST_F(QuantCli, CorruptCacheLine) {
  std::string d = tmp_dir("corrupt");
  std::ofstream(d + "/bad.cache") << "TRT-8600-EntropyCalibration2\nx: 3c00f9f4\nconv1: 3c00g9f4\n";
  CliRun r = run("compare " + kCls + " --shape x:1x3x48x192 --random-input --count 1 --cache " + d + "/bad.cache -q");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find(d + "/bad.cache:3: bad hex digit in scale of tensor 'conv1'"), std::string::npos) << r.out;
  // calibrate reuses an existing cache: the same error.
  r = run("calibrate " + kCls + " --shape x:1x3x48x192 --synthetic 1 -o " + d + "/bad.cache -q");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find(d + "/bad.cache:3:"), std::string::npos) << r.out;
}

// ---- the PP-OCR direction classifier: calibrate, compare, Q/DQ in ONNX Runtime -------------
TEST_F(QuantCli, ClsCalibrateCompareAndQdqInOnnxRuntime) {
  std::string d = tmp_dir("cls");
  const std::string pre = " --shape x:1x3x48x192 --range -1 --range-hi 1 --resize linear";
  CliRun r = run("calibrate " + kCls + pre + " --calib-dir " + kCalib + " --batch-size 8 -o " + d + "/cls.cache");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("wrote " + d + "/cls.cache"), std::string::npos) << r.out;
  CalibrationCache c = read_calibration_cache(d + "/cls.cache");
  EXPECT_EQ(c.algorithm, "EntropyCalibration2");
  EXPECT_EQ(c.trt_version, 8600);
  auto sm = c.scale_map();
  ASSERT_TRUE(sm.count("x"));
  EXPECT_GT(sm["x"] * 127, 0.5f);   // inputs in [-1, 1]
  EXPECT_LE(sm["x"] * 127, 1.0001f);
  // A second run reuses the cache.
  r = run("calibrate " + kCls + pre + " --calib-dir " + kCalib + " -o " + d + "/cls.cache");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("used existing cache"), std::string::npos) << r.out;

  r = run("compare " + kCls + pre + " --data " + kCalib + " --cache " + d + "/cls.cache --json -q");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("\"top1_agreement\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"cosine\""), std::string::npos) << r.out;

  // Q/DQ export, then ONNX Runtime vs tandem's INT8 emulation on one calibration image.
  r = run("export qdq " + kCls + " --shape x:1x3x48x192 --cache " + d + "/cls.cache -o " + d + "/cls_qdq.onnx");
  ASSERT_EQ(r.code, 0) << r.out;
  const std::string peer = kSrc + "/tools/peer";
  if (!fs::exists(peer + "/node_modules/onnxruntime-node") || std::system("node --version > /dev/null 2>&1") != 0)
    FAIL() << "no ONNX Runtime peer (tools/peer: npm ci)";
  ImageBatcherOptions io;
  io.dir = kCalib;
  io.lo = -1;
  io.hi = 1;
  io.resize = ResizeMethod::kLinear;
  auto b = make_image_batcher(io, {{"x", {1, 3, 48, 192}, DataType::kFloat}}, 1);
  TensorMap in;
  ASSERT_TRUE(b->next(&in));
  write_npy(d + "/x.npy", in.at("x"));
  std::string cmd = "node " + peer + "/ort_run.js " + d + "/cls_qdq.onnx --input x=" + d + "/x.npy --output-dir " + d + "/ort > " + d + "/ort.log 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  HostTensor ort = read_npy(d + "/ort/softmax_0.tmp_0.npy");

  ImportOptions opt;
  opt.shapes = {{"x", {1, 3, 48, 192}}};
  Network net = import_onnx(kCls, opt);
  PlanOptions po;
  Plan plan = make_plan(net, po);
  ExecOptions eo;
  eo.numerics = make_numerics(net, plan, c.scale_map());
  TensorMap emu = make_cpu_executor(net, eo)->run(in);
  const HostTensor& e = emu.at("softmax_0.tmp_0");
  ASSERT_EQ(e.count(), ort.count());
  double max_err = 0;
  for (int64_t i = 0; i < e.count(); ++i) max_err = std::max(max_err, std::fabs(double(e.f32()[i]) - ort.f32()[i]));
  std::printf("cls Q/DQ in ONNX Runtime vs tandem INT8 emulation: max |diff| = %.3g\n", max_err);
  EXPECT_LT(max_err, 0.05);
}
