// calibrate, compare and build-dla take --backend (issue 13 item 4), the option run and bench
// take, under one name and help text. On a machine without a GPU (or without the plugin),
// --backend cuda fails before any data is read with one line: the registry's reason, after
// "--backend cuda: ". Label cpu: runs the CLI binary.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "../common/shell.h"
#include "tandem/backend.h"

using namespace tandem;

namespace {
const std::string kTandem = std::string(TANDEM_BINARY_DIR) + "/tools/tandem/tandem";
const std::string kCls = std::string(TANDEM_SOURCE_DIR) + "/.data/models/ch_ppocr_mobile_v2.0_cls_infer.onnx";

test::ShellResult sh(const std::string& args) { return test::run_shell(kTandem + " " + args + " 2>&1"); }

int lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

// The --backend line of a command's --help.
std::string backend_help(const std::string& command) {
  const std::string out = sh(command + " --help").out;
  const size_t at = out.find("  --backend ");  // the option's line, not the description's mention
  if (at == std::string::npos) return "";
  return out.substr(at + 2, out.find('\n', at) - at - 2);
}
}  // namespace

TEST(QuantBackendCli, OneBackendOptionEverywhere) {
  const std::string want = backend_help("run");
  ASSERT_NE(want.find("cpu | cuda"), std::string::npos) << want;
  for (const char* cmd : {"bench", "calibrate", "compare", "build-dla"}) EXPECT_EQ(backend_help(cmd), want) << cmd;
}

TEST(QuantBackendCli, CudaWithoutGpuIsTheRegistrysOneLine) {
  // The registry of this process looks where the CLI's does: the plugin beside the CLI.
  ::setenv("TANDEM_PLUGIN_PATH", (std::string(TANDEM_BINARY_DIR) + "/tools/tandem").c_str(), 1);
  const Availability a = find_backend("cuda").availability();
  const std::string out = ::testing::TempDir() + "quant_backend_" + std::to_string(::getpid());
  const std::string data = " -s x:1x3x48x192 --random-input --num-batches 1 --batch-size 1";
  const std::string cmds[] = {
      "calibrate " + kCls + data + " -o " + out + ".cache --backend cuda",
      "compare " + kCls + data + " -q --backend cuda",
      "build-dla " + kCls + data + " -o " + out + ".engine --optimization-level 0 --backend cuda",
  };
  for (const std::string& c : cmds) {
    const test::ShellResult r = sh(c);
    if (a.ok) {  // a GPU machine: the command runs
      EXPECT_EQ(r.rc, 0) << c << "\n" << r.out;
      continue;
    }
    EXPECT_EQ(r.rc, 2) << c << "\n" << r.out;
    EXPECT_EQ(lines(r.out), 1) << c << "\n" << r.out;
    EXPECT_EQ(r.out, "tandem: error: --backend cuda: " + a.reason + "\n") << c;
  }
  std::remove((out + ".cache").c_str());
  std::remove((out + ".engine").c_str());
  // An unknown backend is named, as run names it.
  const test::ShellResult tpu = sh("calibrate " + kCls + data + " -o " + out + ".cache --backend tpu");
  EXPECT_EQ(tpu.rc, 2) << tpu.out;
  EXPECT_EQ(tpu.out, "tandem: error: --backend 'tpu': expected cpu or cuda\n");
}
