// Internal: the importer class (src/onnx only).
#pragma once

#include <functional>
#include <map>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "internal.h"
#include "tandem/onnx.h"

namespace tandem::onnx_detail {

// A node input: a runtime tensor, a constant known at import, or absent.
struct Value {
  TensorId t = -1;
  ConstPtr c;
  bool present() const { return t >= 0 || c; }
};

class Importer {
 public:
  Importer(std::string path, const ImportOptions& opt);
  Network run();

  // ---- used by the op importers (ops.cpp) and folders (fold.cpp) ----
  const onnx::NodeProto* node_ = nullptr;
  std::string node_name_;
  int64_t opset_ = 0;
  Network net_;

  [[noreturn]] void fail(const std::string& msg) const;
  // fail(msg), or InputValuesNeeded naming the unfixed int32/int64 graph inputs the runtime
  // tensors are computed from (shape-value inputs, input_values.cpp).
  [[noreturn]] void fail_needing_values(const std::string& msg, const std::vector<TensorId>& runtime) const;
  // Attributes.
  const onnx::AttributeProto* attr(const std::string& name) const;
  bool has_attr(const std::string& name) const { return attr(name) != nullptr; }
  int64_t attr_i(const std::string& name, int64_t def) const;
  float attr_f(const std::string& name, float def) const;
  std::string attr_s(const std::string& name, const std::string& def) const;
  std::vector<int64_t> attr_ints(const std::string& name) const;
  std::vector<float> attr_floats(const std::string& name) const;
  // Inputs.
  size_t n_in() const { return static_cast<size_t>(node_->input_size()); }
  bool has_in(size_t i) const;
  const Value& in(size_t i) const;
  TensorId tin(size_t i);                               // as a tensor (Constant layer for constants)
  ConstPtr cin(size_t i, const char* what) const;       // must be a constant
  ConstPtr cin_opt(size_t i, const char* what) const;   // constant or null when absent
  const Dims& dims(TensorId t) const { return net_.tensors[t].dims; }
  DataType dtype(TensorId t) const { return net_.tensors[t].type; }
  size_t rank(TensorId t) const { return net_.tensors[t].dims.size(); }
  int axis(int64_t a, size_t rank, const char* what = "axis") const;  // normalised, checked
  bool output_used(size_t i) const { return static_cast<int>(i) < node_->output_size() && !node_->output(static_cast<int>(i)).empty(); }

  // Layers. add() appends an unnamed layer of this node with one output and infers its shape.
  TensorId add(LayerKind k, LayerParams p, std::vector<TensorId> inputs);
  std::vector<TensorId> add_n(LayerKind k, LayerParams p, std::vector<TensorId> inputs);  // every output
  TensorId const_tensor(const ConstPtr& c);
  WeightsId weights_of(const ConstPtr& c, const Dims* reshape = nullptr);
  WeightsId new_weights(std::string name, DataType t, Dims d, const std::vector<float>& values);
  TensorId reshape(TensorId t, Dims d);
  TensorId to_rank(TensorId t, size_t r);              // prepend 1s (TensorRT broadcast Shuffle)
  void broadcast_ranks(std::vector<TensorId>& ts);
  TensorId scalar_const(float v, DataType t, size_t rank);

  std::string path_;

  // Control flow (ops_control.cpp): imports the nodes of a subgraph (a branch or one iteration of a
  // loop body) with its graph inputs bound to `inputs`; outer values stay visible. Names the
  // subgraph defines are bound only while it is imported, and its tensors and layers are named
  // `<scope>/<name>` so that every unrolled copy is distinct. Returns its graph outputs.
  std::vector<Value> import_subgraph(const onnx::GraphProto& g, const std::vector<Value>& inputs,
                                     const std::string& scope);
  const onnx::GraphProto& graph_attr(const std::string& name) const;  // a GRAPH attribute, required

 private:
  void load();
  void import_inputs();
  void add_value_input_shapes(std::unordered_map<std::string, Dims>& user) const;  // input_values.cpp
  void bind_input_values();
  std::vector<std::string> integer_inputs_behind(const std::vector<TensorId>& tensors) const;
  std::vector<int> topo_order(const onnx::GraphProto& g);
  void import_node(const onnx::NodeProto& n);
  void finish_outputs(const std::vector<TensorId>& outs);
  std::string unique_layer_name(const std::string& base);
  std::string unique_tensor_name(const std::string& base);

  ImportOptions opt_;
  std::string scope_;  // prefix of the names of a subgraph's tensors and layers ("" at the top level)
  int64_t subgraph_copies_ = 0;  // subgraphs imported so far (nested unrolling is capped)
  std::string dir_;
  std::string bytes_;
  onnx::ModelProto model_;
  std::unordered_map<std::string, Value> values_;
  std::unordered_set<std::string> layer_names_, tensor_names_;
  int64_t suffix_ = 0;
  std::unordered_map<const Const*, TensorId> const_tensors_;
  std::vector<ConstPtr> const_alive_;  // owners of the keys of const_tensors_
  std::unordered_map<const Const*, WeightsId> const_weights_;
  size_t node_first_layer_ = 0;
  std::vector<Value> cur_inputs_;
  // Layers TensorRT's ONNX parser would have added for the nodes folded so far (tandem folds
  // them, the parser keeps them): added to a layer's index in `(Unnamed Layer* N)` names.
  int64_t parser_only_layers_ = 0;
  std::unordered_set<std::string> parser_constant_layers_;  // weights the parser made a Constant layer of
  std::unordered_set<std::string> parser_tensor_values_;    // values tandem folded, tensors in the parser
  void count_parser_layers_of_folded_node();
  std::string trt_default_name(LayerKind k) const;
};

using OpFn = std::function<std::vector<TensorId>(Importer&)>;
const std::unordered_map<std::string, OpFn>& op_importers();
// Folding: computes all outputs from constant inputs; empty result = cannot fold.
using FoldFn = std::function<std::vector<ConstPtr>(Importer&)>;
const std::unordered_map<std::string, FoldFn>& op_folders();

// Q/DQ (qdq_import.cpp): the op importers and folders, and the pre-pass that removes
// QuantizeLinear -> DequantizeLinear pairs on activations, recording their scales by tensor name.
void register_qdq_ops(std::unordered_map<std::string, OpFn>& m);
void register_qdq_folders(std::unordered_map<std::string, FoldFn>& m);
void strip_qdq_pairs(onnx::GraphProto* g, const std::string& path, const std::string& dir,
                     std::map<std::string, float>* scales);

// Empty tensors (empty_tensors.cpp): every layer whose outputs are all empty becomes an empty
// Constant, Concatenation drops empty inputs, the layers that only fed them go; a layer computing a
// non-empty output from an empty input is an Error naming its node (`path` prefixes it).
void fold_empty_tensors(Network& net, const std::string& path);

}  // namespace tandem::onnx_detail
