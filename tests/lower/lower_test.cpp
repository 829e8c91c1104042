// lower(): hand-built networks, the steps, epilogues, numerics steps, views and arena offsets
// asserted exactly (the arena: 64-byte blocks, biggest first, first fit over live ranges).
#include <gtest/gtest.h>

#include <climits>
#include <cstring>

#include "net_builder.h"
#include "tandem/lower.h"

using namespace tandem;

namespace {

using lower_test::Net;

LowerPolicy cpu_like() {
  LowerPolicy p;
  p.conv_fold_scale = true;
  p.conv_hard_swish = true;
  p.conv_max_activations = -1;
  return p;
}
LowerPolicy cuda_like() {
  LowerPolicy p;
  p.conv_max_activations = 1;
  p.pointwise_chains = true;
  p.max_pointwise_ops = 8;
  p.alignment = 256;
  return p;
}

std::vector<LayerId> epilogue_layers(const ExecStep& s) {
  std::vector<LayerId> v;
  for (const Epilogue& e : s.epilogue)
    for (LayerId l : e.layers) v.push_back(l);
  return v;
}

// x -> conv -> c -> bn (Scale) -> s -> relu -> y
struct ConvBnRelu : Net {
  TensorId x, c, s, y;
  LayerId conv_l, bn_l, relu_l;
  ConvBnRelu() {
    x = input("x");
    c = tensor("c");
    s = tensor("s");
    y = tensor("y");
    conv_l = conv("conv", x, c);
    ScaleParams sp;
    sp.mode = ScaleMode::kUniform;
    sp.scale = weights("bn_s", {1}, {2.f});
    sp.shift = weights("bn_t", {1}, {1.f});
    bn_l = n.add_layer({"bn", LayerKind::kScale, {c}, {s}, sp});
    relu_l = act("relu", s, y, ActivationType::kRelu);
    output(y);
    n.verify();
  }
};

}  // namespace

TEST(Lower, CpuPolicyFoldsScaleAndActivationIntoTheConvolution) {
  ConvBnRelu b;
  ExecGraph g = lower(b.n, {}, cpu_like());
  ASSERT_EQ(g.steps.size(), 1u);
  const ExecStep& s = g.steps[0];
  EXPECT_EQ(s.kind, StepKind::kLayer);
  EXPECT_EQ(s.layer, b.conv_l);
  ASSERT_EQ(s.epilogue.size(), 2u);
  EXPECT_EQ(s.epilogue[0].kind, EpilogueKind::kScale);
  EXPECT_EQ(s.epilogue[1].kind, EpilogueKind::kActivation);
  EXPECT_EQ(epilogue_layers(s), (std::vector<LayerId>{b.bn_l, b.relu_l}));
  EXPECT_EQ(s.inputs, (std::vector<ValueId>{b.x}));
  EXPECT_EQ(s.outputs, (std::vector<ValueId>{b.y}));
  EXPECT_EQ(g.absorbed_into[size_t(b.bn_l)], 0);
  EXPECT_EQ(g.absorbed_into[size_t(b.relu_l)], 0);
  EXPECT_EQ(g.step_of_layer[size_t(b.conv_l)], 0);
  // c and s never exist; x and y live together: two 64-byte blocks.
  EXPECT_FALSE(g.values[size_t(b.c)].materialized);
  EXPECT_FALSE(g.values[size_t(b.s)].materialized);
  EXPECT_EQ(g.values[size_t(b.c)].offset, -1);
  EXPECT_EQ(g.values[size_t(b.x)].offset, 0);
  EXPECT_EQ(g.values[size_t(b.y)].offset, 64);
  EXPECT_EQ(g.arena_bytes, 128);
  EXPECT_EQ(describe(b.n, g), "conv [Convolution] +bn +relu (x) -> y\n");
}

TEST(Lower, FuseOffRunsEveryLayerAndReusesDeadBlocks) {
  ConvBnRelu b;
  LowerPolicy p = cpu_like();
  p.fuse = false;
  ExecGraph g = lower(b.n, {}, p);
  ASSERT_EQ(g.steps.size(), 3u);
  for (const ExecStep& s : g.steps) EXPECT_TRUE(s.epilogue.empty());
  // x [-1, 0], c [0, 1], s [1, 2], y [2, end]: s reuses x's block, y reuses c's.
  EXPECT_EQ(g.values[size_t(b.x)].offset, 0);
  EXPECT_EQ(g.values[size_t(b.c)].offset, 64);
  EXPECT_EQ(g.values[size_t(b.s)].offset, 0);
  EXPECT_EQ(g.values[size_t(b.y)].offset, 64);
  EXPECT_EQ(g.arena_bytes, 128);
}

TEST(Lower, KeepAllFusesNothingAndKeepsEveryTensor) {
  ConvBnRelu b;
  LowerPolicy p = cpu_like();
  p.keep_all = true;
  ExecGraph g = lower(b.n, {}, p);
  ASSERT_EQ(g.steps.size(), 3u);
  EXPECT_EQ(g.values[size_t(b.x)].offset, 0);
  EXPECT_EQ(g.values[size_t(b.c)].offset, 64);
  EXPECT_EQ(g.values[size_t(b.s)].offset, 128);
  EXPECT_EQ(g.values[size_t(b.y)].offset, 192);
  EXPECT_EQ(g.arena_bytes, 256);
}

TEST(Lower, CudaPolicyFusesOneActivationOnly) {
  ConvBnRelu b;
  ExecGraph g = lower(b.n, {}, cuda_like());
  // No Scale folding on CUDA: conv, bn, relu; the relu cannot join conv (bn between them).
  ASSERT_EQ(g.steps.size(), 3u);
  for (const ExecStep& s : g.steps) EXPECT_TRUE(s.epilogue.empty());
  // 256-byte blocks.
  EXPECT_EQ(g.values[size_t(b.c)].offset, 256);
  EXPECT_EQ(g.arena_bytes, 512);

  Net n;
  TensorId x = n.input("x"), c = n.tensor("c"), r = n.tensor("r"), y = n.tensor("y");
  LayerId conv = n.conv("conv", x, c);
  LayerId relu = n.act("relu", c, r, ActivationType::kRelu);
  n.act("relu2", r, y, ActivationType::kRelu);
  n.output(y);
  g = lower(n.n, {}, cuda_like());
  // conv+relu, then relu2 alone (a chain needs two links).
  ASSERT_EQ(g.steps.size(), 2u);
  EXPECT_EQ(g.steps[0].layer, conv);
  EXPECT_EQ(epilogue_layers(g.steps[0]), (std::vector<LayerId>{relu}));
  EXPECT_EQ(g.steps[0].outputs, (std::vector<ValueId>{r}));
  EXPECT_TRUE(g.steps[1].epilogue.empty());
}

// The CUDA fusion test's network: conv, then 1 + 2 * t0 in its epilogue, then
// (clip(t + 3, 0, 6) * t) / 6 as one chain reading the chain input t twice.
TEST(Lower, PointwiseChainsAndConvEpilogue) {
  Net n;
  TensorId x = n.input("x", {1, 1, 1, 5});
  TensorId two = n.scalar("two", 2), one = n.scalar("one", 1), three = n.scalar("three", 3), six = n.scalar("six", 6);
  Dims d = {1, 1, 1, 5};
  TensorId t0 = n.tensor("t0", d), t1 = n.tensor("t1", d), t = n.tensor("t", d), u = n.tensor("u", d),
           v = n.tensor("v", d), w = n.tensor("w", d), y = n.tensor("y", d);
  LayerId conv = n.conv("conv", x, t0);
  LayerId mul = n.elt("mul", t0, two, t1, ElementWiseOp::kProd);
  LayerId add = n.elt("add", one, t1, t, ElementWiseOp::kSum);
  LayerId add3 = n.elt("add3", t, three, u, ElementWiseOp::kSum);
  LayerId clip = n.act("clip", u, v, ActivationType::kClip, 0.f, 6.f);
  LayerId prod = n.elt("prod", v, t, w, ElementWiseOp::kProd);
  LayerId div = n.elt("div", w, six, y, ElementWiseOp::kDiv);
  n.output(y);
  n.n.verify();
  ExecGraph g = lower(n.n, {}, cuda_like());
  EXPECT_EQ(g.constants.size(), 4u);
  ASSERT_EQ(g.steps.size(), 2u) << describe(n.n, g);
  const ExecStep& c = g.steps[0];
  EXPECT_EQ(c.kind, StepKind::kLayer);
  EXPECT_EQ(c.layer, conv);
  EXPECT_EQ(c.chain_input_at, 0);
  EXPECT_EQ(epilogue_layers(c), (std::vector<LayerId>{mul, add}));
  EXPECT_EQ(c.epilogue[0].operand, EpilogueOperand::kScalarRight);
  EXPECT_EQ(c.epilogue[0].scalar, 2.f);
  EXPECT_EQ(c.epilogue[1].operand, EpilogueOperand::kScalarLeft);
  EXPECT_EQ(c.epilogue[1].scalar, 1.f);
  EXPECT_EQ(c.outputs, (std::vector<ValueId>{t}));
  const ExecStep& ch = g.steps[1];
  EXPECT_EQ(ch.kind, StepKind::kPointwiseChain);
  EXPECT_EQ(ch.layer, add3);
  EXPECT_EQ(epilogue_layers(ch), (std::vector<LayerId>{add3, clip, prod, div}));
  EXPECT_EQ(ch.epilogue[1].kind, EpilogueKind::kActivation);
  EXPECT_EQ(ch.epilogue[2].operand, EpilogueOperand::kChainInputRight);
  EXPECT_EQ(ch.epilogue[3].scalar, 6.f);
  EXPECT_EQ(ch.inputs, (std::vector<ValueId>{t}));
  EXPECT_EQ(ch.outputs, (std::vector<ValueId>{y}));
  for (TensorId e : {t0, t1, u, v, w}) EXPECT_FALSE(g.values[size_t(e)].materialized) << g.values[size_t(e)].name;
  EXPECT_TRUE(g.values[size_t(two)].constant);
  EXPECT_EQ(g.values[size_t(two)].offset, -1);
  // x [-1, 0] and t [0, 1] overlap; y [1, end] reuses x's block.
  EXPECT_EQ(g.values[size_t(x)].offset, 0);
  EXPECT_EQ(g.values[size_t(t)].offset, 256);
  EXPECT_EQ(g.values[size_t(y)].offset, 0);
  EXPECT_EQ(g.arena_bytes, 512);

  LowerPolicy no_chains = cuda_like();
  no_chains.pointwise_chains = false;
  EXPECT_EQ(lower(n.n, {}, no_chains).steps.size(), 7u);
}

// conv -> relu (fused) -> r; 2 * r + r: the chain reads the activation's output twice, so it runs in
// the convolution's epilogue after the relu, its chain input taken after epilogue[0].
TEST(Lower, ChainAfterAFusedActivation) {
  Net n;
  Dims d = {1, 1, 1, 2};
  TensorId x = n.input("x", d);
  TensorId two = n.scalar("two", 2);
  TensorId t0 = n.tensor("t0", d), r = n.tensor("r", d), t1 = n.tensor("t1", d), y = n.tensor("y", d);
  LayerId conv = n.conv("conv", x, t0);
  LayerId relu = n.act("relu", t0, r, ActivationType::kRelu);
  LayerId mul = n.elt("mul", r, two, t1, ElementWiseOp::kProd);
  LayerId add = n.elt("add", t1, r, y, ElementWiseOp::kSum);
  n.output(y);
  ExecGraph g = lower(n.n, {}, cuda_like());
  ASSERT_EQ(g.steps.size(), 1u) << describe(n.n, g);
  const ExecStep& s = g.steps[0];
  EXPECT_EQ(s.layer, conv);
  EXPECT_EQ(epilogue_layers(s), (std::vector<LayerId>{relu, mul, add}));
  EXPECT_EQ(s.chain_input_at, 1);
  EXPECT_EQ(s.epilogue[2].operand, EpilogueOperand::kChainInputRight);
  EXPECT_EQ(s.outputs, (std::vector<ValueId>{y}));
  for (TensorId e : {t0, r, t1}) EXPECT_FALSE(g.values[size_t(e)].materialized) << g.values[size_t(e)].name;
  // ExecOptions::fuse off: four steps, no epilogue.
  LowerPolicy off = cuda_like();
  off.fuse = false;
  EXPECT_EQ(lower(n.n, {}, off).steps.size(), 4u);
}

TEST(Lower, CpuPolicyMatchesHardSwish) {
  Net n;
  TensorId x = n.input("x"), c = n.tensor("c"), h = n.tensor("h"), y = n.tensor("y");
  LayerId conv = n.conv("conv", x, c);
  LayerId hs = n.act("hsig", c, h, ActivationType::kHardSigmoid, 1.f / 6.f, 0.5f);
  LayerId m = n.elt("mul", c, h, y, ElementWiseOp::kProd);
  n.output(y);
  ExecGraph g = lower(n.n, {}, cpu_like());
  ASSERT_EQ(g.steps.size(), 1u);
  ASSERT_EQ(g.steps[0].epilogue.size(), 1u);
  EXPECT_EQ(g.steps[0].epilogue[0].kind, EpilogueKind::kHardSwish);
  EXPECT_EQ(epilogue_layers(g.steps[0]), (std::vector<LayerId>{hs, m}));
  EXPECT_EQ(g.steps[0].layer, conv);
  EXPECT_EQ(g.steps[0].outputs, (std::vector<ValueId>{y}));
  // The policy's post-op rule can refuse it.
  LowerPolicy p = cpu_like();
  p.conv_can_append = [](const Network&, const std::vector<Epilogue>&, const Epilogue& e) {
    return e.kind != EpilogueKind::kHardSwish;
  };
  EXPECT_EQ(lower(n.n, {}, p).steps.size(), 3u);
}

TEST(Lower, ViewsAliasTheirInput) {
  Net n;
  TensorId x = n.input("x"), r = n.tensor("r", {4}), y = n.tensor("y", {4});
  ShuffleParams sp;
  sp.reshape = Dims{4};
  LayerId shuffle = n.n.add_layer({"reshape", LayerKind::kShuffle, {x}, {r}, sp});
  LayerId relu = n.act("relu", r, y, ActivationType::kRelu);
  n.output(y);
  ExecGraph g = lower(n.n, {}, cpu_like());
  ASSERT_EQ(g.steps.size(), 1u);
  EXPECT_EQ(g.steps[0].layer, relu);
  EXPECT_EQ(g.step_of_layer[size_t(shuffle)], -1);
  EXPECT_EQ(g.values[size_t(r)].alias_of, x);
  EXPECT_TRUE(g.values[size_t(r)].materialized);
  EXPECT_EQ(g.values[size_t(r)].offset, -1);
  EXPECT_EQ(g.root(r), x);
  // x lives until relu reads it through r: y gets its own block.
  EXPECT_EQ(g.values[size_t(x)].offset, 0);
  EXPECT_EQ(g.values[size_t(y)].offset, 64);

  LowerPolicy copy = cpu_like();
  copy.alias_views = false;
  g = lower(n.n, {}, copy);
  ASSERT_EQ(g.steps.size(), 2u);
  EXPECT_EQ(g.values[size_t(r)].alias_of, -1);
}

TEST(Lower, Int8LayerRoundsItsInputsIntoCopiesAndItsOutputsInPlace) {
  Net n;
  TensorId x = n.input("x"), c = n.tensor("c"), y = n.tensor("y");
  n.conv("conv", x, c);  // FP32
  LayerId relu = n.act("relu", c, y, ActivationType::kRelu);
  n.output(y);
  Numerics num;
  num.layer_precision = {Precision::kUnset, Precision::kINT8};
  num.tensor_scales = {{"c", 0.5f}, {"y", 0.25f}};
  ExecGraph g = lower(n.n, num, cpu_like());  // the INT8 relu does not fuse into the conv
  ASSERT_EQ(g.steps.size(), 4u);
  EXPECT_EQ(g.steps[0].kind, StepKind::kLayer);
  EXPECT_TRUE(g.steps[0].epilogue.empty());
  const ExecStep& in = g.steps[1];
  EXPECT_EQ(in.kind, StepKind::kRound);
  EXPECT_EQ(in.rounding, Rounding::kInt8);
  EXPECT_EQ(in.scale, 0.5f);
  EXPECT_EQ(in.layer, relu);
  ASSERT_EQ(in.outputs.size(), 1u);
  const ValueId copy = in.outputs[0];
  EXPECT_EQ(copy, ValueId(n.n.tensors.size()));  // after the network's tensors
  EXPECT_EQ(g.values[size_t(copy)].name, "c@relu");
  EXPECT_EQ(g.values[size_t(copy)].precision, Precision::kINT8);
  EXPECT_EQ(g.values[size_t(copy)].tensor, c);
  EXPECT_EQ(g.steps[2].layer, relu);
  EXPECT_EQ(g.steps[2].inputs, (std::vector<ValueId>{copy}));
  const ExecStep& out = g.steps[3];
  EXPECT_EQ(out.kind, StepKind::kRound);
  EXPECT_EQ(out.inputs, (std::vector<ValueId>{y}));
  EXPECT_EQ(out.outputs, (std::vector<ValueId>{y}));
  EXPECT_EQ(out.scale, 0.25f);
  // x [-1, 0], c [0, 1], y [2, end], copy [1, 2] (equal sizes: placed in value order): y reuses
  // x's block; the copy overlaps c and y.
  EXPECT_EQ(g.values[size_t(x)].offset, 0);
  EXPECT_EQ(g.values[size_t(c)].offset, 64);
  EXPECT_EQ(g.values[size_t(y)].offset, 0);
  EXPECT_EQ(g.values[size_t(copy)].offset, 128);
  EXPECT_EQ(g.arena_bytes, 192);

  // Unquantized tensors (inside a fused INT8 block) are not rounded.
  num.unquantized = {"c"};
  g = lower(n.n, num, cpu_like());
  ASSERT_EQ(g.steps.size(), 3u);
  EXPECT_EQ(g.steps[1].inputs, (std::vector<ValueId>{c}));
  // FP16: rounded to half, no scales needed; the ReLU's output holds values of its rounded copy
  // (or zero): on the FP16 grid already, not rounded again.
  num = {};
  num.layer_precision = {Precision::kUnset, Precision::kFP16};
  g = lower(n.n, num, cpu_like());
  ASSERT_EQ(g.steps.size(), 3u);
  EXPECT_EQ(g.steps[1].rounding, Rounding::kFp16);
  EXPECT_EQ(g.steps[2].kind, StepKind::kLayer);
}

TEST(Lower, PerChannelWeightsAndErrors) {
  Net n;
  TensorId a = n.input("a", {2, 3});
  TensorId b = n.tensor("b", {3, 4}), y = n.tensor("y", {2, 4});
  std::vector<float> bw(12, 1.f);
  n.n.add_layer({"B", LayerKind::kConstant, {}, {b}, ConstantParams{n.weights("bw", {3, 4}, bw)}});
  LayerId mm = n.n.add_layer({"mm", LayerKind::kMatrixMultiply, {a, b}, {y}, MatrixMultiplyParams{}});
  n.output(y);
  Numerics num;
  num.layer_precision = {Precision::kUnset, Precision::kINT8};
  num.tensor_scales = {{"a", 0.1f}, {"b", 0.01f}, {"y", 0.2f}};
  num.per_channel_axis = {{"b", 1}};
  ExecGraph g = lower(n.n, num, cpu_like());
  ASSERT_EQ(g.steps.size(), 4u);
  EXPECT_EQ(g.steps[0].rounding, Rounding::kInt8);
  EXPECT_EQ(g.steps[1].rounding, Rounding::kInt8PerChannel);
  EXPECT_EQ(g.steps[1].channels, 4);
  EXPECT_EQ(g.steps[1].inner, 1);
  EXPECT_EQ(g.steps[2].layer, mm);
  EXPECT_EQ(g.constants, (std::vector<LayerId>{0}));

  num.tensor_scales.erase("y");
  try {
    lower(n.n, num, cpu_like());
    FAIL() << "a missing scale must throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tensor 'y' (output of INT8 layer 'mm') has no INT8 scale"), std::string::npos)
        << e.what();
  }
  num.layer_precision = {Precision::kUnset, Precision::kFP8};
  EXPECT_THROW(lower(n.n, num, cpu_like()), Error);
}
