// ONNX Mod on runtime tensors, imported as onnx-tensorrt's Mod importer builds it (TensorRT has no
// modulo operation; onnxOpImporters.cpp and importerUtils.cpp modWithIntegerInputs /
// modWithFPInputs at https://github.com/onnx/onnx-tensorrt, commit 96e7811):
//   integers, fmod=0:  a - b * FLOOR_DIV(a, b)          (the sign of the divisor, as ONNX)
//   integers, fmod=1:  a - b * DIV(a, b)                (DIV truncates: the sign of the dividend)
//   floats (fmod=1):   q = a / b; Select(q >= 0, a - b * floor(q), a - b * ceil(q))
// with q >= 0 as the parser writes it: GREATER(q, z) OR EQUAL(q, z), z = q * 0. Constant operands
// still fold in fold.cpp. Types the parser refuses are refused with its words (docs/onnx-import.md).
#include <fmt/format.h>

#include "importer.h"

namespace tandem::onnx_detail {

namespace {

using Outs = std::vector<TensorId>;

TensorId eltwise(Importer& I, ElementWiseOp op, TensorId a, TensorId b) {
  std::vector<TensorId> ts{a, b};
  I.broadcast_ranks(ts);
  return I.add(LayerKind::kElementWise, ElementWiseParams{op}, ts);
}

TensorId unary(Importer& I, UnaryOp op, TensorId x) { return I.add(LayerKind::kUnary, UnaryParams{op}, {x}); }

// a - b * round(q): the parser's modWithIntegerInputs / modWithFPInputs tail.
TensorId minus_multiple(Importer& I, TensorId a, TensorId b, TensorId rounded_quotient) {
  return eltwise(I, ElementWiseOp::kSub, a, eltwise(I, ElementWiseOp::kProd, b, rounded_quotient));
}

Outs op_mod(Importer& I) {
  TensorId a = I.tin(0), b = I.tin(1);
  const DataType t = I.dtype(a);
  const bool fmod = I.attr_i("fmod", 0) != 0;
  const bool integer = t == DataType::kInt32 || t == DataType::kInt64;
  const bool floating = t == DataType::kFloat || t == DataType::kHalf;
  if (I.dtype(b) != t) I.fail(fmt::format("operand types differ ({} vs {})", to_string(t), to_string(I.dtype(b))));
  // The parser: notInvalidType(input 0, {"UINT8"}); fmod=0 asserts INT32 or INT64; its operator
  // matrix lists Mod for FP32, FP16, BF16, INT32, INT64 only.
  if (!integer && !floating)
    I.fail(fmt::format("Mod on {} is not supported (TensorRT's parser takes FP32, FP16, BF16, INT32, INT64)", to_string(t)));
  if (!fmod && !integer)
    I.fail(fmt::format("fmod=0 on {} is not supported (TensorRT's parser: \"The fmod attribute is set to 0. Inputs "
                       "cannot be of floating point types\")",
                       to_string(t)));
  std::vector<TensorId> ab{a, b};
  I.broadcast_ranks(ab);  // the parser's broadcastTensors
  a = ab[0];
  b = ab[1];
  if (integer)
    return {minus_multiple(I, a, b, eltwise(I, fmod ? ElementWiseOp::kDiv : ElementWiseOp::kFloorDiv, a, b))};
  const TensorId q = eltwise(I, ElementWiseOp::kDiv, a, b);
  const TensorId with_floor = minus_multiple(I, a, b, unary(I, UnaryOp::kFloor, q));
  const TensorId with_ceil = minus_multiple(I, a, b, unary(I, UnaryOp::kCeil, q));
  // createZeroTensor: q * 0 (NaN where q is NaN or infinite, so those take the ceil branch too).
  const TensorId zero = eltwise(I, ElementWiseOp::kProd, q, I.scalar_const(0.f, t, I.rank(q)));
  const TensorId greater = eltwise(I, ElementWiseOp::kGreater, q, zero);  // the parser's order
  const TensorId equal = eltwise(I, ElementWiseOp::kEqual, q, zero);
  const TensorId ge = eltwise(I, ElementWiseOp::kOr, greater, equal);
  return {I.add(LayerKind::kSelect, NoParams{}, {ge, with_floor, with_ceil})};
}

}  // namespace

void register_mod_op(std::unordered_map<std::string, OpFn>& m) { m.emplace("Mod", op_mod); }

}  // namespace tandem::onnx_detail
