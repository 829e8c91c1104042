// issue 17: one CLI vocabulary (docs/cli.md), caches checked before reuse, loud empty plans,
// compare thresholds, dla-check --fail-if-not-full, errors naming the user's file.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "../common/shell.h"

namespace fs = std::filesystem;

namespace {
const std::string kTandem = std::string(TANDEM_BINARY_DIR) + "/tools/tandem/tandem";
const std::string kCls = std::string(TANDEM_SOURCE_DIR) + "/.data/models/ch_ppocr_mobile_v2.0_cls_infer.onnx";
const std::string kCalib = std::string(TANDEM_SOURCE_DIR) + "/tests/data/calib";
const std::string kShape = " -s x:1x3x48x192 ";

using Result = tandem::test::ShellResult;
Result sh(const std::string& args) { return tandem::test::run_shell(kTandem + " " + args + " 2>&1"); }
bool has(const Result& r, const std::string& s) { return r.out.find(s) != std::string::npos; }
std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}
// N samples of x:3x48x192 float32 in [0, 1) as a NumPy v1.0 file (header padded to 64 bytes).
void write_npy_f32(const std::string& path, int n) {
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + std::to_string(n) + ", 3, 48, 192), }";
  while ((10 + header.size() + 1) % 64) header += ' ';
  header += '\n';
  std::ofstream f(path, std::ios::binary);
  f.write("\x93NUMPY\x01\x00", 8);
  const uint16_t len = uint16_t(header.size());
  f.put(char(len & 0xff)).put(char(len >> 8));
  f << header;
  for (int64_t i = 0; i < int64_t(n) * 3 * 48 * 192; ++i) {
    const float v = float((i * 7919) % 1000) / 1000.f;  // int64: i * 7919 passes INT_MAX
    f.write(reinterpret_cast<const char*>(&v), sizeof v);
  }
}
// stdout only (progress and warnings go to stderr), parsed.
nlohmann::json json_of(const std::string& args) {
  const Result r = tandem::test::run_shell(kTandem + " " + args + " 2>/dev/null");
  EXPECT_EQ(r.rc, 0) << args << "\n" << r.out;
  return nlohmann::json::parse(r.out, nullptr, false);
}
int lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

class CliOptions : public tandem::test::TempDirTest {
 protected:
  CliOptions() : TempDirTest("tandem_cli_options_") {}
  void SetUp() override {
    ASSERT_TRUE(fs::exists(kCls)) << kCls << " is missing: run scripts/setup.sh";
    TempDirTest::SetUp();
  }
};
}  // namespace

// §1: -s/--shape/--shapes on every command that takes a model, trtexec's comma list.
TEST_F(CliOptions, ShapeOnEveryModelCommand) {
  for (const char* cmd : {"inspect", "dla-check", "plan"}) {
    Result r = sh(std::string(cmd) + " " + kCls + kShape);
    EXPECT_EQ(r.rc, 0) << cmd << ": " << r.out;
    r = sh(std::string(cmd) + " " + kCls + " --shapes=x:1x3x48x192");
    EXPECT_EQ(r.rc, 0) << cmd << ": " << r.out;
  }
  // Several shapes in one --shapes: the second names an input the model lacks.
  Result r = sh("plan " + kCls + " --shapes=x:1x3x48x192,y:1x2");
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_TRUE(has(r, "'y'")) << r.out;
  EXPECT_FALSE(has(r, "x:1x3x48x192,y")) << r.out;
}

// Acceptance: every command's --help points at its option groups in docs/cli.md.
TEST_F(CliOptions, EveryHelpLinksTheOptionGroups) {
  for (const char* cmd : {"inspect", "dla-check", "plan", "calibrate", "compare", "build", "build-dla", "run", "bench",
                          "export", "export trtexec", "export dot", "export qdq", "verify-layers", "cache", "cache list"}) {
    const Result r = sh(std::string(cmd) + " --help");
    EXPECT_EQ(r.rc, 0) << cmd << ": " << r.out;
    EXPECT_TRUE(has(r, "docs/cli.md#commands")) << cmd << ": " << r.out;
  }
  // The page lists each group once, and every command.
  const std::string doc = slurp(std::string(TANDEM_SOURCE_DIR) + "/docs/cli.md");
  for (const char* group : {"## Model and shapes", "## DLA target, precision and plan", "## Calibration and comparison data",
                            "## Preprocessing", "## Calibration cache", "## Engine, build and memory",
                            "## Running and benchmarking", "## Checks and reports", "## Exports"}) {
    const size_t at = doc.find(std::string(group) + "\n");
    EXPECT_NE(at, std::string::npos) << group;
    EXPECT_EQ(doc.find(std::string(group) + "\n", at + 1), std::string::npos) << group << " twice";
  }
  for (const char* row : {"| `inspect` |", "| `dla-check` |", "| `plan` |", "| `calibrate` |", "| `compare` |",
                          "| `build`, `build-dla` |", "| `run`, `bench` |", "| `export trtexec`, `export dot`, `export qdq` |",
                          "| `verify-layers` |", "| `cache list`, `cache clear` |"})
    EXPECT_NE(doc.find(row), std::string::npos) << row;
}

// Acceptance: the README and its demo (scripts/demo.sh) use the unified names, none of the
// aliases kept for old scripts or trtexec users.
TEST_F(CliOptions, DemoAndReadmeUseTheUnifiedNames) {
  for (const char* file : {"README.md", "scripts/demo.sh"}) {
    const std::string text = slurp(std::string(TANDEM_SOURCE_DIR) + "/" + file);
    ASSERT_FALSE(text.empty()) << file;
    for (const char* alias : {"--calibration-dir", "--cd ", "--data ", "--data-npy", "--calibration-npy", "--calibration-cache",
                              "--cc ", "--cache model.cache", "--synthetic-calibration", "--data-order", "--count ", "--bs ",
                              "--resize-method", "--useDLACore", "--saveEngine", "--mem-pool-size", "--warmup-iterations",
                              "--dumpProfile", "--input-scale", "--shapes", "--channels bgr", "--last-batch drop"})
      EXPECT_EQ(text.find(alias), std::string::npos) << file << " uses " << alias;
  }
}

// §1: a typo gets the nearest option; conflicting settings one line.
TEST_F(CliOptions, TypoSuggestionAndConflicts) {
  Result r = sh("plan " + kCls + kShape + "--stratgy graph");
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_TRUE(has(r, "did you mean --strategy?")) << r.out;
  EXPECT_EQ(lines(r.out), 1) << r.out;
  r = sh("calibrte " + kCls);
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_TRUE(has(r, "did you mean calibrate?")) << r.out;
  for (const char* cmd : {"calibrate", "compare", "build"}) {
    r = sh(std::string(cmd) + " " + kCls + kShape + "--random-input --input-scale 0 1 --range -1 -o " + p("x"));
    EXPECT_EQ(r.rc, 2) << cmd << ": " << r.out;
    EXPECT_TRUE(has(r, "--input-scale")) << cmd << ": " << r.out;
    EXPECT_EQ(lines(r.out), 1) << cmd << ": " << r.out;
  }
  r = sh("plan " + kCls + kShape + "--fp16 --precision int8");
  EXPECT_EQ(r.rc, 2) << r.out;
}

// §1: the unified names (and the old ones) for calibration images, cache, random data, layout;
// trtexec's spellings on build-dla; build-dla --precision fp16 and --algorithm.
TEST_F(CliOptions, UnifiedNamesAndAliases) {
  Result r = sh("calibrate " + kCls + kShape + "--calib-dir " + kCalib + " --calib " + p("a.cache") +
                " --max-images 8 --data-order NCHW -q");
  ASSERT_EQ(r.rc, 0) << r.out;
  ASSERT_TRUE(fs::exists(p("a.cache")));
  r = sh("calibrate " + kCls + kShape + "--calibration-dir " + kCalib + " -o " + p("b.cache") + " --max-images 8 -q");
  EXPECT_EQ(r.rc, 0) << r.out;
  r = sh("calibrate " + kCls + kShape + "--random-input --count 1 --calibration-cache " + p("c.cache") + " -q");
  EXPECT_EQ(r.rc, 0) << r.out;
  r = sh("compare " + kCls + kShape + "--calib-dir " + kCalib + " --calib " + p("a.cache") + " --count 1 -q");
  EXPECT_EQ(r.rc, 0) << r.out;
  r = sh("compare " + kCls + kShape + "--data " + kCalib + " --cache " + p("a.cache") + " --count 1 -q");
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_TRUE(has(r, "\nplan: ") && has(r, " DLA layers (")) << r.out;  // the same count as `tandem plan`
  r = sh("export qdq " + kCls + kShape + "--calib " + p("a.cache") + " -o " + p("q.onnx"));
  EXPECT_EQ(r.rc, 0) << r.out;
  r = sh("build-dla " + kCls + kShape + "--calib-dir " + kCalib + " --calib " + p("a.cache") + " --saveEngine " +
         p("a.engine") + " --useDLACore 0 --allowGPUFallback --optimization-level 0 --memPoolSize=workspace:2048");
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_TRUE(has(r, "planned 292 layers (")) << r.out;  // planned -> engine layers with the reason
  EXPECT_TRUE(has(r, "engine layers (")) << r.out;
  EXPECT_TRUE(has(r, "folded to constants")) << r.out;
  r = sh("build-dla " + kCls + kShape + "--precision fp16 -o " + p("f.engine") + " --optimization-level 0");
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_TRUE(has(r, "DLA: 0 INT8, ")) << r.out;
  EXPECT_FALSE(has(r, "DLA: 0 INT8, 0 FP16")) << r.out;
  r = sh("build-dla " + kCls + kShape + "--fp16 --precision int8 -o " + p("g.engine"));
  EXPECT_EQ(r.rc, 2) << r.out;
  r = sh("build-dla " + kCls + kShape + "--random-input --count 1 --algorithm minmax -o " + p("h.engine") +
         " --optimization-level 0");
  EXPECT_EQ(r.rc, 0) << r.out;
  r = sh("build-dla " + kCls + kShape + "--algorithm nope -o " + p("i.engine"));
  EXPECT_EQ(r.rc, 2) << r.out;
  r = sh("build " + kCls + kShape + "--memPoolSize=dlaSRAM:1 -o " + p("j.engine"));
  EXPECT_EQ(r.rc, 2) << r.out;
  r = sh("export trtexec " + kCls + kShape + "--calib " + p("a.cache") + " --saveEngine x.engine --memPoolSize=workspace:2048");
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_TRUE(has(r, "--calib=")) << r.out;
  EXPECT_TRUE(has(r, "x.engine")) << r.out;
  EXPECT_TRUE(has(r, "2048")) << r.out;
  r = sh("bench " + p("a.engine") + " --iterations 2 --warmUp 1 --duration 0.01");
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_TRUE(has(r, "engine layers (")) << r.out;
  EXPECT_TRUE(has(r, "p95")) << r.out;
}

// §2: a cache is checked before reuse: another model's scales or another algorithm are refused
// with one line; --recalibrate calibrates again (calibrate, compare, build-dla).
TEST_F(CliOptions, CachesCheckedBeforeReuse) {
  {
    std::ofstream f(p("other.cache"));
    f << "TRT-8600-EntropyCalibration2\nsome_other_model_tensor: 3c010a14\n";
  }
  const std::string cal = "calibrate " + kCls + kShape + "--random-input --count 1 -q ";
  Result r = sh(cal + "-o " + p("other.cache"));
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_EQ(lines(r.out), 1) << r.out;
  EXPECT_TRUE(has(r, "other.cache: not reused")) << r.out;
  EXPECT_TRUE(has(r, "--recalibrate")) << r.out;
  r = sh("compare " + kCls + kShape + "--random-input --count 1 -q --calib " + p("other.cache"));
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_TRUE(has(r, "not used")) << r.out;
  r = sh("compare " + kCls + kShape + "--random-input --count 1 -q --calib " + p("other.cache") + " --recalibrate");
  EXPECT_EQ(r.rc, 0) << r.out;
  r = sh(cal + "-o " + p("other.cache") + " --recalibrate");
  EXPECT_EQ(r.rc, 0) << r.out;
  r = sh("calibrate " + kCls + kShape + "--random-input --count 1 -o " + p("other.cache"));
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_TRUE(has(r, "used existing cache")) << r.out;

  // A cache whose header names minmax is not reused for entropy.
  r = sh(cal + "--algorithm minmax --true-header -o " + p("mm.cache"));
  ASSERT_EQ(r.rc, 0) << r.out;
  r = sh(cal + "-o " + p("mm.cache"));
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_TRUE(has(r, "MinMaxCalibration")) << r.out;
  r = sh(cal + "--algorithm minmax -o " + p("mm.cache"));
  EXPECT_EQ(r.rc, 0) << r.out;

  // build-dla: a foreign cache is named with the way out; --recalibrate replaces it.
  {
    std::ofstream f(p("b.cache"));
    f << "TRT-8600-EntropyCalibration2\nsome_other_model_tensor: 3c010a14\n";
  }
  r = sh("build-dla " + kCls + kShape + "--random-input --count 1 --calib " + p("b.cache") + " -o " + p("b.engine") +
         " --optimization-level 0");
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_TRUE(has(r, "b.cache: not reused: it has no scale for tensor '")) << r.out;
  EXPECT_TRUE(has(r, "--recalibrate")) << r.out;
  r = sh("build-dla " + kCls + kShape + "--random-input --count 1 --calib " + p("b.cache") + " --recalibrate -o " +
         p("b.engine") + " --optimization-level 0");
  EXPECT_EQ(r.rc, 0) << r.out;
  std::ifstream f(p("b.cache"));
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text.find("some_other_model_tensor"), std::string::npos);
}

// §3: a plan with no DLA layer warns on plan, export trtexec and build-dla.
TEST_F(CliOptions, EmptyPlanWarnsLoudly) {
  for (const std::string cmd : {"plan ", "export trtexec ", "build-dla "}) {
    std::string extra = cmd == "build-dla " ? "--random-input --count 1 --optimization-level 0 -o " + p("e.engine") : "";
    Result r = sh(cmd + kCls + kShape + "--min-layers 100000 " + extra);
    EXPECT_EQ(r.rc, 0) << cmd << r.out;
    EXPECT_TRUE(has(r, "warning: no DLA chunk kept")) << cmd << r.out;
    if (cmd == "export trtexec ") {
      EXPECT_TRUE(has(r, "# warning: the plan has no DLA layer")) << r.out;
    }
  }
}

// §4: compare thresholds; dla-check --fail-if-not-full; the user's file and the OS reason.
TEST_F(CliOptions, ThresholdsExitCodesAndErrors) {
  const std::string cmp = "compare " + kCls + kShape + "--random-input --count 2 --batch-size 1 -q ";
  Result r = sh(cmp + "--min-cosine 0.5 --atol 10");
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_TRUE(has(r, "thresholds passed")) << r.out;
  r = sh(cmp + "--min-cosine 1.5");
  EXPECT_EQ(r.rc, 1) << r.out;
  EXPECT_TRUE(has(r, "compare failed: output")) << r.out;
  r = sh(cmp + "--atol 0");
  EXPECT_EQ(r.rc, 1) << r.out;
  r = sh(cmp + "--atol 0 --json");
  EXPECT_EQ(r.rc, 1) << r.out;
  EXPECT_TRUE(has(r, "\"passed\": false")) << r.out;

  r = sh("dla-check " + kCls + kShape + "--fail-if-not-full --precision fp16");
  Result plain = sh("dla-check " + kCls + kShape + "--precision fp16");
  EXPECT_EQ(plain.rc, 0) << plain.out;
  ASSERT_TRUE(has(plain, "Fully DLA Compatible: False")) << plain.out;  // the cls model has GPU-only layers
  EXPECT_EQ(r.rc, 1) << r.out;
  EXPECT_TRUE(has(r, "cannot run on the DLA (--fail-if-not-full)")) << r.out;
  r = sh("dla-check " + kCls + kShape + "-v");
  EXPECT_EQ(r.rc, 0) << r.out;

  r = sh("export trtexec " + kCls + kShape + "-o /nonexistent/dir/x.sh");
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_TRUE(has(r, "cannot write /nonexistent/dir/x.sh: No such file or directory")) << r.out;
  r = sh("export trtexec " + kCls + kShape + "-o " + p("t.sh"));
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_TRUE(fs::status(p("t.sh")).permissions() != fs::perms::none &&
              (fs::status(p("t.sh")).permissions() & fs::perms::owner_exec) != fs::perms::none);
}

// §1 same defaults: calibrate, compare, build and build-dla batch calibration data alike, with
// trtutils' ImageBatcher/SyntheticBatcher defaults: 8 samples a batch, images in BGR (cv2.imread's
// order), a partial last batch dropped, 10 random batches. The same data gives byte-identical
// caches from calibrate and build-dla.
TEST_F(CliOptions, SameCalibrationDefaultsEverywhere) {
  const std::string data = "--calib-dir " + kCalib + " --max-images 12 ";  // 12 images: one full batch of 8
  nlohmann::json c = json_of("calibrate " + kCls + kShape + data + "-o " + p("cal.cache") + " --json");
  EXPECT_EQ(c["batches"], 1) << c.dump();
  EXPECT_EQ(c["samples"], 8) << c.dump();  // the 4 left over are dropped, as trtutils does
  Result r = sh("build-dla " + kCls + kShape + data + "--calib " + p("bld.cache") + " -o " + p("bld.engine") +
                " --optimization-level 0");
  ASSERT_EQ(r.rc, 0) << r.out;
  const std::string cal = slurp(p("cal.cache"));
  ASSERT_FALSE(cal.empty());
  EXPECT_EQ(cal, slurp(p("bld.cache")));  // same images, same defaults: the same scales
  // The defaults spelled out give the same cache; another channel order or last batch does not.
  json_of("calibrate " + kCls + kShape + data + "--channels bgr --last-batch drop --batch-size 8 -o " + p("same.cache") +
          " --json");
  EXPECT_EQ(cal, slurp(p("same.cache")));
  json_of("calibrate " + kCls + kShape + data + "--channels rgb -o " + p("rgb.cache") + " --json");
  EXPECT_NE(cal, slurp(p("rgb.cache")));
  c = json_of("calibrate " + kCls + kShape + data + "--last-batch keep -o " + p("keep.cache") + " --json");
  EXPECT_EQ(c["samples"], 12) << c.dump();
  // compare reads its inputs the same way: 8 of the 12 images, each compared on its own.
  c = json_of("compare " + kCls + kShape + data + "--calib " + p("cal.cache") + " -q --json");
  EXPECT_EQ(c["samples"], 8) << c.dump();
  // Random data: 10 batches of 8 (trtutils' SyntheticBatcher); compare, whose emulated runs cost
  // ~10x a reference run, compares 1 batch of 8 unless --num-batches says more.
  c = json_of("calibrate " + kCls + kShape + "--random-input --algorithm minmax -o " + p("rnd.cache") + " --json");
  EXPECT_EQ(c["batches"], 10) << c.dump();
  EXPECT_EQ(c["samples"], 80) << c.dump();
  c = json_of("compare " + kCls + kShape + "--random-input --calib " + p("rnd.cache") + " -q --json");
  EXPECT_EQ(c["samples"], 8) << c.dump();
  // Fewer images than one batch: the way out is named.
  r = sh("calibrate " + kCls + kShape + "--calib-dir " + kCalib + " --max-images 3 -o " + p("few.cache") + " -q");
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_TRUE(has(r, "3 images make no full batch of 8 (use --last-batch keep or pad)")) << r.out;
}

// §1 --num-batches has one meaning: random data, this many batches; files, at most this many
// (alias --count) -- in calibrate, compare, build and build-dla.
TEST_F(CliOptions, NumBatchesOneMeaning) {
  nlohmann::json c = json_of("calibrate " + kCls + kShape + "--random-input --num-batches 2 --bs 2 -o " + p("r.cache") +
                             " --json");
  EXPECT_EQ(c["batches"], 2) << c.dump();
  EXPECT_EQ(c["samples"], 4) << c.dump();
  c = json_of("calibrate " + kCls + kShape + "--calib-dir " + kCalib + " --num-batches 2 -o " + p("i.cache") + " --json");
  EXPECT_EQ(c["batches"], 2) << c.dump();
  EXPECT_EQ(c["samples"], 16) << c.dump();
  c = json_of("calibrate " + kCls + kShape + "--calib-dir " + kCalib + " --count 2 -o " + p("i2.cache") + " --json");
  EXPECT_EQ(c["samples"], 16) << c.dump();
  EXPECT_EQ(slurp(p("i.cache")), slurp(p("i2.cache")));
  c = json_of("calibrate " + kCls + kShape + "--calib-dir " + kCalib + " --num-batches 100 -o " + p("all.cache") + " --json");
  EXPECT_EQ(c["batches"], 4) << c.dump();  // at most: the 32 images make 4
  c = json_of("compare " + kCls + kShape + "--calib-dir " + kCalib + " --num-batches 1 --calib " + p("i.cache") + " -q --json");
  EXPECT_EQ(c["samples"], 8) << c.dump();
  // build-dla caps the images the same way: the same cache as calibrate's.
  Result r = sh("build-dla " + kCls + kShape + "--calib-dir " + kCalib + " --num-batches 2 --calib " + p("b.cache") +
                " -o " + p("b.engine") + " --optimization-level 0");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_EQ(slurp(p("i.cache")), slurp(p("b.cache")));
  // .npy samples and a seeded random source reach build-dla as they reach calibrate.
  write_npy_f32(p("x.npy"), 16);
  c = json_of("calibrate " + kCls + kShape + "--calib-npy x=" + p("x.npy") + " --num-batches 1 -o " + p("n.cache") + " --json");
  EXPECT_EQ(c["samples"], 8) << c.dump();
  r = sh("build-dla " + kCls + kShape + "--calib-npy " + p("x.npy") + " --num-batches 1 --calib " + p("bn.cache") + " -o " +
         p("bn.engine") + " --optimization-level 0");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_EQ(slurp(p("n.cache")), slurp(p("bn.cache")));
  json_of("calibrate " + kCls + kShape + "--random-input --num-batches 1 --seed 3 -o " + p("s3.cache") + " --json");
  r = sh("build-dla " + kCls + kShape + "--random-input --num-batches 1 --seed 3 --calib " + p("bs3.cache") + " -o " +
         p("bs3.engine") + " --optimization-level 0");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_EQ(slurp(p("s3.cache")), slurp(p("bs3.cache")));
  json_of("calibrate " + kCls + kShape + "--random-input --num-batches 1 -o " + p("s0.cache") + " --json");
  EXPECT_NE(slurp(p("s3.cache")), slurp(p("s0.cache")));  // the seed matters

  r = sh("calibrate " + kCls + kShape + "--synthetic 2 --num-batches 3 -o " + p("s.cache"));
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_EQ(lines(r.out), 1) << r.out;
  EXPECT_TRUE(has(r, "give one of --synthetic and --num-batches")) << r.out;
}

// §1 workspace: GiB in every command (trtutils' unit), K/M/G suffixes; trtexec's MiB spelling is
// --memPoolSize=workspace:N; a MiB-sized bare number and both spellings at once are refused.
TEST_F(CliOptions, WorkspaceOneUnit) {
  const std::string exp = "export trtexec " + kCls + kShape;
  Result r = sh(exp + "-w 2");
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_TRUE(has(r, "--memPoolSize=workspace:2048")) << r.out;
  r = sh(exp + "--workspace 512M");
  EXPECT_TRUE(has(r, "--memPoolSize=workspace:512")) << r.out;
  r = sh(exp + "--memPoolSize=workspace:1024");
  EXPECT_TRUE(has(r, "--memPoolSize=workspace:1024")) << r.out;
  r = sh(exp);
  EXPECT_TRUE(has(r, "--memPoolSize=workspace:4096")) << r.out;  // the default, 4 GiB
  for (const std::string& cmd : {exp, "build " + kCls + kShape + "-o " + p("w.engine") + " "}) {
    r = sh(cmd + "--workspace 4096");
    EXPECT_EQ(r.rc, 2) << r.out;
    EXPECT_EQ(lines(r.out), 1) << r.out;
    EXPECT_TRUE(has(r, "the unit is GiB")) << r.out;
    EXPECT_TRUE(has(r, "4096M")) << r.out;
    r = sh(cmd + "-w 2 --memPoolSize=workspace:1024");
    EXPECT_EQ(r.rc, 2) << r.out;
    EXPECT_TRUE(has(r, "give one")) << r.out;
  }
  r = sh("build " + kCls + kShape + "-w 512M --fp16 --optimization-level 0 -o " + p("m.engine"));
  ASSERT_EQ(r.rc, 0) << r.out;
  const nlohmann::json e = json_of("inspect " + p("m.engine") + " --json");
  EXPECT_EQ(e.dump().find("\"workspace_gib\":0.5") != std::string::npos, true) << e.dump().substr(0, 2000);
}

// §4 user output: no internal tags ("[U]": the text says "unverified"), placeholders filled with
// the user's values.
TEST_F(CliOptions, NoInternalTagsAndFilledPlaceholders) {
  for (const std::string& cmd : {"dla-check " + kCls + kShape, "dla-check " + kCls + kShape + "--json",
                                 "plan " + kCls + kShape + "--max-chunks 0 --min-layers 0"}) {
    const Result r = sh(cmd);
    EXPECT_EQ(r.rc, 0) << cmd << r.out;
    EXPECT_TRUE(has(r, "unverified")) << cmd;  // the cls Shuffle layers' DLA precision has no source
    EXPECT_FALSE(has(r, "[U]")) << cmd;
  }
  const Result r = sh("build " + kCls + kShape + "--int8 --range -1 --range-hi 1 --optimization-level 0 -o " + p("i8.engine"));
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_TRUE(has(r, "synthetic data in [-1, 1] is used")) << r.out;
  EXPECT_FALSE(has(r, "{}") || has(r, "[U]") || has(r, "[lo, hi]")) << r.out;
}
