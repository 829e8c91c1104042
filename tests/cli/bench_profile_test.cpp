// issue 17 §4: bench's host-to-device / compute / device-to-host split and per-layer profile
// (--profile [N], alias --dumpProfile; --separateProfileRun accepted), figures rounded to 3
// significant digits in the text report. CPU backend, on a cls engine built here.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
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

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> v;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) v.push_back(l);
  return v;
}

// Significant digits of a printed figure ("0.00123" -> 3, "1230" -> 3, "12.3" -> 3).
int significant_digits(std::string f) {
  f.erase(std::remove(f.begin(), f.end(), '.'), f.end());
  const size_t first = f.find_first_not_of('0');
  if (first == std::string::npos) return 0;
  f = f.substr(first);
  while (f.size() > 3 && f.back() == '0') f.pop_back();  // 1230: trailing zeros of an integer
  return int(f.size());
}

class BenchProfile : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / ("tandem_bench_profile_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    engine_ = (dir_ / "cls.engine").string();
    const Result b = sh("build " + kCls + " -s x:1x3x48x192 -o " + engine_ + " --optimization-level 0", true);
    ASSERT_EQ(b.rc, 0) << b.out;
    const Result in = sh("inspect " + engine_ + " --json");
    ASSERT_EQ(in.rc, 0) << in.out;
    const json doc = json::parse(in.out);  // a named document: a loop over a temporary's member dangles
    for (const auto& l : doc["layers"]) layers_.insert(l["name"].get<std::string>());
    ASSERT_GT(layers_.size(), 100u);
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }
  static fs::path dir_;
  static std::string engine_;
  static std::set<std::string> layers_;
};
fs::path BenchProfile::dir_;
std::string BenchProfile::engine_;
std::set<std::string> BenchProfile::layers_;

TEST_F(BenchProfile, JsonListsEveryStepOnceAndTheSplit) {
  const Result r = sh("bench " + engine_ + " --iterations 20 --warmup 2 --threads 1 --profile --json");
  ASSERT_EQ(r.rc, 0) << r.out;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["schema"], "tandem/bench/v1");
  // CPU: no device copies; the split says so instead of measuring zeros.
  EXPECT_EQ(j["device_copies"], false);
  EXPECT_EQ(j["split_ms"]["h2d"], 0.0);
  EXPECT_EQ(j["split_ms"]["d2h"], 0.0);
  const double compute = j["split_ms"]["compute"].get<double>();
  EXPECT_GT(compute, 0.0);
  EXPECT_LE(compute, j["latency_ms"]["max"].get<double>());
  EXPECT_NE(j["split_note"].get<std::string>().find("copies nothing"), std::string::npos) << j["split_note"];

  const json& p = j["profile"];
  EXPECT_EQ(p["iterations"], 20);
  const json& steps = p["steps"];
  ASSERT_GT(steps.size(), 20u);  // all of them, not the text table's top 20
  std::set<std::string> labels, layers_seen;
  double sum = 0, percent = 0, prev = 1e30;
  for (const json& s : steps) {
    const std::string label = s["layer"];
    EXPECT_TRUE(labels.insert(label).second) << label << " listed twice";
    // A fused step names each of its layers, each an engine layer, in no other step.
    for (size_t b = 0; b <= label.size();) {
      size_t e = label.find(" + ", b);
      if (e == std::string::npos) e = label.size();
      const std::string name = label.substr(b, e - b);
      EXPECT_TRUE(layers_.count(name)) << name << " is no layer of the engine";
      EXPECT_TRUE(layers_seen.insert(name).second) << name << " is in two steps";
      b = e + 3;
    }
    const double ms = s["ms"].get<double>();
    EXPECT_GE(ms, 0.0) << label;
    EXPECT_LE(ms, prev) << label << ": not sorted slowest first";
    prev = ms;
    sum += ms;
    percent += s["percent"].get<double>();
    EXPECT_FALSE(s["kind"].get<std::string>().empty()) << label;
  }
  EXPECT_NEAR(sum, p["total_ms"].get<double>(), 1e-3 * sum);
  EXPECT_NEAR(percent, 100.0, 0.01);
  EXPECT_GT(sum, 0.0);  // no ratio to `compute` asserted: wall-clock ratios belong in benchmarks
  EXPECT_FALSE(j.contains("profile") && !j["profile"].contains("steps"));
}

TEST_F(BenchProfile, NoProfileWithoutTheOption) {
  const Result r = sh("bench " + engine_ + " --iterations 2 --warmup 0 --json");
  ASSERT_EQ(r.rc, 0) << r.out;
  const json j = json::parse(r.out);
  EXPECT_FALSE(j.contains("profile"));
  EXPECT_TRUE(j.contains("split_ms"));
  const Result t = sh("bench " + engine_ + " --iterations 2 --warmup 0");
  EXPECT_EQ(t.out.find("profile:"), std::string::npos) << t.out;
}

TEST_F(BenchProfile, TextTableTopNAndRoundedFigures) {
  const Result r = sh("bench " + engine_ + " --iterations 3 --warmup 1 --profile 3");
  ASSERT_EQ(r.rc, 0) << r.out;
  const std::vector<std::string> ls = lines_of(r.out);
  size_t head = ls.size();
  for (size_t i = 0; i < ls.size(); ++i)
    if (ls[i].rfind("profile: ", 0) == 0) head = i;
  ASSERT_LT(head + 6, ls.size()) << r.out;
  EXPECT_NE(ls[head].find("(top 3; --profile 0 lists all)"), std::string::npos) << ls[head];
  EXPECT_TRUE(std::regex_search(ls[head + 1], std::regex(R"(^\s+ms\s+%\s+kind\s+layer$)"))) << ls[head + 1];
  const std::regex row(R"(^\s+([0-9.]+)\s+([0-9.]+)\s+(\S+)\s+(\S.*)$)");
  for (size_t i = head + 2; i < head + 5; ++i) {
    std::smatch m;
    ASSERT_TRUE(std::regex_match(ls[i], m, row)) << ls[i];
    EXPECT_LE(significant_digits(m[1]), 3) << ls[i];
    EXPECT_LE(significant_digits(m[2]), 3) << ls[i];
  }
  EXPECT_NE(ls[head + 5].find("more steps)"), std::string::npos) << ls[head + 5];
  EXPECT_NE(ls[head + 6].find("total of the steps"), std::string::npos) << ls[head + 6];
  // The split line, and every latency figure with at most 3 significant digits.
  EXPECT_NE(r.out.find("split ms (median of 3 runs): compute "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("(the cpu backend copies nothing to or from a device)"), std::string::npos) << r.out;
  std::smatch lat;
  ASSERT_TRUE(std::regex_search(r.out, lat, std::regex("latency ms: ([^\n]*)"))) << r.out;
  const std::string line = lat[1];
  const std::regex num(R"(\b[0-9]+(\.[0-9]+)?\b)");
  int figures = 0;
  for (auto it = std::sregex_iterator(line.begin(), line.end(), num); it != std::sregex_iterator(); ++it, ++figures)
    EXPECT_LE(significant_digits(it->str()), 3) << it->str() << " in " << line;
  EXPECT_EQ(figures, 9) << line;  // min median mean p90 p95 p99 max std ci95 (the "95" of p95 is no figure)
}

TEST_F(BenchProfile, AllStepsAliasesAndErrors) {
  const Result all = sh("bench " + engine_ + " --iterations 2 --warmup 0 --profile 0");
  ASSERT_EQ(all.rc, 0) << all.out;
  EXPECT_EQ(all.out.find("more steps)"), std::string::npos) << all.out;
  const Result j = sh("bench " + engine_ + " --iterations 2 --warmup 0 --profile --json");
  ASSERT_EQ(j.rc, 0);
  const size_t n = json::parse(j.out)["profile"]["steps"].size();
  size_t rows = 0;
  for (const std::string& l : lines_of(all.out))
    rows += std::regex_match(l, std::regex(R"(^\s+[0-9.]+\s+[0-9.]+\s+\S+\s+\S.*$)")) &&
            l.find("total of the steps") == std::string::npos;
  EXPECT_EQ(rows, n) << all.out;
  // trtexec's spellings: --dumpProfile is --profile; --separateProfileRun is accepted.
  const Result t = sh("bench " + engine_ + " --iterations 2 --warmup 0 --dumpProfile --separateProfileRun");
  ASSERT_EQ(t.rc, 0) << t.out;
  EXPECT_NE(t.out.find("(top 20; --profile 0 lists all)"), std::string::npos) << t.out;
  const Result bad = sh("bench " + engine_ + " --profile -2", true);
  EXPECT_EQ(bad.rc, 2) << bad.out;
  EXPECT_NE(bad.out.find("--profile -2: must be >= 0"), std::string::npos) << bad.out;
}

}  // namespace
