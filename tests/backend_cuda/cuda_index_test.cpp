// The CUDA kernels of issue 16's index and sampling layers (kernels_index.cu) on cases ONNX's
// node tests leave out, with hand-worked values (the same the CPU kernels are held to in
// tests/conformance/index_kernels_test.cpp): TopK ties, scatter duplicates under each reduction
// and duplicate ScatterND tuples (the last wins), int32 scatter reductions, GatherND with a batch
// dim and a negative index, Einsum's diagonal/trace/contraction forms, GridSample's padding
// modes, RoiAlign's max mode, and a TopK row longer than one thread block.
#include <cmath>
#include <tuple>

#include "tandem/shape_inference.h"
#include "test_util.h"

using namespace tandem;
using namespace tandem::test;

namespace {

// One layer over the given inputs, its outputs (shapes inferred) the network's outputs y0, y1...
std::vector<TensorId> one_layer(NetBuilder& b, LayerKind k, LayerParams p, std::vector<TensorId> ins, int outs = 1) {
  std::vector<TensorId> o;
  for (int i = 0; i < outs; ++i) o.push_back(b.tensor("y" + std::to_string(i), {1}));
  b.layer("op", k, std::move(ins), o, std::move(p));
  infer_shapes(b.n);
  for (TensorId t : o) b.output(t);
  b.n.verify();
  return o;
}

TensorMap run_all(const Network& n, const TensorMap& in) { return make_cuda_executor(n)->run(in); }

TEST(CudaIndex, TopKTiesKeepTheLowerIndexFirst) {
  SKIP_WITHOUT_CUDA();
  for (TopKOp op : {TopKOp::kMax, TopKOp::kMin}) {
    NetBuilder b;
    auto x = b.input("x", {2, 4});
    one_layer(b, LayerKind::kTopK, TopKParams{op, 3, 1u << 1}, {x}, 2);
    auto out = run_all(b.n, {{"x", host("x", {2, 4}, {1, 3, 3, 0, 5, 5, 5, 5})}});
    const bool mx = op == TopKOp::kMax;
    EXPECT_EQ(values(out.at("y0")), mx ? (std::vector<float>{3, 3, 1, 5, 5, 5}) : (std::vector<float>{0, 1, 3, 5, 5, 5}));
    EXPECT_EQ(values<int32_t>(out.at("y1")),
              mx ? (std::vector<int32_t>{1, 2, 0, 0, 1, 2}) : (std::vector<int32_t>{3, 0, 1, 0, 1, 2}));
  }
}

TEST(CudaIndex, TopKOverALongRow) {
  SKIP_WITHOUT_CUDA();
  // 1000 values v[j] = (j * 37) % 1000 (a permutation): the 3 largest are 999, 998, 997 at the
  // j with j * 37 = v (mod 1000): 37^-1 = 973 (mod 1000), j = v * 973 % 1000.
  std::vector<float> v(1000);
  for (int j = 0; j < 1000; ++j) v[size_t(j)] = float((j * 37) % 1000);
  NetBuilder b;
  auto x = b.input("x", {1, 1000});
  one_layer(b, LayerKind::kTopK, TopKParams{TopKOp::kMax, 3, 1u << 1}, {x}, 2);
  auto out = run_all(b.n, {{"x", host("x", {1, 1000}, v)}});
  EXPECT_EQ(values(out.at("y0")), (std::vector<float>{999, 998, 997}));
  EXPECT_EQ(values<int32_t>(out.at("y1")), (std::vector<int32_t>{999 * 973 % 1000, 998 * 973 % 1000, 997 * 973 % 1000}));
}

TEST(CudaIndex, ScatterElementsDuplicatesUnderEachReduction) {
  SKIP_WITHOUT_CUDA();
  // data [1, 2, 3, 4], indices [1, 1, -1], updates [10, 20, 30] along axis 0.
  const std::vector<std::pair<ScatterReduction, std::vector<float>>> want = {
      {ScatterReduction::kNone, {1, 20, 3, 30}}, {ScatterReduction::kAdd, {1, 32, 3, 34}},
      {ScatterReduction::kMul, {1, 400, 3, 120}}, {ScatterReduction::kMax, {1, 20, 3, 30}},
      {ScatterReduction::kMin, {1, 2, 3, 4}}};
  for (const auto& [r, v] : want) {
    for (DataType dt : {DataType::kFloat, DataType::kInt32}) {
      NetBuilder b;
      auto d = b.input("d", {4}, dt);
      auto i = b.input("i", {3}, DataType::kInt64);
      auto u = b.input("u", {3}, dt);
      one_layer(b, LayerKind::kScatter, ScatterParams{ScatterMode::kElement, 0, r}, {d, i, u});
      TensorMap in = {{"i", host_t<int64_t>("i", DataType::kInt64, {3}, {1, 1, -1})}};
      if (dt == DataType::kFloat) {
        in["d"] = host("d", {4}, {1, 2, 3, 4});
        in["u"] = host("u", {3}, {10, 20, 30});
        EXPECT_EQ(values(run_all(b.n, in).at("y0")), v) << to_string(r);
      } else {
        in["d"] = host_t<int32_t>("d", dt, {4}, {1, 2, 3, 4});
        in["u"] = host_t<int32_t>("u", dt, {3}, {10, 20, 30});
        std::vector<int32_t> vi(v.begin(), v.end());
        EXPECT_EQ(values<int32_t>(run_all(b.n, in).at("y0")), vi) << to_string(r) << " int32";
      }
    }
  }
}

TEST(CudaIndex, ScatterNdDuplicateTuplesLastWins) {
  SKIP_WITHOUT_CUDA();
  // Rows 2, 0, -1 (= 2) of a [3, 2] data: the third update replaces the first.
  NetBuilder b;
  auto d = b.input("d", {3, 2});
  auto i = b.input("i", {3, 1}, DataType::kInt32);
  auto u = b.input("u", {3, 2});
  one_layer(b, LayerKind::kScatter, ScatterParams{ScatterMode::kND, 0, ScatterReduction::kNone}, {d, i, u});
  auto out = run_all(b.n, {{"d", host("d", {3, 2}, {1, 2, 3, 4, 5, 6})},
                           {"i", host_t<int32_t>("i", DataType::kInt32, {3, 1}, {2, 0, -1})},
                           {"u", host("u", {3, 2}, {7, 8, 9, 10, 11, 12})}});
  EXPECT_EQ(values(out.at("y0")), (std::vector<float>{9, 10, 3, 4, 11, 12}));
}

TEST(CudaIndex, GatherNdWithABatchDim) {
  SKIP_WITHOUT_CUDA();
  // data [[[0,1],[2,3]], [[4,5],[6,7]]], indices [[1], [-2]] with batch_dims 1 -> [[2,3],[4,5]].
  NetBuilder b;
  auto d = b.input("d", {2, 2, 2});
  auto i = b.input("i", {2, 1}, DataType::kInt64);
  one_layer(b, LayerKind::kGather, GatherParams{0, GatherMode::kND, 1}, {d, i});
  auto out = run_all(b.n, {{"d", host("d", {2, 2, 2}, {0, 1, 2, 3, 4, 5, 6, 7})},
                           {"i", host_t<int64_t>("i", DataType::kInt64, {2, 1}, {1, -2})}});
  EXPECT_EQ(out.at("y0").dims, (Dims{2, 2}));
  EXPECT_EQ(values(out.at("y0")), (std::vector<float>{2, 3, 4, 5}));
}

TEST(CudaIndex, EinsumForms) {
  SKIP_WITHOUT_CUDA();
  const std::vector<std::tuple<std::string, bool, std::vector<float>>> cases = {
      {"ij,jk->ik", true, {19, 22, 43, 50}}, {"ij,kj->ik", true, {17, 23, 39, 53}}, {"ii->i", false, {1, 4}},
      {"ii->", false, {5}}, {"ij->ji", false, {1, 3, 2, 4}}, {"ij,ij->i", true, {17, 53}}};
  for (const auto& [eq, two, want] : cases) {
    NetBuilder b;
    std::vector<TensorId> ins = {b.input("a", {2, 2})};
    if (two) ins.push_back(b.input("c", {2, 2}));
    one_layer(b, LayerKind::kEinsum, EinsumParams{eq}, ins);
    TensorMap in = {{"a", host("a", {2, 2}, {1, 2, 3, 4})}};
    if (two) in["c"] = host("c", {2, 2}, {5, 6, 7, 8});
    EXPECT_EQ(values(run_all(b.n, in).at("y0")), want) << eq;
  }
}

TEST(CudaIndex, GridSamplePaddingModes) {
  SKIP_WITHOUT_CUDA();
  // Image [[1,2],[3,4]], bilinear, align_corners: grid (0,0) is the centre; (-2,0) is x = -0.5.
  const std::vector<std::pair<SliceMode, std::vector<float>>> want = {
      {SliceMode::kFill, {2.5f, 1.0f}}, {SliceMode::kClamp, {2.5f, 2.0f}}, {SliceMode::kReflect, {2.5f, 2.5f}}};
  for (const auto& [m, v] : want) {
    NetBuilder b;
    auto x = b.input("x", {1, 1, 2, 2});
    auto g = b.input("g", {1, 1, 2, 2});
    one_layer(b, LayerKind::kGridSample, GridSampleParams{ResizeMode::kLinear, true, m}, {x, g});
    auto out = run_all(b.n, {{"x", host("x", {1, 1, 2, 2}, {1, 2, 3, 4})}, {"g", host("g", {1, 1, 2, 2}, {0, 0, -2, 0})}});
    EXPECT_EQ(values(out.at("y0")), v) << to_string(m);
  }
}

TEST(CudaIndex, RoiAlignAvgAndMax) {
  SKIP_WITHOUT_CUDA();
  // One sample per bin, 1x1 output; box (0,0)-(1,1) and a box outside the image (0).
  const std::vector<std::tuple<bool, bool, std::vector<float>>> cases = {
      {false, false, {2.5f, 0.f}}, {true, false, {1.f, 0.f}}, {false, true, {1.f, 0.f}}, {true, true, {1.f, 0.f}}};
  for (const auto& [max_mode, half_pixel, want] : cases) {
    NetBuilder b;
    auto x = b.input("x", {1, 1, 2, 2});
    auto r = b.input("r", {2, 4});
    auto i = b.input("i", {2}, DataType::kInt32);
    one_layer(b, LayerKind::kRoiAlign, RoiAlignParams{max_mode, half_pixel, 1, 1, 1, 1.f}, {x, r, i});
    auto out = run_all(b.n, {{"x", host("x", {1, 1, 2, 2}, {1, 2, 3, 4})},
                             {"r", host("r", {2, 4}, {0, 0, 1, 1, 5, 5, 6, 6})},
                             {"i", host_t<int32_t>("i", DataType::kInt32, {2}, {0, 0})}});
    EXPECT_EQ(values(out.at("y0")), want) << (max_mode ? "max" : "avg") << (half_pixel ? " half_pixel" : "");
  }
}

}  // namespace
