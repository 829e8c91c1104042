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
}

}  // namespace tandem::onnx_detail
