// Memory limits: the liveness estimate on a hand-built chain, the cap's parsing, and the one-line
// refusal.
#include <gtest/gtest.h>

#include <cstdlib>

#include "tandem/limits.h"

using namespace tandem;

namespace {

// x [1,1,100,100] -> a -> b -> c (outputs c), each activation 40,000 bytes; a also feeds c.
Network chain() {
  Network n;
  auto t = [&](const std::string& name) { return n.add_tensor({name, DataType::kFloat, {1, 1, 100, 100}}); };
  TensorId x = t("x"), a = t("a"), b = t("b"), c = t("c");
  n.tensors[x].is_input = true;
  n.inputs.push_back(x);
  n.add_layer({"la", LayerKind::kActivation, {x}, {a}, ActivationParams{}});
  n.add_layer({"lb", LayerKind::kActivation, {a}, {b}, ActivationParams{}});
  n.add_layer({"lc", LayerKind::kElementWise, {a, b}, {c}, ElementWiseParams{}});
  n.tensors[c].is_output = true;
  n.outputs.push_back(c);
  return n;
}

}  // namespace

TEST(MemoryLimits, PeakFollowsLiveness) {
  MemoryEstimate e = estimate_memory(chain());
  // At lc: x is dead (last read by la), a, b and c are live: 3 x 40,000 bytes.
  EXPECT_EQ(e.peak_activation_bytes, 120000u);
  EXPECT_EQ(e.largest_bytes, 40000u);
}

TEST(MemoryLimits, CapFromEnvironmentAndRefusal) {
  ::setenv("TANDEM_MEMORY_CAP", "100000", 1);
  EXPECT_EQ(memory_cap(0), 100000u);
  try {
    check_memory_cap(chain(), "m.onnx", memory_cap(0));
    FAIL() << "expected a refusal";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "m.onnx: its tensors need 0 MiB at the peak (largest: 'a', 0 MiB), over the memory cap of 0 MiB "
              "(set TANDEM_MEMORY_CAP, e.g. 64GiB, to allow more)");
  }
  ::setenv("TANDEM_MEMORY_CAP", "2GiB", 1);
  EXPECT_EQ(memory_cap(0), uint64_t{2} << 30);
  EXPECT_NO_THROW(check_memory_cap(chain(), "m.onnx", memory_cap(0)));
  ::setenv("TANDEM_MEMORY_CAP", "lots", 1);
  EXPECT_THROW(memory_cap(0), Error);
  ::unsetenv("TANDEM_MEMORY_CAP");
  // Default: at least 4 GiB for a small file, never more than the machine has.
  EXPECT_GE(memory_cap(1000), std::min<uint64_t>(uint64_t{4} << 30, memory_cap(uint64_t{1} << 40)));
}
