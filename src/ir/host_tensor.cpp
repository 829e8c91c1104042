#include "tandem/host_tensor.h"

namespace tandem {

HostTensor HostTensor::zeros(std::string name, DataType type, Dims dims) {
  HostTensor t;
  t.name = std::move(name);
  t.type = type;
  t.dims = std::move(dims);
  t.data.assign(static_cast<size_t>(volume(t.dims)) * element_size(type), 0);
  return t;
}

namespace {
std::string join_values(const std::vector<int64_t>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s;
}
}  // namespace

HostTensor input_values_tensor(const std::string& name, DataType type, const Dims& dims,
                               const std::vector<int64_t>& values) {
  HostTensor h = HostTensor::zeros(name, type, dims);
  for (size_t k = 0; k < values.size() && int64_t(k) < h.count(); ++k) {
    if (type == DataType::kInt64) reinterpret_cast<int64_t*>(h.data.data())[k] = values[k];
    else if (type == DataType::kInt32) reinterpret_cast<int32_t*>(h.data.data())[k] = static_cast<int32_t>(values[k]);
  }
  return h;
}

void check_input_values(const std::map<std::string, std::vector<int64_t>>& fixed, const TensorMap& inputs,
                        std::string_view where) {
  for (const auto& [name, want] : fixed) {
    auto it = inputs.find(name);
    if (it == inputs.end()) continue;
    const HostTensor& h = it->second;
    std::vector<int64_t> got;
    if (h.type == DataType::kInt64 && h.data.size() == size_t(h.count()) * 8)
      got.assign(reinterpret_cast<const int64_t*>(h.data.data()), reinterpret_cast<const int64_t*>(h.data.data()) + h.count());
    else if (h.type == DataType::kInt32 && h.data.size() == size_t(h.count()) * 4)
      got.assign(reinterpret_cast<const int32_t*>(h.data.data()), reinterpret_cast<const int32_t*>(h.data.data()) + h.count());
    else
      throw Error(std::string(where) + ": input '" + name + "' is a shape-value input (fixed at import with --input-value " +
                  name + ":" + join_values(want) + "): expected int32/int64 values, got " + std::string(to_string(h.type)) + " " +
                  dims_to_string(h.dims));
    if (got != want)
      throw Error(std::string(where) + ": input '" + name + "' is a shape-value input, fixed at import to " +
                  join_values(want) + " (--input-value " + name + ":" + join_values(want) + "); this run gives " +
                  join_values(got) + ": rebuild with the new values");
  }
}

}  // namespace tandem
