// ONNX import: model.onnx -> Network of TensorRT-style layers with static shapes.
// No protobuf here: the protobuf types stay inside src/onnx. See docs/onnx-import.md.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tandem/network.h"
#include "tandem/shape_inference.h"
#include "tandem/host_tensor.h"

namespace tandem {

struct ImportOptions {
  // Fixed input shapes (name, dims); dims the model leaves dynamic must be given here.
  std::vector<std::pair<std::string, Dims>> shapes;
  // Shape-value inputs (TensorRT's input shape tensors, whose values an optimization profile
  // fixes with min = opt = max): (name, values) of int32/int64 graph inputs whose values are
  // fixed at import. Such an input folds like a constant wherever the import needs its value
  // (Reshape's shape, Range's bounds, a Loop's trip count, ...), stays an engine input, and every
  // run checks that it is given exactly these values (ModelInfo::input_values). CLI: --input-value.
  std::vector<std::pair<std::string, std::vector<int64_t>>> input_values;
  // Run right after import, before any analysis; net.verify() runs after the last hook.
  std::vector<std::function<void(Network&)>> hooks;
};

// Reads model.onnx (IR 3..10, default-domain opset 7..21, external data inside the model's
// folder) and maps each node to layers the way TensorRT's ONNX parser does. Shape-only and
// constant-only subgraphs are folded (ModelInfo::folded_nodes). Every error throws tandem::Error
// with one line naming the file and the node, input or option at fault.
Network import_onnx(const std::string& path, const ImportOptions& options = {});

// Reads one serialized ONNX TensorProto (.pb, as in the ONNX conformance test data).
// DOUBLE becomes kFloat, INT16/UINT16 kInt32, UINT32/UINT64 kInt64; BFLOAT16 stays kBFloat16.
HostTensor read_tensor_proto(const std::string& path);

// "name:1x3x640x640" (or "name:1,3,640,640") -> (name, dims). The name may itself contain ':'
// (the last one separates). Throws Error naming the --shape argument.
std::pair<std::string, Dims> parse_shape_arg(std::string_view arg);

// "name:3,4,-1" -> (name, {3, 4, -1}): a shape-value input's values (ImportOptions::input_values),
// in row-major order. Throws Error naming the --input-value argument.
std::pair<std::string, std::vector<int64_t>> parse_input_value_arg(std::string_view arg);

// Thrown by import_onnx when the import needs the values of integer graph inputs that were not
// given (a Range bound, a Reshape shape, a Loop trip count computed from them): `inputs` names
// them, and the message says how to fix them (--input-value NAME:V,... / input_values).
class InputValuesNeeded : public Error {
 public:
  InputValuesNeeded(const std::string& msg, std::vector<std::string> names) : Error(msg), inputs(std::move(names)) {}
  std::vector<std::string> inputs;
};

// Op types (default domain) the importer maps to layers or folds, sorted.
const std::vector<std::string>& supported_onnx_ops();
bool is_supported_onnx_op(std::string_view op_type);

// Light look at a model without importing it: op types in node order ("domain:Op" for ops of
// another domain) and the declared graph inputs (dynamic dims as -1), initializers excluded.
struct OnnxModelSummary {
  ModelInfo info;
  std::vector<std::string> op_types;
  std::vector<std::pair<std::string, Dims>> inputs;
  std::vector<std::pair<std::string, Dims>> outputs;  // declared; empty dims when undeclared
};
OnnxModelSummary summarize_onnx(const std::string& path);

// infer_shapes / infer_layer_outputs: IR shape inference, in tandem/shape_inference.h (tandem_ir),
// included above.

}  // namespace tandem
