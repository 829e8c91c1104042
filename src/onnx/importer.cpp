// ONNX model -> Network: loading, inputs, topological order, naming, outputs.
// Op mappings live in ops.cpp, import-time folding in fold.cpp.
#include "importer.h"

#include <algorithm>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <optional>
#include <queue>

#include "tandem/limits.h"

namespace tandem {
namespace onnx_detail {

namespace fs = std::filesystem;

Importer::Importer(std::string path, const ImportOptions& opt) : path_(std::move(path)), opt_(opt) {}

void Importer::fail(const std::string& msg) const {
  if (node_)
    throw Error(fmt::format("{}: node '{}' ({}): {}", path_, node_name_, node_->op_type(), msg));
  throw Error(fmt::format("{}: {}", path_, msg));
}

// ---- attributes ------------------------------------------------------------------------------
const onnx::AttributeProto* Importer::attr(const std::string& name) const {
  for (const auto& a : node_->attribute())
    if (a.name() == name) return &a;
  return nullptr;
}

static const char* attr_type_name(int t) {
  switch (t) {
    case onnx::AttributeProto::FLOAT: return "float";
    case onnx::AttributeProto::INT: return "int";
    case onnx::AttributeProto::STRING: return "string";
    case onnx::AttributeProto::TENSOR: return "tensor";
    case onnx::AttributeProto::FLOATS: return "floats";
    case onnx::AttributeProto::INTS: return "ints";
    default: return "other";
  }
}

int64_t Importer::attr_i(const std::string& name, int64_t def) const {
  const auto* a = attr(name);
  if (!a) return def;
  if (a->type() != onnx::AttributeProto::INT && !(a->type() == 0 && a->has_i()))
    fail(fmt::format("attribute '{}' is {}, expected int", name, attr_type_name(a->type())));
  return a->i();
}
float Importer::attr_f(const std::string& name, float def) const {
  const auto* a = attr(name);
  if (!a) return def;
  if (a->type() == onnx::AttributeProto::INT) return static_cast<float>(a->i());
  if (a->type() != onnx::AttributeProto::FLOAT && !(a->type() == 0 && a->has_f()))
    fail(fmt::format("attribute '{}' is {}, expected float", name, attr_type_name(a->type())));
  return a->f();
}
std::string Importer::attr_s(const std::string& name, const std::string& def) const {
  const auto* a = attr(name);
  if (!a) return def;
  if (a->type() != onnx::AttributeProto::STRING && !(a->type() == 0 && a->has_s()))
    fail(fmt::format("attribute '{}' is {}, expected string", name, attr_type_name(a->type())));
  return a->s();
}
std::vector<int64_t> Importer::attr_ints(const std::string& name) const {
  const auto* a = attr(name);
  if (!a) return {};
  if (a->type() != onnx::AttributeProto::INTS && a->type() != 0)
    fail(fmt::format("attribute '{}' is {}, expected ints", name, attr_type_name(a->type())));
  if (a->ints_size() > 64) fail(fmt::format("attribute '{}' has {} values", name, a->ints_size()));
  return {a->ints().begin(), a->ints().end()};
}
std::vector<float> Importer::attr_floats(const std::string& name) const {
  const auto* a = attr(name);
  if (!a) return {};
  if (a->type() != onnx::AttributeProto::FLOATS && a->type() != 0)
    fail(fmt::format("attribute '{}' is {}, expected floats", name, attr_type_name(a->type())));
  return {a->floats().begin(), a->floats().end()};
}

// ---- inputs ----------------------------------------------------------------------------------
bool Importer::has_in(size_t i) const { return i < cur_inputs_.size() && cur_inputs_[i].present(); }
const Value& Importer::in(size_t i) const {
  static const Value none;
  return i < cur_inputs_.size() ? cur_inputs_[i] : none;
}
TensorId Importer::tin(size_t i) {
  if (!has_in(i)) fail(fmt::format("input {} is missing", i));
  const Value& v = cur_inputs_[i];
  return v.t >= 0 ? v.t : const_tensor(v.c);
}
ConstPtr Importer::cin(size_t i, const char* what) const {
  if (!has_in(i)) fail(fmt::format("input {} ({}) is missing", i, what));
  const Value& v = cur_inputs_[i];
  if (!v.c)
    fail_needing_values(fmt::format("input '{}' ({}) must be a constant (initializer, Constant node or foldable subgraph)",
                                    node_->input(static_cast<int>(i)), what),
                        {v.t});
  return v.c;
}
ConstPtr Importer::cin_opt(size_t i, const char* what) const { return has_in(i) ? cin(i, what) : nullptr; }

int Importer::axis(int64_t a, size_t r, const char* what) const {
  const auto rr = static_cast<int64_t>(r);
  if (a < -rr || a >= rr) fail(fmt::format("{} {} out of range for rank {}", what, a, r));
  return static_cast<int>(a < 0 ? a + rr : a);
}

// ---- layers ----------------------------------------------------------------------------------
static std::string_view trt_kind_label(LayerKind k) { return layer_kind_info(k).trt_label; }

// TensorRT's default name of the next layer, `(Unnamed Layer* N) [Kind]`: N is the layer's index
// in the INetworkDefinition, so it counts the layers the parser adds for nodes tandem folds.
std::string Importer::trt_default_name(LayerKind k) const {
  return fmt::format("(Unnamed Layer* {}) [{}]", static_cast<int64_t>(net_.layers.size()) + parser_only_layers_,
                     trt_kind_label(k));
}

std::string Importer::unique_layer_name(const std::string& base) {
  std::string c = base;
  while (layer_names_.count(c)) c = base + "_" + std::to_string(suffix_++);
  layer_names_.insert(c);
  return c;
}
std::string Importer::unique_tensor_name(const std::string& base) {
  std::string c = base;
  while (tensor_names_.count(c)) c = base + "_" + std::to_string(suffix_++);
  tensor_names_.insert(c);
  return c;
}

TensorId Importer::add(LayerKind k, LayerParams p, std::vector<TensorId> inputs) {
  auto outs = add_n(k, std::move(p), std::move(inputs));
  if (outs.size() != 1) fail("internal: layer with several outputs");
  return outs[0];
}

std::vector<TensorId> Importer::add_n(LayerKind k, LayerParams p, std::vector<TensorId> inputs) {
  Layer l;
  const std::string default_name = trt_default_name(k);
  l.name = unique_layer_name(default_name);
  l.kind = k;
  l.params = std::move(p);
  l.inputs = std::move(inputs);
  if (node_) {
    l.onnx_node = node_name_;
    l.onnx_op = node_->op_type();
  }
  auto outs = infer_layer_outputs(net_, l);
  for (size_t i = 0; i < outs.size(); ++i) {
    if (outs[i].first.size() > 8) fail(fmt::format("rank {} exceeds 8 (TensorRT's limit)", outs[i].first.size()));
    for (int64_t d : outs[i].first)
      if (d < 0) fail(fmt::format("{} layer would have dims {}", to_string(k), dims_to_string(outs[i].first)));
    checked_volume(outs[i].first, fmt::format("{}: node '{}'", path_, node_name_));
    Tensor t;
    // TensorRT's names: "<layer>_output" for one output, "<layer>_output_<i>" past the first.
    t.name = unique_tensor_name(default_name + (i == 0 ? "_output" : fmt::format("_output_{}", i)));
    t.dims = std::move(outs[i].first);
    t.type = outs[i].second;
    l.outputs.push_back(net_.add_tensor(std::move(t)));
  }
  net_.add_layer(std::move(l));
  return net_.layers.back().outputs;
}

WeightsId Importer::weights_of(const ConstPtr& c, const Dims* reshape) {
  if (!reshape) {
    auto it = const_weights_.find(c.get());
    if (it != const_weights_.end()) return it->second;
  }
  Weights w;
  w.name = c->name.empty() ? fmt::format("{}_weights_{}", node_name_, net_.weights.size()) : c->name;
  w.type = c->type;
  w.dims = reshape ? *reshape : c->dims;
  w.bytes.assign(c->ptr, c->ptr + c->nbytes);
  const WeightsId id = net_.add_weights(std::move(w));
  if (!reshape) const_weights_[c.get()] = id;
  return id;
}

WeightsId Importer::new_weights(std::string name, DataType t, Dims d, const std::vector<float>& values) {
  auto c = make_const(std::move(name), t, std::move(d));
  for (size_t i = 0; i < values.size(); ++i) c->set_f(static_cast<int64_t>(i), values[i]);
  Weights w;
  w.name = c->name;
  w.type = t;
  w.dims = c->dims;
  w.bytes = std::move(c->owned);
  return net_.add_weights(std::move(w));
}

TensorId Importer::const_tensor(const ConstPtr& c) {
  auto it = const_tensors_.find(c.get());
  if (it != const_tensors_.end()) return it->second;
  if (c->dims.size() > 8) fail(fmt::format("constant '{}' has rank {} (more than 8)", c->name, c->dims.size()));
  for (int64_t d : c->dims)
    if (d < 0) fail(fmt::format("constant '{}' has dims {}", c->name, dims_to_string(c->dims)));
  Layer l;
  // As the parser (onnx-tensorrt convertToTensor): a Constant layer named after the weights
  // (unnamed for generated values) whose output keeps TensorRT's default tensor name,
  // `(Unnamed Layer* N) [Constant]_output`: ILayer::setName does not rename the output.
  l.name = unique_layer_name(c->name.empty() ? trt_default_name(LayerKind::kConstant) : c->name);
  l.kind = LayerKind::kConstant;
  l.params = ConstantParams{weights_of(c)};
  Tensor t;
  const bool parser_has_tensor = !c->name.empty() && parser_tensor_values_.count(c->name);
  if (parser_has_tensor || (!c->name.empty() && parser_constant_layers_.count(c->name)))
    --parser_only_layers_;  // the parser made this tensor while importing a node tandem folded
  t.name = parser_has_tensor && !tensor_names_.count(c->name)
               ? unique_tensor_name(c->name)  // the parser's tensor of that value keeps the ONNX name
               : unique_tensor_name(trt_default_name(LayerKind::kConstant) + "_output");
  if (!c->name.empty()) parser_constant_layers_.erase(c->name);
  t.dims = c->dims;
  t.type = c->type;
  l.outputs.push_back(net_.add_tensor(std::move(t)));
  net_.add_layer(std::move(l));
  const TensorId id = net_.layers.back().outputs[0];
  const_tensors_[c.get()] = id;
  const_alive_.push_back(c);  // keep c alive: a freed Const's address may be reused by the next one
  return id;
}

TensorId Importer::reshape(TensorId t, Dims d) {
  ShuffleParams p;
  p.reshape = std::move(d);
  return add(LayerKind::kShuffle, p, {t});
}

TensorId Importer::to_rank(TensorId t, size_t r) {
  if (rank(t) >= r) return t;
  Dims d(r - rank(t), 1);
  d.insert(d.end(), dims(t).begin(), dims(t).end());
  return reshape(t, d);
}

void Importer::broadcast_ranks(std::vector<TensorId>& ts) {
  size_t r = 0;
  for (TensorId t : ts) r = std::max(r, rank(t));
  for (TensorId& t : ts) t = to_rank(t, r);
}

TensorId Importer::scalar_const(float v, DataType t, size_t r) {
  auto c = make_const("", t, Dims(std::max<size_t>(r, 1), 1));
  if (r == 0) c->dims.clear();
  c->set_f(0, v);
  return const_tensor(c);
}

// ---- model -----------------------------------------------------------------------------------
void Importer::load() {
  std::error_code ec;
  if (!fs::exists(path_, ec)) throw Error(fmt::format("{}: no such file", path_));
  if (fs::is_directory(path_, ec)) throw Error(fmt::format("{}: is a folder, not an ONNX file", path_));
  std::ifstream in(path_, std::ios::binary);
  if (!in) throw Error(fmt::format("{}: cannot open", path_));
  in.seekg(0, std::ios::end);
  const auto size = static_cast<int64_t>(in.tellg());
  if (size <= 0) throw Error(fmt::format("{}: empty file, not an ONNX model", path_));
  if (size >= (int64_t{1} << 31) - 1)
    throw Error(fmt::format("{}: {} bytes; protobuf files over 2 GiB are not supported (use external data)", path_, size));
  in.seekg(0);
  bytes_.resize(static_cast<size_t>(size));
  in.read(bytes_.data(), size);
  if (!in) throw Error(fmt::format("{}: read error", path_));
  if (!model_.ParseFromString(bytes_))
    throw Error(fmt::format("{}: not a valid ONNX model (protobuf parse failed: truncated or not ONNX)", path_));
  dir_ = fs::path(path_).parent_path().string();
  if (dir_.empty()) dir_ = ".";
  if (!model_.has_graph()) throw Error(fmt::format("{}: no graph in the file (not an ONNX model?)", path_));
  const int64_t ir = model_.ir_version();
  if (ir < 3 || ir > 10) throw Error(fmt::format("{}: IR version {} is not supported (3 to 10)", path_, ir));
  auto& info = net_.model;
  info.ir_version = ir;
  info.producer_name = model_.producer_name();
  info.producer_version = model_.producer_version();
  info.path = path_;
  for (const auto& o : model_.opset_import()) {
    info.opsets.emplace_back(o.domain(), o.version());
    if (o.domain().empty() || o.domain() == "ai.onnx") opset_ = o.version();
  }
  if (opset_ == 0) throw Error(fmt::format("{}: no default-domain opset in opset_import", path_));
  if (opset_ < 7 || opset_ > 21)
    throw Error(fmt::format("{}: opset {} is not supported (7 to 21)", path_, opset_));
}

void Importer::import_inputs() {
  const auto& g = model_.graph();
  std::unordered_set<std::string> init_names;
  for (const auto& t : g.initializer()) {
    if (t.name().empty()) fail("an initializer has no name");
    auto c = tensor_to_const(t, dir_, fmt::format("{}: initializer '{}'", path_, t.name()));
    values_[t.name()] = Value{-1, c};
    init_names.insert(t.name());
  }
  std::unordered_map<std::string, Dims> user;
  for (const auto& [name, d] : opt_.shapes) {
    if (user.count(name)) throw Error(fmt::format("--shape '{}': given twice", name));
    user[name] = d;
  }
  add_value_input_shapes(user);
  std::vector<std::string> real_inputs;
  for (const auto& vi : g.input())
    if (!init_names.count(vi.name())) real_inputs.push_back(vi.name());
  for (const auto& [name, d] : user) {
    if (std::find(real_inputs.begin(), real_inputs.end(), name) == real_inputs.end())
      throw Error(fmt::format("--shape {}:{}: {} has no input '{}' (inputs: {})", name, dims_to_string(d), path_, name,
                              fmt::join(real_inputs, ", ")));
    for (int64_t v : d)  // a 0 makes an empty tensor (docs/onnx-import.md, "Empty tensors")
      if (v < 0) throw Error(fmt::format("--shape {}:{}: dims must not be negative", name, dims_to_string(d)));
  }
  for (const auto& vi : g.input()) {
    if (init_names.count(vi.name())) continue;  // initializers listed as inputs are constants
    if (vi.name().empty()) fail("a graph input has no name");
    if (values_.count(vi.name())) fail(fmt::format("graph input '{}' is listed twice", vi.name()));
    if (!vi.type().has_tensor_type())
      fail(fmt::format("graph input '{}' is not a tensor (sequences and maps are not supported)", vi.name()));
    const auto& tt = vi.type().tensor_type();
    Tensor t;
    t.name = vi.name();
    t.is_input = true;
    // A double input becomes an fp32 one, as TensorRT's parser does (convertDtype: DOUBLE -> kFLOAT).
    if (tt.elem_type() == onnx::TensorProto::DOUBLE) t.type = DataType::kFloat;
    else if (!onnx_to_data_type(tt.elem_type(), &t.type))
      fail(fmt::format("graph input '{}' has data type {}, which is not supported", vi.name(), onnx_type_name(tt.elem_type())));
    Dims declared;
    std::vector<std::string> params;
    const bool has_shape = tt.has_shape();
    if (has_shape) {
      for (const auto& d : tt.shape().dim()) {
        declared.push_back(d.has_dim_value() && d.dim_value() > 0 ? d.dim_value() : -1);
        params.push_back(d.has_dim_param() ? d.dim_param() : "");
      }
    }
    auto shown = [&] {
      if (!has_shape) return std::string("(no shape)");
      std::string s;
      for (size_t i = 0; i < declared.size(); ++i) s += (i ? "x" : "") + (declared[i] > 0 ? std::to_string(declared[i]) : "?");
      return declared.empty() ? std::string("scalar") : s;
    };
    auto it = user.find(vi.name());
    if (it != user.end()) {
      const Dims& u = it->second;
      if (has_shape && u.size() != declared.size())
        throw Error(fmt::format("--shape {}:{}: input '{}' of {} has rank {} (dims {}), not {}", vi.name(),
                                dims_to_string(u), vi.name(), path_, declared.size(), shown(), u.size()));
      for (size_t i = 0; has_shape && i < u.size(); ++i)
        if (declared[i] > 0 && declared[i] != u[i])
          throw Error(fmt::format("--shape {}:{}: dim {} of input '{}' is fixed to {} by the model ({})", vi.name(),
                                  dims_to_string(u), i, vi.name(), declared[i], shown()));
      t.dims = u;
    } else {
      bool dynamic = !has_shape;
      for (int64_t v : declared) dynamic |= v <= 0;
      if (dynamic) {
        std::string hint;
        static const char* nchw = "NCHW";
        for (size_t i = 0; i < declared.size(); ++i) {
          hint += i ? "x" : "";
          if (declared[i] > 0) hint += std::to_string(declared[i]);
          else if (declared.size() == 4) hint += nchw[i];
          else hint += fmt::format("D{}", i);
        }
        if (!has_shape) hint = "DIMS";
        throw Error(fmt::format("{}: input '{}' has dynamic dims {}; fix it with --shape {}:{}", path_, vi.name(),
                                shown(), vi.name(), hint));
      }
      t.dims = declared;
    }
    checked_volume(t.dims, fmt::format("{}: input '{}'", path_, vi.name()));
    if (t.dims.size() > 8) fail(fmt::format("graph input '{}' has rank {} (more than 8)", vi.name(), t.dims.size()));
    tensor_names_.insert(t.name);
    const TensorId id = net_.add_tensor(std::move(t));
    net_.inputs.push_back(id);
    values_[vi.name()] = Value{id, nullptr};
  }
  bind_input_values();
}

std::vector<int> Importer::topo_order(const onnx::GraphProto& g) {
  const int n = g.node_size();
  std::unordered_map<std::string, int> producer;
  for (int i = 0; i < n; ++i)
    for (const auto& o : g.node(i).output()) {
      if (o.empty()) continue;
      if (values_.count(o) || !producer.emplace(o, i).second) {
        const auto& nd = g.node(i);
        throw Error(fmt::format("{}: node '{}' ({}): output '{}' is produced twice", path_,
                                nd.name().empty() ? "node_of_" + o : nd.name(), nd.op_type(), o));
      }
    }
  std::vector<int> pending(n, 0);
  std::vector<std::vector<int>> users(n);
  for (int i = 0; i < n; ++i) {
    const auto& nd = g.node(i);
    for (const auto& in : nd.input()) {
      if (in.empty() || values_.count(in)) continue;
      auto it = producer.find(in);
      if (it == producer.end()) {
        const std::string nm = nd.name().empty() ? (nd.output_size() ? "node_of_" + nd.output(0) : std::to_string(i)) : nd.name();
        throw Error(fmt::format("{}: node '{}' ({}): input '{}' is not a graph input, an initializer or any node's output",
                                path_, nm, nd.op_type(), in));
      }
      users[it->second].push_back(i);
      ++pending[i];
    }
  }
  // Kahn's algorithm, lowest original index first: keeps the file's order when it is valid.
  std::priority_queue<int, std::vector<int>, std::greater<>> ready;
  for (int i = 0; i < n; ++i)
    if (!pending[i]) ready.push(i);
  std::vector<int> order;
  order.reserve(n);
  while (!ready.empty()) {
    const int i = ready.top();
    ready.pop();
    order.push_back(i);
    for (int u : users[i])
      if (--pending[u] == 0) ready.push(u);
  }
  if (static_cast<int>(order.size()) != n) {
    for (int i = 0; i < n; ++i)
      if (pending[i]) {
        const auto& nd = g.node(i);
        const std::string nm = nd.name().empty() ? (nd.output_size() ? "node_of_" + nd.output(0) : std::to_string(i)) : nd.name();
        throw Error(fmt::format("{}: node '{}' ({}): the graph has a cycle through this node", path_, nm, nd.op_type()));
      }
  }
  // The import order is the parser's (onnx-tensorrt toposort.hpp): depth-first post-order over
  // the inputs, roots in file order. It is the file's order when that is valid, and it decides
  // the `(Unnamed Layer* N)` numbers when it is not.
  order.clear();
  std::vector<char> seen(static_cast<size_t>(n), 0);
  for (int root = 0; root < n; ++root) {
    if (seen[static_cast<size_t>(root)]) continue;
    seen[static_cast<size_t>(root)] = 1;
    std::vector<std::pair<int, int>> stack{{root, 0}};  // (node, next input to visit)
    while (!stack.empty()) {
      const int i = stack.back().first;
      const int k = stack.back().second++;
      if (k >= g.node(i).input_size()) {
        order.push_back(i);
        stack.pop_back();
        continue;
      }
      auto p = producer.find(g.node(i).input(k));
      if (p == producer.end() || seen[static_cast<size_t>(p->second)]) continue;
      seen[static_cast<size_t>(p->second)] = 1;
      stack.emplace_back(p->second, 0);
    }
  }
  return order;
}

void Importer::finish_outputs(const std::vector<TensorId>& outs) {
  for (int i = 0; i < node_->output_size(); ++i) {
    const std::string& name = node_->output(i);
    if (name.empty()) continue;
    TensorId t = static_cast<size_t>(i) < outs.size() ? outs[i] : -1;
    if (t < 0) fail(fmt::format("output {} ('{}') is not supported", i, name));
    const LayerId p = net_.tensors[t].producer;
    const bool fresh = p >= static_cast<LayerId>(node_first_layer_) && net_.layers[p].kind != LayerKind::kConstant &&
                       net_.tensors[t].name.rfind("(Unnamed Layer* ", 0) == 0;
    if (!fresh) {  // the op passed a tensor through: an Identity keeps the ONNX value name
      t = add(LayerKind::kIdentity, NoParams{}, {t});
    }
    Tensor& tt = net_.tensors[t];
    tensor_names_.erase(tt.name);
    const std::string scoped = scope_ + name;  // a subgraph's copy: `<scope>/<name>`
    if (tensor_names_.count(scoped)) fail(fmt::format("output '{}' is produced twice", name));
    tensor_names_.insert(scoped);
    tt.name = scoped;
    Layer& l = net_.layers[tt.producer];
    layer_names_.erase(l.name);
    l.name = unique_layer_name(node_name_);
    values_[name] = Value{t, nullptr};
  }
}

// The layers TensorRT's ONNX parser adds for a node tandem folds (onnx-tensorrt release/8.6-GA,
// builtin_op_importers.cpp): Shape, Cast, Slice, Concat and (assumed) every other op add one
// layer; each input that is weights and that the op takes as a tensor first becomes a Constant
// layer (convertToTensor, once per weights name). Slice's starts/ends/axes/steps, Reshape's
// shape and Squeeze/Unsqueeze's axes are read as values (ShapeTensor), without a layer. The
// node's outputs are tensors in the parser: a later Constant layer of them is not the parser's.
void Importer::count_parser_layers_of_folded_node() {
  // A Q/DQ model's weights DequantizeLinear: numbered as the model without its Q/DQ nodes, whose
  // names a calibration cache written from this model's scales must use (see strip_qdq_pairs).
  if (node_->op_type() == "DequantizeLinear" || node_->op_type() == "QuantizeLinear") return;
  static const std::unordered_map<std::string, int> first_value_input = {
      {"Slice", 1}, {"Reshape", 1}, {"Squeeze", 1}, {"Unsqueeze", 1}, {"Expand", 1}, {"Tile", 1}};
  const std::string& op = node_->op_type();
  auto it = first_value_input.find(op);
  const int tensor_inputs = it == first_value_input.end() ? node_->input_size() : it->second;
  for (int i = 0; i < tensor_inputs && i < static_cast<int>(cur_inputs_.size()); ++i) {
    const Value& v = cur_inputs_[static_cast<size_t>(i)];
    if (!v.c || v.c->name.empty() || parser_tensor_values_.count(v.c->name)) continue;  // a tensor already
    if (const_tensors_.count(v.c.get()) || !parser_constant_layers_.insert(v.c->name).second) continue;
    ++parser_only_layers_;  // convertToTensor: a Constant layer
  }
  ++parser_only_layers_;  // the op's own layer
  for (const auto& o : node_->output())
    if (!o.empty()) parser_tensor_values_.insert(o);
}

void Importer::import_node(const onnx::NodeProto& n) {
  node_ = &n;
  node_name_ = scope_ + (n.name().empty() && n.output_size() ? "node_of_" + n.output(0) : n.name());
  const std::string& op = n.op_type();
  if (!n.domain().empty() && n.domain() != "ai.onnx")
    fail(fmt::format("op {}:{} is not supported (only the default ONNX domain)", n.domain(), op));
  if (n.output_size() == 0) fail("node has no outputs");
  cur_inputs_.clear();
  bool all_const = true;
  for (const auto& in : n.input()) {
    if (in.empty()) { cur_inputs_.emplace_back(); continue; }
    cur_inputs_.push_back(values_.at(in));
    all_const &= cur_inputs_.back().c != nullptr;
    const TensorId t = cur_inputs_.back().t;
    if (data_dependent_axis(net_, t) >= 0) {  // its dims are only a bound: no reader may see them
      const Layer& p = net_.layers[size_t(net_.tensors[size_t(t)].producer)];
      fail(fmt::format("consumes the data-dependent output of {} '{}'; tandem supports these only as network outputs",
                       p.onnx_op.empty() ? std::string(to_string(p.kind)) : p.onnx_op, p.onnx_node));
    }
  }
  node_first_layer_ = net_.layers.size();
  const auto& folders = op_folders();
  auto fit = folders.find(op);
  if (fit != folders.end() && (all_const || op == "Shape" || op == "Size")) {
    std::vector<ConstPtr> outs = fit->second(*this);
    if (!outs.empty()) {
      for (int i = 0; i < n.output_size(); ++i) {
        if (n.output(i).empty()) continue;
        if (static_cast<size_t>(i) >= outs.size() || !outs[i]) fail(fmt::format("output {} cannot be computed", i));
        outs[i]->name = n.output(i);
        values_[n.output(i)] = Value{-1, outs[i]};
      }
      if (op != "Constant") {  // Constant nodes are weights, in the parser too
        net_.model.folded_nodes.push_back(node_name_);
        count_parser_layers_of_folded_node();
      }
      return;
    }
  }
  const auto& imps = op_importers();
  auto it = imps.find(op);
  if (it == imps.end()) {
    if (fit != folders.end()) {
      std::vector<TensorId> runtime;
      for (const Value& v : cur_inputs_)
        if (!v.c && v.t >= 0) runtime.push_back(v.t);
      fail_needing_values("only supported when its inputs are constants or static shapes (it feeds shape computations)",
                          runtime);
    }
    fail(fmt::format("op {} is not supported (see docs/onnx-import.md for the supported ops)", op));
  }
  finish_outputs(it->second(*this));
}

const onnx::GraphProto& Importer::graph_attr(const std::string& name) const {
  const auto* a = attr(name);
  if (!a || (a->type() != onnx::AttributeProto::GRAPH && !a->has_g()))
    fail(fmt::format("attribute '{}' (a graph) is missing", name));
  return a->g();
}

std::vector<Value> Importer::import_subgraph(const onnx::GraphProto& g, const std::vector<Value>& inputs,
                                             const std::string& scope) {
  if (static_cast<size_t>(g.input_size()) != inputs.size())
    fail(fmt::format("subgraph '{}' has {} inputs, the node binds {}", g.name(), g.input_size(), inputs.size()));
  // Nested loops multiply: a cap on every copy of every subgraph keeps a hostile model from
  // unrolling into millions of layers.
  constexpr int64_t kMaxSubgraphCopies = 16384;
  if (++subgraph_copies_ > kMaxSubgraphCopies)
    fail(fmt::format("more than {} subgraph copies (branches and unrolled iterations): refused", kMaxSubgraphCopies));
  // The control-flow node being imported: restored once its subgraph is in.
  const onnx::NodeProto* node = node_;
  const std::string node_name = node_name_, outer_scope = scope_;
  const std::vector<Value> node_inputs = cur_inputs_;
  const size_t first_layer = node_first_layer_;
  std::vector<std::pair<std::string, std::optional<Value>>> saved;  // outer bindings the subgraph hides
  auto hide = [&](const std::string& name) {
    auto it = values_.find(name);
    saved.emplace_back(name, it == values_.end() ? std::nullopt : std::optional<Value>(it->second));
    if (it != values_.end()) values_.erase(it);
  };
  for (int i = 0; i < g.input_size(); ++i) {
    hide(g.input(i).name());
    values_[g.input(i).name()] = inputs[static_cast<size_t>(i)];
  }
  for (const auto& t : g.initializer()) {
    hide(t.name());
    values_[t.name()] = Value{-1, tensor_to_const(t, dir_, fmt::format("{}: node '{}': initializer '{}'", path_, node_name, t.name()))};
  }
  for (const auto& n : g.node())
    for (const auto& o : n.output())
      if (!o.empty()) hide(o);
  scope_ = node_name + "/" + scope + "/";  // node_name carries the outer scope already
  for (int i : topo_order(g)) import_node(g.node(i));
  std::vector<Value> outs;
  for (const auto& o : g.output()) {
    auto it = values_.find(o.name());
    if (it == values_.end()) fail(fmt::format("subgraph output '{}' is never produced", o.name()));
    outs.push_back(it->second);
  }
  for (auto it = saved.rbegin(); it != saved.rend(); ++it) {
    if (it->second) values_[it->first] = *it->second;
    else values_.erase(it->first);
  }
  scope_ = outer_scope;
  node_ = node;
  node_name_ = node_name;
  cur_inputs_ = node_inputs;
  node_first_layer_ = first_layer;
  return outs;
}

Network Importer::run() {
  load();
  strip_qdq_pairs(model_.mutable_graph(), path_, dir_, &net_.model.qdq_scales);
  import_inputs();
  const auto& g = model_.graph();
  const auto order = topo_order(g);
  for (int i : order) import_node(g.node(i));
  node_ = nullptr;
  for (const auto& vo : g.output()) {
    auto it = values_.find(vo.name());
    if (it == values_.end()) fail(fmt::format("graph output '{}' is never produced", vo.name()));
    TensorId t = it->second.t;
    if (t < 0) {  // a constant output becomes a Constant layer, its tensor named as the output
      t = const_tensor(it->second.c);
      if (net_.tensors[t].name != vo.name() && !tensor_names_.count(vo.name())) {
        tensor_names_.erase(net_.tensors[t].name);
        tensor_names_.insert(vo.name());
        net_.tensors[t].name = vo.name();
      }
    }
    if (std::find(net_.outputs.begin(), net_.outputs.end(), t) == net_.outputs.end()) {
      net_.tensors[t].is_output = true;
      net_.outputs.push_back(t);
    }
  }
  if (net_.outputs.empty()) fail("the graph has no outputs");
  // Q/DQ scales of constants are keyed by the ONNX name; their Constant layers' outputs carry
  // TensorRT's default name: the scale goes with that tensor too.
  auto& qdq = net_.model.qdq_scales;
  for (const Layer& L : net_.layers) {
    if (L.kind != LayerKind::kConstant || L.outputs.empty() || qdq.empty()) continue;
    const WeightsId w = L.as<ConstantParams>().weights;
    auto it = w >= 0 ? qdq.find(net_.weights[w].name) : qdq.end();
    if (it != qdq.end()) qdq.emplace(net_.tensors[L.outputs[0]].name, it->second);
  }
  fold_empty_tensors(net_, path_);
  for (const auto& hook : opt_.hooks) hook(net_);
  net_.verify();
  return std::move(net_);
}

}  // namespace onnx_detail

Network import_onnx(const std::string& path, const ImportOptions& options) {
  onnx_detail::Importer imp(path, options);
  Network net = imp.run();
  // A small file may still declare huge activations: refuse before any executor allocates them.
  std::error_code ec;
  const auto bytes = std::filesystem::file_size(path, ec);
  check_memory_cap(net, path, memory_cap(ec ? 0 : uint64_t(bytes)));
  return net;
}

OnnxModelSummary summarize_onnx(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(fmt::format("{}: cannot open", path));
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  onnx::ModelProto m;
  if (!m.ParseFromString(bytes) || !m.has_graph())
    throw Error(fmt::format("{}: not a valid ONNX model", path));
  OnnxModelSummary s;
  s.info.path = path;
  s.info.ir_version = m.ir_version();
  s.info.producer_name = m.producer_name();
  s.info.producer_version = m.producer_version();
  for (const auto& o : m.opset_import()) s.info.opsets.emplace_back(o.domain(), o.version());
  std::unordered_set<std::string> inits;
  for (const auto& t : m.graph().initializer()) inits.insert(t.name());
  // Each node's op, then (depth-first) the ops of its subgraphs (If branches, Loop and Scan bodies):
  // a model that needs an op only inside a branch still needs it.
  std::function<void(const onnx::GraphProto&)> add_ops = [&](const onnx::GraphProto& g) {
    for (const auto& n : g.node()) {
      s.op_types.push_back(n.domain().empty() || n.domain() == "ai.onnx" ? n.op_type() : n.domain() + ":" + n.op_type());
      for (const auto& a : n.attribute()) {
        if (a.has_g()) add_ops(a.g());
        for (const auto& sub : a.graphs()) add_ops(sub);
      }
    }
  };
  add_ops(m.graph());
  for (const auto& vi : m.graph().input()) {
    if (inits.count(vi.name())) continue;
    Dims d;
    for (const auto& x : vi.type().tensor_type().shape().dim()) d.push_back(x.has_dim_value() ? x.dim_value() : -1);
    s.inputs.emplace_back(vi.name(), d);
  }
  for (const auto& vo : m.graph().output()) {
    Dims d;
    for (const auto& x : vo.type().tensor_type().shape().dim()) d.push_back(x.has_dim_value() ? x.dim_value() : -1);
    s.outputs.emplace_back(vo.name(), d);
  }
  return s;
}

const std::vector<std::string>& supported_onnx_ops() {
  static const std::vector<std::string> ops = [] {
    std::set<std::string> s;
    for (const auto& [k, v] : onnx_detail::op_importers()) s.insert(k);
    for (const auto& [k, v] : onnx_detail::op_folders()) s.insert(k);
    return std::vector<std::string>(s.begin(), s.end());
  }();
  return ops;
}

bool is_supported_onnx_op(std::string_view op) {
  const auto& v = supported_onnx_ops();
  return std::binary_search(v.begin(), v.end(), op);
}

}  // namespace tandem
