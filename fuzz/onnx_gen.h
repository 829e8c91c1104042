// Random valid ONNX graphs of the ops tandem imports, for structure-aware fuzzing (the choices come
// from the fuzzer's bytes) and for differential testing against ONNX Runtime (the choices come
// from a seeded generator). Models are opset 13, float32, one NCHW input, static shapes.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace tandem::fuzz {

// Where the generator's decisions come from: pick(n) returns a value in [0, n).
using Chooser = std::function<uint32_t(uint32_t n)>;

struct GeneratedModel {
  std::string bytes;                // serialized ModelProto
  std::string input_name = "x";
  std::vector<int64_t> input_dims;  // [1, C, H, W]
  std::vector<std::string> ops;     // op types in node order
};

// max_nodes: upper bound on the number of nodes (at least one node is made).
GeneratedModel generate_model(const Chooser& pick, int max_nodes = 12);

}  // namespace tandem::fuzz
