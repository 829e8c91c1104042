// GridSample (IGridSampleLayer; ONNX GridSample-16 on 4-D input): each output pixel samples the
// input at the grid's normalised (x, y). The order of steps follows the ONNX definition:
// denormalise, round (nearest), move out-of-border coordinates (border: clamp, reflection:
// reflect), then interpolate over taps, each tap read under the padding rule (zeros: 0 outside).
#include <algorithm>
#include <cmath>
#include <string>

#include "kernels_index.h"

namespace tandem::cpu {

namespace {

struct SampleAxis {
  int64_t n = 1;
  double lo = 0, hi = 0;  // the border: [-0.5, n-0.5], or [0, n-1] with align_corners
};

// Reflects x by the nearer border until it lies within [lo, hi].
double reflect(double x, double lo, double hi) {
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
int64_t tap(int64_t i, const SampleAxis& a, SliceMode m) {
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

// Denormalised coordinate, with the out-of-border rule of "border" and "reflection" applied.
float coordinate(float g, const SampleAxis& a, const GridSampleParams& p) {
  float x = p.align_corners ? float((double(g) + 1) / 2.0 * double(a.n - 1))
                            : float(((double(g) + 1) * double(a.n) - 1) / 2.0);
  if (p.interpolation == ResizeMode::kNearest) x = std::nearbyint(x);  // half to even, as np.rint
  if (x < a.lo || x > a.hi) {
    if (p.sample_mode == SliceMode::kClamp) x = x < 0 ? 0.f : (x > float(a.n - 1) ? float(a.n - 1) : x);
    else if (p.sample_mode == SliceMode::kReflect) x = float(reflect(x, a.lo, a.hi));
  }
  return x;
}

// Taps and weights along one axis: 1 (nearest), 2 (linear) or 4 (cubic, A = -0.75).
int weights_for(float x, ResizeMode m, int64_t first[1], double w[4]) {
  switch (m) {
    case ResizeMode::kNearest:
      first[0] = static_cast<int64_t>(x);  // truncation, as the definition's astype(int32)
      w[0] = 1;
      return 1;
    case ResizeMode::kLinear: {
      const double x0 = std::floor(x), t = double(x) - x0;
      first[0] = static_cast<int64_t>(x0);
      w[0] = 1 - t;
      w[1] = t;
      return 2;
    }
    case ResizeMode::kCubic: {
      const double x0 = std::floor(x), t = double(x) - x0, A = -0.75;
      first[0] = static_cast<int64_t>(x0) - 1;
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

}  // namespace

Kernel make_grid_sample_kernel(const Network& net, const Layer& l) {
  const auto p = l.as<GridSampleParams>();
  const Tensor& tx = net.tensors[l.inputs[0]];
  const Tensor& tg = net.tensors[l.inputs[1]];
  for (const Tensor* t : {&tx, &tg, &net.tensors[l.outputs[0]]})
    if (t->type != DataType::kFloat)
      throw Error("layer '" + l.name + "' (GridSample): tensor '" + t->name + "' is " +
                  std::string(to_string(t->type)) + ", the CPU backend computes it in fp32 only");
  const int64_t N = tx.dims[0], C = tx.dims[1], H = tx.dims[2], W = tx.dims[3];
  const int64_t Ho = tg.dims[1], Wo = tg.dims[2];
  SampleAxis ay{H, -0.5, double(H) - 0.5}, ax{W, -0.5, double(W) - 0.5};
  if (p.align_corners) {
    ay.lo = ax.lo = 0;
    ay.hi = double(H - 1);
    ax.hi = double(W - 1);
  }
  return [=](const std::vector<void*>& in, const std::vector<void*>& out) {
    const float* x = static_cast<const float*>(in[0]);
    const float* g = static_cast<const float*>(in[1]);
    float* y = static_cast<float*>(out[0]);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < Ho * Wo; ++i) {
        const float* gp = g + (n * Ho * Wo + i) * 2;
        int64_t fx[1], fy[1];
        double wx[4], wy[4];
        const int kx = weights_for(coordinate(gp[0], ax, p), p.interpolation, fx, wx);
        const int ky = weights_for(coordinate(gp[1], ay, p), p.interpolation, fy, wy);
        int64_t tx_[4], ty_[4];
        for (int a = 0; a < kx; ++a) tx_[a] = tap(fx[0] + a, ax, p.sample_mode);
        for (int b = 0; b < ky; ++b) ty_[b] = tap(fy[0] + b, ay, p.sample_mode);
        for (int64_t c = 0; c < C; ++c) {
          const float* plane = x + (n * C + c) * H * W;
          double acc = 0;
          for (int b = 0; b < ky; ++b) {
            if (ty_[b] < 0) continue;
            double row = 0;
            for (int a = 0; a < kx; ++a)
              if (tx_[a] >= 0) row += wx[a] * double(plane[ty_[b] * W + tx_[a]]);
            acc += wy[b] * row;
          }
          y[(n * C + c) * Ho * Wo + i] = static_cast<float>(acc);
        }
      }
  };
}

// RoiAlign (ONNX RoiAlign-16, TensorRT's ROIAlign_TRT plugin): each output bin averages (avg) or
// takes the largest weighted corner of (max) bilinear samples on a grid of sampling_ratio^2
// points (adaptive: ceil(roi size / output size)) inside the bin; samples more than one pixel
// outside the image count as 0.
namespace {

struct Corner {
  int64_t at[4];
  double w[4];
  bool valid = false;
};

Corner bilinear_corners(double y, double x, int64_t H, int64_t W) {
  Corner c;
  if (y < -1.0 || y > double(H) || x < -1.0 || x > double(W)) return c;
  y = std::max(y, 0.0);
  x = std::max(x, 0.0);
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

}  // namespace

Kernel make_roi_align_kernel(const Network& net, const Layer& l) {
  const auto p = l.as<RoiAlignParams>();
  const Tensor& tx = net.tensors[l.inputs[0]];
  const Tensor& tr = net.tensors[l.inputs[1]];
  const Tensor& tb = net.tensors[l.inputs[2]];
  for (const Tensor* t : {&tx, &tr, &net.tensors[l.outputs[0]]})
    if (t->type != DataType::kFloat)
      throw Error("layer '" + l.name + "' (RoiAlign): tensor '" + t->name + "' is " + std::string(to_string(t->type)) +
                  ", the CPU backend computes it in fp32 only");
  const int64_t N = tx.dims[0], C = tx.dims[1], H = tx.dims[2], W = tx.dims[3], R = tr.dims[0];
  const DataType bt = tb.type;
  const std::string name = l.name;
  return [=](const std::vector<void*>& in, const std::vector<void*>& out) {
    const float* x = static_cast<const float*>(in[0]);
    const float* rois = static_cast<const float*>(in[1]);
    float* y = static_cast<float*>(out[0]);
    const double off = p.half_pixel ? 0.5 : 0.0;
    for (int64_t r = 0; r < R; ++r) {
      const int64_t b = bt == DataType::kInt64 ? static_cast<const int64_t*>(in[2])[r] : static_cast<const int32_t*>(in[2])[r];
      if (b < 0 || b >= N) throw Error("layer '" + name + "': batch index " + std::to_string(b) + " outside [0, " + std::to_string(N) + ")");
      const float* box = rois + r * 4;
      const double x1 = box[0] * p.spatial_scale - off, y1 = box[1] * p.spatial_scale - off;
      double rw = box[2] * p.spatial_scale - off - x1, rh = box[3] * p.spatial_scale - off - y1;
      if (!p.half_pixel) rw = std::max(rw, 1.0), rh = std::max(rh, 1.0);
      const double bh = rh / double(p.out_h), bw = rw / double(p.out_w);
      const int64_t gh = p.sampling_ratio > 0 ? p.sampling_ratio : static_cast<int64_t>(std::ceil(rh / double(p.out_h)));
      const int64_t gw = p.sampling_ratio > 0 ? p.sampling_ratio : static_cast<int64_t>(std::ceil(rw / double(p.out_w)));
      const double count = double(std::max<int64_t>(gh * gw, 1));
      for (int64_t ph = 0; ph < p.out_h; ++ph)
        for (int64_t pw = 0; pw < p.out_w; ++pw) {
          std::vector<Corner> samples;
          for (int64_t iy = 0; iy < gh; ++iy)
            for (int64_t ix = 0; ix < gw; ++ix)
              samples.push_back(bilinear_corners(y1 + double(ph) * bh + (double(iy) + 0.5) * bh / double(gh),
                                                 x1 + double(pw) * bw + (double(ix) + 0.5) * bw / double(gw), H, W));
          for (int64_t c = 0; c < C; ++c) {
            const float* plane = x + (b * C + c) * H * W;
            double acc = 0;
            bool first = true;
            for (const Corner& s : samples) {
              if (!p.max_mode) {
                if (s.valid) for (int k = 0; k < 4; ++k) acc += s.w[k] * double(plane[s.at[k]]);
                continue;
              }
              double v = 0;  // an invalid sample is 0, as in the ONNX reference
              if (s.valid) {
                v = s.w[0] * double(plane[s.at[0]]);
                for (int k = 1; k < 4; ++k) v = std::max(v, s.w[k] * double(plane[s.at[k]]));
              }
              acc = first ? v : std::max(acc, v);
              first = false;
            }
            y[((r * C + c) * p.out_h + ph) * p.out_w + pw] = static_cast<float>(p.max_mode ? acc : acc / count);
          }
        }
    }
  };
}

}  // namespace tandem::cpu
