// The CUDA integer Reduce (kernels.cu reduce_int: ArgMax/ArgMin/Hardmax reduce int64 indices) and
// the 3-D Deconvolution (executor_gemm.cpp, cuDNN's Nd descriptors), with hand-worked values.
#include <cstdint>
#include <vector>

#include "test_util.h"

using namespace tandem;
using namespace tandem::test;

namespace {

// y = Reduce(op, axes) of an integer x of the given dims (output dims yd), on the GPU.
template <class T>
std::vector<T> reduce_int(DataType dt, ReduceOp op, uint32_t axes, bool keep, Dims xd, Dims yd, std::vector<T> xv) {
  NetBuilder b;
  TensorId x = b.input("x", xd, dt);
  TensorId y = b.tensor("y", yd, dt);
  b.layer("reduce", LayerKind::kReduce, {x}, {y}, ReduceParams{op, axes, keep});
  b.output(y);
  auto out = make_cuda_executor(b.n)->run({{"x", host_t<T>("x", dt, xd, xv)}});
  return values<T>(out.at("y"));
}

// A 3-D deconvolution of one map to one map (kernel 2x2x2, stride 1) on the GPU.
std::vector<float> deconv3d(Dims xd, std::vector<float> xv, std::vector<float> w, Dims pre, Dims post, Dims yd,
                            float bias) {
  NetBuilder b;
  TensorId x = b.input("x", xd);
  TensorId y = b.tensor("y", yd);
  ConvolutionParams p;
  p.kernel = {2, 2, 2}, p.stride = {1, 1, 1}, p.dilation = {1, 1, 1};
  p.pre_padding = std::move(pre), p.post_padding = std::move(post);
  p.out_maps = 1;
  p.kernel_weights = b.weights("w", {1, 1, 2, 2, 2}, w);
  p.bias_weights = b.weights("b", {1}, {bias});
  b.layer("up3d", LayerKind::kDeconvolution, {x}, {y}, p);
  b.output(y);
  return run1(b.n, {{"x", host("x", xd, xv)}});
}

}  // namespace

TEST(CudaReduceInt, Int64MaxMinSumBeyondInt32AndFloat) {
  SKIP_WITHOUT_CUDA();
  // 3000000001 and -9000000000 are exact in neither int32 nor float (float's step there is 256+).
  const std::vector<int64_t> x = {-5, 3000000001, 7, -9000000000, -1, 4};
  const DataType i64 = DataType::kInt64;
  EXPECT_EQ(reduce_int<int64_t>(i64, ReduceOp::kMax, 1u << 1, true, {2, 3}, {2, 1}, x),
            (std::vector<int64_t>{3000000001, 4}));
  EXPECT_EQ(reduce_int<int64_t>(i64, ReduceOp::kMin, 1u << 1, false, {2, 3}, {2}, x),
            (std::vector<int64_t>{-5, -9000000000}));
  // Over axis 0: strided, one output per column.
  EXPECT_EQ(reduce_int<int64_t>(i64, ReduceOp::kMax, 1u << 0, false, {2, 3}, {3}, x),
            (std::vector<int64_t>{-5, 3000000001, 7}));
  EXPECT_EQ(reduce_int<int64_t>(i64, ReduceOp::kSum, 1u << 1, false, {2, 3}, {2}, x),
            (std::vector<int64_t>{3000000003, -8999999997}));
}

TEST(CudaReduceInt, Int32SumAndMinOverAllAxes) {
  SKIP_WITHOUT_CUDA();
  const std::vector<int32_t> x = {1, 2, 3, 4, 5, -6};
  const DataType i32 = DataType::kInt32;
  EXPECT_EQ(reduce_int<int32_t>(i32, ReduceOp::kSum, 1u << 0, false, {2, 3}, {3}, x), (std::vector<int32_t>{5, 7, -3}));
  EXPECT_EQ(reduce_int<int32_t>(i32, ReduceOp::kMin, 3u, true, {2, 3}, {1, 1}, x), (std::vector<int32_t>{-6}));
  EXPECT_EQ(reduce_int<int32_t>(i32, ReduceOp::kMax, 3u, true, {2, 3}, {1, 1}, x), (std::vector<int32_t>{5}));
}

// ArgMax as the ONNX importer decomposes it (ops_decomposed.cpp arg_extreme): Reduce MAX ->
// Equal(x, max) -> Select(mark, iota, n or -1) -> Reduce MIN (first index) or MAX (last index).
TEST(CudaReduceInt, ArgMaxTiesGiveTheFirstIndexOrTheLast) {
  SKIP_WITHOUT_CUDA();
  for (bool last : {false, true}) {
    NetBuilder b;
    TensorId x = b.input("x", {2, 3});
    TensorId m = b.tensor("m", {2, 1}), mark = b.tensor("mark", {2, 3}, DataType::kBool);
    TensorId idx = b.tensor("idx", {2, 3}, DataType::kInt64), y = b.tensor("y", {2}, DataType::kInt64);
    TensorId iota = b.constant("iota", DataType::kInt64, {1, 3},
                               b.weights_t<int64_t>("iota_w", DataType::kInt64, {1, 3}, {0, 1, 2}));
    TensorId none = b.constant("none", DataType::kInt64, {1, 1},
                               b.weights_t<int64_t>("none_w", DataType::kInt64, {1, 1}, {last ? -1 : 3}));
    b.layer("max", LayerKind::kReduce, {x}, {m}, ReduceParams{ReduceOp::kMax, 1u << 1, true});
    b.layer("mark", LayerKind::kElementWise, {x, m}, {mark}, ElementWiseParams{ElementWiseOp::kEqual});
    b.layer("select", LayerKind::kSelect, {mark, iota, none}, {idx});
    b.layer("arg", LayerKind::kReduce, {idx}, {y}, ReduceParams{last ? ReduceOp::kMax : ReduceOp::kMin, 1u << 1, false});
    b.output(y);
    // Rows {1, 5, 5} and {7, 2, 7}: the max ties at 1, 2 and at 0, 2.
    auto out = make_cuda_executor(b.n)->run({{"x", host("x", {2, 3}, {1, 5, 5, 7, 2, 7})}});
    EXPECT_EQ(values<int64_t>(out.at("y")), last ? (std::vector<int64_t>{2, 2}) : (std::vector<int64_t>{1, 0}))
        << (last ? "select_last_index" : "first index");
  }
}

TEST(CudaDeconvolution3d, OverlappingWindowsByHand) {
  SKIP_WITHOUT_CUDA();
  // x = 1..8 over 1x1x2x2x2, kernel of ones, stride 1: y[d,h,w] sums the x whose 2x2x2 window
  // covers (d, h, w): corners see one x, the centre all eight (36). Bias 0.5 on every output.
  const std::vector<float> x = {1, 2, 3, 4, 5, 6, 7, 8}, ones(8, 1.f);
  std::vector<float> want = {1, 3, 2, 4, 10, 6, 3, 7, 4, 6, 14, 8, 16, 36, 20, 10, 22, 12, 5, 11, 6, 12, 26, 14, 7, 15, 8};
  for (float& v : want) v += 0.5f;
  expect_near(deconv3d({1, 1, 2, 2, 2}, x, ones, {0, 0, 0}, {0, 0, 0}, {1, 1, 3, 3, 3}, 0.5f), want);
  // Padding 1 before, 0 after on each axis: the full 3x3x3 output cropped to [1:3] per axis.
  expect_near(deconv3d({1, 1, 2, 2, 2}, x, ones, {1, 1, 1}, {0, 0, 0}, {1, 1, 2, 2, 2}, 0.f),
              {36, 20, 22, 12, 26, 14, 15, 8});
}

TEST(CudaDeconvolution3d, OneInputSpreadsTheKernelUnflipped) {
  SKIP_WITHOUT_CUDA();
  // One input value 2: y[a,b,c] = 2 * w[a,b,c] (a transposed convolution does not flip the kernel).
  expect_near(deconv3d({1, 1, 1, 1, 1}, {2}, {1, 2, 3, 4, 5, 6, 7, 8}, {0, 0, 0}, {0, 0, 0}, {1, 1, 2, 2, 2}, 0.f),
              {2, 4, 6, 8, 10, 12, 14, 16});
}
