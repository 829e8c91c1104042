// Building real engines from the PP-OCR models (scripts/fetch-data.sh), with the calibration
// images of tests/data/calib. Fails, naming scripts/fetch-data.sh, when the models are absent.
//  - build-dla engines run with the same outputs as the executor with the same numerics
//    (`tandem compare`'s INT8 emulation: make_plan + calibration cache + make_numerics);
//  - the engine cache: a second build is a hit, any option or model change is a miss;
//  - concurrent builds of one key (threads and processes) build once and all get the engine.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "engine/internal.h"
#include "tandem/builder.h"
#include "tandem/engine.h"
#include "tandem/onnx.h"
#include "tandem/plan.h"
#include "tandem/quant.h"
#include "tandem/runtime.h"

using namespace tandem;
namespace fs = std::filesystem;

extern char** environ;

namespace {

const std::string kSrc = TANDEM_SOURCE_DIR;
const std::string kCls = kSrc + "/.data/models/ch_ppocr_mobile_v2.0_cls_infer.onnx";
const std::string kDet = kSrc + "/.data/models/ch_PP-OCRv4_det_infer.onnx";
const std::string kCalib = kSrc + "/tests/data/calib";

std::string temp_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / fmt::format("tandem-build-test-{}-{}", name, ::getpid());
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

HostTensor random_input(const std::string& name, const Dims& d, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(0.f, 1.f);
  HostTensor h = HostTensor::zeros(name, DataType::kFloat, d);
  for (int64_t i = 0; i < h.count(); ++i) h.f32()[i] = u(rng);
  return h;
}

struct Diff {
  float max_abs = 0, max_ref = 0;
  double cosine = 1;
};
Diff diff(const HostTensor& a, const HostTensor& b) {
  Diff d;
  EXPECT_EQ(a.dims, b.dims);
  double ab = 0, aa = 0, bb = 0;
  for (int64_t i = 0; i < a.count(); ++i) {
    float x = a.f32()[i], y = b.f32()[i];
    d.max_abs = std::max(d.max_abs, std::fabs(x - y));
    d.max_ref = std::max(d.max_ref, std::fabs(y));
    ab += double(x) * y; aa += double(x) * x; bb += double(y) * y;
  }
  d.cosine = (aa > 0 && bb > 0) ? ab / std::sqrt(aa * bb) : 1.0;
  return d;
}

// The executor with the numerics `tandem compare` uses: the plan of the imported network, the
// calibration cache's scales, make_numerics.
std::unique_ptr<Executor> reference(const std::string& model, const std::string& shape, const PlanOptions& po,
                                    const std::string& calib_cache) {
  ImportOptions io;
  io.shapes = {parse_shape_arg(shape)};
  Network net = import_onnx(model, io);
  Plan plan = make_plan(net, po);
  auto cache = read_calibration_cache(calib_cache);
  ExecOptions eo;
  eo.numerics = make_numerics(net, plan, cache.scale_map());
  return make_cpu_executor(net, eo);
}

BuildOptions dla_options(const std::string& dir, const std::string& shape) {
  BuildOptions o;
  o.shapes = {parse_shape_arg(shape)};
  o.calibration.images_dir = kCalib;
  o.calibration_cache = dir + "/calib.cache";
  o.cache = true;
  o.cache_dir = dir + "/cache";
  o.optimization_level = 0;  // no tactic timing: keeps the test short
  o.passes = false;          // the same network as the reference: exact numerics
  return o;
}

bool have_models() { return fs::exists(kCls) && fs::exists(kDet) && fs::is_directory(kCalib); }

// The independent reference: the imported model in FP32 (no plan, no numerics).
std::unique_ptr<Executor> fp32_executor(const std::string& model, const std::string& shape) {
  ImportOptions io;
  io.shapes = {parse_shape_arg(shape)};
  return make_cpu_executor(import_onnx(model, io));
}

// The engine's outputs against FP32: the cosine of every output, which must stay at the value
// measured when the test was written (INT8 on the DLA layers, FP16 elsewhere; a numerics change
// moves it by more than 1e-4) and above the floor that INT8 PP-OCR is useful at.
void expect_cosine_to_fp32(const TensorMap& engine_out, const TensorMap& fp32_out, double measured, const char* what) {
  for (const auto& [name, t] : fp32_out) {
    const double c = diff(engine_out.at(name), t).cosine;
    std::printf("%s: cosine to FP32 of '%s' = %.6f\n", what, name.c_str(), c);
    EXPECT_NEAR(c, measured, 1e-4) << what << " output '" << name << "'";
    EXPECT_GE(c, 0.98) << what << " output '" << name << "'";
  }
}

}  // namespace

TEST(EngineBuild, ClsBuildDlaMatchesEmulationAndCaches) {
  if (!have_models()) FAIL() << "models missing: run scripts/fetch-data.sh";
  std::string dir = temp_dir("cls");
  const std::string shape = "x:1x3x48x192";
  BuildOptions o = dla_options(dir, shape);
  BuildResult r1 = build_dla_engine(kCls, dir + "/cls.engine", o);
  EXPECT_FALSE(r1.cache_hit);
  EXPECT_EQ(r1.dla_layers, 22);  // seed: the one chunk of tests/golden/plan_cls_seed.txt
  ASSERT_TRUE(fs::exists(o.calibration_cache));

  auto engine = Engine::load(dir + "/cls.engine");
  EXPECT_NE(engine->emulation_note().find("DLA numerics"), std::string::npos);
  PlanOptions po;  // build-dla's defaults: seed, max_chunks 1, min_layers 20, INT8 check
  auto ref = reference(kCls, shape, po, o.calibration_cache);
  auto ctx = engine->create_context();
  auto fp32 = fp32_executor(kCls, shape);
  // Measured 2026-12-01, inputs of seeds 0 and 1, since the CPU's FP16 blocks round once at their
  // output as TensorRT's fused kernels do (before: 0.997140, 0.993858; docs/quantization.md).
  const double measured_cosine[2] = {0.997466, 0.990972};
  for (uint32_t s = 0; s < 2; ++s) {
    TensorMap in{{"x", random_input("x", {1, 3, 48, 192}, s)}};
    auto a = ctx->run(in);
    auto b = ref->run(in);
    ASSERT_EQ(a.size(), b.size());
    for (auto& [name, t] : b) {
      Diff d = diff(a.at(name), t);
      EXPECT_LE(d.max_abs, 1e-4f * std::max(1.f, d.max_ref)) << name;
    }
    expect_cosine_to_fp32(a, fp32->run(in), measured_cosine[s], "cls seed engine");
  }

  // Same inputs: a hit, byte-identical engine.
  BuildResult r2 = build_dla_engine(kCls, dir + "/cls2.engine", o);
  EXPECT_TRUE(r2.cache_hit);
  EXPECT_EQ(r2.cache_key, r1.cache_key);
  EXPECT_EQ(engine_detail::read_file_bytes(dir + "/cls.engine"), engine_detail::read_file_bytes(dir + "/cls2.engine"));
  // Any option change: a miss.
  {
    BuildOptions c = o;
    c.min_layers = 10;
    BuildResult r = build_dla_engine(kCls, dir + "/cls3.engine", c);
    EXPECT_FALSE(r.cache_hit);
    EXPECT_NE(r.cache_key, r1.cache_key);
  }
  {
    BuildOptions c = o;
    c.passes = true;
    BuildResult r = build_dla_engine(kCls, dir + "/cls4.engine", c);
    EXPECT_FALSE(r.cache_hit);
    auto e4 = Engine::load(dir + "/cls4.engine");
    EXPECT_FALSE(e4->metadata().fusions.empty());
    // With BN folded into INT8 convolutions the numerics differ from the unfused emulation (by
    // design: the DLA quantizes the fused weights). Both stay as close to FP32 as INT8 allows;
    // the passes themselves are exact in FP32 (engine_test's EnginePasses).
    ImportOptions io;
    io.shapes = {parse_shape_arg(shape)};
    auto fp32 = make_cpu_executor(import_onnx(kCls, io));
    for (uint32_t s = 0; s < 3; ++s) {
      TensorMap in{{"x", random_input("x", {1, 3, 48, 192}, 7 + s)}};
      auto a = e4->create_context()->run(in);
      auto b = ref->run(in);
      auto f = fp32->run(in);
      for (auto& [name, t] : f) {
        float fused = diff(a.at(name), t).max_abs, unfused = diff(b.at(name), t).max_abs;
        EXPECT_LE(fused, 0.15f) << name << " (unfused INT8 emulation: " << unfused << ")";
      }
    }
  }
  // The model changes (same graph, different bytes: an unknown protobuf field appended): a miss.
  {
    std::string m2 = dir + "/cls_copy.onnx";
    auto bytes = engine_detail::read_file_bytes(kCls);
    bytes.insert(bytes.end(), {0xa0, 0x06, 0x01});  // field 100, varint 1
    engine_detail::write_file_atomic(m2, bytes.data(), bytes.size());
    BuildResult r = build_dla_engine(m2, dir + "/cls5.engine", o);
    EXPECT_FALSE(r.cache_hit);
    EXPECT_NE(r.cache_key, r1.cache_key);
  }
  auto entries = list_engine_cache(o.cache_dir);
  EXPECT_EQ(entries.size(), 4u);
  EXPECT_EQ(clear_engine_cache(o.cache_dir), 4u);
  EXPECT_TRUE(list_engine_cache(o.cache_dir).empty());
  // The cuDNN plan cache beside the engines (written by the CUDA backend): counted and removed.
  const fs::path plans = fs::path(resolve_cache_dir(o.cache_dir)) / "cudnn-plans" / "some_device";
  fs::create_directories(plans);
  for (const char* name : {"a.plan", "b.plan"}) std::ofstream(plans / name) << "0123456789";
  EXPECT_EQ(summarize_plan_cache(o.cache_dir).files, 2u);
  EXPECT_EQ(summarize_plan_cache(o.cache_dir).bytes, 20u);
  EXPECT_EQ(clear_plan_cache(o.cache_dir), 2u);
  EXPECT_EQ(summarize_plan_cache(o.cache_dir).files, 0u);
  EXPECT_FALSE(fs::exists(plans.parent_path()));
  fs::remove_all(dir);
}

TEST(EngineBuild, DetBuildDlaGraphMatchesEmulation) {
  if (!have_models()) FAIL() << "models missing: run scripts/fetch-data.sh";
  std::string dir = temp_dir("det");
  const std::string shape = "x:1x3x640x640";
  BuildOptions o = dla_options(dir, shape);
  o.strategy = Strategy::kGraph;  // the seed's chunks keep no DLA layer of det with min_layers 20
  o.calibration.max_images = 4;
  o.calibration.batch_size = 4;
  BuildResult r = build_dla_engine(kDet, dir + "/det.engine", o);
  EXPECT_EQ(r.dla_layers, 103);  // graph: the 4 regions of 27/27/25/24 layers (tests/golden/plan_det_graph.txt)
  auto engine = Engine::load(dir + "/det.engine");
  PlanOptions po;
  po.strategy = Strategy::kGraph;
  auto ref = reference(kDet, shape, po, o.calibration_cache);
  TensorMap in{{"x", random_input("x", {1, 3, 640, 640}, 1)}};
  auto a = engine->create_context()->run(in);
  auto b = ref->run(in);
  for (auto& [name, t] : b) {
    Diff d = diff(a.at(name), t);
    EXPECT_LE(d.max_abs, 1e-4f * std::max(1.f, d.max_ref)) << name;
  }
  // Measured 2026-11-30: 1.000000 (the probability map of a random image is near 0 almost everywhere).
  expect_cosine_to_fp32(a, fp32_executor(kDet, shape)->run(in), 1.0, "det graph engine");
  EXPECT_TRUE(build_dla_engine(kDet, dir + "/det2.engine", o).cache_hit);
  fs::remove_all(dir);
}

TEST(EngineBuild, ConcurrentBuildsOfOneKeyBuildOnce) {
  if (!fs::exists(kCls)) FAIL() << "models missing: run scripts/fetch-data.sh";
  std::string dir = temp_dir("concurrent");
  BuildOptions o;
  o.shapes = {parse_shape_arg("x:1x3x48x192")};
  o.cache = true;
  o.cache_dir = dir + "/cache";
  o.optimization_level = 0;
  // Processes: the tandem CLI, started at once.
  const std::string tandem = std::string(TANDEM_BINARY_DIR) + "/tools/tandem/tandem";
  ASSERT_TRUE(fs::exists(tandem)) << "no tandem binary at " << tandem << ": cmake --build <build dir> --target tandem";
  std::vector<pid_t> pids;
  for (int i = 0; i < 3; ++i) {
    std::string out = fmt::format("{}/p{}.engine", dir, i), log = fmt::format("{}/p{}.log", dir, i);
    std::vector<std::string> args = {tandem, "build", kCls, "-o", out, "--shape", "x:1x3x48x192", "--cache",
                                     "--cache-dir", o.cache_dir, "--optimization-level", "0"};
    std::vector<char*> argv;
    for (auto& s : args) argv.push_back(s.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 2, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    ASSERT_EQ(posix_spawn(&pid, tandem.c_str(), &fa, nullptr, argv.data(), environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    pids.push_back(pid);
  }
  // Threads in this process.
  std::atomic<int> misses{0}, hits{0}, errors{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < 4; ++i)
    ts.emplace_back([&, i] {
      try {
        BuildResult r = build_engine(kCls, fmt::format("{}/t{}.engine", dir, i), o);
        (r.cache_hit ? hits : misses)++;
      } catch (const std::exception& e) {
        ADD_FAILURE() << e.what();
        ++errors;
      }
    });
  for (auto& t : ts) t.join();
  for (size_t i = 0; i < pids.size(); ++i) {
    int st = 0;
    waitpid(pids[i], &st, 0);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "process " << i;
    std::ifstream f(fmt::format("{}/p{}.log", dir, i));
    std::stringstream ss;
    ss << f.rdbuf();
    if (ss.str().find("engine cache miss") != std::string::npos) ++misses;
    else if (ss.str().find("engine cache hit") != std::string::npos) ++hits;
    else ADD_FAILURE() << "no cache line in process " << i << " log: " << ss.str();
  }
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(misses.load(), 1);
  EXPECT_EQ(hits.load(), 3 + int(pids.size()));
  auto ref = engine_detail::read_file_bytes(dir + "/t0.engine");
  for (int i = 1; i < 4; ++i) EXPECT_EQ(engine_detail::read_file_bytes(fmt::format("{}/t{}.engine", dir, i)), ref);
  for (size_t i = 0; i < pids.size(); ++i)
    EXPECT_EQ(engine_detail::read_file_bytes(fmt::format("{}/p{}.engine", dir, i)), ref);
  EXPECT_EQ(list_engine_cache(o.cache_dir).size(), 1u);
  fs::remove_all(dir);
}
