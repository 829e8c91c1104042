// HostTensor: a dense, row-major tensor in host memory, the currency of every runtime API
// (executors, calibration, .npy and TensorProto files). Part of the IR library.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "tandem/types.h"

namespace tandem {

// A dense, row-major tensor in host memory.
struct HostTensor {
  std::string name;
  DataType type = DataType::kFloat;
  Dims dims;
  std::vector<uint8_t> data;

  static HostTensor zeros(std::string name, DataType type, Dims dims);
  int64_t count() const { return volume(dims); }
  const float* f32() const { return reinterpret_cast<const float*>(data.data()); }
  float* f32() { return reinterpret_cast<float*>(data.data()); }
};
using TensorMap = std::map<std::string, HostTensor>;

// Shape-value inputs (ModelInfo::input_values, fixed at import like TensorRT's shape tensors):
// throws Error naming the first such input of `inputs` that is not int32/int64 or whose values
// differ from the fixed ones; `where` starts the message. An absent input is left to the
// caller: the backends feed a shape-value input that a run leaves out with its fixed values, so
// data sources (calibration batchers, `compare`) give only the data inputs.
void check_input_values(const std::map<std::string, std::vector<int64_t>>& fixed, const TensorMap& inputs,
                        std::string_view where);
// A shape-value input's tensor (int32 or int64 `type`) holding its fixed values, for callers that
// make inputs themselves (the builder's timing runs, `tandem run`'s defaults).
HostTensor input_values_tensor(const std::string& name, DataType type, const Dims& dims,
                               const std::vector<int64_t>& values);

}  // namespace tandem
