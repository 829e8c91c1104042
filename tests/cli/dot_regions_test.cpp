// issue 17 §4: `export dot --view regions` (--collapse): one box per DLA region and per GPU span
// (a maximal run of consecutive GPU layers), the boundary tensors with their shapes on the edges.
// The expected boxes and crossings are computed here from `tandem plan --json`, independently.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
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
const std::string kModels = std::string(TANDEM_SOURCE_DIR) + "/.data/models/";
const std::string kCls = kModels + "ch_ppocr_mobile_v2.0_cls_infer.onnx -s x:1x3x48x192";
const std::string kDet = kModels + "ch_PP-OCRv4_det_infer.onnx -s x:1x3x640x640";

int sh(const std::string& args, std::string* out) {
  tandem::test::ShellResult r = tandem::test::run_shell(kTandem + " " + args + " 2>/dev/null");
  out->append(r.out);
  return r.rc;
}

std::string read_text(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Boxes the plan implies: one per DLA region, one per run of consecutive GPU layers.
size_t expected_boxes(const json& plan) {
  std::set<int> regions;
  size_t spans = 0;
  const json& layers = plan["layers"];
  for (size_t i = 0; i < layers.size(); ++i) {
    if (layers[i]["device"] == "DLA") regions.insert(layers[i]["region"].get<int>());
    else if (i == 0 || layers[i - 1]["device"] != "GPU") ++spans;
  }
  return regions.size() + spans;
}

// Graphviz syntax without Graphviz: balanced braces and quotes, one statement per line ending in
// ';' (or a brace), every edge between declared nodes.
void expect_dot_syntax(const std::string& dot) {
  ASSERT_EQ(dot.rfind("digraph \"", 0), 0u);
  int depth = 0;
  std::set<std::string> nodes;
  std::vector<std::pair<std::string, std::string>> edges;
  std::istringstream in(dot);
  std::string line;
  const std::regex node_re(R"(^  ([A-Z]\d+) \[.*\];$)"), edge_re(R"(^  ([A-Z]\d+) -> ([A-Z]\d+) \[.*\];$)");
  while (std::getline(in, line)) {
    bool quoted = false;
    for (size_t i = 0; i < line.size(); ++i) {
      if (line[i] == '\\') ++i;
      else if (line[i] == '"') quoted = !quoted;
      else if (!quoted && line[i] == '{') ++depth;
      else if (!quoted && line[i] == '}') --depth;
    }
    EXPECT_FALSE(quoted) << "unbalanced quote: " << line;
    EXPECT_TRUE(line.back() == ';' || line.back() == '{' || line.back() == '}') << line;
    std::smatch m;
    if (std::regex_match(line, m, edge_re)) edges.emplace_back(m[1], m[2]);
    else if (std::regex_match(line, m, node_re)) nodes.insert(m[1]);
  }
  EXPECT_EQ(depth, 0);
  for (const auto& [a, b] : edges) {
    EXPECT_TRUE(nodes.count(a)) << "edge from undeclared " << a;
    EXPECT_TRUE(nodes.count(b)) << "edge to undeclared " << b;
  }
}

void check_model(const std::string& model, const std::string& extra, const std::string& tag) {
  const fs::path dir = fs::temp_directory_path() / ("tandem_dot_regions_" + std::to_string(::getpid()) + tag);
  fs::create_directories(dir);
  std::string plan_text, ignored;
  ASSERT_EQ(sh("plan " + model + extra + " --json", &plan_text), 0);
  const json plan = json::parse(plan_text);
  const std::string out = (dir / "r.dot").string();
  ASSERT_EQ(sh("export dot " + model + extra + " --view regions -o " + out, &ignored), 0);
  const std::string dot = read_text(out);
  expect_dot_syntax(dot);
  size_t boxes = 0;
  for (size_t at = dot.find("\n  G"); at != std::string::npos; at = dot.find("\n  G", at + 1))
    boxes += dot.compare(dot.find_first_of(" ", at + 3), 2, " [") == 0;
  EXPECT_EQ(boxes, expected_boxes(plan)) << tag;
  EXPECT_LT(boxes, 40u) << tag << ": the collapsed view should stay readable";
  EXPECT_NE(dot.find(std::to_string(boxes) + " boxes"), std::string::npos);
  // Every GPU <-> DLA crossing of the plan is on an edge, with its shape.
  for (const auto& c : plan["crossings"]) {
    std::string dims;
    for (const auto& d : c["shape"]) dims += (dims.empty() ? "" : "x") + std::to_string(d.get<int64_t>());
    const std::string label = c["tensor"].get<std::string>() + " [" + dims + "]";
    EXPECT_NE(dot.find(label), std::string::npos) << tag << ": no edge label " << label;
  }
  // --collapse is the same view.
  ASSERT_EQ(sh("export dot " + model + extra + " --collapse -o " + (dir / "c.dot").string(), &ignored), 0);
  EXPECT_EQ(read_text((dir / "c.dot").string()), dot);
  // Graphviz renders it (scripts/setup.sh installs graphviz).
  if (std::system("command -v dot > /dev/null 2>&1") != 0) {
    ADD_FAILURE() << "Graphviz 'dot' is missing: sudo apt-get install graphviz (scripts/setup.sh)";
  } else {
    EXPECT_EQ(std::system(("dot -Tsvg '" + out + "' -o '" + (dir / "r.svg").string() + "' 2>/dev/null").c_str()), 0) << tag;
    EXPECT_GT(fs::file_size(dir / "r.svg"), 0u);
  }
  fs::remove_all(dir);
}
}  // namespace

TEST(DotRegions, ClsSeed) { check_model(kCls, "", "cls_seed"); }
// det with the seed defaults has no DLA layer (one box): take four chunks of 5+ layers.
TEST(DotRegions, DetSeed) { check_model(kDet, " --max-chunks 4 --min-layers 5", "det_seed"); }
TEST(DotRegions, DetGraph) { check_model(kDet, " --strategy graph", "det_graph"); }

TEST(DotRegions, HandCountedCls) {
  // cls, seed strategy: one DLA chunk (layers 21..42, tests/golden/plan_cls_seed.txt), GPU before and after it.
  std::string plan_text;
  ASSERT_EQ(sh("plan " + kCls + " --json", &plan_text), 0);
  const json plan = json::parse(plan_text);
  EXPECT_EQ(expected_boxes(plan), 3u);
}
