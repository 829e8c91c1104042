// `tandem run`: outputs as .npy, and one clear line + exit 2 for every kind of bad input.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "tandem/npy.h"

using namespace tandem;
namespace fs = std::filesystem;

#include "../common/shell.h"

namespace {
const std::string kTandem = std::string(TANDEM_BINARY_DIR) + "/tools/tandem/tandem";
const std::string kModel = std::string(TANDEM_SOURCE_DIR) + "/.data/models/ch_ppocr_mobile_v2.0_cls_infer.onnx";

using Result = tandem::test::ShellResult;
Result sh(const std::string& args) { return tandem::test::run_shell(kTandem + " run " + args + " 2>&1"); }
}  // namespace

TEST(CliRun, WritesOutputsAndRejectsBadInput) {
  ASSERT_TRUE(fs::exists(kModel)) << kModel << " is missing: run scripts/setup.sh";
  fs::path d = fs::temp_directory_path() / ("tandem_cli_run_" + std::to_string(::getpid()));
  fs::create_directories(d);
  std::string base = kModel + " --shape x:1x3x48x192 ";

  Result ok = sh(base + "--random-input --seed 3 --output-dir " + (d / "out").string() + " --threads 2");
  EXPECT_EQ(ok.rc, 0) << ok.out;
  HostTensor y = read_npy((d / "out" / "softmax_0.tmp_0.npy").string());
  EXPECT_EQ(y.dims, (Dims{1, 2}));
  EXPECT_NEAR(y.f32()[0] + y.f32()[1], 1.f, 1e-5f);

  write_npy((d / "x.npy").string(), HostTensor::zeros("x", DataType::kFloat, {1, 3, 48, 192}));
  write_npy((d / "small.npy").string(), HostTensor::zeros("x", DataType::kFloat, {1, 3, 48, 100}));
  write_npy((d / "i64.npy").string(), HostTensor::zeros("x", DataType::kInt64, {1, 3, 48, 192}));

  struct Case {
    std::string args, want;
  };
  const Case cases[] = {
      {base + "--output-dir " + (d / "o1").string(), "missing input 'x' (1x3x48x192 fp32)"},
      {base + "--input x=" + (d / "small.npy").string() + " --output-dir " + (d / "o2").string(),
       "small.npy: input 'x' wants shape 1x3x48x192, the file holds 1x3x48x100"},
      {base + "--input x=" + (d / "i64.npy").string() + " --output-dir " + (d / "o3").string(),
       "i64.npy: input 'x' wants fp32 (<f4), the file holds int64 (<i8)"},
      {base + "--input x=" + (d / "nope.npy").string() + " --output-dir " + (d / "o4").string(),
       "nope.npy: cannot open .npy file"},
      {base + "--input y=" + (d / "x.npy").string() + " --output-dir " + (d / "o5").string(),
       "the model has no input 'y'"},
      {base + "--input x=" + (d / "x.npy").string() + " --output-dir /proc/tandem_nope",
       "/proc/tandem_nope: cannot create the output folder"},
  };
  for (const Case& c : cases) {
    Result r = sh(c.args);
    EXPECT_EQ(r.rc, 2) << c.args << "\n" << r.out;
    EXPECT_NE(r.out.find(c.want), std::string::npos) << r.out;
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << "one line: " << r.out;
  }
  // Nothing half-written by the failing runs.
  for (const char* o : {"o1", "o2", "o3", "o4", "o5"})
    if (fs::exists(d / o)) EXPECT_TRUE(fs::is_empty(d / o)) << o;
  fs::remove_all(d);
}

// --random-input --seed N draws the same data for a model and for an engine built from it (an
// engine once drew floats in [0, 1) where the model drew [-1, 1): accuracy checks comparing an
// INT8 engine with an FP32 one on "the same" random input compared different inputs).
TEST(CliRun, RandomInputIsTheSameForAModelAndItsEngine) {
  ASSERT_TRUE(fs::exists(kModel)) << kModel << " is missing: run scripts/setup.sh";
  fs::path d = fs::temp_directory_path() / ("tandem_cli_run_seed_" + std::to_string(::getpid()));
  fs::create_directories(d);
  const std::string engine = (d / "cls.engine").string();
  Result b = tandem::test::run_shell(kTandem + " build " + kModel + " --shape x:1x3x48x192 -o " + engine + " 2>&1");
  ASSERT_EQ(b.rc, 0) << b.out;
  auto output = [&](const std::string& what, int seed) {
    const fs::path out = d / (what + std::to_string(seed));
    Result r = sh((what == "model" ? kModel + " --shape x:1x3x48x192" : engine) + " --random-input --seed " +
                  std::to_string(seed) + " --threads 1 --output-dir " + out.string());
    EXPECT_EQ(r.rc, 0) << r.out;
    HostTensor y = read_npy((out / "softmax_0.tmp_0.npy").string());
    return std::array<float, 2>{y.f32()[0], y.f32()[1]};
  };
  const auto model3 = output("model", 3), engine3 = output("engine", 3), engine4 = output("engine", 4);
  EXPECT_NEAR(engine3[0], model3[0], 1e-5f);
  EXPECT_NEAR(engine3[1], model3[1], 1e-5f);
  EXPECT_GT(std::fabs(engine4[0] - engine3[0]), 1e-4f) << "another seed, other data";
  fs::remove_all(d);
}
