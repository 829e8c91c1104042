// DLA verdicts of issue 16's layers: none is in NVIDIA's DLA supported-layers list ("Working with
// DLA", DLA Supported Layers and Restrictions), and a 3-D convolution or pooling has 3 spatial
// dims where the DLA takes 2.
#include <gtest/gtest.h>

#include "net_builder.h"

namespace tandem {
namespace {

using testing::NetBuilder;

DlaOptions opts() {
  DlaOptions o;
  o.target = DlaTarget::kOrin;
  o.precision = DlaPrecision::kFp16;
  return o;
}

void expect_no(NetBuilder& b, const std::string& text) {
  const Support s = check_layer(b.net, b.last(), opts());
  EXPECT_FALSE(s.ok);
  EXPECT_NE(s.reason.find(text), std::string::npos) << s.reason;
}

TEST(DlaIndexLayers, NoneOnDla) {
  {
    NetBuilder b;
    auto x = b.input("x", {1, 3, 8, 8});
    auto i = b.input("i", {1, 3, 8, 8}, DataType::kInt32);
    b.layer(LayerKind::kGather, "ge", {x, i}, {1, 3, 8, 8}, GatherParams{1, GatherMode::kElement, 0});
    expect_no(b, "Gather has no DLA support");
  }
  {
    NetBuilder b;
    auto x = b.input("x", {1, 3, 8, 8});
    auto i = b.input("i", {1, 3, 8, 8}, DataType::kInt32);
    auto u = b.input("u", {1, 3, 8, 8});
    b.layer(LayerKind::kScatter, "sc", {x, i, u}, {1, 3, 8, 8}, ScatterParams{});
    expect_no(b, "sc: Scatter is not a DLA-supported layer");
  }
  {
    NetBuilder b;
    auto x = b.input("x", {1, 3, 8, 8});
    b.layer(LayerKind::kTopK, "tk", {x}, {1, 3, 8, 2}, TopKParams{TopKOp::kMax, 2, 1u << 3});
    expect_no(b, "tk: TopK is not a DLA-supported layer");
  }
  {
    NetBuilder b;
    auto x = b.input("x", {1, 3, 8, 8});
    auto y = b.input("y", {1, 3, 8, 8});
    b.layer(LayerKind::kEinsum, "es", {x, y}, {1, 3, 8, 8}, EinsumParams{"abcd,abde->abce"});
    expect_no(b, "es: Einsum is not a DLA-supported layer");
  }
  {
    NetBuilder b;
    auto x = b.input("x", {1, 3, 8, 8});
    auto g = b.input("g", {1, 4, 4, 2});
    b.layer(LayerKind::kGridSample, "gs", {x, g}, {1, 3, 4, 4}, GridSampleParams{});
    expect_no(b, "gs: GridSample is not a DLA-supported layer");
  }
  {
    NetBuilder b;
    auto x = b.input("x", {1, 3, 8, 8});
    auto r = b.input("r", {2, 4});
    auto i = b.input("i", {2}, DataType::kInt32);
    b.layer(LayerKind::kRoiAlign, "ra", {x, r, i}, {2, 3, 2, 2}, RoiAlignParams{});
    expect_no(b, "ra: RoiAlign is TensorRT's ROIAlign_TRT plugin");
  }
}

// NonZero and NMS: not in the list either, and a DLA loadable's shapes are fixed at build time.
TEST(DlaIndexLayers, DataDependentLayersNotOnDla) {
  {
    NetBuilder b;
    auto x = b.input("x", {2, 3}, DataType::kInt32);
    b.layer(LayerKind::kNonZero, "nz", {x}, {2, 6}, NoParams{});
    b.net.tensors[size_t(b.net.layers.back().outputs[0])].type = DataType::kInt64;
    expect_no(b, "nz: NonZero is not a DLA-supported layer (DLA supported-layers list; its output shape depends on the data)");
  }
  {
    NetBuilder b;
    auto boxes = b.input("boxes", {1, 6, 4});
    auto scores = b.input("scores", {1, 6, 2});
    auto m = b.input("m", {1}, DataType::kInt64);
    auto iou = b.input("iou", {1});
    auto sc = b.input("sc", {1});
    b.layer(LayerKind::kNMS, "nms", {boxes, scores, m, iou, sc}, {12, 3}, NMSParams{});
    expect_no(b, "nms: NMS is not a DLA-supported layer");
  }
}

TEST(DlaIndexLayers, ThreeDConvolutionAndPoolingNotOnDla) {
  {
    NetBuilder b;
    auto x = b.input("x", {1, 4, 6, 8, 8});
    ConvolutionParams p;
    p.kernel = {3, 3, 3};
    p.stride = p.dilation = {1, 1, 1};
    p.pre_padding = p.post_padding = {1, 1, 1};
    p.out_maps = 4;
    p.kernel_weights = b.weights("w", {4, 4, 3, 3, 3});
    b.layer(LayerKind::kConvolution, "conv3d", {x}, {1, 4, 6, 8, 8}, p);
    expect_no(b, "2 spatial dims only");
  }
  {
    NetBuilder b;
    auto x = b.input("x", {1, 4, 6, 8, 8});
    PoolingParams p;
    p.window = p.stride = {2, 2, 2};
    p.pre_padding = p.post_padding = {0, 0, 0};
    b.layer(LayerKind::kPooling, "pool3d", {x}, {1, 4, 3, 4, 4}, p);
    expect_no(b, "2 spatial dims only");
  }
}

}  // namespace
}  // namespace tandem
