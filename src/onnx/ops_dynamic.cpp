// ONNX ops whose output shape depends on the data, imported as the TensorRT layers onnx-tensorrt's
// parser uses (onnxOpImporters.cpp): NonZero -> INonZeroLayer, NonMaxSuppression -> INMSLayer.
// The output gets a static upper bound and a data-dependent extent along one axis
// (include/tandem/network.h); it may only be a graph output (import_node refuses a reader).
#include <cmath>
#include <fmt/format.h>

#include "importer.h"

namespace tandem::onnx_detail {

namespace {

using Outs = std::vector<TensorId>;

// The types INonZeroLayer and the parser take (NvInfer.h: kFLOAT, kHALF, kINT32, kBOOL; the
// parser adds kINT64 and kINT8), and uint8.
bool nonzero_input_type(DataType t) {
  return t == DataType::kFloat || t == DataType::kHalf || t == DataType::kInt8 || t == DataType::kUInt8 ||
         t == DataType::kInt32 || t == DataType::kInt64 || t == DataType::kBool;
}

// NonZero: int64 [rank, count] (INonZeroLayer with indices type kINT64, ONNX's type: no Cast).
Outs op_nonzero(Importer& I) {
  const TensorId x = I.tin(0);
  if (!nonzero_input_type(I.dtype(x))) I.fail(fmt::format("input type {} is not supported", to_string(I.dtype(x))));
  if (I.rank(x) == 0) I.fail("a scalar input is not supported (its output would be [0, n])");
  return {I.add(LayerKind::kNonZero, NoParams{}, {x})};
}

// A constant input: the coordinates at import (nothing data-dependent left). None non-zero: the
// empty constant [rank, 0] (docs/onnx-import.md, "Empty tensors").
std::vector<ConstPtr> f_nonzero(Importer& I) {
  const ConstPtr x = I.cin(0, "X");
  if (x->dims.empty() || !nonzero_input_type(x->type)) return {};
  std::vector<int64_t> hits;
  for (int64_t i = 0; i < x->count(); ++i)
    if (x->f(i) != 0.0) hits.push_back(i);
  const int64_t r = static_cast<int64_t>(x->dims.size()), n = static_cast<int64_t>(hits.size());
  ConstPtr y = make_const("", DataType::kInt64, {r, n});
  for (int64_t j = 0; j < n; ++j)
    for (int64_t d = r, rest = hits[size_t(j)]; d-- > 0;) {
      y->set_i(d * n + j, rest % x->dims[size_t(d)]);
      rest /= x->dims[size_t(d)];
    }
  return {y};
}

// A scalar operand of NonMaxSuppression: one value of the given types, at any rank.
TensorId nms_scalar(Importer& I, size_t i, const char* what, DataType a, DataType b) {
  const TensorId t = I.tin(i);
  if ((I.dtype(t) != a && I.dtype(t) != b) || volume(I.dims(t)) != 1)
    I.fail(fmt::format("{} is {} {}, one {} value expected", what, to_string(I.dtype(t)), dims_to_string(I.dims(t)),
                       to_string(a)));
  return t;
}

// NonMaxSuppression -> INMSLayer: scores transposed from ONNX's [B, C, N] to the layer's
// [B, N, C] (as the parser does); absent thresholds become constants: IoU 0 (ONNX's and
// TensorRT's default), score -inf (ONNX: no score filter; TensorRT's layer default is 0.0).
Outs op_nms(Importer& I) {
  const TensorId boxes = I.tin(0), scores = I.tin(1);
  if (I.dtype(boxes) != DataType::kFloat || I.dtype(scores) != DataType::kFloat) I.fail("boxes and scores must be fp32");
  const Dims& b = I.dims(boxes);
  const Dims& s = I.dims(scores);
  if (b.size() != 3 || b[2] != 4 || s.size() != 3 || s[0] != b[0] || s[2] != b[1])
    I.fail(fmt::format("boxes {} and scores {} are not [B, N, 4] and [B, C, N]", dims_to_string(b), dims_to_string(s)));
  const int64_t center = I.attr_i("center_point_box", 0);
  if (center != 0 && center != 1) I.fail(fmt::format("center_point_box {} is not 0 or 1", center));
  int64_t max_boxes = 0;  // ONNX's default: no output
  TensorId max_t = -1;
  if (I.has_in(2)) {
    max_t = nms_scalar(I, 2, "max_output_boxes_per_class", DataType::kInt64, DataType::kInt32);
    max_boxes = I.in(2).c ? I.in(2).c->i(0) : b[1];
  }
  if (max_boxes <= 0)  // no box is ever selected: the empty [0, 3] (docs/onnx-import.md, "Empty tensors")
    return {I.const_tensor(make_const("", DataType::kInt64, {0, 3}))};
  const TensorId iou = I.has_in(3) ? nms_scalar(I, 3, "iou_threshold", DataType::kFloat, DataType::kFloat)
                                   : I.scalar_const(0.f, DataType::kFloat, 0);
  const TensorId score = I.has_in(4) ? nms_scalar(I, 4, "score_threshold", DataType::kFloat, DataType::kFloat)
                                     : I.scalar_const(-INFINITY, DataType::kFloat, 0);
  ShuffleParams t;
  t.first_transpose = {0, 2, 1};
  const TensorId scores_bnc = I.add(LayerKind::kShuffle, t, {scores});
  return {I.add(LayerKind::kNMS, NMSParams{center == 1}, {boxes, scores_bnc, max_t, iou, score})};
}

}  // namespace

void register_dynamic_ops(std::unordered_map<std::string, OpFn>& m) {
  m.emplace("NonZero", op_nonzero);
  m.emplace("NonMaxSuppression", op_nms);
}

void register_dynamic_folders(std::unordered_map<std::string, FoldFn>& m) { m.emplace("NonZero", f_nonzero); }

}  // namespace tandem::onnx_detail
