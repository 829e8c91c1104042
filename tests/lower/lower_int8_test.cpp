// lower() with LowerPolicy::int8_native (the CUDA backend's int8 storage): which values are
// stored as int8 codes (channels-last, the tensor's scale attached), that no round or convert
// step sits between two layers reading and writing codes, where the codes stop (a reader that
// takes no codes, a network output), and that an unset policy lowers INT8 as before.
#include <gtest/gtest.h>

#include <algorithm>

#include "net_builder.h"
#include "tandem/lower.h"

using namespace tandem;

namespace {

// x [1, 8, 4, 4] -> c1 (INT8 conv) -> r1 (FP16 ReLU) -> c2 (INT8 conv) -> r2 (INT8 ReLU) ->
// c3 (INT8 conv) -> e (FP16 ReLU) -> out (Identity, FP32); with `branch`, a FP32 softmax also
// reads c1 (a network output).
struct Fixture {
  Network n;
  TensorId x, c1, r1, c2, r2, c3, e, out, sm = -1;
  explicit Fixture(bool branch = false) {
    const Dims d = {1, 8, 4, 4};
    x = n.add_tensor({"x", DataType::kFloat, d});
    n.tensors[size_t(x)].is_input = true;
    n.inputs.push_back(x);
    c1 = tensor("c1"), r1 = tensor("r1"), c2 = tensor("c2"), r2 = tensor("r2"), c3 = tensor("c3"), e = tensor("e");
    out = tensor("out");
    n.tensors[size_t(out)].is_output = true;
    n.outputs.push_back(out);
    conv("c1", x, c1);
    relu("r1", c1, r1);
    conv("c2", r1, c2);
    relu("r2", c2, r2);
    conv("c3", r2, c3);
    relu("e", c3, e);
    n.add_layer({"out", LayerKind::kIdentity, {e}, {out}});
    if (branch) {
      sm = tensor("sm");
      n.tensors[size_t(sm)].is_output = true;
      n.outputs.push_back(sm);
      n.add_layer({"softmax", LayerKind::kSoftMax, {c1}, {sm}, SoftMaxParams{1u << 1}});
    }
  }
  TensorId tensor(const std::string& name) { return n.add_tensor({name, DataType::kFloat, {1, 8, 4, 4}}); }
  void relu(const std::string& name, TensorId in, TensorId o) {
    n.add_layer({name, LayerKind::kActivation, {in}, {o}, ActivationParams{ActivationType::kRelu}});
  }
  void conv(const std::string& name, TensorId in, TensorId o) { lower_test::add_conv8(n, name, in, o); }
  Numerics numerics() const {
    Numerics num;
    num.layer_precision = {Precision::kINT8, Precision::kFP16, Precision::kINT8, Precision::kINT8,
                           Precision::kINT8, Precision::kFP16, Precision::kUnset};
    if (sm >= 0) num.layer_precision.push_back(Precision::kUnset);  // the softmax
    num.tensor_scales = {{"x", 0.1f}, {"c1", 0.2f}, {"r1", 0.3f}, {"c2", 0.4f}, {"r2", 0.5f}, {"c3", 0.6f}};
    return num;
  }
};

// The CUDA policy's shape: real FP16 for every layer, int8 codes for convolutions and activations
// (with half_io: half <-> INT8 boundaries without float steps, LowerPolicy::int8_half_boundaries).
LowerPolicy gpu_like(bool int8, bool half_io = false) {
  LowerPolicy p;
  p.conv_max_activations = 1;
  p.pointwise_chains = true;
  p.fp16_native = [](const Network& net, LayerId id) { return net.layers[size_t(id)].kind != LayerKind::kSoftMax; };
  p.fp16_nhwc = true;
  if (int8)
    p.int8_native = [](const Network& net, LayerId id) {
      const LayerKind k = net.layers[size_t(id)].kind;
      return k == LayerKind::kConvolution || k == LayerKind::kActivation;
    };
  p.int8_half_boundaries = half_io;
  return p;
}

const ExecValue& value(const ExecGraph& g, TensorId t) { return g.values[size_t(t)]; }

}  // namespace

TEST(LowerInt8, CodesBetweenNativeInt8LayersWithoutSteps) {
  Fixture f;
  ExecGraph g = lower(f.n, f.numerics(), gpu_like(true));
  EXPECT_EQ(describe(f.n, g),
            "c1 [round int8] (x) -> x@c1\n"  // a network input: float, rounded for the first layer
            "c1 [Convolution] (x@c1) -> c1\n"
            "r1 [Activation] (c1) -> r1\n"
            "c2 [Convolution] (r1) -> c2\n"
            "r2 [Activation] (c2) -> r2\n"
            "c3 [Convolution] (r2) -> c3\n"
            "e [Activation] (c3) -> e\n"     // FP16 ReLU over codes, writing half
            "out [round fp16] (e) -> e@fp32\n"
            "out [Identity] (e@fp32) -> out\n");
  const std::pair<TensorId, float> codes[] = {{f.c1, 0.2f}, {f.r1, 0.3f}, {f.c2, 0.4f}, {f.r2, 0.5f}, {f.c3, 0.6f}};
  for (const auto& [t, scale] : codes) {
    const ExecValue& v = value(g, t);
    EXPECT_TRUE(v.int8_codes()) << v.name;
    EXPECT_EQ(v.storage, DataType::kInt8) << v.name;
    EXPECT_EQ(v.int8_scale, scale) << v.name;
    EXPECT_EQ(v.layout, ValueLayout::kNHWC) << v.name;
    EXPECT_EQ(v.bytes, 8 * 16) << v.name;
    EXPECT_EQ(v.precision, Precision::kINT8) << v.name;
  }
  EXPECT_TRUE(value(g, f.e).float_as_half());
  EXPECT_FALSE(value(g, f.x).int8_codes());
  EXPECT_FALSE(value(g, f.out).int8_codes());
  // No round or convert step anywhere between the first and the last convolution.
  const int first = g.step_of_layer[0], last = g.step_of_layer[4];  // c1, c3
  ASSERT_LT(first, last);
  for (int s = first; s <= last; ++s) EXPECT_NE(g.steps[size_t(s)].kind, StepKind::kRound) << s;
}

// A value also read by a layer that takes no codes stays float (rounded in place, converted for
// the FP16 ReLU); the FP16 ReLU reading it then writes half (an activation writes codes only
// from codes), and the INT8 convolution after it reads codes made from that half value in one
// round step (int8_half_boundaries; else a float copy, rounded). Further on codes resume.
TEST(LowerInt8, ReaderWithoutCodesKeepsTheValueFloat) {
  Fixture f(true);
  EXPECT_NE(describe(f.n, lower(f.n, f.numerics(), gpu_like(true))).find("c2 [round int8] (r1@fp32) -> r1@c2\n"),
            std::string::npos);
  ExecGraph g = lower(f.n, f.numerics(), gpu_like(true, true));
  EXPECT_FALSE(value(g, f.c1).int8_codes());
  EXPECT_TRUE(value(g, f.r1).float_as_half());
  EXPECT_TRUE(value(g, f.c2).int8_codes());
  EXPECT_TRUE(value(g, f.r2).int8_codes());
  EXPECT_TRUE(value(g, f.c3).int8_codes());
  const std::string d = describe(f.n, g);
  EXPECT_NE(d.find("c1 [round int8] (c1) -> c1\n"), std::string::npos) << d;
  EXPECT_NE(d.find("c2 [round int8] (r1) -> r1@c2\n"), std::string::npos) << d;
  auto copy = std::find_if(g.values.begin(), g.values.end(), [](const ExecValue& v) { return v.name == "r1@c2"; });
  ASSERT_NE(copy, g.values.end());
  EXPECT_TRUE(copy->int8_codes());
  EXPECT_EQ(copy->int8_scale, 0.3f);
  EXPECT_EQ(copy->layout, ValueLayout::kNHWC);
  EXPECT_NE(d.find("c2 [Convolution] (r1@c2) -> c2\nr2 [Activation] (c2) -> r2\n"), std::string::npos) << d;
}

// Unset (the CPU backend's lowering), and with keep_all: no codes, the round steps as before.
TEST(LowerInt8, UnsetPolicyAndKeepAllStoreNoCodes) {
  Fixture f;
  for (bool keep_all : {false, true}) {
    LowerPolicy p = gpu_like(keep_all);  // int8_native set only where keep_all turns it off
    p.keep_all = keep_all;
    ExecGraph g = lower(f.n, f.numerics(), p);
    for (const ExecValue& v : g.values) EXPECT_FALSE(v.int8_codes()) << v.name;
    const std::string d = describe(f.n, g);
    EXPECT_NE(d.find("c1 [round int8] (c1) -> c1\n"), std::string::npos) << d;
    EXPECT_NE(d.find("c3 [round int8] (c3) -> c3\n"), std::string::npos) << d;
  }
}

// A residual-like join: a half value read by two INT8 convolutions becomes codes once (one round
// step, shared), and each convolution, read only by the native FP16 sum, writes half already on
// its INT8 grid (ExecValue::half_of_int8): no round step after it, no convert before the sum
// (LowerPolicy::int8_half_boundaries; without it, or without int8_native, as before).
TEST(LowerInt8, SharedCodesInputAndHalfOutputOnTheGrid) {
  Fixture f;  // for its conv() helper only
  Network& n = f.n;
  n = Network{};
  const Dims d = {1, 8, 4, 4};
  auto tensor = [&](const std::string& name) { return n.add_tensor({name, DataType::kFloat, d}); };
  TensorId x = tensor("x");
  n.tensors[size_t(x)].is_input = true;
  n.inputs.push_back(x);
  TensorId h = tensor("h"), a = tensor("a"), b = tensor("b"), s = tensor("s"), out = tensor("out");
  n.tensors[size_t(out)].is_output = true;
  n.outputs.push_back(out);
  f.relu("h", x, h);
  f.conv("a", h, a);
  f.conv("b", h, b);
  n.add_layer({"sum", LayerKind::kElementWise, {a, b}, {s}, ElementWiseParams{ElementWiseOp::kSum}});
  n.add_layer({"out", LayerKind::kIdentity, {s}, {out}});
  Numerics num;
  num.layer_precision = {Precision::kFP16, Precision::kINT8, Precision::kINT8, Precision::kFP16, Precision::kUnset};
  num.tensor_scales = {{"h", 0.25f}, {"a", 0.5f}, {"b", 0.125f}};
  ExecGraph g = lower(n, num, gpu_like(true, true));
  EXPECT_EQ(describe(n, g),
            "h [round fp16] (x) -> x@fp16\n"
            "h [Activation] (x@fp16) -> h\n"
            "a [round int8] (h) -> h@a\n"
            "a [Convolution] (h@a) -> a\n"
            "b [Convolution] (h@a) -> b\n"
            "sum [ElementWise] (a, b) -> s\n"
            "out [round fp16] (s) -> s@fp32\n"
            "out [Identity] (s@fp32) -> out\n");
  EXPECT_TRUE(value(g, h).float_as_half());
  EXPECT_FALSE(value(g, h).half_of_int8());
  for (const auto& [t, scale] : {std::pair<TensorId, float>{a, 0.5f}, {b, 0.125f}}) {
    EXPECT_TRUE(value(g, t).half_of_int8()) << value(g, t).name;
    EXPECT_EQ(value(g, t).int8_scale, scale);
    EXPECT_EQ(value(g, t).layout, ValueLayout::kNHWC);
    EXPECT_EQ(value(g, t).bytes, 8 * 16 * 2);
  }
  // Without them: float copies rounded per reader, outputs rounded in place, converts.
  for (bool int8 : {false, true}) {
    g = lower(n, num, gpu_like(int8, false));
    for (const ExecValue& v : g.values) EXPECT_FALSE(v.int8_codes() || v.half_of_int8()) << v.name;
    const std::string d = describe(n, g);
    EXPECT_NE(d.find("a [round int8] (h@fp32) -> h@a\n"), std::string::npos) << d;
    EXPECT_NE(d.find("b [round int8] (h@fp32) -> h@b\n"), std::string::npos) << d;
    EXPECT_NE(d.find("a [round int8] (a) -> a\n"), std::string::npos) << d;
    EXPECT_NE(d.find("sum [round fp16] (a) -> a@fp16\n"), std::string::npos) << d;
  }
}

// An INT8 convolution whose input is unquantized (inside a fused Conv + BN block) has no codes to
// read: it stays emulated, so its output is no codes value either (nor, through the INT8 ReLU,
// the next one); the convolutions around it keep theirs.
TEST(LowerInt8, UnquantizedInputKeepsTheConvolutionEmulated) {
  Fixture f;
  Numerics num = f.numerics();
  num.unquantized.insert("r1");
  ExecGraph g = lower(f.n, num, gpu_like(true, true));
  EXPECT_TRUE(value(g, f.c1).int8_codes());
  EXPECT_TRUE(value(g, f.r1).float_as_half());
  EXPECT_FALSE(value(g, f.c2).int8_codes());
  EXPECT_FALSE(value(g, f.r2).int8_codes());
  EXPECT_TRUE(value(g, f.c3).int8_codes());
  const std::string d = describe(f.n, g);
  EXPECT_NE(d.find("c2 [Convolution] (r1@fp32) -> c2\nc2 [round int8] (c2) -> c2\n"), std::string::npos) << d;
}

// LowerPolicy::int8_conv_fp16_chain with real INT8 and FP16 (the CUDA policy): the FP16 ReLU r1
// after c1, read only by the INT8 convolution c2, stays emulated and goes into c1's epilogue
// (the CPU's lowering puts it there too); c1's step ends in r1, stored as codes on r1's grid,
// and no activation step and no half value sits between c1 and c2. The INT8 ReLU r2 stays a
// step over codes (a quantized INT8 tensor keeps its rounding), and e (read by an FP32 layer)
// stays native. Without the flag, as before.
TEST(LowerInt8, Fp16ActivationIntoTheInt8ConvolutionOnCodes) {
  Fixture f;
  LowerPolicy p = gpu_like(true, true);
  p.fuse_emulated = true;
  p.int8_conv_fp16_chain = true;
  ExecGraph g = lower(f.n, f.numerics(), p);
  const std::string d = describe(f.n, g);
  EXPECT_NE(d.find("c1 [Convolution] +r1 (x@c1) -> r1\nc2 [Convolution] (r1) -> c2\n"), std::string::npos)
      << d;
  EXPECT_EQ(d.find("r1 [Activation]"), std::string::npos) << d;
  EXPECT_NE(d.find("r2 [Activation] (c2) -> r2\n"), std::string::npos) << d;
  EXPECT_NE(d.find("e [Activation] (c3) -> e\n"), std::string::npos) << d;
  EXPECT_EQ(g.absorbed_into[1], g.step_of_layer[0]);  // r1 in c1's step
  ASSERT_EQ(g.steps[size_t(g.step_of_layer[0])].epilogue.size(), 1u);
  EXPECT_TRUE(value(g, f.r1).int8_codes());
  EXPECT_EQ(value(g, f.r1).int8_scale, 0.3f);
  EXPECT_EQ(value(g, f.r1).layout, ValueLayout::kNHWC);
  EXPECT_FALSE(value(g, f.c1).materialized);  // the convolution's own output is never stored
  for (TensorId t : {f.c2, f.r2, f.c3}) EXPECT_TRUE(value(g, t).int8_codes()) << value(g, t).name;
  EXPECT_TRUE(value(g, f.e).float_as_half());
  const int first = g.step_of_layer[0], last = g.step_of_layer[4];
  for (int s = first; s <= last; ++s) EXPECT_NE(g.steps[size_t(s)].kind, StepKind::kRound) << s;
  p.int8_conv_fp16_chain = false;
  const std::string before = describe(f.n, lower(f.n, f.numerics(), p));
  EXPECT_NE(before.find("r1 [Activation] (c1) -> r1\n"), std::string::npos) << before;
}
