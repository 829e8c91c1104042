// trtexec and dot exports on synthetic plans.
#include <gtest/gtest.h>

#include "../dla/net_builder.h"
#include "tandem/plan.h"

namespace tandem {
namespace {

using testing::NetBuilder;

Network small() {
  NetBuilder b;
  TensorId x = b.input("x", {1, 8, 8, 8});
  x = b.conv(x, "/backbone/Conv", 8, {1, 1});
  x = b.layer(LayerKind::kUnary, "(Unnamed Layer* 1) [Unary]", {x}, {1, 8, 8, 8}, UnaryParams{UnaryOp::kExp});
  x = b.relu(x, "Relu_2");
  b.output(x);
  return b.net;
}

PlanOptions mixed() {
  PlanOptions o;
  o.min_layers = 0;
  o.max_chunks = 0;
  return o;
}

TEST(ExportTrtexec, MixedPlan86) {
  Network n = small();
  Plan p = make_plan(n, mixed());
  TrtexecOptions t;
  t.onnx = "models/m.onnx";
  t.calib = "m.cache";
  std::string cmd = trtexec_command(n, p, t);
  EXPECT_NE(cmd.find("trtexec \\\n  --onnx=models/m.onnx \\\n  --saveEngine=m.engine"), std::string::npos) << cmd;
  EXPECT_NE(cmd.find("--useDLACore=0 \\\n  --allowGPUFallback \\\n  --int8 \\\n  --fp16 \\\n  --calib=m.cache"), std::string::npos) << cmd;
  EXPECT_NE(cmd.find("--memPoolSize=workspace:4096"), std::string::npos);
  EXPECT_NE(cmd.find("--builderOptimizationLevel=3"), std::string::npos);
  EXPECT_NE(cmd.find("--precisionConstraints=prefer"), std::string::npos);
  EXPECT_NE(cmd.find("--layerPrecisions=/backbone/Conv:int8,'(Unnamed Layer* 1) [Unary]':fp16,Relu_2:int8"), std::string::npos) << cmd;
  EXPECT_NE(cmd.find("--layerDeviceTypes=/backbone/Conv:DLA,'(Unnamed Layer* 1) [Unary]':GPU,Relu_2:DLA"), std::string::npos) << cmd;
}

TEST(ExportTrtexec, Version85Notes) {
  Network n = small();
  PlanOptions o = mixed();
  o.dla.target = DlaTarget::kXavier;
  Plan p = make_plan(n, o);
  TrtexecOptions t;
  t.onnx = "m.onnx";
  std::string cmd = trtexec_command(n, p, t);
  EXPECT_EQ(cmd.find("--layerDeviceTypes="), std::string::npos);
  EXPECT_EQ(cmd.find("--builderOptimizationLevel="), std::string::npos);
  EXPECT_NE(cmd.find("# note: trtexec 8.5 (JetPack 5) has no --layerDeviceTypes"), std::string::npos) << cmd;
  EXPECT_NE(cmd.find("# note: trtexec 8.5 has no --builderOptimizationLevel"), std::string::npos) << cmd;
  EXPECT_NE(cmd.find("# note: no --calib"), std::string::npos);
}

TEST(ExportTrtexec, FullAndNoDla) {
  NetBuilder b;
  TensorId x = b.input("x", {1, 8, 8, 8});
  b.output(b.relu(x, "Relu_0"));
  Plan full = make_plan(b.net, mixed());
  TrtexecOptions t;
  t.onnx = "m.onnx";
  t.trt_version = 10000;
  t.dla_sram_mib = 0.5;
  t.explicit_shapes = true;
  std::string cmd = trtexec_command(b.net, full, t);
  EXPECT_NE(cmd.find("--useDLACore=0"), std::string::npos);
  EXPECT_EQ(cmd.find("\n  --allowGPUFallback"), std::string::npos);
  EXPECT_NE(cmd.find("# note: full DLA without --allowGPUFallback"), std::string::npos);
  EXPECT_EQ(cmd.find("--layerPrecisions"), std::string::npos);
  EXPECT_NE(cmd.find("--memPoolSize=workspace:4096,dlaSRAM:0.5"), std::string::npos) << cmd;
  EXPECT_NE(cmd.find("--shapes=x:1x8x8x8"), std::string::npos);
  EXPECT_NE(cmd.find("10.7 was the last"), std::string::npos);
  NetBuilder g;
  TensorId y = g.input("x", {1, 8, 8, 8});
  g.output(g.layer(LayerKind::kUnary, "Exp_0", {y}, {1, 8, 8, 8}, UnaryParams{UnaryOp::kExp}));
  std::string gpu = trtexec_command(g.net, make_plan(g.net, mixed()), t);
  EXPECT_EQ(gpu.find("--useDLACore"), std::string::npos);
  EXPECT_NE(gpu.find("--int8 \\\n  --fp16"), std::string::npos);
}

// trtutils' profiling_verbosity has a trtexec flag in every version; its tiling options arrived
// in TensorRT 10.8, after the last DLA release, so they become a note instead of a bad flag.
// A shape-value input is a shape tensor to TensorRT: trtexec takes its values from --shapes
// (setShapeValues), so they are written there, even where the user gave no --shape.
TEST(ExportTrtexec, ShapeValueInputsGiveTheirValuesInShapes) {
  NetBuilder b;
  TensorId x = b.input("x", {1, 8, 8, 8});
  b.input("shape", {2}, DataType::kInt64);
  b.output(b.relu(x, "Relu_0"));
  b.net.model.input_values["shape"] = {8, -1};
  Plan p = make_plan(b.net, mixed());
  TrtexecOptions t;
  t.onnx = "m.onnx";
  const std::string cmd = trtexec_command(b.net, p, t);
  EXPECT_NE(cmd.find("--shapes=x:1x8x8x8,shape:8x-1"), std::string::npos) << cmd;
  EXPECT_NE(cmd.find("# note: 'shape' is a shape tensor: its --shapes entry gives its values (8,-1)"), std::string::npos)
      << cmd;
  // Without shape-value inputs, no --shapes unless asked for.
  NetBuilder c;
  c.output(c.relu(c.input("x", {1, 8, 8, 8}), "Relu_0"));
  EXPECT_EQ(trtexec_command(c.net, make_plan(c.net, mixed()), t).find("--shapes"), std::string::npos);
}

TEST(ExportTrtexec, ProfilingVerbosityAndTiling) {
  Network n = small();
  Plan p = make_plan(n, mixed());
  TrtexecOptions t;
  t.onnx = "m.onnx";
  t.profiling_verbosity = "detailed";
  std::string cmd = trtexec_command(n, p, t);
  EXPECT_NE(cmd.find("--profilingVerbosity=detailed"), std::string::npos) << cmd;
  EXPECT_EQ(cmd.find("tiling"), std::string::npos) << cmd;
  t.tiling_optimization_level = 2;
  t.tiling_l2_cache_limit = 1 << 20;
  cmd = trtexec_command(n, p, t);
  EXPECT_NE(cmd.find("# note: tiling options omitted: trtexec 8.6 has no --tilingOptimizationLevel / "
                     "--l2LimitForTiling (TensorRT 10.8+)"),
            std::string::npos)
      << cmd;
  EXPECT_EQ(cmd.find("--tilingOptimizationLevel="), std::string::npos) << cmd;
}

TEST(ExportDot, ClustersAndColours) {
  Network n = small();
  Plan p = make_plan(n, mixed());
  std::string d = plan_dot(n, p, "m");
  EXPECT_NE(d.find("subgraph cluster_r0"), std::string::npos);
  EXPECT_NE(d.find("L0 [label=\"/backbone/Conv\\nCONVOLUTION int8\", fillcolor=\"#9be564\"]"), std::string::npos) << d;
  EXPECT_NE(d.find("fillcolor=\"#9ecae1\""), std::string::npos);
  EXPECT_NE(d.find("color=red"), std::string::npos);
}

}  // namespace
}  // namespace tandem
