// Graph strategy: connected, cycle-free DLA regions on branchy synthetic networks.
#include <gtest/gtest.h>

#include <set>

#include "../dla/net_builder.h"
#include "tandem/plan.h"

namespace tandem {
namespace {

using testing::NetBuilder;

PlanOptions graph(int min_layers = 0) {
  PlanOptions o;
  o.strategy = Strategy::kGraph;
  o.min_layers = min_layers;
  return o;
}

TensorId gpu(NetBuilder& b, TensorId x, const std::string& name) {
  return b.layer(LayerKind::kUnary, name, {x}, b.net.tensors[x].dims, UnaryParams{UnaryOp::kExp});
}

std::vector<std::vector<LayerId>> dla_regions(const Plan& p) {
  std::vector<std::vector<LayerId>> r;
  for (const auto& g : p.regions)
    if (g.on_dla) r.push_back(g.layers);
  return r;
}

// The condensed graph (DLA regions as nodes, GPU layers as nodes) must be acyclic.
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

TEST(PlanGraph, ParallelBranchesJoinedByConcatAreOneRegion) {
  NetBuilder b;
  TensorId x = b.input("x", {1, 8, 16, 16});
  TensorId a = b.conv(x, "ConvA_0", 8, {3, 3}, {1, 1}, {1, 1});  // 0
  TensorId side = gpu(b, x, "Exp_1");                              // 1 (GPU, unrelated branch)
  b.output(side);
  TensorId c = b.conv(x, "ConvB_2", 8, {3, 3}, {1, 1}, {1, 1});  // 2
  a = b.relu(a, "ReluA_3");                                        // 3
  c = b.relu(c, "ReluB_4");                                        // 4
  TensorId y = b.concat({a, c}, "Concat_5");                       // 5
  y = b.conv(y, "Conv_6", 8, {1, 1});                              // 6
  b.output(y);
  Plan p = make_plan(b.net, graph());
  ASSERT_EQ(dla_regions(p).size(), 1u);
  EXPECT_EQ(dla_regions(p)[0], (std::vector<LayerId>{0, 2, 3, 4, 5, 6}));
  EXPECT_EQ(p.layers[1].device, Device::kGPU);
  EXPECT_TRUE(acyclic(b.net, p));
  // The seed sees index ranges: [0], [1] GPU, [2-6].
  PlanOptions s;
  s.min_layers = 0;
  s.max_chunks = 0;
  EXPECT_EQ(make_plan(b.net, s).dla_region_count(), 2);
}

TEST(PlanGraph, GpuLayerBetweenDlaRegionsNoCycle) {
  // conv1 -> relu1 -> exp (GPU) -> conv2 -> add(relu1, conv2): merging everything DLA would make
  // region -> exp -> region; expect {conv1, relu1} and {conv2, add}.
  NetBuilder b;
  TensorId x = b.input("x", {1, 8, 8, 8});
  TensorId c1 = b.conv(x, "Conv_0", 8, {3, 3}, {1, 1}, {1, 1});
  TensorId r1 = b.relu(c1, "Relu_1");
  TensorId g = gpu(b, r1, "Exp_2");
  TensorId c2 = b.conv(g, "Conv_3", 8, {3, 3}, {1, 1}, {1, 1});
  TensorId y = b.eltwise(r1, c2, "Add_4");
  b.output(y);
  Plan p = make_plan(b.net, graph());
  auto r = dla_regions(p);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0], (std::vector<LayerId>{0, 1}));
  EXPECT_EQ(r[1], (std::vector<LayerId>{3, 4}));
  EXPECT_TRUE(acyclic(b.net, p));
  // Crossings: x (GPU->DLA), relu1 (DLA->GPU, also read by region 1), exp (GPU->DLA).
  EXPECT_EQ(p.crossings.size(), 3u);
}

TEST(PlanGraph, CapOf16Loadables) {
  NetBuilder b;
  TensorId x = b.input("x", {1, 8, 8, 8});
  for (int i = 0; i < 20; ++i) {
    x = b.conv(x, "Conv_" + std::to_string(i), 8, {1, 1});
    x = gpu(b, x, "Exp_" + std::to_string(i));
  }
  b.output(x);
  Plan p = make_plan(b.net, graph());
  EXPECT_EQ(p.dla_region_count(), 16);
  ASSERT_EQ(p.regions.size(), 20u);
  EXPECT_EQ(p.regions[16].reason, "demoted: past the cap of 16 DLA loadables per core");
  // Ties keep network order: the first 16 convs are kept.
  EXPECT_EQ(p.layers[2 * 15].device, Device::kDLA);
  EXPECT_EQ(p.layers[2 * 16].device, Device::kGPU);
  PlanOptions o = graph();
  o.max_regions = 3;
  EXPECT_EQ(make_plan(b.net, o).dla_region_count(), 3);
}

TEST(PlanGraph, MinLayersAndNoMacDemoted) {
  NetBuilder b;
  TensorId x = b.input("x", {1, 8, 8, 8});
  x = b.relu(x, "Relu_0");
  x = b.relu(x, "Relu_1");  // region without MAC
  x = gpu(b, x, "Exp_2");
  x = b.conv(x, "Conv_3", 8, {1, 1});
  x = b.relu(x, "Relu_4");
  b.output(x);
  Plan p = make_plan(b.net, graph(0));
  EXPECT_EQ(p.dla_region_count(), 1);
  EXPECT_EQ(p.layers[0].device, Device::kGPU);
  EXPECT_NE(p.layers[0].reason.find("no multiply-accumulate"), std::string::npos) << p.layers[0].reason;
  Plan q = make_plan(b.net, graph(3));
  EXPECT_EQ(q.dla_region_count(), 0);
  EXPECT_EQ(q.plan_case, Plan::Case::kNoDla);
  EXPECT_NE(q.layers[3].reason.find("2 layers < min_layers 3"), std::string::npos) << q.layers[3].reason;
}

TEST(PlanGraph, ConstantsFoldIntoRegion) {
  // conv -> mul(const via broadcast shuffle) -> conv: the Constant and its Shuffle join the region.
  NetBuilder b;
  TensorId x = b.input("x", {1, 8, 8, 8});
  x = b.conv(x, "Conv_0", 8, {1, 1});
  TensorId c = b.constant("Const_1", {8, 1, 1});
  ShuffleParams sp;
  sp.reshape = Dims{1, 8, 1, 1};
  TensorId s = b.layer(LayerKind::kShuffle, "Unsqueeze_2", {c}, {1, 8, 1, 1}, sp);
  x = b.eltwise(x, s, "Mul_3", ElementWiseOp::kProd);
  x = b.conv(x, "Conv_4", 8, {1, 1});
  b.output(x);
  Plan p = make_plan(b.net, graph());
  ASSERT_EQ(dla_regions(p).size(), 1u);
  EXPECT_EQ(dla_regions(p)[0], (std::vector<LayerId>{0, 1, 2, 3, 4}));
  EXPECT_EQ(p.plan_case, Plan::Case::kFullDla);
  EXPECT_EQ(p.layers[1].precision, Precision::kUnset);
  EXPECT_NE(p.layers[2].reason.find("folded into Mul_3"), std::string::npos);
  EXPECT_EQ(p.crossings.size(), 1u);  // only the network input
  // The seed sees Constant and Shuffle as GPU layers that cut the chunk.
  PlanOptions o;
  o.min_layers = 0;
  o.max_chunks = 0;
  EXPECT_EQ(make_plan(b.net, o).dla_region_count(), 2);
}

TEST(PlanGraph, DiamondThroughGpuSplits) {
  // conv0 -> {exp (GPU), relu2 (DLA)} -> add: add can join conv0's region only if exp isn't on a
  // path from the region back into it; it is, so add starts its own region... but then that
  // region has no MAC and is demoted.
  NetBuilder b;
  TensorId x = b.input("x", {1, 8, 8, 8});
  TensorId c = b.conv(x, "Conv_0", 8, {1, 1});
  TensorId g = gpu(b, c, "Exp_1");
  TensorId r = b.relu(c, "Relu_2");
  TensorId y = b.eltwise(g, r, "Add_3");
  b.output(y);
  Plan p = make_plan(b.net, graph());
  EXPECT_TRUE(acyclic(b.net, p));
  EXPECT_EQ(p.layers[0].device, Device::kDLA);
  EXPECT_EQ(p.layers[2].device, Device::kDLA);
  EXPECT_EQ(p.layers[3].device, Device::kGPU);
}

TEST(PlanGraph, ForcedGpuSplitsRegion) {
  NetBuilder b;
  TensorId x = b.input("x", {1, 8, 8, 8});
  x = b.conv(x, "Conv_0", 8, {1, 1});
  x = b.relu(x, "Relu_1");
  x = b.conv(x, "Conv_2", 8, {1, 1});
  b.output(x);
  PlanOptions o = graph();
  o.layer_device = {{"Relu_1", Device::kGPU}};
  Plan p = make_plan(b.net, o);
  EXPECT_EQ(p.dla_region_count(), 2);
  EXPECT_EQ(p.layers[1].reason, "forced to GPU by --layer-device");
}

}  // namespace
}  // namespace tandem
