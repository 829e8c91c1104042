// issue 17 §4: one versioned JSON schema (docs/json.md). Every command's --json document carries
// "schema": "tandem/<doc>/v1", uses the same key for the same concept (layer `kind`, `shape` as an
// array of integers, `dla_precision`, `device`), agrees with the text report, and every key it
// prints is documented in docs/json.md.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
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
const std::string kShape = " -s x:1x3x48x192 ";

using Result = tandem::test::ShellResult;
// stdout only (stderr to the terminal): the JSON document must be all of stdout.
Result sh(const std::string& args) { return tandem::test::run_shell(kTandem + " " + args + " 2>/dev/null"); }

std::string read_text(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Keys whose children are data (names, counts by kind), not schema keys.
const std::set<std::string> kDataMaps = {"options", "layers_by_kind", "layers_by_precision"};

void expect_keys_documented(const json& j, const std::string& doc, const std::string& where) {
  if (j.is_array()) {
    for (const auto& x : j) expect_keys_documented(x, doc, where + "[]");
    return;
  }
  if (!j.is_object()) return;
  for (const auto& [k, v] : j.items()) {
    EXPECT_NE(doc.find("`" + k + "`"), std::string::npos) << where << "." << k << " is not in docs/json.md";
    if (!kDataMaps.count(k)) expect_keys_documented(v, doc, where + "." + k);
  }
}

// Parses a --json run: exit code, the schema name, and the keys documented.
json document(const std::string& args, const std::string& schema, int rc = 0) {
  const Result r = sh(args);
  EXPECT_EQ(r.rc, rc) << args << "\n" << r.out;
  json j;
  try {
    j = json::parse(r.out);
  } catch (const json::exception& e) {
    ADD_FAILURE() << args << ": stdout is not one JSON document (" << e.what() << "):\n" << r.out;
    return json::object();
  }
  EXPECT_TRUE(j.is_object()) << args;
  EXPECT_EQ(j.value("schema", ""), schema) << args;
  if (schema != "tandem/inspect-engine/v1")  // its keys: docs/engine-format.md (tests/engine)
    expect_keys_documented(j, read_text(std::string(TANDEM_SOURCE_DIR) + "/docs/json.md"), schema);
  return j;
}

// A layer never has "type" (a tensor's data type), always "kind".
void expect_layer_kinds(const json& layers, const std::string& where) {
  ASSERT_TRUE(layers.is_array()) << where;
  for (const auto& l : layers) {
    EXPECT_TRUE(l.contains("kind")) << where << ": " << l.dump();
    EXPECT_FALSE(l.contains("type")) << where << ": " << l.dump();
  }
}

int count_if(const json& a, const std::string& key, const json& value) {
  int n = 0;
  for (const auto& x : a) n += x.contains(key) && x[key] == value;
  return n;
}

class JsonSchema : public tandem::test::TempDirTest {
 protected:
  JsonSchema() : TempDirTest("tandem_json_schema_") {}
  void SetUp() override {
    ASSERT_TRUE(fs::exists(kCls)) << kCls << " is missing: run scripts/setup.sh";
    TempDirTest::SetUp();
  }
};
}  // namespace

// dla-check, plan and inspect describe the same 292 layers with the same keys and values.
TEST_F(JsonSchema, DlaCheckPlanInspectAgree) {
  const json d = document("dla-check " + kCls + kShape + "--json", "tandem/dla-check/v1");
  const Result text = sh("dla-check " + kCls + kShape);
  std::smatch m;
  ASSERT_TRUE(std::regex_search(text.out, m, std::regex("Layers: (\\d+) / (\\d+)"))) << text.out;
  EXPECT_EQ(d["dla_layers"], std::stoi(m[1])) << "the JSON count differs from the text report";
  EXPECT_EQ(d["total_layers"], std::stoi(m[2]));
  EXPECT_EQ(d["dla_layers"], count_if(d["layers"], "dla", true));
  EXPECT_EQ(d["gpu_layers"].get<int>() + d["dla_layers"].get<int>(), d["total_layers"].get<int>());
  EXPECT_EQ(d["dla_precision"], "int8");
  expect_layer_kinds(d["layers"], "dla-check");

  const json pl = document("plan " + kCls + kShape + "--json", "tandem/plan/v1");
  const Result ptext = sh("plan " + kCls + kShape);
  ASSERT_TRUE(std::regex_search(ptext.out, m, std::regex("Layers on DLA: (\\d+) / (\\d+)"))) << ptext.out;
  EXPECT_EQ(pl["dla_layers"], std::stoi(m[1]));
  EXPECT_EQ(pl["dla_layers"], count_if(pl["layers"], "device", "DLA"));
  EXPECT_EQ(pl["gpu_layers"], count_if(pl["layers"], "device", "GPU"));
  EXPECT_EQ(pl["dla_precision"], "int8");
  expect_layer_kinds(pl["layers"], "plan");
  for (const auto& c : pl["crossings"]) {
    ASSERT_TRUE(c["shape"].is_array()) << c.dump();
    for (const auto& x : c["shape"]) EXPECT_TRUE(x.is_number_integer()) << c.dump();
  }
  for (const auto& l : pl["layers"])  // a GPU layer has no region: null, not -1
    if (l["device"] == "GPU") EXPECT_TRUE(l["region"].is_null()) << l.dump();

  const json in = document("inspect " + kCls + kShape + "--json", "tandem/inspect-model/v1");
  EXPECT_EQ(in["inputs"][0]["shape"], json::parse("[1,3,48,192]"));
  EXPECT_EQ(in["inputs"][0]["type"], "fp32");
  ASSERT_EQ(in["layers"].size(), 292u);
  ASSERT_EQ(d["layers"].size(), 292u);
  ASSERT_EQ(pl["layers"].size(), 292u);
  for (size_t i = 0; i < 292; ++i) {
    EXPECT_EQ(d["layers"][i]["kind"], in["layers"][i]["kind"]) << i;
    EXPECT_EQ(pl["layers"][i]["kind"], in["layers"][i]["kind"]) << i;
    EXPECT_EQ(pl["layers"][i]["name"], in["layers"][i]["name"]) << i;
  }
  EXPECT_EQ(in["layers"][0]["kind"], "Convolution");
}

// The engine commands: build, build-dla, inspect ENGINE, run, bench, cache list.
TEST_F(JsonSchema, BuildRunBenchInspectCache) {
  const std::string eng = p("cls.engine");
  const json b = document("build " + kCls + kShape + "--fp16 -o " + eng + " --optimization-level 0 --json", "tandem/build/v1");
  EXPECT_EQ(b["command"], "build");
  EXPECT_EQ(b["engine"], eng);
  ASSERT_TRUE(fs::exists(eng));
  EXPECT_EQ(b["engine_bytes"], fs::file_size(eng));
  EXPECT_EQ(b["dla_layers"], 0);  // build's default device is the GPU
  EXPECT_EQ(b["dla_layers"].get<int>() + b["gpu_layers"].get<int>(), b["total_layers"].get<int>());
  EXPECT_TRUE(b["cache"].is_null());

  const json e = document("inspect " + eng + " --json", "tandem/inspect-engine/v1");
  EXPECT_EQ(e["layers"].size(), b["total_layers"].get<size_t>());
  expect_layer_kinds(e["layers"], "inspect engine");
  EXPECT_EQ(e["engine"]["plan"]["dla_precision"], "fp16");  // build --fp16 without --int8: an FP16 DLA check

  const json r = document("run " + eng + " --random-input --output-dir " + p("out") + " --json", "tandem/run/v1");
  ASSERT_EQ(r["outputs"].size(), 1u);
  EXPECT_EQ(r["outputs"][0]["shape"], json::parse("[1,2]"));
  EXPECT_EQ(r["outputs"][0]["type"], "fp32");
  EXPECT_TRUE(fs::exists(r["outputs"][0]["file"].get<std::string>()));
  EXPECT_EQ(r["backend"], "cpu");

  const json ro = document("run " + kCls + kShape + "--random-input --output-dir " + p("out_onnx") + " --json", "tandem/run/v1");
  ASSERT_EQ(ro["outputs"].size(), 1u);
  EXPECT_EQ(ro["outputs"][0]["name"], r["outputs"][0]["name"]);
  EXPECT_EQ(ro["outputs"][0]["shape"], json::parse("[1,2]"));
  EXPECT_FALSE(ro.contains("summary"));  // ONNX models: no engine summary

  const json be = document("bench " + eng + " --iterations 3 --warmup 1 --json", "tandem/bench/v1");
  EXPECT_EQ(be["iterations"], 3);
  EXPECT_LE(be["latency_ms"]["min"].get<double>(), be["latency_ms"]["median"].get<double>());
  EXPECT_LE(be["latency_ms"]["median"].get<double>(), be["latency_ms"]["max"].get<double>());
  EXPECT_EQ(be["engine_file_bytes"], fs::file_size(eng));

  const json dl = document("build-dla " + kCls + kShape + "--precision fp16 -o " + p("dla.engine") +
                               " --optimization-level 0 --json", "tandem/build/v1");
  EXPECT_EQ(dl["command"], "build-dla");
  EXPECT_GT(dl["dla_layers"].get<int>(), 0);
  EXPECT_EQ(dl["dla_fp16_layers"], dl["dla_layers"]);  // --precision fp16: every DLA layer in FP16
  EXPECT_EQ(dl["dla_int8_layers"], 0);

  const json c0 = document("cache list --cache-dir " + p("cache") + " --json", "tandem/cache-list/v1");
  EXPECT_EQ(c0["engines"], json::array());
  EXPECT_EQ(c0["cudnn_plans"]["files"], 0);  // (the CUDA backend's plan cache: none here)
  const json bc = document("build " + kCls + kShape + "--fp16 -o " + p("c.engine") + " --optimization-level 0 --cache --cache-dir " +
                               p("cache") + " --json", "tandem/build/v1");
  ASSERT_TRUE(bc["cache"].is_object()) << bc.dump();
  EXPECT_EQ(bc["cache"]["hit"], false);
  const json c1 = document("cache list --cache-dir " + p("cache") + " --json", "tandem/cache-list/v1");
  ASSERT_EQ(c1["engines"].size(), 1u);
  EXPECT_EQ(c1["engines"][0]["key"], bc["cache"]["key"]);
}

// The data commands: calibrate, compare, export qdq; and the other exports' summaries.
TEST_F(JsonSchema, CalibrateCompareExports) {
  const std::string cache = p("cls.cache");
  const json c = document("calibrate " + kCls + kShape + "--random-input --count 2 -o " + cache + " --json",
                          "tandem/calibrate/v1");
  EXPECT_EQ(c["reused"], false);
  EXPECT_EQ(c["batches"], 2);
  EXPECT_EQ(c["data"]["source"], "random");
  EXPECT_EQ(c["data"]["range"], json::parse("[0.0, 1.0]"));
  EXPECT_EQ(c["data"]["seed"], 0);
  EXPECT_EQ(c["cache_header"], "TRT-8600-EntropyCalibration2");
  ASSERT_TRUE(fs::exists(cache));
  EXPECT_GT(c["tensors"].get<int>(), c["int8_tensors"].get<int>() - 1);
  const json again = document("calibrate " + kCls + kShape + "--random-input --count 2 -o " + cache + " --json",
                              "tandem/calibrate/v1");
  EXPECT_EQ(again["reused"], true);
  EXPECT_TRUE(again["data"].is_null());

  const std::string calib_dir = std::string(TANDEM_SOURCE_DIR) + "/tests/data/calib";
  const json ci = document("calibrate " + kCls + kShape + "--calib-dir " + calib_dir + " --max-images 1 --batch-size 1 --range -1 --range-hi 1 -o " +
                               p("img.cache") + " --json", "tandem/calibrate/v1");
  EXPECT_EQ(ci["data"]["source"], "images");
  EXPECT_EQ(ci["data"]["dir"], calib_dir);
  EXPECT_EQ(ci["data"]["range"], json::parse("[-1.0, 1.0]"));
  EXPECT_EQ(ci["samples"], 1);

  const json cmp = document("compare " + kCls + kShape + "--random-input --count 1 --calib " + cache + " --json -q",
                            "tandem/compare/v1");
  ASSERT_EQ(cmp["outputs"].size(), 1u);
  EXPECT_EQ(cmp["outputs"][0]["shape"], json::parse("[1,2]"));
  EXPECT_EQ(cmp["outputs"][0]["type"], "fp32");
  EXPECT_EQ(cmp["samples"], 8);  // --count 1: one batch of the default 8 (docs/cli.md)
  const json per = document("compare " + kCls + kShape + "--random-input --count 1 --calib " + cache +
                                " --per-layer --top 2 --json -q", "tandem/compare/v1");
  ASSERT_FALSE(per["per_layer"].empty());
  EXPECT_TRUE(per["per_layer"][0].contains("name") && per["per_layer"][0].contains("kind")) << per["per_layer"][0].dump();

  const json q = document("export qdq " + kCls + kShape + "--calib " + cache + " -o " + p("q.onnx") + " --json",
                          "tandem/export/v1");
  EXPECT_EQ(q["format"], "qdq");
  EXPECT_TRUE(fs::exists(p("q.onnx")));
  EXPECT_GT(q["int8_layers"].get<int>(), 0);

  const json t = document("export trtexec " + kCls + kShape + "--json", "tandem/export/v1");
  EXPECT_EQ(t["format"], "trtexec");
  EXPECT_TRUE(t["output"].is_null());
  EXPECT_NE(t["command"].get<std::string>().find("--exportLayerInfo=ch_ppocr_mobile_v2.0_cls_infer.layers.json"),
            std::string::npos);
  const json pl = document("plan " + kCls + kShape + "--json", "tandem/plan/v1");
  EXPECT_EQ(t["dla_layers"], pl["dla_layers"]);

  const json d = document("export dot " + kCls + kShape + "--collapse -o " + p("c.dot") + " --json", "tandem/export/v1");
  EXPECT_EQ(d["view"], "regions");
  EXPECT_EQ(d["total_layers"], 292);
}
