// Import-time evaluation of shape-only and constant-only subgraphs (ModelInfo::folded_nodes).
#include <cmath>
#include <fmt/format.h>
#include <numeric>

#include "importer.h"
#include "tandem/broadcast.h"
#include "tandem/op_semantics.h"

namespace tandem::onnx_detail {

namespace {

using Outs = std::vector<ConstPtr>;
constexpr int64_t kMaxFold = int64_t{1} << 26;  // larger results stay layers

bool is_float(DataType t) { return t == DataType::kFloat || t == DataType::kHalf || t == DataType::kBFloat16; }

ConstPtr out_const(Importer& I, DataType t, Dims d) {
  const int64_t n = checked_volume(d, fmt::format("{}: node '{}'", I.path_, I.node_name_));
  if (n > kMaxFold) return nullptr;
  return make_const("", t, std::move(d));
}

ConstPtr copy_reshaped(const ConstPtr& c, Dims d) {
  auto o = std::make_shared<Const>();
  o->type = c->type;
  o->dims = std::move(d);
  o->ptr = c->ptr;  // views are fine: the source outlives the import
  o->nbytes = c->nbytes;
  if (!c->owned.empty() && c->ptr == c->owned.data()) {  // owned: share by copy
    o->owned = c->owned;
    o->ptr = o->owned.data();
  }
  return o;
}

std::vector<int64_t> ints(const ConstPtr& c) {
  std::vector<int64_t> v(static_cast<size_t>(c->count()));
  for (int64_t k = 0; k < c->count(); ++k) v[k] = c->i(k);
  return v;
}

// Numpy broadcasting of dims (tandem/broadcast.h), failing with the node's name.
Dims bcast_dims(Importer& I, const std::vector<const Dims*>& ds) {
  Dims o;
  for (const Dims* d : ds) {
    std::optional<Dims> b = broadcast_dims(o, *d);
    if (!b) I.fail(fmt::format("cannot broadcast {} to {}", dims_to_string(*d), dims_to_string(o)));
    o = std::move(*b);
  }
  return o;
}

// Source index for each output index when broadcasting `in` to `out`.
std::vector<int64_t> bcast_index(const Dims& out, const Dims& in) { return broadcast_source_index(in, out); }

enum class Bin { kAdd, kSub, kMul, kDiv, kPow, kMax, kMin, kMod, kEq, kGt, kLt, kGe, kLe, kAnd, kOr, kXor };

// Floating-point semantics: the ONNX ops that are IR element-wise ops compute what every backend
// computes (tandem/op_semantics.h); Mod, GreaterOrEqual and LessOrEqual have no IR op.
double fold_float(Bin op, double x, double y) {
  switch (op) {
    case Bin::kAdd: return ops::elementwise(ElementWiseOp::kSum, x, y);
    case Bin::kSub: return ops::elementwise(ElementWiseOp::kSub, x, y);
    case Bin::kMul: return ops::elementwise(ElementWiseOp::kProd, x, y);
    case Bin::kDiv: return ops::elementwise(ElementWiseOp::kDiv, x, y);
    case Bin::kPow: return ops::elementwise(ElementWiseOp::kPow, x, y);
    case Bin::kMax: return ops::elementwise(ElementWiseOp::kMax, x, y);
    case Bin::kMin: return ops::elementwise(ElementWiseOp::kMin, x, y);
    case Bin::kEq: return ops::elementwise(ElementWiseOp::kEqual, x, y);
    case Bin::kGt: return ops::elementwise(ElementWiseOp::kGreater, x, y);
    case Bin::kLt: return ops::elementwise(ElementWiseOp::kLess, x, y);
    case Bin::kAnd: return ops::elementwise(ElementWiseOp::kAnd, x, y);
    case Bin::kOr: return ops::elementwise(ElementWiseOp::kOr, x, y);
    case Bin::kXor: return ops::elementwise(ElementWiseOp::kXor, x, y);
    case Bin::kMod: return std::fmod(x, y);
    case Bin::kGe: return x >= y;
    case Bin::kLe: return x <= y;
  }
  return 0;
}

FoldFn binary(Bin op) {
  return [=](Importer& I) -> Outs {
    std::vector<ConstPtr> xs;
    for (size_t i = 0; i < I.n_in(); ++i)
      if (I.has_in(i)) xs.push_back(I.in(i).c);
    if (xs.empty()) return {};
    ConstPtr acc = xs[0];
    if (xs.size() == 1) return {copy_reshaped(acc, acc->dims)};
    for (size_t j = 1; j < xs.size(); ++j) {
      const ConstPtr& a = acc;
      const ConstPtr& b = xs[j];
      const Dims od = bcast_dims(I, {&a->dims, &b->dims});
      const bool cmp = op >= Bin::kEq;
      const bool logic = op >= Bin::kAnd;
      auto o = out_const(I, cmp && !logic ? DataType::kBool : (logic ? DataType::kBool : a->type), od);
      if (!o) return {};
      if (cmp && !logic) o->type = DataType::kBool;
      const auto ia = bcast_index(od, a->dims), ib = bcast_index(od, b->dims);
      const bool fl = is_float(a->type) || is_float(b->type);
      for (int64_t k = 0; k < o->count(); ++k) {
        if (fl) {
          o->set_f(k, fold_float(op, a->f(ia[k]), b->f(ib[k])));
        } else {
          const int64_t x = a->i(ia[k]), y = b->i(ib[k]);
          int64_t r = 0;
          auto wrap = [](__int128 v) { return static_cast<int64_t>(v); };
          switch (op) {
            case Bin::kAdd: r = wrap(__int128{x} + y); break;
            case Bin::kSub: r = wrap(__int128{x} - y); break;
            case Bin::kMul: r = wrap(__int128{x} * y); break;
            case Bin::kDiv:
              if (y == 0) I.fail("integer division by zero in a constant");
              r = (x == INT64_MIN && y == -1) ? x : x / y;
              break;
            case Bin::kPow: r = static_cast<int64_t>(std::pow(static_cast<double>(x), static_cast<double>(y))); break;
            case Bin::kMax: r = std::max(x, y); break;
            case Bin::kMin: r = std::min(x, y); break;
            case Bin::kMod: {
              if (y == 0) I.fail("integer modulo by zero in a constant");
              if (x == INT64_MIN && y == -1) { r = 0; break; }
              r = x % y;
              if (I.attr_i("fmod", 0) == 0 && r != 0 && ((r < 0) != (y < 0))) r += y;  // sign of the divisor
              break;
            }
            case Bin::kEq: r = x == y; break;
            case Bin::kGt: r = x > y; break;
            case Bin::kLt: r = x < y; break;
            case Bin::kGe: r = x >= y; break;
            case Bin::kLe: r = x <= y; break;
            case Bin::kAnd: r = x && y; break;
            case Bin::kOr: r = x || y; break;
            case Bin::kXor: r = (x != 0) != (y != 0); break;
          }
          o->set_i(k, r);
        }
      }
      acc = o;
    }
    return {acc};
  };
}

enum class Un { kNeg, kAbs, kFloor, kCeil, kSqrt, kRecip, kExp, kLog, kNot, kSign, kRound, kRelu, kSigmoid, kTanh, kErf, kSin, kCos };

// Floating-point semantics, as every backend computes them (tandem/op_semantics.h).
double fold_float(Un op, double x) {
  switch (op) {
    case Un::kNeg: return ops::unary(UnaryOp::kNeg, x);
    case Un::kAbs: return ops::unary(UnaryOp::kAbs, x);
    case Un::kFloor: return ops::unary(UnaryOp::kFloor, x);
    case Un::kCeil: return ops::unary(UnaryOp::kCeil, x);
    case Un::kSqrt: return ops::unary(UnaryOp::kSqrt, x);
    case Un::kRecip: return ops::unary(UnaryOp::kRecip, x);
    case Un::kExp: return ops::unary(UnaryOp::kExp, x);
    case Un::kLog: return ops::unary(UnaryOp::kLog, x);
    case Un::kNot: return ops::unary(UnaryOp::kNot, x);
    case Un::kSign: return ops::unary(UnaryOp::kSign, x);
    case Un::kRound: return ops::unary(UnaryOp::kRound, x);
    case Un::kErf: return ops::unary(UnaryOp::kErf, x);
    case Un::kSin: return ops::unary(UnaryOp::kSin, x);
    case Un::kCos: return ops::unary(UnaryOp::kCos, x);
    case Un::kRelu: return ops::activation(ActivationType::kRelu, x, 0.0, 0.0);
    case Un::kSigmoid: return ops::activation(ActivationType::kSigmoid, x, 0.0, 0.0);
    case Un::kTanh: return ops::activation(ActivationType::kTanh, x, 0.0, 0.0);
  }
  return x;
}

FoldFn unary(Un op) {
  return [=](Importer& I) -> Outs {
    const ConstPtr a = I.cin(0, "input");
    if (!a) return {};
    auto o = out_const(I, op == Un::kNot ? DataType::kBool : a->type, a->dims);
    if (!o) return {};
    for (int64_t k = 0; k < a->count(); ++k) {
      if (!is_float(a->type) && (op == Un::kNeg || op == Un::kAbs || op == Un::kSign || op == Un::kRelu || op == Un::kNot)) {
        const int64_t x = a->i(k);
        int64_t r = 0;
        switch (op) {
          case Un::kNeg: r = -x; break;
          case Un::kAbs: r = x < 0 ? -x : x; break;
          case Un::kSign: r = (x > 0) - (x < 0); break;
          case Un::kRelu: r = x > 0 ? x : 0; break;
          default: r = !x; break;
        }
        o->set_i(k, r);
        continue;
      }
      o->set_f(k, fold_float(op, a->f(k)));
    }
    return {o};
  };
}

Outs f_constant(Importer& I) {
  if (const auto* a = I.attr("value")) {
    if (!a->has_t()) I.fail("attribute 'value' is not a tensor");
    return {tensor_to_const(a->t(), "", fmt::format("{}: node '{}' (Constant)", I.path_, I.node_name_))};
  }
  if (I.has_attr("sparse_value")) I.fail("sparse_value is not supported");
  if (const auto* a = I.attr("value_float")) {
    auto c = make_const("", DataType::kFloat, {});
    c->set_f(0, a->f());
    return {c};
  }
  if (const auto* a = I.attr("value_int")) {
    auto c = make_const("", DataType::kInt64, {});
    c->set_i(0, a->i());
    return {c};
  }
  if (const auto* a = I.attr("value_floats")) {
    auto c = make_const("", DataType::kFloat, {a->floats_size()});
    for (int k = 0; k < a->floats_size(); ++k) c->set_f(k, a->floats(k));
    return {c};
  }
  if (const auto* a = I.attr("value_ints")) {
    auto c = make_const("", DataType::kInt64, {a->ints_size()});
    for (int k = 0; k < a->ints_size(); ++k) c->set_i(k, a->ints(k));
    return {c};
  }
  I.fail("no value attribute (value_string is not supported)");
}

Outs f_identity(Importer& I) {
  if (I.node_->op_type() == "Dropout" && I.output_used(1)) return {};
  return {copy_reshaped(I.cin(0, "input"), I.cin(0, "input")->dims)};
}

Dims value_dims(Importer& I, size_t i) {
  const Value& v = I.in(i);
  if (v.t >= 0) return I.dims(v.t);
  if (v.c) return v.c->dims;
  I.fail(fmt::format("input {} is missing", i));
}

Outs f_shape(Importer& I) {
  const Dims d = value_dims(I, 0);
  const auto r = static_cast<int64_t>(d.size());
  int64_t s = I.attr_i("start", 0), e = I.attr_i("end", r);
  if (s < 0) s += r;
  if (e < 0) e += r;
  s = std::clamp<int64_t>(s, 0, r);
  e = std::clamp<int64_t>(e, 0, r);
  auto o = make_const("", DataType::kInt64, {std::max<int64_t>(e - s, 0)});
  for (int64_t k = s; k < e; ++k) o->set_i(k - s, d[k]);
  return {o};
}

Outs f_size(Importer& I) {
  auto o = make_const("", DataType::kInt64, {});
  o->set_i(0, volume(value_dims(I, 0)));
  return {o};
}

Outs f_cast(Importer& I) {
  const ConstPtr a = I.cin(0, "input");
  const int64_t to = I.attr_i("to", -1);
  DataType t;
  if (to == onnx::TensorProto::DOUBLE) t = DataType::kFloat;
  else if (!onnx_to_data_type(static_cast<int>(to), &t)) I.fail(fmt::format("cast to {} is not supported", onnx_type_name(static_cast<int>(to))));
  auto o = out_const(I, t, a->dims);
  if (!o) return {};
  for (int64_t k = 0; k < a->count(); ++k) {
    if (is_float(t)) o->set_f(k, a->f(k));
    else if (is_float(a->type)) o->set_f(k, std::trunc(a->f(k)));
    else o->set_i(k, a->i(k));
  }
  return {o};
}

Outs f_cast_like(Importer& I) {
  const ConstPtr a = I.cin(0, "input");
  const DataType t = I.cin(1, "target_type")->type;
  auto o = out_const(I, t, a->dims);
  if (!o) return {};
  for (int64_t k = 0; k < a->count(); ++k) {
    if (is_float(t)) o->set_f(k, a->f(k));
    else if (is_float(a->type)) o->set_f(k, std::trunc(a->f(k)));
    else o->set_i(k, a->i(k));
  }
  return {o};
}

// Generic gather of elements by a precomputed source index list.
ConstPtr gather_elems(Importer& I, const ConstPtr& a, Dims od, const std::vector<int64_t>& src) {
  auto o = out_const(I, a->type, std::move(od));
  if (!o) return nullptr;
  const size_t es = element_size(a->type);
  for (size_t k = 0; k < src.size(); ++k) std::memcpy(o->owned.data() + k * es, a->ptr + src[k] * es, es);
  return o;
}

Outs f_gather(Importer& I) {
  const ConstPtr a = I.cin(0, "input"), idx = I.cin(1, "input");
  const Dims& d = a->dims;
  if (d.empty()) I.fail("data is a scalar");
  const int ax = I.axis(I.attr_i("axis", 0), d.size());
  Dims od(d.begin(), d.begin() + ax);
  od.insert(od.end(), idx->dims.begin(), idx->dims.end());
  od.insert(od.end(), d.begin() + ax + 1, d.end());
  const int64_t outer = std::accumulate(d.begin(), d.begin() + ax, int64_t{1}, std::multiplies<>());
  const int64_t inner = std::accumulate(d.begin() + ax + 1, d.end(), int64_t{1}, std::multiplies<>());
  if (checked_volume(od, I.path_) > kMaxFold) return {};
  std::vector<int64_t> src;
  src.reserve(static_cast<size_t>(volume(od)));
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j = 0; j < idx->count(); ++j) {
      int64_t v = idx->i(j);
      if (v < -d[ax] || v >= d[ax]) I.fail(fmt::format("index {} out of range for dim {}", v, d[ax]));
      if (v < 0) v += d[ax];
      for (int64_t in = 0; in < inner; ++in) src.push_back((o * d[ax] + v) * inner + in);
    }
  return {gather_elems(I, a, od, src)};
}

Outs f_concat(Importer& I) {
  std::vector<ConstPtr> xs;
  for (size_t i = 0; i < I.n_in(); ++i)
    if (I.has_in(i)) xs.push_back(I.in(i).c);
  if (xs.empty()) I.fail("no inputs");
  const size_t r = xs[0]->dims.size();
  const int ax = I.axis(I.attr_i("axis", 0), std::max<size_t>(r, 1));
  Dims od = xs[0]->dims;
  if (od.empty()) I.fail("cannot concatenate scalars");
  od[ax] = 0;
  for (const auto& x : xs) {
    if (x->dims.size() != r || x->type != xs[0]->type) I.fail("inputs differ in rank or type");
    for (size_t j = 0; j < r; ++j)
      if (static_cast<int>(j) != ax && x->dims[j] != xs[0]->dims[j]) I.fail("inputs differ off the axis");
    od[ax] += x->dims[ax];
  }
  auto o = out_const(I, xs[0]->type, od);
  if (!o) return {};
  const int64_t outer = std::accumulate(od.begin(), od.begin() + ax, int64_t{1}, std::multiplies<>());
  const size_t es = element_size(o->type);
  uint8_t* dst = o->owned.data();
  for (int64_t ou = 0; ou < outer; ++ou)
    for (const auto& x : xs) {
      const int64_t chunk = x->count() / std::max<int64_t>(outer, 1);
      const size_t nb = static_cast<size_t>(chunk) * es;
      if (nb) std::memcpy(dst, x->ptr + ou * nb, nb);
      dst += nb;
    }
  return {o};
}

Outs f_reshape_like(Importer& I, Dims od) { return {copy_reshaped(I.cin(0, "input"), std::move(od))}; }

Outs f_unsqueeze(Importer& I) {
  const Dims& d = I.cin(0, "input")->dims;
  std::vector<int64_t> axes;
  if (I.opset_ >= 13) { if (I.has_in(1)) axes = ints(I.cin(1, "input")); }
  else axes = I.attr_ints("axes");
  const size_t r = d.size() + axes.size();
  std::vector<char> ins(r, 0);
  for (int64_t a : axes) ins[I.axis(a, r)] = 1;
  Dims o;
  size_t j = 0;
  for (size_t i = 0; i < r; ++i) o.push_back(ins[i] ? 1 : (j < d.size() ? d[j++] : 1));
  if (volume(o) != volume(d)) I.fail("axes repeat");
  return f_reshape_like(I, o);
}

Outs f_squeeze(Importer& I) {
  const Dims& d = I.cin(0, "input")->dims;
  std::vector<int64_t> axes;
  if (I.opset_ >= 13) { if (I.has_in(1)) axes = ints(I.cin(1, "input")); }
  else axes = I.attr_ints("axes");
  std::vector<char> drop(d.size(), 0);
  if (axes.empty()) for (size_t i = 0; i < d.size(); ++i) drop[i] = d[i] == 1;
  for (int64_t a : axes) {
    const int k = I.axis(a, d.size());
    if (d[k] != 1) I.fail(fmt::format("cannot squeeze axis {} of size {}", k, d[k]));
    drop[k] = 1;
  }
  Dims o;
  for (size_t i = 0; i < d.size(); ++i) if (!drop[i]) o.push_back(d[i]);
  return f_reshape_like(I, o);
}

Outs f_reshape(Importer& I) {
  const ConstPtr a = I.cin(0, "input");
  const ConstPtr s = I.cin(1, "input");
  if (!s) return {};
  Dims o;
  int inf = -1;
  int64_t known = 1;
  for (int64_t k = 0; k < s->count(); ++k) {
    int64_t v = s->i(k);
    if (v == 0 && !I.attr_i("allowzero", 0)) {
      if (static_cast<size_t>(k) >= a->dims.size()) I.fail("shape copies a dim the input lacks");
      v = a->dims[k];
    }
    if (v == -1) { if (inf >= 0) I.fail("shape has more than one -1"); inf = static_cast<int>(k); }
    else if (v < 0 || v > (int64_t{1} << 40)) I.fail(fmt::format("shape value {} is invalid", v));
    else if (v != 0 && known > (int64_t{1} << 40) / v) I.fail("shape volume too large");
    else known *= v;
    o.push_back(v);
  }
  if (inf >= 0) {
    if (known == 0 || a->count() % known) I.fail("cannot infer the -1 dim");
    o[inf] = a->count() / known;
  }
  if (volume(o) != a->count()) I.fail(fmt::format("cannot reshape {} to {}", dims_to_string(a->dims), dims_to_string(o)));
  return f_reshape_like(I, o);
}

Outs f_flatten(Importer& I) {
  const Dims& d = I.cin(0, "input")->dims;
  int64_t a = I.attr_i("axis", 1);
  const auto r = static_cast<int64_t>(d.size());
  if (a < -r || a > r) I.fail("axis out of range");
  if (a < 0) a += r;
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < r; ++i) (i < a ? outer : inner) *= d[i];
  return f_reshape_like(I, {outer, inner});
}

Outs f_transpose(Importer& I) {
  const ConstPtr a = I.cin(0, "input");
  const size_t r = a->dims.size();
  std::vector<int64_t> perm = I.attr_ints("perm");
  if (perm.empty()) for (size_t i = 0; i < r; ++i) perm.push_back(static_cast<int64_t>(r - 1 - i));
  if (perm.size() != r) I.fail("perm does not match the rank");
  std::vector<char> seen(r, 0);
  for (int64_t p : perm) {
    if (p < 0 || p >= static_cast<int64_t>(r) || seen[p]) I.fail("perm is not a permutation");
    seen[p] = 1;
  }
  Dims od(r);
  for (size_t i = 0; i < r; ++i) od[i] = a->dims[perm[i]];
  if (volume(od) > kMaxFold) return {};
  std::vector<int64_t> in_stride(r, 1);
  for (size_t i = r; i-- > 1;) in_stride[i - 1] = in_stride[i] * a->dims[i];
  std::vector<int64_t> src(static_cast<size_t>(volume(od)));
  std::vector<int64_t> pos(r, 0);
  for (size_t k = 0; k < src.size(); ++k) {
    int64_t s = 0;
    for (size_t i = 0; i < r; ++i) s += pos[i] * in_stride[perm[i]];
    src[k] = s;
    for (size_t i = r; i-- > 0;) { if (++pos[i] < od[i]) break; pos[i] = 0; }
  }
  return {gather_elems(I, a, od, src)};
}

Outs f_slice(Importer& I) {
  const ConstPtr a = I.cin(0, "input");
  const Dims& d = a->dims;
  std::vector<int64_t> starts, ends, axes, steps;
  if (I.opset_ < 10) { starts = I.attr_ints("starts"); ends = I.attr_ints("ends"); axes = I.attr_ints("axes"); }
  else {
    starts = ints(I.cin(1, "input")); ends = ints(I.cin(2, "input"));
    if (I.has_in(3)) axes = ints(I.cin(3, "input"));
    if (I.has_in(4)) steps = ints(I.cin(4, "input"));
  }
  if (starts.size() != ends.size()) I.fail("starts and ends differ in length");
  if (axes.empty()) for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
  if (steps.empty()) steps.assign(starts.size(), 1);
  if (axes.size() != starts.size() || steps.size() != starts.size()) I.fail("axes/steps differ in length from starts");
  const size_t r = d.size();
  Dims st(r, 0), sz = d, sp(r, 1);
  for (size_t i = 0; i < axes.size(); ++i) {
    const int ax = I.axis(axes[i], r);
    int64_t s = starts[i], e = ends[i], step = steps[i], dim = d[ax];
    if (step == 0) I.fail("slice step is 0");
    if (s < 0) s += dim;
    if (e < 0) e += dim;
    if (step > 0) { s = std::clamp<int64_t>(s, 0, dim); e = std::clamp<int64_t>(e, 0, dim); sz[ax] = e > s ? (e - s + step - 1) / step : 0; }
    else { s = std::clamp<int64_t>(s, 0, dim - 1); e = std::clamp<int64_t>(e, -1, dim - 1); sz[ax] = s > e ? (s - e - step - 1) / (-step) : 0; }
    st[ax] = s;
    sp[ax] = step;
  }
  std::vector<int64_t> in_stride(r, 1);
  for (size_t i = r; i-- > 1;) in_stride[i - 1] = in_stride[i] * d[i];
  const int64_t n = volume(sz);
  if (n > kMaxFold) return {};
  std::vector<int64_t> src(static_cast<size_t>(n));
  std::vector<int64_t> pos(r, 0);
  for (int64_t k = 0; k < n; ++k) {
    int64_t s = 0;
    for (size_t i = 0; i < r; ++i) s += (st[i] + pos[i] * sp[i]) * in_stride[i];
    src[k] = s;
    for (size_t i = r; i-- > 0;) { if (++pos[i] < sz[i]) break; pos[i] = 0; }
  }
  return {gather_elems(I, a, sz, src)};
}

Outs f_expand(Importer& I) {
  const ConstPtr a = I.cin(0, "input");
  const std::vector<int64_t> s = ints(I.cin(1, "input"));
  const Dims sd(s.begin(), s.end());
  for (int64_t v : sd) if (v < 0) I.fail("shape has negative values");
  const Dims od = bcast_dims(I, {&a->dims, &sd});
  if (checked_volume(od, I.path_) > kMaxFold) return {};
  return {gather_elems(I, a, od, bcast_index(od, a->dims))};
}

Outs f_tile(Importer& I) {
  const ConstPtr a = I.cin(0, "input");
  const std::vector<int64_t> rep = ints(I.cin(1, "input"));
  const Dims& d = a->dims;
  if (rep.size() != d.size()) I.fail("repeats do not match the rank");
  Dims od(d.size());
  for (size_t i = 0; i < d.size(); ++i) {
    if (rep[i] < 0) I.fail("negative repeat");
    od[i] = d[i] * rep[i];
  }
  if (checked_volume(od, I.path_) > kMaxFold) return {};
  const size_t r = d.size();
  std::vector<int64_t> in_stride(r, 1);
  for (size_t i = r; i-- > 1;) in_stride[i - 1] = in_stride[i] * d[i];
  std::vector<int64_t> src(static_cast<size_t>(volume(od)));
  std::vector<int64_t> pos(r, 0);
  for (size_t k = 0; k < src.size(); ++k) {
    int64_t s = 0;
    for (size_t i = 0; i < r; ++i) s += (pos[i] % d[i]) * in_stride[i];
    src[k] = s;
    for (size_t i = r; i-- > 0;) { if (++pos[i] < od[i]) break; pos[i] = 0; }
  }
  return {gather_elems(I, a, od, src)};
}

Outs f_constant_of_shape(Importer& I) {
  const std::vector<int64_t> s = ints(I.cin(0, "input"));
  Dims d(s.begin(), s.end());
  ConstPtr v;
  if (const auto* a = I.attr("value")) {
    if (!a->has_t()) I.fail("attribute 'value' is not a tensor");
    v = tensor_to_const(a->t(), "", fmt::format("{}: node '{}' (ConstantOfShape)", I.path_, I.node_name_));
  }
  auto o = out_const(I, v ? v->type : DataType::kFloat, d);
  if (!o) return {};
  if (v && v->count() != 1) I.fail("value must have one element");
  if (v)
    for (int64_t k = 0; k < o->count(); ++k) std::memcpy(o->owned.data() + k * element_size(o->type), v->ptr, element_size(o->type));
  return {o};
}

Outs f_range(Importer& I) {
  const ConstPtr s = I.cin(0, "input"), l = I.cin(1, "input"), dl = I.cin(2, "input");
  if (s->count() != 1 || l->count() != 1 || dl->count() != 1) I.fail("start, limit and delta must be scalars");
  const double st = s->f(0), li = l->f(0), de = dl->f(0);
  if (de == 0) I.fail("delta is 0");
  const double n = std::max(std::ceil((li - st) / de), 0.0);
  if (n > kMaxFold) return {};
  auto o = out_const(I, s->type, {static_cast<int64_t>(n)});
  if (!o) return {};
  for (int64_t k = 0; k < o->count(); ++k) {
    if (is_float(s->type)) o->set_f(k, st + k * de);
    else o->set_i(k, s->i(0) + k * dl->i(0));
  }
  return {o};
}

Outs f_where(Importer& I) {
  const ConstPtr c = I.cin(0, "input"), x = I.cin(1, "input"), y = I.cin(2, "input");
  const Dims od = bcast_dims(I, {&c->dims, &x->dims, &y->dims});
  auto o = out_const(I, x->type, od);
  if (!o) return {};
  const auto ic = bcast_index(od, c->dims), ix = bcast_index(od, x->dims), iy = bcast_index(od, y->dims);
  const size_t es = element_size(x->type);
  if (x->type != y->type) I.fail("X and Y types differ");
  for (int64_t k = 0; k < o->count(); ++k)
    std::memcpy(o->owned.data() + k * es, (c->i(ic[k]) ? x->ptr + ix[k] * es : y->ptr + iy[k] * es), es);
  return {o};
}

Outs f_split(Importer& I) {
  const ConstPtr a = I.cin(0, "input");
  const Dims& d = a->dims;
  const int ax = I.axis(I.attr_i("axis", 0), d.size());
  const auto n = static_cast<int64_t>(I.node_->output_size());
  std::vector<int64_t> split;
  if (I.opset_ >= 13) { if (I.has_in(1)) split = ints(I.cin(1, "input")); }
  else split = I.attr_ints("split");
  if (split.empty()) {
    const int64_t chunk = (d[ax] + n - 1) / n;
    for (int64_t i = 0; i < n; ++i) split.push_back(std::max<int64_t>(std::min(chunk, d[ax] - chunk * i), 0));
  }
  if (static_cast<int64_t>(split.size()) != n) I.fail("split sizes do not match the outputs");
  Outs outs;
  int64_t off = 0;
  const int64_t outer = std::accumulate(d.begin(), d.begin() + ax, int64_t{1}, std::multiplies<>());
  const int64_t inner = std::accumulate(d.begin() + ax + 1, d.end(), int64_t{1}, std::multiplies<>());
  for (int64_t s : split) {
    if (s < 0 || off + s > d[ax]) I.fail("split sizes exceed the axis");
    Dims od = d;
    od[ax] = s;
    std::vector<int64_t> src;
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t j = 0; j < s; ++j)
        for (int64_t in = 0; in < inner; ++in) src.push_back((o * d[ax] + off + j) * inner + in);
    auto c = gather_elems(I, a, od, src);
    if (!c) return {};
    outs.push_back(c);
    off += s;
  }
  return outs;
}

Outs f_reduce(Importer& I, ReduceOp op) {
  const ConstPtr a = I.cin(0, "input");
  const Dims& d = a->dims;
  std::vector<int64_t> axes;
  const bool axes_input = I.opset_ >= 18 || (I.node_->op_type() == "ReduceSum" && I.opset_ >= 13);
  if (axes_input) { if (I.has_in(1)) axes = ints(I.cin(1, "input")); }
  else axes = I.attr_ints("axes");
  const bool keep = I.attr_i("keepdims", 1) != 0;
  std::vector<char> red(d.size(), axes.empty() ? 1 : 0);
  if (axes.empty() && I.attr_i("noop_with_empty_axes", 0)) return {copy_reshaped(a, d)};
  for (int64_t x : axes) red[I.axis(x, d.size())] = 1;
  Dims od, kd;
  for (size_t i = 0; i < d.size(); ++i) {
    kd.push_back(red[i] ? 1 : d[i]);
    if (!red[i] || keep) od.push_back(red[i] ? 1 : d[i]);
  }
  auto o = out_const(I, a->type, od);
  if (!o) return {};
  const int64_t n = o->count();
  std::vector<double> acc(static_cast<size_t>(n), op == ReduceOp::kProd ? 1.0 : 0.0);
  std::vector<char> first(static_cast<size_t>(n), 1);
  // Map each input element to its output slot.
  const size_t r = d.size();
  std::vector<int64_t> ostride(r, 0);
  int64_t s = 1;
  for (size_t i = r; i-- > 0;) { ostride[i] = red[i] ? 0 : s; s *= kd[i]; }
  std::vector<int64_t> pos(r, 0);
  for (int64_t k = 0; k < a->count(); ++k) {
    int64_t dst = 0;
    for (size_t i = 0; i < r; ++i) dst += pos[i] * ostride[i];
    const double v = a->f(k);
    double& x = acc[dst];
    switch (op) {
      case ReduceOp::kSum: case ReduceOp::kAvg: x += v; break;
      case ReduceOp::kProd: x *= v; break;
      case ReduceOp::kMax: x = first[dst] ? v : std::max(x, v); break;
      case ReduceOp::kMin: x = first[dst] ? v : std::min(x, v); break;
    }
    first[dst] = 0;
    for (size_t i = r; i-- > 0;) { if (++pos[i] < d[i]) break; pos[i] = 0; }
  }
  const double cnt = n ? static_cast<double>(a->count()) / n : 1;
  for (int64_t k = 0; k < n; ++k) o->set_f(k, op == ReduceOp::kAvg ? acc[k] / cnt : acc[k]);
  return {o};
}

}  // namespace

void register_decomposed_folders(std::unordered_map<std::string, FoldFn>& m);  // ops_decomposed.cpp
void register_dynamic_folders(std::unordered_map<std::string, FoldFn>& m);     // ops_dynamic.cpp

const std::unordered_map<std::string, FoldFn>& op_folders() {
  static const std::unordered_map<std::string, FoldFn> m = [] {
    std::unordered_map<std::string, FoldFn> m = {
      {"Constant", f_constant},
      {"Identity", f_identity},
      {"Dropout", f_identity},
      {"Shape", f_shape},
      {"Size", f_size},
      {"Cast", f_cast},
      {"CastLike", f_cast_like},
      {"Gather", f_gather},
      {"Concat", f_concat},
      {"Unsqueeze", f_unsqueeze},
      {"Squeeze", f_squeeze},
      {"Reshape", f_reshape},
      {"Flatten", f_flatten},
      {"Transpose", f_transpose},
      {"Slice", f_slice},
      {"Expand", f_expand},
      {"Tile", f_tile},
      {"Split", f_split},
      {"ConstantOfShape", f_constant_of_shape},
      {"Range", f_range},
      {"Where", f_where},
      {"Add", binary(Bin::kAdd)},
      {"Sum", binary(Bin::kAdd)},
      {"Sub", binary(Bin::kSub)},
      {"Mul", binary(Bin::kMul)},
      {"Div", binary(Bin::kDiv)},
      {"Pow", binary(Bin::kPow)},
      {"Max", binary(Bin::kMax)},
      {"Min", binary(Bin::kMin)},
      {"Mod", binary(Bin::kMod)},
      {"Equal", binary(Bin::kEq)},
      {"Greater", binary(Bin::kGt)},
      {"Less", binary(Bin::kLt)},
      {"GreaterOrEqual", binary(Bin::kGe)},
      {"LessOrEqual", binary(Bin::kLe)},
      {"And", binary(Bin::kAnd)},
      {"Or", binary(Bin::kOr)},
      {"Xor", binary(Bin::kXor)},
      {"Neg", unary(Un::kNeg)},
      {"Abs", unary(Un::kAbs)},
      {"Floor", unary(Un::kFloor)},
      {"Ceil", unary(Un::kCeil)},
      {"Sqrt", unary(Un::kSqrt)},
      {"Reciprocal", unary(Un::kRecip)},
      {"Exp", unary(Un::kExp)},
      {"Log", unary(Un::kLog)},
      {"Not", unary(Un::kNot)},
      {"Sign", unary(Un::kSign)},
      {"Round", unary(Un::kRound)},
      {"Relu", unary(Un::kRelu)},
      {"Sigmoid", unary(Un::kSigmoid)},
      {"Tanh", unary(Un::kTanh)},
      {"Erf", unary(Un::kErf)},
      {"Sin", unary(Un::kSin)},
      {"Cos", unary(Un::kCos)},
      {"ReduceSum", [](Importer& I) { return f_reduce(I, ReduceOp::kSum); }},
      {"ReduceProd", [](Importer& I) { return f_reduce(I, ReduceOp::kProd); }},
      {"ReduceMax", [](Importer& I) { return f_reduce(I, ReduceOp::kMax); }},
      {"ReduceMin", [](Importer& I) { return f_reduce(I, ReduceOp::kMin); }},
      {"ReduceMean", [](Importer& I) { return f_reduce(I, ReduceOp::kAvg); }},
  };
    register_qdq_folders(m);
    register_decomposed_folders(m);
    register_dynamic_folders(m);
    return m;
  }();
  return m;
}

}  // namespace tandem::onnx_detail
