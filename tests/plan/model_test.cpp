// Graph strategy on the real PP-OCR models: regions are connected and the region graph is acyclic.
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <set>

#include "tandem/onnx.h"
#include "tandem/plan.h"

namespace tandem {
namespace {

bool acyclic(const Network& net, const Plan& p) {
  const int n = static_cast<int>(net.layers.size());
  auto node = [&](int l) { return p.layers[l].region >= 0 ? n + p.layers[l].region : l; };
  const int N = n + static_cast<int>(p.regions.size());
  std::vector<std::set<int>> adj(N);
  for (int l = 0; l < n; ++l)
    for (TensorId t : net.layers[l].inputs) {
      const int u = net.tensors[t].producer;
      if (u >= 0 && node(u) != node(l)) adj[node(u)].insert(node(l));
    }
  std::vector<int> state(N, 0);
  std::function<bool(int)> dfs = [&](int v) {
    state[v] = 1;
    for (int w : adj[v]) {
      if (state[w] == 1) return false;
      if (state[w] == 0 && !dfs(w)) return false;
    }
    state[v] = 2;
    return true;
  };
  for (int v = 0; v < N; ++v)
    if (state[v] == 0 && !dfs(v)) return false;
  return true;
}

// Every DLA region is weakly connected over tensor edges between its members.
bool connected(const Network& net, const Region& r) {
  std::set<LayerId> members(r.layers.begin(), r.layers.end()), seen;
  std::vector<LayerId> stack = {r.layers[0]};
  auto cons = net.consumers();
  while (!stack.empty()) {
    LayerId v = stack.back();
    stack.pop_back();
    if (!seen.insert(v).second) continue;
    for (TensorId t : net.layers[v].inputs)
      if (net.tensors[t].producer >= 0 && members.count(net.tensors[t].producer)) stack.push_back(net.tensors[t].producer);
    for (TensorId t : net.layers[v].outputs)
      for (LayerId c : cons[t])
        if (members.count(c)) stack.push_back(c);
  }
  return seen.size() == members.size();
}

void check_model(const std::string& file, const std::string& shape) {
  const std::string path = std::string(TANDEM_SOURCE_DIR) + "/.data/models/" + file;
  if (!std::filesystem::exists(path)) FAIL() << "run scripts/fetch-data.sh";
  ImportOptions io;
  io.shapes.push_back(parse_shape_arg(shape));
  Network net = import_onnx(path, io);
  for (auto target : {DlaTarget::kOrin, DlaTarget::kXavier})
    for (int min_layers : {0, 20}) {
      PlanOptions o;
      o.strategy = Strategy::kGraph;
      o.dla.target = target;
      o.min_layers = min_layers;
      Plan p = make_plan(net, o);
      EXPECT_TRUE(acyclic(net, p)) << file << " min_layers " << min_layers;
      EXPECT_LE(p.dla_region_count(), 16);
      for (const auto& r : p.regions) EXPECT_TRUE(connected(net, r)) << file << " region " << r.start;
      for (size_t i = 0; i < p.layers.size(); ++i) {
        if (p.layers[i].device == Device::kDLA && net.layers[i].kind != LayerKind::kConstant &&
            net.layers[i].kind != LayerKind::kShuffle) {
          EXPECT_TRUE(p.report.layers[i].ok) << net.layers[i].name;
        }
      }
    }
}

// The graph strategy's result on det (orin, build-dla defaults: min_layers 20, 16 loadables):
// the DLA regions' sizes in plan order and the DLA layer count, as tests/golden/plan_det_graph.txt
// shows them; counted here so that a planner change names the region that changed.
TEST(PlanModels, DetGraphRegions) {
  const std::string path = std::string(TANDEM_SOURCE_DIR) + "/.data/models/ch_PP-OCRv4_det_infer.onnx";
  if (!std::filesystem::exists(path)) FAIL() << path << " missing: run scripts/fetch-data.sh";
  ImportOptions io;
  io.shapes.push_back(parse_shape_arg("x:1x3x640x640"));
  Network net = import_onnx(path, io);
  PlanOptions o;
  o.strategy = Strategy::kGraph;
  Plan p = make_plan(net, o);
  std::vector<size_t> sizes;
  for (const Region& r : p.regions)
    if (r.on_dla) sizes.push_back(r.layers.size());
  EXPECT_EQ(sizes, (std::vector<size_t>{27, 27, 25, 24}));
  int dla = 0;
  for (const LayerPlacement& l : p.layers) dla += l.device == Device::kDLA;
  EXPECT_EQ(dla, 103);
  EXPECT_EQ(p.dla_region_count(), 4);
  EXPECT_EQ(p.layers.size(), 636u);
}

TEST(PlanModels, DetGraphAcyclic) { check_model("ch_PP-OCRv4_det_infer.onnx", "x:1x3x640x640"); }
TEST(PlanModels, ClsGraphAcyclic) { check_model("ch_ppocr_mobile_v2.0_cls_infer.onnx", "x:1x3x48x192"); }

}  // namespace
}  // namespace tandem
