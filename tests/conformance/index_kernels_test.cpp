// Hand-worked values for the CPU kernels of issue 16's layers, on cases ONNX's node tests do not
// cover: TopK ties (lower index first) and both ops, ScatterElements duplicate indices under each
// reduction, GatherND with a batch dim and negative indices, Einsum's diagonal and contraction
// forms, GridSample's padding modes on points outside the image, RoiAlign's max mode.
#include <gtest/gtest.h>

#include <cstring>

#include "../common/net_builder.h"
#include "tandem/runtime.h"
#include "tandem/shape_inference.h"

using namespace tandem;

namespace {

struct Net : test::NetBuilder {
  std::vector<TensorId> layer(LayerKind k, LayerParams p, std::vector<TensorId> ins, int outs = 1) {
    Layer l;
    l.name = "op";
    l.kind = k;
    l.inputs = std::move(ins);
    l.params = std::move(p);
    for (int i = 0; i < outs; ++i) l.outputs.push_back(n.add_tensor({"y" + std::to_string(i), DataType::kFloat, {1}}));
    n.add_layer(l);
    infer_shapes(n);
    for (TensorId t : l.outputs) {
      n.tensors[t].is_output = true;
      n.outputs.push_back(t);
    }
    n.verify();
    return l.outputs;
  }
  TensorMap run(const TensorMap& in) { return make_cpu_executor(n)->run(in); }
};

template <class T>
HostTensor host(const std::string& name, DataType t, Dims d, std::vector<T> v) {
  HostTensor h;
  h.name = name;
  h.type = t;
  h.dims = std::move(d);
  h.data.resize(v.size() * sizeof(T));
  std::memcpy(h.data.data(), v.data(), h.data.size());
  return h;
}
HostTensor f32(const std::string& name, Dims d, std::vector<float> v) { return host(name, DataType::kFloat, d, v); }

std::vector<float> floats(const HostTensor& h) { return std::vector<float>(h.f32(), h.f32() + volume(h.dims)); }
std::vector<int32_t> ints(const HostTensor& h) {
  const auto* p = reinterpret_cast<const int32_t*>(h.data.data());
  return std::vector<int32_t>(p, p + volume(h.dims));
}

TEST(IndexKernels, TopKTiesKeepTheLowerIndexFirst) {
  for (TopKOp op : {TopKOp::kMax, TopKOp::kMin}) {
    Net b;
    auto x = b.input("x", {2, 4});
    b.layer(LayerKind::kTopK, TopKParams{op, 3, 1u << 1}, {x}, 2);
    auto out = b.run({{"x", f32("x", {2, 4}, {1, 3, 3, 0, 5, 5, 5, 5})}});
    if (op == TopKOp::kMax) {
      EXPECT_EQ(floats(out.at("y0")), (std::vector<float>{3, 3, 1, 5, 5, 5}));
      EXPECT_EQ(ints(out.at("y1")), (std::vector<int32_t>{1, 2, 0, 0, 1, 2}));
    } else {
      EXPECT_EQ(floats(out.at("y0")), (std::vector<float>{0, 1, 3, 5, 5, 5}));
      EXPECT_EQ(ints(out.at("y1")), (std::vector<int32_t>{3, 0, 1, 0, 1, 2}));
    }
  }
}

TEST(IndexKernels, ScatterElementsDuplicatesUnderEachReduction) {
  // data [1, 2, 3, 4], indices [1, 1, -1], updates [10, 20, 30] along axis 0.
  const std::vector<std::pair<ScatterReduction, std::vector<float>>> want = {
      {ScatterReduction::kNone, {1, 20, 3, 30}},
      {ScatterReduction::kAdd, {1, 32, 3, 34}},
      {ScatterReduction::kMul, {1, 400, 3, 120}},
      {ScatterReduction::kMax, {1, 20, 3, 30}},
      {ScatterReduction::kMin, {1, 2, 3, 4}}};
  for (const auto& [r, v] : want) {
    Net b;
    auto d = b.input("d", {4});
    auto i = b.input("i", {3}, DataType::kInt64);
    auto u = b.input("u", {3});
    b.layer(LayerKind::kScatter, ScatterParams{ScatterMode::kElement, 0, r}, {d, i, u});
    auto out = b.run({{"d", f32("d", {4}, {1, 2, 3, 4})},
                      {"i", host<int64_t>("i", DataType::kInt64, {3}, {1, 1, -1})},
                      {"u", f32("u", {3}, {10, 20, 30})}});
    EXPECT_EQ(floats(out.at("y0")), v) << to_string(r);
  }
}

TEST(IndexKernels, ScatterNdReplacesRows) {
  Net b;
  auto d = b.input("d", {3, 2});
  auto i = b.input("i", {1, 1}, DataType::kInt32);
  auto u = b.input("u", {1, 2});
  b.layer(LayerKind::kScatter, ScatterParams{ScatterMode::kND, 0, ScatterReduction::kNone}, {d, i, u});
  auto out = b.run({{"d", f32("d", {3, 2}, {1, 2, 3, 4, 5, 6})},
                    {"i", host<int32_t>("i", DataType::kInt32, {1, 1}, {-1})},
                    {"u", f32("u", {1, 2}, {7, 8})}});
  EXPECT_EQ(floats(out.at("y0")), (std::vector<float>{1, 2, 3, 4, 7, 8}));
}

TEST(IndexKernels, GatherNdWithABatchDim) {
  // data [[[0,1],[2,3]], [[4,5],[6,7]]], indices [[1], [-2]] with batch_dims 1 -> [[2,3],[4,5]].
  Net b;
  auto d = b.input("d", {2, 2, 2});
  auto i = b.input("i", {2, 1}, DataType::kInt64);
  b.layer(LayerKind::kGather, GatherParams{0, GatherMode::kND, 1}, {d, i});
  auto out = b.run({{"d", f32("d", {2, 2, 2}, {0, 1, 2, 3, 4, 5, 6, 7})},
                    {"i", host<int64_t>("i", DataType::kInt64, {2, 1}, {1, -2})}});
  EXPECT_EQ(out.at("y0").dims, (Dims{2, 2}));
  EXPECT_EQ(floats(out.at("y0")), (std::vector<float>{2, 3, 4, 5}));
}

TEST(IndexKernels, GatherElementsOutOfRangeNamesTheLayer) {
  Net b;
  auto d = b.input("d", {2, 2});
  auto i = b.input("i", {2, 1}, DataType::kInt64);
  b.layer(LayerKind::kGather, GatherParams{1, GatherMode::kElement, 0}, {d, i});
  try {
    b.run({{"d", f32("d", {2, 2}, {1, 2, 3, 4})}, {"i", host<int64_t>("i", DataType::kInt64, {2, 1}, {1, 2})}});
    ADD_FAILURE() << "no error for index 2 of a dim of 2";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("layer 'op': index 2 out of range [-2, 2)"), std::string::npos) << e.what();
  }
}

TEST(IndexKernels, EinsumForms) {
  const HostTensor a = f32("a", {2, 2}, {1, 2, 3, 4});
  const HostTensor c = f32("c", {2, 2}, {5, 6, 7, 8});
  const std::vector<std::tuple<std::string, bool, std::vector<float>>> cases = {
      {"ij,jk->ik", true, {19, 22, 43, 50}},  // matmul
      {"ij,kj->ik", true, {17, 23, 39, 53}},  // a times c transposed
      {"ii->i", false, {1, 4}},               // diagonal
      {"ii->", false, {5}},                   // trace
      {"ij->ji", false, {1, 3, 2, 4}},        // transpose
      {"ij,ij->i", true, {17, 53}}};          // row-wise dot
  for (const auto& [eq, two, want] : cases) {
    Net b;
    std::vector<TensorId> ins = {b.input("a", {2, 2})};
    if (two) ins.push_back(b.input("c", {2, 2}));
    b.layer(LayerKind::kEinsum, EinsumParams{eq}, ins);
    TensorMap in = {{"a", a}};
    if (two) in["c"] = c;
    EXPECT_EQ(floats(b.run(in).at("y0")), want) << eq;
  }
}

TEST(IndexKernels, GridSamplePaddingModes) {
  // A 1x1x2x2 image [[1,2],[3,4]], bilinear with align_corners (x = (g+1)/2*(W-1)): the grid
  // point (0, 0) is the centre (0.5, 0.5); (-2, 0) is (-0.5, 0.5), left of the image.
  const HostTensor img = f32("x", {1, 1, 2, 2}, {1, 2, 3, 4});
  const HostTensor grid = f32("g", {1, 1, 2, 2}, {0, 0, -2, 0});
  const std::vector<std::pair<SliceMode, std::vector<float>>> want = {
      // zeros: taps x = -1 (0) and 0 at weights 0.5 / 0.5, rows 0 and 1 halves: 0.5*(0.5*1 + 0.5*3) = 1.
      {SliceMode::kFill, {2.5f, 1.0f}},
      // border: x clamped to 0 -> column 0, rows halved: 2.
      {SliceMode::kClamp, {2.5f, 2.0f}},
      // reflection over [0, 1]: -0.5 -> 0.5, the same as the centre.
      {SliceMode::kReflect, {2.5f, 2.5f}}};
  for (const auto& [m, v] : want) {
    Net b;
    auto x = b.input("x", {1, 1, 2, 2});
    auto g = b.input("g", {1, 1, 2, 2});
    b.layer(LayerKind::kGridSample, GridSampleParams{ResizeMode::kLinear, true, m}, {x, g});
    EXPECT_EQ(floats(b.run({{"x", img}, {"g", grid}}).at("y0")), v) << to_string(m);
  }
}

TEST(IndexKernels, RoiAlignAvgAndMax) {
  // Image [[1,2],[3,4]]; one sample per bin (sampling_ratio 1), 1x1 output. Box (0,0)-(1,1):
  // output_half_pixel samples the centre (0.5, 0.5): avg 2.5, max = the largest weighted corner
  // 0.25 * 4 = 1; half_pixel shifts by -0.5 and samples pixel (0, 0): 1 in both modes. Box
  // (5,5)-(6,6) samples outside the image (more than one pixel): 0.
  const std::vector<std::tuple<bool, bool, std::vector<float>>> cases = {
      {false, false, {2.5f, 0.f}}, {true, false, {1.f, 0.f}}, {false, true, {1.f, 0.f}}, {true, true, {1.f, 0.f}}};
  for (const auto& [max_mode, half_pixel, want] : cases) {
    Net b;
    auto x = b.input("x", {1, 1, 2, 2});
    auto r = b.input("r", {2, 4});
    auto i = b.input("i", {2}, DataType::kInt32);
    b.layer(LayerKind::kRoiAlign, RoiAlignParams{max_mode, half_pixel, 1, 1, 1, 1.f}, {x, r, i});
    auto out = b.run({{"x", f32("x", {1, 1, 2, 2}, {1, 2, 3, 4})},
                      {"r", f32("r", {2, 4}, {0, 0, 1, 1, 5, 5, 6, 6})},
                      {"i", host<int32_t>("i", DataType::kInt32, {2}, {0, 0})}});
    EXPECT_EQ(floats(out.at("y0")), want) << (max_mode ? "max" : "avg") << (half_pixel ? " half_pixel" : "");
  }
}

}  // namespace
