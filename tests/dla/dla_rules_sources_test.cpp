// The rule corrections of issue 10, section 3: each accepted at its limit and rejected just past
// it, with the reason asserted. Sources per rule: docs/dla-rules-impl.md.
#include <gtest/gtest.h>

#include <optional>

#include "net_builder.h"

namespace tandem {
namespace {

using testing::NetBuilder;

DlaOptions opts(DlaTarget t = DlaTarget::kOrin, DlaPrecision p = DlaPrecision::kInt8) {
  DlaOptions o;
  o.target = t;
  o.precision = p;
  return o;
}
const DlaOptions kFp16 = opts(DlaTarget::kOrin, DlaPrecision::kFp16);

Support at(const NetBuilder& b, LayerId id, DlaOptions o = opts()) { return check_layer(b.net, id, o); }

#define EXPECT_YES(s) EXPECT_TRUE((s).ok) << (s).reason
#define EXPECT_NO(s, text)                                           \
  do {                                                               \
    Support s_ = (s);                                                \
    EXPECT_FALSE(s_.ok);                                             \
    EXPECT_NE(s_.reason.find(text), std::string::npos) << s_.reason; \
  } while (0)

// ---- 1. Comparison: INT8, BOOL output cast to FP16/INT8 by the very next layer ---------------
struct CmpNet {
  NetBuilder b;
  LayerId cmp = -1, next = -1;
};
// x == y, then one consumer: a Cast to `to`, or (to unset) a ReLU.
CmpNet cmp_net(ElementWiseOp op, std::optional<DataType> to) {
  CmpNet n;
  auto x = n.b.input("x", {1, 8, 4, 4});
  auto y = n.b.input("y", {1, 8, 4, 4});
  auto e = n.b.eltwise(x, y, "Equal_1", op);
  n.b.net.tensors[e].type = DataType::kBool;
  n.cmp = n.b.last();
  if (to) {
    CastParams cp;
    cp.to = *to;
    auto c = n.b.layer(LayerKind::kCast, "Cast_1", {e}, {1, 8, 4, 4}, cp);
    n.b.net.tensors[c].type = *to;
    n.b.output(c);
  } else {
    n.b.output(n.b.relu(e, "Relu_1"));
  }
  n.next = n.b.last();
  return n;
}

TEST(DlaComparison, EqualCastToFp16OrInt8YesOtherConsumerNo) {
  for (DataType to : {DataType::kHalf, DataType::kInt8}) {
    CmpNet n = cmp_net(ElementWiseOp::kEqual, to);
    EXPECT_YES(at(n.b, n.cmp));
    EXPECT_YES(at(n.b, n.next));
    const DlaReport r = can_run_on_dla(n.b.net, opts());
    EXPECT_TRUE(r.full_dla);
    EXPECT_EQ(r.dla_chunk_count(), 1);
  }
  // Past the limit: a cast to FP32, any other consumer, FP16, the gated ops, Xavier.
  CmpNet f32 = cmp_net(ElementWiseOp::kEqual, DataType::kFloat);
  EXPECT_NO(at(f32.b, f32.cmp), "output consumer 'Cast_1' is a Cast to fp32, not a Cast to FP16/INT8");
  EXPECT_NO(at(f32.b, f32.next), "cast to fp32 after comparison 'Equal_1'");
  CmpNet relu = cmp_net(ElementWiseOp::kEqual, std::nullopt);
  EXPECT_NO(at(relu.b, relu.cmp), "output consumer 'Relu_1' is Activation, not a Cast to FP16/INT8");
  CmpNet h = cmp_net(ElementWiseOp::kEqual, DataType::kHalf);
  EXPECT_NO(at(h.b, h.cmp, kFp16), "comparison EQUAL runs on DLA in INT8 only, not FP16");
  EXPECT_NO(at(h.b, h.next, kFp16), "comparison 'Equal_1' before this cast does not run on DLA");
  CmpNet g = cmp_net(ElementWiseOp::kGreater, DataType::kHalf);
  EXPECT_NO(at(g.b, g.cmp), "comparison GREATER not supported on DLA for orin (TensorRT 8.6 (JetPack 6, DLA 3.14)): native only from TensorRT 8.6.12");
  EXPECT_NO(at(g.b, g.next), "does not run on DLA");
  EXPECT_NO(at(h.b, h.cmp, opts(DlaTarget::kXavier)), "Equal as native on Orin only; Xavier unverified");
}
TEST(DlaComparison, CastWithoutComparisonStaysGpu) {
  NetBuilder b;
  CastParams cp;
  cp.to = DataType::kHalf;
  b.layer(LayerKind::kCast, "Cast_1", {b.input("x", {1, 8, 4, 4})}, {1, 8, 4, 4}, cp);
  EXPECT_NO(at(b, b.last()), "Cast has no DLA support (only as the FP16/INT8 cast right after a DLA comparison)");
}
TEST(DlaComparison, NetworkOutputNeedsCast) {
  NetBuilder b;
  auto e = b.eltwise(b.input("x", {1, 8, 4, 4}), b.input("y", {1, 8, 4, 4}), "Equal_1", ElementWiseOp::kEqual);
  b.net.tensors[e].type = DataType::kBool;
  b.output(e);
  EXPECT_NO(at(b, b.last()), "output 'Equal_1_out' is a network output; DLA needs it cast to FP16/INT8 immediately");
}

// ---- 2. Reduce MAX: native on Orin only from TensorRT 8.6.12; the target is 8.6.2 -------------
TEST(DlaReduce, MaxGatedTo8612MaxPoolWindow8Yes) {
  NetBuilder b;
  auto x = b.input("x", {1, 8, 8, 8});
  ReduceParams rp;
  rp.op = ReduceOp::kMax;
  rp.axes = 0b1100;
  b.layer(LayerKind::kReduce, "GlobalMaxPool_1", {x}, {1, 8, 1, 1}, rp);
  EXPECT_NO(at(b, b.last(), kFp16), "Reduce MAX not supported on DLA on orin (TensorRT 8.6 (JetPack 6, DLA 3.14)): Reduce MAX is native only from TensorRT 8.6.12");
  // The DLA way to the same result at the window limit: MaxPool 8x8.
  PoolingParams pp;
  pp.type = PoolingType::kMax;
  pp.window = {8, 8};
  pp.stride = {1, 1};
  pp.pre_padding = pp.post_padding = {0, 0};
  b.layer(LayerKind::kPooling, "MaxPool_1", {x}, {1, 8, 1, 1}, pp);
  EXPECT_YES(at(b, b.last(), kFp16));
  EXPECT_YES(at(b, b.last()));
}

// ---- 3. Rank: at least 4 dims, batch = product of the dims before CHW; 4-D only for Slice ------
TEST(DlaGeneral, FiveDimsBatchNP4096Yes4160No) {
  NetBuilder b;
  b.relu(b.input("x", {64, 64, 1, 2, 2}), "Relu_1");  // NPCHW: batch N*P = 4096
  EXPECT_YES(at(b, b.last()));
  NetBuilder c;
  c.relu(c.input("x", {64, 65, 1, 2, 2}), "Relu_1");
  EXPECT_NO(at(c, c.last()), "input 'x' DLA batch 4160 exceeds limit 4096");
  NetBuilder e;  // broadcast keeps the batch dims and checks the last three
  auto x = e.input("x", {2, 3, 8, 4, 4});
  e.eltwise(x, e.input("y", {2, 3, 8, 1, 1}), "Mul_1", ElementWiseOp::kProd);
  EXPECT_YES(at(e, e.last()));
  NetBuilder s;  // Slice's own rule: exactly 4-D input
  SliceParams sp;
  sp.start = {0, 0, 0, 0, 0};
  sp.size = {2, 3, 4, 4, 4};
  sp.stride = {1, 1, 1, 1, 1};
  s.layer(LayerKind::kSlice, "Slice_1", {s.input("x", {2, 3, 8, 4, 4})}, sp.size, sp);
  EXPECT_NO(at(s, s.last(), kFp16), "input 'x' has rank 5 (2x3x8x4x4); DLA Slice needs 4-D tensors");
}
TEST(DlaSoftMax, AxisAmongLastThreeOfFiveDims) {
  NetBuilder b;
  SoftMaxParams p;
  p.axes = 1u << 2;  // C of N P C H W
  b.layer(LayerKind::kSoftMax, "Softmax_1", {b.input("x", {1, 2, 8, 1, 1})}, {1, 2, 8, 1, 1}, p);
  EXPECT_YES(at(b, b.last(), kFp16));
  NetBuilder c;
  p.axes = 1u << 1;  // P: a batch dim
  c.layer(LayerKind::kSoftMax, "Softmax_1", {c.input("x", {1, 2, 8, 1, 1})}, {1, 2, 8, 1, 1}, p);
  EXPECT_NO(at(c, c.last(), kFp16), "softmax axis 1 must be C, H or W (axis 2..4)");
}

// ---- 4. Shuffle: Orin FP16 (precision unverified), Xavier unverified --------------------------
TEST(DlaShuffle, OrinFp16YesInt8AndXavierNoUnverified) {
  NetBuilder b;
  ShuffleParams p;
  p.reshape = Dims{1, 8, 2, 8};
  b.layer(LayerKind::kShuffle, "Reshape_1", {b.input("x", {1, 8, 4, 4})}, {1, 8, 2, 8}, p);
  EXPECT_YES(at(b, b.last(), kFp16));
  EXPECT_NO(at(b, b.last()), "shuffle runs on DLA in FP16 only, not INT8 (unverified: no source gives its precision)");
  EXPECT_NO(at(b, b.last(), opts(DlaTarget::kXavier, DlaPrecision::kFp16)),
            "the operator matrix lists Reshape/Transpose as native on Orin only, no source covers this target; rejected, unverified");
}

// ---- 5. MatMul as fully connected: 2-D input [batch, K] only -----------------------------------
TEST(DlaMatMul, FullyConnectedNeeds2dInputBatch4096) {
  auto mk = [](Dims a) {
    NetBuilder b;
    auto x = b.input("x", a);
    auto w = b.constant("W", {64, 8});
    Dims o = a;
    o.back() = 8;
    b.layer(LayerKind::kMatrixMultiply, "MatMul_1", {x, w}, o, MatrixMultiplyParams{});
    return at(b, b.last());
  };
  EXPECT_YES(mk({4096, 64}));
  EXPECT_NO(mk({4097, 64}), "fully connected batch 4097 exceeds DLA limit 4096");
  EXPECT_NO(mk({1, 4, 64}), "MatMul_1: input 'x' has rank 3 (1x4x64); DLA runs a matrix multiply only as fully connected on a 2-D input [batch, K]");
  EXPECT_NO(mk({1, 1, 4, 64}), "has rank 4");
}

// ---- 6. Orin: a reshape directly connected to a Slice or Concat is split off -----------------
TEST(DlaShuffle, ReshapeBesideSliceOrConcatSplitOffOnOrin) {
  // conv -> Reshape -> Concat(C) with another conv: the reshape is split off.
  NetBuilder b;
  auto x = b.input("x", {1, 8, 4, 4});
  auto c1 = b.conv(x, "Conv_1", 8, {1, 1});
  ShuffleParams rp;
  rp.reshape = Dims{1, 8, 2, 8};
  auto r = b.layer(LayerKind::kShuffle, "Reshape_1", {c1}, {1, 8, 2, 8}, rp);
  const LayerId reshape = b.last();
  auto c2 = b.conv(b.input("z", {1, 8, 2, 8}), "Conv_2", 8, {1, 1});
  b.output(b.concat({r, c2}, "Concat_1"));
  EXPECT_NO(at(b, reshape, kFp16), "Reshape_1: reshape directly before Concatenation 'Concat_1'; DLA on orin (TensorRT 8.6 (JetPack 6, DLA 3.14)) splits it off the DLA subgraph");
  // Slice -> Reshape: same.
  NetBuilder s;
  SliceParams sp;
  sp.start = {0, 0, 0, 0};
  sp.size = {1, 4, 4, 4};
  sp.stride = {1, 1, 1, 1};
  auto sl = s.layer(LayerKind::kSlice, "Slice_1", {s.input("x", {1, 8, 4, 4})}, sp.size, sp);
  s.layer(LayerKind::kShuffle, "Reshape_2", {sl}, {1, 4, 2, 8}, ShuffleParams{{}, Dims{1, 4, 2, 8}, {}});
  EXPECT_NO(at(s, s.last(), kFp16), "reshape directly after Slice 'Slice_1'");
  // At the limit: one layer in between, or a transpose (no reshape) beside the Slice: DLA.
  auto mid = s.relu(sl, "Relu_1");
  s.layer(LayerKind::kShuffle, "Reshape_3", {mid}, {1, 4, 2, 8}, ShuffleParams{{}, Dims{1, 4, 2, 8}, {}});
  EXPECT_YES(at(s, s.last(), kFp16));
  s.layer(LayerKind::kShuffle, "Transpose_1", {sl}, {1, 4, 4, 4}, ShuffleParams{{0, 1, 3, 2}, std::nullopt, {}});
  EXPECT_YES(at(s, s.last(), kFp16));
}

// ---- 7. ElementWise MIN: Orin "See RFE" vs NvInfer.h: rejected, unverified; Xavier yes --------
TEST(DlaElementWise, MinOrinNoXavierYes) {
  auto mk = [](ElementWiseOp op, DlaOptions o) {
    NetBuilder b;
    b.eltwise(b.input("x", {1, 8, 4, 4}), b.input("y", {1, 8, 4, 4}), "Min_1", op);
    return at(b, b.last(), o);
  };
  EXPECT_YES(mk(ElementWiseOp::kMax, opts()));
  EXPECT_NO(mk(ElementWiseOp::kMin, opts()), "DLA cores do not support MIN ElementWise operation on orin (TensorRT 8.6 (JetPack 6, DLA 3.14)): NvInfer.h lists kMIN for DLA but NVIDIA's Orin operator matrix marks Min 'See RFE' (not exposed through TensorRT); sources conflict, unverified");
  EXPECT_YES(mk(ElementWiseOp::kMin, opts(DlaTarget::kXavier)));
}

}  // namespace
}  // namespace tandem
