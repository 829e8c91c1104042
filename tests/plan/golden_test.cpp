// Golden reports: runs the tandem binary on the PP-OCR models (.data/models, scripts/fetch-data.sh)
// and compares stdout with tests/golden/<name>. A difference fails the test.
// Regenerate after a reviewed change: TANDEM_UPDATE_GOLDEN=1 ctest -R Golden (or run this binary).
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "../common/shell.h"

namespace {
namespace fs = std::filesystem;

const std::string kSrc = TANDEM_SOURCE_DIR;
const std::string kBin = std::string(TANDEM_BINARY_DIR) + "/tools/tandem/tandem";
const std::string kDet = ".data/models/ch_PP-OCRv4_det_infer.onnx --shape x:1x3x640x640";
const std::string kCls = ".data/models/ch_ppocr_mobile_v2.0_cls_infer.onnx --shape x:1x3x48x192";

using Result = tandem::test::ShellResult;

Result run(const std::string& args) {
  return tandem::test::run_shell("cd '" + kSrc + "' && '" + kBin + "' " + args + " 2>/dev/null");
}

void golden(const std::string& name, const std::string& args) {
  if (!fs::exists(kBin)) FAIL() << "no tandem binary at " << kBin;
  if (!fs::exists(kSrc + "/.data/models/ch_PP-OCRv4_det_infer.onnx") ||
      !fs::exists(kSrc + "/.data/models/ch_ppocr_mobile_v2.0_cls_infer.onnx"))
    FAIL() << "models missing: run scripts/fetch-data.sh";
  Result r = run(args);
  ASSERT_EQ(r.rc, 0) << args;
  const std::string path = kSrc + "/tests/golden/" + name;
  if (std::getenv("TANDEM_UPDATE_GOLDEN")) {
    std::ofstream(path, std::ios::binary) << r.out;
    GTEST_SKIP() << "updated " << path;
  }
  std::ifstream f(path, std::ios::binary);
  ASSERT_TRUE(f) << "missing golden file " << path << " (TANDEM_UPDATE_GOLDEN=1 to create)";
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string want = ss.str();
  if (want == r.out) return;
  std::istringstream a(want), b(r.out);
  std::string la, lb;
  int line = 1;
  while (true) {
    bool ga = static_cast<bool>(std::getline(a, la)), gb = static_cast<bool>(std::getline(b, lb));
    if (!ga && !gb) break;
    if (!ga || !gb || la != lb) {
      FAIL() << name << " differs at line " << line << "\n  golden: " << (ga ? la : "<eof>")
             << "\n  actual: " << (gb ? lb : "<eof>") << "\n(reviewed change? TANDEM_UPDATE_GOLDEN=1)";
    }
    ++line;
  }
  FAIL() << name << " differs (line endings?)";
}

TEST(Golden, DlaCheckDetOrin) { golden("dla-check_det_orin.txt", "dla-check " + kDet); }
TEST(Golden, DlaCheckDetXavier) { golden("dla-check_det_xavier.txt", "dla-check " + kDet + " --target xavier"); }
TEST(Golden, DlaCheckClsOrin) { golden("dla-check_cls_orin.txt", "dla-check " + kCls); }
TEST(Golden, DlaCheckClsXavier) { golden("dla-check_cls_xavier.txt", "dla-check " + kCls + " --target xavier"); }
TEST(Golden, DlaCheckClsOrinJson) { golden("dla-check_cls_orin.json", "dla-check " + kCls + " --json"); }
TEST(Golden, PlanDetSeed) { golden("plan_det_seed.txt", "plan " + kDet); }
TEST(Golden, PlanDetGraph) { golden("plan_det_graph.txt", "plan " + kDet + " --strategy graph"); }
TEST(Golden, PlanClsSeed) { golden("plan_cls_seed.txt", "plan " + kCls); }
TEST(Golden, PlanClsGraph) { golden("plan_cls_graph.txt", "plan " + kCls + " --strategy graph"); }
TEST(Golden, PlanDetGraphXavier) { golden("plan_det_graph_xavier.txt", "plan " + kDet + " --strategy graph --target xavier"); }
TEST(Golden, TrtexecDetSeed) { golden("trtexec_det_seed.txt", "export trtexec " + kDet + " --calib det.cache"); }
TEST(Golden, TrtexecDetGraph) { golden("trtexec_det_graph.txt", "export trtexec " + kDet + " --strategy graph --calib det.cache"); }
TEST(Golden, TrtexecClsSeed) { golden("trtexec_cls_seed.txt", "export trtexec " + kCls + " --calib cls.cache"); }
TEST(Golden, TrtexecClsGraphXavier) {
  golden("trtexec_cls_graph_xavier.txt", "export trtexec " + kCls + " --strategy graph --target xavier --calib cls.cache");
}

// Bad options: one line on stderr, exit code 2.
Result run_err(const std::string& args) {  // stderr only
  return tandem::test::run_shell("cd '" + kSrc + "' && '" + kBin + "' " + args + " 2>&1 >/dev/null");
}

TEST(CliErrors, BadPlanOptionsExit2) {
  if (!fs::exists(kBin)) FAIL() << "no tandem binary at " << kBin << ": cmake --build <build dir> --target tandem";
  if (!fs::exists(kSrc + "/.data/models/ch_ppocr_mobile_v2.0_cls_infer.onnx"))
    FAIL() << "models missing: run scripts/fetch-data.sh";
  struct Case {
    std::string args, msg;
  };
  const std::vector<Case> cases = {
      {"plan " + kCls + " --dla-core -1", "tandem: error: --dla-core -1 must be >= 0\n"},
      {"plan " + kCls + " --dla-core 2", "tandem: error: --dla-core 2 must be < 2 (DLA cores on orin)\n"},
      {"plan " + kCls + " --optimization-level 6", "tandem: error: --optimization-level 6 must be in 0..5\n"},
      {"plan " + kCls + " --layer-device nope:gpu", "tandem: error: --layer-device: no layer named 'nope' in the network\n"},
      {"plan " + kCls + " --layer-device p2o.Conv.0:tpu", "tandem: error: --layer-device 'p2o.Conv.0:tpu': device must be gpu or dla\n"},
      {"plan " + kCls + " --layer-precision nope:fp16", "tandem: error: --layer-precision: no layer named 'nope' in the network\n"},
      {"plan " + kCls + " --strategy best", "tandem: error: --strategy: unknown strategy 'best' (seed | graph)\n"},
      {"export trtexec " + kCls + " --trt-version 9", "tandem: error: --trt-version: '9' is not 8.5, 8.6 or 10\n"},
      {"export dot " + kCls + " -o out.jpg", "tandem: error: -o 'out.jpg': the file must end in .dot, .svg or .png\n"},
      {"dla-check " + kCls + " --target thor", "tandem: error: --target: unknown DLA target 'thor' (orin | xavier)\n"},
  };
  for (const auto& c : cases) {
    Result r = run_err(c.args);
    EXPECT_EQ(r.rc, 2) << c.args;
    EXPECT_EQ(r.out, c.msg) << c.args;
  }
}

TEST(CliExport, DotFiles) {
  if (!fs::exists(kBin)) FAIL() << "no tandem binary at " << kBin << ": cmake --build <build dir> --target tandem";
  if (!fs::exists(kSrc + "/.data/models/ch_ppocr_mobile_v2.0_cls_infer.onnx"))
    FAIL() << "models missing: run scripts/fetch-data.sh";
  const fs::path dir = fs::temp_directory_path() / ("tandem_dot_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  Result r = run("export dot " + kCls + " --strategy graph -o '" + (dir / "cls.dot").string() + "'");
  EXPECT_EQ(r.rc, 0);
  std::ifstream f(dir / "cls.dot");
  std::stringstream ss;
  ss << f.rdbuf();
  EXPECT_NE(ss.str().find("subgraph cluster_r0"), std::string::npos);
  // .svg goes through Graphviz: a missing 'dot' fails, as every missing dependency does.
  ASSERT_EQ(std::system("command -v dot >/dev/null 2>&1"), 0)
      << "Graphviz 'dot' is missing: sudo apt-get install graphviz (scripts/setup.sh)";
  r = run("export dot " + kCls + " -o '" + (dir / "cls.svg").string() + "'");
  EXPECT_EQ(r.rc, 0);
  EXPECT_GT(fs::file_size(dir / "cls.svg"), 100u);
  fs::remove_all(dir);
}

}  // namespace
