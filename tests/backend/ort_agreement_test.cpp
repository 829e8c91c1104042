// Agreement with a real peer: PP-OCR det and cls in tandem (CPU backend) and in ONNX Runtime
// (tools/peer/ort_run.js, onnxruntime-node) on the same seeded inputs.
// Relative error of an output: max|a - b| / max(max|b|, eps), a = tandem, b = ONNX Runtime,
// eps = 1e-6. Must be < 1e-4 for every output. Missing node / ORT / models is a FAILURE.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <random>

#include "tandem/npy.h"
#include "tandem/onnx.h"
#include "tandem/runtime.h"

using namespace tandem;
namespace fs = std::filesystem;

namespace {

const std::string kRoot = TANDEM_SOURCE_DIR;

double relative_error(const HostTensor& a, const HostTensor& b) {
  double max_diff = 0, max_ref = 0;
  for (int64_t i = 0; i < b.count(); ++i) {
    max_diff = std::max(max_diff, std::fabs(double(a.f32()[i]) - double(b.f32()[i])));
    max_ref = std::max(max_ref, std::fabs(double(b.f32()[i])));
  }
  return max_diff / std::max(max_ref, 1e-6);
}

bool peer_available(std::string* why) {
  if (std::system("node --version > /dev/null 2>&1") != 0) {
    *why = "node is not installed: run scripts/setup.sh";
    return false;
  }
  if (!fs::exists(kRoot + "/tools/peer/node_modules/onnxruntime-node/package.json")) {
    *why = "onnxruntime-node is not installed in tools/peer: run scripts/setup.sh";
    return false;
  }
  return true;
}

void check_model(const std::string& file, const std::string& input, Dims dims, uint64_t seed) {
  std::string model = kRoot + "/.data/models/" + file;
  ASSERT_TRUE(fs::exists(model)) << model << " is missing: run scripts/setup.sh (or scripts/fetch-data.sh)";
  std::string why;
  ASSERT_TRUE(peer_available(&why)) << why;

  fs::path dir = fs::temp_directory_path() / ("tandem_ort_" + std::to_string(::getpid()) + "_" + file);
  fs::create_directories(dir);
  // Seeded synthetic "document" image: light background with dark random strokes, normalised as
  // PP-OCR does ((v - mean) / std, ImageNet statistics), so that the det output spans [0, 1]
  // instead of sitting near 0 (where a relative error only measures float noise).
  HostTensor x = HostTensor::zeros(input, DataType::kFloat, dims);
  std::mt19937 rng{static_cast<uint32_t>(seed)};
  int64_t H = dims[2], W = dims[3];
  std::vector<float> img(size_t(H * W), 0.9f);
  std::uniform_int_distribution<int64_t> ry(0, H - 1), rx(0, W - 1), rl(W / 16, W / 3), rt(1, std::max<int64_t>(2, H / 40));
  std::uniform_real_distribution<float> noise(-0.05f, 0.05f);
  for (int k = 0; k < 40; ++k) {
    int64_t y0 = ry(rng), x0 = rx(rng), len = rl(rng), th = rt(rng) * 4;
    for (int64_t y = y0; y < std::min(H, y0 + th); ++y)
      for (int64_t xx = x0; xx < std::min(W, x0 + len); ++xx)
        if ((xx / 3 + y) % 5 < 3) img[size_t(y * W + xx)] = 0.1f;
  }
  const float mean[3] = {0.485f, 0.456f, 0.406f}, stdv[3] = {0.229f, 0.224f, 0.225f};
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t i = 0; i < H * W; ++i) x.f32()[c * H * W + i] = (img[size_t(i)] + noise(rng) - mean[c]) / stdv[c];
  write_npy((dir / "x.npy").string(), x);

  ImportOptions io;
  io.shapes.push_back({input, dims});
  Network net = import_onnx(model, io);
  ExecOptions opt;
  opt.threads = 2;
  auto ex = make_cpu_executor(net, opt);
  TensorMap out = ex->run({{input, x}});

  std::string cmd = "node " + kRoot + "/tools/peer/ort_run.js " + model + " --input " + input + "=" +
                    (dir / "x.npy").string() + " --output-dir " + (dir / "ort").string() + " --threads 2";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd << " failed: run scripts/setup.sh";
  ASSERT_FALSE(out.empty());
  for (const auto& [name, t] : out) {
    std::string safe;
    for (char c : name) safe += (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-') ? c : '_';
    HostTensor ref = read_npy((dir / "ort" / (safe + ".npy")).string());
    ASSERT_EQ(ref.dims, t.dims) << name;
    double rel = relative_error(t, ref);
    double max_ref = 0;
    for (int64_t i = 0; i < ref.count(); ++i) max_ref = std::max(max_ref, std::fabs(double(ref.f32()[i])));
    std::printf("%s %s: relative error %.3g (max |ORT| %.3g)\n", file.c_str(), name.c_str(), rel, max_ref);
    EXPECT_LT(rel, 1e-4) << file << " output " << name;
  }
  fs::remove_all(dir);
}

}  // namespace

TEST(OrtAgreement, PPOCRDet) { check_model("ch_PP-OCRv4_det_infer.onnx", "x", {1, 3, 640, 640}, 1); }
TEST(OrtAgreement, PPOCRCls) { check_model("ch_ppocr_mobile_v2.0_cls_infer.onnx", "x", {1, 3, 48, 192}, 2); }
