// Where GridSample and RoiAlign read their input, once, for every backend: the CPU kernels
// (src/backend/cpu/kernels_grid_sample.cpp) and the CUDA kernels (src/backend/cuda/kernels_index.cu)
// both call these, so the coordinate rules cannot drift between them. Header-only and usable on
// the device, like op_semantics.h (whose TANDEM_HD it uses).
#pragma once

#include <cmath>
#include <cstdint>

#include "tandem/op_semantics.h"

namespace tandem::ops {

// One sampled axis of GridSample: n pixels, and the border [lo, hi] ([-0.5, n-0.5], or [0, n-1]
// with align_corners).
struct SampleAxis {
  int64_t n = 1;
  double lo = 0, hi = 0;
};

TANDEM_HD inline SampleAxis sample_axis(int64_t n, bool align_corners) {
  return align_corners ? SampleAxis{n, 0.0, double(n - 1)} : SampleAxis{n, -0.5, double(n) - 0.5};
}

// Reflects x by the nearer border until it lies within [lo, hi].
TANDEM_HD inline double reflect(double x, double lo, double hi) {
  const double range = hi - lo;
  if (range <= 0) return lo;
  if (x < lo) {
    const double d = lo - x;
    const auto k = static_cast<int64_t>(d / range);
    const double r = d - double(k) * range;
    return k % 2 == 0 ? lo + r : hi - r;
  }
  if (x > hi) {
    const double d = x - hi;
    const auto k = static_cast<int64_t>(d / range);
    const double r = d - double(k) * range;
    return k % 2 == 0 ? hi - r : lo + r;
  }
  return x;
}

// The input index a tap reads, or -1 for a zero (padding "zeros" outside the input).
TANDEM_HD inline int64_t sample_tap(int64_t i, const SampleAxis& a, SliceMode m) {
  if (i >= 0 && i < a.n) return i;
  switch (m) {
    case SliceMode::kClamp: return i < 0 ? 0 : a.n - 1;
    case SliceMode::kReflect: return static_cast<int64_t>(reflect(double(i), a.lo, a.hi));
    case SliceMode::kFill:
    case SliceMode::kDefault:
    case SliceMode::kWrap: return -1;
  }
  return -1;
}

// Denormalised coordinate of grid value g, in the ONNX definition's order: denormalise, round
// (nearest: half to even, as np.rint), then the out-of-border rule of "border" and "reflection".
TANDEM_HD inline float sample_coordinate(float g, const SampleAxis& a, ResizeMode interp, bool align_corners,
                                         SliceMode m) {
  float x = align_corners ? float((double(g) + 1) / 2.0 * double(a.n - 1)) : float(((double(g) + 1) * double(a.n) - 1) / 2.0);
  if (interp == ResizeMode::kNearest) x = rintf(x);
  if (x < a.lo || x > a.hi) {
    if (m == SliceMode::kClamp) x = x < 0 ? 0.f : (x > float(a.n - 1) ? float(a.n - 1) : x);
    else if (m == SliceMode::kReflect) x = float(reflect(x, a.lo, a.hi));
  }
  return x;
}

// Taps and weights along one axis: 1 (nearest), 2 (linear) or 4 (cubic, A = -0.75); *first is
// the first tap's index.
TANDEM_HD inline int sample_weights(float x, ResizeMode m, int64_t* first, double w[4]) {
  switch (m) {
    case ResizeMode::kNearest:
      *first = static_cast<int64_t>(x);  // truncation, as the definition's astype(int32)
      w[0] = 1;
      return 1;
    case ResizeMode::kLinear: {
      const double x0 = floor(double(x)), t = double(x) - x0;
      *first = static_cast<int64_t>(x0);
      w[0] = 1 - t;
      w[1] = t;
      return 2;
    }
    case ResizeMode::kCubic: {
      const double x0 = floor(double(x)), t = double(x) - x0, A = -0.75;
      *first = static_cast<int64_t>(x0) - 1;
      const double a = t + 1, b = t, c = 1 - t, d = 2 - t;
      w[0] = ((A * a - 5 * A) * a + 8 * A) * a - 4 * A;
      w[1] = ((A + 2) * b - (A + 3)) * b * b + 1;
      w[2] = ((A + 2) * c - (A + 3)) * c * c + 1;
      w[3] = ((A * d - 5 * A) * d + 8 * A) * d - 4 * A;
      return 4;
    }
  }
  return 0;
}

// The taps (-1: reads zero) and weights one GridSample output pixel uses, from its grid (gx, gy).
struct SamplePoint {
  int kx = 0, ky = 0;
  int64_t tx[4] = {}, ty[4] = {};
  double wx[4] = {}, wy[4] = {};
};

TANDEM_HD inline SamplePoint sample_point(float gx, float gy, const SampleAxis& ax, const SampleAxis& ay,
                                          ResizeMode interp, bool align_corners, SliceMode m) {
  SamplePoint p;
  int64_t fx = 0, fy = 0;
  p.kx = sample_weights(sample_coordinate(gx, ax, interp, align_corners, m), interp, &fx, p.wx);
  p.ky = sample_weights(sample_coordinate(gy, ay, interp, align_corners, m), interp, &fy, p.wy);
  for (int a = 0; a < p.kx; ++a) p.tx[a] = sample_tap(fx + a, ax, m);
  for (int b = 0; b < p.ky; ++b) p.ty[b] = sample_tap(fy + b, ay, m);
  return p;
}

// One plane (H x W, row stride W) sampled at p: rows of taps summed in double, in a fixed order.
TANDEM_HD inline double sample_plane(const float* plane, int64_t W, const SamplePoint& p) {
  double acc = 0;
  for (int b = 0; b < p.ky; ++b) {
    if (p.ty[b] < 0) continue;
    double row = 0;
    for (int a = 0; a < p.kx; ++a)
      if (p.tx[a] >= 0) row += p.wx[a] * double(plane[p.ty[b] * W + p.tx[a]]);
    acc += p.wy[b] * row;
  }
  return acc;
}

// RoiAlign's bilinear sample at (y, x): the four pixels and their weights, or !valid when the
// point lies more than one pixel outside the H x W image (it then counts as 0).
struct RoiCorner {
  int64_t at[4] = {};
  double w[4] = {};
  bool valid = false;
};

TANDEM_HD inline RoiCorner roi_bilinear_corners(double y, double x, int64_t H, int64_t W) {
  RoiCorner c;
  if (y < -1.0 || y > double(H) || x < -1.0 || x > double(W)) return c;
  y = y < 0.0 ? 0.0 : y;
  x = x < 0.0 ? 0.0 : x;
  auto y0 = static_cast<int64_t>(y), x0 = static_cast<int64_t>(x);
  int64_t y1 = y0 + 1, x1 = x0 + 1;
  if (y0 >= H - 1) y0 = y1 = H - 1, y = double(y0);
  if (x0 >= W - 1) x0 = x1 = W - 1, x = double(x0);
  const double ly = y - double(y0), lx = x - double(x0), hy = 1 - ly, hx = 1 - lx;
  c.at[0] = y0 * W + x0; c.at[1] = y0 * W + x1; c.at[2] = y1 * W + x0; c.at[3] = y1 * W + x1;
  c.w[0] = hy * hx; c.w[1] = hy * lx; c.w[2] = ly * hx; c.w[3] = ly * lx;
  c.valid = true;
  return c;
}

}  // namespace tandem::ops
