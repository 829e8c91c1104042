// Shape-value inputs (ImportOptions::input_values): int32/int64 graph inputs whose values are
// fixed at import, as TensorRT fixes an input shape tensor's values through the optimization
// profile (IOptimizationProfile::setShapeValuesV2 with min = opt = max; trtexec --shapes for a
// shape-tensor input). The input keeps its tensor (an engine input; every run checks the values,
// check_input_values) and also carries the values as a constant, so that the nodes that need
// them fold. When an import needs values that were not given, the error names the integer graph
// inputs they are computed from (InputValuesNeeded).
#include <fmt/format.h>

#include <algorithm>

#include "importer.h"

namespace tandem::onnx_detail {

namespace {

bool is_value_type(DataType t) { return t == DataType::kInt32 || t == DataType::kInt64; }

std::string join_values(const std::vector<int64_t>& v) { return fmt::format("{}", fmt::join(v, ",")); }

}  // namespace

// A dynamic 1-D input given values has as many elements as values (a scalar stays a scalar):
// the values fix its shape, as trtexec's --shapes does for a shape-tensor input.
void Importer::add_value_input_shapes(std::unordered_map<std::string, Dims>& user) const {
  for (const auto& [name, values] : opt_.input_values) {
    if (user.count(name)) continue;
    for (const auto& vi : model_.graph().input()) {
      if (vi.name() != name || !vi.type().tensor_type().has_shape()) continue;
      const auto& dims = vi.type().tensor_type().shape().dim();
      if (dims.size() == 1 && !(dims[0].has_dim_value() && dims[0].dim_value() > 0))
        user[name] = Dims{static_cast<int64_t>(values.size())};
    }
  }
}

void Importer::bind_input_values() {
  std::unordered_set<std::string> seen;
  for (const auto& [name, values] : opt_.input_values) {
    const std::string arg = fmt::format("--input-value {}:{}", name, join_values(values));
    if (!seen.insert(name).second) throw Error(fmt::format("--input-value '{}': given twice", name));
    auto it = values_.find(name);
    const bool is_input = it != values_.end() && it->second.t >= 0 && net_.tensors[it->second.t].is_input;
    if (!is_input) {
      std::vector<std::string> names;
      for (TensorId t : net_.inputs) names.push_back(net_.tensors[t].name);
      throw Error(fmt::format("{}: {} has no input '{}' (inputs: {})", arg, path_, name, fmt::join(names, ", ")));
    }
    const Tensor& t = net_.tensors[it->second.t];
    if (!is_value_type(t.type))
      throw Error(fmt::format("{}: input '{}' of {} is {}; only int32/int64 inputs take values at import (TensorRT's "
                              "input shape tensors \"can be type kINT32 or kINT64\")",
                              arg, name, path_, to_string(t.type)));
    if (volume(t.dims) != static_cast<int64_t>(values.size()))
      throw Error(fmt::format("{}: input '{}' of {} has dims {} ({} values), {} given", arg, name, path_,
                              dims_to_string(t.dims), volume(t.dims), values.size()));
    auto c = make_const(name, t.type, t.dims);
    for (size_t k = 0; k < values.size(); ++k) c->set_i(static_cast<int64_t>(k), values[k]);
    it->second.c = c;                   // folds like a constant ...
    parser_tensor_values_.insert(name);  // ... and is a tensor in the parser (no Constant layer)
    net_.model.input_values[name] = values;
  }
}

// The int32/int64 graph inputs, not fixed yet, that the tensors are computed from.
std::vector<std::string> Importer::integer_inputs_behind(const std::vector<TensorId>& tensors) const {
  std::vector<std::string> found;
  std::vector<char> seen(net_.tensors.size(), 0);
  std::vector<TensorId> stack(tensors.begin(), tensors.end());
  while (!stack.empty()) {
    const TensorId t = stack.back();
    stack.pop_back();
    if (t < 0 || seen[static_cast<size_t>(t)]) continue;
    seen[static_cast<size_t>(t)] = 1;
    const Tensor& tt = net_.tensors[t];
    if (tt.producer < 0) {
      if (tt.is_input && is_value_type(tt.type) && !net_.model.input_values.count(tt.name)) found.push_back(tt.name);
      continue;
    }
    for (TensorId in : net_.layers[tt.producer].inputs) stack.push_back(in);
  }
  std::sort(found.begin(), found.end());
  return found;
}

void Importer::fail_needing_values(const std::string& msg, const std::vector<TensorId>& runtime) const {
  const std::vector<std::string> names = integer_inputs_behind(runtime);
  if (names.empty()) fail(msg);
  std::vector<std::string> args;
  for (const std::string& n : names) args.push_back(fmt::format("--input-value {}:V,...", n));
  const std::string where = node_ ? fmt::format("{}: node '{}' ({}): ", path_, node_name_, node_->op_type())
                                  : fmt::format("{}: ", path_);
  throw InputValuesNeeded(fmt::format("{}{}; it is computed from the integer input(s) '{}': fix their values at import "
                                      "with {} (shape-value inputs, as TensorRT's shape tensors)",
                                      where, msg, fmt::join(names, "', '"), fmt::join(args, " ")),
                          names);
}

}  // namespace tandem::onnx_detail
