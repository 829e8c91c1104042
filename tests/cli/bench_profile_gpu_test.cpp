// issue 17 §4 on the GPU: bench --backend cuda measures the host-to-device / compute /
// device-to-host split with CUDA events and lists every launched step in --profile. Label gpu:
// needs a GPU and the plugin (libtandem_cuda.so beside the tandem binary).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "../common/shell.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {
const std::string kTandem = std::string(TANDEM_BINARY_DIR) + "/tools/tandem/tandem";
const std::string kCls = std::string(TANDEM_SOURCE_DIR) + "/.data/models/ch_ppocr_mobile_v2.0_cls_infer.onnx";

using Result = tandem::test::ShellResult;
Result sh(const std::string& args, bool with_stderr = false) {
  return tandem::test::run_shell(kTandem + " " + args + (with_stderr ? " 2>&1" : " 2>/dev/null"));
}

TEST(BenchProfileGpu, SplitAndProfileOnCuda) {
  const fs::path dir = fs::temp_directory_path() / ("tandem_bench_gpu_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string eng = (dir / "cls.engine").string();
  const Result b = sh("build " + kCls + " -s x:1x3x48x192 -o " + eng + " --optimization-level 0", true);
  ASSERT_EQ(b.rc, 0) << b.out;

  // Label gpu: on a machine without a GPU the CLI says so in one line, and the test skips visibly.
  const Result probe = sh("bench " + eng + " --backend cuda --iterations 1", true);
  if (probe.rc != 0 && probe.out.find("no CUDA device") != std::string::npos) {
    std::error_code ec;
    fs::remove_all(dir, ec);
    GTEST_SKIP() << probe.out.substr(0, probe.out.find('\n')) << ": skipped";
  }
  const Result r = sh("bench " + eng + " --backend cuda --iterations 50 --warmup 5 --profile --json");
  ASSERT_EQ(r.rc, 0) << r.out << sh("bench " + eng + " --backend cuda --iterations 1", true).out;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["backend"], "cuda");
  EXPECT_EQ(j["device_copies"], true);
  EXPECT_FALSE(j.contains("split_note"));
  const double h2d = j["split_ms"]["h2d"].get<double>(), compute = j["split_ms"]["compute"].get<double>(),
               d2h = j["split_ms"]["d2h"].get<double>();
  EXPECT_GT(h2d, 0.0);  // 1x3x48x192 fp32 in
  EXPECT_GT(compute, 0.0);
  EXPECT_GT(d2h, 0.0);  // 1x2 fp32 out
  // The events lie inside the wall-clock latency of the same runs.
  EXPECT_LE(h2d + compute + d2h, j["latency_ms"]["max"].get<double>());

  const json& steps = j["profile"]["steps"];
  ASSERT_GT(steps.size(), 20u);
  std::set<std::string> labels;
  double sum = 0;
  for (const json& s : steps) {
    EXPECT_TRUE(labels.insert(s["layer"].get<std::string>()).second) << s["layer"] << " listed twice";
    EXPECT_GE(s["ms"].get<double>(), 0.0) << s["layer"];
    sum += s["ms"].get<double>();
  }
  // The profile launches eagerly with an event between steps (no CUDA graph): its sum is at least
  // about the graph run's compute and at most 10x it (launch gaps on a small model).
  EXPECT_GT(sum, 0.5 * compute);
  EXPECT_LT(sum, 10 * compute);

  const Result t = sh("bench " + eng + " --backend cuda --iterations 5 --warmup 1 --dumpProfile 5");
  ASSERT_EQ(t.rc, 0) << t.out;
  EXPECT_NE(t.out.find("split ms (median of 5 runs): host-to-device "), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("device-to-host "), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("(top 5; --profile 0 lists all)"), std::string::npos) << t.out;
  fs::remove_all(dir);
}

}  // namespace
