// CUDA kernels of issue 16's index and sampling layers (kernels_index.cu): Gather in TensorRT's
// ELEMENT and ND modes, Scatter (ELEMENT, ND), TopK, Einsum, GridSample, RoiAlign. Each computes
// what the CPU backend's kernel of the same layer computes (src/backend/cpu/kernels_index.cpp,
// kernels_grid_sample.cpp), in the same order of double-precision steps where it accumulates.
// Launchers are asynchronous on `s` and check nothing; index_layer_launch (index_layers.cpp)
// derives their arguments from a layer and refuses what they do not run.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "backend/cuda/kernels.h"
#include "tandem/network.h"

namespace tandem::cuda {

// ---- plain launchers (kernels_index.cu) ----------------------------------------------------------
// Out-of-range indices (after adding the axis size to negative ones) cannot throw on the device:
// a gather reads 0 for them, a scatter drops that update (the CPU backend throws instead).

// out (dims idx_dims) = data at each position with coordinate `axis` replaced by idx there.
void gather_elements(const void* data, Shape data_dims, const void* idx, bool idx_i64, Shape idx_dims, int axis,
                     void* out, int es, cudaStream_t s);
// GatherND: out[q, e] = data[batch(q), idx[q, 0..k), e]; data_strides are dense element strides.
void gather_nd(const void* data, Shape data_dims, Shape data_strides, const void* idx, bool idx_i64, int batch_dims,
               int k, int64_t batches, int64_t tuples, int64_t slice, void* out, int es, cudaStream_t s);

// Scatter onto `out` (already a copy of data). dt: a Dt; reductions need kF32, kI32 or kI64.
// kNone: the last update to a position wins (the CPU backend's loop order).
void scatter_elements(void* out, Shape out_dims, const void* idx, bool idx_i64, Shape idx_dims, int axis,
                      const void* upd, int dt, ScatterReduction red, cudaStream_t s);
void scatter_nd(void* out, Shape out_dims, Shape out_strides, const void* idx, bool idx_i64, int k, int64_t tuples,
                int64_t slice, const void* upd, int dt, ScatterReduction red, cudaStream_t s);

// TopK along the middle axis of [outer, n, inner] -> [outer, k, inner]; dt: kF32, kI32 or kI64
// (values keep it); ties: the lower index first.
void topk(const void* x, int dt, int64_t outer, int64_t n, int64_t inner, int64_t k, bool largest, void* values,
          void* indices, bool indices_i64, cudaStream_t s);

// Einsum over up to kEinsumInputs fp32 inputs and kEinsumLabels labels: output labels first (in
// the output's order), then the summed ones; stride[i][a]: input i's element step for label a.
constexpr int kEinsumInputs = 4;
constexpr int kEinsumLabels = 26;
struct EinsumPlan {
  int inputs = 0;
  int out_labels = 0, labels = 0;
  int64_t extent[kEinsumLabels] = {};
  int64_t stride[kEinsumInputs][kEinsumLabels] = {};
  const float* x[kEinsumInputs] = {};
};
void einsum(const EinsumPlan& p, float* y, int64_t out_count, cudaStream_t s);

// GridSample: x [N,C,H,W], grid [N,Ho,Wo,2] -> y [N,C,Ho,Wo].
void grid_sample(const float* x, int64_t N, int64_t C, int64_t H, int64_t W, const float* grid, int64_t Ho, int64_t Wo,
                 ResizeMode interp, bool align_corners, SliceMode padding, float* y, cudaStream_t s);

// RoiAlign: x [N,C,H,W], rois [R,4], batch [R] -> y [R,C,out_h,out_w].
void roi_align(const float* x, int64_t N, int64_t C, int64_t H, int64_t W, const float* rois, const void* batch,
               bool batch_i64, int64_t R, const RoiAlignParams& p, float* y, cudaStream_t s);

// Pooling over 1 or 3 spatial axes, as 3-D (missing leading axes of size 1): x [NC, id...] ->
// y [NC, od...]; k window, s stride, pb/pe padding before/after.
struct Pool3d {
  int64_t id[3], od[3], k[3], s[3], pb[3], pe[3];
  PoolingType type;
  bool exclude_pad;
};
void pool3d(const float* x, float* y, int64_t NC, const Pool3d& p, cudaStream_t s);

// ---- layer -> launch (index_layers.cpp) ----------------------------------------------------------
// Whether a layer is built here: one of these (Gather only in its ELEMENT and ND modes), or a
// Pooling over 1 or 3 spatial axes.
bool is_index_layer(const Layer& L);
// The launch over fixed device pointers (one per input, one per output); throws Error naming the
// layer for what the kernels do not run (support.cpp's check_index_layer refuses the same).
std::function<void(cudaStream_t)> index_layer_launch(const Network& net, const Layer& L, std::vector<const void*> in,
                                                     std::vector<void*> out);

}  // namespace tandem::cuda
