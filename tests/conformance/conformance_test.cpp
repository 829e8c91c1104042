// ONNX's node tests on the CPU backend (default options: oneDNN, fused), each status checked
// against tests/conformance/expected.tsv. The runner and the rules: conformance_runner.h.
#include "conformance_runner.h"

using namespace tandem;

TEST(Conformance, OnnxNodeTestsOnCpuBackend) {
  conformance::run_and_check("cpu", [](const Network& net) { return make_cpu_executor(net); }, "");
}
