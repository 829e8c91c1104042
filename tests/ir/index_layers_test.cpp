// Shape and type inference of issue 16's layers: Gather ELEMENT/ND, Scatter, TopK, Einsum,
// GridSample (hand-worked dims from the ONNX operator definitions), and their refusals.
#include <gtest/gtest.h>

#include "tandem/shape_inference.h"

using namespace tandem;

namespace {

struct OneLayer {
  Network n;
  TensorId in(Dims d, DataType t = DataType::kFloat) { return n.add_tensor({"t" + std::to_string(n.tensors.size()), t, std::move(d)}); }
  std::vector<std::pair<Dims, DataType>> infer(LayerKind k, LayerParams p, std::vector<TensorId> ins) {
    Layer l;
    l.name = "L";
    l.kind = k;
    l.inputs = std::move(ins);
    l.params = std::move(p);
    return infer_layer_outputs(n, l);
  }
};

TEST(IndexLayers, GatherElementOutputIsTheIndicesShape) {
  OneLayer b;
  auto r = b.infer(LayerKind::kGather, GatherParams{1, GatherMode::kElement, 0},
                   {b.in({3, 4, 5}), b.in({3, 2, 5}, DataType::kInt64)});
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].first, (Dims{3, 2, 5}));
  EXPECT_EQ(r[0].second, DataType::kFloat);
  EXPECT_THROW(b.infer(LayerKind::kGather, GatherParams{1, GatherMode::kElement, 0},
                       {b.in({3, 4, 5}), b.in({3, 2}, DataType::kInt64)}),
               Error);
}

TEST(IndexLayers, GatherNdDims) {
  OneLayer b;
  // ONNX GatherND example 5: data [2,2,2], indices [2,1] with batch_dims 1 -> [2,2].
  auto r = b.infer(LayerKind::kGather, GatherParams{0, GatherMode::kND, 1},
                   {b.in({2, 2, 2}), b.in({2, 1}, DataType::kInt64)});
  EXPECT_EQ(r[0].first, (Dims{2, 2}));
  // No batch dims: indices [4,3,2] pick 2-tuples of data [5,6,7] -> [4,3,7].
  r = b.infer(LayerKind::kGather, GatherParams{0, GatherMode::kND, 0}, {b.in({5, 6, 7}), b.in({4, 3, 2}, DataType::kInt32)});
  EXPECT_EQ(r[0].first, (Dims{4, 3, 7}));
  // Tuples longer than the data's rank.
  EXPECT_THROW(b.infer(LayerKind::kGather, GatherParams{0, GatherMode::kND, 0}, {b.in({5, 6}), b.in({4, 3}, DataType::kInt32)}),
               Error);
}

TEST(IndexLayers, ScatterKeepsTheDataShapeAndChecksUpdates) {
  OneLayer b;
  auto r = b.infer(LayerKind::kScatter, ScatterParams{ScatterMode::kND, 0, ScatterReduction::kNone},
                   {b.in({4, 4, 4}), b.in({2, 1}, DataType::kInt64), b.in({2, 4, 4})});
  EXPECT_EQ(r[0].first, (Dims{4, 4, 4}));
  EXPECT_THROW(b.infer(LayerKind::kScatter, ScatterParams{ScatterMode::kND, 0, ScatterReduction::kNone},
                       {b.in({4, 4, 4}), b.in({2, 1}, DataType::kInt64), b.in({2, 4})}),
               Error);
  r = b.infer(LayerKind::kScatter, ScatterParams{ScatterMode::kElement, 1, ScatterReduction::kAdd},
              {b.in({3, 3}), b.in({1, 2}, DataType::kInt64), b.in({1, 2})});
  EXPECT_EQ(r[0].first, (Dims{3, 3}));
}

TEST(IndexLayers, TopKHasValuesAndInt32Indices) {
  OneLayer b;
  auto r = b.infer(LayerKind::kTopK, TopKParams{TopKOp::kMax, 3, 1u << 1}, {b.in({3, 4})});
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].first, (Dims{3, 3}));
  EXPECT_EQ(r[0].second, DataType::kFloat);
  EXPECT_EQ(r[1].first, (Dims{3, 3}));
  EXPECT_EQ(r[1].second, DataType::kInt32);
  EXPECT_THROW(b.infer(LayerKind::kTopK, TopKParams{TopKOp::kMax, 5, 1u << 1}, {b.in({3, 4})}), Error);
  EXPECT_THROW(b.infer(LayerKind::kTopK, TopKParams{TopKOp::kMin, 1, 3u}, {b.in({3, 4})}), Error);
}

TEST(IndexLayers, EinsumDims) {
  OneLayer b;
  EXPECT_EQ(b.infer(LayerKind::kEinsum, EinsumParams{"bij,bjk->bik"}, {b.in({5, 2, 3}), b.in({5, 3, 4})})[0].first,
            (Dims{5, 2, 4}));
  EXPECT_EQ(b.infer(LayerKind::kEinsum, EinsumParams{"ii->i"}, {b.in({4, 4})})[0].first, (Dims{4}));
  EXPECT_EQ(b.infer(LayerKind::kEinsum, EinsumParams{"i,i->"}, {b.in({5}), b.in({5})})[0].first, (Dims{}));
  // A label with two sizes; an implicit equation (expanded at import, not here).
  EXPECT_THROW(b.infer(LayerKind::kEinsum, EinsumParams{"ij,jk->ik"}, {b.in({2, 3}), b.in({4, 5})}), Error);
  EXPECT_THROW(b.infer(LayerKind::kEinsum, EinsumParams{"ij,jk"}, {b.in({2, 3}), b.in({3, 5})}), Error);
}

TEST(IndexLayers, GridSampleDims) {
  OneLayer b;
  EXPECT_EQ(b.infer(LayerKind::kGridSample, GridSampleParams{}, {b.in({1, 3, 4, 4}), b.in({1, 6, 6, 2})})[0].first,
            (Dims{1, 3, 6, 6}));
  EXPECT_THROW(b.infer(LayerKind::kGridSample, GridSampleParams{}, {b.in({1, 3, 4, 4}), b.in({1, 6, 6, 3})}), Error);
}

TEST(IndexLayers, RoiAlignDims) {
  OneLayer b;
  EXPECT_EQ(b.infer(LayerKind::kRoiAlign, RoiAlignParams{false, true, 5, 6, 2, 0.5f},
                    {b.in({2, 3, 10, 10}), b.in({7, 4}), b.in({7}, DataType::kInt64)})[0].first,
            (Dims{7, 3, 5, 6}));
  EXPECT_THROW(b.infer(LayerKind::kRoiAlign, RoiAlignParams{}, {b.in({2, 3, 10, 10}), b.in({7, 4}), b.in({6}, DataType::kInt64)}),
               Error);
}

}  // namespace
