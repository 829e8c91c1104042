// Runtime, IO formats, passes, multi-threaded execution, engine cache and timing cache.
#include <algorithm>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <thread>

#include "engine/internal.h"
#include "engine/passes.h"
#include "tandem/builder.h"
#include "tandem/engine.h"
#include "tandem/runtime.h"
#include "test_util.h"

using namespace tandem;
namespace fs = std::filesystem;

namespace {

HostTensor random_input(const Dims& d, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  HostTensor h = HostTensor::zeros("x", DataType::kFloat, d);
  for (int64_t i = 0; i < h.count(); ++i) h.f32()[i] = u(rng);
  return h;
}

float max_abs_diff(const HostTensor& a, const HostTensor& b) {
  EXPECT_EQ(a.dims, b.dims);
  float m = 0;
  for (int64_t i = 0; i < a.count(); ++i) m = std::max(m, std::fabs(a.f32()[i] - b.f32()[i]));
  return m;
}

EngineContents fp32_contents() {
  EngineContents e = test::small_contents();
  e.plan = test::all_gpu_plan(e.network);
  e.int8_weights.clear();
  e.output_formats = {TensorFormat{"y", DataType::kFloat, TensorLayout::kNCHW}};
  return e;
}

std::string temp_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / fmt::format("tandem-engine-test-{}-{}", name, ::getpid());
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

}  // namespace

TEST(EngineRuntime, MatchesExecutorWithSameNumerics) {
  EngineContents e = test::small_contents();  // conv INT8 on the DLA, int8 weights stored
  e.output_formats = {TensorFormat{"y", DataType::kFloat, TensorLayout::kNCHW}};
  auto bytes = serialize_engine(e);
  auto engine = Engine::from_contents(deserialize_engine(bytes.data(), bytes.size(), "mem"), "mem");
  EXPECT_NE(engine->emulation_note().find("DLA numerics"), std::string::npos);
  ExecOptions eo;
  eo.numerics.layer_precision.resize(e.network.layers.size());
  eo.numerics.layer_precision[0] = Precision::kINT8;
  eo.numerics.tensor_scales = e.scales;
  auto ref = make_cpu_executor(e.network, eo);  // the original fp32 weights, quantized by the backend
  auto ctx = engine->create_context(1);
  for (uint32_t s = 0; s < 3; ++s) {
    TensorMap in{{"x", random_input({1, 3, 8, 8}, s)}};
    auto a = ctx->run(in);
    auto b = ref->run(in);
    EXPECT_LE(max_abs_diff(a.at("y"), b.at("y")), 1e-5f);
  }
}

TEST(EngineRuntime, ManyThreadsMatchSingleThreadReference) {
  auto engine = Engine::from_contents(test::small_contents(), "mem");
  const int kInputs = 6;
  std::vector<TensorMap> ins, refs;
  {
    auto ctx = engine->create_context(1);
    for (int i = 0; i < kInputs; ++i) {
      ins.push_back({{"x", random_input({1, 3, 8, 8}, 100 + i)}});
      refs.push_back(ctx->run(ins.back()));
    }
  }
  std::atomic<int> mismatches{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 6; ++t)
    ts.emplace_back([&, t] {
      auto ctx = engine->create_context(1);
      for (int r = 0; r < 20; ++r) {
        int i = (t + r) % kInputs;
        auto out = ctx->run(ins[i]);
        const auto& a = out.at("y");
        const auto& b = refs[i].at("y");
        if (a.data != b.data) ++mismatches;
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(mismatches.load(), 0);
}

TEST(EngineRuntime, IoFormatsConvertInsideTheEngine) {
  EngineContents base = fp32_contents();
  base.scales["x"] = 1.f / 127.f;
  base.scales["y"] = 0.05f;
  auto ref_engine = Engine::from_contents(base, "ref");
  auto ref = ref_engine->create_context(1);
  HostTensor x = random_input({1, 3, 8, 8}, 5);
  // uint8 NHWC in, fp16 NHWC out.
  EngineContents e = base;
  e.input_formats = {TensorFormat{"x", DataType::kUInt8, TensorLayout::kNHWC}};
  e.output_formats = {TensorFormat{"y", DataType::kHalf, TensorLayout::kNHWC}};
  auto eng = Engine::from_contents(e, "fmt");
  HostTensor u = HostTensor::zeros("x", DataType::kUInt8, {1, 8, 8, 3});
  HostTensor xf = HostTensor::zeros("x", DataType::kFloat, {1, 3, 8, 8});
  for (int c = 0; c < 3; ++c)
    for (int h = 0; h < 8; ++h)
      for (int w = 0; w < 8; ++w) {
        uint8_t v = uint8_t((c * 64 + h * 8 + w) % 256);
        u.data[(h * 8 + w) * 3 + c] = v;
        xf.f32()[(c * 8 + h) * 8 + w] = float(v);
      }
  auto out = eng->create_context(1)->run({{"x", u}});
  auto want = ref->run({{"x", xf}}).at("y");
  const HostTensor& y = out.at("y");
  ASSERT_EQ(y.type, DataType::kHalf);
  ASSERT_EQ(y.dims, (Dims{1, 8, 8, 8}));
  const auto* hy = reinterpret_cast<const uint16_t*>(y.data.data());
  for (int c = 0; c < 8; ++c)
    for (int h = 0; h < 8; ++h)
      for (int w = 0; w < 8; ++w) {
        float a = engine_detail::half_to_float(hy[(h * 8 + w) * 8 + c]);
        float b = want.f32()[(c * 8 + h) * 8 + w];
        EXPECT_NEAR(a, b, std::fabs(b) * 1e-3f + 1e-3f);
      }
  // int8 in and out use the tensors' scales.
  e.input_formats = {TensorFormat{"x", DataType::kInt8, TensorLayout::kNCHW}};
  e.output_formats = {TensorFormat{"y", DataType::kInt8, TensorLayout::kNCHW}};
  auto e8 = Engine::from_contents(e, "int8");
  HostTensor q = HostTensor::zeros("x", DataType::kInt8, {1, 3, 8, 8});
  HostTensor qf = HostTensor::zeros("x", DataType::kFloat, {1, 3, 8, 8});
  for (int64_t i = 0; i < q.count(); ++i) {
    int8_t v = int8_t(int(i % 200) - 100);
    q.data[i] = uint8_t(v);
    qf.f32()[i] = float(v) / 127.f;
  }
  auto o8 = e8->create_context(1)->run({{"x", q}}).at("y");
  auto w8 = ref->run({{"x", qf}}).at("y");
  ASSERT_EQ(o8.type, DataType::kInt8);
  for (int64_t i = 0; i < o8.count(); ++i) {
    float expect = std::min(127.f, std::max(-127.f, std::nearbyint(w8.f32()[i] / 0.05f)));
    EXPECT_NEAR(float(int8_t(o8.data[i])), expect, 1.f);
  }
  // The wrong input type is one clear error.
  try {
    e8->create_context(1)->run({{"x", qf}});
    FAIL();
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what()).find("input 'x'"), std::string::npos) << err.what();
  }
}

TEST(EnginePasses, FoldScaleDropIdentityKeepOutputsAndPlan) {
  Network net = test::small_network();
  Plan plan = test::all_gpu_plan(net);
  plan.layers[0].precision = Precision::kFP16;  // conv: the fused layer keeps it
  auto ref = make_cpu_executor(net);
  HostTensor x = random_input({1, 3, 8, 8}, 9);
  auto want = ref->run({{"x", x}}).at("y");
  Network n2 = net;
  Plan p2 = plan;
  auto rep = engine_detail::run_passes(n2, p2);
  EXPECT_EQ(rep.folded_scales, 1);
  EXPECT_EQ(rep.dropped, 1);
  EXPECT_EQ(n2.find_layer("bn"), -1);
  EXPECT_EQ(n2.find_layer("id"), -1);
  ASSERT_GE(n2.find_layer("conv"), 0);
  EXPECT_EQ(p2.layers[n2.find_layer("conv")].precision, Precision::kFP16);
  EXPECT_EQ(p2.layers.size(), n2.layers.size());
  EXPECT_EQ(n2.tensors[n2.layers[n2.find_layer("conv")].outputs[0]].name, "bn_out");
  EXPECT_EQ(n2.find_tensor("conv_out"), -1);
  auto got = make_cpu_executor(n2)->run({{"x", x}}).at("y");
  EXPECT_LE(max_abs_diff(got, want), 1e-5f);
}

TEST(EnginePasses, NeverFuseAcrossDevices) {
  Network net = test::small_network();
  Plan plan = test::all_gpu_plan(net);
  plan.layers[0] = LayerPlacement{Device::kDLA, Precision::kINT8, 0, "dla"};
  plan.regions.push_back(Region{{0}, 0, 0, true, ""});
  auto rep = engine_detail::run_passes(net, plan);
  EXPECT_EQ(rep.folded_scales, 0);
  EXPECT_GE(net.find_layer("bn"), 0);
  ASSERT_EQ(plan.crossings.size(), 1u);
  EXPECT_EQ(net.tensors[plan.crossings[0].tensor].name, "conv_out");
  EXPECT_EQ(plan.crossings[0].bytes, 8 * 8 * 8);  // int8 at the producer
}

TEST(EnginePasses, FoldsConstantSubgraphs) {
  Network net = test::small_network();
  // k -> unary(abs) -> add: the unary is constant-only.
  TensorId kt = net.layers[net.find_layer("k")].outputs[0];
  TensorId absd = net.add_tensor(Tensor{"k_abs", DataType::kFloat, net.tensors[kt].dims});
  Layer u{"k_abs", LayerKind::kUnary, {kt}, {absd}, UnaryParams{UnaryOp::kAbs}, "", "Abs"};
  // Insert before "add" to keep topological order: rebuild the layer list.
  Network n2;
  n2.tensors = net.tensors;
  n2.weights = net.weights;
  n2.inputs = net.inputs;
  n2.outputs = net.outputs;
  for (auto& t : n2.tensors) t.producer = -1;
  for (const Layer& l : net.layers) {
    if (l.name == "add") {
      n2.add_layer(u);
      Layer a = l;
      a.inputs[1] = absd;
      n2.add_layer(a);
    } else {
      n2.add_layer(l);
    }
  }
  n2.verify();
  auto want = make_cpu_executor(n2)->run({{"x", random_input({1, 3, 8, 8}, 2)}}).at("y");
  Plan p = test::all_gpu_plan(n2);
  auto rep = engine_detail::run_passes(n2, p);
  EXPECT_EQ(rep.folded_constants, 1);
  EXPECT_EQ(n2.layers[n2.find_layer("k_abs")].kind, LayerKind::kConstant);
  EXPECT_EQ(n2.find_layer("k"), -1);  // dead now
  auto got = make_cpu_executor(n2)->run({{"x", random_input({1, 3, 8, 8}, 2)}}).at("y");
  EXPECT_LE(max_abs_diff(got, want), 1e-5f);
}

TEST(EngineFile, LoadErrorsNameTheFile) {
  std::string d = temp_dir("load");
  std::string p = d + "/small.engine";
  write_engine_file(p, test::small_contents());
  EXPECT_NO_THROW(Engine::load(p));
  auto bytes = engine_detail::read_file_bytes(p);
  for (size_t cut : {size_t(10), bytes.size() / 2, bytes.size() - 1}) {
    engine_detail::write_file_atomic(p, bytes.data(), cut);
    try {
      Engine::load(p);
      FAIL() << cut;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(Engine::load(d + "/missing.engine"), Error);
  fs::remove_all(d);
}

// Engine::load keeps the FP32 weights in the file's mapping (views, issue 14: "map the file, no
// per-load copy"); compiling a context reads them in place, and the outputs equal those of the
// same contents held in memory. The file can be replaced meanwhile (the cache renames new files
// over old ones): the mapping keeps the old inode.
TEST(EngineFile, LoadedWeightsAreViewsIntoTheFile) {
  std::string d = temp_dir("views");
  std::string p = d + "/fp32.engine";
  EngineContents e = fp32_contents();
  write_engine_file(p, e);
  auto loaded = Engine::load(p);
  const auto& ws = loaded->network().weights;
  ASSERT_FALSE(ws.empty());
  for (const Weights& w : ws) {
    EXPECT_TRUE(w.bytes.is_view()) << w.name;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(w.bytes.data()) % 64, 0u) << w.name;
  }
  auto ctx = loaded->create_context(1);
  for (const Weights& w : ws) EXPECT_TRUE(w.bytes.is_view()) << w.name << " was copied by create_context";
  auto ref = Engine::from_contents(e, "mem")->create_context(1);
  engine_detail::write_file_atomic(p, "x", 1);  // replaced on disk: the loaded engine is unaffected
  for (uint32_t s = 0; s < 2; ++s) {
    TensorMap in{{"x", random_input({1, 3, 8, 8}, s)}};
    EXPECT_EQ(ctx->run(in).at("y").data, ref->run(in).at("y").data);
  }
  fs::remove_all(d);
}

// Engine::load leaves the weights' checksum to their first use (issue 14: load maps the file and
// reads its tables, not all of it): a flipped weight byte loads, then the first context (and every
// one after it) fails with the loader's one line; deserialize_engine still checks every section.
TEST(EngineFile, FlippedWeightByteFailsAtTheFirstContextWithTheLoadersLine) {
  const std::string d = temp_dir("wsum"), p = d + "/fp32.engine";
  const EngineContents e = fp32_contents();
  write_engine_file(p, e);
  auto bytes = engine_detail::read_file_bytes(p);
  const Weights* w = nullptr;
  for (const Weights& x : e.network.weights)
    if (x.bytes.size() >= 16 && (!w || x.bytes.size() > w->bytes.size())) w = &x;
  ASSERT_NE(w, nullptr);
  auto at = std::search(bytes.begin(), bytes.end(), w->bytes.data(), w->bytes.data() + w->bytes.size());
  ASSERT_NE(at, bytes.end()) << w->name;
  at[3] ^= 0x40;
  engine_detail::write_file_atomic(p, bytes.data(), bytes.size());
  std::shared_ptr<const Engine> loaded;
  ASSERT_NO_THROW(loaded = Engine::load(p));
  const std::string want = p + ": section WGHT: checksum mismatch (corrupt file)";
  for (int i = 0; i < 2; ++i) {
    try {
      loaded->create_context(1);
      FAIL() << "a context over a corrupt weight";
    } catch (const Error& err) {
      EXPECT_EQ(err.what(), want);
    }
  }
  try {
    deserialize_engine(bytes.data(), bytes.size(), p);
    FAIL() << "deserialize_engine checks every section";
  } catch (const Error& err) {
    EXPECT_EQ(err.what(), want);
  }
  write_engine_file(p, e);
  auto good = Engine::load(p);
  EXPECT_NO_THROW(good->check_weights());
  EXPECT_NO_THROW(good->create_context(1));
  fs::remove_all(d);
}

TEST(TimingCache, MergeOnWriteAndRefuseForeignDevice) {
  std::string d = temp_dir("timing");
  std::string p = d + "/t.cache";
  TimingCache a = TimingCache::read(p, "dev-A", false);
  EXPECT_TRUE(a.entries.empty());
  a.entries["sig1"] = Tactic{"sig1", "cpu.threads=1", 2.0};
  a.merge_write(p);
  TimingCache b = TimingCache::read(p, "dev-A", false);
  b.entries.clear();
  b.entries["sig2"] = Tactic{"sig2", "cpu.threads=2", 1.0};
  b.merge_write(p);  // merged, not overwritten
  TimingCache c = TimingCache::read(p, "dev-A", false);
  EXPECT_EQ(c.entries.size(), 2u);
  EXPECT_EQ(c.entries["sig1"].name, "cpu.threads=1");
  try {
    TimingCache::read(p, "dev-B", false);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("another device"), std::string::npos) << e.what();
  }
  TimingCache ok = TimingCache::read(p, "dev-B", true);
  EXPECT_EQ(ok.entries.size(), 2u);
  EXPECT_EQ(ok.device_key, "dev-B");
  EXPECT_FALSE(host_device_key().empty());
  fs::remove_all(d);
}

// A version field that is no int (a float, too large, a string) is one error naming the file and
// the key: nlohmann's get<int>() would cast 1.4e21 without a check, undefined behaviour (found
// by fuzz_caches, fuzz/regressions/caches/crash-8d18cc92...).
TEST(TimingCache, VersionThatIsNoIntIsOneError) {
  std::string d = temp_dir("timing_version");
  std::string p = d + "/t.cache";
  for (const char* version : {"1444444444444444444444", "1e30", "-1e30", "1.5", "\"1\"", "4294967297"}) {
    {
      std::ofstream f(p, std::ios::binary | std::ios::trunc);
      f << R"({"format": "tandem-timing-cache", "version": )" << version << R"(, "device": "dev-A", "entries": {}})";
    }
    try {
      TimingCache::read(p, "dev-A", false);
      ADD_FAILURE() << version;
    } catch (const Error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find(p), std::string::npos) << what;
      EXPECT_NE(what.find("'version'"), std::string::npos) << what;
      EXPECT_EQ(what.find('\n'), std::string::npos) << what;
    }
  }
  fs::remove_all(d);
}

TEST(BuildOptions, ValidationErrorsAreOneLine) {
  BuildOptions o;
  o.optimization_level = 6;
  EXPECT_THROW(validate(o), Error);
  o = {};
  o.dla_core = 3;
  EXPECT_THROW(validate(o), Error);
  o = {};
  o.calibration.images_dir = "/nonexistent";
  EXPECT_THROW(validate(o), Error);
  o = {};
  o.calibration.images_dir = ".";
  o.calibration.synthetic = true;
  EXPECT_THROW(validate(o), Error);
  o = {};
  o.default_device = Device::kDLA;
  try {
    validate(o);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos);
  }
  o = {};
  o.input_formats = {TensorFormat{"x", DataType::kInt32, TensorLayout::kNCHW}};
  EXPECT_THROW(validate(o), Error);
  EXPECT_THROW(parse_tensor_format("x"), Error);
  EXPECT_THROW(parse_tensor_format("x:int32"), Error);
  EXPECT_EQ(parse_tensor_format("a:b:fp16:nhwc").name, "a:b");
  EXPECT_NO_THROW(validate(BuildOptions{}));
}

TEST(BuildOptions, CanonicalOptionsChangeWithEveryOption) {
  BuildOptions a;
  std::string base = canonical_options(a);
  std::vector<std::function<void(BuildOptions&)>> edits = {
      [](BuildOptions& o) { o.fp16 = true; }, [](BuildOptions& o) { o.int8 = true; },
      [](BuildOptions& o) { o.optimization_level = 2; }, [](BuildOptions& o) { o.direct_io = true; },
      [](BuildOptions& o) { o.dla_core = 1; }, [](BuildOptions& o) { o.max_chunks = 0; },
      [](BuildOptions& o) { o.min_layers = 5; }, [](BuildOptions& o) { o.workspace_gib = 2; },
      [](BuildOptions& o) { o.shapes = {{"x", {1, 3, 4, 4}}}; },
      [](BuildOptions& o) { o.input_formats = {TensorFormat{"x", DataType::kHalf, TensorLayout::kNCHW}}; },
      [](BuildOptions& o) { o.layer_precision = {{"c", Precision::kFP32}}; },
      [](BuildOptions& o) { o.layer_device = {{"c", Device::kDLA}}; },
      [](BuildOptions& o) { o.gpu_fallback = true; }, [](BuildOptions& o) { o.passes = false; },
      [](BuildOptions& o) { o.calibration.batch_size = 2; }, [](BuildOptions& o) { o.target = DlaTarget::kXavier; },
      [](BuildOptions& o) { o.hooks = {BuildHook{"h", [](Network&) {}}}; },
      [](BuildOptions& o) { o.prefer_precision_constraints = true; },
      [](BuildOptions& o) { o.reject_empty_algorithms = true; },
  };
  for (size_t i = 0; i < edits.size(); ++i) {
    BuildOptions b;
    edits[i](b);
    EXPECT_NE(canonical_options(b), base) << i;
  }
  // Output-only settings do not change the key.
  BuildOptions c;
  c.verbose = true;
  c.cache_dir = "/elsewhere";
  c.threads = 3;
  EXPECT_EQ(canonical_options(c), base);
}
