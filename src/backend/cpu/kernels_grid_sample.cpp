// GridSample (IGridSampleLayer; ONNX GridSample-16 on 4-D input): each output pixel samples the
// input at the grid's normalised (x, y). The order of steps follows the ONNX definition:
// denormalise, round (nearest), move out-of-border coordinates (border: clamp, reflection:
// reflect), then interpolate over taps, each tap read under the padding rule (zeros: 0 outside).
#include <algorithm>
#include <cmath>
#include <string>

#include "kernels_index.h"
#include "tandem/sample_semantics.h"

namespace tandem::cpu {

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
  const ops::SampleAxis ay = ops::sample_axis(H, p.align_corners), ax = ops::sample_axis(W, p.align_corners);
  return [=](const std::vector<void*>& in, const std::vector<void*>& out) {
    const float* x = static_cast<const float*>(in[0]);
    const float* g = static_cast<const float*>(in[1]);
    float* y = static_cast<float*>(out[0]);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < Ho * Wo; ++i) {
        const float* gp = g + (n * Ho * Wo + i) * 2;
        const ops::SamplePoint sp = ops::sample_point(gp[0], gp[1], ax, ay, p.interpolation, p.align_corners, p.sample_mode);
        for (int64_t c = 0; c < C; ++c)
          y[(n * C + c) * Ho * Wo + i] = static_cast<float>(ops::sample_plane(x + (n * C + c) * H * W, W, sp));
      }
  };
}

// RoiAlign (ONNX RoiAlign-16, TensorRT's ROIAlign_TRT plugin): each output bin averages (avg) or
// takes the largest weighted corner of (max) bilinear samples on a grid of sampling_ratio^2
// points (adaptive: ceil(roi size / output size)) inside the bin; samples more than one pixel
// outside the image count as 0.
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
          std::vector<ops::RoiCorner> samples;
          for (int64_t iy = 0; iy < gh; ++iy)
            for (int64_t ix = 0; ix < gw; ++ix)
              samples.push_back(ops::roi_bilinear_corners(y1 + double(ph) * bh + (double(iy) + 0.5) * bh / double(gh),
                                                 x1 + double(pw) * bw + (double(ix) + 0.5) * bw / double(gw), H, W));
          for (int64_t c = 0; c < C; ++c) {
            const float* plane = x + (b * C + c) * H * W;
            double acc = 0;
            bool first = true;
            for (const ops::RoiCorner& s : samples) {
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
