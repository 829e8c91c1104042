// ONNX ops with no layer kind of their own, decomposed at import into existing layers (as
// onnx-tensorrt does for many ops): each decomposition computes the op's ONNX definition exactly
// with ElementWise / Unary / Activation / Reduce / Select / Cast / Constant layers
// (docs/onnx-import.md, "Decomposed ops").
#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <limits>

#include "importer.h"

namespace tandem::onnx_detail {

namespace {

using Outs = std::vector<TensorId>;

bool is_float(DataType t) { return t == DataType::kFloat || t == DataType::kHalf; }

TensorId eltwise2(Importer& I, ElementWiseOp op, TensorId a, TensorId b) {
  std::vector<TensorId> ts{a, b};
  I.broadcast_ranks(ts);
  return I.add(LayerKind::kElementWise, ElementWiseParams{op}, ts);
}

TensorId select3(Importer& I, TensorId cond, TensorId a, TensorId b) {
  std::vector<TensorId> ts{cond, a, b};
  I.broadcast_ranks(ts);
  return I.add(LayerKind::kSelect, NoParams{}, ts);
}

// A scalar constant of x's type and rank (a broadcast operand).
TensorId scalar_like(Importer& I, double v, TensorId x) {
  auto c = make_const("", I.dtype(x), Dims(std::max<size_t>(I.rank(x), 1), 1));
  if (I.rank(x) == 0) c->dims.clear();
  c->set_f(0, v);
  return I.const_tensor(c);
}

void require_float(Importer& I, TensorId x) {
  if (!is_float(I.dtype(x))) I.fail(fmt::format("input is {}, fp32/fp16 expected", to_string(I.dtype(x))));
}

// int64 constant of rank r holding 0..n-1 along `axis` (1 elsewhere): the index of each element
// on that axis, compared with indices by ArgMax/ArgMin/Hardmax/OneHot.
TensorId iota_along(Importer& I, size_t r, int axis, int64_t n) {
  Dims d(r, 1);
  d[axis] = n;
  auto c = make_const("", DataType::kInt64, d);
  for (int64_t k = 0; k < n; ++k) c->set_i(k, k);
  return I.const_tensor(c);
}

// ---- point-wise ----------------------------------------------------------------------------------
// Shrink: x < -lambd ? x + bias : x > lambd ? x - bias : 0.
Outs op_shrink(Importer& I) {
  const TensorId x = I.tin(0);
  const double lambd = I.attr_f("lambd", 0.5f), bias = I.attr_f("bias", 0.f);
  const TensorId below = eltwise2(I, ElementWiseOp::kLess, x, scalar_like(I, -lambd, x));
  const TensorId above = eltwise2(I, ElementWiseOp::kGreater, x, scalar_like(I, lambd, x));
  const TensorId plus = eltwise2(I, ElementWiseOp::kSum, x, scalar_like(I, bias, x));
  const TensorId minus = eltwise2(I, ElementWiseOp::kSub, x, scalar_like(I, bias, x));
  const TensorId upper = select3(I, above, minus, scalar_like(I, 0, x));
  return {select3(I, below, plus, upper)};
}

// Celu: max(0, x) + min(0, alpha * (exp(x / alpha) - 1)); the second term is an ELU(alpha) of
// x / alpha clipped at 0 (ELU passes x / alpha >= 0 through, which the Min drops).
Outs op_celu(Importer& I) {
  const TensorId x = I.tin(0);
  require_float(I, x);
  const float alpha = I.attr_f("alpha", 1.f);
  if (!(alpha != 0.f) || !std::isfinite(alpha)) I.fail(fmt::format("alpha {} is not supported (non-zero, finite)", alpha));
  const TensorId zero = scalar_like(I, 0, x);
  const TensorId pos = eltwise2(I, ElementWiseOp::kMax, x, zero);
  const TensorId scaled = eltwise2(I, ElementWiseOp::kDiv, x, scalar_like(I, alpha, x));
  const TensorId elu = I.add(LayerKind::kActivation, ActivationParams{ActivationType::kElu, alpha, 0.f}, {scaled});
  const TensorId neg = eltwise2(I, ElementWiseOp::kMin, elu, zero);
  return {eltwise2(I, ElementWiseOp::kSum, pos, neg)};
}

// IsInf: x == +inf (detect_positive) OR x == -inf (detect_negative); neither: x < -inf (false).
Outs op_isinf(Importer& I) {
  const TensorId x = I.tin(0);
  require_float(I, x);
  const bool pos = I.attr_i("detect_positive", 1) != 0, neg = I.attr_i("detect_negative", 1) != 0;
  const double inf = std::numeric_limits<double>::infinity();
  if (!pos && !neg) return {eltwise2(I, ElementWiseOp::kLess, x, scalar_like(I, -inf, x))};
  TensorId p = -1, n = -1;
  if (pos) p = eltwise2(I, ElementWiseOp::kEqual, x, scalar_like(I, inf, x));
  if (neg) n = eltwise2(I, ElementWiseOp::kEqual, x, scalar_like(I, -inf, x));
  if (p >= 0 && n >= 0) return {eltwise2(I, ElementWiseOp::kOr, p, n)};
  return {p >= 0 ? p : n};
}

// IsNaN: NOT (x == x).
Outs op_isnan(Importer& I) {
  const TensorId x = I.tin(0);
  require_float(I, x);
  const TensorId same = eltwise2(I, ElementWiseOp::kEqual, x, x);
  return {I.add(LayerKind::kUnary, UnaryParams{UnaryOp::kNot}, {same})};
}

// ---- reductions ----------------------------------------------------------------------------------
// Axes from the attribute (opset < 18) or the constant input 1 (opset >= 18), as ReduceMean etc.
// Returns false when the axes are empty and noop_with_empty_axes is set (no reduction).
bool reduce_axes(Importer& I, TensorId x, ReduceParams* p) {
  std::vector<int64_t> axes;
  if (I.opset_ >= 18) {
    if (auto c = I.cin_opt(1, "axes"))
      for (int64_t k = 0; k < c->count(); ++k) axes.push_back(c->i(k));
  } else {
    axes = I.attr_ints("axes");
  }
  p->keep_dims = I.attr_i("keepdims", 1) != 0;
  if (axes.empty()) {
    if (I.attr_i("noop_with_empty_axes", 0)) return false;
    for (size_t i = 0; i < I.rank(x); ++i) p->axes |= 1u << i;
  }
  for (int64_t a : axes) p->axes |= 1u << I.axis(a, I.rank(x));
  return true;
}

enum class ReducePre { kNone, kAbs, kSquare, kExp };
enum class ReducePost { kNone, kSqrt, kLog };

// ReduceL1 = SUM(|x|), ReduceL2 = sqrt(SUM(x*x)), ReduceSumSquare = SUM(x*x),
// ReduceLogSum = log(SUM(x)), ReduceLogSumExp = log(SUM(exp(x))) (ONNX's definition, unshifted,
// as onnx-tensorrt). With noop_with_empty_axes and no axes: the point-wise parts only.
OpFn reduce_composite(ReducePre pre, ReducePost post) {
  return [=](Importer& I) -> Outs {
    TensorId x = I.tin(0);
    if ((pre == ReducePre::kExp || post != ReducePost::kNone)) require_float(I, x);
    switch (pre) {
      case ReducePre::kNone: break;
      case ReducePre::kAbs: x = I.add(LayerKind::kUnary, UnaryParams{UnaryOp::kAbs}, {x}); break;
      case ReducePre::kSquare: x = I.add(LayerKind::kElementWise, ElementWiseParams{ElementWiseOp::kProd}, {x, x}); break;
      case ReducePre::kExp: x = I.add(LayerKind::kUnary, UnaryParams{UnaryOp::kExp}, {x}); break;
    }
    ReduceParams p;
    p.op = ReduceOp::kSum;
    if (reduce_axes(I, x, &p)) x = I.add(LayerKind::kReduce, p, {x});
    switch (post) {
      case ReducePost::kNone: break;
      case ReducePost::kSqrt: x = I.add(LayerKind::kUnary, UnaryParams{UnaryOp::kSqrt}, {x}); break;
      case ReducePost::kLog: x = I.add(LayerKind::kUnary, UnaryParams{UnaryOp::kLog}, {x}); break;
    }
    return {x};
  };
}

// ---- index selection -----------------------------------------------------------------------------
// The index of the max (min) along `axis`, keep_dims: Reduce MAX -> Equal(x, max) marks the
// extremes -> Select(mark, iota, n or -1) -> Reduce MIN (first index) or MAX (last index).
// Exact for every input without NaN (a NaN row finds no equal element and gives n / -1).
TensorId arg_extreme(Importer& I, TensorId x, int axis, bool max, bool last, bool keep) {
  const size_t r = I.rank(x);
  const int64_t n = I.dims(x)[axis];
  ReduceParams red;
  red.op = max ? ReduceOp::kMax : ReduceOp::kMin;
  red.axes = 1u << axis;
  red.keep_dims = true;
  const TensorId m = I.add(LayerKind::kReduce, red, {x});
  const TensorId mark = I.add(LayerKind::kElementWise, ElementWiseParams{ElementWiseOp::kEqual}, {x, m});
  const TensorId iota = iota_along(I, r, axis, n);
  auto none = make_const("", DataType::kInt64, Dims(r, 1));
  none->set_i(0, last ? -1 : n);
  const TensorId idx = I.add(LayerKind::kSelect, NoParams{}, {mark, iota, I.const_tensor(none)});
  red.op = last ? ReduceOp::kMax : ReduceOp::kMin;
  red.keep_dims = keep;
  return I.add(LayerKind::kReduce, red, {idx});
}

OpFn arg_op(bool max) {
  return [=](Importer& I) -> Outs {
    const TensorId x = I.tin(0);
    if (I.rank(x) == 0) I.fail("input is a scalar");
    if (I.dtype(x) == DataType::kBool) I.fail("bool input is not supported");
    const int axis = I.axis(I.attr_i("axis", 0), I.rank(x));
    const bool keep = I.attr_i("keepdims", 1) != 0, last = I.attr_i("select_last_index", 0) != 0;
    return {arg_extreme(I, x, axis, max, last, keep)};
  };
}

// Hardmax: 1 at the first max along the axis, 0 elsewhere: Equal(iota, first argmax) -> Cast.
// Opset < 13 flattens to 2-D around the axis first, as Softmax (reshaped back at the end).
Outs op_hardmax(Importer& I) {
  TensorId x = I.tin(0);
  require_float(I, x);
  const Dims d = I.dims(x);
  int axis;
  if (I.opset_ >= 13) {
    axis = I.axis(I.attr_i("axis", -1), d.size());
  } else {
    const int a = I.axis(I.attr_i("axis", 1), d.size());
    int64_t outer = 1, inner = 1;
    for (size_t i = 0; i < d.size(); ++i) (static_cast<int>(i) < a ? outer : inner) *= d[i];
    x = I.reshape(x, {outer, inner});
    axis = 1;
  }
  const TensorId arg = arg_extreme(I, x, axis, true, false, true);
  const TensorId iota = iota_along(I, I.rank(x), axis, I.dims(x)[axis]);
  const TensorId hit = I.add(LayerKind::kElementWise, ElementWiseParams{ElementWiseOp::kEqual}, {iota, arg});
  TensorId y = I.add(LayerKind::kCast, CastParams{I.dtype(x)}, {hit});
  if (I.opset_ < 13) y = I.reshape(y, d);
  return {y};
}

}  // namespace

void register_decomposed_ops(std::unordered_map<std::string, OpFn>& m) {
  m.emplace("Shrink", op_shrink);
  m.emplace("Celu", op_celu);
  m.emplace("IsInf", op_isinf);
  m.emplace("IsNaN", op_isnan);
  m.emplace("ReduceL1", reduce_composite(ReducePre::kAbs, ReducePost::kNone));
  m.emplace("ReduceL2", reduce_composite(ReducePre::kSquare, ReducePost::kSqrt));
  m.emplace("ReduceSumSquare", reduce_composite(ReducePre::kSquare, ReducePost::kNone));
  m.emplace("ReduceLogSum", reduce_composite(ReducePre::kNone, ReducePost::kLog));
  m.emplace("ReduceLogSumExp", reduce_composite(ReducePre::kExp, ReducePost::kLog));
  m.emplace("ArgMax", arg_op(true));
  m.emplace("ArgMin", arg_op(false));
  m.emplace("Hardmax", op_hardmax);
}

}  // namespace tandem::onnx_detail
