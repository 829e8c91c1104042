// What NonZero and NMS compute, once, for every backend: the CPU kernels
// (src/backend/cpu/kernels_dynamic.cpp) and the CUDA kernels (src/backend/cuda/kernels_dynamic.cu)
// both call these, so the rules cannot drift between them. Header-only and usable on the device,
// like op_semantics.h (whose TANDEM_HD it uses).
#pragma once

#include <cstdint>

#include "tandem/op_semantics.h"

namespace tandem::ops {

// NonZero reads an element as its raw bits (1, 2, 4 or 8 bytes, little-endian): it is non-zero
// when any bit outside `mask_out` is set. A float's sign bit is masked out, so -0 is zero and NaN
// is not (as ONNX's `x != 0`).
TANDEM_HD inline uint64_t nonzero_sign_bit(bool is_float, int element_bytes) {
  return is_float ? (uint64_t(1) << (8 * element_bytes - 1)) : 0;
}
TANDEM_HD inline bool element_nonzero(const uint8_t* p, int element_bytes, uint64_t mask_out) {
  uint64_t bits = 0;
  for (int b = 0; b < element_bytes; ++b) bits |= uint64_t(p[b]) << (8 * b);
  return (bits & ~mask_out) != 0;
}

// One box as its x and y extents. Corner pairs (ONNX center_point_box 0, TensorRT kCORNER_PAIRS):
// [y1, x1, y2, x2], any two diagonal corners (flipped coordinates are ordered here). Center sizes
// (center_point_box 1, kCENTER_SIZES): [x_center, y_center, width, height].
struct NmsBox {
  float x0, y0, x1, y1;
};
TANDEM_HD inline NmsBox nms_box(const float* b, bool center_sizes) {
  if (center_sizes) {
    const float hw = b[2] / 2.f, hh = b[3] / 2.f;
    return {b[0] - hw, b[1] - hh, b[0] + hw, b[1] + hh};
  }
  return {min_of(b[1], b[3]), min_of(b[0], b[2]), max_of(b[1], b[3]), max_of(b[0], b[2])};
}

// Whether a selected box suppresses a candidate: IoU = intersection / union > threshold. Boxes
// without area, or not overlapping, never suppress (as ONNX Runtime's SuppressByIOU).
TANDEM_HD inline bool nms_suppresses(const NmsBox& a, const NmsBox& b, float iou_threshold) {
  const float area_a = (a.x1 - a.x0) * (a.y1 - a.y0), area_b = (b.x1 - b.x0) * (b.y1 - b.y0);
  if (area_a <= 0.f || area_b <= 0.f) return false;
  const float iw = min_of(a.x1, b.x1) - max_of(a.x0, b.x0), ih = min_of(a.y1, b.y1) - max_of(a.y0, b.y0);
  if (iw <= 0.f || ih <= 0.f) return false;
  const float inter = iw * ih;
  const float uni = area_a + area_b - inter;
  if (uni <= 0.f) return false;
  return inter / uni > iou_threshold;
}

// The order candidates are taken in: the higher score first, on a tie the lower box index (ONNX
// Runtime's order; TensorRT leaves ties unspecified). A candidate needs score > score_threshold.
TANDEM_HD inline bool nms_before(float score_a, int64_t index_a, float score_b, int64_t index_b) {
  return score_a > score_b || (score_a == score_b && index_a < index_b);
}

}  // namespace tandem::ops
