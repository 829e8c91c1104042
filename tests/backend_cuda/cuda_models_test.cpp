// Whole-model agreement: the CUDA backend against the CPU backend (the reference) on the
// PP-OCR det and cls models, FP32 with TF32 off, and the INT8 emulation of cls. Label gpu.
// Error measure: max_i |gpu_i - cpu_i| / max_i |cpu_i| per output (relative to the output's
// range; element-wise relative error is meaningless where the reference is ~0). Bound 1e-3.
#include <filesystem>
#include <random>

#include "tandem/onnx.h"
#include "tandem/plan.h"
#include "tandem/quant.h"
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


// INT8 emulation of the cls all-chunks plan (scales calibrated on seeded random inputs): the CUDA
// backend's fake quantization ([-128, 127] activations), per-channel FC weights, fused
// Conv + BN (+ activation) blocks and int32 conv biases against the CPU backend's. Compared
// tensor by tensor: cuDNN and oneDNN sum in different orders, so a value within a float ulp of
// a rounding midpoint may round to the neighbouring integer (one scale step, a handful of
// elements); a systematic difference moves many elements of a tensor.
TEST(CudaModels, PPOCRClsInt8AgreesWithCpu) {
  SKIP_WITHOUT_CUDA();
  std::string path = model_path("ch_ppocr_mobile_v2.0_cls_infer.onnx");
  if (!std::filesystem::exists(path)) FAIL() << path << " missing: run scripts/fetch-data.sh";
  ImportOptions io;
  io.shapes = {{"x", {1, 3, 48, 192}}};
  Network net = import_onnx(path, io);
  PlanOptions po;
  po.max_chunks = 0;
  po.min_layers = 0;
  Plan plan = make_plan(net, po);
  auto b = make_synthetic_batcher(input_specs(net), 1, 2, -1.f, 1.f, 3);
  CalibrateOptions co;
  co.progress = false;
  ExecOptions eo;
  eo.numerics = make_numerics(net, plan, calibrate(net, plan, *b, co).scales);
  int fused = int(eo.numerics.unquantized.size()), per_channel = int(eo.numerics.per_channel_axis.size());
  EXPECT_GT(fused, 0);
  TensorMap in;
  auto d = make_synthetic_batcher(input_specs(net), 1, 1, -1.f, 1.f, 7);
  ASSERT_TRUE(d->next(&in));
  auto cpu = make_cpu_executor(net, eo, true);
  auto gpu = make_cuda_executor(net, eo, CudaOptions{}, true);
  cpu->run(in);
  gpu->run(in);
  const TensorMap& want = cpu->all_tensors();
  const TensorMap& got = gpu->all_tensors();
  int64_t total = 0, off = 0, compared = 0;
  std::string worst;
  double worst_frac = 0;
  for (const auto& [name, w] : want) {
    auto it = got.find(name);
    if (it == got.end() || w.type != DataType::kFloat || it->second.count() != w.count()) continue;
    auto r = values(w), g = values(it->second);
    double maxref = 0;
    for (float v : r) maxref = std::max(maxref, double(std::fabs(v)));
    int64_t n_off = 0;
    for (size_t i = 0; i < r.size(); ++i) n_off += std::fabs(g[i] - r[i]) > 1e-4 * std::max(maxref, 1e-6);
    double frac = double(n_off) / double(std::max<size_t>(1, r.size()));
    if (frac > worst_frac) worst_frac = frac, worst = name;
    total += int64_t(r.size());
    off += n_off;
    ++compared;
  }
  std::printf("[model] cls int8 all-chunks: %d fused tensors, %d per-channel weights, %lld tensors compared, "
              "%lld of %lld elements off by more than 1e-4 of the tensor's range (worst %s: %.3g%%)\n",
              fused, per_channel, (long long)compared, (long long)off, (long long)total, worst.c_str(),
              100 * worst_frac);
  EXPECT_GT(compared, 100);
  EXPECT_LT(double(off), 1e-3 * double(total));
}
