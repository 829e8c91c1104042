// One test per DLA rule: accepted at its limit, rejected just past it, reason asserted.
#include <gtest/gtest.h>

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

Support last(NetBuilder& b, DlaOptions o = opts()) { return check_layer(b.net, b.last(), o); }

#define EXPECT_YES(s) EXPECT_TRUE((s).ok) << (s).reason
#define EXPECT_NO(s, text)                                              \
  do {                                                                  \
    Support s_ = (s);                                                   \
    EXPECT_FALSE(s_.ok);                                                \
    EXPECT_NE(s_.reason.find(text), std::string::npos) << s_.reason;    \
  } while (0)

// ---- Convolution ----------------------------------------------------------------------------
Support conv_case(Dims k, Dims s = {1, 1}, Dims pad = {0, 0}, int64_t out = 8, int64_t groups = 1,
                  Dims dil = {1, 1}, Dims in = {1, 8, 80, 80}, DlaOptions o = opts()) {
  NetBuilder b;
  auto x = b.input("x", in);
  b.conv(x, "Conv_1", out, k, s, pad, groups, dil);
  return last(b, o);
}

TEST(DlaConv, Kernel32Yes33No) {
  EXPECT_YES(conv_case({32, 32}));
  EXPECT_NO(conv_case({33, 33}), "Conv_1: kernel 33x33 outside DLA convolution limit [1,32]");
}
TEST(DlaConv, Stride8Yes9No) {
  EXPECT_YES(conv_case({3, 3}, {8, 8}));
  EXPECT_NO(conv_case({3, 3}, {9, 9}), "stride 9x9 outside DLA convolution limit [1,8]");
}
TEST(DlaConv, PaddingBelowKernel) {
  EXPECT_YES(conv_case({3, 3}, {1, 1}, {2, 2}));
  EXPECT_NO(conv_case({3, 3}, {1, 1}, {3, 3}), "pre-padding 3 must be less than kernel 3");
}
TEST(DlaConv, Padding31Yes32No) {
  EXPECT_YES(conv_case({32, 32}, {1, 1}, {31, 31}));
  EXPECT_NO(conv_case({32, 32}, {1, 1}, {32, 32}), "pre-padding 32 outside DLA convolution limit [0,31]");
}
TEST(DlaConv, Dilation32Yes33No) {
  EXPECT_YES(conv_case({2, 2}, {1, 1}, {0, 0}, 8, 1, {32, 32}));
  EXPECT_NO(conv_case({2, 2}, {1, 1}, {0, 0}, 8, 1, {33, 33}), "dilation 33x33 outside DLA convolution limit [1,32]");
}
TEST(DlaConv, OutputMaps8192Yes8193No) {
  EXPECT_YES(conv_case({1, 1}, {1, 1}, {0, 0}, 8192, 1, {1, 1}, {1, 8, 4, 4}));
  EXPECT_NO(conv_case({1, 1}, {1, 1}, {0, 0}, 8193, 1, {1, 1}, {1, 8, 4, 4}), "output maps 8193 outside DLA limit [1,8192]");
}
TEST(DlaConv, Groups8192Yes8193No) {
  EXPECT_YES(conv_case({1, 1}, {1, 1}, {0, 0}, 8192, 8192, {1, 1}, {1, 8192, 2, 2}));
  // 8193 channels also breaks the dim limit; the groups reason must be there too.
  EXPECT_NO(conv_case({1, 1}, {1, 1}, {0, 0}, 8193, 8193, {1, 1}, {1, 8193, 2, 2}), "groups 8193 outside DLA limit [1,8192]");
}
TEST(DlaConv, CbufBanks) {
  // C=512 3x3 INT8: weights ceil(4608/32768)=1 bank; data ceil(ceil(512/32)*W/4 *3 /256).
  // W=80: 16*80/4=320 entries *3 = 960/256 -> 4 banks: 5 <= 16 yes.
  EXPECT_YES(conv_case({3, 3}, {1, 1}, {1, 1}, 8, 1, {1, 1}, {1, 512, 8, 80}));
  // W=340: 16*85=1360 entries*3=4080/256 -> 16 banks; +1 = 17 > 16 no. W=320: 1280*3/256=15 -> 16 yes.
  EXPECT_YES(conv_case({3, 3}, {1, 1}, {1, 1}, 8, 1, {1, 1}, {1, 512, 8, 320}));
  EXPECT_NO(conv_case({3, 3}, {1, 1}, {1, 1}, 8, 1, {1, 1}, {1, 512, 8, 340}), "CBUF needs 1 weight + 16 data banks = 17 > 16");
}
TEST(DlaConv, CbufDependsOnPrecision) {
  // FP16 doubles the bytes: W=320 becomes 32*80*3/256 = 30 data banks.
  EXPECT_NO(conv_case({3, 3}, {1, 1}, {1, 1}, 8, 1, {1, 1}, {1, 512, 8, 320}, opts(DlaTarget::kOrin, DlaPrecision::kFp16)), "CBUF");
}

// ---- General restrictions -------------------------------------------------------------------
TEST(DlaGeneral, FourDimsOnly) {
  NetBuilder b;
  auto x = b.input("x", {1, 8, 16});
  b.relu(x, "Relu_1");
  EXPECT_NO(last(b), "Relu_1: input 'x' has rank 3 (1x8x16); DLA needs at least 4 dims");
}
TEST(DlaGeneral, Batch4096Yes4097No) {
  NetBuilder b;
  b.relu(b.input("x", {4096, 2, 2, 2}), "Relu_1");
  EXPECT_YES(last(b));
  NetBuilder c;
  c.relu(c.input("x", {4097, 2, 2, 2}), "Relu_1");
  EXPECT_NO(last(c), "DLA batch 4097 exceeds limit 4096");
}
TEST(DlaGeneral, Dim8192Yes8193No) {
  NetBuilder b;
  b.relu(b.input("x", {1, 1, 2, 8192}), "Relu_1");
  EXPECT_YES(last(b));
  NetBuilder c;
  c.relu(c.input("x", {1, 1, 2, 8193}), "Relu_1");
  EXPECT_NO(last(c), "dim 3 = 8193 exceeds DLA limit 8192");
}
TEST(DlaGeneral, Fp16Int8Only) {
  NetBuilder b;
  b.relu(b.input("x", {1, 2, 2, 2}, DataType::kInt32), "Relu_1");
  EXPECT_NO(last(b), "input 'x' is int32; DLA runs FP16 and INT8 only");
}
TEST(DlaGeneral, StaticShapes) {
  NetBuilder b;
  auto x = b.input("x", {1, 2, 2, 2});
  b.relu(x, "Relu_1");
  b.net.tensors[x].dims[0] = -1;
  EXPECT_NO(last(b), "dynamic shape");
}

// ---- Deconvolution --------------------------------------------------------------------------
Support deconv_case(Dims k, Dims s, Dims pad = {0, 0}, int64_t groups = 1, Dims dil = {1, 1},
                    int64_t out = 8) {
  NetBuilder b;
  b.deconv(b.input("x", {1, 8, 8, 8}), "ConvTranspose_12", out, k, s, pad, groups, dil);
  return last(b);
}
TEST(DlaDeconv, Padding0Yes1No) {
  EXPECT_YES(deconv_case({2, 2}, {2, 2}));
  EXPECT_NO(deconv_case({3, 3}, {2, 2}, {1, 1}), "ConvTranspose_12: padding 1 must be 0 on DLA deconvolution");
}
TEST(DlaDeconv, Kernel32Yes33No) {
  EXPECT_YES(deconv_case({22, 22}, {1, 1}));
  EXPECT_YES(deconv_case({32, 31}, {1, 1}));
  EXPECT_NO(deconv_case({33, 31}, {1, 1}), "kernel 33x31 outside DLA deconvolution limit [1,32]");
}
TEST(DlaDeconv, LongKernels) {
  EXPECT_YES(deconv_case({1, 64}, {1, 1}));
  EXPECT_YES(deconv_case({128, 1}, {1, 1}));
  EXPECT_NO(deconv_case({64, 64}, {1, 1}), "kernel 64x64 outside");
  EXPECT_NO(deconv_case({1, 65}, {1, 1}), "kernel 1x65 outside");
}
TEST(DlaDeconv, Stride32Yes33No) {
  EXPECT_YES(deconv_case({2, 2}, {32, 31}));
  EXPECT_NO(deconv_case({2, 2}, {33, 31}), "stride 33x31 outside DLA deconvolution limit [1,32]");
}
TEST(DlaDeconv, SquareKernel22Yes23No) {
  EXPECT_YES(deconv_case({22, 22}, {2, 2}));
  EXPECT_NO(deconv_case({23, 23}, {2, 2}), "square kernel 23x23 in [23,32] is disabled");
  EXPECT_NO(deconv_case({2, 2}, {23, 23}), "square stride 23x23 in [23,32] is disabled");
}
TEST(DlaDeconv, Groups1Yes2No) {
  EXPECT_YES(deconv_case({2, 2}, {2, 2}, {0, 0}, 1));
  EXPECT_NO(deconv_case({2, 2}, {2, 2}, {0, 0}, 2), "groups 2 must be 1 on DLA deconvolution");
}
TEST(DlaDeconv, Dilation1Yes2No) {
  EXPECT_YES(deconv_case({2, 2}, {2, 2}, {0, 0}, 1, {1, 1}));
  EXPECT_NO(deconv_case({2, 2}, {2, 2}, {0, 0}, 1, {2, 2}), "dilation 2 must be 1 on DLA deconvolution");
}
TEST(DlaDeconv, Channels8192Yes8193No) {
  EXPECT_YES(deconv_case({1, 1}, {1, 1}, {0, 0}, 1, {1, 1}, 8192));
  EXPECT_NO(deconv_case({1, 1}, {1, 1}, {0, 0}, 1, {1, 1}, 8193), "output channels 8193 outside DLA limit [1,8192]");
}

// ---- Pooling --------------------------------------------------------------------------------
Support pool_case(Dims w, Dims s, Dims pad, PoolingType t = PoolingType::kMax, bool excl = true,
                  DlaOptions o = opts()) {
  NetBuilder b;
  auto x = b.input("x", {1, 8, 40, 40});
  PoolingParams p;
  p.type = t;
  p.window = w;
  p.stride = s;
  p.pre_padding = pad;
  p.post_padding = pad;
  p.average_count_excludes_padding = excl;
  b.layer(LayerKind::kPooling, "MaxPool_3", {x}, {1, 8, 8, 8}, p);
  return last(b, o);
}
TEST(DlaPool, Window8Yes9No) {
  EXPECT_YES(pool_case({8, 8}, {1, 1}, {0, 0}));
  EXPECT_NO(pool_case({9, 9}, {1, 1}, {0, 0}), "MaxPool_3: window 9x9 outside DLA pooling limit [1,8]");
}
TEST(DlaPool, Stride16Yes17No) {
  EXPECT_YES(pool_case({2, 2}, {16, 16}, {0, 0}));
  EXPECT_NO(pool_case({2, 2}, {17, 17}, {0, 0}), "stride 17x17 outside DLA pooling limit [1,16]");
}
TEST(DlaPool, Padding7Yes8No) {
  EXPECT_YES(pool_case({8, 8}, {1, 1}, {7, 7}));
  EXPECT_NO(pool_case({8, 8}, {1, 1}, {8, 8}), "padding 8 outside DLA pooling limit [0,7]");
}
TEST(DlaPool, Int8EqualRangesNoted) {
  Support s = pool_case({2, 2}, {2, 2}, {0, 0});
  EXPECT_TRUE(s.ok);
  EXPECT_TRUE(s.int8_equal_ranges);
}
TEST(DlaPool, XavierAverageInclusivePaddingOnly) {
  auto x = opts(DlaTarget::kXavier);
  EXPECT_YES(pool_case({3, 3}, {1, 1}, {1, 1}, PoolingType::kAverage, false, x));
  EXPECT_YES(pool_case({3, 3}, {1, 1}, {0, 0}, PoolingType::kAverage, true, x));
  EXPECT_NO(pool_case({3, 3}, {1, 1}, {1, 1}, PoolingType::kAverage, true, x), "supports inclusive padding only");
  EXPECT_YES(pool_case({3, 3}, {1, 1}, {1, 1}, PoolingType::kAverage, true, opts()));
}

// ---- Activation -----------------------------------------------------------------------------
Support act_case(ActivationType t, float a = 0, float b = 0, DlaOptions o = opts()) {
  NetBuilder nb;
  nb.act(nb.input("x", {1, 8, 8, 8}), "Act_1", t, a, b);
  return last(nb, o);
}
TEST(DlaActivation, SupportedTypes) {
  EXPECT_YES(act_case(ActivationType::kRelu));
  EXPECT_YES(act_case(ActivationType::kSigmoid));
  EXPECT_YES(act_case(ActivationType::kTanh));
  EXPECT_YES(act_case(ActivationType::kLeakyRelu, 0.1f));
  EXPECT_NE(act_case(ActivationType::kSigmoid).reason.find("runs as FP16"), std::string::npos);
}
TEST(DlaActivation, HardSigmoidNo) {
  EXPECT_NO(act_case(ActivationType::kHardSigmoid, 0.2f, 0.5f), "activation HARD_SIGMOID not supported on DLA");
  EXPECT_NO(act_case(ActivationType::kHardSigmoid, 0.2f, 0.5f, opts(DlaTarget::kXavier)), "HARD_SIGMOID");
  EXPECT_NO(act_case(ActivationType::kElu), "ELU");
}
TEST(DlaActivation, Clip127Yes128No) {
  EXPECT_YES(act_case(ActivationType::kClip, 0, 127));
  EXPECT_YES(act_case(ActivationType::kClip, 0, 1));
  EXPECT_NO(act_case(ActivationType::kClip, 0, 128), "clip upper bound 128 outside DLA limit [1,127]");
  EXPECT_NO(act_case(ActivationType::kClip, 0, 0.5f), "clip upper bound 0.5 outside");
  EXPECT_NO(act_case(ActivationType::kClip, -1, 6), "clip lower bound -1 must be 0");
}

// ---- ParametricReLU -------------------------------------------------------------------------
TEST(DlaPRelu, ConstantSameRank) {
  NetBuilder b;
  auto x = b.input("x", {1, 8, 4, 4});
  auto s = b.constant("slope", {1, 8, 1, 1});
  b.layer(LayerKind::kParametricReLU, "PRelu_1", {x, s}, {1, 8, 4, 4});
  EXPECT_YES(last(b));
  NetBuilder c;
  auto x2 = c.input("x", {1, 8, 4, 4});
  auto s2 = c.input("slope", {1, 8, 1, 1});
  c.layer(LayerKind::kParametricReLU, "PRelu_1", {x2, s2}, {1, 8, 4, 4});
  EXPECT_NO(last(c), "slopes must be a build-time constant");
  NetBuilder d;
  auto x3 = d.input("x", {1, 8, 4, 4});
  auto s3 = d.constant("slope", {8, 1, 1});
  d.layer(LayerKind::kParametricReLU, "PRelu_1", {x3, s3}, {1, 8, 4, 4});
  EXPECT_NO(last(d), "slopes rank 3 must equal input rank 4");
}

// ---- ElementWise / Comparison ---------------------------------------------------------------
Support ew_case(ElementWiseOp op, DlaOptions o = opts(), Dims bd = {1, 8, 4, 4}) {
  NetBuilder b;
  auto x = b.input("x", {1, 8, 4, 4});
  auto y = b.input("y", bd);
  b.eltwise(x, y, "Add_1", op);
  return last(b, o);
}
TEST(DlaElementWise, OpsPerTarget) {
  for (auto op : {ElementWiseOp::kSum, ElementWiseOp::kSub, ElementWiseOp::kProd, ElementWiseOp::kMax}) {
    EXPECT_YES(ew_case(op));
    EXPECT_YES(ew_case(op, opts(DlaTarget::kXavier)));
  }
  // MIN: see DlaElementWise.MinOrinNoXavierYes (dla_rules_sources_test.cpp).
  EXPECT_NO(ew_case(ElementWiseOp::kDiv), "DLA cores do not support DIV ElementWise operation");
  EXPECT_NO(ew_case(ElementWiseOp::kPow, opts(DlaTarget::kXavier)), "POW");
  EXPECT_NE(ew_case(ElementWiseOp::kSub, opts(DlaTarget::kXavier)).reason.find("emulated"), std::string::npos);
}
TEST(DlaElementWise, Int8EqualRanges) {
  Support s = ew_case(ElementWiseOp::kSum);
  EXPECT_TRUE(s.int8_equal_ranges);
  EXPECT_FALSE(ew_case(ElementWiseOp::kSum, opts(DlaTarget::kOrin, DlaPrecision::kFp16)).int8_equal_ranges);
}
TEST(DlaElementWise, Broadcast) {
  EXPECT_YES(ew_case(ElementWiseOp::kProd, opts(), {1, 8, 1, 1}));
  EXPECT_YES(ew_case(ElementWiseOp::kProd, opts(), {1, 1, 1, 1}));
  EXPECT_NO(ew_case(ElementWiseOp::kProd, opts(), {1, 1, 4, 4}), "broadcast 1x8x4x4 with 1x1x4x4 not supported");
}
// Comparisons: DlaComparison.* in dla_rules_sources_test.cpp (they need the Cast after them).

// ---- Scale ----------------------------------------------------------------------------------
TEST(DlaScale, ScaleShiftOnly) {
  NetBuilder b;
  auto x = b.input("x", {1, 8, 4, 4});
  ScaleParams p;
  p.scale = b.weights("s", {8}, 2.f);
  p.shift = b.weights("b", {8}, 1.f);
  p.power = b.weights("p", {8}, 1.f);
  b.layer(LayerKind::kScale, "BN_1", {x}, {1, 8, 4, 4}, p);
  EXPECT_YES(last(b));
  p.power = b.weights("p2", {8}, 2.f);
  b.layer(LayerKind::kScale, "BN_2", {x}, {1, 8, 4, 4}, p);
  EXPECT_NO(last(b), "power 2 must be 1 on DLA scale");
}

// ---- LRN ------------------------------------------------------------------------------------
TEST(DlaLrn, Windows) {
  for (int64_t w : {3, 5, 7, 9}) {
    NetBuilder b;
    LRNParams p;
    p.window = w;
    b.layer(LayerKind::kLRN, "LRN_1", {b.input("x", {1, 8, 4, 4})}, {1, 8, 4, 4}, p);
    EXPECT_YES(last(b));
  }
  for (int64_t w : {1, 11}) {
    NetBuilder b;
    LRNParams p;
    p.window = w;
    b.layer(LayerKind::kLRN, "LRN_1", {b.input("x", {1, 8, 4, 4})}, {1, 8, 4, 4}, p);
    EXPECT_NO(last(b), "window " + std::to_string(w) + " not supported on DLA LRN");
  }
}

// ---- Concatenation --------------------------------------------------------------------------
TEST(DlaConcat, ChannelAxisTwoInputsSameSpatial) {
  NetBuilder b;
  auto x = b.input("x", {1, 8, 4, 4});
  auto y = b.input("y", {1, 4, 4, 4});
  b.concat({x, y}, "Concat_1", 1);
  Support s = last(b);
  EXPECT_YES(s);
  EXPECT_TRUE(s.int8_equal_ranges);
  b.concat({x, x}, "Concat_2", 2);
  EXPECT_NO(last(b), "concatenation axis 2 must be the channel axis 1");
  b.concat({x}, "Concat_3", 1);
  EXPECT_NO(last(b), "requires at least two inputs");
  auto z = b.input("z", {1, 4, 2, 4});
  b.layer(LayerKind::kConcatenation, "Concat_4", {x, z}, {1, 12, 4, 4}, ConcatenationParams{1});
  EXPECT_NO(last(b), "different spatial dims");
}

// ---- Resize ---------------------------------------------------------------------------------
Support resize_case(ResizeMode m, float s, ResizeCoordinateTransform ct = ResizeCoordinateTransform::kAsymmetric,
                    ResizeRounding r = ResizeRounding::kFloor, ResizeSelector sel = ResizeSelector::kFormula) {
  NetBuilder b;
  ResizeParams p;
  p.mode = m;
  p.transform = ct;
  p.rounding = r;
  p.selector = sel;
  p.scales = {1, 1, s, s};
  b.layer(LayerKind::kResize, "Resize_1", {b.input("x", {1, 8, 4, 4})}, {1, 8, 4 * 33, 4 * 33}, p);
  return last(b);
}
TEST(DlaResize, NearestScale32Yes33No) {
  EXPECT_YES(resize_case(ResizeMode::kNearest, 32));
  EXPECT_NO(resize_case(ResizeMode::kNearest, 33), "Resize_1: NEAREST scale 33 outside DLA limit [1,32]");
}
TEST(DlaResize, LinearScale4Yes5No) {
  using CT = ResizeCoordinateTransform;
  EXPECT_YES(resize_case(ResizeMode::kLinear, 4, CT::kHalfPixel));
  EXPECT_YES(resize_case(ResizeMode::kLinear, 2, CT::kHalfPixel, ResizeRounding::kFloor, ResizeSelector::kUpper));
  EXPECT_NO(resize_case(ResizeMode::kLinear, 5, CT::kHalfPixel), "LINEAR scale 5 outside DLA limit [1,4]");
  EXPECT_NO(resize_case(ResizeMode::kLinear, 2, CT::kAlignCorners), "linear coordinate transform");
}
TEST(DlaResize, IntegerScalesAndModes) {
  using CT = ResizeCoordinateTransform;
  EXPECT_NO(resize_case(ResizeMode::kNearest, 1.5f), "scale 1.5 must be an integer");
  EXPECT_NO(resize_case(ResizeMode::kNearest, 0.5f), "scale 0.5 must be an integer");
  EXPECT_YES(resize_case(ResizeMode::kNearest, 2, CT::kHalfPixel, ResizeRounding::kHalfDown));
  EXPECT_NO(resize_case(ResizeMode::kNearest, 2, CT::kHalfPixel, ResizeRounding::kCeil), "not supported on DLA");
  EXPECT_NO(resize_case(ResizeMode::kNearest, 2, CT::kAlignCorners), "not supported on DLA");
  EXPECT_NO(resize_case(ResizeMode::kCubic, 2, CT::kHalfPixel), "cubic");
}
TEST(DlaResize, OutputDimsAndBatchScales) {
  NetBuilder b;
  ResizeParams p;
  p.output_dims = {1, 8, 8, 8};
  b.layer(LayerKind::kResize, "Resize_1", {b.input("x", {1, 8, 4, 4})}, {1, 8, 8, 8}, p);
  EXPECT_NO(last(b), "setOutputDimensions is not supported on DLA");
  NetBuilder c;
  p.output_dims.clear();
  p.scales = {1, 2, 2, 2};
  c.layer(LayerKind::kResize, "Resize_1", {c.input("x", {1, 8, 4, 4})}, {1, 16, 8, 8}, p);
  EXPECT_NO(last(c), "on N and C must be 1");
}

// ---- Slice ----------------------------------------------------------------------------------
Support slice_case(SliceParams p, DlaOptions o = opts(DlaTarget::kOrin, DlaPrecision::kFp16)) {
  NetBuilder b;
  b.layer(LayerKind::kSlice, "Slice_1", {b.input("x", {1, 8, 4, 4})}, p.size, p);
  return last(b, o);
}
TEST(DlaSlice, Fp16OnlyStride1DefaultNotBatch) {
  SliceParams p;
  p.start = {0, 0, 0, 0};
  p.size = {1, 4, 4, 4};
  p.stride = {1, 1, 1, 1};
  EXPECT_YES(slice_case(p));
  EXPECT_NO(slice_case(p, opts()), "slice runs on DLA in FP16 only, not INT8");
  SliceParams s2 = p;
  s2.stride = {1, 2, 1, 1};
  s2.size = {1, 4, 4, 4};
  EXPECT_NO(slice_case(s2), "stride 2 must be 1 on DLA slice");
  SliceParams m = p;
  m.mode = SliceMode::kFill;
  EXPECT_NO(slice_case(m), "must be DEFAULT on DLA");
  NetBuilder b;
  SliceParams bp;
  bp.start = {1, 0, 0, 0};
  bp.size = {1, 8, 4, 4};
  bp.stride = {1, 1, 1, 1};
  b.layer(LayerKind::kSlice, "Slice_1", {b.input("x", {2, 8, 4, 4})}, bp.size, bp);
  EXPECT_NO(last(b, opts(DlaTarget::kOrin, DlaPrecision::kFp16)), "slicing the batch dimension");
}

// ---- SoftMax --------------------------------------------------------------------------------
Support softmax_case(Dims d, uint32_t axes, DlaOptions o = opts(DlaTarget::kOrin, DlaPrecision::kFp16)) {
  NetBuilder b;
  SoftMaxParams p;
  p.axes = axes;
  b.layer(LayerKind::kSoftMax, "Softmax_1", {b.input("x", d)}, d, p);
  return last(b, o);
}
TEST(DlaSoftMax, XavierNo) {
  EXPECT_NO(softmax_case({1, 8, 1, 1}, 2, opts(DlaTarget::kXavier, DlaPrecision::kFp16)), "SoftMax is not supported on DLA on xavier");
}
TEST(DlaSoftMax, Fp16Only) {
  EXPECT_YES(softmax_case({1, 8, 1, 1}, 2));
  EXPECT_NO(softmax_case({1, 8, 1, 1}, 2, opts()), "softmax runs on DLA in FP16 only");
}
TEST(DlaSoftMax, AccurateClass8192) {
  EXPECT_YES(softmax_case({1, 8192, 1, 1}, 2));
  EXPECT_NO(softmax_case({1, 8193, 1, 1}, 2), "exceeds DLA limit");  // also over the dim limit
  EXPECT_YES(softmax_case({1, 1, 1, 8192}, 8));
}
TEST(DlaSoftMax, OptimizedClass1024) {
  EXPECT_YES(softmax_case({1, 1024, 2, 1}, 2));
  EXPECT_NO(softmax_case({1, 1025, 2, 1}, 2), "softmax axis size 1025 exceeds DLA limit 1024");
  EXPECT_NO(softmax_case({2, 8, 1, 1}, 1), "softmax axis 0 must be C, H or W");
}

// ---- Shuffle --------------------------------------------------------------------------------
TEST(DlaShuffle, OrinFp16FourDNoBatch) {
  auto mk = [](ShuffleParams p, Dims out, DlaOptions o) {
    NetBuilder b;
    b.layer(LayerKind::kShuffle, "Reshape_1", {b.input("x", {1, 8, 4, 4})}, out, p);
    return last(b, o);
  };
  auto fp16 = opts(DlaTarget::kOrin, DlaPrecision::kFp16);
  ShuffleParams p;
  p.reshape = Dims{1, 8, 2, 8};
  EXPECT_YES(mk(p, {1, 8, 2, 8}, fp16));
  EXPECT_NO(mk(p, {1, 8, 2, 8}, opts()), "shuffle runs on DLA in FP16 only, not INT8 (unverified");
  EXPECT_NO(mk(p, {1, 8, 2, 8}, opts(DlaTarget::kXavier, DlaPrecision::kFp16)), "Shuffle on xavier");
  ShuffleParams f;
  f.reshape = Dims{1, 128};
  EXPECT_NO(mk(f, {1, 128}, fp16), "output 'Reshape_1_out' has rank 2 (1x128); DLA Shuffle needs 4-D tensors");
  ShuffleParams t;
  t.first_transpose = {1, 0, 2, 3};
  EXPECT_NO(mk(t, {8, 1, 4, 4}, fp16), "transpose moves the batch dimension");
}

// ---- Reduce ---------------------------------------------------------------------------------
TEST(DlaReduce, AvgNoAndXavierNo) {
  auto mk = [](ReduceOp op, DlaOptions o) {
    NetBuilder b;
    ReduceParams p;
    p.op = op;
    p.axes = 0b1100;
    b.layer(LayerKind::kReduce, "GlobalAveragePool_1", {b.input("x", {1, 8, 4, 4})}, {1, 8, 1, 1}, p);
    return last(b, o);
  };
  auto fp16 = opts(DlaTarget::kOrin, DlaPrecision::kFp16);
  // MAX on Orin: DlaReduce.MaxGatedTo8612MaxPoolWindow8Yes (dla_rules_sources_test.cpp).
  EXPECT_NO(mk(ReduceOp::kAvg, fp16), "Reduce AVG not supported on DLA on orin");
  EXPECT_NO(mk(ReduceOp::kAvg, opts(DlaTarget::kXavier, DlaPrecision::kFp16)), "Reduce AVG not supported on DLA on xavier");
  EXPECT_NO(mk(ReduceOp::kMax, opts(DlaTarget::kXavier, DlaPrecision::kFp16)), "'See RFE' with TensorRT 8.5");
}

// ---- Unary ----------------------------------------------------------------------------------
TEST(DlaUnary, AbsOnly) {
  auto mk = [](UnaryOp op) {
    NetBuilder b;
    UnaryParams p;
    p.op = op;
    b.layer(LayerKind::kUnary, "Abs_1", {b.input("x", {1, 8, 4, 4})}, {1, 8, 4, 4}, p);
    return last(b);
  };
  EXPECT_YES(mk(UnaryOp::kAbs));
  EXPECT_NO(mk(UnaryOp::kSqrt), "unary SQRT not supported on DLA (ABS only)");
}

// ---- MatrixMultiply as FullyConnected -------------------------------------------------------
TEST(DlaMatMul, ConstantSecondInputIsFullyConnected) {
  NetBuilder b;
  auto x = b.input("x", {1, 256});
  auto w = b.constant("W", {256, 8192});
  b.layer(LayerKind::kMatrixMultiply, "Gemm_1", {x, w}, {1, 8192}, MatrixMultiplyParams{});
  Support s = last(b);
  EXPECT_YES(s);
  EXPECT_NE(s.reason.find("fully connected"), std::string::npos);
  auto w2 = b.constant("W2", {256, 8193});
  b.layer(LayerKind::kMatrixMultiply, "Gemm_2", {x, w2}, {1, 8193}, MatrixMultiplyParams{});
  EXPECT_NO(last(b), "fully connected output channels 8193 outside DLA limit [1,8192]");
  auto y = b.input("y", {256, 16});
  b.layer(LayerKind::kMatrixMultiply, "MatMul_3", {x, y}, {1, 16}, MatrixMultiplyParams{});
  EXPECT_NO(last(b), "non-constant second input");
}

// ---- GPU-only kinds -------------------------------------------------------------------------
TEST(DlaGpuOnly, ConstantGatherCastIdentity) {
  NetBuilder b;
  auto x = b.input("x", {1, 8, 4, 4});
  b.constant("C", {1, 8, 1, 1});
  EXPECT_NO(last(b), "Constant has no DLA support");
  b.gather(x, "Gather_1");
  EXPECT_NO(last(b), "Gather_1: Gather has no DLA support");
  CastParams cp;
  b.layer(LayerKind::kCast, "Cast_1", {x}, {1, 8, 4, 4}, cp);
  EXPECT_NO(last(b), "Cast has no DLA support");
  b.layer(LayerKind::kIdentity, "Id_1", {x}, {1, 8, 4, 4});
  EXPECT_NO(last(b), "Identity has no DLA support");
}

TEST(DlaTargets, Tables) {
  const auto& o = dla_target_info(DlaTarget::kOrin);
  const auto& x = dla_target_info(DlaTarget::kXavier);
  EXPECT_EQ(o.max_loadables_per_core, 16);
  EXPECT_EQ(x.max_loadables_per_core, 16);
  EXPECT_EQ(o.cores, 2);
  EXPECT_TRUE(o.has_layer_device_types_flag);
  EXPECT_FALSE(x.has_layer_device_types_flag);
  DlaTarget t;
  EXPECT_TRUE(parse_dla_target("xavier", &t));
  EXPECT_EQ(t, DlaTarget::kXavier);
  EXPECT_FALSE(parse_dla_target("thor", &t));
}

}  // namespace
}  // namespace tandem

namespace tandem {
namespace {
using testing::NetBuilder;

TEST(DlaMore, ConvNeeds2dKernel) {
  NetBuilder b;
  auto x = b.input("x", {1, 8, 8, 8});
  ConvolutionParams p;
  p.kernel = {3, 3, 3};
  p.stride = {1, 1, 1};
  p.dilation = {1, 1, 1};
  p.pre_padding = p.post_padding = {0, 0, 0};
  p.out_maps = 8;
  b.layer(LayerKind::kConvolution, "Conv3d_1", {x}, {1, 8, 6, 6}, p);
  Support s = check_layer(b.net, b.last(), DlaOptions{});
  EXPECT_FALSE(s.ok);
  EXPECT_NE(s.reason.find("kernel has 3 dims; DLA convolution supports 2 spatial dims only"), std::string::npos) << s.reason;
}
TEST(DlaMore, ResizeNeedsFourScales) {
  NetBuilder b;
  ResizeParams p;
  p.scales = {1, 2, 2};
  b.layer(LayerKind::kResize, "Resize_1", {b.input("x", {1, 8, 4, 4})}, {1, 16, 8, 8}, p);
  Support s = check_layer(b.net, b.last(), DlaOptions{});
  EXPECT_NE(s.reason.find("3 scales; DLA resize needs exactly 4"), std::string::npos) << s.reason;
}
TEST(DlaMore, SliceMustBeStatic) {
  NetBuilder b;
  auto x = b.input("x", {1, 8, 4, 4});
  auto st = b.input("starts", {4});
  SliceParams p;
  p.start = {0, 0, 0, 0};
  p.size = {1, 4, 4, 4};
  p.stride = {1, 1, 1, 1};
  b.layer(LayerKind::kSlice, "Slice_1", {x, st}, {1, 4, 4, 4}, p);
  DlaOptions o;
  o.precision = DlaPrecision::kFp16;
  Support s = check_layer(b.net, b.last(), o);
  EXPECT_NE(s.reason.find("DLA slice must be static"), std::string::npos) << s.reason;
}
TEST(DlaMore, ReduceNotOverBatch) {
  NetBuilder b;
  ReduceParams p;
  p.op = ReduceOp::kMax;
  p.axes = 0b0001;
  b.layer(LayerKind::kReduce, "ReduceMax_1", {b.input("x", {2, 8, 4, 4})}, {1, 8, 4, 4}, p);
  DlaOptions o;
  o.precision = DlaPrecision::kFp16;
  Support s = check_layer(b.net, b.last(), o);
  // Rejected before the axis rule: no Reduce on either target's TensorRT.
  EXPECT_NE(s.reason.find("Reduce MAX not supported on DLA on orin"), std::string::npos) << s.reason;
}
TEST(DlaMore, DeconvInputChannels) {
  NetBuilder b;
  b.deconv(b.input("x", {1, 8193, 2, 2}), "ConvTranspose_1", 8, {2, 2}, {2, 2});
  Support s = check_layer(b.net, b.last(), DlaOptions{});
  EXPECT_NE(s.reason.find("input channels 8193 outside DLA limit [1,8192]"), std::string::npos) << s.reason;
}
TEST(DlaMore, MatMulBatchedConstantIsNotFc) {
  NetBuilder b;
  auto x = b.input("x", {2, 4, 16});
  auto w = b.constant("W", {2, 16, 8});
  b.layer(LayerKind::kMatrixMultiply, "MatMul_1", {x, w}, {2, 4, 8}, MatrixMultiplyParams{});
  Support s = check_layer(b.net, b.last(), DlaOptions{});
  EXPECT_NE(s.reason.find("input 'x' has rank 3 (2x4x16); DLA runs a matrix multiply only as fully connected"), std::string::npos) << s.reason;
}
TEST(DlaMore, MultipleFailuresListed) {
  NetBuilder b;
  b.conv(b.input("x", {1, 8, 80, 80}), "Conv_9", 8, {33, 33}, {9, 9});
  Support s = check_layer(b.net, b.last(), DlaOptions{});
  EXPECT_EQ(s.reason.rfind("Conv_9: kernel 33x33", 0), 0u) << s.reason;
  EXPECT_NE(s.reason.find("; stride 9x9 outside"), std::string::npos) << s.reason;
}

}  // namespace
}  // namespace tandem
