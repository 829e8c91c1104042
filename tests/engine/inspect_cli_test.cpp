// `tandem inspect model.engine [--json]` (issue 10 §5): the header and one row per engine layer,
// only what the engine records; corrupt engines give one line and exit 2.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "test_util.h"
#include "tandem/engine.h"

using namespace tandem;
using nlohmann::json;
namespace fs = std::filesystem;

#include "../common/shell.h"

namespace {

const std::string kTandem = std::string(TANDEM_BINARY_DIR) + "/tools/tandem/tandem";
const std::string kCls = std::string(TANDEM_SOURCE_DIR) + "/.data/models/ch_ppocr_mobile_v2.0_cls_infer.onnx";
const std::string kCalib = std::string(TANDEM_SOURCE_DIR) + "/tests/data/calib";

using Result = tandem::test::ShellResult;
Result tandem_cli(const std::string& args) { return tandem::test::run_shell(kTandem + " " + args + " 2>&1"); }

fs::path temp_dir() {
  fs::path d = fs::temp_directory_path() / ("tandem_inspect_test_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Every key of the JSON (recursively, except inside "options", the canonical build options, and
// "layers_by_precision", keyed by precision) must appear in docs/engine-format.md as `key` or as
// the last part of a dotted `a.key`.
void expect_keys_documented(const json& j, const std::string& doc, const std::string& where) {
  if (j.is_array()) {
    for (const auto& x : j) expect_keys_documented(x, doc, where + "[]");
    return;
  }
  if (!j.is_object()) return;
  for (const auto& [k, v] : j.items()) {
    const bool listed = doc.find("`" + k + "`") != std::string::npos || doc.find("." + k + "`") != std::string::npos;
    EXPECT_TRUE(listed) << where << "." << k << " is not in docs/engine-format.md";
    if (k != "options" && k != "layers_by_precision") expect_keys_documented(v, doc, where + "." + k);
  }
}

const json& layer_named(const json& j, const std::string& name) {
  for (const auto& l : j["layers"])
    if (l["name"] == name) return l;
  static const json none;
  ADD_FAILURE() << "no layer " << name;
  return none;
}

}  // namespace

TEST(InspectEngine, JsonReportsWhatTheEngineRecords) {
  const fs::path d = temp_dir();
  EngineContents e = test::small_contents();
  e.meta.fusions.push_back("conv + relu (activation fused by the backend)");
  // No .engine suffix: found by its magic.
  const std::string path = (d / "small.bin").string();
  write_engine_file(path, e);
  Result r = tandem_cli("inspect --json " + path);
  ASSERT_EQ(r.rc, 0) << r.out;
  const json j = json::parse(r.out);
  const json& h = j["engine"];
  EXPECT_EQ(h["path"], path);
  EXPECT_EQ(h["file_bytes"], fs::file_size(path));
  EXPECT_EQ(h["format_version"], kEngineFormatVersion);
  EXPECT_EQ(h["tool_version"], TANDEM_VERSION);
  EXPECT_EQ(h["created_utc"], "2026-11-26T00:00:00Z");
  EXPECT_EQ(h["model_path"], "small.onnx");
  EXPECT_EQ(h["model_sha256"], std::string(64, 'a'));
  EXPECT_EQ(h["target"], "orin");
  EXPECT_EQ(h["dla_core"], 0);
  EXPECT_EQ(h["backend"], "cpu");
  EXPECT_TRUE(h["device_key"].is_null()) << "the engine records no device key: never invent one";
  EXPECT_EQ(h["options"], json::parse("{\"fp16\":true}"));
  ASSERT_EQ(h["tactics"].size(), 1u);
  EXPECT_EQ(h["tactics"][0], json::parse(R"j({"signature":"network:abc","name":"cpu.threads=2","time_ms":1.5})j"));
  EXPECT_EQ(h["fusions"], json::parse(R"j(["conv + bn","conv + relu (activation fused by the backend)"])j"));
  EXPECT_EQ(h["plan"]["case"], "no-dla");
  EXPECT_EQ(h["plan"]["dla_layers"], 1);
  EXPECT_EQ(h["plan"]["gpu_layers"], 5);
  EXPECT_EQ(h["plan"]["dla_regions"], 1);
  EXPECT_EQ(h["plan"]["crossing_bytes"], 512);
  EXPECT_EQ(h["plan"]["warnings"], json::parse(R"j(["a warning"])j"));
  ASSERT_EQ(h["inputs"].size(), 1u);
  EXPECT_EQ(h["inputs"][0], json::parse(R"({"name":"x","type":"fp32","shape":[1,3,8,8],"int8_scale":0.009999999776482582,
                                           "format":{"type":"fp32","layout":"nchw"}})"));
  EXPECT_EQ(h["outputs"][0]["format"], json::parse(R"j({"type":"fp16","layout":"nhwc"})j"));
  EXPECT_TRUE(h["outputs"][0]["int8_scale"].is_null());

  ASSERT_EQ(j["layers"].size(), e.network.layers.size());
  const json& conv = layer_named(j, "conv");
  EXPECT_EQ(conv["index"], 0);
  EXPECT_EQ(conv["kind"], "Convolution");
  EXPECT_EQ(conv["device"], "DLA");
  EXPECT_EQ(conv["precision"], "int8");
  EXPECT_EQ(conv["region"], 0);
  EXPECT_EQ(conv["reason"], "dla chunk");
  EXPECT_EQ(conv["onnx_node"], "conv");
  EXPECT_EQ(conv["onnx_op"], "Conv");
  EXPECT_TRUE(conv["tactic"].is_null());
  EXPECT_EQ(conv["fused_with"], json::parse(R"j(["bn","relu"])j"));
  EXPECT_EQ(conv["int8_scales"], "all");  // x and conv_out
  EXPECT_EQ(conv["inputs"][0]["shape"], json::parse("[1,3,8,8]"));
  EXPECT_EQ(conv["outputs"][0]["name"], "conv_out");
  // conv.w is INT8 per channel: 8*3*3*3 bytes + 8 f32 scales; conv.b raw: 8 f32.
  ASSERT_EQ(conv["weights"].size(), 2u);
  EXPECT_EQ(conv["weights"][0], json::parse(R"({"name":"conv.w","type":"fp32","shape":[8,3,3,3],
                                              "encoding":"int8_per_channel","bytes":248})"));
  EXPECT_EQ(conv["weights"][1]["encoding"], "raw");
  EXPECT_EQ(conv["weight_bytes"], 248 + 32);
  const json& bn = layer_named(j, "bn");
  EXPECT_EQ(bn["device"], "GPU");
  EXPECT_EQ(bn["precision"], "unset");
  EXPECT_TRUE(bn["region"].is_null());
  EXPECT_EQ(bn["int8_scales"], "partial");  // conv_out only
  EXPECT_EQ(bn["weight_bytes"], 64);        // scale and shift, 8 f32 each
  EXPECT_EQ(layer_named(j, "relu")["fused_with"], json::parse(R"j(["conv"])j"));
  const json& k = layer_named(j, "k");
  EXPECT_EQ(k["inputs"], json::array());
  EXPECT_EQ(k["weight_bytes"], 32);
  EXPECT_EQ(k["int8_scales"], "none");
  EXPECT_EQ(layer_named(j, "add")["fused_with"], json::array());
  EXPECT_EQ(j["summary"]["layers"], 6);
  EXPECT_EQ(j["summary"]["weights"], e.network.weights.size());
  EXPECT_EQ(j["summary"]["weight_bytes"], 248 + 32 + 64 + 32);
  EXPECT_EQ(j["summary"]["int8_weights"], 1);
  EXPECT_EQ(j["summary"]["scales"], 2);
  EXPECT_EQ(j["summary"]["layers_by_precision"], json::parse(R"j({"int8":1,"unset":5})j"));
  expect_keys_documented(j, read_text(std::string(TANDEM_SOURCE_DIR) + "/docs/engine-format.md"), "");
  fs::remove_all(d);
}

TEST(InspectEngine, TextHasTheHeaderAndOneRowPerLayer) {
  const fs::path d = temp_dir();
  const std::string path = (d / "small.engine").string();
  write_engine_file(path, test::small_contents());
  Result r = tandem_cli("inspect " + path);
  ASSERT_EQ(r.rc, 0) << r.out;
  for (const std::string& want : std::vector<std::string>{"engine      " + path + " (", "format      " + std::to_string(kEngineFormatVersion) + " (tandem " + std::string(TANDEM_VERSION) + ", created 2026-11-26T00:00:00Z)",
        "model       small.onnx sha256 " + std::string(64, 'a'), std::string("target      orin, DLA core 0"), std::string("backend     cpu"),
        std::string("device key  not recorded (tactics not timed, or an engine from before tandem recorded it)"),
        std::string("tactic      cpu.threads=2 (1.500 ms) for network:abc"),
        std::string("placement   1 DLA layers in 1 regions, 5 GPU layers, 512 bytes cross devices"),
        std::string("options     {\"fp16\":true}"), std::string("input       x [1x3x8x8 fp32] as fp32 nchw, int8 scale 0.01"),
        std::string("output      y [1x8x8x8 fp32] as fp16 nhwc\n"), std::string("fusions     1: conv + bn"),
        std::string("warning     a warning"), std::string("layers      6 (")})
    EXPECT_NE(r.out.find(want), std::string::npos) << "missing '" << want << "' in:\n" << r.out;
  // Rows: index, name, kind, device, precision, ..., fused with, tactic (-), weight bytes, scales.
  std::istringstream lines(r.out);
  std::vector<std::string> rows;
  for (std::string line; std::getline(lines, line);)
    if (line.size() > 6 && line[3] >= '0' && line[3] <= '9' && line[4] == ' ') rows.push_back(line);
  ASSERT_EQ(rows.size(), 6u) << r.out;
  auto cols = [](const std::string& s) {
    std::istringstream is(s);
    std::vector<std::string> v;
    for (std::string w; is >> w;) v.push_back(w);
    return v;
  };
  const auto c0 = cols(rows[0]);
  EXPECT_EQ(std::vector<std::string>(c0.begin(), c0.begin() + 5), (std::vector<std::string>{"0", "conv", "Convolution", "DLA", "int8"}));
  EXPECT_EQ(std::vector<std::string>(c0.end() - 4, c0.end()), (std::vector<std::string>{"bn", "-", "280", "all"})) << rows[0];
  const auto c4 = cols(rows[4]);
  EXPECT_EQ(std::vector<std::string>(c4.begin(), c4.begin() + 5), (std::vector<std::string>{"4", "k", "Constant", "GPU", "unset"}));
  EXPECT_EQ(std::vector<std::string>(c4.end() - 4, c4.end()), (std::vector<std::string>{"-", "-", "32", "none"})) << rows[4];
  fs::remove_all(d);
}

TEST(InspectEngine, CorruptEnginesAreOneLineAndExit2) {
  const fs::path d = temp_dir();
  const auto bytes = serialize_engine(test::small_contents());
  auto write = [&](const std::string& name, const std::vector<uint8_t>& b) {
    const std::string p = (d / name).string();
    std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
    return p;
  };
  std::vector<uint8_t> flipped = bytes;
  flipped[flipped.size() - 40] ^= 0x5a;  // inside the last section (TACT)
  // A weight's byte: load leaves its checksum to the first use; inspect checks it (the same line).
  std::vector<uint8_t> flipped_weight = bytes;
  const EngineContents contents = test::small_contents();
  const Weights& w = contents.network.weights.back();  // "k", stored as float (weights[0] is INT8-encoded)
  auto at = std::search(flipped_weight.begin(), flipped_weight.end(), w.bytes.data(), w.bytes.data() + w.bytes.size());
  ASSERT_NE(at, flipped_weight.end());
  *at ^= 0x40;
  std::vector<uint8_t> truncated(bytes.begin(), bytes.begin() + std::ptrdiff_t(bytes.size() / 2));
  std::vector<uint8_t> bad_magic = bytes;
  bad_magic[0] = 'X';
  struct Case {
    std::string path, args, want;
  };
  const std::string good = write("good.engine", bytes);
  const Case cases[] = {
      {write("flipped.bin", flipped), "", "flipped.bin: section TACT: checksum mismatch (corrupt file)"},
      {write("weight.engine", flipped_weight), "", "weight.engine: section WGHT: checksum mismatch (corrupt file)"},
      {write("truncated.engine", truncated), "--json", "truncated.engine: truncated or extended: header says"},
      {write("magic.engine", bad_magic), "", "magic.engine: not a tandem engine (bad magic)"},
      {(d / "absent.engine").string(), "", "absent.engine: cannot open"},
      {good, "--shape x:1x3x8x8", "--shape x:1x3x8x8: " + good + " is an engine; its shapes were fixed when it was built"},
  };
  for (const Case& c : cases) {
    Result r = tandem_cli("inspect " + c.path + " " + c.args);
    EXPECT_EQ(r.rc, 2) << c.path << "\n" << r.out;
    EXPECT_EQ(r.out.rfind("tandem: error: ", 0), 0u) << r.out;
    EXPECT_NE(r.out.find(c.want), std::string::npos) << "want '" << c.want << "' in: " << r.out;
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << "one line: " << r.out;
  }
  fs::remove_all(d);
}

// A real build-dla engine of the cls model: every layer of the engine is listed with its plan,
// the header matches the loader's view, and the fusions the passes made show up per layer.
TEST(InspectEngine, ClsBuildDlaEngine) {
  ASSERT_TRUE(fs::exists(kCls)) << kCls << " is missing: run scripts/fetch-data.sh";
  const fs::path d = temp_dir();
  const std::string eng = (d / "cls.engine").string();
  Result b = tandem_cli("build-dla " + kCls + " --shape x:1x3x48x192 --strategy graph --calibration-dir " + kCalib +
                        " --calibration-cache " + (d / "c.cache").string() + " --optimization-level 1 -o " + eng);
  ASSERT_EQ(b.rc, 0) << b.out;
  Result r = tandem_cli("inspect " + eng + " --json");
  ASSERT_EQ(r.rc, 0) << r.out;
  const json j = json::parse(r.out);
  auto e = Engine::load(eng);
  const EngineContents& c = e->contents();
  EXPECT_EQ(j["engine"]["model_sha256"], sha256_file_hex(kCls));
  EXPECT_EQ(j["engine"]["options"], json::parse(c.meta.options_json));
  EXPECT_EQ(j["engine"]["fusions"], c.meta.fusions);
  ASSERT_EQ(j["layers"].size(), c.network.layers.size());
  int dla = 0, fused = 0;
  for (size_t i = 0; i < c.network.layers.size(); ++i) {
    const json& l = j["layers"][i];
    EXPECT_EQ(l["name"], c.network.layers[i].name);
    EXPECT_EQ(l["device"], std::string(to_string(c.plan.layers[i].device)));
    EXPECT_EQ(l["precision"], std::string(to_string(c.plan.layers[i].precision)));
    dla += l["device"] == "DLA";
    fused += !l["fused_with"].empty();
    if (l["precision"] == "int8") {
      EXPECT_NE(l["int8_scales"], "none") << l["name"];
    }
  }
  EXPECT_EQ(dla, e->dla_layer_count());
  EXPECT_GT(dla, 0);
  EXPECT_GT(fused, 0) << "the passes fused layers, the rows should say so";
  Result t = tandem_cli("inspect " + eng);
  ASSERT_EQ(t.rc, 0) << t.out;
  EXPECT_NE(t.out.find("layers      " + std::to_string(c.network.layers.size()) + " ("), std::string::npos) << t.out;
  fs::remove_all(d);
}
