// build_dla_engine where trtutils decides: the no-DLA, mixed-but-empty and full-DLA cases, the
// calibration cache that must never be skipped silently, trtutils' image batcher defaults (BGR,
// drop the partial last batch), a caller's Batcher with several inputs, and the TensorRT builder
// options that are recorded and exported.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <random>

#include "../onnx/model_builder.h"
#include "tandem/builder.h"
#include "tandem/engine.h"
#include "tandem/onnx.h"
#include "tandem/plan.h"
#include "tandem/quant.h"

using namespace tandem;
namespace fs = std::filesystem;
using tandem::test::ModelBuilder;

namespace {

const std::string kSrc = TANDEM_SOURCE_DIR;
const std::string kCls = kSrc + "/.data/models/ch_ppocr_mobile_v2.0_cls_infer.onnx";
const std::string kCalib = kSrc + "/tests/data/calib";

std::string fresh_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / fmt::format("tandem-dla-fidelity-{}-{}", name, ::getpid());
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

std::vector<float> ramp(size_t n, float scale) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = scale * float(int(i % 7) - 3) / 3.f;
  return v;
}

// x[1,3,8,8] -> Conv(4x3x3x3, pad 1) -> Relu -> y: every layer runs on the DLA.
std::string conv_relu_model(const std::string& dir) {
  ModelBuilder b;
  b.input("x", {1, 3, 8, 8}).output("y");
  b.init("w", {4, 3, 3, 3}, ramp(4 * 3 * 3 * 3, 0.5f));
  auto& c = b.node("Conv", {"x", "w"}, {"c"}, "conv");
  ModelBuilder::attr_ints(c, "pads", {1, 1, 1, 1});
  b.node("Relu", {"c"}, {"y"}, "relu");
  return b.write(dir + "/conv_relu.onnx");
}

// a, b [1,3,8,8] -> one Conv each -> Add -> Relu -> y: two inputs whose ranges are not tied
// (only the Add's inputs, the convolution outputs, share a range).
std::string two_input_model(const std::string& dir) {
  ModelBuilder b;
  b.input("a", {1, 3, 8, 8}).input("b", {1, 3, 8, 8}).output("y");
  b.init("w", {4, 3, 3, 3}, ramp(4 * 3 * 3 * 3, 0.5f));
  auto& ca = b.node("Conv", {"a", "w"}, {"ca"}, "conv_a");
  ModelBuilder::attr_ints(ca, "pads", {1, 1, 1, 1});
  auto& cb = b.node("Conv", {"b", "w"}, {"cb"}, "conv_b");
  ModelBuilder::attr_ints(cb, "pads", {1, 1, 1, 1});
  b.node("Add", {"ca", "cb"}, {"s"}, "add");
  b.node("Relu", {"s"}, {"y"}, "relu");
  return b.write(dir + "/two_inputs.onnx");
}

// A caller's batcher: n batches of seeded uniform data, input a in [0, 1], input b in [0, 4].
class TwoInputBatcher final : public Batcher {
 public:
  explicit TwoInputBatcher(int n) : n_(n) {}
  int batch_size() const override { return 1; }
  int num_batches() const override { return n_; }
  bool next(TensorMap* out) override {
    if (i_ >= n_) return false;
    std::mt19937 rng(uint32_t(100 + i_));
    std::uniform_real_distribution<float> u(0.f, 1.f);
    HostTensor a = HostTensor::zeros("a", DataType::kFloat, {1, 3, 8, 8});
    HostTensor b = HostTensor::zeros("b", DataType::kFloat, {1, 3, 8, 8});
    for (int64_t k = 0; k < a.count(); ++k) a.f32()[k] = u(rng);
    for (int64_t k = 0; k < b.count(); ++k) b.f32()[k] = 4.f * u(rng);
    (*out)["a"] = std::move(a);
    (*out)["b"] = std::move(b);
    ++i_;
    return true;
  }
  void reset() override { i_ = 0; }

 private:
  int n_, i_ = 0;
};

BuildOptions quick(const std::string& shape) {
  BuildOptions o;
  if (!shape.empty()) o.shapes = {parse_shape_arg(shape)};
  o.optimization_level = 0;
  o.passes = false;
  return o;
}

}  // namespace

// Seed with min_layers above every chunk: trtutils builds a mixed engine with every layer pinned to
// the GPU in FP16, still with INT8 enabled, so the asked-for calibration cache is written.
TEST(BuildDlaFidelity, SeedKeepingNoChunkIsGpuFp16AndStillWritesTheCache) {
  if (!fs::exists(kCls)) FAIL() << "models missing: run scripts/fetch-data.sh";
  std::string dir = fresh_dir("seed-empty");
  BuildOptions o = quick("x:1x3x48x192");
  o.min_layers = 1000;
  o.calibration.images_dir = kCalib;
  o.calibration_cache = dir + "/cls.cache";
  BuildResult r = build_dla_engine(kCls, dir + "/cls.engine", o);
  EXPECT_EQ(r.dla_layers, 0);
  ASSERT_TRUE(fs::exists(o.calibration_cache)) << "the cache the user asked for must be written";
  auto cache = read_calibration_cache(o.calibration_cache);
  EXPECT_EQ(cache.scale_map().count("x"), 1u);
  auto e = Engine::load(dir + "/cls.engine");
  EXPECT_EQ(e->plan().plan_case, Plan::Case::kMixed);
  int fp16 = 0;
  for (const auto& l : e->plan().layers) {
    EXPECT_EQ(l.device, Device::kGPU);
    EXPECT_NE(l.precision, Precision::kINT8);
    fp16 += l.precision == Precision::kFP16;
  }
  EXPECT_GT(fp16, 100);
  bool warned = false;
  for (const auto& w : r.warnings) warned = warned || w.find("no DLA chunk kept: min_layers=1000") != std::string::npos;
  EXPECT_TRUE(warned);
  fs::remove_all(dir);
}

// Graph strategy keeping no region: a GPU-only engine with FP16 and INT8 allowed, as trtutils'
// "no DLA layers" build_engine(fp16=True, int8=True): convolutions in INT8 (calibrated), the
// rest in FP16, data movement unset.
TEST(BuildDlaFidelity, NoDlaLayerBuildsFp16AndCalibratedInt8) {
  if (!fs::exists(kCls)) FAIL() << "models missing: run scripts/fetch-data.sh";
  std::string dir = fresh_dir("no-dla");
  BuildOptions o = quick("x:1x3x48x192");
  o.strategy = Strategy::kGraph;
  o.min_layers = 1000;
  o.calibration.images_dir = kCalib;
  BuildResult r = build_dla_engine(kCls, dir + "/cls.engine", o);
  EXPECT_EQ(r.dla_layers, 0);
  auto e = Engine::load(dir + "/cls.engine");
  EXPECT_EQ(e->plan().plan_case, Plan::Case::kNoDla);
  const Network& net = e->network();
  int conv_int8 = 0, conv = 0, fp16 = 0;
  for (size_t i = 0; i < net.layers.size(); ++i) {
    Precision p = e->plan().layers[i].precision;
    if (net.layers[i].kind == LayerKind::kConvolution) {
      ++conv;
      conv_int8 += p == Precision::kINT8;
    }
    fp16 += p == Precision::kFP16;
  }
  EXPECT_GT(conv, 0);
  EXPECT_EQ(conv_int8, conv);
  EXPECT_GT(fp16, 50);
  EXPECT_FALSE(e->contents().scales.empty()) << "INT8 layers need calibrated scales";
  fs::remove_all(dir);
}

// Every layer DLA-capable: the engine has no GPU fallback (trtutils' full-DLA build_engine call
// leaves gpu_fallback at its default, False).
TEST(BuildDlaFidelity, FullDlaHasNoGpuFallback) {
  std::string dir = fresh_dir("full");
  std::string model = conv_relu_model(dir);
  BuildOptions o = quick("");
  o.calibration.synthetic = true;
  o.calibration.num_batches = 2;
  BuildResult r = build_dla_engine(model, dir + "/m.engine", o);
  auto e = Engine::load(dir + "/m.engine");
  EXPECT_EQ(e->plan().plan_case, Plan::Case::kFullDla);
  EXPECT_FALSE(e->plan().gpu_fallback);
  EXPECT_EQ(r.gpu_layers, 0);
  fs::remove_all(dir);
}

// `build` without INT8 cannot fill a calibration cache: one line instead of a silent skip.
TEST(BuildDlaFidelity, CalibrationCacheWithoutInt8IsRefused) {
  std::string dir = fresh_dir("no-int8");
  std::string model = conv_relu_model(dir);
  BuildOptions o = quick("");
  o.fp16 = true;
  o.calibration_cache = dir + "/x.cache";
  try {
    build_engine(model, dir + "/m.engine", o);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              fmt::format("--calibration-cache {}: nothing to calibrate: no layer runs in INT8 (pass --int8)",
                          o.calibration_cache));
  }
  EXPECT_FALSE(fs::exists(dir + "/m.engine"));
  EXPECT_FALSE(fs::exists(o.calibration_cache));
  fs::remove_all(dir);
}

// trtutils' ImageBatcher: OpenCV (BGR) channel order and the partial last batch dropped; both
// can be changed.
TEST(BuildDlaFidelity, ImageBatcherDefaultsAreTrtutils) {
  std::vector<InputSpec> specs = {{"x", {1, 3, 48, 192}, DataType::kFloat}};
  CalibrationData c;
  c.images_dir = kCalib;
  c.batch_size = 10;  // 32 images: 3 full batches and 2 left over
  int images = 0;
  for (const auto& de : fs::directory_iterator(kCalib)) images += de.path().extension() == ".png";
  ASSERT_EQ(images, 32);
  auto count = [&](const CalibrationData& cd, TensorMap* first) {
    auto b = files_batcher(cd)(specs);
    TensorMap m;
    int n = 0;
    while (b->next(&m)) {
      if (n == 0 && first) *first = m;
      ++n;
    }
    return n;
  };
  TensorMap bgr, rgb;
  EXPECT_EQ(count(c, &bgr), 3);
  CalibrationData keep = c;
  keep.last = LastBatch::kKeep;
  keep.bgr = false;
  EXPECT_EQ(count(keep, &rgb), 4);
  // Channel 0 of BGR is channel 2 of RGB, pixel for pixel.
  const HostTensor& a = bgr.at("x");
  const HostTensor& b = rgb.at("x");
  const int64_t plane = 48 * 192;
  bool differs = false;
  for (int64_t i = 0; i < plane; ++i) {
    ASSERT_EQ(a.f32()[i], b.f32()[2 * plane + i]);
    ASSERT_EQ(a.f32()[2 * plane + i], b.f32()[i]);
    differs = differs || a.f32()[i] != b.f32()[i];
  }
  EXPECT_TRUE(differs) << "the test images should not be gray";
}

// A caller's batcher (trtutils' data_batcher) feeding a model with two inputs: the same data
// through the API's npy batcher gives the same cache, and each input gets its own range.
TEST(BuildDlaFidelity, CallerBatcherWithSeveralInputs) {
  std::string dir = fresh_dir("batcher");
  std::string model = two_input_model(dir);
  BuildOptions o = quick("");
  o.batcher = [](const std::vector<InputSpec>& specs) -> std::unique_ptr<Batcher> {
    EXPECT_EQ(specs.size(), 2u);
    return std::make_unique<TwoInputBatcher>(6);
  };
  o.calibration_cache = dir + "/a.cache";
  build_dla_engine(model, dir + "/a.engine", o);
  auto a = read_calibration_cache(o.calibration_cache).scale_map();
  ASSERT_TRUE(a.count("a") && a.count("b"));
  EXPECT_GT(a.at("b") / a.at("a"), 3.0f);
  EXPECT_LT(a.at("b") / a.at("a"), 5.0f);

  // The same batches, handed over as an existing batcher object.
  auto shared = std::make_shared<TwoInputBatcher>(6);
  BuildOptions o2 = o;
  o2.batcher = batcher_for(shared);
  o2.calibration_cache = dir + "/b.cache";
  build_dla_engine(model, dir + "/b.engine", o2);
  auto b = read_calibration_cache(o2.calibration_cache).scale_map();
  EXPECT_EQ(a, b);

  // The engine cache needs a name for the caller's data.
  BuildOptions o3 = o;
  o3.cache = true;
  o3.cache_dir = dir + "/cache";
  EXPECT_THROW(build_dla_engine(model, dir + "/c.engine", o3), Error);
  o3.batcher_id = "two-input-batcher-v1";
  o3.calibration_cache.clear();
  EXPECT_FALSE(build_dla_engine(model, dir + "/c.engine", o3).cache_hit);
  EXPECT_TRUE(build_dla_engine(model, dir + "/d.engine", o3).cache_hit);
  fs::remove_all(dir);
}

// profiling_verbosity and the tiling options: validated, recorded in the engine's options.
TEST(BuildDlaFidelity, TrtutilsBuilderOptionsAreRecorded) {
  std::string dir = fresh_dir("opts");
  std::string model = conv_relu_model(dir);
  BuildOptions o = quick("");
  o.calibration.synthetic = true;
  o.profiling_verbosity = "detailed";
  o.tiling_optimization_level = 2;
  o.tiling_l2_cache_limit = 1 << 20;
  build_dla_engine(model, dir + "/m.engine", o);
  auto engine = Engine::load(dir + "/m.engine");
  const std::string& opts = engine->metadata().options_json;
  EXPECT_NE(opts.find("\"profiling_verbosity\":\"detailed\""), std::string::npos) << opts;
  EXPECT_NE(opts.find("\"tiling_optimization_level\":2"), std::string::npos) << opts;
  EXPECT_NE(opts.find("\"tiling_l2_cache_limit\":1048576"), std::string::npos) << opts;
  BuildOptions bad = o;
  bad.tiling_optimization_level = 4;
  EXPECT_THROW(build_dla_engine(model, dir + "/n.engine", bad), Error);
  bad = o;
  bad.profiling_verbosity = "verbose";
  EXPECT_THROW(build_dla_engine(model, dir + "/n.engine", bad), Error);
  fs::remove_all(dir);
}

// The engine says which device its tactic was timed on (what `tandem inspect` prints as the
// device key), and nothing when no tactic was timed.
TEST(BuildDlaFidelity, TacticsDeviceKeyIsRecorded) {
  std::string dir = fresh_dir("device-key");
  std::string model = conv_relu_model(dir);
  BuildOptions o = quick("");
  o.calibration.synthetic = true;
  build_dla_engine(model, dir + "/a.engine", o);
  EXPECT_EQ(Engine::load(dir + "/a.engine")->metadata().tactics_device_key, "");
  o.optimization_level = 1;
  build_dla_engine(model, dir + "/b.engine", o);
  EXPECT_EQ(Engine::load(dir + "/b.engine")->metadata().tactics_device_key, host_device_key());
  fs::remove_all(dir);
}
