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
