// Q/DQ import (explicit quantization, docs/onnx-import.md "QuantizeLinear / DequantizeLinear"):
//  - QuantizeLinear -> DequantizeLinear pairs on activations are removed before import; their
//    scale becomes the tensor's INT8 scale (ModelInfo::qdq_scales), as TensorRT reads them;
//  - Q/DQ on constants (weights) fold to fp32 constants at import (ONNX arithmetic);
//  - a Q or DQ whose quantized side is a graph input or output is computed as layers.
#include <cmath>
#include <fmt/format.h>
#include <map>
#include <set>

#include "importer.h"
#include "tandem/numerics.h"

namespace tandem::onnx_detail {

namespace {

bool default_domain(const onnx::NodeProto& n) { return n.domain().empty() || n.domain() == "ai.onnx"; }
std::string key_of(const onnx::NodeProto& n) {
  return n.name().empty() && n.output_size() ? "node_of_" + n.output(0) : n.name();
}

// TensorRT's rules for the scale and zero point of a Q/DQ that quantizes (S: TensorRT's ONNX
// parser, QuantizeLinear/DequantizeLinear): positive finite float scales, int8 zero points that
// are all 0 (symmetric quantization). `where` names the file and node.
void check_trt_qdq(const Const& scale, const Const* zp, const std::string& where) {
  if (scale.type != DataType::kFloat) throw Error(where + ": scale must be float");
  for (int64_t i = 0; i < scale.count(); ++i)
    if (!(scale.f(i) > 0) || !std::isfinite(scale.f(i)))
      throw Error(fmt::format("{}: scale {} is not a positive number", where, scale.f(i)));
  if (!zp) throw Error(where + ": no zero point: ONNX's default is uint8, TensorRT quantizes to int8 only (give an int8 zero point of 0)");
  if (zp->type != DataType::kInt8)
    throw Error(fmt::format("{}: zero point type {} is not supported (TensorRT quantizes to int8 only)", where, to_string(zp->type)));
  for (int64_t i = 0; i < zp->count(); ++i)
    if (zp->i(i) != 0)
      throw Error(fmt::format("{}: zero point {} is not 0 (TensorRT supports symmetric quantization only)", where, zp->i(i)));
}

// Scale (and zero point) as [1.., C at axis, ..1] for a per-axis Q/DQ of a rank-r tensor.
ConstPtr along_axis(const ConstPtr& c, int axis, size_t r) {
  if (c->count() == 1 || r == 0) return c;
  Dims d(r, 1);
  d[size_t(axis)] = c->count();
  auto o = make_const("", c->type, d);
  for (int64_t i = 0; i < c->count(); ++i) o->set_f(i, c->f(i));
  return o;
}

struct QdqArgs {
  ConstPtr scale, zp;
  int axis = 0;
  DataType qtype = DataType::kUInt8;
};
QdqArgs qdq_args(Importer& I, const Dims& x_dims) {
  QdqArgs a;
  a.scale = I.cin(1, "scale");
  a.zp = I.cin_opt(2, "zero point");
  if (I.attr_i("block_size", 0) != 0) I.fail("blocked quantization (block_size) is not supported");
  if (a.scale->type != DataType::kFloat) I.fail("scale must be float");
  for (int64_t i = 0; i < a.scale->count(); ++i)
    if (!(a.scale->f(i) > 0) || !std::isfinite(a.scale->f(i))) I.fail(fmt::format("scale {} is not a positive number", a.scale->f(i)));
  a.qtype = a.zp ? a.zp->type : DataType::kUInt8;
  if (a.qtype != DataType::kInt8 && a.qtype != DataType::kUInt8)
    I.fail(fmt::format("zero point type {} is not supported (int8 or uint8)", to_string(a.qtype)));
  if (a.zp && a.zp->count() != a.scale->count()) I.fail("scale and zero point differ in size");
  a.axis = a.scale->count() > 1 ? I.axis(I.attr_i("axis", 1), x_dims.size()) : 0;
  if (a.scale->count() > 1 && (a.scale->dims.size() != 1 || x_dims[size_t(a.axis)] != a.scale->count()))
    I.fail(fmt::format("scale has {} values for axis {} of dims {}", a.scale->count(), a.axis, dims_to_string(x_dims)));
  return a;
}
int64_t channel_of(int64_t i, const Dims& d, int axis) {
  int64_t inner = 1;
  for (size_t k = size_t(axis) + 1; k < d.size(); ++k) inner *= d[k];
  return (i / inner) % d[size_t(axis)];
}

using TOuts = std::vector<TensorId>;
using COuts = std::vector<ConstPtr>;

// y = saturate(round_half_even(x / s) + zp): DIV, Unary ROUND, SUM, Activation CLIP, Cast.
TOuts op_quantize(Importer& I) {
  const TensorId x = I.tin(0);
  const QdqArgs a = qdq_args(I, I.dims(x));
  const size_t r = I.rank(x);
  std::vector<TensorId> v{x, I.const_tensor(along_axis(a.scale, a.axis, r))};
  I.broadcast_ranks(v);
  TensorId t = I.add(LayerKind::kElementWise, ElementWiseParams{ElementWiseOp::kDiv}, v);
  t = I.add(LayerKind::kUnary, UnaryParams{UnaryOp::kRound}, {t});
  if (a.zp) {
    auto zf = make_const("", DataType::kFloat, a.zp->dims);
    for (int64_t i = 0; i < a.zp->count(); ++i) zf->set_f(i, double(a.zp->i(i)));
    std::vector<TensorId> w{t, I.const_tensor(along_axis(zf, a.axis, r))};
    I.broadcast_ranks(w);
    t = I.add(LayerKind::kElementWise, ElementWiseParams{ElementWiseOp::kSum}, w);
  }
  const bool s8 = a.qtype == DataType::kInt8;
  t = I.add(LayerKind::kActivation, ActivationParams{ActivationType::kClip, s8 ? -128.f : 0.f, s8 ? 127.f : 255.f}, {t});
  return {I.add(LayerKind::kCast, CastParams{a.qtype}, {t})};
}

// y = (x - zp) * s: Cast, SUB, PROD.
TOuts op_dequantize(Importer& I) {
  const TensorId x = I.tin(0);
  if (I.dtype(x) != DataType::kInt8 && I.dtype(x) != DataType::kUInt8 && I.dtype(x) != DataType::kInt32)
    I.fail(fmt::format("input type {} is not supported (int8, uint8 or int32)", to_string(I.dtype(x))));
  const QdqArgs a = qdq_args(I, I.dims(x));
  const size_t r = I.rank(x);
  TensorId t = I.add(LayerKind::kCast, CastParams{DataType::kFloat}, {x});
  if (a.zp) {
    auto zf = make_const("", DataType::kFloat, a.zp->dims);
    for (int64_t i = 0; i < a.zp->count(); ++i) zf->set_f(i, double(a.zp->i(i)));
    std::vector<TensorId> w{t, I.const_tensor(along_axis(zf, a.axis, r))};
    I.broadcast_ranks(w);
    t = I.add(LayerKind::kElementWise, ElementWiseParams{ElementWiseOp::kSub}, w);
  }
  std::vector<TensorId> v{t, I.const_tensor(along_axis(a.scale, a.axis, r))};
  I.broadcast_ranks(v);
  return {I.add(LayerKind::kElementWise, ElementWiseParams{ElementWiseOp::kProd}, v)};
}

// Constant inputs (weights): TensorRT's rules (int8, zero point 0), computed in float as ONNX.
COuts fold_quantize(Importer& I) {
  const ConstPtr x = I.cin(0, "input");
  const QdqArgs a = qdq_args(I, x->dims);
  check_trt_qdq(*a.scale, a.zp.get(), fmt::format("{}: node '{}' (QuantizeLinear)", I.path_, I.node_name_));
  auto o = make_const("", DataType::kInt8, x->dims);
  for (int64_t i = 0; i < x->count(); ++i) {
    const float s = float(a.scale->f(a.scale->count() > 1 ? channel_of(i, x->dims, a.axis) : 0));
    o->set_i(i, int64_t(quantize_int8(float(x->f(i)), s)));  // s > 0: checked above
  }
  return {o};
}
COuts fold_dequantize(Importer& I) {
  const ConstPtr x = I.cin(0, "input");
  const QdqArgs a = qdq_args(I, x->dims);
  check_trt_qdq(*a.scale, a.zp.get(), fmt::format("{}: node '{}' (DequantizeLinear)", I.path_, I.node_name_));
  if (x->type != DataType::kInt8)
    I.fail(fmt::format("input type {} is not supported (TensorRT dequantizes int8 only)", to_string(x->type)));
  auto o = make_const("", DataType::kFloat, x->dims);
  for (int64_t i = 0; i < x->count(); ++i) {
    const float s = float(a.scale->f(a.scale->count() > 1 ? channel_of(i, x->dims, a.axis) : 0));
    o->set_f(i, double(float(x->i(i)) * s));  // one float rounding, as ONNX
  }
  return {o};
}

}  // namespace

void register_qdq_ops(std::unordered_map<std::string, OpFn>& m) {
  m["QuantizeLinear"] = op_quantize;
  m["DequantizeLinear"] = op_dequantize;
}
void register_qdq_folders(std::unordered_map<std::string, FoldFn>& m) {
  m["QuantizeLinear"] = fold_quantize;
  m["DequantizeLinear"] = fold_dequantize;
}

// ---- the pre-pass: Q -> DQ pairs on activations ---------------------------------------------
void strip_qdq_pairs(onnx::GraphProto* g, const std::string& path, const std::string& dir,
                     std::map<std::string, float>* scales) {
  std::map<int, std::string> q_input_rename;
  std::map<std::string, std::string> init_rename_map;
  auto* init_rename = &init_rename_map;
  std::map<std::string, const onnx::TensorProto*> consts;
  for (const auto& t : g->initializer()) consts[t.name()] = &t;
  std::map<std::string, int> producer;
  std::map<std::string, std::vector<int>> readers;
  for (int i = 0; i < g->node_size(); ++i) {
    const auto& n = g->node(i);
    for (const auto& o : n.output()) producer[o] = i;
    for (const auto& in : n.input()) readers[in].push_back(i);
    if (n.op_type() == "Constant" && n.output_size() == 1)
      for (const auto& a : n.attribute())
        if (a.name() == "value" && a.has_t()) consts[n.output(0)] = &a.t();
  }
  std::set<std::string> graph_io;
  for (const auto& o : g->output()) graph_io.insert(o.name());
  std::set<std::string> graph_outputs = graph_io;
  for (const auto& i : g->input()) graph_io.insert(i.name());
  auto const_of = [&](const onnx::NodeProto& n, int k, const std::string& where) -> ConstPtr {
    if (n.input_size() <= k || n.input(k).empty()) return nullptr;
    auto it = consts.find(n.input(k));
    if (it == consts.end()) return nullptr;
    return tensor_to_const(*it->second, dir, where);
  };
  std::set<int> removed;
  std::map<std::string, std::string> subst, out_rename;
  for (int i = 0; i < g->node_size(); ++i) {
    const auto& q = g->node(i);
    if (q.op_type() != "QuantizeLinear" || !default_domain(q) || q.input_size() < 2 || q.output_size() != 1) continue;
    const std::string& x = q.input(0);
    const std::string& y = q.output(0);
    if (graph_outputs.count(y) || !consts.count(q.input(1))) continue;  // standalone
    auto pd = producer.find(x);
    if (pd != producer.end() && g->node(pd->second).op_type() == "DequantizeLinear") continue;  // chains: literal
    const auto& rd = readers[y];
    bool pair = !rd.empty();
    for (int r : rd) pair = pair && g->node(r).op_type() == "DequantizeLinear" && default_domain(g->node(r)) && g->node(r).input(0) == y;
    if (!pair) continue;
    const std::string where = fmt::format("{}: node '{}' (QuantizeLinear)", path, key_of(q));
    ConstPtr s = const_of(q, 1, where), zp = const_of(q, 2, where);
    check_trt_qdq(*s, zp.get(), where);
    const float scale = float(s->f(0));
    std::vector<std::string> ys;
    for (int r : rd) {
      const auto& dq = g->node(r);
      const std::string dw = fmt::format("{}: node '{}' (DequantizeLinear)", path, key_of(dq));
      ConstPtr ds = const_of(dq, 1, dw), dz = const_of(dq, 2, dw);
      if (!ds) throw Error(dw + ": scale must be a constant");
      check_trt_qdq(*ds, dz.get(), dw);
      bool same = ds->count() == s->count();
      for (int64_t k = 0; same && k < s->count(); ++k) same = float(ds->f(k)) == float(s->f(k));
      if (!same) throw Error(fmt::format("{}: scale differs from its QuantizeLinear's ({})", dw, scale));
      removed.insert(r);
      ys.push_back(dq.output(0));
    }
    if (consts.count(x)) {  // a constant: the pair folds at import; the result keeps x's name
      const bool own = readers[x].size() == 1 && !graph_io.count(x) && ys.size() == 1 &&
                       !consts.count(x + "__float");
      if (own) {
        for (int r : rd) removed.erase(r);
        (*init_rename)[x] = x + "__float";  // the float original, read by the Q only
        q_input_rename[i] = x + "__float";
        out_rename[ys[0]] = x;
        subst[ys[0]] = x;
      }
      if (s->count() == 1) scales->emplace(own ? x : ys[0], scale);  // per-axis weights: folded only
      for (int r : rd) removed.erase(r);
      continue;
    }
    if (s->count() != 1) throw Error(where + ": per-axis scale on an activation (TensorRT quantizes activations per tensor)");
    removed.insert(i);
    // The tensor keeps the name it has before the Q (the producer's output), except for tandem's
    // own export of a quantized layer output, t_prequant -> Q -> DQ -> t: there it is t.
    const bool rename = pd != producer.end() && readers[x].size() == 1 && !graph_io.count(x) && ys.size() == 1 &&
                        !out_rename.count(x) && x.rfind(ys[0] + "_prequant", 0) == 0;
    std::string name = x;
    if (rename) {
      out_rename[x] = ys[0];
      name = ys[0];
    } else {
      for (const auto& yy : ys) subst[yy] = x;
    }
    scales->emplace(name, scale);  // the first pair wins when a tensor has several
  }
  if (removed.empty() && q_input_rename.empty()) return;
  std::vector<onnx::NodeProto> kept;
  for (int i = 0; i < g->node_size(); ++i) {
    if (removed.count(i)) continue;
    onnx::NodeProto n = g->node(i);
    if (auto it = q_input_rename.find(i); it != q_input_rename.end()) {
      *n.mutable_input(0) = it->second;
      kept.push_back(std::move(n));
      continue;
    }
    for (auto& in : *n.mutable_input())
      if (auto it = subst.find(in); it != subst.end()) in = it->second;
    for (auto& o : *n.mutable_output())
      if (auto it = out_rename.find(o); it != out_rename.end()) o = it->second;
    kept.push_back(std::move(n));
  }
  // A DQ output that is a graph output and was substituted: an Identity keeps the name.
  for (const auto& [yy, xx] : subst)
    if (graph_outputs.count(yy)) {
      onnx::NodeProto id;
      id.set_op_type("Identity");
      id.add_input(xx);
      id.add_output(yy);
      kept.push_back(std::move(id));
    }
  for (auto& n : kept)
    if (n.op_type() == "Constant" && n.output_size() == 1)
      if (auto it = init_rename_map.find(n.output(0)); it != init_rename_map.end()) *n.mutable_output(0) = it->second;
  for (auto& t : *g->mutable_initializer())
    if (auto it = init_rename_map.find(t.name()); it != init_rename_map.end()) t.set_name(it->second);
  g->clear_node();
  for (auto& n : kept) *g->add_node() = std::move(n);
}

}  // namespace tandem::onnx_detail
