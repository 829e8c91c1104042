// lower() for emulated (INT8/FP16) layers: which rounded input copies it leaves out (the value is
// already on that grid) and how emulated layers fuse with LowerPolicy::fuse_emulated (FP16 blocks
// round once at their output; INT8 blocks only across Numerics::unquantized tensors). The round
// steps are asserted exactly, through describe().
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "net_builder.h"
#include "tandem/lower.h"
#include "tandem/numerics.h"

using namespace tandem;

namespace {

using lower_test::Net;

// The CPU backend's policy (src/backend/cpu/cpu_executor.cpp: cpu_lower_policy), emulated
// fusion on or off.
LowerPolicy cpu_like(bool fuse_emulated) {
  LowerPolicy p;
  p.conv_fold_scale = true;
  p.conv_hard_swish = true;
  p.conv_max_activations = -1;
  p.pointwise_chains = true;
  p.fuse_emulated = fuse_emulated;
  return p;
}

// x -> conv -> c -> bn -> s -> relu -> y -> relu2 -> z (output)
struct Block : Net {
  TensorId x, c, s, y, z;
  Block() {
    x = input("x");
    c = tensor("c");
    s = tensor("s");
    y = tensor("y");
    z = tensor("z");
    conv("conv", x, c);
    scale("bn", c, s);
    act("relu", s, y, ActivationType::kRelu);
    act("relu2", y, z, ActivationType::kRelu);
    output(z);
    n.verify();
  }
  Numerics all(Precision p) const {
    Numerics num;
    num.layer_precision.assign(n.layers.size(), p);
    if (p == Precision::kINT8) num.tensor_scales = {{"x", 0.5f}, {"c", 0.25f}, {"s", 0.125f}, {"y", 0.125f}, {"z", 0.0625f}};
    return num;
  }
};

}  // namespace

// FP16 rounding and INT8 fake quantization with one scale are idempotent: the copies lower()
// leaves out would hold exactly the values they copy.
TEST(LowerEmulated, RoundingTwiceChangesNothing) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> mag(-30.f, 30.f);
  for (int i = 0; i < 200000; ++i) {
    const float x = std::ldexp(mag(rng) > 0 ? 1.f : -1.f, 0) * std::exp2(mag(rng)) * (1.f + float(i % 97) / 97.f);
    const float h = round_to_fp16(x);
    ASSERT_EQ(round_to_fp16(h), h) << x;
    for (float s : {1e-30f, 3e-8f, 0.0078125f, 0.01f, 0.3f, 1.f, 7.77f, 1e6f, 1e30f}) {
      const float q = fake_quant_int8(x, s);
      ASSERT_EQ(fake_quant_int8(q, s), q) << x << " scale " << s;
    }
  }
}

TEST(LowerEmulated, NoCopyOfAValueAlreadyOnTheGrid) {
  Block b;
  // INT8 everywhere, nothing fused (the policy off): the graph input and every tensor whose
  // consumer's scale differs from the one its producer rounded with get a copy; y (relu2 reads it
  // with 0.125) does not. relu's output holds values of s on y's grid (the same scale) or zero:
  // not rounded again (LowerEmulated.LayersMovingValuesOnTheirGridRoundNothing).
  ExecGraph g = lower(b.n, b.all(Precision::kINT8), cpu_like(false));
  EXPECT_EQ(describe(b.n, g),
            "conv [round int8] (x) -> x@conv\n"
            "conv [Convolution] (x@conv) -> c\n"
            "conv [round int8] (c) -> c\n"
            "bn [Scale] (c) -> s\n"
            "bn [round int8] (s) -> s\n"
            "relu [Activation] (s) -> y\n"
            "relu2 [Activation] (y) -> z\n"
            "relu2 [round int8] (z) -> z\n");
  Numerics num = b.all(Precision::kINT8);
  // FP32 bn between INT8 layers: c is rounded by conv, bn reads it as FP32; relu's input s comes
  // from an FP32 layer: a copy.
  num.layer_precision[1] = Precision::kUnset;
  g = lower(b.n, num, cpu_like(false));
  EXPECT_EQ(describe(b.n, g),
            "conv [round int8] (x) -> x@conv\n"
            "conv [Convolution] (x@conv) -> c\n"
            "conv [round int8] (c) -> c\n"
            "bn [Scale] (c) -> s\n"
            "relu [round int8] (s) -> s@relu\n"
            "relu [Activation] (s@relu) -> y\n"
            "relu2 [Activation] (y) -> z\n"
            "relu2 [round int8] (z) -> z\n");
  // An FP16 producer and an INT8 consumer: another grid, a copy.
  num = b.all(Precision::kINT8);
  num.layer_precision[2] = Precision::kFP16;  // relu
  g = lower(b.n, num, cpu_like(false));
  EXPECT_NE(describe(b.n, g).find("relu2 [round int8] (y) -> y@relu2\n"), std::string::npos) << describe(b.n, g);
  EXPECT_NE(describe(b.n, g).find("relu [round fp16] (s) -> s@relu\n"), std::string::npos)
      << "INT8 s read by an FP16 layer: a copy\n" << describe(b.n, g);
  // relu2 reads y with another scale than relu rounded it with: a copy.
  num = b.all(Precision::kINT8);
  num.tensor_scales["y"] = 0.5f;
  num.layer_precision[3] = Precision::kINT8;
  g = lower(b.n, num, cpu_like(false));
  EXPECT_EQ(describe(b.n, g).find("relu2 [round int8] (y) -> y@relu2\n"), std::string::npos)
      << "one tensor, one scale: y is rounded with 0.5 by both\n" << describe(b.n, g);
}

// Through a view: the view's own scale decides (scales are per tensor name).
TEST(LowerEmulated, ViewsCarryTheirRootsGrid) {
  Net n;
  TensorId x = n.input("x"), a = n.tensor("a"), v = n.tensor("v"), y = n.tensor("y");
  n.act("r1", x, a, ActivationType::kRelu);
  ShuffleParams sp;
  sp.reshape = {1, 1, 1, 4};
  n.n.add_layer({"view", LayerKind::kShuffle, {a}, {v}, sp});
  n.act("r2", v, y, ActivationType::kRelu);
  n.output(y);
  Numerics num;
  num.layer_precision = {Precision::kINT8, Precision::kUnset, Precision::kINT8};
  num.tensor_scales = {{"x", 1.f}, {"a", 0.5f}, {"v", 0.5f}, {"y", 0.5f}};
  ExecGraph g = lower(n.n, num, cpu_like(false));
  ASSERT_EQ(g.values[size_t(v)].alias_of, a);
  EXPECT_EQ(describe(n.n, g),
            "r1 [round int8] (x) -> x@r1\n"
            "r1 [Activation] (x@r1) -> a\n"
            "r1 [round int8] (a) -> a\n"
            "r2 [Activation] (v) -> y\n");  // y's values are v's (same scale) or zero
  num.tensor_scales["v"] = 0.25f;
  g = lower(n.n, num, cpu_like(false));
  EXPECT_NE(describe(n.n, g).find("r2 [round int8] (v) -> v@r2\n"), std::string::npos) << describe(n.n, g);
}

TEST(LowerEmulated, Fp16BlockRoundsOnceAtItsOutput) {
  Block b;
  ExecGraph g = lower(b.n, b.all(Precision::kFP16), cpu_like(true));
  EXPECT_EQ(describe(b.n, g),
            "conv [round fp16] (x) -> x@conv\n"
            "conv [Convolution] +bn +relu +relu2 (x@conv) -> z\n"
            "conv [round fp16] (z) -> z\n");
  ASSERT_EQ(g.steps[1].epilogue.size(), 3u);
  EXPECT_EQ(g.steps[1].epilogue[0].kind, EpilogueKind::kScale);
  EXPECT_EQ(g.steps[1].precision, Precision::kFP16);
  // An FP32 layer in the middle splits the block: two FP16 blocks, each rounding its output.
  Numerics num = b.all(Precision::kFP16);
  num.layer_precision[2] = Precision::kUnset;  // relu
  g = lower(b.n, num, cpu_like(true));
  EXPECT_EQ(describe(b.n, g),
            "conv [round fp16] (x) -> x@conv\n"
            "conv [Convolution] +bn (x@conv) -> s\n"
            "conv [round fp16] (s) -> s\n"
            "relu [Activation] (s) -> y\n"
            "relu2 [round fp16] (y) -> y@relu2\n"
            "relu2 [pointwise-chain] (y@relu2) -> z\n"  // one emulated link is a chain
            "relu2 [round fp16] (z) -> z\n");
}

TEST(LowerEmulated, Int8BlockFusesOnlyAcrossUnquantizedTensors) {
  Block b;
  Numerics num = b.all(Precision::kINT8);
  // No unquantized tensor: nothing fuses (every tensor of the plan keeps its rounding).
  ExecGraph g = lower(b.n, num, cpu_like(true));
  EXPECT_EQ(g.steps.size(), 9u) << describe(b.n, g);
  // y kept FP32 inside an INT8 block: relu and relu2 run as one chain, z rounded.
  num.unquantized = {"y"};
  num.tensor_scales.erase("y");
  g = lower(b.n, num, cpu_like(true));
  EXPECT_EQ(describe(b.n, g),
            "conv [round int8] (x) -> x@conv\n"
            "conv [Convolution] (x@conv) -> c\n"
            "conv [round int8] (c) -> c\n"
            "bn [Scale] (c) -> s\n"
            "bn [round int8] (s) -> s\n"
            "relu [pointwise-chain] +relu2 (s) -> z\n"
            "relu [round int8] (z) -> z\n");
  // The Conv + BN inside unquantized: no fold into an INT8 convolution (the Q/DQ export keeps
  // the BN a float node after it); nothing is rounded between them.
  num.unquantized = {"c"};
  num.tensor_scales = b.all(Precision::kINT8).tensor_scales;
  num.tensor_scales.erase("c");
  g = lower(b.n, num, cpu_like(true));
  EXPECT_EQ(describe(b.n, g),
            "conv [round int8] (x) -> x@conv\n"
            "conv [Convolution] (x@conv) -> c\n"
            "bn [Scale] (c) -> s\n"
            "bn [round int8] (s) -> s\n"
            "relu [pointwise-chain] (s) -> y\n"
            "relu [round int8] (y) -> y\n"
            "relu2 [pointwise-chain] (y) -> z\n"
            "relu2 [round int8] (z) -> z\n");
}

// A fused FP16 point-wise chain reads its scalars as the layers read them unfused: rounded to half.
TEST(LowerEmulated, Fp16ChainTakesItsScalarsRounded) {
  Net n;
  TensorId x = n.input("x"), a = n.tensor("a"), y = n.tensor("y");
  TensorId k = n.scalar("k", 0.1f), third = n.scalar("third", 1.f / 3.f);
  n.elt("mul", x, k, a, ElementWiseOp::kProd);
  n.elt("add", third, a, y, ElementWiseOp::kSum);
  n.output(y);
  Numerics num;
  num.layer_precision = {Precision::kUnset, Precision::kUnset, Precision::kFP16, Precision::kFP16};
  ExecGraph g = lower(n.n, num, cpu_like(true));
  EXPECT_EQ(describe(n.n, g),
            "mul [round fp16] (x) -> x@mul\n"
            "mul [pointwise-chain] +add (x@mul) -> y\n"
            "mul [round fp16] (y) -> y\n");
  const ExecStep& s = g.steps[1];
  ASSERT_EQ(s.epilogue.size(), 2u);
  EXPECT_EQ(s.epilogue[0].operand, EpilogueOperand::kScalarRight);
  EXPECT_EQ(s.epilogue[0].scalar, round_to_fp16(0.1f));
  EXPECT_NE(s.epilogue[0].scalar, 0.1f);
  EXPECT_EQ(s.epilogue[1].operand, EpilogueOperand::kScalarLeft);
  EXPECT_EQ(s.epilogue[1].scalar, round_to_fp16(1.f / 3.f));
  // INT8 with the inside unquantized: the scalars fake-quantized with their own scales.
  num.layer_precision = {Precision::kUnset, Precision::kUnset, Precision::kINT8, Precision::kINT8};
  num.tensor_scales = {{"x", 0.5f}, {"k", 0.03f}, {"third", 0.01f}, {"y", 0.25f}};
  num.unquantized = {"a"};
  g = lower(n.n, num, cpu_like(true));
  ASSERT_EQ(g.steps.size(), 3u) << describe(n.n, g);
  EXPECT_EQ(g.steps[1].epilogue[0].scalar, fake_quant_int8(0.1f, 0.03f));
  EXPECT_EQ(g.steps[1].epilogue[1].scalar, fake_quant_int8(1.f / 3.f, 0.01f));
  // Unfused (the policy off) the same layers read rounded copies of the constants instead.
  g = lower(n.n, num, cpu_like(false));
  EXPECT_EQ(describe(n.n, g),
            "mul [round int8] (x) -> x@mul\n"
            "mul [round int8] (k) -> k@mul\n"
            "mul [ElementWise] (x@mul, k@mul) -> a\n"
            "add [round int8] (third) -> third@add\n"
            "add [ElementWise] (third@add, a) -> y\n"
            "add [round int8] (y) -> y\n");
}

// One emulated point-wise layer is a chain of one link: after an FP16 convolution it runs in the
// convolution's epilogue (its scalar rounded to half), one rounding at the end. FP32 keeps the
// two-link minimum.
TEST(LowerEmulated, OneEmulatedLinkJoinsTheConvolution) {
  Net n;
  TensorId x = n.input("x"), c = n.tensor("c"), y = n.tensor("y");
  n.conv("conv", x, c);
  TensorId k = n.scalar("k", 0.1f);
  n.elt("mul", c, k, y, ElementWiseOp::kProd);
  n.output(y);
  Numerics num;
  num.layer_precision = {Precision::kFP16, Precision::kUnset, Precision::kFP16};
  ExecGraph g = lower(n.n, num, cpu_like(true));
  EXPECT_EQ(describe(n.n, g),
            "conv [round fp16] (x) -> x@conv\n"
            "conv [Convolution] +mul (x@conv) -> y\n"
            "conv [round fp16] (y) -> y\n");
  ASSERT_EQ(g.steps[1].epilogue.size(), 1u);
  EXPECT_EQ(g.steps[1].epilogue[0].scalar, round_to_fp16(0.1f));
  g = lower(n.n, Numerics{}, cpu_like(true));
  EXPECT_EQ(describe(n.n, g),
            "conv [Convolution] (x) -> c\n"
            "mul [ElementWise] (c, k) -> y\n");
}

// LowerPolicy::round_in_place: an INT8 convolution's output c read by two FP16 layers is rounded
// to FP16 once, in place after the convolution's own INT8 rounding (both in the convolution's
// step on the CPU), instead of one copy per reader; with an FP32 reader, or c a network output,
// the readers keep their copies (someone reads c unrounded).
TEST(LowerEmulated, RoundInPlaceOnceForReadersOnOneGrid) {
  struct TwoReaders : Net {
    TensorId x, c, a, b;
    LayerId conv_id, relu_a, relu_b;
    TwoReaders() {
      x = input("x");
      c = tensor("c");
      a = tensor("a");
      b = tensor("b");
      conv_id = conv("conv", x, c);
      relu_a = act("relu_a", c, a, ActivationType::kRelu);
      relu_b = act("relu_b", c, b, ActivationType::kRelu);
      output(a);
      output(b);
      n.verify();
    }
  } t;
  Numerics num;
  num.layer_precision.assign(t.n.layers.size(), Precision::kFP16);
  num.layer_precision[size_t(t.conv_id)] = Precision::kINT8;
  num.tensor_scales = {{"x", 0.5f}, {"c", 0.25f}};
  LowerPolicy p = cpu_like(true);
  EXPECT_EQ(describe(t.n, lower(t.n, num, p)),
            "conv [round int8] (x) -> x@conv\n"
            "conv [Convolution] (x@conv) -> c\n"
            "conv [round int8] (c) -> c\n"
            "relu_a [round fp16] (c) -> c@relu_a\n"
            "relu_a [pointwise-chain] (c@relu_a) -> a\n"
            "relu_a [round fp16] (a) -> a\n"
            "relu_b [round fp16] (c) -> c@relu_b\n"
            "relu_b [pointwise-chain] (c@relu_b) -> b\n"
            "relu_b [round fp16] (b) -> b\n");
  p.round_in_place = true;
  EXPECT_EQ(describe(t.n, lower(t.n, num, p)),
            "conv [round int8] (x) -> x\n"  // x's one reader: rounded in place too
            "conv [Convolution] (x) -> c\n"
            "conv [round int8] (c) -> c\n"
            "relu_a [round fp16] (c) -> c\n"
            "relu_a [pointwise-chain] (c) -> a\n"
            "relu_a [round fp16] (a) -> a\n"
            "relu_b [pointwise-chain] (c) -> b\n"
            "relu_b [round fp16] (b) -> b\n");
  // relu_b in FP32 reads c as the convolution rounded it: relu_a keeps its copy.
  num.layer_precision[size_t(t.relu_b)] = Precision::kUnset;
  EXPECT_NE(describe(t.n, lower(t.n, num, p)).find("relu_a [round fp16] (c) -> c@relu_a\n"), std::string::npos)
      << describe(t.n, lower(t.n, num, p));
  // c a network output: it stays as the convolution wrote it.
  num.layer_precision[size_t(t.relu_b)] = Precision::kFP16;
  t.output(t.c);
  const std::string d = describe(t.n, lower(t.n, num, p));
  EXPECT_NE(d.find("relu_a [round fp16] (c) -> c@relu_a\n"), std::string::npos) << d;
  EXPECT_NE(d.find("relu_b [round fp16] (c) -> c@relu_b\n"), std::string::npos) << d;
}

// LowerPolicy::int8_conv_fp16_chain: an INT8 convolution takes the FP16 chain reading its output
// alone into its epilogue (TensorRT's INT8 Conv + activation): c is neither rounded to INT8 nor
// to FP16, the chain's links run on the float result and the step requantizes once to y's INT8
// grid (y's FP16 rounding gone too). With a reader of y that is not INT8, without a scale for y
// (nothing to requantize to), or without the flag, the chain keeps its step and c its roundings.
TEST(LowerEmulated, Int8ConvolutionTakesTheFp16ChainAndRequantizesOnce) {
  Net n;
  TensorId x = n.input("x"), c = n.tensor("c"), m = n.tensor("m"), y = n.tensor("y"), z = n.tensor("z");
  n.conv("conv", x, c);
  TensorId k = n.scalar("k", 0.1f), b = n.scalar("b", 0.3f);
  n.elt("mul", c, k, m, ElementWiseOp::kProd);
  n.elt("add", m, b, y, ElementWiseOp::kSum);
  n.conv("conv2", y, z);
  n.output(z);
  Numerics num;
  num.layer_precision.assign(n.n.layers.size(), Precision::kFP16);
  num.layer_precision[0] = Precision::kINT8;
  num.layer_precision.back() = Precision::kINT8;
  num.tensor_scales = {{"x", 0.5f}, {"c", 0.25f}, {"y", 0.125f}, {"z", 1.f}};
  LowerPolicy p = cpu_like(true);
  p.round_in_place = true;
  const std::string before = describe(n.n, lower(n.n, num, p));
  EXPECT_NE(before.find("conv [round int8] (c) -> c\n"), std::string::npos) << before;
  EXPECT_NE(before.find("mul [round fp16] (c) -> c\n"
                        "mul [pointwise-chain] +add (c) -> y\n"
                        "mul [round fp16] (y) -> y\n"),
            std::string::npos)
      << before;
  p.int8_conv_fp16_chain = true;
  ExecGraph g = lower(n.n, num, p);
  const std::string d = describe(n.n, g);
  EXPECT_EQ(d,
            "conv [round int8] (x) -> x\n"
            "conv [Convolution] +mul +add (x) -> y\n"
            "conv [round int8] (y) -> y\n"
            "conv2 [Convolution] (y) -> z\n"
            "conv2 [round int8] (z) -> z\n");
  ASSERT_EQ(g.steps[1].epilogue.size(), 2u);
  EXPECT_EQ(g.steps[1].epilogue[0].scalar, round_to_fp16(0.1f));  // read as the FP16 layer reads it
  EXPECT_EQ(g.steps[1].epilogue[1].scalar, round_to_fp16(0.3f));
  EXPECT_EQ(g.steps[2].rounding, Rounding::kInt8);
  EXPECT_EQ(g.steps[2].scale, 0.125f);
  // An FP16 reader of y: it reads the chain's FP16 output as before (no requantization).
  num.layer_precision.back() = Precision::kFP16;
  const std::string fp16_reader = describe(n.n, lower(n.n, num, p));
  EXPECT_EQ(fp16_reader.find("+mul"), std::string::npos) << fp16_reader;
  num.tensor_scales.erase("y");
  const std::string no_grid = describe(n.n, lower(n.n, num, p));
  EXPECT_NE(no_grid.find("conv [round int8] (c) -> c\n"), std::string::npos) << no_grid;
  EXPECT_EQ(no_grid.find("+mul"), std::string::npos) << no_grid;
}

// A layer whose outputs hold only its inputs' values (Concatenation, nearest Resize, max pooling,
// ReLU, element-wise max / min) reading them on its output's grid writes them on it: no rounding
// after it (the same bits, LowerEmulated.RoundingTwiceChangesNothing). Kept: an INT8 output of
// another scale than its inputs', a layer that computes (LeakyReLU), a step that runs more than
// the layer (a point-wise chain).
TEST(LowerEmulated, LayersMovingValuesOnTheirGridRoundNothing) {
  Net n;
  const TensorId x = n.input("x"), c = n.tensor("c"), a = n.tensor("a"), b = n.tensor("b");
  const TensorId cat = n.tensor("cat", {1, 2, 1, 4}), l = n.tensor("l", {1, 2, 1, 4}), m = n.tensor("m", {1, 2, 1, 4});
  n.conv("conv", x, c);
  n.act("relu", c, a, ActivationType::kRelu);
  n.act("relu_b", c, b, ActivationType::kRelu);
  n.n.add_layer({"cat", LayerKind::kConcatenation, {a, b}, {cat}, ConcatenationParams{1}});
  n.act("leaky", cat, l, ActivationType::kLeakyRelu, 0.1f);
  n.elt("max", l, l, m, ElementWiseOp::kMax);
  n.output(m);
  Numerics num;
  num.layer_precision.assign(n.n.layers.size(), Precision::kFP16);
  ExecGraph g = lower(n.n, num, cpu_like(false));
  EXPECT_EQ(describe(n.n, g),
            "conv [round fp16] (x) -> x@conv\n"
            "conv [Convolution] (x@conv) -> c\n"
            "conv [round fp16] (c) -> c\n"
            "relu [Activation] (c) -> a\n"
            "relu_b [Activation] (c) -> b\n"
            "cat [Concatenation] (a, b) -> cat\n"
            "leaky [Activation] (cat) -> l\n"
            "leaky [round fp16] (l) -> l\n"
            "max [ElementWise] (l, l) -> m\n");
  // INT8: the concatenation of two inputs of its own scale rounds nothing; of another, it does.
  num.layer_precision.assign(n.n.layers.size(), Precision::kINT8);
  num.tensor_scales = {{"x", 0.5f}, {"c", 0.25f}, {"a", 0.25f}, {"b", 0.25f}, {"cat", 0.25f}, {"l", 0.125f}, {"m", 0.125f}};
  g = lower(n.n, num, cpu_like(false));
  std::string d = describe(n.n, g);
  EXPECT_EQ(d.find("cat [round int8]"), std::string::npos) << d;
  EXPECT_EQ(d.find("relu [round int8]"), std::string::npos) << d;
  EXPECT_NE(d.find("leaky [round int8] (l) -> l"), std::string::npos) << d;
  num.tensor_scales["cat"] = 0.5f;
  g = lower(n.n, num, cpu_like(false));
  d = describe(n.n, g);
  EXPECT_NE(d.find("cat [round int8] (cat) -> cat"), std::string::npos) << d;
  // With emulated fusion each ReLU runs as a point-wise chain step (which may hold more links):
  // chains round.
  num.layer_precision.assign(n.n.layers.size(), Precision::kFP16);
  num.tensor_scales.clear();
  g = lower(n.n, num, cpu_like(true));
  EXPECT_EQ(describe(n.n, g),
            "conv [round fp16] (x) -> x@conv\n"
            "conv [Convolution] (x@conv) -> c\n"
            "conv [round fp16] (c) -> c\n"
            "relu [pointwise-chain] (c) -> a\n"
            "relu [round fp16] (a) -> a\n"
            "relu_b [pointwise-chain] (c) -> b\n"
            "relu_b [round fp16] (b) -> b\n"
            "cat [Concatenation] (a, b) -> cat\n"
            "leaky [pointwise-chain] (cat) -> l\n"
            "leaky [round fp16] (l) -> l\n"
            "max [ElementWise] (l, l) -> m\n");
}
