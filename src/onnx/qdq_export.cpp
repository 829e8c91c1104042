// Q/DQ export (include/tandem/qdq.h). Edits the original ModelProto: per-tensor Q/DQ pairs on the
// tensors INT8 layers touch, per-channel int8 weights for INT8 convolutions, opset raised to 13.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "internal.h"
#include "tandem/numerics.h"
#include "tandem/qdq.h"

namespace tandem {

using namespace onnx_detail;
namespace {

using TP = onnx::TensorProto;

std::string node_key(const onnx::NodeProto& n) {
  return n.name().empty() && n.output_size() ? "node_of_" + n.output(0) : n.name();
}

void set_scalar_f(TP* t, const std::string& name, float v) {
  t->set_name(name);
  t->set_data_type(TP::FLOAT);
  t->add_float_data(v);
}
void set_scalar_i8(TP* t, const std::string& name, int8_t v) {
  t->set_name(name);
  t->set_data_type(TP::INT8);
  t->set_raw_data(std::string(1, static_cast<char>(v)));
}
void set_i64_vec(TP* t, const std::string& name, const std::vector<int64_t>& v) {
  t->set_name(name);
  t->set_data_type(TP::INT64);
  t->add_dims(static_cast<int64_t>(v.size()));
  for (int64_t x : v) t->add_int64_data(x);
}

const onnx::AttributeProto* find_attr(const onnx::NodeProto& n, const std::string& name) {
  for (const auto& a : n.attribute())
    if (a.name() == name) return &a;
  return nullptr;
}
void remove_attr(onnx::NodeProto* n, const std::string& name) {
  auto* as = n->mutable_attribute();
  for (int i = 0; i < as->size(); ++i)
    if (as->Get(i).name() == name) {
      as->DeleteSubrange(i, 1);
      return;
    }
}

// Symmetric per-channel int8 weights along `axis` (tandem/numerics.h: scale = max|w| / 127 of
// the channel, 1 for an all-zero channel; q = round half to even in [-127, 127]), exactly what the
// engines compute. Returns the scales; *q gets the int8 bytes.
std::vector<float> quantize_per_channel(const Const& c, const std::vector<int64_t>& dims, int axis,
                                        std::string* q) {
  std::vector<float> w(static_cast<size_t>(c.count()));
  for (int64_t i = 0; i < c.count(); ++i) w[static_cast<size_t>(i)] = static_cast<float>(c.f(i));
  const ChannelLayout layout = channel_layout(dims, axis);
  const std::vector<float> scale = int8_weight_scales(w.data(), layout);
  q->assign(w.size(), '\0');
  quantize_int8_weights(w.data(), layout, scale, reinterpret_cast<int8_t*>(q->data()));
  return scale;
}

// Dequantized weights no float reader is left for take the original name, so that the Q/DQ
// model imports to the same network (layer and weight names) as the original. Returns the names.
std::set<std::string> name_dequantized_weights(std::vector<onnx::NodeProto>* nodes,
                                               const std::map<std::string, std::string>& weight_dq,
                                               const std::set<std::string>& still_used) {
  std::map<std::string, std::string> back;
  std::set<std::string> renamed;
  for (const auto& [w, out] : weight_dq)
    if (!still_used.count(w)) {
      back[out] = w;
      renamed.insert(w);
    }
  for (auto& n : *nodes) {
    for (auto& in : *n.mutable_input())
      if (auto it = back.find(in); it != back.end()) in = it->second;
    for (auto& o : *n.mutable_output())
      if (auto it = back.find(o); it != back.end()) o = it->second;
  }
  return renamed;
}

onnx::ModelProto read_model(const std::string& onnx_in) {
  std::ifstream f(onnx_in, std::ios::binary);
  if (!f) throw Error(onnx_in + ": cannot read: " + std::strerror(errno));
  std::stringstream ss;
  ss << f.rdbuf();
  onnx::ModelProto m;
  if (!m.ParseFromString(ss.str())) throw Error(onnx_in + ": not a valid ONNX model (protobuf parse failed)");
  for (const auto& init : m.graph().initializer())
    if (init.data_location() == TP::EXTERNAL)
      throw Error(onnx_in + ": initializer '" + init.name() + "' has external data; Q/DQ export needs it inline");
  return m;
}

// Temporary name, then rename into place.
void write_model_atomic(const onnx::ModelProto& m, const std::string& onnx_out) {
  std::string bytes;
  if (!m.SerializeToString(&bytes)) throw Error(onnx_out + ": cannot serialize the Q/DQ model");
  std::string tmp = onnx_out + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream o(tmp, std::ios::binary);
    o.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!o) {
      std::remove(tmp.c_str());
      throw Error(onnx_out + ": cannot write: " + std::strerror(errno));
    }
  }
  if (std::rename(tmp.c_str(), onnx_out.c_str()) != 0) {
    std::string why = std::strerror(errno);
    std::remove(tmp.c_str());
    throw Error(onnx_out + ": cannot write: " + why);
  }
}

// The export in named stages over one ModelProto: raise the opset, choose what to quantize,
// insert the activations' Q/DQ pairs, quantize weights per channel, rebuild the node list.
class QdqExporter {
 public:
  QdqExporter(const std::string& onnx_in, const Network& net, const Numerics& num, const QdqExportOptions& opt)
      : onnx_in_(onnx_in), net_(net), num_(num), opt_(opt), m_(read_model(onnx_in)), g_(m_.mutable_graph()) {
    for (const auto& i : g_->input()) names_.insert(i.name());
    for (const auto& i : g_->initializer()) names_.insert(i.name());
    for (const auto& n : g_->node())
      for (const auto& o : n.output()) names_.insert(o);
  }

  QdqExportReport run(const std::string& onnx_out) {
    raise_opset();
    choose_quantized();
    insert_activation_qdq();
    quantize_weights();
    rebuild_nodes();
    write_model_atomic(m_, onnx_out);
    return rep_;
  }

 private:
  const std::string& onnx_in_;
  const Network& net_;
  const Numerics& num_;
  const QdqExportOptions& opt_;
  onnx::ModelProto m_;
  onnx::GraphProto* g_;
  QdqExportReport rep_;
  std::set<std::string> names_;  // every ONNX name in use
  std::vector<TP> new_inits_;    // initializers to add
  // What to quantize (choose_quantized).
  std::map<std::string, int> producer_;  // ONNX value -> node index
  std::set<std::string> graph_inputs_, inits_;
  std::set<std::string> int8_nodes_;
  std::vector<std::string> written_;  // ONNX names, network order
  std::set<std::string> written_set_;
  std::map<std::pair<std::string, std::string>, float> reads_;      // (node, ONNX value) -> scale
  std::map<std::pair<std::string, std::string>, int> per_channel_;  // (node, ONNX weights) -> axis
  std::set<std::string> skipped_;
  // The new nodes and the rewiring (insert_activation_qdq, quantize_weights).
  std::vector<onnx::NodeProto> head_;                  // Q/DQ of graph inputs, initializers, weights
  std::map<int, std::vector<onnx::NodeProto>> after_;  // node index -> Q/DQ after it
  std::map<std::string, std::string> renamed_outputs_;  // produced value -> its pre-quant name
  std::map<std::pair<std::string, std::string>, std::string> rewire_;  // (node, value) -> dq value
  std::map<std::string, std::string> weight_dq_;  // float constant -> dequantized value

  std::string fresh(const std::string& base) {
    std::string c = base;
    for (int k = 1; names_.count(c); ++k) c = base + "_" + std::to_string(k);
    names_.insert(c);
    return c;
  }
  bool onnx_value(const std::string& n) const { return producer_.count(n) || graph_inputs_.count(n) || inits_.count(n); }
  // The ONNX value a tensor is: its own name, or for a Constant layer's output (named
  // `(Unnamed Layer* N) [Constant]_output`, as TensorRT names it) the weights' ONNX name. "" if none.
  std::string onnx_name(TensorId t) const {
    const Tensor& T = net_.tensors[t];
    if (onnx_value(T.name)) return T.name;
    if (T.producer < 0 || net_.layers[T.producer].kind != LayerKind::kConstant) return "";
    const WeightsId w = net_.layers[T.producer].as<ConstantParams>().weights;
    return w >= 0 && onnx_value(net_.weights[w].name) ? net_.weights[w].name : "";
  }
  float scale_of(const std::string& n) const {
    auto it = num_.tensor_scales.find(n);
    return it == num_.tensor_scales.end() ? 0.f : it->second;
  }

  void raise_opset();
  bool convert_node(onnx::NodeProto& n, int opset);
  void choose_quantized();
  void choose_inputs(const Layer& L);
  std::vector<onnx::NodeProto> make_qdq(const std::string& src, const std::string& dst, float scale);
  void place(const std::string& value, std::vector<onnx::NodeProto> v);
  void insert_activation_qdq();
  void quantize_weights();
  bool quantize_weight(const std::string& w, const TP& wt, int axis);
  void rebuild_nodes();
};

void QdqExporter::raise_opset() {
  onnx::OperatorSetIdProto* def = nullptr;
  for (auto& o : *m_.mutable_opset_import())
    if (o.domain().empty() || o.domain() == "ai.onnx") def = &o;
  if (!def) {
    def = m_.add_opset_import();
    def->set_domain("");
  }
  const int opset = static_cast<int>(def->version());
  rep_.from_opset = opset;
  const int target = std::max(opset, std::max(opt_.opset, 13));
  if (opset < target) {
    for (auto& n : *g_->mutable_node()) {
      if (!n.domain().empty() && n.domain() != "ai.onnx") continue;
      rep_.converted_nodes += convert_node(n, opset);
    }
    def->set_version(target);
    if (m_.ir_version() < 7) m_.set_ir_version(7);
    rep_.notes.push_back(fmt::format("opset raised from {} to {} ({} nodes rewritten)", opset, target, rep_.converted_nodes));
  }
  rep_.to_opset = static_cast<int>(def->version());
}

// One node from `opset` to 13: attributes that became inputs move to new initializers. Returns
// whether the node changed; throws for ops whose meaning changed and cannot be converted.
bool QdqExporter::convert_node(onnx::NodeProto& n, int opset) {
  const std::string& op = n.op_type();
  const std::string where = fmt::format("{}: node '{}' ({})", onnx_in_, node_key(n), op);
  auto add_input_vec = [&](const std::string& attr, int pos) {
    const auto* a = find_attr(n, attr);
    if (!a) return false;
    std::vector<int64_t> v(a->ints().begin(), a->ints().end());
    TP t;
    set_i64_vec(&t, fresh(node_key(n) + "_" + attr), v);
    while (n.input_size() < pos) n.add_input("");
    if (n.input_size() == pos) n.add_input(t.name());
    else *n.mutable_input(pos) = t.name();
    new_inits_.push_back(std::move(t));
    remove_attr(&n, attr);
    return true;
  };
  if (op == "Clip" && opset < 11) {
    const auto* lo = find_attr(n, "min");
    const auto* hi = find_attr(n, "max");
    TP tl, th;
    set_scalar_f(&tl, fresh(node_key(n) + "_min"), lo ? lo->f() : -INFINITY);
    set_scalar_f(&th, fresh(node_key(n) + "_max"), hi ? hi->f() : INFINITY);
    n.add_input(tl.name());
    n.add_input(th.name());
    new_inits_.push_back(std::move(tl));
    new_inits_.push_back(std::move(th));
    remove_attr(&n, "min");
    remove_attr(&n, "max");
    return true;
  }
  if ((op == "Squeeze" || op == "Unsqueeze" || op == "ReduceSum") && opset < 13) return add_input_vec("axes", 1);
  if (op == "Split" && opset < 13) return add_input_vec("split", 1);
  if (op == "Slice" && opset < 10) return add_input_vec("starts", 1) | add_input_vec("ends", 2) | add_input_vec("axes", 3);
  if (op == "Pad" && opset < 11) {
    const auto* val = find_attr(n, "value");
    float v = val ? val->f() : 0.f;
    const bool changed = add_input_vec("pads", 1);
    if (val) {
      TP t;
      set_scalar_f(&t, fresh(node_key(n) + "_value"), v);
      n.add_input(t.name());
      new_inits_.push_back(std::move(t));
      remove_attr(&n, "value");
    }
    return changed;
  }
  if (op == "Dropout" && opset < 12) {
    remove_attr(&n, "ratio");
    return true;
  }
  if ((op == "Softmax" || op == "LogSoftmax" || op == "Hardmax") && opset < 13) {
    // Below 13 these flatten to 2-D at `axis`; the same as opset 13 when axis is the last dim.
    const auto* ax = find_attr(n, "axis");
    int64_t axis = ax ? ax->i() : 1;
    TensorId t = net_.find_tensor(n.input(0));
    if (t < 0) throw Error(where + ": cannot tell the input rank to convert it to opset 13");
    int64_t rank = static_cast<int64_t>(net_.tensors[t].dims.size());
    if (axis < 0) axis += rank;
    if (axis != rank - 1)
      throw Error(where + ": axis " + std::to_string(axis) + " of a rank-" + std::to_string(rank) +
                  " input changes meaning at opset 13; convert the model to opset 13 first");
    return false;
  }
  if (op == "Upsample" || (op == "Resize" && opset < 11) || (op == "TopK" && opset < 10))
    throw Error(where + ": cannot convert this op from opset " + std::to_string(opset) +
                " to 13; convert the model to opset 13 first");
  return false;
}

// As the emulation (and the DLA): an INT8 layer's output is stored quantized, so every consumer
// sees it quantized (Q/DQ right after the producer); a tensor an INT8 layer only reads is
// quantized on the way into that layer (a Q/DQ on that edge), other consumers keep it as is.
// A tensor made by the importer (a broadcast reshape of a constant, say) is quantized at its
// ONNX source, which is the same per-tensor rounding.
void QdqExporter::choose_quantized() {
  for (int i = 0; i < g_->node_size(); ++i)
    for (const auto& o : g_->node(i).output()) producer_[o] = i;
  for (const auto& i : g_->input()) graph_inputs_.insert(i.name());
  for (const auto& i : g_->initializer()) inits_.insert(i.name());
  const auto& prec = num_.layer_precision;
  for (size_t l = 0; l < net_.layers.size() && l < prec.size(); ++l) {
    if (prec[l] != Precision::kINT8) continue;
    ++rep_.int8_layers;
    const Layer& L = net_.layers[l];
    if (!L.onnx_node.empty()) int8_nodes_.insert(L.onnx_node);
    for (TensorId t : L.outputs) {
      const Tensor& T = net_.tensors[t];
      // Inside a fused Conv + BN (+ activation) block TensorRT keeps FP32: no Q/DQ there.
      if (T.type != DataType::kFloat || num_.unquantized.count(T.name)) continue;
      if (!onnx_value(T.name) || !producer_.count(T.name)) { skipped_.insert(T.name); continue; }
      if (written_set_.insert(T.name).second) written_.push_back(T.name);
    }
    choose_inputs(L);
  }
}

// The inputs of INT8 layer L: per-tensor reads, or per-channel weights (FC / MatMul B).
void QdqExporter::choose_inputs(const Layer& L) {
  for (TensorId t : L.inputs) {
    if (t < 0 || net_.tensors[t].type != DataType::kFloat || num_.unquantized.count(net_.tensors[t].name)) continue;
    const float sc = scale_of(net_.tensors[t].name);
    TensorId src = t;
    std::string sn = onnx_name(src);
    while (sn.empty()) {  // walk back through the importer's reshapes
      LayerId pl = net_.tensors[src].producer;
      if (pl < 0) break;
      const Layer& P = net_.layers[pl];
      if ((P.kind != LayerKind::kShuffle && P.kind != LayerKind::kIdentity) || P.inputs.empty()) break;
      src = P.inputs[0];
      sn = onnx_name(src);
    }
    if (sn.empty()) { skipped_.insert(net_.tensors[t].name); continue; }
    if (auto pc = num_.per_channel_axis.find(net_.tensors[t].name); pc != num_.per_channel_axis.end()) {
      // FC / MatMul weights: per output channel, counted from the last axis (the importer's
      // reshapes only add leading 1s).
      const int from_end = int(net_.tensors[t].dims.size()) - pc->second;
      per_channel_[{L.onnx_node, sn}] = int(net_.tensors[src].dims.size()) - from_end;
      continue;
    }
    reads_[{L.onnx_node, sn}] = sc;
  }
}

std::vector<onnx::NodeProto> QdqExporter::make_qdq(const std::string& src, const std::string& dst, float scale) {
  TP s, z;
  set_scalar_f(&s, fresh(src + "_scale"), scale);
  set_scalar_i8(&z, fresh(src + "_zero_point"), 0);
  std::string q = fresh(src + "_quantized");
  onnx::NodeProto qn, dn;
  qn.set_op_type("QuantizeLinear");
  qn.set_name(fresh(src + "_QuantizeLinear"));
  qn.add_input(src);
  qn.add_input(s.name());
  qn.add_input(z.name());
  qn.add_output(q);
  dn.set_op_type("DequantizeLinear");
  dn.set_name(fresh(src + "_DequantizeLinear"));
  dn.add_input(q);
  dn.add_input(s.name());
  dn.add_input(z.name());
  dn.add_output(dst);
  new_inits_.push_back(std::move(s));
  new_inits_.push_back(std::move(z));
  return std::vector<onnx::NodeProto>{qn, dn};
}

// Right after the value's producer, or at the head for graph inputs and initializers.
void QdqExporter::place(const std::string& value, std::vector<onnx::NodeProto> v) {
  auto p = producer_.find(value);
  auto& dst = p != producer_.end() ? after_[p->second] : head_;
  dst.insert(dst.end(), v.begin(), v.end());
}

void QdqExporter::insert_activation_qdq() {
  for (const std::string& t : written_) {
    const float sc = scale_of(t);
    if (!(sc > 0.f)) { skipped_.insert(t + " (no scale)"); continue; }
    std::string pre = fresh(t + "_prequant");
    renamed_outputs_[t] = pre;
    place(t, make_qdq(pre, t, sc));
    ++rep_.activations;
  }
  // Edge Q/DQ: one per (value, scale), shared by the INT8 readers that use that scale.
  std::map<std::pair<std::string, float>, std::string> edge_dq;
  for (const auto& [edge, sc] : reads_) {
    const std::string& v = edge.second;
    if (written_set_.count(v) && renamed_outputs_.count(v)) continue;  // already quantized for all
    if (!(sc > 0.f)) { skipped_.insert(v + " (no scale)"); continue; }
    auto key = std::make_pair(v, sc);
    auto it = edge_dq.find(key);
    if (it == edge_dq.end()) {
      std::string dq = fresh(v + "_dequantized");
      place(v, make_qdq(v, dq, sc));
      it = edge_dq.emplace(key, dq).first;
      ++rep_.activations;
    }
    rewire_[edge] = it->second;
  }
  rep_.skipped.assign(skipped_.begin(), skipped_.end());
}

// Per-channel weights of INT8 convolutions and of the FC / MatMul weights chosen above.
void QdqExporter::quantize_weights() {
  std::map<std::string, int> init_index;
  for (int i = 0; i < g_->initializer_size(); ++i) init_index[g_->initializer(i).name()] = i;
  std::map<std::string, const onnx::AttributeProto*> const_nodes;  // Constant output -> its value
  for (const auto& n : g_->node())
    if (n.op_type() == "Constant" && n.output_size() == 1 && (n.domain().empty() || n.domain() == "ai.onnx"))
      if (const auto* v = find_attr(n, "value"); v && v->has_t()) const_nodes[n.output(0)] = v;
  for (auto& n : *g_->mutable_node()) {
    if (n.input_size() < 2 || !int8_nodes_.count(node_key(n))) continue;
    const bool conv = n.op_type() == "Conv" || n.op_type() == "ConvTranspose";
    auto pc = per_channel_.find({node_key(n), n.input(1)});
    if (!conv && pc == per_channel_.end()) continue;
    const std::string w = n.input(1);
    const TP* wp = nullptr;
    auto it = init_index.find(w);
    if (it != init_index.end()) {
      wp = &g_->initializer(it->second);
    } else if (auto cn = const_nodes.find(w); cn != const_nodes.end()) {
      wp = &cn->second->t();  // a Constant node's value (PaddlePaddle exports weights this way)
    } else if (!weight_dq_.count(w)) {
      rep_.notes.push_back("node '" + node_key(n) + "': weights '" + w + "' are not constant; left in float");
      continue;
    }
    if (!weight_dq_.count(w)) {
      const TP& wt = *wp;
      if (wt.data_type() != TP::FLOAT || wt.dims_size() < 2) {
        rep_.notes.push_back("weights '" + w + "' are not float with >= 2 dims; left in float");
        continue;
      }
      const bool deconv = n.op_type() == "ConvTranspose";
      int64_t groups = 1;
      if (const auto* ga = find_attr(n, "group")) groups = ga->i();
      if (deconv && groups != 1) {
        rep_.notes.push_back("ConvTranspose '" + node_key(n) + "' has groups > 1: weights left in float");
        continue;
      }
      // Conv [K, C/g, ...]: axis 0; ConvTranspose [C, K/g, ...]: axis 1; MatMul B [K, N]: axis 1
      // (Gemm with transB: 0), as the emulation.
      const int axis = conv ? (deconv ? 1 : 0) : pc->second;
      if (!quantize_weight(w, wt, axis)) continue;
    }
    *n.mutable_input(1) = weight_dq_[w];
    if (!conv) per_channel_.erase(pc);
  }
  for (const auto& [edge, axis] : per_channel_)  // not a direct constant input of its node
    rep_.notes.push_back("weights '" + edge.second + "' of node '" + edge.first +
                         "' are not a constant input of that node; left in float");
}

// Weights w (value wt) as an int8 initializer + a per-channel DequantizeLinear along `axis`, at
// the head of the graph; weight_dq_[w] names its output. False (with a note): left in float.
bool QdqExporter::quantize_weight(const std::string& w, const TP& wt, int axis) {
  const std::string model_dir = std::filesystem::path(onnx_in_).parent_path().string();
  ConstPtr c = tensor_to_const(wt, model_dir, onnx_in_ + ": initializer '" + w + "'");
  if (axis < 0 || axis >= wt.dims_size()) {
    rep_.notes.push_back("weights '" + w + "': no output-channel axis; left in float");
    return false;
  }
  std::vector<int64_t> dims(wt.dims().begin(), wt.dims().end());
  const int64_t K = dims[axis];
  std::string q;
  const std::vector<float> scale = quantize_per_channel(*c, dims, axis, &q);
  TP qt, st, zt;
  qt.set_name(fresh(w + "_quantized"));
  qt.set_data_type(TP::INT8);
  for (int64_t d : dims) qt.add_dims(d);
  qt.set_raw_data(q);
  st.set_name(fresh(w + "_scale"));
  st.set_data_type(TP::FLOAT);
  st.add_dims(K);
  for (float s : scale) st.add_float_data(s);
  zt.set_name(fresh(w + "_zero_point"));
  zt.set_data_type(TP::INT8);
  zt.add_dims(K);
  zt.set_raw_data(std::string(static_cast<size_t>(K), '\0'));
  onnx::NodeProto dn;
  dn.set_op_type("DequantizeLinear");
  dn.set_name(fresh(w + "_DequantizeLinear"));
  dn.add_input(qt.name());
  dn.add_input(st.name());
  dn.add_input(zt.name());
  std::string out = fresh(w + "_dequantized");
  dn.add_output(out);
  auto* ax = dn.add_attribute();
  ax->set_name("axis");
  ax->set_type(onnx::AttributeProto::INT);
  ax->set_i(axis);
  head_.push_back(dn);
  new_inits_.push_back(std::move(qt));
  new_inits_.push_back(std::move(st));
  new_inits_.push_back(std::move(zt));
  weight_dq_[w] = out;
  ++rep_.weights;
  return true;
}

// The node list with the Q/DQ nodes in place and the readers rewired; float weights nothing reads
// any more are dropped (their dequantized copies take their names when free).
void QdqExporter::rebuild_nodes() {
  std::vector<onnx::NodeProto> nodes;
  nodes.reserve(g_->node_size() + head_.size() + 2 * after_.size());
  for (auto& h : head_) nodes.push_back(h);
  for (int i = 0; i < g_->node_size(); ++i) {
    onnx::NodeProto n = g_->node(i);
    const std::string key = node_key(n);
    for (auto& in : *n.mutable_input()) {
      auto r = rewire_.find({key, in});
      if (r != rewire_.end()) in = r->second;
    }
    for (auto& o : *n.mutable_output()) {
      auto r = renamed_outputs_.find(o);
      if (r != renamed_outputs_.end()) o = r->second;
    }
    nodes.push_back(std::move(n));
    auto a = after_.find(i);
    if (a != after_.end())
      for (auto& q : a->second) nodes.push_back(q);
  }
  std::set<std::string> renamed_weights;  // float weights replaced by a DQ output of their name
  {
    std::set<std::string> still_used;
    for (const auto& n : nodes)
      for (const auto& in : n.input()) still_used.insert(in);
    for (const auto& o : g_->output()) still_used.insert(o.name());
    std::vector<onnx::NodeProto> kept;
    kept.reserve(nodes.size());
    for (auto& n : nodes)
      if (!(n.op_type() == "Constant" && n.output_size() == 1 && weight_dq_.count(n.output(0)) &&
            !still_used.count(n.output(0))))
        kept.push_back(std::move(n));
    nodes.swap(kept);
    renamed_weights = name_dequantized_weights(&nodes, weight_dq_, still_used);
  }
  g_->clear_node();
  for (auto& n : nodes) *g_->add_node() = std::move(n);
  // Initializers no longer used (weights replaced by their int8 copies) are dropped.
  std::set<std::string> used;
  for (const auto& n : g_->node())
    for (const auto& in : n.input()) used.insert(in);
  for (const auto& o : g_->output()) used.insert(o.name());
  auto* is = g_->mutable_initializer();
  for (int i = is->size() - 1; i >= 0; --i)
    if ((!used.count(is->Get(i).name()) && weight_dq_.count(is->Get(i).name())) || renamed_weights.count(is->Get(i).name()))
      is->DeleteSubrange(i, 1);
  for (auto& t : new_inits_) *g_->add_initializer() = std::move(t);
  // A graph input that also had an initializer (old-style default) keeps working: nothing to do.
}

}  // namespace

QdqExportReport export_qdq(const std::string& onnx_in, const std::string& onnx_out, const Network& net,
                           const Numerics& num, const QdqExportOptions& opt) {
  return QdqExporter(onnx_in, net, num, opt).run(onnx_out);
}

}  // namespace tandem
