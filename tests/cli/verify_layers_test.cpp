// issue 17 §4: `tandem verify-layers PLAN.json LAYERS.json` against hand-written layer information
// in trtexec's --exportLayerInfo format (tests/cli/data/verify_*.json; format: docs/cli.md), and
// the trtexec export that asks for that file.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "../common/shell.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {
const std::string kTandem = std::string(TANDEM_BINARY_DIR) + "/tools/tandem/tandem";
const std::string kData = std::string(TANDEM_SOURCE_DIR) + "/tests/cli/data/";
const std::string kCls = std::string(TANDEM_SOURCE_DIR) + "/.data/models/ch_ppocr_mobile_v2.0_cls_infer.onnx";

struct Result {
  int rc;
  std::string out, err;
};
Result sh(const std::string& args) {  // stdout and stderr apart
  const std::string errfile = (fs::temp_directory_path() / ("tandem_verify_err_" + std::to_string(::getpid()))).string();
  const tandem::test::ShellResult r = tandem::test::run_shell(kTandem + " " + args + " 2>" + errfile);
  std::ifstream f(errfile);
  std::string err((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  fs::remove(errfile);
  return {r.rc, r.out, err};
}
const std::string kPlan = kData + "verify_plan.json";
}  // namespace

TEST(VerifyLayers, MatchingEngineHasNoDifference) {
  const Result r = sh("verify-layers " + kPlan + " " + kData + "verify_layers_match.json");
  EXPECT_EQ(r.rc, 0) << r.out << r.err;
  EXPECT_EQ(r.out,
            "10 planned layers: TensorRT ran 4 on the DLA and 5 on the GPU; 1 not in the engine (folded or fused away)\n"
            "every layer TensorRT built runs where the plan put it\n");
}

TEST(VerifyLayers, ListsEveryDifferenceAndFails) {
  const std::string args = "verify-layers " + kPlan + " " + kData + "verify_layers_differ.json";
  const Result r = sh(args);
  EXPECT_EQ(r.rc, 1) << r.out << r.err;
  EXPECT_EQ(r.out,
            "10 planned layers: TensorRT ran 3 on the DLA and 6 on the GPU; 1 not in the engine (folded or fused away)\n"
            "3 differences:\n"
            "  relu1: device planned DLA, TensorRT GPU (engine layer 'relu1')\n"
            "  conv2: precision planned int8, TensorRT fp16 (engine layer '{ForeignNode[conv2]}')\n"
            "  add0: precision planned fp16, TensorRT fp32 (engine layer 'add0')\n");
  EXPECT_NE(r.err.find("tandem: verify-layers: 3 layers differ from " + kPlan), std::string::npos) << r.err;

  const Result warn = sh(args + " --warn-only");
  EXPECT_EQ(warn.rc, 0) << warn.err;
  EXPECT_EQ(warn.out, r.out);

  const Result j = sh(args + " --json");
  EXPECT_EQ(j.rc, 1);
  const json d = json::parse(j.out);
  EXPECT_EQ(d["schema"], "tandem/verify-layers/v1");
  EXPECT_EQ(d["passed"], false);
  EXPECT_EQ(d["absent"], json::parse(R"(["const0"])"));
  EXPECT_EQ(d["differences"], json::parse(R"([
    {"name": "relu1", "field": "device", "planned": "DLA", "engine": "GPU", "engine_layer": "relu1"},
    {"name": "conv2", "field": "precision", "planned": "int8", "engine": "fp16", "engine_layer": "{ForeignNode[conv2]}"},
    {"name": "add0", "field": "precision", "planned": "fp16", "engine": "fp32", "engine_layer": "add0"}])"));
}

// --profilingVerbosity=layer_names_only: "Layers" is a list of names; devices only. The DLA
// subgraph {ForeignNode[conv0...relu0]} names its ends: conv0 and relu0 ran on the DLA; bn0, planned
// on the GPU between them and named by no engine layer, is absent (not guessed).
TEST(VerifyLayers, NamesOnlyChecksDevices) {
  const Result r = sh("verify-layers " + kPlan + " " + kData + "verify_layers_names_only.json --json");
  EXPECT_EQ(r.rc, 1) << r.err;
  const json d = json::parse(r.out);
  ASSERT_EQ(d["differences"].size(), 5u) << r.out;
  const char* want[] = {"conv0", "relu0", "conv1", "bn1", "relu1"};
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(d["differences"][i]["name"], want[i]);
    EXPECT_EQ(d["differences"][i]["field"], "device");
    EXPECT_EQ(d["differences"][i]["planned"], i < 2 ? "GPU" : "DLA");
    EXPECT_EQ(d["differences"][i]["engine"], i < 2 ? "DLA" : "GPU");
  }
  EXPECT_EQ(d["absent"], json::parse(R"(["bn0", "const0"])"));
  EXPECT_EQ(d["dla_layers"], 3);
  EXPECT_EQ(d["gpu_layers"], 5);
}

TEST(VerifyLayers, BadInputNamesTheFile) {
  Result r = sh("verify-layers " + kData + "verify_layers_match.json " + kData + "verify_layers_match.json");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find(kData + "verify_layers_match.json: not a tandem plan"), std::string::npos) << r.err;
  r = sh("verify-layers " + kPlan + " /nonexistent/layers.json");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("cannot read /nonexistent/layers.json: No such file or directory"), std::string::npos) << r.err;
  r = sh("verify-layers " + kPlan + " " + kPlan);
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("no \"Layers\" array"), std::string::npos) << r.err;
}

// The export asks trtexec for that file, with detailed layer information.
TEST(VerifyLayers, TrtexecExportAsksForLayerInfo) {
  Result r = sh("export trtexec " + kCls + " -s x:1x3x48x192");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find("\n  --profilingVerbosity=detailed"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\n  --exportLayerInfo=ch_ppocr_mobile_v2.0_cls_infer.layers.json"), std::string::npos) << r.out;
  r = sh("export trtexec " + kCls + " -s x:1x3x48x192 --saveEngine out/cls.engine --exportLayerInfo=li.json");
  EXPECT_NE(r.out.find("\n  --exportLayerInfo=li.json"), std::string::npos) << r.out;
  r = sh("export trtexec " + kCls + " -s x:1x3x48x192 --export-layer-info -");
  EXPECT_EQ(r.out.find("--exportLayerInfo"), std::string::npos) << r.out;
}
