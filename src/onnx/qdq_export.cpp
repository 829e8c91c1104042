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

}  // namespace

QdqExportReport export_qdq(const std::string& onnx_in, const std::string& onnx_out, const Network& net,
                           const Numerics& num, const QdqExportOptions& opt) {
  QdqExportReport rep;
  std::ifstream f(onnx_in, std::ios::binary);
  if (!f) throw Error(onnx_in + ": cannot read: " + std::strerror(errno));
  std::stringstream ss;
  ss << f.rdbuf();
  onnx::ModelProto m;
  if (!m.ParseFromString(ss.str())) throw Error(onnx_in + ": not a valid ONNX model (protobuf parse failed)");
  onnx::GraphProto* g = m.mutable_graph();
  for (const auto& init : g->initializer())
    if (init.data_location() == TP::EXTERNAL)
      throw Error(onnx_in + ": initializer '" + init.name() + "' has external data; Q/DQ export needs it inline");

  // ---- names in use, and a fresh-name helper ---------------------------------------------
  std::set<std::string> names;
  for (const auto& i : g->input()) names.insert(i.name());
  for (const auto& i : g->initializer()) names.insert(i.name());
  for (const auto& n : g->node())
    for (const auto& o : n.output()) names.insert(o);
  auto fresh = [&](const std::string& base) {
    std::string c = base;
    for (int k = 1; names.count(c); ++k) c = base + "_" + std::to_string(k);
    names.insert(c);
    return c;
  };

  // ---- opset -------------------------------------------------------------------------------
  int opset = 0;
  onnx::OperatorSetIdProto* def = nullptr;
  for (auto& o : *m.mutable_opset_import())
    if (o.domain().empty() || o.domain() == "ai.onnx") def = &o;
  if (!def) {
    def = m.add_opset_import();
    def->set_domain("");
  }
  opset = static_cast<int>(def->version());
  rep.from_opset = opset;
  const int target = std::max(opset, std::max(opt.opset, 13));
  std::vector<TP> new_inits;
  if (opset < target) {
    for (auto& n : *g->mutable_node()) {
      if (!n.domain().empty() && n.domain() != "ai.onnx") continue;
      const std::string& op = n.op_type();
      const std::string where = fmt::format("{}: node '{}' ({})", onnx_in, node_key(n), op);
      auto add_input_vec = [&](const std::string& attr, int pos) {
        const auto* a = find_attr(n, attr);
        if (!a) return false;
        std::vector<int64_t> v(a->ints().begin(), a->ints().end());
        TP t;
        set_i64_vec(&t, fresh(node_key(n) + "_" + attr), v);
        while (n.input_size() < pos) n.add_input("");
        if (n.input_size() == pos) n.add_input(t.name());
        else *n.mutable_input(pos) = t.name();
        new_inits.push_back(std::move(t));
        remove_attr(&n, attr);
        return true;
      };
      bool changed = false;
      if (op == "Clip" && opset < 11) {
        const auto* lo = find_attr(n, "min");
        const auto* hi = find_attr(n, "max");
        TP tl, th;
        set_scalar_f(&tl, fresh(node_key(n) + "_min"), lo ? lo->f() : -INFINITY);
        set_scalar_f(&th, fresh(node_key(n) + "_max"), hi ? hi->f() : INFINITY);
        n.add_input(tl.name());
        n.add_input(th.name());
        new_inits.push_back(std::move(tl));
        new_inits.push_back(std::move(th));
        remove_attr(&n, "min");
        remove_attr(&n, "max");
        changed = true;
      } else if ((op == "Squeeze" || op == "Unsqueeze" || op == "ReduceSum") && opset < 13) {
        changed = add_input_vec("axes", 1);
      } else if (op == "Split" && opset < 13) {
        changed = add_input_vec("split", 1);
      } else if (op == "Slice" && opset < 10) {
        changed = add_input_vec("starts", 1) | add_input_vec("ends", 2) | add_input_vec("axes", 3);
      } else if (op == "Pad" && opset < 11) {
        const auto* val = find_attr(n, "value");
        float v = val ? val->f() : 0.f;
        changed = add_input_vec("pads", 1);
        if (val) {
          TP t;
          set_scalar_f(&t, fresh(node_key(n) + "_value"), v);
          n.add_input(t.name());
          new_inits.push_back(std::move(t));
          remove_attr(&n, "value");
        }
      } else if (op == "Dropout" && opset < 12) {
        remove_attr(&n, "ratio");
        changed = true;
      } else if ((op == "Softmax" || op == "LogSoftmax" || op == "Hardmax") && opset < 13) {
        // Below 13 these flatten to 2-D at `axis`; the same as opset 13 when axis is the last dim.
        const auto* ax = find_attr(n, "axis");
        int64_t axis = ax ? ax->i() : 1;
        TensorId t = net.find_tensor(n.input(0));
        if (t < 0) throw Error(where + ": cannot tell the input rank to convert it to opset 13");
        int64_t rank = static_cast<int64_t>(net.tensors[t].dims.size());
        if (axis < 0) axis += rank;
        if (axis != rank - 1)
          throw Error(where + ": axis " + std::to_string(axis) + " of a rank-" + std::to_string(rank) +
                      " input changes meaning at opset 13; convert the model to opset 13 first");
      } else if (op == "Upsample" || (op == "Resize" && opset < 11) || (op == "TopK" && opset < 10)) {
        throw Error(where + ": cannot convert this op from opset " + std::to_string(opset) +
                    " to 13; convert the model to opset 13 first");
      }
      rep.converted_nodes += changed;
    }
    def->set_version(target);
    if (m.ir_version() < 7) m.set_ir_version(7);
    rep.notes.push_back(fmt::format("opset raised from {} to {} ({} nodes rewritten)", opset, target, rep.converted_nodes));
  }
  rep.to_opset = static_cast<int>(def->version());

  // ---- what to quantize ----------------------------------------------------------------------
  const auto& prec = num.layer_precision;
  std::map<std::string, int> producer;  // ONNX value -> node index
  for (int i = 0; i < g->node_size(); ++i)
    for (const auto& o : g->node(i).output()) producer[o] = i;
  std::set<std::string> graph_inputs, inits;
  for (const auto& i : g->input()) graph_inputs.insert(i.name());
  for (const auto& i : g->initializer()) inits.insert(i.name());
  auto onnx_value = [&](const std::string& n) { return producer.count(n) || graph_inputs.count(n) || inits.count(n); };
  auto scale_of = [&](const std::string& n) -> float {
    auto it = num.tensor_scales.find(n);
    return it == num.tensor_scales.end() ? 0.f : it->second;
  };

  // As the emulation (and the DLA): an INT8 layer's output is stored quantized, so every consumer
  // sees it quantized (Q/DQ right after the producer); a tensor an INT8 layer only reads is
  // quantized on the way into that layer (a Q/DQ on that edge), other consumers keep it as is.
  // A tensor made by the importer (a broadcast reshape of a constant, say) is quantized at its
  // ONNX source, which is the same per-tensor rounding.
  std::set<std::string> int8_nodes;
  std::vector<std::string> written;                            // ONNX names, network order
  std::set<std::string> written_set;
  std::map<std::pair<std::string, std::string>, float> reads;  // (node, ONNX value) -> scale
  std::map<std::pair<std::string, std::string>, int> per_channel;  // (node, ONNX weights) -> axis
  std::set<std::string> skipped;
  for (size_t l = 0; l < net.layers.size() && l < prec.size(); ++l) {
    if (prec[l] != Precision::kINT8) continue;
    ++rep.int8_layers;
    const Layer& L = net.layers[l];
    if (!L.onnx_node.empty()) int8_nodes.insert(L.onnx_node);
    for (TensorId t : L.outputs) {
      const Tensor& T = net.tensors[t];
      // Inside a fused Conv + BN (+ activation) block TensorRT keeps FP32: no Q/DQ there.
      if (T.type != DataType::kFloat || num.unquantized.count(T.name)) continue;
      if (!onnx_value(T.name) || !producer.count(T.name)) { skipped.insert(T.name); continue; }
      if (written_set.insert(T.name).second) written.push_back(T.name);
    }
    for (TensorId t : L.inputs) {
      if (t < 0 || net.tensors[t].type != DataType::kFloat || num.unquantized.count(net.tensors[t].name)) continue;
      const float sc = scale_of(net.tensors[t].name);
      TensorId src = t;
      while (!onnx_value(net.tensors[src].name)) {  // walk back through the importer's reshapes
        LayerId pl = net.tensors[src].producer;
        if (pl < 0) break;
        const Layer& P = net.layers[pl];
        if ((P.kind != LayerKind::kShuffle && P.kind != LayerKind::kIdentity) || P.inputs.empty()) break;
        src = P.inputs[0];
      }
      const std::string& sn = net.tensors[src].name;
      if (!onnx_value(sn)) { skipped.insert(net.tensors[t].name); continue; }
      if (auto pc = num.per_channel_axis.find(net.tensors[t].name); pc != num.per_channel_axis.end()) {
        // FC / MatMul weights: per output channel, counted from the last axis (the importer's
        // reshapes only add leading 1s).
        const int from_end = int(net.tensors[t].dims.size()) - pc->second;
        per_channel[{L.onnx_node, sn}] = int(net.tensors[src].dims.size()) - from_end;
        continue;
      }
      reads[{L.onnx_node, sn}] = sc;
    }
  }

  std::vector<onnx::NodeProto> head;                  // Q/DQ of graph inputs, initializers, weights
  std::map<int, std::vector<onnx::NodeProto>> after;  // node index -> Q/DQ after it
  auto make_qdq = [&](const std::string& src, const std::string& dst, float scale) {
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
    new_inits.push_back(std::move(s));
    new_inits.push_back(std::move(z));
    return std::vector<onnx::NodeProto>{qn, dn};
  };
  auto place = [&](const std::string& value, std::vector<onnx::NodeProto> v) {
    auto p = producer.find(value);
    auto& dst = p != producer.end() ? after[p->second] : head;
    dst.insert(dst.end(), v.begin(), v.end());
  };
  std::map<std::string, std::string> renamed_outputs;  // produced value -> its pre-quant name
  for (const std::string& t : written) {
    const float sc = scale_of(t);
    if (!(sc > 0.f)) { skipped.insert(t + " (no scale)"); continue; }
    std::string pre = fresh(t + "_prequant");
    renamed_outputs[t] = pre;
    place(t, make_qdq(pre, t, sc));
    ++rep.activations;
  }
  // Edge Q/DQ: one per (value, scale), shared by the INT8 readers that use that scale.
  std::map<std::pair<std::string, float>, std::string> edge_dq;
  std::map<std::pair<std::string, std::string>, std::string> rewire;  // (node, value) -> dq value
  for (const auto& [edge, sc] : reads) {
    const std::string& v = edge.second;
    if (written_set.count(v) && renamed_outputs.count(v)) continue;  // already quantized for all
    if (!(sc > 0.f)) { skipped.insert(v + " (no scale)"); continue; }
    auto key = std::make_pair(v, sc);
    auto it = edge_dq.find(key);
    if (it == edge_dq.end()) {
      std::string dq = fresh(v + "_dequantized");
      place(v, make_qdq(v, dq, sc));
      it = edge_dq.emplace(key, dq).first;
      ++rep.activations;
    }
    rewire[edge] = it->second;
  }
  rep.skipped.assign(skipped.begin(), skipped.end());

  // ---- per-channel weights of INT8 convolutions ---------------------------------------------
  std::map<std::string, int> init_index;
  for (int i = 0; i < g->initializer_size(); ++i) init_index[g->initializer(i).name()] = i;
  std::map<std::string, const onnx::AttributeProto*> const_nodes;  // Constant output -> its value
  for (const auto& n : g->node())
    if (n.op_type() == "Constant" && n.output_size() == 1 && (n.domain().empty() || n.domain() == "ai.onnx"))
      if (const auto* v = find_attr(n, "value"); v && v->has_t()) const_nodes[n.output(0)] = v;
  std::map<std::string, std::string> weight_dq;  // float constant -> dequantized value
  const std::string model_dir = std::filesystem::path(onnx_in).parent_path().string();
  for (auto& n : *g->mutable_node()) {
    if (n.input_size() < 2 || !int8_nodes.count(node_key(n))) continue;
    const bool conv = n.op_type() == "Conv" || n.op_type() == "ConvTranspose";
    auto pc = per_channel.find({node_key(n), n.input(1)});
    if (!conv && pc == per_channel.end()) continue;
    const std::string w = n.input(1);
    const TP* wp = nullptr;
    auto it = init_index.find(w);
    if (it != init_index.end()) {
      wp = &g->initializer(it->second);
    } else if (auto cn = const_nodes.find(w); cn != const_nodes.end()) {
      wp = &cn->second->t();  // a Constant node's value (PaddlePaddle exports weights this way)
    } else if (!weight_dq.count(w)) {
      rep.notes.push_back("node '" + node_key(n) + "': weights '" + w + "' are not constant; left in float");
      continue;
    }
    if (!weight_dq.count(w)) {
      const TP& wt = *wp;
      if (wt.data_type() != TP::FLOAT || wt.dims_size() < 2) {
        rep.notes.push_back("weights '" + w + "' are not float with >= 2 dims; left in float");
        continue;
      }
      const bool deconv = n.op_type() == "ConvTranspose";
      int64_t groups = 1;
      if (const auto* ga = find_attr(n, "group")) groups = ga->i();
      if (deconv && groups != 1) {
        rep.notes.push_back("ConvTranspose '" + node_key(n) + "' has groups > 1: weights left in float");
        continue;
      }
      ConstPtr c = tensor_to_const(wt, model_dir, onnx_in + ": initializer '" + w + "'");
      // Conv [K, C/g, ...]: axis 0; ConvTranspose [C, K/g, ...]: axis 1; MatMul B [K, N]: axis 1
      // (Gemm with transB: 0), as the emulation.
      const int axis = conv ? (deconv ? 1 : 0) : pc->second;
      if (axis < 0 || axis >= wt.dims_size()) {
        rep.notes.push_back("weights '" + w + "': no output-channel axis; left in float");
        continue;
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
      head.push_back(dn);
      new_inits.push_back(std::move(qt));
      new_inits.push_back(std::move(st));
      new_inits.push_back(std::move(zt));
      weight_dq[w] = out;
      ++rep.weights;
    }
    *n.mutable_input(1) = weight_dq[w];
    if (!conv) per_channel.erase(pc);
  }
  for (const auto& [edge, axis] : per_channel)  // not a direct constant input of its node
    rep.notes.push_back("weights '" + edge.second + "' of node '" + edge.first +
                        "' are not a constant input of that node; left in float");

  // ---- rebuild the node list ----------------------------------------------------------------
  std::vector<onnx::NodeProto> nodes;
  nodes.reserve(g->node_size() + head.size() + 2 * after.size());
  for (auto& h : head) nodes.push_back(h);
  for (int i = 0; i < g->node_size(); ++i) {
    onnx::NodeProto n = g->node(i);
    const std::string key = node_key(n);
    for (auto& in : *n.mutable_input()) {
      auto r = rewire.find({key, in});
      if (r != rewire.end()) in = r->second;
    }
    for (auto& o : *n.mutable_output()) {
      auto r = renamed_outputs.find(o);
      if (r != renamed_outputs.end()) o = r->second;
    }
    nodes.push_back(std::move(n));
    auto a = after.find(i);
    if (a != after.end())
      for (auto& q : a->second) nodes.push_back(q);
  }
  std::set<std::string> renamed_weights;  // float weights replaced by a DQ output of their name
  {
    std::set<std::string> still_used;
    for (const auto& n : nodes)
      for (const auto& in : n.input()) still_used.insert(in);
    for (const auto& o : g->output()) still_used.insert(o.name());
    std::vector<onnx::NodeProto> kept;
    kept.reserve(nodes.size());
    for (auto& n : nodes)
      if (!(n.op_type() == "Constant" && n.output_size() == 1 && weight_dq.count(n.output(0)) &&
            !still_used.count(n.output(0))))
        kept.push_back(std::move(n));
    nodes.swap(kept);
    renamed_weights = name_dequantized_weights(&nodes, weight_dq, still_used);
  }
  g->clear_node();
  for (auto& n : nodes) *g->add_node() = std::move(n);
  // Initializers no longer used (weights replaced by their int8 copies) are dropped.
  std::set<std::string> used;
  for (const auto& n : g->node())
    for (const auto& in : n.input()) used.insert(in);
  for (const auto& o : g->output()) used.insert(o.name());
  auto* is = g->mutable_initializer();
  for (int i = is->size() - 1; i >= 0; --i)
    if ((!used.count(is->Get(i).name()) && weight_dq.count(is->Get(i).name())) || renamed_weights.count(is->Get(i).name()))
      is->DeleteSubrange(i, 1);
  for (auto& t : new_inits) *g->add_initializer() = std::move(t);
  // A graph input that also had an initializer (old-style default) keeps working: nothing to do.

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
  return rep;
}

}  // namespace tandem
