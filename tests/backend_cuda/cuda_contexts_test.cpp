// Issue 13 items 3 and 4 on the GPU (label gpu; each test skips visibly without a device):
// - ExecOptions::observe_tensor on the CUDA executor gives every tensor the CPU executor gives,
//   with the same values up to FP32 summation order (what calibrate --backend cuda reads);
// - engines of batch 1, 32 and 256 run on the CUDA backend and agree with the CPU backend;
// - several ExecutionContexts of one Engine, one per host thread, run concurrently and give the
//   outputs a single context gives.
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>
#include <thread>

#include "tandem/builder.h"
#include "tandem/engine.h"
#include "tandem/onnx.h"
#include "test_util.h"

using namespace tandem;
using namespace tandem::test;

namespace {

const char* kClsFile = "ch_ppocr_mobile_v2.0_cls_infer.onnx";

std::string cls_path() { return std::string(TANDEM_SOURCE_DIR) + "/.data/models/" + kClsFile; }

std::vector<float> random_values(int64_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = u(rng);
  return v;
}

// max |a - b| / max |b| (relative to the reference's range; 0 for two empty tensors).
double range_relative_error(const std::vector<float>& a, const std::vector<float>& b) {
  double maxref = 0, maxdiff = 0;
  for (size_t i = 0; i < b.size() && i < a.size(); ++i) {
    maxref = std::max(maxref, double(std::fabs(b[i])));
    maxdiff = std::max(maxdiff, std::isnan(a[i]) ? 1e30 : double(std::fabs(a[i] - b[i])));
  }
  return maxdiff / std::max(maxref, 1e-12);
}

// Every float tensor the observer is given, by TensorId (calls: how many times it was called).
ExecOptions observing_options(const Network& net, std::map<TensorId, std::vector<float>>* seen, int* calls) {
  ExecOptions eo;
  eo.threads = 1;
  eo.fuse = false;  // as calibration: every tensor computed
  eo.observe_tensor = [&net, seen, calls](TensorId t, const void* data) {
    ++*calls;
    const Tensor& T = net.tensors[size_t(t)];
    if (T.type != DataType::kFloat) return;
    const float* x = static_cast<const float*>(data);
    (*seen)[t].assign(x, x + volume(T.dims));
  };
  return eo;
}

// The engine file of cls at `batch` (FP32, no tactic timing), built once per batch.
std::string cls_engine(int batch) {
  const auto dir = std::filesystem::temp_directory_path() / ("tandem-contexts-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / ("cls_b" + std::to_string(batch) + ".engine")).string();
  if (std::filesystem::exists(path)) return path;
  BuildOptions o;
  o.shapes = {parse_shape_arg("x:" + std::to_string(batch) + "x3x48x192")};
  o.optimization_level = 0;
  build_engine(cls_path(), path, o);
  return path;
}

TensorMap cls_input(int batch, unsigned seed) {
  const Dims d{batch, 3, 48, 192};
  return {{"x", host("x", d, random_values(volume(d), seed))}};
}

// The CUDA plugin next to the tandem CLI of this build (the registry looks next to the test binary
// first: on the device machine the binaries travel together).
void find_plugin() { ::setenv("TANDEM_PLUGIN_PATH", TANDEM_BINARY_DIR "/tools/tandem", 0); }

}  // namespace

TEST(CudaObserve, EveryTensorOfClsAsTheCpuObservesIt) {
  SKIP_WITHOUT_CUDA();
  if (!std::filesystem::exists(cls_path())) FAIL() << cls_path() << " missing: run scripts/fetch-data.sh";
  ImportOptions io;
  io.shapes = {{"x", Dims{1, 3, 48, 192}}};
  const Network net = import_onnx(cls_path(), io);
  const TensorMap in = cls_input(1, 5);
  std::map<TensorId, std::vector<float>> cpu_seen, gpu_seen;
  int cpu_calls = 0, gpu_calls = 0;
  auto cpu = make_cpu_executor(net, observing_options(net, &cpu_seen, &cpu_calls));
  auto gpu = make_cuda_executor(net, observing_options(net, &gpu_seen, &gpu_calls), CudaOptions{});
  cpu->run(in);
  gpu->run(in);
  const int first_calls = gpu_calls;
  gpu_seen.clear();
  gpu->run(in);  // the second run replays the CUDA graph: the tensors are observed again
  EXPECT_EQ(gpu_calls, 2 * first_calls);
  ASSERT_GT(cpu_seen.size(), 100u);  // cls: every activation of ~150 layers
  // Every tensor the CPU gives calibration, the GPU gives too (it keeps them all: keep_all's lowering).
  EXPECT_GE(gpu_seen.size(), cpu_seen.size());
  double worst = 0;
  std::string worst_name;
  for (const auto& [t, want] : cpu_seen) {
    auto it = gpu_seen.find(t);
    ASSERT_NE(it, gpu_seen.end()) << "the CUDA executor did not observe '" << net.tensors[size_t(t)].name << "'";
    ASSERT_EQ(it->second.size(), want.size()) << net.tensors[size_t(t)].name;
    const double e = range_relative_error(it->second, want);
    if (e > worst) worst = e, worst_name = net.tensors[size_t(t)].name;
  }
  std::printf("[observe] cls: %zu tensors observed on both backends, worst max rel err %.3g ('%s')\n",
              cpu_seen.size(), worst, worst_name.c_str());
  EXPECT_LT(worst, 1e-4) << worst_name;
}

TEST(CudaBatch, ClsEnginesOfBatch1_32_256RunOnCuda) {
  SKIP_WITHOUT_CUDA();
  if (!std::filesystem::exists(cls_path())) FAIL() << cls_path() << " missing: run scripts/fetch-data.sh";
  find_plugin();
  for (int batch : {1, 32, 256}) {
    auto engine = Engine::load(cls_engine(batch));
    const TensorMap in = cls_input(batch, 7);
    auto cpu = engine->create_context(0, "cpu");
    auto gpu = engine->create_context(0, "cuda");
    const TensorMap want = cpu->run(in);
    const TensorMap got = gpu->run(in), again = gpu->run(in);
    const RunSplit s = gpu->last_run_split();
    EXPECT_TRUE(s.device_copies);
    EXPECT_GT(s.h2d_ms, 0.0) << batch;
    for (const auto& [name, w] : want) {
      ASSERT_TRUE(got.count(name)) << name;
      ASSERT_EQ(got.at(name).dims, w.dims) << name;
      const double e = range_relative_error(values(got.at(name)), values(w));
      const double e2 = range_relative_error(values(again.at(name)), values(w));
      std::printf("[batch] cls batch %d: %s %s max rel err %.3g (replay %.3g); h2d %.3f ms, compute %.3f ms, d2h %.3f ms\n",
                  batch, name.c_str(), dims_to_string(w.dims).c_str(), e, e2, s.h2d_ms, s.compute_ms, s.d2h_ms);
      EXPECT_LT(e, 1e-3) << "batch " << batch << " " << name;
      EXPECT_LT(e2, 1e-3) << "batch " << batch << " " << name;
    }
  }
}

TEST(CudaContexts, ConcurrentContextsOfOneEngineMatchOneContext) {
  SKIP_WITHOUT_CUDA();
  if (!std::filesystem::exists(cls_path())) FAIL() << cls_path() << " missing: run scripts/fetch-data.sh";
  find_plugin();
  auto engine = Engine::load(cls_engine(8));
  constexpr int kThreads = 4, kRuns = 20;
  std::vector<TensorMap> inputs, want;
  {
    auto one = engine->create_context(0, "cuda");
    for (int k = 0; k < kThreads; ++k) {
      inputs.push_back(cls_input(8, 100 + unsigned(k)));
      want.push_back(one->run(inputs.back()));
    }
  }
  // Distinct inputs: a context that read another's buffers would give another thread's outputs.
  ASSERT_GT(range_relative_error(values(want[0].begin()->second), values(want[1].begin()->second)), 1e-3);
  std::vector<double> worst(kThreads, 0.0);
  std::vector<std::string> errors(kThreads);
  std::atomic<int> ready{0};
  std::vector<std::thread> pool;
  for (int k = 0; k < kThreads; ++k)
    pool.emplace_back([&, k] {
      try {
        auto ctx = engine->create_context(0, "cuda");  // compiled on its own thread, as an application would
        ++ready;
        while (ready.load() < kThreads) std::this_thread::yield();  // all run at once
        for (int r = 0; r < kRuns; ++r) {
          const TensorMap got = ctx->run(inputs[size_t(k)]);
          for (const auto& [name, w] : want[size_t(k)])
            worst[size_t(k)] = std::max(worst[size_t(k)], range_relative_error(values(got.at(name)), values(w)));
        }
      } catch (const std::exception& e) {
        errors[size_t(k)] = e.what();
        ++ready;
      }
    });
  for (auto& t : pool) t.join();
  for (int k = 0; k < kThreads; ++k) {
    EXPECT_EQ(errors[size_t(k)], "") << "thread " << k;
    std::printf("[contexts] thread %d: %d runs, worst max rel err against one context %.3g\n", k, kRuns, worst[size_t(k)]);
    // Each context times its own tactics: another cuDNN algorithm may sum in another order.
    EXPECT_LT(worst[size_t(k)], 1e-4) << "thread " << k;
  }
}
