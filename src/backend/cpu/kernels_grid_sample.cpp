// GridSample (IGridSampleLayer; ONNX GridSample-16 on 4-D input): each output pixel samples the
// input at the grid's normalised (x, y). The order of steps follows the ONNX definition:
// denormalise, round (nearest), move out-of-border coordinates (border: clamp, reflection:
// reflect), then interpolate over taps, each tap read under the padding rule (zeros: 0 outside).
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

}  // namespace tandem::cpu
