// lower() with LowerPolicy::fp16_native (the CUDA backend's real FP16): which values are stored
// as half and channels-last, where convert steps go, what stays emulated, and that an unset
// policy lowers FP16 exactly as before (emulation: round steps only).
#include <gtest/gtest.h>

#include <cstring>

#include "net_builder.h"
#include "tandem/lower.h"

using namespace tandem;

namespace {

// x [1, 8, 4, 4] -> c1 (conv 1x1) -> relu -> softmax -> c2 (conv 1x1) -> out (Identity, FP32)
struct Fixture {
  Network n;
  TensorId x, c1, r1, sm, c2, out;
  Fixture() {
    const Dims d = {1, 8, 4, 4};
    x = n.add_tensor({"x", DataType::kFloat, d});
    n.tensors[size_t(x)].is_input = true;
    n.inputs.push_back(x);
    c1 = n.add_tensor({"c1", DataType::kFloat, d});
    r1 = n.add_tensor({"r1", DataType::kFloat, d});
    sm = n.add_tensor({"sm", DataType::kFloat, d});
    c2 = n.add_tensor({"c2", DataType::kFloat, d});
    out = n.add_tensor({"out", DataType::kFloat, d});
    n.tensors[size_t(out)].is_output = true;
    n.outputs.push_back(out);
    conv("c1", x, c1);
    n.add_layer({"relu", LayerKind::kActivation, {c1}, {r1}, ActivationParams{ActivationType::kRelu}});
    n.add_layer({"softmax", LayerKind::kSoftMax, {r1}, {sm}, SoftMaxParams{1u << 1}});
    conv("c2", sm, c2);
    n.add_layer({"out", LayerKind::kIdentity, {c2}, {out}});
  }
  void conv(const std::string& name, TensorId in, TensorId o) { lower_test::add_conv8(n, name, in, o); }
  // Every layer FP16 but the output copy.
  Numerics fp16() const { return Numerics{{Precision::kFP16, Precision::kFP16, Precision::kFP16, Precision::kFP16, Precision::kUnset}}; }
};

LowerPolicy gpu_like(bool native) {
  LowerPolicy p;
  p.conv_max_activations = 1;
  p.pointwise_chains = true;
  if (native) {
    p.fp16_native = [](const Network& net, LayerId id) { return net.layers[size_t(id)].kind != LayerKind::kSoftMax; };
    p.fp16_nhwc = true;
  }
  return p;
}

}  // namespace

TEST(LowerFp16, NativeLayersStoreHalfAndConvertAtBoundaries) {
  Fixture f;
  ExecGraph g = lower(f.n, f.fp16(), gpu_like(true));
  EXPECT_EQ(describe(f.n, g),
            "c1 [round fp16] (x) -> x@fp16\n"
            "c1 [Convolution] +relu (x@fp16) -> r1\n"
            "softmax [round fp16] (r1) -> r1@fp32\n"
            "softmax [SoftMax] (r1@fp32) -> sm\n"
            "softmax [round fp16] (sm) -> sm\n"
            "c2 [round fp16] (sm) -> sm@fp16\n"
            "c2 [Convolution] (sm@fp16) -> c2\n"
            "out [round fp16] (c2) -> c2@fp32\n"
            "out [Identity] (c2@fp32) -> out\n");
  // Half and channels-last: what native layers write and the copies made for them.
  for (const char* name : {"x@fp16", "r1", "sm@fp16", "c2"}) {
    auto it = std::find_if(g.values.begin(), g.values.end(), [&](const ExecValue& v) { return v.name == name; });
    ASSERT_NE(it, g.values.end()) << name;
    EXPECT_EQ(it->storage, DataType::kHalf) << name;
    EXPECT_EQ(it->layout, ValueLayout::kNHWC) << name;
    EXPECT_EQ(it->bytes, 8 * 16 * 2) << name;
  }
  for (const char* name : {"x", "r1@fp32", "sm", "c2@fp32", "out"}) {
    auto it = std::find_if(g.values.begin(), g.values.end(), [&](const ExecValue& v) { return v.name == name; });
    ASSERT_NE(it, g.values.end()) << name;
    EXPECT_EQ(it->storage, DataType::kFloat) << name;
    EXPECT_EQ(it->layout, ValueLayout::kLinear) << name;
  }
}

TEST(LowerFp16, UnsetPolicyEmulatesAsBefore) {
  Fixture f;
  ExecGraph g = lower(f.n, f.fp16(), gpu_like(false));
  EXPECT_EQ(describe(f.n, g),
            "c1 [round fp16] (x) -> x@c1\n"
            "c1 [Convolution] (x@c1) -> c1\n"
            "c1 [round fp16] (c1) -> c1\n"
            "relu [Activation] (c1) -> r1\n"  // c1 on the FP16 grid already: no copy, r1 too
            "softmax [SoftMax] (r1) -> sm\n"
            "softmax [round fp16] (sm) -> sm\n"
            "c2 [Convolution] (sm) -> c2\n"
            "c2 [round fp16] (c2) -> c2\n");  // out: a view of c2
  for (const ExecValue& v : g.values) EXPECT_EQ(v.storage, DataType::kFloat) << v.name;
}

// A native layer never writes a network output, and with keep_all nothing is native.
TEST(LowerFp16, OutputsAndKeepAllStayEmulated) {
  Fixture f;
  Numerics num = f.fp16();
  num.layer_precision.back() = Precision::kFP16;  // the output copy: FP16 too
  LowerPolicy p = gpu_like(true);
  p.fp16_native = [](const Network&, LayerId) { return true; };
  ExecGraph g = lower(f.n, num, p);
  EXPECT_EQ(g.values[size_t(f.out)].storage, DataType::kFloat);
  EXPECT_EQ(g.values[size_t(f.sm)].storage, DataType::kHalf);
  p.keep_all = true;
  g = lower(f.n, num, p);
  for (const ExecValue& v : g.values) EXPECT_EQ(v.storage, DataType::kFloat) << v.name;
}

// Views and constants around half values: a reshape of a value whose NHWC and NCHW bytes agree
// (H = W = 1) stays a view and half; a reshape of a channels-last value is a step of its own
// reading a float copy; a constant read only by half layers is half; an FP32 concatenation of
// half values stays half (no convert around it); the FP16 layer writing the output is emulated.
TEST(LowerFp16, ViewsConstantsAndConcatenation) {
  Network n;
  auto tensor = [&](const std::string& name, Dims d) { return n.add_tensor({name, DataType::kFloat, d}); };
  TensorId x = tensor("x", {1, 8, 1, 1}), y = tensor("y", {1, 8, 4, 4});
  for (TensorId t : {x, y}) n.tensors[size_t(t)].is_input = true, n.inputs.push_back(t);
  TensorId xr = tensor("xr", {1, 8, 1, 1}), yr = tensor("yr", {1, 8, 4, 4});
  n.add_layer({"xrelu", LayerKind::kActivation, {x}, {xr}, ActivationParams{ActivationType::kRelu}});
  n.add_layer({"yrelu", LayerKind::kActivation, {y}, {yr}, ActivationParams{ActivationType::kRelu}});
  ShuffleParams flat;
  flat.reshape = Dims{1, 8};
  TensorId xf = tensor("xf", {1, 8});
  n.add_layer({"xflat", LayerKind::kShuffle, {xr}, {xf}, flat});
  ShuffleParams flat2;
  flat2.reshape = Dims{1, 128};
  TensorId yf = tensor("yf", {1, 128});
  n.add_layer({"yflat", LayerKind::kShuffle, {yr}, {yf}, flat2});
  Weights w;
  w.name = "k_w";
  w.dims = {1, 8};
  w.bytes.assign(8 * 4, 0);
  TensorId k = tensor("k", {1, 8});
  n.add_layer({"k", LayerKind::kConstant, {}, {k}, ConstantParams{n.add_weights(std::move(w))}});
  TensorId s = tensor("s", {1, 8});
  n.add_layer({"sum", LayerKind::kElementWise, {xf, k}, {s}, ElementWiseParams{ElementWiseOp::kSum}});
  TensorId cat = tensor("cat", {1, 16});
  n.add_layer({"cat", LayerKind::kConcatenation, {s, xf}, {cat}, ConcatenationParams{1}});
  TensorId out = tensor("out", {1, 16});
  n.add_layer({"tail", LayerKind::kActivation, {cat}, {out}, ActivationParams{ActivationType::kRelu}});
  for (TensorId t : {out, yf}) n.tensors[size_t(t)].is_output = true, n.outputs.push_back(t);
  Numerics num;
  num.layer_precision = {Precision::kFP16, Precision::kFP16, Precision::kUnset, Precision::kUnset,
                         Precision::kUnset, Precision::kFP16, Precision::kUnset, Precision::kFP16};
  LowerPolicy p = gpu_like(true);
  p.fp16_native = [](const Network&, LayerId) { return true; };
  ExecGraph g = lower(n, num, p);
  EXPECT_EQ(describe(n, g),
            "xrelu [round fp16] (x) -> x@fp16\n"
            "xrelu [Activation] (x@fp16) -> xr\n"
            "yrelu [round fp16] (y) -> y@fp16\n"
            "yrelu [Activation] (y@fp16) -> yr\n"
            "yflat [round fp16] (yr) -> yr@fp32\n"
            "yflat [Shuffle] (yr@fp32) -> yf\n"
            "sum [ElementWise] (xf, k) -> s\n"
            "cat [Concatenation] (s, xf) -> cat\n"
            "tail [round fp16] (cat) -> cat@fp32\n"
            "tail [Activation] (cat@fp32) -> out\n"
            "tail [round fp16] (out) -> out\n");
  EXPECT_EQ(g.values[size_t(xf)].alias_of, ValueId(xr));           // a view, half like xr
  EXPECT_EQ(g.values[size_t(xf)].storage, DataType::kHalf);
  EXPECT_EQ(g.values[size_t(yr)].layout, ValueLayout::kNHWC);
  EXPECT_EQ(g.values[size_t(yf)].storage, DataType::kFloat);       // the reshape copies, in float
  EXPECT_EQ(g.values[size_t(yf)].alias_of, -1);
  EXPECT_EQ(g.values[size_t(k)].storage, DataType::kHalf);         // read by `sum` alone
  EXPECT_EQ(g.values[size_t(cat)].storage, DataType::kHalf);       // FP32 concat of half inputs
  EXPECT_EQ(g.values[size_t(out)].storage, DataType::kFloat);      // a network output
}
