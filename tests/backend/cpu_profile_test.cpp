// issue 17 §4: the CPU executor's per-step profile and time split (Executor::profile,
// Executor::last_run_split). The profile lists each step of the ExecGraph that lower() makes with
// the CPU's policy once, in execution order, named after the step's layers.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <set>

#include "tandem/lower.h"
#include "tandem/onnx.h"
#include "tandem/runtime.h"

namespace tandem {
namespace {

const std::string kCls = std::string(TANDEM_SOURCE_DIR) + "/.data/models/ch_ppocr_mobile_v2.0_cls_infer.onnx";

Network cls_network() {
  ImportOptions io;
  io.shapes.push_back({"x", {1, 3, 48, 192}});
  return import_onnx(kCls, io);
}

TensorMap random_input(const Network& net) {
  const Tensor& x = net.tensors[size_t(net.inputs[0])];
  HostTensor h = HostTensor::zeros(x.name, DataType::kFloat, x.dims);
  std::mt19937 rng{7};
  std::uniform_real_distribution<float> u(0.f, 1.f);
  for (int64_t i = 0; i < h.count(); ++i) h.f32()[i] = u(rng);
  TensorMap m;
  m[x.name] = std::move(h);
  return m;
}

// Whether step i of g is an in-place output rounding that the CPU executor applies inside the
// step before it (its producer, whose one output it rounds): it shares that step's entry.
bool joins_previous(const ExecGraph& g, size_t i) {
  if (i == 0) return false;
  const ExecStep& r = g.steps[i];
  if (r.kind != StepKind::kRound || r.inputs[0] != r.outputs[0] || r.rounding == Rounding::kInt8PerChannel) return false;
  // In-place roundings of one value in a row (a value crossing INT8 and FP16 layers) all join.
  if (g.steps[i - 1].kind == StepKind::kRound) return g.steps[i - 1].outputs[0] == r.inputs[0] && joins_previous(g, i - 1);
  const ExecStep& p = g.steps[i - 1];
  return p.outputs.size() == 1 && p.outputs[0] == r.inputs[0];
}

// One entry per step of lower()'s graph, in its order, each named after the step's layer(s); a
// rounding that joins its producer adds "+Round" to the producer's entry instead.
void expect_profile_matches_graph(const Network& net, const ExecOptions& opt) {
  const ExecGraph g = lower(net, opt.numerics, cpu_lower_policy(opt, false));
  auto ex = make_cpu_executor(net, opt);
  ex->run(random_input(net));
  const std::vector<StepTime> prof = ex->profile(2);
  std::vector<size_t> entries;  // the graph step each profile entry starts at
  for (size_t i = 0; i < g.steps.size(); ++i)
    if (!joins_previous(g, i)) entries.push_back(i);
  ASSERT_EQ(prof.size(), entries.size());
  std::set<std::string> names;
  for (size_t e = 0; e < prof.size(); ++e) {
    const size_t i = entries[e];
    const ExecStep& st = g.steps[i];
    size_t joined_rounds = 0;
    while (i + 1 + joined_rounds < g.steps.size() && joins_previous(g, i + 1 + joined_rounds)) ++joined_rounds;
    const bool joined_round = joined_rounds > 0;
    const Layer& l = net.layers[size_t(st.layer)];
    EXPECT_EQ(prof[e].layer.rfind(l.name, 0), 0u) << i << ": " << prof[e].layer << " is not step " << l.name;
    switch (st.kind) {
      case StepKind::kRound:
        EXPECT_EQ(prof[e].kind, "Round") << prof[e].layer;
        break;
      case StepKind::kLayer:
      case StepKind::kPointwiseChain: {
        size_t fused = joined_rounds;
        for (const Epilogue& ep : st.epilogue) fused += ep.layers.size();
        std::string kind = std::string(to_string(l.kind));
        EXPECT_EQ(prof[e].kind.rfind(kind, 0), 0u) << prof[e].layer;
        EXPECT_EQ(size_t(std::count(prof[e].kind.begin(), prof[e].kind.end(), '+')), fused) << prof[e].kind;
        if (joined_round) EXPECT_EQ(prof[e].kind.substr(prof[e].kind.size() - 6), "+Round") << prof[e].kind;
        break;
      }
    }
    EXPECT_TRUE(names.insert(prof[e].layer).second) << prof[e].layer << " listed twice";
    EXPECT_TRUE(std::isfinite(prof[e].ms) && prof[e].ms >= 0.f) << prof[e].layer << " " << prof[e].ms;
  }
}

TEST(CpuProfile, OneEntryPerLoweredStepFused) {
  const Network net = cls_network();
  ExecOptions opt;
  opt.threads = 1;
  const ExecGraph g = lower(net, opt.numerics, cpu_lower_policy(opt, false));
  // The cls model's Conv + ReLU pairs fuse: fewer steps than layers, and some step is fused.
  EXPECT_LT(g.steps.size(), net.layers.size());
  bool any_fused = false;
  for (const ExecStep& st : g.steps) any_fused |= !st.epilogue.empty();
  EXPECT_TRUE(any_fused);
  expect_profile_matches_graph(net, opt);
}

TEST(CpuProfile, OneEntryPerLoweredStepWithRounding) {
  const Network net = cls_network();
  ExecOptions opt;
  opt.threads = 1;
  opt.numerics.layer_precision.assign(net.layers.size(), Precision::kUnset);
  for (size_t i = 0; i < net.layers.size(); ++i)
    if (net.layers[i].kind == LayerKind::kConvolution) opt.numerics.layer_precision[i] = Precision::kFP16;
  const ExecGraph g = lower(net, opt.numerics, cpu_lower_policy(opt, false));
  size_t rounds = 0;
  for (const ExecStep& st : g.steps) rounds += st.kind == StepKind::kRound;
  EXPECT_GT(rounds, 0u);  // FP16 convolutions: their inputs and outputs are rounded in steps
  size_t joined = 0;
  for (size_t i = 0; i < g.steps.size(); ++i) joined += joins_previous(g, i);
  EXPECT_GT(joined, 0u);           // the outputs' roundings run inside the convolutions' steps
  EXPECT_LT(joined, rounds);       // the input copies stay steps of their own
  expect_profile_matches_graph(net, opt);
}

TEST(CpuProfile, SplitIsComputeOnly) {
  const Network net = cls_network();
  ExecOptions opt;
  opt.threads = 1;
  auto ex = make_cpu_executor(net, opt);
  EXPECT_EQ(ex->last_run_split().compute_ms, 0.0);  // nothing ran yet
  ex->run(random_input(net));
  const RunSplit s = ex->last_run_split();
  EXPECT_FALSE(s.device_copies);
  EXPECT_EQ(s.h2d_ms, 0.0);
  EXPECT_EQ(s.d2h_ms, 0.0);
  EXPECT_GT(s.compute_ms, 0.0);
  // Later runs time again and the profile times every step (no wall-clock ratio asserted: the
  // machine is shared, and speed is the benchmarks' business, not the tests').
  ex->run(random_input(net));
  EXPECT_GT(ex->last_run_split().compute_ms, 0.0);
  double t = 0;
  for (const StepTime& st : ex->profile(1)) {
    EXPECT_GE(st.ms, 0.0);
    t += st.ms;
  }
  EXPECT_GT(t, 0.0);
}

TEST(CpuProfile, ZeroIterationsIsAnError) {
  const Network net = cls_network();
  auto ex = make_cpu_executor(net);
  try {
    ex->profile(0);
    FAIL() << "profile(0) ran";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("profile(0)"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tandem
