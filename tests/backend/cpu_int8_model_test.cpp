// Real INT8 on a whole model: PP-OCRv4 det with every convolution and both deconvolutions of its
// head INT8 (scales max|t| / 127 of
// an FP32 run, as `build --int8` without a cache would take them) gives the same bits whichever
// way the integer sums are computed (oneDNN VNNI where the CPU has it, integer-valued FP32
// sums), and differs from the FP32 emulation by summation rounding only.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>

#include "../../src/backend/cpu/kernels.h"
#include "tandem/onnx.h"
#include "tandem/runtime.h"

using namespace tandem;

namespace {

const std::string kDet = std::string(TANDEM_SOURCE_DIR) + "/.data/models/ch_PP-OCRv4_det_infer.onnx";

struct EnvVar {
  std::string name;
  EnvVar(const std::string& n, const std::string& v) : name(n) { setenv(n.c_str(), v.c_str(), 1); }
  ~EnvVar() { unsetenv(name.c_str()); }
};

HostTensor seeded_input(const Dims& d) {
  HostTensor t = HostTensor::zeros("x", DataType::kFloat, d);
  float* p = reinterpret_cast<float*>(t.data.data());
  uint32_t s = 12345;
  for (int64_t i = 0; i < t.count(); ++i) {
    s = s * 1664525u + 1013904223u;
    p[i] = float(s >> 8) / float(1u << 24) * 2.f - 1.f;
  }
  return t;
}

// Scales of every float tensor, max|t| / 127 of one FP32 run with all tensors kept (as `build --int8`
// without a cache would take them).
void set_fp32_scales(const Network& net, const TensorMap& in, ExecOptions& opt) {
  auto fp32 = make_cpu_executor(net, opt, true);
  fp32->run(in);
  for (const auto& [name, t] : fp32->all_tensors()) {
    if (t.type != DataType::kFloat) continue;
    float m = 0.f;
    for (int64_t i = 0; i < t.count(); ++i) m = std::max(m, std::fabs(t.f32()[i]));
    opt.numerics.tensor_scales[name] = m > 0.f && std::isfinite(m) ? m / 127.f : 1.f;
  }
}

}  // namespace

TEST(CpuInt8Model, DetAllConvolutionsInt8SameBitsInEveryPath) {
  ASSERT_TRUE(std::filesystem::exists(kDet)) << "model missing: " << kDet << " (scripts/fetch-data.sh)";
  ImportOptions io;
  io.shapes = {{"x", {1, 3, 160, 160}}};
  const Network net = import_onnx(kDet, io);
  const TensorMap in = {{"x", seeded_input({1, 3, 160, 160})}};
  // Scales of every float tensor from one FP32 run with all tensors kept.
  ExecOptions opt;
  opt.threads = 2;
  set_fp32_scales(net, in, opt);
  opt.numerics.layer_precision.assign(net.layers.size(), Precision::kUnset);
  int convs = 0, deconvs = 0;
  for (size_t i = 0; i < net.layers.size(); ++i) {
    const LayerKind k = net.layers[i].kind;
    if (k == LayerKind::kConvolution || k == LayerKind::kDeconvolution) opt.numerics.layer_precision[i] = Precision::kINT8;
    convs += k == LayerKind::kConvolution;
    deconvs += k == LayerKind::kDeconvolution;
  }
  ASSERT_GT(convs, 50);
  ASSERT_EQ(deconvs, 2);
  const int layers = convs + deconvs;
  auto run = [&](const std::string& path, int* real) {
    EnvVar p("TANDEM_CPU_INT8", path);
    auto ex = make_cpu_executor(net, opt);
    const HostTensor y = ex->run(in).begin()->second;
    *real = 0;
    for (const StepTime& s : ex->profile(1)) *real += s.kind.find("(int8)") != std::string::npos;
    return y;
  };
  int real_fp32 = 0, real_emulated = 0;
  const HostTensor fp32_sums = run("fp32", &real_fp32);
  EXPECT_EQ(real_fp32, layers) << "every convolution and deconvolution of det is within the exact bound";
  if (cpu::int8_conv_path() == cpu::Int8ConvPath::kVnni) {  // the default path here
    int real_vnni = 0;
    const HostTensor vnni = run("vnni", &real_vnni);
    EXPECT_EQ(real_vnni, layers);
    ASSERT_EQ(vnni.data.size(), fp32_sums.data.size());
    EXPECT_EQ(std::memcmp(vnni.data.data(), fp32_sums.data.data(), vnni.data.size()), 0)
        << "VNNI and FP32 integer sums give different bits";
  }
  const HostTensor emulated = run("emulate", &real_emulated);
  EXPECT_EQ(real_emulated, 0);
  // Summation rounding moves some output codes by a step, and on random input the steps spread
  // through the 64 requantizing layers: the maps agree, not exactly (with the convolutions alone
  // INT8: cosine 0.9978 with AVX-512 FP32 sums in the emulation, 0.9545 with oneDNN capped at
  // AVX2, whose FP32 sums, and so the scales of the FP32 run, differ too; with the
  // deconvolutions too: 0.929 on an AVX2-only EPYC). A wrong real INT8 path would not come near that.
  ASSERT_EQ(emulated.count(), fp32_sums.count());
  double dot = 0, na = 0, nb = 0;
  int64_t differ = 0;
  for (int64_t i = 0; i < emulated.count(); ++i) {
    const double a = emulated.f32()[i], b = fp32_sums.f32()[i];
    dot += a * b, na += a * a, nb += b * b;
    differ += a != b;
  }
  std::printf("det, %d INT8 convolutions and %d deconvolutions: real INT8 vs emulation: %lld of %lld values differ, "
              "cosine %.6f\n", convs, deconvs,
              (long long)differ, (long long)emulated.count(), dot / std::sqrt(na * nb));
  EXPECT_GT(differ, 0) << "the real INT8 path changed nothing: did it run?";
  EXPECT_GT(dot / std::sqrt(na * nb), 0.9) << differ << " of " << emulated.count() << " values differ";
}

// det with a mixed plan (convolutions and deconvolutions INT8, activations FP16, element-wise
// layers with a scalar operand alternately INT8 and FP16, the rest FP16: point-wise chains of
// both precisions next to each other and after convolutions, as in the build-dla and --int8
// plans): the executor's merged chain passes (TANDEM_CPU_CHAIN_MERGE) give the same bits as the
// steps run apart, in fewer steps.
TEST(CpuInt8Model, DetMixedPlanMergedChainPassesSameBits) {
  ASSERT_TRUE(std::filesystem::exists(kDet)) << "model missing: " << kDet << " (scripts/fetch-data.sh)";
  ImportOptions io;
  io.shapes = {{"x", {1, 3, 160, 160}}};
  Network net = import_onnx(kDet, io);
  // The probability map is ~0 on random input: the logits before the final Sigmoid are compared
  // too (an extra network output; every merged pass lies upstream of them).
  for (const Layer& l : net.layers)
    if (l.kind == LayerKind::kActivation && l.as<ActivationParams>().type == ActivationType::kSigmoid &&
        net.tensors[size_t(l.outputs[0])].is_output) {
      net.tensors[size_t(l.inputs[0])].is_output = true;
      net.outputs.push_back(l.inputs[0]);
    }
  ASSERT_EQ(net.outputs.size(), 2u);
  const TensorMap in = {{"x", seeded_input({1, 3, 160, 160})}};
  ExecOptions opt;
  opt.threads = 2;
  set_fp32_scales(net, in, opt);
  opt.numerics.layer_precision.assign(net.layers.size(), Precision::kUnset);
  int int8_eltwise = 0;
  for (size_t i = 0; i < net.layers.size(); ++i) {
    const Layer& l = net.layers[i];
    Precision& p = opt.numerics.layer_precision[i];
    switch (l.kind) {
      case LayerKind::kConvolution: case LayerKind::kDeconvolution: p = Precision::kINT8; break;
      case LayerKind::kElementWise: {
        bool scalar = false;
        for (TensorId t : l.inputs) scalar = scalar || volume(net.tensors[size_t(t)].dims) == 1;
        p = scalar && i % 2 == 0 ? Precision::kINT8 : Precision::kFP16;
        int8_eltwise += p == Precision::kINT8;
        break;
      }
      case LayerKind::kActivation: case LayerKind::kResize: case LayerKind::kReduce: case LayerKind::kScale:
      case LayerKind::kConcatenation: p = Precision::kFP16; break;
      default: break;
    }
  }
  ASSERT_GT(int8_eltwise, 10);
  auto run = [&](bool merge, size_t* steps) {
    std::unique_ptr<EnvVar> off;
    if (!merge) off = std::make_unique<EnvVar>("TANDEM_CPU_CHAIN_MERGE", "off");
    auto ex = make_cpu_executor(net, opt);
    *steps = ex->profile(1).size();
    return ex->run(in);
  };
  size_t merged_steps = 0, apart_steps = 0;
  const TensorMap merged = run(true, &merged_steps), apart = run(false, &apart_steps);
  ASSERT_EQ(merged.size(), 2u);
  for (const auto& [name, m] : merged) {
    const HostTensor& a = apart.at(name);
    ASSERT_EQ(m.data.size(), a.data.size()) << name;
    int64_t distinct = 0;
    for (int64_t i = 1; i < m.count(); ++i) distinct += m.f32()[i] != m.f32()[i - 1];
    std::printf("det mixed plan, %s: %zu steps merged, %zu apart; %lld value changes along the tensor\n", name.c_str(),
                merged_steps, apart_steps, (long long)distinct);
    EXPECT_EQ(std::memcmp(m.data.data(), a.data.data(), m.data.size()), 0) << name << ": merged chain passes changed it";
  }
  EXPECT_LT(merged_steps, apart_steps);
}
