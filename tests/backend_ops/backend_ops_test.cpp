// The cross-backend op test on the CPU backend: default options (oneDNN, fusion) against the
// plain-loop reference, for every LayerKind over op_cases.h's grid, in FP32, FP16 and INT8.
// The same source, built with TANDEM_OPS_CUDA, tests the CUDA backend (backend_ops_cuda_test).
#include <set>
#include <sstream>

#include "backend_ops.h"
#ifdef TANDEM_OPS_CUDA
#include "tandem/cuda.h"
#endif

using namespace tandem;
using namespace tandem::ops_test;

namespace {

BackendUnderTest backend_under_test() {
#ifdef TANDEM_OPS_CUDA
  // Read from a run on an NVIDIA H200 (2026-11-30): layers the CUDA backend refuses to build.
  // (Two bugs this test found are fixed, not listed: Resize with ALIGN_CORNERS and model scales
  // below 1 divided by the rounded output size; MAX pooling of a window wholly in the padding gave
  // -FLT_MAX where the reference gives -inf.)
  const std::string unsupported = "the CUDA backend refuses to build it: ";
  return {"cuda",
          [](const Network& n, const ExecOptions& o) { return make_cuda_executor(n, o); },
          {{"Convolution 1-d ", unsupported + "2-D convolution over NCHW only"},
           {"Convolution 3-d ", unsupported + "2-D convolution over NCHW only"},
           {"MatrixMultiply N N 1x2x3x17 ", unsupported + "batch broadcast all-or-one only"},
           {"MatrixMultiply N T 1x2x3x17 ", unsupported + "batch broadcast all-or-one only"},
           {"MatrixMultiply T N 1x2x17x3 ", unsupported + "batch broadcast all-or-one only"},
           {"MatrixMultiply T T 1x2x17x3 ", unsupported + "batch broadcast all-or-one only"},
           {"Resize CUBIC ", unsupported + "no cubic Resize kernel"},
           {"Unary ABS int32 ", unsupported + "Unary on fp32 only"},
           {"Unary NEG int32 ", unsupported + "Unary on fp32 only"},
           {"Unary SIGN int32 ", unsupported + "Unary on fp32 only"}}};
#else
  return {"cpu", [](const Network& n, const ExecOptions& o) { return make_cpu_executor(n, o); }, {}};
#endif
}

// Every value of E appears as a word of some label of `kind`'s cases.
template <class E>
void expect_every_value_covered(LayerKind kind) {
  std::set<std::string> words;
  for (const OpCase& c : cases_for(kind)) {
    std::istringstream ss(c.label);
    for (std::string w; ss >> w;) words.insert(w);
  }
  for (E v : all_values<E>())
    EXPECT_TRUE(words.count(std::string(to_string(v))))
        << to_string(kind) << ": no case covers " << to_string(v) << " (add one to tests/backend_ops/op_cases.h)";
}

}  // namespace

TEST(BackendOps, EveryLayerKindHasCases) {
  for (int k = 0; k < kLayerKindCount; ++k)
    EXPECT_FALSE(cases_for(LayerKind(k)).empty()) << to_string(LayerKind(k)) << " has no case in op_cases.h";
}

TEST(BackendOps, EveryOperationOfEachKindHasCases) {
  EXPECT_EQ(all_values<ActivationType>().size(), 14u);
  EXPECT_EQ(all_values<ElementWiseOp>().size(), 14u);
  EXPECT_EQ(all_values<UnaryOp>().size(), 23u);
  expect_every_value_covered<ActivationType>(LayerKind::kActivation);
  expect_every_value_covered<ElementWiseOp>(LayerKind::kElementWise);
  expect_every_value_covered<UnaryOp>(LayerKind::kUnary);
  expect_every_value_covered<ReduceOp>(LayerKind::kReduce);
  expect_every_value_covered<PoolingType>(LayerKind::kPooling);
  expect_every_value_covered<ScaleMode>(LayerKind::kScale);
  expect_every_value_covered<SliceMode>(LayerKind::kSlice);
  expect_every_value_covered<ResizeMode>(LayerKind::kResize);
  expect_every_value_covered<ResizeCoordinateTransform>(LayerKind::kResize);
  expect_every_value_covered<ResizeSelector>(LayerKind::kResize);
  expect_every_value_covered<ResizeRounding>(LayerKind::kResize);
}

class BackendOpsKind : public ::testing::TestWithParam<int> {};

TEST_P(BackendOpsKind, MatchesCpuReference) {
#ifdef TANDEM_OPS_CUDA
  std::string why;
  if (!cuda_available(&why)) GTEST_SKIP() << why << ": skipped";
#endif
  check_kind(LayerKind(GetParam()), backend_under_test());
}

INSTANTIATE_TEST_SUITE_P(AllKinds, BackendOpsKind, ::testing::Range(0, kLayerKindCount), kind_param_name);
