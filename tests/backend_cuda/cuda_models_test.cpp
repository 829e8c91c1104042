// Whole-model agreement: the CUDA backend against the CPU backend (the reference) on the
// PP-OCR det and cls models, FP32 with TF32 off. Label gpu.
// Error measure: max_i |gpu_i - cpu_i| / max_i |cpu_i| per output (relative to the output's
// range; element-wise relative error is meaningless where the reference is ~0). Bound 1e-3.
#include <filesystem>
#include <random>

#include "tandem/onnx.h"
#include "test_util.h"

using namespace tandem;
using namespace tandem::test;

namespace {

std::string model_path(const std::string& file) {
  return std::string(TANDEM_SOURCE_DIR) + "/.data/models/" + file;
}

void compare_model(const std::string& file, const std::string& input, Dims dims) {
  std::string path = model_path(file);
  if (!std::filesystem::exists(path)) FAIL() << path << " missing: run scripts/fetch-data.sh";
  ImportOptions io;
  io.shapes = {{input, dims}};
  Network net = import_onnx(path, io);
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> xv(size_t(volume(dims)));
  for (auto& v : xv) v = u(rng);
  TensorMap in = {{input, host(input, dims, xv)}};
  auto cpu = make_cpu_executor(net, {});
  TensorMap want = cpu->run(in);
  auto gpu = make_cuda_executor(net, {}, CudaOptions{});
  TensorMap got = gpu->run(in);
  TensorMap got2 = gpu->run(in);  // second run: CUDA graph replay
  EXPECT_TRUE(gpu->using_cuda_graph());
  for (const auto& [name, w] : want) {
    ASSERT_TRUE(got.count(name)) << name;
    auto g = values(got.at(name)), g2 = values(got2.at(name)), r = values(w);
    ASSERT_EQ(g.size(), r.size());
    double maxref = 0, maxdiff = 0, maxdiff2 = 0;
    for (size_t i = 0; i < r.size(); ++i) {
      ASSERT_FALSE(std::isnan(g[i])) << name << " NaN at " << i;
      maxref = std::max(maxref, double(std::fabs(r[i])));
      maxdiff = std::max(maxdiff, double(std::fabs(g[i] - r[i])));
      maxdiff2 = std::max(maxdiff2, double(std::fabs(g2[i] - r[i])));
    }
    double rel = maxdiff / std::max(maxref, 1e-12), rel2 = maxdiff2 / std::max(maxref, 1e-12);
    std::printf("[model] %s %s: max|ref| %.4g, max rel err %.3g (graph replay %.3g), %zu tactics, arena %.1f MiB\n",
                file.c_str(), name.c_str(), maxref, rel, rel2, gpu->tactics().size(),
                double(gpu->arena_bytes()) / (1 << 20));
    EXPECT_LT(rel, 1e-3) << name;
    EXPECT_LT(rel2, 1e-3) << name;
  }
}

}  // namespace

TEST(CudaModels, PPOCRDetAgreesWithCpu) {
  SKIP_WITHOUT_CUDA();
  compare_model("ch_PP-OCRv4_det_infer.onnx", "x", {1, 3, 640, 640});
}

TEST(CudaModels, PPOCRClsAgreesWithCpu) {
  SKIP_WITHOUT_CUDA();
  compare_model("ch_ppocr_mobile_v2.0_cls_infer.onnx", "x", {1, 3, 48, 192});
}
