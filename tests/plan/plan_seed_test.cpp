// Seed strategy: trtutils build_dla_engine's own cases on small synthetic networks.
#include <gtest/gtest.h>

#include "../dla/net_builder.h"
#include "tandem/plan.h"

namespace tandem {
namespace {

using testing::NetBuilder;

// d = DLA layer (ReLU), g = GPU layer (Unary EXP), c = Constant+Shuffle feeding nothing DLA,
// t = a GPU layer named "...Tile...".
Network chain(const std::string& pattern) {
  NetBuilder b;
  TensorId x = b.input("x", {1, 8, 4, 4});
  int i = 0;
  for (char c : pattern) {
    std::string n(1, c);
    n += std::to_string(i++);
    if (c == 'd') x = b.relu(x, n);
    else if (c == 't') x = b.layer(LayerKind::kUnary, "/m/Tile_" + n, {x}, {1, 8, 4, 4}, UnaryParams{UnaryOp::kExp});
    else x = b.layer(LayerKind::kUnary, n, {x}, {1, 8, 4, 4}, UnaryParams{UnaryOp::kExp});
  }
  b.output(x);
  return b.net;
}

// Expected plan as a string: one char per layer: D = DLA int8, G = GPU fp16, u = GPU unset.
std::string shape(const Plan& p) {
  std::string s;
  for (const auto& l : p.layers) {
    if (l.device == Device::kDLA) s += l.precision == Precision::kINT8 ? 'D' : 'd';
    else s += l.precision == Precision::kFP16 ? 'G' : 'u';
  }
  return s;
}

PlanOptions seed(int max_chunks, int min_layers) {
  PlanOptions o;
  o.max_chunks = max_chunks;
  o.min_layers = min_layers;
  return o;
}

TEST(PlanSeed, LargestChunkWinsForMaxChunks1) {
  Plan p = make_plan(chain("ddgdddgd"), seed(1, 0));
  EXPECT_EQ(shape(p), "GGGDDDGG");
  EXPECT_EQ(p.plan_case, Plan::Case::kMixed);
  EXPECT_EQ(p.default_device, Device::kDLA);
  EXPECT_TRUE(p.gpu_fallback);
  ASSERT_EQ(p.regions.size(), 3u);  // sorted: [3-5], [0-1], [7-7]
  EXPECT_EQ(p.regions[0].start, 3);
  EXPECT_TRUE(p.regions[0].on_dla);
  EXPECT_EQ(p.regions[1].reason, "not taken: max_chunks 1 reached");
  EXPECT_EQ(p.layers[3].region, 0);
}
TEST(PlanSeed, TiesKeepNetworkOrder) {
  EXPECT_EQ(shape(make_plan(chain("ddgdd"), seed(1, 0))), "DDGGG");
}
TEST(PlanSeed, MinLayersExcludesAll) {
  Plan p = make_plan(chain("ddgdddgd"), seed(1, 20));
  EXPECT_EQ(shape(p), "GGGGGGGG");
  EXPECT_EQ(p.plan_case, Plan::Case::kMixed);  // as the seed: default DLA, every layer pinned GPU
  EXPECT_EQ(p.default_device, Device::kDLA);
  EXPECT_EQ(p.regions[0].reason, "skipped: 3 layers < min_layers 20");
  EXPECT_EQ(p.dla_region_count(), 0);
}
TEST(PlanSeed, MaxChunks0TakesAll) {
  EXPECT_EQ(shape(make_plan(chain("ddgdddgd"), seed(0, 0))), "DDGDDDGD");
  EXPECT_EQ(shape(make_plan(chain("ddgdddgd"), seed(-3, 0))), "DDGDDDGD");
}
TEST(PlanSeed, MinLayersSkipsSmall) {
  EXPECT_EQ(shape(make_plan(chain("ddgdddgd"), seed(0, 2))), "DDGDDDGG");
}
TEST(PlanSeed, MaxChunksCheckedBeforeMinLayers) {
  // Sorted sizes 3, 2, 1. max_chunks=2, min_layers=2: take 3, take 2; the 1 hits max_chunks first.
  Plan p = make_plan(chain("ddgdddgd"), seed(2, 2));
  EXPECT_EQ(shape(p), "DDGDDDGG");
  EXPECT_EQ(p.regions[2].reason, "not taken: max_chunks 2 reached");
  // max_chunks=2, min_layers=3: 3 taken, 2 skipped (matched stays 1), 1 skipped.
  Plan q = make_plan(chain("ddgdddgd"), seed(2, 3));
  EXPECT_EQ(shape(q), "GGGDDDGG");
  EXPECT_EQ(q.regions[1].reason, "skipped: 2 layers < min_layers 3");
  EXPECT_EQ(q.regions[2].reason, "skipped: 1 layers < min_layers 3");
}
TEST(PlanSeed, ConstantShuffleTileUnset) {
  NetBuilder b;
  TensorId x = b.input("x", {1, 8, 4, 4});
  TensorId c = b.constant("Const_0", {8});                                    // 0: Constant
  ShuffleParams sp;
  sp.reshape = Dims{1, 8, 1, 1};
  TensorId s = b.layer(LayerKind::kShuffle, "Reshape_1", {c}, {1, 8, 1, 1}, sp);  // 1: Shuffle
  x = b.relu(x, "Relu_2");                                                  // 2: DLA
  x = b.layer(LayerKind::kUnary, "Exp_3", {x}, {1, 8, 4, 4}, UnaryParams{UnaryOp::kExp});
  x = b.layer(LayerKind::kUnary, "node_TILE_4", {x}, {1, 8, 4, 4}, UnaryParams{UnaryOp::kExp});
  x = b.eltwise(x, s, "Mul_5", ElementWiseOp::kProd);                     // DLA
  b.output(x);
  Plan p = make_plan(b.net, seed(0, 0));
  EXPECT_EQ(shape(p), "uuDGuD");
}
TEST(PlanSeed, Case1FullDla) {
  PlanOptions o = seed(1, 20);
  o.optimization_level = 5;
  Plan p = make_plan(chain("ddd"), o);
  EXPECT_EQ(p.plan_case, Plan::Case::kFullDla);
  EXPECT_EQ(p.default_device, Device::kDLA);
  EXPECT_FALSE(p.gpu_fallback);
  EXPECT_TRUE(p.int8 && p.fp16);
  EXPECT_EQ(p.optimization_level, 5);
  EXPECT_EQ(shape(p), "DDD");  // DLA INT8 (the export writes no per-layer precision: INT8 + FP16 flags)
  EXPECT_TRUE(p.crossings.size() == 1 && p.crossings[0].from == Device::kGPU);  // network input
}
TEST(PlanSeed, Case2NoDla) {
  PlanOptions o = seed(1, 20);
  o.optimization_level = 1;
  Plan p = make_plan(chain("ggg"), o);
  EXPECT_EQ(p.plan_case, Plan::Case::kNoDla);
  EXPECT_EQ(p.default_device, Device::kGPU);
  EXPECT_EQ(p.optimization_level, 1);
  ASSERT_EQ(p.warnings.size(), 1u);
  EXPECT_EQ(p.warnings[0], "No DLA-compatible layers found. Building GPU-only engine.");
  EXPECT_TRUE(p.int8 && p.fp16);
}
TEST(PlanSeed, ZeroLayersIsFullDla) {
  Network n;
  Plan p = make_plan(n, seed(1, 20));
  EXPECT_EQ(p.plan_case, Plan::Case::kFullDla);
  EXPECT_TRUE(p.regions.empty());
}
TEST(PlanSeed, Crossings) {
  // d0 (DLA int8) -> g1 (GPU fp16) -> d2 (GPU, not taken). 1x8x4x4 = 128 elements.
  Plan p = make_plan(chain("dgd"), seed(1, 0));
  EXPECT_EQ(shape(p), "DGG");
  ASSERT_EQ(p.crossings.size(), 2u);
  EXPECT_EQ(p.crossings[0].bytes, 128 * 4);  // network input fp32 -> DLA
  EXPECT_EQ(p.crossings[1].bytes, 128 * 1);  // int8 DLA output -> GPU
  EXPECT_EQ(p.crossing_bytes(), 640);
}
TEST(PlanSeed, BadOptions) {
  Network n = chain("dd");
  auto msg = [&](PlanOptions o) {
    try {
      make_plan(n, o);
    } catch (const Error& e) {
      EXPECT_EQ(e.exit_code(), 2);
      return std::string(e.what());
    }
    return std::string("no error");
  };
  PlanOptions o;
  o.dla_core = -1;
  EXPECT_EQ(msg(o), "--dla-core -1 must be >= 0");
  o.dla_core = 2;
  EXPECT_EQ(msg(o), "--dla-core 2 must be < 2 (DLA cores on orin)");
  o.dla_core = 0;
  o.optimization_level = 6;
  EXPECT_EQ(msg(o), "--optimization-level 6 must be in 0..5");
  o.optimization_level = 3;
  o.layer_device = {{"nope", Device::kGPU}};
  EXPECT_EQ(msg(o), "--layer-device: no layer named 'nope' in the network");
  o.layer_device.clear();
  o.layer_precision = {{"nope", Precision::kFP32}};
  EXPECT_EQ(msg(o), "--layer-precision: no layer named 'nope' in the network");
}
TEST(PlanSeed, Overrides) {
  PlanOptions o = seed(0, 0);
  o.layer_device = {{"d1", Device::kGPU}, {"g2", Device::kDLA}};
  o.layer_precision = {{"d0", Precision::kFP16}};
  Plan p = make_plan(chain("ddgd"), o);
  EXPECT_EQ(p.layers[0].device, Device::kDLA);
  EXPECT_EQ(p.layers[0].precision, Precision::kFP16);
  EXPECT_EQ(p.layers[1].device, Device::kGPU);
  EXPECT_EQ(p.layers[2].device, Device::kGPU);  // not DLA-capable: warning
  ASSERT_EQ(p.warnings.size(), 1u);
  EXPECT_NE(p.warnings[0].find("--layer-device g2:dla ignored"), std::string::npos);
}
TEST(PlanSeed, ParseHelpers) {
  Device d;
  EXPECT_TRUE(parse_device("DLA", &d));
  EXPECT_EQ(d, Device::kDLA);
  Precision p;
  EXPECT_TRUE(parse_precision("int8", &p));
  EXPECT_FALSE(parse_precision("int4", &p));
  Strategy s;
  EXPECT_TRUE(parse_strategy("graph", &s));
  EXPECT_FALSE(parse_strategy("best", &s));
}

}  // namespace
}  // namespace tandem
