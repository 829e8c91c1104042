// ONNX's node tests on the CUDA backend: the same runner and the same expected.tsv as the CPU run,
// with the CUDA backend's differences listed, each with its reason, in expected_cuda.tsv.
// Skips visibly without a device ("no CUDA device: ... skipped"), as tests/backend_cuda does.
#include "conformance_runner.h"
#include "tandem/cuda.h"

using namespace tandem;

TEST(Conformance, OnnxNodeTestsOnCudaBackend) {
  std::string why;
  if (!cuda_available(&why)) GTEST_SKIP() << why << ": skipped";
  conformance::run_and_check("cuda", [](const Network& net) { return make_cuda_executor(net); },
                             "expected_cuda.tsv");
}
