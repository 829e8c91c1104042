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

// MeanVarianceNormalization: (x - mean) / (sqrt(mean((x - mean)^2)) + 1e-9) over `axes`
// (default 0, 2, 3): the parser's layers (Reduce AVG, SUB, PROD, Reduce AVG, SQRT, SUM, DIV).
Outs op_mvn(Importer& I) {
  const TensorId x = I.tin(0);
  require_float(I, x);
  std::vector<int64_t> axes = I.has_attr("axes") ? I.attr_ints("axes") : std::vector<int64_t>{0, 2, 3};
  ReduceParams mean;
  mean.op = ReduceOp::kAvg;
  mean.keep_dims = true;
  for (int64_t a : axes) mean.axes |= 1u << I.axis(a, I.rank(x));
  const TensorId mu = I.add(LayerKind::kReduce, mean, {x});
  const TensorId centred = eltwise2(I, ElementWiseOp::kSub, x, mu);
  const TensorId sq = eltwise2(I, ElementWiseOp::kProd, centred, centred);
  const TensorId var = I.add(LayerKind::kReduce, mean, {sq});
  const TensorId sd = I.add(LayerKind::kUnary, UnaryParams{UnaryOp::kSqrt}, {var});
  const TensorId den = eltwise2(I, ElementWiseOp::kSum, sd, scalar_like(I, 1e-9, sd));
  return {eltwise2(I, ElementWiseOp::kDiv, centred, den)};
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

// CumSum over a static axis as the unrolled recurrence TensorRT's loop computes: y[0] = x[0]
// (0 when exclusive), y[k] = y[k-1] + x[k] (x[k-1] when exclusive), walked backwards when reverse:
// one Slice per element, a chain of ElementWise SUM, one Concatenation. The same sequential order
// as the ONNX definition, so exact in fp32 (a MatMul with a triangular constant is not).
constexpr int64_t kCumSumMaxLength = 256;  // 2n+1 layers: longer axes are refused, not slowed

Outs op_cumsum(Importer& I) {
  const TensorId x = I.tin(0);
  const ConstPtr axis_c = I.cin(1, "axis");
  if (axis_c->count() != 1) I.fail("axis must be a scalar");
  const Dims d = I.dims(x);
  if (d.empty()) I.fail("input is a scalar");
  const int axis = I.axis(axis_c->i(0), d.size());
  const int64_t n = d[axis];
  if (n > kCumSumMaxLength)
    I.fail(fmt::format("axis length {} is over {} (CumSum is unrolled into 2n+1 layers)", n, kCumSumMaxLength));
  const bool exclusive = I.attr_i("exclusive", 0) != 0, reverse = I.attr_i("reverse", 0) != 0;
  auto element = [&](int64_t k) {
    SliceParams p;
    p.start = Dims(d.size(), 0);
    p.start[axis] = k;
    p.size = d;
    p.size[axis] = 1;
    p.stride = Dims(d.size(), 1);
    return I.add(LayerKind::kSlice, p, {x});
  };
  std::vector<TensorId> ys(static_cast<size_t>(n), -1);
  TensorId acc = -1;
  for (int64_t step = 0; step < n; ++step) {
    const int64_t k = reverse ? n - 1 - step : step;
    if (exclusive) {
      if (acc < 0) {
        Dims zd = d;
        zd[axis] = 1;
        auto z = make_const("", I.dtype(x), zd);
        ys[k] = I.const_tensor(z);
      } else {
        ys[k] = acc;
      }
      const TensorId xk = element(k);
      acc = acc < 0 ? xk : I.add(LayerKind::kElementWise, ElementWiseParams{ElementWiseOp::kSum}, {acc, xk});
    } else {
      const TensorId xk = element(k);
      acc = acc < 0 ? xk : I.add(LayerKind::kElementWise, ElementWiseParams{ElementWiseOp::kSum}, {acc, xk});
      ys[k] = acc;
    }
  }
  if (n == 1) return {I.add(LayerKind::kIdentity, NoParams{}, {ys[0]})};
  return {I.add(LayerKind::kConcatenation, ConcatenationParams{axis}, ys)};
}

// ---- generated patterns --------------------------------------------------------------------------
// EyeLike: ones on diagonal k of the input's dims (2-D), in `dtype` or the input's type.
ConstPtr eyelike_value(Importer& I, const Dims& d, DataType in_type) {
  if (d.size() != 2) I.fail(fmt::format("input rank {} is not supported (2-D only)", d.size()));
  DataType t = in_type;
  if (I.has_attr("dtype")) {
    const int64_t dt = I.attr_i("dtype", 0);
    if (dt == onnx::TensorProto::DOUBLE) t = DataType::kFloat;  // as Cast (and the parser)
    else if (!onnx_to_data_type(static_cast<int>(dt), &t))
      I.fail(fmt::format("dtype {} is not supported", onnx_type_name(static_cast<int>(dt))));
  }
  const int64_t k = I.attr_i("k", 0);
  const int64_t rows = d[0], cols = d[1];
  auto c = make_const("", t, {rows, cols});
  for (int64_t i = 0; i < rows; ++i)
    if (i + k >= 0 && i + k < cols) c->set_f(i * cols + i + k, 1.0);
  return c;
}

// The output depends on the input's dims only: a Constant layer, whatever the input is.
Outs op_eyelike(Importer& I) {
  const TensorId x = I.tin(0);
  return {I.const_tensor(eyelike_value(I, I.dims(x), I.dtype(x)))};
}

std::vector<ConstPtr> f_eyelike(Importer& I) {
  const ConstPtr x = I.cin(0, "input");
  return {eyelike_value(I, x->dims, x->type)};
}

// Trilu keeps x[..., i, j] where j - i >= k (upper) or j - i <= k (lower); k: constant input 1.
int64_t trilu_k(Importer& I) {
  int64_t k = 0;
  if (auto kc = I.cin_opt(1, "k")) {
    if (kc->count() != 1) I.fail("k must be a scalar");
    k = kc->i(0);
  }
  return k;
}

// Select(mask, x, 0) with a constant bool mask over the last two dims.
Outs op_trilu(Importer& I) {
  const TensorId x = I.tin(0);
  const size_t r = I.rank(x);
  if (r < 2) I.fail(fmt::format("input rank {} is below 2", r));
  const int64_t k = trilu_k(I);
  const bool upper = I.attr_i("upper", 1) != 0;
  const int64_t rows = I.dims(x)[r - 2], cols = I.dims(x)[r - 1];
  Dims md(r, 1);
  md[r - 2] = rows;
  md[r - 1] = cols;
  auto mask = make_const("", DataType::kBool, md);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) mask->set_i(i * cols + j, upper ? j - i >= k : j - i <= k);
  return {select3(I, I.const_tensor(mask), x, scalar_like(I, 0, x))};
}

std::vector<ConstPtr> f_trilu(Importer& I) {
  const ConstPtr x = I.cin(0, "input");
  const size_t r = x->dims.size();
  if (r < 2) I.fail(fmt::format("input rank {} is below 2", r));
  const int64_t k = trilu_k(I);
  const bool upper = I.attr_i("upper", 1) != 0;
  const int64_t rows = x->dims[r - 2], cols = x->dims[r - 1];
  auto y = make_const("", x->type, x->dims);
  std::copy(x->ptr, x->ptr + x->nbytes, y->owned.begin());
  for (int64_t e = 0; e < y->count(); ++e) {
    const int64_t i = (e / cols) % rows, j = e % cols;
    if (!(upper ? j - i >= k : j - i <= k)) y->set_f(e, 0.0);
  }
  return {y};
}

// OneHot: Equal(indices (negatives + depth) unsqueezed at axis, iota of depth) -> Select(on, off).
// depth and values must be constants; indices outside [-depth, depth) give an all-off row.
Outs op_onehot(Importer& I) {
  TensorId idx = I.tin(0);
  const ConstPtr depth_c = I.cin(1, "depth"), values = I.cin(2, "values");
  if (depth_c->count() != 1) I.fail("depth must be a scalar");
  if (values->count() != 2) I.fail("values must hold [off, on]");
  const double depth_f = depth_c->f(0);
  const int64_t depth = static_cast<int64_t>(depth_f);
  if (depth <= 0 || depth > (int64_t{1} << 24)) I.fail(fmt::format("depth {} is not supported", depth_f));
  if (I.dtype(idx) != DataType::kInt64) idx = I.add(LayerKind::kCast, CastParams{DataType::kInt64}, {idx});
  const size_t r = I.rank(idx) + 1;
  const int axis = I.axis(I.attr_i("axis", -1), r);
  const TensorId negative = eltwise2(I, ElementWiseOp::kLess, idx, scalar_like(I, 0, idx));
  const TensorId wrapped = eltwise2(I, ElementWiseOp::kSum, idx, scalar_like(I, static_cast<double>(depth), idx));
  idx = select3(I, negative, wrapped, idx);
  Dims ud = I.dims(idx);
  ud.insert(ud.begin() + axis, 1);
  idx = I.reshape(idx, ud);
  const TensorId hit = eltwise2(I, ElementWiseOp::kEqual, idx, iota_along(I, r, axis, depth));
  auto on = make_const("", values->type, Dims(r, 1)), off = make_const("", values->type, Dims(r, 1));
  off->set_f(0, values->f(0));
  on->set_f(0, values->f(1));
  if (values->type == DataType::kInt64 || values->type == DataType::kInt32) {
    off->set_i(0, values->i(0));
    on->set_i(0, values->i(1));
  }
  return {I.add(LayerKind::kSelect, NoParams{}, {hit, I.const_tensor(on), I.const_tensor(off)})};
}

// OneHot of constant indices: out[..., d at axis, ...] = values[1] where the (wrapped) index is d.
std::vector<ConstPtr> f_onehot(Importer& I) {
  const ConstPtr idx = I.cin(0, "indices"), depth_c = I.cin(1, "depth"), values = I.cin(2, "values");
  if (depth_c->count() != 1) I.fail("depth must be a scalar");
  if (values->count() != 2) I.fail("values must hold [off, on]");
  const int64_t depth = static_cast<int64_t>(depth_c->f(0));
  if (depth <= 0 || depth > (int64_t{1} << 24)) I.fail(fmt::format("depth {} is not supported", depth_c->f(0)));
  const size_t r = idx->dims.size() + 1;
  const int axis = I.axis(I.attr_i("axis", -1), r);
  Dims od = idx->dims;
  od.insert(od.begin() + axis, depth);
  auto y = make_const("", values->type, od);
  int64_t inner = 1;
  for (size_t a = axis; a < idx->dims.size(); ++a) inner *= idx->dims[a];
  for (int64_t e = 0; e < y->count(); ++e) {
    const int64_t outer = e / (depth * inner), d = (e / inner) % depth, in = e % inner;
    int64_t v = static_cast<int64_t>(idx->f(outer * inner + in));
    if (v < 0) v += depth;
    if (values->type == DataType::kFloat || values->type == DataType::kHalf) y->set_f(e, values->f(v == d ? 1 : 0));
    else y->set_i(e, values->i(v == d ? 1 : 0));
  }
  return {y};
}

}  // namespace

// Import-time evaluation when every input is a constant (the node is folded, see fold.cpp).
void register_decomposed_folders(std::unordered_map<std::string, FoldFn>& m) {
  m.emplace("EyeLike", f_eyelike);
  m.emplace("Trilu", f_trilu);
  m.emplace("OneHot", f_onehot);
}

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
  m.emplace("EyeLike", op_eyelike);
  m.emplace("Trilu", op_trilu);
  m.emplace("OneHot", op_onehot);
  m.emplace("CumSum", op_cumsum);
  m.emplace("MeanVarianceNormalization", op_mvn);
}

}  // namespace tandem::onnx_detail
